# A dump without --leave-running kills the tree and returns once it is
# gone. The biggest process frees its memory on its way out, on one CPU;
# stasis frees it from the other at the same time (process_mrelease), so
# the wait is shorter.

# bigmem (256 MiB) dumped: gone when the dump returns, the log says
# stasis freed its memory with it (or that the process had detached it
# first: a race the dying process can win on a loaded machine, never an
# error), and the images restore whole.
test_kill_frees_memory() {
	start_prog bigmem env BIGMEM_MB=256 "$BIN/bigmem"
	local pid=$PROG_PID exe
	wait_ready bigmem "$pid" || return
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	if grep -q "its memory was freed from here too" "$T_LOG/dump.log"; then
		note "stasis freed the dying process's memory with it"
	elif grep -q "its memory was not freed from here (No such process)" "$T_LOG/dump.log"; then
		note "the dying process detached its memory before stasis could free it"
	else
		fail "the dump did not free the killed process's memory, nor say it lost the race" "$T_LOG/dump.log"
		return
	fi
	restore_foreground restore "$T_WORK/img"
	wait_restored restore "$pid" "$exe" 1 "$RESTORE_PID" || return
	kill -USR1 "$pid"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output bigmem
}

# A small process (below 64 MiB) is left to free its memory alone.
test_kill_small_alone() {
	start_prog bigmem env BIGMEM_MB=16 "$BIN/bigmem"
	local pid=$PROG_PID
	wait_ready bigmem "$pid" || return
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	! grep -q "memory was .*freed from here" "$T_LOG/dump.log" ||
		fail "stasis freed the memory of a 16 MiB process itself" "$T_LOG/dump.log"
}

run_test kill.frees_memory test_kill_frees_memory
run_test kill.small_alone test_kill_small_alone
