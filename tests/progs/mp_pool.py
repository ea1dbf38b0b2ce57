# Python's multiprocessing.Pool: three forked workers fed through pipes
# guarded by POSIX semaphores (files of /dev/shm, mapped and unlinked),
# the parent's handler threads collecting results. The parent prints how
# many results it has (so the runner dumps it mid-work), then checks that
# every result came, once and right; result.txt gets PASS or what is
# wrong. The number of tasks is the argument (default 400). With a second
# argument H, the tasks from H on wait for a file "go" in the working
# directory: the runner dumps the pool mid-work however fast it runs (under
# emulation the dump's start took longer than all 400 tasks), and makes
# the file once it restored it.
import multiprocessing as mp, os, sys, time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 400
HOLD = int(sys.argv[2]) if len(sys.argv) > 2 else N


def slow(x):
    while x >= HOLD and not os.path.exists("go"):
        time.sleep(0.01)
    time.sleep(0.01)
    return x * x


def main():
    got = []
    with mp.get_context("fork").Pool(3) as pool:
        for v in pool.imap_unordered(slow, range(N), chunksize=1):
            got.append(v)
            print(len(got), flush=True)
    ok = sorted(got) == [x * x for x in range(N)]
    with open("result.txt", "w") as f:
        f.write("PASS\n" if ok else "FAIL: %d results, not the squares of 0..%d\n" % (len(got), N - 1))
    print("done", flush=True)


main()
