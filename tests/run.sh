#!/bin/bash
#
# run.sh - the Stasis test runner.
#
#   tests/run.sh [-k PATTERN] [-l]
#
#   -k PATTERN   run only tests whose name matches PATTERN (bash regex,
#                e.g. -k mem_anon, -k '\.chain$', -k '^fail\.')
#   -l           list test names and exit
#
# Needs root, `make` (build/stasis) and `make -C tests` (build/tests/*) done.
# Prints "PASS name" / "FAIL name: reason" / "SKIP name: reason" per
# test, then "N skipped: names" if any were, then one final line
# "N passed, N failed"; exits non-zero if anything failed.  Per-test logs
# (stasis -v4 logs, program output, crit errors) stay in
# /tmp/stasis-tests/<name>/.  See tests/README.md.
#
# Environment: STASIS (tool binary), STASIS_TEST_LOGS (log root),
# STASIS_TEST_TIMEOUT (seconds for each wait, default 20),
# STASIS_TEST_KEEP=1 (keep image and work directories).

set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STASIS=${STASIS:-$ROOT/build/stasis}
BIN=$ROOT/build/tests
LOGROOT=${STASIS_TEST_LOGS:-/tmp/stasis-tests}
TMO=${STASIS_TEST_TIMEOUT:-20}
KEEP=${STASIS_TEST_KEEP:-0}
PYTHON=/usr/bin/python3
CRIT=crit
# `script -c CMD` runs CMD with $SHELL, which a bare environment (CI's
# `env -i`) leaves unset (then /bin/sh, which forks for it): the terminal
# tests want CMD to be script's own child.
export SHELL=/bin/bash

# Programs run through the dump/restore scenarios (bigmem is only used by
# the failure tests: 512 MiB per dump is too slow for every scenario).
PROGS=(mem_anon mem_file vector_regs signals files rlimits writer rseq_tls)
# Multi-process and multi-threaded programs (tree_* scenarios, see below).
TREE_PROGS=(forktree threads manythreads zombies sessions stopped forkloop treeexit)

PATTERN=
LIST_ONLY=0
N_PASS=0
N_FAIL=0
N_SKIP=0
FAILED_NAMES=()
SKIPPED_NAMES=()

usage() {
	sed -n '3,20s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
	exit 2
}

while getopts "k:lh" opt; do
	case $opt in
	k) PATTERN=$OPTARG ;;
	l) LIST_ONLY=1 ;;
	*) usage ;;
	esac
done

# ---------------------------------------------------------------------------
# Per-test state.  run_test resets it; helpers fill it in.
#   T_NAME   test name            T_LOG   its log dir (kept)
#   T_WORK   scratch dir (removed): images in T_WORK/img*, program cwd in
#            T_WORK/files
#   T_FAIL   first failure reason T_FAIL_LOG  log to show on failure
#   T_PIDS   pids to kill -9 at the end; T_SIDS sessions to kill;
#   T_PGIDS  process groups (the `timeout` wrappers around stasis)
# ---------------------------------------------------------------------------
T_NAME= T_LOG= T_WORK= T_FILES= T_FAIL= T_FAIL_LOG= T_SKIP=
T_PIDS=() T_SIDS=() T_PGIDS=()

note() { echo "[$(date +%T.%N | cut -c1-12)] $*" >> "$T_LOG/runner.log"; }

# Record a failure.  Only the first reason is reported: later ones are
# usually consequences.  Always returns 1 so callers can `|| return`.
fail() {
	note "FAIL: $1"
	if [[ -z $T_FAIL ]]; then
		T_FAIL=$1
		T_FAIL_LOG=${2:-}
	fi
	return 1
}

# The test needs what this kernel truly lacks (say which in REASON):
# reported as SKIP, counted apart, never as passed. Only for a missing
# kernel feature, never to hide a failure: a failure already recorded
# still fails the test.  Returns 1 so callers can `|| return`.
skip() {
	note "SKIP: $1"
	[[ -n $T_SKIP ]] || T_SKIP=$1
	return 1
}

# How this kernel lets pre-dump track memory writes, as `stasis check`
# says: uffd (userfaultfd WP_ASYNC, 6.7+), softdirty, or none.
mem_track_method() {
	case $("$STASIS" check 2> /dev/null | grep '^memory tracking ') in
	*userfaultfd*) echo uffd ;;
	*soft-dirty*) echo softdirty ;;
	*) echo none ;;
	esac
}

# ---------------------------------------------------------------------------
# Process inspection
# ---------------------------------------------------------------------------

# Field N (1-based, counting from "state") of /proc/PID/stat, after the
# command name, which may itself contain spaces and parentheses.
stat_field() {
	local s f
	{ read -r s < "/proc/$1/stat"; } 2>/dev/null || return 1
	s=${s##*) }
	read -r -a f <<< "$s"
	echo "${f[$2 - 1]}"
}

proc_state() { stat_field "$1" 1; }
proc_sid() { stat_field "$1" 4; }

# Alive = exists and is not a zombie.
alive() {
	local st
	st=$(proc_state "$1") || return 1
	[[ $st != Z && $st != X ]]
}

status_field() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null; }

# Running or sleeping normally: not stopped, not traced, not a zombie.
runs_freely() {
	local st
	st=$(proc_state "$1") || return 1
	[[ $st == [RSD] && $(status_field "$1" TracerPid) == 0 ]]
}

# Is SIGUSR1 caught (SigCgt bit 9)?  A restored process can take the signal
# only once its handlers are back.
catches_usr1() {
	local cgt
	cgt=$(status_field "$1" SigCgt) || return 1
	(((0x$cgt >> 9) & 1))
}

# wait_until SECONDS CMD...: poll CMD every 50 ms; 1 on timeout.
wait_until() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS >= end)) && return 1
		sleep 0.05
	done
	return 0
}

not_alive() { ! alive "$1"; }
wait_gone() { wait_until "${2:-$TMO}" not_alive "$1"; }

# wait_child PID [SECONDS]: wait for one of our own children with a
# timeout; its exit status goes to CHILD_RC ("timeout" if it did not end).
# Not usable inside $(...): a subshell cannot wait for our children.
wait_child() {
	CHILD_RC=timeout
	wait_until "${2:-$TMO}" not_running "$1" || return 1
	wait "$1" 2>/dev/null
	CHILD_RC=$?
}
not_running() { ! kill -0 "$1" 2>/dev/null || [[ $(proc_state "$1") == Z ]]; }

# ---------------------------------------------------------------------------
# Starting and checking programs
# ---------------------------------------------------------------------------

# start_prog LABEL CMD...: run CMD in its own session (so it can be dumped
# without --shell-job), cwd T_FILES, stdout/stderr to T_LOG/LABEL.out/.err.
# Sets PROG_PID.  The subshell execs setsid, which execs CMD without
# forking (we are not a process group leader), so $! is CMD's pid.
start_prog() {
	local label=$1
	shift
	(cd "$T_FILES" && exec setsid "$@" > "$T_LOG/$label.out" 2> "$T_LOG/$label.err" < /dev/null) &
	PROG_PID=$!
	T_PIDS+=("$PROG_PID")
	T_SIDS+=("$PROG_PID")
	note "started $label as pid $PROG_PID: $*"
}

has_line() { grep -qx -- "$2" "$1" 2>/dev/null; }
ready_or_dead() { has_line "$1" READY || not_alive "$2"; }

# Wait for a test program's READY line and check it is a session leader.
wait_ready() {
	local label=$1 pid=$2 out=$T_LOG/$1.out
	if ! wait_until "$TMO" ready_or_dead "$out" "$pid"; then
		fail "$label never printed READY within ${TMO}s" "$T_LOG/$label.err"
		return 1
	fi
	if ! has_line "$out" READY; then
		fail "$label died before READY: $(grep -m1 FAIL "$out" || tail -n1 "$T_LOG/$label.err")" \
			"$T_LOG/$label.err"
		return 1
	fi
	[[ $(proc_sid "$pid") == "$pid" ]] || fail "harness: $label (pid $pid) is not a session leader"
}

# Did the program report PASS and no FAIL?
check_output() {
	local label=$1 out=$T_LOG/$1.out
	if grep -q '^FAIL' "$out"; then
		fail "$label: $(grep '^FAIL' "$out" | head -n3 | tr '\n' ' ')" "$out"
	elif ! has_line "$out" PASS; then
		fail "$label printed no PASS (killed or crashed?)" "$T_LOG/$label.err"
	fi
}

# ---------------------------------------------------------------------------
# Running stasis
# ---------------------------------------------------------------------------

# stasis TAG ARGS...: run the tool in the foreground with a timeout; output
# in T_LOG/TAG.{stdout,stderr}; the -v4 log is T_LOG/TAG.log.  Echoes rc.
stasis() {
	local tag=$1
	shift
	note "stasis $*"
	timeout -k 5 "$TMO" "$STASIS" "$@" -o "$T_LOG/$tag.log" -v4 \
		> "$T_LOG/$tag.stdout" 2> "$T_LOG/$tag.stderr" < /dev/null
	local rc=$?
	note "stasis $tag exited $rc"
	echo "$rc"
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
# stasis's table of image kinds.
raw_image_globs() {
	"$STASIS" image-kinds | awk -F'\t' '$3 == "none" { gsub(/%[ux]/, "*", $1); print $1 }'
}

# crit must decode every image except the raw ones.
decode_images() {
	local dir=$1 tag=$2 f g n=0 files=() bad rc
	[[ -f $dir/inventory.img ]] || fail "$tag: no inventory.img in the dump" "$T_LOG/$tag.log"
	for f in "$dir"/*.img; do
		[[ -e $f ]] || continue
		for g in "${RAW_IMAGES[@]}"; do [[ $(basename "$f") == $g ]] && continue 2; done
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

# restore_foreground TAG DIR: start a foreground restore in the background.
# Sets RESTORE_PID (the `timeout` wrapper, which passes on the exit status
# and is its own process group, so cleanup can kill the group).
restore_foreground() {
	local tag=$1 dir=$2
	note "stasis restore -D $dir (foreground)"
	timeout -k 5 $((TMO * 3)) "$STASIS" restore -D "$dir" -o "$T_LOG/$tag.log" -v4 \
		--pidfile "$T_WORK/$tag.pid" > "$T_LOG/$tag.stdout" 2> "$T_LOG/$tag.stderr" < /dev/null &
	RESTORE_PID=$!
	T_PGIDS+=("$RESTORE_PID")
}

# ---------------------------------------------------------------------------
# Per-test setup and cleanup
# ---------------------------------------------------------------------------

# Every process whose session id is $1.
session_members() {
	local d sid
	for d in /proc/[0-9]*; do
		sid=$(stat_field "${d#/proc/}" 4 2>/dev/null) || continue
		[[ $sid == "$1" ]] && echo "${d#/proc/}"
	done
}

# Orphans re-parented to the subreaper we run under (restored trees
# after `restore -d`, the init of a --new-pidns restore, processes a
# failed restore left behind): every child of the subreaper but us is a
# leftover of the current test.  Kill each with all its descendants.
sweep_orphans() {
	local c p
	[[ -n ${STASIS_TEST_SUBREAPER:-} && $(readlink "/proc/$PPID/exe") == "$BIN/subreaper" ]] || return 0
	for c in $(cat /proc/$PPID/task/*/children 2>/dev/null); do
		[[ $c == "$$" ]] && continue
		for p in $(tree_members "$c"); do
			note "cleanup: kill -9 $p (orphan under the subreaper: $(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null))"
			kill -9 "$p" 2>/dev/null
		done
	done
}

