# Running the tool: stasis with a timeout and its logs in T_LOG, dumps
# that must succeed and decode, restores that must complete or fail
# cleanly.

# The -v4 log's option: into T_LOG/TAG.log, or with STASIS_TEST_LOG_STDERR=1
# none (the log goes to stderr, T_LOG/TAG.stderr: the tool has one fd
# fewer open, which moves where the restore's files land).
log_opt() {
	[[ ${STASIS_TEST_LOG_STDERR:-0} == 1 ]] || echo "-o $T_LOG/$1.log"
}

# without_lib SONAME: NOLIB, the path of a script that runs stasis (its
# arguments) where the shared library SONAME can't be loaded: in a mount
# namespace of its own, the library's file covered by /dev/null (dlopen
# finds an empty file). For the libraries stasis loads only when a
# feature needs them (src/util/dynlib.h). Skips if the library is not
# installed here, or / is no mount point (a chroot).
without_lib() {
	local so=$1 path script=$T_WORK/stasis-without-$1
	path=$(ldconfig -p | awk -v n="$so" '$1 == n { print $NF; exit }')
	[[ -n $path ]] || { skip "no $so here to hide"; return 1; }
	# where / is no mount point (a chroot), the namespace's mounts can't
	# be made private, and the cover would reach the machine's own
	root_is_mount || { skip "/ is not a mount point (a chroot): no private mount namespace to hide $so in"; return 1; }
	cat > "$script" <<-EOF
		#!/bin/bash
		exec unshare -m --propagation private bash -c 'mount --bind /dev/null "\$0" && exec "\$@"' \
			"$(readlink -f "$path")" "$STASIS" "\$@"
	EOF
	chmod +x "$script"
	NOLIB=$script
}

# stasis TAG ARGS...: run the tool in the foreground with a timeout; output
# in T_LOG/TAG.{stdout,stderr}; the -v4 log is T_LOG/TAG.log.  Echoes rc.
stasis() {
	local tag=$1
	shift
	make_images_dir "$@"
	note "stasis $*"
	# shellcheck disable=SC2046 # log_opt's words
	timeout -k 5 "$TMO" "$STASIS" "$@" $(log_opt "$tag") -v4 \
		> "$T_LOG/$tag.stdout" 2> "$T_LOG/$tag.stderr" < /dev/null
	local rc=$?
	note "stasis $tag exited $rc"
	echo "$rc"
}

# A dump's images directory must exist (as with CRIU, stasis never makes
# it): made here, as a user would make it, for the -D of a dump or pre-dump.
make_images_dir() {
	[[ $1 == dump || $1 == pre-dump ]] || return 0
	while (($#)); do
		[[ $1 == -D && -n ${2-} ]] && { mkdir -p "$2"; return; }
		shift
	done
}

# An exit status for messages: 124 and 137 come from `timeout`.
rc_text() {
	case $1 in
	124 | 137) echo "$1 (timed out after ${TMO}s?)" ;;
	*) echo "$1" ;;
	esac
}

# First line of what the tool said about a failure: stderr, else the first
# error line of its log.
error_message() {
	local tag=$1 msg
	msg=$(grep -m1 . "$T_LOG/$tag.stderr" 2>/dev/null)
	[[ -n $msg ]] || msg=$(grep -m1 -i 'error' "$T_LOG/$tag.log" 2>/dev/null)
	echo "$msg"
}

# What `crit decode -i FILE` does (pycriu.images.load, then JSON), for
# many files in one python process: a tree dump has a hundred images and
# crit takes ~80 ms to start.  Prints the names that failed; exits 3 if
# pycriu cannot be imported (then run.sh falls back to crit itself).
CRIT_BATCH='
import json, sys, traceback
try:
    import pycriu
except Exception:
    sys.exit(3)
for path in sys.argv[1:]:
    try:
        with open(path, "rb") as f:
            json.dumps(pycriu.images.load(f, False, False))
    except Exception:
        traceback.print_exc()
        print("^^^ " + path, file=sys.stderr)
        print(path)
'

