#!/bin/bash
#
# worker.sh NAME FUNCTION [ARGS...] - runs one test and prints its report
# (lib/harness.sh: report). The runner starts each test so, under a
# subreaper of its own (tools/subreaper.c): the orphans a test leaves
# (restored trees, the init of a new pid namespace) are then its own to
# sweep, whatever runs beside it.

set -u
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The case files are read for their functions; their tests are declared
# to the runner, not here.
run_test() { :; }
for _case in "$TESTS"/cases/*.sh; do
	# shellcheck source=/dev/null
	source "$_case"
done
unset _case

run_one "$@"
exit
