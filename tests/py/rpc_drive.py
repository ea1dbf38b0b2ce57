#!/usr/bin/python3
"""Drives stasis over CRIU's RPC protocol, for tests/cases/rpc.sh.

    rpc_drive.py (--bin STASIS | --sk SOCKET) COMMAND [ARGS]

Commands (each prints one result line, exits 0 on the expected outcome):
  check                      pycriu check()
  version                    raw VERSION request: prints "version NAME MAJOR.MINOR"
  features                   raw FEATURE_CHECK asking for mem_track: prints
                             "mem_track True|False"
  dump PID DIR [--leave-running] [--parent REL] [--ext-unix-sk] [--tcp-established] [--empty-ns]
       [--network-lock iptables|nftables|skip] [--ext-mnt KEY VAL]...   pycriu dump() of another
                             process (parent_img REL, with track_mem)
  predump PID DIR [--parent REL]   pycriu pre_dump()
  (dump and predump: --ps HOST:PORT sends the pages to that page server;
   --ps-fd HOST:PORT the same over a socket we connect and pass as ps.fd;
   --tls DIR over TLS with DIR/ca.pem, DIR/ca-cert.pem, DIR/ca-key.pem
   (--tls-key FILE: that key instead), --no-cn-verify: tls_no_cn_verify)
  page_server DIR [--tls CERTDIR] [--lazy]  raw PAGE_SERVER for DIR on
                             127.0.0.1, any port (over TLS with CERTDIR's files,
                             as for dump; serving DIR's lazy pages with --lazy):
                             prints "ps PID PORT"
  lazydump PID DIR PORT      raw DUMP with lazy_pages (runc checkpoint
                             --lazy-pages): the pages served on PORT, with
                             notify_scripts and status_fd a pipe of ours;
                             prints "ready" (flushed) once status-ready was
                             told and the status byte came, then the stages
                             and "dump ok|failed MSG" when the reply comes
  iterdump PID DIR           raw PRE_DUMP into DIR/1, then on the same
                             connection DUMP into DIR/2 (parent_img ../1),
                             no keep_open (CRIU's pre-dump loop): prints
                             "dumped"
  restore DIR [--tcp-established] [--root DIR]  pycriu restore(): prints "restored PID"
  notify PID DIR [VETO_STAGE]      raw DUMP with notify_scripts: prints the
                             stages in order, answering no at VETO_STAGE
                             (hangup:STAGE: closes the connection there);
                             $RPC_NETWORK_LOCK, if set, is its network_lock
  netrestore DIR [--veth IN=OUT]... [--empty-ns] [--setup CMD]
                             raw RESTORE of a tree with a network namespace
                             of its own (veths, empty_ns CLONE_NEWNET), with
                             notify_scripts: at setup-namespaces CMD runs
                             with $PID the notification's; prints the stages
                             and "restored PID"
  sibling DIR                raw RESTORE with rst_sibling: prints "restored PID
                             child" if the restored root is our child
  garbage KIND               sends a malformed request (bytes, truncated,
                             huge, wrongtype) and prints what came back
Uses Debian's pycriu, unchanged, where pycriu can do the job.
"""
import errno
import os
import socket
import struct
import subprocess
import sys

import pycriu
from pycriu import rpc_pb2 as rpc

NETWORK_LOCK = {"iptables": 1, "nftables": 2, "skip": 3}	# criu_network_lock_method (3.17 lacks SKIP)


def client(args):
    c = pycriu.criu()
    if args[0] == "--bin":
        c.use_binary(args[1])
    else:
        c.use_sk(args[1])
    return c


def open_dir(path):
    os.makedirs(path, exist_ok=True)
    return os.open(path, os.O_DIRECTORY)


def raw_connect(mode, target, fds=()):
    """A socket to stasis: the service's, or one end of a socketpair whose
    other end a `stasis swrk` we start holds (what pycriu does)."""
    if mode == "--sk":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(target)
        return s, None
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    p = subprocess.Popen([target, "swrk", str(b.fileno())], pass_fds=[b.fileno(), *fds])
    b.close()
    return a, p


