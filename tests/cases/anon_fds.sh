# eventfd, signalfd, timerfd, inotify and epoll (src/files/{eventfd,signalfd,
# timerfd,inotify,epoll}.c), with build/tests/anonfds MODES: it sets its
# fds up, and after the restore checks they still behave (see the program).

ANON_RESTORE_ARGS=()
# The program's one-shot timers must outlast the time it runs between its
# setup and its checks: 4 s here, longer where the harness waits longer
# (the 6.1 VM: a chain's dumps and restores there ran past 4 s).
export ANONFDS_TIMER_S=$((TMO > 20 ? TMO / 3 : 4))
# dump -> [pause] -> foreground restore (with ANON_RESTORE_ARGS) -> SIGUSR1 -> PASS.
# The pause makes the time spent dumped long enough for the timerfd check
# (a one-shot timer resumes with the time it had left).
anon_restore() {
	local modes=$1 pause=${2:-0} exe pid
	exe=$(readlink -f "$BIN/anonfds")
	start_prog anonfds "$BIN/anonfds" "$modes"
	pid=$PROG_PID
	wait_ready anonfds "$pid" || return
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	sleep "$pause"
	restore_foreground restore "$T_WORK/img" "${ANON_RESTORE_ARGS[@]}"
	wait_restored restore "$pid" "$exe" 1 "$RESTORE_PID" || return
	kill -USR1 "$pid"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output anonfds
	[[ $CHILD_RC == 0 ]] || fail "foreground restore exited $CHILD_RC (the program's status)" "$T_LOG/restore.log"
}

# dump -> restore -d -> dump -> restore -d -> SIGUSR1 -> PASS.
anon_chain() {
	local modes=$1 exe pid
	exe=$(readlink -f "$BIN/anonfds")
	start_prog anonfds "$BIN/anonfds" "$modes"
	pid=$PROG_PID
	wait_ready anonfds "$pid" || return
	dump dump1 "$pid" "$T_WORK/img1" || return
	expect_killed "$pid" || return
	restore_detached restore1 "$T_WORK/img1" "$pid" "$exe" 1 || return
	dump dump2 "$pid" "$T_WORK/img2" || return
	expect_killed "$pid" || return
	sleep 1
	restore_detached restore2 "$T_WORK/img2" "$pid" "$exe" 1 || return
	kill -USR1 "$pid"
	wait_gone "$pid" $((TMO * 2)) || fail "restored anonfds did not exit after SIGUSR1" "$T_LOG/anonfds.out"
	check_output anonfds
}

# --leave-running: the dump must not disturb the fds (counters, expiries
# and queued events stay unread).
anon_leave_running() {
	local modes=$1 pid
	start_prog anonfds "$BIN/anonfds" "$modes"
	pid=$PROG_PID
	wait_ready anonfds "$pid" || return
	dump dump "$pid" "$T_WORK/img" --leave-running || return
	wait_until 5 runs_freely "$pid" || { fail "pid $pid not running freely after the dump"; return; }
	kill -USR1 "$pid"
	wait_child "$pid" $((TMO * 2))
	check_output anonfds
}

# An epoll whose target is open in a child only (the process holding the
# epoll closed it): CRIU refuses it too. The dump must refuse, name the
# fd, and leave the tree running.
anon_epoll_closed_target() {
	local pid rc
	start_prog epclosed "$PYTHON" -c '
import os, select, signal, time
ep = select.epoll()
r, w = os.pipe()
ep.register(r, select.EPOLLIN)
if os.fork() == 0:
    ep.close()
    signal.pause()
os.close(r)
print("READY", flush=True)
signal.pause()'
	pid=$PROG_PID
	wait_ready epclosed "$pid" || return
	mkdir -p "$T_WORK/img"
	rc=$(stasis dump dump -t "$pid" -D "$T_WORK/img")
	[[ $rc != 0 ]] || { fail "the dump of an epoll with a closed target succeeded"; return; }
	grep -q "epoll.*closed" "$T_LOG/dump.stderr" "$T_LOG/dump.log" ||
		fail "the dump failed without saying the epoll target was closed: $(error_message dump)" "$T_LOG/dump.log"
	wait_until 5 runs_freely "$pid" || fail "pid $pid not left running after the refused dump"
}

