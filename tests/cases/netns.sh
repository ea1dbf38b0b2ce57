# A tree in a network namespace of its own (src/net/netns*.c): saved and
# made again as CRIU 4.2 does it: the loopback, a veth to the host (its
# outer end named by --veth-pair and put in a bridge), addresses, routes,
# iptables rules (here iptables-nft: the nftables ruleset image), and the
# sockets inside; --empty-ns net leaves the namespace to the
# setup-namespaces script; devices stasis can't make again are refused by
# name; a failed restore leaves no veth behind.
#
# Each test has its own bridge stbrN (10.77.N.1/24), outer end stvhN and
# tree address 10.77.N.2; those that make them run alone all the same:
# their links come and go in our namespace, which a route socket of
# another test (netlink.*, in RTMGRP_LINK) would hear, and a socket with
# messages waiting is refused by CRIU's dump and stasis's.

NETNS_HTTP_PORT=8080

# netns_setup N: the bridge of test N, and the names it uses.
netns_setup() {
	NN=$1 NN_BR=stbr$1 NN_OUT=stvh$1 NN_HOST=10.77.$1.1 NN_ADDR=10.77.$1.2
	netns_cleanup
	ip link add "$NN_BR" type bridge && ip addr add "$NN_HOST/24" dev "$NN_BR" && ip link set "$NN_BR" up ||
		{ fail "can't make the bridge $NN_BR"; return 1; }
}

netns_cleanup() {
	ip link del "$NN_OUT" 2> /dev/null
	ip link del "$NN_BR" 2> /dev/null
	return 0
}

# netns_start LABEL [CONFIG] -- CMD...: CMD in a network namespace of its
# own (unshare -n), started once the namespace is configured: lo up, the
# veth ve0 to the bridge with the tree's address, a default route through
# the bridge, an iptables rule dropping port 9999, and CONFIG (commands
# run in the namespace). Sets PROG_PID.
netns_start() {
	local label=$1 extra=$2 go=$T_WORK/go-$1
	shift 3
	start_prog "$label" unshare -n sh -c 'while [ ! -e "$0" ]; do sleep 0.02; done; exec "$@"' "$go" "$@"
	local pid=$PROG_PID
	wait_until 5 test -e "/proc/$pid/ns/net" || { fail "no $label"; return 1; }
	wait_until 5 netns_differs "$pid" || { fail "$label has no network namespace of its own"; return 1; }
	ip link add "$NN_OUT" type veth peer name ve0 netns "$pid" && ip link set "$NN_OUT" master "$NN_BR" up &&
		nsenter -t "$pid" -n sh -c "ip link set lo up && ip addr add $NN_ADDR/24 dev ve0 && ip link set ve0 up &&
			ip route add default via $NN_HOST && iptables -w -A INPUT -p tcp --dport 9999 -j DROP && ${extra:-true}" ||
		{ fail "can't configure the network namespace of $label"; return 1; }
	touch "$go"
}

netns_differs() { [[ $(readlink "/proc/$1/ns/net") != "$(readlink /proc/self/ns/net)" ]]; }

# The http server's page, fetched from here through the veth.
netns_get() { curl -s --max-time 2 "http://$NN_ADDR:$NETNS_HTTP_PORT/" 2> /dev/null; }
netns_serves() { [[ $(netns_get) == "hello-netns-$NN" ]]; }

netns_http_server() {
	mkdir -p "$T_WORK/www" && echo "hello-netns-$NN" > "$T_WORK/www/index.html"
	netns_start http "${1:-}" -- "$PYTHON" -m http.server "$NETNS_HTTP_PORT" --bind 0.0.0.0 --directory "$T_WORK/www" ||
		return 1
	wait_until "$TMO" netns_serves || { fail "the server in the namespace does not answer" "$T_LOG/http.err"; return 1; }
}

# What the restored namespace of pid holds, as the dumped one did.
netns_check_restored() {
	local pid=$1 rules
	netns_differs "$pid" || { fail "pid $pid was restored into our network namespace"; return 1; }
	nsenter -t "$pid" -n ip -o addr show dev ve0 | grep -q "inet $NN_ADDR/24" ||
		fail "the restored ve0 has not $NN_ADDR: $(nsenter -t "$pid" -n ip -o addr)"
	nsenter -t "$pid" -n ip -o link show lo | grep -q 'LOOPBACK,UP' || fail "the restored lo is not up"
	nsenter -t "$pid" -n ip route | grep -q "default via $NN_HOST dev ve0" ||
		fail "the restored namespace has no default route: $(nsenter -t "$pid" -n ip route)"
	rules=$(nsenter -t "$pid" -n iptables -w -S INPUT 2> /dev/null)
	grep -q -- '--dport 9999 -j DROP' <<< "$rules" || fail "the restored namespace lost its iptables rule: $rules"
	! grep -q CRIU <<< "$rules" || fail "the network lock is still in the restored namespace: $rules"
	! nsenter -t "$pid" -n nft list tables 2> /dev/null | grep -q CRIU ||
		fail "the nftables lock is still in the restored namespace: $(nsenter -t "$pid" -n nft list tables)"
	ip link show "$NN_OUT" 2> /dev/null | grep -q "master $NN_BR" || fail "the outer end $NN_OUT is not in $NN_BR"
}

