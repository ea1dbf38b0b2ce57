# The RPC protocol: stasis driven by Debian's pycriu, unchanged (through
# `stasis swrk`, as pycriu's use_binary starts it, and through `stasis
# service`), by raw criu_req messages (notifications, malformed input),
# by several clients at once and by a client that is not root.

RPC_DRIVE=$ROOT/tests/py/rpc_drive.py
RPC_USER=stasis-rpc-test

# rpc_run TAG ARGS...: rpc_drive.py ARGS, output in T_LOG/TAG.out; echoes
# rc. rpc_user: the same, run as RPC_USER.
rpc_run() {
	local tag=$1
	shift
	note "rpc_drive $*"
	timeout -k 5 "$TMO" "${RPC_AS[@]}" "$PYTHON" "$RPC_DRIVE" "$@" > "$T_LOG/$tag.out" 2> "$T_LOG/$tag.err" < /dev/null
	echo $?
}
RPC_AS=()
RPC_PRE=()	# rpc_user: a command runuser runs the client under (prlimit ...):
		# after runuser, whose PAM session may set limits of its own

rpc_user() {
	# a copy the user can read (the checkout may be under root's 0700 home)
	local RPC_AS=(runuser -u "$RPC_USER" -- "${RPC_PRE[@]}") RPC_DRIVE=$T_WORK/rpc_drive.py
	install -m 644 "$ROOT/tests/py/rpc_drive.py" "$RPC_DRIVE"
	rpc_run "$@"
}

# Starts `stasis service` on T_WORK/stasis.sk (extra args: $@); SVC_SOCK.
service_start() {
	SVC_SOCK=$T_WORK/stasis.sk
	"$STASIS" service --address "$SVC_SOCK" -d --pidfile "$T_WORK/service.pid" \
		-o "$T_LOG/service.log" -v4 "$@" < /dev/null || {
		fail "stasis service did not start" "$T_LOG/service.log"
		return 1
	}
	SVC_PID=$(cat "$T_WORK/service.pid")
	T_PIDS+=("$SVC_PID")
	[[ -S $SVC_SOCK ]] || fail "stasis service made no socket at $SVC_SOCK"
}

# The transport arguments of rpc_drive.py for MODE (bin or sk).
rpc_target() {
	if [[ $1 == bin ]]; then
		echo "--bin $STASIS"
	else
		echo "--sk $SVC_SOCK"
	fi
}

start_counter() {
	start_prog counter sh -c 'i=0; while :; do i=$((i+1)); echo $i; sleep 0.02; done'
	wait_until "$TMO" has_lines "$T_LOG/counter.out" 5 || { fail "the counter printed nothing"; return 1; }
}

# pycriu check(), dump() of a counter and restore(): the counter goes on
# with the same pid, no gap, no repeat.
test_rpc_pycriu() {
	local mode=$1 pid rc n target out=$T_LOG/counter.out
	[[ $mode == sk ]] && { service_start || return; }
	target=$(rpc_target "$mode")
	rc=$(rpc_run check $target check)
	[[ $rc == 0 ]] || { fail "pycriu check() failed: $(cat "$T_LOG/check.out")" "$T_LOG/check.err"; return; }
	start_counter || return
	pid=$PROG_PID
	rc=$(rpc_run dump $target dump "$pid" "$T_WORK/img")
	[[ $rc == 0 ]] || { fail "pycriu dump() failed: $(cat "$T_LOG/dump.out")" "$T_WORK/img/dump.log"; return; }
	grep -q "restored=False" "$T_LOG/dump.out" || fail "dump reply: $(cat "$T_LOG/dump.out")"
	decode_images "$T_WORK/img" dump
	expect_killed "$pid" || return
	n=$(line_count "$out")
	rc=$(rpc_run restore $target restore "$T_WORK/img")
	[[ $rc == 0 ]] || { fail "pycriu restore() failed: $(cat "$T_LOG/restore.out")" "$T_WORK/img/restore.log"; return; }
	has_line "$T_LOG/restore.out" "restored $pid" || fail "restore reply: $(cat "$T_LOG/restore.out"), want pid $pid"
	wait_until "$TMO" has_lines "$out" $((n + 10)) || fail "the counter did not go on after the restore"
	kill_leftovers
	check_sequence "$out"
}

test_rpc_version() {
	local mode=$1 rc
	[[ $mode == sk ]] && { service_start || return; }
	rc=$(rpc_run version $(rpc_target "$mode") version)
	[[ $rc == 0 ]] && grep -q "^version stasis 4.2$" "$T_LOG/version.out" ||
		fail "VERSION: $(cat "$T_LOG/version.out")" "$T_LOG/version.err"
}

# Stages reach the client as notifications, in CRIU's order; a veto at
# pre-dump leaves the process running untouched, at post-dump resumes it.
test_rpc_notify() {
	local mode=$1 pid rc target
	[[ $mode == sk ]] && { service_start || return; }
	target=$(rpc_target "$mode")
	start_counter || return
	pid=$PROG_PID
	for veto in pre-dump post-dump; do
		rc=$(rpc_run "veto-$veto" $target notify "$pid" "$T_WORK/img" "$veto")
		[[ $rc == 0 ]] || { fail "notify client failed" "$T_LOG/veto-$veto.err"; return; }
		grep -q "^dump failed .*vetoed the $veto stage" "$T_LOG/veto-$veto.out" ||
			fail "veto at $veto: $(tr '\n' ' ' < "$T_LOG/veto-$veto.out")"
		runs_freely "$pid" || { fail "the counter does not run freely after a veto at $veto"; return; }
		[[ ! -e $T_WORK/img/inventory.img ]] || fail "a vetoed dump left an inventory.img"
	done
	rc=$(rpc_run notify $target notify "$pid" "$T_WORK/img")
	# no network-lock: the counter shares our network namespace (as CRIU)
	has_line "$T_LOG/notify.out" "stages pre-dump,post-dump" ||
		fail "stages told: $(head -1 "$T_LOG/notify.out"), want pre-dump,post-dump"
	grep -q "^dump ok" "$T_LOG/notify.out" || fail "dump with notifications: $(cat "$T_LOG/notify.out")"
	expect_killed "$pid"
}

