#!/usr/bin/env python3
"""Packs an images directory into one fuzz_image input (see fuzz_image.c):
repeated [u8 name length][name][u32 LE data length][data]. pages-*.img
(raw memory, read only after the fork) are left out.
Usage: pack_images.py IMAGES_DIR OUT_FILE [SKIP_NAME...]"""
import os
import struct
import sys


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    src, out, skip = sys.argv[1], sys.argv[2], set(sys.argv[3:])
    blob = b""
    for name in sorted(os.listdir(src)):
        if not name.endswith(".img") or name.startswith("pages-") or name in skip:
            continue
        with open(os.path.join(src, name), "rb") as f:
            data = f.read()
        raw = name.encode()
        blob += struct.pack("<B", len(raw)) + raw + struct.pack("<I", len(data)) + data
    with open(out, "wb") as f:
        f.write(blob)
    print("%s: %d bytes" % (out, len(blob)))


main()
