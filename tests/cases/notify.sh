# epoll sets whose targets moved, inotify watches on deleted files,
# fanotify groups and pidfds (src/files/{epoll,inotify,fanotify,pidfd}.c):
# python programs of tests/progs that check from inside after restore.

# A python program dumped, restored in the foreground, signalled, checked:
# it prints PASS or FAIL itself.  nf_dump_restore LABEL PROG.py [ARGS...]
nf_dump_restore() {
	local label=$1 prog=$2 pid exe
	shift 2
	start_prog "$label" "$PYTHON" "$ROOT/tests/progs/$prog" "$@"
	pid=$PROG_PID
	wait_ready "$label" "$pid" || return
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" ${DUMP_ARGS:-} || return
	expect_killed "$pid" || return
	restore_foreground restore "$T_WORK/img"
	wait_restored restore "$pid" "$exe" 1 "$RESTORE_PID" || return
	kill -USR1 "$pid"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output "$label"
}

# The same through CRIU both ways: stasis's dump restored by CRIU, CRIU's
# dump of that restored by stasis.  nf_interop LABEL PROG.py [ARGS...]
nf_interop() {
	local label=$1 prog=$2 pid exe rc
	shift 2
	start_prog "$label" "$PYTHON" "$ROOT/tests/progs/$prog" "$@"
	pid=$PROG_PID
	wait_ready "$label" "$pid" || return
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img1" ${DUMP_ARGS:-} || return
	expect_killed "$pid" || return
	timeout -k 5 "$TMO" "$CRIU_BIN" restore -D "$T_WORK/img1" -d -o "$T_LOG/criu-restore.log" -v4 \
		> "$T_LOG/criu-restore.out" 2>&1 < /dev/null
	rc=$?
	[[ $rc == 0 ]] || { fail "CRIU could not restore stasis's images (rc $rc)" "$T_LOG/criu-restore.log"; return; }
	mkdir -p "$T_WORK/img2"
	timeout -k 5 "$TMO" "$CRIU_BIN" dump -t "$pid" -D "$T_WORK/img2" -o "$T_LOG/criu-dump.log" -v4 \
		${CRIU_DUMP_ARGS:-} > "$T_LOG/criu-dump.out" 2>&1 < /dev/null
	rc=$?
	[[ $rc == 0 ]] || { fail "CRIU could not dump what it restored (rc $rc)" "$T_LOG/criu-dump.log"; return; }
	wait_gone "$pid" "$TMO" || { fail "pid $pid alive after CRIU's dump"; return; }
	wait_until "$TMO" session_empty "$pid" || { fail "the tree of $pid outlived CRIU's dump"; return; }
	restore_foreground restore "$T_WORK/img2"
	wait_restored restore "$pid" "$exe" 1 "$RESTORE_PID" || return
	kill -USR1 "$pid"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output "$label"
}

run_test notify.epoll_moved nf_dump_restore epoll epoll_moved.py
run_test --needs criu interop.criu_epoll_moved nf_interop epoll epoll_moved.py
