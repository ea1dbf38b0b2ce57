#!/usr/bin/env bash
# Builds stasis and runs the whole test suite. Installs its Debian
# dependencies first. Needs root (ptrace, clone3 with set_tid).
# Usage: ./test.sh [-k PATTERN]
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh
make -s -j"$(nproc)"
make -s -C tests
exec tests/run.sh "$@"
