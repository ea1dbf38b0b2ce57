# Pid namespaces: copies of a tree restored side by side, each in a new
# namespace of its own, and a tree that is a namespace of its own.

# wait_copy TAG [RESTORE_PID]: a --new-pidns restore wrote its pidfile;
# the pid there (as we see it) must run freely, catch SIGUSR1, be our
# binary, and be TREE_SIG's root pid inside its own new namespace.  Sets
# COPY_PID, and tracks the copy (and the namespace's init) for cleanup.
copy_ready() {
	local pf=$1 rpid=$2 p
	[[ -n $rpid ]] && not_running "$rpid" && return 0
	p=$(pidfile_pid "$pf")
	[[ -n $p ]] && runs_freely "$p" && catches_usr1 "$p"
}
wait_copy() {
	local tag=$1 rpid=${2:-} pf=$T_WORK/$1.pid want_pid p init
	want_pid=$(awk 'NR == 1 { print $1 }' <<< "$TREE_SIG")
	COPY_PID=
	if ! wait_until "$TMO" copy_ready "$pf" "$rpid"; then
		fail "$tag: restored root not ready after ${TMO}s (pidfile '$(pidfile_pid "$pf")')" "$T_LOG/$tag.log"
		return 1
	fi
	if [[ -n $rpid ]] && not_running "$rpid"; then
		wait_child "$rpid" 1
		fail "$tag: stasis restore exited $CHILD_RC before the tree ran: $(error_message "$tag")" "$T_LOG/$tag.log"
		return 1
	fi
	COPY_PID=$(pidfile_pid "$pf")
	T_PIDS+=("$COPY_PID")
	init=$(status_field "$COPY_PID" PPid)
	[[ $(ns_pid "$init") == 1 ]] && T_PIDS+=("$init")
	track_tree "$COPY_PID"
	note "$tag: root is pid $COPY_PID here, $(ns_pid "$COPY_PID") in $(pidns_of "$COPY_PID"); parent $init"
	[[ $(readlink "/proc/$COPY_PID/exe") == "$TREE_EXE" ]] ||
		fail "$tag: pid $COPY_PID is $(readlink "/proc/$COPY_PID/exe"), expected $TREE_EXE" || return
	[[ $(pidns_of "$COPY_PID") != "$(pidns_of $$)" ]] ||
		fail "$tag: the restored root $COPY_PID is in our pid namespace, not a new one" || return
	[[ $(ns_pid "$COPY_PID") == "$want_pid" ]] ||
		fail "$tag: the restored root is pid $(ns_pid "$COPY_PID") in its namespace, expected $want_pid" || return
	expect_tree "$tag" "$COPY_PID" "$TREE_SIG"
}

# Three copies at once: the original (dumped with --leave-running) and two
# `restore -d --new-pidns` of its image, side by side.  Each copy gets its
# own output file: after each restore the file the copy opened is renamed
# away and a copy of it put in its place for the next one.
test_pidns_clones() {
	local c p out=$T_LOG/forktree.out err=$T_LOG/forktree.err rc nss=
	tree_start forktree "$BIN/forktree" || return
	dump dump "$TREE_ROOT" "$T_WORK/img" --leave-running || return
	expect_tree after-dump "$TREE_ROOT" "$TREE_SIG" || return
	mv "$out" "$T_LOG/forktree-orig.out"
	mv "$err" "$T_LOG/forktree-orig.err"
	declare -A copy
	for c in A B; do
		cp "$T_LOG/forktree-orig.out" "$out"
		cp "$T_LOG/forktree-orig.err" "$err"
		rc=$(stasis "restore$c" restore -D "$T_WORK/img" -d --new-pidns --pidfile "$T_WORK/restore$c.pid")
		[[ $rc == 0 ]] || fail "restore$c: stasis restore -d --new-pidns exited $(rc_text "$rc"): $(error_message "restore$c")" \
			"$T_LOG/restore$c.log" || return
		wait_copy "restore$c" || return
		copy[$c]=$COPY_PID
		[[ " $nss " != *" $(pidns_of "$COPY_PID") "* ]] || fail "restore$c: copy $COPY_PID shares the pid namespace of the other copy" || return
		nss+=" $(pidns_of "$COPY_PID")"
		mv "$out" "$T_LOG/forktree-$c.out"
		mv "$err" "$T_LOG/forktree-$c.err"
	done
	note "three copies: original $TREE_ROOT, A ${copy[A]}, B ${copy[B]}"
	for p in "$TREE_ROOT" "${copy[A]}" "${copy[B]}"; do
		alive "$p" || fail "copy $p died before SIGUSR1" || return
	done
	kill -USR1 "$TREE_ROOT" "${copy[A]}" "${copy[B]}"
	wait_child "$TREE_ROOT"
	[[ $CHILD_RC == 0 ]] || fail "the original exited $CHILD_RC" "$T_LOG/forktree-orig.out"
	for c in A B; do
		wait_gone "${copy[$c]}" || fail "copy $c (${copy[$c]}) did not exit after SIGUSR1" "$T_LOG/forktree-$c.out"
	done
	for c in orig A B; do
		check_output "forktree-$c"
	done
}

