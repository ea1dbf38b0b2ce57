#!/usr/bin/env bash
# bench.sh: dump/restore speed of stasis (and optionally CRIU) on a process holding
# N MiB of touched private anonymous memory. See bench/README.md.
#
#   bench/bench.sh [-m MiB] [-n runs] [-D images_dir] [-k] [-W] [-h]
#
# env: STASIS    stasis binary (default: <repo>/build/stasis; "none" skips stasis)
#      CRIU_BIN  CRIU binary; when set, CRIU is measured too, alternating with stasis
#      STASIS_OPTS / CRIU_OPTS  extra options passed to both dump and restore
# -k keeps the logs directory; -W skips the memory warm-up before round 1.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MIB=1024
RUNS=3
IMGROOT=
KEEP_LOGS=0
WARMUP=1

usage() {
	sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
	exit "${1:-0}"
}

while getopts "m:n:D:kWh" opt; do
	case $opt in
	m) MIB=$OPTARG ;;
	n) RUNS=$OPTARG ;;
	D) IMGROOT=$OPTARG ;;
	k) KEEP_LOGS=1 ;;
	W) WARMUP=0 ;;
	h) usage 0 ;;
	*) usage 2 ;;
	esac
done
[[ $MIB =~ ^[1-9][0-9]*$ ]] || { echo "bench: -m wants a positive number of MiB" >&2; exit 2; }
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "bench: -n wants a positive number of runs" >&2; exit 2; }

STASIS=${STASIS:-$ROOT/build/stasis}
CRIU_BIN=${CRIU_BIN:-}
read -r -a STASIS_EXTRA <<<"${STASIS_OPTS:-}"
read -r -a CRIU_EXTRA <<<"${CRIU_OPTS:-}"

TOOLS=()
if [[ $STASIS != none ]]; then
	[[ -x $STASIS ]] || { echo "bench: stasis binary '$STASIS' not found (build it, set STASIS=..., or STASIS=none)" >&2; exit 2; }
	TOOLS+=(stasis)
fi
if [[ -n $CRIU_BIN ]]; then
	[[ -x $CRIU_BIN ]] || { echo "bench: CRIU_BIN '$CRIU_BIN' is not executable" >&2; exit 2; }
	TOOLS+=(criu)
