# Fuzzing (fuzz/README.md): the RPC request decoder and restore's image
# loading, each run for STASIS_FUZZ_SECONDS (default 25) under libFuzzer
# with ASan/UBSan/LSan. Seeds are made here: requests packed by
# gen_rpc_seeds, and a real dump of build/tests/fuzz (which must restore
# and PASS, so the seed is known good), a dump of it as uid 1000, a
# --shell-job dump of it (ttys), a dump of seccomp_threads (seccomp.img),
# a dump of posix_timers (POSIX timers in the core), one of ipc_ns in UTS
# and IPC namespaces of its own,
# a dump of cgtree.py in cgroups (cgroup.img),
# dumps of notify.sh's programs (pidfds, epoll targets moved), of packet
# and netlink sockets (tests/progs/packet.c, netlink.c),
# a TCP pair (tcp-stream images), a tree in a network namespace of its
# own (netdev, netns),
# and fuzz/regressions.py's inputs for the
# bugs found so far. A crash, leak, sanitizer report, hang (-timeout), fd
# left open, or an allocation of 32 MiB or more (-malloc_limit_mb) fails
# the test and leaves the reproducer in the test's log directory. No
# clang/libFuzzer is a failure too (scripts/install-deps.sh installs them).

FUZZ_SECONDS=${STASIS_FUZZ_SECONDS:-25}

# fuzz_run NAME CORPUS SEEDS [LIBFUZZER ARGS...]: runs one fuzzer, notes
# its figures; fails with the reproducer's path on any finding.
fuzz_run() {
	local name=$1 corpus=$2 seeds=$3 log=$T_LOG/$1.log rc found
	shift 3
	mkdir -p "$corpus"
	note "fuzzing $name for ${FUZZ_SECONDS}s"
	# fuzz_image's scratch directory: on tmpfs for speed, ours to remove
	local tmp
	tmp=$(mktemp -d /dev/shm/stasis-fuzz.XXXXXX 2>/dev/null || mktemp -d "$T_WORK/fuzztmp.XXXXXX")
	(cd "$T_WORK" && STASIS_FUZZ_TMP=$tmp exec timeout -k 5 $((FUZZ_SECONDS + 60)) nice "$ROOT/build/fuzz/$name" -max_total_time="$FUZZ_SECONDS" \
		-timeout=10 -rss_limit_mb=1024 -malloc_limit_mb=32 -close_fd_mask=2 -print_final_stats=1 \
		-artifact_prefix="$T_LOG/$name-" "$@" "$corpus" "$seeds") > "$log" 2>&1
	rc=$?
	rm -rf "$tmp"
	note "$name: $(grep -m1 -o 'Done [0-9]* runs in [0-9]* second(s)' "$log"), $(grep 'DONE\|#[0-9]*.*cov:' "$log" | tail -n1 | grep -o 'cov: [0-9]* ft: [0-9]* corp: [^ ]*'), exec/s $(awk '/stat::average_exec_per_sec/ { print $2 }' "$log"), exit $rc"
	found=$(ls "$T_LOG/$name"-* 2>/dev/null | head -n1)
	if [[ $rc != 0 || -n $found ]]; then
		fail "$name found a bug (exit $rc): reproduce with build/fuzz/$name ${found:-(no artifact, see the log)}" "$log"
		return 1
	fi
	grep -q 'Done [0-9]* runs' "$log" || fail "$name did not run (see $log)" "$log"
}

# A terminal job's dump (--shell-job) adds tty files and tty-info.img.
shell_job_seed() {
	local out=$T_LOG/ttyseed.out spid pid
	(cd "$T_FILES" && exec script -qfec "$BIN/fuzz" /dev/null > "$out" 2>&1 < /dev/null) &
	spid=$!
	T_PIDS+=("$spid")
	wait_until "$TMO" grep -q READY "$out" || { fail "the terminal seed program printed no READY" "$out"; return 1; }
	pid=$(child_of "$spid") || { fail "script has no child"; return 1; }
	T_PIDS+=("$pid")
	dump ttydump "$pid" "$T_WORK/img_tty" --shell-job || return 1
	[[ -s $T_WORK/img_tty/tty-info.img ]] || { fail "the --shell-job dump has no tty-info.img"; return 1; }
	"$PYTHON" "$ROOT/fuzz/pack_images.py" "$T_WORK/img_tty" "$T_WORK/image_seeds/shell_job" >> "$T_LOG/runner.log"
}

