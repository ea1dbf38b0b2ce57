# Established TCP connections through a checkpoint (--tcp-established,
# TCP repair; tests/py/tcp_prog.py): both ends in the tree with full
# queues both ways, IPv4 and IPv6; a server in the tree whose outside
# client sends numbered records, pausing for the checkpoint; a server in
# the tree and its outside client streaming to each other without a
# pause, held by the network lock (iptables, nftables); a client in the
# tree whose outside server reads nothing during the checkpoint; Python's
# http.server with a keep-alive client; --tcp-close; a restore whose
# address is taken.

TCP_PROG=$ROOT/tests/py/tcp_prog.py

# Both ends in the tree (a server and its forked client), each with BULK
# bytes the other has not read: sent and acknowledged, sent and not, not
# sent; after the restore each reads them all, then they echo lines.
# The IPv6 pair takes the option from a configuration file (CRIU's syntax).
test_tcp_pair() {
	local v=$1 pid exe opt=--tcp-established
	if [[ $v == 6 ]]; then
		printf '# both ways\ntcp-established\n' > "$T_WORK/tcp.conf"
		opt=--config=$T_WORK/tcp.conf
	fi
	start_prog pair "$PYTHON" -u "$TCP_PROG" pair "$v"
	pid=$PROG_PID
	wait_ready pair "$pid" || return
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" "$opt" || return
	expect_killed "$pid" || return
	ls "$T_WORK/img"/tcp-stream-*.img > /dev/null 2>&1 || fail "no tcp-stream image"
	restore_detached restore "$T_WORK/img" "$pid" "$exe" 1 "$opt" || { cp -r "$T_WORK/img" "$T_LOG/img"; return; }
	kill -USR1 "$pid"
	wait_gone "$pid" || {
		ss -tnoieam > "$T_LOG/ss.txt" 2>&1
		cp -r "$T_WORK/img" "$T_LOG/img"
		fail "the restored pair did not end" "$T_LOG/pair.out"
	}
	check_output pair
}

run_test tcp.pair4 test_tcp_pair 4
run_test tcp.pair6 test_tcp_pair 6

# A server in the tree, its client outside: records 1, 2, ... through the
# checkpoint, some of them in the server's receive queue at the dump; no
# gap, no repeat, and the client never sees its connection break.
test_tcp_outside_client() {
	local pid exe port
	start_prog server "$PYTHON" -u "$TCP_PROG" server
	pid=$PROG_PID
	wait_until "$TMO" grep -q "^PORT" "$T_LOG/server.out" || { fail "the server did not start" "$T_LOG/server.err"; return; }
	port=$(awk '$1 == "PORT" { print $2 }' "$T_LOG/server.out")
	start_prog peer "$PYTHON" -u "$TCP_PROG" peer-client "$port"
	wait_ready server "$pid" || return
	exe=$(readlink "/proc/$pid/exe")
	wait_until "$TMO" has_lines "$T_FILES/records.txt" 2000 || { fail "no records before the dump"; return; }
	touch "$T_FILES/quiet"
	wait_until "$TMO" test -e "$T_FILES/quiet.ack" || { fail "the client did not go quiet" "$T_LOG/peer.out"; return; }
	dump dump "$pid" "$T_WORK/img" --tcp-established || return
	expect_killed "$pid" || return
	restore_detached restore "$T_WORK/img" "$pid" "$exe" 0 --tcp-established || return
	local n
	n=$(line_count "$T_FILES/records.txt")
	touch "$T_FILES/fast"
	rm -f "$T_FILES/quiet"
	wait_until "$TMO" has_lines "$T_FILES/records.txt" $((n + 2000)) ||
		fail "the records did not go on after the restore ($(line_count "$T_FILES/records.txt"), $n at the restore)"
	touch "$T_FILES/done"
	wait_gone "$pid" || fail "the server did not end" "$T_LOG/server.out"
	wait_until "$TMO" grep -q "^PASS\|^FAIL" "$T_LOG/peer.out" || fail "the client did not end" "$T_LOG/peer.err"
	check_output server
	check_output peer
	check_sequence "$T_FILES/records.txt"
}

run_test tcp.outside_client test_tcp_outside_client

