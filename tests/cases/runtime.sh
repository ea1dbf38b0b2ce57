# Containers: what runc, crun and podman ask of their criu (issue 15).
# First the pieces alone, checked from the outside on plain process trees
# (the cgroup freezer around the seize, the RPC requests' config_file and
# orphan_pts_master, the VERSION runtimes compute); then the runtimes
# themselves with stasis as their criu, on a busybox container that
# counts. Those need what containers are made of (mount and network
# namespaces): they fail, not skip, where stasis can't do it yet; they
# skip only where the runtime is not installed (--needs runc, podman) or,
# for crun, not built with checkpoint support (--needs crun-built:
# Debian's has none; scripts/build-crun.sh builds it, CI runs it).

RT_DRIVE=$ROOT/tests/py/rt_drive.py

# rt_run TAG ARGS...: rt_drive.py STASIS ARGS, output in T_LOG/TAG.out; echoes rc.
rt_run() {
	local tag=$1
	shift
	note "rt_drive $*"
	timeout -k 5 $((TMO * 3)) "$PYTHON" "$RT_DRIVE" "$STASIS" "$@" > "$T_LOG/$tag.out" 2> "$T_LOG/$tag.err" < /dev/null
	echo $?
}

# ---- the cgroup freezer ----

# freezer_cg VERSION: a new freezer cgroup of that version (v1: the
# freezer hierarchy; v2: the unified one, whole or hybrid) in FZ_CG, its
# state file FZ_STATE and its task list FZ_PROCS; 1 (skipped) where this
# machine has none.
freezer_cg() {
	local base
	if [[ $1 == v1 ]]; then
		base=/sys/fs/cgroup/freezer
		[[ -f $base/freezer.state || -d $base ]] || { skip "no cgroup v1 freezer hierarchy here"; return 1; }
		FZ_STATE=freezer.state FZ_PROCS=cgroup.procs
	else
		base=/sys/fs/cgroup/unified
		[[ -d $base ]] || base=/sys/fs/cgroup
		[[ -f $base/cgroup.controllers ]] || { skip "no cgroup v2 hierarchy here"; return 1; }
		FZ_STATE=cgroup.freeze FZ_PROCS=cgroup.procs
	fi
	FZ_CG=$base/stasis-test-$$-$RANDOM
	mkdir "$FZ_CG" || { fail "harness: can't make $FZ_CG"; return 1; }
	[[ -f $FZ_CG/$FZ_STATE ]] || { rmdir "$FZ_CG"; skip "no $FZ_STATE in a new $1 cgroup"; return 1; }
	T_CGS+=("$FZ_CG")
}

# Is the cgroup frozen (v1 FROZEN, v2 "frozen 1")?
fz_frozen() {
	if [[ $FZ_STATE == freezer.state ]]; then
		[[ $(cat "$FZ_CG/freezer.state") == FROZEN ]]
	else
		grep -qx "frozen 1" "$FZ_CG/cgroup.events"
	fi
}
fz_freeze() { echo "$([[ $FZ_STATE == freezer.state ]] && echo FROZEN || echo 1)" > "$FZ_CG/$FZ_STATE"; }
fz_thaw() { echo "$([[ $FZ_STATE == freezer.state ]] && echo THAWED || echo 0)" > "$FZ_CG/$FZ_STATE"; }

# Each of the cgroup's processes, then the cgroup.
fz_cleanup() {
	local cg p
	for cg in "${T_CGS[@]}"; do
		[[ -d $cg ]] || continue
		fz_thaw_dir "$cg"
		for p in $(cat "$cg/cgroup.procs" 2> /dev/null); do kill -9 "$p" 2> /dev/null; done
		wait_until 5 cg_empty "$cg"
		rmdir "$cg" 2> /dev/null || note "cleanup: can't remove $cg"
	done
}
fz_thaw_dir() {
	[[ -f $1/freezer.state ]] && echo THAWED > "$1/freezer.state"
	[[ -f $1/cgroup.freeze ]] && echo 0 > "$1/cgroup.freeze"
	return 0
}
cg_empty() { [[ -z $(cat "$1/cgroup.procs" 2> /dev/null) ]]; }

