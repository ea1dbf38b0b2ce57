# The README's walk-through ("Migration, step by step"), run as written:
# a Redis server moves from one network namespace (machine A) to another
# (machine B), joined by a veth pair. A pre-dump goes through a page
# server in B while Redis runs and takes writes; the dump after it serves
# the memory written since from A (--lazy-pages), B restores at once with
# --lazy-pages (in a new pid namespace: A's pid is still taken) and its
# daemon asks A for those pages. Afterwards a client in A reads, at B's
# address, the keys written before the pre-dump, between it and the
# dump, and rewritten in between; A's dump has ended, its Redis is gone,
# B's daemon filled every page and went; the copy runs in B's namespace
# and takes writes.

MIG_A_ADDR=10.99.0.1 MIG_B_ADDR=10.99.0.2 MIG_PS_PORT=9876 MIG_LAZY_PORT=9877 MIG_KEYS=50000

# mig_net: the two namespaces, each held by a process of the test's
# (the walk-through names them with `ip netns add`, which needs a mount
# of /run/netns that a chroot such as CI's fresh root can't make
# cleanly); the veth is made in them, so no link comes or goes in ours.
# MIG_A, MIG_B: the commands that run something in each.
mig_net() {
	local a b
	start_prog ns-a unshare -n sleep 1000000 && a=$PROG_PID
	start_prog ns-b unshare -n sleep 1000000 && b=$PROG_PID
	wait_until "$TMO" mig_own_netns "$a" && wait_until "$TMO" mig_own_netns "$b" ||
		{ fail "the namespaces' holders did not start"; return 1; }
	MIG_A=(nsenter --net="/proc/$a/ns/net") MIG_B=(nsenter --net="/proc/$b/ns/net")
	ip link add veth-a netns "$a" type veth peer name veth-b netns "$b" &&
		"${MIG_A[@]}" ip addr add "$MIG_A_ADDR/24" dev veth-a && "${MIG_A[@]}" ip link set veth-a up &&
		"${MIG_A[@]}" ip link set lo up &&
		"${MIG_B[@]}" ip addr add "$MIG_B_ADDR/24" dev veth-b && "${MIG_B[@]}" ip link set veth-b up &&
		"${MIG_B[@]}" ip link set lo up ||
		{ fail "can't join the namespaces of pids $a and $b with a veth"; return 1; }
	MIG_NS_B=/proc/$b/ns/net
}
mig_own_netns() { [[ -e /proc/$1/ns/net && $(readlink "/proc/$1/ns/net") != "$(readlink /proc/self/ns/net)" ]]; }

# a client in A, of the server at ADDR
mig_cli() { local addr=$1; shift; timeout "$TMO" "${MIG_A[@]}" redis-cli -h "$addr" "$@" 2>> "$T_LOG/redis-cli.err"; }
mig_up() { [[ $(mig_cli "$MIG_A_ADDR" ping) == PONG ]]; }
mig_state() { echo "$(mig_cli "$1" dbsize) $(mig_cli "$1" get key:4321) $(mig_cli "$1" get key:77) $(mig_cli "$1" get written-after)"; }

# mig_stasis TAG NS_CMD... -- ARGS: stasis in a namespace, logged as TAG
mig_stasis() {
	local tag=$1 rc
	shift
	local ns=()
	while [[ $1 != -- ]]; do ns+=("$1"); shift; done
	shift
	note "${ns[*]} stasis $*"
	timeout -k 5 "$TMO" "${ns[@]}" "$STASIS" "$@" -o "$T_LOG/$tag.log" -v4 \
		> "$T_LOG/$tag.stdout" 2> "$T_LOG/$tag.stderr" < /dev/null
	rc=$?
	[[ $rc == 0 ]] || fail "$tag exited $(rc_text "$rc"): $(tail -n1 "$T_LOG/$tag.stderr")" "$T_LOG/$tag.log"
}

test_migrate_netns_redis() {
	command -v redis-server > /dev/null || { fail "no redis-server (scripts/install-deps.sh installs it)"; return; }
	mig_net || return
	mig_redis_walkthrough
}

