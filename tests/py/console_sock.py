#!/usr/bin/python3
"""A console socket for `runc --console-socket` (as runc's recvtty):

    console_sock.py SOCK OUT

Listens on the unix socket SOCK; every connection brings a pty master
(SCM_RIGHTS): the container's console at `runc run`, and a new one at
`runc restore` (the orphan-pts-master notification's). What comes out of
the latest master is appended to OUT, carriage returns dropped. Runs
until killed.
"""
import os
import select
import socket
import sys


def main(path, out):
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(path)
    ls.listen(4)
    master = None
    with open(out, "ab", buffering=0) as f:
        while True:
            fds = [ls] + ([master] if master is not None else [])
            r, _, _ = select.select(fds, [], [])
            if ls in r:
                c, _ = ls.accept()
                _msg, got, _fl, _ad = socket.recv_fds(c, 4096, 4)
                c.close()
                if got:
                    if master is not None:
                        os.close(master)
                    master = got[0]
                    for extra in got[1:]:
                        os.close(extra)
            if master is not None and master in r:
                try:
                    data = os.read(master, 4096)
                except OSError:
                    data = b""
                if not data:
                    os.close(master)
                    master = None
                    continue
                f.write(data.replace(b"\r", b""))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
