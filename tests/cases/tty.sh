# Terminals: pty pairs owned by the tree, and jobs of the user's terminal
# dumped again after a --shell-job restore.

# pty_pair's "PIDS C G" line: its session leader child and the job.
pty_pids() {
	local line
	line=$(grep -m1 '^PIDS ' "$T_LOG/$1.out") || return 1
	set -- $line
	PTY_CHILD=$2 PTY_GRAND=$3
}

pty_tree_gone() { not_alive "$PTY_CHILD" && not_alive "$PTY_GRAND"; }

# The master's holder and its other-session children must all go with the
# dump, and come back with their pids.
pty_expect_killed() {
	expect_killed "$1" || return
	wait_until "$TMO" pty_tree_gone || fail "the pty's session ($PTY_CHILD, $PTY_GRAND) survived the dump"
}

pty_expect_back() {
	alive "$PTY_CHILD" && alive "$PTY_GRAND" ||
		fail "$1: the pty's session leader $PTY_CHILD or its job $PTY_GRAND is not back" "$T_LOG/$1.log"
}

# (1) A pty pair: the root holds the master, a child session has the slave
# as its controlling terminal with a grandchild in the foreground. After
# restore the root talks to the job through the pair and checks termios,
# window size, lock, controlling terminal and foreground group.
test_pty_pair() {
	local pid exe
	start_prog pty_pair "$BIN/pty_pair"
	pid=$PROG_PID
	wait_ready pty_pair "$pid" || return
	pty_pids pty_pair || { fail "pty_pair printed no PIDS line"; return; }
	T_PIDS+=("$PTY_CHILD" "$PTY_GRAND")
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" || return
	pty_expect_killed "$pid" || return
	restore_foreground restore "$T_WORK/img"
	wait_restored restore "$pid" "$exe" 1 "$RESTORE_PID" || return
	pty_expect_back restore || return
	kill -USR1 "$pid"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output pty_pair
}

# (2) The same tree dumped and restored three times in a chain.
test_pty_chain() {
	local pid exe i
	start_prog pty_pair "$BIN/pty_pair"
	pid=$PROG_PID
	wait_ready pty_pair "$pid" || return
	pty_pids pty_pair || { fail "pty_pair printed no PIDS line"; return; }
	T_PIDS+=("$PTY_CHILD" "$PTY_GRAND")
	exe=$(readlink "/proc/$pid/exe")
	for i in 1 2 3; do
		dump "dump$i" "$pid" "$T_WORK/img$i" || return
		pty_expect_killed "$pid" || return
		restore_detached "restore$i" "$T_WORK/img$i" "$pid" "$exe" 1 || return
		pty_expect_back "restore$i" || return
		sleep 0.2
	done
	kill -USR1 "$pid"
	wait_gone "$pid" || fail "restored pty_pair did not exit after SIGUSR1" "$T_LOG/pty_pair.out"
	check_output pty_pair
}

# Two --leave-running dumps of the pty tree: it must go on exactly as
# before, bytes in flight included (the dump reads them and puts them back).
test_pty_leave_running() {
	local pid i
	start_prog pty_pair "$BIN/pty_pair"
	pid=$PROG_PID
	wait_ready pty_pair "$pid" || return
	pty_pids pty_pair || { fail "pty_pair printed no PIDS line"; return; }
	T_PIDS+=("$PTY_CHILD" "$PTY_GRAND")
	for i in 1 2; do
		dump "dump$i" "$pid" "$T_WORK/img$i" --leave-running || return
		runs_freely "$pid" && runs_freely "$PTY_CHILD" && runs_freely "$PTY_GRAND" ||
			{ fail "the tree is not running freely after --leave-running dump $i"; return; }
		grep -q "bytes queued for the master's reader saved" "$T_LOG/dump$i.log" ||
			fail "dump $i did not save the bytes in flight" "$T_LOG/dump$i.log"
	done
	kill -USR1 "$pid"
	wait_child "$pid"
	check_output pty_pair
}

