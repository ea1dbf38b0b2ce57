# A program of a container (tests/cases/mntns.sh), run inside its mount
# namespace: a busybox shell on a pty of the container's own devpts
# instance, asked each round to echo a number, and every tenth how many
# lines `ps` prints (proc mounted: seldom, as a dump that catches ps with
# another process's /proc file open can't be restored); each line it
# writes to OUT says the round, the
# files of the container's tmpfs and of a bind of it, whether the shell
# answered, whether ps saw processes, and whether the pty is still one of
# /dev/pts (the namespace's instance). No ps while /mnt/nops exists.
import os, select, sys, time

out = open(sys.argv[1], "a", buffering=1)
m, s = os.openpty()
if os.fork() == 0:
    os.setsid()
    os.close(m)
    for fd in (0, 1, 2):
        os.dup2(s, fd)
    os.execv("/bin/sh", ["sh"])
name = os.ttyname(s)
os.close(s)


def ask_once(i, ps):
    os.write(m, (b"echo X%d $(ps | wc -l) Y\n" if ps else b"echo X%d 0 Y\n") % i)
    buf = b""
    deadline = time.time() + 3
    while time.time() < deadline:
        if not select.select([m], [], [], 0.5)[0]:
            continue
        buf += os.read(m, 4096)
        for line in buf.decode(errors="replace").splitlines():
            f = line.strip().split()
            if len(f) == 3 and f[0] == "X%d" % i and f[2] == "Y":
                return int(f[1])
    return -1


# Asked again once: a dump that comes while the line is in the pty's queue
# between the two ends may lose it (with CRIU too), not the shell.
def ask(i, ps):
    n = ask_once(i, ps)
    return n if n >= 0 else ask_once(i, ps)


i = 0
ps_lines = 0
while True:
    i += 1
    # /mnt/nops: the harness is about to dump (mntns.sh ps_pause)
    ps = i % 10 == 1 and not os.path.exists("/mnt/nops")
    n = ask(i, ps)
    if ps:
        ps_lines = n
    tmp = open("/tmp/f").read().strip()
    bind = open("/data/g").read().strip()
    same = os.stat(name).st_dev == os.stat("/dev/pts").st_dev
    out.write("%d %s %s %s %s %s\n" % (i, tmp, bind, "shell" if n >= 0 else "noshell",
                                        "ps" if ps_lines > 1 else "nops", "pts" if same else "otherpts"))
    time.sleep(0.05)
