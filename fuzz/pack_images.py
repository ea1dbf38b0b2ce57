#!/usr/bin/env python3
"""Packs an images directory into one fuzz_image input (see fuzz_image.c):
repeated [u8 name length][name][u32 LE data length][data]. Raw images
(pages-ID.img: memory, read only after the fork) are left out, and files
that are no image of stasis's table (image_kinds.py), but for the list
of checksums (stasis-checksums, which restore reads first).
Usage: pack_images.py IMAGES_DIR OUT_FILE [SKIP_NAME...]"""
import os
import struct
import sys

import image_kinds


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    src, out, skip = sys.argv[1], sys.argv[2], set(sys.argv[3:])
    table = image_kinds.kinds()
    blob = b""
    for name in sorted(os.listdir(src)):
        kind = image_kinds.kind_of(name, table)
        listed = name == "stasis-checksums"
        if (not listed and (not kind or kind.header == "none")) or name in skip:
            continue
        with open(os.path.join(src, name), "rb") as f:
            data = f.read()
        raw = name.encode()
        blob += struct.pack("<B", len(raw)) + raw + struct.pack("<I", len(data)) + data
    with open(out, "wb") as f:
        f.write(blob)
    print("%s: %d bytes" % (out, len(blob)))


main()