# The counter (a shell forking a sleep 20 times a second) and an outsider
# (a sleep of the cgroup that is not of the tree) in the cgroup.
fz_start() {
	start_prog counter sh -c 'i=0; while :; do i=$((i+1)); echo $i; sleep 0.05; done'
	FZ_PID=$PROG_PID
	echo "$FZ_PID" > "$FZ_CG/$FZ_PROCS"
	start_prog outsider sleep 1000
	FZ_OUT=$PROG_PID
	echo "$FZ_OUT" > "$FZ_CG/$FZ_PROCS"
	wait_until "$TMO" has_lines "$T_LOG/counter.out" 5 || { fail "the counter printed nothing"; return 1; }
}

counts_on() {
	local n
	n=$(line_count "$T_LOG/counter.out")
	wait_until "$TMO" has_lines "$T_LOG/counter.out" $((n + 5))
}

# --freeze-cgroup: the cgroup is left as it was found (thawed, or frozen),
# after a dump left running, a dump refused at post-dump (the tree runs
# on, untraced) and a dump that kills the tree (restored, it counts on
# with no gap); the cgroup's task outside the tree is never harmed.
test_freeze_cgroup() {
	local ver=$1 n
	T_CGS=()
	freezer_cg "$ver" || return
	fz_start || { fz_cleanup; return; }
	dump dump1 "$FZ_PID" "$T_WORK/img1" -R --freeze-cgroup "$FZ_CG" || { fz_cleanup; return; }
	grep -q "freeze-cgroup $FZ_CG: cgroup v${ver#v} freezer, freezing it" "$T_LOG/dump1.log" ||
		fail "dump1: the log does not say it froze $FZ_CG" "$T_LOG/dump1.log"
	fz_frozen && fail "the cgroup is frozen after a dump left running"
	runs_freely "$FZ_PID" && runs_freely "$FZ_OUT" || fail "the tree or the outsider does not run freely after dump1"
	counts_on || fail "the counter stopped after dump1"

	fz_freeze
	wait_until "$TMO" fz_frozen || fail "harness: the cgroup would not freeze"
	dump dump2 "$FZ_PID" "$T_WORK/img2" -R --freeze-cgroup "$FZ_CG" || { fz_cleanup; return; }
	fz_frozen || fail "a cgroup found frozen was thawed by the dump"
	fz_thaw
	counts_on || fail "the counter stopped after dump2 and a thaw"

	# a post-dump action that says no: the dump fails after the seize
	printf '#!/bin/sh\n[ "$CRTOOLS_SCRIPT_ACTION" != post-dump ]\n' > "$T_WORK/veto.sh"
	chmod +x "$T_WORK/veto.sh"
	mkdir -p "$T_WORK/img3"
	"$STASIS" dump -t "$FZ_PID" -D "$T_WORK/img3" -o dump3.log -v4 --freeze-cgroup "$FZ_CG" \
		--action-script "$T_WORK/veto.sh" > /dev/null 2> "$T_LOG/dump3.stderr" < /dev/null &&
		fail "a dump vetoed at post-dump succeeded"
	fz_frozen && fail "the cgroup is frozen after a failed dump"
	runs_freely "$FZ_PID" && runs_freely "$FZ_OUT" || fail "the tree or the outsider does not run freely after a failed dump"
	counts_on || fail "the counter stopped after the failed dump"

	dump dump4 "$FZ_PID" "$T_WORK/img4" --freeze-cgroup "$FZ_CG" || { fz_cleanup; return; }
	expect_killed "$FZ_PID" || { fz_cleanup; return; }
	runs_freely "$FZ_OUT" || fail "the outsider does not run freely after a dump that killed the tree"
	n=$(line_count "$T_LOG/counter.out")
	restore_detached restore "$T_WORK/img4" "$FZ_PID" "$(command -v sh | xargs readlink -f)" 0 || { fz_cleanup; return; }
	wait_until "$TMO" has_lines "$T_LOG/counter.out" $((n + 10)) || fail "the counter did not go on after the restore"
	fz_cleanup
	kill_leftovers
	check_sequence "$T_LOG/counter.out"
}
run_test runtime.freeze_cgroup_v1 test_freeze_cgroup v1
run_test runtime.freeze_cgroup_v2 test_freeze_cgroup v2