kill_leftovers() {
	local p g s
	for g in "${T_PGIDS[@]}"; do kill -9 -- "-$g" 2>/dev/null; done
	sweep_orphans
	for s in "${T_SIDS[@]}"; do
		for p in $(session_members "$s"); do
			note "cleanup: kill -9 $p (session $s)"
			kill -9 "$p" 2>/dev/null
		done
	done
	for p in "${T_PIDS[@]}"; do
		alive "$p" && note "cleanup: kill -9 $p" && kill -9 "$p" 2>/dev/null
	done
	for p in "${T_PIDS[@]}" "${T_PGIDS[@]}"; do
		wait_gone "$p" 5 || note "cleanup: pid $p would not die"
		not_running "$p" && wait "$p" 2>/dev/null # reap if it is our child
	done
	return 0
}

setup_test() {
	T_NAME=$1 T_FAIL= T_FAIL_LOG= T_SKIP= T_PIDS=() T_SIDS=() T_PGIDS=()
	T_LOG=$LOGROOT/$T_NAME
	rm -rf "$T_LOG"
	mkdir -p "$T_LOG"
	T_WORK=$(mktemp -d /tmp/stasis-work.XXXXXX)
	T_FILES=$T_WORK/files
	mkdir -p "$T_FILES"
	note "test $T_NAME, work dir $T_WORK"
}

cleanup_test() {
	kill_leftovers
	if [[ $KEEP == 1 ]]; then
		note "kept $T_WORK"
	else
		rm -rf "$T_WORK"
	fi
}

report() {
	if [[ -z $T_FAIL && -n $T_SKIP ]]; then
		N_SKIP=$((N_SKIP + 1))
		SKIPPED_NAMES+=("$T_NAME")
		echo "SKIP $T_NAME: $T_SKIP"
		return
	fi
	if [[ -z $T_FAIL ]]; then
		N_PASS=$((N_PASS + 1))
		echo "PASS $T_NAME"
		return
	fi
	N_FAIL=$((N_FAIL + 1))
	FAILED_NAMES+=("$T_NAME")
	echo "FAIL $T_NAME: $T_FAIL"
	if [[ -n $T_FAIL_LOG && -s $T_FAIL_LOG ]]; then
		echo "    --- tail of $T_FAIL_LOG"
		tail -n 15 "$T_FAIL_LOG" | sed 's/^/    /'
	fi
	echo "    (logs: $T_LOG)"
}

# run_test NAME FUNCTION [ARGS...]
run_test() {
	local name=$1
	shift
	[[ -z $PATTERN || $name =~ $PATTERN ]] || return 0
	if ((LIST_ONLY)); then
		echo "$name"
		return 0
	fi
	setup_test "$name"
	CURRENT_TEST=1
	# bash reports every background job that dies by a signal ("Killed");
	# the dumps kill our programs on purpose, so keep that noise (and any
	# shell error) in the test's runner.log instead of the summary.
	"$@" 2>> "$T_LOG/runner.log"
	CURRENT_TEST=0
	cleanup_test 2>> "$T_LOG/runner.log"
	report
}

on_interrupt() {
	echo "interrupted"
	if ((CURRENT_TEST)); then
		cleanup_test
		# a restore that was running when the signal came may have
		# finished since: once more
		sleep 1
		kill_leftovers
	fi
	((N_SKIP == 0)) || echo "$N_SKIP skipped: ${SKIPPED_NAMES[*]}"
	echo "$N_PASS passed, $((N_FAIL + 1)) failed"
	exit 130
}

# ---------------------------------------------------------------------------
# Scenarios for the test programs in build/tests
# ---------------------------------------------------------------------------

# Extra checks after a program finished, by program name.
postcheck() {
	case $1 in
	writer) check_sequence "$T_FILES/seq.txt" 8 ;;
	esac
}