# A server in the tree and its client outside stream numbered 8-byte
# words to each other without a pause (tcp_prog.py stream-server and
# stream-peer), through the dump with the network lock METHOD and the
# restore: the server reads slowly (its receive queue holds data at the
# dump), the client keeps sending all along (its packets dropped by the
# lock, sent again after the restore). Each end checks every word it
# reads: no gap, no repeat, no reset; both streams go on after the
# restore, and the lock is gone.
stream_count() {
	local c=0
	[[ -r $T_FILES/$1.count ]] && read -r c _ < "$T_FILES/$1.count"
	echo "${c:-0}"
}
streams_past() { (($(stream_count server) >= $1 && $(stream_count peer) >= $2)); }

test_tcp_outside_stream() {
	local lock=$1 pid exe port s p id
	start_prog server "$PYTHON" -u "$TCP_PROG" stream-server
	pid=$PROG_PID
	wait_until "$TMO" grep -q "^PORT" "$T_LOG/server.out" || { fail "the server did not start" "$T_LOG/server.err"; return; }
	port=$(awk '$1 == "PORT" { print $2 }' "$T_LOG/server.out")
	start_prog peer "$PYTHON" -u "$TCP_PROG" stream-peer "$port"
	wait_ready server "$pid" || return
	exe=$(readlink "/proc/$pid/exe")
	wait_until "$TMO" streams_past 50000 50000 || { fail "no streams before the dump" "$T_LOG/peer.err"; return; }
	dump dump "$pid" "$T_WORK/img" --tcp-established --network-lock "$lock" || return
	expect_killed "$pid" || return
	grep -q "receive queue [1-9][0-9]* bytes" "$T_LOG/dump.log" ||
		fail "the server's receive queue was empty at the dump (the case is not tested)" "$T_LOG/dump.log"
	restore_detached restore "$T_WORK/img" "$pid" "$exe" 0 --tcp-established || return
	s=$(stream_count server)
	p=$(stream_count peer)
	wait_until "$TMO" streams_past $((s + 50000)) $((p + 50000)) ||
		fail "the streams did not go on after the restore (server read $(stream_count server), $s at the restore; client $(stream_count peer), $p)"
	touch "$T_FILES/done"
	wait_gone "$pid" || fail "the server did not end" "$T_LOG/server.out"
	wait_until "$TMO" grep -q "^PASS\|^FAIL" "$T_LOG/peer.out" || fail "the client did not end" "$T_LOG/peer.err"
	check_output server
	check_output peer
	if [[ $lock == iptables ]]; then
		! iptables -w -S 2>/dev/null | grep -qE -- "--[sd]port $port( |$)" || fail "iptables rules for port $port are left"
	else
		id=$(grep -o 'run id = [0-9a-f-]*' "$T_LOG/dump.log" | head -1 | sed 's/.*= //' | cut -c1-21)
		! nft list tables 2>/dev/null | grep -qx "table inet CRIU-$id" || fail "the nft table CRIU-$id is left"
	fi
}

run_test tcp.outside_stream test_tcp_outside_stream iptables
run_test tcp.outside_stream_nft test_tcp_outside_stream nftables

# A client in the tree, its server outside: the client's send queue full
# (the server reads nothing until after the restore), the server's
# greeting unread in the client's receive queue.
test_tcp_outside_server() {
	local pid exe port
	start_prog peer "$PYTHON" -u "$TCP_PROG" peer-server
	wait_until "$TMO" grep -q "^PORT" "$T_LOG/peer.out" || { fail "the server did not start" "$T_LOG/peer.err"; return; }
	port=$(awk '$1 == "PORT" { print $2 }' "$T_LOG/peer.out")
	start_prog client "$PYTHON" -u "$TCP_PROG" client 127.0.0.1 "$port"
	pid=$PROG_PID
	wait_until "$TMO" grep -q "^READY" "$T_LOG/client.out" || { fail "the client did not start" "$T_LOG/client.err"; return; }
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" --tcp-established || return
	expect_killed "$pid" || return
	restore_detached restore "$T_WORK/img" "$pid" "$exe" 1 --tcp-established || return
	touch "$T_FILES/go"
	kill -USR1 "$pid"
	wait_gone "$pid" || fail "the client did not end" "$T_LOG/client.out"
	wait_until "$TMO" grep -q "^PASS\|^FAIL" "$T_LOG/peer.out" || fail "the server did not end" "$T_LOG/peer.err"
	check_output client
	check_output peer
}