def recv_resp(s):
    n = len(s.recv(1, socket.MSG_TRUNC | socket.MSG_PEEK))
    buf = s.recv(n)
    if not buf:
        return None
    r = rpc.criu_resp()
    r.ParseFromString(buf)
    return r


def raw_request(mode, target, req, fds=()):
    """One request on a new connection; its reply (None if none came).
    FDS: ours that a swrk we start must hold too (images_dir_fd)."""
    s, p = raw_connect(mode, target, fds)
    s.send(req.SerializeToString())
    r = recv_resp(s)
    s.close()
    if p:
        p.wait()
    return r


def cmd_version(mode, target):
    req = rpc.criu_req()
    req.type = rpc.VERSION
    r = raw_request(mode, target, req)
    if not r or not r.success:
        print("FAIL: version request failed")
        return 1
    print("version %s %d.%d" % (r.version.name, r.version.major_number, r.version.minor_number))
    return 0


def cmd_page_server(mode, target, images, rest):
    """PAGE_SERVER for IMAGES on 127.0.0.1, any port: prints "ps PID PORT"."""
    req = rpc.criu_req()
    req.type = rpc.PAGE_SERVER
    fd = open_dir(images)
    req.opts.images_dir_fd = fd
    req.opts.log_file = "ps.log"
    req.opts.log_level = 4
    req.opts.ps.address = "127.0.0.1"
    req.opts.ps.port = 0
    if "--tls" in rest:
        d = rest[rest.index("--tls") + 1]
        req.opts.tls = True
        req.opts.tls_cacert, req.opts.tls_cert, req.opts.tls_key = d + "/ca.pem", d + "/ca-cert.pem", d + "/ca-key.pem"
    req.opts.lazy_pages = "--lazy" in rest
    r = raw_request(mode, target, req, (fd,))
    if not r or not r.success or not r.HasField("ps"):
        print("FAIL: page server request failed: %s" % (r.cr_errmsg if r else "no reply"))
        return 1
    print("ps %d %d" % (r.ps.pid, r.ps.port))
    return 0


def cmd_features(mode, target):
    req = rpc.criu_req()
    req.type = rpc.FEATURE_CHECK
    req.features.mem_track = True
    r = raw_request(mode, target, req)
    if not r or not r.success or not r.HasField("features"):
        print("FAIL: feature check failed")
        return 1
    print("mem_track %s" % (r.features.HasField("mem_track") and r.features.mem_track))
    return 0


def cmd_lazy_features(mode, target):
    req = rpc.criu_req()
    req.type = rpc.FEATURE_CHECK
    req.features.lazy_pages = True
    r = raw_request(mode, target, req)
    if not r or not r.success or not r.HasField("features"):
        print("FAIL: feature check failed")
        return 1
    print("lazy_pages %s" % (r.features.HasField("lazy_pages") and r.features.lazy_pages))
    return 0


def notified(s, answer, after=None):
    """The NOTIFY messages of the request just sent on s, each answered
    as answer(script) says (True, False, or None: hang up there); after,
    if given, runs once each is answered. The final reply (None if the
    connection closed first or we hung up) and the stages seen."""
    stages = []
    while True:
        r = recv_resp(s)
        if r is None or r.type != rpc.NOTIFY:
            return r, stages
        stages.append(r.notify.script)
        ok = answer(r.notify.script)
        if ok is None:
            return None, stages
        ack = rpc.criu_req()
        ack.type = rpc.NOTIFY
        ack.notify_success = ok
        s.send(ack.SerializeToString())
        if after:
            after(r.notify.script)