# A tree caught by the freeze inside vfork() (vfork_exec: its child
# sleeps 300 ms before its exec): the child is left to run to its exec,
# the parent then stops, and the dump succeeds; the tree runs on. (The
# counter above, a shell, is caught so now and then on a loaded machine:
# its dump failed, the parent never left vfork.) Dumped again, at most 3
# times, when the freeze came in the moment between two rounds.
test_freeze_cgroup_vfork() {
	local pid n try
	T_CGS=()
	freezer_cg "$1" || return
	start_prog vfork_exec "$BIN/vfork_exec"
	pid=$PROG_PID
	echo "$pid" > "$FZ_CG/$FZ_PROCS"
	wait_ready vfork_exec "$pid" || { fz_cleanup; return; }
	for try in 1 2 3; do
		dump dump "$pid" "$T_WORK/img$try" -R --freeze-cgroup "$FZ_CG" || { fz_cleanup; return; }
		grep -q "is a vfork() child: left to run to its exec" "$T_LOG/dump.log" && break
		note "try $try: the freeze did not catch the tree inside vfork()"
	done
	grep -q "is a vfork() child: left to run to its exec" "$T_LOG/dump.log" ||
		{ fail "the freeze did not catch the tree inside vfork() in 3 tries" "$T_LOG/dump.log"; fz_cleanup; return; }
	runs_freely "$pid" || fail "the tree does not run freely after the dump"
	n=$(line_count "$T_LOG/vfork_exec.out")
	wait_until "$TMO" has_lines "$T_LOG/vfork_exec.out" $((n + 3)) || fail "no round after the dump"
	kill -USR1 "$pid"
	wait_child "$pid"
	fz_cleanup
	check_output vfork_exec
}
run_test runtime.freeze_cgroup_vfork_v1 test_freeze_cgroup_vfork v1
run_test runtime.freeze_cgroup_vfork_v2 test_freeze_cgroup_vfork v2

# ---- RPC: what runc sends ----

# freeze_cgroup and config_file over RPC, as runc sends them: a missing
# config_file is ignored (runc's /etc/criu/runc.conf), one that exists is
# read as --config is, and its refused option fails the dump in one line
# that names the file, the tree running on.
test_rpc_runc_opts() {
	local rc pid
	T_CGS=()
	freezer_cg v1 || freezer_cg v2 || return
	fz_start || { fz_cleanup; return; }
	pid=$FZ_PID
	mkdir -p "$T_WORK/img1" "$T_WORK/img2" "$T_WORK/img3"
	rc=$(rt_run d1 dump "$pid" "$T_WORK/img1" --freeze-cgroup "$FZ_CG" --config-file /nonexistent/runc.conf --leave-running)
	grep -q "^dump ok" "$T_LOG/d1.out" || fail "freeze_cgroup and a missing config_file: $(cat "$T_LOG/d1.out")" "$T_WORK/img1/dump.log"
	grep -q "freeze-cgroup $FZ_CG: .* threads seized while frozen" "$T_WORK/img1/dump.log" ||
		fail "the dump did not freeze $FZ_CG" "$T_WORK/img1/dump.log"
	fz_frozen && fail "the cgroup is frozen after the RPC dump"
	counts_on || fail "the counter stopped after the RPC dump"

	printf '# runc.conf\nfile-locks\nghost-limit 2M\n' > "$T_WORK/runc.conf"
	rc=$(rt_run d2 dump "$pid" "$T_WORK/img2" --config-file "$T_WORK/runc.conf" --leave-running)
	grep -q "^dump ok" "$T_LOG/d2.out" || fail "an existing config_file: $(cat "$T_LOG/d2.out")" "$T_WORK/img2/dump.log"
	grep -q "applying the options of config_file $T_WORK/runc.conf" "$T_WORK/img2/dump.log" ||
		fail "the config_file was not read" "$T_WORK/img2/dump.log"

	printf 'stream\n' > "$T_WORK/bad.conf"
	rc=$(rt_run d3 dump "$pid" "$T_WORK/img3" --config-file "$T_WORK/bad.conf" --leave-running)
	grep -q "^dump failed .*config_file $T_WORK/bad.conf" "$T_LOG/d3.out" ||
		fail "a refused option in config_file: $(cat "$T_LOG/d3.out")" "$T_WORK/img3/dump.log"
	[[ ! -e $T_WORK/img3/inventory.img ]] || fail "the refused dump wrote an inventory.img"
	runs_freely "$pid" || fail "the tree does not run freely after the refused dump"
	fz_cleanup
}
run_test runtime.rpc_runc_opts test_rpc_runc_opts

