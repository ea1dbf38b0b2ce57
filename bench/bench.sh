#!/usr/bin/env bash
# bench.sh: dump/restore speed of stasis (and optionally CRIU). See bench/README.md.
#
#   bench/bench.sh [-c mem|tree|threads|tcp|maps|fds|unix|all] [-n runs] [-m MiB] [-p procs]
#                  [-M MiB] [-w width] [-t threads] [-K KiB] [-C conns] [-V mappings]
#                  [-F fds] [-P procs] [-U sockets] [-D images_dir] [-k] [-W] [-h]
#
# cases (-c, default mem; a comma-separated list or "all" runs several, one after another):
#   mem      one process holding -m MiB (default 1024) of touched private anonymous memory
#   tree     a tree of -p processes (default 100) holding -M MiB each (default 4); the root
#            has -w children (default procs-1: flat; e.g. -w 9 gives 9 children x 10
#            grandchildren), the others are grandchildren
#   threads  one process with -t threads (default 100) besides the main one, each holding
#            -K KiB (default 256)
#   tcp      one process holding -C established TCP connections on loopback (default 1000),
#            both ends of each, 1 KiB unread each way; dumped and restored with
#            --tcp-established (and each tool's default network lock, iptables)
#   maps     one process holding -V one-page mappings (default 100000) that can't merge
#            (read-write touched / read-only untouched in turn); vm.max_map_count must allow
#   fds      -F fds (default 100000) across -P processes (default 10): dups of a file,
#            files opened on their own, pipes with a byte queued, eventfds
#   unix     one process holding -U unix sockets (default 10000): stream and datagram
#            socketpairs and connections to a listener, half with messages queued
#
# env: STASIS    stasis binary (default: <repo>/build/stasis; "none" skips stasis)
#      CRIU_BIN  CRIU binary; when set, CRIU is measured too, alternating with stasis
#      STASIS_BASE  a second stasis binary ("base", e.g. main's before a change); when set it
#               is measured too, in the same rotation, with STASIS_OPTS
#      STASIS_OPTS / CRIU_OPTS  extra options passed to both dump and restore
# -k keeps the logs directory; -W skips the memory warm-up before the first round.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CASES_ARG=mem
MIB=1024
TREE_PROCS=100
TREE_MIB=4
TREE_WIDTH=
THREADS=100
THREAD_KIB=256
TCP_CONNS=1000
MAPS=100000
FDS=100000
FD_PROCS=10
UNIX_SKS=10000
RUNS=3
IMGROOT=
KEEP_LOGS=0
WARMUP=1

usage() {
	sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
	exit "${1:-0}"
}
posint() { # posint VALUE OPTION
	[[ $1 =~ ^[1-9][0-9]*$ ]] || { echo "bench: $2 wants a positive number" >&2; exit 2; }
}

while getopts "c:m:p:M:w:t:K:C:V:F:P:U:n:D:kWh" opt; do
	case $opt in
	c) CASES_ARG=$OPTARG ;;
	m) MIB=$OPTARG ;;
	p) TREE_PROCS=$OPTARG ;;
	M) TREE_MIB=$OPTARG ;;
	w) TREE_WIDTH=$OPTARG ;;
	t) THREADS=$OPTARG ;;
	K) THREAD_KIB=$OPTARG ;;
	C) TCP_CONNS=$OPTARG ;;
	V) MAPS=$OPTARG ;;
	F) FDS=$OPTARG ;;
	P) FD_PROCS=$OPTARG ;;
	U) UNIX_SKS=$OPTARG ;;
	n) RUNS=$OPTARG ;;
	D) IMGROOT=$OPTARG ;;
	k) KEEP_LOGS=1 ;;
	W) WARMUP=0 ;;
	h) usage 0 ;;
	*) usage 2 ;;
	esac
