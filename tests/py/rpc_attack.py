#!/usr/bin/python3
"""Requests a hostile local user sends to `stasis service`, for
tests/cases/security.sh. Each prints one line saying what came back:
"reply success=B errno=N msg=TEXT" (or "no reply").

    rpc_attack.py SOCK dump PID DIR [LOG]
        DUMP of PID into DIR (images_dir_fd), log file LOG
    rpc_attack.py SOCK dump-nolock PID DIR
        the same with network_lock SKIP (what a client can lock itself)
    rpc_attack.py SOCK restore DIR [--status-opath FILE]
        RESTORE from DIR; with --status-opath, status_fd is an O_PATH fd
        of FILE (which the user may not open for writing)
    rpc_attack.py SOCK restore-path DIR WORKDIR
        RESTORE from DIR named by its path (images_dir), which the user
        may not be able to open itself; the log in WORKDIR (work_dir_fd)
    rpc_attack.py SOCK dump-ps PID DIR [--ps HOST:PORT] [--ps-fd KIND] [--tls DIR [--tls-key FILE]]
        DUMP of PID into DIR with its pages to a page server: at HOST:PORT,
        or over ps.fd, which is KIND: HOST:PORT (a socket connected there),
        file (/etc/passwd), listen (a listening TCP socket), unconnected
        (a TCP socket not connected), unix (a connected unix stream socket); --tls: over TLS with DIR/ca.pem,
        DIR/ca-cert.pem and DIR/ca-key.pem, or FILE as the key
    rpc_attack.py SOCK exec-at-predump PID DIR
    rpc_attack.py SOCK single-pre-dump PID DIR
        DUMP of PID with notifications; at the pre-dump stage PID is sent
        SIGUSR1 (on which it execs a setuid program) and the answer waits
        until its /proc/PID/exe has changed
"""
import os
import signal
import socket
import sys
import time

from pycriu import rpc_pb2 as rpc

from rpc_drive import recv_resp


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    return s


def show(r):
    if r is None:
        print("no reply")
    else:
        print("reply success=%s errno=%d msg=%s" % (r.success, r.cr_errno, r.cr_errmsg))
    return 0


def dump_req(pid, imgdir, log):
    req = rpc.criu_req()
    req.type = rpc.DUMP
    req.opts.pid = pid
    req.opts.images_dir_fd = os.open(imgdir, os.O_DIRECTORY)
    req.opts.log_level = 4
    req.opts.log_file = log
    return req


def cmd_dump(sk, pid, imgdir, log="dump.log"):
    s = connect(sk)
    s.send(dump_req(pid, imgdir, log).SerializeToString())
    return show(recv_resp(s))


def cmd_dump_link_remap(sk, pid, imgdir):
    req = dump_req(pid, imgdir, "dump.log")
    req.opts.link_remap = True
    s = connect(sk)
    s.send(req.SerializeToString())
    return show(recv_resp(s))


def cmd_single_pre_dump(sk, pid, imgdir):
    req = dump_req(pid, imgdir, "dump.log")
    req.type = rpc.SINGLE_PRE_DUMP
    s = connect(sk)
    s.send(req.SerializeToString())
    return show(recv_resp(s))


def cmd_dump_nolock(sk, pid, imgdir):
    s = connect(sk)
    req = dump_req(pid, imgdir, "dump.log")
    # network_lock (field 64) SKIP (3) is newer than Debian's pycriu: the
    # opts are sent with it appended
    opt = req.opts.SerializeToString() + varint(64 << 3) + varint(3)
    head = rpc.criu_req(type=rpc.DUMP).SerializePartialToString()
    s.send(head + varint(2 << 3 | 2) + varint(len(opt)) + opt)
    return show(recv_resp(s))


def cmd_restore(sk, imgdir, rest):
    req = rpc.criu_req()
    req.type = rpc.RESTORE
    req.opts.images_dir_fd = os.open(imgdir, os.O_DIRECTORY)
    req.opts.log_level = 4
    req.opts.log_file = "restore.log"
    if rest[:1] == ["--status-opath"]:
        req.opts.status_fd = os.open(rest[1], os.O_PATH)
    # --root DIR, --ext-mnt KEY VAL: a mount namespace's options
    while rest:
        if rest[0] == "--root":
            req.opts.root = rest[1]
            rest = rest[2:]
        elif rest[0] == "--ext-mnt":
            m = req.opts.ext_mnt.add()
            m.key, m.val = rest[1], rest[2]
            rest = rest[3:]
        else:
            rest = rest[1:]
    s = connect(sk)
    s.send(req.SerializeToString())
    return show(recv_resp(s))


