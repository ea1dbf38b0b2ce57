# The page server (src/pagexfer/): pages sent over loopback TCP with dump
# --page-server to `stasis page-server` (or CRIU's), the other images
# written locally, then put together and restored; tests/progs/dirtier.c
# checks every page of its memory after the restore. The server is also
# attacked (garbage, cut connections, a silent client), and a dump whose
# server dies must leave its tree running. And image checksums
# (src/image/checksum.h): a damaged byte is refused by name.

PS_MIB=32

# ps_start TAG DIR [ARGS...]: `stasis page-server` on a free port of
# 127.0.0.1 (--port 0, read back from its log); PS_PID, PS_PORT. The
# command PS_WRAP (an array, none by default) execs it.
PS_WRAP=()
ps_start() {
	local tag=$1 dir=$2
	shift 2
	mkdir -p "$dir"
	note "${PS_WRAP[*]} stasis page-server -D $dir $*"
	"${PS_WRAP[@]}" "$STASIS" page-server -D "$dir" --address 127.0.0.1 --port 0 -o "$T_LOG/$tag.log" -v4 "$@" \
		> "$T_LOG/$tag.stdout" 2> "$T_LOG/$tag.stderr" < /dev/null &
	PS_PID=$!
	T_PIDS+=("$PS_PID")
	wait_until "$TMO" grep -q "listening on" "$T_LOG/$tag.log" ||
		{ fail "$tag: the page server does not listen" "$T_LOG/$tag.log"; return 1; }
	PS_PORT=$(sed -n 's/.*listening on .* port \([0-9]*\).*/\1/p' "$T_LOG/$tag.log" | head -n1)
	note "$tag: pid $PS_PID, port $PS_PORT"
}

# criu_ps_start TAG DIR [ARGS...]: CRIU's page server; PS_PID, PS_PORT.
criu_ps_start() {
	local tag=$1 dir=$2
	shift 2
	mkdir -p "$dir"
	PS_PORT=$((20000 + RANDOM % 20000))
	"$CRIU_BIN" page-server -D "$dir" --address 127.0.0.1 --port "$PS_PORT" -o "$T_LOG/$tag.log" -v4 "$@" \
		> "$T_LOG/$tag.stdout" 2>&1 < /dev/null &
	PS_PID=$!
	T_PIDS+=("$PS_PID")
	wait_until "$TMO" grep -q "Starting page server on port" "$T_LOG/$tag.log" ||
		{ fail "$tag: CRIU's page server does not start" "$T_LOG/$tag.log"; return 1; }
	sleep 0.2	# it listens right after that line
}

# ps_wait TAG: the server must end with 0 once the dump is over.
ps_wait() {
	local tag=$1 rc
	wait_child "$PS_PID" "$TMO"
	wait "$PS_PID"
	rc=$?
	[[ $rc == 0 ]] || fail "$tag: the page server exited $rc" "$T_LOG/$tag.log"
}

