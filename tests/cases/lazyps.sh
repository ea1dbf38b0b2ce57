# Remote lazy restore (migration with lazy pages, as CRIU's "lazy
# migration"): the source's `dump --lazy-pages --address A --port P`
# writes every image but the lazy memory and serves that from the frozen
# tree; the destination's `lazy-pages --page-server --address A --port P`
# asks it for the pages (PS_IOV_GET) as the restored tree touches them
# and in the background. Over loopback on one machine, the copy restored
# beside the frozen source in a new pid namespace (--new-pidns: the old
# pid is taken); tests/progs/lazymem.c checks every word of its memory.
# A source killed mid-way takes the copy with it (with an error, no hang)
# while the source's tree runs on; the source survives garbage on its port.

LAZYPS_MIB=256
LAZYPS_OPTS=()	# more options of both ends (a test's own: --tls)

# lazyps_source TAG [ENV...]: lazymem of LAZYPS_MIB MiB, dumped with
# --lazy-pages on a free port of 127.0.0.1, copied to DST once the images
# are complete (the dump serves from then on). SRC_PID (the program),
# DUMP_PID (the dump), LPS_PORT, DST (the destination's images).
lazyps_source() {
	local tag=$1
	start_prog lazymem "$BIN/lazymem" "$LAZYPS_MIB"
	SRC_PID=$PROG_PID
	wait_ready lazymem "$SRC_PID" || return
	mkdir -p "$T_WORK/img"
	note "stasis dump -t $SRC_PID --lazy-pages --address 127.0.0.1 --port 0 (in the background)"
	timeout -k 5 $((TMO * 4)) "$STASIS" dump -t "$SRC_PID" -D "$T_WORK/img" --lazy-pages \
		--address 127.0.0.1 --port 0 "${LAZYPS_OPTS[@]}" -o "$T_LOG/$tag.log" -v4 \
		> "$T_LOG/$tag.stdout" 2> "$T_LOG/$tag.stderr" < /dev/null &
	DUMP_PID=$!
	T_PIDS+=("$DUMP_PID")
	wait_until "$TMO" grep -q "lazy pages: serving" "$T_LOG/$tag.log" ||
		{ fail "$tag: the dump does not serve its lazy pages" "$T_LOG/$tag.log"; return 1; }
	LPS_PORT=$(sed -n 's/.*lazy pages: serving.* port \([0-9]*\).*/\1/p' "$T_LOG/$tag.log" | head -n1)
	note "$tag: dump pid $DUMP_PID serves on port $LPS_PORT"
	local kib
	kib=$(du -sk "$T_WORK/img" | cut -f1)
	((kib < 4096)) || fail "$tag: the source wrote $kib KiB of images: the lazy memory was written" || return
	DST=$T_WORK/dst
	cp -a "$T_WORK/img" "$DST"
}

# lazyps_dest TAG [ENV...]: the destination's daemon (LAZY_PID) and a
# `restore -d --new-pidns --lazy-pages` (COPY_PID: the copy, as we see it).
lazyps_dest() {
	local tag=$1 rc
	shift
	rc=$(env "$@" "$STASIS" lazy-pages -D "$DST" --page-server --address 127.0.0.1 --port "$LPS_PORT" -d \
		"${LAZYPS_OPTS[@]}" --pidfile "$T_WORK/lazy.pid" -o "$T_LOG/lazy.log" -v4 < /dev/null > "$T_LOG/lazy.stdout" 2>&1; echo $?)
	[[ $rc == 0 ]] || { fail "$tag: lazy-pages --page-server exited $rc" "$T_LOG/lazy.log"; return 1; }
	LAZY_PID=$(pidfile_pid "$T_WORK/lazy.pid")
	T_PIDS+=("$LAZY_PID")
	rc=$(stasis "$tag" restore -D "$DST" --lazy-pages -d --new-pidns --pidfile "$T_WORK/$tag.pid")
	[[ $rc == 0 ]] || { fail "$tag: restore --lazy-pages --new-pidns exited $(rc_text "$rc"): $(error_message "$tag")" "$T_LOG/$tag.log"; return 1; }
	COPY_PID=$(pidfile_pid "$T_WORK/$tag.pid")
	T_PIDS+=("$COPY_PID" "$(status_field "$COPY_PID" PPid)")
	[[ -n $COPY_PID ]] && alive "$COPY_PID" || { fail "$tag: the restored copy does not run" "$T_LOG/$tag.log"; return 1; }
	note "$tag: the copy is pid $COPY_PID; the source $SRC_PID stays frozen"
}

