"""A client (or a dying server) of CRIU's page-server protocol, for
tests/cases/pageserver.sh: ps_client.py HOST PORT WHAT.

As a client, WHAT is an attack; the server must close the connection
(exit 0 once it does, 1 if it answers the attack with anything else).
serve_and_die: a server that takes a dump's first run, reads 64 KiB of
its pages and closes the connection; serve_and_hang: one that takes the
connection and then nothing."""
import os
import socket
import struct
import sys
import time

OPEN2, PARENT, ADD_F, GET, CLOSE = 4, 5, 6, 7, 0x1023
PE_PARENT, PE_PRESENT = 1, 4
PAGE = 4096


def iov(cmd, nr=0, vaddr=0, dst=0, flags=0):
    return struct.pack("=IIQQQ", flags << 16 | cmd, 0, nr, vaddr, dst)


def dst(pid, kind=1):
    return pid << 8 | kind


def closed_by_server(sk, limit=10):
    """True once the server closes; data it sends meanwhile is read."""
    sk.settimeout(limit)
    try:
        while sk.recv(65536):
            pass
    except ConnectionResetError:
        pass
    except socket.timeout:
        return False
    return True


def opened(sk, pid=1234):
    sk.sendall(iov(OPEN2, dst=dst(pid)))
    return sk.recv(1)


def attack(sk, what):
    if what == "garbage":
        sk.sendall(os.urandom(200))
    elif what == "short_header":
        sk.sendall(iov(OPEN2, dst=dst(5))[:10])
        sk.shutdown(socket.SHUT_WR)
    elif what == "bad_type":
        sk.sendall(iov(OPEN2, dst=dst(5, 99)))
    elif what == "misaligned":
        opened(sk)
        sk.sendall(iov(ADD_F, 1, 0x1001, dst(1234), PE_PRESENT) + b"x" * PAGE)
    elif what == "descending":
        opened(sk)
        sk.sendall(iov(ADD_F, 1, 0x200000, dst(1234), PE_PRESENT) + b"a" * PAGE)
        sk.sendall(iov(ADD_F, 1, 0x100000, dst(1234), PE_PRESENT) + b"b" * PAGE)
    elif what == "huge":
        opened(sk)
        sk.sendall(iov(ADD_F, 1 << 60, 0x100000, dst(1234), PE_PRESENT))
    elif what == "hole_no_parent":
        opened(sk)
        sk.sendall(iov(ADD_F, 16, 0x100000, dst(1234), PE_PARENT))
    elif what == "cut_pages":
        opened(sk)
        sk.sendall(iov(ADD_F, 256, 0x100000, dst(1234), PE_PRESENT) + b"c" * (100 << 10))
        sk.shutdown(socket.SHUT_WR)
    elif what == "silent":
        opened(sk)
        sk.sendall(iov(ADD_F, 4, 0x100000, dst(1234), PE_PRESENT) + b"d" * 100)
    elif what == "trickle":	# a header, a byte every half second
        for b in iov(OPEN2, dst=dst(1234)):
            try:
                sk.send(bytes([b]))
            except OSError:
                break
            time.sleep(0.5)
    elif what == "get":
        sk.sendall(iov(GET, 1, 0x100000, dst(1234)))
    else:
        sys.exit("unknown attack " + what)


def serve_and_die(host, port):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(1)
    print("LISTENING", flush=True)
    sk, _ = ls.accept()
    head = sk.recv(32, socket.MSG_WAITALL)
    cmd = struct.unpack("=I", head[:4])[0]
    if cmd & 0xffff == OPEN2:
        sk.sendall(b"\0")
    got = 0
    while got < (64 << 10):
        b = sk.recv(65536)
        if not b:
            break
        got += len(b)
    sk.close()
    print("DIED after", got, "bytes", flush=True)


def serve_and_hang(host, port):
    """Takes the connection, then neither reads nor answers."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    ls.bind((host, port))
    ls.listen(1)
    print("LISTENING", flush=True)
    sk, _ = ls.accept()
    time.sleep(120)


def main():
    host, port, what = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if what == "serve_and_die":
        serve_and_die(host, port)
        return
    if what == "serve_and_hang":
        serve_and_hang(host, port)
        return
    sk = socket.create_connection((host, port))
    t = time.time()
    attack(sk, what)
    ok = closed_by_server(sk)
    print(what, "closed by the server" if ok else "NOT closed", "after %.1fs" % (time.time() - t), flush=True)
    sys.exit(0 if ok else 1)


main()
