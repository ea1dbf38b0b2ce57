#!/usr/bin/env bash
# Time of `crun checkpoint` and `crun restore -d` of a busybox counter (the
# whole crun command, crun's own work included), with stasis as its
# libcriu (libstasis's libcriu.so.2, `stasis swrk`) and, alternating in
# the same run, CRIU through CRIU's own libcriu.so.2 (CRIU_LIB, the
# directory of CRIU's lib/c/libcriu.so) and CRIU_BIN as `criu` on PATH.
# Prints each run, then the best of each.
#
#   CRIU_BIN=/tmp/criu-ref/criu/criu CRIU_LIB=/tmp/criu-ref/lib/c bench/crun.sh [-n RUNS]
#
# crun is scripts/build-crun.sh's (STASIS_CRUN); it runs as the README
# says on a host with a hybrid cgroup layout (a mount namespace without
# the v2 mount). Images go to /dev/shm.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CRUN=${STASIS_CRUN:-/var/tmp/stasis-crun/crun}
RUNS=5
while getopts "n:" o; do
	case $o in
	n) RUNS=$OPTARG ;;
	*) echo "usage: $0 [-n RUNS]" >&2; exit 2 ;;
	esac
done
[ -x "$CRUN" ] || { echo "no crun at $CRUN: scripts/build-crun.sh" >&2; exit 1; }
[ -x /bin/busybox ] || { echo "no /bin/busybox (busybox-static)" >&2; exit 1; }

W=$(mktemp -d /dev/shm/stasis-crun-bench.XXXXXX)
# libcriu.so.2 and `criu` for each tool: libstasis starts `stasis`, CRIU's
# libcriu starts `criu`, both from PATH
mkdir -p "$W/stasis" "$W/criu"
ln -s "$ROOT/build/lib/libcriu.so.2" "$ROOT/build/stasis" "$W/stasis/"
tools=(stasis)
if [ -n "${CRIU_BIN:-}" ] && [ -n "${CRIU_LIB:-}" ]; then
	ln -s "$CRIU_LIB/libcriu.so" "$W/criu/libcriu.so.2"
	ln -s "$CRIU_BIN" "$W/criu/criu"
	tools+=(criu)
fi

ID=bench-$$
cleanup() {
	cr stasis kill "$ID" KILL > /dev/null 2>&1 || true
	sleep 0.2
	cr stasis delete -f "$ID" > /dev/null 2>&1 || true
	[ -n "$KEEP" ] || rm -rf "$W"
}
trap cleanup EXIT
KEEP=${KEEP:-}

# cr TOOL ARGS...: crun with TOOL's libcriu, v1 cgroups only.
cr() {
	local t=$1
	shift
	LD_LIBRARY_PATH=$W/$t PATH=$W/$t:$PATH unshare -m sh -c \
		'! mountpoint -q /sys/fs/cgroup/unified || umount /sys/fs/cgroup/unified || exit 1; exec "$@"' \
		crun "$CRUN" --root "$W/state" "$@"
}

mkdir -p "$W/b/rootfs/bin"
cp /bin/busybox "$W/b/rootfs/bin/"
ln -s busybox "$W/b/rootfs/bin/sh"
(cd "$W/b" && cr stasis spec)
python3 - "$W/b/config.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["terminal"] = False
c["root"]["readonly"] = False	# CRIU's restore of a read-only root fails here (its temporary directory)
c["process"]["args"] = ["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i; sleep 0.05; done"]
json.dump(c, open(sys.argv[1], "w"))
EOF

ms() { echo $((($2 - $1) / 1000000)); }
lines() { wc -l < "$1" 2> /dev/null || echo 0; }
wait_lines() { # FILE N: up to 10 s
	local _
	for _ in $(seq 100); do (($(lines "$1") >= $2)) && return 0; sleep 0.1; done
	echo "the container did not count ($1)" >&2
	return 1
}

declare -A best_ck best_rs
for r in $(seq "$RUNS"); do
	for t in "${tools[@]}"; do
		rm -rf "$W/img" "$W/out"*
		(cd "$W/b" && cr "$t" run -d "$ID" 2>&1 < /dev/null | cat > "$W/out") &
		wait_lines "$W/out" 5 && cr "$t" state "$ID" > /dev/null 2>&1 || { echo "$t: crun run failed: $(head -3 "$W/out")" >&2; exit 1; }
		a=$(date +%s%N)
		cr "$t" checkpoint --image-path "$W/img" "$ID" > "$W/ck.log" 2>&1 ||
			{ echo "$t: crun checkpoint failed: $(tail -1 "$W/ck.log")" >&2; exit 1; }
		b=$(date +%s%N)
		# the restored container writes to the restoring crun's stdout:
		# a pipe that outlives crun, as at run
		(
			cd "$W/b"
			s=$(date +%s%N)
			rc=0
			cr "$t" restore -d --image-path "$W/img" "$ID" 2> "$W/rs.log" < /dev/null || rc=$?
			echo "$rc $s $(date +%s%N)" > "$W/rs.t"
		) | cat > "$W/out2" &
		for _ in $(seq 300); do [ -s "$W/rs.t" ] && break; sleep 0.1; done
		[ -s "$W/rs.t" ] || { echo "$t: crun restore did not end in 30 s: $(tail -1 "$W/rs.log")" >&2; exit 1; }
		read -r rc s e < "$W/rs.t"
		[ "$rc" = 0 ] || { echo "$t: crun restore failed: $(tail -1 "$W/rs.log")" >&2; exit 1; }
		wait_lines "$W/out2" 3
		ck=$(ms "$a" "$b") rs=$(ms "$s" "$e")
		rm -f "$W/rs.t"
		echo "run $r $t: checkpoint $ck ms, restore $rs ms"
		best_ck[$t]=$(((${best_ck[$t]:-999999} < ck) ? ${best_ck[$t]:-999999} : ck))
		best_rs[$t]=$(((${best_rs[$t]:-999999} < rs) ? ${best_rs[$t]:-999999} : rs))
		cr "$t" kill "$ID" KILL > /dev/null 2>&1
		sleep 0.3
		cr "$t" delete -f "$ID" > /dev/null 2>&1
		wait
	done
done
for t in "${tools[@]}"; do
	echo "best of $RUNS, $t: checkpoint ${best_ck[$t]} ms, restore ${best_rs[$t]} ms"
done