# Garbage on the source's port first (a connection that says nothing, a
# command that is no request, a request for memory that is not lazy):
# each is dropped and the real daemon served after them.
lazyps_garbage() {
	exec {fd}<>/dev/tcp/127.0.0.1/"$LPS_PORT" && exec {fd}>&-
	exec {fd}<>/dev/tcp/127.0.0.1/"$LPS_PORT" && { head -c 100 /dev/urandom >&$fd; sleep 0.2; exec {fd}>&-; }
	# PS_IOV_GET (7) of one page at address 0x1000 of pid 1
	exec {fd}<>/dev/tcp/127.0.0.1/"$LPS_PORT" &&
		{ printf '\x07\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\0\x10\0\0\0\0\0\0\x01\0\0\0\0\0\0\0' >&$fd; sleep 0.2; exec {fd}>&-; }
	wait_until 5 test "$(grep -c "connection is dropped" "$T_LOG/dump.log")" -ge 3 ||
		fail "the source did not drop the three garbage connections" "$T_LOG/dump.log"
	alive "$DUMP_PID" || { fail "the source's dump died of garbage on its port" "$T_LOG/dump.log"; return 1; }
}

test_lazyps_stasis() {
	if [[ ${1:-} == tls ]]; then
		make_certs "$T_WORK/certs" || return
		read -ra LAZYPS_OPTS <<< "$(tls_args "$T_WORK/certs")"
	fi
	lazyps_source dump || return
	lazyps_garbage || return
	lazyps_dest restore || return
	grep -q "memory rebuilt: .*, [0-9] KiB of pages read\|memory rebuilt: .*, [0-9][0-9] KiB of pages read" "$T_LOG/restore.log" ||
		fail "the restore read more than a few KiB itself: not lazy" "$T_LOG/restore.log"
	kill -USR1 "$COPY_PID"
	wait_until $((TMO * 2)) has_line "$T_LOG/lazymem.out" PASS
	check_output lazymem
	lazy_done lazy || return
	# the source's dump ends once the daemon closed its session, its tree killed
	wait_child "$DUMP_PID" "$TMO"
	[[ $CHILD_RC == 0 ]] || fail "the source's dump exited $CHILD_RC" "$T_LOG/dump.log"
	expect_killed "$SRC_PID"
	grep -q "lazy pages: the daemon is done, [0-9]* KiB served" "$T_LOG/dump.log" ||
		fail "the source does not say what it served" "$T_LOG/dump.log"
	[[ ${1:-} != tls ]] || grep -q "TLS: session up" "$T_LOG/dump.log" || fail "the daemon's session was not TLS" "$T_LOG/dump.log"
}
run_test lazyps.stasis test_lazyps_stasis
run_test lazyps.tls test_lazyps_stasis tls

# runc checkpoint --lazy-pages's way, over RPC (through `stasis swrk` and
# through the service): a DUMP with lazy_pages serves the tree's memory
# on ps.port, tells status-ready (a notification, then a byte on the
# client's status_fd) once it listens, and replies once the destination's
# daemon has had every lazy page; the copy runs on, the source is killed.
test_lazyps_rpc() {
	local mode=$1 target port
	if [[ $mode == sk ]]; then
		service_start || return
		target=(--sk "$SVC_SOCK")
	else
		target=(--bin "$STASIS")
	fi
	start_prog lazymem "$BIN/lazymem" "$LAZYPS_MIB"
	SRC_PID=$PROG_PID
	wait_ready lazymem "$SRC_PID" || return
	LPS_PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	timeout -k 5 $((TMO * 4)) "$PYTHON" "$ROOT/tests/py/rpc_drive.py" "${target[@]}" lazydump "$SRC_PID" "$T_WORK/img" \
		"$LPS_PORT" > "$T_LOG/rpcdump.out" 2> "$T_LOG/rpcdump.err" < /dev/null &
	DUMP_PID=$!
	T_PIDS+=("$DUMP_PID")
	wait_until "$TMO" grep -q "^ready\|^FAIL\|^dump" "$T_LOG/rpcdump.out"
	has_line "$T_LOG/rpcdump.out" ready ||
		{ fail "the RPC dump did not tell status-ready with a byte on status_fd: $(cat "$T_LOG/rpcdump.out")" "$T_WORK/img/dump.log"; return 1; }
	grep -q "lazy pages: serving .* port $LPS_PORT" "$T_WORK/img/dump.log" ||
		fail "the dump does not serve on ps.port $LPS_PORT" "$T_WORK/img/dump.log"
	DST=$T_WORK/dst
	cp -a "$T_WORK/img" "$DST"
	lazyps_dest restore || return
	kill -USR1 "$COPY_PID"
	wait_until $((TMO * 2)) has_line "$T_LOG/lazymem.out" PASS
	check_output lazymem
	lazy_done lazy || return
	wait_child "$DUMP_PID" "$TMO"
	has_line "$T_LOG/rpcdump.out" "dump ok " ||
		fail "the RPC dump did not reply success: $(tail -n2 "$T_LOG/rpcdump.out")" "$T_WORK/img/dump.log"
	grep -q "^stages .*post-dump,status-ready" "$T_LOG/rpcdump.out" ||
		fail "stages told: $(grep ^stages "$T_LOG/rpcdump.out")"
	expect_killed "$SRC_PID"
}
run_test lazyps.rpc_bin test_lazyps_rpc bin
run_test lazyps.rpc_sk test_lazyps_rpc sk

