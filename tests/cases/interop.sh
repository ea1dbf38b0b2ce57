# Images exchanged with a real CRIU (CRIU_BIN): a python counter dumped
# by stasis is restored by CRIU, dumped again by CRIU and restored by
# stasis; the count goes on with no gap or repeat through both.
test_criu_interop() {
	local out=$T_LOG/counter.out pid n rc
	start_prog counter "$PYTHON" -u -c '
import time
i = 0
while True:
    i += 1
    print(i, flush=True)
    time.sleep(0.05)'
	pid=$PROG_PID
	wait_until "$TMO" has_lines "$out" 5 || { fail "counter produced no output"; return; }
	dump dump "$pid" "$T_WORK/img1" || return
	wait_gone "$pid" "$TMO" || { fail "pid $pid alive after the dump"; return; }
	timeout -k 5 "$TMO" "$CRIU_BIN" restore -D "$T_WORK/img1" -d -o "$T_LOG/criu-restore.log" -v4 \
		> "$T_LOG/criu-restore.out" 2>&1 < /dev/null
	rc=$?
	[[ $rc == 0 ]] || { fail "CRIU could not restore stasis's images (rc $rc)" "$T_LOG/criu-restore.log"; return; }
	n=$(line_count "$out")
	wait_until "$TMO" has_lines "$out" $((n + 5)) || { fail "the counter did not go on under CRIU's restore"; return; }
	mkdir -p "$T_WORK/img2"
	timeout -k 5 "$TMO" "$CRIU_BIN" dump -t "$pid" -D "$T_WORK/img2" -o "$T_LOG/criu-dump.log" -v4 \
		> "$T_LOG/criu-dump.out" 2>&1 < /dev/null
	rc=$?
	[[ $rc == 0 ]] || { fail "CRIU could not dump the restored counter (rc $rc)" "$T_LOG/criu-dump.log"; return; }
	wait_gone "$pid" "$TMO" || { fail "pid $pid alive after CRIU's dump"; return; }
	rc=$(stasis restore restore -D "$T_WORK/img2" -d)
	[[ $rc == 0 ]] || { fail "stasis could not restore CRIU's images (rc $rc): $(error_message restore)" "$T_LOG/restore.log"; return; }
	n=$(line_count "$out")
	wait_until "$TMO" has_lines "$out" $((n + 5)) || { fail "the counter did not go on under stasis's restore"; return; }
	kill -9 "$pid"
	wait_gone "$pid" "$TMO"
	check_sequence "$out"
}

run_test --needs criu interop.criu test_criu_interop
# a network namespace of the tree's own (tests/cases/netns.sh)
run_test --alone --needs criu interop.netns test_netns_criu
run_test --alone --needs criu interop.netns_tcp test_netns_tcp criu 19
run_test --alone --needs criu interop.netns_devices test_netns_devices criu 24
run_test --alone --needs criu interop.netns_macvlan test_netns_macvlan criu 26
run_test --alone --needs criu interop.netns_conntrack test_netns_conntrack criu

# Terminals of each kind (tests/progs/pty_kinds.c, but for input in flight
# in canonical mode, which CRIU echoes again): a pty slave's owner and
# mode, hung-up slaves, the console and a virtual terminal; stasis dumps,
# CRIU restores and dumps, stasis restores, and the program checks them
# (test_criu_prog, below).
run_test --needs criu interop.criu_tty test_criu_prog pty_kinds nocanon

