#!/usr/bin/env bash
# Time of a container's checkpoint and restore through runc and through
# podman (the whole runtime command, the runtime's own work included), with
# stasis as their `criu` and, alternating in the same run, CRIU (CRIU_BIN).
# The container is a busybox counter. Prints each run, then the best of
# each.
#
#   CRIU_BIN=/tmp/criu-ref/criu/criu bench/runtime.sh [-n RUNS] [-r runc|podman|both]
#
# runc: `runc --criu TOOL checkpoint` then `runc --criu TOOL restore -d`.
# podman: `podman container checkpoint` then `podman container restore`
# (podman runs runc, which finds `criu` on PATH: a directory holding a
# `criu` link to the tool comes first). podman's storage is its own, under
# a temporary directory (vfs driver, cgroupfs manager, as the tests run it).
# Images and state go to /dev/shm, the counter's output to /tmp.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=5 WHICH=both
while getopts "n:r:" o; do
	case $o in
	n) RUNS=$OPTARG ;;
	r) WHICH=$OPTARG ;;
	*) sed -n '2,15s/^# \{0,1\}//p' "$0"; exit 2 ;;
	esac
done
command -v runc > /dev/null || { echo "no runc" >&2; exit 1; }
[ -x /bin/busybox ] || { echo "no /bin/busybox (busybox-static)" >&2; exit 1; }
[ "$WHICH" = runc ] || command -v podman > /dev/null || { echo "no podman (-r runc measures runc alone)" >&2; exit 1; }
make -s -C "$ROOT" > /dev/null || { echo "build failed" >&2; exit 1; }

W=$(mktemp -d /dev/shm/stasis-runtime-bench.XXXXXX)
# the counter's output, from the cat at the pipe's other end
OUT=$(mktemp -d /tmp/stasis-runtime-bench-out.XXXXXX)
mkdir -p "$W/stasis" "$W/criu"
ln -s "$ROOT/build/stasis" "$W/stasis/criu"
tools=(stasis)
if [ -n "${CRIU_BIN:-}" ]; then
	ln -s "$CRIU_BIN" "$W/criu/criu"
	tools+=(criu)
fi
COUNTER='i=0; while :; do i=$((i+1)); echo $i; sleep 0.05; done'
ID=bench-$$

ms() { echo $((($2 - $1) / 1000000)); }
now() { date +%s%N; }
declare -A best
keep_best() { # KEY MS
	if [ -z "${best[$1]:-}" ] || [ "$2" -lt "${best[$1]}" ]; then best[$1]=$2; fi
}
# report RUNTIME TOOL T0 T1 T2: a round's checkpoint (T0..T1) and restore (T1..T2)
report() {
	printf "  %-6s checkpoint %4d ms  restore %4d ms\n" "$2" "$(ms "$3" "$4")" "$(ms "$4" "$5")"
	keep_best "$1.$2.ck" "$(ms "$3" "$4")"
	keep_best "$1.$2.rs" "$(ms "$4" "$5")"
}

# ---- runc ----

