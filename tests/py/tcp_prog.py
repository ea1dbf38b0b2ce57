"""TCP connections through a checkpoint (tests/cases/tcp.sh).

tcp_prog.py pair V [N]   both ends in the dumped tree (a server process and
                         its forked client), IPv4 or IPv6 (V 4 or 6): before
                         READY each end fills the other with BULK bytes it
                         does not read (queues full both ways, data unsent
                         and unacknowledged); after SIGUSR1 each reads them
                         all, then they exchange numbered lines. With N
                         (bytes), a BULK that small: all sent and
                         acknowledged, none left in a send queue.
tcp_prog.py server       a server in the tree for an outside client
                         (peer-client): it reads numbered records slowly
                         (some stay in its receive queue) into records.txt
                         until the file "fast" exists; PASS at the record
                         "END".
tcp_prog.py client HOST PORT  a client in the tree of an outside server
                         (peer-server): it writes BULK bytes the server does
                         not read yet (its send queue full), reads what the
                         server sent it, then after SIGUSR1 checks it all.
tcp_prog.py peer-client PORT   the outside client of "server": numbered
                         records, quiet while the file "quiet" exists (for
                         the checkpoint: it never stops, just pauses).
tcp_prog.py peer-server  the outside server of "client": prints its port,
                         sends GREETING, reads nothing until "go" exists,
                         then checks the client's BULK bytes.
tcp_prog.py stream-server  a server in the tree for stream-peer: prints its
                         port; then both ends send each other a numbered
                         stream (8-byte little-endian word indexes) without
                         a pause, each checking every word it reads and
                         keeping its count in NAME.count (the server reads
                         slowly: its receive queue is never empty). Once
                         the file "done" exists each ends its stream, reads
                         the other's to its end, and says PASS.
tcp_prog.py stream-peer PORT   the outside end of stream-server.

Bytes of a bulk stream are 8-byte little-endian word indexes: a gap, a
repeat or a shift shows at the first wrong word."""
import array
import fcntl
import os
import select
import signal
import socket
import struct
import sys
import termios
import threading
import time
import traceback

BULK = 4 << 20
GREETING = b"greeting-from-the-outside-server" * 100
got = []


def on_usr1(*_):
    got.append(1)


