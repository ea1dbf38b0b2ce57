# More kinds of files: deleted-but-open files (ghosts), FIFOs, memfds,
# --external file[MNT_ID:INODE] with --inherit-fd, and files whose path
# changed between dump and restore. Programs: tests/progs/*.py.

PROGS_DIR=$ROOT/tests/progs

# A chrooted process whose cwd is outside its root (zdtm chroot): both
# come back, and paths resolve inside the root again.
test_chroot() {
	py_dump_restore chroot chroot.py "$T_FILES/newroot"
}

# (1) A deleted file comes back deleted, with its bytes, size, mode and offset.
test_ghost_file() {
	py_dump_restore ghost ghost.py "$T_FILES/ghost.dat" 100000 || return
	[[ -z $(ls "$T_WORK/img"/ghost-file-*.img 2>/dev/null) ]] && fail "no ghost-file image written"
	return 0
}

# A deleted file whose directory is gone too comes back (in the directory
# above), and nothing is left behind.
test_ghost_dir_gone() {
	mkdir "$T_FILES/sub"
	py_dump_restore ghost ghost.py "$T_FILES/sub/g.dat" 5000 rmdir || return
	[[ -z $(ls -A "$T_FILES") ]] || fail "left behind in $T_FILES: $(ls -A "$T_FILES")"
}

# A sparse deleted file, far bigger than --ghost-limit but with little
# data: saved without its holes (the limit counts the space it takes).
test_ghost_sparse() {
	start_prog sparse "$PYTHON" -c '
import os, signal, sys, time
path = sys.argv[1]
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
os.pwrite(fd, b"head" * 1000, 0)
os.pwrite(fd, b"middle" * 1000, 40 << 20)
os.ftruncate(fd, 64 << 20)
os.unlink(path)
got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
print("READY", flush=True)
while not got:
    time.sleep(0.05)
st = os.fstat(fd)
err = None
if st.st_size != 64 << 20 or st.st_nlink != 0:
    err = "size %d nlink %d" % (st.st_size, st.st_nlink)
elif os.pread(fd, 4000, 0) != b"head" * 1000 or os.pread(fd, 6000, 40 << 20) != b"middle" * 1000:
    err = "the data is not back"
elif os.pread(fd, 65536, 20 << 20) != bytes(65536):
    err = "the hole is not zeros"
print("FAIL: " + err if err else "PASS", flush=True)' "$T_FILES/sparse.dat"
	local pid=$PROG_PID exe
	wait_ready sparse "$pid" || return
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	local bytes
	bytes=$(du -cb "$T_WORK/img"/ghost-file-*.img | tail -n1 | cut -f1)
	((bytes < 1048576)) || { fail "the sparse file's ghost image is $bytes bytes"; return; }
	restore_foreground restore "$T_WORK/img"
	wait_restored restore "$pid" "$exe" 1 "$RESTORE_PID" || return
	kill -USR1 "$pid"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output sparse
}

# --ghost-fiemap (the default) finds a deleted file's data by its extents,
# so preallocated space is saved (as zeros); --no-ghost-fiemap seeks the
# data, where a file system may count preallocated space as a hole. The
# file comes back with its data either way.
test_ghost_fiemap() {
	start_prog fiemap "$PYTHON" -c '
import os, signal, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
os.pwrite(fd, b"data" * 1024, 0)
os.posix_fallocate(fd, 1 << 20, 256 << 10)
os.ftruncate(fd, 2 << 20)
os.unlink(sys.argv[1])
got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
print("READY", flush=True)
while not got:
    time.sleep(0.05)
ok = os.pread(fd, 4096, 0) == b"data" * 1024 and os.pread(fd, 4096, 1 << 20) == bytes(4096)
ok = ok and os.fstat(fd).st_size == 2 << 20
print("PASS" if ok else "FAIL: the data is not back", flush=True)' "$T_FILES/prealloc.dat"
	local pid=$PROG_PID exe seek map
	wait_ready fiemap "$pid" || return
	exe=$(readlink "/proc/$pid/exe")
	dump dump1 "$pid" "$T_WORK/img1" -R --no-ghost-fiemap || return
	dump dump2 "$pid" "$T_WORK/img2" --ghost-fiemap || return
	expect_killed "$pid" || return
	seek=$(du -cb "$T_WORK/img1"/ghost-file-*.img | tail -n1 | cut -f1)
	map=$(du -cb "$T_WORK/img2"/ghost-file-*.img | tail -n1 | cut -f1)
	restore_foreground restore "$T_WORK/img2"
	wait_restored restore "$pid" "$exe" 1 "$RESTORE_PID" || return
	kill -USR1 "$pid"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output fiemap || return
	[[ $(stat -f -c %T "$T_FILES") == ext* ]] || { skip "extents compared on ext4 only"; return; }
	((map > 256 * 1024 && seek < 64 * 1024)) ||
		fail "ghost images: $map bytes by extents, $seek by seeking (want > 256K and < 64K)"
}