done
((OPTIND > $#)) || { echo "bench: unexpected argument '${!OPTIND}'" >&2; usage 2; }
posint "$MIB" -m
posint "$TREE_PROCS" -p
posint "$TREE_MIB" -M
posint "$THREADS" -t
posint "$THREAD_KIB" -K
posint "$TCP_CONNS" -C
posint "$MAPS" -V
posint "$FDS" -F
posint "$FD_PROCS" -P
posint "$UNIX_SKS" -U
((FDS >= FD_PROCS)) || { echo "bench: -F wants at least -P fds" >&2; exit 2; }
posint "$RUNS" -n
((TREE_PROCS >= 2)) || { echo "bench: -p wants at least 2 processes" >&2; exit 2; }
if [[ -z $TREE_WIDTH ]]; then TREE_WIDTH=$((TREE_PROCS - 1)); fi
posint "$TREE_WIDTH" -w
((TREE_WIDTH <= TREE_PROCS - 1)) || { echo "bench: -w wants at most procs-1 = $((TREE_PROCS - 1))" >&2; exit 2; }

CASES=()
IFS=, read -r -a case_list <<<"$CASES_ARG"
for c in "${case_list[@]}"; do
	case $c in
	mem | tree | threads | tcp | maps | fds | unix) [[ " ${CASES[*]} " == *" $c "* ]] || CASES+=("$c") ;;
	all) CASES=(mem tree threads tcp maps fds unix) ;;
	*) echo "bench: -c wants mem, tree, threads, tcp, maps, fds, unix or all, not '$c'" >&2; exit 2 ;;
	esac
done
((${#CASES[@]})) || { echo "bench: -c wants mem, tree, threads, tcp, maps, fds, unix or all" >&2; exit 2; }
if [[ " ${CASES[*]} " == *" maps "* ]]; then
	# the target's mappings, and room for the tools' own while they rebuild it
	mmc=$(cat /proc/sys/vm/max_map_count)
	((mmc >= MAPS + 1000)) || { echo "bench: maps: vm.max_map_count is $mmc, -V $MAPS wants at least $((MAPS + 1000)) (sysctl -w vm.max_map_count=$((MAPS * 2)))" >&2; exit 2; }
fi

STASIS=${STASIS:-$ROOT/build/stasis}
CRIU_BIN=${CRIU_BIN:-}
read -r -a STASIS_EXTRA <<<"${STASIS_OPTS:-}"
read -r -a CRIU_EXTRA <<<"${CRIU_OPTS:-}"

TOOLS=()
if [[ $STASIS != none ]]; then
	[[ -x $STASIS ]] || { echo "bench: stasis binary '$STASIS' not found (build it, set STASIS=..., or STASIS=none)" >&2; exit 2; }
	TOOLS+=(stasis)
fi
STASIS_BASE=${STASIS_BASE:-}
if [[ -n $STASIS_BASE ]]; then
	[[ -x $STASIS_BASE ]] || { echo "bench: STASIS_BASE '$STASIS_BASE' is not executable" >&2; exit 2; }
	TOOLS+=(base)
fi
if [[ -n $CRIU_BIN ]]; then
	[[ -x $CRIU_BIN ]] || { echo "bench: CRIU_BIN '$CRIU_BIN' is not executable" >&2; exit 2; }
	TOOLS+=(criu)
fi
((${#TOOLS[@]})) || { echo "bench: nothing to measure (STASIS=none and no CRIU_BIN)" >&2; exit 2; }

# MiB of touched memory a case's target holds (rounded up)
case_mib() {
	case $1 in
	mem) echo "$MIB" ;;
	tree) echo $((TREE_PROCS * TREE_MIB)) ;;
	threads) echo $(((THREADS * THREAD_KIB + 1023) / 1024)) ;;
	tcp) echo 8 ;;	# the queues and socket buffers: a few MiB
	maps) echo $(((MAPS / 2 * 4 + 1023) / 1024)) ;;	# a touched page every other mapping
	fds | unix) echo 8 ;;	# sparse files, queues: a few MiB
	esac
}
MAXMIB=0
for c in "${CASES[@]}"; do m=$(case_mib "$c"); ((m > MAXMIB)) && MAXMIB=$m; done

# ---- helpers ---------------------------------------------------------------------------------