# A pty slave whose master is outside the tree (a container's console):
# dumped with orphan_pts_master, restored on a new pair whose master comes
# to the client with the orphan-pts-master notification; the program
# answers through it, on its controlling terminal.
test_rpc_orphan_pts() {
	local rc pid
	mkdir -p "$T_WORK/img"
	rc=$(rt_run pty pty "$T_WORK/img")
	pid=$(awk '$1 == "restored" { print $2 }' "$T_LOG/pty.out")
	[[ -n $pid ]] && T_PIDS+=("$pid")
	grep -q "^PASS" "$T_LOG/pty.out" || fail "orphan pts: $(grep -m1 FAIL "$T_LOG/pty.out" || tail -1 "$T_LOG/pty.err")" \
		"$T_WORK/img/restore.log"
	grep -q "^stages .*orphan-pts-master.*post-restore" "$T_LOG/pty.out" ||
		fail "stages: $(grep stages "$T_LOG/pty.out")"
}
run_test runtime.rpc_orphan_pts test_rpc_orphan_pts

# VERSION as go-criu (runc, podman) and libcriu (crun) compute it: at
# least crun's 31500, the highest any of them asks.
test_rpc_version_runtimes() {
	local rc v
	rc=$(rt_run v version)
	v=$(awk '$1 == "version" { print $2 }' "$T_LOG/v.out")
	[[ -n $v ]] && ((v >= 31500)) || fail "VERSION reads as '$v' to runc/crun/podman, want >= 31500" "$T_LOG/v.err"
}
run_test runtime.rpc_version test_rpc_version_runtimes

# ---- runc and crun ----

# The runtime the rt_ helpers drive, set by rt_use: RT its name, RT_CMD
# the command line that runs it with stasis as its criu, its state under
# T_WORK.
RT= RT_CMD=()

# rt_use runc|crun.
#   runc: `--criu stasis` (runc starts its criu by path).
#   crun: a crun built with checkpoint support (scripts/build-crun.sh) finds
#   libcriu.so.2 on LD_LIBRARY_PATH (the build tree's, libstasis), which
#   starts `stasis swrk` from PATH. crun refuses a hybrid cgroup layout (a
#   v2 hierarchy with controllers beside v1's, as on the test machine): it
#   runs in a mount namespace of its own without the v2 mount, where it
#   sees v1 alone, as the README tells users to do (crun_no_v2).
rt_use() {
	RT=$1
	case $RT in
	runc) RT_CMD=(runc --root "$T_WORK/runc-state" --criu "$STASIS") ;;
	crun) RT_CMD=(env LD_LIBRARY_PATH="$ROOT/build/lib" PATH="$(dirname "$STASIS"):$PATH"
		unshare -m sh -c "$CRUN_NO_V2" crun "$(crun_bin)" --root "$T_WORK/crun-state") ;;
	esac
}

# Runs "$@" without the v2 cgroup mount in the hybrid layout (sh -c, in a
# new mount namespace).
CRUN_NO_V2='! mountpoint -q /sys/fs/cgroup/unified || umount /sys/fs/cgroup/unified || exit 1; exec "$@"'

rt_cli() { "${RT_CMD[@]}" "$@"; }

# rt_bundle DIR: a bundle of Debian's static busybox (the runtime's own
# `spec`) whose process counts on stdout (RT_TERMINAL=1: on its terminal),
# its root writable (RT_READONLY=1: read-only, as `spec` makes it).
rt_bundle() {
	local b=$1 a
	mkdir -p "$b/rootfs/bin" "$b/rootfs/proc" "$b/rootfs/sys" "$b/rootfs/dev" "$b/rootfs/tmp" "$b/rootfs/etc"
	cp /bin/busybox "$b/rootfs/bin/busybox"
	for a in sh sleep echo cat; do ln -s busybox "$b/rootfs/bin/$a"; done
	(cd "$b" && rt_cli spec) || { fail "harness: $RT spec failed"; return 1; }
	"$PYTHON" - "$b/config.json" "${RT_TERMINAL:-0}" "${RT_READONLY:-0}" <<-'EOF'
	import json, sys
	c = json.load(open(sys.argv[1]))
	c["process"]["terminal"] = sys.argv[2] == "1"
	c["process"]["args"] = ["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i; sleep 0.05; done"]
	c["root"]["readonly"] = sys.argv[3] == "1"
	json.dump(c, open(sys.argv[1], "w"), indent=1)
	EOF
}

