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
	dump dump "$pid" "$T_WORK/img" --ext-unix-sk || return
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
