# An epoll whose targets' fd numbers no longer name them (zdtm's epoll,
# epoll01): a target added through a dup since closed, three targets added
# one after the other as fd 702 (two closed since), a target whose number
# now holds another file, and a child sharing the epoll in which a
# target's number is another file. After SIGUSR1 (after restore) each pipe
# is written in turn, and the epoll must report exactly that target, with
# the data it was added with (Python's epoll: the number it was added as).
import os, select, signal, sys, time

got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
ep = select.epoll()
targets = []    # (read end now, write end, number it was added as)

def pipe_at(num=None):
    r, w = os.pipe()
    if num is not None:
        os.dup2(r, num)
        os.close(r)
        r = num
    return r, w

# added through a dup, the dup closed (the file still open as r)
r, w = pipe_at()
d = os.dup(r)
ep.register(d, select.EPOLLIN)
os.close(d)
targets.append((r, w, d))
# three files added as fd 702 in turn; the first two closed as 702 (each
# still open under another number), the third stays 702
for keep in (False, False, True):
    r, w = pipe_at()
    os.dup2(r, 702)
    ep.register(702, select.EPOLLIN)
    if not keep:
        os.close(702)
        targets.append((r, w, 702))
    else:
        os.close(r)
        targets.append((702, w, 702))
# added as r, moved to another number, and r reused for /dev/null
r, w = pipe_at()
ep.register(r, select.EPOLLIN)
moved = os.dup(r)
null = os.open("/dev/null", os.O_RDONLY)
os.dup2(null, r)
os.close(null)
targets.append((moved, w, r))
# shared with a child in which the target's number is another file
r, w = pipe_at()
ep.register(r, select.EPOLLIN)
targets.append((r, w, r))
child = os.fork()
if child == 0:
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, r)
    while True:
        signal.pause()

print("READY", flush=True)
while not got:
    time.sleep(0.05)
err = None
if ep.poll(0):
    err = "epoll reports %s before any write" % ep.poll(0)
for i, (r, w, added) in enumerate(targets):
    if err:
        break
    os.write(w, b"x")
    ev = ep.poll(1)
    if ev != [(added, select.EPOLLIN)]:
        err = "target %d (added as fd %d): epoll reports %s" % (i, added, ev)
    os.read(r, 1)
os.kill(child, signal.SIGKILL)
os.waitpid(child, 0)
print("FAIL: " + err if err else "PASS", flush=True)