RT_ID=
rt_cleanup() {
	[[ -n $RT_ID ]] || return 0
	rt_cli kill "$RT_ID" KILL > /dev/null 2>&1
	wait_until 5 rt_stopped
	rt_cli delete -f "$RT_ID" > /dev/null 2>&1
	RT_ID=
}
rt_state() { rt_cli state "$RT_ID" 2> /dev/null | "$PYTHON" -c "import json,sys; print(json.load(sys.stdin)['$1'])" 2> /dev/null; }
rt_stopped() { [[ $(rt_state status) != running ]]; }
rt_pid() { rt_state pid; }

# rt_start: the counting container RT_ID, its output in T_LOG/ct.out
# (through a pipe, or RT_TERMINAL=1: a console socket's file).
rt_start() {
	RT_ID=stasis-test-$$-$RANDOM
	rt_bundle "$T_WORK/bundle" || return 1
	if [[ ${RT_TERMINAL:-0} == 1 ]]; then
		"$PYTHON" "$ROOT/tests/py/console_sock.py" "$T_WORK/console.sk" "$T_LOG/ct.out" < /dev/null &
		T_PIDS+=($!)
		wait_until "$TMO" test -S "$T_WORK/console.sk"
		(cd "$T_WORK/bundle" && rt_cli run -d --console-socket "$T_WORK/console.sk" "$RT_ID") \
			> "$T_LOG/run.out" 2>&1 < /dev/null
	else
		# stdout and stderr one pipe, whose other end is outside (as a
		# runtime's log pipe): restore gives its own stdout for it
		(cd "$T_WORK/bundle" && rt_cli run -d "$RT_ID" 2>&1 < /dev/null | cat > "$T_LOG/ct.out") &
	fi
	wait_until "$TMO" has_lines "$T_LOG/ct.out" 5 ||
		{ fail "the container did not count: $(tail -1 "$T_LOG/run.out" 2> /dev/null)" "$T_LOG/ct.out"; return 1; }
}

# rt_checkpoint TAG ARGS...: RT checkpoint; its images in T_WORK/TAG.
rt_checkpoint() {
	local tag=$1
	shift
	note "$RT checkpoint $* $RT_ID"
	timeout -k 5 $((TMO * 3)) "${RT_CMD[@]}" checkpoint --image-path "$T_WORK/$tag" "$@" "$RT_ID" \
		> "$T_LOG/$tag.out" 2>&1 < /dev/null ||
		{ fail "$RT checkpoint $*: $(grep -m1 'Error' "$T_WORK/$tag/dump.log" 2> /dev/null || tail -1 "$T_LOG/$tag.out")" \
			"$T_WORK/$tag/dump.log"; return 1; }
	rt_quiet "$T_LOG/$tag.out"
}

# rt_restore TAG: RT restore -d from T_WORK/TAG; the output goes on in
# T_LOG/ct2.out (its stdout stands for the container's pipe).
rt_restore() {
	local tag=$1 args=()
	[[ ${RT_TERMINAL:-0} == 1 ]] && args=(--console-socket "$T_WORK/console.sk")
	note "$RT restore $RT_ID from $tag"
	(cd "$T_WORK/bundle" && timeout -k 5 $((TMO * 3)) "${RT_CMD[@]}" \
		restore -d --image-path "$T_WORK/$tag" "${args[@]}" "$RT_ID") > "$T_LOG/ct2.out" 2> "$T_LOG/$tag-restore.err" < /dev/null ||
		{ fail "$RT restore: $(grep -m1 'Error' "$T_WORK/$tag/restore.log" 2> /dev/null || tail -1 "$T_LOG/$tag-restore.err")" \
			"$T_WORK/$tag/restore.log"; return 1; }
	rt_quiet "$T_LOG/$tag-restore.err"
}

# A good checkpoint or restore says nothing: crun passes on what its criu
# prints (stasis's children's complaints reached the user through it).
rt_quiet() { [[ ! -s $1 ]] || fail "$RT printed: $(head -1 "$1")" "$1"; }

# The container's whole output, across the checkpoint: 1, 2, 3, ...
rt_check_count() {
	cat "$T_LOG/ct.out" "$T_LOG/ct2.out" > "$T_LOG/all.out" 2> /dev/null
	check_sequence "$T_LOG/all.out"
}

rt_counts_on() {
	local f=${1:-$T_LOG/ct2.out} n
	n=$(line_count "$f")
	wait_until "$TMO" has_lines "$f" $((n + 10))
}

