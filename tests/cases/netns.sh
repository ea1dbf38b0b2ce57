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

# A device stasis can't make again (a bridge) in the namespace: the dump
# names it and --empty-ns net, and the tree runs on.
test_netns_refused_device() {
	local pid rc
	netns_setup 14 || return
	netns_http_server "ip link add stbrin0 type bridge" || { netns_cleanup; return; }
	pid=$PROG_PID
	rc=$(stasis dump dump -t "$pid" -D "$T_WORK/img")
	[[ $rc != 0 ]] || { fail "the dump of a namespace with a bridge inside succeeded"; netns_cleanup; return; }
	grep -q "network device stbrin0 (bridge).*--empty-ns net" "$T_LOG/dump.stderr" ||
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

run_test --alone netns.http test_netns_http 11
run_test --alone netns.http_nft test_netns_http 18 --network-lock nftables
run_test --alone netns.rpc test_netns_rpc
run_test --alone netns.tcp test_netns_tcp stasis 12
run_test --alone netns.empty test_netns_empty
run_test --alone netns.refused_device test_netns_refused_device
run_test --alone netns.failed_restore test_netns_failed_restore

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

run_test sec.netns_dump test_sec_netns_dump
run_test sec.forged_netns test_sec_forged_netns
