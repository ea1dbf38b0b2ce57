# The pipeline of a C program (fork + pipe + exec, see
# tests/progs/pipeline_parent.c), dumped mid-stream: its output goes on
# with no gap and no repeat, and the tree keeps its shape.
test_c_pipeline() {
	local pid exe n out=$T_FILES/out
	start_prog pipeline "$BIN/pipeline_parent" "$out"
	pid=$PROG_PID
	wait_until "$TMO" has_lines "$out" 20 || { fail "the pipeline produced nothing"; return; }
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	n=$(line_count "$out")
	restore_detached restore "$T_WORK/img" "$pid" "$exe" 0 || return
	[[ $(ls "/proc/$pid/task/$pid/children" > /dev/null 2>&1; wc -w < "/proc/$pid/task/$pid/children") == 2 ]] ||
		fail "the restored parent does not have its two children"
	wait_until "$TMO" has_lines "$out" $((n + 30)) ||
		fail "the pipeline did not go on after restore ($(line_count "$out") lines, $n at dump)"
	kill_leftovers
	check_sequence "$out"
}

run_test real.c_pipeline test_c_pipeline