run_test tcp.outside_server test_tcp_outside_server

# Python's http.server (HTTP/1.1, keep-alive) with a client outside that
# asks before and after the checkpoint on the same connection.
HTTP_KEEPALIVE='
import http.client, os, sys, time
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=30)
c.request("GET", "/")
r = c.getresponse(); r.read()
first = c.sock.getsockname()
print("ASKED", r.status, flush=True)
while not os.path.exists("go"):
    time.sleep(0.02)
c.request("GET", "/")
r = c.getresponse(); r.read()
if r.status == 200 and c.sock.getsockname() == first:
    print("PASS", flush=True)
else:
    print("FAIL: status", r.status, "local address", c.sock.getsockname(), "was", first, flush=True)
'

test_tcp_http_keepalive() {
	local pid exe port
	start_prog http "$PYTHON" -u -c 'import http.server as h; h.test(HandlerClass=h.SimpleHTTPRequestHandler, protocol="HTTP/1.1", port=0, bind="127.0.0.1")'
	pid=$PROG_PID
	wait_until "$TMO" grep -q "^Serving HTTP" "$T_LOG/http.out" || { fail "http.server did not start" "$T_LOG/http.err"; return; }
	exe=$(readlink "/proc/$pid/exe")
	port=$(sed -n 's/^Serving HTTP on [^ ]* port \([0-9]*\).*/\1/p' "$T_LOG/http.out")
	start_prog client "$PYTHON" -u -c "$HTTP_KEEPALIVE" "$port"
	wait_until "$TMO" grep -q "^ASKED" "$T_LOG/client.out" || { fail "no first answer" "$T_LOG/client.err"; return; }
	sleep 0.3	# the delayed acknowledgements sent
	dump dump "$pid" "$T_WORK/img" --tcp-established || return
	expect_killed "$pid" || return
	restore_detached restore "$T_WORK/img" "$pid" "$exe" 0 --tcp-established || return
	touch "$T_FILES/go"
	wait_until "$TMO" grep -q "^PASS\|^FAIL" "$T_LOG/client.out" || fail "the client did not end" "$T_LOG/client.err"
	check_output client
	grep -c '"GET / HTTP/1.1" 200' "$T_LOG/http.err" | grep -qx 2 ||
		fail "the server did not log both requests" "$T_LOG/http.err"
}

run_test tcp.http_keepalive test_tcp_http_keepalive

# --tcp-close: the connection (both ends in the tree) is restored closed,
# as CRIU does: read gives end of file, write EPIPE; the listener works.
TCP_CLOSED='
import errno, signal, socket, time
got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
signal.signal(signal.SIGPIPE, signal.SIG_IGN)
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(2)
c = socket.create_connection(l.getsockname()); s, _ = l.accept()
c.sendall(b"unread")
print("READY", flush=True)
while not got:
    time.sleep(0.05)
ok = s.recv(10) == b"" and c.recv(10) == b""
try:
    c.send(b"x"); ok = False
except OSError as e:
    ok = ok and e.errno == errno.EPIPE
c2 = socket.create_connection(l.getsockname()); s2, _ = l.accept()
c2.sendall(b"new"); ok = ok and s2.recv(10) == b"new"
print("PASS" if ok else "FAIL: the connection is not closed, or the listener does not work", flush=True)
'

test_tcp_close() {
	local pid exe dump_opt=$1
	start_prog closed "$PYTHON" -c "$TCP_CLOSED"
	pid=$PROG_PID
	wait_ready closed "$pid" || return
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" "$dump_opt" || return
	expect_killed "$pid" || return
	restore_detached restore "$T_WORK/img" "$pid" "$exe" 1 --tcp-close || return
	kill -USR1 "$pid"
	wait_gone "$pid" || fail "the program did not end" "$T_LOG/closed.out"
	check_output closed
}

run_test tcp.close_dumped_established test_tcp_close --tcp-established
run_test tcp.close_dumped_closed test_tcp_close --tcp-close