def pattern(n):
    return b"".join(struct.pack("<Q", i) for i in range(n // 8))


def read_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        d = s.recv(min(1 << 20, n - len(buf)))
        if not d:
            raise EOFError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += d
    return bytes(buf)


def check_bulk(data, what):
    want = pattern(len(data))
    if data == want:
        return True
    for i in range(0, len(data), 8):
        if data[i:i + 8] != want[i:i + 8]:
            print("FAIL: %s: word %d is %r" % (what, i // 8, data[i:i + 8]), flush=True)
            return False
    return False


def fill(s, data):
    """Writes as much of data as the socket takes without blocking."""
    s.setblocking(False)
    off = 0
    try:
        while off < len(data):
            off += s.send(data[off:off + 65536])
    except BlockingIOError:
        pass
    s.setblocking(True)
    return off


def send_behind(s, data):
    """sendall(data) in a thread while the caller reads: both ends of a
    pair send the rest of their bulk at once, which would wait for each
    other where the buffers can't hold it (Linux 6.1's smaller defaults).
    Returns a function that waits for the sending to end, raising what
    it raised."""
    err = []

    def run():
        try:
            s.sendall(data)
        except Exception as e:
            err.append(e)
    t = threading.Thread(target=run)
    t.start()

    def join():
        t.join()
        if err:
            raise err[0]
    return join


def check_mss(s, what):
    """On loopback the segment size is tens of kilobytes; a restored
    connection must not send in the default 536-byte segments."""
    mss = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
    if mss <= 536:
        print("FAIL: %s sends %d-byte segments" % (what, mss), flush=True)
        return False
    return True


def wait_usr1():
    while not got:
        time.sleep(0.05)


def pair(v):
    fam, host = (socket.AF_INET6, "::1") if v == "6" else (socket.AF_INET, "127.0.0.1")
    lsk = socket.socket(fam)
    lsk.bind((host, 0))
    lsk.listen(1)
    bulk = pattern(BULK)
    child = os.fork()
    if child == 0:
        c = socket.create_connection(lsk.getsockname()[:2])
        lsk.close()
        sent = fill(c, bulk)
        os.write(wfd, b"x")
        wait_usr1()
        ok = check_mss(c, "the client")
        sending = send_behind(c, bulk[sent:])
        ok = check_bulk(read_exact(c, BULK), "client reading the server's bulk") and ok
        sending()
        for i in range(1, 51):
            c.sendall(b"%d\n" % i)
            if read_exact(c, len(b"%d\n" % i)) != b"%d\n" % i:
                print("FAIL: echo %d" % i, flush=True)
                ok = False
        c.close()
        os._exit(0 if ok else 1)
    s, _ = lsk.accept()
    sent = fill(s, bulk)
    os.read(rfd, 1)     # the client filled its side too
    time.sleep(0.2)     # and the kernel moved what it could
    print("READY", flush=True)
    wait_usr1()
    os.kill(child, signal.SIGUSR1)
    ok = check_mss(s, "the server")
    sending = send_behind(s, bulk[sent:])
    ok = check_bulk(read_exact(s, BULK), "server reading the client's bulk") and ok
    sending()
    f = s.makefile("rb")
    for i in range(1, 51):
        line = f.readline()
        if line != b"%d\n" % i:
            print("FAIL: line %d is %r" % (i, line), flush=True)
            ok = False
            break
        s.sendall(line)
    _, st = os.waitpid(child, 0)
    if st != 0:
        print("FAIL: the client failed (status %d)" % st, flush=True)
        ok = False
    print("PASS" if ok else "FAIL: see above", flush=True)


def server():
    lsk = socket.socket()
    lsk.bind(("127.0.0.1", 0))
    lsk.listen(1)
    print("PORT", lsk.getsockname()[1], flush=True)
    s, _ = lsk.accept()
    print("READY", flush=True)
    f = s.makefile("rb")
    fast, n = False, 0
    with open("records.txt", "w") as out:
        while True:
            line = f.readline()
            if not line:
                print("FAIL: the client closed without END", flush=True)
                return
            if line == b"END\n":
                break
            out.write(line.decode())
            out.flush()
            if not fast:
                time.sleep(0.0005)  # slower than the client: a backlog builds
                fast = n % 100 == 0 and os.path.exists("fast")
            n += 1
    s.sendall(b"BYE\n")
    print("PASS", flush=True)


def peer_client(port):
    """Records 1, 2, ... until the file "done"; while "quiet" exists,
    nothing: once its send queue is empty (all it sent acknowledged) it
    says so in "quiet.ack". It only writes: no packet of its own is due
    while quiet. Once the server's receive queue is full it waits for
    room there before it sends more: what waits in its own send queue
    stays small (the server, slow on purpose, reads it before going
    quiet can be acknowledged)."""
    s = socket.create_connection(("127.0.0.1", int(port)))
    n = 0
    deadline = time.time() + 120
    while time.time() < deadline and not os.path.exists("done"):
        outq = struct.unpack("i", fcntl.ioctl(s, termios.TIOCOUTQ, b"\0" * 4))[0]
        if os.path.exists("quiet"):
            if not os.path.exists("quiet.ack") and outq == 0:
                open("quiet.ack", "w").close()
            time.sleep(0.01)
            continue
        if os.path.exists("quiet.ack"):
            os.unlink("quiet.ack")
        if outq > 4096:
            time.sleep(0.005)
            continue
        for _ in range(50):
            n += 1
            s.sendall(b"%d\n" % n)
        time.sleep(0.005)
    s.sendall(b"END\n")
    line = s.makefile("rb").readline()
    print(n, "records", flush=True)
    print("PASS" if line == b"BYE\n" else "FAIL: the server said %r, not BYE" % line, flush=True)


def client(host, port):
    s = socket.create_connection((host, int(port)))
    bulk = pattern(BULK)
    sent = fill(s, bulk)
    time.sleep(0.2)
    print("READY", sent, flush=True)
    wait_usr1()
    s.sendall(bulk[sent:])
    ok = read_exact(s, len(GREETING)) == GREETING
    if not ok:
        print("FAIL: the greeting from the server", flush=True)
    s.sendall(b"client-done")
    print("PASS" if ok and s.recv(100) == b"bye" else "FAIL: no bye from the server", flush=True)


def peer_server():
    lsk = socket.socket()
    lsk.bind(("127.0.0.1", 0))
    lsk.listen(1)
    print("PORT", lsk.getsockname()[1], flush=True)
    s, _ = lsk.accept()
    s.sendall(GREETING)
    while not os.path.exists("go"):
        time.sleep(0.02)
    ok = check_bulk(read_exact(s, BULK), "the server reading the client's bulk")
    ok = ok and read_exact(s, len(b"client-done")) == b"client-done"
    s.sendall(b"bye")
    print("PASS" if ok else "FAIL: see above", flush=True)


def words(first, n):
    return array.array("Q", range(first, first + n)).tobytes()


class Stream:
    """One end of the two-way numbered stream (stream-server, stream-peer)."""

    def __init__(self, s, name, chunk, pause):
        self.s, self.name, self.chunk, self.pause = s, name, chunk, pause
        self.next_out = 0       # the next word to queue
        self.pending = b""      # queued, not yet taken by the socket
        self.got = 0            # words read and checked
        self.partial = b""      # the start of a word read
        self.ended = False      # our end shut down
        self.last_count = 0

    def count(self, force=False):
        now = time.time()
        if force or now - self.last_count > 0.1:
            with open(self.name + ".count.tmp", "w") as f:
                f.write("%d %d\n" % (self.got, self.next_out))
            os.rename(self.name + ".count.tmp", self.name + ".count")
            self.last_count = now

    def check(self, data):
        data = self.partial + data
        n = len(data) // 8
        want = words(self.got, n)
        if data[:n * 8] != want:
            for i in range(n):
                if data[i * 8:i * 8 + 8] != want[i * 8:i * 8 + 8]:
                    raise ValueError("%s: word %d is %d" % (self.name, self.got + i,
                                     struct.unpack("<Q", data[i * 8:i * 8 + 8])[0]))
        self.got += n
        self.partial = data[n * 8:]

    def run(self):
        self.s.setblocking(False)
        done = eof = False
        while not (eof and self.ended):
            done = done or os.path.exists("done")
            if not self.pending and not done:
                self.pending = words(self.next_out, self.chunk // 8)
                self.next_out += self.chunk // 8
            if self.pending:
                try:
                    self.pending = self.pending[self.s.send(self.pending):]
                except BlockingIOError:
                    pass
            if done and not self.pending and not self.ended:
                self.s.shutdown(socket.SHUT_WR)
                self.ended = True
            if not eof:
                try:
                    data = self.s.recv(self.chunk)
                    if data:
                        self.check(data)
                    eof = not data
                except BlockingIOError:
                    pass
            self.count()
            select.select([] if eof else [self.s], [self.s] if self.pending else [], [], self.pause)
        self.count(True)
        if self.partial:
            raise ValueError("%s: the stream ended inside a word" % self.name)
        print(self.name, "read", self.got, "words, sent", self.next_out, flush=True)
        print("PASS", flush=True)


def stream_server():
    lsk = socket.socket()
    lsk.bind(("127.0.0.1", 0))
    lsk.listen(1)
    print("PORT", lsk.getsockname()[1], flush=True)
    s, _ = lsk.accept()
    print("READY", flush=True)
    Stream(s, "server", 4096, 0.005).run()


def stream_peer(port):
    s = socket.create_connection(("127.0.0.1", int(port)))
    Stream(s, "peer", 65536, 0.001).run()


if __name__ == "__main__":
    signal.signal(signal.SIGUSR1, on_usr1)
    rfd, wfd = os.pipe()
    mode = sys.argv[1]
    try:
        if mode == "pair":
            if len(sys.argv) > 3:
                BULK = int(sys.argv[3])
            pair(sys.argv[2])
        elif mode == "server":
            server()
        elif mode == "peer-client":
            peer_client(sys.argv[2])
        elif mode == "client":
            client(sys.argv[2], sys.argv[3])
        elif mode == "peer-server":
            peer_server()
        elif mode == "stream-server":
            stream_server()
        elif mode == "stream-peer":
            stream_peer(sys.argv[2])
    except Exception as e:  # a broken connection, said as the test's failure
        traceback.print_exc()
        print("FAIL: %s (pid %d): %r" % (mode, os.getpid(), e), flush=True)
        sys.exit(1)
