# epoll sets whose targets moved, inotify watches on deleted files,
# fanotify groups and pidfds (src/files/{epoll,inotify,fanotify,pidfd}.c):
# python programs of tests/progs that check from inside after restore.

# The same through CRIU both ways: stasis's dump restored by CRIU, CRIU's
# dump of that restored by stasis.  nf_interop LABEL PROG.py [ARGS...]
nf_interop() {
	local label=$1 prog=$2 pid exe rc
	shift 2
	start_prog "$label" "$PYTHON" "$ROOT/tests/progs/$prog" "$@"
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
	timeout -k 5 "$TMO" "$CRIU_BIN" dump -t "$pid" -D "$T_WORK/img2" -o "$T_LOG/criu-dump.log" -v4 \
		${CRIU_DUMP_ARGS:-} > "$T_LOG/criu-dump.out" 2>&1 < /dev/null
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

# CRIU's dump restored by stasis only.  nf_from_criu LABEL PROG.py [ARGS...]
nf_from_criu() {
	local label=$1 prog=$2 pid exe rc
	shift 2
	start_prog "$label" "$PYTHON" "$ROOT/tests/progs/$prog" "$@"
	pid=$PROG_PID
	wait_ready "$label" "$pid" || return
	exe=$(readlink "/proc/$pid/exe")
	mkdir -p "$T_WORK/img"
	timeout -k 5 "$TMO" "$CRIU_BIN" dump -t "$pid" -D "$T_WORK/img" -o "$T_LOG/criu-dump.log" -v4 \
		${CRIU_DUMP_ARGS:-} > "$T_LOG/criu-dump.out" 2>&1 < /dev/null
	rc=$?
	[[ $rc == 0 ]] || { fail "CRIU could not dump (rc $rc)" "$T_LOG/criu-dump.log"; return; }
	expect_killed "$pid" || return
	restore_foreground restore "$T_WORK/img"
	wait_restored restore "$pid" "$exe" 1 "$RESTORE_PID" || return
	kill -USR1 "$pid"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output "$label"
}

run_test notify.epoll_moved py_dump_restore epoll epoll_moved.py
run_test --needs criu interop.criu_epoll_moved nf_interop epoll epoll_moved.py

run_test notify.pidfds py_dump_restore pidfds pidfds.py
run_test --needs criu interop.criu_pidfds nf_interop pidfds pidfds.py

# A pidfd of a process outside the dumped tree (the parent of its root):
# it would name nothing after the restore, so the dump must refuse,
# naming the fd and the pid, and leave the tree running.
nf_pidfd_outside() {
	local pid rc parent
	start_prog pfout "$PYTHON" -c '
import os, signal
me = os.pidfd_open(os.getpid())
pid = os.fork()
if pid == 0:
    print("READY", flush=True)
    signal.pause()
    os._exit(0)
print("CHILD", pid, flush=True)
os.waitpid(pid, 0)'
	parent=$PROG_PID
	# the child's READY and the parent's CHILD line share the file: the
	# two can come out on one line
	wait_until "$TMO" grep -q 'CHILD [0-9]' "$T_LOG/pfout.out" || { fail "harness: no child"; return; }
	pid=$(grep -o 'CHILD [0-9]*' "$T_LOG/pfout.out" | awk '{ print $2 }')
	T_PIDS+=("$pid")
	mkdir -p "$T_WORK/img"
	rc=$(stasis dump dump -t "$pid" -D "$T_WORK/img")
	[[ $rc != 0 ]] || { fail "the dump of a pidfd of a process outside the tree succeeded"; return; }
	error_message dump | grep -q "pidfd of pid $parent, which is not in the dumped tree" ||
		fail "the refusal does not name the pidfd and pid $parent: $(error_message dump)" "$T_LOG/dump.log"
	wait_until 5 runs_freely "$pid" || fail "pid $pid not left running after the refused dump"
}
run_test notify.pidfd_outside nf_pidfd_outside

# inotify watches on a deleted file still open: restored on the recreated
# file (as CRIU restores them on its ghost). With CRIU one way only: CRIU
# 4.2 drops such a watch when it restores its own ghost file (it unlinks
# the ghost's second name, the one the watch was added through, and the
# kernel then removes the inode's marks), so stasis's images are not
# restored by CRIU here; zdtm's inotify00 runs with --link-remap.
nf_inotify_deleted() { py_dump_restore ify inotify_deleted.py "$T_FILES"; }
nf_inotify_deleted_criu() { nf_from_criu ify inotify_deleted.py "$T_FILES"; }
run_test notify.inotify_deleted nf_inotify_deleted
run_test --needs criu interop.criu_inotify_deleted.from_criu nf_inotify_deleted_criu

# The same in a chroot whose filesystem shows only a bind mount of
# another of its directories (as `ip netns` leaves /run/netns in CI's
# fresh root): the deleted file is found through the chroot's own root,
# not through that mount, which does not reach it (the dump refused the
# watch as on a file nobody has open). A tmpfs holds both directories;
# stasis, the program and their files are in the chroot.
nf_inotify_deleted_chroot() {
	local base=$T_WORK/fs
	mkdir -p "$base"
	# (under a chroot whose root is no mount point, as CI's fresh root,
	# no mount namespace can be made private: the tmpfs would show in ours)
	unshare -m --propagation private true 2> /dev/null ||
		{ skip "a mount namespace of its own with private mounts (our root is no mount point)"; return; }
	timeout -k 5 $((TMO * 3)) unshare -m --propagation private bash -c '
		base=$1 root=$2 stasis=$3 python=$4
		mount -t tmpfs stasis-test "$base" && mkdir -p "$base/cr" "$base/other" || exit 1
		for d in /usr /etc /dev "$root"; do mkdir -p "$base/cr$d" && mount --bind "$d" "$base/cr$d" || exit 1; done
		mkdir -p "$base/cr/other" "$base/cr/proc" "$base/cr/tmp/d" "$base/cr/tmp/img"
		mount --bind "$base/other" "$base/cr/other" && mount -t proc proc "$base/cr/proc" || exit 1
		for l in lib lib64 bin sbin; do [[ -L /$l ]] && ln -s "usr/$l" "$base/cr/$l"; done
		exec chroot "$base/cr" /usr/bin/bash -c "
			cd /tmp; setsid $python $root/tests/progs/inotify_deleted.py /tmp/d > prog.out 2>&1 < /dev/null &
			pid=\$!
			for i in \$(seq 100); do grep -q READY /tmp/prog.out && break; sleep 0.1; done
			$stasis dump -t \$pid -D /tmp/img -o dump.log -v4 > dump.err 2>&1 || { cat dump.err; kill -9 \$pid; exit 2; }
			$stasis restore -D /tmp/img -d -o restore.log -v4 > restore.err 2>&1 || { cat restore.err; exit 3; }
			kill -USR1 \$pid
			for i in \$(seq 100); do grep -q \"^PASS\\|^FAIL\" /tmp/prog.out && break; sleep 0.1; done
			kill -9 \$pid 2>/dev/null
			cat /tmp/prog.out"
	' chroot "$base" "$ROOT" "$STASIS" "$PYTHON" > "$T_LOG/chroot.out" 2>&1
	local rc=$?
	[[ $rc == 0 ]] || { fail "in the chroot (exit $rc): $(grep -m1 Error "$T_LOG/chroot.out" || tail -n1 "$T_LOG/chroot.out")" "$T_LOG/chroot.out"; return; }
	grep -q "^PASS" "$T_LOG/chroot.out" || fail "the restored program in the chroot: $(grep -m1 FAIL "$T_LOG/chroot.out")" "$T_LOG/chroot.out"
}
run_test notify.inotify_deleted_chroot nf_inotify_deleted_chroot

# A watch on a deleted file that only a process outside the tree has open:
# nothing of the tree keeps it, so the dump must refuse, naming the watch;
# with --force-irmap the scan can't find it either, and the refusal says
# where to point it (--irmap-scan-path). The tree runs on either way.
nf_inotify_deleted_outside() {
	local pid rc parent opt
	start_prog ifyout "$PYTHON" -c '
import ctypes, os, signal
libc = ctypes.CDLL(None, use_errno=True)
keep = os.open("victim", os.O_CREAT | os.O_RDWR, 0o600)
pid = os.fork()
if pid == 0:
    os.close(keep)
    fd = libc.inotify_init1(0)
    if fd < 0 or libc.inotify_add_watch(fd, b"victim", 2) < 0:
        print("FAIL: setup", flush=True)
    os.unlink("victim")
    print("READY", flush=True)
    signal.pause()
    os._exit(0)
print("CHILD", pid, flush=True)
os.waitpid(pid, 0)'
	parent=$PROG_PID
	wait_until "$TMO" grep -q READY "$T_LOG/ifyout.out" || { fail "harness: no child"; return; }
	pid=$(awk '$1 == "CHILD" { print $2 }' "$T_LOG/ifyout.out")
	T_PIDS+=("$pid")
	for opt in "" --force-irmap; do
		rm -rf "$T_WORK/img"
		mkdir -p "$T_WORK/img"
		rc=$(stasis dump$opt dump -t "$pid" -D "$T_WORK/img" $opt --irmap-scan-path "$T_FILES")
		[[ $rc != 0 ]] || { fail "the dump$opt of a watch on a file open outside the tree succeeded"; return; }
		if [[ -z $opt ]]; then
			error_message dump | grep -q "inotify watch 1 is on a file that is deleted.*no process of the tree has open" ||
				fail "the refusal does not say the watched file is deleted and not open: $(error_message dump)" "$T_LOG/dump.log"
		else
			error_message dump--force-irmap | grep -q "can't find a path for inotify watch 1.*--irmap-scan-path" ||
				fail "the --force-irmap refusal does not name the watch and --irmap-scan-path: $(error_message dump--force-irmap)" "$T_LOG/dump--force-irmap.log"
		fi
		wait_until 5 runs_freely "$pid" || { fail "pid $pid not left running after the refused dump$opt"; return; }
	done
}
run_test notify.inotify_deleted_outside nf_inotify_deleted_outside

# --force-irmap and --irmap-scan-path (CRIU's options, zdtm inotify_irmap)
# with watches whose handle gives their path: the path is used, and the
# watches work after the restore.
nf_irmap_opts() {
	DUMP_ARGS="--force-irmap --irmap-scan-path $T_FILES" py_dump_restore ify inotify_deleted.py "$T_FILES" linked
}
run_test notify.inotify_irmap_opts nf_irmap_opts

# A fanotify group with inode marks (one on a deleted file still open)
# and mount marks (zdtm fanotify00). With CRIU: both ways with the file
# left in place, and CRIU's dump restored by stasis with it deleted (CRIU
# 4.2 loses the mark on a deleted file when it restores its own ghost, as
# for inotify above).
# (its files on /dev/shm: the mount it marks must be one the process sees,
# and under a chroot the mount of /tmp may not be; with CRIU in /tmp, as
# CRIU's irmap finds no path for a deleted file on tmpfs)
nf_fanotify() { make_shm_dir && py_dump_restore fan fanotify_marks.py "$SHM_DIR"; }
nf_fanotify_criu() { nf_from_criu fan fanotify_marks.py "$T_FILES"; }
nf_fanotify_linked_criu() { nf_interop fan fanotify_marks.py "$T_FILES" linked; }
run_test notify.fanotify nf_fanotify
run_test --needs criu interop.criu_fanotify nf_fanotify_linked_criu
run_test --needs criu interop.criu_fanotify.from_criu nf_fanotify_criu

# A fanotify mark on a whole filesystem (FAN_MARK_FILESYSTEM), which CRIU
# does not save either: the dump must refuse, naming the fd, and leave the
# process running.
nf_fanotify_fs_mark() {
	local pid rc
	start_prog fanfs "$PYTHON" -c '
import ctypes, os, signal
libc = ctypes.CDLL(None, use_errno=True)
libc.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int, ctypes.c_char_p]
fa = libc.fanotify_init(0, os.O_RDONLY)
if fa < 0 or libc.fanotify_mark(fa, 0x1 | 0x100, 0x2, -100, b".") < 0:
    print("FAIL: setup", os.strerror(ctypes.get_errno()), flush=True)
print("READY", flush=True)
signal.pause()'
	pid=$PROG_PID
	wait_ready fanfs "$pid" || return
	mkdir -p "$T_WORK/img"
	rc=$(stasis dump dump -t "$pid" -D "$T_WORK/img")
	[[ $rc != 0 ]] || { fail "the dump of a fanotify filesystem mark succeeded"; return; }
	error_message dump | grep -q "fd 3 (fanotify) has a mark stasis can't dump" ||
		fail "the refusal does not name the fanotify fd: $(error_message dump)" "$T_LOG/dump.log"
	wait_until 5 runs_freely "$pid" || fail "pid $pid not left running after the refused dump"
}
run_test notify.fanotify_fs_mark nf_fanotify_fs_mark

