#!/usr/bin/python3
"""A program that checkpoints itself through pycriu (tests/cases/rpc.sh).

    selfdump.py (--bin STASIS | --sk SOCKET) IMGDIR ROUNDS

Counts on stdout, one line per 20 ms; every 20 lines it asks stasis to dump
it (no pid: the requesting process itself). dump() returns in the original
with restored=False only if it keeps running; here the original is killed
by its dump, and returns in the restored copy with restored=True: it then
prints "RESTORED n", waits for the file IMGDIR/go-n (the test has seen
the restored copy run: without the wait, a slow machine can see it dumped
and killed again before it looks) and goes on counting. After ROUNDS
restores it exits 0.
"""
import os
import sys
import time

import pycriu


def main(mode, target, imgdir, rounds):
    restored = 0
    i = 0
    while True:
        i += 1
        print(i, flush=True)
        time.sleep(0.02)
        if i % 20:
            continue
        if restored == rounds:
            return 0
        c = pycriu.criu()
        if mode == "--bin":
            c.use_binary(target)
        else:
            c.use_sk(target)
        d = "%s/%d" % (imgdir, restored + 1)
        os.makedirs(d, exist_ok=True)
        c.opts.images_dir_fd = os.open(d, os.O_DIRECTORY)
        c.opts.log_level = 4
        c.opts.log_file = "dump.log"
        r = c.dump()
        os.close(c.opts.images_dir_fd)
        if not r.restored:
            print("FAIL: the dump returned in the original", flush=True)
            return 1
        restored += 1
        print("RESTORED %d" % restored, file=sys.stderr, flush=True)
        while not os.path.exists("%s/go-%d" % (imgdir, restored)):
            time.sleep(0.02)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
    except pycriu.CRIUException as e:
        print("FAIL: %s" % e, flush=True)
        sys.exit(1)