# A restore whose connection's address is taken (something else holds
# the same ports) fails in one line naming the socket and the address,
# and leaves nothing behind; without --tcp-established it is refused.
# (No network lock: with one, as CRIU, the dump leaves the connection's
# packets dropped until the restore, and no one else could connect there.)
test_tcp_address_taken() {
	local pid conn src dst rc
	start_prog pair "$PYTHON" -u "$TCP_PROG" pair 4
	pid=$PROG_PID
	wait_ready pair "$pid" || return
	dump dump "$pid" "$T_WORK/img" --tcp-established --network-lock skip || return
	expect_killed "$pid" || return
	rc=$(stasis norepair restore -D "$T_WORK/img" -d)
	[[ $rc != 0 ]] || { fail "a restore without --tcp-established succeeded"; kill -9 "$pid"; return; }
	grep -qE "^Error: .*socket [0-9]+ is a TCP connection .*--tcp-established" "$T_LOG/norepair.stderr" ||
		fail "without --tcp-established: $(error_message norepair)"
	conn=$(grep -m1 -o 'TCP socket [0-9]* state 1 127.0.0.1:[0-9]* -> 127.0.0.1:[0-9]*' "$T_LOG/dump.log")
	src=${conn#TCP socket * state 1 127.0.0.1:}
	src=${src%% *}
	dst=${conn##*:}
	# the killed pair's sockets may hold the ports a moment longer (their
	# close under way on a loaded machine): the squatter tries for 10 s
	start_prog squatter "$PYTHON" -c '
import socket, sys, time
def bound(port):
    for _ in range(200):
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return s
        except OSError:
            s.close()
            time.sleep(0.05)
    raise OSError("port %d stays taken" % port)
l = bound(int(sys.argv[2])); l.listen(1)
c = bound(int(sys.argv[1])); c.connect(("127.0.0.1", int(sys.argv[2])))
s, _ = l.accept()
print("READY", flush=True)
time.sleep(60)' "$src" "$dst"
	wait_ready squatter "$PROG_PID" || return
	rc=$(stasis taken restore -D "$T_WORK/img" -d --tcp-established)
	[[ $rc != 0 ]] || { fail "the restore over taken addresses succeeded"; return; }
	wait_gone "$pid" 5 || fail "a process with pid $pid is left running after the failed restore"
	grep -qE "^Error: .*socket [0-9]+.*127\.0\.0\.1:($src|$dst)" "$T_LOG/taken.stderr" ||
		fail "message: $(error_message taken)"
	(($(wc -l < "$T_LOG/taken.stderr") == 1)) || fail "more than one line on stderr" "$T_LOG/taken.stderr"
}

# Alone: the killed connection's source port is an ephemeral one, which
# a connection of a test running beside it took once (the squatter then
# waited its 10 s for it in vain).
run_test --alone tcp.address_taken test_tcp_address_taken

# check --feature tcp_half_closed says yes here (zdtm's socket-tcp-unconn
# needs it) and the half-closed connections of a pair come back so.
test_tcp_half_closed() {
	local pid exe
	"$STASIS" check --feature tcp_half_closed > "$T_LOG/check.out" 2>&1 ||
		{ skip "no tcp_half_closed here: $(cat "$T_LOG/check.out")"; return; }
	start_prog half "$PYTHON" -c '
import signal, socket, time
got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(2)
a = socket.create_connection(l.getsockname()); b, _ = l.accept()
a.sendall(b"before-fin"); a.shutdown(socket.SHUT_WR)   # a: FIN_WAIT2, b: CLOSE_WAIT
time.sleep(0.2)
print("READY", flush=True)
while not got:
    time.sleep(0.05)
ok = b.recv(100) == b"before-fin" and b.recv(100) == b""
b.sendall(b"after-restore"); ok = ok and a.recv(100) == b"after-restore"
b.close(); ok = ok and a.recv(100) == b""
print("PASS" if ok else "FAIL: the half-closed connection changed", flush=True)'
	pid=$PROG_PID
	wait_ready half "$pid" || return
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" --tcp-established || return
	expect_killed "$pid" || return
	restore_detached restore "$T_WORK/img" "$pid" "$exe" 1 --tcp-established || return
	kill -USR1 "$pid"
	wait_gone "$pid" || fail "the program did not end" "$T_LOG/half.out"
	check_output half
}

run_test tcp.half_closed test_tcp_half_closed

# The same through CRIU's RPC (pycriu, swrk): tcp_established in the
# dump and the restore requests; and a dump request without it refuses
# the connection, the pair running on.
test_tcp_rpc() {
	local pid rc drive=$ROOT/tests/py/rpc_drive.py
	start_prog pair "$PYTHON" -u "$TCP_PROG" pair 4 100000
	pid=$PROG_PID
	wait_ready pair "$pid" || return
	mkdir -p "$T_WORK/img"
	timeout -k 5 "$TMO" "$PYTHON" "$drive" --bin "$STASIS" dump "$pid" "$T_WORK/img" > "$T_LOG/refused.out" 2>&1 < /dev/null &&
		{ fail "an RPC dump without tcp_established succeeded"; return; }
	grep -q -- "--tcp-established" "$T_WORK/img/dump.log" || fail "the refusal does not name the option" "$T_WORK/img/dump.log"
	runs_freely "$pid" || { fail "the pair does not run freely after the refused dump"; return; }
	timeout -k 5 "$TMO" "$PYTHON" "$drive" --bin "$STASIS" dump "$pid" "$T_WORK/img" --tcp-established \
		> "$T_LOG/dump.out" 2>&1 < /dev/null || { fail "RPC dump: $(tail -n1 "$T_LOG/dump.out")" "$T_WORK/img/dump.log"; return; }
	expect_killed "$pid" || return
	timeout -k 5 "$TMO" "$PYTHON" "$drive" --bin "$STASIS" restore "$T_WORK/img" --tcp-established \
		> "$T_LOG/restore.out" 2>&1 < /dev/null || { fail "RPC restore: $(tail -n1 "$T_LOG/restore.out")" "$T_WORK/img/restore.log"; return; }
	has_line "$T_LOG/restore.out" "restored $pid" || { fail "restore reply: $(cat "$T_LOG/restore.out")"; return; }
	wait_until "$TMO" catches_usr1 "$pid" || { fail "the restored pair does not catch SIGUSR1"; return; }
	kill -USR1 "$pid"
	wait_gone "$pid" || fail "the restored pair did not end" "$T_LOG/pair.out"
	check_output pair
}

run_test tcp.rpc test_tcp_rpc

# A dump with --tcp-established that fails after the connections went
# into repair mode (an AF_XDP socket, which stasis refuses, at a higher
# fd) takes them out of it: the program's connection goes on, both ways.
TCP_FAILED_DUMP='
import signal, socket, time
got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(2)
c = socket.create_connection(l.getsockname()); s, _ = l.accept()
c.sendall(b"before")
x = socket.socket(44, socket.SOCK_RAW)   # AF_XDP
print("READY", flush=True)
while not got:
    time.sleep(0.05)
c.settimeout(10); s.settimeout(10)
ok = s.recv(100) == b"before"
s.sendall(b"after"); ok = ok and c.recv(100) == b"after"
c.sendall(b"again"); ok = ok and s.recv(100) == b"again"
print("PASS" if ok else "FAIL: the connection broke after the failed dump", flush=True)
'

test_tcp_failed_dump() {
	local pid rc
	start_prog failed "$PYTHON" -c "$TCP_FAILED_DUMP"
	pid=$PROG_PID
	wait_ready failed "$pid" || return
	rc=$(stasis dump dump -t "$pid" -D "$T_WORK/img" --tcp-established)
	[[ $rc != 0 ]] || { fail "the dump of an XDP socket succeeded"; return; }
	grep -q "XDP" "$T_LOG/dump.stderr" || fail "the dump failed for another reason: $(error_message dump)"
	runs_freely "$pid" || { fail "the program does not run freely after the failed dump"; return; }
	kill -USR1 "$pid"
	wait_child "$pid"
	check_output failed
}

run_test tcp.failed_dump test_tcp_failed_dump

# A connection reset by its peer (RST) with data the program has not
# read: with --tcp-established it is saved as CRIU saves it (repair mode,
# its receive queue) and made again closed, the data readable, then end
# of file, and a write fails (zdtm's socket-tcp-reseted).
TCP_RESET='
import errno, signal, socket, struct, time
got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
signal.signal(signal.SIGPIPE, signal.SIG_IGN)
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(1)
c = socket.create_connection(l.getsockname()); s, _ = l.accept()
c.sendall(b"unread-before-the-reset")
time.sleep(0.2)
c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); c.close()   # RST
time.sleep(0.2)
print("READY", flush=True)
while not got:
    time.sleep(0.05)
ok = s.recv(100) == b"unread-before-the-reset" and s.recv(100) == b""
try:
    s.send(b"x"); ok = False
except OSError as e:
    ok = ok and e.errno == errno.EPIPE
print("PASS" if ok else "FAIL: the reset connection came back otherwise", flush=True)
'

test_tcp_reset() {
	local pid exe
	start_prog reset "$PYTHON" -c "$TCP_RESET"
	pid=$PROG_PID
	wait_ready reset "$pid" || return
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" --tcp-established || return
	expect_killed "$pid" || return
	grep -q "CLOSE, receive queue 23 bytes" "$T_LOG/dump.log" || fail "the reset socket's data was not saved" "$T_LOG/dump.log"
	restore_detached restore "$T_WORK/img" "$pid" "$exe" 1 --tcp-established || return
	kill -USR1 "$pid"
	wait_gone "$pid" || fail "the program did not end" "$T_LOG/reset.out"
	check_output reset
}

run_test tcp.reset test_tcp_reset

# zdtm's socket-tcp-reseted: the tree holds both ends; one was reset (an
# iptables rule answers its acknowledgements with RSTs), the other is
# still established with data the gone end will never acknowledge (the
# rule, until the restore, drops the RSTs that would tell it). Restored,
# the established end learns at once that its peer is gone: leaving
# repair mode it sends a probe, answered with a reset, which the dump's
# network lock must not drop, so the program's next write fails.
TCP_RESET_PEER='
import errno, signal, socket, subprocess, time
got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
signal.signal(signal.SIGPIPE, signal.SIG_IGN)
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(1)
port = l.getsockname()[1]
c = socket.create_connection(("127.0.0.1", port)); s, _ = l.accept()
c.sendall(b"abc")
rule = ["iptables", "-w", "-t", "filter", "INPUT", "-p", "tcp", "--dport", str(port), "-j", "REJECT",
        "--reject-with", "tcp-reset"]
subprocess.run(rule[:4] + ["-I"] + rule[4:], check=True)
open("rule", "w").write(" ".join(rule[:4] + ["-D"] + rule[4:]))
s.sendall(b"asdas")
while c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] != 7:   # CLOSE
    time.sleep(0.05)
