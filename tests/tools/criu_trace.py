#!/usr/bin/python3
# criu_trace.py - what a container runtime sends its criu, logged.
#
#   CRIU_TRACE_REAL=/path/to/engine CRIU_TRACE_LOG=/tmp/log criu_trace.py swrk FD
#
# Put it where the runtime looks for criu (runc --criu PATH, or `criu` on
# PATH). Any other command line is executed by the real engine as it is.
# For `swrk FD` the process forks: the parent becomes the real engine on
# a new socket (it keeps its pid, its parent - the runtime - and every fd
# the runtime gave it, so inherit_fd and rst_sibling mean what they
# mean), and the child relays each message, with the fds it carries,
# between the runtime and the engine, writing each one decoded to the log.
import ctypes
import os
import select
import socket
import sys

sys.path.insert(0, "/tmp/criu-ref/lib")
try:
    from pycriu import rpc_pb2
except ImportError:
    rpc_pb2 = None

REAL = os.environ.get("CRIU_TRACE_REAL", "/usr/sbin/criu")
LOG = os.environ.get("CRIU_TRACE_LOG", "/tmp/criu-trace.log")


def describe(kind, data, fds):
    text = ""
    if rpc_pb2:
        msg = rpc_pb2.criu_req() if kind == "req" else rpc_pb2.criu_resp()
        try:
            msg.ParseFromString(data)
            text = str(msg)
        except Exception as e:  # noqa: BLE001 - a dev tool: log it raw
            text = "undecodable: %s %r" % (e, data)
    return "%s %d bytes%s\n%s" % (kind, len(data), " fds %s" % fds if fds else "", text)


def relay(a, b, kind, log, runtime):
    data, fds, _flags, _addr = socket.recv_fds(a, 1 << 20, 16)
    if not data and not fds:
        return False
    log.write(describe(kind, data, fds) + "\n")
    log.flush()
    if runtime is not None:
        mirror_fds(runtime, data)
    socket.send_fds(b, [data], fds)
    for fd in fds:
        os.close(fd)
    return True


def pidfd_getfd(pidfd, fd):
    libc = ctypes.CDLL(None, use_errno=True)
    r = libc.syscall(438, pidfd, fd, 0)  # SYS_pidfd_getfd
    if r < 0:
        raise OSError(ctypes.get_errno(), "pidfd_getfd %d" % fd)
    return r


# The engine knows its client by SO_PEERCRED: the relay, which made the
# socket. The fds a request names by number are the runtime's: the relay
# takes each to the same number in its own table before passing it on.
def mirror_fds(runtime, data):
    if not rpc_pb2:
        return
    req = rpc_pb2.criu_req()
    req.ParseFromString(data)
    o = req.opts
    for name in ("images_dir_fd", "work_dir_fd", "status_fd"):
        if o.HasField(name) and getattr(o, name) >= 0:
            n = getattr(o, name)
            fd = pidfd_getfd(runtime, n)
            if fd != n:
                os.dup2(fd, n, inheritable=False)
                os.close(fd)


def main():
    if len(sys.argv) != 3 or sys.argv[1] != "swrk":
        os.execv(REAL, [REAL] + sys.argv[1:])
    client = socket.socket(fileno=int(sys.argv[2]))
    runtime = os.pidfd_open(os.getppid())
    hand_a, hand_b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    if os.fork() > 0:
        client.close()
        hand_a.close()
        _, fds, _, _ = socket.recv_fds(hand_b, 1, 1)
        os.set_inheritable(fds[0], True)
        os.execv(REAL, [REAL, "swrk", str(fds[0])])
    hand_b.close()
    mine, engine = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    socket.send_fds(hand_a, [b"x"], [engine.fileno()])
    engine.close()
    hand_a.close()
    with open(LOG, "a") as log:
        os.dup2(log.fileno(), 2)
        log.write("=== pid %d argv %s\n" % (os.getppid(), sys.argv))
        while True:
            r, _, _ = select.select([client, mine], [], [])
            if client in r and not relay(client, mine, "req", log, runtime):
                break
            if mine in r and not relay(mine, client, "resp", log, None):
                break
        log.write("=== end\n")


main()