def end_dump(s, p, r, stages):
    s.close()
    if p:
        p.wait()
    if r is None:
        print("FAIL: connection closed after stages %s" % ",".join(stages))
        return 1
    print("stages %s" % ",".join(stages))
    print("dump %s %s" % ("ok" if r.success else "failed", r.cr_errmsg))
    return 0


def cmd_notify(mode, target, pid, imgdir, veto):
    s, p = raw_connect(mode, target)
    req = rpc.criu_req()
    req.type = rpc.DUMP
    req.opts.pid = pid
    req.opts.images_dir_fd = open_dir(imgdir)
    req.opts.notify_scripts = True
    req.opts.log_level = 4
    req.opts.log_file = "notify-dump.log"
    if os.environ.get("RPC_NETWORK_LOCK"):
        req.opts.network_lock = NETWORK_LOCK[os.environ["RPC_NETWORK_LOCK"]]
    s.send(req.SerializeToString())
    # the client goes away mid-request at "hangup:STAGE"
    r, stages = notified(s, lambda st: None if veto == "hangup:" + st else st != veto)
    if r is None and stages and veto == "hangup:" + stages[-1]:
        s.close()
        if p:
            p.wait()
        print("hung up at %s" % stages[-1])
        return 0
    return end_dump(s, p, r, stages)


def cmd_iterdump(mode, target, pid, imgdir):
    d1, d2 = open_dir(imgdir + "/1"), open_dir(imgdir + "/2")
    s, p = raw_connect(mode, target, (d1, d2))
    for step, fd in ((rpc.PRE_DUMP, d1), (rpc.DUMP, d2)):
        req = rpc.criu_req()
        req.type = step
        req.opts.pid = pid
        req.opts.images_dir_fd = fd
        req.opts.track_mem = True
        req.opts.log_level = 4
        req.opts.log_file = "dump.log"
        if step == rpc.DUMP:
            req.opts.parent_img = "../1"
        err = "no reply (the connection was closed)"
        try:
            s.send(req.SerializeToString())
            r = recv_resp(s)
        except OSError as e:
            r, err = None, "no reply (%s)" % e
        if not r or not r.success:
            print("FAIL: %s: %s" % ("PRE_DUMP" if step == rpc.PRE_DUMP else "DUMP", r.cr_errmsg if r else err))
            s.close()
            if p:
                p.wait()
            return 1
    s.close()
    if p:
        p.wait()
    print("dumped")
    return 0


def cmd_lazydump(mode, target, pid, imgdir, port):
    rd, wr = os.pipe()
    dirfd = open_dir(imgdir)
    s, p = raw_connect(mode, target, (wr, dirfd))
    req = rpc.criu_req()
    req.type = rpc.DUMP
    req.opts.pid = pid
    req.opts.images_dir_fd = dirfd
    req.opts.lazy_pages = True
    req.opts.ps.port = port
    req.opts.status_fd = wr
    req.opts.notify_scripts = True
    req.opts.log_level = 4
    req.opts.log_file = "dump.log"
    s.send(req.SerializeToString())
    held = [wr]

    def after(script):
        if held:	# a stage came: the request was read, its status_fd taken
            os.close(held.pop())
        if script == "status-ready":
            b = os.read(rd, 1)
            print("ready" if b == b"\0" else "FAIL: status fd gave %r" % b, flush=True)

    r, stages = notified(s, lambda st: True, after)
    return end_dump(s, p, r, stages)


CLONE_NEWNET = 0x40000000


