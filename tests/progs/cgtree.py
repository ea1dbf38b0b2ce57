# Three processes, each in cgroups of its own: the root, a child and a
# grandchild move themselves into the cgroups named on the command line
# (one directory per hierarchy, comma-separated, for each of the three),
# record their /proc/self/cgroup, and the root prints READY. After SIGUSR1
# each checks that it is in the same cgroups and that its parent is the
# same; the root prints PASS or one FAIL line per process that is not.
import os, signal, sys, time

got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))


def join(dirs):
    for d in dirs.split(","):
        with open(os.path.join(d, "cgroup.procs"), "w") as f:
            f.write("0")


def cgroups():
    with open("/proc/self/cgroup") as f:
        return f.read()


def wait_usr1():
    while not got:
        time.sleep(0.05)


def check(name, before, ppid):
    now = cgroups()
    if now != before:
        return "FAIL: %s is in %r, was in %r" % (name, now, before)
    if os.getppid() != ppid:
        return "FAIL: %s has parent %d, had %d" % (name, os.getppid(), ppid)
    return ""


def child(name, dirs, rest, w):
    join(dirs)
    before, ppid = cgroups(), os.getppid()
    kid = spawn(rest) if rest else None
    os.write(w, b"+")
    wait_usr1()
    why = ""
    if kid:
        os.kill(kid[0], signal.SIGUSR1)
        why = os.read(kid[1], 4096).decode()
        os.waitpid(kid[0], 0)
    os.write(w, (why + check(name, before, ppid) + "\n").encode())
    os._exit(0)


def spawn(rest):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        child("child %s" % rest[0], rest[0], rest[1:], w)
    os.close(w)
    os.read(r, 1)
    return pid, r


def main():
    root, rest = sys.argv[1], sys.argv[2:]
    join(root)
    before = cgroups()
    kid = spawn(rest)
    print("READY", flush=True)
    wait_usr1()
    os.kill(kid[0], signal.SIGUSR1)
    why = (os.read(kid[1], 4096).decode() + check("the root", before, os.getppid())).split("\n")
    os.waitpid(kid[0], 0)
    fails = [l for l in why if l.strip()]
    print("\n".join(fails) if fails else "PASS", flush=True)
    return 1 if fails else 0


sys.exit(main())
