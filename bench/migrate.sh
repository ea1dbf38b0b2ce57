#!/usr/bin/env bash
# migrate.sh: a live migration over loopback TCP, against a plain dump.
#
#   bench/migrate.sh [-m MiB] [-n runs] [-c CRIU_BIN]
#
#   -m  memory of the target, the tests' dirtier (default 1024): it
#       rewrites one page every 200 us (~20 MB/s) while it runs
#   -n  runs (default 5); best of each figure is printed
#   -c  also a reference CRIU: its plain dump and its dump through its
#       own page server (CRIU pre-dumps only with soft-dirty bits; where
#       the kernel has none, its migration is the dump alone)
# Each run: a plain local dump (-R); the stop-and-copy migration (one
# dump through a page server, which kills the target: a new one is
# started for the rest); then the pre-copy migration: a page server
# per step (stasis page-server, port 0), a pre-dump through it, 1 s of
# running, the dump through the next server with the pre-dump as parent
# on both sides, then the restore of the server's directory with the
# local images copied in (time to the restored tree running: restore -d).
# "frozen" is the final dump's, from its log. Images go to /dev/shm.
# Last, two ratios of the best figures: the pre-dump against the plain
# dump, and the whole pre-copy migration against the stop-and-copy one.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
S=${STASIS:-$ROOT/build/stasis}
MIB=1024 RUNS=5 CRIU=
while getopts "m:n:c:h" o; do
	case $o in
	m) MIB=$OPTARG ;; n) RUNS=$OPTARG ;; c) CRIU=$OPTARG ;;
	*) sed -n '2,17s/^# \{0,1\}//p' "$0"; exit 2 ;;
	esac