# A client that goes away in the middle of its dump (at the post-dump
# notification, the tree frozen and its images written) leaves the tree
# running as it was, not frozen, and no dump behind.
test_rpc_hangup() {
	local mode=$1 pid rc n target
	[[ $mode == sk ]] && { service_start || return; }
	target=$(rpc_target "$mode")
	start_counter || return
	pid=$PROG_PID
	rc=$(rpc_run hangup $target notify "$pid" "$T_WORK/img" hangup:post-dump)
	has_line "$T_LOG/hangup.out" "hung up at post-dump" || { fail "client: $(cat "$T_LOG/hangup.out")" "$T_LOG/hangup.err"; return; }
	wait_until "$TMO" runs_freely "$pid" || { fail "the counter is not running freely after the client left"; return; }
	[[ ! -e $T_WORK/img/inventory.img ]] || fail "a dump whose client left has an inventory.img"
	n=$(line_count "$T_LOG/counter.out")
	wait_until "$TMO" has_lines "$T_LOG/counter.out" $((n + 5)) || fail "the counter does not count"
	[[ $mode == sk ]] && ! alive "$SVC_PID" && fail "the service died"
	kill_leftovers
	check_sequence "$T_LOG/counter.out"
}

# Malformed requests get an error reply (or a closed connection); the
# service goes on serving.
test_rpc_malformed() {
	local mode=$1 kind rc target
	[[ $mode == sk ]] && { service_start || return; }
	target=$(rpc_target "$mode")
	for kind in bytes truncated huge wrongtype; do
		rc=$(rpc_run "garbage-$kind" $target garbage "$kind")
		[[ $rc == 0 ]] || { fail "sending $kind garbage failed" "$T_LOG/garbage-$kind.err"; return; }
		grep -qE "^reply success=False|^closed" "$T_LOG/garbage-$kind.out" ||
			fail "$kind request: $(cat "$T_LOG/garbage-$kind.out")"
	done
	rc=$(rpc_run check $target check)
	[[ $rc == 0 ]] || fail "check after malformed requests failed: $(cat "$T_LOG/check.out")"
	[[ $mode == sk ]] && ! alive "$SVC_PID" && fail "the service died"
	return 0
}

# Four clients dump four counters at once through one service (leaving
# them running); every dump succeeds and decodes, every counter runs on.
test_rpc_concurrent() {
	local i pids=() cpids=() rc
	service_start || return
	for i in 1 2 3 4; do
		start_prog "counter$i" sh -c 'i=0; while :; do i=$((i+1)); echo $i; sleep 0.02; done'
		pids+=("$PROG_PID")
	done
	for i in 1 2 3 4; do
		wait_until "$TMO" has_lines "$T_LOG/counter$i.out" 3 || { fail "counter $i printed nothing"; return; }
	done
	for i in 1 2 3 4; do
		timeout -k 5 "$TMO" "$PYTHON" "$RPC_DRIVE" --sk "$SVC_SOCK" dump "${pids[i - 1]}" \
			"$T_WORK/img$i" --leave-running > "$T_LOG/dump$i.out" 2>&1 &
		cpids+=($!)
	done
	for i in 1 2 3 4; do
		wait "${cpids[i - 1]}"
		rc=$?
		[[ $rc == 0 ]] || fail "client $i failed (rc $rc): $(cat "$T_LOG/dump$i.out")" "$T_WORK/img$i/dump.log"
		decode_images "$T_WORK/img$i" "dump$i"
		runs_freely "${pids[i - 1]}" || fail "counter $i does not run after its dump"
	done
}

# A python program that checkpoints itself through pycriu (no pid in the
# request: the client itself), twice; each restored copy learns from the
# reply that it was restored (tests/py/selfdump.py) and counts on.
test_rpc_selfdump() {
	local mode=$1 pid exe r out=$T_LOG/selfdump.out
	[[ $mode == sk ]] && { service_start || return; }
	start_prog selfdump "$PYTHON" "$ROOT/tests/py/selfdump.py" $(rpc_target "$mode") "$T_WORK/img" 2
	pid=$PROG_PID
	exe=$(readlink -f "$PYTHON")	# once setsid has exec'd it
	wait_until "$TMO" exe_is "$pid" "$exe" || { fail "python did not start"; return; }
	for r in 1 2; do
		wait_until "$TMO" test -e "$T_WORK/img/$r/inventory.img" ||
			{ fail "self-dump $r made no images: $(grep -h FAIL "$out" "$T_LOG/selfdump.err")" "$T_WORK/img/$r/dump.log"; return; }
		expect_killed "$pid" || return
		decode_images "$T_WORK/img/$r" "dump$r"
		restore_detached "restore$r" "$T_WORK/img/$r" "$pid" "$exe" 0 || return
		wait_until "$TMO" has_line "$T_LOG/selfdump.err" "RESTORED $r" ||
			{ fail "the restored copy did not learn it was restored ($r): $(tail -2 "$T_LOG/selfdump.err")"; return; }
		touch "$T_WORK/img/go-$r"	# it may go on, and dump itself again
	done
	wait_gone "$pid" "$TMO" || fail "the program did not finish after its second restore"
	grep -q FAIL "$out" && fail "$(grep -m1 FAIL "$out")"
	check_sequence "$out"
}