# A tree that is a pid namespace of its own (its root is pid 1 there,
# started by tools/pidns_run): restore must make a new namespace for it,
# with or without --new-pidns.  MODE: foreground (no option) or new_pidns
# (-d --new-pidns).
test_pidns_own() {
	local mode=$1 helper rc
	start_prog forktree "$BIN/pidns_run" "$BIN/forktree"
	helper=$PROG_PID
	wait_ready forktree "$helper" || return
	TREE_ROOT=$(child_of "$helper") || fail "pidns_run has no child" || return
	[[ $(ns_pid "$TREE_ROOT") == 1 ]] || fail "harness: the root $TREE_ROOT is not pid 1 in its namespace" || return
	tree_snapshot "$TREE_ROOT"
	dump dump "$TREE_ROOT" "$T_WORK/img" || return
	expect_tree_killed || return
	wait_child "$helper"
	note "pidns_run exited $CHILD_RC"
	if [[ $mode == foreground ]]; then
		note "stasis restore -D img (foreground, no --new-pidns)"
		timeout -k 5 $((TMO * 3)) "$STASIS" restore -D "$T_WORK/img" -o "$T_LOG/restore.log" -v4 \
			--pidfile "$T_WORK/restore.pid" > "$T_LOG/restore.stdout" 2> "$T_LOG/restore.stderr" < /dev/null &
		RESTORE_PID=$!
		T_PGIDS+=("$RESTORE_PID")
		wait_copy restore "$RESTORE_PID" || return
	else
		rc=$(stasis restore restore -D "$T_WORK/img" -d --new-pidns --pidfile "$T_WORK/restore.pid")
		[[ $rc == 0 ]] || fail "restore: stasis restore -d --new-pidns exited $(rc_text "$rc"): $(error_message restore)" \
			"$T_LOG/restore.log" || return
		wait_copy restore || return
	fi
	kill -USR1 "$COPY_PID"
	if [[ $mode == foreground ]]; then
		wait_child "$RESTORE_PID" $((TMO * 2))
		[[ $CHILD_RC == 0 ]] || fail "foreground restore exited $CHILD_RC (the root's status)" "$T_LOG/forktree.out"
	else
		wait_gone "$COPY_PID" || fail "restored root $COPY_PID did not exit after SIGUSR1" "$T_LOG/forktree.out"
	fi
	check_output forktree
}

# sessions (tests/progs/sessions.c: sessions and groups led by others than
# the root, a group whose leader is gone) restored into a new pid
# namespace: each process finds its session and group as they were.
test_pidns_sessions() {
	local rc
	tree_start sessions "$BIN/sessions" || return
	dump dump "$TREE_ROOT" "$T_WORK/img" || return
	expect_tree_killed || return
	rc=$(stasis restore restore -D "$T_WORK/img" -d --new-pidns --pidfile "$T_WORK/restore.pid")
	[[ $rc == 0 ]] || fail "restore: stasis restore -d --new-pidns exited $(rc_text "$rc"): $(error_message restore)" \
		"$T_LOG/restore.log" || return
	wait_copy restore || return
	kill -USR1 "$COPY_PID"
	wait_gone "$COPY_PID" || fail "restored root $COPY_PID did not exit after SIGUSR1" "$T_LOG/sessions.out"
	check_output sessions
}

run_test pidns.clones test_pidns_clones
run_test pidns.sessions test_pidns_sessions
run_test pidns.own_ns.restore test_pidns_own foreground
run_test pidns.own_ns.new_pidns test_pidns_own new_pidns

# The init of a namespace a restore made, or stasis itself as pid 1 of the
# namespace it restores into (as CRIU's criu-ns runs it), outlives the root:
# an init that exits kills every process of its namespace, so it reaps
# until none is left, and then ends with the root's exit status.
orphan_start() {
	start_prog orphan "$PYTHON" "$ROOT/tests/progs/orphan.py" "$T_WORK/done"
	ORPHAN_PID=$PROG_PID
	wait_ready orphan "$ORPHAN_PID" || return
	wait_until "$TMO" eval '[[ -n $(pgrep -P "$ORPHAN_PID") ]]' || { fail "orphan.py never forked"; return 1; }
	dump dump "$ORPHAN_PID" "$T_WORK/img" || return
	expect_killed "$ORPHAN_PID"
}