# A dump's local images and the server's, in one directory (what a user
# copies to the machine that restores); the parent link stays the
# server's (the dump's names its local parent).
merge_into() {
	local to=$1 from=$2 f
	for f in "$from"/* "$from"/.[!.]*; do
		[[ -e $f || -L $f ]] || continue
		[[ $(basename "$f") == parent && -e $to/parent ]] && continue
		cp -a "$f" "$to"/
	done
}

start_dirtier_ps() {
	start_prog dirtier "$BIN/dirtier" "$PS_MIB"
	wait_ready dirtier "$PROG_PID" || return
	DIRTIER_EXE=$(readlink "/proc/$PROG_PID/exe")
}

restore_dirtier() {
	local tag=$1 dir=$2 pid=$3
	restore_foreground "$tag" "$dir"
	wait_restored "$tag" "$pid" "$DIRTIER_EXE" 1 "$RESTORE_PID" || return
	kill -USR1 "$pid"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output dirtier
}

# The pages of a dump go to the server; the local directory has none.
test_ps_stasis() {
	local pid
	start_dirtier_ps || return
	pid=$PROG_PID
	ps_start ps "$T_WORK/remote" || return
	dump dump "$pid" "$T_WORK/local" --page-server --address 127.0.0.1 --port "$PS_PORT" || return
	expect_killed "$pid" || return
	ps_wait ps || return
	compgen -G "$T_WORK/local/pages-*.img" > /dev/null && fail "the dump wrote pages locally"
	compgen -G "$T_WORK/remote/pagemap-$pid.img" > /dev/null || { fail "the server wrote no pagemap-$pid.img"; return; }
	merge_into "$T_WORK/local" "$T_WORK/remote"
	restore_dirtier restore "$T_WORK/local" "$pid"
}
run_test pageserver.stasis test_ps_stasis

# Two pre-dumps and the dump, each through a server whose images dir
# has the last one's as parent (--prev-images-dir): the dump sends only
# what changed, the restore takes the rest from the server's parents.
test_ps_predump_chain() {
	local pid i prev rc
	start_dirtier_ps || return
	pid=$PROG_PID
	for i in 1 2 3; do
		prev=()
		((i > 1)) && prev=(--prev-images-dir "../$((i - 1))")
		ps_start "ps$i" "$T_WORK/remote/$i" "${prev[@]}" || return
		mkdir -p "$T_WORK/local/$i"
		if ((i < 3)); then
			rc=$(stasis "pre$i" pre-dump -t "$pid" -D "$T_WORK/local/$i" "${prev[@]}" --page-server \
				--address 127.0.0.1 --port "$PS_PORT")
			[[ $rc == 0 ]] || { fail "pre-dump $i exited $rc: $(error_message "pre$i")" "$T_LOG/pre$i.log"; return; }
			runs_freely "$pid" || { fail "the program does not run after pre-dump $i"; return; }
			sleep 0.3
		else
			dump dump "$pid" "$T_WORK/local/3" "${prev[@]}" --page-server --address 127.0.0.1 --port "$PS_PORT" ||
				return
		fi
		ps_wait "ps$i" || return
	done
	expect_killed "$pid" || return
	grep -q "KiB in the parent dump" "$T_LOG/dump.log" && ! grep -q "every page is saved" "$T_LOG/dump.log" ||
		{ fail "the dump did not leave pages to its parents" "$T_LOG/dump.log"; return; }
	local full last
	full=$(stat -c %s "$T_WORK"/remote/1/pages-*.img | awk '{ s += $1 } END { print s }')
	last=$(stat -c %s "$T_WORK"/remote/3/pages-*.img | awk '{ s += $1 } END { print s }')
	note "pages on the server: first pre-dump $full bytes, dump $last bytes"
	((last < full)) || fail "the dump sent $last bytes of pages, as much as the first pre-dump ($full)"
	grep -q "sent to the page server while it ran" "$T_LOG/pre1.log" ||
		fail "the pre-dump sent its pages with the program frozen" "$T_LOG/pre1.log"
	merge_into "$T_WORK/remote/3" "$T_WORK/local/3"
	restore_dirtier restore "$T_WORK/remote/3" "$pid"
}
run_test pageserver.predump_chain test_ps_predump_chain

# As CRIU's zdtm runs it: the server and the dump share the images
# directory, the dump's --prev-images-dir link tells the server the parent.
test_ps_same_dir() {
	local pid rc
	start_dirtier_ps || return
	pid=$PROG_PID
	ps_start ps1 "$T_WORK/img/1" || return
	rc=$(stasis pre1 pre-dump -t "$pid" -D "$T_WORK/img/1" --page-server --address 127.0.0.1 --port "$PS_PORT")
	[[ $rc == 0 ]] || { fail "pre-dump exited $rc: $(error_message pre1)" "$T_LOG/pre1.log"; return; }
	ps_wait ps1 || return
	sleep 0.3
	ps_start ps2 "$T_WORK/img/2" || return
	dump dump "$pid" "$T_WORK/img/2" --prev-images-dir ../1 --track-mem --page-server --address 127.0.0.1 \
		--port "$PS_PORT" || return
	ps_wait ps2 || return
	expect_killed "$pid" || return
	grep -q "KiB in the parent dump" "$T_LOG/dump.log" || fail "the dump did not use its parent" "$T_LOG/dump.log"
	restore_dirtier restore "$T_WORK/img/2" "$pid"
}
run_test pageserver.same_dir test_ps_same_dir

# The other ways to start one: --daemon with --pidfile and --status-fd
# (a byte once it listens), and both ends on the two ends of a socket
# pair (--ps-socket), the dump's ending with FORCE_CLOSE as CRIU's does.
test_ps_daemon_and_socket() {
	local pid rc sp port
	start_dirtier_ps || return
	pid=$PROG_PID
	mkdir -p "$T_WORK/remote" "$T_WORK/local" "$T_WORK/remote2" "$T_WORK/local2"
	rc=$(timeout -k 5 "$TMO" "$PYTHON" - "$STASIS" "$T_WORK/remote" "$T_LOG/psd.log" << 'PY'
import os, subprocess, sys
r, w = os.pipe()
p = subprocess.Popen([sys.argv[1], "page-server", "-D", sys.argv[2], "--address", "127.0.0.1", "--port", "0",
                      "-d", "--pidfile", "ps.pid", "--status-fd", str(w), "-o", sys.argv[3], "-v4"], pass_fds=[w])
os.close(w)
print("exit", p.wait(), "status", os.read(r, 1) == b"\0")
PY
)
	note "page-server -d: $rc"
	[[ $rc == "exit 0 status True" ]] || { fail "page-server -d --status-fd: $rc" "$T_LOG/psd.log"; return; }
	sp=$(cat "$T_WORK/remote/ps.pid")
	T_PIDS+=("$sp")
	alive "$sp" || { fail "the daemon $sp is not running"; return; }
	port=$(sed -n 's/.*listening on .* port \([0-9]*\).*/\1/p' "$T_LOG/psd.log" | head -n1)
	dump dump1 "$pid" "$T_WORK/local" -R --page-server --address 127.0.0.1 --port "$port" || return
	wait_gone "$sp" || { fail "the daemon did not end after the dump"; return; }
	# both ends on a socket pair
	timeout -k 5 $((TMO * 2)) "$PYTHON" - "$STASIS" "$pid" "$T_WORK/remote2" "$T_WORK/local2" "$T_LOG" << 'PY' > "$T_LOG/pair.out" 2>&1
import os, socket, subprocess, sys
stasis, pid, remote, local, logs = sys.argv[1:]
a, b = socket.socketpair()
srv = subprocess.Popen([stasis, "page-server", "-D", remote, "--ps-socket", str(a.fileno()),
                        "-o", logs + "/pair-ps.log", "-v4"], pass_fds=[a.fileno()])
dmp = subprocess.Popen([stasis, "dump", "-t", pid, "-D", local, "--page-server", "--ps-socket", str(b.fileno()),
                        "-o", logs + "/dump.log", "-v4"], pass_fds=[b.fileno()])
a.close(); b.close()
print("dump", dmp.wait(), "server", srv.wait())
PY
	grep -q "dump 0 server 0" "$T_LOG/pair.out" || { fail "dump and server on a socket pair: $(cat "$T_LOG/pair.out")" "$T_LOG/pair-ps.log"; return; }
	expect_killed "$pid" || return
	merge_into "$T_WORK/local2" "$T_WORK/remote2"
	restore_dirtier restore "$T_WORK/local2" "$pid"
}
run_test pageserver.daemon_and_socket test_ps_daemon_and_socket

# stasis dumps to CRIU's page server; CRIU restores (its pagemap, our
# other images), and stasis too (checking the pages it sent).
test_ps_to_criu() {
	local pid rc
	start_dirtier_ps || return
	pid=$PROG_PID
	criu_ps_start ps "$T_WORK/remote" || return
	dump dump "$pid" "$T_WORK/local" --page-server --address 127.0.0.1 --port "$PS_PORT" || return
	expect_killed "$pid" || return
	ps_wait ps || return
	merge_into "$T_WORK/local" "$T_WORK/remote"
	cp -a "$T_WORK/local" "$T_WORK/local2"
	cp "$T_LOG/dirtier.out" "$T_WORK/dirtier.out.at_dump"
	timeout -k 5 "$TMO" "$CRIU_BIN" restore -D "$T_WORK/local" -d -o "$T_LOG/criu-restore.log" -v4 \
		> "$T_LOG/criu-restore.out" 2>&1 < /dev/null
	rc=$?
	[[ $rc == 0 ]] || { fail "CRIU could not restore (rc $rc)" "$T_LOG/criu-restore.log"; return; }
	kill -USR1 "$pid"
	wait_gone "$pid" || { fail "the program restored by CRIU did not end"; return; }
	check_output dirtier || return
	cp "$T_WORK/dirtier.out.at_dump" "$T_LOG/dirtier.out"	# as the dump left it, for stasis's restore
	restore_dirtier restore "$T_WORK/local2" "$pid"
	grep -q "images whole (stasis-checksums)" "$T_LOG/restore.log" || fail "the restore checked no checksums" "$T_LOG/restore.log"
}
run_test --needs criu pageserver.to_criu test_ps_to_criu

