"""fdscale: many fds restored under a tight open files limit, and files
shared by siblings that a middle process of the tree opened.

  fdscale.py one N LIMIT    one process holding about N fds
  fdscale.py listener N LIMIT
                            one process holding a listener with N
                            connections it accepted (both ends) and N/8
                            waiting to be accepted: all made at once at
                            restore, from the first of them opened
  fdscale.py tree N LIMIT   root -> two middles -> two children each,
                            every process but the root holding about N
                            fds of its own; each middle opens a file, a
                            pipe and a socketpair before it forks its two
                            children, which both use them (the two
                            middles' shared files take the same pool
                            numbers at restore)

Every process first sets its RLIMIT_NOFILE (soft and hard) to LIMIT: the
test restores it under that limit too. Its own fds are, in turn: a file
of its own at an offset of its number, a dup of it, a pipe (both ends)
with a byte queued, a stream socketpair and a datagram socketpair with a
message queued each way, a connection to the process's listener (both
ends) with a message each way, and an eventfd whose count is its number.

On SIGUSR1 to the root, each process checks every one of its fds (and
the children the shared ones: the file's offset moved by one is seen by
the other, a byte written by one into the pipe is read by the other, a
message sent on one end of the socketpair arrives at the other), the
children exit 0 or 1, and the root prints PASS or FAIL lines.
"""
import os
import resource
import signal
import socket
import stat
import sys
import time

got = []
errors = []


def fail(what):
    errors.append(what)


def both_ways(a, b, what):
    """A message queued each way between connected sockets a and b; the
    check that each arrives."""
    a.send(b"to b: " + what.encode())
    b.send(b"to a: " + what.encode())

    def c():
        a.settimeout(5)
        b.settimeout(5)
        if b.recv(64) != b"to b: " + what.encode() or a.recv(64) != b"to a: " + what.encode():
            fail("%s: not its messages" % what)
    return c


def make_fds(tag, n):
    """About n fds of the kinds above; returns the checks to run later."""
    checks, keep = [], []
    lname = "\0fdscale.%d.%s" % (os.getpid(), tag)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(lname)
    listener.listen(128)
    keep.append(listener)
    i = 0
    while len(checks) < n:
        k = i % 7
        if k == 0:
            path = "%s.%d" % (tag, i)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            os.write(fd, b"x" * (i % 50 + 10))
            os.lseek(fd, i % 50 + 1, os.SEEK_SET)
            d = os.dup(fd)
            ino = os.stat(path).st_ino

            def c(fd=fd, d=d, want=i % 50 + 1, ino=ino, path=path):
                if os.fstat(fd).st_ino != ino:
                    fail("%s: not its file" % path)
                if os.lseek(fd, 0, os.SEEK_CUR) != want or os.lseek(d, 0, os.SEEK_CUR) != want:
                    fail("%s: offset not %d" % (path, want))
                os.lseek(d, want + 3, os.SEEK_SET)
                if os.lseek(fd, 0, os.SEEK_CUR) != want + 3:
                    fail("%s: its dup is another file" % path)
            checks += [c, None]
        elif k == 1:
            r, w = os.pipe()
            os.write(w, bytes([i % 256]))

            def c(r=r, w=w, b=i % 256):
                if os.fstat(r).st_ino != os.fstat(w).st_ino or not stat.S_ISFIFO(os.fstat(r).st_mode):
                    fail("pipe %d: its ends differ" % b)
                if os.read(r, 1) != bytes([b]):
                    fail("pipe %d: not its byte" % b)
            checks += [c, None]
        elif k in (2, 3):
            a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM if k == 2 else socket.SOCK_DGRAM)
            keep += [a, b]
            checks += [both_ways(a, b, "socketpair %d" % i), None]
        elif k == 4:
            cl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            cl.connect(lname)
            sv, _ = listener.accept()
            keep += [cl, sv]
            checks += [both_ways(cl, sv, "connection %d" % i), None]
        elif k == 5:
            e = os.eventfd(i + 1)

            def c(e=e, i=i):
                if os.eventfd_read(e) != i + 1:
                    fail("eventfd %d: not its count" % i)
            checks.append(c)
        i += 1
    return [c for c in checks if c], keep