now() { # wall clock in seconds with microseconds
	if [[ -n ${EPOCHREALTIME:-} ]]; then echo "$EPOCHREALTIME"; else date +%s.%N; fi
}
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
gbps() { awk -v m="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.2f", m * 1048576 / 1e9 / s; else print "-" }'; }
per_us() { awk -v n="$1" -v s="$2" 'BEGIN { if (n > 0) printf "%.1f", s * 1e6 / n; else print "-" }'; }
case_units() { # what a scale case counts
	case $1 in
	maps) echo "$MAPS" ;;
	fds) echo "$FDS" ;;
	unix) echo "$UNIX_SKS" ;;
	esac
}
per_ms() { awk -v n="$1" -v s="$2" 'BEGIN { if (n > 0) printf "%.2f", s * 1000 / n; else print "-" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
minof() { printf '%s\n' "$@" | sort -g | head -1; }

tool_bin() {
	case $1 in
	stasis) echo "$STASIS" ;;
	base) echo "$STASIS_BASE" ;;
	*) echo "$CRIU_BIN" ;;
	esac
}

# ---- images directory on tmpfs ---------------------------------------------------------------

MOUNTED=
if [[ -z $IMGROOT ]]; then
	IMGROOT=/tmp/stasis-bench.$$	# one per run: two benches at once don't share it
	mkdir -p "$IMGROOT"
	if ! mountpoint -q "$IMGROOT"; then
		# room for the warm-up file (3 x MiB), with slack
		if mount -t tmpfs -o "size=$((MAXMIB * 3 + 512))m,mode=0700" stasis-bench "$IMGROOT" 2>/dev/null; then
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
BENCHBIN=$ROOT/build/bench
# pids of the current target (one per line), so that whoever exits kills them
TARGETS_FILE=$LOGDIR/targets

# Kill what is left of the current target: only pids that still run one of our programs.
kill_targets() {
	local p
	[[ -s $TARGETS_FILE ]] || return 0
	while read -r p; do
		case $(cat "/proc/$p/comm" 2>/dev/null) in
		memhog | treehog | threadhog | tcphog | mapshog | fdhog | unixhog) kill -9 "$p" 2>/dev/null ;;
		esac
	done <"$TARGETS_FILE"
	: >"$TARGETS_FILE"
}

cleanup() {
	kill_targets
	rm -rf "$IMGROOT/img" "$IMGROOT/dd.file" "$IMGROOT/warmup.file" "$IMGROOT/fdfiles"
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

make -s -C "$ROOT/bench" >/dev/null || fail "could not build the bench programs (make -C bench)"

# Wait until PID is gone, not even a zombie (pid 1 may take a while to reap orphans);
# fails after ~20 s.
wait_gone() {
	local pid=$1 i
	for ((i = 0; i < 2000; i++)); do
		[[ -e /proc/$pid ]] || return 0
		sleep 0.01
	done
	return 1
}

proc_state() { awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null; }

# "pid ppid" of ROOT and all its descendants, sorted by pid, from /proc/*/stat (no need for
# CONFIG_PROC_CHILDREN). Zombies and dead processes are left out. The root's ppid is "-".
tree_snapshot() {
	cat /proc/[0-9]*/stat 2>/dev/null | awk -v root="$1" '
		{ pid = $1; sub(/^.*\) /, ""); if ($1 != "Z" && $1 != "X") { ppid[pid] = $2; kids[$2] = kids[$2] " " pid } }
		END {
			if (!(root in ppid)) exit
			q[1] = root; n = 1
			for (i = 1; i <= n; i++) {
				m = split(kids[q[i]], k, " ")
				for (j = 1; j <= m; j++) q[++n] = k[j]
			}
			print root, "-"	# the parent of the root is whoever restored it
			for (i = 2; i <= n; i++) print q[i], ppid[q[i]]
		}' | sort -n
}

# the ids a restore must bring back: pid (mem), "pid ppid" of every process (tree), tids (threads)
snapshot() { # snapshot CASE PID
	case $1 in
	mem | tcp | maps | unix) [[ -e /proc/$2 ]] && echo "$2" ;;
	tree | fds) tree_snapshot "$2" ;;
	threads) ls /proc/"$2"/task 2>/dev/null | sort -n ;;
	esac
}