print("READY", flush=True)
while not got:
    time.sleep(0.05)
ok = s.recv(10) == b"abc"
try:
    s.send(b"abc"); ok = False; why = "a write succeeded"
except OSError as e:
    ok = ok and e.errno in (errno.EPIPE, errno.ECONNRESET); why = "read or write: " + str(e)
print("PASS" if ok else "FAIL: the end whose peer was reset came back alive (" + why + ")", flush=True)
'

# ipt_prog_dump LABEL SCRIPT: a python program that inserts an iptables
# rule (the command that removes it in its file "rule"), dumped with
# --tcp-established (IPT_PID, IPT_EXE); 1, the rule removed, if that failed.
ipt_prog_dump() {
	start_prog "$1" "$PYTHON" -c "$2"
	IPT_PID=$PROG_PID
	wait_ready "$1" "$IPT_PID" && IPT_EXE=$(readlink "/proc/$IPT_PID/exe") &&
		dump dump "$IPT_PID" "$T_WORK/img" --tcp-established && expect_killed "$IPT_PID" && return 0
	[[ -r $T_FILES/rule ]] && $(cat "$T_FILES/rule")
	return 1
}
ipt_unrule() { $(cat "$T_FILES/rule") || fail "can't remove the rule: $(cat "$T_FILES/rule")"; }