# check_sequence FILE [WIDTH]: lines 1, 2, 3, ... with no gap or repeat.
check_sequence() {
	local file=$1 width=${2:-0} bad
	bad=$(awk -v w="$width" '
		bad == "" && ($0 !~ /^[0-9]+$/ || (w > 0 && length($0) != w)) { bad = "line " NR " is \"" $0 "\"" }
		bad == "" && $0 + 0 > NR { bad = "gap: line " NR " holds " $0 + 0 }
		bad == "" && $0 + 0 < NR { bad = "repeat: line " NR " holds " $0 + 0 }
		END { if (NR == 0) bad = "file is empty"; print bad }' "$file" 2>&1)
	[[ -z $bad ]] || fail "$(basename "$file"): $bad" "$file"
}

scenario_without_pagemap_scan() {
	STASIS_NO_PAGEMAP_SCAN=1 scenario_restore "$@"
	grep -q "reading pagemap instead" "$T_LOG/dump.log" ||
		fail "the dump did not take the pagemap path" "$T_LOG/dump.log"
}

# Plain run without the tool: proves the program itself passes.
scenario_plain() {
	local prog=$1
	start_prog "$prog" "$BIN/$prog"
	wait_ready "$prog" "$PROG_PID" || return
	kill -USR1 "$PROG_PID"
	wait_child "$PROG_PID"
	check_output "$prog"
	[[ $CHILD_RC == 0 ]] || fail "$prog exited $CHILD_RC" "$T_LOG/$prog.err"
	postcheck "$prog"
}

# (a) dump -> foreground restore -> SIGUSR1 -> PASS, restore exits 0.
scenario_restore() {
	local prog=$1 exe pid
	exe=$(readlink -f "$BIN/$prog")
	start_prog "$prog" "$BIN/$prog"
	pid=$PROG_PID
	wait_ready "$prog" "$pid" || return
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	restore_foreground restore "$T_WORK/img"
	wait_restored restore "$pid" "$exe" 1 "$RESTORE_PID" || return
	sleep 0.2
	kill -USR1 "$pid"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output "$prog"
	[[ $CHILD_RC == 0 ]] || fail "foreground restore exited $CHILD_RC (the program's status)" "$T_LOG/restore.log"
	postcheck "$prog"
}

# (b) dump -> restore -d -> dump -> restore -d -> SIGUSR1 -> PASS.
scenario_chain() {
	local prog=$1 exe pid
	exe=$(readlink -f "$BIN/$prog")
	start_prog "$prog" "$BIN/$prog"
	pid=$PROG_PID
	wait_ready "$prog" "$pid" || return
	dump dump1 "$pid" "$T_WORK/img1" || return
	expect_killed "$pid" || return
	restore_detached restore1 "$T_WORK/img1" "$pid" "$exe" 1 || return
	sleep 0.2
	dump dump2 "$pid" "$T_WORK/img2" || return
	expect_killed "$pid" || return
	restore_detached restore2 "$T_WORK/img2" "$pid" "$exe" 1 || return
	sleep 0.2
	kill -USR1 "$pid"
	# Not our child any more: poll until it is gone.
	wait_gone "$pid" || fail "restored $prog did not exit after SIGUSR1" "$T_LOG/$prog.out"
	check_output "$prog"
	postcheck "$prog"
}

# (c) two --leave-running dumps; the original must not notice.
scenario_leave_running() {
	local prog=$1 pid i
	start_prog "$prog" "$BIN/$prog"
	pid=$PROG_PID
	wait_ready "$prog" "$pid" || return
	for i in 1 2; do
		dump "dump$i" "$pid" "$T_WORK/img$i" --leave-running || return
		wait_until 5 runs_freely "$pid" ||
			fail "after --leave-running dump $i: pid $pid state $(proc_state "$pid"), TracerPid $(status_field "$pid" TracerPid)" \
				"$T_LOG/dump$i.log" || return
	done
	kill -USR1 "$pid"
	wait_child "$pid"
	check_output "$prog"
	[[ $CHILD_RC == 0 ]] || fail "$prog exited $CHILD_RC after --leave-running dumps" "$T_LOG/$prog.err"
	postcheck "$prog"
}

# ---------------------------------------------------------------------------
# Real programs
# ---------------------------------------------------------------------------

line_count() { wc -l < "$1" 2>/dev/null || echo 0; }
has_lines() { (($(line_count "$1") >= $2)); }
exe_is() { [[ $(readlink "/proc/$1/exe") == "$2" ]]; }

# Shared part of the counter tests: counter program already started as
# PROG_PID writing to T_LOG/LABEL.out; dump, restore (-d or foreground),
# let it count on, kill it, check the sequence.
counter_dump_restore() {
	local label=$1 mode=$2 out=$T_LOG/$1.out pid=$PROG_PID exe n
	wait_until "$TMO" has_lines "$out" 5 || {
		fail "$label produced no output" "$T_LOG/$label.err"
		return
	}
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	n=$(line_count "$out")
	if [[ $mode == detached ]]; then
		restore_detached restore "$T_WORK/img" "$pid" "$exe" 0 || return
	else
		restore_foreground restore "$T_WORK/img"
		wait_restored restore "$pid" "$exe" 0 "$RESTORE_PID" || return
	fi
	wait_until "$TMO" has_lines "$out" $((n + 10)) ||
		fail "$label did not continue after restore ($(line_count "$out") lines, $n at dump)" "$out"
	kill_leftovers
	check_sequence "$out"
}

test_python_counter() {
	start_prog counter "$PYTHON" -u -c '
import time
i = 0
while True:
    i += 1
    print(i, flush=True)
    time.sleep(0.05)'
	counter_dump_restore counter foreground
}

test_sh_counter() {
	start_prog counter sh -c 'i=0; while :; do i=$((i+1)); echo $i; sleep 0.05; done'
	counter_dump_restore counter detached
}

# Images exchanged with a real CRIU (only when CRIU_BIN names one; not run,
# and not counted, otherwise): a python counter dumped by stasis is
# restored by CRIU, dumped again by CRIU and restored by stasis; the count
# goes on with no gap or repeat through both.
test_criu_interop() {
	local out=$T_LOG/counter.out pid n rc
	start_prog counter "$PYTHON" -u -c '
import time
i = 0
while True:
    i += 1
    print(i, flush=True)
    time.sleep(0.05)'
	pid=$PROG_PID
	wait_until "$TMO" has_lines "$out" 5 || { fail "counter produced no output"; return; }
	dump dump "$pid" "$T_WORK/img1" || return
	wait_gone "$pid" "$TMO" || { fail "pid $pid alive after the dump"; return; }
	timeout -k 5 "$TMO" "$CRIU_BIN" restore -D "$T_WORK/img1" -d -o "$T_LOG/criu-restore.log" -v4 \
		> "$T_LOG/criu-restore.out" 2>&1 < /dev/null
	rc=$?
	[[ $rc == 0 ]] || { fail "CRIU could not restore stasis's images (rc $rc)" "$T_LOG/criu-restore.log"; return; }
	n=$(line_count "$out")
	wait_until "$TMO" has_lines "$out" $((n + 5)) || { fail "the counter did not go on under CRIU's restore"; return; }
	mkdir -p "$T_WORK/img2"
	timeout -k 5 "$TMO" "$CRIU_BIN" dump -t "$pid" -D "$T_WORK/img2" -o "$T_LOG/criu-dump.log" -v4 \
		> "$T_LOG/criu-dump.out" 2>&1 < /dev/null
	rc=$?
	[[ $rc == 0 ]] || { fail "CRIU could not dump the restored counter (rc $rc)" "$T_LOG/criu-dump.log"; return; }
	wait_gone "$pid" "$TMO" || { fail "pid $pid alive after CRIU's dump"; return; }
	rc=$(stasis restore restore -D "$T_WORK/img2" -d)
	[[ $rc == 0 ]] || { fail "stasis could not restore CRIU's images (rc $rc): $(error_message restore)" "$T_LOG/restore.log"; return; }
	n=$(line_count "$out")
	wait_until "$TMO" has_lines "$out" $((n + 5)) || { fail "the counter did not go on under stasis's restore"; return; }
	kill -9 "$pid"
	wait_gone "$pid" "$TMO"
	check_sequence "$out"
}

# Bytes in flight in a pipe: a python program fills a pipe it holds both
# ends of (76800 bytes, in a pipe enlarged to 128 KiB) and, after the
# restore, reads them back and checks them byte for byte, and the size.
test_pipe_data() {
	local pid exe
	start_prog pipedata "$PYTHON" -c '
import os, signal, time, fcntl
r, w = os.pipe()
data = bytes(range(256)) * 300
fcntl.fcntl(w, 1031, 131072)        # F_SETPIPE_SZ
os.write(w, data)
got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
print("READY", flush=True)
while not got:
    time.sleep(0.05)
back = b""
while len(back) < len(data):
    back += os.read(r, 65536)
size = fcntl.fcntl(w, 1032)         # F_GETPIPE_SZ
print("PASS" if back == data and size >= 131072 else "FAIL: %d bytes back, size %d" % (len(back), size), flush=True)'
	pid=$PROG_PID
	wait_ready pipedata "$pid" || return
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	restore_foreground restore "$T_WORK/img"
	wait_restored restore "$pid" "$exe" 1 "$RESTORE_PID" || return
	kill -USR1 "$pid"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output pipedata
}

# The pipeline case: `sh -c 'producer | consumer > out'` dumped mid-stream
# and restored; out goes on with no gap and no repeat.
test_pipeline() {
	start_prog pipeline sh -c "i=0; while :; do i=\$((i+1)); echo \$i; sleep 0.01; done | cat > $T_FILES/out"
	local pid=$PROG_PID exe n
	wait_until "$TMO" has_lines "$T_FILES/out" 20 || { fail "the pipeline produced nothing"; return; }
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	n=$(line_count "$T_FILES/out")
	restore_detached restore "$T_WORK/img" "$pid" "$exe" 0 || return
	wait_until "$TMO" has_lines "$T_FILES/out" $((n + 30)) ||
		fail "the pipeline did not go on after restore ($(line_count "$T_FILES/out") lines, $n at dump)"
	kill_leftovers
	check_sequence "$T_FILES/out"
}

# --inherit-fd with a pipe from a wrapper: a counter writes into a pipe
# that a `cat` outside the tree reads; it is restored with its stdout
# replaced by our end of a new pipe, read by a new `cat`. The two outputs
# joined go on with no gap and no repeat.
test_inherit_fd_pipe() {
	local out1=$T_FILES/out1 out2=$T_FILES/out2 pid ino w n exe
	local sub
	(setsid sh -c 'i=0; while :; do i=$((i+1)); echo $i; sleep 0.02; done' < /dev/null | cat > "$out1") &
	sub=$!
	T_PIDS+=("$sub")
	wait_until "$TMO" has_lines "$out1" 10 || { fail "the counter wrote nothing into its pipe"; return; }
	# ours (a child of the subshell), and not a fork of it about to exec sleep
	pid=$(pgrep -o -P "$sub" -f "sleep 0.02; done$") || { fail "can't find the counter"; return; }
	T_PIDS+=("$pid")
	ino=$(readlink "/proc/$pid/fd/1")
	[[ $ino == pipe:* ]] || { fail "the counter's stdout is $ino, not a pipe"; return; }
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" || return
	wait_gone "$pid" "$TMO" || { fail "the counter survived its dump"; return; }
	n=$(line_count "$out1")
	exec {w}> >(cat > "$out2")
	rc=$(stasis restore restore -D "$T_WORK/img" -d --inherit-fd "fd[$w]:$ino")
	exec {w}>&-
	[[ $rc == 0 ]] || { fail "restore with --inherit-fd failed: $(error_message restore)" "$T_LOG/restore.log"; return; }
	wait_until "$TMO" has_lines "$out2" 10 || { fail "nothing came through the inherited pipe" "$T_LOG/restore.log"; return; }
	kill -9 "$pid"
	wait_gone "$pid" "$TMO"
	sleep 0.2
	cat "$out1" "$out2" > "$T_LOG/both.out"
	check_sequence "$T_LOG/both.out"
	note "$n lines before the dump, $(line_count "$out2") through the inherited pipe"
}

# A job of an interactive terminal: a counter printing on the terminal
# `script` gives it.  Without --shell-job the dump must refuse (naming the
# option) and leave it running; with it, the job is dumped, then restored
# with --shell-job from a second `script` session, where it must go on
# counting on the new terminal, with no gap and no repeat overall.
test_shell_job() {
	local out1=$T_LOG/tty1.out out2=$T_LOG/tty2.out spid rpid pid n rc
	script -qfec 'i=0; while :; do i=$((i+1)); echo $i; sleep 0.05; done' /dev/null \
		> "$out1" 2>&1 < /dev/null &
	spid=$!
	T_PIDS+=("$spid")
	wait_until "$TMO" has_lines "$out1" 5 || { fail "the job printed nothing on its terminal" "$out1"; return; }
	pid=$(child_of "$spid") || { fail "script has no child"; return; }
	T_PIDS+=("$pid")
	[[ $(readlink "/proc/$pid/fd/1") == /dev/pts/* ]] || { fail "the job's stdout is not a terminal"; return; }

	rc=$(stasis noshell dump -t "$pid" -D "$T_WORK/img0")
	[[ $rc != 0 ]] || fail "dump of a terminal job without --shell-job succeeded"
	grep -q -- "--shell-job" "$T_LOG/noshell.stderr" || fail "the refusal does not name --shell-job" "$T_LOG/noshell.stderr"
	runs_freely "$pid" || { fail "the job is not running after the refused dump"; return; }

	dump dump "$pid" "$T_WORK/img" --shell-job || return
	wait_gone "$pid" "$TMO" || { fail "the job survived its dump"; return; }
	n=$(line_count "$out1")
	script -qfec "$STASIS restore -D $T_WORK/img --shell-job -o $T_LOG/restore.log -v4" /dev/null \
		> "$out2" 2>&1 < /dev/null &
	rpid=$!
	T_PIDS+=("$rpid")
	wait_until "$TMO" has_lines "$out2" 10 || { fail "the restored job printed nothing on the new terminal" "$T_LOG/restore.log"; return; }
	[[ $(readlink "/proc/$pid/fd/1") == /dev/pts/* ]] || fail "the restored job's stdout is not a terminal"
	kill -9 "$pid"
	wait_gone "$pid" "$TMO"
	cat "$out1" "$out2" | tr -d '\r' | grep -v '^$' > "$T_LOG/both.out"
	check_sequence "$T_LOG/both.out"
	note "$n lines before the dump, $(line_count "$out2") after"
}

# `sleep 1000`: restored with the same pid, still sleeping; when killed the
# foreground restore exits 128+9.
test_sleep() {
	local pid
	start_prog sleep sleep 1000
	pid=$PROG_PID
	wait_until "$TMO" exe_is "$pid" /usr/bin/sleep || fail "sleep did not start" || return
	sleep 0.1
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	restore_foreground restore "$T_WORK/img"
	wait_restored restore "$pid" /usr/bin/sleep 0 "$RESTORE_PID" || return
	sleep 0.5
	[[ $(stat_field "$pid" 1) == S ]] || fail "restored sleep is in state $(proc_state "$pid"), expected S"
	[[ $(cat "/proc/$pid/comm" 2>/dev/null) == sleep ]] || fail "restored pid $pid is not 'sleep'"
	kill -9 "$pid"
	wait_child "$RESTORE_PID"
	[[ $CHILD_RC == 137 ]] || fail "foreground restore exited $CHILD_RC after the process was killed by SIGKILL, expected 137" \
		"$T_LOG/restore.log"
}

# A two-process tree (sh and its sleep child); the exit status of the
# restored root (7) must come out of the foreground restore.
test_exit_code() {
	local pid child exe
	start_prog tree sh -c 'sleep 1000; exit 7'
	pid=$PROG_PID
	wait_until "$TMO" child_of "$pid" > /dev/null || fail "sh did not start its child" || return
	child=$(child_of "$pid")
	wait_until "$TMO" exe_is "$child" /usr/bin/sleep || fail "child did not exec sleep" || return
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	restore_foreground restore "$T_WORK/img"
	wait_restored restore "$pid" "$exe" 0 "$RESTORE_PID" || return
	wait_until "$TMO" runs_freely "$child" || fail "child pid $child not restored" || return
	[[ $(stat_field "$child" 2) == "$pid" ]] || fail "restored $child has parent $(stat_field "$child" 2), expected $pid"
	kill -9 "$child"
	wait_child "$RESTORE_PID"
	[[ $CHILD_RC == 7 ]] || fail "foreground restore exited $CHILD_RC, expected the root's exit status 7" "$T_LOG/restore.log"
}

child_of() {
	local c
	c=$(cat "/proc/$1/task/$1/children" 2>/dev/null) || return 1
	set -- $c
	[[ -n ${1:-} ]] && echo "$1"
}

# ---------------------------------------------------------------------------
# Process trees
# ---------------------------------------------------------------------------

# tree_members PID: PID and all its descendants (pids as we see them),
# each parent before its children.
tree_members() {
	local c
	[[ -d /proc/$1 ]] || return 0
	echo "$1"
	for c in $(cat /proc/$1/task/*/children 2>/dev/null); do
		tree_members "$c"
	done
}

# ns_field FILE KEY: the last number of the "KEY:" line of a status file,
# i.e. the value in the innermost pid namespace (NSpid, NSpgid, NSsid).
ns_field() { awk -v k="$2:" '$1 == k { print $NF; exit }' "$1" 2>/dev/null; }

# The pid of PID as its own pid namespace sees it.
ns_pid() { ns_field "/proc/$1/status" NSpid; }

# tree_signature ROOT: one line per process of the tree, as the tree's own
# pid namespace sees it, sorted by pid:
#   PID ppid=PPID pgid=G sid=S state=X comm=NAME tids=T1,T2,...
# The root's ppid is "-" (a detached restore re-parents it).  The state is
# Z, T or t as such, anything else (running, sleeping) "r".  A restore must
# reproduce this exactly; a --leave-running dump must not change it.
tree_signature() {
	local root=$1 p st pp comm tids
	for p in $(tree_members "$root"); do
		st=$(proc_state "$p") || continue
		case $st in Z | T | t) ;; *) st=r ;; esac
		if [[ $p == "$root" ]]; then
			pp=-
		else
			pp=$(ns_pid "$(status_field "$p" PPid)")
		fi
		comm=$(tr ' ' _ < "/proc/$p/comm" 2>/dev/null)
		tids=$(awk '$1 == "NSpid:" { print $NF }' /proc/$p/task/*/status 2>/dev/null | sort -n | paste -sd, -)
		echo "$(ns_pid "$p") ppid=$pp pgid=$(ns_field "/proc/$p/status" NSpgid)" \
			"sid=$(ns_field "/proc/$p/status" NSsid) state=$st comm=$comm tids=$tids"
	done | sort -n
}

tree_is() { [[ $(tree_signature "$1") == "$2" ]]; }

# expect_tree TAG ROOT SIGNATURE: within 5 s the tree under ROOT must look
# exactly like SIGNATURE (see tree_signature).  The difference goes to
# T_LOG/TAG.tree-diff.
expect_tree() {
	local tag=$1 root=$2 want=$3 got first
	wait_until 5 tree_is "$root" "$want" && return 0
	got=$(tree_signature "$root")
	diff -u <(echo "$want") <(echo "$got") > "$T_LOG/$tag.tree-diff"
	first="$(grep -m1 '^-[0-9]' "$T_LOG/$tag.tree-diff") / $(grep -m1 '^+[0-9]' "$T_LOG/$tag.tree-diff")"
	fail "$tag: the tree differs from the dumped one (want / got): $first" "$T_LOG/$tag.tree-diff"
}

# Add every process of the tree under ROOT to what cleanup kills.
track_tree() {
	local p
	for p in $(tree_members "$1"); do
		T_PIDS+=("$p")
	done
}

# tree_start LABEL CMD...: start a tree program and wait for READY.  Sets
# TREE_ROOT, TREE_EXE, TREE_PIDS (every process of the tree) and TREE_SIG.
tree_start() {
	local label=$1
	shift
	start_prog "$label" "$@"
	TREE_ROOT=$PROG_PID
	wait_ready "$label" "$TREE_ROOT" || return
	tree_snapshot "$TREE_ROOT"
}

tree_snapshot() {
	TREE_EXE=$(readlink "/proc/$1/exe")
	mapfile -t TREE_PIDS < <(tree_members "$1")
	T_PIDS+=("${TREE_PIDS[@]}")
	TREE_SIG=$(tree_signature "$1")
	echo "$TREE_SIG" > "$T_LOG/tree.txt"
	note "tree under $1: ${#TREE_PIDS[@]} processes (T_LOG/tree.txt)"
}

# After a dump without --leave-running: every process of the tree is gone,
# and no pid of it is held any more, not even by a zombie (the restore
# needs them free).
tree_gone() {
	local p
	for p in "$@"; do [[ -e /proc/$p ]] && return 1; done
	return 0
}
live_pids() {
	local p
	for p in "$@"; do alive "$p" && echo "$p"; done
}
no_live_pids() { [[ -z $(live_pids "$@") ]]; }

expect_tree_killed() {
	wait_until "$TMO" no_live_pids "${TREE_PIDS[@]}" || {
		fail "processes $(live_pids "${TREE_PIDS[@]}" | tr '\n' ' ')of the tree still alive after a dump without --leave-running"
		return 1
	}
	wait "$TREE_ROOT" 2>/dev/null
	wait_until 5 tree_gone "${TREE_PIDS[@]}" || {
		fail "pids of the dumped tree still held (zombies?) 5 s after the dump"
		return 1
	}
}

# Checks that the runner makes from outside, by program (PHASE "ready":
# after READY, before any dump; "restored": after the last restore,
# before SIGUSR1).
tree_hook() {
	local phase=$1 label=$2 root=$3
	case $label in
	stopped) stopped_hook "$phase" "$root" ;;
	esac
}

# stopped: the child S is stopped (every thread in state T) at READY and
# after each restore; then it gets SIGCONT and must run on.
stopped_pid() {
	local p
	for p in $(tree_members "$1"); do
		[[ $(proc_state "$p") == T ]] && echo "$p" && return 0
	done
	return 1
}
all_threads_in() {
	local t st
	for t in /proc/$1/task/*; do
		st=$(awk '{ s = $0; sub(/.*\) /, "", s); split(s, f, " "); print f[1] }' "$t/stat" 2>/dev/null)
		# shellcheck disable=SC2053 # $2 is a pattern
		[[ $st == $2 ]] || return 1
	done
}
stopped_hook() {
	local phase=$1 root=$2 s
	s=$(stopped_pid "$root") || {
		fail "$phase: no process of the tree is stopped (states: $(for p in $(tree_members "$root"); do echo -n "$p:$(proc_state "$p") "; done))"
		return 1
	}
	wait_until 2 all_threads_in "$s" T ||
		fail "$phase: not every thread of the stopped process $s is in state T" || return
	[[ $phase == restored ]] || return 0
	kill -CONT "$s"
	wait_until 5 all_threads_in "$s" '[RSD]' ||
		fail "stopped process $s did not run on after SIGCONT (state $(proc_state "$s"))" || return
	note "sent SIGCONT to $s, it runs"
}

# The tree programs: LABEL [ARGS].  Every process of the tree must end
# with the root (no helper left behind).
tree_finished() {
	wait_until 5 tree_gone "${TREE_PIDS[@]}" ||
		fail "processes of the tree left after the root exited: $(for p in "${TREE_PIDS[@]}"; do [[ -e /proc/$p ]] && echo -n "$p ($(proc_state "$p")) "; done)"
}

tree_plain() {
	local label=$1
	shift
	tree_start "$label" "$BIN/$label" "$@" || return
	tree_hook ready "$label" "$TREE_ROOT" || return
	tree_hook restored "$label" "$TREE_ROOT" || return
	kill -USR1 "$TREE_ROOT"
	wait_child "$TREE_ROOT"
	check_output "$label"
	[[ $CHILD_RC == 0 ]] || fail "$label exited $CHILD_RC" "$T_LOG/$label.out"
	tree_finished
}

# dump -> foreground restore: same tree (pids, parents, groups, sessions,
# states, threads) -> SIGUSR1 -> PASS, and restore exits 0.
tree_restore() {
	local label=$1
	shift
	tree_start "$label" "$BIN/$label" "$@" || return
	tree_hook ready "$label" "$TREE_ROOT" || return
	dump dump "$TREE_ROOT" "$T_WORK/img" || return
	expect_tree_killed || return
	restore_foreground restore "$T_WORK/img"
	wait_restored restore "$TREE_ROOT" "$TREE_EXE" 1 "$RESTORE_PID" || {
		not_running "$RESTORE_PID" && failed_restore_leftovers
		return 1
	}
	# a different tree is reported, but the program still gets to run
	# its own checks (their FAIL lines are in LABEL.out)
	expect_tree restore "$TREE_ROOT" "$TREE_SIG"
	tree_hook restored "$label" "$TREE_ROOT" || return
	kill -USR1 "$TREE_ROOT"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output "$label"
	[[ $CHILD_RC == 0 ]] || fail "foreground restore exited $CHILD_RC (the root's status)" "$T_LOG/$label.out"
	tree_finished
}

# A restore that failed must not leave any process of the tree behind:
# add those that are still there after 5 s to the failure reason.
failed_restore_leftovers() {
	wait_until 5 tree_gone "${TREE_PIDS[@]}" && return 0
	T_FAIL+="; and it left processes behind: $(existing_pids "${TREE_PIDS[@]}")"
	note "the failed restore left processes behind: $(existing_pids "${TREE_PIDS[@]}")"
}

# Three rounds of dump -> restore -d, then SIGUSR1 -> PASS.
tree_chain() {
	local label=$1 i rc
	shift
	tree_start "$label" "$BIN/$label" "$@" || return
	for i in 1 2 3; do
		dump "dump$i" "$TREE_ROOT" "$T_WORK/img$i" || return
		expect_tree_killed || return
		rc=$(stasis "restore$i" restore -D "$T_WORK/img$i" -d --pidfile "$T_WORK/restore$i.pid")
		if [[ $rc != 0 ]]; then
			fail "restore$i: stasis restore -d exited $(rc_text "$rc"): $(error_message "restore$i")" "$T_LOG/restore$i.log"
			failed_restore_leftovers
			return 1
		fi
		wait_restored "restore$i" "$TREE_ROOT" "$TREE_EXE" 1 || return
		expect_tree "restore$i" "$TREE_ROOT" "$TREE_SIG"
		sleep 0.2
	done
	kill -USR1 "$TREE_ROOT"
	wait_gone "$TREE_ROOT" || fail "restored $label did not exit after SIGUSR1" "$T_LOG/$label.out"
	check_output "$label"
	tree_finished
}

# Two --leave-running dumps: the tree must be exactly as before, running.
tree_leave_running() {
	local label=$1 i
	shift
	tree_start "$label" "$BIN/$label" "$@" || return
	for i in 1 2; do
		dump "dump$i" "$TREE_ROOT" "$T_WORK/img$i" --leave-running || return
		expect_tree "after-dump$i" "$TREE_ROOT" "$TREE_SIG" || return
	done
	kill -USR1 "$TREE_ROOT"
	wait_child "$TREE_ROOT"
	check_output "$label"
	[[ $CHILD_RC == 0 ]] || fail "$label exited $CHILD_RC after --leave-running dumps" "$T_LOG/$label.out"
	tree_finished
}

# A process forking children in a tight loop: three --leave-running dumps
# (each must succeed, or fail cleanly and leave the process running), then
# a dump that kills it (up to three tries), a restore, and the loop must
# go on (SIGUSR2 marks its round counter before the dump and twice after
# the restore; the program checks they grow).
test_forkloop() {
	local pid i rc ok=0 msgs=
	start_prog forkloop "$BIN/forkloop"
	pid=$PROG_PID
	wait_ready forkloop "$pid" || return
	kill -USR2 "$pid"
	for i in 1 2 3; do
		rc=$(stasis "dumpR$i" dump -t "$pid" -D "$T_WORK/imgR$i" --leave-running)
		case $rc in
		0) decode_images "$T_WORK/imgR$i" "dumpR$i" ;;
		124 | 137) fail "dumpR$i: dump --leave-running hung" "$T_LOG/dumpR$i.log" || return ;;
		*)
			[[ -n $(error_message "dumpR$i") ]] || fail "dumpR$i failed (rc $rc) without a message" "$T_LOG/dumpR$i.log"
			msgs+="dumpR$i: $(error_message "dumpR$i"); "
			;;
		esac
		note "dumpR$i: rc $rc"
		wait_until 5 runs_freely "$pid" ||
			fail "dumpR$i (rc $rc): the process is left in state $(proc_state "$pid"), TracerPid $(status_field "$pid" TracerPid)" \
				"$T_LOG/dumpR$i.log" || return
	done
	kill -USR2 "$pid"
	for i in 1 2 3; do
		rc=$(stasis "dump$i" dump -t "$pid" -D "$T_WORK/img$i")
		note "dump$i: rc $rc"
		if [[ $rc == 0 ]]; then
			ok=$i
			break
		fi
		[[ $rc != 124 && $rc != 137 ]] || fail "dump$i hung" "$T_LOG/dump$i.log" || return
		msgs+="dump$i: $(error_message "dump$i"); "
		wait_until 5 runs_freely "$pid" ||
			fail "dump$i failed (rc $rc) and left the process in state $(proc_state "$pid")" "$T_LOG/dump$i.log" || return
	done
	((ok)) || fail "no dump of the forking process succeeded in 3 tries: $msgs" "$T_LOG/dump3.log" || return
	[[ -z $msgs ]] || note "dumps that failed cleanly: $msgs"
	decode_images "$T_WORK/img$ok" "dump$ok"
	expect_killed "$pid" || return
	restore_foreground restore "$T_WORK/img$ok"
	wait_restored restore "$pid" "$(readlink -f "$BIN/forkloop")" 1 "$RESTORE_PID" || return
	sleep 0.3
	kill -USR2 "$pid"
	sleep 0.3
	kill -USR2 "$pid"
	kill -USR1 "$pid"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output forkloop
	[[ $CHILD_RC == 0 ]] || fail "foreground restore exited $CHILD_RC (the program's status)" "$T_LOG/forkloop.out"
}

# A shell with two background jobs and a counter loop: the jobs come back
# with their pids under the shell, and the count goes on without a gap.
test_sh_bgjobs() {
	local pid out=$T_LOG/counter.out n jobs=() p exe
	start_prog counter sh -c 'sleep 1000 & sleep 1000 & i=0; while :; do i=$((i+1)); echo $i; sleep 0.05; done'
	pid=$PROG_PID
	wait_until "$TMO" has_lines "$out" 5 || fail "the shell produced no output" "$T_LOG/counter.err" || return
	for p in $(cat /proc/$pid/task/*/children 2>/dev/null); do
		[[ $(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null) == "sleep 1000 " ]] && jobs+=("$p")
	done
	((${#jobs[@]} == 2)) || fail "expected 2 background sleeps under the shell, found ${#jobs[@]}" || return
	T_PIDS+=("${jobs[@]}")
	note "background jobs: ${jobs[*]}"
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	n=$(line_count "$out")
	restore_detached restore "$T_WORK/img" "$pid" "$exe" 0 || return
	for p in "${jobs[@]}"; do
		wait_until 5 alive "$p" || fail "background job $p not restored" || return
		[[ $(readlink "/proc/$p/exe") == /usr/bin/sleep ]] || fail "restored pid $p is $(readlink "/proc/$p/exe"), not sleep"
		[[ $(stat_field "$p" 2) == "$pid" ]] || fail "background job $p has parent $(stat_field "$p" 2), expected the shell $pid"
		[[ $(proc_state "$p") == S ]] || fail "background job $p in state $(proc_state "$p"), expected S"
	done
	wait_until "$TMO" has_lines "$out" $((n + 10)) ||
		fail "the shell did not count on after the restore ($(line_count "$out") lines, $n at the dump)" "$out"
	for p in "${jobs[@]}"; do
		alive "$p" || fail "background job $p died after the restore"
	done
	kill_leftovers
	check_sequence "$out"
}

# Python with 4 worker threads: all thread ids come back, the main thread
# counts on without a gap, and on SIGUSR1 it checks that every worker still
# makes progress, joins them and writes PASS to result.txt.
test_python_threads() {
	local pid out=$T_LOG/counter.out n tids exe
	start_prog counter "$PYTHON" -u -c '
import os, signal, threading, time
N = 4
counts = [0] * N
total = [0]
lock = threading.Lock()
stop = threading.Event()
def work(k):
    while not stop.is_set():
        with lock:
            counts[k] += 1
            total[0] += 1
        time.sleep(0.005)
threads = [threading.Thread(target=work, args=(k,)) for k in range(N)]
for t in threads:
    t.start()
check = []
signal.signal(signal.SIGUSR1, lambda s, f: check.append(1))
i = 0
while not check:
    i += 1
    print(i, flush=True)
    time.sleep(0.05)
before = list(counts)
time.sleep(0.5)
after = list(counts)
stalled = [k for k in range(N) if after[k] <= before[k]]
stop.set()
for t in threads:
    t.join(5)
alive = [t.name for t in threads if t.is_alive()]
with lock:
    consistent = sum(counts) == total[0]
ok = not stalled and not alive and consistent
with open("result.txt", "w") as f:
    f.write("PASS\n" if ok else "FAIL: stalled workers %s, not joined %s, counts consistent %s\n" % (stalled, alive, consistent))
'
	pid=$PROG_PID
	wait_until "$TMO" has_lines "$out" 5 || fail "python produced no output" "$T_LOG/counter.err" || return
	wait_until 5 task_count_is "$pid" 5 || fail "python has $(ls /proc/$pid/task | wc -l) threads, expected 5" || return
	tids=$(ls "/proc/$pid/task" | sort -n | paste -sd, -)
	exe=$(readlink "/proc/$pid/exe")
	note "python threads: $tids"
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	n=$(line_count "$out")
	restore_foreground restore "$T_WORK/img"
	wait_restored restore "$pid" "$exe" 1 "$RESTORE_PID" || return
	wait_until 5 task_list_is "$pid" "$tids" ||
		fail "thread ids after the restore: $(ls "/proc/$pid/task" | sort -n | paste -sd, -), expected $tids" || return
	wait_until "$TMO" has_lines "$out" $((n + 10)) ||
		fail "python did not count on after the restore ($(line_count "$out") lines, $n at the dump)" "$out" || return
	kill -USR1 "$pid"
	wait_child "$RESTORE_PID" $((TMO * 2))
	[[ $CHILD_RC == 0 ]] || fail "foreground restore exited $CHILD_RC (python's status)" "$T_LOG/counter.err"
	has_line "$T_FILES/result.txt" PASS ||
		fail "python: $(cat "$T_FILES/result.txt" 2>/dev/null || echo "no result.txt")" "$T_LOG/counter.err"
	check_sequence "$out"
}
task_count_is() { (($(ls "/proc/$1/task" 2>/dev/null | wc -l) == $2)); }
task_list_is() { [[ $(ls "/proc/$1/task" 2>/dev/null | sort -n | paste -sd, -) == "$2" ]]; }

# ---------------------------------------------------------------------------
# Pid namespaces
# ---------------------------------------------------------------------------

# The pid namespace of PID (an inode string).
pidns_of() { readlink "/proc/$1/ns/pid" 2>/dev/null; }

# wait_copy TAG [RESTORE_PID]: a --new-pidns restore wrote its pidfile;
# the pid there (as we see it) must run freely, catch SIGUSR1, be our
# binary, and be TREE_SIG's root pid inside its own new namespace.  Sets
# COPY_PID, and tracks the copy (and the namespace's init) for cleanup.
copy_ready() {
	local pf=$1 rpid=$2 p
	[[ -n $rpid ]] && not_running "$rpid" && return 0
	p=$(pidfile_pid "$pf")
	[[ -n $p ]] && runs_freely "$p" && catches_usr1 "$p"
}
wait_copy() {
	local tag=$1 rpid=${2:-} pf=$T_WORK/$1.pid want_pid p init
	want_pid=$(awk 'NR == 1 { print $1 }' <<< "$TREE_SIG")
	COPY_PID=
	if ! wait_until "$TMO" copy_ready "$pf" "$rpid"; then
		fail "$tag: restored root not ready after ${TMO}s (pidfile '$(pidfile_pid "$pf")')" "$T_LOG/$tag.log"
		return 1
	fi
	if [[ -n $rpid ]] && not_running "$rpid"; then
		wait_child "$rpid" 1
		fail "$tag: stasis restore exited $CHILD_RC before the tree ran: $(error_message "$tag")" "$T_LOG/$tag.log"
		return 1
	fi
	COPY_PID=$(pidfile_pid "$pf")
	T_PIDS+=("$COPY_PID")
	init=$(status_field "$COPY_PID" PPid)
	[[ $(ns_pid "$init") == 1 ]] && T_PIDS+=("$init")
	track_tree "$COPY_PID"
	note "$tag: root is pid $COPY_PID here, $(ns_pid "$COPY_PID") in $(pidns_of "$COPY_PID"); parent $init"
	[[ $(readlink "/proc/$COPY_PID/exe") == "$TREE_EXE" ]] ||
		fail "$tag: pid $COPY_PID is $(readlink "/proc/$COPY_PID/exe"), expected $TREE_EXE" || return
	[[ $(pidns_of "$COPY_PID") != "$(pidns_of $$)" ]] ||
		fail "$tag: the restored root $COPY_PID is in our pid namespace, not a new one" || return
	[[ $(ns_pid "$COPY_PID") == "$want_pid" ]] ||
		fail "$tag: the restored root is pid $(ns_pid "$COPY_PID") in its namespace, expected $want_pid" || return
	expect_tree "$tag" "$COPY_PID" "$TREE_SIG"
}

# Three copies at once: the original (dumped with --leave-running) and two
# `restore -d --new-pidns` of its image, side by side.  Each copy gets its
# own output file: after each restore the file the copy opened is renamed
# away and a copy of it put in its place for the next one.
test_pidns_clones() {
	local c p out=$T_LOG/forktree.out err=$T_LOG/forktree.err rc nss=
	tree_start forktree "$BIN/forktree" || return
	dump dump "$TREE_ROOT" "$T_WORK/img" --leave-running || return
	expect_tree after-dump "$TREE_ROOT" "$TREE_SIG" || return
	mv "$out" "$T_LOG/forktree-orig.out"
	mv "$err" "$T_LOG/forktree-orig.err"
	declare -A copy
	for c in A B; do
		cp "$T_LOG/forktree-orig.out" "$out"
		cp "$T_LOG/forktree-orig.err" "$err"
		rc=$(stasis "restore$c" restore -D "$T_WORK/img" -d --new-pidns --pidfile "$T_WORK/restore$c.pid")
		[[ $rc == 0 ]] || fail "restore$c: stasis restore -d --new-pidns exited $(rc_text "$rc"): $(error_message "restore$c")" \
			"$T_LOG/restore$c.log" || return
		wait_copy "restore$c" || return
		copy[$c]=$COPY_PID
		[[ " $nss " != *" $(pidns_of "$COPY_PID") "* ]] || fail "restore$c: copy $COPY_PID shares the pid namespace of the other copy" || return
		nss+=" $(pidns_of "$COPY_PID")"
		mv "$out" "$T_LOG/forktree-$c.out"
		mv "$err" "$T_LOG/forktree-$c.err"
	done
	note "three copies: original $TREE_ROOT, A ${copy[A]}, B ${copy[B]}"
	for p in "$TREE_ROOT" "${copy[A]}" "${copy[B]}"; do
		alive "$p" || fail "copy $p died before SIGUSR1" || return
	done
	kill -USR1 "$TREE_ROOT" "${copy[A]}" "${copy[B]}"
	wait_child "$TREE_ROOT"
	[[ $CHILD_RC == 0 ]] || fail "the original exited $CHILD_RC" "$T_LOG/forktree-orig.out"
	for c in A B; do
		wait_gone "${copy[$c]}" || fail "copy $c (${copy[$c]}) did not exit after SIGUSR1" "$T_LOG/forktree-$c.out"
	done
	for c in orig A B; do
		check_output "forktree-$c"
	done
}

# A tree that is a pid namespace of its own (its root is pid 1 there,
# started by tools/pidns_run): restore must make a new namespace for it,
# with or without --new-pidns.  MODE: foreground (no option) or new_pidns
# (-d --new-pidns).
test_pidns_own() {
	local mode=$1 helper rc
	start_prog forktree "$BIN/pidns_run" "$BIN/forktree"
	helper=$PROG_PID
	wait_ready forktree "$helper" || return
	TREE_ROOT=$(child_of "$helper") || fail "pidns_run has no child" || return
	[[ $(ns_pid "$TREE_ROOT") == 1 ]] || fail "harness: the root $TREE_ROOT is not pid 1 in its namespace" || return
	tree_snapshot "$TREE_ROOT"
	dump dump "$TREE_ROOT" "$T_WORK/img" || return
	expect_tree_killed || return
	wait_child "$helper"
	note "pidns_run exited $CHILD_RC"
	if [[ $mode == foreground ]]; then
		note "stasis restore -D img (foreground, no --new-pidns)"
		timeout -k 5 $((TMO * 3)) "$STASIS" restore -D "$T_WORK/img" -o "$T_LOG/restore.log" -v4 \
			--pidfile "$T_WORK/restore.pid" > "$T_LOG/restore.stdout" 2> "$T_LOG/restore.stderr" < /dev/null &
		RESTORE_PID=$!
		T_PGIDS+=("$RESTORE_PID")
		wait_copy restore "$RESTORE_PID" || return
	else
		rc=$(stasis restore restore -D "$T_WORK/img" -d --new-pidns --pidfile "$T_WORK/restore.pid")
		[[ $rc == 0 ]] || fail "restore: stasis restore -d --new-pidns exited $(rc_text "$rc"): $(error_message restore)" \
			"$T_LOG/restore.log" || return
		wait_copy restore || return
	fi
	kill -USR1 "$COPY_PID"
	if [[ $mode == foreground ]]; then
		wait_child "$RESTORE_PID" $((TMO * 2))
		[[ $CHILD_RC == 0 ]] || fail "foreground restore exited $CHILD_RC (the root's status)" "$T_LOG/forktree.out"
	else
		wait_gone "$COPY_PID" || fail "restored root $COPY_PID did not exit after SIGUSR1" "$T_LOG/forktree.out"
	fi
	check_output forktree
}

# ---------------------------------------------------------------------------
# Failure tests
# ---------------------------------------------------------------------------

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

# Kill the dumper with SIGKILL DELAY seconds into dumping a 512 MiB process:
# the target must carry on unharmed, the partial image must not restore.
test_kill_dumper() {
	local delay=$1 pid dpid
	start_prog bigmem "$BIN/bigmem"
	pid=$PROG_PID
	wait_ready bigmem "$pid" || return
	mkdir -p "$T_WORK/img"
	# In its own session so that cleanup can kill any helper it forked.
	setsid "$STASIS" dump -t "$pid" -D "$T_WORK/img" -o "$T_LOG/dump.log" -v4 \
		> "$T_LOG/dump.stdout" 2> "$T_LOG/dump.stderr" < /dev/null &
	dpid=$!
	T_PIDS+=("$dpid")
	T_SIDS+=("$dpid")
	sleep "$delay"
	if not_running "$dpid"; then
		wait "$dpid"
		fail "dump finished (rc $?) within ${delay}s, before it could be killed" "$T_LOG/dump.log"
		return
	fi
	kill -9 "$dpid"
	wait "$dpid" 2>/dev/null
	note "killed dumper $dpid after ${delay}s"
	wait_until 5 runs_freely "$pid" ||
		fail "target left in state $(proc_state "$pid") (TracerPid $(status_field "$pid" TracerPid)) by the killed dumper" \
			"$T_LOG/dump.log" || return
	sleep 0.3
	runs_freely "$pid" || fail "target died or stopped after the dumper was killed" || return
	kill -USR1 "$pid"
	wait_child "$pid"
	check_output bigmem
	[[ $CHILD_RC == 0 ]] || fail "target exited $CHILD_RC after the dumper was killed" "$T_LOG/bigmem.err"
	expect_restore_fails restore "$T_WORK/img" "$pid"
}

# Runs a dump that kills itself at POINT[:N] (STASIS_TEST_DIE_AT, a test
# hook: src/infect/infect.h) and checks it did die there.
dump_killed_at() {
	local point=$1 pid=$2 rc
	mkdir -p "$T_WORK/img"
	rc=$(STASIS_TEST_DIE_AT=$point stasis killed dump -t "$pid" -D "$T_WORK/img")
	[[ $rc == 137 ]] && grep -q "test hook: killed at" "$T_LOG/killed.log" ||
		fail "the dump was not killed at $point (exit $rc): fewer calls than that?" "$T_LOG/killed.log"
}

# The last 512 bytes of a process's vdso, in hex: the padding where
# careful calls put their trampoline (src/infect/x86.c).
vdso_tail() {
	"$PYTHON" - "$1" <<'EOF'
import sys
pid = sys.argv[1]
for line in open(f"/proc/{pid}/maps"):
    if line.rstrip().endswith("[vdso]"):
        end = int(line.split("-")[1].split()[0], 16)
with open(f"/proc/{pid}/mem", "rb") as mem:
    mem.seek(end - 512)
    print(mem.read(512).hex())
EOF
}

# After the dumper's death: untraced, not stopped, and still so a moment later.
goes_on() {
	local pid=$1 label=$2
	wait_until 5 runs_freely "$pid" ||
		fail "target left in state $(proc_state "$pid") (TracerPid $(status_field "$pid" TracerPid)) by the killed dumper" \
			"$T_LOG/killed.log" || return
	sleep 0.3
	runs_freely "$pid" || fail "target died or stopped after the dumper was killed" "$T_LOG/$label.err"
}

# The dumper killed at POINT[:N], inside the windows of an injected
# syscall: crashcheck (its registers, vector registers, direction flag,
# blocked masks, a sleep and a read in progress, memory) must go on
# unharmed, with not one mapping more; a second dump must work on what
# the killed one left; the killed one's directory must not restore.
test_kill_dumper_at() {
	local point=$1 pid maps vdso
	start_prog crashcheck "$BIN/crashcheck"
	pid=$PROG_PID
	wait_ready crashcheck "$pid" || return
	maps=$(grep -v '\[stack\]' "/proc/$pid/maps")
	vdso=$(vdso_tail "$pid")
	dump_killed_at "$point" "$pid" || return
	goes_on "$pid" crashcheck || return
	[[ $(grep -v '\[stack\]' "/proc/$pid/maps") == "$maps" ]] ||
		fail "the killed dump left the target's mappings changed" || return
	dump again "$pid" "$T_WORK/again" --leave-running || return
	[[ $(vdso_tail "$pid") == "$vdso" ]] ||
		fail "the end of the vdso (where the trampoline goes) differs after a dump" || return
	kill -USR1 "$pid"
	wait_child "$pid"
	check_output crashcheck
	[[ $CHILD_RC == 0 ]] || fail "crashcheck exited $CHILD_RC after the dumper was killed" "$T_LOG/crashcheck.out"
	expect_restore_fails restore "$T_WORK/img" ""
}

# The same with a python counter: it must count on, no number lost or twice.
test_kill_dumper_counter() {
	local point=$1 pid n out=$T_LOG/counter.out
	start_prog counter "$PYTHON" -u -c '
import time
i = 0
while True:
    i += 1
    print(i, flush=True)
    time.sleep(0.02)'
	pid=$PROG_PID
	wait_until "$TMO" has_lines "$out" 5 || fail "counter produced no output" "$T_LOG/counter.err" || return
	dump_killed_at "$point" "$pid" || return
	goes_on "$pid" counter || return
	n=$(line_count "$out")
	wait_until "$TMO" has_lines "$out" $((n + 10)) || fail "counter stopped counting" "$out" || return
	kill -9 "$pid"
	check_sequence "$out"
}

# Dump mem_anon (killing it), damage one image, restore must fail cleanly.
test_corrupt() {
	local what=$1 pid f size
	start_prog mem_anon "$BIN/mem_anon"
	pid=$PROG_PID
	wait_ready mem_anon "$pid" || return
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	case $what in
	core)
		f=$T_WORK/img/core-$pid.img
		[[ -f $f ]] || fail "no core-$pid.img in the dump" || return
		size=$(stat -c %s "$f")
		truncate -s $((size / 2)) "$f"
		note "truncated $f from $size to $((size / 2)) bytes"
		;;
	mm)
		f=$T_WORK/img/mm-$pid.img
		[[ -f $f ]] || fail "no mm-$pid.img in the dump" || return
		flip_bytes "$f"
		;;
	inventory)
		rm -f "$T_WORK/img/inventory.img"
		;;
	esac
	expect_restore_fails restore "$T_WORK/img" "$pid"
}

