#!/usr/bin/python3
"""A unix stream listener that records who connects, as a peer checking
SO_PEERCRED would (the system D-Bus does): for tests/cases/rpc.sh.

    peercred_listener.py PATH LOG

Binds PATH (mode 0666, so any user may connect), then for each
connection appends "uid UID gid GID" to LOG; connections stay open.
"""
import os
import socket
import struct
import sys


def main(path, log):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    os.chmod(path, 0o666)
    s.listen(16)
    conns = []
    with open(log, "a", buffering=1) as out:
        while True:
            c, _ = s.accept()
            conns.append(c)
            pid, uid, gid = struct.unpack("3i", c.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
            out.write("uid %d gid %d\n" % (uid, gid))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
