# Unix sockets (src/files/unix.c). Sourced by tests/run.sh.

# (1) socketpairs of the three types, queues both ways, across fork.
for s in plain restore chain leave_running; do
	run_test "unix.pairs.$s" "scenario_$s" unix_pairs
done