# An http server in its own namespace, served through the veth before the
# dump and after the restore; N and the dump's options (the nftables lock,
# whose table in the namespace is saved with its ruleset and lifted by the
# restore).
test_netns_http() {
	local pid rc n=$1
	shift
	netns_setup "$n" || return
	netns_http_server || { netns_cleanup; return; }
	pid=$PROG_PID
	dump dump "$pid" "$T_WORK/img" "$@" || { netns_cleanup; return; }
	expect_killed "$pid" || { netns_cleanup; return; }
	ls "$T_WORK/img"/netdev-*.img "$T_WORK/img"/ifaddr-*.img > /dev/null 2>&1 || fail "no netdev or ifaddr image"
	wait_until 5 eval '! ip link show "$NN_OUT" > /dev/null 2>&1'
	rc=$(stasis restore restore -D "$T_WORK/img" -d --veth-pair "ve0=$NN_OUT@$NN_BR")
	[[ $rc == 0 ]] || { fail "restore exited $(rc_text "$rc"): $(error_message restore)" "$T_LOG/restore.log"; netns_cleanup; return; }
	wait_until "$TMO" netns_serves || fail "the restored server does not answer through the veth" "$T_LOG/http.err"
	netns_check_restored "$pid"
	kill_leftovers
	netns_cleanup
}

