#!/usr/bin/python3
"""A user's program for the unprivileged restore tests (tests/cases/rpc.sh):
what it makes is re-made by the restore, inside the restored process, so
whose credentials it carries shows who the process was then.

    unpriv_prog.py EXT LISTEN

Connects to the listener at EXT (outside the tree: the restore connects
again), listens at LISTEN, holds a socketpair, starts two threads and a
child, prints READY and waits for SIGUSR1 (it is dumped and restored
meanwhile). Then: the socketpair's peer must be its own uid (SO_PEERCRED
is who made the pair), it sends on its connection and connects to EXT once
more; PASS or FAIL: WHY. The test checks the rest from outside (the
listeners' SO_PEERCRED, the socket file's owner, /proc/PID/status).
"""
import os
import signal
import socket
import struct
import sys
import threading
import time


def peer_uid(sk):
    return struct.unpack("3i", sk.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]


def main(ext_path, listen_path):
    ext = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ext.connect(ext_path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(listen_path)
    listener.listen(4)
    pair = socket.socketpair()
    for _ in range(2):
        threading.Thread(target=lambda: time.sleep(1 << 20), daemon=True).start()
    child = os.fork()
    if child == 0:
        signal.pause()
        os._exit(0)
    got = []
    signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
    print("READY", flush=True)
    while not got:
        time.sleep(0.02)
    err = None
    if peer_uid(pair[0]) != os.getuid():
        err = "the socketpair's peer is uid %d, not %d" % (peer_uid(pair[0]), os.getuid())
    try:
        ext.sendall(b"after restore\n")
        again = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        again.connect(ext_path)
    except OSError as e:
        err = err or "the connection to %s: %s" % (ext_path, e)
    os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    print("FAIL: " + err if err else "PASS", flush=True)
    return 0 if not err else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