# (2) Over --ghost-limit the dump fails, naming the file and the option,
# and the program runs on; a higher limit then lets it through.
test_ghost_limit() {
	local pid exe rc
	start_prog ghost "$PYTHON" "$PROGS_DIR/ghost.py" "$T_FILES/big.dat" $((3 << 20))
	pid=$PROG_PID
	wait_ready ghost "$pid" || return
	exe=$(readlink "/proc/$pid/exe")
	rc=$(stasis dump1 dump -t "$pid" -D "$T_WORK/img1")
	[[ $rc != 0 ]] || { fail "a 3 MiB deleted file was dumped under the default 1 MiB ghost limit"; return; }
	grep -q -- "--ghost-limit" "$T_LOG/dump1.stderr" && grep -q "big.dat" "$T_LOG/dump1.stderr" ||
		{ fail "the error does not name the file and --ghost-limit: $(error_message dump1)"; return; }
	sleep 0.3
	runs_freely "$pid" || { fail "the program does not run on after the refused dump"; return; }
	dump dump "$pid" "$T_WORK/img" --ghost-limit 4M || return
	expect_killed "$pid" || return
	restore_foreground restore "$T_WORK/img"
	wait_restored restore "$pid" "$exe" 1 "$RESTORE_PID" || return
	kill -USR1 "$pid"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output ghost
}

# Deleted files that are mapped: a data file (shared and private) and the
# executable itself (a copy of python3, deleted once it runs).
test_ghost_mapped() {
	local pid exe size
	cp "$(readlink -f "$PYTHON")" "$T_FILES/py-ghost"
	size=$(stat -c %s "$T_FILES/py-ghost")
	start_prog gmap "$T_FILES/py-ghost" "$PROGS_DIR/ghostmap.py" "$T_FILES/map.dat"
	pid=$PROG_PID
	wait_ready gmap "$pid" || return
	rm "$T_FILES/py-ghost"
	exe=$(readlink "/proc/$pid/exe")
	[[ $exe == *" (deleted)" ]] || { fail "harness: exe is $exe, not deleted"; return; }
	dump dump "$pid" "$T_WORK/img" --ghost-limit $((size + 4096)) || return
	expect_killed "$pid" || return
	restore_foreground restore "$T_WORK/img"
	wait_restored restore "$pid" "$exe" 1 "$RESTORE_PID" || return
	kill -USR1 "$pid"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output gmap
	[[ ! -e $T_FILES/py-ghost && ! -e $T_FILES/map.dat ]] || fail "a recreated ghost was left behind"
}

# Deleted directories (an fd and the working directory), FIFOs and device
# nodes come back deleted, as ghosts recreated at their path and removed.
# (a device node can't be made on a file system mounted nodev, as /tmp is
# in the 6.1 VM: skipped there, saying so)
nodes_allowed() {
	[[ ,$(findmnt -no OPTIONS -T "$1"), != *,nodev,* ]] ||
		{ skip "$1 is on a file system mounted nodev: no device node can be made there"; return 1; }
}

test_ghost_nodes() {
	mkdir "$T_FILES/nodes"
	nodes_allowed "$T_FILES/nodes" || return
	py_dump_restore nodes ghost_nodes.py "$T_FILES/nodes" || return
	[[ -z $(ls -A "$T_FILES/nodes") ]] || fail "left behind: $(ls -A "$T_FILES/nodes")"
}

