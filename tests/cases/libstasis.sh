# libstasis: a libcriu program (tests/progs/lib_client.c, linked with
# build/lib/libstasis.so) checks, dumps and restores a counter through
# the library, with stasis as `swrk` (started by the library) or as a
# service daemon; notify callbacks see the stages and can veto them.

# lib_client TAG ARGS...: runs the client in the foreground, its lines in
# T_LOG/TAG.out; echoes its exit status.
lib_client() {
	local tag=$1
	shift
	note "lib_client $*"
	timeout -k 5 "$TMO" "$BIN/lib_client" "$@" > "$T_LOG/$tag.out" 2> "$T_LOG/$tag.err" < /dev/null
	local rc=$?
	note "lib_client $tag exited $rc"
	echo "$rc"
}

# lib_result TAG CMD: RESULT from the client's line "CMD RESULT errno=E".
lib_result() { awk -v c="$2" '$1 == c { print $2; exit }' "$T_LOG/$1.out" 2>/dev/null; }

# lib_expect TAG CMD OP VALUE [LOG]: the result of CMD compares so.
lib_expect() {
	local tag=$1 cmd=$2 op=$3 want=$4 log=${5:-$T_LOG/$1.err} got
	got=$(lib_result "$tag" "$cmd")
	[[ $got =~ ^-?[0-9]+$ ]] || {
		fail "$tag: the client printed no result for $cmd" "$log"
		return 1
	}
	(($got $op $want)) || {
		fail "$tag: $cmd returned $got, expected $op $want ($(grep "^$cmd " "$T_LOG/$tag.out"))" "$log"
		return 1
	}
}

# A single-process python counter, one line every 50 ms (PROG_PID).
# lib_counter_start [WRAPPER...]: the counter, run through WRAPPER if given.
lib_counter_start() {
	start_prog counter "$@" "$PYTHON" -u -c '
import time
i = 0
while True:
    i += 1
    print(i, flush=True)
    time.sleep(0.05)'
	wait_until "$TMO" has_lines "$T_LOG/counter.out" 5 ||
		fail "the counter produced no output" "$T_LOG/counter.err"
}

# lib_counter_goes_on PID LINES: the counter runs freely and counts past
# LINES with no gap or repeat; then it is killed.
lib_counter_goes_on() {
	local pid=$1 n=$2 out=$T_LOG/counter.out
	wait_until "$TMO" runs_freely "$pid" ||
		fail "pid $pid does not run freely: state $(proc_state "$pid"), TracerPid $(status_field "$pid" TracerPid)" ||
		return
	wait_until "$TMO" has_lines "$out" $((n + 10)) ||
		fail "the counter did not go on ($(line_count "$out") lines, $n before)" "$out"
	kill_leftovers
	check_sequence "$out"
}

# lib_dump_restore TAG MODE...: check, version, dump through the library;
# then restore through it; MODE is -b BINARY or -a SOCKET.
lib_dump_restore() {
	local img=$T_WORK/img pid n rc
	lib_counter_start || return
	pid=$PROG_PID
	mkdir -p "$img"
	rc=$(lib_client dump "$@" -D "$img" -W "$T_LOG" -t "$pid" check version dump)
	[[ $rc == 0 ]] || fail "lib_client exited $(rc_text "$rc")" "$T_LOG/dump.err"
	lib_expect dump check == 0 || return
	lib_expect dump version '>' 0 || return
	lib_expect dump dump == 0 "$T_LOG/dump.log" || return
	decode_images "$img" dump
	expect_killed "$pid" || return
	n=$(line_count "$T_LOG/counter.out")
	rc=$(lib_client restore "$@" -D "$img" -W "$T_LOG" restore)
	lib_expect restore restore == "$pid" "$T_LOG/restore.log" || return
	lib_counter_goes_on "$pid" "$n"
}

test_lib_swrk() {
	lib_dump_restore -b "$STASIS"
}

# The library against CRIU itself (CRIU_BIN): it speaks the protocol as
# libcriu does, not just as stasis expects.
test_lib_criu_swrk() {
	lib_dump_restore -b "$CRIU_BIN"
}

# `stasis service -d` in the background for this test (LIB_SOCK).
lib_service_start() {
	local rc
	LIB_SOCK=$T_WORK/stasis.sock
	rc=$(stasis service service --address "$LIB_SOCK" -d --pidfile "$T_WORK/service.pid")
	[[ $rc == 0 && -S $LIB_SOCK ]] || {
		fail "stasis service -d exited $(rc_text "$rc"): $(error_message service)" "$T_LOG/service.log"
		return 1
	}
	LIB_SERVICE_PID=$(pidfile_pid "$T_WORK/service.pid")
	T_PIDS+=("$LIB_SERVICE_PID")
}

lib_service_stop() {
	kill -TERM "$LIB_SERVICE_PID" 2>/dev/null
	wait_gone "$LIB_SERVICE_PID" 5 || fail "the service (pid $LIB_SERVICE_PID) did not stop on SIGTERM"
}

