# Deleted files that are not regular files, kept by a process: a directory
# held as an fd and as the working directory, a FIFO with unread bytes
# (both ends open), and a device node (/dev/null's numbers). After restore
# (SIGUSR1) each must be the same kind of deleted file, one inode where
# there was one, the FIFO's bytes still in it, and nothing left at the
# old paths.
# argv: DIR (an empty directory to work in)
import os, signal, stat, sys, time

base = sys.argv[1]
d, fifo, dev = (os.path.join(base, n) for n in ("gone.d", "gone.fifo", "gone.null"))
DATA = bytes((i * 11 + 5) % 256 for i in range(3000))

os.mkdir(d, 0o750)
dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
os.chdir(d)
os.rmdir(d)
cwd_before = os.readlink("/proc/self/cwd")

os.mkfifo(fifo, 0o620)
os.chmod(fifo, 0o620)
r = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
w = os.open(fifo, os.O_WRONLY)
os.write(w, DATA)
os.unlink(fifo)

os.mknod(dev, stat.S_IFCHR | 0o640, os.makedev(1, 3))
nfd = os.open(dev, os.O_RDWR)
os.unlink(dev)

got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
print("READY", flush=True)
while not got:
    time.sleep(0.05)


def deleted(fd):
    return os.readlink("/proc/self/fd/%d" % fd).endswith(" (deleted)")


def check_dir():
    st = os.fstat(dfd)
    if not stat.S_ISDIR(st.st_mode) or stat.S_IMODE(st.st_mode) != 0o750 or st.st_nlink != 0:
        return "the directory fd is mode %o nlink %d" % (st.st_mode, st.st_nlink)
    cwd = os.stat("/proc/self/cwd")
    if (cwd.st_dev, cwd.st_ino) != (st.st_dev, st.st_ino):
        return "the working directory and the directory fd are two directories now"
    if os.readlink("/proc/self/cwd") != cwd_before:
        return "cwd is %s, was %s" % (os.readlink("/proc/self/cwd"), cwd_before)
    return None


def check_fifo():
    st = os.fstat(r)
    if not stat.S_ISFIFO(st.st_mode) or stat.S_IMODE(st.st_mode) != 0o620 or st.st_nlink != 0:
        return "the FIFO is mode %o nlink %d" % (st.st_mode, st.st_nlink)
    if not deleted(r) or not deleted(w):
        return "a FIFO end is not a deleted FIFO"
    wst = os.fstat(w)
    if (wst.st_dev, wst.st_ino) != (st.st_dev, st.st_ino):
        return "the two ends are two FIFOs now"
    back = os.read(r, 65536)
    if back != DATA:
        return "read %d bytes back, not the %d unread ones" % (len(back), len(DATA))
    os.write(w, b"more")
    if os.read(r, 16) != b"more":
        return "the ends are not connected"
    return None


def check_dev():
    st = os.fstat(nfd)
    if st.st_mode != stat.S_IFCHR | 0o640 or st.st_rdev != os.makedev(1, 3) or st.st_nlink != 0:
        return "the device is mode %o rdev %x nlink %d" % (st.st_mode, st.st_rdev, st.st_nlink)
    if not deleted(nfd) or os.write(nfd, b"x") != 1:
        return "the device fd is not a deleted, writable /dev/null"
    return None


err = check_dir() or check_fifo() or check_dev()
if not err:
    left = [n for n in os.listdir(base)]
    if left:
        err = "left behind in %s: %s" % (base, left)
print("FAIL: " + err if err else "PASS", flush=True)
