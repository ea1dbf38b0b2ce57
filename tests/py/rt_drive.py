#!/usr/bin/python3
"""What container runtimes ask of stasis over RPC, for tests/cases/runtime.sh.

    rt_drive.py STASIS COMMAND [ARGS]

Each command talks to `STASIS swrk` as runc does (raw criu_req messages,
notify_scripts on, every notification acknowledged) and prints result
lines; it exits 0 when the exchange went as the protocol says, whatever
stasis answered (the test judges the lines).

  dump PID DIR [--freeze-cgroup CG] [--config-file F] [--leave-running]
                 DUMP; prints "stages S1,S2,..." and "dump ok" or
                 "dump failed MSG"
  version        VERSION; prints "version N" as runc/go-criu compute it
                 (major*10000 + minor*100 + sublevel, a gitid adds 100
                 after rounding down to the minor)
  pty DIR        the orphan pts scenario: a program on a pty whose master
                 only we hold is dumped with orphan_pts_master, the old
                 master closed, and restored; the new master must come
                 with the orphan-pts-master notification (SCM_RIGHTS), and
                 the restored program must answer through it on its
                 controlling terminal. Prints "PASS" or "FAIL: ..." lines.
"""
import array
import fcntl
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import termios
import time

from pycriu import rpc_pb2 as rpc

# The restored program of `pty`: reads lines on its terminal (it holds
# /dev/tty open too) and answers each with its controlling terminal's
# device number (tty_nr of /proc/self/stat: major << 8 | minor for ptys).
PTY_PROG = r"""
import os, sys
tty = os.open("/dev/tty", os.O_RDWR)
os.write(1, b"READY\n")
buf = b""
while True:
    c = os.read(0, 1)
    if not c:
        os._exit(3)
    if c != b"\n":
        buf += c
        continue
    nr = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[4])
    os.write(tty, b"got %s on ctty %d\n" % (buf, nr))
    buf = b""
"""


def swrk(stasis):
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    p = subprocess.Popen([stasis, "swrk", str(b.fileno())], pass_fds=[b.fileno()])
    b.close()
    return a, p


def recv_resp(s):
    """A reply and the fds it carried (runc reads into 40960 bytes: a
    longer reply would be cut, so it is an error here)."""
    data, fds, _flags, _addr = socket.recv_fds(s, 40960, 4, socket.MSG_TRUNC)
    if not data:
        return None, []
    if len(data) > 40960 or _flags & socket.MSG_TRUNC:
        raise RuntimeError("a reply longer than runc's 40960-byte buffer")
    r = rpc.criu_resp()
    r.ParseFromString(data)
    return r, fds


def exchange(s, req, on_notify=None):
    """Sends req, acknowledges every notification (on_notify(resp, fds)
    sees each), returns (final reply, stages)."""
    s.send(req.SerializeToString())
    stages = []
    while True:
        r, fds = recv_resp(s)
        if r is None:
            return None, stages
        if r.type != rpc.NOTIFY:
            return r, stages
        stages.append(r.notify.script)
        if on_notify:
            on_notify(r, fds)
        for fd in fds:
            if not on_notify:
                os.close(fd)
        ack = rpc.criu_req()
        ack.type = rpc.NOTIFY
        ack.notify_success = True
        s.send(ack.SerializeToString())


def dump_req(pid, imgdir, log="dump.log"):
    req = rpc.criu_req()
    req.type = rpc.DUMP
    req.opts.pid = pid
    req.opts.images_dir_fd = os.open(imgdir, os.O_DIRECTORY)
    req.opts.notify_scripts = True
    req.opts.log_level = 4
    req.opts.log_file = log
    return req


def cmd_dump(stasis, args):
    pid, imgdir, rest = int(args[0]), args[1], args[2:]
    req = dump_req(pid, imgdir)
    if "--freeze-cgroup" in rest:
        req.opts.freeze_cgroup = rest[rest.index("--freeze-cgroup") + 1]
    if "--config-file" in rest:
        req.opts.config_file = rest[rest.index("--config-file") + 1]
    if "--leave-running" in rest:
        req.opts.leave_running = True
    s, p = swrk(stasis)
    r, stages = exchange(s, req)
    s.close()
    p.wait()
    print("stages %s" % ",".join(stages))
    if r is None:
        print("dump failed no reply")
    else:
        print("dump %s %s" % ("ok" if r.success else "failed", r.cr_errmsg))
    return 0