# The raw image kinds (pages-%u.img: no entries to decode) as globs, from
# stasis's table of image kinds; run.sh exports them to every worker.
raw_image_globs() {
	"$STASIS" image-kinds | awk -F'\t' '$3 == "none" { gsub(/%[ux]/, "*", $1); print $1 }'
}

# crit must decode every image except the raw ones. STASIS_TEST_DECODE=0
# leaves that out: the 6.1 VM run (scripts/vm61.sh), where python's start
# under emulation costs seconds a dump, and the image format, the same
# code on every kernel, is checked by the host run.
decode_images() {
	local dir=$1 tag=$2 f g n=0 files=() bad rc
	[[ -f $dir/inventory.img ]] || fail "$tag: no inventory.img in the dump" "$T_LOG/$tag.log"
	if [[ ${STASIS_TEST_DECODE:-1} == 0 ]]; then
		note "$tag: images not decoded (STASIS_TEST_DECODE=0)"
		return 0
	fi
	for f in "$dir"/*.img; do
		[[ -e $f ]] || continue
		for g in $STASIS_RAW_IMAGES; do [[ $(basename "$f") == $g ]] && continue 2; done
		files+=("$f")
	done
	n=${#files[@]}
	if ((n > 0)); then
		bad=$(timeout "$TMO" "$PYTHON" -c "$CRIT_BATCH" "${files[@]}" 2>> "$T_LOG/crit-$tag.log")
		rc=$?
		if ((rc == 3)); then
			bad=
			for f in "${files[@]}"; do
				if ! timeout "$TMO" "$CRIT" decode -i "$f" > /dev/null 2>> "$T_LOG/crit-$tag.log"; then
					echo "^^^ $f" >> "$T_LOG/crit-$tag.log"
					bad+="$f"$'\n'
				fi
			done
		elif ((rc != 0)); then
			fail "$tag: the image decoder failed (rc $rc)" "$T_LOG/crit-$tag.log"
		fi
		for f in $bad; do
			fail "$tag: crit cannot decode $(basename "$f")" "$T_LOG/crit-$tag.log"
		done
	fi
	note "$tag: decoded $n images: $(cd "$dir" && echo *.img)"
	((n > 0)) || fail "$tag: no images in $dir"
}

# Images edited on purpose (as a client, or CRIU's tools, could write
# them): the dump's checksums (stasis-checksums*) no longer apply, so the
# restore gets past them to the check the test is about.
forget_checksums() { rm -f "$1"/stasis-checksums "$1"/stasis-checksums-ps; }

# dump TAG PID DIR [ARGS...]: a dump that must succeed and decode.
dump() {
	local tag=$1 pid=$2 dir=$3 rc
	shift 3
	mkdir -p "$dir"
	rc=$(stasis "$tag" dump -t "$pid" -D "$dir" "$@")
	[[ $rc == 0 ]] || {
		fail "$tag: stasis dump exited $(rc_text "$rc"): $(error_message "$tag")" "$T_LOG/$tag.log"
		return 1
	}
	decode_images "$dir" "$tag"
	return 0
}

# After a dump without --leave-running the whole tree must be gone (our
# programs are session leaders, so the tree is the session).  If the root
# is our child, reap it so its pid is free for the restore.
expect_killed() {
	local pid=$1
	wait_gone "$pid" "$TMO" || {
		fail "pid $pid still alive after dump without --leave-running"
		return 1
	}
	wait "$pid" 2>/dev/null
	wait_until "$TMO" session_empty "$pid" || {
		fail "pid $pid is gone after the dump but its descendants $(live_session_members "$pid" | tr '\n' ' ')are still alive (not dumped?)"
		return 1
	}
	return 0
}

live_session_members() {
	local p
	for p in $(session_members "$1"); do
		alive "$p" && echo "$p"
	done
}
session_empty() { [[ -z $(live_session_members "$1") ]]; }

# The pid in a --pidfile, whitespace stripped ("" if not written yet).
pidfile_pid() { tr -d ' \t\n' < "$1" 2>/dev/null; }

# Conditions for "the restore is complete and the process runs on its own".
restored_ready() {
	local pid=$1 pidfile=$2 exe=$3 usr1=$4 rpid=$5
	[[ -n $rpid ]] && not_running "$rpid" && return 0 # restore died: stop waiting
	[[ $(pidfile_pid "$pidfile") == "$pid" ]] || return 1
	runs_freely "$pid" || return 1
	[[ -z $exe || $(readlink "/proc/$pid/exe") == "$exe" ]] || return 1
	[[ $usr1 == 0 ]] || catches_usr1 "$pid"
}

# Explain which readiness condition did not hold.
why_not_ready() {
	local pid=$1 pidfile=$2 exe=$3
	if [[ ! -s $pidfile ]]; then echo "pidfile $pidfile not written"
	elif [[ $(pidfile_pid "$pidfile") != "$pid" ]]; then echo "pidfile says '$(pidfile_pid "$pidfile")', expected $pid"
	elif ! alive "$pid"; then echo "pid $pid not running"
	elif ! runs_freely "$pid"; then echo "pid $pid state $(proc_state "$pid"), TracerPid $(status_field "$pid" TracerPid)"
	elif [[ -n $exe && $(readlink "/proc/$pid/exe") != "$exe" ]]; then echo "pid $pid exe is $(readlink "/proc/$pid/exe"), expected $exe"
	else echo "pid $pid does not catch SIGUSR1"
	fi
}

# wait_restored TAG PID EXE USR1 [RESTORE_PID]
wait_restored() {
	local tag=$1 pid=$2 exe=$3 usr1=$4 rpid=${5:-}
	local pidfile=$T_WORK/$tag.pid
	if ! wait_until "$TMO" restored_ready "$pid" "$pidfile" "$exe" "$usr1" "$rpid"; then
		fail "$tag: restored process not ready after ${TMO}s: $(why_not_ready "$pid" "$pidfile" "$exe")" \
			"$T_LOG/$tag.log"
		return 1
	fi
	if [[ -n $rpid ]] && not_running "$rpid"; then
		wait_child "$rpid" 1
		fail "$tag: stasis restore exited $CHILD_RC before the process ran: $(error_message "$tag")" \
			"$T_LOG/$tag.log"
		return 1
	fi
	[[ $(stat_field "$pid" 4) == "$pid" ]] || fail "$tag: restored pid $pid is not a session leader any more"
	note "$tag: pid $pid restored and running"
}

# restore_detached TAG DIR PID EXE USR1 [ARGS...]: `restore -d ARGS`, must succeed.
restore_detached() {
	local tag=$1 dir=$2 pid=$3 exe=$4 usr1=$5 rc
	shift 5
	rc=$(stasis "$tag" restore -D "$dir" -d --pidfile "$T_WORK/$tag.pid" "$@")
	[[ $rc == 0 ]] || {
		fail "$tag: stasis restore -d exited $(rc_text "$rc"): $(error_message "$tag")" "$T_LOG/$tag.log"
		return 1
	}
	wait_restored "$tag" "$pid" "$exe" "$usr1"
}

# restore_foreground TAG DIR [ARGS...]: start a foreground restore (with ARGS)
# in the background.
# Sets RESTORE_PID (the `timeout` wrapper, which passes on the exit status
# and is its own process group, so cleanup can kill the group).
restore_foreground() {
	local tag=$1 dir=$2
	shift 2
	note "stasis restore -D $dir $* (foreground)"
	# shellcheck disable=SC2046 # log_opt's words
	timeout -k 5 $((TMO * 3)) "$STASIS" restore -D "$dir" $(log_opt "$tag") -v4 \
		--pidfile "$T_WORK/$tag.pid" "$@" > "$T_LOG/$tag.stdout" 2> "$T_LOG/$tag.stderr" < /dev/null &
	RESTORE_PID=$!
	T_PGIDS+=("$RESTORE_PID")
}

# A failed restore: non-zero (not a timeout), says something, and leaves
# no process with the dumped pid.
expect_restore_fails() {
	local tag=$1 dir=$2 pid=$3 rc
	rc=$(stasis "$tag" restore -D "$dir")
	if [[ $rc == 0 ]]; then
		fail "$tag: restore from a bad image succeeded" "$T_LOG/$tag.log"
	elif [[ $rc == 124 || $rc == 137 ]]; then
		fail "$tag: restore hung (killed after ${TMO}s)" "$T_LOG/$tag.log"
	fi
	[[ -n $(error_message "$tag") ]] || fail "$tag: no error message on stderr or in the log" "$T_LOG/$tag.log"
	[[ -z $pid ]] && return
	wait_gone "$pid" 5 || fail "$tag: a process with pid $pid is left running after the failed restore"
}

# stasis_killed_at TAG POINT ARGS...: `stasis ARGS` killed at the fault
# point POINT[:N] (STASIS_TEST_DIE_AT, src/util/fault.h); it must have
# died there.
stasis_killed_at() {
	local tag=$1 point=$2 rc
	shift 2
	rc=$(STASIS_TEST_DIE_AT=$point stasis "$tag" "$@")
	[[ $rc == 137 ]] && grep -q "test hook: killed at ${point%%:*} " "$T_LOG/$tag.log" ||
		fail "$tag: stasis was not killed at $point (exit $rc): does it pass there that often?" "$T_LOG/$tag.log"
}

# check_dump_stats TAG DIR: DIR's stats-dump decodes with crit, and its
# pages written (private and shared) are exactly the pages in DIR's pages
# images, as CRIU's test suite checks. Sets STATS_SCANNED, STATS_PARENT.
check_dump_stats() {
	local tag=$1 dir=$2 json real
	json=$(timeout "$TMO" "$CRIT" decode -i "$dir/stats-dump" 2>> "$T_LOG/crit-$tag.log") ||
		{ fail "$tag: crit cannot decode stats-dump" "$T_LOG/crit-$tag.log"; return 1; }
	read -r STATS_WRITTEN STATS_SCANNED STATS_PARENT < <("$PYTHON" -c '
import json, sys
d = json.loads(sys.argv[1])["entries"][0]["dump"]
print(int(d["pages_written"]) + int(d.get("shpages_written", 0)), d["pages_scanned"], d["pages_skipped_parent"])' "$json")
	real=$(stat -c %s "$dir"/pages-*.img 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
	note "$tag: stats-dump: $STATS_WRITTEN pages written, $STATS_SCANNED scanned, $STATS_PARENT in the parent; pages images $real bytes"
	((STATS_WRITTEN * 4096 == real)) ||
		fail "$tag: stats-dump says $STATS_WRITTEN pages written, the pages images hold $real bytes"
}

# check_restore_stats TAG DIR MIN: DIR's stats-restore decodes and counts at
# least MIN pages restored.
check_restore_stats() {
	local tag=$1 dir=$2 min=$3 json n
	json=$(timeout "$TMO" "$CRIT" decode -i "$dir/stats-restore" 2>> "$T_LOG/crit-$tag.log") ||
		{ fail "$tag: crit cannot decode stats-restore" "$T_LOG/crit-$tag.log"; return 1; }
	n=$("$PYTHON" -c 'import json, sys; print(json.loads(sys.argv[1])["entries"][0]["restore"]["pages_restored"])' "$json")
	note "$tag: stats-restore: $n pages restored"
	((n >= min)) || fail "$tag: stats-restore says $n pages restored, expected at least $min"
}

# A python program of tests/progs dumped, restored in the foreground,
# signalled and checked: it prints PASS or FAIL itself.
# py_dump_restore LABEL PROG.py|-c [ARGS...]  (DUMP_ARGS: extra dump options)
py_dump_restore() {
	local label=$1 prog=$ROOT/tests/progs/$2 pid exe
	[[ $2 == -c ]] && prog=-c
	shift 2
	start_prog "$label" "$PYTHON" "$prog" "$@"
	pid=$PROG_PID
	wait_ready "$label" "$pid" || return
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" ${DUMP_ARGS:-} || return
	expect_killed "$pid" || return
	restore_foreground restore "$T_WORK/img"
	wait_restored restore "$pid" "$exe" 1 "$RESTORE_PID" || return
	kill -USR1 "$pid"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output "$label"
}
