# inotify watches on a file deleted since but still open (zdtm inotify00):
# after SIGUSR1 (after restore) the watch must be on the very file the fd
# is open on (the recreated one): writing through the fd gives IN_MODIFY,
# closing it IN_CLOSE_WRITE, on the file's watch; making the name anew
# gives IN_CREATE on the directory's watch. argv: DIR [linked]; linked:
# the file is left in place (the watches of zdtm inotify_irmap).
import ctypes, os, select, signal, struct, sys, time

libc = ctypes.CDLL(None, use_errno=True)
IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE, IN_CREATE = 0x2, 0x4, 0x8, 0x100
IN_NONBLOCK = os.O_NONBLOCK
got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))

d = sys.argv[1]
linked = sys.argv[2:] == ["linked"]
path = os.path.join(d, "victim")
keep = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
os.write(keep, b"before")
ify = libc.inotify_init1(IN_NONBLOCK)
wd_dir = libc.inotify_add_watch(ify, d.encode(), IN_CREATE)
wd_file = libc.inotify_add_watch(ify, path.encode(), IN_MODIFY | IN_CLOSE_WRITE)
if ify < 0 or wd_dir < 0 or wd_file < 0:
    print("FAIL: setup", flush=True)
    sys.exit(1)
if not linked:
    os.unlink(path)

def events():
    out = []
    if not select.select([ify], [], [], 1)[0]:
        return out
    time.sleep(0.1)
    try:
        buf = os.read(ify, 65536)
    except BlockingIOError:
        return out
    off = 0
    while off < len(buf):
        wd, mask, cookie, n = struct.unpack_from("iIII", buf, off)
        name = buf[off + 16:off + 16 + n].rstrip(b"\0").decode()
        out.append((wd, mask, name))
        off += 16 + n
    return out

events()   # nothing expected, but drain whatever the unlink gave
print("READY", flush=True)
while not got:
    time.sleep(0.05)

def check():
    os.write(keep, b"after")
    ev = events()
    if (wd_file, IN_MODIFY, "") not in ev:
        return "writing the deleted file gave %s, want IN_MODIFY on wd %d" % (ev, wd_file)
    os.close(keep)
    ev = events()
    if (wd_file, IN_CLOSE_WRITE, "") not in ev:
        return "closing the deleted file gave %s, want IN_CLOSE_WRITE on wd %d" % (ev, wd_file)
    if linked:
        return None
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
    ev = events()
    if (wd_dir, IN_CREATE, "victim") not in ev:
        return "creating victim again gave %s, want IN_CREATE on wd %d" % (ev, wd_dir)
    return None

err = check()
print("FAIL: " + err if err else "PASS", flush=True)
