# File leases (F_SETLEASE): a read lease on r.dat, a write lease on
# w.dat, and a second description of r.dat without one. After restore
# (SIGUSR1) each has its lease again, and the write lease works: a
# non-blocking open of w.dat fails with EWOULDBLOCK and the holder gets
# SIGIO. Runs in its working directory; dumped with --file-locks.
import os, fcntl, signal, time
got, sigio = [], []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
signal.signal(signal.SIGIO, lambda *a: sigio.append(1))
r = os.open("r.dat", os.O_RDONLY | os.O_CREAT, 0o644)
w = os.open("w.dat", os.O_WRONLY | os.O_CREAT, 0o644)
free = os.open("r.dat", os.O_RDONLY)
fcntl.fcntl(r, fcntl.F_SETLEASE, fcntl.F_RDLCK)
fcntl.fcntl(w, fcntl.F_SETLEASE, fcntl.F_WRLCK)
print("READY", flush=True)
while not got:
    time.sleep(0.05)
bad = []
for fd, want, name in ((r, fcntl.F_RDLCK, "r.dat"), (w, fcntl.F_WRLCK, "w.dat"), (free, fcntl.F_UNLCK, "r.dat again")):
    have = fcntl.fcntl(fd, fcntl.F_GETLEASE)
    if have != want:
        bad.append("%s: lease %d, not %d" % (name, have, want))
try:
    os.close(os.open("w.dat", os.O_RDONLY | os.O_NONBLOCK))
    bad.append("w.dat opened despite its write lease")
except BlockingIOError:
    pass
for i in range(100):
    if sigio:
        break
    time.sleep(0.01)
if not sigio:
    bad.append("no SIGIO for the break of the write lease")
print("PASS" if not bad else "FAIL: " + "; ".join(bad), flush=True)
