# Lazy restore (restore --lazy-pages with `stasis lazy-pages`): the tree
# runs at once and its private memory arrives through userfaultfd, on
# first touch and in the background (tests/progs/lazymem.c checks every
# word of it); processes that fork, mremap, madvise and exit while it
# arrives; a daemon that dies takes the tree with it, with an error,
# rather than leaving it hung or running on zeros; a real python program.

LAZY_MIB=256

# start_lazy TAG DIR: `stasis lazy-pages -D DIR -d` (ready when it
# returns); LAZY_PID its pid. Environment for it goes before the call.
start_lazy() {
	local tag=$1 dir=$2 rc
	rc=$(stasis "$tag" lazy-pages -D "$dir" -d --pidfile "$T_WORK/$tag.pid")
	[[ $rc == 0 ]] || { fail "$tag: stasis lazy-pages -d exited $(rc_text "$rc"): $(error_message "$tag")" "$T_LOG/$tag.log"; return 1; }
	LAZY_PID=$(pidfile_pid "$T_WORK/$tag.pid")
	[[ -n $LAZY_PID ]] && alive "$LAZY_PID" || { fail "$tag: the daemon is not running" "$T_LOG/$tag.log"; return 1; }
	T_PIDS+=("$LAZY_PID")
}

# lazy_restore TAG DIR: a foreground `restore --lazy-pages`, in the
# background (RESTORE_PID), as restore_foreground.
lazy_restore() {
	local tag=$1 dir=$2
	note "stasis restore --lazy-pages -D $dir (foreground)"
	timeout -k 5 $((TMO * 3)) "$STASIS" restore -D "$dir" --lazy-pages -o "$T_LOG/$tag.log" -v4 \
		--pidfile "$T_WORK/$tag.pid" > "$T_LOG/$tag.stdout" 2> "$T_LOG/$tag.stderr" < /dev/null &
	RESTORE_PID=$!
	T_PGIDS+=("$RESTORE_PID")
}

# lazymem MIB [events], dumped: PID, EXE.
lazymem_dumped() {
	start_prog lazymem "$BIN/lazymem" "$@"
	PID=$PROG_PID
	wait_ready lazymem "$PID" || return
	EXE=$(readlink "/proc/$PID/exe")
	dump dump "$PID" "$T_WORK/img" || return
	expect_killed "$PID"
}

# The restore (its log LOG) read (almost) none of the lazy memory itself.
restore_was_lazy_log() {
	local kib
	kib=$(sed -n 's/.*memory rebuilt: .*, \([0-9]*\) KiB of pages read.*/\1/p' "$1" | head -n1)
	note "the restore read ${kib:-?} KiB of pages itself"
	[[ -n $kib ]] && ((kib < 4096)) || fail "the restore read ${kib:-?} KiB of pages itself: not lazy" "$1"
}
restore_was_lazy() { restore_was_lazy_log "$T_LOG/$1.log"; }

# The daemon filled everything and ended.
lazy_done() {
	wait_gone "$LAZY_PID" "$TMO" || { fail "$1: the lazy-pages daemon is still running" "$T_LOG/$1.log"; return 1; }
	grep -q "every page is in place" "$T_LOG/$1.log" || fail "$1: the daemon did not fill every page" "$T_LOG/$1.log"
}

test_lazy_local() {
	lazymem_dumped "$LAZY_MIB" || return
	start_lazy lazy "$T_WORK/img" || return
	lazy_restore restore "$T_WORK/img"
	wait_restored restore "$PID" "$EXE" 1 "$RESTORE_PID" || return
	restore_was_lazy restore
	# nothing of the restore's is left in it: neither the daemon's socket nor a userfaultfd
	! ls -l "/proc/$PID/fd" | grep -q -e socket -e userfaultfd ||
		fail "the restored process holds $(ls -l "/proc/$PID/fd" | grep -e socket -e userfaultfd | head -n1)"
	kill -USR1 "$PID"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output lazymem
	[[ $CHILD_RC == 0 ]] || fail "foreground restore exited $CHILD_RC (the program's status)" "$T_LOG/lazymem.out"
	lazy_done lazy
}
run_test lazy.local test_lazy_local

