"""The image kinds of stasis's table (src/image/kinds.c), as `stasis
image-kinds` lists them, for the fuzzer's scripts: they keep no list of
their own. STASIS names the binary (default: build/stasis of this tree)."""
import os
import re
import subprocess

STASIS = os.environ.get("STASIS") or os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "..", "build", "stasis")
COMMON_MAGIC = 0x54564319


class Kind:
    def __init__(self, line):
        f = line.split("\t")
        self.name, self.header, self.entry, self.head = f[0], f[2], f[3], f[4]
        self.magic = int(f[1], 16) if f[1] != "-" else None
        self.optional = f[5] == "optional"
        # the name's id: a decimal (%u) or hex (%x) number
        ids = {"%u": "[0-9]+", "%x": "[0-9a-f]+"}
        self.pattern = re.compile("^" + re.sub(r"%[ux]", lambda m: ids[m.group()], re.escape(self.name)) + "$")

    def file_name(self, id=0):
        return self.name % id if "%" in self.name else self.name

    def header_bytes(self):
        """What a file of the kind starts with."""
        if self.header == "common":
            return COMMON_MAGIC.to_bytes(4, "little") + self.magic.to_bytes(4, "little")
        if self.header == "own":
            return self.magic.to_bytes(4, "little")
        return b""


def kinds():
    out = subprocess.run([STASIS, "image-kinds"], check=True, capture_output=True, text=True).stdout
    return [Kind(line) for line in out.splitlines() if line]


def kind_of(file_name, table):
    """The kind a file of an images directory is, or None."""
    return next((k for k in table if k.pattern.match(file_name)), None)


def by_name(table):
    """Kinds by their name pattern, e.g. "core-%u.img"."""
    return {k.name: k for k in table}
