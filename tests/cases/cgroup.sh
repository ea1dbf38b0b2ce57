# cgroups (--manage-cgroups): processes in cgroups of their own with
# limits set, dumped, their cgroups removed, restored: the cgroups are
# made again with their limits and every process is back in its own.
# Cgroup v2 where the machine has it with controllers (Debian 12), else
# the v1 hierarchies of pids, cpu and memory (a v1 host, hybrid or not).

# cg_layout: CG_DIRS (each hierarchy's mount, where the test's cgroups
# go), CG_PROPS (a property per hierarchy, "FILE=V1=V2=V3": its value in
# the three leaves), CG_V2; CG_T: this test's top cgroup name.
cg_layout() {
	local c props=()
	CG_T=stasis-test-$T_NAME-$$
	CG_DIRS=() CG_PROPS=() CG_V2=0
	# v2 without systemd (the test VM): the controllers enabled below the
	# root as systemd does (the root may hold processes all the same)
	if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
		for c in pids memory cpu; do
			grep -qw "$c" /sys/fs/cgroup/cgroup.subtree_control ||
				! grep -qw "$c" /sys/fs/cgroup/cgroup.controllers ||
				echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control 2> /dev/null
		done
	fi
	if [[ -f /sys/fs/cgroup/cgroup.controllers ]] && grep -qw pids /sys/fs/cgroup/cgroup.subtree_control; then
		CG_V2=1
		CG_DIRS=(/sys/fs/cgroup)
		for c in $(cat /sys/fs/cgroup/cgroup.subtree_control); do
			case $c in
			pids) props+=("pids.max=71=72=73") ;;
			memory) props+=("memory.high=$((64 << 20))=$((48 << 20))=$((32 << 20))") ;;
			cpu) props+=("cpu.weight=50=60=70") ;;
			esac
		done
		CG_PROPS=("$(IFS=' '; echo "${props[*]}")")
		return 0
	fi
	for c in pids cpu memory; do
		[[ -f /sys/fs/cgroup/$c/cgroup.procs ]] || continue
		CG_DIRS+=("/sys/fs/cgroup/$c")
		case $c in
		pids) CG_PROPS+=("pids.max=71=72=73") ;;
		cpu) CG_PROPS+=("cpu.shares=500=600=700") ;;
		memory) CG_PROPS+=("memory.soft_limit_in_bytes=$((64 << 20))=$((48 << 20))=$((32 << 20))") ;;
		esac
	done
	((${#CG_DIRS[@]})) && return 0
	# (a seed of another test's goes without)
	((${CG_NOSKIP:-0})) && return 1
	skip "no cgroup v2 with the pids controller, no v1 pids, cpu or memory hierarchy"
}

# The three leaves of the test: a/r, a/b, c (below CG_T; on v2 a cgroup
# with controllers enabled for its children holds no process itself).
CG_LEAVES=(a/r a/b c)

# cg_make: the cgroups, with their properties (on v2 the controllers are
# enabled down to the leaves first).
cg_make() {
	local i h leaf p f vals v2ctl
	for i in "${!CG_DIRS[@]}"; do
		h=${CG_DIRS[$i]}
		mkdir -p "$h/$CG_T/a/r" "$h/$CG_T/a/b" "$h/$CG_T/c" || { fail "can't make cgroups in $h"; return 1; }
		if ((CG_V2)); then
			v2ctl=$(cat "$h/cgroup.subtree_control" | sed 's/\([a-z_]*\)/+\1/g')
			for f in "$h/$CG_T" "$h/$CG_T/a"; do
				echo "$v2ctl" | tr ' ' '\n' | grep -E '^\+(pids|memory|cpu)$' |
					while read -r c; do echo "$c" > "$f/cgroup.subtree_control"; done
			done
		fi
		for p in ${CG_PROPS[$i]}; do
			IFS== read -r -a vals <<< "$p"
			f=${vals[0]} vals=("${vals[@]:1}")
			for leaf in 0 1 2; do
				echo "${vals[$leaf]}" > "$h/$CG_T/${CG_LEAVES[$leaf]}/$f" ||
					{ fail "can't set $f of $h/$CG_T/${CG_LEAVES[$leaf]}"; return 1; }
			done
		done
	done
}

# cg_remove: the test's cgroups, leaves first (their processes gone, or
# going: a killed process leaves its cgroup a moment later).
cg_remove() {
	local h try
	for try in {1..50}; do
		for h in "${CG_DIRS[@]}"; do
			[[ ! -d $h/$CG_T ]] || find "$h/$CG_T" -depth -type d -exec rmdir {} + 2> /dev/null
		done
		for h in "${CG_DIRS[@]}"; do
			[[ ! -d $h/$CG_T ]] || continue 2
		done
		return 0
	done
	fail "can't remove the cgroups $CG_T: $(cat "${CG_DIRS[0]}/$CG_T"/*/cgroup.procs 2> /dev/null | tr '\n' ' ')"
}

# cg_check_props [LEAF_INDEX...]: every property back in these leaves
# (default: all three).
cg_check_props() {
	local i h leaf p f vals got which=("$@")
	((${#which[@]})) || which=(0 1 2)
	for i in "${!CG_DIRS[@]}"; do
		h=${CG_DIRS[$i]}
		for p in ${CG_PROPS[$i]}; do
			IFS== read -r -a vals <<< "$p"
			f=${vals[0]} vals=("${vals[@]:1}")
			for leaf in "${which[@]}"; do
				got=$(cat "$h/$CG_T/${CG_LEAVES[$leaf]}/$f" 2> /dev/null)
				[[ $got == "${vals[$leaf]}" ]] ||
					{ fail "$f of $CG_T/${CG_LEAVES[$leaf]} is '$got' after the restore, was ${vals[$leaf]}"; return 1; }
			done
		done
	done
}

# The cgtree.py arguments: each leaf as a comma list over the hierarchies.
cg_args() {
	local leaf h list
	for leaf in "${CG_LEAVES[@]}"; do
		list=
		for h in "${CG_DIRS[@]}"; do list+=${list:+,}$h/$CG_T/$leaf; done
		echo "$list"
	done
}

# cg_in PID LEAF: PID's cgroup in every hierarchy is the leaf.
cg_in() {
	local pid=$1 leaf=$2 h name
	for h in "${CG_DIRS[@]}"; do
		name=${h##*/}
		((CG_V2)) && name=
		grep -q "^[0-9]*:$name:/$CG_T/$leaf\$" "/proc/$pid/cgroup" ||
			{ fail "pid $pid is not in /$CG_T/$leaf of ${name:-v2}: $(tr '\n' ' ' < "/proc/$pid/cgroup")"; return 1; }
	done
}

# The tree of cgtree.py dumped, its cgroups removed, restored by RESTORER
# (stasis, or CRIU with CRIU_BIN) from a dump by DUMPER.
cg_tree() {
	local dumper=${1:-stasis} restorer=${2:-stasis} pid exe rc members
	cg_layout || return
	cg_remove && cg_make || return
	start_prog cgtree "$PYTHON" -u "$ROOT/tests/progs/cgtree.py" $(cg_args)
	pid=$PROG_PID
	wait_ready cgtree "$pid" || { cg_remove; return 1; }
	mapfile -t members < <(tree_members "$pid")
	((${#members[@]} == 3)) || { fail "cgtree has ${#members[@]} processes, expected 3"; return 1; }
	exe=$(readlink "/proc/$pid/exe")
	mkdir -p "$T_WORK/img"
	if [[ $dumper == criu ]]; then
		timeout -k 5 "$TMO" "$CRIU_BIN" dump -t "$pid" -D "$T_WORK/img" -o "$T_LOG/criu-dump.log" -v4 \
			--manage-cgroups > "$T_LOG/criu-dump.out" 2>&1 < /dev/null ||
			{ fail "CRIU could not dump" "$T_LOG/criu-dump.log"; return 1; }
	else
		dump dump "$pid" "$T_WORK/img" --manage-cgroups || return
	fi
	expect_killed "$pid" || return
	wait_until "$TMO" no_live_pids "${members[@]}" || { fail "cgtree survived its dump"; return 1; }
	cg_remove || return
	if [[ $restorer == criu ]]; then
		timeout -k 5 "$TMO" "$CRIU_BIN" restore -D "$T_WORK/img" -d -o "$T_LOG/criu-restore.log" -v4 \
			--manage-cgroups > "$T_LOG/criu-restore.out" 2>&1 < /dev/null ||
			{ fail "CRIU could not restore stasis's images" "$T_LOG/criu-restore.log"; return 1; }
		wait_until "$TMO" catches_usr1 "$pid" || { fail "restored pid $pid does not catch SIGUSR1"; return 1; }
	else
		restore_detached restore "$T_WORK/img" "$pid" "$exe" 1 --manage-cgroups || return
	fi
	cg_check_props || return
	cg_in "${members[0]}" a/r && cg_in "${members[1]}" a/b && cg_in "${members[2]}" c || return
	kill -USR1 "$pid"
	wait_gone "$pid" "$TMO" || fail "cgtree did not end after SIGUSR1"
	check_output cgtree
	cg_remove
}

# strict refuses cgroups that exist; the tree dumped with --leave-running
# runs on, and nothing is made or left by the failed restore.
test_cg_strict() {
	local pid
	cg_layout || return
	cg_remove && cg_make || return
	start_prog cgtree "$PYTHON" -u "$ROOT/tests/progs/cgtree.py" $(cg_args)
	pid=$PROG_PID
	wait_ready cgtree "$pid" || return
	dump dump "$pid" "$T_WORK/img" --manage-cgroups --leave-running || return
	kill -USR1 "$pid"
	wait_gone "$pid" "$TMO" || fail "cgtree did not end after SIGUSR1"
	check_output cgtree || return
	rc=$(stasis restore restore -D "$T_WORK/img" -d --manage-cgroups=strict)
	[[ $rc != 0 ]] || { fail "restore --manage-cgroups=strict into existing cgroups worked"; return; }
	grep -q "exists (--manage-cgroups=strict" "$T_LOG/restore.log" || fail "no refusal naming strict" "$T_LOG/restore.log"
	! alive "$pid" || fail "pid $pid runs after the refused restore"
	cg_remove
}

# A restore that fails after making cgroups removes them: the same
# images, with one process's pid held by another process.
test_cg_undo() {
	local pid members rc
	cg_layout || return
	cg_remove && cg_make || return
	start_prog cgtree "$PYTHON" -u "$ROOT/tests/progs/cgtree.py" $(cg_args)
	pid=$PROG_PID
	wait_ready cgtree "$pid" || return
	mapfile -t members < <(tree_members "$pid")
	dump dump "$pid" "$T_WORK/img" --manage-cgroups || return
	wait_until "$TMO" no_live_pids "${members[@]}" || { fail "cgtree survived its dump"; return 1; }
	cg_remove || return
	# a broken grandchild core: the restore fails once the cgroups are made
	truncate -s 20 "$T_WORK/img/core-${members[2]}.img"
	forget_checksums "$T_WORK/img"
	rc=$(stasis restore restore -D "$T_WORK/img" -d --manage-cgroups)
	[[ $rc != 0 ]] || { fail "restore of a broken image worked"; return; }
	local h
	for h in "${CG_DIRS[@]}"; do
		[[ ! -d $h/$CG_T ]] || fail "the failed restore left $h/$CG_T: $(find "$h/$CG_T" -type d | tr '\n' ' ')"
	done
	cg_remove
}

# A python multiprocessing pool put in a cgroup by the test (all four
# processes), dumped mid-work: restored, all are in it again and the pool
# finishes its work right.
test_cg_pool() {
	local out=$T_LOG/mp.out pid exe p h
	cg_layout || return
	cg_remove && cg_make || return
	start_prog mp "$PYTHON" -u "$ROOT/tests/progs/mp_pool.py" 3000
	pid=$PROG_PID
	wait_until "$TMO" progress_at_least "$out" 30 || { fail "mp_pool made no progress" "$T_LOG/mp.err"; return; }
	mapfile -t members < <(tree_members "$pid")
	for p in "${members[@]}"; do
		for h in "${CG_DIRS[@]}"; do echo "$p" > "$h/$CG_T/c/cgroup.procs"; done
	done
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" --manage-cgroups || return
	expect_killed "$pid" || return
	wait_until "$TMO" no_live_pids "${members[@]}" || { fail "the pool survived its dump"; return 1; }
	cg_remove || return
	restore_foreground restore "$T_WORK/img"
	wait_restored restore "$pid" "$exe" 0 "$RESTORE_PID" || return
	# only c holds processes: a/r and a/b, empty, are not the pool's
	cg_check_props 2 || return
	for p in "${members[@]}"; do
		! alive "$p" || cg_in "$p" c || return
	done
	wait_child "$RESTORE_PID" $((TMO * 2))
	[[ $CHILD_RC == 0 ]] || fail "foreground restore exited $CHILD_RC (python's status)" "$T_LOG/mp.err"
	has_line "$T_FILES/result.txt" PASS ||
		fail "mp_pool: $(cat "$T_FILES/result.txt" 2>/dev/null || echo "no result.txt")" "$T_LOG/mp.err"
	cg_remove
}

run_test cgroup.tree cg_tree
run_test cgroup.strict test_cg_strict
run_test cgroup.undo test_cg_undo
run_test cgroup.python_pool test_cg_pool