# Invert the first entry's size field (bytes 8-11, after the two magics)
# and 16 bytes in the middle: no reader can take this for a valid image.
flip_bytes() {
	"$PYTHON" - "$1" << 'EOF'
import sys
path = sys.argv[1]
data = bytearray(open(path, 'rb').read())
mid = len(data) // 2
for i in list(range(8, 12)) + list(range(mid, min(mid + 16, len(data)))):
    data[i] ^= 0xFF
open(path, 'wb').write(bytes(data))
EOF
	note "flipped bytes 8-11 and 16 from the middle of $1"
	if "$CRIT" decode -i "$1" > /dev/null 2>&1; then
		note "warning: crit still decodes the damaged $1"
	fi
}

# Restoring while the original still holds the pid must fail with "busy"
# or "in use" and leave the original alone.
test_pid_busy() {
	local pid rc msg
	start_prog mem_anon "$BIN/mem_anon"
	pid=$PROG_PID
	wait_ready mem_anon "$pid" || return
	dump dump "$pid" "$T_WORK/img" --leave-running || return
	rc=$(stasis restore restore -D "$T_WORK/img")
	[[ $rc != 0 ]] || fail "restore succeeded although pid $pid is in use" "$T_LOG/restore.log"
	[[ $rc != 124 && $rc != 137 ]] || fail "restore hung" "$T_LOG/restore.log"
	msg="$(cat "$T_LOG/restore.stderr" 2>/dev/null) $(grep -i -m3 'busy\|in use' "$T_LOG/restore.log" 2>/dev/null)"
	grep -qi 'busy\|in use' <<< "$msg" ||
		fail "error message does not say 'busy' or 'in use': $(error_message restore)" "$T_LOG/restore.log"
	runs_freely "$pid" || fail "original in state $(proc_state "$pid") after the refused restore" || return
	kill -USR1 "$pid"
	wait_child "$pid"
	check_output mem_anon
	[[ $CHILD_RC == 0 ]] || fail "original exited $CHILD_RC" "$T_LOG/mem_anon.err"
}

