# Python's multiprocessing, forked workers sharing memory every way it
# offers: a multiprocessing.Value with its lock and an Array (the heap of
# multiprocessing.sharedctypes: a file in /dev/shm unlinked once mapped;
# the lock a POSIX semaphore, mapped and unlinked too), a
# shared_memory.SharedMemory (a named /dev/shm file) and an anonymous
# mmap (MAP_SHARED|MAP_ANONYMOUS), all made before the fork.
#
# Each of the workers does ITER steps, 10 ms apart: the counter under its
# lock, its own slot of the Array, a byte of the SharedMemory and a word
# of the mmap, and its progress. The parent prints the total progress
# every 50 ms (so the runner dumps it mid-work), joins the workers and
# checks every result against what the steps must have made; result.txt
# gets PASS or what is wrong. With an argument H, each worker waits after
# H steps for a file "go" in the working directory (as mp_pool.py's
# tasks: the runner dumps it mid-work, then makes the file).
import mmap, multiprocessing as mp, os, struct, sys, time
from multiprocessing import shared_memory

WORKERS = 3
ITER = 300
HOLD = int(sys.argv[1]) if len(sys.argv) > 1 else ITER


def byte(k, i):
    return (k * 7 + i) % 251 + 1


def work(k, counter, slots, progress, shm_name, raw):
    shm = shared_memory.SharedMemory(name=shm_name)
    for i in range(ITER):
        while i >= HOLD and not os.path.exists("go"):
            time.sleep(0.01)
        with counter.get_lock():
            counter.value += 1
        slots[k] += 2
        shm.buf[k * ITER + i] = byte(k, i)
        struct.pack_into("q", raw, k * 8, i + 1)
        progress[k] = i + 1
        time.sleep(0.01)
    shm.close()


def check(counter, slots, shm, raw, codes):
    bad = []
    if codes != [0] * WORKERS:
        bad.append("worker exit codes %s" % codes)
    if counter.value != WORKERS * ITER:
        bad.append("counter %d, expected %d" % (counter.value, WORKERS * ITER))
    if list(slots) != [2 * ITER] * WORKERS:
        bad.append("slots %s, expected %d each" % (list(slots), 2 * ITER))
    want = bytes(byte(k, i) for k in range(WORKERS) for i in range(ITER))
    if bytes(shm.buf[:WORKERS * ITER]) != want:
        bad.append("shared_memory bytes differ from what the workers wrote")
    words = [struct.unpack_from("q", raw, k * 8)[0] for k in range(WORKERS)]
    if words != [ITER] * WORKERS:
        bad.append("anonymous mmap words %s, expected %d each" % (words, ITER))
    return bad


def main():
    ctx = mp.get_context("fork")
    counter = ctx.Value("i", 0)
    slots = ctx.Array("q", WORKERS)
    progress = ctx.Array("i", WORKERS, lock=False)
    shm = shared_memory.SharedMemory(create=True, size=WORKERS * ITER)
    raw = mmap.mmap(-1, 4096)
    procs = [ctx.Process(target=work, args=(k, counter, slots, progress, shm.name, raw))
             for k in range(WORKERS)]
    for p in procs:
        p.start()
    while any(p.is_alive() for p in procs):
        print(sum(progress), flush=True)
        time.sleep(0.05)
    for p in procs:
        p.join()
    bad = check(counter, slots, shm, raw, [p.exitcode for p in procs])
    shm.close()
    shm.unlink()
    with open("result.txt", "w") as f:
        f.write("FAIL: %s\n" % "; ".join(bad) if bad else "PASS\n")
    print("done", flush=True)


main()