test_lib_service() {
	lib_service_start || return
	lib_dump_restore -a "$LIB_SOCK"
	lib_service_stop
}

# The stages a client was told, in order, as "stage:pid" words.
lib_stages() { awk '$1 == "notify" { printf "%s:%s ", $2, $3 }' "$T_LOG/$1.out"; }

# lib_stage_order TAG FIRST:PID SECOND:PID: both were told, in order, each
# with its pid (CRIU sends one only at setup-namespaces and post-restore,
# the restored root's; 0 elsewhere).
lib_stage_order() {
	local tag=$1 seen
	seen=$(lib_stages "$tag")
	[[ " $seen" == *" $2 "*"$3 "* ]] ||
		fail "$tag: the callback was not told $2 then $3; it saw: ${seen:-nothing}" "$T_LOG/$tag.out"
}

# The callback hears the dump's and the restore's stages.
test_lib_notify() {
	local img=$T_WORK/img pid n
	lib_counter_start || return
	pid=$PROG_PID
	mkdir -p "$img"
	lib_client dump -n -b "$STASIS" -D "$img" -W "$T_LOG" -t "$pid" dump > /dev/null
	lib_expect dump dump == 0 "$T_LOG/dump.log" || return
	lib_stage_order dump pre-dump:0 post-dump:0
	expect_killed "$pid" || return
	n=$(line_count "$T_LOG/counter.out")
	lib_client restore -n -b "$STASIS" -D "$img" -W "$T_LOG" restore > /dev/null
	lib_expect restore restore == "$pid" "$T_LOG/restore.log" || return
	[[ " $(lib_stages restore)" == *" pre-restore:0 "* ]] || # no pid yet
		fail "restore: the callback was not told pre-restore: $(lib_stages restore)" "$T_LOG/restore.out"
	lib_stage_order restore "post-restore:$pid" post-resume:0
	lib_counter_goes_on "$pid" "$n"
}

# A callback that vetoes pre-dump, then one that vetoes post-dump (the
# tree has been dumped by then): both dumps fail, leave no usable image,
# and the counter goes on as if nothing had happened.
test_lib_veto() {
	local img pid stage n
	# in a network namespace of its own: a dump locks only that (as CRIU)
	lib_counter_start unshare -n || return
	pid=$PROG_PID
	for stage in pre-dump post-dump; do
		img=$T_WORK/img-$stage
		mkdir -p "$img"
		n=$(line_count "$T_LOG/counter.out")
		lib_client "veto-$stage" -V "$stage" -b "$STASIS" -D "$img" -W "$T_LOG" -t "$pid" dump > /dev/null
		grep -qx "veto $stage" "$T_LOG/veto-$stage.out" ||
			fail "veto-$stage: the callback was never asked about $stage" "$T_LOG/veto-$stage.out" || return
		lib_expect "veto-$stage" dump == -1 "$T_LOG/dump.log" || return
		[[ ! -e $img/inventory.img ]] || fail "veto-$stage: the vetoed dump left an inventory.img"
		# the network locked before post-dump is unlocked, and the callback hears it
		[[ $stage == pre-dump ]] || lib_stage_order "veto-$stage" post-dump:0 network-unlock:0
		alive "$pid" || fail "veto-$stage: the counter was killed by a vetoed dump" || return
		wait_until 5 runs_freely "$pid" ||
			fail "veto-$stage: pid $pid does not run freely after the veto: state $(proc_state "$pid"), TracerPid $(status_field "$pid" TracerPid)" ||
			return
		wait_until "$TMO" has_lines "$T_LOG/counter.out" $((n + 10)) ||
			fail "veto-$stage: the counter stopped counting" "$T_LOG/counter.out" || return
	done
	lib_counter_goes_on "$pid" "$(line_count "$T_LOG/counter.out")"
}

# Nothing to talk to: every request fails with a negative code, and the
# program goes on (exit 0).
test_lib_bad_service() {
	local rc cmd
	: > "$T_WORK/not-a-socket"
	rc=$(lib_client nosock -a "$T_WORK/no-such.sock" -D "$T_WORK" -t 1 check version dump restore)
	[[ $rc == 0 ]] || fail "nosock: the client exited $(rc_text "$rc")" "$T_LOG/nosock.err"
	for cmd in check version dump restore; do
		lib_expect nosock "$cmd" == -111 || return # -ECONNREFUSED
	done
	grep -q "errno=2$" "$T_LOG/nosock.out" || fail "nosock: errno is not ENOENT" "$T_LOG/nosock.out"
	rc=$(lib_client notsock -a "$T_WORK/not-a-socket" check)
	[[ $rc == 0 ]] || fail "notsock: the client exited $(rc_text "$rc")" "$T_LOG/notsock.err"
	lib_expect notsock check '<' 0 || return
	rc=$(lib_client nobin -b "$T_WORK/no-such-binary" check)
	[[ $rc == 0 ]] || fail "nobin: the client exited $(rc_text "$rc")" "$T_LOG/nobin.err"
	lib_expect nobin check == -111 || return
}

