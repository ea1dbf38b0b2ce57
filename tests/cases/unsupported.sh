# An fd of a kind stasis does not handle: the dump fails with one line
# naming the pid, the fd and what it is, and the tree runs on untouched.
test_unsupported_fd() {
	local pid rc
	start_prog tcp "$PYTHON" -c '
import socket, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
print("READY", flush=True)
while True:
    time.sleep(0.1)'
	pid=$PROG_PID
	wait_ready tcp "$pid" || return
	rc=$(stasis dump dump -t "$pid" -D "$T_WORK/img")
	[[ $rc != 0 ]] || { fail "a TCP listener was dumped"; return; }
	grep -qE "^Error: pid $pid: fd 3 \(socket:\[[0-9]+\]\) is an IPv4 stream socket, which stasis can't dump" \
		"$T_LOG/dump.stderr" || fail "message: $(error_message dump)"
	(($(wc -l < "$T_LOG/dump.stderr") == 1)) || fail "more than one line on stderr" "$T_LOG/dump.stderr"
	[[ ! -e $T_WORK/img/inventory.img ]] || fail "the failed dump left an inventory.img"
	runs_freely "$pid" || fail "the program does not run freely after the refused dump"
}

run_test files.unsupported_fd test_unsupported_fd

# A process inside vfork() sleeps in the kernel until its child execs or
# exits; no interrupt stops it. The dump says so at once (not after the
# 10 s stop timeout, never a hang) and both processes run on.
test_vfork_pending() {
	local pid rc kid
	start_prog vfork_wait "$BIN/vfork_wait"
	pid=$PROG_PID
	wait_ready vfork_wait "$pid" || return
	kid=$(pgrep -P "$pid")
	[[ $(proc_state "$pid") == D ]] || { fail "pid $pid is not in vfork (state $(proc_state "$pid"))"; return; }
	rc=$(stasis dump dump -t "$pid" -D "$T_WORK/img" --timeout 30)
	[[ $rc != 0 ]] || { fail "a tree inside vfork() was dumped"; return; }
	grep -qE "^Error: pid $pid is inside vfork\(\), waiting for its child to exec or exit" \
		"$T_LOG/dump.stderr" || fail "message: $(error_message dump)"
	(($(wc -l < "$T_LOG/dump.stderr") == 1)) || fail "more than one line on stderr" "$T_LOG/dump.stderr"
	[[ $(status_field "$pid" TracerPid) == 0 && $(status_field "$kid" TracerPid) == 0 ]] ||
		fail "still traced after the refused dump"
	runs_freely "$kid" || fail "the vfork child does not run freely after the refused dump"
	kill -USR1 "$kid"
	wait_child "$pid"
	check_output vfork_wait
}

run_test tree.vfork_pending test_vfork_pending

# System V shared memory removed with IPC_RMID while attached goes away
# with the last process attached: a dump that kills the tree would lose
# it. Refused in one line naming it; the tree runs on.
test_sysv_shm_removed() {
	local pid rc
	start_prog sysv_shm "$BIN/sysv_shm" rmid
	pid=$PROG_PID
	wait_ready sysv_shm "$pid" || return
	rc=$(stasis dump dump -t "$pid" -D "$T_WORK/img")
	[[ $rc != 0 ]] || { fail "a removed System V segment was dumped"; return; }
	grep -qE "^Error: pid $pid: System V shared memory [0-9]+ at 0x[0-9a-f]+ was removed \(IPC_RMID\)" \
		"$T_LOG/dump.stderr" || fail "message: $(error_message dump)"
	(($(wc -l < "$T_LOG/dump.stderr") == 1)) || fail "more than one line on stderr" "$T_LOG/dump.stderr"
	runs_freely "$pid" || { fail "the program does not run freely after the refused dump"; return; }
	kill -USR1 "$pid"
	wait_child "$pid"
	check_output sysv_shm
}

run_test mem.sysv_shm_removed test_sysv_shm_removed
