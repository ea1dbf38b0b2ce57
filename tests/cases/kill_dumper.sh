# The dumper killed in the middle of a dump: by the clock (kill -9 after
# 20, 50 or 150 ms), or by itself at a point of an injected syscall
# (STASIS_TEST_DIE_AT). The target must go on unharmed, and what the
# killed dump wrote must not restore.

# Kill the dumper with SIGKILL DELAY seconds into dumping a 512 MiB process:
# the target must carry on unharmed, the partial image must not restore.
test_kill_dumper() {
	local delay=$1 pid dpid
	start_prog bigmem "$BIN/bigmem"
	pid=$PROG_PID
	wait_ready bigmem "$pid" || return
	mkdir -p "$T_WORK/img"
	# In its own session so that cleanup can kill any helper it forked.
	setsid "$STASIS" dump -t "$pid" -D "$T_WORK/img" -o "$T_LOG/dump.log" -v4 \
		> "$T_LOG/dump.stdout" 2> "$T_LOG/dump.stderr" < /dev/null &
	dpid=$!
	T_PIDS+=("$dpid")
	T_SIDS+=("$dpid")
	sleep "$delay"
	if not_running "$dpid"; then
		wait "$dpid"
		fail "dump finished (rc $?) within ${delay}s, before it could be killed" "$T_LOG/dump.log"
		return
	fi
	kill -9 "$dpid"
	wait "$dpid" 2>/dev/null
	note "killed dumper $dpid after ${delay}s"
	wait_until 5 runs_freely "$pid" ||
		fail "target left in state $(proc_state "$pid") (TracerPid $(status_field "$pid" TracerPid)) by the killed dumper" \
			"$T_LOG/dump.log" || return
	sleep 0.3
	runs_freely "$pid" || fail "target died or stopped after the dumper was killed" || return
	kill -USR1 "$pid"
	wait_child "$pid"
	check_output bigmem
	[[ $CHILD_RC == 0 ]] || fail "target exited $CHILD_RC after the dumper was killed" "$T_LOG/bigmem.err"
	expect_restore_fails restore "$T_WORK/img" "$pid"
}

# dump_killed_at POINT[:N] PID: a dump into T_WORK/img that kills itself
# at a point of an injected syscall (src/infect/infect.h).
dump_killed_at() {
	mkdir -p "$T_WORK/img"
	stasis_killed_at killed "$1" dump -t "$2" -D "$T_WORK/img"
}

# The last 512 bytes of a process's vdso, in hex: the padding where
# careful calls put their trampoline (src/infect/x86.c).
vdso_tail() {
	"$PYTHON" - "$1" <<'EOF'
import sys
pid = sys.argv[1]
for line in open(f"/proc/{pid}/maps"):
    if line.rstrip().endswith("[vdso]"):
        end = int(line.split("-")[1].split()[0], 16)
with open(f"/proc/{pid}/mem", "rb") as mem:
    mem.seek(end - 512)
    print(mem.read(512).hex())
EOF
}

# After the dumper's death: untraced, not stopped, and still so a moment later.
goes_on() {
	local pid=$1 label=$2
	wait_until 5 runs_freely "$pid" ||
		fail "target left in state $(proc_state "$pid") (TracerPid $(status_field "$pid" TracerPid)) by the killed dumper" \
			"$T_LOG/killed.log" || return
	sleep 0.3
	runs_freely "$pid" || fail "target died or stopped after the dumper was killed" "$T_LOG/$label.err"
}

# The dumper killed at POINT[:N], inside the windows of an injected
# syscall: crashcheck (its registers, vector registers, direction flag,
# blocked masks, a sleep and a read in progress, memory) must go on
# unharmed, with not one mapping more; a second dump must work on what
# the killed one left; the killed one's directory must not restore.
test_kill_dumper_at() {
	local point=$1 pid maps vdso
	start_prog crashcheck "$BIN/crashcheck"
	pid=$PROG_PID
	wait_ready crashcheck "$pid" || return
	maps=$(grep -v '\[stack\]' "/proc/$pid/maps")
	vdso=$(vdso_tail "$pid")
	dump_killed_at "$point" "$pid" || return
	goes_on "$pid" crashcheck || return
	[[ $(grep -v '\[stack\]' "/proc/$pid/maps") == "$maps" ]] ||
		fail "the killed dump left the target's mappings changed" || return
	dump again "$pid" "$T_WORK/again" --leave-running || return
	[[ $(vdso_tail "$pid") == "$vdso" ]] ||
		fail "the end of the vdso (where the trampoline goes) differs after a dump" || return
	kill -USR1 "$pid"
	wait_child "$pid"
	check_output crashcheck
	[[ $CHILD_RC == 0 ]] || fail "crashcheck exited $CHILD_RC after the dumper was killed" "$T_LOG/crashcheck.out"
	expect_restore_fails restore "$T_WORK/img" ""
}

# The same with a python counter: it must count on, no number lost or twice.
test_kill_dumper_counter() {
	local point=$1 pid n out=$T_LOG/counter.out
	start_prog counter "$PYTHON" -u -c '
import time
i = 0
while True:
    i += 1
    print(i, flush=True)
    time.sleep(0.02)'
	pid=$PROG_PID
	wait_until "$TMO" has_lines "$out" 5 || fail "counter produced no output" "$T_LOG/counter.err" || return
	dump_killed_at "$point" "$pid" || return
	goes_on "$pid" counter || return
	n=$(line_count "$out")
	wait_until "$TMO" has_lines "$out" $((n + 10)) || fail "counter stopped counting" "$out" || return
	kill -9 "$pid"
	check_sequence "$out"
}

# Timed: they hope to land inside a step, and run alone, so that the
# load of other tests does not move what a delay lands in.
for d in 0.02 0.05 0.15; do
	run_test --alone "fail.kill_dumper_${d}s" test_kill_dumper "$d"
done
# Points of an injected syscall (src/infect): the way back written,
# registers set, signals blocked, on the way to / at the syscall's
# entry and exit stops, half way out (mask back, then registers), and
# once the scratch area is taken; :N is the Nth time (the 1st call, a
# later one, a thread switch).
for p in scratch-taken way-back-written way-back-written:3 set-regs set-regs:2 \
	set-regs:17 mask-blocked resumed resumed:9 syscall-entry syscall-entry:21 \
	resumed-exit resumed-exit:14 syscall-exit syscall-exit:24 park-mask park-mask:2 \
	park-regs park-regs:3; do
	run_test "fail.kill_dumper_at.${p/:/_}" test_kill_dumper_at "$p"
done
for p in set-regs:3 syscall-entry:5 syscall-exit:7; do
	run_test "fail.kill_dumper_counter.${p/:/_}" test_kill_dumper_counter "$p"
done
