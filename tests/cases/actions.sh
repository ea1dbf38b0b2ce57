# Action scripts (--action-script): the stages of dump and restore CRIU
# runs in each situation, in CRIU's order, with CRIU's environment and in
# the work directory; a script failing at a stage undoes what that stage
# allows to undo.

# A script that logs "STAGE INIT_PID IMAGE_DIR CWD" and fails (exit 3) at
# $FAIL_AT; written into T_WORK by make_action_script.
make_action_script() {
	ACTION_SCRIPT=$T_WORK/action.sh
	ACTION_LOG=$T_WORK/actions.log
	cat > "$ACTION_SCRIPT" <<-SCRIPT
	#!/bin/sh
	echo "\$CRTOOLS_SCRIPT_ACTION \${CRTOOLS_INIT_PID:--} \$CRTOOLS_IMAGE_DIR \$(pwd -P)" >> "$ACTION_LOG"
	[ "\$CRTOOLS_SCRIPT_ACTION" = "\${FAIL_AT:-}" ] && exit 3
	exit 0
	SCRIPT
	chmod +x "$ACTION_SCRIPT"
	: > "$ACTION_LOG"
}

action_stages() { awk '{ print $1 }' "$ACTION_LOG" | paste -sd, -; }

# start_action_counter [WRAPPER...]: the counter, run through WRAPPER.
start_action_counter() {
	start_prog counter "$@" sh -c 'i=0; while :; do i=$((i+1)); echo $i; sleep 0.02; done'
	wait_until "$TMO" has_lines "$T_LOG/counter.out" 5 || { fail "the counter printed nothing"; return 1; }
}

test_action_stages() {
	local pid exe stages n
	make_action_script
	start_action_counter || return
	pid=$PROG_PID
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" --action-script "$ACTION_SCRIPT" || return
	expect_killed "$pid" || return
	stages=$(action_stages)
	# no network-lock: the tree shares our network namespace (as CRIU)
	[[ $stages == pre-dump,post-dump ]] || fail "dump stages: $stages"
	local img
	img=$(realpath "$T_WORK/img")
	grep -q "^pre-dump $pid $img $img\$" "$ACTION_LOG" ||
		fail "pre-dump environment and directory: $(head -1 "$ACTION_LOG"), want pid $pid and $img twice"
	: > "$ACTION_LOG"
	n=$(line_count "$T_LOG/counter.out")
	restore_detached restore "$T_WORK/img" "$pid" "$exe" 0 --action-script "$ACTION_SCRIPT" || return
	stages=$(action_stages)
	# no namespace stages: the restore made no namespace (as CRIU)
	[[ $stages == pre-restore,post-restore,pre-resume,post-resume ]] || fail "restore stages: $stages"
	grep -q "^post-restore $pid " "$ACTION_LOG" || fail "post-restore got no CRTOOLS_INIT_PID $pid"
	wait_until "$TMO" has_lines "$T_LOG/counter.out" $((n + 10)) || fail "the counter did not go on"
	kill_leftovers
	check_sequence "$T_LOG/counter.out"
}

# A tree in a network namespace of its own, restored into a new pid
# namespace: now CRIU's network and namespace stages run too.
test_action_stages_ns() {
	local pid stages rc root
	make_action_script
	start_action_counter unshare -n || return
	pid=$PROG_PID
	dump dump "$pid" "$T_WORK/img" --action-script "$ACTION_SCRIPT" || return
	expect_killed "$pid" || return
	stages=$(action_stages)
	[[ $stages == pre-dump,network-lock,post-dump ]] || fail "dump stages: $stages"
	: > "$ACTION_LOG"
	rc=$(stasis restore restore -D "$T_WORK/img" -d --new-pidns --pidfile "$T_WORK/r.pid" --action-script "$ACTION_SCRIPT")
	[[ $rc == 0 ]] || { fail "restore -d --new-pidns exited $(rc_text "$rc"): $(error_message restore)" "$T_LOG/restore.log"; return; }
	root=$(pidfile_pid "$T_WORK/r.pid")
	T_PIDS+=("$root" "$(status_field "$root" PPid)")
	stages=$(action_stages)
	# network-unlock: the restore made the tree's network namespace (CRIU's stage)
	[[ $stages == pre-restore,setup-namespaces,post-setup-namespaces,post-restore,network-unlock,pre-resume,post-resume ]] ||
		fail "restore stages: $stages"
	grep -q "^post-setup-namespaces $root " "$ACTION_LOG" || fail "post-setup-namespaces got no CRTOOLS_INIT_PID $root"
}

