#!/bin/bash
# bench/lazyps.sh: lazy migration over loopback TCP: how soon the copy
# runs, and how long until all its memory has come from the source.
#
#   bench/lazyps.sh [-m MiB] [-n RUNS]     (default 1024 MiB, 3 runs)
#
# Each run starts memhog (MiB of touched private memory), dumps it with
# `dump --lazy-pages --address 127.0.0.1 --port 0` (the lazy memory stays
# in the frozen source, served on the port), copies the images to a
# destination directory, starts `lazy-pages --page-server` there, and
# times `restore -d --new-pidns --lazy-pages` (the old pid is the frozen
# source's) from its start until it returns, once the whole tree runs (an
# upper bound of the time to the program's first instruction), then until
# the daemon has every page in. The copy checks all its pages (VERIFY OK)
# before it is killed; the source's dump ends and kills the source.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
STASIS=${STASIS:-$ROOT/build/stasis}
MIB=1024 RUNS=3
while getopts m:n: o; do
	case $o in
	m) MIB=$OPTARG ;;
	n) RUNS=$OPTARG ;;
	*) exit 2 ;;
	esac
done
make -s -C "$ROOT/bench" >/dev/null || exit 1
BASE=$(mktemp -d "$( [[ -d /dev/shm ]] && echo /dev/shm || echo /tmp)/stasis-lazyps.XXXXXX")
trap 'kill -9 ${PID:-} ${COPY:-} ${LAZY:-} ${DUMP:-} 2>/dev/null; [[ -n ${KEEP:-} ]] || rm -rf "$BASE"' EXIT
now() { date +%s%N; }
die() { echo "lazyps.sh: $*" >&2; exit 1; }
ended() {
	for _ in $(seq 6000); do
		[[ $(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) =~ ^(Z|X|)$ ]] && return 0
		sleep 0.005
	done
	return 1
}

start=() fill=()
for r in $(seq "$RUNS"); do
	rm -rf "$BASE/img" "$BASE/dst" && mkdir -p "$BASE/img"
	(cd "$BASE" && exec setsid "$ROOT/build/bench/memhog" "$MIB" > "$BASE/out" 2>&1 < /dev/null) &
	PID=$!
	for _ in $(seq 600); do grep -q READY "$BASE/out" 2>/dev/null && break; sleep 0.1; done
	[[ $(cat "/proc/$PID/comm" 2>/dev/null) == memhog ]] || die "memhog did not start"
	"$STASIS" dump -t "$PID" -D "$BASE/img" --lazy-pages --address 127.0.0.1 --port 0 -o dump.log -v3 &
	DUMP=$!
	for _ in $(seq 600); do grep -q "lazy pages: serving" "$BASE/img/dump.log" 2>/dev/null && break; sleep 0.05; done
	PORT=$(sed -n 's/.*lazy pages: serving.* port \([0-9]*\).*/\1/p' "$BASE/img/dump.log")
	[[ -n $PORT ]] || die "the dump does not serve ($BASE/img/dump.log)"
	cp -a "$BASE/img" "$BASE/dst"
	"$STASIS" lazy-pages -D "$BASE/dst" --page-server --address 127.0.0.1 --port "$PORT" -d \
		--pidfile "$BASE/lazy.pid" -o lazy.log || die "lazy-pages failed"
	LAZY=$(cat "$BASE/lazy.pid")
	t0=$(now)
	"$STASIS" restore -D "$BASE/dst" -d --new-pidns --lazy-pages --pidfile "$BASE/copy.pid" -o restore.log ||
		die "lazy restore failed ($BASE/dst/restore.log)"
	start+=($((($(now) - t0) / 1000)))
	ended "$LAZY" || die "the lazy-pages daemon did not finish"
	fill+=($((($(now) - t0) / 1000)))
	COPY=$(cat "$BASE/copy.pid")
	: > "$BASE/out"
	kill -USR1 "$COPY"
	for _ in $(seq 600); do grep -q VERIFY "$BASE/out" && break; sleep 0.05; kill -USR1 "$COPY"; done
	grep -q 'VERIFY OK' "$BASE/out" || die "run $r: $(cat "$BASE/out")"
	kill -9 "$COPY"
	wait "$DUMP" || die "the source's dump failed ($BASE/img/dump.log)"
	wait "$PID" 2>/dev/null
	echo "run $r: restore -d --lazy-pages ${start[-1]} us, all $MIB MiB in after ${fill[-1]} us"
done
stat() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { printf "best %.1f ms, median %.1f ms", a[1] / 1000, a[int((NR + 1) / 2)] / 1000 }'; }
echo "restore start to the tree running: $(stat "${start[@]}")"
echo "restore start to every page in:    $(stat "${fill[@]}")"
