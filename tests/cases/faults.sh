# Fault points (src/util/fault.h): stasis killed at a named step of a
# dump or a restore, with STASIS_TEST_DIE_AT=POINT[:N], where the timed
# kills of kill_dumper.sh only hope to land.
#
# A dump cut short must leave the tree running as it was (untraced, its
# own check passing after) and a directory that restore refuses, until
# inventory.img is renamed into place: from then on it is a complete
# dump. A restore cut short must leave nothing: no process of the tree,
# no other orphan, nothing in the way of the next restore of the same
# images.

# The tree under TREE_ROOT runs as it did at READY: the same signature
# (no process stopped or traced by a dead tracer), every process free.
tree_runs_on() {
	local tag=$1 p
	expect_tree "$tag" "$TREE_ROOT" "$TREE_SIG" || return
	for p in "${TREE_PIDS[@]}"; do
		runs_freely "$p" ||
			fail "$tag: pid $p is in state $(proc_state "$p"), TracerPid $(status_field "$p" TracerPid)" \
				"$T_LOG/$tag.log" || return
	done
}

# The tree's own check after SIGUSR1: every process passes and ends.
tree_passes() {
	local label=$1
	kill -USR1 "$TREE_ROOT"
	wait_child "$TREE_ROOT"
	check_output "$label"
	[[ $CHILD_RC == 0 ]] || fail "$label exited $CHILD_RC" "$T_LOG/$label.out"
	tree_finished
}

# A dump of PROG cut at POINT: the tree runs on, the directory holds no
# inventory.img and does not restore; a dump into the same directory then
# works (what the cut one left is not in its way), and the tree passes.
test_dump_cut() {
	local point=$1 prog=$2 img=$T_WORK/img
	tree_start "$prog" "$BIN/$prog" || return
	mkdir -p "$img"
	stasis_killed_at cut "$point" dump -t "$TREE_ROOT" -D "$img" || return
	tree_runs_on cut || return
	[[ ! -e $img/inventory.img ]] || fail "the cut dump left an inventory.img" || return
	# refused for that, not for the pids the tree still holds
	expect_restore_fails refused "$img" ""
	grep -q "holds no complete dump" "$T_LOG/refused.stderr" ||
		fail "the restore of the cut dump failed for another reason: $(error_message refused)" "$T_LOG/refused.log"
	dump again "$TREE_ROOT" "$img" --leave-running || return
	tree_runs_on again || return
	tree_passes "$prog"
}

# A dump of forktree cut right after inventory.img was renamed into
# place, before the tree was killed: the dump is complete (it decodes),
# the tree runs on and passes, and the images then restore a tree that
# passes too.
test_dump_committed() {
	local point=$1 img=$T_WORK/img
	tree_start forktree "$BIN/forktree" || return
	mkdir -p "$img"
	stasis_killed_at cut "$point" dump -t "$TREE_ROOT" -D "$img" || return
	decode_images "$img" cut
	cp "$T_LOG/forktree.out" "$T_WORK/forktree.out.at-dump"
	tree_runs_on cut || return
	tree_passes forktree || return
	# the copy restored writes on where the output was at the dump
	mv "$T_LOG/forktree.out" "$T_LOG/forktree-orig.out"
	cp "$T_WORK/forktree.out.at-dump" "$T_LOG/forktree.out"
	restored_tree_passes forktree "$img"
}

