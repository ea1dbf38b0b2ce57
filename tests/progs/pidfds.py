# pidfds across a dump: of itself, of a child, of a grandchild (the
# child's), two pidfds of one dead process and one of another dead one.
# After SIGUSR1 (after restore) each must name its process: Pid in
# fdinfo, a signal 0 through it, the child stopped by SIGTERM through
# its pidfd and reaped with waitid(P_PIDFD); the dead ones readable at
# once, the two of one process sharing an inode, the other not.
import os, select, signal, sys, time

got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))

def fdinfo_pid(fd):
    for l in open("/proc/self/fdinfo/%d" % fd):
        if l.startswith("Pid:"):
            return int(l.split()[1])

def dead_pidfds(n):
    pid = os.fork()
    if pid == 0:
        signal.pause()
        os._exit(0)
    fds = [os.pidfd_open(pid) for _ in range(n)]
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return fds

me = os.pidfd_open(os.getpid())
r, w = os.pipe()
child = os.fork()
if child == 0:
    os.close(r)
    g = os.fork()
    if g == 0:
        while True:
            signal.pause()
    os.write(w, b"%d\n" % g)
    signal.signal(signal.SIGTERM, lambda *a: os._exit(7))
    while True:
        signal.pause()
os.close(w)
gchild = int(os.read(r, 64))
cfd = os.pidfd_open(child)
gfd = os.pidfd_open(gchild, os.O_NONBLOCK)  # PIDFD_NONBLOCK
dead2 = dead_pidfds(2)
dead1 = dead_pidfds(1)

print("READY", flush=True)
while not got:
    time.sleep(0.05)

def check():
    for fd, pid in ((me, os.getpid()), (cfd, child), (gfd, gchild)):
        if fdinfo_pid(fd) != pid:
            return "pidfd %d names pid %s, want %d" % (fd, fdinfo_pid(fd), pid)
        signal.pidfd_send_signal(fd, 0)
    for fd in dead2 + dead1:
        if fdinfo_pid(fd) != -1:
            return "pidfd %d of a dead process names pid %s" % (fd, fdinfo_pid(fd))
        if not select.select([fd], [], [], 0)[0]:
            return "pidfd %d of a dead process is not readable" % fd
    ino = [os.fstat(fd).st_ino for fd in dead2 + dead1]
    # pidfds have an inode per process only since Linux 6.9 (pidfs);
    # before, every pidfd is the one anonymous inode
    per_process = os.fstat(cfd).st_ino != os.fstat(dead1[0]).st_ino
    if per_process and (ino[0] != ino[1] or ino[0] == ino[2]):
        return "dead pidfds' inodes %s: want the first two equal, the third other" % ino
    if not os.get_blocking(cfd) or os.get_blocking(gfd):
        return "O_NONBLOCK lost or gained"
    if select.select([cfd], [], [], 0)[0]:
        return "the child's pidfd is readable while it runs"
    signal.pidfd_send_signal(cfd, signal.SIGTERM)
    st = os.waitid(os.P_PIDFD, cfd, os.WEXITED)
    if st.si_pid != child or st.si_status != 7:
        return "waitid through the child's pidfd gave %s" % (st,)
    signal.pidfd_send_signal(gfd, signal.SIGKILL)
    return None

err = check()
print("FAIL: " + err if err else "PASS", flush=True)