# ---- one measurement ------------------------------------------------------------------------

# run_one CASE TOOL RUN: prints nothing on success, records times in DUMP_T/REST_T
run_one() {
	local cs=$1 tool=$2 run=$3 bin img out log t0 t1 pid i rc sj=() extra=() cmd want prog
	local before after n
	bin=$(tool_bin "$tool")
	img=$IMGROOT/img
	out=$LOGDIR/$cs.$tool.$run.out
	rm -rf "$img"
	mkdir -p "$img"
	if [[ $tool == criu ]]; then extra=("${CRIU_EXTRA[@]}"); else extra=("${STASIS_EXTRA[@]}"); fi
	case $cs in
	mem) prog=memhog; cmd=("$BENCHBIN/memhog" "$MIB"); want=1 ;;
	tree) prog=treehog; cmd=("$BENCHBIN/treehog" -n "$TREE_PROCS" -m "$TREE_MIB" -w "$TREE_WIDTH"); want=$TREE_PROCS ;;
	threads) prog=threadhog; cmd=("$BENCHBIN/threadhog" -t "$THREADS" -k "$THREAD_KIB"); want=$((THREADS + 1)) ;;
	tcp) prog=tcphog; cmd=("$BENCHBIN/tcphog" -n "$TCP_CONNS"); want=1; extra+=(--tcp-established) ;;
	maps) prog=mapshog; cmd=("$BENCHBIN/mapshog" -n "$MAPS"); want=1 ;;
	fds)
		# the files the fds open must be there at restore: out of the images directory
		prog=fdhog; mkdir -p "$IMGROOT/fdfiles"
		cmd=("$BENCHBIN/fdhog" -n "$FDS" -p "$FD_PROCS" -d "$IMGROOT/fdfiles"); want=$FD_PROCS ;;
	unix) prog=unixhog; cmd=("$BENCHBIN/unixhog" -n "$UNIX_SKS"); want=1 ;;
	esac

	# stdio are files, new session: no controlling terminal, so no --shell-job needed.
	# stdout is opened O_APPEND so the restored process keeps appending to it.
	setsid "${cmd[@]}" </dev/null >>"$out" 2>"$LOGDIR/$cs.$tool.$run.err" &
	pid=$!
	disown "$pid" # no "Killed" job notices; bash still reaps it once dump kills it
	echo "$pid" >"$TARGETS_FILE"
	for ((i = 0; i < 6000; i++)); do
		grep -q '^READY' "$out" 2>/dev/null && break
		[[ -e /proc/$pid ]] || fail "$prog ($cs, $tool run $run) exited before READY" "$LOGDIR/$cs.$tool.$run.err"
		sleep 0.01
	done
	grep -q '^READY' "$out" || fail "$prog ($cs, $tool run $run) not READY after 60 s"
	[[ $(cat "/proc/$pid/comm") == "$prog" ]] || fail "pid $pid is not $prog (setsid forked?)"

	before=$(snapshot "$cs" "$pid")
	[[ $cs == threads ]] || cut -d' ' -f1 <<<"$before" >"$TARGETS_FILE"
	n=$(wc -l <<<"$before")
	((n == want)) || fail "$cs ($tool run $run): found $n $([[ $cs == threads ]] && echo threads || echo processes) before the dump, expected $want"

	# --shell-job only if the task really has a terminal or is not its own session leader
	local sid tty
	read -r sid tty < <(awk '{ sub(/^.*\) /, ""); print $4, $5 }' "/proc/$pid/stat")
	if [[ $tty != 0 || $sid != "$pid" ]]; then sj=(--shell-job); fi

	log=$LOGDIR/$cs.$tool.$run.dump.log
	t0=$(now)
	"$bin" dump -t "$pid" -D "$img" "${sj[@]}" "${extra[@]}" >"$log" 2>&1
	rc=$?
	t1=$(now)
	((rc == 0)) || fail "$tool dump ($cs, run $run) exited with $rc" "$log"
	DUMP_T[$tool]+=" $(elapsed "$t0" "$t1")"
	while read -r p; do
		wait_gone "$p" || fail "$tool dump ($cs, run $run): pid $p still there 20 s after the dump" "$log"
	done <"$TARGETS_FILE"
	IMG_MIB[$tool]=$(du -sm "$img" | cut -f1)

	log=$LOGDIR/$cs.$tool.$run.restore.log
	t0=$(now)
	"$bin" restore -D "$img" -d "${sj[@]}" "${extra[@]}" >"$log" 2>&1
	rc=$?
	t1=$(now)
	((rc == 0)) || fail "$tool restore ($cs, run $run) exited with $rc" "$log"
	REST_T[$tool]+=" $(elapsed "$t0" "$t1")"

	local st
	st=$(proc_state "$pid")
	[[ -n $st && $st != Z && $st != X ]] || fail "$tool restore ($cs, run $run): pid $pid not alive after restore (state '${st:-gone}')" "$log"
	[[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$prog" ]] || fail "$tool restore ($cs, run $run): pid $pid is not $prog" "$log"
	after=$(snapshot "$cs" "$pid")
	[[ $cs == threads ]] || cut -d' ' -f1 <<<"$after" >"$TARGETS_FILE"
	if [[ $after != "$before" ]]; then
		n=$(wc -l <<<"$after")
		local diffs
		diffs=$(diff <(echo "$before") <(echo "$after") | grep '^[<>]' | head -5 | tr '\n' ' ')
		case $cs in
		tree) fail "$tool restore ($cs, run $run): $n processes (pid ppid) in the tree of $pid after restore, expected the $want from before the dump; diff before/after: $diffs" "$log" ;;
		threads) fail "$tool restore ($cs, run $run): $n tids in /proc/$pid/task after restore, expected the $want from before the dump; diff before/after: $diffs" "$log" ;;
		*) fail "$tool restore ($cs, run $run): pid changed" "$log" ;;
		esac
	fi

	# check the restored memory (not timed)
	kill -USR1 "$pid"
	for ((i = 0; i < 6000; i++)); do
		grep -q '^VERIFY' "$out" && break
		[[ -e /proc/$pid ]] || break
		sleep 0.01
	done
	grep -q '^VERIFY OK' "$out" || fail "$tool restore ($cs, run $run): restored memory check: $(grep '^VERIFY' "$out" | head -5 | tr '\n' ' ' || true)$(grep -q '^VERIFY' "$out" || echo 'no answer')" "$log"

	kill_targets
	while read -r p; do
		wait_gone "$p" || fail "restored pid $p did not go away"
	done < <(cut -d' ' -f1 <<<"$after")
	[[ $cs == threads ]] && { wait_gone "$pid" || fail "restored pid $pid did not go away"; }
	rm -rf "$img"
}