# CRIU's dump to stasis's page server; stasis restores. (CRIU pre-dumps
# only with soft-dirty bits, which the kernels tested here may lack:
# the chain through a server is pageserver.predump_chain's.)
test_ps_from_criu() {
	local pid rc
	start_dirtier_ps || return
	pid=$PROG_PID
	ps_start ps "$T_WORK/remote" || return
	mkdir -p "$T_WORK/local"
	timeout -k 5 "$TMO" "$CRIU_BIN" dump -t "$pid" -D "$T_WORK/local" --page-server --address 127.0.0.1 \
		--port "$PS_PORT" -o "$T_LOG/criu-dump.log" -v4 > "$T_LOG/criu-dump.out" 2>&1 < /dev/null
	rc=$?
	[[ $rc == 0 ]] || { fail "CRIU's dump failed (rc $rc)" "$T_LOG/criu-dump.log"; return; }
	ps_wait ps || return
	wait_gone "$pid" || { fail "pid $pid alive after CRIU's dump"; return; }
	wait "$pid" 2>/dev/null
	merge_into "$T_WORK/remote" "$T_WORK/local"
	restore_dirtier restore "$T_WORK/remote" "$pid"
	grep -q "images whole (stasis-checksums-ps)" "$T_LOG/restore.log" ||
		fail "the restore did not check what the server received" "$T_LOG/restore.log"
}
run_test --needs criu pageserver.from_criu test_ps_from_criu

dropped_sessions() { (($(grep -c "session from .* failed" "$T_LOG/ps.log") >= $1)); }

# A client speaking CRIU's protocol, or not (tests/py/ps_client.py):
# ATTACK, expecting the server to drop the session and go on.
ps_attack() {
	local what=$1
	timeout -k 5 "$TMO" "$PYTHON" "$ROOT/tests/py/ps_client.py" 127.0.0.1 "$PS_PORT" "$what" \
		>> "$T_LOG/attacks.out" 2>&1 || { fail "attack $what: the client failed" "$T_LOG/attacks.out"; return 1; }
	ATTACKS=$((ATTACKS + 1))
	wait_until "$TMO" dropped_sessions "$ATTACKS" ||
		{ fail "attack $what: the server did not drop the session" "$T_LOG/ps.log"; return 1; }
	alive "$PS_PID" || { fail "attack $what: the page server died" "$T_LOG/ps.log"; return 1; }
	note "attack $what: dropped ($(grep 'Error: page server' "$T_LOG/ps.log" | tail -n1))"
}

# Garbage, runs out of order or outside the address space, a hole the
# parent does not have, an unknown image type, a connection cut in the
# middle of the pages, a client that goes silent (--timeout 2) or sends a
# byte now and then (a header must come whole within it): each
# session is dropped with what it wrote, and a real dump then works.
test_ps_attacks() {
	local pid what
	start_dirtier_ps || return
	pid=$PROG_PID
	ps_start ps "$T_WORK/remote" --timeout 2 || return
	ATTACKS=0
	for what in garbage short_header bad_type misaligned descending huge hole_no_parent cut_pages silent trickle get; do
		ps_attack "$what" || return
	done
	[[ -z $(ls "$T_WORK/remote" | grep -v '\.log$') ]] ||
		fail "dropped sessions left files: $(ls "$T_WORK/remote" | tr '\n' ' ')"
	dump dump "$pid" "$T_WORK/local" --page-server --address 127.0.0.1 --port "$PS_PORT" || return
	expect_killed "$pid" || return
	ps_wait ps || return
	merge_into "$T_WORK/local" "$T_WORK/remote"
	restore_dirtier restore "$T_WORK/local" "$pid"
}
run_test pageserver.attacks test_ps_attacks

# A server that dies in the middle of the pages (tests/py/ps_client.py
# as a server that reads a little and closes), and none at all: the dump
# fails in one line, and the program runs on unharmed.
test_ps_server_dies() {
	local pid rc port
	start_dirtier_ps || return
	pid=$PROG_PID
	port=$((20000 + RANDOM % 20000))
	"$PYTHON" "$ROOT/tests/py/ps_client.py" 127.0.0.1 "$port" serve_and_die > "$T_LOG/fakeps.out" 2>&1 &
	T_PIDS+=("$!")
	wait_until "$TMO" grep -q LISTENING "$T_LOG/fakeps.out" || { fail "the fake server does not listen"; return; }
	rc=$(stasis dump dump -t "$pid" -D "$T_WORK/img" --page-server --address 127.0.0.1 --port "$port")
	[[ $rc != 0 && $rc != 124 && $rc != 137 ]] || { fail "the dump to a dying server exited $(rc_text "$rc")"; return; }
	note "dump failed: $(error_message dump)"
	(($(grep -c . "$T_LOG/dump.stderr") == 1)) || fail "the failed dump said more than one line" "$T_LOG/dump.stderr"
	grep -q "page server" "$T_LOG/dump.stderr" || fail "the failed dump does not name the page server" "$T_LOG/dump.stderr"
	[[ ! -e $T_WORK/img/inventory.img ]] || fail "the failed dump left an inventory"
	runs_freely "$pid" || { fail "the program does not run after the failed dump"; return; }
	rc=$(stasis dump2 dump -t "$pid" -D "$T_WORK/img2" --page-server --address 127.0.0.1 --port "$port")
	[[ $rc != 0 ]] || { fail "a dump to no server succeeded"; return; }
	grep -q "can't connect to the page server" "$T_LOG/dump2.stderr" || fail "message: $(error_message dump2)"
	runs_freely "$pid" || { fail "the program does not run after the second failed dump"; return; }
	kill -USR1 "$pid"
	wait_gone "$pid" || { fail "the program did not end"; return; }
	check_output dirtier
}
run_test pageserver.server_dies test_ps_server_dies

