"""inet_client.py HOST TCP_PORT UDP_PORT: one TCP and one UDP exchange with
an echo server (inet_echo.py); exits 0 if both came back whole. A port of
0 is skipped. With "http" as UDP_PORT: a GET / over HTTP on TCP_PORT."""
import socket, sys, urllib.request

host, tport, uport = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if uport == "http":
    h = "[%s]" % host if ":" in host else host
    body = urllib.request.urlopen("http://%s:%d/" % (h, tport), timeout=10).read()
    sys.exit(0 if b"<html" in body.lower() else 1)
msg = b"hello-%d" % tport
if tport:
    c = socket.create_connection((host, tport), timeout=10)
    c.sendall(msg)
    if c.recv(100) != msg:
        sys.exit("no TCP echo")
if int(uport):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    u = socket.socket(fam, socket.SOCK_DGRAM)
    u.settimeout(10)
    u.sendto(msg, (host, int(uport)))
    if u.recv(100) != msg:
        sys.exit("no UDP echo")