test_no_such_pid() {
	local pid rc
	sleep 0 &
	pid=$!
	wait "$pid"
	alive "$pid" && fail "harness: pid $pid reused already" && return
	mkdir -p "$T_WORK/img"
	rc=$(stasis dump dump -t "$pid" -D "$T_WORK/img")
	[[ $rc != 0 ]] || fail "dump of non-existent pid $pid succeeded" "$T_LOG/dump.log"
	[[ -n $(error_message dump) ]] || fail "no error message for a non-existent pid" "$T_LOG/dump.log"
	[[ ! -e $T_WORK/img/inventory.img ]] || fail "dump of non-existent pid left an inventory.img"
}

test_missing_dir() {
	expect_restore_fails restore "$T_WORK/does-not-exist" ""
}

test_empty_dir() {
	mkdir -p "$T_WORK/empty"
	expect_restore_fails restore "$T_WORK/empty" ""
}

# A tree in which one process (child 2 of treeexit) exits about when the
# dump starts, DELAY ms after its setup.  Either outcome is fine, but it
# must be clean: a dump that succeeds restores to a tree that passes; a
# dump that fails says why and leaves every other process running
# (not stopped, not traced) and passing.
exit_attempt() {
	local n=$1 delay=$2 label=treeexit-$1 root rc exiter what p live
	start_prog "$label" "$BIN/treeexit" "$delay" 8
	root=$PROG_PID
	wait_ready "$label" "$root" || return
	rc=$(stasis "dump$n" dump -t "$root" -D "$T_WORK/img$n")
	exiter=$(awk '$1 == "INFO" && $2 == "exiter" { print $3 }' "$T_LOG/$label.out")
	case $rc in
	0)
		if [[ -f $T_WORK/img$n/core-$exiter.img ]]; then
			what="dumped it as $(crit decode -i "$T_WORK/img$n/core-$exiter.img" 2>/dev/null |
				"$PYTHON" -c 'import json,sys; print({1:"alive",2:"zombie",3:"stopped"}.get(json.load(sys.stdin)["entries"][0]["tc"]["task_state"],"?"))' 2>/dev/null)"
		else
			what="dumped the tree without it"
		fi
		note "attempt $n (delay ${delay} ms): the dump succeeded and $what"
		decode_images "$T_WORK/img$n" "dump$n"
		expect_killed "$root" || return
		restore_foreground "restore$n" "$T_WORK/img$n"
		wait_restored "restore$n" "$root" "$(readlink -f "$BIN/treeexit")" 1 "$RESTORE_PID" || return
		kill -USR1 "$root"
		wait_child "$RESTORE_PID" $((TMO * 2))
		check_output "$label"
		[[ $CHILD_RC == 0 ]] || fail "attempt $n: the dump succeeded ($what) but the restored root exited $CHILD_RC" \
			"$T_LOG/$label.out"
		;;
	124 | 137)
		fail "attempt $n (delay ${delay} ms): dump hung" "$T_LOG/dump$n.log"
		;;
	*)
		note "attempt $n (delay ${delay} ms): the dump failed (rc $rc): $(error_message "dump$n")"
		[[ -n $(error_message "dump$n") ]] || fail "attempt $n: the dump failed (rc $rc) without saying why" "$T_LOG/dump$n.log"
		[[ ! -f $T_WORK/img$n/inventory.img ]] || fail "attempt $n: the failed dump left an inventory.img"
		live=0
		for p in $(tree_members "$root"); do
			[[ $p == "$exiter" ]] && continue
			wait_until 5 runs_freely "$p" ||
				fail "attempt $n: after the failed dump pid $p is in state $(proc_state "$p"), TracerPid $(status_field "$p" TracerPid)" \
					"$T_LOG/dump$n.log" || return
			live=$((live + 1))
		done
		((live == 4)) || fail "attempt $n: $live processes of the tree left running after the failed dump, expected 4 (root and 3 children)" || return
		kill -USR1 "$root"
		wait_child "$root"
		check_output "$label"
		[[ $CHILD_RC == 0 ]] || fail "attempt $n: after the failed dump the tree exited $CHILD_RC" "$T_LOG/$label.out"
		;;
	esac
}

