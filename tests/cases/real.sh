# Real programs, not written for the tests: counters in python and sh,
# `sleep`, shells with jobs and pipelines, a terminal job, python with
# threads; and bytes in flight in pipes.

# Shared part of the counter tests: counter program already started as
# PROG_PID writing to T_LOG/LABEL.out; dump, restore (-d or foreground),
# let it count on, kill it, check the sequence.
counter_dump_restore() {
	local label=$1 mode=$2 out=$T_LOG/$1.out pid=$PROG_PID exe n
	wait_until "$TMO" has_lines "$out" 5 || {
		fail "$label produced no output" "$T_LOG/$label.err"
		return
	}
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	n=$(line_count "$out")
	if [[ $mode == detached ]]; then
		restore_detached restore "$T_WORK/img" "$pid" "$exe" 0 || return
	else
		restore_foreground restore "$T_WORK/img"
		wait_restored restore "$pid" "$exe" 0 "$RESTORE_PID" || return
	fi
	wait_until "$TMO" has_lines "$out" $((n + 10)) ||
		fail "$label did not continue after restore ($(line_count "$out") lines, $n at dump)" "$out"
	kill_leftovers
	check_sequence "$out"
}

test_python_counter() {
	start_prog counter "$PYTHON" -u -c '
import time
i = 0
while True:
    i += 1
    print(i, flush=True)
    time.sleep(0.05)'
	counter_dump_restore counter foreground
}

test_sh_counter() {
	start_prog counter sh -c 'i=0; while :; do i=$((i+1)); echo $i; sleep 0.05; done'
	counter_dump_restore counter detached
}

# Bytes in flight in a pipe: a python program fills a pipe it holds both
# ends of (76800 bytes, in a pipe enlarged to 128 KiB) and, after the
# restore, reads them back and checks them byte for byte, and the size.
test_pipe_data() {
	local pid exe
	start_prog pipedata "$PYTHON" -c '
import os, signal, time, fcntl
r, w = os.pipe()
data = bytes(range(256)) * 300
fcntl.fcntl(w, 1031, 131072)        # F_SETPIPE_SZ
os.write(w, data)
got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
print("READY", flush=True)
while not got:
    time.sleep(0.05)
back = b""
while len(back) < len(data):
    back += os.read(r, 65536)
size = fcntl.fcntl(w, 1032)         # F_GETPIPE_SZ
print("PASS" if back == data and size >= 131072 else "FAIL: %d bytes back, size %d" % (len(back), size), flush=True)'
	pid=$PROG_PID
	wait_ready pipedata "$pid" || return
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	restore_foreground restore "$T_WORK/img"
	wait_restored restore "$pid" "$exe" 1 "$RESTORE_PID" || return
	kill -USR1 "$pid"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output pipedata
}

# The pipeline case: `sh -c 'producer | consumer > out'` dumped mid-stream
# and restored; out goes on with no gap and no repeat.
test_pipeline() {
	start_prog pipeline sh -c "i=0; while :; do i=\$((i+1)); echo \$i; sleep 0.01; done | cat > $T_FILES/out"
	local pid=$PROG_PID exe n
	wait_until "$TMO" has_lines "$T_FILES/out" 20 || { fail "the pipeline produced nothing"; return; }
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	n=$(line_count "$T_FILES/out")
	restore_detached restore "$T_WORK/img" "$pid" "$exe" 0 || return
	wait_until "$TMO" has_lines "$T_FILES/out" $((n + 30)) ||
		fail "the pipeline did not go on after restore ($(line_count "$T_FILES/out") lines, $n at dump)"
	kill_leftovers
	check_sequence "$T_FILES/out"
}

