# A process that chroot()ed into a directory without entering it: its root
# is the directory, its cwd lies outside that root. After the restore both
# are the same directories again (by inode), and a file inside the root
# opens by its path there.
# argv: ROOT_DIR
import os, signal, sys, time

root = sys.argv[1]
os.makedirs(root + "/inside", exist_ok=True)
with open(root + "/inside/data", "w") as f:
    f.write("inside-data")
root_ino, cwd_ino = os.stat(root).st_ino, os.stat(".").st_ino
got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
os.chroot(root)
print("READY", flush=True)
while not got:
    time.sleep(0.05)
fails = []
if os.stat("/").st_ino != root_ino:
    fails.append("the root is another directory")
if os.stat(".").st_ino != cwd_ino:
    fails.append("the cwd is another directory")
try:
    if open("/inside/data").read() != "inside-data":
        fails.append("/inside/data holds something else")
except OSError as e:
    fails.append("can't open /inside/data: %s" % e)
print("\n".join("FAIL: " + f for f in fails) if fails else "PASS", flush=True)