test_tcp_reset_peer() {
	command -v iptables > /dev/null || { skip "no iptables here"; return; }
	ipt_prog_dump resetpeer "$TCP_RESET_PEER" || return
	ipt_unrule
	grep -q "ESTABLISHED" "$T_LOG/dump.log" || fail "no established connection was dumped" "$T_LOG/dump.log"
	restore_detached restore "$T_WORK/img" "$IPT_PID" "$IPT_EXE" 1 --tcp-established || return
	kill -USR1 "$IPT_PID"
	wait_gone "$IPT_PID" || fail "the program did not end" "$T_LOG/resetpeer.out"
	check_output resetpeer
}

run_test tcp.reset_peer test_tcp_reset_peer

# A connection still opening (SYN_SENT: its SYNs dropped by an iptables
# rule on its port) is dumped and locked like the others (its peer's
# address is SO_PEERNAME's: getpeername has none yet); once the rule is
# gone after the restore, it connects (zdtm's socket-tcp-syn-sent).
TCP_SYN_SENT='
import os, signal, socket, subprocess, sys, time
got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(1)
port = l.getsockname()[1]
rule = ["iptables", "-w", "-t", "filter", "INPUT", "-p", "tcp", "--dport", str(port), "-j", "DROP"]
subprocess.run(rule[:4] + ["-I"] + rule[4:], check=True)
open("rule", "w").write(" ".join(rule[:4] + ["-D"] + rule[4:]))
c = socket.socket(); c.setblocking(False)
try:
    c.connect(("127.0.0.1", port))
