# The network lock (--network-lock, src/net/netlock.c), as CRIU 4.2:
#  - a tree in our network namespace (host mode): with nftables a table
#    inet CRIU-<run id> from the freeze, kept after a dump that kills the
#    tree, lifted by the restore (right before the tree resumes) and kept
#    by a failed one; lifted when the tree runs on (--leave-running, a
#    failed dump). Its connections are locked one by one: that part needs
#    established TCP connections in the tree, which stasis does not dump
#    yet (the tcp branch).
#  - a tree in a network namespace of its own: the whole namespace drops
#    every packet but CRIU's marked ones, checked from inside it with real
#    connects while the tree is frozen (an action script at post-dump).
# The tables and chains are looked at with nft and iptables.

NL_PORT=8890
NL_NET=$ROOT/tests/progs/netlock_net.py

# An action script that appends, for each stage, "STAGE" and what it
# sees: "tables ..." (nft's CRIU tables in the tree's namespace), and in
# a namespace of the tree's own, at network-lock and post-dump, "probe
# plain=R marked=R" (netlock_net.py) and "chain yes|no" (iptables' CRIU
# chain). It fails (exit 3) at $FAIL_AT.
nl_action_script() {
	NL_SCRIPT=$T_WORK/netlock-action.sh
	NL_LOG=$T_WORK/netlock-action.log
	cat > "$NL_SCRIPT" <<-SCRIPT
	#!/bin/sh
	stage=\$CRTOOLS_SCRIPT_ACTION
	if [ -n "\${NL_NETNS:-}" ] && [ -n "\${CRTOOLS_INIT_PID:-}" ]; then
		run="nsenter --net=/proc/\$CRTOOLS_INIT_PID/ns/net"
	else
		run=
	fi
	{
		echo "\$stage tables \$(\$run nft list tables | grep -o 'CRIU-[0-9a-f-]*' | tr '\n' ' ')"
		# the probes where they tell something (each is a python start:
		# slow in an emulated VM, under the dump's timeout)
		if [ -n "\$run" ] && { [ "\$stage" = network-lock ] || [ "\$stage" = post-dump ]; }; then
			echo "\$stage probe \$(\$run "$PYTHON" "$NL_NET" probe $NL_PORT)"
			\$run iptables -w -S CRIU >/dev/null 2>&1 && echo "\$stage chain yes" || echo "\$stage chain no"
		fi
	} >> "$NL_LOG" 2>&1
	[ "\$stage" = "\${FAIL_AT:-}" ] && exit 3
	exit 0
	SCRIPT
	chmod +x "$NL_SCRIPT"
	: > "$NL_LOG"
}

# nl_seen STAGE WHAT: what the script saw at STAGE ("" if it did not run).
nl_seen() { awk -v s="$1" -v w="$2" '$1 == s && $2 == w { $1 = $2 = ""; sub(/^ +/, ""); print }' "$NL_LOG"; }
nl_stages() { awk '{ print $1 }' "$NL_LOG" | uniq | paste -sd, -; }

# The table of the dump whose log is T_LOG/TAG.log: CRIU-ID, ID the run
# id cut as CRIU 4.2 cuts it (the name is "inet CRIU-" and 21 of it).
nl_run_id() { grep -o 'run id = [0-9a-f-]*' "$T_LOG/$1.log" | head -1 | sed 's/.*= //' | cut -c1-21; }