# A server that takes the connection and then nothing: the dump gives up
# after --timeout seconds, and the program runs on.
test_ps_server_hangs() {
	local pid rc port t0
	start_dirtier_ps || return
	pid=$PROG_PID
	port=$((20000 + RANDOM % 20000))
	"$PYTHON" "$ROOT/tests/py/ps_client.py" 127.0.0.1 "$port" serve_and_hang > "$T_LOG/fakeps.out" 2>&1 &
	T_PIDS+=("$!")
	wait_until "$TMO" grep -q LISTENING "$T_LOG/fakeps.out" || { fail "the fake server does not listen"; return; }
	t0=$SECONDS
	rc=$(stasis dump dump -t "$pid" -D "$T_WORK/img" --page-server --address 127.0.0.1 --port "$port" --timeout 2)
	[[ $rc != 0 && $rc != 124 && $rc != 137 ]] || { fail "the dump to a stalled server exited $(rc_text "$rc")"; return; }
	note "dump failed after $((SECONDS - t0))s: $(error_message dump)"
	grep -q "page server .*for too long" "$T_LOG/dump.stderr" || fail "message: $(error_message dump)" "$T_LOG/dump.stderr"
	runs_freely "$pid" || { fail "the program does not run after the failed dump"; return; }
	kill -USR1 "$pid"
	wait_gone "$pid" || { fail "the program did not end"; return; }
	check_output dirtier
}
run_test pageserver.server_hangs test_ps_server_hangs

# A server whose disk fills in the middle of the pages (a 4 MiB tmpfs in
# a mount namespace of its own): the server says so, removes what the
# session wrote and waits for the next; the dump fails in one line
# naming the page server; the program runs on.
test_ps_server_disk_full() {
	local pid rc dir=$T_WORK/remote left
	# the small disk's mount must stay in the server's namespace: where /
	# is no mount point (a chroot), its propagation can't be made private
	root_is_mount || { skip "/ is not a mount point (a chroot): no private mount namespace for the server's disk"; return; }
	start_dirtier_ps || return
	pid=$PROG_PID
	PS_WRAP=(unshare -m --propagation private sh -c 'mount -t tmpfs -o size=4m full "$0" && exec "$@"' "$dir")
	ps_start ps "$dir"
	rc=$?
	PS_WRAP=()
	((rc == 0)) || return
	rc=$(stasis dump dump -t "$pid" -D "$T_WORK/img" --page-server --address 127.0.0.1 --port "$PS_PORT")
	[[ $rc != 0 && $rc != 124 && $rc != 137 ]] || { fail "the dump to a full server exited $(rc_text "$rc")"; return; }
	note "dump failed: $(error_message dump)"
	(($(grep -c . "$T_LOG/dump.stderr") == 1)) || fail "the failed dump said more than one line" "$T_LOG/dump.stderr"
	grep -q "page server" "$T_LOG/dump.stderr" || fail "the failed dump does not name the page server" "$T_LOG/dump.stderr"
	wait_until "$TMO" grep -q "waiting for the next" "$T_LOG/ps.log" ||
		{ fail "the server did not drop the session" "$T_LOG/ps.log"; return; }
	grep -q "can't write pages-.*No space left on device" "$T_LOG/ps.log" ||
		fail "the server does not say that its disk is full" "$T_LOG/ps.log"
	alive "$PS_PID" || fail "the server ended after a failed session"
	left=$(nsenter -t "$PS_PID" -m ls -A "$dir")
	[[ -z $left ]] || fail "the failed session left files: $left"
	runs_freely "$pid" || { fail "the program does not run after the failed dump"; return; }
	kill -USR1 "$pid"
	wait_gone "$pid" || { fail "the program did not end"; return; }
	check_output dirtier
}
run_test pageserver.server_disk_full test_ps_server_disk_full

# The same through RPC (pycriu's opts.ps, through swrk): a pre-dump and
# a dump to two servers, the second with the first as parent.
test_ps_rpc() {
	local pid rc
	start_dirtier_ps || return
	pid=$PROG_PID
	ps_start ps1 "$T_WORK/remote/1" || return
	mkdir -p "$T_WORK/local/1" "$T_WORK/local/2"
	timeout -k 5 "$TMO" "$PYTHON" "$ROOT/tests/py/rpc_drive.py" --bin "$STASIS" predump "$pid" "$T_WORK/local/1" \
		--ps "127.0.0.1:$PS_PORT" > "$T_LOG/rpc-pre.out" 2>&1
	grep -q "^predumped" "$T_LOG/rpc-pre.out" || { fail "RPC pre-dump: $(cat "$T_LOG/rpc-pre.out")" "$T_WORK/local/1/dump.log"; return; }
	ps_wait ps1 || return
	sleep 0.3
	ps_start ps2 "$T_WORK/remote/2" --prev-images-dir ../1 || return
	timeout -k 5 "$TMO" "$PYTHON" "$ROOT/tests/py/rpc_drive.py" --bin "$STASIS" dump "$pid" "$T_WORK/local/2" \
		--parent ../1 --ps "127.0.0.1:$PS_PORT" > "$T_LOG/rpc-dump.out" 2>&1
	grep -q "^dumped" "$T_LOG/rpc-dump.out" || { fail "RPC dump: $(cat "$T_LOG/rpc-dump.out")" "$T_WORK/local/2/dump.log"; return; }
	ps_wait ps2 || return
	cp "$T_WORK/local/2/dump.log" "$T_LOG/rpc-dump.log"
	expect_killed "$pid" || return
	grep -q "KiB in the parent dump" "$T_LOG/rpc-dump.log" || fail "the RPC dump did not use its parent" "$T_LOG/rpc-dump.log"
	merge_into "$T_WORK/remote/2" "$T_WORK/local/2"
	restore_dirtier restore "$T_WORK/remote/2" "$pid"
}
run_test pageserver.rpc test_ps_rpc

# RPC's PAGE_SERVER (through swrk) starts a server apart: the reply names
# its pid and port; a dump sends to it, and it ends with the dump. With
# tls the server and the dump talk TLS.
test_ps_rpc_request() {
	local pid rc sp port c=$T_WORK/certs tls=() dargs=()
	if [[ ${1:-} == tls ]]; then
		make_certs "$c" ca || return
		tls=(--tls "$c")
		dargs=($(tls_args "$c"))
	fi
	start_dirtier_ps || return
	pid=$PROG_PID
	mkdir -p "$T_WORK/remote" "$T_WORK/local"
	timeout -k 5 "$TMO" "$PYTHON" "$ROOT/tests/py/rpc_drive.py" --bin "$STASIS" page_server "$T_WORK/remote" \
		"${tls[@]}" > "$T_LOG/rpc-ps.out" 2>&1
	read -r _ sp port < <(grep "^ps " "$T_LOG/rpc-ps.out")
	[[ -n $port ]] || { fail "PAGE_SERVER: $(cat "$T_LOG/rpc-ps.out")"; return; }
	T_PIDS+=("$sp")
	alive "$sp" || { fail "the page server $sp is not running"; return; }
	dump dump "$pid" "$T_WORK/local" --page-server --address 127.0.0.1 --port "$port" "${dargs[@]}" || return
	expect_killed "$pid" || return
	wait_gone "$sp" || fail "the page server did not end after the dump"
	if [[ -n ${tls[*]} ]]; then
		grep -q "TLS: session up" "$T_LOG/dump.log" || fail "the dump's connection was not TLS" "$T_LOG/dump.log"
		grep -q "TLS: session up" "$T_WORK/remote/ps.log" || fail "the server's connection was not TLS" "$T_WORK/remote/ps.log"
	fi
	merge_into "$T_WORK/local" "$T_WORK/remote"
	restore_dirtier restore "$T_WORK/local" "$pid"
}
run_test pageserver.rpc_request test_ps_rpc_request
run_test pageserver.rpc_request_tls test_ps_rpc_request tls