# A TCP connection from inside the namespace to a server here, through the
# veth, kept by --tcp-established: the client goes on over it. With
# "criu": CRIU 4.2 restores it from stasis's images and dumps it again for
# stasis (interop.netns_tcp).
test_netns_tcp() {
	local pid n rc port=9411
	netns_setup "${2:-12}" || return
	start_prog echo "$PYTHON" -u -c '
import socket, socketserver, sys
class E(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            b = self.request.recv(4096)
            if not b: return
            self.request.sendall(b)
class S(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
s = S((sys.argv[1], int(sys.argv[2])), E)
print("READY", flush=True)
s.serve_forever()' "$NN_HOST" "$port"
	wait_until "$TMO" has_line "$T_LOG/echo.out" READY || { fail "no echo server" "$T_LOG/echo.err"; netns_cleanup; return; }
	netns_start client "" -- "$PYTHON" -u -c '
import socket, sys, time
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
i = 0
while True:
    i += 1
    m = b"%d\n" % i
    c.sendall(m)
    got = b""
    while len(got) < len(m):
        b = c.recv(100)
        if not b: sys.exit("connection closed at %d" % i)
        got += b
    if got != m: sys.exit("echo %r for %r" % (got, m))
    print(i, c.getsockname()[0], flush=True)
    time.sleep(0.02)' "$NN_HOST" "$port" || { netns_cleanup; return; }
	pid=$PROG_PID
	wait_until "$TMO" has_lines "$T_LOG/client.out" 5 || { fail "the client printed nothing" "$T_LOG/client.err"; netns_cleanup; return; }
	dump dump "$pid" "$T_WORK/img" --tcp-established || { netns_cleanup; return; }
	expect_killed "$pid" || { netns_cleanup; return; }
	if [[ ${1:-} == criu ]]; then
		# CRIU restores stasis's images and dumps the client again
		n=$(line_count "$T_LOG/client.out")
		wait_until 5 eval '! ip link show "$NN_OUT" > /dev/null 2>&1'
		timeout -k 5 "$TMO" "$CRIU_BIN" restore -D "$T_WORK/img" -d -o "$T_LOG/criu-restore.log" -v4 --tcp-established \
			--veth-pair "ve0=$NN_OUT@$NN_BR" > "$T_LOG/criu-restore.out" 2>&1 < /dev/null ||
			{ fail "CRIU could not restore stasis's images" "$T_LOG/criu-restore.log"; netns_cleanup; return; }
		wait_until "$TMO" has_lines "$T_LOG/client.out" $((n + 10)) ||
			{ fail "the client did not go on under CRIU: $(tail -1 "$T_LOG/client.err")" "$T_LOG/client.err"; netns_cleanup; return; }
		mkdir -p "$T_WORK/img2"
		timeout -k 5 "$TMO" "$CRIU_BIN" dump -t "$pid" -D "$T_WORK/img2" -o "$T_LOG/criu-dump.log" -v4 --tcp-established \
			> "$T_LOG/criu-dump.out" 2>&1 < /dev/null ||
			{ fail "CRIU could not dump the client" "$T_LOG/criu-dump.log"; netns_cleanup; return; }
		wait_gone "$pid" "$TMO" || { fail "pid $pid alive after CRIU's dump"; netns_cleanup; return; }
		mv "$T_WORK/img" "$T_WORK/img1" && mv "$T_WORK/img2" "$T_WORK/img"
	fi
	n=$(line_count "$T_LOG/client.out")
	wait_until 5 eval '! ip link show "$NN_OUT" > /dev/null 2>&1'
	rc=$(stasis restore restore -D "$T_WORK/img" -d --tcp-established --veth-pair "ve0=$NN_OUT@$NN_BR")
	[[ $rc == 0 ]] || { fail "restore exited $(rc_text "$rc"): $(error_message restore)" "$T_LOG/restore.log"; netns_cleanup; return; }
	# (the namespace's lock is lifted whole: no rule per connection to remove)
	! grep -q Error "$T_LOG/restore.stderr" || fail "the restore printed errors: $(head -c 300 "$T_LOG/restore.stderr")"
	wait_until "$TMO" has_lines "$T_LOG/client.out" $((n + 10)) ||
		fail "the client did not go on over its connection: $(tail -1 "$T_LOG/client.err")" "$T_LOG/client.err"
	netns_check_restored "$pid"
	kill_leftovers
	check_sequence <(cut -d' ' -f1 "$T_LOG/client.out")
	netns_cleanup
}

# --empty-ns net: the dump saves nothing of the namespace; the restore
# makes it empty and the setup-namespaces script (the caller's) makes the
# veth and its address, after which the server answers again.
test_netns_empty() {
	local pid rc script=$T_WORK/setup-ns.sh
	netns_setup 13 || return
	netns_http_server || { netns_cleanup; return; }
	pid=$PROG_PID
	dump dump "$pid" "$T_WORK/img" --empty-ns net || { netns_cleanup; return; }
	expect_killed "$pid" || { netns_cleanup; return; }
	! ls "$T_WORK/img"/netdev-*.img > /dev/null 2>&1 || fail "the --empty-ns net dump wrote a netdev image"
	cat > "$script" <<-SCRIPT
	#!/bin/sh
	[ "\$CRTOOLS_SCRIPT_ACTION" = setup-namespaces ] || exit 0
	echo "setup-namespaces \$CRTOOLS_INIT_PID \$(nsenter -t \$CRTOOLS_INIT_PID -n ip -o link | wc -l)" >> $T_WORK/setup.log
	ip link add $NN_OUT type veth peer name ve0 netns \$CRTOOLS_INIT_PID &&
	ip link set $NN_OUT master $NN_BR up &&
	nsenter -t \$CRTOOLS_INIT_PID -n sh -c 'ip link set lo up && ip addr add $NN_ADDR/24 dev ve0 && ip link set ve0 up'
	SCRIPT
	chmod +x "$script"
	wait_until 5 eval '! ip link show "$NN_OUT" > /dev/null 2>&1'
	rc=$(stasis restore restore -D "$T_WORK/img" -d --empty-ns net --action-script "$script")
	[[ $rc == 0 ]] || { fail "restore exited $(rc_text "$rc"): $(error_message restore)" "$T_LOG/restore.log"; netns_cleanup; return; }
	# the script saw the namespace with nothing but lo in it
	grep -q "^setup-namespaces [0-9]* 1$" "$T_WORK/setup.log" ||
		fail "setup-namespaces did not see an empty namespace: $(cat "$T_WORK/setup.log")"
	wait_until "$TMO" netns_serves || fail "the restored server does not answer through the script's veth"
	netns_differs "$pid" || fail "pid $pid was restored into our network namespace"
	kill_leftovers
	netns_cleanup
}

# A device stasis can't make again (an ifb) in the namespace: the dump
# names it and --empty-ns net, and the tree runs on.
test_netns_refused_device() {
	local pid rc
	netns_setup 14 || return
	netns_http_server "ip link add stifbin0 type ifb" || { netns_cleanup; return; }
	pid=$PROG_PID
	rc=$(stasis dump dump -t "$pid" -D "$T_WORK/img")
	[[ $rc != 0 ]] || { fail "the dump of a namespace with an ifb inside succeeded"; netns_cleanup; return; }
	grep -q "network device stifbin0 (ifb).*--empty-ns net" "$T_LOG/dump.stderr" ||
		fail "no error naming the device and --empty-ns net: $(error_message dump)"
	[[ ! -e $T_WORK/img/inventory.img ]] || fail "the refused dump left an inventory.img"
	wait_until 5 runs_freely "$pid" || fail "the server does not run freely after the refused dump"
	netns_serves || fail "the server does not answer after the refused dump"
	nsenter -t "$pid" -n iptables -w -S 2> /dev/null | grep -q CRIU && fail "the refused dump left the network locked"
	kill_leftovers
	netns_cleanup
}

# Restores that can't be done leave nothing: without a name for the
# veth's outer end (refused before anything is made, naming the option),
# and with a setup-namespaces script that fails after the veth is made
# (its outer end is deleted, no process is left).
test_netns_failed_restore() {
	local pid rc script=$T_WORK/fail-ns.sh
	netns_setup 15 || return
	netns_http_server || { netns_cleanup; return; }
	pid=$PROG_PID
	dump dump "$pid" "$T_WORK/img" || { netns_cleanup; return; }
	expect_killed "$pid" || { netns_cleanup; return; }
	wait_until 5 eval '! ip link show "$NN_OUT" > /dev/null 2>&1'
	rc=$(stasis restore restore -D "$T_WORK/img" -d)
	[[ $rc != 0 ]] || fail "a restore without --veth-pair succeeded"
	grep -q "veth to the outside: name its outer end with --veth-pair ve0=NAME" "$T_LOG/restore.stderr" ||
		fail "no error naming ve0 and --veth-pair: $(error_message restore)"
	printf '#!/bin/sh\n[ "$CRTOOLS_SCRIPT_ACTION" = setup-namespaces ] && exit 3\nexit 0\n' > "$script"
	chmod +x "$script"
	rc=$(stasis restore2 restore -D "$T_WORK/img" -d --veth-pair "ve0=$NN_OUT@$NN_BR" --action-script "$script")
	[[ $rc != 0 ]] || fail "the restore succeeded although setup-namespaces failed"
	grep -q "veth ve0 made" "$T_LOG/restore2.log" || fail "the failed restore did not get as far as the veth"
	! ip link show "$NN_OUT" > /dev/null 2>&1 || fail "the failed restore left the veth end $NN_OUT"
	wait_gone "$pid" "$TMO" || fail "pid $pid is alive after the failed restore"
	# later: the whole tree made, its post-restore script fails
	printf '#!/bin/sh\n[ "$CRTOOLS_SCRIPT_ACTION" = post-restore ] && exit 3\nexit 0\n' > "$script"
	rc=$(stasis restore3 restore -D "$T_WORK/img" -d --veth-pair "ve0=$NN_OUT@$NN_BR" --action-script "$script")
	[[ $rc != 0 ]] || fail "the restore succeeded although post-restore failed"
	! ip link show "$NN_OUT" > /dev/null 2>&1 || fail "the restore failed at post-restore left the veth end $NN_OUT"
	wait_gone "$pid" "$TMO" || fail "pid $pid is alive after the restore failed at post-restore"
	netns_cleanup
}

# Both ways with CRIU 4.2 (declared in interop.sh): CRIU restores the
# namespace from stasis's images, dumps it again, and stasis restores
# CRIU's images; the server answers through the veth after each, with its
# namespace as it was (TCP connections aside: the tcp test's).
test_netns_criu() {
	local pid rc
	netns_setup 16 || return
	netns_http_server || { netns_cleanup; return; }
	pid=$PROG_PID
	dump dump "$pid" "$T_WORK/img1" || { netns_cleanup; return; }
	expect_killed "$pid" || { netns_cleanup; return; }
	wait_until 5 eval '! ip link show "$NN_OUT" > /dev/null 2>&1'
	timeout -k 5 "$TMO" "$CRIU_BIN" restore -D "$T_WORK/img1" -d -o "$T_LOG/criu-restore.log" -v4 \
		--veth-pair "ve0=$NN_OUT@$NN_BR" > "$T_LOG/criu-restore.out" 2>&1 < /dev/null
	rc=$?
	[[ $rc == 0 ]] || { fail "CRIU could not restore stasis's images (rc $rc)" "$T_LOG/criu-restore.log"; netns_cleanup; return; }
	wait_until "$TMO" netns_serves || fail "the server restored by CRIU does not answer"
	netns_check_restored "$pid"
	mkdir -p "$T_WORK/img2"
	timeout -k 5 "$TMO" "$CRIU_BIN" dump -t "$pid" -D "$T_WORK/img2" -o "$T_LOG/criu-dump.log" -v4 \
		> "$T_LOG/criu-dump.out" 2>&1 < /dev/null
	rc=$?
	[[ $rc == 0 ]] || { fail "CRIU could not dump the restored server (rc $rc)" "$T_LOG/criu-dump.log"; netns_cleanup; return; }
	wait_gone "$pid" "$TMO" || { fail "pid $pid alive after CRIU's dump"; netns_cleanup; return; }
	wait_until 5 eval '! ip link show "$NN_OUT" > /dev/null 2>&1'
	rc=$(stasis restore restore -D "$T_WORK/img2" -d --veth-pair "ve0=$NN_OUT@$NN_BR")
	[[ $rc == 0 ]] || { fail "stasis could not restore CRIU's images (rc $rc): $(error_message restore)" "$T_LOG/restore.log"; netns_cleanup; return; }
	wait_until "$TMO" netns_serves || fail "the server restored by stasis from CRIU's images does not answer"
	netns_check_restored "$pid"
	kill_leftovers
	netns_cleanup
}

# Over RPC (swrk, as runc and podman drive it): veths names the outer end;
# then empty_ns CLONE_NEWNET both ways, the namespace filled by the
# client at the setup-namespaces notification.
test_netns_rpc() {
	local pid rc drive=$ROOT/tests/py/rpc_drive.py
	netns_setup 17 || return
	local setup="ip link add $NN_OUT type veth peer name ve0 netns \$PID && ip link set $NN_OUT master $NN_BR up && nsenter -t \$PID -n sh -c 'ip link set lo up && ip addr add $NN_ADDR/24 dev ve0 && ip link set ve0 up'"
	netns_http_server || { netns_cleanup; return; }
	pid=$PROG_PID
	timeout -k 5 "$TMO" "$PYTHON" "$drive" --bin "$STASIS" dump "$pid" "$T_WORK/img" > "$T_LOG/rpc-dump.out" 2>&1 < /dev/null ||
		{ fail "RPC dump failed: $(tail -1 "$T_LOG/rpc-dump.out")" "$T_WORK/img/dump.log"; netns_cleanup; return; }
	expect_killed "$pid" || { netns_cleanup; return; }
	wait_until 5 eval '! ip link show "$NN_OUT" > /dev/null 2>&1'
	timeout -k 5 "$TMO" "$PYTHON" "$drive" --bin "$STASIS" netrestore "$T_WORK/img" --veth "ve0=$NN_OUT@$NN_BR" \
		> "$T_LOG/rpc-restore.out" 2>&1 < /dev/null ||
		{ fail "RPC restore with veths failed: $(tail -1 "$T_LOG/rpc-restore.out")" "$T_WORK/img/restore.log"; netns_cleanup; return; }
	grep -q "^restored $pid$" "$T_LOG/rpc-restore.out" || fail "the RPC reply names no pid $pid: $(cat "$T_LOG/rpc-restore.out")"
	wait_until "$TMO" netns_serves || fail "the server restored over RPC does not answer"
	netns_check_restored "$pid"
	# empty_ns
	mkdir -p "$T_WORK/img2"
	timeout -k 5 "$TMO" "$PYTHON" "$drive" --bin "$STASIS" dump "$pid" "$T_WORK/img2" --empty-ns > "$T_LOG/rpc-dump2.out" 2>&1 < /dev/null ||
		{ fail "RPC dump with empty_ns failed: $(tail -1 "$T_LOG/rpc-dump2.out")" "$T_WORK/img2/dump.log"; netns_cleanup; return; }
	wait_gone "$pid" "$TMO" || { fail "pid $pid alive after the dump"; netns_cleanup; return; }
	wait_until 5 eval '! ip link show "$NN_OUT" > /dev/null 2>&1'
	timeout -k 5 "$TMO" "$PYTHON" "$drive" --bin "$STASIS" netrestore "$T_WORK/img2" --empty-ns --setup "$setup" \
		> "$T_LOG/rpc-restore2.out" 2>&1 < /dev/null ||
		{ fail "RPC restore with empty_ns failed: $(tail -1 "$T_LOG/rpc-restore2.out")" "$T_WORK/img2/restore.log"; netns_cleanup; return; }
	grep -q "^stages .*setup-namespaces" "$T_LOG/rpc-restore2.out" || fail "no setup-namespaces notification: $(cat "$T_LOG/rpc-restore2.out")"
	wait_until "$TMO" netns_serves || fail "the server restored over RPC with empty_ns does not answer"
	kill_leftovers
	netns_cleanup
}

# netns_criu_round PID CHECK DUMP_OPTS RESTORE_OPTS...: CRIU restores the
# tree of PID from stasis's images (T_WORK/img), CHECK (a command) looks
# at it, and CRIU dumps it again with DUMP_OPTS (words) into T_WORK/img
# for stasis to restore (the first images move to img1). 1 on a failure
# (recorded).
netns_criu_round() {
	local pid=$1 check=$2 dump_opts=$3
	shift 3
	timeout -k 5 "$TMO" "$CRIU_BIN" restore -D "$T_WORK/img" -d -o "$T_LOG/criu-restore.log" -v4 "$@" \
		> "$T_LOG/criu-restore.out" 2>&1 < /dev/null ||
		{ fail "CRIU could not restore stasis's images" "$T_LOG/criu-restore.log"; return 1; }
	$check
	mkdir -p "$T_WORK/img2"
	timeout -k 5 "$TMO" "$CRIU_BIN" dump -t "$pid" -D "$T_WORK/img2" -o "$T_LOG/criu-dump.log" -v4 $dump_opts \
		> "$T_LOG/criu-dump.out" 2>&1 < /dev/null ||
		{ fail "CRIU could not dump the restored tree" "$T_LOG/criu-dump.log"; return 1; }
	wait_gone "$pid" "$TMO" || { fail "pid $pid alive after CRIU's dump"; return 1; }
	mv "$T_WORK/img" "$T_WORK/img1" && mv "$T_WORK/img2" "$T_WORK/img"
}

# The devices of a namespace as a container or a VM host has them, each
# made again with its name, mtu, address, bridge and addresses: an inner
# bridge brin0 holding the veth to the host (ve0), one end of a veth pair
# inside (vi1; vi0 has an address of its own), a persistent tap no one
# holds (tapp0, with its owner and group) and a tap (tap0) whose other
# end is a program of the tree (tests/py/tap_peer.py, playing the host
# 10.77.N.9: it answers ARP with frames it writes and prints the UDP
# datagrams it reads). The web server answers from here on the bridge's
# address and vi0's (through the bridge and the pair), the tap peer gets
# a datagram sent from inside. With "criu" (interop.netns_devices): CRIU
# restores stasis's images, dumps them again, and stasis restores CRIU's.
NETNS_TAP_PEER=9

# What the namespace of pid holds: each device's name, mtu, bridge and
# link-layer address, and the IPv4 addresses.
netns_devices() {
	nsenter -t "$1" -n ip -o link | awk '{ n = $2; sub(/@.*/, "", n); sub(/:$/, "", n); m = ""; b = ""; a = ""
		for (i = 3; i < NF; i++) { if ($i == "mtu") m = $(i + 1); if ($i == "master") b = $(i + 1); if ($i == "link/ether") a = $(i + 1) }
		print n, "mtu", m, "master", b, a }' | sort
	nsenter -t "$1" -n ip -o -4 addr | awk '{ print $2, $4 }' | sort
}

netns_serves_at() { [[ $(curl -s --max-time 2 "http://$1:$NETNS_HTTP_PORT/" 2> /dev/null) == "hello-netns-$NN" ]]; }

# A datagram from inside the namespace of pid to the tap's peer, which
# prints it.
netns_tap_gets() {
	nsenter -t "$1" -n "$PYTHON" -c 'import socket, sys
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(sys.argv[2].encode(), (sys.argv[1], 9))' "10.77.$NN.$NETNS_TAP_PEER" "$2"
	grep -qx "udp $2" "$T_WORK/tap.out"
}

# Everything as it was in the namespace of pid, and traffic through it.
netns_devices_check() {
	local pid=$1 what=$2
	netns_devices "$pid" > "$T_WORK/devices-$what"
	diff "$T_WORK/devices-before" "$T_WORK/devices-$what" > "$T_WORK/devices-$what.diff" ||
		fail "$what: the devices differ: $(tr '\n' ' ' < "$T_WORK/devices-$what.diff")"
	wait_until "$TMO" netns_serves_at "$NN_ADDR" || fail "$what: the server does not answer on the inner bridge"
	wait_until "$TMO" netns_serves_at "10.77.$NN.3" || fail "$what: the server does not answer on vi0 (the inner veth pair)"
	wait_until "$TMO" netns_tap_gets "$pid" "$what" || fail "$what: the tap's peer got no datagram" "$T_WORK/tap.out"
	nsenter -t "$pid" -n ip -d link show tap0 | grep -q "tun type tap pi off.*persist off" ||
		fail "$what: tap0 is not as it was: $(nsenter -t "$pid" -n ip -d link show tap0 | grep tun)"
	nsenter -t "$pid" -n ip -d link show tapp0 | grep -Eq "tun type tap pi off.*persist on user (nobody|65534) group (nogroup|65534)" ||
		fail "$what: the persistent tapp0 is not as it was: $(nsenter -t "$pid" -n ip -d link show tapp0 | grep tun)"
	ip link show "$NN_OUT" 2> /dev/null | grep -q "master $NN_BR" || fail "$what: the outer end $NN_OUT is not in $NN_BR"
}

test_netns_devices() {
	local pid rc n=${2:-23} inner
	netns_setup "$n" || return
	inner="ip addr del $NN_ADDR/24 dev ve0 && ip link add brin0 type bridge && ip link set ve0 master brin0 &&
		ip addr add $NN_ADDR/24 dev brin0 && ip link set brin0 up &&
		ip link add vi0 mtu 1400 address 02:00:00:00:$n:01 type veth peer name vi1 && ip link set vi1 master brin0 up &&
		ip addr add 10.77.$n.3/24 dev vi0 && ip link set vi0 up && ip route replace default via $NN_HOST dev brin0 &&
		ip tuntap add dev tapp0 mode tap user 65534 group 65534"
	mkdir -p "$T_WORK/www" && echo "hello-netns-$NN" > "$T_WORK/www/index.html"
	netns_start http "$inner" -- sh -c '"$0" "$1" tap0 "$2" > "$3" 2>&1 &
		exec "$0" -m http.server "$4" --bind 0.0.0.0 --directory "$5"' "$PYTHON" "$ROOT/tests/py/tap_peer.py" \
		"10.77.$n.$NETNS_TAP_PEER" "$T_WORK/tap.out" "$NETNS_HTTP_PORT" "$T_WORK/www" || { netns_cleanup; return; }
	pid=$PROG_PID
	wait_until "$TMO" has_line "$T_WORK/tap.out" READY || { fail "the tap peer did not start" "$T_WORK/tap.out"; netns_cleanup; return; }
	nsenter -t "$pid" -n sh -c "ip link set tap0 mtu 1300 master brin0 up" || { fail "can't configure tap0"; netns_cleanup; return; }
	netns_devices "$pid" > "$T_WORK/devices-before"
	wait_until "$TMO" netns_serves_at "$NN_ADDR" || { fail "the server does not answer" "$T_LOG/http.err"; netns_cleanup; return; }
	wait_until "$TMO" netns_tap_gets "$pid" before || { fail "the tap's peer got no datagram" "$T_WORK/tap.out"; netns_cleanup; return; }
	dump dump "$pid" "$T_WORK/img" || { netns_cleanup; return; }
	expect_killed "$pid" || { netns_cleanup; return; }
	if [[ ${1:-} == criu ]]; then
		wait_until 5 eval '! ip link show "$NN_OUT" > /dev/null 2>&1'
		netns_criu_round "$pid" "netns_devices_check $pid criu" "" --veth-pair "ve0=$NN_OUT@$NN_BR" ||
			{ kill_leftovers; netns_cleanup; return; }
	fi
	wait_until 5 eval '! ip link show "$NN_OUT" > /dev/null 2>&1'
	rc=$(stasis restore restore -D "$T_WORK/img" -d --veth-pair "ve0=$NN_OUT@$NN_BR")
	[[ $rc == 0 ]] || { fail "restore exited $(rc_text "$rc"): $(error_message restore)" "$T_LOG/restore.log"; kill_leftovers; netns_cleanup; return; }
	netns_devices_check "$pid" restored
	kill_leftovers
	netns_cleanup
}

# A macvlan (mv0, mode bridge) on a device here (stmvpN, one end of a veth
# pair), reached from a macvlan of ours on the same device: the restore
# needs --external macvlan[mv0]:DEV (refused without, naming it), then
# the server answers on mv0, with its address and mode. With "criu"
# (interop.netns_macvlan): CRIU restores stasis's images and stasis
# CRIU's.
netns_macvlan_serves() { wait_until "$TMO" netns_serves_at "10.78.$1.2" || fail "the server restored by $2 does not answer on mv0"; }

test_netns_macvlan() {
	local pid rc n=${2:-25} lower host
	netns_setup "$n" || return
	lower=stmvp$n host=stmvh$n
	netns_macvlan_cleanup() { ip link del "$host" 2> /dev/null; ip link del "$lower" 2> /dev/null; netns_cleanup; }
	ip link add "$lower" type veth peer name "stmvq$n" && ip link set "$lower" up && ip link set "stmvq$n" up &&
		ip link add "$host" link "$lower" type macvlan mode bridge && ip addr add "10.78.$n.1/24" dev "$host" &&
		ip link set "$host" up || { fail "can't make the macvlan $host"; netns_macvlan_cleanup; return; }
	netns_http_server || { netns_macvlan_cleanup; return; }
	pid=$PROG_PID
	ip link add mv0 link "$lower" type macvlan mode bridge && ip link set mv0 netns "$pid" &&
		nsenter -t "$pid" -n sh -c "ip addr add 10.78.$n.2/24 dev mv0 && ip link set mv0 up" ||
		{ fail "can't give the namespace its macvlan"; netns_macvlan_cleanup; return; }
	wait_until "$TMO" netns_serves_at "10.78.$n.2" || { fail "the server does not answer on mv0"; netns_macvlan_cleanup; return; }
	netns_devices "$pid" > "$T_WORK/devices-before"
	dump dump "$pid" "$T_WORK/img" || { netns_macvlan_cleanup; return; }
	expect_killed "$pid" || { netns_macvlan_cleanup; return; }
	wait_until 5 eval '! ip link show "$NN_OUT" > /dev/null 2>&1'
	rc=$(stasis restore0 restore -D "$T_WORK/img" -d --veth-pair "ve0=$NN_OUT@$NN_BR")
	[[ $rc != 0 ]] || fail "a restore without --external macvlan[mv0]:DEV succeeded"
	grep -q "mv0 .*is a macvlan: name the device it goes on with --external macvlan\[mv0\]:DEV" "$T_LOG/restore0.stderr" ||
		fail "no error naming mv0 and --external macvlan: $(error_message restore0)"
	if [[ ${1:-} == criu ]]; then
		netns_criu_round "$pid" "netns_macvlan_serves $n CRIU" "" --veth-pair "ve0=$NN_OUT@$NN_BR" \
			--external "macvlan[mv0]:$lower" || { kill_leftovers; netns_macvlan_cleanup; return; }
		wait_until 5 eval '! ip link show "$NN_OUT" > /dev/null 2>&1'
	fi
	rc=$(stasis restore restore -D "$T_WORK/img" -d --veth-pair "ve0=$NN_OUT@$NN_BR" --external "macvlan[mv0]:$lower")
	[[ $rc == 0 ]] || { fail "restore exited $(rc_text "$rc"): $(error_message restore)" "$T_LOG/restore.log"; kill_leftovers; netns_macvlan_cleanup; return; }
	netns_macvlan_serves "$n" stasis
	netns_devices "$pid" > "$T_WORK/devices-after"
	diff "$T_WORK/devices-before" "$T_WORK/devices-after" > "$T_WORK/devices.diff" ||
		fail "the devices differ: $(tr '\n' ' ' < "$T_WORK/devices.diff")"
	nsenter -t "$pid" -n ip -d link show mv0 | grep -q "macvlan mode bridge" || fail "mv0 is not a macvlan in bridge mode"
	kill_leftovers
	netns_macvlan_cleanup
}

# A tap file held by a tree without a network namespace of its own (its
# device is the host's): refused in one line, as CRIU refuses it, and the
# program runs on.
test_netns_tun_no_netns() {
	local pid rc
	start_prog tap "$PYTHON" "$ROOT/tests/py/tap_peer.py" sttap27 10.79.27.9
	pid=$PROG_PID
	wait_until "$TMO" has_line "$T_LOG/tap.out" READY || { fail "the tap peer did not start" "$T_LOG/tap.err"; kill_leftovers; return; }
	rc=$(stasis dump dump -t "$pid" -D "$T_WORK/img")
	[[ $rc != 0 ]] || fail "the dump of a tun file without a network namespace succeeded"
	grep -q "fd [0-9]* is a tun file, and the tree has no network namespace of its own" "$T_LOG/dump.stderr" ||
		fail "no error naming the tun file: $(error_message dump)"
	wait_until 5 runs_freely "$pid" || fail "the tap peer does not run freely after the refused dump"
	kill_leftovers
}

# The namespace's connection tracking table (netns-ct-ID.img): a TCP
# connection over its loopback, whose entry got the mark 42 from an
# nftables rule that matches only SYN packets, keeps its entry with the
# mark (an entry made anew from the traffic after the restore would have
# none), and the connection goes on (--tcp-established). With "criu"
# (interop.netns_conntrack): CRIU restores stasis's images, and stasis
# CRIU's.
netns_ct_mark() { nsenter -t "$1" -n cat /proc/net/nf_conntrack 2> /dev/null | grep "dport=9415 " | grep -q "mark=42 "; }

# The entry of the restored pid has its mark, and the connection goes on
# past line N (default: the lines there are).
netns_ct_check() {
	local n=${3:-$(line_count "$T_LOG/ct.out")}
	netns_ct_mark "$1" || fail "$2's restore lost the conntrack entry: $(nsenter -t "$1" -n cat /proc/net/nf_conntrack)"
	wait_until "$TMO" has_lines "$T_LOG/ct.out" $((n + 10)) || fail "the connection did not go on under $2" "$T_LOG/ct.err"
}

test_netns_conntrack() {
	local pid n rc
	start_prog ct unshare -n sh -c 'ip link set lo up && nft add table ip stasis_ct &&
		nft add chain ip stasis_ct out "{ type filter hook output priority 0; }" &&
		nft add rule ip stasis_ct out tcp dport 9415 tcp flags syn ct mark set 42 && exec "$0" -u -c "$1"' "$PYTHON" '
import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 9415)); s.listen()
c = socket.create_connection(("127.0.0.1", 9415)); a, _ = s.accept()
i = 0
while True:
    i += 1
    c.sendall(b"%d\n" % i)
    got = b""
    while not got.endswith(b"\n"):
        got += a.recv(100)
    print(int(got), flush=True)
    time.sleep(0.02)'
	pid=$PROG_PID
	wait_until "$TMO" has_lines "$T_LOG/ct.out" 5 || { fail "the program printed nothing" "$T_LOG/ct.err"; kill_leftovers; return; }
	netns_ct_mark "$pid" || { fail "no conntrack entry with mark 42: $(nsenter -t "$pid" -n cat /proc/net/nf_conntrack)"; kill_leftovers; return; }
	dump dump "$pid" "$T_WORK/img" --tcp-established || { kill_leftovers; return; }
	expect_killed "$pid" || { kill_leftovers; return; }
	[[ -s $(echo "$T_WORK"/img/netns-ct-*.img) ]] || fail "the dump wrote no conntrack entry"
	if [[ ${1:-} == criu ]]; then
		netns_criu_round "$pid" "netns_ct_check $pid CRIU" --tcp-established --tcp-established || { kill_leftovers; return; }
	fi
	n=$(line_count "$T_LOG/ct.out")
	rc=$(stasis restore restore -D "$T_WORK/img" -d --tcp-established)
	[[ $rc == 0 ]] || { fail "restore exited $(rc_text "$rc"): $(error_message restore)" "$T_LOG/restore.log"; kill_leftovers; return; }
	netns_ct_check "$pid" stasis "$n"
	kill_leftovers
	check_sequence "$T_LOG/ct.out"
}

