# Unix sockets (src/files/unix.c). Sourced by tests/run.sh.

# (1) socketpairs of the three types, queues both ways, across fork.
for s in plain restore chain leave_running; do
	run_test "unix.pairs.$s" "scenario_$s" unix_pairs
done

# (2) a server with path, abstract and seqpacket listeners, a child client
# with data in flight both ways and a connection waiting to be accepted.
for s in plain restore chain leave_running; do
	run_test "unix.server.$s" "scenario_$s" unix_server
done

# A restore must not remove anything but a stale socket at a bound path:
# with a regular file at srv.sock it fails naming the path and leaves the
# file alone; once the file is gone it works.
test_unix_in_the_way() {
	local pid exe rc
	exe=$(readlink -f "$BIN/unix_server")
	start_prog unix_server "$BIN/unix_server"
	pid=$PROG_PID
	wait_ready unix_server "$pid" || return
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	rm -f "$T_FILES/srv.sock"
	echo precious > "$T_FILES/srv.sock"
	rc=$(stasis blocked restore -D "$T_WORK/img" -d --pidfile "$T_WORK/blocked.pid")
	[[ $rc != 0 ]] || { fail "restore went on with a regular file at srv.sock"; return; }
	grep -q "$T_FILES/srv.sock: a regular file is in the way" "$T_LOG/blocked.stderr" ||
		fail "the failed restore does not name the path: $(error_message blocked)" "$T_LOG/blocked.log"
	[[ $(cat "$T_FILES/srv.sock") == precious ]] || fail "the regular file at srv.sock was changed"
	wait_gone "$pid" || { fail "pid $pid still alive after the failed restore"; return; }
	rm -f "$T_FILES/srv.sock"
	restore_foreground restore "$T_WORK/img"
	wait_restored restore "$pid" "$exe" 1 "$RESTORE_PID" || return
	kill -USR1 "$pid"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output unix_server
}
run_test unix.server.in_the_way test_unix_in_the_way

# (3) bound datagram sockets with queued messages from several senders.
for s in plain restore chain leave_running; do
	run_test "unix.dgram.$s" "scenario_$s" unix_dgram
done

# A helper outside the tree: ext-dg.sock (datagrams logged one a line to
# ext-dg.log) and ext-st.sock (stream echo server).
UNIX_EXT_HELPER='
import os, socket, threading
for n in ("ext-dg.sock", "ext-st.sock"):
    if os.path.exists(n):
        os.unlink(n)
d = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
d.bind("ext-dg.sock")
l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
l.bind("ext-st.sock")
l.listen(5)
def echo(c):
    while True:
        b = c.recv(100)
        if not b:
            return
        c.sendall(b)
def serve():
    while True:
        c, _ = l.accept()
        threading.Thread(target=echo, args=(c,), daemon=True).start()
threading.Thread(target=serve, daemon=True).start()
with open("ext-dg.log", "ab", 0) as f:
    print("READY", flush=True)
    while True:
        f.write(d.recv(1000) + b"\n")
'

