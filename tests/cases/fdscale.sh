# Trees with many fds (restore/pool_plan.c): a file only one process
# uses is opened by that process, not in the root's pool, so a process
# whose fds and files together pass the open files limit restores. The
# restores run under a low limit (prlimit, soft and hard) so that a few
# hundred fds are enough; the programs set the same limit themselves (it
# comes back with them). Program: tests/progs/fdscale.py. Sourced by
# tests/run.sh.

# fdscale_restore TAG MODE N LIMIT: dump fdscale.py, restore it under
# LIMIT open files, check every fd.
fdscale_restore() {
	local tag=$1 mode=$2 n=$3 lim=$4 pid exe
	start_prog "$tag" "$PYTHON" "$ROOT/tests/progs/fdscale.py" "$mode" "$n" "$lim"
	pid=$PROG_PID
	wait_ready "$tag" "$pid" || return
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	fdscale_limited "$lim"
	STASIS=$T_WORK/stasis-limited restore_foreground restore "$T_WORK/img"
	wait_restored restore "$pid" "$exe" 1 "$RESTORE_PID" || return
	kill -USR1 "$pid"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output "$tag"
}

# $T_WORK/stasis-limited: stasis under LIMIT open files (it raises its
# soft limit to the hard one: both are lowered).
fdscale_limited() {
	printf '#!/bin/sh\nexec prlimit --nofile=%s:%s %q "$@"\n' "$1" "$1" "$STASIS" > "$T_WORK/stasis-limited"
	chmod +x "$T_WORK/stasis-limited"
}

# One process of 400 fds (plus python's) under a limit of 600: with every
# file in the pool the restore needed its highest fd plus its 350 files.
test_fdscale_one() {
	fdscale_restore fdscale one 400 600
}

# Two middle processes each open a file, a pipe and a socketpair, then
# fork two children that use them: one open file description each, as
# before (an offset moved by one child is seen by the other, a byte or
# message sent by one is read by the other), opened by the middle (their
# common ancestor) at pool numbers the other middle's take too, while
# each of the six processes has 250 fds of its own under a limit of 450.
test_fdscale_tree() {
	fdscale_restore fdscale tree 250 450 || return
	# the log's plan: "files: O opened by their processes, P in the pool (S slots, ...)"
	local plan
	plan=$(grep -o 'files: [0-9]* opened by their processes, [0-9]* in the pool ([0-9]* slots' "$T_LOG/restore.log")
	[[ $plan =~ ([0-9]+)\ in\ the\ pool\ \(([0-9]+)\ slots ]] || { fail "no plan of the files in restore.log"; return; }
	((BASH_REMATCH[2] < BASH_REMATCH[1])) ||
		fail "the middles' shared files took slots of their own (${BASH_REMATCH[0]})"
	# Each of the seven holds none of the pool once made (counted from
	# /proc/PID/fd at its rebuild): the children's slots closed by their
	# middle once it forked them, and by each child once it installed its
	# fds (before, every process held its branch's slots to the end).
	local left
	left=$(grep -o 'pid [0-9]*: [0-9]* pool fds left' "$T_LOG/restore.log")
	[[ $(grep -c ': 0 pool' <<<"$left") == 7 ]] ||
		fail "not each of the 7 processes closed the pool's fds: $(tr '\n' ';' <<<"$left")"
}

# What can't fit is still refused, in one line naming the need and the
# limit: the same process restored under 300 open files.
test_fdscale_refused() {
	fdscale_refused one 400 600 300
}

# fdscale_refused MODE N LIMIT LOW: fdscale.py dumped, its restore under
# LOW open files refused in one line, no process left.
fdscale_refused() {
	local mode=$1 n=$2 lim=$3 low=$4 pid rc msg
	start_prog fdscale "$PYTHON" "$ROOT/tests/progs/fdscale.py" "$mode" "$n" "$lim"
	pid=$PROG_PID
	wait_ready fdscale "$pid" || return
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	fdscale_limited "$low"
	rc=$(STASIS=$T_WORK/stasis-limited stasis restore restore -D "$T_WORK/img")
	[[ $rc != 0 && $rc != 124 && $rc != 137 ]] || { fail "restore under $low open files exited $rc"; return; }
	msg=$(error_message restore)
	[[ $msg == *"the tree needs fds up to "*", above the open files limit $low"* ]] ||
		fail "restore under $low open files said: $msg"
	wait_gone "$pid" 5 || fail "a process with pid $pid is left after the refused restore"
}

# A listener's connections are made at once, from the first of them
# opened, and kept above the pool until each is opened (pool_plan.c):
# 150 accepted (300 fds) and 18 waiting. The need counts them: the
# restore fits in 780 (it needs about 750), and is refused, in one line
# and before any process is made, under 500 (before, the need left them
# out and the restore failed halfway, moving them above the pool).
test_fdscale_listener() {
	fdscale_restore fdscale listener 150 780 || return
	grep -q 'up to 3[0-9][0-9] made together kept above it' "$T_LOG/restore.log" ||
		fail "the plan did not count the listener's connections: $(grep -o 'files: .*' "$T_LOG/restore.log")"
}

test_fdscale_listener_refused() {
	fdscale_refused listener 150 780 500
}

run_test fdscale.one test_fdscale_one
run_test fdscale.tree test_fdscale_tree
run_test fdscale.refused test_fdscale_refused
run_test fdscale.listener test_fdscale_listener
run_test fdscale.listener_refused test_fdscale_listener_refused
