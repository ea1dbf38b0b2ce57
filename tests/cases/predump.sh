# pre-dump and incremental dumps: memory saved while the program runs,
# then a dump that saves only the pages written since (tests/progs/
# dirtier.c rewrites pages all the time and checks every page after the
# restore).

DIRTIER_MIB=64

# pre-dump DIR [ARGS]: must succeed and leave the program running.
pre_dump() {
	local tag=$1 dir=$2 rc
	shift 2
	mkdir -p "$dir"
	rc=$(stasis "$tag" pre-dump -t "$PROG_PID" -D "$dir" "$@")
	[[ $rc == 0 ]] || { fail "$tag: pre-dump exited $(rc_text "$rc"): $(error_message "$tag")" "$T_LOG/$tag.log"; return 1; }
	[[ ! -e $dir/inventory.img ]] || fail "$tag: a pre-dump wrote inventory.img (it is not a dump to restore)"
	runs_freely "$PROG_PID" || { fail "$tag: the program does not run freely after the pre-dump"; return 1; }
	local f
	for f in "$dir"/pagemap-*.img "$dir"/mm-*.img; do
		timeout "$TMO" "$CRIT" decode -i "$f" > /dev/null 2>> "$T_LOG/crit-$tag.log" ||
			fail "$tag: crit cannot decode $(basename "$f")" "$T_LOG/crit-$tag.log"
	done
}

# Starts the dirtier (PROG_PID) and waits for it; DIRTIER_EXE its exe.
start_dirtier() {
	start_prog dirtier "$BIN/dirtier" "$DIRTIER_MIB"
	wait_ready dirtier "$PROG_PID" || return
	DIRTIER_EXE=$(readlink "/proc/$PROG_PID/exe")
}

pages_bytes() { stat -c %s "$1"/pages-*.img | awk '{ s += $1 } END { print s + 0 }'; }

# The KiB a dump's log (LOG) says it left to its parents, and the KiB it
# says it saved ("pid N: X KiB in the parent dump, Y KiB changed or new").
log_kib() {
	awk -v which="$2" '/KiB in the parent dump/ {
		for (i = 1; i < NF; i++) if ($(i + 1) == "KiB") { if (++k % 2 == (which == "parent")) s += $i }
	} END { print s + 0 }' "$1"
}

# Did the dump TAG (its images in DIR) take pages from its parents? The
# log must say it left some to them and saved the rest, and the pages in
# DIR must be what it says it saved. How much was left depends on how
# fast the program writes against how fast stasis works: under a software
# CPU (the 6.1 VM) the dirtier rewrites most of its memory while stasis
# starts, so no fixed fraction holds everywhere.
dump_used_parent() {
	local tag=$1 dir=$2 parent saved bytes
	parent=$(log_kib "$T_LOG/$tag.log" parent) saved=$(log_kib "$T_LOG/$tag.log" saved)
	bytes=$(pages_bytes "$dir")
	note "$tag: $parent KiB left to the parents, $saved KiB saved, $bytes bytes of pages"
	! grep -q "every page is saved" "$T_LOG/$tag.log" && ((parent > 0)) ||
		{ fail "$tag did not use its parents ($parent KiB left to them)" "$T_LOG/$tag.log"; return 1; }
	((bytes == saved * 1024)) ||
		{ fail "$tag says it saved $saved KiB, its pages are $bytes bytes" "$T_LOG/$tag.log"; return 1; }
}

restore_and_check() {
	local dir=$1 pid=$2 exe=$3
	restore_foreground restore "$dir"
	wait_restored restore "$pid" "$exe" 1 "$RESTORE_PID" || return
	kill -USR1 "$pid"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output dirtier
}

# Two pre-dumps, each the parent of the next, then the dump: the dump
# saves a fraction of the memory, and the restore takes the rest from its
# parent and grandparent.
test_predump_chain() {
	local pid exe full last
	start_dirtier || return
	pid=$PROG_PID exe=$DIRTIER_EXE
	pre_dump pre1 "$T_WORK/img/1" || return
	sleep 0.3
	pre_dump pre2 "$T_WORK/img/2" --prev-images-dir ../1 || return
	sleep 0.3
	dump dump "$pid" "$T_WORK/img/3" --prev-images-dir ../2 || return
	expect_killed "$pid" || return
	full=$(pages_bytes "$T_WORK/img/1")
	last=$(pages_bytes "$T_WORK/img/3")
	note "pages saved: pre-dump 1 $full bytes, dump $last bytes"
	((full >= DIRTIER_MIB << 20)) || fail "the first pre-dump saved only $full bytes"
	dump_used_parent dump "$T_WORK/img/3"
	restore_and_check "$T_WORK/img/3" "$pid" "$exe"
}

