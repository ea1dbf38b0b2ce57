#!/usr/bin/env bash
# live.sh: how long a dump that leaves the program running keeps it
# frozen: stasis's stop-the-world `dump -R`, stasis's `dump
# --live-snapshot`, and CRIU's `dump --leave-running` when CRIU_BIN is set,
# on one program, alternating their order run by run.
#
#   bench/live.sh [-m MiB] [-n runs] [-w]
#
#   -m  memory of the target (default 1024)
#   -n  runs (default 5); the best (least frozen) of each is printed
#   -w  the target keeps writing its pages from two threads
#       (tests' snapwriter) instead of sleeping (memhog)
# Frozen time is the frozen_time of each dump's stats-dump (CRIU writes
# one too); the wall time of the whole dump is shown beside it. Images go
# to /dev/shm (warmed first: a first touch of memory is slow in a VM).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
S=${STASIS:-$ROOT/build/stasis}
C=${CRIU_BIN:-}
MIB=1024 RUNS=5 WRITER=0
while getopts "m:n:wh" o; do
	case $o in
	m) MIB=$OPTARG ;; n) RUNS=$OPTARG ;; w) WRITER=1 ;;
	*) sed -n '2,15s/^# \{0,1\}//p' "$0"; exit 2 ;;
	esac
done
make -s -C "$ROOT/bench" > /dev/null && make -s -C "$ROOT" tests > /dev/null || { echo "build failed" >&2; exit 1; }
D=/dev/shm/stasis-live.$$
mkdir -p "$D"
dd if=/dev/zero of="$D/warm" bs=4M count=$((MIB * 2 / 4)) status=none; rm -f "$D/warm"

# frozen_time (ms) of a dump's stats-dump
frozen_ms() { "$S" crit decode -i "$1/stats-dump" | sed -n 's/.*"frozen_time": \([0-9]*\).*/\1/p' | awk '{ printf "%.1f", $1 / 1000 }'; }

# one dump: TOOL NAME ARGS...; prints "frozen wall" in ms
one() {
	local tool=$1 name=$2 a b
	shift 2
	rm -rf "$D/img"; mkdir -p "$D/img"
	a=$(date +%s%N)
	"$tool" dump -t "$pid" -D "$D/img" "$@" -o dump.log > /dev/null 2>&1 || { echo "$name failed: $D/img/dump.log" >&2; cp "$D/img/dump.log" "$D.$name.log"; return 1; }
	b=$(date +%s%N)
	echo "$(frozen_ms "$D/img") $(((b - a) / 1000000))"
}

declare -A best_f best_w
tools=("stasis_stw:$S:-R" "stasis_live:$S:--live-snapshot")
[[ -n $C ]] && tools+=("criu:$C:--leave-running")
for ((run = 1; run <= RUNS; run++)); do
	if ((WRITER)); then
		printf 0 > "$D/ctl"
		setsid "$ROOT/build/tests/snapwriter" "$MIB" "$D/ctl" > "$D.out" 2>&1 < /dev/null &
	else
		setsid "$ROOT/build/bench/memhog" "$MIB" > "$D.out" 2>&1 < /dev/null &
	fi
	pid=$!
	for _ in $(seq 600); do grep -q READY "$D.out" 2> /dev/null && break; sleep 0.05; done
	sleep 0.5
	line="run $run:"
	order=("${tools[@]}")
	((run % 2)) || order=($(printf '%s\n' "${tools[@]}" | tac))
	for t in "${order[@]}"; do
		IFS=: read -r name tool opt <<< "$t"
		r=$(one "$tool" "$name" "$opt") || { line+=" $name FAILED"; continue; }
		read -r f w <<< "$r"
		line+=" $name frozen ${f} ms (dump ${w} ms) |"
		if [[ -z ${best_f[$name]:-} ]] || (($(echo "$f < ${best_f[$name]}" | bc))); then best_f[$name]=$f; fi
		if [[ -z ${best_w[$name]:-} ]] || ((w < best_w[$name])); then best_w[$name]=$w; fi
	done
	echo "$line"
	{ kill -9 "$pid"; wait "$pid"; } 2> /dev/null
done
rm -rf "$D" "$D.out"
echo "best of $RUNS, $MIB MiB$( ((WRITER)) && echo ", writing"), frozen ms (whole dump ms):"
for t in "${tools[@]}"; do
	name=${t%%:*}
	printf '  %-12s %8s (%s)\n' "$name" "${best_f[$name]:-?}" "${best_w[$name]:-?}"
done
echo "result mib=$MIB runs=$RUNS writer=$WRITER$(for t in "${tools[@]}"; do n=${t%%:*}; printf ' %s_frozen_ms=%s' "$n" "${best_f[$n]:-?}"; done)"