except BlockingIOError:
    pass
print("READY", flush=True)
while not got:
    time.sleep(0.05)
c.setblocking(True); c.settimeout(20)
while c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] != 1:   # ESTABLISHED
    time.sleep(0.05)
s, _ = l.accept()
c.sendall(b"after-restore"); ok = s.recv(100) == b"after-restore"
s.sendall(b"back"); ok = ok and c.recv(100) == b"back"
print("PASS" if ok else "FAIL: the connection opened after the restore does not carry data", flush=True)
'

test_tcp_syn_sent() {
	command -v iptables > /dev/null || { skip "no iptables here"; return; }
	ipt_prog_dump synsent "$TCP_SYN_SENT" || return
	grep -q "SYN_SENT" "$T_LOG/dump.log" || fail "no connection in SYN_SENT was dumped" "$T_LOG/dump.log"
	restore_detached restore "$T_WORK/img" "$IPT_PID" "$IPT_EXE" 1 --tcp-established || { ipt_unrule; return; }
	ipt_unrule
	kill -USR1 "$IPT_PID"
	wait_gone "$IPT_PID" || fail "the program did not end" "$T_LOG/synsent.out"
	check_output synsent
}

run_test tcp.syn_sent test_tcp_syn_sent

# check --feature has_ipt_legacy answers as CRIU asks it: iptables-save
# (else iptables-legacy-save) of the legacy kind, and ip6tables-save too.
ipt_legacy() { local v; v=$("$1" -V 2> /dev/null) && [[ $v != *nf_tables* ]]; }
test_tcp_check_ipt_legacy() {
	local want=1 rc
	{ ipt_legacy iptables-save || ipt_legacy iptables-legacy-save; } &&
		{ [[ ! -e /proc/net/if_inet6 ]] || ipt_legacy ip6tables-save || ipt_legacy ip6tables-legacy-save; } && want=0
	rc=$(stasis check check --feature has_ipt_legacy)
	[[ $rc == "$want" ]] || fail "check --feature has_ipt_legacy exited $rc, want $want: $(cat "$T_LOG/check.stdout")"
}

run_test tcp.check_ipt_legacy test_tcp_check_ipt_legacy

# 300 connections in one process (both ends, unread data each way): the
# network lock's rules for them all go in and out in one iptables-restore
# each way (more than a pipe holds: it once hung there), and every
# connection carries its data after the restore; no rule is left.
# Python for the tests of many connections: connect makes connection i
# (both ends, unread data each way); ready_then_check prints READY, waits
# for SIGUSR1, and gives the connections that did not carry their data
# and one more byte.
TCP_PAIRS_LIB='
import signal, socket, time
got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
def connect(l, i):
    c = socket.create_connection(l.getsockname()); s, _ = l.accept()
    c.sendall(b"c%d" % i); s.sendall(b"s%d" % i)
    return c, s
def ready_then_check(pairs):
    time.sleep(0.2)
    print("READY", flush=True)
    while not got:
        time.sleep(0.05)
    return [i for i, (c, s) in enumerate(pairs)
            if s.recv(16) != b"c%d" % i or c.recv(16) != b"s%d" % i
            or c.send(b"x") != 1 or s.recv(4) != b"x"]