def make_listener(n):
    """A listener with n accepted connections (a message each way) and
    n // 8 clients waiting (accepted and checked at SIGUSR1)."""
    lname = "\0fdscale.%d.listener" % os.getpid()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(lname)
    listener.listen(n // 8 + 8)
    checks, keep = [], [listener]
    for i in range(n):
        cl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        cl.connect(lname)
        sv, _ = listener.accept()
        keep += [cl, sv]
        checks.append(both_ways(cl, sv, "connection %d" % i))
    waiting = []
    for i in range(n // 8):
        cl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        cl.connect(lname)
        waiting.append(cl)

    def c():
        listener.settimeout(5)
        for i, cl in enumerate(waiting):
            sv, _ = listener.accept()
            both_ways(cl, sv, "waiting connection %d" % i)()
    checks.append(c)
    return checks, keep + waiting


def run_checks(checks):
    for c in checks:
        try:
            c()
        except OSError as e:
            fail("check: %s" % e)


def check_all(checks, kids, who):
    """On SIGUSR1: our checks, then our children's results."""
    wait_usr1()
    run_checks(checks)
    for k in kids:
        _, st = os.waitpid(k, 0)
        if st != 0:
            fail("%s failed (status %d)" % (who, st))


def wait_usr1():
    while not got:
        time.sleep(0.05)


def forward_usr1(pids):
    def on(*a):
        got.append(1)
        for p in pids:
            os.kill(p, signal.SIGUSR1)
    signal.signal(signal.SIGUSR1, on)


def report_child():
    for e in errors[:5]:
        sys.stderr.write("FAIL: %s\n" % e)
    os._exit(1 if errors else 0)


def child(tag, n, shared, first):
    """A sibling using the middle's shared file, pipe and socketpair."""
    signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
    checks, keep = make_fds(tag, n)
    os.write(shared["ready"], b"r")
    wait_usr1()
    run_checks(checks)
    f, (r, w), (a, b) = shared["file"], shared["pipe"], shared["pair"]
    a.settimeout(10)
    b.settimeout(10)
    if first:
        if os.lseek(f, 0, os.SEEK_CUR) != 7:
            fail("%s: the shared file is not at 7" % tag)
        os.lseek(f, 123, os.SEEK_SET)
        os.write(w, b"1")
        a.send(b"from " + tag.encode())
    else:
        if os.read(r, 1) != b"1":
            fail("%s: the shared pipe did not bring the other's byte" % tag)
        if os.lseek(f, 0, os.SEEK_CUR) != 123:
            fail("%s: the shared file's offset moved by the other is not seen" % tag)
        if b.recv(64) != b"from " + tag[:-1].encode() + b"0":
            fail("%s: the shared socketpair did not bring the other's message" % tag)
    report_child()


def middle(tag, n):
    """Its own fds made once its children are forked (theirs are theirs)."""
    f = os.open(tag + ".shared", os.O_RDWR | os.O_CREAT, 0o600)
    os.write(f, b"s" * 200)
    os.lseek(f, 7, os.SEEK_SET)
    pair = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    ready_r, ready_w = os.pipe()
    shared = {"file": f, "pipe": os.pipe(), "pair": pair, "ready": ready_w}
    kids = []
    for k in range(2):
        pid = os.fork()
        if pid == 0:
            os.close(ready_r)
            child("%s.kid%d" % (tag, k), n, shared, k == 0)
        kids.append(pid)
    os.close(ready_w)
    for _ in kids:
        os.read(ready_r, 1)
    os.close(ready_r)
    checks, keep = make_fds(tag, n)
    forward_usr1(kids)
    return checks, keep, kids


def main():
    mode, n, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
    kids = []
    if mode in ("one", "listener"):
        checks, keep = make_fds("one", n) if mode == "one" else make_listener(n)
        signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
    else:
        ready_r, ready_w = os.pipe()
        for m in range(2):
            pid = os.fork()
            if pid == 0:
                os.close(ready_r)
                checks, keep, grandkids = middle("mid%d" % m, n)
                os.write(ready_w, b"m")
                os.close(ready_w)
                check_all(checks, grandkids, "a child of mid%d" % m)
                report_child()
            kids.append(pid)
        os.close(ready_w)
        for _ in kids:
            os.read(ready_r, 1)
        os.close(ready_r)
        forward_usr1(kids)
        checks, keep = [], []
    os.write(1, b"READY\n")
    check_all(checks, kids, "a middle process or its children")
    out = "".join("FAIL: %s\n" % e for e in errors[:5]) or "PASS\n"
    os.write(1, out.encode())


main()
