# Images exchanged with a real CRIU (CRIU_BIN): a python counter dumped
# by stasis is restored by CRIU, dumped again by CRIU and restored by
# stasis; the count goes on with no gap or repeat through both.
test_criu_interop() {
	local out=$T_LOG/counter.out pid n rc
	start_prog counter "$PYTHON" -u -c '
import time
i = 0
while True:
    i += 1
    print(i, flush=True)
    time.sleep(0.05)'
	pid=$PROG_PID
	wait_until "$TMO" has_lines "$out" 5 || { fail "counter produced no output"; return; }
	dump dump "$pid" "$T_WORK/img1" || return
	wait_gone "$pid" "$TMO" || { fail "pid $pid alive after the dump"; return; }
	timeout -k 5 "$TMO" "$CRIU_BIN" restore -D "$T_WORK/img1" -d -o "$T_LOG/criu-restore.log" -v4 \
		> "$T_LOG/criu-restore.out" 2>&1 < /dev/null
	rc=$?
	[[ $rc == 0 ]] || { fail "CRIU could not restore stasis's images (rc $rc)" "$T_LOG/criu-restore.log"; return; }
	n=$(line_count "$out")
	wait_until "$TMO" has_lines "$out" $((n + 5)) || { fail "the counter did not go on under CRIU's restore"; return; }
	mkdir -p "$T_WORK/img2"
	timeout -k 5 "$TMO" "$CRIU_BIN" dump -t "$pid" -D "$T_WORK/img2" -o "$T_LOG/criu-dump.log" -v4 \
		> "$T_LOG/criu-dump.out" 2>&1 < /dev/null
	rc=$?
	[[ $rc == 0 ]] || { fail "CRIU could not dump the restored counter (rc $rc)" "$T_LOG/criu-dump.log"; return; }
	wait_gone "$pid" "$TMO" || { fail "pid $pid alive after CRIU's dump"; return; }
	rc=$(stasis restore restore -D "$T_WORK/img2" -d)
	[[ $rc == 0 ]] || { fail "stasis could not restore CRIU's images (rc $rc): $(error_message restore)" "$T_LOG/restore.log"; return; }
	n=$(line_count "$out")
	wait_until "$TMO" has_lines "$out" $((n + 5)) || { fail "the counter did not go on under stasis's restore"; return; }
	kill -9 "$pid"
	wait_gone "$pid" "$TMO"
	check_sequence "$out"
}

# Terminals of each kind (tests/progs/pty_kinds.c, but for input in flight
# in canonical mode, which CRIU echoes again): a pty slave's owner and
# mode, hung-up slaves, the console and a virtual terminal; stasis dumps,
# CRIU restores and dumps, stasis restores, and the program checks them.
test_criu_interop_tty() {
	local pid rc
	start_prog pty_kinds "$BIN/pty_kinds" nocanon
	pid=$PROG_PID
	wait_ready pty_kinds "$pid" || return
	dump dump "$pid" "$T_WORK/img1" || return
	wait_gone "$pid" "$TMO" || { fail "pid $pid alive after the dump"; return; }
	timeout -k 5 "$TMO" "$CRIU_BIN" restore -D "$T_WORK/img1" -d -o "$T_LOG/criu-restore.log" -v4 \
		> "$T_LOG/criu-restore.out" 2>&1 < /dev/null
	rc=$?
	[[ $rc == 0 ]] || { fail "CRIU could not restore stasis's images (rc $rc)" "$T_LOG/criu-restore.log"; return; }
	mkdir -p "$T_WORK/img2"
	timeout -k 5 "$TMO" "$CRIU_BIN" dump -t "$pid" -D "$T_WORK/img2" -o "$T_LOG/criu-dump.log" -v4 \
		> "$T_LOG/criu-dump.out" 2>&1 < /dev/null
	rc=$?
	[[ $rc == 0 ]] || { fail "CRIU could not dump the restored pty_kinds (rc $rc)" "$T_LOG/criu-dump.log"; return; }
	wait_gone "$pid" "$TMO" || { fail "pid $pid alive after CRIU's dump"; return; }
	rc=$(stasis restore restore -D "$T_WORK/img2" -d)
	[[ $rc == 0 ]] || { fail "stasis could not restore CRIU's images (rc $rc): $(error_message restore)" "$T_LOG/restore.log"; return; }
	wait_until "$TMO" catches_usr1 "$pid" || { fail "pty_kinds was not restored" "$T_LOG/restore.log"; return; }
	kill -USR1 "$pid"
	wait_gone "$pid" "$TMO" || fail "pty_kinds did not exit after SIGUSR1" "$T_LOG/pty_kinds.out"
	check_output pty_kinds
}

run_test --needs criu interop.criu test_criu_interop
run_test --needs criu interop.criu_tty test_criu_interop_tty