# A parent that is not the last tracked dump (a pre-dump came after it):
# the dump must not take pages from it that changed since; it saves all.
test_predump_stale_parent() {
	local pid exe full last
	start_dirtier || return
	pid=$PROG_PID exe=$DIRTIER_EXE
	pre_dump pre1 "$T_WORK/img/1" || return
	sleep 0.2
	pre_dump pre2 "$T_WORK/img/2" --prev-images-dir ../1 || return
	sleep 0.2
	dump dump "$pid" "$T_WORK/img/3" --prev-images-dir ../1 || return
	expect_killed "$pid" || return
	full=$(pages_bytes "$T_WORK/img/1")
	last=$(pages_bytes "$T_WORK/img/3")
	((last * 10 >= full * 9)) || fail "the dump over a stale parent saved only $last bytes of $full"
	grep -q "not the last one that tracked" "$T_LOG/dump.log" || fail "no warning about the stale parent" "$T_LOG/dump.log"
	restore_and_check "$T_WORK/img/3" "$pid" "$exe"
}

# After a pre-dump, a plain dump (no parent) works: the tracker the
# pre-dump left in the program is not one of its fds to save.
test_predump_then_plain_dump() {
	local pid exe
	start_dirtier || return
	pid=$PROG_PID exe=$DIRTIER_EXE
	pre_dump pre1 "$T_WORK/img/1" || return
	dump dump "$pid" "$T_WORK/img/2" || return
	expect_killed "$pid" || return
	restore_and_check "$T_WORK/img/2" "$pid" "$exe"
}

# --leave-running dumps with --track-mem, each the parent of the next:
# snapshots that cost only what changed; the last one is restored.
test_track_mem_snapshots() {
	local pid exe
	start_dirtier || return
	pid=$PROG_PID exe=$DIRTIER_EXE
	dump dump1 "$pid" "$T_WORK/img/1" -R --track-mem || return
	sleep 0.2
	dump dump2 "$pid" "$T_WORK/img/2" -R --track-mem --prev-images-dir ../1 || return
	runs_freely "$pid" || { fail "the program does not run after the snapshots"; return; }
	dump_used_parent dump2 "$T_WORK/img/2"
	kill -9 "$pid"
	wait_gone "$pid" "$TMO" || return
	restore_and_check "$T_WORK/img/2" "$pid" "$exe"
}

# A dump with --track-mem that kills the tree arms no tracker: nothing
# runs on to be tracked. Cut short once its images are whole, it lets
# the program go on with the pre-dump's tracker as it was, and a retry
# over the same parent still takes from it what the program did not
# write (a tracker armed again would make that parent stale: everything
# saved), and restores right.
test_predump_kill_dump_cut() {
	local pid exe
	start_dirtier || return
	pid=$PROG_PID exe=$DIRTIER_EXE
	pre_dump pre1 "$T_WORK/img/1" || return
	sleep 0.2
	mkdir -p "$T_WORK/img/2"
	stasis_killed_at cut inventory-renamed dump -t "$pid" -D "$T_WORK/img/2" --prev-images-dir ../1 --track-mem ||
		return
	wait_until 5 runs_freely "$pid" || { fail "the program does not run after the cut dump"; return; }
	sleep 0.2
	dump dump "$pid" "$T_WORK/img/3" --prev-images-dir ../1 || return
	expect_killed "$pid" || return
	dump_used_parent dump "$T_WORK/img/3"
	restore_and_check "$T_WORK/img/3" "$pid" "$exe"
}

# rpc_drive_ok TAG WHAT LOG ARGS...: rpc_drive.py through swrk with ARGS,
# its output in T_LOG/TAG.out; a failure names WHAT, with LOG.
rpc_drive_ok() {
	local out=$T_LOG/$1.out what=$2 log=$3
	shift 3
	timeout -k 5 "$TMO" "$PYTHON" "$ROOT/tests/py/rpc_drive.py" --bin "$STASIS" "$@" > "$out" 2>&1 ||
		{ fail "$what: $(cat "$out")" "$log"; return 1; }
}

# The same through RPC: pycriu's pre_dump(), then dump() with parent_img
# and track_mem, through swrk.
test_predump_rpc() {
	local pid exe
	start_dirtier || return
	pid=$PROG_PID exe=$DIRTIER_EXE
	rpc_drive_ok predump "pycriu pre_dump()" "$T_WORK/img/1/dump.log" predump "$pid" "$T_WORK/img/1" || return
	runs_freely "$pid" || { fail "the program does not run freely after pre_dump()"; return; }
	sleep 0.3
	rpc_drive_ok dump "pycriu dump() with parent_img" "$T_WORK/img/2/dump.log" \
		dump "$pid" "$T_WORK/img/2" --parent ../1 || return
	rpc_dumped_on_parent "$pid" "$exe"
}

# rpc_dumped_on_parent PID EXE: the RPC dump in T_WORK/img/2, on top of
# the pre-dump in img/1, killed the program and took the unchanged pages
# from the parent; its restore runs the program on.
rpc_dumped_on_parent() {
	local pid=$1 exe=$2
	expect_killed "$pid" || return
	decode_images "$T_WORK/img/2" dump
	cp "$T_WORK/img/2/dump.log" "$T_LOG/rpcdump.log"
	dump_used_parent rpcdump "$T_WORK/img/2"
	restore_and_check "$T_WORK/img/2" "$pid" "$exe"
}

