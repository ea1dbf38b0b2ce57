# The progress line of a long dump or restore (src/util/progress.h): on a
# terminal only (here a pty of `script`), never with -v0, never where the
# log goes, never for a small dump, and always cleared: before an error
# line and at the end.
#
# STASIS_TEST_PROGRESS_AFTER_MS=0 shows it from the start: the dumps of
# a test are too quick for the half second a user waits before it shows.

# on_pty TAG CMD: CMD on the pty of `script`, what the pty showed in
# T_LOG/TAG.tty; echoes CMD's exit status.
on_pty() {
	local tag=$1
	note "on a pty: $2"
	timeout -k 5 $((TMO * 2)) script -qfec "$2" /dev/null > "$T_LOG/$tag.tty" 2>&1 < /dev/null
	local rc=$?
	note "$tag exited $rc"
	echo "$rc"
}

PROGRESS_RE='(dump|restore): ([0-9]+)/([0-9]+) processes, ([0-9]+)/([0-9]+) MiB, ([0-9]+) MiB/s, ([0-9:]+|\?) left'

# The lines drawn on the pty of TAG, one a line (the carriage returns
# that start each made newlines).
progress_lines() {
	tr '\r' '\n' < "$T_LOG/$1.tty" | sed 's/\x1b\[K//g' | grep -E "^$PROGRESS_RE\$"
}

# TAG's pty showed progress lines of WHAT, for one process and about MIB
# MiB in all, and ended with the line cleared; at least one counted
# some bytes done if DONE is 1.
check_progress() {
	local tag=$1 what=$2 mib=$3 done=$4 line n=0 some=0
	while read -r line; do
		[[ $line =~ ^$PROGRESS_RE$ ]] || continue
		n=$((n + 1))
		local w=${BASH_REMATCH[1]} td=${BASH_REMATCH[2]} tt=${BASH_REMATCH[3]}
		local d=${BASH_REMATCH[4]} t=${BASH_REMATCH[5]}
		[[ $w == "$what" && $tt == 1 && $td -le 1 ]] ||
			fail "$tag: progress line '$line' is not of a $what of one process" "$T_LOG/$tag.tty"
		((t >= mib - mib / 8 && t <= mib + mib / 8 && d <= t)) ||
			fail "$tag: progress line '$line': not about $mib MiB in all" "$T_LOG/$tag.tty"
		((d > 0)) && some=1
	done < <(progress_lines "$tag")
	((n > 0)) || { fail "$tag: no progress line on the terminal" "$T_LOG/$tag.tty"; return; }
	((done == 0 || some)) || fail "$tag: no progress line counted any byte done" "$T_LOG/$tag.tty"
	# the last thing shown: the line cleared (carriage return, erase)
	[[ $(tail -c 4 "$T_LOG/$tag.tty" | od -An -tx1 | tr -d ' ') == 0d1b5b4b ]] ||
		fail "$tag: the terminal does not end with the progress line cleared" "$T_LOG/$tag.tty"
	tty_clean "$tag"
	note "$tag: $n progress lines"
}

# What a pty showed: the last progress line is followed by its clear
# (carriage return, erase), and every error starts a line of its own
# (never right after the text of a progress line).
TTY_CHECK='
import re, sys
data = open(sys.argv[1], "rb").read()
last = data.rfind(b" MiB/s, ")
if last >= 0 and b"\r\x1b[K" not in data[last:]:
    sys.exit("the progress line is not cleared at the end")
for m in re.finditer(rb"Error:", data):
    before = data[:m.start()]
    if before and not (before.endswith(b"\n") or before.endswith(b"\r\x1b[K")):
        sys.exit("an error line does not start a line: %r" % before[-80:])
'
tty_clean() {
	local tag=$1 why
	why=$("$PYTHON" -c "$TTY_CHECK" "$T_LOG/$tag.tty" 2>&1) || fail "$tag: $why" "$T_LOG/$tag.tty"
}

no_progress() {
	local tag=$1 file=${2:-$T_LOG/$1.tty}
	! grep -q 'MiB/s' "$file" || fail "$tag: a progress line where there should be none" "$file"
}