# --auto-dedup: the pages a dump saves are punched out of its parent's
# pages file (blocks freed, size kept); the restore through the new dump
# is whole, and the parent's checksums say what it now holds. Locally,
# and on a page server (--auto-dedup given to the server, as CRIU).
allocated_kib() { du -k "$@" | awk '{ s += $1 } END { print s + 0 }'; }
test_auto_dedup() {
	local where=$1 pid rc before after
	start_dirtier_ps || return
	pid=$PROG_PID
	if [[ $where == local ]]; then
		mkdir -p "$T_WORK/img/1"
		rc=$(stasis pre pre-dump -t "$pid" -D "$T_WORK/img/1")
		[[ $rc == 0 ]] || { fail "pre-dump exited $rc"; return; }
		before=$(allocated_kib "$T_WORK"/img/1/pages-*.img)
		sleep 0.5
		dump dump "$pid" "$T_WORK/img/2" --prev-images-dir ../1 --auto-dedup || return
		after=$(allocated_kib "$T_WORK"/img/1/pages-*.img)
		dir=$T_WORK/img/2
	else
		ps_start ps1 "$T_WORK/remote/1" || return
		mkdir -p "$T_WORK/local/1"
		rc=$(stasis pre pre-dump -t "$pid" -D "$T_WORK/local/1" --page-server --address 127.0.0.1 --port "$PS_PORT")
		[[ $rc == 0 ]] || { fail "pre-dump exited $rc"; return; }
		ps_wait ps1 || return
		before=$(allocated_kib "$T_WORK"/remote/1/pages-*.img)
		sleep 0.5
		ps_start ps2 "$T_WORK/remote/2" --prev-images-dir ../1 --auto-dedup || return
		dump dump "$pid" "$T_WORK/local/2" --prev-images-dir ../1 --page-server --address 127.0.0.1 \
			--port "$PS_PORT" || return
		ps_wait ps2 || return
		after=$(allocated_kib "$T_WORK"/remote/1/pages-*.img)
		merge_into "$T_WORK/remote/2" "$T_WORK/local/2"
		dir=$T_WORK/remote/2
	fi
	expect_killed "$pid" || return
	note "the parent's pages: $before KiB allocated before the dump, $after after"
	((after < before)) || fail "--auto-dedup freed nothing in the parent ($before KiB, then $after)"
	restore_dirtier restore "$dir" "$pid"
	grep -q "parent: .* images whole" "$T_LOG/restore.log" || fail "the parent's checksums were not checked" "$T_LOG/restore.log"
}
run_test pageserver.auto_dedup_local test_auto_dedup local
run_test pageserver.auto_dedup_server test_auto_dedup server

# ---- TLS ----

# A CA and a certificate for 127.0.0.1 signed by it (both ends use it:
# the server checks the client's name against its --address too, as
# CRIU), in DIR; and a second CA's, for a peer that must be refused.
make_certs() {
	local dir=$1 ca=${2:-ca}
	command -v openssl > /dev/null || { skip "no openssl to make test certificates"; return 1; }
	mkdir -p "$dir"
	(cd "$dir" &&
		openssl req -x509 -newkey rsa:2048 -nodes -keyout "$ca.key" -out "$ca.pem" -days 2 -subj "/CN=stasis test $ca" &&
		openssl req -newkey rsa:2048 -nodes -keyout "$ca-key.pem" -out "$ca.csr" -subj "/CN=127.0.0.1" &&
		printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n' > ext.cnf &&
		openssl x509 -req -in "$ca.csr" -CA "$ca.pem" -CAkey "$ca.key" -CAcreateserial -out "$ca-cert.pem" \
			-days 2 -extfile ext.cnf) >> "$T_LOG/openssl.log" 2>&1 || { fail "can't make certificates" "$T_LOG/openssl.log"; return 1; }
}
tls_args() { echo "--tls --tls-cacert $1/${2:-ca}.pem --tls-cert $1/${2:-ca}-cert.pem --tls-key $1/${2:-ca}-key.pem"; }

# Over TLS: stasis to stasis, stasis to CRIU's server and CRIU to ours
# (CRIU_BIN set); a client whose certificate another CA signed, and one
# without TLS, are refused, and the server goes on.
test_ps_tls() {
	local pid rc c=$T_WORK/certs
	make_certs "$c" ca && make_certs "$c" other || return
	start_dirtier_ps || return
	pid=$PROG_PID
	ps_start ps "$T_WORK/remote" $(tls_args "$c") --timeout 3 || return
	rc=$(stasis bad dump -t "$pid" -D "$T_WORK/bad" --page-server --address 127.0.0.1 --port "$PS_PORT" -R \
		$(tls_args "$c" other))
	[[ $rc != 0 ]] || { fail "a dump with another CA's certificate went through"; return; }
	runs_freely "$pid" || { fail "the program does not run after the refused dump"; return; }
	timeout -k 5 "$TMO" "$PYTHON" "$ROOT/tests/py/ps_client.py" 127.0.0.1 "$PS_PORT" bad_type >> "$T_LOG/attacks.out" 2>&1
	wait_until "$TMO" dropped_sessions 2 || { fail "the server did not drop the bad clients" "$T_LOG/ps.log"; return; }
	alive "$PS_PID" || { fail "the server died" "$T_LOG/ps.log"; return; }
	if [[ -n ${CRIU_BIN:-} && -x ${CRIU_BIN:-} ]]; then
		mkdir -p "$T_WORK/criu"
		timeout -k 5 "$TMO" "$CRIU_BIN" dump -t "$pid" -D "$T_WORK/criu" -R --page-server --address 127.0.0.1 \
			--port "$PS_PORT" $(tls_args "$c") -o "$T_LOG/criu-dump.log" -v4 > "$T_LOG/criu-dump.out" 2>&1 < /dev/null ||
			{ fail "CRIU's dump over TLS to stasis's server failed" "$T_LOG/criu-dump.log"; return; }
		ps_wait ps || return
		criu_ps_start cps "$T_WORK/remote2" $(tls_args "$c") || return
		dump dump "$pid" "$T_WORK/local" --page-server --address 127.0.0.1 --port "$PS_PORT" $(tls_args "$c") || return
		ps_wait cps || return
		merge_into "$T_WORK/local" "$T_WORK/remote2"
	else
		dump dump "$pid" "$T_WORK/local" --page-server --address 127.0.0.1 --port "$PS_PORT" $(tls_args "$c") || return
		ps_wait ps || return
		merge_into "$T_WORK/local" "$T_WORK/remote"
	fi
	expect_killed "$pid" || return
	grep -q "TLS: session up" "$T_LOG/dump.log" || fail "the dump's connection was not TLS" "$T_LOG/dump.log"
	restore_dirtier restore "$T_WORK/local" "$pid"
}
run_test pageserver.tls test_ps_tls