# Files on /proc read part way: their size (0) means nothing, and the
# offset comes back (it was refused as past the end of the file).
test_proc_files() {
	py_dump_restore procf -c '
import os, signal, time
fd = os.open("/proc/sys/fs/nr_open", os.O_RDONLY)
want = os.read(fd, 3)
rest = os.pread(fd, 64, 3)
maps = os.open("/proc/self/maps", os.O_RDONLY)
os.read(maps, 100)
got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
print("READY", flush=True)
while not got:
    time.sleep(0.05)
pos = os.lseek(fd, 0, os.SEEK_CUR)
err = None
if pos != 3 or os.read(fd, 64) != rest:
    err = "nr_open at %d, not 3, or reads another rest" % pos
elif os.lseek(maps, 0, os.SEEK_CUR) != 100:
    err = "maps at %d, not 100" % os.lseek(maps, 0, os.SEEK_CUR)
print("FAIL: " + err if err else "PASS", flush=True)'
}

# Files of /proc/PID of processes of the tree (a child, a grandchild) are
# opened once those processes are back, and show them.
test_proc_of_tree() {
	py_dump_restore proctree -c '
import os, signal, time
def sleeper():
    signal.pause()
    os._exit(0)
child = os.fork()
if child == 0:
    grand = os.fork()
    if grand == 0:
        sleeper()
    sleeper()
while True:
    kids = open("/proc/%d/task/%d/children" % (child, child)).read().split()
    if kids:
        break
    time.sleep(0.01)
grand = int(kids[0])
fds = {pid: os.open("/proc/%d/stat" % pid, os.O_RDONLY) for pid in (child, grand)}
got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
print("READY", flush=True)
while not got:
    time.sleep(0.05)
err = None
for pid, fd in fds.items():
    line = os.pread(fd, 200, 0).decode()
    if not line.startswith("%d (" % pid):
        err = "/proc/%d/stat reads %r" % (pid, line[:40])
os.kill(grand, 9)
os.kill(child, 9)
print("FAIL: " + err if err else "PASS", flush=True)'
}

# --link-remap: a deleted file still named elsewhere is kept by a new
# hard link, and is the same file after restore; the link is gone then.
test_link_remap() {
	mkdir "$T_FILES/d"
	DUMP_ARGS=--link-remap py_dump_restore lremap linkremap.py "$T_FILES/d/f" "$T_FILES/other" || return
	[[ $(ls -A "$T_FILES/d") == "" ]] || fail "left behind in the directory: $(ls -A "$T_FILES/d")"
}

# A dump that fails after making a link remap removes it: the tree goes
# on as it was, and its directory too.
test_link_remap_undo() {
	local pid rc
	mkdir "$T_FILES/d"
	printf '#!/bin/sh\n[ "$CRTOOLS_SCRIPT_ACTION" = post-dump ] && exit 1\nexit 0\n' > "$T_WORK/fail-post.sh"
	chmod +x "$T_WORK/fail-post.sh"
	start_prog lremap "$PYTHON" "$PROGS_DIR/linkremap.py" "$T_FILES/d/f" "$T_FILES/other"
	pid=$PROG_PID
	wait_ready lremap "$pid" || return
	rc=$(stasis dump dump -t "$pid" -D "$T_WORK/img" --link-remap --action-script "$T_WORK/fail-post.sh")
	[[ $rc != 0 ]] || { fail "the dump succeeded though post-dump said no"; return; }
	[[ $(ls -A "$T_FILES/d") == "" ]] || fail "the failed dump left $(ls -A "$T_FILES/d")"
	runs_freely "$pid" || fail "the program does not run on after the failed dump"
}

# The /proc entry of a dead process (cwd and fd) comes back unhashed: a
# helper holds the pid while it is opened (as CRIU).
test_dead_proc() {
	py_dump_restore deadproc deadproc.py || return
	[[ -n $(ls "$T_WORK/img"/remap-fpath.img 2>/dev/null) ]] || fail "no remap-fpath.img written"
}

# fds on namespaces (/proc/self/ns/NAME) come back on the namespaces the
# process is restored in.
test_ns_files() {
	py_dump_restore nsfd nsfd.py
}