run_test --alone netns.http test_netns_http 11
run_test --alone netns.http_nft test_netns_http 18 --network-lock nftables
run_test --alone netns.rpc test_netns_rpc
run_test --alone netns.tcp test_netns_tcp stasis 12
run_test --alone netns.empty test_netns_empty
run_test --alone netns.refused_device test_netns_refused_device
run_test --alone netns.failed_restore test_netns_failed_restore
run_test --alone netns.devices test_netns_devices stasis 23
run_test --alone netns.macvlan test_netns_macvlan stasis 25
run_test --alone netns.tun_no_netns test_netns_tun_no_netns
run_test --alone netns.conntrack test_netns_conntrack

# A non-root RPC client and network namespaces (tests/cases/security.sh's
# service and user): the user's own process in a network namespace of its
# own (made in a user namespace of the user's) is not dumped (its devices
# and firewall would be read and made again by root); and images the user
# edited to claim one (a device whose outer end root would make, rules
# root would load) are not restored.
test_sec_netns_dump() {
	local rc
	sec_setup || return
	as_user unshare -Ur -n true 2> /dev/null ||
		{ skip "the test user can't make a user namespace here (in a chroot, or user namespaces off)"; return; }
	sec_user_prog netuser unshare -Ur -n sh -c ": netuser-marker; i=0; while :; do i=\$((i+1)); echo \$i; sleep 0.02; done" ||
		return
	netns_differs "$UPID" || { fail "harness: the user's program is not in a network namespace of its own"; return; }
	as_user mkdir "$T_WORK/user/img"
	# without the network lock, which the service refuses a client first
	rc=$(attack dump dump-nolock "$UPID" "$T_WORK/user/img")
	grep -q "success=False" "$T_LOG/dump.out" || { fail "the service dumped the user's network namespace: $(cat "$T_LOG/dump.out")"; return; }
	grep -q "network namespace of its own: only root may dump it" "$T_WORK/user/img/dump.log" ||
		fail "the dump's log names no network namespace: $(grep -m1 Error "$T_WORK/user/img/dump.log")"
	wait_until 5 runs_freely "$UPID" || fail "the user's program does not run on after the refusal"
}

