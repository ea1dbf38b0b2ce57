# A root that leaves its child behind: the root exits with status 3 on
# SIGUSR1; the child, orphaned then, goes on until SIGUSR2, writes
# "CHILD DONE" to the file given, and exits 0. Restored as the tree of a
# pid namespace, the namespace's init (stasis-init, or stasis itself when
# it is pid 1 there) must keep the child alive after the root is gone.
# argv: DONE_FILE
import os, signal, sys, time

done = sys.argv[1]
child = os.fork()
if child == 0:
    go = []
    signal.signal(signal.SIGUSR2, lambda *a: go.append(1))
    while not go:
        time.sleep(0.05)
    with open(done, "w") as f:
        f.write("CHILD DONE\n")
    os._exit(0)
quit = []
signal.signal(signal.SIGUSR1, lambda *a: quit.append(1))
print("READY", flush=True)
while not quit:
    time.sleep(0.05)
os._exit(3)
