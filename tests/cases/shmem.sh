# Shared anonymous memory of a process tree (src/dump/shmem.c,
# src/restore/shmem.c), with build/tests/shmem: areas shared across fork
# (MAP_SHARED|MAP_ANONYMOUS and /dev/zero), one mapped at an offset, one
# page of a process that exited, and areas one process maps alone; after
# the restore every process checks the contents and that writes still
# reach the others (see the program). And Python's multiprocessing, which
# shares memory every way it can.

# shmem_restore_check DIR: the shmem tree restored from DIR in the
# foreground, the same tree again, and its own check of every area.
shmem_restore_check() {
	restored_tree_passes shmem "$1"
}

# Every dump saves shared memory whole, a dump over a parent too: after a
# first dump that tracks memory (a pre-dump, or a --track-mem snapshot)
# every process of the tree writes its shared pages again (SIGUSR2: the
# program prints "GEN 2" once all have), then the dump over that parent
# must hold the new pages, which the restored tree checks.
shmem_incremental() {
	local how=$1 rc args=(pre-dump)
	[[ $how == snapshot ]] && args=(dump -R --track-mem)
	tree_start shmem "$BIN/shmem" || return
	mkdir -p "$T_WORK/img1"
	rc=$(stasis first "${args[@]}" -t "$TREE_ROOT" -D "$T_WORK/img1")
	[[ $rc == 0 ]] || {
		fail "first: stasis ${args[*]} exited $(rc_text "$rc"): $(error_message first)" "$T_LOG/first.log"
		return
	}
	expect_tree first "$TREE_ROOT" "$TREE_SIG" || return
	kill -USR2 "$TREE_ROOT"
	wait_until "$TMO" has_line "$T_LOG/shmem.out" "GEN 2" ||
		fail "shmem did not write its second generation" "$T_LOG/shmem.out" || return
	dump dump "$TREE_ROOT" "$T_WORK/img2" --prev-images-dir ../img1 || return
	expect_tree_killed || return
	shmem_restore_check "$T_WORK/img2"
}

# The last line of FILE is a number of at least N.
progress_at_least() { (($(tail -n1 "$1" 2>/dev/null || echo 0) >= $2)) 2>/dev/null; }

# python_mp VIA PROCS TOTAL PROG [ARG...]: Python's multiprocessing,
# PROG (in tests/progs, given ARGs) of PROCS processes, dumped (to local
# images, or through a page server with VIA "ps") mid-work: its progress,
# one number a line, is past 30 of TOTAL steps, and its ARGs hold it at a
# step until the file "go" exists, made once it is restored; it then
# finishes and checks every shared result itself (result.txt).
# mp_shared.py: the parent, its resource tracker and three workers sharing
# a Value, an Array, a SharedMemory and an anonymous mmap; mp_pool.py: a
# Pool of three.
python_mp() {
	local via=$1 procs=$2 total=$3 prog=$4 out=$T_LOG/mp.out pid n at_dump
	shift 4
	start_prog mp "$PYTHON" -u "$ROOT/tests/progs/$prog" "$@"
	pid=$PROG_PID
	wait_until "$TMO" progress_at_least "$out" 30 || fail "$prog made no progress" "$T_LOG/mp.err" || return
	n=$(tree_members "$pid" | wc -l)
	((n == procs)) || fail "python has $n processes, expected $procs" || return
	if [[ $via == ps ]]; then
		ps_start ps "$T_WORK/remote" || return
		dump dump "$pid" "$T_WORK/img" --page-server --address 127.0.0.1 --port "$PS_PORT" || return
		ps_wait ps || return
		shmem_was_sent || return
	else
		dump dump "$pid" "$T_WORK/img" || return
	fi
	expect_killed "$pid" || return
	at_dump=$(tail -n1 "$out")
	((at_dump < total)) || fail "$prog was done before the dump ($at_dump steps)" || return
	restore_foreground restore "$T_WORK/img"
	touch "$T_FILES/go"
	# no wait for it to be seen running: with few steps left it may finish
	# (and the restore with it) first; its "done" and result.txt say it ran
	wait_child "$RESTORE_PID" $((TMO * 2))
	[[ $CHILD_RC == 0 ]] || fail "foreground restore exited $CHILD_RC (python's status)" "$T_LOG/mp.err"
	has_line "$out" done || fail "$prog did not finish after the restore (dumped at $at_dump steps)" "$T_LOG/mp.err"
	has_line "$T_FILES/result.txt" PASS ||
		fail "$prog: $(cat "$T_FILES/result.txt" 2>/dev/null || echo "no result.txt")" "$T_LOG/mp.err"
}

# After a dump through a page server into T_WORK/remote: the shared
# memory went there, as pagemap-shmem images, none of it to the local
# T_WORK/img; then both are one directory, as a user copies them.
shmem_was_sent() {
	compgen -G "$T_WORK/remote/pagemap-shmem-*.img" > /dev/null ||
		{ fail "the page server got no shared memory (pagemap-shmem-*.img)" "$T_LOG/dump.log"; return 1; }
	! compgen -G "$T_WORK/img/pagemap-shmem-*.img" > /dev/null && ! compgen -G "$T_WORK/img/pages-*.img" > /dev/null ||
		{ fail "the dump wrote pages locally: $(cd "$T_WORK/img" && echo pagemap-shmem-* pages-*)"; return 1; }
	merge_into "$T_WORK/img" "$T_WORK/remote"
}

