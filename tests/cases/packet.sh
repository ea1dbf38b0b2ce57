# Packet and netlink sockets in real programs (tests/progs/packet.c and
# netlink.c have the sockets and options one by one): `ip monitor`
# through a checkpoint, still printing what changes; and what the dump
# refuses as CRIU does, which must cost the program nothing.

# A lo address of the test's own (127.78.x.y), added and removed by `ip`.
pk_addr() { echo "127.78.$((($1 >> 8) & 255)).$(($1 & 255))"; }

# `ip monitor` (all it watches: its socket is in groups above 32 too),
# dumped, restored, then an address added to lo and removed: both show.
# Alone: others' events would wait unread in its socket at the dump.
test_ip_monitor() {
	local pid exe a
	command -v ip > /dev/null || { skip "no ip (iproute2)"; return; }
	start_prog ipmon ip monitor
	pid=$PROG_PID
	a=$(pk_addr "$pid")
	wait_until "$TMO" runs_freely "$pid" || { fail "ip monitor did not start" "$T_LOG/ipmon.err"; return; }
	sleep 0.3
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	restore_detached restore "$T_WORK/img" "$pid" "$exe" 0 || return
	ip addr add "$a/32" dev lo && ip addr del "$a/32" dev lo || { fail "can't add $a to lo"; return; }
	wait_until "$TMO" grep -q "^Deleted .*inet $a/32" "$T_LOG/ipmon.out" ||
		{ fail "the restored ip monitor did not print the deleted address $a" "$T_LOG/ipmon.out"; return; }
	grep -q "^[0-9]*: lo *inet $a/32" "$T_LOG/ipmon.out" ||
		fail "the restored ip monitor did not print the added address $a" "$T_LOG/ipmon.out"
	kill "$pid"
}

run_test --alone real.ip_monitor test_ip_monitor

# What the dump refuses, in one line naming the pid, the fd and the
# socket, and the program runs on: "pending", a route socket with an
# announcement not yet read (the tree runs on and reads it after);
# "closed", a packet socket's ring still mapped once its fd is closed.
PK_REFUSED='
import mmap, os, signal, socket, struct, subprocess, sys, time
got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
if sys.argv[1] == "pending":
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    s.bind((0, 0x10))   # RTMGRP_IPV4_IFADDR
    a = sys.argv[2] + "/32"
    subprocess.run(["ip", "addr", "add", a, "dev", "lo"], check=True)
    subprocess.run(["ip", "addr", "del", a, "dev", "lo"], check=True)
    time.sleep(0.2)
else:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    req = struct.pack("IIII", 4096, 1, 2048, 2)
    s.setsockopt(263, 5, req)   # SOL_PACKET, PACKET_RX_RING
    m = mmap.mmap(s.fileno(), 4096)
    name = os.readlink("/proc/self/fd/%d" % s.fileno())
    s.close()
    for fd in os.listdir("/proc/self/fd"):   # mmap keeps an fd of its own
        try:
            if os.readlink("/proc/self/fd/" + fd) == name:
                os.close(int(fd))
        except OSError:
            pass
print("READY", flush=True)
while not got:
    time.sleep(0.05)
if sys.argv[1] == "pending":
    s.setblocking(False)
    print("READ", len(s.recv(8192)), flush=True)
'

# test_refused KIND MESSAGE(ERE, after "pid PID: ")
test_refused() {
	local kind=$1 msg=$2 pid rc
	start_prog refused "$PYTHON" -c "$PK_REFUSED" "$kind" "$(pk_addr $$)"
	pid=$PROG_PID
	wait_ready refused "$pid" || return
	rc=$(stasis dump dump -t "$pid" -D "$T_WORK/img")
	[[ $rc != 0 ]] || { fail "the $kind socket was dumped"; return; }
	grep -qE "^Error: pid $pid: $msg" "$T_LOG/dump.stderr" || fail "message: $(error_message dump)"
	(($(wc -l < "$T_LOG/dump.stderr") == 1)) || fail "more than one line on stderr" "$T_LOG/dump.stderr"
	[[ ! -e $T_WORK/img/inventory.img ]] || fail "the failed dump left an inventory.img"
	runs_freely "$pid" || { fail "the program does not run freely after the refused dump"; return; }
	kill -USR1 "$pid"
	wait_gone "$pid" || fail "the program did not end after SIGUSR1"
	[[ $kind != pending ]] || grep -qE "^READ [1-9]" "$T_LOG/refused.out" ||
		fail "the announcement was not there to read after the refused dump" "$T_LOG/refused.out"
}

run_test --alone netlink.refused_pending test_refused pending \
	"fd 3: netlink socket [0-9]+ has messages not yet read, which would be lost"
run_test packet.refused_closed_ring test_refused closed \
	"maps socket:\[[0-9]+\], a socket it has no fd on"