rc() { local t=$1; shift; runc --root "$W/runc-state" --criu "$W/$t/criu" "$@"; }
runc_setup() {
	mkdir -p "$W/box/rootfs/bin"
	cp /bin/busybox "$W/box/rootfs/bin/"
	ln -s busybox "$W/box/rootfs/bin/sh"
	ln -s busybox "$W/box/rootfs/bin/sleep"
	(cd "$W/box" && runc spec) || return 1
	python3 - "$W/box/config.json" "$COUNTER" << 'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["terminal"] = False
c["root"]["readonly"] = False	# CRIU 4.2's restore of a read-only root fails (its temporary directory)
c["process"]["args"] = ["sh", "-c", sys.argv[2]]
json.dump(c, open(sys.argv[1], "w"))
EOF
	# the output through a pipe whose other end is outside (as a
	# runtime's log pipe): a restore gives its own stdout for it
	(cd "$W/box" && rc stasis run -d "$ID" 2>&1 < /dev/null | cat > "$OUT/box.out") &
	sleep 0.5
}
runc_round() { # TOOL: one checkpoint and restore
	local t=$1 a b c
	rm -rf "$W/img"
	a=$(now)
	(cd "$W/box" && rc "$t" checkpoint --image-path "$W/img" "$ID") > "$W/ck.log" 2>&1 ||
		{ echo "runc checkpoint with $t failed: $(tail -1 "$W/ck.log")" >&2; return 1; }
	b=$(now)
	(cd "$W/box" && rc "$t" restore -d --image-path "$W/img" "$ID" 2> "$W/rs.log" < /dev/null \
		> >(cat >> "$OUT/box.out")) ||
		{ echo "runc restore with $t failed: $(tail -1 "$W/rs.log")" >&2; return 1; }
	c=$(now)
	report runc "$t" "$a" "$b" "$c"
	sleep 0.3
}
runc_cleanup() {
	rc stasis kill "$ID" KILL > /dev/null 2>&1
	sleep 0.2
	rc stasis delete -f "$ID" > /dev/null 2>&1
}

# ---- podman ----

pm() {
	local t=$1
	shift
	PATH=$W/$t:$PATH podman --root "$W/pm-storage" --runroot "$W/pm-run" --storage-driver vfs \
		--runtime runc --cgroup-manager cgroupfs "$@"
}
pm_setup() {
	mkdir -p "$W/pmroot/bin"
	cp /bin/busybox "$W/pmroot/bin/"
	for a in sh sleep; do ln -s busybox "$W/pmroot/bin/$a"; done
	tar -C "$W/pmroot" -c . | pm stasis import - localhost/stasis-bench-busybox > /dev/null 2>&1 || return 1
	pm stasis run -d --ulimit "nofile=$(ulimit -Sn):$(ulimit -Hn)" --ulimit nproc=4096:4096 --name "$ID" \
		localhost/stasis-bench-busybox sh -c "$COUNTER" > "$W/pm-run.out" 2>&1 || return 1
	sleep 0.5
}
pm_round() {
	local t=$1 a b c
	a=$(now)
	pm "$t" container checkpoint --keep "$ID" > "$W/ck.log" 2>&1 ||
		{ echo "podman checkpoint with $t failed: $(tail -1 "$W/ck.log")" >&2; return 1; }
	b=$(now)
	pm "$t" container restore --keep "$ID" > "$W/rs.log" 2>&1 ||
		{ echo "podman restore with $t failed: $(tail -1 "$W/rs.log")" >&2; return 1; }
	c=$(now)
	report podman "$t" "$a" "$b" "$c"
	sleep 0.3
}
pm_cleanup() {
	pm stasis rm -f "$ID" > /dev/null 2>&1
	pm stasis rmi -f localhost/stasis-bench-busybox > /dev/null 2>&1
}

cleanup() {
	runc_cleanup
	command -v podman > /dev/null && pm_cleanup
	[ -n "${KEEP:-}" ] || rm -rf "$W" "$OUT"
}
trap cleanup EXIT

# Each run alternates which tool goes first.
measure() { # NAME
	local r t order
	for ((r = 1; r <= RUNS; r++)); do
		echo "$1 run $r:"
		order=("${tools[@]}")
		((r % 2 == 0)) && order=($(printf '%s\n' "${tools[@]}" | tac))
		for t in "${order[@]}"; do
			"${1}_round" "$t" || return 1
		done
	done
}

status=0
if [ "$WHICH" != podman ]; then
	runc_setup || { echo "runc: the container did not start" >&2; exit 1; }
	measure runc || status=1
	runc_cleanup
fi
if [ "$WHICH" != runc ]; then
	pm_setup || { echo "podman: the container did not start: $(tail -1 "$W/pm-run.out")" >&2; exit 1; }
	measure pm || status=1
fi
echo "best of $RUNS (ms):"
for k in $(printf '%s\n' "${!best[@]}" | sort); do
	printf "  %-18s %5d\n" "$k" "${best[$k]}"
done
exit $status
