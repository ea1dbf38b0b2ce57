# forkloop (tests/progs/forkloop.c), dumped while it forks. It runs
# alone, as its plain run: it goes round all the pids in seconds.

# A process forking children in a tight loop: three --leave-running dumps
# (each must succeed, or fail cleanly and leave the process running), then
# a dump that kills it (up to three tries), a restore, and the loop must
# go on (SIGUSR2 marks its round counter before the dump and twice after
# the restore; the program checks they grow).
test_forkloop() {
	local pid i rc ok=0 msgs=
	start_prog forkloop "$BIN/forkloop"
	pid=$PROG_PID
	wait_ready forkloop "$pid" || return
	kill -USR2 "$pid"
	for i in 1 2 3; do
		rc=$(stasis "dumpR$i" dump -t "$pid" -D "$T_WORK/imgR$i" --leave-running)
		case $rc in
		0) decode_images "$T_WORK/imgR$i" "dumpR$i" ;;
		124 | 137) fail "dumpR$i: dump --leave-running hung" "$T_LOG/dumpR$i.log" || return ;;
		*)
			[[ -n $(error_message "dumpR$i") ]] || fail "dumpR$i failed (rc $rc) without a message" "$T_LOG/dumpR$i.log"
			msgs+="dumpR$i: $(error_message "dumpR$i"); "
			;;
		esac
		note "dumpR$i: rc $rc"
		wait_until 5 runs_freely "$pid" ||
			fail "dumpR$i (rc $rc): the process is left in state $(proc_state "$pid"), TracerPid $(status_field "$pid" TracerPid)" \
				"$T_LOG/dumpR$i.log" || return
	done
	kill -USR2 "$pid"
	for i in 1 2 3; do
		rc=$(stasis "dump$i" dump -t "$pid" -D "$T_WORK/img$i")
		note "dump$i: rc $rc"
		if [[ $rc == 0 ]]; then
			ok=$i
			break
		fi
		[[ $rc != 124 && $rc != 137 ]] || fail "dump$i hung" "$T_LOG/dump$i.log" || return
		msgs+="dump$i: $(error_message "dump$i"); "
		wait_until 5 runs_freely "$pid" ||
			fail "dump$i failed (rc $rc) and left the process in state $(proc_state "$pid")" "$T_LOG/dump$i.log" || return
	done
	((ok)) || fail "no dump of the forking process succeeded in 3 tries: $msgs" "$T_LOG/dump3.log" || return
	[[ -z $msgs ]] || note "dumps that failed cleanly: $msgs"
	decode_images "$T_WORK/img$ok" "dump$ok"
	expect_killed "$pid" || return
	restore_foreground restore "$T_WORK/img$ok"
	wait_restored restore "$pid" "$(readlink -f "$BIN/forkloop")" 1 "$RESTORE_PID" || return
	sleep 0.3
	kill -USR2 "$pid"
	sleep 0.3
	kill -USR2 "$pid"
	kill -USR1 "$pid"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output forkloop
	[[ $CHILD_RC == 0 ]] || fail "foreground restore exited $CHILD_RC (the program's status)" "$T_LOG/forkloop.out"
}

run_test --alone tree.forkloop.dump test_forkloop