# The same program as uid 1000 without capabilities, what fuzz_image's
# unprivileged client is: its images pass those checks and reach further.
# (Dumped only: restoring a non-root process is not what is tested here.)
uid1000_seed() {
	local pid
	cp "$BIN/fuzz" "$T_WORK/seedprog"
	chmod 0755 "$T_WORK" "$T_WORK/seedprog"
	mkdir -p "$T_WORK/files1000"
	chmod 0777 "$T_WORK/files1000"
	(cd "$T_WORK/files1000" && exec setsid setpriv --reuid=1000 --regid=1000 --clear-groups \
		"$T_WORK/seedprog" > "$T_LOG/seed1000.out" 2> "$T_LOG/seed1000.err" < /dev/null) &
	pid=$!
	T_PIDS+=("$pid")
	T_SIDS+=("$pid")
	wait_ready seed1000 "$pid" || return 1
	dump dump1000 "$pid" "$T_WORK/img1000" || return 1
	expect_killed "$pid" || return 1
	"$PYTHON" "$ROOT/fuzz/pack_images.py" "$T_WORK/img1000" "$T_WORK/image_seeds/tree_uid1000" >> "$T_LOG/runner.log"
}

# Threads with seccomp filters and strict mode (seccomp.img and the
# thread cores' seccomp fields; tests/cases/seccomp.sh restores the like).
seccomp_seed() {
	local pid
	start_prog seccompseed "$BIN/seccomp_threads" mixed
	pid=$PROG_PID
	wait_ready seccompseed "$pid" || return 1
	dump dumpseccomp "$pid" "$T_WORK/img_seccomp" || return 1
	[[ -s $T_WORK/img_seccomp/seccomp.img ]] || { fail "the seccomp seed has no seccomp.img"; return 1; }
	"$PYTHON" "$ROOT/fuzz/pack_images.py" "$T_WORK/img_seccomp" "$T_WORK/image_seeds/seccomp" >> "$T_LOG/runner.log"
}

# POSIX timers (the main core's task_timers_entry.posix, checked at load).
# cgroup.img: cgtree.py in cgroups of its own (cases/cgroup.sh).
cgroup_seed() {
	CG_NOSKIP=1 cg_layout || return 0	# no cgroups to be in
	cg_remove && cg_make || return 1
	start_prog cgseed "$PYTHON" -u "$ROOT/tests/progs/cgtree.py" $(cg_args)
	wait_ready cgseed "$PROG_PID" || return 1
	dump dumpcgroup "$PROG_PID" "$T_WORK/img_cgroup" --manage-cgroups || return 1
	[[ -s $T_WORK/img_cgroup/cgroup.img ]] || { fail "the cgroup seed has no cgroup.img"; return 1; }
	cg_remove || return 1
	"$PYTHON" "$ROOT/fuzz/pack_images.py" "$T_WORK/img_cgroup" "$T_WORK/image_seeds/cgroup" >> "$T_LOG/runner.log"
}

timers_seed() {
	local pid
	start_prog timersseed "$BIN/posix_timers"
	pid=$PROG_PID
	wait_ready timersseed "$pid" || return 1
	dump dumptimers "$pid" "$T_WORK/img_timers" || return 1
	"$PYTHON" "$ROOT/fuzz/pack_images.py" "$T_WORK/img_timers" "$T_WORK/image_seeds/timers" >> "$T_LOG/runner.log"
}

# A tree with UTS and IPC namespaces of its own (utsns and ipcns-*
# images: System V objects, a queue's messages; ns ids compared with the
# inventory's at load).
ns_seed() {
	local pid
	start_prog nsseed unshare -u "$BIN/ipc_ns"
	pid=$PROG_PID
	wait_ready nsseed "$pid" || return 1
	dump dumpns "$pid" "$T_WORK/img_ns" || return 1
	ls "$T_WORK"/img_ns/utsns-*.img "$T_WORK"/img_ns/ipcns-msg-*.img > /dev/null ||
		{ fail "the namespace seed has no utsns or ipcns images"; return 1; }
	"$PYTHON" "$ROOT/fuzz/pack_images.py" "$T_WORK/img_ns" "$T_WORK/image_seeds/ns" >> "$T_LOG/runner.log"
}

