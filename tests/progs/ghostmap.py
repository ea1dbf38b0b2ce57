# Deleted files that are mapped, not open: a data file mapped shared and
# private, and the interpreter itself (the test runs a deleted copy of
# python3, so its executable and text are ghosts too).
# argv: DATA_PATH
import mmap, os, signal, sys, time

path = sys.argv[1]
data = bytes((i * 11 + 5) % 256 for i in range(3 * 4096))
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
os.write(fd, data)
shared = mmap.mmap(fd, len(data), flags=mmap.MAP_SHARED)
private = mmap.mmap(fd, len(data), flags=mmap.MAP_PRIVATE)
private[0:7] = b"PRIVATE"
os.close(fd)
os.unlink(path)
got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
print("READY", flush=True)
while not got:
    time.sleep(0.05)

def check():
    if not os.readlink("/proc/self/exe").endswith(" (deleted)"):
        return "exe is %s, not deleted" % os.readlink("/proc/self/exe")
    maps = open("/proc/self/maps").read()
    if (path + " (deleted)") not in maps:
        return "no deleted mapping of %s" % path
    if shared[:] != data:
        return "the shared mapping lost its bytes"
    if private[0:7] != b"PRIVATE" or private[7:] != data[7:]:
        return "the private mapping lost its bytes"
    shared[100:103] = b"abc"
    if shared[100:103] != b"abc":
        return "can't write into the shared mapping"
    return None

err = check()
print("FAIL: " + err if err else "PASS", flush=True)
