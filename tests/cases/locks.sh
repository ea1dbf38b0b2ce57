# File locks (-l/--file-locks): build/tests/locks holds an flock on a
# description it shares with its child, an OFD lock, and POSIX ranges of
# each process (see tests/progs/locks.c). The locks are checked from
# outside (conflicting non-blocking attempts from new descriptions, and
# /proc/locks with the owners' pids) and, after SIGUSR1, by the program
# itself (held, owned, released and taken again).

# Probes from a process of its own; prints OK or what is wrong.
# argv: DIR PARENT CHILD held|free|criu (criu: held, but for the child's
# POSIX lock, which CRIU's dump drops: it was seen on a description the
# parent's fds had already dumped)
LOCKS_CHECK='
import errno, fcntl, os, struct, sys
d, parent, child, want = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
bad = []
def can_flock(name):
    fd = os.open(os.path.join(d, name), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as e:
        if e.errno != errno.EWOULDBLOCK: raise
        return False
    finally:
        os.close(fd)
def can_lock(name, typ, start, length):      # an OFD lock: conflicts with POSIX ones too
    fd = os.open(os.path.join(d, name), os.O_RDWR)
    try:
        fcntl.fcntl(fd, 37, struct.pack("hhqqi", typ, 0, start, length, 0))   # F_OFD_SETLK
        return True
    except OSError as e:
        if e.errno not in (errno.EAGAIN, errno.EACCES): raise
        return False
    finally:
        os.close(fd)
held = want != "free"
def expect(what, got_free, held=held):
    if got_free == held:
        bad.append("%s is %s" % (what, "free" if got_free else "held"))
expect("the flock of flock.dat", can_flock("flock.dat"))
expect("the OFD lock of ofd.dat 100..199", can_lock("ofd.dat", fcntl.F_WRLCK, 100, 100))
expect("the child POSIX lock of posix.dat 10..19", can_lock("posix.dat", fcntl.F_WRLCK, 10, 10),
       want == "held")
expect("the parent POSIX read lock of posix.dat 0..4", can_lock("posix.dat", fcntl.F_WRLCK, 0, 5))
# what must stay free either way
for name, typ, s, l in (("ofd.dat", fcntl.F_WRLCK, 200, 100), ("posix.dat", fcntl.F_WRLCK, 5, 5),
                        ("posix.dat", fcntl.F_RDLCK, 0, 5)):
    if not can_lock(name, typ, s, l):
        bad.append("%s %d..%d is locked against %s" % (name, s, s + l - 1, "read" if typ == fcntl.F_RDLCK else "write"))
# /proc/locks: the held locks, once each, with their owners
# a file is its device and inode (a file of another test may have the same
# inode number on another tmpfs); /proc/locks is read a page at a time,
# each read a new walk of the lists from the index the last one ended at,
# so while other tests lock and unlock meanwhile a lock may show twice or
# not at all (a lock before it went: 9 readings in 3000 missed a lock held
# throughout, with 200 others taken and let go meanwhile). A reading shows
# no lock that is not there, and ours stay as they are while we look: the
# lines of 5 readings, each line once
def file_id(st):
    return (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
ino = {n: file_id(os.stat(os.path.join(d, n))) for n in ("flock.dat", "ofd.dat", "posix.dat")}
seen = {n: [] for n in ino}
for _ in range(5):
    for line in open("/proc/locks"):
        f = line.split()
        if "->" in f: continue
        maj, mnr, i = f[5].split(":")
        for n in ino:
            line_of = " ".join(f[1:5] + f[6:8])
            if ino[n] == (int(maj, 16), int(mnr, 16), int(i)) and line_of not in seen[n]: seen[n].append(line_of)
expected = {"flock.dat": ["FLOCK ADVISORY WRITE %d 0 EOF" % parent],
            "ofd.dat": ["OFDLCK ADVISORY WRITE -1 100 199"],
            "posix.dat": sorted(["POSIX ADVISORY READ %d 0 4" % parent, "POSIX ADVISORY WRITE %d 10 19" % child])}
if want == "criu":
    expected["posix.dat"] = ["POSIX ADVISORY READ %d 0 4" % parent]
for n in ino:
    want_lines = expected[n] if held else []
    if sorted(seen[n]) != want_lines:
        bad.append("/proc/locks for %s: %s, expected %s" % (n, sorted(seen[n]), want_lines))
print("OK" if not bad else "; ".join(bad))
'

# locks_outside WHEN held|free: fails the test unless every lock is as wanted.
locks_outside() {
	local when=$1 want=$2 res
	res=$(timeout "$TMO" "$PYTHON" -c "$LOCKS_CHECK" "$T_FILES" "$LOCKS_PARENT" "$LOCKS_CHILD" "$want" 2>&1)
	note "locks $when ($want): $res"
	[[ $res == OK ]] || fail "$when: $res" "$T_LOG/locks.out"
	[[ $res == OK ]]
}

# Starts the program; sets LOCKS_PARENT, LOCKS_CHILD, LOCKS_EXE.
locks_start() {
	start_prog locks "$BIN/locks"
	wait_ready locks "$PROG_PID" || return 1
	read -r _ LOCKS_PARENT LOCKS_CHILD < <(grep -m1 '^PIDS ' "$T_LOG/locks.out")
	[[ $LOCKS_PARENT == "$PROG_PID" && -n $LOCKS_CHILD ]] || {
		fail "locks printed no PIDS line" "$T_LOG/locks.out"
		return 1
	}
	LOCKS_EXE=$(readlink -f "$BIN/locks")
	locks_outside "before the dump" held
}

# restore -d with --file-locks (and any other ARGS); waits until it runs.
locks_restore_detached() {
	local tag=$1 dir=$2 rc
	shift 2
	rc=$(stasis "$tag" restore -D "$dir" -d --pidfile "$T_WORK/$tag.pid" "$@")
	[[ $rc == 0 ]] || {
		fail "$tag: stasis restore -d $* exited $(rc_text "$rc"): $(error_message "$tag")" "$T_LOG/$tag.log"
		return 1
	}
	wait_restored "$tag" "$LOCKS_PARENT" "$LOCKS_EXE" 1
}

# The program checks itself and exits; not our child after restore -d.
locks_finish_detached() {
	kill -USR1 "$LOCKS_PARENT"
	wait_gone "$LOCKS_PARENT" || fail "restored locks did not exit after SIGUSR1" "$T_LOG/locks.out"
	check_output locks
}

# dump -l, foreground restore -l: held from outside, then from inside.
test_locks_restore() {
	locks_start || return
	dump dump "$LOCKS_PARENT" "$T_WORK/img" --file-locks || return
	expect_killed "$LOCKS_PARENT" || return
	note "stasis restore -D $T_WORK/img --file-locks (foreground)"
	timeout -k 5 $((TMO * 3)) "$STASIS" restore -D "$T_WORK/img" --file-locks -o "$T_LOG/restore.log" -v4 \
		--pidfile "$T_WORK/restore.pid" > "$T_LOG/restore.stdout" 2> "$T_LOG/restore.stderr" < /dev/null &
	RESTORE_PID=$!
	T_PGIDS+=("$RESTORE_PID")
	wait_restored restore "$LOCKS_PARENT" "$LOCKS_EXE" 1 "$RESTORE_PID" || return
	locks_outside "after restore" held || return
	kill -USR1 "$LOCKS_PARENT"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output locks
	[[ $CHILD_RC == 0 ]] || fail "foreground restore exited $CHILD_RC (the program's status)" "$T_LOG/restore.log"
}

# Without --file-locks the dump fails with one line naming the option; the
# tree runs on with its locks untouched.
test_locks_need_option() {
	local rc msg
	locks_start || return
	mkdir -p "$T_WORK/img"
	rc=$(stasis dump dump -t "$LOCKS_PARENT" -D "$T_WORK/img")
	msg=$(error_message dump)
	[[ $rc != 0 ]] || { fail "the dump of a tree holding locks succeeded without --file-locks"; return; }
	[[ $msg == *--file-locks* && $msg == *"pid $LOCKS_PARENT"* && $msg == *.dat* ]] ||
		fail "the dump's error does not name the pid, the file and --file-locks: $msg" "$T_LOG/dump.log"
	wait_until 5 runs_freely "$LOCKS_PARENT" && wait_until 5 runs_freely "$LOCKS_CHILD" ||
		{ fail "the tree does not run freely after the failed dump"; return; }
	locks_outside "after the failed dump" held || return
	kill -USR1 "$LOCKS_PARENT"
	wait_child "$LOCKS_PARENT"
	check_output locks
}

# --leave-running: the dump only reads; the locks stay where they were.
test_locks_leave_running() {
	locks_start || return
	dump dump "$LOCKS_PARENT" "$T_WORK/img" --file-locks --leave-running || return
	wait_until 5 runs_freely "$LOCKS_PARENT" || { fail "the tree is not running after the dump"; return; }
	locks_outside "after a --leave-running dump" held || return
	kill -USR1 "$LOCKS_PARENT"
	wait_child "$LOCKS_PARENT"
	check_output locks
}

# dump, restore, dump the restored tree, restore again.
test_locks_chain() {
	locks_start || return
	dump dump1 "$LOCKS_PARENT" "$T_WORK/img1" --file-locks || return
	expect_killed "$LOCKS_PARENT" || return
	locks_restore_detached restore1 "$T_WORK/img1" --file-locks || return
	locks_outside "after the first restore" held || return
	dump dump2 "$LOCKS_PARENT" "$T_WORK/img2" --file-locks || return
	wait_gone "$LOCKS_PARENT" || { fail "the restored tree survived its dump"; return; }
	locks_restore_detached restore2 "$T_WORK/img2" --file-locks || return
	locks_outside "after the second restore" held || return
	locks_finish_detached
}

# As CRIU: images with locks restored without --file-locks come back
# without them (and stasis warns).
test_locks_restore_without_option() {
	locks_start || return
	dump dump "$LOCKS_PARENT" "$T_WORK/img" --file-locks || return
	expect_killed "$LOCKS_PARENT" || return
	locks_restore_detached restore "$T_WORK/img" || return
	locks_outside "after a restore without --file-locks" free || return
	grep -q "use --file-locks" "$T_LOG/restore.log" ||
		fail "the restore did not warn that it left the locks out" "$T_LOG/restore.log"
}

# Both children of $1 listed as waiting in /proc/locks.
waiters_waiting() {
	local kids k n=0
	kids=$(cat /proc/"$1"/task/*/children 2>/dev/null)
	for k in $kids; do
		awk -v p="$k" '$2 == "->" && $6 == p { f = 1 } END { exit !f }' /proc/locks && n=$((n + 1))
	done
	((n == 2))
}

# Processes blocked waiting for a lock held in the tree (F_SETLKW, flock):
# freezing them for the dump interrupts the wait, which restarts after the
# restore; once the holder lets go they get the locks.
test_locks_waiters() {
	local pid exe
	start_prog waiters "$PYTHON" -c '
import os, fcntl, signal, time
fd = os.open("w.dat", os.O_RDWR | os.O_CREAT)
os.ftruncate(fd, 100)
fcntl.lockf(fd, fcntl.LOCK_EX, 10, 0)
fcntl.flock(fd, fcntl.LOCK_EX)
got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
kids = []
for how in ("posix", "flock"):
    pid = os.fork()
    if pid == 0:
        fd2 = os.open("w.dat", os.O_RDWR)
        if how == "posix":
            fcntl.lockf(fd2, fcntl.LOCK_EX, 10, 0)
        else:
            fcntl.flock(fd2, fcntl.LOCK_EX)
        os._exit(0 if os.path.exists("released") else 3)    # not before the parent lets go
    kids.append(pid)
while sum(l.split()[5] in map(str, kids) for l in open("/proc/locks") if "->" in l) < 2:
    time.sleep(0.01)
print("READY", flush=True)
while not got:
    time.sleep(0.05)
time.sleep(0.3)
if any(os.waitpid(k, os.WNOHANG)[0] for k in kids):
    print("FAIL: a waiter got its lock while the parent held it", flush=True)
open("released", "w").close()
fcntl.lockf(fd, fcntl.LOCK_UN, 10, 0)
fcntl.flock(fd, fcntl.LOCK_UN)
st = [os.waitpid(k, 0)[1] for k in kids]
print("PASS" if st == [0, 0] else "FAIL: waiters exited %s" % st, flush=True)'
	pid=$PROG_PID
	wait_ready waiters "$pid" || return
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" --file-locks || return
	expect_killed "$pid" || return
	rc=$(stasis restore restore -D "$T_WORK/img" -d --file-locks --pidfile "$T_WORK/restore.pid")
	[[ $rc == 0 ]] || { fail "restore exited $(rc_text "$rc"): $(error_message restore)" "$T_LOG/restore.log"; return; }
	wait_restored restore "$pid" "$exe" 1 || return
	wait_until "$TMO" waiters_waiting "$pid" ||
		fail "the restored waiters are not waiting again: $(grep -- "->" /proc/locks)"
	kill -USR1 "$pid"
	wait_gone "$pid" || fail "the restored tree did not finish" "$T_LOG/waiters.out"
	check_output waiters
}

# File leases (F_SETLEASE) belong to their open file description, as
# flock locks do: a read lease, a write lease, and a description of the
# read-leased file without one come back as they were, and each lease
# still works (a non-blocking open that conflicts with it fails with
# EWOULDBLOCK and signals the holder).
test_locks_leases() {
	local pid exe rc
	start_prog leases "$PYTHON" "$PROGS_DIR/leases.py"
	pid=$PROG_PID
	wait_ready leases "$pid" || return
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" --file-locks || return
	expect_killed "$pid" || return
	rc=$(stasis restore restore -D "$T_WORK/img" -d --file-locks --pidfile "$T_WORK/restore.pid")
	[[ $rc == 0 ]] || { fail "restore exited $(rc_text "$rc"): $(error_message restore)" "$T_LOG/restore.log"; return; }
	wait_restored restore "$pid" "$exe" 1 || return
	kill -USR1 "$pid"
	wait_gone "$pid" || fail "the restored program did not finish" "$T_LOG/leases.out"
	check_output leases
}

# With a real CRIU (CRIU_BIN): stasis's dump restored by CRIU, CRIU's
# dump of that restored by stasis, locks held all along; but for the
# child's POSIX lock, which CRIU 4.2's dump drops (it keeps only the locks
# seen on the first fd of a shared description), so the program's own
# checks can't pass in the end: the tree is killed instead.
test_locks_criu_interop() {
	local rc
	locks_start || return
	dump dump "$LOCKS_PARENT" "$T_WORK/img1" --file-locks || return
	expect_killed "$LOCKS_PARENT" || return
	timeout -k 5 "$TMO" "$CRIU_BIN" restore -D "$T_WORK/img1" -d --file-locks -o "$T_LOG/criu-restore.log" \
		-v4 > "$T_LOG/criu-restore.out" 2>&1 < /dev/null
	rc=$?
	[[ $rc == 0 ]] || { fail "CRIU could not restore stasis's images (rc $rc)" "$T_LOG/criu-restore.log"; return; }
	locks_outside "after CRIU's restore" held || return
	mkdir -p "$T_WORK/img2"
	timeout -k 5 "$TMO" "$CRIU_BIN" dump -t "$LOCKS_PARENT" -D "$T_WORK/img2" --file-locks \
		-o "$T_LOG/criu-dump.log" -v4 > "$T_LOG/criu-dump.out" 2>&1 < /dev/null
	rc=$?
	[[ $rc == 0 ]] || { fail "CRIU could not dump the restored tree (rc $rc)" "$T_LOG/criu-dump.log"; return; }
	wait_gone "$LOCKS_PARENT" || { fail "the tree survived CRIU's dump"; return; }
	locks_restore_detached restore "$T_WORK/img2" --file-locks || return
	locks_outside "after stasis restored CRIU's images" criu
}

# With a real CRIU (CRIU_BIN): the leases dumped by stasis, restored and
# dumped by CRIU, restored by stasis, which the program checks.
test_locks_leases_criu_interop() {
	local pid exe rc
	start_prog leases "$PYTHON" "$PROGS_DIR/leases.py"
	pid=$PROG_PID
	wait_ready leases "$pid" || return
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img1" --file-locks || return
	expect_killed "$pid" || return
	timeout -k 5 "$TMO" "$CRIU_BIN" restore -D "$T_WORK/img1" -d --file-locks -o "$T_LOG/criu-restore.log" \
		-v4 > "$T_LOG/criu-restore.out" 2>&1 < /dev/null
	rc=$?
	[[ $rc == 0 ]] || { fail "CRIU could not restore stasis's images (rc $rc)" "$T_LOG/criu-restore.log"; return; }
	mkdir -p "$T_WORK/img2"
	timeout -k 5 "$TMO" "$CRIU_BIN" dump -t "$pid" -D "$T_WORK/img2" --file-locks \
		-o "$T_LOG/criu-dump.log" -v4 > "$T_LOG/criu-dump.out" 2>&1 < /dev/null
	rc=$?
	[[ $rc == 0 ]] || { fail "CRIU could not dump what it restored (rc $rc)" "$T_LOG/criu-dump.log"; return; }
	wait_gone "$pid" "$TMO" || { fail "pid $pid alive after CRIU's dump"; return; }
	rc=$(stasis restore restore -D "$T_WORK/img2" -d --file-locks --pidfile "$T_WORK/restore.pid")
	[[ $rc == 0 ]] || { fail "stasis could not restore CRIU's images (rc $rc): $(error_message restore)" "$T_LOG/restore.log"; return; }
	wait_restored restore "$pid" "$exe" 1 || return
	kill -USR1 "$pid"
	wait_gone "$pid" || fail "the restored program did not finish" "$T_LOG/leases.out"
	check_output leases
}

# A lock someone else took meanwhile: the restore fails, naming the file,
# and leaves nothing of the tree behind.
test_locks_busy() {
	local rc holder msg
	locks_start || return
	dump dump "$LOCKS_PARENT" "$T_WORK/img" --file-locks || return
	expect_killed "$LOCKS_PARENT" || return
	"$PYTHON" -c '
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, 12)
print("HELD", flush=True)
time.sleep(60)' "$T_FILES/posix.dat" > "$T_LOG/holder.out" 2>&1 &
	holder=$!
	T_PIDS+=("$holder")
	wait_until "$TMO" has_line "$T_LOG/holder.out" HELD || { fail "the outside holder could not lock" "$T_LOG/holder.out"; return; }
	rc=$(stasis restore restore -D "$T_WORK/img" -d --file-locks --pidfile "$T_WORK/restore.pid")
	msg=$(error_message restore)
	[[ $rc != 0 ]] || { fail "the restore succeeded though posix.dat byte 12 is held from outside"; return; }
	[[ $msg == *posix.dat* && $msg == *"pid $LOCKS_CHILD"* ]] ||
		fail "the restore's error does not name the child and posix.dat: $msg" "$T_LOG/restore.log"
	wait_gone "$LOCKS_PARENT" 5 && wait_gone "$LOCKS_CHILD" 5 ||
		fail "the failed restore left processes behind"
	kill "$holder"
}

run_test locks.restore test_locks_restore
run_test locks.need_option test_locks_need_option
run_test locks.leases test_locks_leases
run_test --needs criu locks.leases_criu_interop test_locks_leases_criu_interop
run_test locks.leave_running test_locks_leave_running
run_test locks.chain test_locks_chain
run_test locks.restore_without_option test_locks_restore_without_option
run_test locks.waiters test_locks_waiters
run_test locks.busy test_locks_busy
run_test --needs criu locks.criu_interop test_locks_criu_interop