# --inherit-fd with a pipe from a wrapper: a counter writes into a pipe
# that a `cat` outside the tree reads; it is restored with its stdout
# replaced by our end of a new pipe, read by a new `cat`. The two outputs
# joined go on with no gap and no repeat.
test_inherit_fd_pipe() {
	local out1=$T_FILES/out1 out2=$T_FILES/out2 pid ino w n exe
	local sub
	(setsid sh -c 'i=0; while :; do i=$((i+1)); echo $i; sleep 0.02; done' < /dev/null | cat > "$out1") &
	sub=$!
	T_PIDS+=("$sub")
	wait_until "$TMO" has_lines "$out1" 10 || { fail "the counter wrote nothing into its pipe"; return; }
	# ours (a child of the subshell), and not a fork of it about to exec sleep
	pid=$(pgrep -o -P "$sub" -f "sleep 0.02; done$") || { fail "can't find the counter"; return; }
	T_PIDS+=("$pid")
	ino=$(readlink "/proc/$pid/fd/1")
	[[ $ino == pipe:* ]] || { fail "the counter's stdout is $ino, not a pipe"; return; }
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" || return
	wait_gone "$pid" "$TMO" || { fail "the counter survived its dump"; return; }
	n=$(line_count "$out1")
	exec {w}> >(cat > "$out2")
	rc=$(stasis restore restore -D "$T_WORK/img" -d --inherit-fd "fd[$w]:$ino")
	exec {w}>&-
	[[ $rc == 0 ]] || { fail "restore with --inherit-fd failed: $(error_message restore)" "$T_LOG/restore.log"; return; }
	wait_until "$TMO" has_lines "$out2" 10 || { fail "nothing came through the inherited pipe" "$T_LOG/restore.log"; return; }
	kill -9 "$pid"
	wait_gone "$pid" "$TMO"
	sleep 0.2
	cat "$out1" "$out2" > "$T_LOG/both.out"
	check_sequence "$T_LOG/both.out"
	note "$n lines before the dump, $(line_count "$out2") through the inherited pipe"
}