# A dump whose script fails at STAGE: no dump, the counter runs on
# untouched (not stopped, not traced), and keeps counting. network-lock
# runs only for a tree with a network namespace of its own.
test_action_dump_fails() {
	local stage=$1 pid rc n
	make_action_script
	if [[ $stage == network-lock ]]; then
		start_action_counter unshare -n || return
	else
		start_action_counter || return
	fi
	pid=$PROG_PID
	rc=$(FAIL_AT=$stage stasis dump dump -t "$pid" -D "$T_WORK/img" --action-script "$ACTION_SCRIPT")
	[[ $rc != 0 ]] || { fail "the dump succeeded although $stage failed"; return; }
	grep -q "failed at $stage" "$T_LOG/dump.stderr" || fail "no error naming $stage: $(error_message dump)"
	[[ ! -e $T_WORK/img/inventory.img ]] || fail "the failed dump left an inventory.img"
	runs_freely "$pid" || { fail "the counter does not run freely after the failed dump"; return; }
	n=$(line_count "$T_LOG/counter.out")
	wait_until "$TMO" has_lines "$T_LOG/counter.out" $((n + 5)) || fail "the counter stopped counting"
	kill_leftovers
	check_sequence "$T_LOG/counter.out"
}

# A restore whose script fails at STAGE: restore fails, no process of the
# tree is left. setup-namespaces runs only when the restore makes one.
test_action_restore_fails() {
	local stage=$1 pid rc ns=()
	[[ $stage == setup-namespaces ]] && ns=(--new-pidns)
	make_action_script
	start_action_counter || return
	pid=$PROG_PID
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	rc=$(FAIL_AT=$stage stasis restore restore -D "$T_WORK/img" -d "${ns[@]}" --action-script "$ACTION_SCRIPT")
	[[ $rc != 0 ]] || fail "the restore succeeded although $stage failed"
	grep -q "failed at $stage" "$T_LOG/restore.stderr" || fail "no error naming $stage: $(error_message restore)"
	wait_gone "$pid" "$TMO" || fail "pid $pid is alive after the failed restore"
	# in a new pid namespace its pid differs: no counter may be left in one
	# (other tests' counters run in ours)
	local p
	sleep 0.2
	for p in $(pgrep -f 'i=\$((i+1))'); do
		[[ $(pidns_of "$p") == "$(pidns_of $$)" ]] || fail "counter $p runs in a new pid namespace after the failed restore"
	done
}

# The README's example of restore awareness: a post-restore script leaves
# a marker (restore count and time) next to the program, which notices it.
test_action_restore_marker() {
	local pid exe script=$T_WORK/mark.sh
	cat > "$script" <<-'SCRIPT'
	#!/bin/sh
	[ "$CRTOOLS_SCRIPT_ACTION" = post-restore ] || exit 0
	marker=/proc/$CRTOOLS_INIT_PID/cwd/restored
	n=$(( $(cut -d' ' -f1 "$marker" 2>/dev/null || echo 0) + 1 ))
	echo "$n $(date +%s)" > "$marker"
	SCRIPT
	chmod +x "$script"
	start_prog marker "$PYTHON" -u -c '
import os, time
print("READY", flush=True)
seen = None
while True:
    try:
        now = open("restored").read().split()[0]
    except OSError:
        now = None
    if now != seen:
        print("restored", now, flush=True)
        seen = now
    time.sleep(0.02)'
	pid=$PROG_PID
	wait_ready marker "$pid" || return
	exe=$(readlink "/proc/$pid/exe")
	for round in 1 2; do
		dump "dump$round" "$pid" "$T_WORK/img$round" || return
		expect_killed "$pid" || return
		restore_detached "restore$round" "$T_WORK/img$round" "$pid" "$exe" 0 --action-script "$script" || return
		wait_until "$TMO" has_line "$T_LOG/marker.out" "restored $round" ||
			{ fail "the program did not see restore $round: $(tail -1 "$T_LOG/marker.out")"; return; }
	done
}

# Restore awareness by signal: a post-restore script queues SIGUSR2 for
# the restored root (still stopped then); the program's handler runs as
# soon as it resumes.
test_action_restore_signal() {
	local pid exe script=$T_WORK/signal.sh
	printf '#!/bin/sh\n[ "$CRTOOLS_SCRIPT_ACTION" = post-restore ] && kill -USR2 "$CRTOOLS_INIT_PID"\nexit 0\n' > "$script"
	chmod +x "$script"
	start_prog sigprog "$PYTHON" -u -c '
import signal, time
got = []
signal.signal(signal.SIGUSR2, lambda *a: got.append(1))
print("READY", flush=True)
while not got:
    time.sleep(0.02)
print("PASS", flush=True)
while True:
    time.sleep(1)'
	pid=$PROG_PID
	wait_ready sigprog "$pid" || return
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	restore_detached restore "$T_WORK/img" "$pid" "$exe" 0 --action-script "$script" || return
	wait_until "$TMO" has_line "$T_LOG/sigprog.out" PASS || fail "the program did not get the restorer's signal"
}

run_test actions.stages test_action_stages
run_test actions.stages_ns test_action_stages_ns
for stage in pre-dump network-lock post-dump; do
	run_test "actions.dump_fails_at_$stage" test_action_dump_fails "$stage"
done
for stage in pre-restore setup-namespaces post-restore; do
	run_test "actions.restore_fails_at_$stage" test_action_restore_fails "$stage"
done
run_test actions.restore_marker test_action_restore_marker
run_test actions.restore_signal test_action_restore_signal