# criu_restore_child: the restored counter is the client's child, which
# kills and reaps it after a second of counting.
test_lib_restore_child() {
	local img=$T_WORK/img pid n out
	lib_counter_start || return
	pid=$PROG_PID
	mkdir -p "$img"
	lib_client dump -b "$STASIS" -D "$img" -W "$T_LOG" -t "$pid" dump > /dev/null
	lib_expect dump dump == 0 "$T_LOG/dump.log" || return
	expect_killed "$pid" || return
	n=$(line_count "$T_LOG/counter.out")
	lib_client child -b "$STASIS" -D "$img" -W "$T_LOG" restore_child > /dev/null
	out=$T_LOG/child.out
	lib_expect child restore_child == "$pid" "$T_LOG/restore_child.log" || return
	awk '$1 == "parent" && $2 == $4 { ok = 1 } END { exit !ok }' "$out" ||
		fail "child: the restored root is not the client's child: $(grep '^parent' "$out")" "$out"
	grep -qx "reaped $pid" "$out" || fail "child: the client could not reap pid $pid: $(tail -n1 "$out")" "$out"
	has_lines "$T_LOG/counter.out" $((n + 5)) ||
		fail "the counter did not go on under the client ($(line_count "$T_LOG/counter.out") lines, $n before)"
	check_sequence "$T_LOG/counter.out"
}

# A program that dumps itself (criu_dump with no pid): killed by the dump,
# restored by the library, its restored copy sees criu_dump return 1.
test_lib_selfdump() {
	local img=$T_WORK/img pid out=$T_LOG/selfdump.out
	mkdir -p "$img"
	start_prog selfdump "$BIN/lib_client" -b "$STASIS" -D "$img" -W "$T_LOG" selfdump
	pid=$PROG_PID
	wait_ready selfdump "$pid" || return
	wait_gone "$pid" || fail "the self-dumping client is still alive: $(tail -n1 "$out")" "$T_LOG/selfdump.log" || return
	wait "$pid" 2>/dev/null
	grep -q '^selfdump' "$out" && fail "the self-dump failed: $(grep '^selfdump' "$out")" "$T_LOG/selfdump.log" && return
	lib_client restore -b "$STASIS" -D "$img" -W "$T_LOG" restore > /dev/null
	lib_expect restore restore == "$pid" "$T_LOG/restore.log" || return
	wait_until "$TMO" has_line "$out" PASS || fail "the restored copy did not print PASS: $(tail -n1 "$out")" "$out"
	grep -qx 'selfdump 1 errno=0' "$out" || fail "criu_dump did not return 1 in the restored copy" "$out"
}

# criu_pre_dump (SINGLE_PRE_DUMP, as crun's checkpoint --pre-dump sends
# it): the counter runs on; a dump on top of it (parent images) leaves
# the pages that did not change to the pre-dump's; the restore counts on.
# (Not against CRIU: it tracks memory with soft-dirty bits only, which
# the test machine's kernel lacks.)
test_lib_pre_dump() {
	local pid n
	lib_counter_start || return
	pid=$PROG_PID
	mkdir -p "$T_WORK/pre" "$T_WORK/img"
	lib_client pre -b "$STASIS" -D "$T_WORK/pre" -W "$T_LOG" -t "$pid" predump > /dev/null
	lib_expect pre predump == 0 "$T_LOG/predump.log" || return
	wait_until "$TMO" runs_freely "$pid" || fail "pid $pid does not run freely after the pre-dump" || return
	lib_client dump -b "$STASIS" -D "$T_WORK/img" -W "$T_LOG" -P ../pre -t "$pid" dump > /dev/null
	lib_expect dump dump == 0 "$T_LOG/dump.log" || return
	[[ -L $T_WORK/img/parent ]] || fail "the dump did not link its parent images" "$T_LOG/dump.log"
	grep -Eq ' [1-9][0-9]* left to the parent' "$T_LOG/dump.log" ||
		fail "the dump left no page to the pre-dump's images" "$T_LOG/dump.log"
	expect_killed "$pid" || return
	n=$(line_count "$T_LOG/counter.out")
	lib_client restore -b "$STASIS" -D "$T_WORK/img" -W "$T_LOG" restore > /dev/null
	lib_expect restore restore == "$pid" "$T_LOG/restore.log" || return
	lib_counter_goes_on "$pid" "$n"
}

run_test lib.swrk test_lib_swrk
run_test lib.service test_lib_service
run_test lib.notify test_lib_notify
run_test lib.veto test_lib_veto
run_test lib.bad_service test_lib_bad_service
run_test lib.restore_child test_lib_restore_child
run_test --needs criu lib.criu_swrk test_lib_criu_swrk
run_test lib.selfdump test_lib_selfdump
run_test --needs memtrack lib.pre_dump test_lib_pre_dump
