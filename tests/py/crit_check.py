#!/usr/bin/python3
"""`stasis crit` against CRIU's crit (pycriu), on every image of the dumps
given (tests/cases/crit.sh):

  - stasis's JSON encodes back to the very bytes of the image;
  - crit's JSON, plain and pretty, encoded by stasis, decodes in crit to
    crit's JSON of the image;
  - stasis's JSON, encoded by crit (which drops the fields its version
    does not know), decodes in stasis to crit's JSON of the image, plain,
    pretty and --nopl, to the byte;
  - info counts what decode lists;
  - the same for a ghost file without chunks (as CRIU writes small ones);
  - `crit x DIR ps|fds|mems|rss` prints what crit prints.

Which files are images, and which are raw, comes from `stasis image-kinds`
(fuzz/image_kinds.py). Prints "FAIL ..." per failure, "KINDS ..." (the
kinds seen) and "UNSEEN ..." (the table's kinds no dump had); exits 1 if
anything failed.
Usage: crit_check.py STASIS DUMP_DIR..."""
import base64
import io
import json
import os
import subprocess
import sys

import pycriu

STASIS = sys.argv[1]
os.environ["STASIS"] = STASIS
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fuzz"))
import image_kinds  # noqa: E402 (the table, as the fuzzer's scripts read it)

failures = []


def stasis_crit(*args, data=None):
    r = subprocess.run([STASIS, "crit"] + list(args), input=data, capture_output=True)
    if r.returncode:
        raise RuntimeError("stasis crit %s: %s" % (" ".join(args), r.stderr.decode(errors="replace").strip()))
    return r.stdout


def crit_json(data, pretty=False, nopl=False):
    """What crit decode (or show) prints, but its last newline."""
    img = pycriu.images.load(io.BytesIO(data), pretty or nopl, nopl)
    return json.dumps(img, indent=4 if pretty or nopl else None)


def crit_encode(text):
    image = json.loads(text)
    if image["magic"] == "IPCNS_SHM":
        # pycriu's shm handler decodes its extra with base64.decodebytes,
        # which takes bytes, not the text its own load gave: as bytes here
        for e in image["entries"]:
            if isinstance(e.get("extra"), str):
                e["extra"] = e["extra"].encode()
    out = io.BytesIO()
    pycriu.images.dump(image, out)
    return out.getvalue()


def check(name, got, want):
    if got != want:
        failures.append("%s: %s" % (name, first_difference(got, want)))


def first_difference(got, want):
    for i, (a, b) in enumerate(zip(got, want)):
        if a != b:
            return "differs at %d: ...%r... against crit's ...%r..." % (i, got[max(0, i - 40):i + 40],
                                                                     want[max(0, i - 40):i + 40])
    return "%d long against crit's %d" % (len(got), len(want))


def check_image(path, kinds):
    with open(path, "rb") as f:
        data = f.read()
    plain, pretty = crit_json(data), crit_json(data, pretty=True)
    ours = stasis_crit("decode", "-i", path).decode()
    check(path + ": stasis decode | stasis encode", stasis_crit("encode", data=ours.encode()), data)
    for text, what in ((plain, "crit decode"), (pretty, "crit decode --pretty")):
        back = stasis_crit("encode", data=text.encode())
        check("%s: %s | stasis encode | crit decode" % (path, what), crit_json(back), plain)
    known = crit_encode(ours)	# only the fields crit knows
    check(path + ": stasis decode | crit encode | stasis decode", stasis_crit("decode", data=known).decode(),
          plain + "\n")
    check(path + ": ... | stasis decode --pretty", stasis_crit("decode", "--pretty", data=known).decode(),
          pretty + "\n")
    tmp = path + ".known"
    with open(tmp, "wb") as f:
        f.write(known)
    check(path + ": ... | stasis show --nopl", stasis_crit("show", tmp, "--nopl").decode(),
          crit_json(known, nopl=True) + "\n")
    info = json.loads(stasis_crit("info", tmp))
    os.unlink(tmp)
    entries = json.loads(plain)["entries"]
    want = len(entries) - (1 if info["magic"] in kinds["headed"] and entries else 0)
    check(path + ": stasis info", info, {"magic": json.loads(plain)["magic"], "count": want})


def ghost_without_chunks(path, kinds):
    """A ghost file as CRIU writes a small one: its bytes right after its
    head, no chunks (stasis writes chunks; it reads both)."""
    image = json.loads(crit_json(open(path, "rb").read()))
    head = image["entries"][0]
    head["chunks"] = False
    head["extra"] = base64.encodebytes(b"the bytes of a ghost\n" * 10).decode()
    image["entries"] = [head]
    variant = path + ".nochunks"
    with open(variant, "wb") as f:
        f.write(crit_encode(json.dumps(image)))
    check_image(variant, kinds)
    os.unlink(variant)


def check_explorers(d):
    for what in ("ps", "fds", "mems", "rss"):
        crit = subprocess.run(["crit", "x", d, what], capture_output=True, text=True)
        if crit.returncode:
            continue	# crit's own failure (it has a few): nothing to compare
        check("%s: crit x %s" % (d, what), stasis_crit("x", d, what).decode(), crit.stdout)


def main():
    table = image_kinds.kinds()
    headed = set()
    seen = set()
    for d in sys.argv[2:]:
        for n in sorted(os.listdir(d)):
            kind = image_kinds.kind_of(n, table)
            if not kind or kind.header == "none":
                continue
            seen.add(kind.name)
            path = os.path.join(d, n)
            try:
                magic = json.loads(crit_json(open(path, "rb").read()))["magic"]
                if kind.head != "-":
                    headed.add(magic)
                check_image(path, {"headed": headed})
                if kind.name.startswith("ghost-file-"):
                    ghost_without_chunks(path, {"headed": headed})
            except Exception as e:
                failures.append("%s: %s" % (path, e))
        check_explorers(d)
    for f in failures:
        print("FAIL " + f)
    print("KINDS " + " ".join(sorted(seen)))
    missing = [k.name for k in table if k.header != "none" and k.name not in seen]
    print("UNSEEN " + " ".join(missing))
    return 1 if failures else 0


sys.exit(main())
