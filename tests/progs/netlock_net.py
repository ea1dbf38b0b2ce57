# The network side of tests/cases/netlock.sh, run in a network
# namespace of the test's own (not the dumped tree: stasis dumps no TCP
# socket of another namespace; the tree only lives in this namespace, as
# zdtm's netns_lock tests do it).
#   serve PORT   brings lo up, then answers every connection to
#                127.0.0.1:PORT with "hello", its packets marked as CRIU's
#                (0xC114); prints READY
#   probe PORT   prints "plain=R marked=R": R is what a connect to the
#                server gets, without and with CRIU's mark (0xC114):
#                hello, timeout (dropped: the lock), refused (a reset) or
#                error:WHAT
import fcntl, socket, struct, sys

SO_MARK = 36
SOCCR_MARK = 0xC114


def lo_up():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ifr = fcntl.ioctl(s, 0x8913, struct.pack("16sH14x", b"lo", 0))    # SIOCGIFFLAGS
    flags = struct.unpack("16sH14x", ifr)[1] | 0x1 | 0x40             # IFF_UP | IFF_RUNNING
    fcntl.ioctl(s, 0x8914, struct.pack("16sH14x", b"lo", flags))      # SIOCSIFFLAGS
    s.close()


def serve(port):
    lo_up()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # its replies carry the mark too (accepted sockets take the
    # listener's), so a marked client gets through a lock both ways
    srv.setsockopt(socket.SOL_SOCKET, SO_MARK, SOCCR_MARK)
    srv.bind(("127.0.0.1", port))
    srv.listen(16)
    print("READY", flush=True)
    while True:
        c, _ = srv.accept()
        try:
            c.sendall(b"hello")
        except OSError:
            pass
        c.close()


def attempt(port, mark):
    c = socket.socket()
    c.settimeout(0.5)
    try:
        if mark:
            c.setsockopt(socket.SOL_SOCKET, SO_MARK, SOCCR_MARK)
        c.connect(("127.0.0.1", port))
        return c.recv(16).decode() or "closed"
    except socket.timeout:
        return "timeout"
    except ConnectionRefusedError:
        return "refused"
    except OSError as e:
        return "error:%s" % e.strerror
    finally:
        c.close()


if sys.argv[1] == "serve":
    serve(int(sys.argv[2]))
else:
    port = int(sys.argv[2])
    print("plain=%s marked=%s" % (attempt(port, False), attempt(port, True)), flush=True)