# A test program through both tools: dumped by stasis, restored by CRIU,
# dumped by CRIU, restored by stasis, then it checks its own state
# (posix_timers: timers and their ids; task_attrs: oom_score_adj,
# loginuid, scheduling policies, ambient capabilities).
# test_criu_prog PROG [ARGS...]
test_criu_prog() {
	local prog=$1 pid rc exe
	exe=$(readlink -f "$BIN/$prog")
	start_prog "$prog" "$BIN/$prog" "${@:2}"
	pid=$PROG_PID
	wait_ready "$prog" "$pid" || return
	dump dump "$pid" "$T_WORK/img1" || return
	wait_gone "$pid" "$TMO" || { fail "pid $pid alive after the dump"; return; }
	timeout -k 5 "$TMO" "$CRIU_BIN" restore -D "$T_WORK/img1" -d -o "$T_LOG/criu-restore.log" -v4 \
		> "$T_LOG/criu-restore.out" 2>&1 < /dev/null
	rc=$?
	[[ $rc == 0 ]] || { fail "CRIU could not restore stasis's images (rc $rc)" "$T_LOG/criu-restore.log"; return; }
	sleep 0.2
	mkdir -p "$T_WORK/img2"
	timeout -k 5 "$TMO" "$CRIU_BIN" dump -t "$pid" -D "$T_WORK/img2" -o "$T_LOG/criu-dump.log" -v4 \
		> "$T_LOG/criu-dump.out" 2>&1 < /dev/null
	rc=$?
	[[ $rc == 0 ]] || { fail "CRIU could not dump the restored $prog (rc $rc)" "$T_LOG/criu-dump.log"; return; }
	wait_gone "$pid" "$TMO" || { fail "pid $pid alive after CRIU's dump"; return; }
	restore_detached restore "$T_WORK/img2" "$pid" "$exe" 1 || return
	sleep 0.2
	kill -USR1 "$pid"
	wait_gone "$pid" || fail "restored $prog did not exit after SIGUSR1" "$T_LOG/$prog.out"
	check_output "$prog"
}

run_test --needs criu interop.criu_posix_timers test_criu_prog posix_timers
run_test --needs criu interop.criu_task_attrs test_criu_prog task_attrs
# mmap flags, madvise hints, THP off (VmaEntry.flags and .madv, MmEntry.thp_disabled)
run_test --needs criu interop.criu_mem_flags test_criu_prog mem_flags

# file mappings opened again with the program's access (VmaEntry.fdflags)
run_test --needs criu interop.criu_mem_file test_criu_prog mem_file

# shared anonymous memory open as a file and mapped from it, privately and
# shared: a memfd "/dev/zero" in the images (VMA_AREA_MEMFD), as CRIU saves it
run_test --needs criu interop.criu_shmem_file test_criu_prog shmem_file

# MAP_HUGETLB memory, private and shared (MAP_HUGE_* in VmaEntry.flags)
run_test --needs criu --needs hugepages interop.criu_mem_huge test_criu_prog mem_huge

# memfd_create(MFD_HUGETLB) files and their mappings (MemfdInodeEntry.hugetlb_flag,
# MAP_HUGE_* in VmaEntry.flags)
run_test --needs criu --needs hugepages interop.criu_memfd_huge test_criu_prog memfd_huge

# guard regions (madvise(MADV_GUARD_INSTALL)): VmaEntry entries of status
# VMA_AREA_GUARD alone, after the mappings
run_test --needs criu --needs kernel:guard_pages interop.criu_guard_pages test_criu_prog guard_pages

# a tree in a time namespace of its own (timens-ID.img): its clocks go on
run_test --needs criu --needs kernel:time_namespaces interop.criu_timens test_criu_prog timens

# membarrier() registrations (TaskCoreEntry.membarrier_registration_mask)
run_test --needs criu interop.criu_membarrier test_criu_prog membarrier

# io_setup() rings (MmEntry.aios, VMA_AREA_AIORING)
run_test --needs criu interop.criu_aio test_criu_prog aio_ring

# IPv4 and IPv6 sockets (tests/progs/inet.c: listeners, bound and unbound
# TCP sockets, UDP pairs, options): the program checks every socket, that
# the listeners accept and the UDP pairs exchange
run_test --needs criu interop.criu_inet test_criu_prog inet