# A restore whose pid is taken fails with cr_errno EEXIST, which pycriu
# shows as "Error(17)" (CRIU's errno for it), and creates nothing.
test_rpc_pid_busy() {
	local pid rc
	start_counter || return
	pid=$PROG_PID
	rc=$(rpc_run dump --bin "$STASIS" dump "$pid" "$T_WORK/img" --leave-running)
	[[ $rc == 0 ]] || { fail "dump failed: $(cat "$T_LOG/dump.out")"; return; }
	rc=$(rpc_run restore --bin "$STASIS" restore "$T_WORK/img")
	[[ $rc != 0 ]] || { fail "restore succeeded over a running pid $pid"; return; }
	grep -q "Error(17)" "$T_LOG/restore.out" || fail "restore over a busy pid: $(cat "$T_LOG/restore.out"), want errno 17"
	runs_freely "$pid" || fail "the original does not run freely"
}

# swrk's rst_sibling (what libcriu's criu_restore_child uses): the
# restored root is the client's child, the client reaps it. The service
# refuses it (the root can't be a child of a process that is not ours).
test_rpc_sibling() {
	local pid rc
	start_counter || return
	pid=$PROG_PID
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	rc=$(rpc_run sibling --bin "$STASIS" sibling "$T_WORK/img")
	[[ $rc == 0 ]] || { fail "restore with rst_sibling: $(cat "$T_LOG/sibling.out")" "$T_WORK/img/restore.log"; return; }
	has_line "$T_LOG/sibling.out" "restored $pid child" || fail "rst_sibling: $(head -1 "$T_LOG/sibling.out")"
	has_line "$T_LOG/sibling.out" "reaped $pid" || fail "the client could not reap its restored child"
	service_start || return
	rc=$(rpc_run sibling_sk --sk "$SVC_SOCK" sibling "$T_WORK/img")
	grep -q "rst_sibling works only with swrk" "$T_LOG/sibling_sk.out" || fail "service with rst_sibling: $(cat "$T_LOG/sibling_sk.out")"
}

# A client that is not root: may dump and restore its own process, may
# not dump root's, nor restore an image that claims root, nor write
# images where it can't write itself.
# The service's options for the tests of non-root clients (one place for
# what it needs to serve them).
SVC_USER_ARGS=(--socket-mode 0666 --allow-users "$RPC_USER")

# The user is made by the first test that needs it; one useradd at a
# time, for tests running together may both find it missing.
rpc_user_setup() {
	flock /tmp/stasis-tests.useradd.lock sh -c \
		'id "$1" > /dev/null 2>&1 || useradd -M -s /usr/sbin/nologin "$1"' sh "$RPC_USER" ||
		{ fail "can't create user $RPC_USER"; return 1; }
	chmod 755 "$T_WORK"
	mkdir -p "$T_WORK/user" && chown "$RPC_USER:" "$T_WORK/user"
}

# user_pid PATTERN: a process of RPC_USER whose command line matches
# PATTERN and that runs in this test's T_WORK/user: the user's programs
# of tests running beside this one may look the same.
user_pid() {
	local p
	for p in $(pgrep -u "$RPC_USER" -f "$1"); do
		[[ $(readlink "/proc/$p/cwd") == "$T_WORK/user" ]] && echo "$p" && return 0
	done
	return 1
}

