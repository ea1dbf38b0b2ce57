# Namespaces a tree has of its own (src/ns): a UTS namespace goes with
# the tree (its names saved, a new one made at restore, as CRIU does),
# and a process in a namespace nested in the tree's is refused.

# A shell loop in a UTS namespace of its own, printing a count and the
# names it sees (hostname(1), domainname(1): the names as programs read
# them, through uname()).
start_uts_counter() {
	start_prog counter unshare -u sh -c '
hostname stasis-uts-test && domainname stasis-dom || exit 1
i=0
while :; do i=$((i+1)); echo "$i $(hostname) $(domainname)"; sleep 0.02; done'
	wait_until "$TMO" has_lines "$T_LOG/counter.out" 5 || { fail "the counter printed nothing" "$T_LOG/counter.err"; return 1; }
}

# The lines after the first n all name the tree's own names.
names_kept_after() {
	local n=$1 bad
	bad=$(tail -n +"$((n + 1))" "$T_LOG/counter.out" | grep -v ' stasis-uts-test stasis-dom$' | head -n1)
	[[ -z $bad ]] || fail "after the restore the counter saw the names: $bad" "$T_LOG/counter.out"
}

# The restored root (pid) is in a UTS namespace that is not ours.
own_uts_ns() {
	local pid=$1
	[[ $(readlink "/proc/$pid/ns/uts") != "$(readlink /proc/self/ns/uts)" ]] ||
		fail "pid $pid was restored into our UTS namespace, not one of its own"
}

test_uts_own() {
	local pid n rc host
	host=$(hostname)
	start_uts_counter || return
	pid=$PROG_PID
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	ls "$T_WORK/img"/utsns-*.img > /dev/null 2>&1 || fail "the dump wrote no utsns image" || return
	n=$(line_count "$T_LOG/counter.out")
	rc=$(stasis restore restore -D "$T_WORK/img" -d)
	[[ $rc == 0 ]] || { fail "restore exited $(rc_text "$rc"): $(error_message restore)" "$T_LOG/restore.log"; return; }
	wait_until "$TMO" has_lines "$T_LOG/counter.out" $((n + 5)) || { fail "the counter did not go on"; return; }
	own_uts_ns "$pid"
	[[ $(hostname) == "$host" ]] || fail "our own host name changed to $(hostname)"
	names_kept_after "$n"
	kill_leftovers
	check_sequence <(cut -d' ' -f1 "$T_LOG/counter.out")
}

# Both ways with CRIU: its restore makes the namespace from our images,
# and ours from its images.
test_uts_criu() {
	local pid n rc
	start_uts_counter || return
	pid=$PROG_PID
	dump dump "$pid" "$T_WORK/img1" || return
	expect_killed "$pid" || return
	n=$(line_count "$T_LOG/counter.out")
	timeout -k 5 "$TMO" "$CRIU_BIN" restore -D "$T_WORK/img1" -d -o "$T_LOG/criu-restore.log" -v4 \
		> "$T_LOG/criu-restore.out" 2>&1 < /dev/null
	rc=$?
	[[ $rc == 0 ]] || { fail "CRIU could not restore stasis's images (rc $rc)" "$T_LOG/criu-restore.log"; return; }
	wait_until "$TMO" has_lines "$T_LOG/counter.out" $((n + 5)) || { fail "the counter did not go on under CRIU"; return; }
	own_uts_ns "$pid"
	names_kept_after "$n"
	mkdir -p "$T_WORK/img2"
	timeout -k 5 "$TMO" "$CRIU_BIN" dump -t "$pid" -D "$T_WORK/img2" -o "$T_LOG/criu-dump.log" -v4 \
		> "$T_LOG/criu-dump.out" 2>&1 < /dev/null
	rc=$?
	[[ $rc == 0 ]] || { fail "CRIU could not dump the restored counter (rc $rc)" "$T_LOG/criu-dump.log"; return; }
	wait_gone "$pid" "$TMO" || { fail "pid $pid alive after CRIU's dump"; return; }
	n=$(line_count "$T_LOG/counter.out")
	rc=$(stasis restore restore -D "$T_WORK/img2" -d)
	[[ $rc == 0 ]] || { fail "stasis could not restore CRIU's images (rc $rc): $(error_message restore)" "$T_LOG/restore.log"; return; }
	wait_until "$TMO" has_lines "$T_LOG/counter.out" $((n + 5)) || { fail "the counter did not go on under stasis"; return; }
	own_uts_ns "$pid"
	names_kept_after "$n"
	kill_leftovers
	check_sequence <(cut -d' ' -f1 "$T_LOG/counter.out")
}

# A child in a namespace of its own inside the tree: the dump says which
# process and which kind, and the tree runs on untouched.
test_nested_refused() {
	local kind=$1 flag=$2 pid n rc
	start_prog counter sh -c "unshare $flag sleep 1000 & i=0; while :; do i=\$((i+1)); echo \$i; sleep 0.02; done"
	pid=$PROG_PID
	wait_until "$TMO" has_lines "$T_LOG/counter.out" 5 || { fail "the counter printed nothing"; return; }
	rc=$(stasis dump dump -t "$pid" -D "$T_WORK/img")
	[[ $rc != 0 ]] || { fail "the dump of a tree with a nested $kind namespace succeeded"; return; }
	grep -q "in a $kind namespace other than its root's" "$T_LOG/dump.stderr" ||
		fail "no error naming the nested $kind namespace: $(error_message dump)" || return
	[[ ! -e $T_WORK/img/inventory.img ]] || fail "the refused dump left an inventory.img"
	wait_until 5 runs_freely "$pid" || { fail "the counter does not run freely after the refused dump"; return; }
	n=$(line_count "$T_LOG/counter.out")
	wait_until "$TMO" has_lines "$T_LOG/counter.out" $((n + 5)) || fail "the counter stopped counting"
	kill_leftovers
	check_sequence "$T_LOG/counter.out"
}

run_test ns.uts.own test_uts_own
run_test --needs criu ns.uts.criu test_uts_criu
run_test ns.nested.uts test_nested_refused UTS -u
run_test ns.nested.network test_nested_refused network -n