test_sec_forged_netns() {
	sec_forge_ns net_ns_id '
dev = {"magic": "NETDEV", "entries": [{"type": "VETH", "ifindex": 2, "mtu": 1500, "flags": 0, "name": "ve0"}]}
pycriu.images.dump(dev, open("%s/netdev-999.img" % d, "wb"))
pycriu.images.dump({"magic": "NETNS", "entries": [{}]}, open("%s/netns-999.img" % d, "wb"))' || return
	sec_forged_refused network
}

# Images a user forged to hold a tun file attached to a device (which,
# opened by root in the user's process, would make that device in the
# host's namespace): the service refuses it, and no device is made.
test_sec_forged_tunfile() {
	local rc img=$T_WORK/user/img
	sec_setup || return
	user_counter victim || return
	as_user mkdir "$img"
	rc=$(attack dump dump "$UPID" "$img")
	grep -q "success=True" "$T_LOG/dump.out" || { fail "the user's dump failed: $(cat "$T_LOG/dump.out")"; return; }
	wait_gone "$UPID" || { fail "the counter survived its dump"; return; }
	as_user "$PYTHON" - "$img" "$UPID" << 'PY' || { fail "harness: could not forge the images"; return; }
import sys
import pycriu
d, pid = sys.argv[1], sys.argv[2]
ids = pycriu.images.load(open("%s/ids-%s.img" % (d, pid), "rb"))["entries"][0]
files = pycriu.images.load(open("%s/files.img" % d, "rb"))
new = max(e["id"] for e in files["entries"]) + 1
files["entries"].append({"type": "REG", "id": new, "reg": {"id": new, "flags": 2, "pos": 0, "fown": {"uid": 0, "euid": 0, "signum": 0, "pid_type": 0, "pid": 0}, "name": "/dev/net/tun"}})
files["entries"].append({"type": "TUNF", "id": new, "tunf": {"id": new, "netdev": "stevil0", "ns_id": 999}})
pycriu.images.dump(files, open("%s/files.img" % d, "wb"))
path = "%s/fdinfo-%d.img" % (d, ids["files_id"])
fdi = pycriu.images.load(open(path, "rb"))
fdi["entries"].append({"id": new, "flags": 0, "type": "TUNF", "fd": 50})
pycriu.images.dump(fdi, open(path, "wb"))
PY
	forget_checksums "$img"
	rc=$(rpc_user urestore --sk "$SVC_SOCK" restore "$img")
	[[ $rc != 0 ]] || fail "the service restored a forged tun file for the user"
	grep -q "only root may restore tun files" "$img/restore.log" ||
		fail "the restore's log names no tun file: $(grep -m1 Error "$img/restore.log")"
	! ip link show stevil0 > /dev/null 2>&1 || { fail "the forged restore made the device stevil0"; ip link del stevil0; }
	! alive "$UPID" || fail "pid $UPID was restored"
}

run_test sec.netns_dump test_sec_netns_dump
run_test sec.forged_netns test_sec_forged_netns
run_test sec.forged_tunfile test_sec_forged_tunfile