def cmd_version(stasis, args):
    req = rpc.criu_req()
    req.type = rpc.VERSION
    s, p = swrk(stasis)
    r, _ = exchange(s, req)
    s.close()
    p.wait()
    v = r.version
    n = v.major_number * 10000 + v.minor_number * 100
    if v.HasField("sublevel"):
        n += v.sublevel
    if v.HasField("gitid"):
        n = n - n % 100 + 100
    print("version %d" % n)
    return 0


def read_until(fd, want, timeout=20):
    end = time.time() + timeout
    got = b""
    while want not in got and time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                got += os.read(fd, 4096)
            except OSError:
                break
    return got


def start_on_pty():
    """The program in a session of its own, the pty's slave as its
    controlling terminal and stdio; we keep the master."""
    master, slave = pty.openpty()
    pid = os.fork()
    if pid == 0:
        os.setsid()
        os.close(master)
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
        for fd in (0, 1, 2):
            os.dup2(slave, fd)
        if slave > 2:
            os.close(slave)
        os.execv(sys.executable, [sys.executable, "-c", PTY_PROG])
    os.close(slave)
    return pid, master


def cmd_pty(stasis, args):
    imgdir = args[0]
    pid, master = start_on_pty()
    print("pid %d" % pid, flush=True)
    if b"READY" not in read_until(master, b"READY"):
        print("FAIL: setup: the program did not start")
        return 1
    os.write(master, b"one\n")
    if b"got one" not in read_until(master, b"got one"):
        print("FAIL: setup: no answer before the dump")
        return 1
    req = dump_req(pid, imgdir)
    req.opts.orphan_pts_master = True
    s, p = swrk(stasis)
    r, _ = exchange(s, req)
    s.close()
    p.wait()
    if not r or not r.success:
        print("FAIL: dump: %s" % (r.cr_errmsg if r else "no reply"))
        return 1
    os.waitpid(pid, 0)
    os.close(master)	# the old pair is gone

    req = rpc.criu_req()
    req.type = rpc.RESTORE
    req.opts.images_dir_fd = os.open(imgdir, os.O_DIRECTORY)
    req.opts.notify_scripts = True
    req.opts.orphan_pts_master = True
    req.opts.log_level = 4
    req.opts.log_file = "restore.log"
    got = []

    def on_notify(resp, fds):
        if resp.notify.script == "orphan-pts-master":
            got.extend(fds)
        else:
            for fd in fds:
                os.close(fd)

    s, p = swrk(stasis)
    r, stages = exchange(s, req, on_notify)
    s.close()
    p.wait()
    print("stages %s" % ",".join(stages))
    if not r or not r.success:
        print("FAIL: restore: %s" % (r.cr_errmsg if r else "no reply"))
        return 1
    rpid = r.restore.pid
    print("restored %d" % rpid)
    if len(got) != 1:
        print("FAIL: %d fds came with orphan-pts-master, want 1" % len(got))
        os.kill(rpid, signal.SIGKILL)
        return 1
    new = got[0]
    index = array.array("i", [0])
    fcntl.ioctl(new, 0x80045430, index)  # TIOCGPTN
    want = b"got two on ctty %d" % (136 << 8 | index[0])
    os.write(new, b"two\n")
    out = read_until(new, want)
    if want not in out:
        print("FAIL: through the new master (pty %d) came %r, want %r" % (index[0], out, want))
    else:
        print("PASS %s" % want.decode())
    os.kill(rpid, signal.SIGKILL)
    return 0


def main(argv):
    stasis, cmd, args = argv[0], argv[1], argv[2:]
    return {"dump": cmd_dump, "version": cmd_version, "pty": cmd_pty}[cmd](stasis, args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
