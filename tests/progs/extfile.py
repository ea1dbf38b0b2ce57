# Holds PATH open for appending on fd 7; on each SIGUSR1 appends a line
# "after N" and prints PASS. Used with --external file[MNT:INO].
import os, signal, sys, time

fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
os.dup2(fd, 7)
os.close(fd)
os.write(7, b"before\n")
n = []
signal.signal(signal.SIGUSR1, lambda *a: n.append(1))
print("READY", flush=True)
while not n:
    time.sleep(0.05)
os.write(7, b"after restore\n")
print("PASS", flush=True)