# orphan_finish ROOT: the restored ROOT exits on SIGUSR1; its child must
# still run then, and finish on SIGUSR2.
orphan_finish() {
	local root=$1 kid
	kid=$(pgrep -P "$root")
	[[ -n $kid ]] || { fail "the restored root $root has no child"; return 1; }
	T_PIDS+=("$kid")
	kill -USR1 "$root"
	wait_until "$TMO" not_running "$root" || { fail "the restored root $root did not exit on SIGUSR1"; return 1; }
	sleep 0.3
	runs_freely "$kid" || { fail "the root's child $kid died with the root (state $(proc_state "$kid"))"; return 1; }
	kill -USR2 "$kid"
	wait_until "$TMO" eval '[[ -s $T_WORK/done ]]' || fail "the child never wrote its file"
	[[ $(cat "$T_WORK/done" 2>/dev/null) == "CHILD DONE" ]] || fail "the child's file holds '$(cat "$T_WORK/done" 2>/dev/null)'"
}

test_pidns_init_outlives_root() {
	local rc root init
	orphan_start || return
	rc=$(stasis restore restore -D "$T_WORK/img" -d --new-pidns --pidfile "$T_WORK/r.pid")
	[[ $rc == 0 ]] || { fail "restore -d --new-pidns exited $(rc_text "$rc"): $(error_message restore)" "$T_LOG/restore.log"; return; }
	root=$(pidfile_pid "$T_WORK/r.pid")
	init=$(status_field "$root" PPid)
	T_PIDS+=("$root" "$init")
	[[ $(ns_pid "$init") == 1 ]] || { fail "the root's parent $init is not the init of its namespace"; return; }
	orphan_finish "$root" || return
	wait_until "$TMO" not_running "$init" || fail "stasis-init $init still runs with no process left"
}

test_pidns_stasis_is_init() {
	local rc unsh=$T_WORK/unshare.pid st root
	orphan_start || return
	# unshare's --mount-proc makes / private first, which a chroot into a
	# directory that is no mount point (a fresh root in CI) refuses: the
	# new /proc is mounted by hand, /proc made private first so that it
	# stays in the new mount namespace.
	note "unshare -pf --mount: stasis restore -D img, pid 1 there, with its own /proc"
	(exec unshare -pf --mount --propagation unchanged sh -c \
		'mount --make-rprivate /proc && mount -t proc proc /proc && exec "$@"' sh \
		"$STASIS" restore -D "$T_WORK/img" -o "$T_LOG/restore.log" -v4 \
		> "$T_LOG/restore.stdout" 2> "$T_LOG/restore.stderr" < /dev/null) &
	local upid=$!
	T_PIDS+=("$upid")
	wait_until "$TMO" eval '[[ -n $(pgrep -P "$upid") ]]' || { fail "unshare started nothing"; return; }
	st=$(pgrep -P "$upid")
	T_PIDS+=("$st")
	wait_until "$TMO" eval 'root=$(pgrep -P "$st" | head -n1); [[ -n $root ]] && catches_usr1 "$root"' ||
		{ fail "no restored root under stasis $st: $(error_message restore)" "$T_LOG/restore.log"; return; }
	root=$(pgrep -P "$st" | head -n1)
	[[ $(ns_pid "$st") == 1 ]] || { fail "stasis $st is pid $(ns_pid "$st") in its namespace, not 1"; return; }
	orphan_finish "$root" || return
	wait_child "$upid"
	[[ $CHILD_RC == 3 ]] || fail "stasis (pid 1) ended with $CHILD_RC, expected the root's status 3" "$T_LOG/restore.log"
}

run_test pidns.init_outlives_root test_pidns_init_outlives_root
run_test pidns.stasis_is_init test_pidns_stasis_is_init

# Stasis in a new pid namespace that still sees the old /proc: /proc/PID
# there is another process than PID is for stasis. Dump and restore are
# refused in one line, before anything is touched.
test_pidns_foreign_proc() {
	local pid rc
	start_prog mem_anon "$BIN/mem_anon"
	pid=$PROG_PID
	wait_ready mem_anon "$pid" || return
	mkdir -p "$T_WORK/img"
	note "unshare -pf stasis dump -t $pid (the host's /proc)"
	unshare -pf "$STASIS" dump -t "$pid" -D "$T_WORK/img" > /dev/null 2> "$T_LOG/dump.stderr" < /dev/null
	rc=$?
	[[ $rc != 0 ]] || fail "a dump through another namespace's /proc succeeded"
	grep -q "^Error: /proc belongs to another pid namespace than stasis runs in" "$T_LOG/dump.stderr" ||
		fail "message: $(head -n1 "$T_LOG/dump.stderr")"
	(($(wc -l < "$T_LOG/dump.stderr") == 1)) || fail "more than one line on stderr" "$T_LOG/dump.stderr"
	runs_freely "$pid" || fail "pid $pid in state $(proc_state "$pid") after the refused dump" || return
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	unshare -pf "$STASIS" restore -D "$T_WORK/img" > /dev/null 2> "$T_LOG/restore.stderr" < /dev/null
	[[ $? != 0 ]] || fail "a restore through another namespace's /proc succeeded"
	grep -q "^Error: /proc belongs to another pid namespace" "$T_LOG/restore.stderr" ||
		fail "restore message: $(head -n1 "$T_LOG/restore.stderr")"
}

run_test pidns.foreign_proc test_pidns_foreign_proc
