# What the runner and every worker read first: where things are, the
# knobs of the environment (tests/README.md, "Running"), and the helpers.

TESTS=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=$(cd "$TESTS/.." && pwd)
STASIS=${STASIS:-$ROOT/build/stasis}
BIN=$ROOT/build/tests
LOGROOT=${STASIS_TEST_LOGS:-/tmp/stasis-tests}
TMO=${STASIS_TEST_TIMEOUT:-20}
KEEP=${STASIS_TEST_KEEP:-0}
PYTHON=/usr/bin/python3
[[ -x $PYTHON ]] || PYTHON=$(command -v python3)
CRIT=crit
# `script -c CMD` runs CMD with $SHELL, which a bare environment (CI's
# `env -i`) leaves unset (then /bin/sh, which forks for it): the terminal
# tests want CMD to be script's own child.
export SHELL=/bin/bash

for _lib in proc harness tool tree scenarios registry; do
	# shellcheck source=/dev/null
	source "$TESTS/lib/$_lib.sh"
done
unset _lib
