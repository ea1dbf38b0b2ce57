# IPv4 and IPv6 sockets that are no TCP connection (tests/progs/inet.c
# has the sockets and options one by one): real servers that listen
# through a checkpoint and serve new clients after it, and what the dump
# refuses (an established connection, a connection not yet accepted),
# which must cost the program nothing.

INET_ECHO=$ROOT/tests/py/inet_echo.py
INET_CLIENT=$ROOT/tests/py/inet_client.py

# client TAG HOST TCP_PORT UDP_PORT: an exchange with the server, which
# must answer (inet_client.py).
inet_client() {
	local tag=$1
	shift
	timeout -k 5 "$TMO" "$PYTHON" "$INET_CLIENT" "$@" > "$T_LOG/$tag.out" 2>&1 < /dev/null ||
		{ fail "$tag: no answer from the server at $1 port $2/$3: $(tail -n1 "$T_LOG/$tag.out")" "$T_LOG/$tag.out"; return 1; }
}

# A threaded TCP echo server and a UDP echo server (Python), checkpointed
# with no client connected, restored, then serving new clients; and again
# through a second dump and restore.
test_inet_echo() {
	local v=$1 host=127.0.0.1 pid exe tport uport
	[[ $v == 6 ]] && host=::1
	start_prog echo "$PYTHON" -u "$INET_ECHO" "$v"
	pid=$PROG_PID
	wait_ready echo "$pid" || return
	exe=$(readlink "/proc/$pid/exe")
	read -r tport uport < <(awk '$1 == "PORTS" { print $2, $3 }' "$T_LOG/echo.out")
	inet_client before "$host" "$tport" "$uport" || return
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	(exec 3<> "/dev/tcp/$host/$tport") 2> /dev/null && { fail "something still listens on port $tport after the dump"; return; }
	restore_detached restore "$T_WORK/img" "$pid" "$exe" 1 || return
	inet_client after "$host" "$tport" "$uport" || return
	dump dump2 "$pid" "$T_WORK/img2" || return
	expect_killed "$pid" || return
	restore_detached restore2 "$T_WORK/img2" "$pid" "$exe" 1 || return
	inet_client after2 "$host" "$tport" "$uport" || return
	kill -USR1 "$pid"
	wait_gone "$pid" || fail "the restored server did not end after SIGUSR1"
	check_output echo
}

run_test real.inet_echo test_inet_echo 4
run_test real.inet6_echo test_inet_echo 6

# Python's http.server, listening, checkpointed with no client, restored,
# then serving a new request.
test_http_server() {
	local pid exe port
	start_prog http "$PYTHON" -u -m http.server 0 --bind 127.0.0.1
	pid=$PROG_PID
	wait_until "$TMO" grep -q "^Serving HTTP" "$T_LOG/http.out" || { fail "http.server did not start" "$T_LOG/http.err"; return; }
	exe=$(readlink "/proc/$pid/exe")
	port=$(sed -n 's/^Serving HTTP on [^ ]* port \([0-9]*\).*/\1/p' "$T_LOG/http.out")
	inet_client before 127.0.0.1 "$port" http || return
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	restore_detached restore "$T_WORK/img" "$pid" "$exe" 0 || return
	inet_client after 127.0.0.1 "$port" http || return
	grep -c '"GET / HTTP/1.1" 200' "$T_LOG/http.err" | grep -qx 2 ||
		fail "the server did not log both requests" "$T_LOG/http.err"
}

run_test real.http_server test_http_server

# What the dump refuses, in one line naming the socket, must cost the
# program nothing: "established" holds a TCP connection (both ends),
# "unaccepted" a listener with a client connected but not accepted yet.
INET_REFUSED='
import signal, socket, sys, time
got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(4)
c = socket.create_connection(l.getsockname())
c.sendall(b"early-bytes")
if sys.argv[1] == "established":
    s, _ = l.accept()
print("READY", flush=True)
while not got:
    time.sleep(0.05)
if sys.argv[1] == "unaccepted":
    s, _ = l.accept()
ok = s.recv(100) == b"early-bytes"
s.sendall(b"answer")
ok = ok and c.recv(100) == b"answer"
print("PASS" if ok else "FAIL: the connection lost data to the refused dump", flush=True)
'

test_inet_refused() {
	local what=$1 msg=$2 pid rc
	start_prog refused "$PYTHON" -c "$INET_REFUSED" "$what"
	pid=$PROG_PID
	wait_ready refused "$pid" || return
	rc=$(stasis dump dump -t "$pid" -D "$T_WORK/img")
	[[ $rc != 0 ]] || { fail "the dump did not refuse the $what connection"; return; }
	grep -qE "^Error: pid $pid: fd [0-9]+.*$msg" "$T_LOG/dump.stderr" || fail "message: $(error_message dump)"
	(($(wc -l < "$T_LOG/dump.stderr") == 1)) || fail "more than one line on stderr" "$T_LOG/dump.stderr"
	[[ ! -e $T_WORK/img/inventory.img ]] || fail "the failed dump left an inventory.img"
	runs_freely "$pid" || { fail "the program does not run freely after the refused dump"; return; }
	kill -USR1 "$pid"
	wait_child "$pid"
	check_output refused
}

run_test inet.refused.established test_inet_refused established "is a TCP connection 127.0.0.1:[0-9]+ -> 127.0.0.1:[0-9]+ \(ESTABLISHED\).*--tcp-established"
run_test inet.refused.unaccepted test_inet_refused unaccepted "TCP listener 127.0.0.1:[0-9]+ has 1 connection\(s\) not yet accepted"