# nl_has_table [NETNS_PID] ID: nft shows inet CRIU-ID (in that namespace).
nl_has_table() {
	if (($# == 2)); then
		nsenter --net="/proc/$1/ns/net" nft list tables 2>/dev/null | grep -qx "table inet CRIU-$2"
	else
		nft list tables 2>/dev/null | grep -qx "table inet CRIU-$1"
	fi
}

# A counter of one process (a shell's sleep children would leave zombies
# in CRIU's dumps of it, which are not what these tests are about).
nl_counter() {
	start_prog counter "$@" "$PYTHON" -u -c '
import itertools, time
for i in itertools.count(1):
    print(i, flush=True)
    time.sleep(0.02)'
	wait_until "$TMO" has_lines "$T_LOG/counter.out" 5 || { fail "the counter printed nothing"; return 1; }
}

# The inventory's network_lock_method (CRIU's numbers: 0 iptables, 1 nftables, 2 skip).
nl_inventory_method() {
	crit show "$1/inventory.img" 2>/dev/null | awk -F: '/"network_lock_method"/ { gsub(/[ ,]/, "", $2); print $2 }'
}

test_netlock_check() {
	local rc
	rc=$(stasis check check --feature network_lock_nftables)
	[[ $rc == 0 ]] && grep -q "network_lock_nftables is supported" "$T_LOG/check.stdout" ||
		fail "check --feature network_lock_nftables: rc $rc, $(cat "$T_LOG/check.stdout" "$T_LOG/check.stderr")"
}

# Host mode, nftables: the table from the freeze to the restore; a failed
# restore keeps it (and says so), the next one lifts it.
test_netlock_host_nft() {
	local pid exe id rc n
	nl_action_script
	nl_counter || return
	pid=$PROG_PID
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" --network-lock nftables --action-script "$NL_SCRIPT" || return
	expect_killed "$pid" || return
	id=$(nl_run_id dump)
	[[ -n $id ]] || { fail "the dump log names no run id" "$T_LOG/dump.log"; return; }
	[[ $(nl_seen pre-dump tables) != *"CRIU-$id"* ]] || fail "the table CRIU-$id before the freeze"
	[[ $(nl_seen post-dump tables) == *"CRIU-$id"* ]] || fail "post-dump saw no table CRIU-$id: $(nl_seen post-dump tables)"
	nl_has_table "$id" || { fail "the table CRIU-$id is gone after the dump (the tree is dead: it stays for the restore)"; return; }
	[[ $(nl_inventory_method "$T_WORK/img") == 1 ]] || fail "inventory network_lock_method: $(nl_inventory_method "$T_WORK/img"), want 1 (nftables)"

	: > "$NL_LOG"
	rc=$(FAIL_AT=post-restore stasis restore1 restore -D "$T_WORK/img" -d --action-script "$NL_SCRIPT")
	[[ $rc != 0 ]] || { fail "the restore succeeded although post-restore failed"; return; }
	nl_has_table "$id" || fail "a failed restore lifted the lock (table CRIU-$id gone)"
	grep -q "network stays locked (nft table inet CRIU-$id)" "$T_LOG/restore1.stderr" ||
		fail "the failed restore did not say the network stays locked: $(error_message restore1)"
	wait_gone "$pid" "$TMO" || { fail "pid $pid alive after the failed restore"; return; }

	: > "$NL_LOG"
	n=$(line_count "$T_LOG/counter.out")
	restore_detached restore "$T_WORK/img" "$pid" "$exe" 0 --action-script "$NL_SCRIPT" --network-lock skip || return
	[[ $(nl_seen post-restore tables) == *"CRIU-$id"* ]] || fail "post-restore saw no table: $(nl_seen post-restore tables)"
	[[ $(nl_seen pre-resume tables) != *"CRIU-$id"* ]] || fail "the table is still there at pre-resume"
	! nl_has_table "$id" || fail "the table CRIU-$id outlived the restore"
	grep -q "ignored by restore" "$T_LOG/restore.log" || fail "restore did not say it ignores --network-lock"
	wait_until "$TMO" has_lines "$T_LOG/counter.out" $((n + 10)) || fail "the counter did not go on"
	kill_leftovers
	check_sequence "$T_LOG/counter.out"
}

# Host mode, nftables, the tree running on: the lock goes with the dump,
# after a success with --leave-running as after a failure (post-dump).
test_netlock_host_running() {
	local how=$1 pid id rc
	nl_action_script
	nl_counter || return
	pid=$PROG_PID
	if [[ $how == leave-running ]]; then
		dump dump "$pid" "$T_WORK/img" --leave-running --network-lock nftables --action-script "$NL_SCRIPT" || return
	else
		rc=$(FAIL_AT=post-dump stasis dump dump -t "$pid" -D "$T_WORK/img" --network-lock nftables --action-script "$NL_SCRIPT")
		[[ $rc != 0 ]] || { fail "the dump succeeded although post-dump failed"; return; }
	fi
	id=$(nl_run_id dump)
	[[ -n $id ]] || { fail "the dump log names no run id" "$T_LOG/dump.log"; return; }
	[[ $(nl_seen post-dump tables) == *"CRIU-$id"* ]] || fail "post-dump saw no table CRIU-$id: $(nl_seen post-dump tables)"
	! nl_has_table "$id" || fail "the table CRIU-$id outlived a dump that left the tree running"
	runs_freely "$pid" || fail "the counter does not run freely after the dump"
}

# skip: no table at all; the inventory says skip (2).
test_netlock_skip() {
	local pid id
	nl_action_script
	nl_counter || return
	pid=$PROG_PID
	dump dump "$pid" "$T_WORK/img" --leave-running --network-lock skip --action-script "$NL_SCRIPT" || return
	id=$(nl_run_id dump)
	[[ -n $id ]] || { fail "the dump log names no run id" "$T_LOG/dump.log"; return; }
	[[ $(nl_seen post-dump tables) != *"CRIU-$id"* ]] || fail "skip made a table CRIU-$id"
	[[ $(nl_inventory_method "$T_WORK/img") == 2 ]] || fail "inventory network_lock_method: $(nl_inventory_method "$T_WORK/img"), want 2 (skip)"
}

# nl_netns_tree: a server in a network namespace of the test's own, and
# the counter (the tree) in that namespace too. NL_SRV, PROG_PID.
nl_netns_tree() {
	start_prog netsrv unshare -n "$PYTHON" "$NL_NET" serve $NL_PORT
	NL_SRV=$PROG_PID
	wait_ready netsrv "$NL_SRV" || return
	nl_counter nsenter --net="/proc/$NL_SRV/ns/net" || return
	local seen
	seen=$(nsenter --net="/proc/$NL_SRV/ns/net" "$PYTHON" "$NL_NET" probe $NL_PORT)
	[[ $seen == "plain=hello marked=hello" ]] || { fail "harness: the server does not answer: $seen"; return 1; }
}

# A tree with a network namespace of its own, METHOD, the tree left
# running (leave-running) or resumed by a failed dump (failed): frozen,
# the namespace drops what is not marked (a connect times out: no reset)
# and passes what is; after, all flows again, and the lock is gone.
test_netlock_netns() {
	local method=$1 how=$2 pid rc seen
	nl_action_script
	nl_netns_tree || return
	pid=$PROG_PID
	if [[ $how == leave-running ]]; then
		NL_NETNS=1 dump dump "$pid" "$T_WORK/img" --leave-running --network-lock "$method" --action-script "$NL_SCRIPT" || return
	else
		rc=$(NL_NETNS=1 FAIL_AT=post-dump stasis dump dump -t "$pid" -D "$T_WORK/img" --network-lock "$method" --action-script "$NL_SCRIPT")
		[[ $rc != 0 ]] || { fail "the dump succeeded although post-dump failed"; return; }
	fi
	[[ $(nl_stages) == pre-dump,network-lock,post-dump,network-unlock ]] || fail "stages: $(nl_stages)"
	[[ $(nl_seen network-lock probe) == "plain=hello marked=hello" ]] ||
		fail "the network-lock script ran after the lock: $(nl_seen network-lock probe)"
	[[ $(nl_seen post-dump probe) == "plain=timeout marked=hello" ]] ||
		fail "while locked: $(nl_seen post-dump probe), want plain=timeout marked=hello"
	if [[ $method == nftables ]]; then
		[[ -n $(nl_seen post-dump tables) ]] || fail "post-dump: no CRIU table in the namespace"
		# as CRIU: the network-unlock script runs before the unlock
		[[ -n $(nl_seen network-unlock tables) ]] || fail "network-unlock ran after the unlock"
	else
		[[ $(nl_seen post-dump chain) == yes ]] || fail "post-dump: no iptables chain CRIU in the namespace"
	fi
	seen=$(nsenter --net="/proc/$NL_SRV/ns/net" "$PYTHON" "$NL_NET" probe $NL_PORT)
	[[ $seen == "plain=hello marked=hello" ]] || fail "after the dump: $seen"
	[[ -z $(nsenter --net="/proc/$NL_SRV/ns/net" nft list tables | grep CRIU) ]] ||
		fail "a CRIU table is left in the namespace"
	nsenter --net="/proc/$NL_SRV/ns/net" iptables -w -S CRIU > /dev/null 2>&1 && fail "the iptables chain CRIU is left"
	runs_freely "$pid" || fail "the counter does not run freely after the dump"
}

# A tree with a namespace of its own, killed by its dump: the namespace
# (here kept by the server) stays locked for the restore, as CRIU leaves it.
test_netlock_netns_killed() {
	local pid id seen
	nl_action_script
	nl_netns_tree || return
	pid=$PROG_PID
	NL_NETNS=1 dump dump "$pid" "$T_WORK/img" --network-lock nftables --action-script "$NL_SCRIPT" || return
	expect_killed "$pid" || return
	[[ $(nl_stages) == pre-dump,network-lock,post-dump ]] || fail "stages: $(nl_stages)"
	id=$(nl_run_id dump)
	nl_has_table "$NL_SRV" "$id" || fail "the namespace's table CRIU-$id is gone after the dump"
	seen=$(nsenter --net="/proc/$NL_SRV/ns/net" "$PYTHON" "$NL_NET" probe $NL_PORT)
	[[ $seen == "plain=timeout marked=hello" ]] || fail "after the dump: $seen, want still locked"
}

# Over RPC: criu_opts.network_lock, and the network-lock notification
# for a tree with a namespace of its own (vetoed at post-dump: then
# network-unlock too, and the namespace is open again).
test_netlock_rpc() {
	local pid rc id seen
	nl_counter || return
	pid=$PROG_PID
	rc=$(rpc_run dump --bin "$STASIS" dump "$pid" "$T_WORK/img" --network-lock nftables)
	[[ $rc == 0 ]] || { fail "pycriu dump() failed: $(cat "$T_LOG/dump.out")" "$T_WORK/img/dump.log"; return; }
	expect_killed "$pid" || return
	[[ $(nl_inventory_method "$T_WORK/img") == 1 ]] || fail "inventory network_lock_method: $(nl_inventory_method "$T_WORK/img"), want 1"
	id=$(grep -o 'run id = [0-9a-f-]*' "$T_WORK/img/dump.log" | head -1 | sed 's/.*= //' | cut -c1-21)
	nl_has_table "$id" || fail "no table CRIU-$id after the RPC dump"
	rc=$(rpc_run restore --bin "$STASIS" restore "$T_WORK/img")
	[[ $rc == 0 ]] || { fail "pycriu restore() failed: $(cat "$T_LOG/restore.out")" "$T_WORK/img/restore.log"; return; }
	! nl_has_table "$id" || fail "the table CRIU-$id outlived the RPC restore"
	kill_leftovers

	nl_netns_tree || return
	pid=$PROG_PID
	rc=$(RPC_NETWORK_LOCK=nftables rpc_run notify --bin "$STASIS" notify "$pid" "$T_WORK/img2" post-dump)
	[[ $rc == 0 ]] || { fail "notify client failed" "$T_LOG/notify.err"; return; }
	has_line "$T_LOG/notify.out" "stages pre-dump,network-lock,post-dump,network-unlock" ||
		fail "stages told: $(head -1 "$T_LOG/notify.out")"
	seen=$(nsenter --net="/proc/$NL_SRV/ns/net" "$PYTHON" "$NL_NET" probe $NL_PORT)
	[[ $seen == "plain=hello marked=hello" ]] || fail "after the vetoed dump: $seen"
	runs_freely "$pid" || fail "the counter does not run freely after the vetoed dump"
}

# libnftables is loaded only for the nftables lock: without it check
# says the lock is not supported, and a dump asking for it fails with one
# line naming the library, leaving no table and the tree running.
test_netlock_no_libnftables() {
	local pid rc id
	without_lib libnftables.so.1 || return
	rc=$(STASIS=$NOLIB stasis check check --feature network_lock_nftables)
	[[ $rc != 0 ]] && grep -q "network_lock_nftables is not supported" "$T_LOG/check.stdout" ||
		{ fail "check without libnftables: rc $rc, $(cat "$T_LOG/check.stdout" "$T_LOG/check.stderr")"; return; }
	nl_counter || return
	pid=$PROG_PID
	rc=$(STASIS=$NOLIB stasis dump dump -t "$pid" -D "$T_WORK/img" --network-lock nftables)
	[[ $rc != 0 ]] || { fail "the nftables lock without libnftables went through"; return; }
	[[ $(grep -c . "$T_LOG/dump.stderr") == 1 ]] &&
		grep -q "^Error: can't load libnftables.so.1, needed for the nftables network lock" "$T_LOG/dump.stderr" ||
		{ fail "not one line naming libnftables: $(cat "$T_LOG/dump.stderr")"; return; }
	id=$(nl_run_id dump)
	[[ -n $id ]] && ! nl_has_table "$id" || fail "a table CRIU-$id was left (or no run id)"
	runs_freely "$pid" || fail "the counter does not run after the refused dump"
}

run_test netlock.check test_netlock_check
run_test netlock.no_libnftables test_netlock_no_libnftables
run_test netlock.host_nft test_netlock_host_nft
run_test netlock.host_leave_running test_netlock_host_running leave-running
run_test netlock.host_failed_dump test_netlock_host_running failed
run_test netlock.skip test_netlock_skip
run_test netlock.netns_nft test_netlock_netns nftables leave-running
run_test netlock.netns_nft_failed test_netlock_netns nftables failed
run_test netlock.netns_iptables test_netlock_netns iptables leave-running
run_test netlock.netns_iptables_failed test_netlock_netns iptables failed
run_test netlock.netns_killed test_netlock_netns_killed
run_test netlock.rpc test_netlock_rpc

# With CRIU both ways: the run id in inventory.img names the table, so
# CRIU's restore lifts stasis's lock and stasis's restore lifts CRIU's.
test_netlock_criu() {
	local pid exe id rc n
	nl_counter || return
	pid=$PROG_PID
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img1" --network-lock nftables || return
	expect_killed "$pid" || return
	id=$(nl_run_id dump)
	nl_has_table "$id" || { fail "no table CRIU-$id after stasis's dump"; return; }
	timeout -k 5 "$TMO" "$CRIU_BIN" restore -D "$T_WORK/img1" -d -o "$T_LOG/criu-restore.log" -v4 \
		> "$T_LOG/criu-restore.out" 2>&1 < /dev/null
	rc=$?
	[[ $rc == 0 ]] || { fail "CRIU could not restore stasis's images (rc $rc)" "$T_LOG/criu-restore.log"; return; }
	! nl_has_table "$id" || fail "CRIU's restore left stasis's table CRIU-$id"
	mkdir -p "$T_WORK/img2"
	timeout -k 5 "$TMO" "$CRIU_BIN" dump -t "$pid" -D "$T_WORK/img2" --network-lock nftables \
		-o "$T_LOG/criu-dump.log" -v4 > "$T_LOG/criu-dump.out" 2>&1 < /dev/null
	rc=$?
	[[ $rc == 0 ]] || { fail "CRIU could not dump what it restored (rc $rc)" "$T_LOG/criu-dump.log"; return; }
	expect_killed "$pid" || return
	id=$(grep -o 'CRIU run id = [0-9a-f-]*' "$T_LOG/criu-dump.log" | head -1 | sed 's/.*= //' | cut -c1-21)
	nl_has_table "$id" || { fail "no table CRIU-$id after CRIU's dump" "$T_LOG/criu-dump.log"; return; }
	n=$(line_count "$T_LOG/counter.out")
	restore_detached restore "$T_WORK/img2" "$pid" "$exe" 0 || return
	! nl_has_table "$id" || fail "stasis's restore left CRIU's table CRIU-$id"
	wait_until "$TMO" has_lines "$T_LOG/counter.out" $((n + 10)) || fail "the counter did not go on"
	kill_leftovers
	check_sequence "$T_LOG/counter.out"
}
run_test --needs criu interop.criu_netlock test_netlock_criu

# restore --join-ns net:PID|PATH: a tree killed by its dump in a namespace
# the test keeps (the server's) comes back into it; the dump's lock there
# (nftables' table or iptables' chain, over the whole namespace) is lifted
# by that restore (CRIU's way, as zdtm's netns_lock tests do it).
nl_has_chain() { nsenter --net="/proc/$1/ns/net" iptables -w -S CRIU > /dev/null 2>&1; }

test_netlock_join_ns() {
	local form=$1 method=${2:-nftables} pid exe id seen target n
	nl_netns_tree || return
	pid=$PROG_PID
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" --network-lock "$method" || return
	expect_killed "$pid" || return
	id=$(nl_run_id dump)
	if [[ $method == nftables ]]; then
		nl_has_table "$NL_SRV" "$id" || { fail "no table CRIU-$id in the namespace after the dump"; return; }
	else
		nl_has_chain "$NL_SRV" || { fail "no iptables chain CRIU in the namespace after the dump"; return; }
	fi
	if [[ $form == pid ]]; then target=$NL_SRV; else target=/proc/$NL_SRV/ns/net; fi
	n=$(line_count "$T_LOG/counter.out")
	restore_detached restore "$T_WORK/img" "$pid" "$exe" 0 --join-ns "net:$target" || return
	[[ $(readlink "/proc/$pid/ns/net") == "$(readlink "/proc/$NL_SRV/ns/net")" ]] ||
		fail "the restored tree is not in the joined namespace"
	! nl_has_table "$NL_SRV" "$id" || fail "the restore left the namespace locked (table CRIU-$id)"
	! nl_has_chain "$NL_SRV" || fail "the restore left the namespace locked (iptables chain CRIU)"
	! grep -q "Error" "$T_LOG/restore.stderr" || fail "the restore said: $(grep -m1 Error "$T_LOG/restore.stderr")"
	seen=$(nsenter --net="/proc/$NL_SRV/ns/net" "$PYTHON" "$NL_NET" probe $NL_PORT)
	[[ $seen == "plain=hello marked=hello" ]] || fail "after the restore: $seen"
	[[ $(readlink /proc/self/ns/net) != "$(readlink "/proc/$NL_SRV/ns/net")" ]] || fail "harness: we are in the server's namespace"
	wait_until "$TMO" has_lines "$T_LOG/counter.out" $((n + 10)) || fail "the counter did not go on"
	kill_leftovers
	check_sequence "$T_LOG/counter.out"
}

# --join-ns of another kind of namespace: refused by name.
test_netlock_join_other() {
	local rc
	mkdir -p "$T_WORK/img"
	rc=$(stasis restore restore -D "$T_WORK/img" --join-ns uts:/proc/self/ns/uts)
	[[ $rc != 0 ]] || { fail "restore took --join-ns uts"; return; }
	grep -q "join-ns uts: stasis joins only a network namespace" "$T_LOG/restore.stderr" ||
		fail "the refusal does not name the namespace: $(cat "$T_LOG/restore.stderr")"
}

run_test netlock.join_ns_pid test_netlock_join_ns pid
run_test netlock.join_ns_path test_netlock_join_ns path
run_test netlock.join_ns_iptables test_netlock_join_ns path iptables
run_test netlock.join_ns_other test_netlock_join_other