fi
((${#TOOLS[@]})) || { echo "bench: nothing to measure (STASIS=none and no CRIU_BIN)" >&2; exit 2; }

# ---- helpers ---------------------------------------------------------------------------------

now() { # wall clock in seconds with microseconds
	if [[ -n ${EPOCHREALTIME:-} ]]; then echo "$EPOCHREALTIME"; else date +%s.%N; fi
}
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
gbps() { awk -v m="$MIB" -v s="$1" 'BEGIN { if (s > 0) printf "%.2f", m * 1048576 / 1e9 / s; else print "-" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
minof() { printf '%s\n' "$@" | sort -g | head -1; }

tool_bin() { if [[ $1 == stasis ]]; then echo "$STASIS"; else echo "$CRIU_BIN"; fi; }

# ---- images directory on tmpfs ---------------------------------------------------------------

MOUNTED=
if [[ -z $IMGROOT ]]; then
	IMGROOT=/tmp/stasis-bench
	mkdir -p "$IMGROOT"
	if ! mountpoint -q "$IMGROOT"; then
		# room for the warm-up file (3 x MiB), with slack
		if mount -t tmpfs -o "size=$((MIB * 3 + 512))m,mode=0700" stasis-bench "$IMGROOT" 2>/dev/null; then
			MOUNTED=$IMGROOT
		else
			rmdir "$IMGROOT" 2>/dev/null
			IMGROOT=/dev/shm/stasis-bench.$$
			mkdir -p "$IMGROOT"
		fi
	fi
fi
mkdir -p "$IMGROOT" || exit 2
FSTYPE=$(stat -f -c %T "$IMGROOT")
[[ $FSTYPE == tmpfs ]] || echo "bench: warning: $IMGROOT is on $FSTYPE, not tmpfs" >&2

LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/stasis-bench-logs.XXXXXX")
MEMHOG=$ROOT/build/bench/memhog
HOGPID=

cleanup() {
	if [[ -n $HOGPID ]] && [[ -e /proc/$HOGPID ]]; then kill -9 "$HOGPID" 2>/dev/null; fi
	rm -rf "$IMGROOT/img" "$IMGROOT/dd.file" "$IMGROOT/warmup.file"
	[[ $IMGROOT == /dev/shm/stasis-bench.* ]] && rmdir "$IMGROOT" 2>/dev/null
	[[ -n $MOUNTED ]] && umount "$MOUNTED" 2>/dev/null && rmdir "$MOUNTED" 2>/dev/null
	if ((KEEP_LOGS)); then echo "logs kept in $LOGDIR"; else rm -rf "$LOGDIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { # fail MESSAGE [LOGFILE]
	echo "bench: FAILED: $1" >&2
	if [[ -n ${2:-} && -f $2 ]]; then
		echo "---- tail of $2 ----" >&2
		tail -n 25 "$2" >&2
		echo "----" >&2
	fi
	KEEP_LOGS=1
	exit 1
}

make -s -C "$ROOT/bench" >/dev/null || fail "could not build memhog"

# Wait until PID is gone (reaped by us or by init); fails after ~20 s.
wait_gone() {
	local pid=$1 i
	for ((i = 0; i < 2000; i++)); do
		[[ -e /proc/$pid ]] || return 0
		sleep 0.01
	done
	return 1
}

proc_state() { awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null; }

# ---- one measurement ------------------------------------------------------------------------

declare -A DUMP_T REST_T IMG_MIB
for t in "${TOOLS[@]}"; do DUMP_T[$t]=""; REST_T[$t]=""; IMG_MIB[$t]=""; done
DD_T=()

# run_one TOOL RUN: prints nothing on success, records times in DUMP_T/REST_T
run_one() {
	local tool=$1 run=$2 bin img out log t0 t1 pid i sj=() extra=()
	bin=$(tool_bin "$tool")
	img=$IMGROOT/img
	out=$LOGDIR/$tool.$run.memhog.out
	rm -rf "$img"
	mkdir -p "$img"
	if [[ $tool == stasis ]]; then extra=("${STASIS_EXTRA[@]}"); else extra=("${CRIU_EXTRA[@]}"); fi

	# stdio are files, new session: no controlling terminal, so no --shell-job needed.
	# stdout is opened O_APPEND so the restored process keeps appending to it.
	setsid "$MEMHOG" "$MIB" </dev/null >>"$out" 2>"$LOGDIR/$tool.$run.memhog.err" &
	pid=$!
	disown "$pid" # no "Killed" job notices; bash still reaps it once dump kills it
	HOGPID=$pid
	for ((i = 0; i < 6000; i++)); do
		grep -q '^READY' "$out" 2>/dev/null && break
		[[ -e /proc/$pid ]] || fail "memhog ($tool run $run) exited before READY" "$LOGDIR/$tool.$run.memhog.err"
		sleep 0.01
	done
	grep -q '^READY' "$out" || fail "memhog ($tool run $run) not READY after 60 s"
	[[ $(cat "/proc/$pid/comm") == memhog ]] || fail "pid $pid is not memhog (setsid forked?)"

	# --shell-job only if the task really has a terminal or is not its own session leader
	local sid tty
	read -r sid tty < <(awk '{ sub(/^.*\) /, ""); print $4, $5 }' "/proc/$pid/stat")
	if [[ $tty != 0 || $sid != "$pid" ]]; then sj=(--shell-job); fi

	log=$LOGDIR/$tool.$run.dump.log
	t0=$(now)
	"$bin" dump -t "$pid" -D "$img" "${sj[@]}" "${extra[@]}" >"$log" 2>&1
	local rc=$?
	t1=$(now)
	((rc == 0)) || fail "$tool dump (run $run) exited with $rc" "$log"
	DUMP_T[$tool]+=" $(elapsed "$t0" "$t1")"
	wait_gone "$pid" || fail "$tool dump (run $run): pid $pid still alive after dump" "$log"
	IMG_MIB[$tool]=$(du -sm "$img" | cut -f1)

	log=$LOGDIR/$tool.$run.restore.log
	t0=$(now)
	"$bin" restore -D "$img" -d "${sj[@]}" "${extra[@]}" >"$log" 2>&1
	rc=$?
	t1=$(now)
	((rc == 0)) || fail "$tool restore (run $run) exited with $rc" "$log"
	REST_T[$tool]+=" $(elapsed "$t0" "$t1")"

	local st
	st=$(proc_state "$pid")
	[[ -n $st && $st != Z && $st != X ]] || fail "$tool restore (run $run): pid $pid not alive after restore (state '${st:-gone}')" "$log"
	[[ $(cat "/proc/$pid/comm" 2>/dev/null) == memhog ]] || fail "$tool restore (run $run): pid $pid is not memhog" "$log"

	# check the restored memory (not timed)
	kill -USR1 "$pid"
	for ((i = 0; i < 6000; i++)); do
		grep -q '^VERIFY' "$out" && break
		[[ -e /proc/$pid ]] || break
		sleep 0.01
	done
	grep -q '^VERIFY OK' "$out" || fail "$tool restore (run $run): restored memory check: $(grep '^VERIFY' "$out" || echo 'no answer')" "$log"

	kill -9 "$pid"
	wait_gone "$pid" || fail "restored pid $pid did not go away"
	HOGPID=
	rm -rf "$img"
}

dd_one() {
	local t0 t1
	rm -f "$IMGROOT/dd.file"
	t0=$(now)
	dd if=/dev/zero of="$IMGROOT/dd.file" bs=4M count=$(((MIB + 3) / 4)) 2>/dev/null || fail "dd baseline"
	t1=$(now)
	rm -f "$IMGROOT/dd.file"
	DD_T+=("$(elapsed "$t0" "$t1")")
}

# ---- main loop ------------------------------------------------------------------------------

THP=$(sed -n 's/.*\[\(.*\)\].*/\1/p' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)
echo "bench: ${MIB} MiB, ${RUNS} run(s), images in $IMGROOT ($FSTYPE), kernel $(uname -r), THP ${THP:-?}, $(nproc) cpu(s)"
for t in "${TOOLS[@]}"; do echo "  $t: $(tool_bin "$t")"; done

# Warm-up: the first touch of guest memory that was never used is much slower in this VM,
# which made round 1 an outlier. Write (and free) 3 x MiB once, about what a round needs
# (memhog + images + restored memhog).
if ((WARMUP)); then
	dd if=/dev/zero of="$IMGROOT/warmup.file" bs=4M count=$(((MIB * 3 + 3) / 4)) 2>/dev/null ||
		echo "bench: warning: warm-up dd failed (is $IMGROOT big enough?)" >&2
	rm -f "$IMGROOT/warmup.file"
fi

for ((r = 1; r <= RUNS; r++)); do
	order=("${TOOLS[@]}")
	# alternate which tool goes first each round
	if ((${#TOOLS[@]} == 2 && r % 2 == 0)); then order=("${TOOLS[1]}" "${TOOLS[0]}"); fi
	line="run $r:"
	for t in "${order[@]}"; do
		run_one "$t" "$r"
		read -r -a d <<<"${DUMP_T[$t]}"; read -r -a s <<<"${REST_T[$t]}"
		line+="  $t dump ${d[-1]} s restore ${s[-1]} s (image ${IMG_MIB[$t]} MiB) |"
	done
	dd_one
	line+="  dd ${DD_T[-1]} s"
	echo "$line"
done

# ---- summary ---------------------------------------------------------------------------------

echo
echo "best of $RUNS, ${MIB} MiB (GB/s = 10^9 bytes/s):"
printf '%-14s %10s %10s %10s %12s\n' "" "dump s" "restore s" "dump GB/s" "restore GB/s"
declare -A BD BR
result="result mib=$MIB runs=$RUNS"
for t in "${TOOLS[@]}"; do
	BD[$t]=$(minof ${DUMP_T[$t]})
	BR[$t]=$(minof ${REST_T[$t]})
	printf '%-14s %10s %10s %10s %12s\n' "$t" "${BD[$t]}" "${BR[$t]}" "$(gbps "${BD[$t]}")" "$(gbps "${BR[$t]}")"
	result+=" ${t}_dump=${BD[$t]} ${t}_restore=${BR[$t]}"
done
if ((${#TOOLS[@]} == 2)); then
	printf '%-14s %10s %10s   (time ratio: > 1 means stasis is faster)\n' "criu/stasis" \
		"$(ratio "${BD[criu]}" "${BD[stasis]}")" "$(ratio "${BR[criu]}" "${BR[stasis]}")"
	result+=" ratio_dump=$(ratio "${BD[criu]}" "${BD[stasis]}") ratio_restore=$(ratio "${BR[criu]}" "${BR[stasis]}")"
fi
BDD=$(minof "${DD_T[@]}")
printf '%-14s %10s %10s %10s   (dd if=/dev/zero bs=4M of tmpfs file)\n' "dd baseline" "$BDD" "" "$(gbps "$BDD")"
result+=" dd=$BDD"
echo "$result"