done
make -s -C "$ROOT" tests >/dev/null || { echo "build failed" >&2; exit 1; }
D=/dev/shm/stasis-migrate.$$
now() { date +%s%N; }
since() { echo "scale=3; ($(now) - $1) / 1000000000" | bc; }
min() { [[ -z $1 ]] && echo "$2" || echo "if ($2 < $1) $2 else $1" | bc; }
# the target, once its memory is all there (a run without it would time
# dumps of a half-filled target: that run is skipped)
start_target() {
	setsid "$ROOT/build/tests/dirtier" "$MIB" > "$D.out" 2>&1 < /dev/null &
	pid=$!
	disown "$pid"	# no "Killed" job notices when a dump kills it; bash still reaps it
	for _ in $(seq 1200); do grep -q READY "$D.out" 2>/dev/null && return 0; sleep 0.05; done
	kill -9 "$pid"; gone "$pid"
	return 1
}
gone() { for _ in $(seq 500); do [[ -e /proc/$1 ]] || return 0; sleep 0.01; done; }
# ps BIN DIR [ARGS]: a page server; PORT
ps() {
	local bin=$1 dir=$2; shift 2
	mkdir -p "$dir"
	if [[ $bin == "$S" ]]; then
		"$bin" page-server -D "$dir" --address 127.0.0.1 --port 0 -o ps.log -v4 "$@" &
		psp=$!
		for _ in $(seq 200); do grep -q listening "$dir/ps.log" 2>/dev/null && break; sleep 0.02; done
		PORT=$(sed -n 's/.*listening on .* port \([0-9]*\).*/\1/p' "$dir/ps.log")
	else
		PORT=$((30000 + RANDOM % 20000))
		"$bin" page-server -D "$dir" --address 127.0.0.1 --port "$PORT" -o ps.log "$@" &
		psp=$!
		for _ in $(seq 200); do grep -q "Starting page server" "$dir/ps.log" 2>/dev/null && break; sleep 0.02; done
		sleep 0.1
	fi
}
frozen_of() {	# seconds, from a dump's log
	if [[ $1 == "$S" ]]; then
		sed -n 's/.*frozen \([0-9]*\) us.*/\1/p' "$2" | tail -n1 | awk '{ printf "%.3f", $1 / 1e6 }'
	else
		echo "?"
	fi
}
run_tool() {
	local bin=$1 tag=$2 t0 plain sac pre final total rst frozen
	rm -rf "$D"; mkdir -p "$D/plain" "$D/s" "$D/l1" "$D/l2"
	start_target || { echo "$tag run $run: the target was not ready in 60 s; run skipped"; return 1; }
	t0=$(now); "$bin" dump -t "$pid" -D "$D/plain" -R -o d.log -v4 > /dev/null 2>&1 || { echo "$tag: plain dump failed"; return 1; }
	plain=$(since "$t0"); rm -rf "$D/plain"
	# stop-and-copy: the migration without pre-dumps, one dump through
	# the page server (the target is killed: a new one for what follows)
	ps "$bin" "$D/s1"
	t0=$(now)
	"$bin" dump -t "$pid" -D "$D/s" --page-server --address 127.0.0.1 --port "$PORT" -o d.log -v4 > /dev/null 2>&1 ||
		{ echo "$tag: stop-and-copy dump failed"; kill "$psp"; return 1; }
	sac=$(since "$t0"); wait "$psp"; gone "$pid"; rm -rf "$D/s" "$D/s1"
	start_target || { echo "$tag run $run: the target was not ready in 60 s; run skipped"; return 1; }
	if [[ $bin == "$S" ]] || "$bin" check --feature mem_dirty_track > /dev/null 2>&1; then
		ps "$bin" "$D/r1"
		t0=$(now)
		"$bin" pre-dump -t "$pid" -D "$D/l1" --page-server --address 127.0.0.1 --port "$PORT" -o d.log -v4 > /dev/null 2>&1 ||
			{ echo "$tag: pre-dump failed"; kill "$psp"; return 1; }
		pre=$(since "$t0"); wait "$psp"
		sleep 1
		ps "$bin" "$D/r2" --prev-images-dir ../r1
		t0=$(now)
		"$bin" dump -t "$pid" -D "$D/l2" --prev-images-dir ../l1 --track-mem --page-server --address 127.0.0.1 \
			--port "$PORT" -o d.log -v4 > /dev/null 2>&1 || { echo "$tag: dump failed"; kill "$psp"; return 1; }
		final=$(since "$t0"); wait "$psp"
	else
		pre=0
		ps "$bin" "$D/r2"
		t0=$(now)
		"$bin" dump -t "$pid" -D "$D/l2" --page-server --address 127.0.0.1 --port "$PORT" -o d.log -v4 > /dev/null 2>&1 ||
			{ echo "$tag: dump failed"; return 1; }
		final=$(since "$t0"); wait "$psp"
	fi
	gone "$pid"
	frozen=$(frozen_of "$bin" "$D/l2/d.log")
	(cd "$D/l2" && cp -a $(ls -A | grep -vx parent) "$D/r2"/)	# the server's parent link stays
	t0=$(now)
	"$bin" restore -D "$D/r2" -d --pidfile "$D/r.pid" -o r.log -v4 > "$D.rst" 2>&1 || { echo "$tag: restore failed: $(head -c 300 "$D.rst")"; return 1; }
	rst=$(since "$t0")
	kill -9 "$(cat "$D/r.pid")" 2>/dev/null; sleep 0.5
	total=$(echo "$pre + $final" | bc)
	echo "$tag run $run: plain dump $plain s | stop-and-copy $sac s | pre-dump $pre s + dump $final s (frozen $frozen s) = $total s | restore $rst s"
	eval "b_plain_$tag=\$(min \"\${b_plain_$tag:-}\" $plain); b_total_$tag=\$(min \"\${b_total_$tag:-}\" $total)"
	eval "b_sac_$tag=\$(min \"\${b_sac_$tag:-}\" $sac); b_pre_$tag=\$(min \"\${b_pre_$tag:-}\" $pre)"
	eval "b_final_$tag=\$(min \"\${b_final_$tag:-}\" $final); b_rst_$tag=\$(min \"\${b_rst_$tag:-}\" $rst)"
	[[ $frozen == "?" ]] || eval "b_frozen_$tag=\$(min \"\${b_frozen_$tag:-}\" $frozen)"
}
for ((run = 1; run <= RUNS; run++)); do
	run_tool "$S" stasis
	[[ -n $CRIU ]] && run_tool "$CRIU" criu
done
rm -rf "$D" "$D.out" "$D.rst"
for tag in stasis ${CRIU:+criu}; do
	eval "echo \"best of $RUNS, $MIB MiB, $tag: plain dump \${b_plain_$tag:-?} s; stop-and-copy \${b_sac_$tag:-?} s;" \
		"pre-dump \${b_pre_$tag:-?} s; migration \${b_total_$tag:-?} s" \
		"(final dump \${b_final_$tag:-?} s, frozen \${b_frozen_$tag:-?} s); restore \${b_rst_$tag:-?} s\""
	eval "p=\${b_plain_$tag:-0} s=\${b_sac_$tag:-0} q=\${b_pre_$tag:-0} m=\${b_total_$tag:-0}"
	if [[ $p != 0 && $q != 0 ]]; then echo "  $tag: pre-dump / plain dump $(echo "scale=2; $q / $p" | bc)x"; fi
	if [[ $s != 0 ]]; then echo "  $tag: migration / stop-and-copy $(echo "scale=2; $m / $s" | bc)x"; fi
done