# An epoll watching a pidfd of a live process: that pidfd is opened only
# once the whole tree exists, after the epoll's targets are added, so the
# dump refuses it (naming the epoll and the pidfd) and leaves the tree
# running, rather than restore an epoll watching something else.
nf_epoll_pidfd() {
	local pid rc
	start_prog eppfd "$PYTHON" -c '
import os, select, signal
ep = select.epoll()
pid = os.fork()
if pid == 0:
    signal.pause()
    os._exit(0)
p = os.pidfd_open(pid)
ep.register(p, select.EPOLLIN)
print("READY", flush=True)
signal.pause()'
	pid=$PROG_PID
	wait_ready eppfd "$pid" || return
	mkdir -p "$T_WORK/img"
	rc=$(stasis dump dump -t "$pid" -D "$T_WORK/img")
	[[ $rc != 0 ]] || { fail "the dump of an epoll watching a live pidfd succeeded"; return; }
	error_message dump | grep -q "(epoll) watches a pidfd of a live process" ||
		fail "the refusal does not name the epoll and the pidfd: $(error_message dump)" "$T_LOG/dump.log"
	wait_until 5 runs_freely "$pid" || fail "pid $pid not left running after the refused dump"
}
run_test notify.epoll_pidfd_refused nf_epoll_pidfd