# (3) A job of the user's terminal (under `script`) reading it, with
# /dev/tty open too: dumped with --shell-job, restored under a second `script`, dumped
# again from there and restored under a third; its count goes on across
# the three terminals with no gap, and /dev/tty is /dev/tty again.
test_shell_job_redump() {
	local out1=$T_LOG/tty1.out out2=$T_LOG/tty2.out out3=$T_LOG/tty3.out spid pid n1 n2 rc
	# the job waits reading its terminal between lines
	echo 'exec 3</dev/tty; i=0; while :; do i=$((i+1)); echo $i; read -t 0.05 x; done' > "$T_FILES/job.sh"
	script -qfec "bash $T_FILES/job.sh" /dev/null > "$out1" 2>&1 < /dev/null &
	spid=$!
	T_PIDS+=("$spid")
	wait_until "$TMO" has_lines "$out1" 5 || { fail "the job printed nothing on its terminal" "$out1"; return; }
	pid=$(child_of "$spid") || { fail "script has no child"; return; }
	T_PIDS+=("$pid")
	[[ $(readlink "/proc/$pid/fd/3") == /dev/tty ]] || { fail "the job has no /dev/tty on fd 3"; return; }

	rc=$(stasis noshell dump -t "$pid" -D "$T_WORK/img0")
	[[ $rc != 0 ]] || fail "dump of a terminal job without --shell-job succeeded"
	grep -q -- "pid $pid: fd [0-9]* is a terminal (/dev/.*--shell-job" "$T_LOG/noshell.stderr" ||
		fail "the refusal does not name the pid, fd, terminal and --shell-job" "$T_LOG/noshell.stderr"
	runs_freely "$pid" || { fail "the job is not running after the refused dump"; return; }

	dump dump1 "$pid" "$T_WORK/img1" --shell-job || return
	wait_gone "$pid" "$TMO" || { fail "the job survived its dump"; return; }
	n1=$(line_count "$out1")
	script -qfec "$STASIS restore -D $T_WORK/img1 --shell-job -o $T_LOG/restore1.log -v4" /dev/null \
		> "$out2" 2>&1 < /dev/null &
	T_PIDS+=($!)
	wait_until "$TMO" has_lines "$out2" 10 || { fail "the restored job printed nothing on the second terminal" "$T_LOG/restore1.log"; return; }
	[[ $(readlink "/proc/$pid/fd/3") == /dev/tty ]] || fail "after restore 1, fd 3 is $(readlink "/proc/$pid/fd/3"), not /dev/tty"

	dump dump2 "$pid" "$T_WORK/img2" --shell-job || return
	wait_gone "$pid" "$TMO" || { fail "the restored job survived its second dump"; return; }
	n2=$(line_count "$out2")
	script -qfec "$STASIS restore -D $T_WORK/img2 --shell-job -o $T_LOG/restore2.log -v4" /dev/null \
		> "$out3" 2>&1 < /dev/null &
	T_PIDS+=($!)
	wait_until "$TMO" has_lines "$out3" 10 || { fail "the job restored twice printed nothing on the third terminal" "$T_LOG/restore2.log"; return; }
	[[ $(readlink "/proc/$pid/fd/1") == /dev/pts/* ]] || fail "the job's stdout is not a terminal after restore 2"
	kill -9 "$pid"
	wait_gone "$pid" "$TMO"
	cat "$out1" "$out2" "$out3" | tr -d '\r' | grep -v '^$' > "$T_LOG/all.out"
	check_sequence "$T_LOG/all.out"
	note "$n1 lines on terminal 1, $n2 on terminal 2, $(line_count "$out3") on terminal 3"
}

# pty_pair as a job of the user's terminal: --shell-job for the user's
# terminal, the tree's own pair restored as ever (its session leader is
# below the root, which stays in stasis's session).
test_pty_shell_job() {
	local out1=$T_LOG/tty1.out out2=$T_LOG/tty2.out spid pid
	script -qfec "$BIN/pty_pair" /dev/null > "$out1" 2>&1 < /dev/null &
	spid=$!
	T_PIDS+=("$spid")
	wait_until "$TMO" has_line_cr "$out1" READY || { fail "pty_pair never printed READY on its terminal" "$out1"; return; }
	pid=$(child_of "$spid") || { fail "script has no child"; return; }
	PTY_CHILD=$(tr -d '\r' < "$out1" | awk '/^PIDS/ { print $2 }')
	PTY_GRAND=$(tr -d '\r' < "$out1" | awk '/^PIDS/ { print $3 }')
	T_PIDS+=("$pid" "$PTY_CHILD" "$PTY_GRAND")
	dump dump "$pid" "$T_WORK/img" --shell-job || return
	wait_gone "$pid" "$TMO" && wait_until "$TMO" pty_tree_gone || { fail "the tree survived its dump"; return; }
	script -qfec "$STASIS restore -D $T_WORK/img --shell-job -o $T_LOG/restore.log -v4" /dev/null \
		> "$out2" 2>&1 < /dev/null &
	T_PIDS+=($!)
	wait_until "$TMO" catches_usr1 "$pid" || { fail "pty_pair was not restored" "$T_LOG/restore.log"; return; }
	pty_expect_back restore || return
	sleep 0.2
	kill -USR1 "$pid"
	wait_until "$TMO" has_line_cr "$out2" PASS || fail "pty_pair: $(tr -d '\r' < "$out2" | grep -m1 FAIL || echo 'no PASS after restore')" "$out2"
}

# A process's group, and its terminal's foreground group.
pgid_of() { stat_field "$1" 3; }
tpgid_of() { stat_field "$1" 6; }

# A job of the user's terminal that leads its own group (below `sh -c`):
# a --shell-job restore under a second terminal gives it its group back
# and the terminal's foreground (as CRIU), and kill(0, sig) from it
# reaches only its group, not the restoring stasis (job_pgrp.c).
test_shell_job_pgrp() {
	local out1=$T_LOG/tty1.out out2=$T_LOG/tty2.out spid pid rc
	script -qfec "sh -c '$BIN/job_pgrp; exit \$?'" /dev/null > "$out1" 2>&1 < /dev/null &
	spid=$!
	T_PIDS+=("$spid")
	wait_until "$TMO" has_line_cr "$out1" READY || { fail "job_pgrp never printed READY on its terminal" "$out1"; return; }
	pid=$(tr -d '\r' < "$out1" | awk '/^PGRP/ { print $2 }')
	T_PIDS+=("$pid")
	[[ $(pgid_of "$pid") == "$pid" ]] || { fail "harness: job_pgrp $pid does not lead its group"; return; }
	dump dump "$pid" "$T_WORK/img" --shell-job || return
	wait_gone "$pid" "$TMO" || { fail "the job survived its dump"; return; }
	script -qfec "$STASIS restore -D $T_WORK/img --shell-job -o $T_LOG/restore.log -v4" /dev/null \
		> "$out2" 2>&1 < /dev/null &
	spid=$!
	T_PIDS+=("$spid")
	wait_until "$TMO" catches_usr1 "$pid" || { fail "job_pgrp was not restored" "$T_LOG/restore.log"; return; }
	[[ $(pgid_of "$pid") == "$pid" ]] || fail "the restored job is in group $(pgid_of "$pid"), not its own $pid"
	[[ $(tpgid_of "$pid") == "$pid" ]] || fail "the terminal's foreground is group $(tpgid_of "$pid"), not the job's $pid"
	kill -USR1 "$pid"
	wait_until "$TMO" has_line_cr "$out2" PASS || fail "job_pgrp: $(tr -d '\r' < "$out2" | grep -m1 FAIL || echo 'no PASS after restore')" "$out2"
	wait_child "$spid" "$TMO"
	[[ $CHILD_RC == 0 ]] || fail "the restore under script exited $CHILD_RC (a signal to the job's group reached it?)" "$T_LOG/restore.log"
}

has_line_cr() { tr -d '\r' < "$1" 2>/dev/null | grep -qx -- "$2"; }

# --external tty[RDEV:DEV] at dump, --inherit-fd fd[N]:tty[RDEV:DEV] at
# restore: a wrapper (a second `script`) hands its own terminal to a job
# of another terminal, restored without --shell-job.
test_tty_inherit_fd() {
	local out1=$T_LOG/tty1.out out2=$T_LOG/tty2.out spid pid name rc
	script -qfec 'i=0; while :; do i=$((i+1)); echo $i; sleep 0.05; done' /dev/null > "$out1" 2>&1 < /dev/null &
	spid=$!
	T_PIDS+=("$spid")
	wait_until "$TMO" has_lines "$out1" 5 || { fail "the job printed nothing on its terminal" "$out1"; return; }
	pid=$(child_of "$spid") || { fail "script has no child"; return; }
	T_PIDS+=("$pid")
	name=$("$PYTHON" -c 'import os, sys; s = os.stat(sys.argv[1]); print("tty[%x:%x]" % (s.st_rdev, s.st_dev))' "/proc/$pid/fd/1")
	dump dump "$pid" "$T_WORK/img" --external "$name" || return
	wait_gone "$pid" "$TMO" || { fail "the job survived its dump"; return; }
	rc=$(stasis noinherit restore -D "$T_WORK/img")
	[[ $rc != 0 ]] || { fail "restore of a foreign terminal without --inherit-fd or --shell-job succeeded"; return; }
	grep -qF -- "--inherit-fd fd[N]:$name" "$T_LOG/noinherit.stderr" ||
		fail "the refusal does not name --inherit-fd fd[N]:$name" "$T_LOG/noinherit.stderr"
	wait_gone "$pid" "$TMO"
	script -qfec "$STASIS restore -D $T_WORK/img --inherit-fd 'fd[1]:$name' -o $T_LOG/restore.log -v4" /dev/null \
		> "$out2" 2>&1 < /dev/null &
	T_PIDS+=($!)
	wait_until "$TMO" has_lines "$out2" 10 || { fail "the restored job printed nothing on the wrapper's terminal" "$T_LOG/restore.log"; return; }
	kill -9 "$pid"
	wait_gone "$pid" "$TMO"
	cat "$out1" "$out2" | tr -d '\r' | grep -v '^$' > "$T_LOG/both.out"
	check_sequence "$T_LOG/both.out"
}

run_test tty.pty_pair test_pty_pair
run_test tty.pty_chain test_pty_chain
run_test tty.pty_leave_running test_pty_leave_running
run_test tty.pty_shell_job test_pty_shell_job
run_test tty.shell_job_redump test_shell_job_redump
run_test tty.inherit_fd test_tty_inherit_fd
run_test tty.shell_job_pgrp test_shell_job_pgrp

# A pty of a devpts instance of its own (mounted with newinstance, not
# /dev/pts): restore would make it a pty of /dev/pts, so the dump is
# refused naming the fd, and the program runs on.
test_tty_devpts_instance() {
	local pid rc dp=$T_WORK/devpts
	mkdir -p "$dp"
	mount -t devpts -o newinstance,ptmxmode=0666 devpts "$dp" || { skip "can't mount a devpts instance here"; return; }
	start_prog dp "$PYTHON" -c '
import fcntl, os, struct, sys, time
m = os.open(sys.argv[1] + "/ptmx", os.O_RDWR | os.O_NOCTTY)
fcntl.ioctl(m, 0x40045431, struct.pack("i", 0))   # TIOCSPTLCK: unlock
n = struct.unpack("i", fcntl.ioctl(m, 0x80045430, b"\0" * 4))[0]   # TIOCGPTN
s = os.open("%s/%d" % (sys.argv[1], n), os.O_RDWR | os.O_NOCTTY)
print("READY", flush=True)
time.sleep(1000)' "$dp"
	pid=$PROG_PID
	wait_ready dp "$pid" || { umount -l "$dp"; return; }
	rc=$(stasis dump dump -t "$pid" -D "$T_WORK/img")
	[[ $rc != 0 ]] || fail "a pty of a devpts instance was dumped"
	grep -qE "^Error: pid $pid: fd [0-9]+ \($dp/ptmx\) is a pty of another devpts instance" "$T_LOG/dump.stderr" ||
		fail "no error naming the devpts instance: $(error_message dump)"
	runs_freely "$pid" || fail "the program does not run freely after the refused dump"
	kill -9 "$pid"
	wait_gone "$pid"
	umount -l "$dp"
}

run_test tty.refused.devpts_instance test_tty_devpts_instance
