# A deleted file that still has another name (a hard link): opened by one
# name, written, seeked, that name unlinked. After restore (SIGUSR1) the fd
# must be the very same file as the other name (dumped with --link-remap:
# not a copy), at its offset, shown by its old name "(deleted)".
# argv: PATH OTHER_PATH
import os, signal, sys, time

path, other = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o640)
os.write(fd, b"linked" * 1000)
os.link(path, other)
os.unlink(path)
os.lseek(fd, 1234, os.SEEK_SET)
link = os.readlink("/proc/self/fd/%d" % fd)
got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
print("READY", flush=True)
while not got:
    time.sleep(0.05)


def check():
    st, ost = os.fstat(fd), os.stat(other)
    if (st.st_dev, st.st_ino) != (ost.st_dev, ost.st_ino):
        return "the fd is another file than %s (a copy?)" % other
    if os.readlink("/proc/self/fd/%d" % fd) != link:
        return "the fd is %s, was %s" % (os.readlink("/proc/self/fd/%d" % fd), link)
    if os.lseek(fd, 0, os.SEEK_CUR) != 1234:
        return "offset %d, not 1234" % os.lseek(fd, 0, os.SEEK_CUR)
    os.pwrite(fd, b"X", 0)
    if open(other, "rb").read(1) != b"X":
        return "a write through the fd does not show in %s" % other
    return None


err = check()
print("FAIL: " + err if err else "PASS", flush=True)