test_rpc_unprivileged() {
	local upid rpid rc n uid
	rpc_user_setup || return
	service_start "${SVC_USER_ARGS[@]}" || return
	# its own process: dump and restore work, with its ids
	# (its output file is the user's own: a file only root could open would
	# rightly stop the restore it asks for)
	(cd "$T_WORK/user" && exec runuser -u "$RPC_USER" -- setsid sh -c \
		'i=0; exec > count.out; while :; do i=$((i+1)); echo $i; sleep 0.02; done' > /dev/null 2>&1 < /dev/null) &
	upid=$!
	disown "$upid"
	T_PIDS+=("$upid")
	wait_until "$TMO" has_lines "$T_WORK/user/count.out" 5 || { fail "the user's counter printed nothing"; return; }
	upid=$(user_pid 'sleep 0.02; done$')
	T_PIDS+=("$upid")
	rc=$(rpc_user udump --sk "$SVC_SOCK" dump "$upid" "$T_WORK/user/img")
	[[ $rc == 0 ]] || { fail "the user could not dump its own process: $(cat "$T_LOG/udump.out")" "$T_WORK/user/img/dump.log"; return; }
	wait_gone "$upid" "$TMO" || { fail "the user's process survived its dump"; return; }
	n=$(line_count "$T_WORK/user/count.out")
	rc=$(rpc_user urestore --sk "$SVC_SOCK" restore "$T_WORK/user/img")
	[[ $rc == 0 ]] || { fail "the user could not restore its own process: $(cat "$T_LOG/urestore.out")" "$T_WORK/user/img/restore.log"; return; }
	wait_until "$TMO" has_lines "$T_WORK/user/count.out" $((n + 5)) || fail "the user's counter did not go on"
	uid=$(status_field "$upid" Uid)
	[[ $uid == $(id -u "$RPC_USER") ]] || fail "the restored process has uid $uid"
	# a client whose own hard limits are lower may not restore higher ones
	rc=$(rpc_user udump2 --sk "$SVC_SOCK" dump "$upid" "$T_WORK/user/img3")
	[[ $rc == 0 ]] || { fail "the user could not dump its process again: $(cat "$T_LOG/udump2.out")"; return; }
	wait_gone "$upid" "$TMO" || { fail "the user's process survived its second dump"; return; }
	RPC_PRE=(prlimit --nofile=64:64 --)
	rc=$(rpc_user ulimited --sk "$SVC_SOCK" restore "$T_WORK/user/img3")
	RPC_PRE=()
	[[ $rc != 0 ]] || fail "a client with a hard limit of 64 fds restored a process with a higher one"
	grep -q "asks for a hard limit 7 of" "$T_WORK/user/img3/restore.log" ||
		fail "no refusal naming the limit" "$T_WORK/user/img3/restore.log"
	! alive "$upid" || fail "pid $upid exists after the refused restore"
	check_sequence "$T_WORK/user/count.out"

	# root's process: refused, and it keeps running
	start_counter || return
	rpid=$PROG_PID
	rc=$(rpc_user rootdump --sk "$SVC_SOCK" dump "$rpid" "$T_WORK/user/img2")
	[[ $rc != 0 ]] || fail "the user dumped a root process"
	grep -q "may not dump pid $rpid" "$T_WORK/user/img2/criu.log" "$T_LOG/service.log" 2>/dev/null ||
		grep -q "FAIL" "$T_LOG/rootdump.out" || fail "no refusal message for the root dump"
	runs_freely "$rpid" || fail "the root process does not run freely after the refused dump"

	# an image that claims root: refused, nothing created
	dump rdump "$rpid" "$T_WORK/rootimg" || return
	expect_killed "$rpid" || return
	cp -r "$T_WORK/rootimg" "$T_WORK/user/rootimg"
	chown -R "$RPC_USER:" "$T_WORK/user/rootimg"
	rc=$(rpc_user rootrestore --sk "$SVC_SOCK" restore "$T_WORK/user/rootimg")
	[[ $rc != 0 ]] || fail "the user restored an image of a root process"
	! alive "$rpid" || fail "pid $rpid exists after the refused restore"
	grep -q "asks for user/group ids 0/0" "$T_WORK/user/rootimg/restore.log" ||
		fail "no refusal naming the ids in restore.log" "$T_WORK/user/rootimg/restore.log"

	# images into a directory the user can't write: refused
	start_counter || return
	rc=$(rpc_user nowrite --sk "$SVC_SOCK" dump "$PROG_PID" "$T_WORK/rootimg")
	[[ $rc != 0 ]] || fail "the user had images written into a root directory"
}

# ---- a non-root client's restore never lends root (restore/unpriv.c) ----
#
# The user's programs run as RPC_USER in a session of their own, in
# T_WORK/user, with their output in files the user owns; the user dumps
# and restores them through the service. What the restore re-makes inside
# a process (sockets bound, connected, listening, paired; deleted files;
# memfds) carries the credentials the process had then, and must show the
# user's, never root's.

# user_prog LABEL CMD...: CMD as RPC_USER (a copy of each file of ours it
# needs must be in T_WORK/user: the checkout may be unreadable to it),
# output in T_WORK/user/LABEL.out; waits for READY. Sets UPID.
# (Its output is opened for appending, as a log: it grows after a restore,
# and a file opened otherwise whose size changed is refused by the next
# restore of the same images, as CRIU does.)
user_prog() {
	local label=$1 f=$T_WORK/user/$1
	shift
	(cd "$T_WORK/user" && exec runuser -u "$RPC_USER" -- setsid sh -c \
		'echo $$ > "$0.pid"; exec "$@" >> "$0.out" 2>> "$0.err" < /dev/null' "$f" "$@" > /dev/null 2>&1 < /dev/null) &
	disown $!
	wait_until "$TMO" test -s "$f.pid" || { fail "$label did not start"; return 1; }
	UPID=$(cat "$f.pid")
	T_PIDS+=("$UPID")
	T_SIDS+=("$UPID")
	wait_until "$TMO" ready_or_dead "$f.out" "$UPID" && has_line "$f.out" READY ||
		{ fail "$label never printed READY" "$f.err"; return 1; }
}

