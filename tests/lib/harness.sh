# The state of the test being run, and what every test uses: failing,
# skipping, notes, starting programs and checking what they printed,
# cleaning up after the test, reporting it. Each test runs in a worker
# of its own (lib/worker.sh), so this state is never shared.

# ---------------------------------------------------------------------------
# Per-test state.  setup_test resets it; helpers fill it in.
#   T_NAME   test name            T_LOG   its log dir (kept)
#   T_WORK   scratch dir (removed): images in T_WORK/img*, program cwd in
#            T_WORK/files
#   T_FAIL   first failure reason T_FAIL_LOG  log to show on failure
#   T_PIDS   pids to kill -9 at the end; T_SIDS sessions to kill;
#   T_PGIDS  process groups (the `timeout` wrappers around stasis)
# ---------------------------------------------------------------------------
T_NAME= T_LOG= T_WORK= T_FILES= T_FAIL= T_FAIL_LOG= T_SKIP=
T_PIDS=() T_SIDS=() T_PGIDS=() T_DIRS=()

note() { echo "[$(date +%T.%N | cut -c1-12)] $*" >> "$T_LOG/runner.log"; }

# Record a failure.  Only the first reason is reported: later ones are
# usually consequences.  Always returns 1 so callers can `|| return`.
fail() {
	note "FAIL: $1"
	if [[ -z $T_FAIL ]]; then
		T_FAIL=$1
		T_FAIL_LOG=${2:-}
	fi
	return 1
}

# The test needs what this kernel truly lacks (say which in REASON):
# reported as SKIP, counted apart, never as passed. Only for a missing
# kernel feature, never to hide a failure: a failure already recorded
# still fails the test.  Returns 1 so callers can `|| return`.  A need
# that can be told before the test starts is declared instead
# (`run_test --needs`, lib/registry.sh).
skip() {
	note "SKIP: $1"
	[[ -n $T_SKIP ]] || T_SKIP=$1
	return 1
}

# ---------------------------------------------------------------------------
# Starting and checking programs
# ---------------------------------------------------------------------------

# start_prog LABEL CMD...: run CMD in its own session (so it can be dumped
# without --shell-job), cwd T_FILES, stdout/stderr to T_LOG/LABEL.out/.err.
# Sets PROG_PID.  The subshell execs setsid, which execs CMD without
# forking (we are not a process group leader), so $! is CMD's pid.
start_prog() {
	local label=$1
	shift
	(cd "$T_FILES" && exec setsid "$@" > "$T_LOG/$label.out" 2> "$T_LOG/$label.err" < /dev/null) &
	PROG_PID=$!
	T_PIDS+=("$PROG_PID")
	T_SIDS+=("$PROG_PID")
	note "started $label as pid $PROG_PID: $*"
}

ready_or_dead() { has_line "$1" READY || not_alive "$2"; }

# Wait for a test program's READY line and check it is a session leader.
wait_ready() {
	local label=$1 pid=$2 out=$T_LOG/$1.out
	if ! wait_until "$TMO" ready_or_dead "$out" "$pid"; then
		fail "$label never printed READY within ${TMO}s" "$T_LOG/$label.err"
		return 1
	fi
	if ! has_line "$out" READY; then
		fail "$label died before READY: $(grep -m1 FAIL "$out" || tail -n1 "$T_LOG/$label.err")" \
			"$T_LOG/$label.err"
		return 1
	fi
	# (a program may be gone already: one that dumps itself once READY)
	local sid
	sid=$(proc_sid "$pid")
	[[ -z $sid || $sid == "$pid" ]] || fail "harness: $label (pid $pid) is not a session leader"
}

# Did the program report PASS and no FAIL?
check_output() {
	local label=$1 out=$T_LOG/$1.out
	if grep -q '^FAIL' "$out"; then
		fail "$label: $(grep '^FAIL' "$out" | head -n3 | tr '\n' ' ')" "$out"
	elif ! has_line "$out" PASS; then
		fail "$label printed no PASS (killed or crashed?)" "$T_LOG/$label.err"
	fi
}