dd_one() { # dd_one MiB
	local t0 t1
	rm -f "$IMGROOT/dd.file"
	t0=$(now)
	dd if=/dev/zero of="$IMGROOT/dd.file" bs=4M count=$((($1 + 3) / 4)) 2>/dev/null || fail "dd baseline"
	t1=$(now)
	rm -f "$IMGROOT/dd.file"
	DD_T+=("$(elapsed "$t0" "$t1")")
}

# run_case CASE: all rounds of one case and its summary. Runs in a subshell: a failure ends
# the case (exit 1) and the next case still runs.
run_case() {
	local cs=$1 mib r t line d s desc
	declare -A DUMP_T REST_T IMG_MIB BD BR
	DD_T=()
	for t in "${TOOLS[@]}"; do DUMP_T[$t]=""; REST_T[$t]=""; IMG_MIB[$t]=""; done
	mib=$(case_mib "$cs")
	case $cs in
	mem) desc="mem: 1 process, ${MIB} MiB" ;;
	tree)
		if ((TREE_WIDTH == TREE_PROCS - 1)); then
			desc="tree: ${TREE_PROCS} processes x ${TREE_MIB} MiB (root + $TREE_WIDTH children)"
		else
			desc="tree: ${TREE_PROCS} processes x ${TREE_MIB} MiB (root + $TREE_WIDTH children + $((TREE_PROCS - 1 - TREE_WIDTH)) grandchildren)"
		fi
		;;
	threads) desc="threads: 1 process, 1 + ${THREADS} threads x ${THREAD_KIB} KiB" ;;
	tcp) desc="tcp: 1 process, ${TCP_CONNS} established TCP connections (both ends), --tcp-established" ;;
	maps) desc="maps: 1 process, ${MAPS} one-page mappings" ;;
	fds) desc="fds: ${FDS} fds across ${FD_PROCS} processes (dups, files, pipes, eventfds)" ;;
	unix) desc="unix: 1 process, ${UNIX_SKS} unix sockets (stream and datagram pairs, connections)" ;;
	esac
	echo
	echo "== $desc"

	for ((r = 1; r <= RUNS; r++)); do
		local order=("${TOOLS[@]}") k nt=${#TOOLS[@]}
		# rotate which tool goes first each round (two tools: alternate)
		for ((k = 0; k < nt; k++)); do order[k]=${TOOLS[((k + r - 1) % nt)]}; done
		line="run $r:"
		for t in "${order[@]}"; do
			run_one "$cs" "$t" "$r"
			read -r -a d <<<"${DUMP_T[$t]}"; read -r -a s <<<"${REST_T[$t]}"
			line+="  $t dump ${d[-1]} s restore ${s[-1]} s (image ${IMG_MIB[$t]} MiB) |"
		done
		dd_one "$mib"
		line+="  dd ${DD_T[-1]} s"
		echo "$line"
	done

	local result
	echo
	case $cs in
	mem)
		echo "best of $RUNS, ${MIB} MiB (GB/s = 10^9 bytes/s):"
		printf '%-14s %10s %10s %10s %12s\n' "" "dump s" "restore s" "dump GB/s" "restore GB/s"
		result="result mib=$MIB runs=$RUNS"
		;;
	tree)
		echo "best of $RUNS, tree of $TREE_PROCS processes x $TREE_MIB MiB (ms/proc = time / processes):"
		printf '%-14s %10s %10s %13s %16s\n' "" "dump s" "restore s" "dump ms/proc" "restore ms/proc"
		result="result case=tree procs=$TREE_PROCS mib_per_proc=$TREE_MIB width=$TREE_WIDTH runs=$RUNS"
		;;
	threads)
		echo "best of $RUNS, 1 + $THREADS threads x $THREAD_KIB KiB (ms/thread = time / $THREADS threads):"
		printf '%-14s %10s %10s %13s %16s\n' "" "dump s" "restore s" "dump ms/thr" "restore ms/thr"
		result="result case=threads threads=$THREADS kib_per_thread=$THREAD_KIB runs=$RUNS"
		;;
	tcp)
		echo "best of $RUNS, $TCP_CONNS TCP connections (ms/conn = time / connections):"
		printf '%-14s %10s %10s %13s %16s\n' "" "dump s" "restore s" "dump ms/conn" "restore ms/conn"
		result="result case=tcp conns=$TCP_CONNS runs=$RUNS"
		;;
	maps | fds | unix)
		local units unit
		units=$(case_units "$cs"); unit=${cs%s}
		echo "best of $RUNS, $units $cs (us/$unit = time / $units):"
		printf '%-14s %10s %10s %13s %16s\n' "" "dump s" "restore s" "dump us/$unit" "restore us/$unit"
		result="result case=$cs n=$units runs=$RUNS"
		[[ $cs == fds ]] && result+=" procs=$FD_PROCS"
		;;
	esac
	for t in "${TOOLS[@]}"; do
		BD[$t]=$(minof ${DUMP_T[$t]})
		BR[$t]=$(minof ${REST_T[$t]})
		case $cs in
		mem) printf '%-14s %10s %10s %10s %12s\n' "$t" "${BD[$t]}" "${BR[$t]}" "$(gbps "$mib" "${BD[$t]}")" "$(gbps "$mib" "${BR[$t]}")" ;;
		tree) printf '%-14s %10s %10s %13s %16s\n' "$t" "${BD[$t]}" "${BR[$t]}" "$(per_ms "$TREE_PROCS" "${BD[$t]}")" "$(per_ms "$TREE_PROCS" "${BR[$t]}")" ;;
		threads) printf '%-14s %10s %10s %13s %16s\n' "$t" "${BD[$t]}" "${BR[$t]}" "$(per_ms "$THREADS" "${BD[$t]}")" "$(per_ms "$THREADS" "${BR[$t]}")" ;;
		tcp) printf '%-14s %10s %10s %13s %16s\n' "$t" "${BD[$t]}" "${BR[$t]}" "$(per_ms "$TCP_CONNS" "${BD[$t]}")" "$(per_ms "$TCP_CONNS" "${BR[$t]}")" ;;
		*) printf '%-14s %10s %10s %13s %16s\n' "$t" "${BD[$t]}" "${BR[$t]}" "$(per_us "$(case_units "$cs")" "${BD[$t]}")" "$(per_us "$(case_units "$cs")" "${BR[$t]}")" ;;
		esac
		result+=" ${t}_dump=${BD[$t]} ${t}_restore=${BR[$t]}"
	done
	if [[ -n ${BD[criu]:-} && -n ${BD[stasis]:-} ]]; then
		printf '%-14s %10s %10s   (time ratio: > 1 means stasis is faster)\n' "criu/stasis" \
			"$(ratio "${BD[criu]}" "${BD[stasis]}")" "$(ratio "${BR[criu]}" "${BR[stasis]}")"
		result+=" ratio_dump=$(ratio "${BD[criu]}" "${BD[stasis]}") ratio_restore=$(ratio "${BR[criu]}" "${BR[stasis]}")"
	fi
	if [[ -n ${BD[base]:-} && -n ${BD[stasis]:-} ]]; then
		printf '%-14s %10s %10s   (time ratio: > 1 means stasis is faster than base)\n' "base/stasis" \
			"$(ratio "${BD[base]}" "${BD[stasis]}")" "$(ratio "${BR[base]}" "${BR[stasis]}")"
		result+=" ratio_base_dump=$(ratio "${BD[base]}" "${BD[stasis]}") ratio_base_restore=$(ratio "${BR[base]}" "${BR[stasis]}")"
	fi
	local bdd
	bdd=$(minof "${DD_T[@]}")
	local w4=10
	[[ $cs == mem ]] || w4=13
	printf "%-14s %10s %10s %${w4}s   (dd if=/dev/zero bs=4M of %s MiB to a tmpfs file; GB/s)\n" "dd baseline" "$bdd" "" "$(gbps "$mib" "$bdd")" "$mib"
	result+=" dd=$bdd"
	[[ $cs == mem ]] && result+=" case=mem"
	echo "$result"
}