def cmd_netrestore(mode, target, imgdir, rest):
    s, p = raw_connect(mode, target)
    req = rpc.criu_req()
    req.type = rpc.RESTORE
    req.opts.images_dir_fd = open_dir(imgdir)
    req.opts.notify_scripts = True
    req.opts.log_level = 4
    req.opts.log_file = "restore.log"
    for i, a in enumerate(rest):
        if a == "--veth":
            v = req.opts.veths.add()
            v.if_in, v.if_out = rest[i + 1].split("=", 1)
    if "--empty-ns" in rest:
        req.opts.empty_ns = CLONE_NEWNET
    setup = rest[rest.index("--setup") + 1] if "--setup" in rest else None
    s.send(req.SerializeToString())
    stages = []
    while True:
        r = recv_resp(s)
        if r is None:
            print("FAIL: connection closed after stages %s" % ",".join(stages))
            return 1
        if r.type != rpc.NOTIFY:
            break
        stages.append(r.notify.script)
        ok = True
        if r.notify.script == "setup-namespaces" and setup:
            ok = subprocess.call(["sh", "-c", setup], env=dict(os.environ, PID=str(r.notify.pid))) == 0
        ack = rpc.criu_req()
        ack.type = rpc.NOTIFY
        ack.notify_success = ok
        s.send(ack.SerializeToString())
    s.close()
    if p:
        p.wait()
    print("stages %s" % ",".join(stages))
    if not r.success:
        print("FAIL: restore: %s" % r.cr_errmsg)
        return 1
    print("restored %d" % r.restore.pid)
    return 0


def cmd_sibling(mode, target, imgdir):
    """RESTORE with rst_sibling (swrk only): the restored root must be our
    own child, which we can wait for."""
    req = rpc.criu_req()
    req.type = rpc.RESTORE
    req.opts.images_dir_fd = open_dir(imgdir)
    req.opts.rst_sibling = True
    req.opts.log_level = 4
    req.opts.log_file = "restore.log"
    r = raw_request(mode, target, req)
    if not r or not r.success:
        print("FAIL: restore: %s" % (r.cr_errmsg if r else "no reply"))
        return 1
    pid = r.restore.pid
    try:
        mine = os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        mine = False
    print("restored %d %s" % (pid, "child" if mine else "not-child"))
    if mine:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        print("reaped %d" % pid)
    return 0


def cmd_garbage(mode, target, kind):
    s, p = raw_connect(mode, target)
    if kind == "bytes":
        s.send(b"\xff\xfe\x00garbage\x07\x08")
    elif kind == "truncated":
        req = rpc.criu_req()
        req.type = rpc.DUMP
        req.opts.images_dir_fd = 3
        req.opts.log_file = "truncated-request.log"
        s.send(req.SerializeToString()[:-3])
    elif kind == "huge":
        # over stasis's 1 MiB limit where the kernel carries it (6.18);
        # 6.1 refuses a message above the socket's send buffer (EMSGSIZE),
        # so there the largest one it takes
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        size = 2 << 20
        while True:
            try:
                s.send(b"\x08\x01" + b"\x00" * size)
                break
            except OSError as e:
                if e.errno != errno.EMSGSIZE or size < 4096:
                    raise
                size //= 2
        print("sent %d bytes" % (size + 2))
    elif kind == "wrongtype":
        req = rpc.criu_req()
        req.type = rpc.PAGE_SERVER
        s.send(req.SerializeToString())
    s.settimeout(20)
    try:
        r = recv_resp(s)
    except Exception as e:
        r = None
        print("no reply (%s)" % e)
    s.close()
    if p:
        p.wait()
    if r is None:
        print("closed")
    else:
        print("reply success=%s errno=%d msg=%s" % (r.success, r.cr_errno, r.cr_errmsg))
    return 0


# --manage-cgroups MODE (CRIU's criu_cg_mode names: soft, full, ...)
def cg_opts(c, rest):
    if "--manage-cgroups" in rest:
        mode = rest[rest.index("--manage-cgroups") + 1]
        c.opts.manage_cgroups_mode = getattr(rpc, mode.upper())


def ext_mnt(c, rest):
    """--ext-mnt KEY VAL (repeatable): ext_mnt pairs (a mount namespace's
    external mounts: at dump mount point and key, at restore key and path)."""
    for i, a in enumerate(rest):
        if a == "--ext-mnt":
            m = c.opts.ext_mnt.add()
            m.key, m.val = rest[i + 1], rest[i + 2]


