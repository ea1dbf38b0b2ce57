"""A small threaded TCP echo server and a UDP echo server on 127.0.0.1 (or
::1 with "6"), on ports the kernel picks; prints "PORTS tcp udp" and READY.
It serves all along; on SIGUSR1 it checks both servers itself, as a new
client, and prints PASS or FAIL lines, then ends."""
import signal, socket, socketserver, sys, threading, time

fam = socket.AF_INET6 if sys.argv[1:] == ["6"] else socket.AF_INET
host = "::1" if fam == socket.AF_INET6 else "127.0.0.1"


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            b = self.request.recv(4096)
            if not b:
                return
            self.request.sendall(b)


class TCP(socketserver.ThreadingTCPServer):
    address_family = fam
    allow_reuse_address = True
    daemon_threads = True


tcp = TCP((host, 0), Echo)
udp = socket.socket(fam, socket.SOCK_DGRAM)
udp.bind((host, 0))


def udp_loop():
    while True:
        b, a = udp.recvfrom(65536)
        udp.sendto(b, a)


threading.Thread(target=tcp.serve_forever, daemon=True).start()
threading.Thread(target=udp_loop, daemon=True).start()
got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
print("PORTS", tcp.server_address[1], udp.getsockname()[1], flush=True)
print("READY", flush=True)
while not got:
    time.sleep(0.05)
ok = True
c = socket.create_connection((host, tcp.server_address[1]), timeout=5)
c.sendall(b"tcp-self")
if c.recv(100) != b"tcp-self":
    print("FAIL: the TCP server did not echo", flush=True)
    ok = False
u = socket.socket(fam, socket.SOCK_DGRAM)
u.settimeout(5)
u.sendto(b"udp-self", (host, udp.getsockname()[1]))
if u.recv(100) != b"udp-self":
    print("FAIL: the UDP server did not echo", flush=True)
    ok = False
if ok:
    print("PASS", flush=True)