test_tree_exit_during_dump() {
	local d n=0
	for d in 0 5 15 40 100; do
		n=$((n + 1))
		exit_attempt "$n" "$d" || return
		kill_leftovers
	done
}

# the pids of the tree that still exist, with their state and command
existing_pids() {
	local p
	for p in "$@"; do
		[[ -e /proc/$p ]] && echo -n "$p ($(proc_state "$p"), $(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | cut -c1-40)) "
	done
}

# Dump forktree, damage the image of a grandchild, and restore: the
# restore must fail (not hang), say why, and leave no process with any
# pid of the tree behind.  Then the undamaged image must still restore
# (nothing of the failed attempt is in the way).
#   core:   core-G.img cut in half (the restore fails while reading images)
#   rlimit: core-G.img decodes, but RLIMIT_CORE has cur > max: fails in the
#           middle, once the tree has been forked and partly rebuilt
#   pages:  G's pages-N.img cut in half: fails in the middle, while G's
#           memory is read in
test_tree_bad_image() {
	local what=$1 g p pp f id rc img=$T_WORK/img
	tree_start forktree "$BIN/forktree" || return
	for p in "${TREE_PIDS[@]}"; do
		pp=$(status_field "$p" PPid)
		[[ $p != "$TREE_ROOT" && $pp != "$TREE_ROOT" && $(status_field "$pp" PPid) == "$TREE_ROOT" ]] && g=$p && break
	done
	[[ -n ${g:-} ]] || fail "harness: no grandchild in the tree" || return
	dump dump "$TREE_ROOT" "$img" || return
	expect_tree_killed || return
	cp -a "$img" "$T_WORK/img.good"
	case $what in
	core)
		f=$img/core-$g.img
		truncate -s $(($(stat -c %s "$f") / 2)) "$f"
		note "cut $f in half"
		;;
	rlimit)
		f=$img/core-$g.img
		"$PYTHON" - "$f" << 'PY' || fail "harness: could not edit $f" || return