# Children of this test's subreaper but the worker: what a restore that
# died left behind (its tree's root is stasis's child).
orphans() {
	local c
	for c in $(cat /proc/$PPID/task/*/children 2> /dev/null); do
		[[ $c == "$$" ]] || existing_pids "$c"
	done
}
no_orphans() { [[ -z $(orphans) ]]; }

# PROG dumped, then restored by a stasis cut at POINT: within 5 s no pid
# of the tree is held and no orphan is left; the same images then
# restore whole, and the tree passes.
test_restore_cut() {
	local point=$1 prog=$2 img=$T_WORK/img
	tree_start "$prog" "$BIN/$prog" || return
	dump dump "$TREE_ROOT" "$img" || return
	expect_tree_killed || return
	stasis_killed_at cut "$point" restore -D "$img" || return
	wait_until 5 tree_gone "${TREE_PIDS[@]}" ||
		fail "the cut restore left processes of the tree: $(existing_pids "${TREE_PIDS[@]}")" "$T_LOG/cut.log" ||
		return
	wait_until 5 no_orphans || fail "the cut restore left processes: $(orphans)" "$T_LOG/cut.log" || return
	restored_tree_passes "$prog" "$img"
}

# A process of the tree killed while it is being made (its memory in, not
# yet ready; its parent's children inherit the hook's count, so each
# child of the root dies there): the restore fails naming a dead one (not
# "only N of M came up" after its 30 s wait), leaves nothing, and the
# images then restore whole.
test_restore_child_died() {
	local img=$T_WORK/img rc
	tree_start forktree "$BIN/forktree" || return
	dump dump "$TREE_ROOT" "$img" || return
	expect_tree_killed || return
	rc=$(STASIS_TEST_DIE_AT=task-premapped:2 stasis cut restore -D "$img")
	((rc != 0)) || fail "the restore succeeded with processes of the tree killed" "$T_LOG/cut.log" || return
	grep -q "died while the tree was being restored" "$T_LOG/cut.log" ||
		fail "the restore did not say a process died ($(grep -m1 Error "$T_LOG/cut.log"))" "$T_LOG/cut.log" ||
		return
	wait_until 5 tree_gone "${TREE_PIDS[@]}" ||
		fail "the failed restore left processes of the tree: $(existing_pids "${TREE_PIDS[@]}")" || return
	wait_until 5 no_orphans || fail "the failed restore left processes: $(orphans)" || return
	restored_tree_passes forktree "$img"
}
run_test fail.restore_child_died test_restore_child_died

# Dump: every process seized and stopped, nothing injected yet; the 5th
# process's dump about to begin (four dumped and still stopped); page
# contents being written (bigmem's 512 MiB go in 64 writes by two
# threads; in forktree, a write of each process); inventory.img.tmp
# written, not yet renamed.
run_test fail.dump_cut.seized test_dump_cut seized forktree
run_test fail.dump_cut.task-dump_5 test_dump_cut task-dump:5 forktree
run_test fail.dump_cut.pages-written_1 test_dump_cut pages-written:1 bigmem
run_test fail.dump_cut.pages-written_30 test_dump_cut pages-written:30 bigmem
run_test fail.dump_cut.pages-written_7 test_dump_cut pages-written:7 forktree
run_test fail.dump_cut.inventory-tmp-written test_dump_cut inventory-tmp-written forktree
run_test fail.dump_cut.inventory-renamed test_dump_committed inventory-renamed
# Restore: every process forked and waiting in stasis's code (sessions has
# a helper process for a group whose leader is gone); the first page
# contents read into a process. Until a process is rebuilt, each has
# SIGKILL as its parent-death signal, and the tree dies with stasis.
run_test fail.restore_cut.tree-forked test_restore_cut tree-forked forktree
run_test fail.restore_cut.tree-forked_helpers test_restore_cut tree-forked sessions
run_test fail.restore_cut.pages-read_1 test_restore_cut pages-read:1 forktree
# Once a process is rebuilt it is traced with PTRACE_O_EXITKILL: the
# kernel kills it if stasis dies, and those not rebuilt yet die with it.
# The cuts: the first process rebuilt (forktree; sessions, with a helper
# for a group whose leader is gone), a later one's pages being read, the
# whole tree rebuilt and not yet let go.
run_test fail.restore_cut.task-rebuilt test_restore_cut task-rebuilt forktree
run_test fail.restore_cut.task-rebuilt_helpers test_restore_cut task-rebuilt sessions
run_test fail.restore_cut.task-rebuilt_3 test_restore_cut task-rebuilt:3 forktree
run_test fail.restore_cut.pages-read_5 test_restore_cut pages-read:5 forktree
run_test fail.restore_cut.tree-rebuilt test_restore_cut tree-rebuilt forktree
run_test fail.restore_cut.tree-rebuilt_threads test_restore_cut tree-rebuilt threads