# An fd on a namespace no process of the tree is in is refused at dump,
# naming the fd (as CRIU), and the tree runs on.
test_ns_file_foreign() {
	local pid rc
	start_prog nsout "$PYTHON" -c '
import ctypes, os, time
r, w = os.pipe()
child = os.fork()
if child == 0:
    ctypes.CDLL(None, use_errno=True).unshare(0x04000000)   # CLONE_NEWUTS
    os.write(w, b"x")
    time.sleep(1000)
os.read(r, 1)
fd = os.open("/proc/%d/ns/uts" % child, os.O_RDONLY)
os.kill(child, 9)
os.waitpid(child, 0)
os.dup2(fd, 7)
os.close(fd)
print("READY", flush=True)
time.sleep(1000)'
	pid=$PROG_PID
	wait_ready nsout "$pid" || return
	rc=$(stasis dump dump -t "$pid" -D "$T_WORK/img")
	[[ $rc != 0 ]] || { fail "an fd on a namespace of no process of the tree was dumped"; return; }
	grep -q "pid $pid: fd 7 (namespace uts:.*no process of the tree" "$T_LOG/dump.stderr" ||
		{ fail "the error does not name the fd: $(error_message dump)"; return; }
	sleep 0.3
	runs_freely "$pid" || fail "the program does not run on after the refused dump"
}

# A regular file whose size changed since the dump is not the file the
# task had: restore refuses it, naming it (as CRIU). A file only appended
# to (O_WRONLY|O_APPEND, a log) may grow.
test_size_changed() {
	local pid exe rc
	printf 'twelve bytes' > "$T_FILES/data"
	: > "$T_FILES/log"
	start_prog sized "$PYTHON" -c '
import os, signal, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
log = os.open(sys.argv[2], os.O_WRONLY | os.O_APPEND)
os.write(log, b"one\n")
got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
print("READY", flush=True)
while not got:
    time.sleep(0.05)
os.write(log, b"three\n")
ok = os.pread(fd, 64, 0) == b"twelve bytes" and os.fstat(log).st_size == 14
print("PASS" if ok else "FAIL: the files are not back", flush=True)' "$T_FILES/data" "$T_FILES/log"
	pid=$PROG_PID
	wait_ready sized "$pid" || return
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	echo "two" >> "$T_FILES/log"
	echo "grown" >> "$T_FILES/data"
	rc=$(stasis restore1 restore -D "$T_WORK/img" -d --pidfile "$T_WORK/restore1.pid")
	[[ $rc != 0 ]] || { fail "restore succeeded with a file grown since the dump"; return; }
	grep -q "data is now 18 bytes, it was 12 at dump" "$T_LOG/restore1.stderr" ||
		{ fail "the error does not name the file and its sizes: $(error_message restore1)"; return; }
	wait_gone "$pid" "$TMO" || { fail "the failed restore left pid $pid behind"; return; }
	printf 'twelve bytes' > "$T_FILES/data"
	restore_foreground restore "$T_WORK/img"
	wait_restored restore "$pid" "$exe" 1 "$RESTORE_PID" || return
	kill -USR1 "$pid"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output sized
}

# A program run from a copy of its binary whose build-id note is changed
# after the dump (the same size: only the build-id tells): restore refuses
# it by name, and with --file-validation filesize takes it; the dump
# saved the build-id of the mapped binary (crit shows it).
test_build_id_changed() {
	local pid rc id
	cp "$BIN/mem_flags" "$T_FILES/prog"
	id=$(readelf -n "$T_FILES/prog" | awk '/Build ID/ { print $3 }')
	[[ -n $id ]] || { fail "mem_flags has no build-id to change (readelf -n)"; return; }
	start_prog prog "$T_FILES/prog"
	pid=$PROG_PID
	wait_ready prog "$pid" || return
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	"$STASIS" crit show "$T_WORK/img/files.img" | grep -q '"build_id"' ||
		{ fail "files.img has no build_id for the mapped binary"; return; }
	"$PYTHON" - "$T_FILES/prog" "$id" <<'PY' || { fail "could not change the build-id of the copy"; return; }
import sys
path, hexid = sys.argv[1], sys.argv[2]
data = bytearray(open(path, "rb").read())
at = data.find(bytes.fromhex(hexid))
assert at >= 0
data[at] ^= 0xff
open(path, "wb").write(data)
PY
	rc=$(stasis restore1 restore -D "$T_WORK/img" -d --pidfile "$T_WORK/restore1.pid")
	[[ $rc != 0 ]] || { fail "restore succeeded with a binary rebuilt since the dump"; return; }
	grep -q "prog has another build-id than at the dump" "$T_LOG/restore1.stderr" ||
		{ fail "the error does not name the file and its build-id: $(error_message restore1)"; return; }
	wait_gone "$pid" "$TMO" || { fail "the failed restore left pid $pid behind"; return; }
	restore_foreground restore "$T_WORK/img" --file-validation filesize
	wait_restored restore "$pid" "$T_FILES/prog" 1 "$RESTORE_PID" || return
	kill -USR1 "$pid"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output prog
}

