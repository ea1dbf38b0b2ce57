#!/bin/bash
# bench/lazy.sh: how soon a restored program runs again, lazily or not.
#
#   bench/lazy.sh [-m MiB] [-n RUNS]     (default 1024 MiB, 5 runs)
#
# memhog (MiB of touched private memory) is dumped once to tmpfs; then,
# alternating, `stasis restore -d` and `stasis restore -d --lazy-pages`
# (with `stasis lazy-pages -d` started before it) restore it, and each is
# timed from its start until it returns, which is once the whole tree
# runs: an upper bound of the time to the program's first instruction.
# The lazy runs also report how long the daemon took to fill everything
# (from the restore's start). Every restored memhog checks all its pages
# (VERIFY OK) before it is killed. Prints the best and the median.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
STASIS=${STASIS:-$ROOT/build/stasis}
MIB=1024 RUNS=5
while getopts m:n: o; do
	case $o in
	m) MIB=$OPTARG ;;
	n) RUNS=$OPTARG ;;
	*) exit 2 ;;
	esac
done
make -s -C "$ROOT/bench" >/dev/null || exit 1
BASE=$(mktemp -d "$( [[ -d /dev/shm ]] && echo /dev/shm || echo /tmp)/stasis-lazy.XXXXXX")
trap 'kill -9 ${PID:-} ${LAZY:-} 2>/dev/null; [[ -n ${KEEP:-} ]] || rm -rf "$BASE"' EXIT
IMG=$BASE/img
mkdir -p "$IMG"
now() { date +%s%N; }
die() { echo "lazy.sh: $*" >&2; exit 1; }
# the pid is free (a restore waits for that)
gone() { for _ in $(seq 200); do [[ -e /proc/$1 ]] || return 0; sleep 0.05; done; return 1; }
# the daemon has ended: gone, or a zombie (pid 1 may be slow to reap it)
ended() {
	for _ in $(seq 2000); do
		[[ $(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) =~ ^(Z|X|)$ ]] && return 0
		sleep 0.005
	done
	return 1
}

# not a group leader (no job control here): setsid execs in place, so $!
# is memhog itself (never look it up by name: others may run one too)
(cd "$BASE" && exec setsid "$ROOT/build/bench/memhog" "$MIB" > "$BASE/out" 2>&1 < /dev/null) &
PID=$!
for _ in $(seq 600); do grep -q READY "$BASE/out" 2>/dev/null && break; sleep 0.1; done
[[ $(cat "/proc/$PID/comm" 2>/dev/null) == memhog ]] || die "memhog did not start"
"$STASIS" dump -t "$PID" -D "$IMG" -o dump.log || die "dump failed ($IMG/dump.log)"
wait "$PID" 2>/dev/null
gone "$PID" || die "pid $PID is still taken"

verify() {
	: > "$BASE/out"
	kill -USR1 "$PID"
	for _ in $(seq 600); do grep -q VERIFY "$BASE/out" && break; sleep 0.05; kill -USR1 "$PID"; done
	grep -q 'VERIFY OK' "$BASE/out" || die "$1 run: $(cat "$BASE/out")"
	kill -9 "$PID"
	gone "$PID" || die "pid $PID is still taken"
	printf 'READY\n' > "$BASE/out"	# as at the dump: restore checks the file's size
}

plain=() lazy=() fill=()
for r in $(seq "$RUNS"); do
	t0=$(now)
	"$STASIS" restore -D "$IMG" -d -o plain.log || die "restore failed ($IMG/plain.log)"
	plain+=($((($(now) - t0) / 1000)))
	verify plain

	"$STASIS" lazy-pages -D "$IMG" -d --pidfile "$BASE/lazy.pid" -o lazy.log || die "lazy-pages failed"
	LAZY=$(cat "$BASE/lazy.pid")
	t0=$(now)
	"$STASIS" restore -D "$IMG" -d --lazy-pages -o lazyrst.log || die "lazy restore failed ($IMG/lazyrst.log)"
	lazy+=($((($(now) - t0) / 1000)))
	ended "$LAZY" || die "the lazy-pages daemon did not finish"
	fill+=($((($(now) - t0) / 1000)))
	verify lazy
	echo "run $r: restore -d ${plain[-1]} us, restore -d --lazy-pages ${lazy[-1]} us (all pages in after ${fill[-1]} us)"
done
stat() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { printf "best %.1f ms, median %.1f ms", a[1] / 1000, a[int((NR + 1) / 2)] / 1000 }'; }
echo "$MIB MiB, $RUNS runs, images on $(df --output=fstype "$BASE" | tail -n1):"
echo "  restore, until the program runs:        $(stat "${plain[@]}")"
echo "  lazy restore, until the program runs:   $(stat "${lazy[@]}")"
echo "  lazy restore, until every page is in:   $(stat "${fill[@]}") (polled every 5 ms)"
