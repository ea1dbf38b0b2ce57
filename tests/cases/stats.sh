# stats-dump and stats-restore, CRIU's record of a dump and a restore:
# crit reads them, and the pages they say were written are exactly the
# pages in the images (what CRIU's test suite checks after every dump).

# A tree sharing anonymous memory (tests/progs/shmem.c): private and
# shared pages both counted.
test_stats_shared() {
	tree_start shmem "$BIN/shmem" || return
	dump dump "$TREE_ROOT" "$T_WORK/img" || return
	check_dump_stats dump "$T_WORK/img" || return
	((STATS_SCANNED > 0 && STATS_PARENT == 0)) ||
		fail "stats-dump: $STATS_SCANNED pages scanned, $STATS_PARENT in a parent (there is none)"
	local shared
	shared=$("$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["entries"][0]["dump"]["shpages_written"])' \
		< <("$CRIT" decode -i "$T_WORK/img/stats-dump"))
	((shared > 0)) || fail "stats-dump counts no shared page written for a tree that shares memory"
	expect_tree_killed || return
	restore_foreground restore "$T_WORK/img"
	wait_restored restore "$TREE_ROOT" "$TREE_EXE" 1 "$RESTORE_PID" || return
	check_restore_stats restore "$T_WORK/img" 1
	kill -USR1 "$TREE_ROOT"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output shmem
	tree_finished
}

# A pre-dump then a dump on top of it: the dump counts the pages it left
# to its parent, and writes only the rest.
test_stats_incremental() {
	local dir=$T_WORK/img
	start_prog dirtier "$BIN/dirtier" 16
	wait_ready dirtier "$PROG_PID" || return
	mkdir -p "$dir/1" "$dir/2"
	rc=$(stasis pre pre-dump -t "$PROG_PID" -D "$dir/1")
	[[ $rc == 0 ]] || { fail "pre-dump exited $(rc_text "$rc"): $(error_message pre)" "$T_LOG/pre.log"; return; }
	check_dump_stats pre "$dir/1" || return
	((STATS_WRITTEN >= 16 * 256)) || fail "the pre-dump of 16 MiB wrote only $STATS_WRITTEN pages"
	dump dump "$PROG_PID" "$dir/2" --prev-images-dir ../1 || return
	check_dump_stats dump "$dir/2" || return
	((STATS_PARENT > 0)) || fail "the dump after a pre-dump left no page to its parent"
	((STATS_SCANNED >= STATS_PARENT + STATS_WRITTEN)) ||
		fail "scanned $STATS_SCANNED < written $STATS_WRITTEN + in parent $STATS_PARENT"
}

run_test stats.shared test_stats_shared
run_test --needs memtrack stats.incremental test_stats_incremental
