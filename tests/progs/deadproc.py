# The /proc entry of a dead process, held as the working directory and as
# an fd: a child is forked, entered, and killed and reaped. After restore
# (SIGUSR1) both must be that unhashed entry again (getcwd fails, the
# links read as before), and no process of that pid may be left.
import errno, os, signal, time

child = os.fork()
if child == 0:
    signal.pause()
    os._exit(0)
os.chdir("/proc/%d" % child)
fd = os.open("/proc/%d" % child, os.O_RDONLY | os.O_DIRECTORY)
os.kill(child, signal.SIGKILL)
os.waitpid(child, 0)
cwd = os.readlink("/proc/self/cwd")
link = os.readlink("/proc/self/fd/%d" % fd)
got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
print("READY", flush=True)
while not got:
    time.sleep(0.05)


def check():
    try:
        return "getcwd works: %s" % os.getcwd()
    except OSError as e:
        if e.errno != errno.ENOENT:
            return "getcwd fails with %s, not ENOENT" % e
    if os.readlink("/proc/self/cwd") != cwd:
        return "cwd is %s, was %s" % (os.readlink("/proc/self/cwd"), cwd)
    if os.readlink("/proc/self/fd/%d" % fd) != link:
        return "the fd is %s, was %s" % (os.readlink("/proc/self/fd/%d" % fd), link)
    try:
        os.kill(child, 0)
        return "a process %d is alive" % child
    except ProcessLookupError:
        pass
    try:
        if os.waitpid(-1, os.WNOHANG) != (0, 0):
            return "a child was left to reap"
    except ChildProcessError:
        pass
    return None


err = check()
print("FAIL: " + err if err else "PASS", flush=True)