def main(argv):
    mode, target, cmd = argv[0], argv[1], argv[2]
    rest = argv[3:]
    if cmd == "check":
        client(argv).check()
        print("check ok")
    elif cmd == "version":
        return cmd_version(mode, target)
    elif cmd == "features":
        return cmd_features(mode, target)
    elif cmd == "lazy_features":
        return cmd_lazy_features(mode, target)
    elif cmd == "page_server":
        return cmd_page_server(mode, target, os.path.abspath(rest[0]), rest[1:])
    elif cmd in ("dump", "predump"):
        c = client(argv)
        c.opts.pid = int(rest[0])
        c.opts.images_dir_fd = open_dir(rest[1])
        c.opts.log_level = 4
        c.opts.log_file = "dump.log"
        c.opts.leave_running = "--leave-running" in rest
        if "--ext-unix-sk" in rest:
            c.opts.ext_unix_sk = True
        if "--network-lock" in rest:
            c.opts.network_lock = NETWORK_LOCK[rest[rest.index("--network-lock") + 1]]
        if "--tcp-established" in rest:
            c.opts.tcp_established = True
        if "--empty-ns" in rest:
            c.opts.empty_ns = CLONE_NEWNET
        if "--parent" in rest:
            c.opts.parent_img = rest[rest.index("--parent") + 1]
            c.opts.track_mem = True
        if "--ps" in rest:	# HOST:PORT of a page server
            host, port = rest[rest.index("--ps") + 1].rsplit(":", 1)
            c.opts.ps.address = host
            c.opts.ps.port = int(port)
        if "--ps-fd" in rest:	# HOST:PORT, connected here, passed as ps.fd
            host, port = rest[rest.index("--ps-fd") + 1].rsplit(":", 1)
            psk = socket.create_connection((host, int(port)))
            c.opts.ps.fd = psk.fileno()
        if "--tls" in rest:
            d = rest[rest.index("--tls") + 1]
            c.opts.tls = True
            c.opts.tls_cacert = d + "/ca.pem"
            c.opts.tls_cert = d + "/ca-cert.pem"
            c.opts.tls_key = rest[rest.index("--tls-key") + 1] if "--tls-key" in rest else d + "/ca-key.pem"
            c.opts.tls_no_cn_verify = "--no-cn-verify" in rest
        cg_opts(c, rest)
        ext_mnt(c, rest)
        r = c.pre_dump() if cmd == "predump" else c.dump()
        print("%s restored=%s" % ("predumped" if cmd == "predump" else "dumped", r.restored))
    elif cmd == "restore":
        c = client(argv)
        c.opts.images_dir_fd = open_dir(rest[0])
        c.opts.log_level = 4
        c.opts.log_file = "restore.log"
        cg_opts(c, rest)
        if "--tcp-established" in rest:
            c.opts.tcp_established = True
        if "--root" in rest:
            c.opts.root = rest[rest.index("--root") + 1]
        ext_mnt(c, rest)
        if "--lazy-pages" in rest:
            c.opts.lazy_pages = True
        r = c.restore()
        print("restored %d" % r.pid)
    elif cmd == "notify":
        return cmd_notify(mode, target, int(rest[0]), rest[1], rest[2] if len(rest) > 2 else "")
    elif cmd == "iterdump":
        return cmd_iterdump(mode, target, int(rest[0]), rest[1])
    elif cmd == "lazydump":
        return cmd_lazydump(mode, target, int(rest[0]), rest[1], int(rest[2]))
    elif cmd == "netrestore":
        return cmd_netrestore(mode, target, rest[0], rest[1:])
    elif cmd == "sibling":
        return cmd_sibling(mode, target, rest[0])
    elif cmd == "garbage":
        return cmd_garbage(mode, target, rest[0])
    else:
        print("unknown command %s" % cmd, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except pycriu.CRIUException as e:
        print("FAIL: %s" % e)
        sys.exit(1)
