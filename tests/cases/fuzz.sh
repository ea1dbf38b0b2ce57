# Fuzzing (fuzz/README.md): the RPC request decoder and restore's image
# loading, each run for STASIS_FUZZ_SECONDS (default 25) under libFuzzer
# with ASan/UBSan/LSan. Seeds are made here: requests packed by
# gen_rpc_seeds, and a real dump of build/tests/fuzz (which must restore
# and PASS, so the seed is known good). A crash, leak, sanitizer report,
# hang (-timeout) or runaway memory (-rss_limit_mb) fails the test and
# leaves the reproducer in the test's log directory. No clang/libFuzzer
# is a failure too (scripts/install-deps.sh installs them).

FUZZ_SECONDS=${STASIS_FUZZ_SECONDS:-25}

# fuzz_run NAME CORPUS SEEDS [LIBFUZZER ARGS...]: runs one fuzzer, notes
# its figures; fails with the reproducer's path on any finding.
fuzz_run() {
	local name=$1 corpus=$2 seeds=$3 log=$T_LOG/$1.log rc found
	shift 3
	mkdir -p "$corpus"
	note "fuzzing $name for ${FUZZ_SECONDS}s"
	(cd "$T_WORK" && exec nice "$ROOT/build/fuzz/$name" -max_total_time="$FUZZ_SECONDS" \
		-timeout=10 -rss_limit_mb=1024 -close_fd_mask=2 -print_final_stats=1 \
		-artifact_prefix="$T_LOG/$name-" "$@" "$corpus" "$seeds") > "$log" 2>&1
	rc=$?
	note "$name: $(grep -m1 -o 'Done [0-9]* runs in [0-9]* second(s)' "$log"), $(grep 'DONE\|#[0-9]*.*cov:' "$log" | tail -n1 | grep -o 'cov: [0-9]* ft: [0-9]* corp: [^ ]*'), exec/s $(awk '/stat::average_exec_per_sec/ { print $2 }' "$log"), exit $rc"
	found=$(ls "$T_LOG/$name"-* 2>/dev/null | head -n1)
	if [[ $rc != 0 || -n $found ]]; then
		fail "$name found a bug (exit $rc): reproduce with build/fuzz/$name ${found:-(no artifact, see the log)}" "$log"
		return 1
	fi
	grep -q 'Done [0-9]* runs' "$log" || fail "$name did not run (see $log)" "$log"
}

test_fuzz() {
	local pid exe
	note "building the fuzzers (make fuzz)"
	if ! make -s -C "$ROOT" -j"$(nproc)" fuzz > "$T_LOG/make-fuzz.log" 2>&1; then
		fail "can't build the fuzzers with clang and libFuzzer (Debian: clang libclang-rt-14-dev; see scripts/install-deps.sh)" \
			"$T_LOG/make-fuzz.log"
		return
	fi
	mkdir -p "$T_WORK/rpc_seeds" "$T_WORK/image_seeds"
	"$ROOT/build/fuzz/gen_rpc_seeds" "$T_WORK/rpc_seeds" >> "$T_LOG/runner.log" ||
		{ fail "gen_rpc_seeds failed"; return; }

	start_prog seedprog "$BIN/fuzz"
	pid=$PROG_PID
	wait_ready seedprog "$pid" || return
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	"$PYTHON" "$ROOT/fuzz/pack_images.py" "$T_WORK/img" "$T_WORK/image_seeds/tree" >> "$T_LOG/runner.log" ||
		{ fail "pack_images.py failed"; return; }
	restore_foreground restore "$T_WORK/img"
	wait_restored restore "$pid" "$exe" 1 "$RESTORE_PID" || return
	kill -USR1 "$pid"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output seedprog
	[[ -z $T_FAIL ]] || return

	fuzz_run fuzz_rpc "$T_WORK/rpc_corpus" "$T_WORK/rpc_seeds" -max_len=65536
	fuzz_run fuzz_image "$T_WORK/image_corpus" "$T_WORK/image_seeds" -max_len=262144
}

run_test fuzz.decoders test_fuzz