# GnuTLS is loaded only for --tls: without it stasis still starts, and
# --tls fails with one line naming the library, on the server (which
# drops the session and goes on) as on the dump (the tree runs on).
test_ps_tls_no_gnutls() {
	local pid rc c=$T_WORK/certs line='libgnutls.so.30, needed for the page server.s --tls'
	without_lib libgnutls.so.30 || return
	rc=$(STASIS=$NOLIB stasis version --version)
	[[ $rc == 0 ]] || { fail "stasis --version without GnuTLS exited $rc: $(error_message version)"; return; }
	make_certs "$c" ca || return
	start_dirtier_ps || return
	pid=$PROG_PID
	STASIS=$NOLIB ps_start ps "$T_WORK/remote" $(tls_args "$c") || return
	rc=$(stasis plain dump -t "$pid" -D "$T_WORK/plain" --page-server --address 127.0.0.1 --port "$PS_PORT" -R \
		$(tls_args "$c"))
	[[ $rc != 0 ]] || { fail "a TLS dump went through to a server without GnuTLS"; return; }
	wait_until "$TMO" dropped_sessions 1 || { fail "the server did not drop the session" "$T_LOG/ps.log"; return; }
	grep -q "Error: can't load $line" "$T_LOG/ps.log" || { fail "the server did not name GnuTLS" "$T_LOG/ps.log"; return; }
	alive "$PS_PID" || { fail "the server died"; return; }
	rc=$(STASIS=$NOLIB stasis nolib dump -t "$pid" -D "$T_WORK/nolib" --page-server --address 127.0.0.1 \
		--port "$PS_PORT" -R $(tls_args "$c"))
	[[ $rc != 0 ]] || { fail "a TLS dump without GnuTLS went through"; return; }
	[[ $(grep -c . "$T_LOG/nolib.stderr") == 1 ]] && grep -q "^Error: can't load $line" "$T_LOG/nolib.stderr" ||
		{ fail "not one line naming GnuTLS: $(cat "$T_LOG/nolib.stderr")"; return; }
	runs_freely "$pid" || fail "the program does not run after the refused dumps"
}
run_test pageserver.tls_no_gnutls test_ps_tls_no_gnutls

# The same over RPC (pycriu through swrk, a root client; security.sh has
# the unprivileged ones): MODE tls sends to address:port over TLS with the
# request's certificate files (relative names); fd over ps.fd, a socket the client
# connected itself and passes (CRIU's ps_socket: the dump ends with
# FORCE_CLOSE); fd_tls both (no name to check on a socket: the CA's word).
test_ps_rpc_tls() {
	local mode=$1 pid rc c=$T_WORK/certs args=()
	[[ $mode == fd ]] || { make_certs "$c" ca || return; }
	start_dirtier_ps || return
	pid=$PROG_PID
	if [[ $mode == fd ]]; then
		ps_start ps "$T_WORK/remote" || return
	else
		ps_start ps "$T_WORK/remote" $(tls_args "$c") || return
		# tls: names relative to the work directory (the images'), as CRIU's
		[[ $mode == tls ]] && args+=(--tls ../certs) || args+=(--tls "$c")
	fi
	[[ $mode == tls ]] && args+=(--ps "127.0.0.1:$PS_PORT") || args+=(--ps-fd "127.0.0.1:$PS_PORT")
	mkdir -p "$T_WORK/local"
	timeout -k 5 "$TMO" "$PYTHON" "$ROOT/tests/py/rpc_drive.py" --bin "$STASIS" dump "$pid" "$T_WORK/local" \
		"${args[@]}" > "$T_LOG/rpc-dump.out" 2>&1
	cp "$T_WORK/local/dump.log" "$T_LOG/rpc-dump.log" 2> /dev/null
	grep -q "^dumped" "$T_LOG/rpc-dump.out" || { fail "RPC dump: $(cat "$T_LOG/rpc-dump.out")" "$T_LOG/rpc-dump.log"; return; }
	ps_wait ps || return
	expect_killed "$pid" || return
	if [[ $mode == fd ]]; then
		! grep -q "TLS: session up" "$T_LOG/rpc-dump.log" || fail "TLS without tls" "$T_LOG/rpc-dump.log"
	else
		grep -q "TLS: session up" "$T_LOG/rpc-dump.log" || fail "the RPC dump's connection was not TLS" "$T_LOG/rpc-dump.log"
	fi
	compgen -G "$T_WORK/local/pages-*.img" > /dev/null && { fail "the RPC dump wrote pages locally"; return; }
	compgen -G "$T_WORK/remote/pagemap-$pid.img" > /dev/null || { fail "the server wrote no pagemap-$pid.img"; return; }
	merge_into "$T_WORK/local" "$T_WORK/remote"
	restore_dirtier restore "$T_WORK/local" "$pid"
}
run_test pageserver.rpc_tls test_ps_rpc_tls tls
run_test pageserver.rpc_ps_fd test_ps_rpc_tls fd
run_test pageserver.rpc_ps_fd_tls test_ps_rpc_tls fd_tls

