# A fanotify group with an inode mark on a file, an inode mark on a file
# deleted since but still open, and a mount mark (with an ignored mask) on
# the mount holding DIR (zdtm fanotify00). After SIGUSR1 (after restore)
# the group's fdinfo must show the same flags and marks (the inode of the
# recreated file aside), and events must come: FAN_MODIFY from writing
# each marked file, FAN_OPEN through the mount mark. argv: DIR [linked];
# linked: the second file is left in place.
import ctypes, os, select, signal, struct, sys, time

libc = ctypes.CDLL(None, use_errno=True)
libc.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int, ctypes.c_char_p]
FAN_ACCESS, FAN_MODIFY, FAN_CLOSE_WRITE, FAN_OPEN = 0x1, 0x2, 0x8, 0x20
FAN_CLASS_NOTIF, FAN_NONBLOCK, FAN_CLOEXEC = 0, 0x2, 0x1
FAN_MARK_ADD, FAN_MARK_MOUNT, FAN_MARK_IGNORED_MASK, FAN_MARK_IGNORED_SURV_MODIFY = 0x1, 0x10, 0x20, 0x40
AT_FDCWD = -100
got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))

d = sys.argv[1]
linked = sys.argv[2:] == ["linked"]
marked = os.path.join(d, "marked")
gone = os.path.join(d, "gone")
fa = libc.fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK | FAN_CLOEXEC, os.O_RDONLY | os.O_LARGEFILE)
keep_marked = os.open(marked, os.O_CREAT | os.O_RDWR, 0o644)
keep_gone = os.open(gone, os.O_CREAT | os.O_RDWR, 0o644)

def mark(flags, mask, path):
    if libc.fanotify_mark(fa, FAN_MARK_ADD | flags, mask, AT_FDCWD, path.encode()) < 0:
        print("FAIL: fanotify_mark %s: %s" % (path, os.strerror(ctypes.get_errno())), flush=True)
        sys.exit(1)

if fa < 0:
    print("FAIL: fanotify_init: %s" % os.strerror(ctypes.get_errno()), flush=True)
    sys.exit(1)
mark(0, FAN_MODIFY | FAN_CLOSE_WRITE, marked)
mark(0, FAN_MODIFY, gone)
mark(FAN_MARK_MOUNT, FAN_OPEN, d)
mark(FAN_MARK_MOUNT | FAN_MARK_IGNORED_MASK | FAN_MARK_IGNORED_SURV_MODIFY, FAN_ACCESS, d)
if not linked:
    os.unlink(gone)

def fdinfo():
    # the group and marks, without what a restore may change (inode
    # numbers and handles of the recreated file, mount ids)
    out = []
    for l in open("/proc/self/fdinfo/%d" % fa):
        if not l.startswith("fanotify "):
            continue
        f = dict(x.split(":", 1) for x in l.split()[1:] if ":" in x)
        kind = "ino" if "ino" in f else "mnt" if "mnt_id" in f else "group"
        out.append((kind, f.get("flags"), f.get("event-flags"), f.get("mflags"), f.get("mask"),
                    f.get("ignored_mask")))
    return sorted(out)

def events():
    out, buf = [], b""
    deadline = time.time() + 1
    while time.time() < deadline:
        if not select.select([fa], [], [], 0.2)[0]:
            if out:
                break
            continue
        try:
            buf = os.read(fa, 65536)
        except BlockingIOError:
            continue
        off = 0
        while off + 24 <= len(buf):
            elen, ver, _, mlen, mask, fd, pid = struct.unpack_from("IBBHQii", buf, off)
            if fd >= 0:
                os.close(fd)
            if pid == os.getpid():
                out.append(mask)
            off += elen
    return out

def drain():
    while events():
        pass

before = fdinfo()
drain()
print("READY", flush=True)
while not got:
    time.sleep(0.05)

def check():
    after = fdinfo()
    if after != before:
        return "fdinfo marks %s, want %s" % (after, before)
    drain()
    for name, fd in (("marked", keep_marked), ("gone (deleted)", keep_gone)):
        os.write(fd, b"x")
        ev = events()
        if not any(m & FAN_MODIFY for m in ev):
            return "writing %s gave %s, no FAN_MODIFY" % (name, [hex(m) for m in ev])
    os.close(os.open(os.path.join(d, "other"), os.O_CREAT | os.O_RDONLY, 0o644))
    ev = events()
    if not any(m & FAN_OPEN for m in ev):
        return "opening a file on the marked mount gave %s, no FAN_OPEN" % [hex(m) for m in ev]
    return None

err = check()
print("FAIL: " + err if err else "PASS", flush=True)
