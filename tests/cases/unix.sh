# Unix sockets (src/files/unix.c). Sourced by tests/run.sh.

# (1) socketpairs of the three types, queues both ways, across fork.
for s in plain restore chain leave_running; do
	run_test "unix.pairs.$s" "scenario_$s" unix_pairs
done

# (2) a server with path, abstract and seqpacket listeners, a child client
# with data in flight both ways and a connection waiting to be accepted.
for s in plain restore leave_running; do
	run_test "unix.server.$s" "scenario_$s" unix_server
done

# (3) bound datagram sockets with queued messages from several senders.
for s in plain restore leave_running; do
	run_test "unix.dgram.$s" "scenario_$s" unix_dgram
done