# ---- main ------------------------------------------------------------------------------------

THP=$(sed -n 's/.*\[\(.*\)\].*/\1/p' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)
echo "bench: case(s) ${CASES[*]}, ${RUNS} run(s), images in $IMGROOT ($FSTYPE), kernel $(uname -r), THP ${THP:-?}, $(nproc) cpu(s)"
for t in "${TOOLS[@]}"; do echo "  $t: $(tool_bin "$t")"; done

# Warm-up: the first touch of guest memory that was never used is much slower in this VM,
# which made round 1 an outlier. Write (and free) 3 x MiB of the largest case once, about
# what a round needs (target + images + restored target).
if ((WARMUP)); then
	dd if=/dev/zero of="$IMGROOT/warmup.file" bs=4M count=$(((MAXMIB * 3 + 3) / 4)) 2>/dev/null ||
		echo "bench: warning: warm-up dd failed (is $IMGROOT big enough?)" >&2
	rm -f "$IMGROOT/warmup.file"
fi

FAILED=()
for c in "${CASES[@]}"; do
	(run_case "$c")
	rc=$?
	((rc == 130)) && exit 130
	if ((rc != 0)); then
		kill_targets
		rm -rf "$IMGROOT/img"
		FAILED+=("$c")
		KEEP_LOGS=1
	fi
done
if ((${#FAILED[@]})); then
	echo
	echo "bench: FAILED case(s): ${FAILED[*]} (see the FAILED lines above)" >&2
	exit 1
fi
exit 0