# A container with a mount namespace of its own (mountpoints-ID.img, read
# at load; cases/mntns.sh), where busybox is installed.
mnt_seed() {
	command -v busybox > /dev/null || { note "no busybox: no mount namespace seed"; return 0; }
	root_is_mount || { note "/ is not a mount point (a chroot): no mount namespace seed"; return 0; }
	start_container || return 1
	dump dumpmnt "$PROG_PID" "$T_WORK/img_mnt" "${MNT_DUMP_EXT[@]}" || return 1
	"$PYTHON" "$ROOT/fuzz/pack_images.py" "$T_WORK/img_mnt" "$T_WORK/image_seeds/mnt" >> "$T_LOG/runner.log"
}

# A tree in a network namespace of its own (netdev- and netns-ID.img,
# read and checked at load; the raw ones are read only when the namespace
# is made).
netns_seed() {
	local pid
	start_prog netseed unshare -n "$BIN/fuzz"
	pid=$PROG_PID
	wait_ready netseed "$pid" || return 1
	dump dumpnet "$pid" "$T_WORK/img_net" || return 1
	ls "$T_WORK"/img_net/netdev-*.img "$T_WORK"/img_net/netns-*.img > /dev/null ||
		{ fail "the network namespace seed has no netdev or netns images"; return 1; }
	"$PYTHON" "$ROOT/fuzz/pack_images.py" "$T_WORK/img_net" "$T_WORK/image_seeds/netns" >> "$T_LOG/runner.log"
}

# A tree in a time namespace of its own (timens-ID.img, read at load) and
# one with guard regions (VMA_AREA_GUARD entries in mm-PID.img), where
# the kernel has them.
mem_ns_seeds() {
	local prog pid
	for prog in timens guard_pages; do
		[[ $prog == timens ]] && ! kernel_has time_namespaces && continue
		[[ $prog == guard_pages ]] && ! kernel_has guard_pages && continue
		start_prog "seed_$prog" "$BIN/$prog"
		pid=$PROG_PID
		wait_ready "seed_$prog" "$pid" || return 1
		dump "dump_$prog" "$pid" "$T_WORK/img_$prog" || return 1
		"$PYTHON" "$ROOT/fuzz/pack_images.py" "$T_WORK/img_$prog" "$T_WORK/image_seeds/$prog" >> "$T_LOG/runner.log"
	done
}

# fds of tests/cases/notify.sh's kinds (pidfds, live and dead; an epoll
# whose targets moved; inotify and fanotify on a deleted file), dumped from their
# programs there.
notify_seed() {
	local prog label pid dir
	mkdir -p "$T_FILES/notify"
	make_shm_dir || return 1
	for prog in pidfds epoll_moved inotify_deleted fanotify_marks; do
		label=seed_$prog
		dir=$T_FILES/notify
		[[ $prog == fanotify_marks ]] && dir=$SHM_DIR	# a mount it sees (notify.sh)
		start_prog "$label" "$PYTHON" "$ROOT/tests/progs/$prog.py" "$dir"
		pid=$PROG_PID
		wait_ready "$label" "$pid" || return 1
		dump "dump_$prog" "$pid" "$T_WORK/img_$prog" || return 1
		expect_killed "$pid" || return 1
		"$PYTHON" "$ROOT/fuzz/pack_images.py" "$T_WORK/img_$prog" "$T_WORK/image_seeds/$prog" >> "$T_LOG/runner.log"
	done
}

# Packet and netlink sockets (files.img's psk and nlsk entries, a ring's
# VMA_AREA_SOCKET mapping), dumped from tests/progs/packet.c and netlink.c.
socket_seed() {
	local prog pid
	for prog in packet netlink; do
		start_prog "seed_$prog" "$BIN/$prog"
		pid=$PROG_PID
		wait_ready "seed_$prog" "$pid" || return 1
		dump "dump_$prog" "$pid" "$T_WORK/img_$prog" || return 1
		expect_killed "$pid" || return 1
		"$PYTHON" "$ROOT/fuzz/pack_images.py" "$T_WORK/img_$prog" "$T_WORK/image_seeds/$prog" >> "$T_LOG/runner.log"
	done
}

