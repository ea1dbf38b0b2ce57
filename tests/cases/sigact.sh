# Signal handlers after a restore: every signal as the image says, and at
# SIG_DFL where it says nothing, never what stasis's restore had itself
# (the handler of its tick, util/tick.c) or inherited (SIG_IGN from the
# shell that started it). progs/sig_dfl.c checks its own dispositions and
# mask.

# keep_sigactions N DIR PID: core-PID.img with only its first N signal
# handlers, as a tool may write it (the field is a repeated one: CRIU's
# protobuf lets it be empty).
keep_sigactions() {
	local core=$2/core-$3.img
	"$STASIS" crit decode -i "$core" | "$PYTHON" -c 'import json, sys
img = json.load(sys.stdin)
tc = img["entries"][0]["tc"]
tc["sigactions"] = tc["sigactions"][:int(sys.argv[1])]
json.dump(img, sys.stdout)' "$1" | "$STASIS" crit encode -o "$core.new" && mv "$core.new" "$core" &&
		forget_checksums "$2"
}
drop_sigactions() { keep_sigactions 0 "$@"; }

# sig_dfl_dumped EDIT...: sig_dfl started and dumped (killed), then its
# image edited by `EDIT... DIR PID`. Sets SIG_PID.
sig_dfl_dumped() {
	start_prog sig_dfl "$BIN/sig_dfl"
	SIG_PID=$PROG_PID
	wait_ready sig_dfl "$SIG_PID" || return
	dump dump "$SIG_PID" "$T_WORK/img" || return
	expect_killed "$SIG_PID" || return
	"$@" "$T_WORK/img" "$SIG_PID" || { fail "could not edit core-$SIG_PID.img"; return 1; }
}

# sig_dfl dumped, its image edited by EDIT (a function of DIR and PID, or
# true), restored by a stasis that ignores SIGHUP, SIGUSR2 and SIGPIPE (and
# SIGINT and SIGQUIT, as a background job): sig_dfl must find every
# handler at SIG_DFL and its mask as before.
test_sigact_restore() {
	local exe pid
	exe=$(readlink -f "$BIN/sig_dfl")
	sig_dfl_dumped "$1" || return
	pid=$SIG_PID
	printf '#!/bin/bash\ntrap "" HUP USR2 PIPE\nexec %q "$@"\n' "$STASIS" > "$T_WORK/stasis-ignoring"
	chmod +x "$T_WORK/stasis-ignoring"
	STASIS=$T_WORK/stasis-ignoring restore_foreground restore "$T_WORK/img"
	wait_restored restore "$pid" "$exe" 0 "$RESTORE_PID" || return
	kill -USR1 "$pid"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output sig_dfl
	[[ $CHILD_RC == 0 ]] || fail "foreground restore exited $CHILD_RC (the program's status)" "$T_LOG/restore.log"
}

run_test sigact.from_image test_sigact_restore true
run_test sigact.none_in_image test_sigact_restore drop_sigactions

# Some handlers but not all 62 (1..64 but KILL and STOP): no way to tell
# which signals they are; refused, naming the image, as CRIU does.
test_sigact_some() {
	local pid
	sig_dfl_dumped keep_sigactions 10 || return
	pid=$SIG_PID
	expect_restore_fails restore "$T_WORK/img" "$pid"
	grep -q "core-$pid.img has 10 signal handlers, expected 62" "$T_LOG/restore.stderr" ||
		fail "the refusal does not say why: $(error_message restore)" "$T_LOG/restore.log"
}

run_test sigact.some_in_image test_sigact_some