# The shmem tree through a page server, stasis's or CRIU's: its shared
# memory goes there whole, as CRIU's dump sends it, and comes back.
shmem_ps() {
	local server=$1
	tree_start shmem "$BIN/shmem" || return
	if [[ $server == criu ]]; then
		criu_ps_start ps "$T_WORK/remote" || return
	else
		ps_start ps "$T_WORK/remote" || return
	fi
	dump dump "$TREE_ROOT" "$T_WORK/img" --page-server --address 127.0.0.1 --port "$PS_PORT" || return
	expect_tree_killed || return
	ps_wait ps || return
	shmem_was_sent || return
	shmem_restore_check "$T_WORK/img"
}

# With a real CRIU (CRIU_BIN): the tree dumped by stasis and restored by
# CRIU, or dumped by CRIU and restored by stasis; it must PASS either way.
# CRIU (4.2) makes memfds of shared anonymous memory: its restore maps
# one where stasis's images say anonymous, and its dump saves the
# mappings as memfds named /dev/zero (which stasis restores as memfds).
# So the program is told not to insist on /dev/zero mappings (any-name).
shmem_criu() {
	local dir=$1 rc
	tree_start shmem "$BIN/shmem" any-name || return
	mkdir -p "$T_WORK/img"
	if [[ $dir == to_criu ]]; then
		dump dump "$TREE_ROOT" "$T_WORK/img" || return
	else
		timeout -k 5 "$TMO" "$CRIU_BIN" dump -t "$TREE_ROOT" -D "$T_WORK/img" -o "$T_LOG/criu-dump.log" -v4 \
			> "$T_LOG/criu-dump.out" 2>&1 < /dev/null
		rc=$?
		[[ $rc == 0 ]] || { fail "CRIU could not dump (rc $rc)" "$T_LOG/criu-dump.log"; return; }
		decode_images "$T_WORK/img" criu-dump
	fi
	expect_tree_killed || return
	if [[ $dir == to_criu ]]; then
		timeout -k 5 "$TMO" "$CRIU_BIN" restore -D "$T_WORK/img" -d -o "$T_LOG/criu-restore.log" -v4 \
			> "$T_LOG/criu-restore.out" 2>&1 < /dev/null
		rc=$?
		[[ $rc == 0 ]] || { fail "CRIU could not restore stasis's images (rc $rc)" "$T_LOG/criu-restore.log"; return; }
	else
		restore_detached restore "$T_WORK/img" "$TREE_ROOT" "" 1 || return
	fi
	wait_until "$TMO" catches_usr1 "$TREE_ROOT" || { fail "restored pid $TREE_ROOT does not catch SIGUSR1"; return; }
	expect_tree restore "$TREE_ROOT" "$TREE_SIG"
	kill -USR1 "$TREE_ROOT"
	wait_gone "$TREE_ROOT" $((TMO * 2)) || fail "restored shmem did not exit after SIGUSR1" "$T_LOG/shmem.out"
	check_output shmem
	tree_finished
}

run_test shmem.plain tree_plain shmem
run_test shmem.restore tree_restore shmem
run_test shmem.chain3 tree_chain shmem
run_test shmem.leave_running tree_leave_running shmem
run_test shmem.predump shmem_incremental pre-dump
run_test shmem.track_mem shmem_incremental snapshot
run_test real.python_multiprocessing python_mp local 5 900 mp_shared.py 150
run_test real.python_pool python_mp local 4 400 mp_pool.py 400 200
run_test real.python_multiprocessing_ps python_mp ps 5 900 mp_shared.py 150
run_test shmem.page_server shmem_ps stasis
run_test --needs criu shmem.interop.criu_page_server shmem_ps criu
run_test --needs criu shmem.interop.to_criu shmem_criu to_criu
run_test --needs criu shmem.interop.from_criu shmem_criu from_criu

# For a non-root client of the service: the client's tree dumped and
# restored through the service, its shared memory made by stasis and
# mapped by the client's processes. With the helpers of cases/rpc.sh
# (rpc_user_setup, service_start, user_dump_restore, user_finish), but
# not its user_prog, which cases/security.sh replaces with its own.
shmem_user_prog() {
	local f=$T_WORK/user/shmem
	(cd "$T_WORK/user" && exec runuser -u "$RPC_USER" -- setsid sh -c \
		'echo $$ > "$0.pid"; exec "$@" > "$0.out" 2> "$0.err" < /dev/null' "$f" "$f" > /dev/null 2>&1 < /dev/null) &
	disown $!
	wait_until "$TMO" test -s "$f.pid" || { fail "shmem did not start"; return 1; }
	UPID=$(cat "$f.pid")
	T_PIDS+=("$UPID")
	T_SIDS+=("$UPID")
	wait_until "$TMO" ready_or_dead "$f.out" "$UPID" && has_line "$f.out" READY ||
		{ fail "shmem never printed READY" "$f.err"; return 1; }
}

test_shmem_unpriv() {
	rpc_user_setup || return
	service_start "${SVC_USER_ARGS[@]}" || return
	install -m 755 "$BIN/shmem" "$T_WORK/user/"
	shmem_user_prog || return
	user_dump_restore shmem || return
	user_finish shmem
}
run_test shmem.rpc_unprivileged test_shmem_unpriv
