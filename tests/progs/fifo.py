# A FIFO between two processes, unread bytes in flight. The child writes
# chunk A, the parent reads nothing until SIGUSR1 (after restore); then the
# child writes chunk B and closes, and the parent must read exactly A + B.
# argv: FIFO_PATH
import fcntl, os, signal, stat, sys, termios, time, struct

path = sys.argv[1]
os.mkfifo(path, 0o600)
A = bytes((i * 13 + 1) % 256 for i in range(20000))
B = bytes((i * 5 + 2) % 256 for i in range(30000))
got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
child = os.fork()
if child == 0:
    w = os.open(path, os.O_WRONLY)
    os.write(w, A)
    while not got:
        time.sleep(0.05)
    os.write(w, B)
    os.close(w)
    os._exit(0)
r = os.open(path, os.O_RDONLY)
def avail():
    return struct.unpack("i", fcntl.ioctl(r, termios.FIONREAD, b"\0\0\0\0"))[0]
while avail() < len(A):
    time.sleep(0.02)
print("READY", flush=True)
while not got:
    time.sleep(0.05)
err = None
st = os.fstat(r)
if not stat.S_ISFIFO(st.st_mode) or os.readlink("/proc/self/fd/%d" % r) != path:
    err = "fd is %s, not the FIFO %s" % (os.readlink("/proc/self/fd/%d" % r), path)
elif avail() != len(A):
    err = "%d bytes in the FIFO after restore, want %d" % (avail(), len(A))
os.kill(child, signal.SIGUSR1)
back = b""
while True:
    b = os.read(r, 65536)
    if not b:
        break
    back += b
os.waitpid(child, 0)
if not err and back != A + B:
    err = "read %d bytes, want %d (A+B), first difference at %d" % (len(back), len(A + B),
          next((i for i in range(min(len(back), len(A + B))) if back[i] != (A + B)[i]), -1))
print("FAIL: " + err if err else "PASS", flush=True)