# A tree in an IPC namespace of its own (ipcns-var/shm/sem/msg images,
# ns_per_id): stasis writes a segment's bytes after its entry, CRIU in
# pagemap-shmem images; each restores the other's (CRIU does not keep a
# message queue's size: "criu" tells the program)
run_test --needs criu interop.criu_ipc_ns test_criu_prog ipc_ns criu
# cgroups (cases/cgroup.sh): the tree of cgtree.py in cgroups of its own,
# dumped by one with --manage-cgroups, its cgroups removed, restored by
# the other: the cgroups and their limits are back, each process in its own.
run_test --needs criu interop.criu_cgroup_to_criu cg_tree stasis criu
run_test --needs criu interop.criu_cgroup_from_criu cg_tree criu stasis

# Packet sockets (tests/progs/packet.c: a filter, a membership, a fanout
# group, a mapped TPACKET_V3 ring; PacketSockEntry, VMA_AREA_SOCKET): both
# receive after each restore. CRIU's dump reads no fanout flags.
run_test --needs criu interop.criu_packet test_criu_prog packet criu

# Netlink sockets (tests/progs/netlink.c: groups, a bound port, a connected
# peer; NetlinkSkEntry), but for groups above 32, which CRIU refuses.
run_test --alone --needs criu interop.criu_netlink test_criu_prog netlink criu

# Zombies (tests/progs/zombies.c): CRIU lists a zombie in pstree.img with
# no thread, stasis with its pid; each restores the other's
run_test --needs criu interop.criu_zombies test_criu_prog zombies
# Established TCP connections (tests/py/tcp_prog.py pair: both ends in the
# tree, data unread both ways): stasis dumps with --tcp-established, CRIU
# restores and dumps them (tcp-stream images), stasis restores, and the
# two ends read all the other sent, then echo lines. Nothing is left
# unsent in a send queue: CRIU writes that data out of repair mode while
# the peer's socket may not exist yet, which only its network lock (the
# rules of its own dump) keeps from being answered with a reset. CRIU runs
# without its network lock (--network-lock skip): the iptables rules of its
# dump would stay for its own restore to remove.
test_criu_tcp() {
	local v=$1 pid rc exe
	start_prog pair "$PYTHON" -u "$ROOT/tests/py/tcp_prog.py" pair "$v" 50000
	pid=$PROG_PID
	wait_ready pair "$pid" || return
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img1" --tcp-established || return
	wait_gone "$pid" "$TMO" || { fail "pid $pid alive after the dump"; return; }
	timeout -k 5 "$TMO" "$CRIU_BIN" restore -D "$T_WORK/img1" -d --tcp-established --network-lock skip -o "$T_LOG/criu-restore.log" \
		-v4 > "$T_LOG/criu-restore.out" 2>&1 < /dev/null
	rc=$?
	[[ $rc == 0 ]] || { fail "CRIU could not restore stasis's images (rc $rc)" "$T_LOG/criu-restore.log"; return; }
	sleep 0.2
	mkdir -p "$T_WORK/img2"
	timeout -k 5 "$TMO" "$CRIU_BIN" dump -t "$pid" -D "$T_WORK/img2" --tcp-established --network-lock skip -o "$T_LOG/criu-dump.log" \
		-v4 > "$T_LOG/criu-dump.out" 2>&1 < /dev/null
	rc=$?
	[[ $rc == 0 ]] || { fail "CRIU could not dump the restored pair (rc $rc)" "$T_LOG/criu-dump.log"; return; }
	wait_gone "$pid" "$TMO" || { fail "pid $pid alive after CRIU's dump"; return; }
	ls "$T_WORK/img2"/tcp-stream-*.img > /dev/null 2>&1 || { fail "CRIU wrote no tcp-stream image"; return; }
	restore_detached restore "$T_WORK/img2" "$pid" "$exe" 1 --tcp-established || return
	kill -USR1 "$pid"
	wait_gone "$pid" || fail "the restored pair did not end" "$T_LOG/pair.out"
	check_output pair
}

run_test --needs criu interop.criu_tcp test_criu_tcp 4
run_test --needs criu interop.criu_tcp6 test_criu_tcp 6
run_test --needs criu --needs mntroot interop.mntns test_mntns_criu	# cases/mntns.sh
run_test --needs criu --needs mntroot interop.mntns_nested test_mntns_nested_criu	# cases/mntns.sh