# The credentials of the threads of every process under pid $1, as
# /proc/TID/status has them (ids, groups, capabilities, no_new_privs),
# with each live process's limits and the owner of its /proc directory (root's
# if it is not dumpable): each line with how many threads or processes
# have it.
tree_creds() {
	local p t
	for p in $(tree_members "$1"); do
		for t in /proc/$p/task/*; do
			grep -E '^(Uid|Gid|Groups|Cap[A-Za-z]+|NoNewPrivs):' "$t/status"
		done
		# a zombie's image is its exit status: its limits are not kept
		[[ $(proc_state "$p") == Z ]] || cat "/proc/$p/limits"
		stat -c '/proc/PID owned by %u:%g' "/proc/$p"
	done | sort | uniq -c
}

# user_dump_restore LABEL: the user dumps UPID's tree into
# T_WORK/user/LABEL.img and restores it (EXTRA_DUMP: more rpc_drive dump
# options; ROOT_DUMP=1: root dumps it and gives the images to the user);
# the tree's credentials must be the same before and after.
user_dump_restore() {
	local label=$1 rc img=$T_WORK/user/$1.img
	tree_creds "$UPID" > "$T_LOG/$label.creds.before"
	mapfile -t U_PIDS < <(tree_members "$UPID")
	T_PIDS+=("${U_PIDS[@]}")
	if [[ ${ROOT_DUMP:-0} == 1 ]]; then
		dump "${label}_dump" "$UPID" "$img" || return
		chown -R "$RPC_USER:" "$img"
	else
		rc=$(rpc_user "${label}_dump" --sk "$SVC_SOCK" dump "$UPID" "$img" ${EXTRA_DUMP:-})
		[[ $rc == 0 ]] || { fail "the user could not dump its $label: $(cat "$T_LOG/${label}_dump.out")" "$img/dump.log"; return 1; }
	fi
	wait_until "$TMO" no_live_pids "${U_PIDS[@]}" || { fail "the user's $label survived its dump"; return 1; }
	wait_until 5 tree_gone "${U_PIDS[@]}" || { fail "pids of the user's $label still held after its dump"; return 1; }
	rc=$(rpc_user "${label}_restore" --sk "$SVC_SOCK" restore "$img")
	[[ $rc == 0 ]] || { fail "the user could not restore its $label: $(cat "$T_LOG/${label}_restore.out")" "$img/restore.log"; return 1; }
	UPID=$(awk '$1 == "restored" { print $2 }' "$T_LOG/${label}_restore.out")	# a new pid namespace: another pid here
	T_PIDS+=("$UPID")
	tree_creds "$UPID" > "$T_LOG/$label.creds.after"
	diff "$T_LOG/$label.creds.before" "$T_LOG/$label.creds.after" > "$T_LOG/$label.creds.diff" ||
		{ fail "the restored $label has other credentials than before its dump" "$T_LOG/$label.creds.diff"; return 1; }
}

# user_finish LABEL: SIGUSR1 to UPID, which must print PASS and end.
user_finish() {
	local label=$1 out=$T_WORK/user/$1.out
	kill -USR1 "$UPID"
	wait_until "$TMO" grep -q '^\(PASS\|FAIL\)' "$out" || { fail "$label printed no PASS after restore" "$T_WORK/user/$label.err"; return 1; }
	grep -q '^FAIL' "$out" && { fail "$label: $(grep '^FAIL' "$out" | head -n3 | tr '\n' ' ')" "$out"; return 1; }
	wait_gone "$UPID" || fail "$label did not end after PASS"
}

peer_uid_of() {
	"$PYTHON" -c 'import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
print(struct.unpack("3i", s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1])' "$1"
}

# What the restore does inside the user's process is done as the user:
# the connection it makes again to a listener outside the tree (which
# trusts SO_PEERCRED), the socket it re-binds and listens on, the
# socketpair it makes; and the restored process has the credentials it
# had (ids, groups, no capabilities, the same bounding set), every thread
# and the child too.
test_rpc_unpriv_creds() {
	local uid gid log=$T_WORK/peercred.log
	rpc_user_setup || return
	service_start "${SVC_USER_ARGS[@]}" || return
	uid=$(id -u "$RPC_USER") gid=$(id -g "$RPC_USER")
	"$PYTHON" "$ROOT/tests/py/peercred_listener.py" "$T_WORK/ext.sk" "$log" 2> "$T_LOG/listener.err" &
	T_PIDS+=($!)
	wait_until "$TMO" test -S "$T_WORK/ext.sk" || { fail "the listener did not start" "$T_LOG/listener.err"; return; }
	install -m 644 "$ROOT/tests/py/unpriv_prog.py" "$T_WORK/user/"
	user_prog uprog "$PYTHON" "$T_WORK/user/unpriv_prog.py" "$T_WORK/ext.sk" "$T_WORK/user/prog.sk" || return
	wait_until "$TMO" has_lines "$log" 1 || { fail "the user's program did not connect"; return; }
	EXTRA_DUMP=--ext-unix-sk user_dump_restore uprog || return
	wait_until "$TMO" has_lines "$log" 2 || { fail "the restore did not connect to the listener again" "$log"; return; }
	[[ $(sed -n 2p "$log") == "uid $uid gid $gid" ]] ||
		fail "the listener saw the restore connect as $(sed -n 2p "$log"), not as uid $uid gid $gid"
	[[ $(peer_uid_of "$T_WORK/user/prog.sk") == "$uid" ]] ||
		fail "the restored listening socket has the credentials of uid $(peer_uid_of "$T_WORK/user/prog.sk"), not $uid"
	[[ $(stat -c %u:%g "$T_WORK/user/prog.sk") == "$uid:$gid" ]] ||
		fail "the re-bound socket file is owned by $(stat -c %u:%g "$T_WORK/user/prog.sk")"
	user_finish uprog || return
	wait_until "$TMO" has_lines "$log" 3 || { fail "the restored program could not connect again" "$log"; return; }
	[[ $(grep -vcx "uid $uid gid $gid" "$log") == 0 ]] || fail "the listener saw other credentials: $(tr '\n' ' ' < "$log")"
}

# A deleted-but-open file and memfds (one held only by mappings shared
# with a child) come back for a user, made by the user: contents, size,
# offset and mode checked by the programs, the owner here.
test_rpc_unpriv_files() {
	local uid prog fd
	rpc_user_setup || return
	service_start "${SVC_USER_ARGS[@]}" || return
	uid=$(id -u "$RPC_USER")
	for prog in ghost memfd memfd_map; do
		install -m 644 "$ROOT/tests/progs/$prog.py" "$T_WORK/user/"
	done
	user_prog ghost "$PYTHON" "$T_WORK/user/ghost.py" "$T_WORK/user/ghost.dat" 100000 || return
	user_dump_restore ghost || return
	fd=$(find "/proc/$UPID/fd" -lname '*ghost.dat (deleted)' | head -1)
	[[ -n $fd && $(stat -L -c %u "$fd") == "$uid" ]] ||
		fail "the recreated deleted file ${fd:-(none)} is owned by uid $(stat -L -c %u "$fd" 2>/dev/null)"
	user_finish ghost || return
	[[ -z $(ls "$T_WORK/user" | grep ghost.dat) ]] || fail "a recreated ghost file was left in $T_WORK/user"
	user_prog memfd "$PYTHON" "$T_WORK/user/memfd.py" || return
	user_dump_restore memfd || return
	fd=$(find "/proc/$UPID/fd" -lname '/memfd:*' | head -1)
	[[ -n $fd && $(stat -L -c %u "$fd") == "$uid" ]] ||
		fail "the memfd ${fd:-(none)} is owned by uid $(stat -L -c %u "$fd" 2>/dev/null)"
	user_finish memfd || return
	user_prog memfdmap "$PYTHON" "$T_WORK/user/memfd_map.py" || return
	user_dump_restore memfdmap || return
	user_finish memfdmap
}

# Trees: threads cloned with their tids, zombies, a group whose leader is
# gone (a helper holds it), sessions, one whose leader is gone (its helper
# forks the daemons in it): every process and thread ends with the user's
# credentials, and the programs find their state whole.
test_rpc_unpriv_tree() {
	local prog
	rpc_user_setup || return
	service_start "${SVC_USER_ARGS[@]}" || return
	for prog in threads zombies sessions daemons forktree; do
		install -m 755 "$BIN/$prog" "$T_WORK/user/"
		user_prog "$prog" "$T_WORK/user/$prog" || return
		# the service does not dump zombies for a user (it can't ptrace
		# them): root does, the user restores
		ROOT_DUMP=$([[ $prog == zombies ]] && echo 1) user_dump_restore "$prog" || return
		user_finish "$prog" || return
	done
	# a tree that is a pid namespace of its own (root starts it, as the
	# user, and dumps it): the restore makes a new namespace, where the
	# user's processes create each other with their pids
	install -m 644 /dev/null "$T_WORK/user/pidns.out"
	chown "$RPC_USER:" "$T_WORK/user/pidns.out"
	(cd "$T_WORK/user" && exec setsid "$BIN/pidns_run" setpriv --reuid "$RPC_USER" --regid "$RPC_USER" \
		--clear-groups "$T_WORK/user/forktree" >> pidns.out 2>&1 < /dev/null) &
	T_PIDS+=($!)
	wait_until "$TMO" has_line "$T_WORK/user/pidns.out" READY || { fail "the user's pid namespace did not start"; return; }
	UPID=$(child_of $!) || { fail "pidns_run has no child"; return; }
	[[ $(ns_pid "$UPID") == 1 ]] || { fail "harness: $UPID is not pid 1 in its namespace"; return; }
	ROOT_DUMP=1 user_dump_restore pidns || return
	[[ $(ns_pid "$UPID") == 1 ]] || fail "the restored root $UPID is not pid 1 in a namespace of its own"
	user_finish pidns
}

# user_nnp_case LABEL WRAP...: the user's sleeper, started under WRAP
# (setpriv --no-new-privs, or nothing), dumped by the user and restored by
# the user under RPC_PRE; sets NNP to the restored process's NoNewPrivs.
user_nnp_case() {
	local label=$1 rc img=$T_WORK/user/$1.img
	shift
	user_prog "$label" "$@" sh -c 'echo READY; while :; do sleep 0.05; done' || return
	rc=$(rpc_user "${label}_dump" --sk "$SVC_SOCK" dump "$UPID" "$img")
	[[ $rc == 0 ]] || { fail "the user could not dump its $label: $(cat "$T_LOG/${label}_dump.out")"; return 1; }
	wait_gone "$UPID" || { fail "the user's $label survived its dump"; return 1; }
	rc=$(rpc_user "${label}_restore" --sk "$SVC_SOCK" restore "$img")
	[[ $rc == 0 ]] || { fail "the user could not restore its $label: $(cat "$T_LOG/${label}_restore.out")" "$img/restore.log"; return 1; }
	NNP=$(status_field "$UPID" NoNewPrivs)
}

# A client that can't gain privileges through execve (no_new_privs: a
# sandbox, say) can't have processes restored that could; and a process
# that had no_new_privs has it again.
test_rpc_unpriv_nnp() {
	rpc_user_setup || return
	service_start "${SVC_USER_ARGS[@]}" || return
	RPC_PRE=(setpriv --no-new-privs --)
	user_nnp_case plain
	RPC_PRE=()
	[[ -n $T_FAIL || $NNP == 1 ]] || fail "a client with no_new_privs restored a process without it (NoNewPrivs: ${NNP:-?})"
	user_nnp_case sandboxed setpriv --no-new-privs -- || return
	[[ $NNP == 1 ]] || fail "a process with no_new_privs was restored without it (NoNewPrivs: ${NNP:-?})"
}

for mode in bin sk; do
	run_test "rpc.pycriu_$mode" test_rpc_pycriu "$mode"
	run_test "rpc.version_$mode" test_rpc_version "$mode"
	run_test "rpc.notify_$mode" test_rpc_notify "$mode"
	run_test "rpc.malformed_$mode" test_rpc_malformed "$mode"
	run_test "rpc.hangup_$mode" test_rpc_hangup "$mode"
	run_test "rpc.selfdump_$mode" test_rpc_selfdump "$mode"
done
# set_core_field IMG FIELD VALUE: the main thread's tc.FIELD in core-PID.img
# of a dump of UPID made VALUE, as a client could write it.
set_core_field() {
	local core=$1/core-$UPID.img
	"$STASIS" crit decode -i "$core" | "$PYTHON" -c 'import json, sys
img = json.load(sys.stdin)
img["entries"][0]["tc"][sys.argv[1]] = int(sys.argv[2])
json.dump(img, sys.stdout)' "$2" "$3" | "$STASIS" crit encode -o "$core.new" && mv "$core.new" "$core" &&
		forget_checksums "$1"
}

# What a process sets on itself (oom_score_adj, loginuid, nice, policy)
# comes back for a user, set by the process itself; what the images ask
# beyond the client's own does not: an oom_score_adj below the client's
# becomes the client's, a loginuid other than the client's fails the
# restore. The client sets its own loginuid (1500, as the program does:
# an unset one anyone may set).
test_rpc_unpriv_attrs() {
	local rc img=$T_WORK/user/attrs.img
	rpc_user_setup || return
	service_start "${SVC_USER_ARGS[@]}" || return
	install -m 755 "$BIN/task_attrs" "$T_WORK/user/"
	RPC_PRE=(sh -c 'echo 1500 > /proc/self/loginuid && exec "$@"' client)
	user_prog attrs "$T_WORK/user/task_attrs" user || return
	user_dump_restore attrs || return
	user_finish attrs || return
	user_prog attrs2 "$T_WORK/user/task_attrs" user || return
	rc=$(rpc_user attrs2_dump --sk "$SVC_SOCK" dump "$UPID" "$img")
	[[ $rc == 0 ]] || { fail "the user could not dump: $(cat "$T_LOG/attrs2_dump.out")"; return; }
	wait_gone "$UPID" || { fail "the user's program survived its dump"; return; }
	set_core_field "$img" loginuid 1600 && set_core_field "$img" oom_score_adj -500 ||
		{ fail "harness: can't edit core-$UPID.img"; return; }
	rc=$(rpc_user attrs2_restore --sk "$SVC_SOCK" restore "$img")
	[[ $rc != 0 ]] || { fail "a user restored a process with loginuid 1600, not its own 1500"; return; }
	grep -q "asks for loginuid 1600" "$img/restore.log" ||
		fail "the refused restore does not say why" "$img/restore.log"
	set_core_field "$img" loginuid 1500 || { fail "harness: can't edit core-$UPID.img"; return; }
	rc=$(rpc_user attrs2_restore2 --sk "$SVC_SOCK" restore "$img")
	[[ $rc == 0 ]] || { fail "the user could not restore: $(cat "$T_LOG/attrs2_restore2.out")" "$img/restore.log"; return; }
	T_PIDS+=("$UPID")
	[[ $(cat "/proc/$UPID/oom_score_adj") == 0 ]] ||
		fail "the restored oom_score_adj is $(cat "/proc/$UPID/oom_score_adj"), not the client's 0 (the image asked -500)"
	grep -q "oom_score_adj -500 is below" "$img/restore.log" || fail "the restore did not warn of the oom_score_adj it changed" "$img/restore.log"
	[[ $(cat "/proc/$UPID/loginuid") == 1500 ]] || fail "the restored loginuid is $(cat "/proc/$UPID/loginuid"), not 1500"
	RPC_PRE=()
}

# tcp_owner PORT: the uid owning the TCP listener on PORT (/proc/net/tcp).
tcp_owner() {
	awk -v p="$(printf ':%04X' "$1")" '$4 == "0A" && substr($2, length($2) - 4) == p { print $8 }' /proc/net/tcp
}

# A user's TCP and UDP servers come back made by the user (the socket is
# the process's, with its uid) and serve new clients. Then the user's
# images say the listener was on port 80: the restore, which binds as the
# user, fails on the privileged port and binds nothing there.
test_rpc_unpriv_inet() {
	local uid tport uport img=$T_WORK/user/uecho.img rc
	rpc_user_setup || return
	service_start "${SVC_USER_ARGS[@]}" || return
	uid=$(id -u "$RPC_USER")
	install -m 644 "$ROOT/tests/py/inet_echo.py" "$T_WORK/user/"
	user_prog uecho "$PYTHON" -u "$T_WORK/user/inet_echo.py" 4 || return
	read -r tport uport < <(awk '$1 == "PORTS" { print $2, $3 }' "$T_WORK/user/uecho.out")
	user_dump_restore uecho || return
	[[ $(tcp_owner "$tport") == "$uid" ]] || fail "the restored listener is owned by uid $(tcp_owner "$tport"), not $uid"
	timeout -k 5 "$TMO" "$PYTHON" "$ROOT/tests/py/inet_client.py" 127.0.0.1 "$tport" "$uport" > "$T_LOG/client.out" 2>&1 ||
		fail "the restored servers do not answer" "$T_LOG/client.out"
	user_finish uecho || return
	(($(cat /proc/sys/net/ipv4/ip_unprivileged_port_start) > 80)) || return 0
	[[ -z $(tcp_owner 80) ]] || return 0	# port 80 is in use here: nothing to learn
	"$STASIS" crit decode -i "$img/files.img" | sed "s/\"src_port\": *$tport,/\"src_port\": 80,/" |
		"$STASIS" crit encode -o "$img/files.img.new" && mv "$img/files.img.new" "$img/files.img" && forget_checksums "$img" &&
		chown "$RPC_USER:" "$img/files.img" || { fail "can't edit the user's files.img"; return; }
	rc=$(rpc_user uecho_port80 --sk "$SVC_SOCK" restore "$img")
	[[ $rc != 0 ]] || { fail "the user's images restored a listener on port 80"; return; }
	grep -q "can't bind TCP socket .*127.0.0.1:80.*CAP_NET_BIND_SERVICE" "$img/restore.log" ||
		fail "the failed restore does not say why" "$img/restore.log"
	[[ -z $(tcp_owner 80) ]] || fail "something listens on port 80 after the refused restore"
}

# cg_user_counter: the user's counter, started in cgroup x of every
# hierarchy of the test (cases/cgroup.sh's layout), as UPID.
cg_user_counter() {
	local h
	rm -f "$T_WORK/user/count.out"
	(cd "$T_WORK/user" && exec runuser -u "$RPC_USER" -- setsid sh -c \
		'i=0; exec > count.out; while :; do i=$((i+1)); echo $i; sleep 0.02; done' > /dev/null 2>&1 < /dev/null) &
	disown $!
	wait_until "$TMO" has_lines "$T_WORK/user/count.out" 5 || { fail "the user's counter printed nothing"; return 1; }
	UPID=$(user_pid 'sleep 0.02; done$')
	T_PIDS+=("$UPID")
	for h in "${CG_DIRS[@]}"; do echo "$UPID" > "$h/$CG_T/x/cgroup.procs"; done
}

# A client may make and join only the cgroups it could itself: its
# process, put by root into a cgroup of root's, dumped by the client.
# With the cgroup there, --manage-cgroups=full may not write its limits
# (nor move the process into it); with the cgroup removed, the client's
# restore may not make it again (the broker's mkdir, as the client, is
# refused). Either way the restore fails and leaves nothing. On v1, a
# cgroup delegated to the user (all its own) is made and joined for it.
test_rpc_unpriv_cgroup() {
	local rc h img=$T_WORK/user/img prop
	cg_layout || return
	rpc_user_setup || return
	service_start "${SVC_USER_ARGS[@]}" || return
	cg_remove || return
	for h in "${CG_DIRS[@]}"; do mkdir -p "$h/$CG_T/x" || { fail "can't make $h/$CG_T/x"; return; }; done
	cg_user_counter || return
	prop=${CG_PROPS[0]%%=*}
	echo 50 > "${CG_DIRS[0]}/$CG_T/x/$prop" 2> /dev/null || prop=
	rc=$(rpc_user cgdump --sk "$SVC_SOCK" dump "$UPID" "$img" --manage-cgroups soft)
	[[ $rc == 0 ]] || { fail "the user could not dump its process: $(cat "$T_LOG/cgdump.out")" "$img/dump.log"; return; }
	wait_gone "$UPID" "$TMO" || { fail "the user's process survived its dump"; return; }
	[[ -z $prop ]] || echo 60 > "${CG_DIRS[0]}/$CG_T/x/$prop"
	rc=$(rpc_user cgfull --sk "$SVC_SOCK" restore "$img" --manage-cgroups full)
	[[ $rc != 0 ]] || fail "the user restored into root's cgroup $CG_T/x with --manage-cgroups=full"
	! alive "$UPID" || { fail "pid $UPID runs after the refused restore"; return; }
	[[ -z $prop || $(cat "${CG_DIRS[0]}/$CG_T/x/$prop") == 60 ]] ||
		fail "$prop of root's cgroup $CG_T/x was written for the user: $(cat "${CG_DIRS[0]}/$CG_T/x/$prop")"
	for h in "${CG_DIRS[@]}"; do rmdir "$h/$CG_T/x"; done
	rc=$(rpc_user cgmake --sk "$SVC_SOCK" restore "$img")
	[[ $rc != 0 ]] || fail "the user restored into a cgroup of root's it made"
	grep -q "can't make cgroup /$CG_T/x: Permission denied" "$img/restore.log" ||
		fail "no refusal naming the cgroup" "$img/restore.log"
	for h in "${CG_DIRS[@]}"; do
		[[ ! -d $h/$CG_T/x ]] || fail "the user's restore made $h/$CG_T/x"
	done
	! alive "$UPID" || fail "pid $UPID runs after the refused restore"
	# v2 would also want the cgroup.procs of the common ancestor
	if ((!CG_V2)); then
		for h in "${CG_DIRS[@]}"; do mkdir "$h/$CG_T/x" && chown -R "$RPC_USER:" "$h/$CG_T"; done
		cg_user_counter || return
		img=$T_WORK/user/img2
		rc=$(rpc_user cgdump2 --sk "$SVC_SOCK" dump "$UPID" "$img")
		[[ $rc == 0 ]] || { fail "the user could not dump its process: $(cat "$T_LOG/cgdump2.out")" "$img/dump.log"; return; }
		wait_gone "$UPID" "$TMO" || { fail "the user's process survived its dump"; return; }
		for h in "${CG_DIRS[@]}"; do rmdir "$h/$CG_T/x"; done
		rc=$(rpc_user cgown --sk "$SVC_SOCK" restore "$img")
		[[ $rc == 0 ]] || { fail "the user could not restore into its own cgroup: $(cat "$T_LOG/cgown.out")" "$img/restore.log"; return; }
		for h in "${CG_DIRS[@]}"; do
			[[ $(stat -c %U "$h/$CG_T/x" 2> /dev/null) == "$RPC_USER" ]] || fail "$h/$CG_T/x is not the user's"
			grep -qx "$UPID" "$h/$CG_T/x/cgroup.procs" || fail "pid $UPID is not in $h/$CG_T/x"
		done
		kill -9 "$UPID"
		wait_gone "$UPID" "$TMO"
	fi
	cg_remove
}

run_test rpc.concurrent test_rpc_concurrent
run_test rpc.rst_sibling test_rpc_sibling
run_test rpc.pid_busy test_rpc_pid_busy
run_test rpc.unprivileged test_rpc_unprivileged
run_test rpc.unpriv_creds test_rpc_unpriv_creds
run_test rpc.unpriv_files test_rpc_unpriv_files
run_test rpc.unpriv_tree test_rpc_unpriv_tree
run_test rpc.unpriv_nnp test_rpc_unpriv_nnp
run_test rpc.unpriv_attrs test_rpc_unpriv_attrs
run_test rpc.unpriv_inet test_rpc_unpriv_inet
run_test rpc.unpriv_cgroup test_rpc_unpriv_cgroup