# Each test below takes the runtime (rt_use) as its argument.

# checkpoint (the container stops) and restore: it counts on, no gap.
test_rt_counter() {
	rt_use "$1"
	rt_start || { rt_cleanup; return; }
	rt_checkpoint img || { rt_cleanup; return; }
	rt_stopped || fail "the container runs on after $RT checkpoint"
	rt_restore img || { rt_cleanup; return; }
	rt_counts_on || fail "the restored container does not count" "$T_WORK/img/restore.log"
	rt_cleanup
	kill_leftovers
	rt_check_count
}
run_test --needs runc runtime.runc_counter test_rt_counter runc
run_test --needs crun-built runtime.crun_counter test_rt_counter crun

# The same with the root read-only (crun's spec's default; CRIU 4.2's
# restore of it fails: README).
test_rt_readonly_root() {
	local RT_READONLY=1
	test_rt_counter "$1"
}
run_test --needs crun-built runtime.crun_readonly_root test_rt_readonly_root crun

# --leave-running: the container counts on; stopped and restored, the
# restored one goes on from where the checkpoint was taken.
test_rt_leave_running() {
	local at first
	rt_use "$1"
	rt_start || { rt_cleanup; return; }
	rt_checkpoint img --leave-running || { rt_cleanup; return; }
	at=$(line_count "$T_LOG/ct.out")
	rt_counts_on "$T_LOG/ct.out" || fail "the container stopped counting after checkpoint --leave-running"
	rt_cli kill "$RT_ID" KILL > /dev/null 2>&1
	wait_until "$TMO" rt_stopped
	rt_cli delete -f "$RT_ID" > /dev/null 2>&1
	rt_restore img || { rt_cleanup; return; }
	rt_counts_on || fail "the restored container does not count" "$T_WORK/img/restore.log"
	rt_cleanup
	kill_leftovers
	first=$(head -1 "$T_LOG/ct2.out")
	[[ $first =~ ^[0-9]+$ ]] && ((first > 1 && first <= at + 1)) ||
		fail "the restored counter starts at '$first', not after the checkpoint (at most $((at + 1)))"
	cp "$T_LOG/ct2.out" "$T_LOG/rest.out"
	awk -v f="$first" '{ if ($0 != f + NR - 1) { print "line " NR ": " $0; exit 1 } }' "$T_LOG/rest.out" ||
		fail "the restored counter skips or repeats: $(awk -v f="$first" '$0 != f + NR - 1 { print; exit }' "$T_LOG/rest.out")"
}
run_test --needs runc runtime.runc_leave_running test_rt_leave_running runc
run_test --needs crun-built runtime.crun_leave_running test_rt_leave_running crun