# (4) peers outside the tree: refused without --ext-unix-sk (one line
# naming the option, the tree runs on), dumped and reconnected with it.
test_unix_ext() {
	local pid exe rc
	start_prog unix_ext_helper "$PYTHON" -c "$UNIX_EXT_HELPER"
	wait_ready unix_ext_helper "$PROG_PID" || return
	exe=$(readlink -f "$BIN/unix_ext")
	start_prog unix_ext "$BIN/unix_ext"
	pid=$PROG_PID
	wait_ready unix_ext "$pid" || return
	rc=$(stasis refused dump -t "$pid" -D "$T_WORK/img0")
	[[ $rc != 0 ]] || { fail "a dump of sockets connected outside the tree succeeded without --ext-unix-sk"; return; }
	grep -q "pid $pid: fd [0-9]*: unix socket .*--ext-unix-sk" "$T_LOG/refused.stderr" ||
		fail "the refusal does not name the pid, fd and --ext-unix-sk: $(error_message refused)" "$T_LOG/refused.log"
	wait_until 5 runs_freely "$pid" || { fail "after the refused dump pid $pid is not running freely"; return; }
	# allowed for other sockets only: refused too
	rc=$(stasis narrow dump -t "$pid" -D "$T_WORK/img1" --ext-unix-sk=1)
	[[ $rc != 0 ]] || { fail "--ext-unix-sk=1 (none of the tree's sockets) let the dump through"; return; }
	wait_until 5 runs_freely "$pid" || { fail "after the second refused dump pid $pid is not running freely"; return; }
	# allowed for the program's two sockets by inode
	local f ino args=()
	for f in 3 4; do
		ino=$(readlink "/proc/$pid/fd/$f")
		ino=${ino#socket:[}
		args+=("--ext-unix-sk=${ino%]}")
	done
	dump dump "$pid" "$T_WORK/img" "${args[@]}" || return
	expect_killed "$pid" || return
	restore_foreground restore "$T_WORK/img"
	wait_restored restore "$pid" "$exe" 1 "$RESTORE_PID" || return
	kill -USR1 "$pid"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output unix_ext
	wait_until 5 has_line "$T_FILES/ext-dg.log" after-restore ||
		fail "ext-dg.sock never got the datagram sent after restore" "$T_FILES/ext-dg.log"
}
run_test unix.ext test_unix_ext

# Holds one end of a socketpair outside the tree; the other end is fd 10 of
# unix_echo, started in a session of its own. Says the echo's pid.
UNIX_HOLDER='
import os, socket, subprocess, sys, time
a, b = socket.socketpair()
os.dup2(b.fileno(), 10, inheritable=True)
p = subprocess.Popen([sys.argv[1], "10"], pass_fds=(10,), start_new_session=True,
                     stdin=subprocess.DEVNULL, stdout=open(sys.argv[2], "ab", 0), stderr=subprocess.STDOUT)
os.close(10)
b.close()
a.sendall(b"one")
ok = a.recv(10) == b"one"
print("PID %d" % p.pid, flush=True)
print("READY" if ok else "FAIL: no echo before the dump", flush=True)
p.wait()
time.sleep(3600)
'

# Gives the restored echo a new socket (--inherit-fd fd[N]:socket:[INO])
# and talks to it through the other end.
UNIX_INHERIT='
import socket, subprocess, sys
x, y = socket.socketpair()
stasis, img, ino, pidfile, log = sys.argv[1:6]
rc = subprocess.call([stasis, "restore", "-D", img, "-d", "--pidfile", pidfile, "-o", log, "-v4",
                      "--inherit-fd", "fd[%d]:socket:[%s]" % (x.fileno(), ino)], pass_fds=(x.fileno(),))
if rc:
    sys.exit("restore exited %d" % rc)
x.close()
y.sendall(b"two")
got = y.recv(10)
y.sendall(b"quit")
sys.exit(0 if got == b"two" else "no echo after restore: %r" % got)
'

# A stream socket whose peer (a socketpair end) is outside the tree: it
# dumps with --ext-unix-sk; the restore fails naming the socket and
# --inherit-fd, as the peer has no name; with --inherit-fd the echo goes
# on on the socket given.
test_unix_inherit() {
	local pid ino rc
	start_prog unix_holder "$PYTHON" -c "$UNIX_HOLDER" "$BIN/unix_echo" "$T_LOG/unix_echo.out"
	wait_ready unix_holder "$PROG_PID" 2> /dev/null
	has_line "$T_LOG/unix_holder.out" READY || { fail "holder: $(tail -n1 "$T_LOG/unix_holder.out")" "$T_LOG/unix_holder.err"; return; }
	pid=$(awk '$1 == "PID" { print $2 }' "$T_LOG/unix_holder.out")
	T_PIDS+=("$pid")
	T_SIDS+=("$pid")
	ino=$(readlink "/proc/$pid/fd/10")
	ino=${ino#socket:[}
	ino=${ino%]}
	dump dump "$pid" "$T_WORK/img" --ext-unix-sk || return
	wait_gone "$pid" || { fail "pid $pid still alive after the dump"; return; }
	rc=$(stasis noname restore -D "$T_WORK/img" -d --pidfile "$T_WORK/noname.pid")
	[[ $rc != 0 ]] || { fail "restore connected a socket to a peer that has no name"; return; }
	grep -q "unix socket $ino .*no name.*--inherit-fd fd\[N\]:socket:\[$ino\]" "$T_LOG/noname.stderr" ||
		fail "the failed restore does not name the socket and --inherit-fd: $(error_message noname)" "$T_LOG/noname.log"
	wait_gone "$pid" || { fail "pid $pid still alive after the failed restore"; return; }
	"$PYTHON" -c "$UNIX_INHERIT" "$STASIS" "$T_WORK/img" "$ino" "$T_WORK/inherit.pid" "$T_LOG/inherit.log" \
		> "$T_LOG/inherit.out" 2>&1 || { fail "inherit: $(tail -n1 "$T_LOG/inherit.out")" "$T_LOG/inherit.log"; return; }
	wait_gone "$pid" || fail "the restored echo did not finish after quit"
	check_output unix_echo
}
run_test unix.inherit_fd test_unix_inherit

# Images exchanged with CRIU (CRIU_BIN): stasis dump -> CRIU restore ->
# CRIU dump -> stasis restore -> SIGUSR1 -> PASS. CRIU can't dump queued
# credentials (SO_PASSCRED) nor datagrams after an empty one, gives
# connected stream sockets no names and connects waiting clients in its
# own order: with UNIX_LIKE_CRIU the programs leave those out.
test_unix_criu_interop() {
	local prog=$1 exe pid rc
	exe=$(readlink -f "$BIN/$prog")
	UNIX_LIKE_CRIU=1 start_prog "$prog" "$BIN/$prog"
	pid=$PROG_PID
	wait_ready "$prog" "$pid" || return
	dump dump "$pid" "$T_WORK/img1" || return
	expect_killed "$pid" || return
	timeout -k 5 "$TMO" "$CRIU_BIN" restore -D "$T_WORK/img1" -d -o "$T_LOG/criu-restore.log" -v4 \
		> "$T_LOG/criu-restore.out" 2>&1 < /dev/null
	rc=$?
	[[ $rc == 0 ]] || { fail "CRIU could not restore stasis's images (rc $rc)" "$T_LOG/criu-restore.log"; return; }
	wait_until "$TMO" runs_freely "$pid" || { fail "pid $pid not running after CRIU's restore"; return; }
	mkdir -p "$T_WORK/img2"
	timeout -k 5 "$TMO" "$CRIU_BIN" dump -t "$pid" -D "$T_WORK/img2" -o "$T_LOG/criu-dump.log" -v4 \
		> "$T_LOG/criu-dump.out" 2>&1 < /dev/null
	rc=$?
	[[ $rc == 0 ]] || { fail "CRIU could not dump the restored $prog (rc $rc)" "$T_LOG/criu-dump.log"; return; }
	wait_gone "$pid" "$TMO" || { fail "pid $pid alive after CRIU's dump"; return; }
	restore_detached restore "$T_WORK/img2" "$pid" "$exe" 1 || return
	kill -USR1 "$pid"
	wait_gone "$pid" || fail "restored $prog did not exit after SIGUSR1" "$T_LOG/$prog.out"
	check_output "$prog"
}
for p in unix_pairs unix_dgram unix_server unix_scm unix_deleted; do
	run_test --needs criu "unix.criu_interop.${p#unix_}" test_unix_criu_interop "$p"
done

# What the dump refuses must cost the program nothing: "fds" has in
# flight (SCM_RIGHTS) in a socketpair a pipe, then a UDP socket, which
# stasis can't dump (the pipe, dumped first, must not be lost either);
# "unaccepted" a
# client that sent bytes on a connection its server has not accepted
# yet. The dump fails saying why; then the program gets everything.
UNIX_REFUSED='
import array, os, signal, socket, sys, time
got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
if sys.argv[1] == "fds":
    a, b = socket.socketpair()
    r, w = os.pipe()
    os.write(w, b"through-the-fd")
    u = socket.socket(44, socket.SOCK_RAW)   # AF_XDP, a kind stasis does not dump
    b.sendmsg([b"data-before"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [r]))])
    b.sendmsg([b"data-nl"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [u.fileno()]))])
    os.close(r)
    u.close()
    b.send(b"data-after")