# A tree: three children sharing the root's memory, one zombie.
test_lazy_tree() {
	lazymem_dumped 64 tree || return
	start_lazy lazy "$T_WORK/img" || return
	lazy_restore restore "$T_WORK/img"
	wait_restored restore "$PID" "$EXE" 1 "$RESTORE_PID" || return
	kill -USR1 "$PID"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output lazymem
	[[ $CHILD_RC == 0 ]] || fail "foreground restore exited $CHILD_RC (the program's status)" "$T_LOG/lazymem.out"
	lazy_done lazy
}
run_test lazy.tree test_lazy_tree

# The daemon holds its background copy back (a test hook) so that the
# program's children, mremap, madvise and munmap all happen while most
# of its memory is still to come.
test_lazy_events() {
	local left
	lazymem_dumped "$LAZY_MIB" events || return
	STASIS_TEST_LAZY_BG_DELAY_MS=5000 start_lazy lazy "$T_WORK/img" || return
	lazy_restore restore "$T_WORK/img"
	wait_restored restore "$PID" "$EXE" 1 "$RESTORE_PID" || return
	kill -USR1 "$PID"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output lazymem
	[[ $CHILD_RC == 0 ]] || fail "foreground restore exited $CHILD_RC (the program's status)" "$T_LOG/lazymem.out"
	left=$(sed -n 's/^lazy: \([0-9]*\) of \([0-9]*\) pages.*/\1/p' "$T_LOG/lazymem.out")
	note "pages still to come when the program began its checks: ${left:-?}"
	((${left:-0} > LAZY_MIB * 256 / 2)) || fail "the program's checks did not run in the lazy phase (${left:-?} pages left)"
	lazy_done lazy || return
	local ev
	for ev in "forked a child" "mremap" "madvise" "munmap" "gone"; do
		grep -q "$ev" "$T_LOG/lazy.log" || fail "the daemon saw no $ev event" "$T_LOG/lazy.log"
	done
}
run_test lazy.events test_lazy_events

# The tree died with the daemon: the restore ends (not hung) with the
# guard's error, the program never answered (neither PASS nor a FAIL of
# memory read as zeros), and no process has its pid.
expect_tree_died() {
	local tag=$1
	wait_child "$RESTORE_PID" $((TMO * 2))
	[[ $CHILD_RC != timeout && $CHILD_RC != 124 ]] || { fail "$tag: the restore hung after the daemon died" "$T_LOG/$tag.log"; return 1; }
	[[ $CHILD_RC != 0 ]] || fail "$tag: the restore exited 0 though its tree was killed" "$T_LOG/$tag.log"
	grep -q "lazy-pages daemon is gone" "$T_LOG/$tag.stderr" "$T_LOG/$tag.log" ||
		fail "$tag: no error says the daemon is gone" "$T_LOG/$tag.stderr"
	wait_gone "$PID" 5 || fail "$tag: pid $PID still runs after its daemon died"
	! grep -q . <(grep -v -e READY -e '^lazy:' "$T_LOG/lazymem.out") ||
		fail "$tag: the program ran on after its daemon died: $(grep -v READY "$T_LOG/lazymem.out" | head -n2 | tr '\n' ' ')" "$T_LOG/lazymem.out"
}

# The daemon kills itself after a few chunks of its background copy.
test_lazy_daemon_dies() {
	lazymem_dumped "$LAZY_MIB" || return
	STASIS_TEST_DIE_AT=lazy-copy:5 start_lazy lazy "$T_WORK/img" || return
	lazy_restore restore "$T_WORK/img"
	expect_tree_died restore
}
run_test lazy.daemon_dies test_lazy_daemon_dies

# kill -9 of the daemon while the program faults on memory still to come.
test_lazy_daemon_killed() {
	lazymem_dumped "$LAZY_MIB" || return
	STASIS_TEST_LAZY_BG_DELAY_MS=$((TMO * 1000)) start_lazy lazy "$T_WORK/img" || return
	lazy_restore restore "$T_WORK/img"
	wait_restored restore "$PID" "$EXE" 1 "$RESTORE_PID" || return
	kill -9 "$LAZY_PID"
	kill -USR1 "$PID"
	expect_tree_died restore
}
run_test lazy.daemon_killed test_lazy_daemon_killed

# No daemon: the restore fails, saying so, and leaves nothing.
test_lazy_no_daemon() {
	lazymem_dumped 16 || return
	local rc
	rc=$(stasis restore restore -D "$T_WORK/img" --lazy-pages)
	[[ $rc != 0 && $rc != 124 && $rc != 137 ]] || fail "restore --lazy-pages without a daemon exited $rc" "$T_LOG/restore.log"
	grep -q "lazy-pages.socket" "$T_LOG/restore.stderr" || fail "no error names the daemon's socket" "$T_LOG/restore.stderr"
	wait_gone "$PID" 5 || fail "pid $PID is left after the failed restore"
}
run_test lazy.no_daemon test_lazy_no_daemon