def ps_fd(kind, keep):
    """An fd of ours of KIND for ps.fd (kept open in KEEP)."""
    if kind == "file":
        f = open("/etc/passwd", "rb")
    elif kind == "listen":
        f = socket.socket()
        f.bind(("127.0.0.1", 0))
        f.listen()
    elif kind == "unconnected":
        f = socket.socket()
    elif kind == "unix":
        f, peer = socket.socketpair()
        keep.append(peer)
    else:
        host, port = kind.rsplit(":", 1)
        f = socket.create_connection((host, int(port)))
    keep.append(f)
    return f.fileno()


def cmd_dump_ps(sk, pid, imgdir, rest):
    req = dump_req(pid, imgdir, "dump.log")
    keep = []
    args = dict(zip(rest[::2], rest[1::2]))
    if "--ps" in args:
        host, port = args["--ps"].rsplit(":", 1)
        req.opts.ps.address = host
        req.opts.ps.port = int(port)
    if "--ps-fd" in args:
        req.opts.ps.fd = ps_fd(args["--ps-fd"], keep)
    if "--tls" in args:
        d = args["--tls"]
        req.opts.tls = True
        req.opts.tls_cacert = d + "/ca.pem"
        req.opts.tls_cert = d + "/ca-cert.pem"
        req.opts.tls_key = args.get("--tls-key", d + "/ca-key.pem")
    s = connect(sk)
    s.send(req.SerializeToString())
    return show(recv_resp(s))


def varint(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def cmd_restore_path(sk, imgdir, workdir):
    req = rpc.criu_req()
    req.type = rpc.RESTORE
    req.opts.images_dir_fd = -1
    req.opts.work_dir_fd = os.open(workdir, os.O_DIRECTORY)
    # criu_opts.images_dir (field 68) is newer than Debian's pycriu: sent
    # as a second opts (field 2), which the receiver merges into the first
    path = imgdir.encode()
    extra = varint(68 << 3 | 2) + varint(len(path)) + path
    s = connect(sk)
    s.send(req.SerializeToString() + b"\x12" + varint(len(extra)) + extra)
    return show(recv_resp(s))


def cmd_exec_at_predump(sk, pid, imgdir):
    req = dump_req(pid, imgdir, "dump.log")
    req.opts.notify_scripts = True
    s = connect(sk)
    s.send(req.SerializeToString())
    while True:
        r = recv_resp(s)
        if r is None or r.type != rpc.NOTIFY:
            return show(r)
        if r.notify.script == "pre-dump":
            before = os.readlink("/proc/%d/exe" % pid)
            os.kill(pid, signal.SIGUSR1)
            for _ in range(500):
                try:
                    if os.readlink("/proc/%d/exe" % pid) != before:
                        break
                except PermissionError:
                    break  # it is setuid now: not ours to look at
                time.sleep(0.01)
            print("target exec'd at pre-dump")
        ack = rpc.criu_req()
        ack.type = rpc.NOTIFY
        ack.notify_success = True
        s.send(ack.SerializeToString())


def main(argv):
    sk, cmd, rest = argv[0], argv[1], argv[2:]
    if cmd == "dump":
        return cmd_dump(sk, int(rest[0]), *rest[1:])
    if cmd == "dump-link-remap":
        return cmd_dump_link_remap(sk, int(rest[0]), rest[1])
    if cmd == "dump-nolock":
        return cmd_dump_nolock(sk, int(rest[0]), rest[1])
    if cmd == "restore":
        return cmd_restore(sk, rest[0], rest[1:])
    if cmd == "restore-path":
        return cmd_restore_path(sk, rest[0], rest[1])
    if cmd == "dump-ps":
        return cmd_dump_ps(sk, int(rest[0]), rest[1], rest[2:])
    if cmd == "single-pre-dump":
        return cmd_single_pre_dump(sk, int(rest[0]), rest[1])
    if cmd == "exec-at-predump":
        return cmd_exec_at_predump(sk, int(rest[0]), rest[1])
    print("unknown command %s" % cmd, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
