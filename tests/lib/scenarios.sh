# The scenarios a test program goes through (tests/README.md, "The
# protocol of a test program"), and the checks made from outside for
# some programs. A program declares its scenarios in its own source
# (progs/NAME.c, a "test" line: see declare_prog_tests).

# Extra checks after a program finished, by program name.
postcheck() {
	case $1 in
	writer) check_sequence "$T_FILES/seq.txt" 8 ;;
	esac
}

# Kernels before 6.7 (Debian 12's 6.1) have no PAGEMAP_SCAN: the dump
# must find pages by reading /proc/PID/pagemap instead.
scenario_pagemap_fallback() {
	STASIS_NO_PAGEMAP_SCAN=1 scenario_restore "$@"
	grep -q "reading pagemap instead" "$T_LOG/dump.log" ||
		fail "the dump did not take the pagemap path" "$T_LOG/dump.log"
}

scenario_timer_ids_fallback() {
	STASIS_NO_TIMER_RESTORE_IDS=1 scenario_restore "$@"
	grep -q "timers made in order" "$T_LOG/restore.log" ||
		fail "the restore did not make its timers in order" "$T_LOG/restore.log"
}

# The restore's log on stderr, not in a file (no -o): one fd fewer in the
# tool moves where the files it opens for the tree land.
scenario_stderr_log() {
	STASIS_TEST_LOG_STDERR=1 scenario_restore "$@"
}

# Plain run without the tool: proves the program itself passes.
scenario_plain() {
	local prog=$1
	start_prog "$prog" "$BIN/$prog"
	wait_ready "$prog" "$PROG_PID" || return
	kill -USR1 "$PROG_PID"
	wait_child "$PROG_PID"
	check_output "$prog"
	[[ $CHILD_RC == 0 ]] || fail "$prog exited $CHILD_RC" "$T_LOG/$prog.err"
	postcheck "$prog"
}

# (a) dump -> foreground restore -> SIGUSR1 -> PASS, restore exits 0.
scenario_restore() {
	local prog=$1 exe pid
	exe=$(readlink -f "$BIN/$prog")
	start_prog "$prog" "$BIN/$prog"
	pid=$PROG_PID
	wait_ready "$prog" "$pid" || return
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	restore_foreground restore "$T_WORK/img"
	wait_restored restore "$pid" "$exe" 1 "$RESTORE_PID" || return
	sleep 0.2
	kill -USR1 "$pid"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output "$prog"
	[[ $CHILD_RC == 0 ]] || fail "foreground restore exited $CHILD_RC (the program's status)" "$T_LOG/restore.log"
	postcheck "$prog"
}

# (b) dump -> restore -d -> dump -> restore -d -> SIGUSR1 -> PASS.
scenario_chain() {
	local prog=$1 exe pid
	exe=$(readlink -f "$BIN/$prog")
	start_prog "$prog" "$BIN/$prog"
	pid=$PROG_PID
	wait_ready "$prog" "$pid" || return
	dump dump1 "$pid" "$T_WORK/img1" || return
	expect_killed "$pid" || return
	restore_detached restore1 "$T_WORK/img1" "$pid" "$exe" 1 || return
	sleep 0.2
	dump dump2 "$pid" "$T_WORK/img2" || return
	expect_killed "$pid" || return
	restore_detached restore2 "$T_WORK/img2" "$pid" "$exe" 1 || return
	sleep 0.2
	kill -USR1 "$pid"
	# Not our child any more: poll until it is gone.
	wait_gone "$pid" || fail "restored $prog did not exit after SIGUSR1" "$T_LOG/$prog.out"
	check_output "$prog"
	postcheck "$prog"
}

# (c) two --leave-running dumps; the original must not notice.
scenario_leave_running() {
	local prog=$1 pid i
	start_prog "$prog" "$BIN/$prog"
	pid=$PROG_PID
	wait_ready "$prog" "$pid" || return
	for i in 1 2; do
		dump "dump$i" "$pid" "$T_WORK/img$i" --leave-running || return
		wait_until 5 runs_freely "$pid" ||
			fail "after --leave-running dump $i: pid $pid state $(proc_state "$pid"), TracerPid $(status_field "$pid" TracerPid)" \
				"$T_LOG/dump$i.log" || return
	done
	kill -USR1 "$pid"
	wait_child "$pid"
	check_output "$prog"
	[[ $CHILD_RC == 0 ]] || fail "$prog exited $CHILD_RC after --leave-running dumps" "$T_LOG/$prog.err"
	postcheck "$prog"
}

# Checks that the runner makes from outside, by program (PHASE "ready":
# after READY, before any dump; "restored": after the last restore,
# before SIGUSR1).
tree_hook() {
	local phase=$1 label=$2 root=$3
	case $label in
	stopped) stopped_hook "$phase" "$root" ;;
	esac
}

