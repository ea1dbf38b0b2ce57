# A memfd with content (and a hole), sealed against growing and shrinking,
# held by two fds (different offsets, one shared inode) and by a child.
# After restore: name, size, bytes, seals, offsets, sharing.
import fcntl, os, signal, sys, time

F_ADD_SEALS, F_GET_SEALS = 1033, 1034
F_SEAL_SHRINK, F_SEAL_GROW = 2, 4
size = 1 << 20
head = bytes((i * 3 + 7) % 256 for i in range(10000))
tail = b"tail-bytes" * 100
fd = os.memfd_create("stasis-test", os.MFD_ALLOW_SEALING)
os.write(fd, head)
os.ftruncate(fd, size)
os.pwrite(fd, tail, size // 2)
fcntl.fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW)
os.lseek(fd, 100, os.SEEK_SET)
ro = os.open("/proc/self/fd/%d" % fd, os.O_RDONLY)   # its own offset, same inode
os.lseek(ro, 5000, os.SEEK_SET)
got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
child = os.fork()
if child == 0:
    while not got:
        time.sleep(0.05)
    os._exit(0 if os.pread(fd, 8, 0) == b"CHILDSEE" else 1)
print("READY", flush=True)
while not got:
    time.sleep(0.05)

def check():
    link = os.readlink("/proc/self/fd/%d" % fd)
    if link != "/memfd:stasis-test (deleted)":
        return "fd is %s" % link
    if os.fstat(fd).st_size != size:
        return "size %d, want %d" % (os.fstat(fd).st_size, size)
    if os.fstat(fd).st_ino != os.fstat(ro).st_ino:
        return "the two fds are no longer one memfd"
    seals = fcntl.fcntl(fd, F_GET_SEALS)
    if seals != F_SEAL_SHRINK | F_SEAL_GROW:
        return "seals %#x, want %#x" % (seals, F_SEAL_SHRINK | F_SEAL_GROW)
    if os.lseek(fd, 0, os.SEEK_CUR) != 100 or os.lseek(ro, 0, os.SEEK_CUR) != 5000:
        return "offsets changed"
    if os.pread(fd, len(head), 0) != head or os.pread(fd, len(tail), size // 2) != tail:
        return "content changed"
    if os.pread(fd, 4096, 300000) != bytes(4096):
        return "the hole is not zeros"
    try:
        os.ftruncate(fd, size * 2)
        return "the memfd could grow: seal lost"
    except OSError:
        pass
    os.pwrite(fd, b"CHILDSEE", 0)
    if os.pread(ro, 8, 0) != b"CHILDSEE":
        return "a write through one fd is not seen through the other"
    os.kill(child, signal.SIGUSR1)
    _, st = os.waitpid(child, 0)
    if st != 0:
        return "the child does not see the same memfd"
    return None

err = check()
print("FAIL: " + err if err else "PASS", flush=True)