mig_redis_walkthrough() {
	local img=$T_WORK/mig pid before after copy
	mkdir -p "$img/a/1" "$img/a/2" "$img/b/1" "$img/b/2"
	start_prog redis "${MIG_A[@]}" redis-server --port 6379 --save "" --appendonly no --protected-mode no \
		--dir "$T_WORK" --logfile "$T_LOG/redis.log"
	pid=$PROG_PID
	wait_until "$TMO" mig_up || { fail "redis never answered in A" "$T_LOG/redis.log"; return; }
	seq 1 "$MIG_KEYS" | awk '{ print "SET key:" $1 " value-" $1 }' | mig_cli "$MIG_A_ADDR" --pipe > "$T_LOG/pipe.out" ||
		{ fail "loading the keys failed" "$T_LOG/pipe.out"; return; }

	# 1. the pre-dump through B's page server; Redis runs on and is written
	mig_stasis ps-1 "${MIG_B[@]}" -- page-server -D "$img/b/1" --address "$MIG_B_ADDR" --port "$MIG_PS_PORT" -d || return
	mig_stasis predump "${MIG_A[@]}" -- pre-dump -t "$pid" -D "$img/a/1" --page-server --address "$MIG_B_ADDR" --port "$MIG_PS_PORT" || return
	[[ -s $img/b/1/pagemap-$pid.img && ! -e $img/a/1/pagemap-$pid.img ]] ||
		{ fail "the pre-dump's pages did not go to B's page server: $(ls "$img/b/1" | paste -sd' ')" "$T_LOG/ps-1.log"; return; }
	runs_freely "$pid" || { fail "redis does not run after the pre-dump"; return; }
	[[ $(mig_cli "$MIG_A_ADDR" set written-after yes) == OK ]] || { fail "redis took no write after the pre-dump"; return; }
	seq 1 20000 | awk '{ print "SET key:" $1 " again-" $1 }' | mig_cli "$MIG_A_ADDR" --pipe > "$T_LOG/pipe2.out" ||
		{ fail "rewriting keys failed" "$T_LOG/pipe2.out"; return; }
	before=$(mig_state "$MIG_A_ADDR")
	[[ $before == "$((MIG_KEYS + 1)) again-4321 again-77 yes" ]] || { fail "redis's state before the dump: $before"; return; }

	# 2. the dump serves what was written since from A; its images are copied once it says so
	mkfifo "$T_WORK/ready"
	note "${MIG_A[*]} stasis dump -t $pid --lazy-pages (in the background)"
	timeout -k 5 $((TMO * 4)) "${MIG_A[@]}" "$STASIS" dump -t "$pid" -D "$img/a/2" --prev-images-dir ../1 --track-mem \
		--lazy-pages --address "$MIG_A_ADDR" --port "$MIG_LAZY_PORT" --status-fd 3 -o "$T_LOG/dump.log" -v4 \
		3> "$T_WORK/ready" > "$T_LOG/dump.stdout" 2> "$T_LOG/dump.stderr" < /dev/null &
	local dump_pid=$!
	T_PIDS+=("$dump_pid")
	[[ $(timeout "$TMO" head -c1 "$T_WORK/ready" | wc -c) == 1 ]] ||
		{ fail "the dump gave no byte to --status-fd: $(tail -n1 "$T_LOG/dump.stderr")" "$T_LOG/dump.log"; return; }
	local kib
	kib=$(du -sk "$img/a/2" | cut -f1)
	((kib < 8192)) || { fail "A wrote $kib KiB of images: the memory written since the pre-dump was written, not served"; return; }
	cp -a "$img/a/2/." "$img/b/2/"
	[[ $(readlink "$img/b/2/parent") == ../1 ]] || { fail "the copy's parent link is '$(readlink "$img/b/2/parent")'"; return; }

	# 3. B: the daemon, the restore, a client in A at B's address
	mig_stasis lazy "${MIG_B[@]}" -- lazy-pages -D "$img/b/2" --page-server --address "$MIG_A_ADDR" \
		--port "$MIG_LAZY_PORT" -d --pidfile "$T_WORK/lazy.pid" || return
	LAZY_PID=$(pidfile_pid "$T_WORK/lazy.pid")
	T_PIDS+=("$LAZY_PID")
	mig_stasis restore "${MIG_B[@]}" -- restore -D "$img/b/2" --lazy-pages -d --new-pidns --pidfile "$T_WORK/copy.pid" || return
	copy=$(pidfile_pid "$T_WORK/copy.pid")
	T_PIDS+=("$copy" "$(status_field "$copy" PPid)")
	after=$(mig_state "$MIG_B_ADDR")
	[[ $after == "$before" ]] || { fail "at B's address: '$after', in A before the dump: '$before'" "$T_LOG/redis-cli.err"; return; }
	[[ $(readlink "/proc/$copy/ns/net") == "$(readlink "$MIG_NS_B")" ]] ||
		{ fail "the copy (pid $copy) is in $(readlink "/proc/$copy/ns/net"), not in B's $(readlink "$MIG_NS_B")"; return; }

	# A's dump ends once B's daemon has every page; the daemon then exits
	lazy_done lazy || return
	wait_child "$dump_pid" "$TMO"
	[[ $CHILD_RC == 0 ]] || { fail "A's dump exited $CHILD_RC" "$T_LOG/dump.log"; return; }
	wait_gone "$pid" "$TMO" || { fail "A's redis $pid is alive after its dump ended"; return; }
	grep -q "lazy pages: the daemon is done, [0-9]* KiB served" "$T_LOG/dump.log" ||
		{ fail "A's dump does not say what it served" "$T_LOG/dump.log"; return; }
	# and only what was written since the pre-dump: the rest is left to B's
	# copy of it (on 6.1 with THP "always", soft-dirty marks whole 2 MiB
	# pages, so much of the heap is served again: more, never less)
	local served predumped left
	served=$(sed -n 's/.*daemon is done, \([0-9]*\) KiB served.*/\1/p' "$T_LOG/dump.log" | tail -n1)
	left=$(sed -n 's/.* \([0-9]*\) left to the parent.*/\1/p' "$T_LOG/dump.log" | tail -n1)
	predumped=$(du -sk "$img/b/1" | cut -f1)
	note "A served $served KiB lazily and left $left pages to the pre-dump; B got $predumped KiB from it"
	((left > 0 && served > 0 && served < predumped)) ||
		{ fail "A served $served KiB of the $predumped KiB pre-dumped, $left pages left to it: the pre-dump was not used" "$T_LOG/dump.log"; return; }

	# the copy, with all its memory, takes writes and ends as Redis ends
	[[ $(mig_cli "$MIG_B_ADDR" incr counter) == 1 && $(mig_state "$MIG_B_ADDR") == "$((MIG_KEYS + 2)) again-4321 again-77 yes" ]] ||
		{ fail "the copy's state after a write: $(mig_state "$MIG_B_ADDR")" "$T_LOG/redis-cli.err"; return; }
	mig_cli "$MIG_B_ADDR" shutdown nosave > /dev/null
	wait_gone "$copy" "$TMO" || fail "the copy did not shut down"
}
run_test migrate.netns_redis test_migrate_netns_redis