# TCP connections (tcp-stream images: their queues' bytes after the
# entry), both ends of a pair dumped with --tcp-established, a little
# data unread each way.
tcp_seed() {
	local pid
	start_prog tcpseed "$PYTHON" -u "$ROOT/tests/py/tcp_prog.py" pair 4 4000
	pid=$PROG_PID
	wait_ready tcpseed "$pid" || return 1
	dump dumptcp "$pid" "$T_WORK/img_tcp" --tcp-established --network-lock skip || return 1	# never restored
	expect_killed "$pid" || return 1
	ls "$T_WORK/img_tcp"/tcp-stream-*.img > /dev/null 2>&1 || { fail "the TCP seed has no tcp-stream image"; return 1; }
	"$PYTHON" "$ROOT/fuzz/pack_images.py" "$T_WORK/img_tcp" "$T_WORK/image_seeds/tcp" >> "$T_LOG/runner.log"
}

# An image that is a FIFO (a non-root RPC client chooses the directory)
# must fail the restore at once, not hang it.
fifo_image_refused() {
	local pid=$1 rc
	cp -r "$T_WORK/img" "$T_WORK/img_fifo"
	rm "$T_WORK/img_fifo/core-$pid.img"
	mkfifo "$T_WORK/img_fifo/core-$pid.img"
	rc=$(stasis fifo restore -D "$T_WORK/img_fifo")
	[[ $rc != 0 && $rc != 124 && $rc != 137 ]] || { fail "restore with a FIFO for core-$pid.img exited $(rc_text "$rc")" "$T_LOG/fifo.log"; return 1; }
	grep -q "not a regular file" "$T_LOG/fifo.stderr" || fail "the FIFO image is not named as such" "$T_LOG/fifo.stderr"
}

test_fuzz() {
	local pid exe
	note "building the fuzzers (make fuzz)"
	if ! make -s -C "$ROOT" -j"$(nproc)" fuzz > "$T_LOG/make-fuzz.log" 2>&1; then
		fail "can't build the fuzzers with clang and libFuzzer (Debian: clang libclang-rt-14-dev; see scripts/install-deps.sh)" \
			"$T_LOG/make-fuzz.log"
		return
	fi
	mkdir -p "$T_WORK/rpc_seeds" "$T_WORK/image_seeds"
	"$ROOT/build/fuzz/gen_rpc_seeds" "$T_WORK/rpc_seeds" >> "$T_LOG/runner.log" ||
		{ fail "gen_rpc_seeds failed"; return; }

	start_prog seedprog "$BIN/fuzz"
	pid=$PROG_PID
	wait_ready seedprog "$pid" || return
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	"$PYTHON" "$ROOT/fuzz/pack_images.py" "$T_WORK/img" "$T_WORK/image_seeds/tree" >> "$T_LOG/runner.log" ||
		{ fail "pack_images.py failed"; return; }
	restore_foreground restore "$T_WORK/img"
	wait_restored restore "$pid" "$exe" 1 "$RESTORE_PID" || return
	kill -USR1 "$pid"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output seedprog
	[[ -z $T_FAIL ]] || return
	fifo_image_refused "$pid" || return
	uid1000_seed || return
	shell_job_seed || return
	seccomp_seed || return
	timers_seed || return
	ns_seed || return
	mnt_seed || return
	netns_seed || return
	cgroup_seed || return
	mem_ns_seeds || return
	notify_seed || return
	socket_seed || return
	tcp_seed || return
	"$PYTHON" "$ROOT/fuzz/regressions.py" "$T_WORK/img" "$T_WORK/image_seeds" >> "$T_LOG/runner.log" ||
		{ fail "regressions.py failed"; return; }

	fuzz_run fuzz_rpc "$T_WORK/rpc_corpus" "$T_WORK/rpc_seeds" -max_len=65536
	fuzz_run fuzz_image "$T_WORK/image_corpus" "$T_WORK/image_seeds" -max_len=262144
}

# Alone: it keeps every CPU busy for its whole run, and would slow the
# tests beside it past their timeouts.
run_test --alone fuzz.decoders test_fuzz
