# expect_refused PID WHAT REGEX: the dump of PID fails, its stderr one
# line matching REGEX, no inventory.img left, and the program runs on.
expect_refused() {
	local pid=$1 what=$2 re=$3 rc
	rc=$(stasis dump dump -t "$pid" -D "$T_WORK/img")
	[[ $rc != 0 ]] || { fail "$what was dumped"; return 1; }
	grep -qE "$re" "$T_LOG/dump.stderr" || fail "message: $(error_message dump)"
	(($(wc -l < "$T_LOG/dump.stderr") == 1)) || fail "more than one line on stderr" "$T_LOG/dump.stderr"
	[[ ! -e $T_WORK/img/inventory.img ]] || fail "the failed dump left an inventory.img"
	runs_freely "$pid" || fail "the program does not run freely after the refused dump"
}

# An fd of a kind stasis does not handle (an AF_XDP socket): the dump
# fails with one line naming the pid, the fd and what it is, and the tree
# runs on untouched.
test_unsupported_fd() {
	local pid
	start_prog xdp "$PYTHON" -c '
import socket, sys, time
try:
    s = socket.socket(44, socket.SOCK_RAW)   # AF_XDP
except OSError as e:
    print("NOXDP", e, flush=True)
    sys.exit(0)
print("READY", flush=True)
while True:
    time.sleep(0.1)'
	pid=$PROG_PID
	wait_until "$TMO" grep -qE "^(READY|NOXDP)" "$T_LOG/xdp.out"
	grep -q "^NOXDP" "$T_LOG/xdp.out" && { skip "no AF_XDP sockets here"; return; }
	wait_ready xdp "$pid" || return
	expect_refused "$pid" "an XDP socket" \
		"^Error: pid $pid: fd 3 \(socket:\[[0-9]+\]\) is an XDP raw socket, which stasis can't dump"
}

run_test files.unsupported_fd test_unsupported_fd

# A process inside vfork() sleeps in the kernel until its child execs or
# exits; no interrupt stops it. When the child does not get there (here it
# waits for a signal), the dump says so after 2 s (not after the stop
# timeout, here 30 s, and never a hang) and both processes run on.
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

# The other side: Python starting programs all the time (subprocess uses
# vfork), so a dump often finds its root inside vfork() for a moment, with
# the child on its way to exec. Every dump succeeds and the program goes on.
test_vfork_transient() {
	local pid i n rc
	start_prog spawner "$PYTHON" -u -c '
import subprocess
i = 0
print("READY", flush=True)
while True:
    subprocess.run(["/bin/true"])
    i += 1
    if i % 20 == 0:
        print(i, flush=True)'
	pid=$PROG_PID
	wait_ready spawner "$pid" || return
	for i in 1 2 3 4 5 6; do
		rc=$(stasis "dump$i" dump -t "$pid" -D "$T_WORK/img$i" -R)
		[[ $rc == 0 ]] || { fail "dump $i of a program spawning children failed: $(error_message "dump$i")" "$T_LOG/dump$i.log"; return; }
		wait_until 5 runs_freely "$pid" || { fail "the program does not run freely after dump $i"; return; }
	done
	n=$(line_count "$T_LOG/spawner.out")
	wait_until "$TMO" has_lines "$T_LOG/spawner.out" $((n + 2)) || fail "the program stopped spawning after the dumps"
}

run_test tree.vfork_transient test_vfork_transient

# An io_uring with its rings mapped (as MariaDB's InnoDB and liburing
# programs have it): refused by name, on the mapping (which comes first),
# in one line; the program runs on.
test_io_uring_mapped() {
	local pid
	start_prog uring "$PYTHON" -c '
import ctypes, mmap, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
params = ctypes.create_string_buffer(120)        # struct io_uring_params
fd = libc.syscall(425, 8, params)                # io_uring_setup(8, &params)
if fd < 0:
    print("NOURING", os.strerror(ctypes.get_errno()), flush=True)
    sys.exit(0)
ring = mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
print("READY", flush=True)
while True:
    time.sleep(0.1)'
	pid=$PROG_PID
	wait_until "$TMO" grep -qE "^(READY|NOURING)" "$T_LOG/uring.out"
	grep -q "^NOURING" "$T_LOG/uring.out" && { skip "no io_uring here: $(cat "$T_LOG/uring.out")"; return; }
	wait_ready uring "$pid" || return
	expect_refused "$pid" "an io_uring" \
		"^Error: pid $pid: [0-9a-f]+-[0-9a-f]+ is a mapping of anon_inode:\[io_uring\], which stasis can't dump"
}

run_test files.io_uring_mapped test_io_uring_mapped
