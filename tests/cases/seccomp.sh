# Seccomp: programs in strict mode or under filters that kill on the very
# syscalls stasis injects. They must dump (seccomp suspended for stasis's
# calls, never for the program), come back with the same mode and filters
# that still act, and a dump that fails or is refused must leave them
# running untouched, their seccomp as it was.

# sc_cmd C: one command byte to seccomp_strict through its FIFO (a timeout:
# with no reader, the open would block).
sc_cmd() { timeout 5 sh -c "printf %s '$1' > '$T_FILES/ctl'"; }

# sc_count N: the strict counter said N (send 'c' first).
sc_count() {
	sc_cmd c || { fail "can't send a command to seccomp_strict"; return 1; }
	wait_until "$TMO" has_line "$T_LOG/strict.out" "$1" ||
		{ fail "seccomp_strict did not count to $1: $(tail -n1 "$T_LOG/strict.out")"; return 1; }
}

# sc_mode_is PID MODE [FILTERS]: Seccomp (and Seccomp_filters) of a running pid.
sc_mode_is() {
	local pid=$1 mode=$2 nf=${3:-} m f
	m=$(status_field "$pid" Seccomp)
	[[ $m == "$mode" ]] || { fail "pid $pid: Seccomp is '$m', expected $mode"; return 1; }
	[[ -z $nf ]] && return 0
	f=$(status_field "$pid" Seccomp_filters)
	[[ $f == "$nf" ]] || { fail "pid $pid: Seccomp_filters is '$f', expected $nf"; return 1; }
}

# What crit decodes of a dump: one line "TID MODE FILTER" per core image
# (in tid order; "-" for a field not there), then one line "filter I
# INSTRUCTIONS PREV FLAGS" per entry of seccomp.img.
SC_DECODE='
import base64, json, os, subprocess, sys
def decode(path):
    return json.loads(subprocess.check_output(["crit", "decode", "-i", path]))["entries"]
d = sys.argv[1]
cores = sorted((int(f[5:-4]), f) for f in os.listdir(d) if f.startswith("core-"))
for tid, f in cores:
    th = decode(os.path.join(d, f))[0].get("thread_core", {})
    print(tid, th.get("seccomp_mode", "-"), th.get("seccomp_filter", "-"))