# ps.fd to a swrk that may not take fds from its client (a user's client
# that is not dumpable: pidfd_getfd is refused, as Yama refuses it to a
# child): the number is then swrk's own fd, inherited, as with CRIU's
# swrk. (The images dir is named by path: its fd could not be taken
# either.) rpc_user_setup, user_pid: rpc.sh.
test_ps_rpc_ps_fd_inherited() {
	local rc upid
	rpc_user_setup || return
	mkdir -p "$T_WORK/remote" && as_user mkdir "$T_WORK/user/img"
	# the user runs stasis itself: a copy it can reach (the tree may be
	# under root's home, as in a fresh clone in /root)
	install -m 755 "$STASIS" "$T_WORK/stasis" || { fail "can't copy $STASIS for the user"; return; }
	ps_start ps "$T_WORK/remote" || return
	(cd "$T_WORK/user" && exec runuser -u "$RPC_USER" -- setsid sh -c ': psfd-marker; while :; do sleep 1; done' \
		< /dev/null > /dev/null 2>&1) &
	wait_until "$TMO" user_pid psfd-marker > /dev/null || { fail "the user's program did not start"; return; }
	upid=$(user_pid psfd-marker)
	T_PIDS+=("$upid")
	timeout -k 5 "$TMO" runuser -u "$RPC_USER" -- "$PYTHON" - "$T_WORK/stasis" "$upid" "$T_WORK/user/img" "$PS_PORT" \
		> "$T_LOG/swrk.out" 2>&1 < <(cat << 'PY'
import ctypes, os, socket, subprocess, sys
from pycriu import rpc_pb2 as rpc
def varint(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out
stasis, pid, imgdir, port = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)	# PR_SET_DUMPABLE 0: swrk may not pidfd_getfd from us
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
ps = socket.create_connection(("127.0.0.1", port))
p = subprocess.Popen([stasis, "swrk", str(b.fileno())], pass_fds=[b.fileno(), ps.fileno()])
b.close()
req = rpc.criu_req(type=rpc.DUMP)
req.opts.pid = pid
req.opts.images_dir_fd = -1
req.opts.log_level = 4
req.opts.log_file = "dump.log"
req.opts.ps.fd = ps.fileno()
path = imgdir.encode()	# images_dir (68) is newer than Debian's pycriu: a second opts
extra = varint(68 << 3 | 2) + varint(len(path)) + path
a.send(req.SerializeToString() + b"\x12" + varint(len(extra)) + extra)
r = rpc.criu_resp()
r.ParseFromString(a.recv(1 << 20))
print("success=%s msg=%s" % (r.success, r.cr_errmsg))
a.close()
p.wait()
PY
)
	grep -q "success=True" "$T_LOG/swrk.out" || { fail "swrk's dump over the inherited ps.fd: $(cat "$T_LOG/swrk.out")" "$T_WORK/user/img/dump.log"; return; }
	grep -q "over the client's ps.fd" "$T_WORK/user/img/dump.log" || fail "the dump did not use ps.fd" "$T_WORK/user/img/dump.log"
	ps_wait ps || return
	compgen -G "$T_WORK/remote/pagemap-$upid.img" > /dev/null || fail "the server wrote no pagemap-$upid.img"
	wait_gone "$upid" || fail "the dumped program runs on"
}
run_test pageserver.rpc_ps_fd_inherited test_ps_rpc_ps_fd_inherited

# ---- checksums ----

# One random byte of FILE flipped.
flip_random_byte() {
	"$PYTHON" - "$1" << 'EOF2'
import os, random, sys
path = sys.argv[1]
size = os.path.getsize(path)
off = random.randrange(size)
with open(path, "r+b") as f:
    f.seek(off)
    b = f.read(1)
    f.seek(off)
    f.write(bytes([b[0] ^ (1 << random.randrange(8))]))
print(off)
EOF2
}

# A damaged byte in WHAT (pages, core, mm) is refused by name: core and
# mm before anything is made; pages, checked beside the restore, before
# what was made runs (it is killed); --skip-checksums gets past the check.
test_checksum_damage() {
	local what=$1 pid f off rc
	start_dirtier_ps || return
	pid=$PROG_PID
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	[[ -s $T_WORK/img/stasis-checksums ]] || { fail "the dump wrote no stasis-checksums"; return; }
	case $what in
	pages) f=$(ls "$T_WORK"/img/pages-*.img | head -n1) ;;
	*) f=$T_WORK/img/$what-$pid.img ;;
	esac
	off=$(flip_random_byte "$f")
	note "flipped a bit of byte $off of $f"
	rc=$(stasis restore restore -D "$T_WORK/img" -d)
	[[ $rc != 0 && $rc != 124 && $rc != 137 ]] || { fail "restore of a damaged $(basename "$f") exited $(rc_text "$rc")"; return; }
	grep -q "image $(basename "$f") is damaged" "$T_LOG/restore.stderr" ||
		{ fail "the refusal does not name $(basename "$f"): $(error_message restore)" "$T_LOG/restore.log"; return; }
	! alive "$pid" || fail "a process with pid $pid exists after the refused restore"
	[[ $(grep -c . "$T_LOG/restore.stderr") == 1 ]] ||
		fail "not one line on stderr: $(cat "$T_LOG/restore.stderr")" "$T_LOG/restore.log"
	! grep -q "Restore finished" "$T_LOG/restore.log" || fail "the refused restore says it finished" "$T_LOG/restore.log"
	[[ $what == pages ]] || {
		(($(grep -c . "$T_LOG/restore.log") == 1)) || fail "the refused restore did more than refuse" "$T_LOG/restore.log"
		return 0
	}
	# damaged page data is restored when asked; the program then sees it
	rc=$(stasis restore2 restore -D "$T_WORK/img" -d --skip-checksums)
	[[ $rc == 0 ]] || fail "restore --skip-checksums exited $rc: $(error_message restore2)" "$T_LOG/restore2.log"
	kill -9 "$pid" 2>/dev/null
}
run_test checksums.pages test_checksum_damage pages
run_test checksums.core test_checksum_damage core
run_test checksums.mm test_checksum_damage mm

# xxhsum's hash (-H1 XXH64, -H3 XXH3) of a file (- its input)
xxhsum_of() { xxhsum "-H$1" "$2" | sed -n 's/^XXH3 (.*) = \([0-9a-f]\{16\}\)$/\1/p; s/^\([0-9a-f]\{16\}\)  .*/\1/p'; }