# kill -9 of the source's dump while the copy faults on memory still to
# come (the daemon's background copy held back): the copy dies with an
# error naming the lost page server, no hang; the source's tree, let go
# by its dead dumper, runs on with all its memory.
test_lazyps_source_killed() {
	lazyps_source dump || return
	lazyps_dest restore STASIS_TEST_LAZY_BG_DELAY_MS=$((TMO * 1000)) || return
	kill -9 "$(pgrep -P "$DUMP_PID")"	# stasis, under its `timeout`
	kill -USR1 "$COPY_PID"
	wait_gone "$COPY_PID" "$TMO" || { fail "the copy still runs after its source died" "$T_LOG/lazy.log"; return 1; }
	wait_gone "$LAZY_PID" "$TMO" || fail "the daemon still runs after its source died" "$T_LOG/lazy.log"
	grep -q "page server closed the connection\|page server did not answer\|can't connect" "$T_LOG/lazy.log" ||
		fail "no error of the daemon names the lost page server" "$T_LOG/lazy.log"
	! grep -q '^PASS\|^FAIL' "$T_LOG/lazymem.out" || fail "the copy answered after its source died" "$T_LOG/lazymem.out"
	runs_freely "$SRC_PID" || { fail "the source's tree did not run on after its dump was killed"; return 1; }
	kill -USR1 "$SRC_PID"
	wait_until "$TMO" has_line "$T_LOG/lazymem.out" PASS
	check_output lazymem
}
run_test lazyps.source_killed test_lazyps_source_killed

# The frozen source program is killed (by its user, the OOM killer)
# while its dump serves it: before any daemon came (waiting), or while
# the destination's copy runs (serving). It stays a zombie its parent
# can't reap while the dump traces it, so the dump must see it go and
# end, naming it (it waited for a connection forever before); a copy
# that runs dies with the daemon's error, never left with holes.
test_lazyps_source_tree_killed() {
	local when=$1
	lazyps_source dump || return
	[[ $when == serving ]] && { lazyps_dest restore STASIS_TEST_LAZY_BG_DELAY_MS=$((TMO * 1000)) || return; }
	kill -9 "$SRC_PID"
	wait_child "$DUMP_PID" "$TMO"
	if [[ $CHILD_RC == timeout ]]; then	# stasis under its `timeout`: its tracee can't be reaped before it goes
		kill -9 "$(pgrep -P "$DUMP_PID")"
		fail "the dump still serves a tree that was killed ($when)" "$T_LOG/dump.log"
		return 1
	fi
	[[ $CHILD_RC != 0 ]] || { fail "the dump exited 0 after its tree was killed" "$T_LOG/dump.log"; return 1; }
	grep -q "lazy pages: pid $SRC_PID of the tree ended" "$T_LOG/dump.log" ||
		fail "the dump does not say its tree's pid $SRC_PID ended" "$T_LOG/dump.log"
	wait_child "$SRC_PID" "$TMO"	# reaped by us, its parent, now that nobody traces it
	[[ $CHILD_RC == 137 ]] || fail "the killed source was not reaped as killed: $CHILD_RC"
	[[ $when == serving ]] || return 0
	kill -USR1 "$COPY_PID"
	wait_gone "$COPY_PID" "$TMO" || { fail "the copy still runs after its source died" "$T_LOG/lazy.log"; return 1; }
	wait_gone "$LAZY_PID" "$TMO" || fail "the daemon still runs after its source died" "$T_LOG/lazy.log"
	! grep -q '^PASS\|^FAIL' "$T_LOG/lazymem.out" || fail "the copy answered after its source died" "$T_LOG/lazymem.out"
}
run_test lazyps.source_tree_killed_waiting test_lazyps_source_tree_killed waiting
run_test lazyps.source_tree_killed_serving test_lazyps_source_tree_killed serving