# A real program: python with a dict of two million entries, which walks
# it all after the restore.
test_lazy_python() {
	local exe
	start_prog pydict "$PYTHON" -c '
import signal, sys
d = {i: str(i) * 3 for i in range(2000000)}
go = []
signal.signal(signal.SIGUSR1, lambda *a: go.append(1))
print("READY", flush=True)
while not go:
    signal.pause()
bad = [k for k, v in d.items() if v != str(k) * 3]
print("PASS" if len(d) == 2000000 and not bad else "FAIL: %d wrong entries" % len(bad), flush=True)'
	PID=$PROG_PID
	wait_ready pydict "$PID" || return
	exe=$(readlink "/proc/$PID/exe")
	dump dump "$PID" "$T_WORK/img" || return
	expect_killed "$PID" || return
	start_lazy lazy "$T_WORK/img" || return
	lazy_restore restore "$T_WORK/img"
	wait_restored restore "$PID" "$exe" 1 "$RESTORE_PID" || return
	kill -USR1 "$PID"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output pydict
	lazy_done lazy
}
run_test lazy.python test_lazy_python

# CRIU's names for the features (zdtm and runtimes ask them).
test_lazy_check() {
	local f rc
	for f in uffd uffd-noncoop lazy_pages; do
		rc=$(stasis "check-$f" check --feature "$f")
		[[ $rc == 0 ]] || fail "check --feature $f exited $rc: $(cat "$T_LOG/check-$f.stdout")"
	done
}
run_test lazy.check test_lazy_check

# With CRIU on either side (its socket and protocol are ours): stasis's
# lazy restore served by CRIU's lazy-pages daemon, and CRIU's lazy
# restore served by stasis's.
test_lazy_criu_daemon() {
	lazymem_dumped 64 tree || return
	timeout -k 5 "$TMO" "$CRIU_BIN" lazy-pages -D "$T_WORK/img" -d --pidfile "$T_WORK/criu-lazy.pid" \
		-o "$T_LOG/criu-lazy.log" -v4 > "$T_LOG/criu-lazy.stderr" 2>&1 < /dev/null ||
		{ fail "criu lazy-pages -d failed" "$T_LOG/criu-lazy.log"; return 1; }
	LAZY_PID=$(pidfile_pid "$T_WORK/criu-lazy.pid")
	T_PIDS+=("$LAZY_PID")
	lazy_restore restore "$T_WORK/img"
	wait_restored restore "$PID" "$EXE" 1 "$RESTORE_PID" || return
	kill -USR1 "$PID"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output lazymem
	wait_gone "$LAZY_PID" "$TMO" || fail "CRIU's lazy-pages daemon did not end" "$T_LOG/criu-lazy.log"
}
run_test --needs criu interop.lazy_criu_daemon test_lazy_criu_daemon

test_lazy_criu_restore() {
	lazymem_dumped 64 || return
	start_lazy lazy "$T_WORK/img" || return
	timeout -k 5 "$TMO" "$CRIU_BIN" restore -D "$T_WORK/img" -d --lazy-pages --pidfile "$T_WORK/restore.pid" \
		-o "$T_LOG/criu-restore.log" -v4 > "$T_LOG/criu-restore.stderr" 2>&1 < /dev/null ||
		{ fail "criu restore --lazy-pages failed" "$T_LOG/criu-restore.log"; return 1; }
	wait_restored restore "$PID" "$EXE" 1 || return
	kill -USR1 "$PID"
	wait_until "$TMO" has_line "$T_LOG/lazymem.out" PASS
	check_output lazymem
	lazy_done lazy
}
run_test --needs criu interop.lazy_criu_restore test_lazy_criu_restore

