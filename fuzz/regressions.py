#!/usr/bin/env python3
"""Writes fuzz_image inputs for the bugs the fuzzers found, each made from
a good dump with one image replaced, so that every fuzz run replays them.
Usage: regressions.py IMAGES_DIR OUT_DIR (IMAGES_DIR: a dump of one tree)"""
import os
import struct
import sys

import image_kinds

TABLE = image_kinds.kinds()
KINDS = image_kinds.by_name(TABLE)


def varint(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        if not n:
            return out + bytes([b])
        out += bytes([b | 0x80])


def field(num, value):          # varint field
    return varint(num << 3) + varint(value)


def entry(e):
    return struct.pack("<I", len(e)) + e


def image(kind, *entries):
    """kind: its name in the table (core-%u.img); entries: protobuf
    entries, or raw bytes given as ("raw", bytes)"""
    body = b"".join(e[1] if isinstance(e, tuple) else entry(e) for e in entries)
    return KINDS[kind].header_bytes() + body


def pack(files):
    blob = b""
    for name in sorted(files):
        raw = name.encode()
        blob += struct.pack("<B", len(raw)) + raw + struct.pack("<I", len(files[name])) + files[name]
    return blob


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, out = sys.argv[1], sys.argv[2]
    base = {}
    for n in os.listdir(src):
        kind = image_kinds.kind_of(n, TABLE)
        if kind and kind.header != "none":
            with open(os.path.join(src, n), "rb") as f:
                base[n] = f.read()
    core = KINDS["core-%u.img"]
    root = min(int(n[5:-4]) for n in base if core.pattern.match(n))
    fdinfo = sorted(n for n in base if KINDS["fdinfo-%u.img"].pattern.match(n))[0]
    cases = {
        # second pipe's data too big: the realloc'ed table was freed twice
        "pipes_double_free": {"pipes-data.img": image(
            "pipes-data.img", field(1, 1) + field(2, 3), ("raw", b"abc"), field(1, 2) + field(2, 100000000))},
        # an entry length far beyond the file: no 60 MiB buffer for it
        "core_huge_entry": {core.file_name(root): image("core-%u.img") + struct.pack("<I", 60 << 20) + b"\x08\x01"},
        # a good pstree entry, then a malformed one: both must be freed
        "pstree_bad_second": {"pstree.img": image(
            "pstree.img", field(1, root) + field(2, 0) + field(3, root) + field(4, root) + field(5, root),
            field(1, 0) + field(2, 0) + field(3, 0) + field(4, 0) + field(5, 7))},
        # an fd number near INT_MAX: the service fds planned above it
        "fdinfo_fd_int_max": {fdinfo: image(
            "fdinfo-%u.img", field(1, 1) + field(2, 0) + field(3, 1) + field(4, 0x7FFFFFFF))},
    }
    for name, repl in cases.items():
        files = dict(base)
        files.update(repl)
        with open(os.path.join(out, name), "wb") as f:
            f.write(pack(files))
    print("%d regression inputs in %s" % (len(cases), out))


main()