# CRIU's lazy-pages daemon asks stasis's source (the restore is
# stasis's: CRIU can't restore beside the frozen source, its pid taken).
# The other way, CRIU 4.2's dump --lazy-pages can't serve on this kernel
# (its page pipe's tee() fails with EPERM on the first request).
test_lazyps_criu_daemon() {
	lazyps_source dump || return
	timeout -k 5 "$TMO" "$CRIU_BIN" lazy-pages -D "$DST" --page-server --address 127.0.0.1 --port "$LPS_PORT" -d \
		--pidfile "$T_WORK/criu-lazy.pid" -o "$T_LOG/criu-lazy.log" -v4 > "$T_LOG/criu-lazy.stderr" 2>&1 < /dev/null ||
		{ fail "criu lazy-pages --page-server -d failed" "$T_LOG/criu-lazy.log"; return 1; }
	LAZY_PID=$(pidfile_pid "$T_WORK/criu-lazy.pid")
	T_PIDS+=("$LAZY_PID")
	local rc
	rc=$(stasis restore restore -D "$DST" --lazy-pages -d --new-pidns --pidfile "$T_WORK/restore.pid")
	[[ $rc == 0 ]] || { fail "restore --lazy-pages with CRIU's daemon exited $(rc_text "$rc"): $(error_message restore)" "$T_LOG/restore.log"; return 1; }
	COPY_PID=$(pidfile_pid "$T_WORK/restore.pid")
	T_PIDS+=("$COPY_PID" "$(status_field "$COPY_PID" PPid)")
	kill -USR1 "$COPY_PID"
	wait_until $((TMO * 2)) has_line "$T_LOG/lazymem.out" PASS
	check_output lazymem
	wait_gone "$LAZY_PID" "$TMO" || fail "CRIU's lazy-pages daemon did not end" "$T_LOG/criu-lazy.log"
	wait_child "$DUMP_PID" "$TMO"
	[[ $CHILD_RC == 0 ]] || fail "the source's dump exited $CHILD_RC after CRIU's daemon" "$T_LOG/dump.log"
	expect_killed "$SRC_PID"
}
run_test --needs criu interop.lazyps_criu_daemon test_lazyps_criu_daemon

# The source dies before the restore: the daemon's first request fails
# while the restore is still making the tree (its calls in a process
# fault on lazy memory). The restore must fail, saying the daemon is gone,
# not wait forever on the fault; no copy is left; the source runs on.
test_lazyps_source_dead_early() {
	local rc
	lazyps_source dump || return
	rc=$("$STASIS" lazy-pages -D "$DST" --page-server --address 127.0.0.1 --port "$LPS_PORT" -d \
		--pidfile "$T_WORK/lazy.pid" -o "$T_LOG/lazy.log" -v4 < /dev/null > "$T_LOG/lazy.stdout" 2>&1; echo $?)
	[[ $rc == 0 ]] || { fail "lazy-pages --page-server exited $rc" "$T_LOG/lazy.log"; return 1; }
	LAZY_PID=$(pidfile_pid "$T_WORK/lazy.pid")
	T_PIDS+=("$LAZY_PID")
	kill -9 "$(pgrep -P "$DUMP_PID")"
	rc=$(stasis restore restore -D "$DST" --lazy-pages -d --new-pidns --pidfile "$T_WORK/restore.pid")
	[[ $rc != 124 && $rc != 137 ]] || { fail "the restore hung after the source died" "$T_LOG/restore.log"; return 1; }
	if [[ $rc == 0 ]]; then	# the tree ran before any fault: the guard's turn
		COPY_PID=$(pidfile_pid "$T_WORK/restore.pid")
		T_PIDS+=("$COPY_PID")
		kill -USR1 "$COPY_PID"
		wait_gone "$COPY_PID" "$TMO" || fail "the copy runs on without its source" || return
	else
		grep -q "lazy-pages daemon is gone" "$T_LOG/restore.log" ||
			fail "the failed restore does not say its daemon is gone" "$T_LOG/restore.log"
	fi
	wait_gone "$LAZY_PID" "$TMO" || fail "the daemon still runs after its source died" "$T_LOG/lazy.log"
	runs_freely "$SRC_PID" || { fail "the source's tree did not run on after its dump was killed"; return 1; }
	kill -USR1 "$SRC_PID"
	wait_until "$TMO" has_line "$T_LOG/lazymem.out" PASS
	check_output lazymem
}
run_test lazyps.source_dead_early test_lazyps_source_dead_early
