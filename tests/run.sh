#!/bin/bash
#
# run.sh - the Stasis test runner.
#
#   tests/run.sh [-k PATTERN] [-l] [-j N]
#
#   -k PATTERN   run only tests whose name matches PATTERN (bash regex,
#                e.g. -k mem_anon, -k '\.chain$', -k '^fail\.')
#   -l           list test names and exit
#   -j N         run up to N tests at a time (default: the number of CPUs);
#                tests declared --alone still run by themselves
#
# Needs root, `make` (build/stasis) and `make -C tests` (build/tests/*) done.
# Prints "PASS name" / "FAIL name: reason" / "SKIP name: reason" per
# test, then "N skipped: names" if any were, then one final line
# "N passed, N failed"; exits non-zero if anything failed.  Per-test logs
# (stasis -v4 logs, program output, crit errors) stay in
# /tmp/stasis-tests/<name>/.  See tests/README.md.
#
# Environment: STASIS (tool binary), STASIS_TEST_LOGS (log root),
# STASIS_TEST_TIMEOUT (seconds for each wait, default 20),
# STASIS_TEST_KEEP=1 (keep image and work directories), CRIU_BIN (a CRIU
# binary, for the tests that exchange images with it), STASIS_TEST_SLOWEST=N
# (list the N slowest tests before the summary; every test's time is in
# <log root>/timings).

set -u
# shellcheck source=lib/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/lib.sh"
# shellcheck source=lib/scheduler.sh
source "$TESTS/lib/scheduler.sh"

PATTERN=
LIST_ONLY=0
JOBS=

usage() {
	sed -n '3,27s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
	exit 2
}

while getopts "k:lj:h" opt; do
	case $opt in
	k) PATTERN=$OPTARG ;;
	l) LIST_ONLY=1 ;;
	j) JOBS=$OPTARG ;;
	*) usage ;;
	esac
done
[[ -z $JOBS || $JOBS =~ ^[1-9][0-9]*$ ]] || usage

# As many tests at a time as CPUs. A dumped process's pids are free until
# its restore takes them again, and pids are handed out in turn, so
# another test takes one only after the numbers went round pid_max; a
# small pid_max goes round in seconds, and then one test at a time.
default_jobs() {
	local max
	max=$(cat /proc/sys/kernel/pid_max 2> /dev/null || echo 0)
	if ((max < 32768)); then
		echo 1
	else
		nproc
	fi
}

# Programs under test must not inherit descriptors from whoever started
# us (CI pipes and the like): the tool may refuse to dump unknown fd types,
# and the files test compares the fd table.  Keeps bash's own script fd.
close_inherited_fds() {
	local link fd script
	script=$(readlink -f "${BASH_SOURCE[0]}")
	for link in /proc/$$/fd/*; do
		fd=${link##*/}
		((fd > 2)) || continue
		[[ $(readlink "$link") == "$script" ]] && continue
		eval "exec $fd>&-" 2>/dev/null
	done
}

preflight() {
	local src missing=()
	[[ $(id -u) == 0 ]] || missing+=("root privileges")
	[[ -x $STASIS ]] || missing+=("$STASIS (run make)")
	for src in "$TESTS"/progs/*.c "$TESTS"/tools/*.c; do
		src=$(basename "$src" .c)
		[[ -x $BIN/$src ]] || missing+=("$BIN/$src (run make -C tests)")
	done
	command -v "$CRIT" > /dev/null || missing+=("crit (apt-get install criu)")
	((${#missing[@]} == 0)) && return 0
	printf 'run.sh: missing %s\n' "${missing[@]}" >&2
	echo "0 passed, 1 failed"
	exit 1
}

if ((!LIST_ONLY)); then
	preflight
	# Orphans of `restore -d` must be reaped (see tools/subreaper.c); each
	# test has a subreaper of its own too, this one takes what outlives it.
	if [[ -z ${STASIS_TEST_SUBREAPER:-} ]]; then
		export STASIS_TEST_SUBREAPER=1
		exec "$BIN/subreaper" "$BASH" "${BASH_SOURCE[0]}" "$@"
	fi
fi

# Every test, as the programs and the case files declare them.
declare_prog_tests
for _case in "$TESTS"/cases/*.sh; do
	# shellcheck source=/dev/null
	source "$_case"
done
unset _case
check_declared_functions

if ((LIST_ONLY)); then
	((${#DECL_NAMES[@]} == 0)) || printf '%s\n' "${DECL_NAMES[@]}"
	exit 0
fi

JOBS=${JOBS:-$(default_jobs)}
mkdir -p "$LOGROOT"
STASIS_RAW_IMAGES=$(raw_image_globs | tr '\n' ' ')
[[ -n $STASIS_RAW_IMAGES ]] || { echo "run.sh: $STASIS image-kinds names no raw image kind" >&2; exit 2; }
export STASIS_RAW_IMAGES
close_inherited_fds
run_all
if [[ -n ${STASIS_TEST_SLOWEST:-} ]]; then
	echo "slowest tests (seconds; all in $LOGROOT/timings):"
	slowest_tests "$STASIS_TEST_SLOWEST" | sed 's/^/  /'
fi
summary
((N_FAIL == 0))
# exit at once: bash reads a script as it runs it, and must not read on
# into a file that was edited while the suite ran
exit