# The dump's two copy threads hash their halves of the pages as they
# write them (an xxh3parts line): the copy restores whole, and a byte
# damaged in the second half is refused, naming the file and the part.
test_checksum_parts() {
	local pid f size half line rc
	start_dirtier_ps || return
	pid=$PROG_PID
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	f=$(ls "$T_WORK"/img/pages-*.img | head -n1)
	line=$(grep "^xxh3parts [0-9]* $(basename "$f") " "$T_WORK/img/stasis-checksums") ||
		{ fail "no xxh3parts line for $(basename "$f")" "$T_WORK/img/stasis-checksums"; return; }
	note "$line"
	size=$(stat -c %s "$f")
	half=$(awk '{ split($5, p, ":"); print p[1] }' <<< "$line")
	[[ $line =~ ^xxh3parts\ $size\ [^\ ]+\ 0:[0-9a-f]{16}\ [0-9]+:[0-9a-f]{16}$ ]] && ((half > 0 && half < size)) ||
		{ fail "the pages' line is not two parts of a $size-byte file: $line"; return; }
	# xxhsum agrees with both parts; the copy kept whole gets the same
	# line in XXH64 (xxh64parts, as dumps wrote before XXH3)
	local h1 h2
	h1=$(head -c "$half" "$f" | xxhsum_of 3 -) h2=$(tail -c +$((half + 1)) "$f" | xxhsum_of 3 -)
	[[ $line == *" 0:$h1 $half:$h2" ]] || { fail "xxhsum -H3 gives the parts 0:$h1 $half:$h2: $line"; return; }
	cp -a "$T_WORK/img" "$T_WORK/whole"
	h1=$(head -c "$half" "$f" | xxhsum_of 1 -) h2=$(tail -c +$((half + 1)) "$f" | xxhsum_of 1 -)
	sed -i "s|^xxh3parts $size $(basename "$f") .*|xxh64parts $size $(basename "$f") 0:$h1 $half:$h2|" \
		"$T_WORK/whole/stasis-checksums"
	"$PYTHON" -c 'import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); b = f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 0x10]))' "$f" $((half + (size - half) / 2))
	rc=$(stasis restore restore -D "$T_WORK/img" -d)
	[[ $rc != 0 && $rc != 124 && $rc != 137 ]] || { fail "restore of a damaged second half exited $(rc_text "$rc")"; return; }
	grep -q "image $(basename "$f") is damaged: the checksum of its part at $half is " "$T_LOG/restore.stderr" ||
		{ fail "the refusal does not name the second part of $(basename "$f"): $(error_message restore)" "$T_LOG/restore.log"; return; }
	! alive "$pid" || { fail "a process with pid $pid exists after the refused restore"; return; }
	restore_dirtier restore2 "$T_WORK/whole" "$pid" || return
	grep -q "images whole (stasis-checksums)" "$T_LOG/restore2.log" || fail "the restore checked no checksums" "$T_LOG/restore2.log"
}
run_test checksums.parts test_checksum_parts

# A small program's pages go in one thread, hashed whole: every line is
# "xxh3 HASH SIZE NAME" whose hash xxhsum (xxHash's own tool) agrees
# with. The same list in XXH64 (xxh64 lines, as dumps wrote before XXH3)
# still checks: the images restore, a damaged pages file is refused.
test_checksum_single() {
	local pid f rc algo hash size name
	start_prog dirtier "$BIN/dirtier" 4
	wait_ready dirtier "$PROG_PID" || return
	DIRTIER_EXE=$(readlink "/proc/$PROG_PID/exe")
	pid=$PROG_PID
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	! grep -v "^xxh3 [0-9a-f]\{16\} [0-9]* [^ ]*$" "$T_WORK/img/stasis-checksums" ||
		{ fail "the list has other lines than xxh3 ones" "$T_WORK/img/stasis-checksums"; return; }
	f=$(ls "$T_WORK"/img/pages-*.img | head -n1)
	grep -q "^xxh3 [0-9a-f]* [0-9]* $(basename "$f")$" "$T_WORK/img/stasis-checksums" ||
		{ fail "no xxh3 line for $(basename "$f")" "$T_WORK/img/stasis-checksums"; return; }
	while read -r algo hash size name; do
		[[ $(xxhsum_of 3 "$T_WORK/img/$name") == "$hash" && $(stat -c %s "$T_WORK/img/$name") == "$size" ]] ||
			{ fail "$name: the list says $hash ($size bytes), xxhsum -H3 $(xxhsum_of 3 "$T_WORK/img/$name")"; return; }
		printf 'xxh64 %s %s %s\n' "$(xxhsum_of 1 "$T_WORK/img/$name")" "$size" "$name"
	done < "$T_WORK/img/stasis-checksums" > "$T_WORK/xxh64-list"
	mv "$T_WORK/xxh64-list" "$T_WORK/img/stasis-checksums"
	cp -a "$T_WORK/img" "$T_WORK/damaged"
	flip_random_byte "$T_WORK/damaged/$(basename "$f")" > /dev/null
	rc=$(stasis refused restore -D "$T_WORK/damaged" -d)
	[[ $rc != 0 && $rc != 124 && $rc != 137 ]] || { fail "restore of a damaged $(basename "$f") exited $(rc_text "$rc")"; return; }
	grep -q "image $(basename "$f") is damaged" "$T_LOG/refused.stderr" ||
		{ fail "the refusal does not name $(basename "$f"): $(error_message refused)" "$T_LOG/refused.log"; return; }
	restore_dirtier restore "$T_WORK/img" "$pid" || return
	grep -q "images whole (stasis-checksums)" "$T_LOG/restore.log" || fail "the restore checked no checksums" "$T_LOG/restore.log"
}
run_test checksums.single test_checksum_single

# A pre-dump's images are checked too, through the parent link; the
# server's (stasis-checksums-ps) on receipt.
test_checksum_parent() {
	local pid rc f
	start_dirtier_ps || return
	pid=$PROG_PID
	mkdir -p "$T_WORK/img/1"
	rc=$(stasis pre pre-dump -t "$pid" -D "$T_WORK/img/1")
	[[ $rc == 0 ]] || { fail "pre-dump exited $rc"; return; }
	sleep 0.2
	dump dump "$pid" "$T_WORK/img/2" --prev-images-dir ../1 || return
	expect_killed "$pid" || return
	f=$(ls "$T_WORK"/img/1/pages-*.img | head -n1)
	flip_random_byte "$f" > /dev/null
	rc=$(stasis restore restore -D "$T_WORK/img/2" -d)
	[[ $rc != 0 ]] || { fail "restore over a damaged parent succeeded"; return; }
	grep -q "parent: image $(basename "$f") is damaged" "$T_LOG/restore.stderr" ||
		fail "the refusal does not name the parent's $(basename "$f"): $(error_message restore)"
}
run_test checksums.parent test_checksum_parent