else:
    l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    l.bind("\0stasis-test-unaccepted-%d" % os.getpid())
    l.listen(1)
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect("\0stasis-test-unaccepted-%d" % os.getpid())
    c.send(b"early-bytes")
print("READY", flush=True)
while not got:
    time.sleep(0.05)
if sys.argv[1] == "fds":
    msg, anc, flags, addr = a.recvmsg(11, socket.CMSG_SPACE(4))
    fds = array.array("i")
    for level, kind, data in anc:
        fds.frombytes(data)
    ok = msg == b"data-before" and len(fds) == 1 and os.read(fds[0], 100) == b"through-the-fd"
    msg, anc, flags, addr = a.recvmsg(7, socket.CMSG_SPACE(4))
    fds = array.array("i")
    for level, kind, data in anc:
        fds.frombytes(data)
    ok = ok and msg == b"data-nl" and len(fds) == 1
    ok = ok and os.readlink("/proc/self/fd/%d" % fds[0]).startswith("socket:")
    ok = ok and a.recv(100) == b"data-after"
else:
    s, _ = l.accept()
    ok = s.recv(100) == b"early-bytes"
print("PASS" if ok else "FAIL: the program lost data to the refused dump", flush=True)
'

test_unix_refused() {
	local what=$1 pid rc
	start_prog refused "$PYTHON" -c "$UNIX_REFUSED" "$what"
	pid=$PROG_PID
	wait_ready refused "$pid" || return
	rc=$(stasis dump dump -t "$pid" -D "$T_WORK/img" --ext-unix-sk)
	[[ $rc != 0 ]] || { fail "the dump went through"; return; }
	grep -q "pid $pid: fd [0-9]*: .*$2" "$T_LOG/dump.stderr" ||
		fail "the refusal does not say '$2' for pid $pid: $(error_message dump)" "$T_LOG/dump.log"
	wait_until 5 runs_freely "$pid" || { fail "after the refused dump pid $pid is not running freely"; return; }
	kill -USR1 "$pid"
	wait_child "$pid"
	check_output refused
}
run_test unix.refused.fds_in_flight test_unix_refused fds "file in flight (passed with SCM_RIGHTS.*XDP"
run_test unix.refused.unaccepted_data test_unix_refused unaccepted "not accepted yet"