# A job of an interactive terminal: a counter printing on the terminal
# `script` gives it.  Without --shell-job the dump must refuse (naming the
# option) and leave it running; with it, the job is dumped, then restored
# with --shell-job from a second `script` session, where it must go on
# counting on the new terminal, with no gap and no repeat overall.
test_shell_job() {
	local out1=$T_LOG/tty1.out out2=$T_LOG/tty2.out spid rpid pid n rc
	script -qfec 'i=0; while :; do i=$((i+1)); echo $i; sleep 0.05; done' /dev/null \
		> "$out1" 2>&1 < /dev/null &
	spid=$!
	T_PIDS+=("$spid")
	wait_until "$TMO" has_lines "$out1" 5 || { fail "the job printed nothing on its terminal" "$out1"; return; }
	pid=$(child_of "$spid") || { fail "script has no child"; return; }
	T_PIDS+=("$pid")
	[[ $(readlink "/proc/$pid/fd/1") == /dev/pts/* ]] || { fail "the job's stdout is not a terminal"; return; }

	rc=$(stasis noshell dump -t "$pid" -D "$T_WORK/img0")
	[[ $rc != 0 ]] || fail "dump of a terminal job without --shell-job succeeded"
	grep -q -- "--shell-job" "$T_LOG/noshell.stderr" || fail "the refusal does not name --shell-job" "$T_LOG/noshell.stderr"
	runs_freely "$pid" || { fail "the job is not running after the refused dump"; return; }

	dump dump "$pid" "$T_WORK/img" --shell-job || return
	wait_gone "$pid" "$TMO" || { fail "the job survived its dump"; return; }
	n=$(line_count "$out1")
	script -qfec "$STASIS restore -D $T_WORK/img --shell-job -o $T_LOG/restore.log -v4" /dev/null \
		> "$out2" 2>&1 < /dev/null &
	rpid=$!
	T_PIDS+=("$rpid")
	wait_until "$TMO" has_lines "$out2" 10 || { fail "the restored job printed nothing on the new terminal" "$T_LOG/restore.log"; return; }
	[[ $(readlink "/proc/$pid/fd/1") == /dev/pts/* ]] || fail "the restored job's stdout is not a terminal"
	kill -9 "$pid"
	wait_gone "$pid" "$TMO"
	cat "$out1" "$out2" | tr -d '\r' | grep -v '^$' > "$T_LOG/both.out"
	check_sequence "$T_LOG/both.out"
	note "$n lines before the dump, $(line_count "$out2") after"
}

# `sleep 1000`: restored with the same pid, still sleeping; when killed the
# foreground restore exits 128+9.
test_sleep() {
	local pid
	start_prog sleep sleep 1000
	pid=$PROG_PID
	wait_until "$TMO" exe_is "$pid" /usr/bin/sleep || fail "sleep did not start" || return
	sleep 0.1
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	restore_foreground restore "$T_WORK/img"
	wait_restored restore "$pid" /usr/bin/sleep 0 "$RESTORE_PID" || return
	sleep 0.5
	[[ $(stat_field "$pid" 1) == S ]] || fail "restored sleep is in state $(proc_state "$pid"), expected S"
	[[ $(cat "/proc/$pid/comm" 2>/dev/null) == sleep ]] || fail "restored pid $pid is not 'sleep'"
	kill -9 "$pid"
	wait_child "$RESTORE_PID"
	[[ $CHILD_RC == 137 ]] || fail "foreground restore exited $CHILD_RC after the process was killed by SIGKILL, expected 137" \
		"$T_LOG/restore.log"
}

# A two-process tree (sh and its sleep child); the exit status of the
# restored root (7) must come out of the foreground restore.
test_exit_code() {
	local pid child exe
	start_prog tree sh -c 'sleep 1000; exit 7'
	pid=$PROG_PID
	wait_until "$TMO" child_of "$pid" > /dev/null || fail "sh did not start its child" || return
	child=$(child_of "$pid")
	wait_until "$TMO" exe_is "$child" /usr/bin/sleep || fail "child did not exec sleep" || return
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	restore_foreground restore "$T_WORK/img"
	wait_restored restore "$pid" "$exe" 0 "$RESTORE_PID" || return
	wait_until "$TMO" runs_freely "$child" || fail "child pid $child not restored" || return
	[[ $(stat_field "$child" 2) == "$pid" ]] || fail "restored $child has parent $(stat_field "$child" 2), expected $pid"
	kill -9 "$child"
	wait_child "$RESTORE_PID"
	[[ $CHILD_RC == 7 ]] || fail "foreground restore exited $CHILD_RC, expected the root's exit status 7" "$T_LOG/restore.log"
}

# A shell with two background jobs and a counter loop: the jobs come back
# with their pids under the shell, and the count goes on without a gap.
test_sh_bgjobs() {
	local pid out=$T_LOG/counter.out n jobs=() p exe
	start_prog counter sh -c 'sleep 1000 & sleep 1000 & i=0; while :; do i=$((i+1)); echo $i; sleep 0.05; done'
	pid=$PROG_PID
	wait_until "$TMO" has_lines "$out" 5 || fail "the shell produced no output" "$T_LOG/counter.err" || return
	for p in $(cat /proc/$pid/task/*/children 2>/dev/null); do
		[[ $(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null) == "sleep 1000 " ]] && jobs+=("$p")
	done
	((${#jobs[@]} == 2)) || fail "expected 2 background sleeps under the shell, found ${#jobs[@]}" || return
	T_PIDS+=("${jobs[@]}")
	note "background jobs: ${jobs[*]}"
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	n=$(line_count "$out")
	restore_detached restore "$T_WORK/img" "$pid" "$exe" 0 || return
	for p in "${jobs[@]}"; do
		wait_until 5 alive "$p" || fail "background job $p not restored" || return
		[[ $(readlink "/proc/$p/exe") == /usr/bin/sleep ]] || fail "restored pid $p is $(readlink "/proc/$p/exe"), not sleep"
		[[ $(stat_field "$p" 2) == "$pid" ]] || fail "background job $p has parent $(stat_field "$p" 2), expected the shell $pid"
		[[ $(proc_state "$p") == S ]] || fail "background job $p in state $(proc_state "$p"), expected S"
	done
	wait_until "$TMO" has_lines "$out" $((n + 10)) ||
		fail "the shell did not count on after the restore ($(line_count "$out") lines, $n at the dump)" "$out"
	for p in "${jobs[@]}"; do
		alive "$p" || fail "background job $p died after the restore"
	done
	kill_leftovers
	check_sequence "$out"
}

# Python with 4 worker threads: all thread ids come back, the main thread
# counts on without a gap, and on SIGUSR1 it checks that every worker still
# makes progress, joins them and writes PASS to result.txt.
test_python_threads() {
	local pid out=$T_LOG/counter.out n tids exe
	start_prog counter "$PYTHON" -u -c '
import os, signal, threading, time
N = 4
counts = [0] * N
total = [0]
lock = threading.Lock()
stop = threading.Event()
def work(k):
    while not stop.is_set():
        with lock:
            counts[k] += 1
            total[0] += 1
        time.sleep(0.005)
threads = [threading.Thread(target=work, args=(k,)) for k in range(N)]
for t in threads:
    t.start()
check = []
signal.signal(signal.SIGUSR1, lambda s, f: check.append(1))
i = 0
while not check:
    i += 1
    print(i, flush=True)
    time.sleep(0.05)
before = list(counts)
time.sleep(0.5)
after = list(counts)
stalled = [k for k in range(N) if after[k] <= before[k]]
stop.set()
for t in threads:
    t.join(5)
alive = [t.name for t in threads if t.is_alive()]
with lock:
    consistent = sum(counts) == total[0]
ok = not stalled and not alive and consistent
with open("result.txt", "w") as f:
    f.write("PASS\n" if ok else "FAIL: stalled workers %s, not joined %s, counts consistent %s\n" % (stalled, alive, consistent))
'
	pid=$PROG_PID
	wait_until "$TMO" has_lines "$out" 5 || fail "python produced no output" "$T_LOG/counter.err" || return
	wait_until 5 task_count_is "$pid" 5 || fail "python has $(ls /proc/$pid/task | wc -l) threads, expected 5" || return
	tids=$(ls "/proc/$pid/task" | sort -n | paste -sd, -)
	exe=$(readlink "/proc/$pid/exe")
	note "python threads: $tids"
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	n=$(line_count "$out")
	restore_foreground restore "$T_WORK/img"
	wait_restored restore "$pid" "$exe" 1 "$RESTORE_PID" || return
	wait_until 5 task_list_is "$pid" "$tids" ||
		fail "thread ids after the restore: $(ls "/proc/$pid/task" | sort -n | paste -sd, -), expected $tids" || return
	wait_until "$TMO" has_lines "$out" $((n + 10)) ||
		fail "python did not count on after the restore ($(line_count "$out") lines, $n at the dump)" "$out" || return
	kill -USR1 "$pid"
	wait_child "$RESTORE_PID" $((TMO * 2))
	[[ $CHILD_RC == 0 ]] || fail "foreground restore exited $CHILD_RC (python's status)" "$T_LOG/counter.err"
	has_line "$T_FILES/result.txt" PASS ||
		fail "python: $(cat "$T_FILES/result.txt" 2>/dev/null || echo "no result.txt")" "$T_LOG/counter.err"
	check_sequence "$out"
}
task_count_is() { (($(ls "/proc/$1/task" 2>/dev/null | wc -l) == $2)); }
task_list_is() { [[ $(ls "/proc/$1/task" 2>/dev/null | sort -n | paste -sd, -) == "$2" ]]; }

run_test real.python_counter test_python_counter
run_test real.sh_counter test_sh_counter
run_test real.sleep test_sleep
run_test real.exit_code test_exit_code
run_test real.shell_job test_shell_job
run_test files.pipe_data test_pipe_data
run_test real.pipeline test_pipeline
run_test files.inherit_fd_pipe test_inherit_fd_pipe
run_test real.sh_bgjobs test_sh_bgjobs
run_test real.python_threads test_python_threads