# stopped: the child S is stopped (every thread in state T) at READY and
# after each restore; then it gets SIGCONT and must run on.
stopped_pid() {
	local p
	for p in $(tree_members "$1"); do
		[[ $(proc_state "$p") == T ]] && echo "$p" && return 0
	done
	return 1
}
all_threads_in() {
	local t st
	for t in /proc/$1/task/*; do
		st=$(awk '{ s = $0; sub(/.*\) /, "", s); split(s, f, " "); print f[1] }' "$t/stat" 2>/dev/null)
		# shellcheck disable=SC2053 # $2 is a pattern
		[[ $st == $2 ]] || return 1
	done
}
stopped_hook() {
	local phase=$1 root=$2 s
	s=$(stopped_pid "$root") || {
		fail "$phase: no process of the tree is stopped (states: $(for p in $(tree_members "$root"); do echo -n "$p:$(proc_state "$p") "; done))"
		return 1
	}
	wait_until 2 all_threads_in "$s" T ||
		fail "$phase: not every thread of the stopped process $s is in state T" || return
	[[ $phase == restored ]] || return 0
	kill -CONT "$s"
	wait_until 5 all_threads_in "$s" '[RSD]' ||
		fail "stopped process $s did not run on after SIGCONT (state $(proc_state "$s"))" || return
	note "sent SIGCONT to $s, it runs"
}

# A tree program's plain run (LABEL [ARGS]), without the tool: it and the
# checks from outside pass, and no process of the tree is left.
tree_plain() {
	local label=$1
	shift
	tree_start "$label" "$BIN/$label" "$@" || return
	tree_hook ready "$label" "$TREE_ROOT" || return
	tree_hook restored "$label" "$TREE_ROOT" || return
	kill -USR1 "$TREE_ROOT"
	wait_child "$TREE_ROOT"
	check_output "$label"
	[[ $CHILD_RC == 0 ]] || fail "$label exited $CHILD_RC" "$T_LOG/$label.out"
	tree_finished
}

# dump -> foreground restore: same tree (pids, parents, groups, sessions,
# states, threads) -> SIGUSR1 -> PASS, and restore exits 0.
tree_restore() {
	local label=$1
	shift
	tree_start "$label" "$BIN/$label" "$@" || return
	tree_hook ready "$label" "$TREE_ROOT" || return
	tree_dump_restore "$label"
}

# Two pre-dumps, each the parent of the next, then the dump on top of
# them and a foreground restore as tree_restore's: each process's pages
# come from three dumps' images, and what it shares with its parent must
# stay shared.
tree_predump() {
	local label=$1 i rc prev=()
	shift
	tree_start "$label" "$BIN/$label" "$@" || return
	tree_hook ready "$label" "$TREE_ROOT" || return
	for i in 1 2; do
		rc=$(stasis "predump$i" pre-dump -t "$TREE_ROOT" -D "$T_WORK/pre$i" "${prev[@]}")
		[[ $rc == 0 ]] || { fail "predump$i: exited $(rc_text "$rc"): $(error_message "predump$i")" \
			"$T_LOG/predump$i.log"; return 1; }
		prev=(--prev-images-dir "../pre$i")
	done
	tree_dump_restore "$label" "${prev[@]}" --track-mem
}

# CRIU (CRIU_BIN) dumps the tree, stasis restores it as tree_restore's:
# CRIU's images (whose page runs may span mappings) must come back as
# stasis's do.
tree_criu_dump() {
	local label=$1 rc
	shift
	tree_start "$label" "$BIN/$label" "$@" || return
	tree_hook ready "$label" "$TREE_ROOT" || return
	mkdir -p "$T_WORK/img"
	timeout -k 5 "$TMO" "$CRIU_BIN" dump -t "$TREE_ROOT" -D "$T_WORK/img" -o "$T_LOG/criu-dump.log" -v4 \
		> "$T_LOG/criu-dump.out" 2>&1 < /dev/null
	rc=$?
	[[ $rc == 0 ]] || { fail "CRIU could not dump the tree (rc $rc)" "$T_LOG/criu-dump.log"; return 1; }
	expect_tree_killed || return
	tree_restore_dumped "$label"
}

# tree_restore's dump (with ARGS) and what follows, for the tree running.
tree_dump_restore() {
	local label=$1
	shift
	dump dump "$TREE_ROOT" "$T_WORK/img" "$@" || return
	expect_tree_killed || return
	tree_restore_dumped "$label"
}

# The foreground restore of T_WORK/img and what follows, for the tree dumped.
tree_restore_dumped() {
	local label=$1
	restore_foreground restore "$T_WORK/img"
	wait_restored restore "$TREE_ROOT" "$TREE_EXE" 1 "$RESTORE_PID" || {
		not_running "$RESTORE_PID" && failed_restore_leftovers
		return 1
	}
	# a different tree is reported, but the program still gets to run
	# its own checks (their FAIL lines are in LABEL.out)
	expect_tree restore "$TREE_ROOT" "$TREE_SIG"
	tree_hook restored "$label" "$TREE_ROOT" || return
	kill -USR1 "$TREE_ROOT"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output "$label"
	[[ $CHILD_RC == 0 ]] || fail "foreground restore exited $CHILD_RC (the root's status)" "$T_LOG/$label.out"
	tree_finished
}

# Three rounds of dump -> restore -d, then SIGUSR1 -> PASS.
tree_chain() {
	local label=$1 i rc
	shift
	tree_start "$label" "$BIN/$label" "$@" || return
	for i in 1 2 3; do
		dump "dump$i" "$TREE_ROOT" "$T_WORK/img$i" || return
		expect_tree_killed || return
		rc=$(stasis "restore$i" restore -D "$T_WORK/img$i" -d --pidfile "$T_WORK/restore$i.pid")
		if [[ $rc != 0 ]]; then
			fail "restore$i: stasis restore -d exited $(rc_text "$rc"): $(error_message "restore$i")" "$T_LOG/restore$i.log"
			failed_restore_leftovers
			return 1
		fi
		wait_restored "restore$i" "$TREE_ROOT" "$TREE_EXE" 1 || return
		expect_tree "restore$i" "$TREE_ROOT" "$TREE_SIG"
		sleep 0.2
	done
	kill -USR1 "$TREE_ROOT"
	wait_gone "$TREE_ROOT" || fail "restored $label did not exit after SIGUSR1" "$T_LOG/$label.out"
	check_output "$label"
	tree_finished
}

# Two --leave-running dumps: the tree must be exactly as before, running.
tree_leave_running() {
	local label=$1 i
	shift
	tree_start "$label" "$BIN/$label" "$@" || return
	for i in 1 2; do
		dump "dump$i" "$TREE_ROOT" "$T_WORK/img$i" --leave-running || return
		expect_tree "after-dump$i" "$TREE_ROOT" "$TREE_SIG" || return
	done
	kill -USR1 "$TREE_ROOT"
	wait_child "$TREE_ROOT"
	check_output "$label"
	[[ $CHILD_RC == 0 ]] || fail "$label exited $CHILD_RC after --leave-running dumps" "$T_LOG/$label.out"
	tree_finished
}

# ---------------------------------------------------------------------------
# Declaring a program's tests in its source
# ---------------------------------------------------------------------------

# The scenarios a program can declare, and their functions. A test is
# named PREFIX.SCENARIO (the "tree." of a tree scenario left out).
declare -A SCENARIOS=(
	[plain]=scenario_plain [restore]=scenario_restore [chain]=scenario_chain
	[leave_running]=scenario_leave_running [pagemap_fallback]=scenario_pagemap_fallback
	[timer_ids_fallback]=scenario_timer_ids_fallback [stderr_log]=scenario_stderr_log
	[tree.plain]=tree_plain [tree.restore]=tree_restore [tree.chain3]=tree_chain [tree.predump]=tree_predump
	[tree.leave_running]=tree_leave_running [tree.criu_dump]=tree_criu_dump
)

# A line of a program's header comment declares tests of it:
#    * test PREFIX[ (ARGS)]: SCENARIO... [--alone] [--needs NEED]...
# e.g. " * test tree.threads_pending (pending): tree.plain tree.restore"
# runs build/tests/threads with the argument "pending" through tree_plain
# and tree_restore, as tree.threads_pending.plain and .restore.
PROG_TEST_LINE='^ \* test ([A-Za-z0-9_.-]+)( \(([^)]*)\))?: (.+)$'

declare_prog_tests() {
	local src line
	for src in "$TESTS"/progs/*.c; do
		while IFS= read -r line; do
			[[ $line =~ $PROG_TEST_LINE ]] || continue
			declare_prog_line "$(basename "$src" .c)" "${BASH_REMATCH[1]}" \
				"${BASH_REMATCH[3]}" "${BASH_REMATCH[4]}"
		done < "$src"
	done
}

# declare_prog_line PROG PREFIX ARGS "SCENARIO... [OPTIONS]"
declare_prog_line() {
	local prog=$1 prefix=$2 args scenarios=() opts=() words w
	read -r -a args <<< "$3"
	read -r -a words <<< "$4"
	set -- "${words[@]}"
	while (($#)); do
		case $1 in
		--needs) opts+=("$1" "${2:-}") && shift ;;
		--*) opts+=("$1") ;;
		*) scenarios+=("$1") ;;
		esac
		shift
	done
	for w in "${scenarios[@]}"; do
		[[ -n ${SCENARIOS[$w]:-} ]] ||
			declaration_error "progs/$prog.c: no scenario '$w' (there are: ${!SCENARIOS[*]})"
		run_test "${opts[@]}" "$prefix.${w#tree.}" "${SCENARIOS[$w]}" "$prog" "${args[@]}"
	done
}