# Lazy migration as runc does it (`checkpoint --lazy-pages --page-server
# ADDR:PORT --status-fd FD`, then on the other side a lazy-pages daemon
# and `restore --lazy-pages`): runc's criu serves the frozen container's
# memory, says so with a byte on FD, and runc's checkpoint ends once the
# other side's daemon has every page. Here the other side is a copy of
# the images, a second runc state directory and another container id;
# the copy counts on from where the checkpoint stopped the container.
test_runc_lazy_migration() {
	local port rc id2=stasis-test-$$-$RANDOM-b
	rt_use runc
	rt_start || { rt_cleanup; return; }
	port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	mkfifo "$T_WORK/status"
	note "runc checkpoint --lazy-pages --page-server 127.0.0.1:$port --status-fd 3 $RT_ID (in the background)"
	timeout -k 5 $((TMO * 4)) runc --root "$T_WORK/runc-state" --criu "$STASIS" checkpoint --lazy-pages \
		--page-server "127.0.0.1:$port" --status-fd 3 --image-path "$T_WORK/img" "$RT_ID" \
		3> "$T_WORK/status" > "$T_LOG/ck.out" 2>&1 < /dev/null &
	local ck=$!
	T_PIDS+=("$ck")
	[[ $(timeout "$TMO" head -c1 "$T_WORK/status" | od -An -tx1 | tr -d ' ') == 00 ]] ||
		{ fail "runc checkpoint --lazy-pages: no byte on --status-fd: $(tail -1 "$T_LOG/ck.out")" "$T_WORK/img/dump.log"; rt_cleanup; return; }
	cp -a "$T_WORK/img" "$T_WORK/img2"
	rc=$(stasis lazy lazy-pages -D "$T_WORK/img2" --page-server --address 127.0.0.1 --port "$port" -d \
		--pidfile "$T_WORK/lazy.pid")
	[[ $rc == 0 ]] || { fail "lazy-pages --page-server exited $(rc_text "$rc")" "$T_LOG/lazy.log"; rt_cleanup; return; }
	T_PIDS+=("$(pidfile_pid "$T_WORK/lazy.pid")")
	(cd "$T_WORK/bundle" && timeout -k 5 $((TMO * 3)) runc --root "$T_WORK/runc-state2" --criu "$STASIS" \
		restore -d --lazy-pages --image-path "$T_WORK/img2" "$id2") > "$T_LOG/ct2.out" 2> "$T_LOG/restore.err" < /dev/null ||
		fail "runc restore --lazy-pages: $(tail -1 "$T_LOG/restore.err")" "$T_WORK/img2/restore.log"
	rt_counts_on || fail "the restored container does not count" "$T_WORK/img2/restore.log"
	restore_was_lazy_log "$T_WORK/img2/restore.log"
	wait_child "$ck" "$TMO"
	[[ $CHILD_RC == 0 ]] || fail "runc checkpoint --lazy-pages exited $CHILD_RC: $(tail -1 "$T_LOG/ck.out")" "$T_WORK/img/dump.log"
	grep -q "lazy pages: the daemon is done" "$T_WORK/img/dump.log" ||
		fail "the source did not serve the daemon to the end" "$T_WORK/img/dump.log"
	rt_stopped || fail "the source container runs on after the lazy checkpoint"
	runc --root "$T_WORK/runc-state2" kill "$id2" KILL > /dev/null 2>&1
	wait_until 5 not_running "$(pidfile_pid "$T_WORK/lazy.pid")"
	runc --root "$T_WORK/runc-state2" delete -f "$id2" > /dev/null 2>&1
	rt_cleanup
	kill_leftovers
	rt_check_count
}
run_test --needs runc runtime.runc_lazy_migration test_runc_lazy_migration

# A container with a terminal: its console's master is the runtime's (the
# console socket's), so checkpoint sends orphan_pts_master; at restore the
# new master reaches the console socket and the count goes on through it.
test_rt_terminal() {
	local RT_TERMINAL=1
	rt_use "$1"
	rt_start || { rt_cleanup; return; }
	rt_checkpoint img || { rt_cleanup; return; }
	rt_restore img || { rt_cleanup; return; }
	rt_counts_on "$T_LOG/ct.out" || fail "no count through the new console" "$T_WORK/img/restore.log"
	rt_cleanup
	kill_leftovers
	check_sequence "$T_LOG/ct.out"
}
run_test --needs runc runtime.runc_terminal test_rt_terminal runc
run_test --needs crun-built runtime.crun_terminal test_rt_terminal crun

# --pre-dump, then a checkpoint on top of it (--parent-path), then restore.
test_rt_predump() {
	rt_use "$1"
	rt_start || { rt_cleanup; return; }
	rt_checkpoint pre --pre-dump || { rt_cleanup; return; }
	rt_counts_on "$T_LOG/ct.out" || fail "the container stopped counting after the pre-dump"
	rt_checkpoint img --parent-path ../pre || { rt_cleanup; return; }
	rt_restore img || { rt_cleanup; return; }
	rt_counts_on || fail "the restored container does not count" "$T_WORK/img/restore.log"
	rt_cleanup
	kill_leftovers
	rt_check_count
}
run_test --needs runc runtime.runc_predump test_rt_predump runc
run_test --needs crun-built runtime.crun_predump test_rt_predump crun

# ---- podman ----

# podman with its own storage under T_WORK (vfs: no overlay on overlay),
# runc as its runtime and stasis as runc's criu (`criu` on PATH: podman
# and runc look it up there).
pm() {
	PATH=$T_WORK/bin:$PATH podman --root "$T_WORK/storage" --runroot "$T_WORK/run" --storage-driver vfs \
		--runtime runc --cgroup-manager cgroupfs "$@"
}