# A file of these kinds that only its process uses is opened by that
# process (restore/pool_plan.c), not by the root into the pool: the one
# process's pool is empty (before, its signalfd, timerfds or inotify
# were there).
anon_own() {
	anon_restore "$@" || return
	grep -q 'files: [0-9]* opened by their processes, 0 in the pool' "$T_LOG/restore.log" ||
		fail "files of the one process were opened into the pool: $(grep -o 'files: .*' "$T_LOG/restore.log")"
}

for m in eventfd epoll shared shared_own; do
	run_test "anon_fds.$m" anon_restore "$m"
done
for m in signalfd inotify; do
	run_test "anon_fds.$m" anon_own "$m"
done
run_test anon_fds.timerfd anon_own timerfd 1

# Kernels before 6.5 (Debian 12's 6.1) don't show in fdinfo whether an
# eventfd is a semaphore: the dump probes the task's eventfd, and must
# leave its count and flags exactly as they were (--leave-running, then
# the dump whose images are restored). Newer kernels are made to probe
# too (STASIS_EVENTFD_PROBE).
anon_eventfd_probe() {
	local exe pid
	local -x STASIS_EVENTFD_PROBE=1
	exe=$(readlink -f "$BIN/anonfds")
	start_prog anonfds "$BIN/anonfds" evmodes
	pid=$PROG_PID
	wait_ready anonfds "$pid" || return
	dump dumpR "$pid" "$T_WORK/imgR" --leave-running || return
	wait_until 5 runs_freely "$pid" || { fail "pid $pid not running freely after the dump"; return; }
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	grep -q "eventfd mode found by a probe" "$T_LOG/dump.log" || fail "the dump did not probe the eventfds" "$T_LOG/dump.log"
	restore_foreground restore "$T_WORK/img"
	wait_restored restore "$pid" "$exe" 1 "$RESTORE_PID" || return
	kill -USR1 "$pid"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output anonfds
}
run_test anon_fds.eventfd_probe anon_eventfd_probe