# (3) A FIFO between two processes, with unread bytes, byte-exact after
# restore and still flowing.
test_fifo() {
	py_dump_restore fifo fifo.py "$T_FILES/fifo" || return
	[[ -s $T_WORK/img/fifo-data.img ]] || fail "no fifo-data.img written"
}

# (4) A memfd: bytes, hole, seals, name, offsets, one inode for all fds.
test_memfd() {
	py_dump_restore memfd memfd.py
}

# A memfd held only by mappings, shared by two processes and private.
test_memfd_mapped() {
	py_dump_restore memfdmap memfd_map.py
}

# A memfd mapped shared and writable, then sealed F_SEAL_FUTURE_WRITE, can't
# be mapped writable again: refused by name.
test_memfd_future_write() {
	local pid rc
	start_prog mmfd "$PYTHON" -c '
import os, mmap, time, fcntl
fd = os.memfd_create("fw", os.MFD_ALLOW_SEALING)
os.ftruncate(fd, 8192)
m = mmap.mmap(fd, 8192)
fcntl.fcntl(fd, 1033, 0x10)   # F_ADD_SEALS F_SEAL_FUTURE_WRITE
print("READY", flush=True)
time.sleep(1000)'
	pid=$PROG_PID
	wait_ready mmfd "$pid" || return
	rc=$(stasis dump dump -t "$pid" -D "$T_WORK/img")
	[[ $rc != 0 ]] || { fail "a memfd mapped writable under F_SEAL_FUTURE_WRITE was dumped"; return; }
	grep -q "F_SEAL_FUTURE_WRITE" "$T_LOG/dump.stderr" || { fail "the error does not explain: $(error_message dump)"; return; }
	sleep 0.3
	runs_freely "$pid" || fail "the program does not run on after the refused dump"
}

# (5) --external file[MNT:INO]: the file is not reopened by path; restore
# needs --inherit-fd, and fails clearly without it.
test_external_file() {
	local pid exe mnt ino res rc w
	start_prog ext "$PYTHON" "$PROGS_DIR/extfile.py" "$T_FILES/old.log"
	pid=$PROG_PID
	wait_ready ext "$pid" || return
	exe=$(readlink "/proc/$pid/exe")
	mnt=$(awk '$1 == "mnt_id:" { print $2 }' "/proc/$pid/fdinfo/7")
	ino=$(stat -L -c %i "/proc/$pid/fd/7")
	res=$(printf 'file[%x:%x]' "$mnt" "$ino")
	# unreachable by path: it would be a ghost file if it weren't external
	rm -f "$T_FILES/old.log"
	dump dump "$pid" "$T_WORK/img" --external "$res" || return
	expect_killed "$pid" || return
	[[ -z $(ls "$T_WORK/img"/ghost-file-*.img 2>/dev/null) ]] || { fail "the external file was saved as a ghost"; return; }
	rc=$(stasis restore1 restore -D "$T_WORK/img" -d --pidfile "$T_WORK/restore1.pid")
	[[ $rc != 0 ]] || { fail "restore without --inherit-fd for $res succeeded"; return; }
	grep -qF -- "--inherit-fd" "$T_LOG/restore1.stderr" && grep -qF "$res" "$T_LOG/restore1.stderr" ||
		{ fail "the error does not name $res and --inherit-fd: $(error_message restore1)"; return; }
	wait_gone "$pid" "$TMO" || { fail "the failed restore left pid $pid behind"; return; }
	exec {w}>> "$T_FILES/new.log"
	rc=$(stasis restore restore -D "$T_WORK/img" -d --pidfile "$T_WORK/restore.pid" --inherit-fd "fd[$w]:$res")
	exec {w}>&-
	[[ $rc == 0 ]] || { fail "restore with --inherit-fd fd[N]:$res failed: $(error_message restore)" "$T_LOG/restore.log"; return; }
	wait_restored restore "$pid" "$exe" 1 || return
	kill -USR1 "$pid"
	wait_until "$TMO" has_line "$T_FILES/new.log" "after restore" ||
		{ fail "the restored process did not write into the inherited file"; return; }
	[[ ! -e $T_FILES/old.log ]] || fail "the old path was recreated"
	check_output ext
}