# Over RPC (pycriu through `stasis swrk`, and through the service): a
# restore with lazy_pages, and FEATURE_CHECK's lazy_pages.
test_lazy_rpc() {
	local mode=$1 rc target out
	if [[ $mode == sk ]]; then
		SVC_SOCK=$T_WORK/stasis.sk
		"$STASIS" service --address "$SVC_SOCK" -d --pidfile "$T_WORK/service.pid" \
			-o "$T_LOG/service.log" -v4 < /dev/null || { fail "stasis service did not start" "$T_LOG/service.log"; return 1; }
		T_PIDS+=("$(cat "$T_WORK/service.pid")")
		target=(--sk "$SVC_SOCK")
	else
		target=(--bin "$STASIS")
	fi
	out=$(timeout -k 5 "$TMO" "$PYTHON" "$ROOT/tests/py/rpc_drive.py" "${target[@]}" lazy_features 2>&1)
	[[ $out == "lazy_pages True" ]] || fail "FEATURE_CHECK answers '$out' for lazy_pages"
	lazymem_dumped 64 || return
	start_lazy lazy "$T_WORK/img" || return
	timeout -k 5 "$TMO" "$PYTHON" "$ROOT/tests/py/rpc_drive.py" "${target[@]}" restore "$T_WORK/img" --lazy-pages \
		> "$T_LOG/rpc-restore.out" 2> "$T_LOG/rpc-restore.err" < /dev/null
	rc=$?
	[[ $rc == 0 ]] || { fail "RPC restore with lazy_pages failed: $(cat "$T_LOG/rpc-restore.out")" "$T_WORK/img/restore.log"; return 1; }
	restore_was_lazy_log "$T_WORK/img/restore.log"
	kill -USR1 "$PID"
	wait_until "$TMO" has_line "$T_LOG/lazymem.out" PASS
	check_output lazymem
	lazy_done lazy
}
run_test lazy.rpc_bin test_lazy_rpc bin
run_test lazy.rpc_sk test_lazy_rpc sk

# A non-root client (tests/cases/rpc.sh's user and service) asks for a
# lazy restore, with a daemon of its own. Its processes make their
# userfaultfd with its rights: where vm.unprivileged_userfaultfd is 0
# they may not, and the restore must fail saying so, leaving nothing;
# where it is 1, the restore works.
test_lazy_rpc_unpriv() {
	local rc img=$T_WORK/user/img lpid
	rpc_user_setup || return
	service_start "${SVC_USER_ARGS[@]}" || return
	install -m 755 "$BIN/lazymem" "$STASIS" "$T_WORK/user/"
	user_prog lazymem "$T_WORK/user/lazymem" 16 || return
	rc=$(rpc_user dump --sk "$SVC_SOCK" dump "$UPID" "$img")
	[[ $rc == 0 ]] || { fail "the user could not dump: $(cat "$T_LOG/dump.out")" "$img/dump.log"; return 1; }
	wait_gone "$UPID" || return
	(cd "$T_WORK/user" && runuser -u "$RPC_USER" -- "$T_WORK/user/stasis" lazy-pages -D "$img" -d \
		--pidfile "$T_WORK/user/lazy.pid" -o lazy.log -v4 < /dev/null 2> "$T_LOG/lazy.stderr") ||
		{ fail "the user's lazy-pages daemon did not start" "$img/lazy.log"; return 1; }
	lpid=$(pidfile_pid "$T_WORK/user/lazy.pid")
	T_PIDS+=("$lpid")
	[[ $(stat -c %u "/proc/$lpid") == "$(id -u "$RPC_USER")" ]] || fail "the daemon is not the user's"
	rc=$(rpc_user restore --sk "$SVC_SOCK" restore "$img" --lazy-pages)
	if [[ $(cat /proc/sys/vm/unprivileged_userfaultfd) == 0 ]]; then
		[[ $rc != 0 ]] || fail "a lazy restore for a user worked where vm.unprivileged_userfaultfd is 0"
		grep -q "vm.unprivileged_userfaultfd is 0" "$img/restore.log" ||
			fail "no error names vm.unprivileged_userfaultfd" "$img/restore.log"
		wait_gone "$UPID" 5 || fail "pid $UPID is left after the refused restore"
		wait_gone "$lpid" 5 || fail "the daemon did not end with the failed restore" "$img/lazy.log"
		return
	fi
	[[ $rc == 0 ]] || { fail "the user's lazy restore failed: $(cat "$T_LOG/restore.out")" "$img/restore.log"; return 1; }
	kill -USR1 "$UPID"
	wait_until "$TMO" grep -q '^PASS' "$T_WORK/user/lazymem.out" ||
		fail "the user's program did not PASS: $(tail -n2 "$T_WORK/user/lazymem.out")" "$T_WORK/user/lazymem.out"
}
run_test lazy.rpc_unpriv test_lazy_rpc_unpriv