if os.path.exists(os.path.join(d, "seccomp.img")):
    for i, e in enumerate(decode(os.path.join(d, "seccomp.img"))[0]["seccomp_filters"]):
        print("filter", i, len(base64.b64decode(e["filter"])) // 8, e.get("prev", "-"), e.get("flags", "-"))
'

# sc_image DIR WANT: the decoded seccomp state must be WANT (a pattern,
# lines joined by ';').
sc_image() {
	local got
	got=$("$PYTHON" -c "$SC_DECODE" "$1" 2>> "$T_LOG/crit-seccomp.log" | paste -sd ';' -)
	note "seccomp in $1: $got"
	[[ $got == $2 ]] || { fail "images: seccomp state '$got', expected '$2'" "$T_LOG/crit-seccomp.log"; return 1; }
}

# seccomp_filter's chain as crit shows it: filter 1 (arch check, five
# rules: 15 instructions) then filter 2 (one rule: 7), linked first to last.
SC_FILTER_CHAIN='filter 0 15 1 0;filter 1 7 - 0'

# Strict mode: the dump's injected mmap would be a SIGKILL. Dump, restore
# in the foreground, count on, and then a getpid must still kill it.
test_seccomp_strict() {
	local pid exe
	start_prog strict "$BIN/seccomp_strict"
	pid=$PROG_PID
	wait_ready strict "$pid" || return
	exe=$(readlink "/proc/$pid/exe")
	sc_mode_is "$pid" 1 && sc_count 1 || return
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	sc_image "$T_WORK/img" "$pid strict -" || return
	restore_foreground restore "$T_WORK/img"
	wait_restored restore "$pid" "$exe" 0 "$RESTORE_PID" || return
	sc_mode_is "$pid" 1 && sc_count 2 || return
	sc_cmd k
	wait_child "$RESTORE_PID"
	[[ $CHILD_RC == 137 ]] || fail "getpid in strict mode after the restore: exit $CHILD_RC, expected 137 (SIGKILL)"
	check_sequence <(grep -v READY "$T_LOG/strict.out")
}

# Two --leave-running dumps of the strict counter: it counts on between
# them, and strict mode is back in force once stasis lets go.
test_seccomp_strict_leave_running() {
	local pid i
	start_prog strict "$BIN/seccomp_strict"
	pid=$PROG_PID
	wait_ready strict "$pid" || return
	for i in 1 2; do
		dump "dump$i" "$pid" "$T_WORK/img$i" --leave-running || return
		wait_until 5 runs_freely "$pid" || { fail "after dump $i: pid $pid does not run freely"; return; }
		sc_mode_is "$pid" 1 && sc_count "$i" || return
	done
	sc_cmd k
	wait_child "$pid"
	[[ $CHILD_RC == 137 ]] || fail "getpid in strict mode after the dumps: exit $CHILD_RC, expected 137 (SIGKILL)"
}

# Filters that kill on mmap, munmap, rt_sigaction, getitimer (all injected
# by dump or restore), and set getppid's errno by the order of the chain.
# Dump, restore -d, dump the restored process, restore in the foreground:
# the program checks mode, count, no_new_privs and the errno; then its
# getitimer must be killed (SIGSYS, 159).
test_seccomp_filter() {
	local pid exe
	start_prog filter "$BIN/seccomp_filter"
	pid=$PROG_PID
	wait_ready filter "$pid" || return
	exe=$(readlink "/proc/$pid/exe")
	dump dump1 "$pid" "$T_WORK/img1" || return
	expect_killed "$pid" || return
	sc_image "$T_WORK/img1" "$pid filter 0;$SC_FILTER_CHAIN" || return
	restore_detached restore1 "$T_WORK/img1" "$pid" "$exe" 1 || return
	sc_mode_is "$pid" 2 2 || return
	[[ $(status_field "$pid" NoNewPrivs) == 1 ]] || fail "no_new_privs did not come back"
	dump dump2 "$pid" "$T_WORK/img2" || return
	wait_gone "$pid" || { fail "the restored pid $pid outlived its dump"; return; }
	sc_image "$T_WORK/img2" "$pid filter 0;$SC_FILTER_CHAIN" || return
	restore_foreground restore2 "$T_WORK/img2"
	wait_restored restore2 "$pid" "$exe" 1 "$RESTORE_PID" || return
	kill -USR1 "$pid"
	wait_child "$RESTORE_PID"
	check_output filter
	[[ $CHILD_RC == 159 ]] || fail "after the restore, getitimer gave exit $CHILD_RC, expected 159 (SIGSYS from the filter)"
}

test_seccomp_filter_leave_running() {
	local pid i
	start_prog filter "$BIN/seccomp_filter"
	pid=$PROG_PID
	wait_ready filter "$pid" || return
	for i in 1 2; do
		dump "dump$i" "$pid" "$T_WORK/img$i" --leave-running || return
		wait_until 5 runs_freely "$pid" || { fail "after dump $i: pid $pid does not run freely"; return; }
		sc_mode_is "$pid" 2 2 || return
	done
	kill -USR1 "$pid"
	wait_child "$pid"
	check_output filter
	[[ $CHILD_RC == 159 ]] || fail "getitimer after the dumps: exit $CHILD_RC, expected 159 (SIGSYS from the filter)"
}

# seccomp_threads MODE (see the program): three threads with seccomp of
# their own; with tsync, one chain the main thread restores for all with
# SECCOMP_FILTER_FLAG_TSYNC (CRIU's encoding: the others have no mode).
test_seccomp_threads() {
	local mode=$1 want=$2 pid exe t
	start_prog threads "$BIN/seccomp_threads" "$mode"
	pid=$PROG_PID
	wait_ready threads "$pid" || return
	exe=$(readlink "/proc/$pid/exe")
	t=($(ls "/proc/$pid/task" | sort -n))
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	want=${want//T0/${t[0]}}
	want=${want//T1/${t[1]}}
	sc_image "$T_WORK/img" "${want//T2/${t[2]}}" || return
	restore_foreground restore "$T_WORK/img"
	wait_restored restore "$pid" "$exe" 1 "$RESTORE_PID" || return
	kill -USR1 "$pid"
	wait_child "$RESTORE_PID"
	check_output threads
	[[ $CHILD_RC == 0 ]] || fail "seccomp_threads $mode exited $CHILD_RC after the restore" "$T_LOG/restore.log"
}

# A dump that fails after all its injected calls (a post-dump script says
# no): the program runs on, its seccomp in force again.
sc_failing_dump() {
	local pid=$1 rc script=$T_WORK/veto.sh
	printf '#!/bin/sh\n[ "$CRTOOLS_SCRIPT_ACTION" = post-dump ] && exit 3\nexit 0\n' > "$script"
	chmod +x "$script"
	rc=$(stasis dump dump -t "$pid" -D "$T_WORK/img" --action-script "$script")
	[[ $rc != 0 ]] || { fail "the dump succeeded although post-dump failed"; return 1; }
	# its core image comes of calls injected into it: the dump got that far
	[[ -e $T_WORK/img/core-$pid.img ]] || fail "the dump failed before its injected calls: $(error_message dump)"
	[[ ! -e $T_WORK/img/inventory.img ]] || fail "the failed dump left an inventory.img"
	runs_freely "$pid" || { fail "pid $pid does not run freely after the failed dump"; return 1; }
}

test_seccomp_failed_dump_strict() {
	local pid
	start_prog strict "$BIN/seccomp_strict"
	pid=$PROG_PID
	wait_ready strict "$pid" || return
	sc_count 1 || return
	sc_failing_dump "$pid" || return
	sc_mode_is "$pid" 1 && sc_count 2 || return
	sc_cmd k
	wait_child "$pid"
	[[ $CHILD_RC == 137 ]] || fail "getpid in strict mode after the failed dump: exit $CHILD_RC, expected 137"
}

test_seccomp_failed_dump_filter() {
	local pid
	start_prog filter "$BIN/seccomp_filter"
	pid=$PROG_PID
	wait_ready filter "$pid" || return
	sc_failing_dump "$pid" || return
	sc_mode_is "$pid" 2 2 || return
	kill -USR1 "$pid"
	wait_child "$pid"
	check_output filter
	[[ $CHILD_RC == 159 ]] || fail "getitimer after the failed dump: exit $CHILD_RC, expected 159 (SIGSYS)"
}

# sc_refused LABEL PID MESSAGE ARGS...: a dump (run as ARGS... stasis) that
# must be refused with MESSAGE (a regex) as its only line, before anything
# was done to the tree.
sc_refused() {
	local label=$1 pid=$2 msg=$3 rc
	shift 3
	note "stasis dump (through: $*)"
	mkdir -p "$T_WORK/img"
	timeout -k 5 "$TMO" "$@" "$STASIS" dump -t "$pid" -D "$T_WORK/img" -o "$T_LOG/dump.log" -v4 \
		> "$T_LOG/dump.stdout" 2> "$T_LOG/dump.stderr" < /dev/null
	rc=$?
	[[ $rc != 0 ]] || { fail "$label: the dump succeeded"; return 1; }
	grep -qE "$msg" "$T_LOG/dump.stderr" || fail "$label: message: $(error_message dump)"
	(($(wc -l < "$T_LOG/dump.stderr") == 1)) || fail "$label: more than one line on stderr" "$T_LOG/dump.stderr"
	[[ ! -e $T_WORK/img/inventory.img ]] || fail "$label: the refused dump left an inventory.img"
	runs_freely "$pid" || { fail "$label: pid $pid does not run freely after the refused dump"; return 1; }
}

# Without CAP_SYS_ADMIN seccomp can't be suspended: refused, untouched.
test_seccomp_no_sys_admin() {
	local pid
	start_prog strict "$BIN/seccomp_strict"
	pid=$PROG_PID
	wait_ready strict "$pid" || return
	sc_refused "strict mode without CAP_SYS_ADMIN" "$pid" \
		"^Error: pid $pid uses seccomp strict mode, which stasis can dump only with CAP_SYS_ADMIN" \
		setpriv --bounding-set -sys_admin || return
	sc_mode_is "$pid" 1 && sc_count 1 || return
	sc_cmd k
	wait_child "$pid"
	[[ $CHILD_RC == 137 ]] || fail "getpid in strict mode after the refused dump: exit $CHILD_RC, expected 137"
}

# A filter that hands syscalls to a supervisor can't be restored without
# the supervisor's fd: refused, untouched.
test_seccomp_user_notif() {
	local pid
	start_prog filter "$BIN/seccomp_filter" notify
	pid=$PROG_PID
	wait_ready filter "$pid" || return
	sc_refused "a USER_NOTIF filter" "$pid" \
		"^Error: pid $pid: seccomp filter 2 of thread $pid passes syscalls to a supervisor" || return
	sc_mode_is "$pid" 2 3 || return
	kill -USR1 "$pid"
	wait_child "$pid"
	check_output filter
	[[ $CHILD_RC == 159 ]] || fail "getitimer after the refused dump: exit $CHILD_RC, expected 159 (SIGSYS)"
}

# A seccomp.img whose chain loops (filter 1 links back to filter 0): the
# restore must say so and leave no process, not hang.
test_seccomp_corrupt_chain() {
	local pid rc
	start_prog filter "$BIN/seccomp_filter"
	pid=$PROG_PID
	wait_ready filter "$pid" || return
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	"$PYTHON" -c '
import sys, pycriu
path = sys.argv[1] + "/seccomp.img"
img = pycriu.images.load(open(path, "rb"))
img["entries"][0]["seccomp_filters"][1]["prev"] = 0
pycriu.images.dump(img, open(path, "wb"))' "$T_WORK/img" 2>> "$T_LOG/runner.log" ||
		{ fail "can't rewrite seccomp.img with pycriu"; return; }
	forget_checksums "$T_WORK/img"
	rc=$(stasis restore restore -D "$T_WORK/img" -d)
	[[ $rc != 0 && $rc != 124 && $rc != 137 ]] || { fail "restore of a looping chain exited $(rc_text "$rc")"; return; }
	grep -q "the filter chain of thread $pid (pid $pid) loops" "$T_LOG/restore.stderr" ||
		fail "message: $(error_message restore)"
	wait_gone "$pid" || fail "pid $pid is alive after the failed restore"
}

run_test seccomp.strict.restore test_seccomp_strict
run_test seccomp.strict.leave_running test_seccomp_strict_leave_running
run_test seccomp.filter.restore_twice test_seccomp_filter
run_test seccomp.filter.leave_running test_seccomp_filter_leave_running
run_test seccomp.threads.mixed test_seccomp_threads mixed "T0 filter 0;T1 strict -;T2 filter 1;filter 0 11 - 0;filter 1 11 2 0;filter 2 7 - 0"
run_test seccomp.threads.tsync test_seccomp_threads tsync "T0 filter 0;T1 disabled -;T2 disabled -;filter 0 11 - 1"
run_test seccomp.failed_dump.strict test_seccomp_failed_dump_strict
run_test seccomp.failed_dump.filter test_seccomp_failed_dump_filter
run_test seccomp.refused.no_sys_admin test_seccomp_no_sys_admin
run_test seccomp.refused.user_notif test_seccomp_user_notif
run_test seccomp.corrupt_chain test_seccomp_corrupt_chain