import sys
import pycriu
path = sys.argv[1]
img = pycriu.images.load(open(path, 'rb'))
lim = img['entries'][0]['tc']['rlimits']['rlimits'][4]   # RLIMIT_CORE
lim['cur'], lim['max'] = 100, 10
pycriu.images.dump(img, open(path, 'wb'))
PY
		note "set RLIMIT_CORE of $g to cur 100 > max 10 in $f"
		;;
	pages)
		id=$(crit decode -i "$img/pagemap-$g.img" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["entries"][0]["pages_id"])')
		f=$img/pages-$id.img
		[[ -s $f ]] || fail "harness: $f is missing or empty" || return
		truncate -s $(($(stat -c %s "$f") / 2)) "$f"
		note "cut $f ($g's pages) in half"
		;;
	esac
	rc=$(stasis restore restore -D "$img")
	[[ $rc != 0 ]] || fail "restore with a damaged image of grandchild $g succeeded" "$T_LOG/restore.log" || return
	[[ $rc != 124 && $rc != 137 ]] || fail "restore hung (killed after ${TMO}s)" "$T_LOG/restore.log" || return
	[[ -n $(error_message restore) ]] || fail "no error message on stderr or in the log" "$T_LOG/restore.log"
	note "restore failed: $(error_message restore)"
	wait_until 5 tree_gone "${TREE_PIDS[@]}" ||
		fail "the failed restore left processes behind: $(existing_pids "${TREE_PIDS[@]}")" "$T_LOG/restore.log" || return
	[[ $what == core ]] && return
	restore_detached restore-good "$T_WORK/img.good" "$TREE_ROOT" "$TREE_EXE" 1 || return
	expect_tree restore-good "$TREE_ROOT" "$TREE_SIG" || return
	kill -USR1 "$TREE_ROOT"
	wait_gone "$TREE_ROOT" || fail "restored forktree did not exit after SIGUSR1" "$T_LOG/forktree.out"
	check_output forktree
}

# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

# Programs under test must not inherit descriptors from whoever started
# us (CI pipes and the like): the tool may refuse to dump unknown fd types,
# and the files test compares the fd table.  Keeps bash's own script fd.
close_inherited_fds() {
	local link fd script
	script=$(readlink -f "${BASH_SOURCE[0]}")
	for link in /proc/$$/fd/*; do
		fd=${link##*/}
		((fd > 2)) || continue
		[[ $(readlink "$link") == "$script" ]] && continue
		eval "exec $fd>&-" 2>/dev/null
	done
}

preflight() {
	local p missing=()
	[[ $(id -u) == 0 ]] || missing+=("root privileges")
	[[ -x $STASIS ]] || missing+=("$STASIS (run make)")
	for p in "${PROGS[@]}" "${TREE_PROGS[@]}" bigmem subreaper pidns_run; do
		[[ -x $BIN/$p ]] || missing+=("$BIN/$p (run make -C tests)")
	done
	command -v "$CRIT" > /dev/null || missing+=("crit (apt-get install criu)")
	[[ -x $PYTHON ]] || PYTHON=$(command -v python3)
	((${#missing[@]} == 0)) && return 0
	printf 'run.sh: missing %s\n' "${missing[@]}" >&2
	echo "0 passed, 1 failed"
	exit 1
}

# Test cases kept in files of their own (one per kind of fd, ...):
# tests/cases/NAME.sh defines its test functions and ends with its
# run_test lines; it may use every helper of this file.
run_cases() {
	local f
	for f in "$ROOT"/tests/cases/*.sh; do
		[[ -e $f ]] || continue
		# shellcheck source=/dev/null
		source "$f"
	done
}

main() {
	local prog d
	if ((!LIST_ONLY)); then
		preflight
		# Orphans of `restore -d` must be reaped (see tools/subreaper.c).
		if [[ -z ${STASIS_TEST_SUBREAPER:-} ]]; then
			export STASIS_TEST_SUBREAPER=1
			exec "$BIN/subreaper" "$BASH" "${BASH_SOURCE[0]}" "$@"
		fi
		mkdir -p "$LOGROOT"
		mapfile -t RAW_IMAGES < <(raw_image_globs)
		close_inherited_fds
		trap on_interrupt INT TERM
	fi
	CURRENT_TEST=0

	for prog in "${PROGS[@]}"; do
		run_test "$prog.plain" scenario_plain "$prog"
		run_test "$prog.restore" scenario_restore "$prog"
		run_test "$prog.chain" scenario_chain "$prog"
		run_test "$prog.leave_running" scenario_leave_running "$prog"
	done

	# Kernels before 6.7 (Debian 12's 6.1) have no PAGEMAP_SCAN: the dump
	# must find pages by reading /proc/PID/pagemap instead.
	for prog in mem_anon mem_file; do
		run_test "$prog.pagemap_fallback" scenario_without_pagemap_scan "$prog"
	done

	run_test real.python_counter test_python_counter
	run_test real.sh_counter test_sh_counter
	run_test real.sleep test_sleep
	run_test real.exit_code test_exit_code
	run_test real.shell_job test_shell_job
	run_test files.pipe_data test_pipe_data
	run_test real.pipeline test_pipeline
	run_test files.inherit_fd_pipe test_inherit_fd_pipe
	run_cases
	if [[ -n ${CRIU_BIN:-} ]]; then
		run_test interop.criu test_criu_interop
	else
		echo "(interop.criu not run: set CRIU_BIN to a CRIU binary to exchange images with it)"
	fi

	# process trees and threads
	for prog in forktree threads; do
		run_test "tree.$prog.plain" tree_plain "$prog"
		run_test "tree.$prog.restore" tree_restore "$prog"
		run_test "tree.$prog.chain3" tree_chain "$prog"
		run_test "tree.$prog.leave_running" tree_leave_running "$prog"
	done
	run_test tree.threads_pending.plain tree_plain threads pending
	run_test tree.threads_pending.restore tree_restore threads pending
	for prog in manythreads zombies sessions stopped; do
		run_test "tree.$prog.plain" tree_plain "$prog"
		run_test "tree.$prog.restore" tree_restore "$prog"
	done
	run_test tree.stopped_threads.plain tree_plain stopped threads
	run_test tree.stopped_threads.restore tree_restore stopped threads
	run_test tree.forkloop.plain scenario_plain forkloop
	run_test tree.forkloop.dump test_forkloop
	run_test real.sh_bgjobs test_sh_bgjobs
	run_test real.python_threads test_python_threads

	# pid namespaces
	run_test pidns.clones test_pidns_clones
	run_test pidns.own_ns.restore test_pidns_own foreground
	run_test pidns.own_ns.new_pidns test_pidns_own new_pidns

	for d in 0.02 0.05 0.15; do
		run_test "fail.kill_dumper_${d}s" test_kill_dumper "$d"
	done
	# Points of an injected syscall (src/infect): the way back written,
	# registers set, signals blocked, on the way to / at the syscall's
	# entry and exit stops, half way out (mask back, then registers), and
	# once the scratch area is taken; :N is the Nth time (the 1st call, a
	# later one, a thread switch).
	for p in scratch-taken way-back-written way-back-written:3 set-regs set-regs:2 \
		set-regs:17 mask-blocked resumed resumed:9 syscall-entry syscall-entry:21 \
		resumed-exit resumed-exit:14 syscall-exit syscall-exit:24 park-mask park-mask:2 \
		park-regs park-regs:3; do
		run_test "fail.kill_dumper_at.${p/:/_}" test_kill_dumper_at "$p"
	done
	for p in set-regs:3 syscall-entry:5 syscall-exit:7; do
		run_test "fail.kill_dumper_counter.${p/:/_}" test_kill_dumper_counter "$p"
	done
	run_test fail.truncated_core test_corrupt core
	run_test fail.damaged_mm test_corrupt mm
	run_test fail.no_inventory test_corrupt inventory
	run_test fail.pid_busy test_pid_busy
	run_test fail.no_such_pid test_no_such_pid
	run_test fail.missing_dir test_missing_dir
	run_test fail.empty_dir test_empty_dir
	run_test fail.tree_exit_during_dump test_tree_exit_during_dump
	run_test fail.tree_corrupt_core test_tree_bad_image core
	run_test fail.tree_bad_rlimit test_tree_bad_image rlimit
	run_test fail.tree_truncated_pages test_tree_bad_image pages

	((LIST_ONLY)) && exit 0
	((N_SKIP == 0)) || echo "$N_SKIP skipped: ${SKIPPED_NAMES[*]}"
	((N_FAIL == 0)) || echo "failed: ${FAILED_NAMES[*]}"
	echo "$N_PASS passed, $N_FAIL failed"
	((N_FAIL == 0))
}

# exit at once: bash reads a script as it runs it, and must not read on
# into a file that was edited while the suite ran
main "$@"
exit