# A dump and a restore of 1 GiB on a terminal show the line, with fields
# that make sense, and clear it; the program passes after.
test_progress_terminal() {
	local pid img=$T_WORK/img rc
	start_prog bigmem env BIGMEM_MB=1024 "$BIN/bigmem"
	pid=$PROG_PID
	wait_ready bigmem "$pid" || return
	mkdir -p "$img"
	rc=$(on_pty dump "STASIS_TEST_PROGRESS_AFTER_MS=0 $STASIS dump -t $pid -D $img -o $T_LOG/dump.log -v4")
	[[ $rc == 0 ]] || { fail "dump exited $rc" "$T_LOG/dump.log"; return; }
	check_progress dump dump 1024 1
	expect_killed "$pid" || return
	rc=$(on_pty restore "STASIS_TEST_PROGRESS_AFTER_MS=0 $STASIS restore -d -D $img -o $T_LOG/restore.log -v4 --pidfile $T_WORK/restore.pid")
	[[ $rc == 0 ]] || { fail "restore exited $rc" "$T_LOG/restore.log"; return; }
	check_progress restore restore 1024 0
	wait_restored restore "$pid" "$BIN/bigmem" 1 || return
	kill -USR1 "$pid"
	wait_gone "$pid" "$TMO"
	check_output bigmem
}

# No line when stderr is a file, with -v0 on a terminal, with the log on
# the terminal (-v4 without -o), nor for a small dump on a terminal.
test_progress_off() {
	local pid img=$T_WORK/img rc
	start_prog bigmem env BIGMEM_MB=256 "$BIN/bigmem"
	pid=$PROG_PID
	wait_ready bigmem "$pid" || return
	mkdir -p "$img"
	STASIS_TEST_PROGRESS_AFTER_MS=0 "$STASIS" dump -t "$pid" -D "$img" --leave-running \
		> "$T_LOG/file.stdout" 2> "$T_LOG/file.stderr" < /dev/null || fail "dump with stderr a file failed"
	no_progress file "$T_LOG/file.stderr"
	rc=$(on_pty v0 "STASIS_TEST_PROGRESS_AFTER_MS=0 $STASIS dump -t $pid -D $img --leave-running -v0")
	[[ $rc == 0 ]] || fail "dump -v0 exited $rc" "$T_LOG/v0.tty"
	no_progress v0
	rc=$(on_pty logtty "STASIS_TEST_PROGRESS_AFTER_MS=0 $STASIS dump -t $pid -D $img --leave-running -v4")
	[[ $rc == 0 ]] || fail "dump -v4 on the terminal exited $rc" "$T_LOG/logtty.tty"
	grep -q 'Dumping finished' "$T_LOG/logtty.tty" || fail "the log of -v4 did not go to the terminal" "$T_LOG/logtty.tty"
	no_progress logtty
	kill -USR1 "$pid"
	wait_gone "$pid" "$TMO"
	check_output bigmem
	# a small dump: none, even once the half second is past
	start_prog signals "$BIN/signals"
	pid=$PROG_PID
	wait_ready signals "$pid" || return
	rc=$(on_pty small "STASIS_TEST_PROGRESS_AFTER_MS=0 $STASIS dump -t $pid -D $img --leave-running -o $T_LOG/small.log -v4")
	[[ $rc == 0 ]] || fail "small dump exited $rc" "$T_LOG/small.log"
	no_progress small
	[[ ! -s $T_LOG/small.tty ]] || fail "a short dump printed on the terminal" "$T_LOG/small.tty"
}

# A dump that fails midway (its pages image fills a small file system):
# the error line starts a line of its own, the progress line is cleared
# before it, and the tree runs on.
test_progress_error() {
	local pid img=$T_WORK/img rc
	start_prog bigmem env BIGMEM_MB=512 "$BIN/bigmem"
	pid=$PROG_PID
	wait_ready bigmem "$pid" || return
	mkdir -p "$img"
	mount -t tmpfs -o size=96m stasis-progress "$img" || { skip "can't mount a tmpfs"; return; }
	rc=$(on_pty dump "STASIS_TEST_PROGRESS_AFTER_MS=0 $STASIS dump -t $pid -D $img -o $T_LOG/dump.log -v4")
	umount -l "$img"
	[[ $rc != 0 ]] || { fail "a dump into a full file system succeeded" "$T_LOG/dump.log"; return; }
	grep -q 'Error: .*pages image: No space left' "$T_LOG/dump.tty" || fail "no error about the pages image" "$T_LOG/dump.tty"
	# the two copy threads hit the full disk both: said once
	(($(grep -c 'Error: ' "$T_LOG/dump.tty") == 1)) || fail "not one error line: $(grep 'Error: ' "$T_LOG/dump.tty")"
	progress_lines dump > /dev/null || fail "no progress line before the error" "$T_LOG/dump.tty"
	tty_clean dump
	wait_until 5 runs_freely "$pid" || fail "the tree did not run on after the failed dump"
	kill -USR1 "$pid"
	wait_gone "$pid" "$TMO"
	check_output bigmem
}

run_test progress.terminal test_progress_terminal
run_test progress.off test_progress_off
run_test progress.error test_progress_error
