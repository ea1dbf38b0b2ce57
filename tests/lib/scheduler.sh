# Running the declared tests: each in a worker process of its own
# (lib/worker.sh, under a subreaper of its own), up to JOBS at a time.
# A test declared --alone runs with nothing else: with JOBS > 1 they all
# come after the others, one by one. A test whose need does not hold is
# not started: it is reported as skipped, with the reason.
#
# A worker's output (its PASS, FAIL or SKIP line, and a failure's log
# tail) is printed whole when it ends, so that tests running together
# never mix their lines.

N_PASS=0 N_FAIL=0 N_SKIP=0
FAILED_NAMES=() SKIPPED_NAMES=()
declare -A RUNNING=()		# worker pid -> index of its test
declare -A STARTED=()		# worker pid -> its start, in microseconds
declare -A NEED_REASONS=()	# need -> why it does not hold ("" if it does)
OUTDIR=				# the workers' outputs, while they run

run_all() {
	local i alone=()
	OUTDIR=$(mktemp -d /tmp/stasis-runner.XXXXXX)
	: > "$LOGROOT/timings"
	trap on_interrupt INT TERM
	for i in "${!DECL_NAMES[@]}"; do
		unmet_need "$i" && continue
		if ((DECL_ALONE[i] && JOBS > 1)); then
			alone+=("$i")
			continue
		fi
		while ((${#RUNNING[@]} >= JOBS)); do reap_one; done
		launch "$i"
	done
	while ((${#RUNNING[@]} > 0)); do reap_one; done
	for i in "${alone[@]}"; do
		launch "$i"
		reap_one
	done
	rm -rf "$OUTDIR"
}

# unmet_need I: if a need of test I does not hold, report the test as
# skipped and return 0. Each need is asked once per run.
unmet_need() {
	local i=$1 need
	for need in ${DECL_NEEDS[i]}; do
		[[ -v NEED_REASONS[$need] ]] || NEED_REASONS[$need]=$(need_reason "$need")
		[[ -n ${NEED_REASONS[$need]} ]] || continue
		skipped_by_need "${DECL_NAMES[i]}" "needs $need: ${NEED_REASONS[$need]}"
		return 0
	done
	return 1
}

# The log directory of a test that did not run says why.
skipped_by_need() {
	local name=$1 reason=$2
	rm -rf "${LOGROOT:?}/$name"
	mkdir -p "$LOGROOT/$name"
	echo "not run: $reason" > "$LOGROOT/$name/runner.log"
	tally "$name" "SKIP $name: $reason"
	echo "SKIP $name: $reason"
}

launch() {
	local i=$1
	eval "set -- ${DECL_CMDS[i]}"
	"$BIN/subreaper" "$BASH" "$TESTS/lib/worker.sh" "${DECL_NAMES[i]}" "$@" \
		> "$OUTDIR/$i" 2>&1 < /dev/null &
	RUNNING[$!]=$i
	STARTED[$!]=${EPOCHREALTIME/./}
}

# Wait for any worker to end, and show what its test printed.
reap_one() {
	local pid= rc i first
	wait -n -p pid "${!RUNNING[@]}"
	rc=$?
	[[ -n $pid ]] || return 0	# a signal came: on_interrupt runs
	i=${RUNNING[$pid]}
	unset "RUNNING[$pid]"
	note_time "${DECL_NAMES[i]}" "${STARTED[$pid]}"
	unset "STARTED[$pid]"
	first=$(head -n1 "$OUTDIR/$i")
	if tally "${DECL_NAMES[i]}" "$first"; then
		cat "$OUTDIR/$i"
	else
		echo "FAIL ${DECL_NAMES[i]}: its worker ended (exit $rc) without a result"
		sed 's/^/    /' "$OUTDIR/$i"
	fi
	rm -f "$OUTDIR/$i"
}

# note_time NAME START: one line "SECONDS NAME" in LOGROOT/timings, for
# finding what makes a run long (slowest_tests prints the worst).
note_time() {
	local us=$((${EPOCHREALTIME/./} - $2))
	printf '%d.%01d %s\n' $((us / 1000000)) $((us / 100000 % 10)) "$1" >> "$LOGROOT/timings"
}

slowest_tests() {
	sort -rn "$LOGROOT/timings" 2> /dev/null | head -n "${1:-20}"
}

# tally NAME LINE: count the test by its PASS, FAIL or SKIP line; 1 (and
# counted as failed) if LINE is none of these.
tally() {
	local name=$1 line=$2
	case $line in
	"PASS $name")
		N_PASS=$((N_PASS + 1))
		;;
	"SKIP $name: "*)
		N_SKIP=$((N_SKIP + 1))
		SKIPPED_NAMES+=("$name")
		;;
	*)
		N_FAIL=$((N_FAIL + 1))
		FAILED_NAMES+=("$name")
		[[ $line == "FAIL $name: "* ]]
		;;
	esac
}

summary() {
	((N_SKIP == 0)) || echo "$N_SKIP skipped: ${SKIPPED_NAMES[*]}"
	((N_FAIL == 0)) || echo "failed: ${FAILED_NAMES[*]}"
	echo "$N_PASS passed, $N_FAIL failed"
}

# Ctrl-C or a TERM: every running worker cleans up after its test (kills
# what it started) and ends; each test cut short counts as failed.
on_interrupt() {
	local pid cut=${#RUNNING[@]}
	trap '' INT TERM
	echo "interrupted"
	for pid in "${!RUNNING[@]}"; do kill -TERM "$pid" 2> /dev/null; done
	wait
	rm -rf "$OUTDIR"
	((N_SKIP == 0)) || echo "$N_SKIP skipped: ${SKIPPED_NAMES[*]}"
	echo "$N_PASS passed, $((N_FAIL + (cut > 0 ? cut : 1))) failed"
	exit 130
}