# (6) A file whose path changed: a directory in its place, then nothing.
# Restore fails naming the path and the fd, and leaves nothing behind.
test_missing_file() {
	local pid exe rc
	echo "some data" > "$T_FILES/data.txt"
	start_prog miss "$PYTHON" -c '
import os, time, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.dup2(fd, 9)
os.close(fd)
print("READY", flush=True)
time.sleep(1000)' "$T_FILES/data.txt"
	pid=$PROG_PID
	wait_ready miss "$pid" || return
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	rm "$T_FILES/data.txt"
	mkdir "$T_FILES/data.txt"
	rc=$(stasis restore1 restore -D "$T_WORK/img" -d --pidfile "$T_WORK/restore1.pid")
	[[ $rc != 0 ]] || { fail "restore succeeded with a directory where the file was"; return; }
	grep -q "data.txt was a regular file at dump and is now a directory" "$T_LOG/restore1.stderr" ||
		{ fail "the error does not explain the directory: $(error_message restore1)"; return; }
	wait_gone "$pid" "$TMO" || { fail "the failed restore left pid $pid behind"; return; }
	rmdir "$T_FILES/data.txt"
	rc=$(stasis restore2 restore -D "$T_WORK/img" -d --pidfile "$T_WORK/restore2.pid")
	[[ $rc != 0 ]] || { fail "restore succeeded with the file missing"; return; }
	grep -q "data.txt" "$T_LOG/restore2.stderr" && grep -q "fd 9 of pid $pid" "$T_LOG/restore2.stderr" ||
		{ fail "the error does not name the path and fd 9 of pid $pid: $(error_message restore2)"; return; }
	wait_gone "$pid" "$TMO" || { fail "the failed restore left pid $pid behind"; return; }
	[[ ! -e $T_FILES/data.txt ]] || fail "the restore created $T_FILES/data.txt"
}

# On dump: a path that now names another file is refused.
test_replaced_file() {
	local pid rc
	echo "old" > "$T_FILES/r.txt"
	start_prog repl "$PYTHON" -c '
import os, time, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.rename(sys.argv[1], sys.argv[1] + ".moved")
os.mkdir(sys.argv[1] + ".d")
print("READY", flush=True)
time.sleep(1000)' "$T_FILES/r.txt"
	pid=$PROG_PID
	wait_ready repl "$pid" || return
	# the fd now shows r.txt.moved; bind-mount another file over it so the
	# path names another inode
	echo "new" > "$T_FILES/other.txt"
	mount --bind "$T_FILES/other.txt" "$T_FILES/r.txt.moved" || { fail "can't bind-mount"; return; }
	rc=$(stasis dump dump -t "$pid" -D "$T_WORK/img")
	umount "$T_FILES/r.txt.moved"
	[[ $rc != 0 ]] || { fail "a file hidden by another at its path was dumped"; return; }
	grep -q "no longer names the open file" "$T_LOG/dump.stderr" ||
		{ fail "the error does not explain the replaced path: $(error_message dump)"; return; }
	sleep 0.3
	runs_freely "$pid" || fail "the program does not run on after the refused dump"
}