'
TCP_MANY=$TCP_PAIRS_LIB'
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(128)
pairs = [connect(l, i) for i in range(300)]
bad = ready_then_check(pairs)
print("PASS" if not bad else "FAIL: connections %s" % bad[:5], flush=True)
'

test_tcp_many() {
	local pid exe port
	start_prog many "$PYTHON" -c "$TCP_MANY"
	pid=$PROG_PID
	wait_ready many "$pid" || return
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" --tcp-established --network-lock iptables || return
	expect_killed "$pid" || return
	port=$(grep -m1 -o 'state 10 127.0.0.1:[0-9]*' "$T_LOG/dump.log" | sed 's/.*://')
	(($(grep -c "^(.*) locked 127.0.0.1" "$T_LOG/dump.log") == 600)) || fail "not 600 sockets locked" "$T_LOG/dump.log"
	(($(iptables -w -S 2>/dev/null | grep -cE -- "--[sd]port $port( |$)") == 1200)) ||
		fail "not 1200 rules on port $port after the dump: $(iptables -w -S 2>/dev/null | grep -cE -- "--[sd]port $port( |$)")"
	restore_detached restore "$T_WORK/img" "$pid" "$exe" 1 --tcp-established || return
	! iptables -w -S 2>/dev/null | grep -qE -- "--[sd]port $port( |$)" || fail "iptables rules for port $port are left"
	kill -USR1 "$pid"
	wait_gone "$pid" || fail "the program did not end" "$T_LOG/many.out"
	check_output many
}

run_test tcp.many test_tcp_many

# Connections among fds of other kinds, as a server has them: a file
# (read part-way, flock'ed), a pipe and a unix socketpair with data in
# them, holes in the fd numbers, and a dup of a connection far above
# the rest. The dump asks each socket itself and reads the links of the
# others (files/census.c): every fd must come back what it was, the dup
# the same socket as its original, the lock still held.
TCP_MIXED=$TCP_PAIRS_LIB'
import fcntl, os
with open("data", "wb") as f:
    f.write(b"0123456789" * 10)
fil = open("data", "rb"); fil.read(7)
fcntl.flock(fil, fcntl.LOCK_EX)
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(64)
pairs, other = [], []
for i in range(40):
    pairs.append(connect(l, i))
    if i % 10 == 3:   # other kinds between the sockets
        r, w = os.pipe(); os.write(w, b"p%d" % i)
        a, b = socket.socketpair(); a.sendall(b"u%d" % i)
        other.append((r, w, a, b))
    if i % 10 == 7:   # a hole
        os.close(os.dup(0))
        hole = os.open("/dev/null", os.O_RDONLY); os.close(hole)
dupfd = os.dup2(pairs[5][0].fileno(), 900)
bad = ready_then_check(pairs)
for k, (r, w, a, b) in enumerate(other):
    i = k * 10 + 3
    if os.read(r, 16) != b"p%d" % i or b.recv(16) != b"u%d" % i:
        bad.append("pipe/unix %d" % i)
if os.fstat(dupfd).st_ino != os.fstat(pairs[5][0].fileno()).st_ino:
    bad.append("dup")
os.write(dupfd, b"d")
if pairs[5][1].recv(4) != b"d":
    bad.append("dup send")
if fil.read(3) != b"789":
    bad.append("file offset")
try:
    fcntl.flock(open("data", "rb"), fcntl.LOCK_EX | fcntl.LOCK_NB)
    bad.append("lock")
except BlockingIOError:
    pass
print("PASS" if not bad else "FAIL: %s" % bad[:5], flush=True)
'

test_tcp_mixed_fds() {
	local pid exe
	start_prog mixed "$PYTHON" -c "$TCP_MIXED"
	pid=$PROG_PID
	wait_ready mixed "$pid" || return
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" --tcp-established --file-locks || return
	expect_killed "$pid" || return
	restore_detached restore "$T_WORK/img" "$pid" "$exe" 1 --tcp-established --file-locks || return
	kill -USR1 "$pid"
	wait_gone "$pid" || fail "the program did not end" "$T_LOG/mixed.out"
	check_output mixed
}

run_test tcp.mixed_fds test_tcp_mixed_fds
