#!/usr/bin/env bash
# predump.sh: how long a program is frozen by a dump, plain or after a
# pre-dump (only the pages written since are saved then).
#
#   bench/predump.sh [-m MiB] [-n runs] [-w] [-r]
#
#   -m  memory of the target (default 1024)
#   -n  runs (default 3); each run: dump -R (plain), pre-dump, then after
#       1 s the dump -R with --prev-images-dir (its frozen time is shown)
#   -w  the target keeps writing (tests' dirtier: one page each 200 us)
#       instead of sleeping (memhog)
#   -r  also time the restores of the plain and of the incremental images
#       (with --new-pidns, so neither waits for the killed pid)
# Images go to /dev/shm. Prints each run, then the best of each.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
S=${STASIS:-$ROOT/build/stasis}
MIB=1024 RUNS=3 WRITER=0 RESTORES=0
while getopts "m:n:wrh" o; do
	case $o in
	m) MIB=$OPTARG ;; n) RUNS=$OPTARG ;; w) WRITER=1 ;; r) RESTORES=1 ;;
	*) sed -n '2,14s/^# \{0,1\}//p' "$0"; exit 2 ;;
	esac
done
make -s -C "$ROOT/bench" >/dev/null && make -s -C "$ROOT" tests >/dev/null || { echo "build failed" >&2; exit 1; }
if ((WRITER)); then TARGET=("$ROOT/build/tests/dirtier" "$MIB"); else TARGET=("$ROOT/build/bench/memhog" "$MIB"); fi
D=/dev/shm/stasis-predump.$$
secs() { local a b; a=$(date +%s%N); "$@" > /dev/null 2>&1 || { echo "failed: $*" >&2; return 1; }; b=$(date +%s%N); echo "scale=3; ($b - $a) / 1000000000" | bc; }
best_plain= best_pre= best_final=
min() { [[ -z $1 ]] && echo "$2" || echo "if ($2 < $1) $2 else $1" | bc; }
for ((run = 1; run <= RUNS; run++)); do
	rm -rf "$D"; mkdir -p "$D/plain" "$D/1" "$D/2"
	setsid "${TARGET[@]}" > "$D.out" 2>&1 < /dev/null &
	pid=$!
	for _ in $(seq 200); do grep -q READY "$D.out" 2>/dev/null && break; sleep 0.05; done
	plain=$(secs "$S" dump -t "$pid" -D "$D/plain" -R) || break
	((RESTORES)) || rm -rf "$D/plain"	# its tmpfs pages serve the next images
	pre=$(secs "$S" pre-dump -t "$pid" -D "$D/1") || break
	sleep 1
	# -R: the frozen time is then the freeze alone (killing a program
	# of 1 GiB takes longer than its freeze, and counts in frozen_time)
	final=$(secs "$S" dump -t "$pid" -D "$D/2" --prev-images-dir ../1 -R) || break
	frozen=$("$S" crit decode -i "$D/2/stats-dump" | sed -n 's/.*"frozen_time": \([0-9]*\).*/\1/p')
	frozen=$(echo "scale=1; $frozen / 1000" | bc)
	echo "run $run: plain dump ${plain} s | pre-dump ${pre} s | dump after it ${final} s (frozen ${frozen} ms), $(du -sm "$D/2" | cut -f1) MiB saved"
	if ((RESTORES)); then
		rinc=$(secs "$S" restore -D "$D/2" -d --new-pidns --pidfile "$D/i.pid") || break
		kill -9 "$(cat "$D/i.pid")"; sleep 1
		rfull=$(secs "$S" restore -D "$D/plain" -d --new-pidns --pidfile "$D/f.pid") || break
		kill -9 "$(cat "$D/f.pid")"; sleep 1
		echo "       restore of the incremental images ${rinc} s | of the plain ones ${rfull} s"
		best_rinc=$(min "${best_rinc:-}" "$rinc"); best_rfull=$(min "${best_rfull:-}" "$rfull")
	fi
	best_plain=$(min "$best_plain" "$plain"); best_pre=$(min "$best_pre" "$pre"); best_final=$(min "$best_final" "$final")
	best_frozen=$(min "${best_frozen:-}" "$frozen")
	{ kill -9 "$pid"; wait "$pid"; } 2>/dev/null
done
rm -rf "$D" "$D.out"
echo "best of $RUNS, $MIB MiB$( ((WRITER)) && echo ", writing"): plain dump $best_plain s, pre-dump $best_pre s, dump after pre-dump $best_final s (frozen ${best_frozen:-?} ms)"
((RESTORES)) && echo "best restore: incremental ${best_rinc:-?} s, plain ${best_rfull:-?} s"