# check_sequence FILE [WIDTH]: lines 1, 2, 3, ... with no gap or repeat.
check_sequence() {
	local file=$1 width=${2:-0} bad
	bad=$(awk -v w="$width" '
		bad == "" && ($0 !~ /^[0-9]+$/ || (w > 0 && length($0) != w)) { bad = "line " NR " is \"" $0 "\"" }
		bad == "" && $0 + 0 > NR { bad = "gap: line " NR " holds " $0 + 0 }
		bad == "" && $0 + 0 < NR { bad = "repeat: line " NR " holds " $0 + 0 }
		END { if (NR == 0) bad = "file is empty"; print bad }' "$file" 2>&1)
	[[ -z $bad ]] || fail "$(basename "$file"): $bad" "$file"
}

# ---------------------------------------------------------------------------
# Per-test setup and cleanup
# ---------------------------------------------------------------------------

# Orphans re-parented to the subreaper this test's worker runs under, one
# for each test (restored trees after `restore -d`, the init of a
# --new-pidns restore, processes a failed restore left behind): every
# child of that subreaper but us is a leftover of this test.  Kill each
# with all its descendants.
sweep_orphans() {
	local c p
	[[ -n ${STASIS_TEST_SUBREAPER:-} && $(readlink "/proc/$PPID/exe") == "$BIN/subreaper" ]] || return 0
	for c in $(cat /proc/$PPID/task/*/children 2>/dev/null); do
		[[ $c == "$$" ]] && continue
		for p in $(tree_members "$c"); do
			note "cleanup: kill -9 $p (orphan under the subreaper: $(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null))"
			kill -9 "$p" 2>/dev/null
		done
	done
}

kill_leftovers() {
	local p g s
	for g in "${T_PGIDS[@]}"; do kill -9 -- "-$g" 2>/dev/null; done
	sweep_orphans
	for s in "${T_SIDS[@]}"; do
		for p in $(session_members "$s"); do
			note "cleanup: kill -9 $p (session $s)"
			kill -9 "$p" 2>/dev/null
		done
	done
	for p in "${T_PIDS[@]}"; do
		alive "$p" && note "cleanup: kill -9 $p" && kill -9 "$p" 2>/dev/null
	done
	for p in "${T_PIDS[@]}" "${T_PGIDS[@]}"; do
		wait_gone "$p" 5 || note "cleanup: pid $p would not die"
		not_running "$p" && wait "$p" 2>/dev/null # reap if it is our child
	done
	return 0
}

setup_test() {
	T_NAME=$1 T_FAIL= T_FAIL_LOG= T_SKIP= T_PIDS=() T_SIDS=() T_PGIDS=() T_DIRS=()
	T_LOG=$LOGROOT/$T_NAME
	rm -rf "$T_LOG"
	mkdir -p "$T_LOG"
	T_WORK=$(mktemp -d /tmp/stasis-work.XXXXXX)
	T_FILES=$T_WORK/files
	mkdir -p "$T_FILES"
	note "test $T_NAME, work dir $T_WORK"
}

cleanup_test() {
	kill_leftovers
	if [[ $KEEP == 1 ]]; then
		note "kept $T_WORK ${T_DIRS[*]}"
	else
		rm -rf "$T_WORK" "${T_DIRS[@]}"
	fi
}

# A directory of the test's own on a mount every /proc/PID/mountinfo of
# ours lists (/dev/shm's tmpfs), in SHM_DIR; removed with the test. For
# what names a mount: under a chroot into a directory that is no mount
# point (a fresh root in CI), the mount of /tmp is nobody's to see.
make_shm_dir() {
	SHM_DIR=$(mktemp -d /dev/shm/stasis-files.XXXXXX) || { fail "can't make a directory in /dev/shm"; return 1; }
	T_DIRS+=("$SHM_DIR")
}

# The test's one line, PASS, FAIL (with the tail of the log that shows
# why) or SKIP, printed whole: the runner shows it as it is.
report() {
	if [[ -z $T_FAIL && -n $T_SKIP ]]; then
		echo "SKIP $T_NAME: $T_SKIP"
	elif [[ -z $T_FAIL ]]; then
		echo "PASS $T_NAME"
	else
		echo "FAIL $T_NAME: $T_FAIL"
		if [[ -n $T_FAIL_LOG && -s $T_FAIL_LOG ]]; then
			echo "    --- tail of $T_FAIL_LOG"
			tail -n 15 "$T_FAIL_LOG" | sed 's/^/    /'
		fi
		echo "    (logs: $T_LOG)"
	fi
}

# run_one NAME FUNCTION [ARGS...]: the whole life of a test in its worker.
run_one() {
	local name=$1 start=$SECONDS
	shift
	setup_test "$name"
	trap on_interrupt INT TERM
	# bash reports every background job that dies by a signal ("Killed");
	# the dumps kill our programs on purpose, so keep that noise (and any
	# shell error) in the test's runner.log instead of the summary.
	"$@" 2>> "$T_LOG/runner.log"
	cleanup_test 2>> "$T_LOG/runner.log"
	note "took $((SECONDS - start)) s"
	report
}

# The runner was interrupted: kill what the test started, and end without
# a result (the runner counts the test as failed).
on_interrupt() {
	trap '' INT TERM
	note "interrupted"
	{
		cleanup_test
		# a restore that was running when the signal came may have
		# finished since: once more
		sleep 1
		kill_leftovers
	} 2>> "$T_LOG/runner.log"
	exit 130
}