# CRIU's pre-dump loop: PRE_DUMP, then DUMP on the same connection with
# parent_img, without keep_open (as iterating clients send them; libcriu's
# criu_dump_iters sets keep_open, CRIU does not need it).
test_predump_rpc_loop() {
	local pid exe
	start_dirtier || return
	pid=$PROG_PID exe=$DIRTIER_EXE
	rpc_drive_ok iterdump "PRE_DUMP then DUMP on one connection" "$T_WORK/img/2/dump.log" \
		iterdump "$pid" "$T_WORK/img" || return
	rpc_dumped_on_parent "$pid" "$exe"
}

# Someone else clears the program's soft-dirty bits (echo 4 >
# /proc/PID/clear_refs, as another checkpoint tool does) between the
# pre-dump and the dump: the pages written before that clear look clean.
# With soft-dirty tracking the dump must notice and save everything; the
# userfaultfd tracker does not use those bits and takes what it can from
# its parent. Either way every page comes back right (the dirtier checks).
test_predump_foreign_clear() {
	local pid exe how
	how=$(mem_track_method)
	start_dirtier || return
	pid=$PROG_PID exe=$DIRTIER_EXE
	pre_dump pre1 "$T_WORK/img/1" || return
	sleep 0.3
	echo 4 > "/proc/$pid/clear_refs" || { fail "harness: can't write /proc/$pid/clear_refs"; return; }
	sleep 0.3
	dump dump "$pid" "$T_WORK/img/2" --prev-images-dir ../1 || return
	expect_killed "$pid" || return
	if [[ $how == softdirty ]]; then
		grep -q "cleared since the parent dump by someone else" "$T_LOG/dump.log" ||
			fail "the dump did not see that someone else cleared the soft-dirty bits" "$T_LOG/dump.log"
	elif grep -q "every page is saved" "$T_LOG/dump.log" || ! grep -q "KiB in the parent dump" "$T_LOG/dump.log"; then
		fail "the dump did not take pages from its parent" "$T_LOG/dump.log"
	fi
	restore_and_check "$T_WORK/img/2" "$pid" "$exe"
}

# RPC FEATURE_CHECK says mem_track exactly where pre-dump can track
# (`stasis check`: userfaultfd WP_ASYNC, or soft-dirty bits on 6.1).
test_predump_feature_check() {
	local out want=True
	[[ $(mem_track_method) != none ]] || want=False
	out=$(timeout -k 5 "$TMO" "$PYTHON" "$ROOT/tests/py/rpc_drive.py" --bin "$STASIS" features 2>&1)
	note "FEATURE_CHECK: $out; stasis check: $(mem_track_method)"
	[[ $out == "mem_track $want" ]] ||
		fail "FEATURE_CHECK answers '$out', but stasis check says the tracking is '$(mem_track_method)'"
}

# A pre-dump copies the pages once the program runs again (frozen for the
# scan only, as CRIU's --pre-dump-mode read): snapwriter rewrites its
# pages from two threads throughout, and a third thread discards
# (MADV_DONTNEED) or unmaps and maps anew (remap) pages of its own; the
# dump over that pre-dump takes what was not written since from it, and
# the restored program finds a memory of one instant (its own check:
# every page as its generation table says, the third thread's pages
# zero or their pattern).
test_predump_while_running() {
	local mode=$1 pid exe
	printf 0 > "$T_WORK/ctl"
	start_prog snapwriter "$BIN/snapwriter" 128 "$T_WORK/ctl" "$mode"
	pid=$PROG_PID exe=$(readlink -f "$BIN/snapwriter")
	wait_ready snapwriter "$pid" || return
	pre_dump pre "$T_WORK/img/1" || return
	grep -q "saved while it ran" "$T_LOG/pre.log" || { fail "the pre-dump copied its pages frozen" "$T_LOG/pre.log"; return; }
	note "$(grep -o "[0-9]* pages unmapped or discarded during the copy" "$T_LOG/pre.log" || echo "no page missed by the copy")"
	sleep 0.3
	dump dump "$pid" "$T_WORK/img/2" --prev-images-dir ../1 || return
	expect_killed "$pid" || return
	dump_used_parent dump "$T_WORK/img/2" || return
	printf 1 1<> "$T_WORK/ctl"
	restore_foreground restore "$T_WORK/img/2"
	wait_restored restore "$pid" "$exe" 1 "$RESTORE_PID" || return
	kill -USR1 "$pid"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output snapwriter
}

run_test predump.chain test_predump_chain
run_test --needs memtrack predump.while_running test_predump_while_running unmap
run_test --needs memtrack predump.while_remapped test_predump_while_running remap
run_test predump.feature_check test_predump_feature_check
run_test --needs memtrack predump.foreign_clear test_predump_foreign_clear
run_test predump.rpc test_predump_rpc
run_test predump.rpc_loop test_predump_rpc_loop
run_test predump.stale_parent test_predump_stale_parent
run_test predump.then_plain_dump test_predump_then_plain_dump
run_test predump.track_mem_snapshots test_track_mem_snapshots
run_test predump.kill_dump_cut test_predump_kill_dump_cut
