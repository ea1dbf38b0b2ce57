# A memfd held only by mappings (no fd: mmap through libc, then close):
# shared by the parent and, through fork, a child, and mapped private with
# a private change. After restore the shared mapping must still be one
# memory for both processes.
import ctypes, mmap, os, signal, time

libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]

def mapping(fd, size, flags):
    a = libc.mmap(None, size, mmap.PROT_READ | mmap.PROT_WRITE, flags, fd, 0)
    if a in (None, ctypes.c_void_p(-1).value):
        raise OSError(ctypes.get_errno(), "mmap")
    return a

def get(a, off, n):
    return ctypes.string_at(a + off, n)

def put(a, off, b):
    ctypes.memmove(a + off, b, len(b))

size = 4 * 4096
data = bytes((i * 17 + 9) % 256 for i in range(size))
fd = os.memfd_create("mapped-only")
os.write(fd, data)
shared = mapping(fd, size, mmap.MAP_SHARED)
private = mapping(fd, size, mmap.MAP_PRIVATE)
put(private, 0, b"MINE")
os.close(fd)
got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
child = os.fork()
if child == 0:
    while not got:
        time.sleep(0.05)
    # the parent wrote "PARENT" at 8192: answer at 12288
    put(shared, 12288, b"CHILD" if get(shared, 8192, 6) == b"PARENT" else b"BAD!!")
    os._exit(0)
print("READY", flush=True)
while not got:
    time.sleep(0.05)

def check():
    links = []
    for n in os.listdir("/proc/self/fd"):
        try:
            links.append(os.readlink("/proc/self/fd/" + n))
        except OSError:
            pass        # the listing's own fd
    if any(l.startswith("/memfd:") for l in links):
        return "harness: a memfd fd is open (the mapping is not alone)"
    if "/memfd:mapped-only (deleted)" not in open("/proc/self/maps").read():
        return "no memfd mapping in /proc/self/maps"
    if get(shared, 0, size) != data:
        return "the shared mapping lost its bytes"
    if get(private, 0, 4) != b"MINE" or get(private, 4, size - 4) != data[4:]:
        return "the private mapping lost its bytes"
    put(shared, 8192, b"PARENT")
    put(private, 0, b"PRIV")
    if get(shared, 0, 4) != data[0:4]:
        return "a write to the private mapping reached the memfd"
    os.kill(child, signal.SIGUSR1)
    os.waitpid(child, 0)
    if get(shared, 12288, 5) != b"CHILD":
        return "the child's shared mapping is not the parent's (%r)" % get(shared, 12288, 5)
    return None

err = check()
print("FAIL: " + err if err else "PASS", flush=True)