pm_setup() {
	mkdir -p "$T_WORK/bin" "$T_WORK/rootfs/bin"
	ln -s "$STASIS" "$T_WORK/bin/criu"
	cp /bin/busybox "$T_WORK/rootfs/bin/busybox"
	for a in sh sleep echo cat; do ln -s busybox "$T_WORK/rootfs/bin/$a"; done
	tar -C "$T_WORK/rootfs" -c . | pm import - localhost/stasis-busybox > "$T_LOG/import.out" 2>&1 ||
		{ fail "harness: podman import failed" "$T_LOG/import.out"; return 1; }
	PM_ID=stasis-test-$$-$RANDOM
	# podman would raise RLIMIT_NOFILE (and NPROC) past a hard limit root
	# may not raise where it lacks CAP_SYS_RESOURCE: ours instead
	pm run -d --ulimit "nofile=$(ulimit -Sn):$(ulimit -Hn)" --ulimit nproc=4096:4096 --name "$PM_ID" localhost/stasis-busybox sh -c \
		'i=0; while :; do i=$((i+1)); echo $i; sleep 0.05; done' > "$T_LOG/pm-run.out" 2>&1 ||
		{ fail "podman run failed: $(tail -1 "$T_LOG/pm-run.out")"; return 1; }
	wait_until "$TMO" pm_has_lines 5 || { fail "the podman container did not count"; return 1; }
}
pm_lines() { pm logs "$PM_ID" 2> /dev/null | wc -l; }
pm_has_lines() { (($(pm_lines) >= $1)); }
pm_cleanup() {
	local f
	# stasis's logs, before podman removes them with the container
	for f in "$T_WORK"/storage/vfs-containers/*/userdata/{dump,restore}.log; do
		[[ -f $f ]] && cp "$f" "$T_LOG/pm-$(basename "$f")"
	done
	[[ -n ${PM_ID:-} ]] && pm rm -f "$PM_ID" > /dev/null 2>&1
	pm rmi -f localhost/stasis-busybox > /dev/null 2>&1
	PM_ID=
}
pm_counts_on() {
	local n
	n=$(pm_lines)
	wait_until "$TMO" pm_has_lines $((n + 10))
}

# podman container checkpoint / restore (its default network): the
# container counts on, as its log shows, no gap.
test_podman_checkpoint() {
	pm_setup || { pm_cleanup; return; }
	pm container checkpoint --keep "$PM_ID" > "$T_LOG/ckpt.out" 2>&1 ||
		{ fail "podman container checkpoint: $(tail -1 "$T_LOG/ckpt.out")"; pm_cleanup; return; }
	pm container restore --keep "$PM_ID" > "$T_LOG/rst.out" 2>&1 ||
		{ fail "podman container restore: $(tail -1 "$T_LOG/rst.out")"; pm_cleanup; return; }
	pm_counts_on || fail "the restored podman container does not count"
	pm logs "$PM_ID" > "$T_LOG/pm.out" 2>&1
	pm_cleanup
	check_sequence "$T_LOG/pm.out"
}
run_test --needs podman runtime.podman_checkpoint test_podman_checkpoint

# The migration path: --export to a tarball, the container removed,
# --import of the tarball; it counts on from where it was.
test_podman_export() {
	local last first
	pm_setup || { pm_cleanup; return; }
	pm container checkpoint --export "$T_WORK/ckpt.tar.gz" "$PM_ID" > "$T_LOG/ckpt.out" 2>&1 ||
		{ fail "podman container checkpoint --export: $(tail -1 "$T_LOG/ckpt.out")"; pm_cleanup; return; }
	pm logs "$PM_ID" > "$T_LOG/before.out" 2>&1
	last=$(tail -1 "$T_LOG/before.out")
	pm rm -f "$PM_ID" > /dev/null 2>&1
	pm container restore --import "$T_WORK/ckpt.tar.gz" > "$T_LOG/rst.out" 2>&1 ||
		{ fail "podman container restore --import: $(tail -1 "$T_LOG/rst.out")"; pm_cleanup; return; }
	pm_counts_on || fail "the imported container does not count"
	pm logs "$PM_ID" > "$T_LOG/pm.out" 2>&1
	pm_cleanup
	# (whether the log kept the lines before the export is podman's affair)
	awk -v s=$((last + 1)) 'f == 0 && $0 == s { f = 1; n = s; next }
		f { n++; if ($0 != n) { bad = 1; exit } }
		END { exit !(f && !bad) }' "$T_LOG/pm.out" ||
		fail "the imported container does not count on from $last, one by one" "$T_LOG/pm.out"
}
run_test --needs podman runtime.podman_export test_podman_export