# With CRIU_BIN: a program of tests/progs dumped by stasis and restored by
# CRIU, then dumped by CRIU and restored by stasis; it checks itself after
# the second restore (and its images must have decoded the first time).
# fm_interop LABEL PROG.py|PROG [ARGS...]  (PROG: a C program of tests/progs;
# DUMP_ARGS, CRIU_DUMP_ARGS: extra dump options)
fm_interop() {
	local label=$1 prog=$2 pid exe rc
	shift 2
	if [[ $prog == *.py ]]; then
		start_prog "$label" "$PYTHON" "$PROGS_DIR/$prog" "$@"
	else
		start_prog "$label" "$BIN/$prog" "$@"
	fi
	pid=$PROG_PID
	wait_ready "$label" "$pid" || return
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img1" ${DUMP_ARGS:-} || return
	expect_killed "$pid" || return
	timeout -k 5 "$TMO" "$CRIU_BIN" restore -D "$T_WORK/img1" -d -o "$T_LOG/criu-restore.log" -v4 \
		> "$T_LOG/criu-restore.out" 2>&1 < /dev/null
	rc=$?
	[[ $rc == 0 ]] || { fail "CRIU could not restore stasis's images (rc $rc)" "$T_LOG/criu-restore.log"; return; }
	mkdir -p "$T_WORK/img2"
	timeout -k 5 "$TMO" "$CRIU_BIN" dump -t "$pid" -D "$T_WORK/img2" ${CRIU_DUMP_ARGS:-} -o "$T_LOG/criu-dump.log" -v4 \
		> "$T_LOG/criu-dump.out" 2>&1 < /dev/null
	rc=$?
	[[ $rc == 0 ]] || { fail "CRIU could not dump what it restored (rc $rc)" "$T_LOG/criu-dump.log"; return; }
	wait_gone "$pid" "$TMO" || { fail "pid $pid alive after CRIU's dump"; return; }
	wait_until "$TMO" session_empty "$pid" || { fail "the tree of $pid outlived CRIU's dump"; return; }
	restore_foreground restore "$T_WORK/img2"
	wait_restored restore "$pid" "$exe" 1 "$RESTORE_PID" || return
	kill -USR1 "$pid"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output "$label"
}

test_interop_ghost() { fm_interop ghost ghost.py "$T_FILES/ghost.dat" 100000; }
test_interop_ghost_nodes() {
	mkdir "$T_FILES/nodes"
	nodes_allowed "$T_FILES/nodes" && fm_interop nodes ghost_nodes.py "$T_FILES/nodes"
}
test_interop_ns_files() { fm_interop nsfd nsfd.py; }
test_interop_dead_proc() { fm_interop deadproc deadproc.py; }
test_interop_link_remap() {
	mkdir "$T_FILES/d"
	DUMP_ARGS=--link-remap CRIU_DUMP_ARGS=--link-remap fm_interop lremap linkremap.py "$T_FILES/d/f" "$T_FILES/other"
}
test_interop_fifo() { fm_interop fifo fifo.py "$T_FILES/fifo"; }
test_interop_memfd() { fm_interop memfd memfd.py; }
test_interop_memfd_map() { fm_interop memfdmap memfd_map.py; }
# status flags per open file description, fds' owners, O_PATH on symlinks
test_interop_fdflags() { fm_interop fdflags fdflags; }
# processes sharing one fd table (CLONE_FILES): ids' files_id
test_interop_fdt_shared() { fm_interop fdt_shared fdt_shared; }

run_test files.chroot test_chroot
run_test files.ghost test_ghost_file
run_test files.ghost_dir_gone test_ghost_dir_gone
run_test files.ghost_sparse test_ghost_sparse
run_test files.ghost_limit test_ghost_limit
run_test files.ghost_fiemap test_ghost_fiemap
run_test files.ghost_mapped test_ghost_mapped
run_test files.ghost_nodes test_ghost_nodes
run_test files.proc_files test_proc_files
run_test files.proc_of_tree test_proc_of_tree
run_test files.ns_files test_ns_files
run_test files.dead_proc test_dead_proc
run_test files.link_remap test_link_remap
run_test files.link_remap_undo test_link_remap_undo
run_test files.ns_file_foreign test_ns_file_foreign
run_test files.size_changed test_size_changed
run_test files.build_id_changed test_build_id_changed
run_test files.fifo test_fifo
run_test files.memfd test_memfd
run_test files.memfd_mapped test_memfd_mapped
run_test files.memfd_future_write test_memfd_future_write
run_test files.external test_external_file
run_test files.missing test_missing_file
run_test files.replaced test_replaced_file
run_test --needs criu interop.criu_ghost test_interop_ghost
run_test --needs criu interop.criu_fifo test_interop_fifo
run_test --needs criu interop.criu_ghost_nodes test_interop_ghost_nodes
run_test --needs criu interop.criu_ns_files test_interop_ns_files
run_test --needs criu interop.criu_dead_proc test_interop_dead_proc
run_test --needs criu interop.criu_link_remap test_interop_link_remap
run_test --needs criu interop.criu_memfd test_interop_memfd
run_test --needs criu interop.criu_memfd_map test_interop_memfd_map
run_test --needs criu interop.criu_fdflags test_interop_fdflags
run_test --needs criu interop.criu_fdt_shared test_interop_fdt_shared