# ... and refuses to probe an eventfd that a process outside the tree
# holds too (it would see the count change for a moment): the dump of
# the child fails naming the fd and the parent, and the count stays.
anon_eventfd_outside() {
	local pid rc parent
	local -x STASIS_EVENTFD_PROBE=1
	start_prog evshare "$PYTHON" -c '
import os, signal, sys
e = os.eventfd(3, os.EFD_SEMAPHORE)
pid = os.fork()
if pid == 0:
    print("READY", flush=True)
    signal.pause()
    sys.exit(0)
print("CHILD", pid, flush=True)
os.waitpid(pid, 0)'
	parent=$PROG_PID
	wait_until "$TMO" grep -q '^CHILD ' "$T_LOG/evshare.out" || { fail "harness: no child"; return; }
	pid=$(awk '$1 == "CHILD" { print $2 }' "$T_LOG/evshare.out")
	T_PIDS+=("$pid")
	mkdir -p "$T_WORK/img"
	rc=$(stasis dump dump -t "$pid" -D "$T_WORK/img")
	[[ $rc != 0 ]] || { fail "the dump of an eventfd shared with a process outside the tree succeeded"; return; }
	error_message dump | grep -q "eventfd.*pid $parent" ||
		fail "the refusal does not name the eventfd and pid $parent: $(error_message dump)" "$T_LOG/dump.log"
	wait_until 5 runs_freely "$pid" || fail "pid $pid not left running after the refused dump"
	grep -q "eventfd-count: *3$" /proc/"$pid"/fdinfo/* || fail "the eventfd's count is not 3 after the refused dump"
}
run_test anon_fds.eventfd_outside anon_eventfd_outside
run_test anon_fds.all.chain anon_chain all

# A restore made slow on purpose (8 s asleep once every process is made,
# before any is rebuilt: STASIS_TEST_SLOW_AT) must not eat the timers:
# they are armed as the tree resumes, not when their files are made. The
# program's late mode: a 5 s one-shot (watched by an epoll) not fired
# when it runs again and firing after the time it had left, a periodic
# one with its one unread expiry, no more, an absolute realtime one
# (TFD_TIMER_CANCEL_ON_SET too) with its flags, due as long after.
anon_timerfd_slow() {
	local -x STASIS_TEST_SLOW_AT=tree-forked:8000
	anon_restore late || return
	grep -q "test hook: 8000 ms at tree-forked" "$T_LOG/restore.log" ||
		fail "the restore was not slowed down (no test hook line)" "$T_LOG/restore.log"
}
run_test anon_fds.timerfd_slow anon_timerfd_slow

# The same, slowed by the user's scripts at the last stages before the
# tree runs (4 s at post-restore, 4 s at pre-resume): the timers are armed
# after them.
anon_timerfd_scripts() {
	cat > "$T_WORK/sleepy.sh" <<-'SCRIPT'
	#!/bin/sh
	case "$CRTOOLS_SCRIPT_ACTION" in post-restore|pre-resume) sleep 4 ;; esac
	exit 0
	SCRIPT
	chmod +x "$T_WORK/sleepy.sh"
	local ANON_RESTORE_ARGS=(--action-script "$T_WORK/sleepy.sh")
	anon_restore late
}
run_test anon_fds.timerfd_scripts anon_timerfd_scripts
run_test anon_fds.timerfd_flight anon_restore flight

# A timerfd whose time the kernel refuses (nanoseconds past a second, in
# an edited image) fails the restore where it is armed, in the rebuilt
# process: one line naming the timerfd and the cause, and nothing left.
anon_timerfd_bad_time() {
	local pid
	start_prog anonfds "$BIN/anonfds" late
	pid=$PROG_PID
	wait_ready anonfds "$pid" || return
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	"$STASIS" crit decode -i "$T_WORK/img/files.img" | "$PYTHON" -c '
import json, sys
img = json.load(sys.stdin)
for e in img["entries"]:
    if "tfd" in e:
        e["tfd"]["vnsec"] = 1500000000
json.dump(img, sys.stdout)' | "$STASIS" crit encode -o "$T_WORK/img/files.img.new" &&
		mv "$T_WORK/img/files.img.new" "$T_WORK/img/files.img" && forget_checksums "$T_WORK/img" ||
		{ fail "can't edit files.img"; return; }
	expect_restore_fails restore "$T_WORK/img" "$pid"
	grep -q "timerfd [0-9]* on fd [0-9]* .*Invalid argument" "$T_LOG/restore.stderr" ||
		fail "the failed restore does not name the timerfd and the cause: $(error_message restore)" "$T_LOG/restore.log"
}
run_test anon_fds.timerfd_bad_time anon_timerfd_bad_time
run_test anon_fds.all.leave_running anon_leave_running eventfd,signalfd,inotify,epoll,shared_own
run_test anon_fds.epoll_closed_target anon_epoll_closed_target

# With a real CRIU (CRIU_BIN): stasis's dump restored by CRIU, or CRIU's
# dump restored by stasis; the program must PASS either way. MODES leaves
# eventfd out: CRIU does not keep EFD_SEMAPHORE.
anon_criu() {
	local dir=$1 modes=$2 pid rc
	start_prog anonfds "$BIN/anonfds" "$modes"
	pid=$PROG_PID
	wait_ready anonfds "$pid" || return
	mkdir -p "$T_WORK/img"
	if [[ $dir == to_criu ]]; then
		dump dump "$pid" "$T_WORK/img" || return
	else
		timeout -k 5 "$TMO" "$CRIU_BIN" dump -t "$pid" -D "$T_WORK/img" -o "$T_LOG/criu-dump.log" -v4 \
			> "$T_LOG/criu-dump.out" 2>&1 < /dev/null
		rc=$?
		[[ $rc == 0 ]] || { fail "CRIU could not dump (rc $rc)" "$T_LOG/criu-dump.log"; return; }
	fi
	expect_killed "$pid" || return
	sleep 1
	if [[ $dir == to_criu ]]; then
		timeout -k 5 "$TMO" "$CRIU_BIN" restore -D "$T_WORK/img" -d -o "$T_LOG/criu-restore.log" -v4 \
			> "$T_LOG/criu-restore.out" 2>&1 < /dev/null
		rc=$?
		[[ $rc == 0 ]] || { fail "CRIU could not restore stasis's images (rc $rc)" "$T_LOG/criu-restore.log"; return; }
	else
		restore_detached restore "$T_WORK/img" "$pid" "" 1 || return
	fi
	wait_until "$TMO" catches_usr1 "$pid" || { fail "restored pid $pid does not catch SIGUSR1"; return; }
	kill -USR1 "$pid"
	wait_gone "$pid" $((TMO * 2)) || fail "restored anonfds did not exit after SIGUSR1" "$T_LOG/anonfds.out"
	check_output anonfds
}

run_test --needs criu anon_fds.interop.to_criu anon_criu to_criu signalfd,timerfd,inotify,epoll,shared
run_test --needs criu anon_fds.interop.from_criu anon_criu from_criu signalfd,timerfd,inotify,epoll,shared

