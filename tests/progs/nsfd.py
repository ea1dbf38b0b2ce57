# fds on namespaces (nsfs): /proc/self/ns/net, uts and pid opened, one of
# them dup'ed. After restore (SIGUSR1) each must be the namespace of its
# kind the process is in now, and the dup still one open file with it.
import os, signal, time

fds = {k: os.open("/proc/self/ns/" + k, os.O_RDONLY) for k in ("net", "uts", "pid")}
dup = os.dup(fds["net"])
got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
print("READY", flush=True)
while not got:
    time.sleep(0.05)

err = None
for k, fd in fds.items():
    have, want = os.readlink("/proc/self/fd/%d" % fd), os.readlink("/proc/self/ns/" + k)
    if have != want:
        err = "fd %d is %s, the process's %s namespace is %s" % (fd, have, k, want)
if not err and os.readlink("/proc/self/fd/%d" % dup) != os.readlink("/proc/self/fd/%d" % fds["net"]):
    err = "the dup is another namespace"
print("FAIL: " + err if err else "PASS", flush=True)
