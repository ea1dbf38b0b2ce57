# A deleted-but-open file (a "ghost"): written, unlinked, seeked. After
# restore (SIGUSR1) the fd must still read the same bytes from the same
# offset, with the same size and mode and no link, and still be writable.
# argv: PATH SIZE [rmdir]  (rmdir: its directory is removed too)
import os, signal, stat, sys, time

path, size = sys.argv[1], int(sys.argv[2])
data = bytes((i * 7 + 3) % 251 for i in range(size))
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o640)
os.fchmod(fd, 0o640)
os.write(fd, data)
os.unlink(path)
if sys.argv[3:] == ["rmdir"]:
    os.rmdir(os.path.dirname(path))
off = size // 3
os.lseek(fd, off, os.SEEK_SET)
got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
print("READY", flush=True)
while not got:
    time.sleep(0.05)

def check():
    st = os.fstat(fd)
    if st.st_size != size or stat.S_IMODE(st.st_mode) != 0o640 or not stat.S_ISREG(st.st_mode):
        return "size %d mode %o" % (st.st_size, st.st_mode)
    if st.st_nlink != 0:
        return "nlink %d, want 0 (not deleted)" % st.st_nlink
    link = os.readlink("/proc/self/fd/%d" % fd)
    if not link.endswith(" (deleted)"):
        return "fd is %s, not a deleted file" % link
    pos = os.lseek(fd, 0, os.SEEK_CUR)
    if pos != off:
        return "offset %d, want %d" % (pos, off)
    back = b""
    while True:
        b = os.read(fd, 65536)
        if not b:
            break
        back += b
    if back != data[off:]:
        return "read %d bytes back, not the saved ones" % len(back)
    os.pwrite(fd, b"new", size)
    if os.pread(fd, 3, size) != b"new":
        return "can't write into the file any more"
    d = os.path.dirname(path)
    if os.path.exists(path) or (os.path.isdir(d) and any(n.startswith(os.path.basename(path)) for n in os.listdir(d))):
        return "a file is left at %s" % path
    return None

err = check()
print("FAIL: " + err if err else "PASS", flush=True)
