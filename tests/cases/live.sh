# dump --live-snapshot (src/dump/live.c): the program is frozen only to
# save what is not memory and write-protect its memory, then runs while
# its pages are copied. snapwriter (tests/progs) rewrites its pages from
# two threads without pause; after the restore every page must be as at
# the freeze (its own check: a page per thread in flight, every other
# one matching the generation its table says). The dump must have saved
# some pages first for a writer (else the race was not run), and the
# program must run on after the dump, with no userfaultfd of stasis left
# in it nor its memory registered with one.

LIVE_MIB=128

# No "uw" (userfaultfd-wp registered) in its VmFlags and no userfaultfd
# among its fds: stasis's protection went with the dump.
live_nothing_left() {
	local pid=$1 f
	if grep -q '^VmFlags:.* uw' "/proc/$pid/smaps"; then
		fail "pid $pid still has memory registered with a userfaultfd after the dump"
		return 1
	fi
	for f in /proc/"$pid"/fd/*; do
		if [[ $(readlink "$f") == "anon_inode:[userfaultfd]" ]]; then
			fail "pid $pid holds a userfaultfd after the dump (fd ${f##*/})"
			return 1
		fi
	done
}

# The writer threads still make progress (a thread blocked on a
# protected page would stop one): each one's generation, read from its
# memory at the address it printed, grows by WRITES_SEEN, within $TMO on
# a loaded machine. (Not the process's utime: tick-sampled, and split
# from system time by ratio; the fork mode's writers spend most of their
# time in copy-on-write faults, and a loaded run saw their utime stand
# still for 0.3 s while they ran.)
WRITES_SEEN=100

# writer_gens PID: the two writers' generations, "G0 G1"
writer_gens() {
	local addr a g gens=()
	read -r -a addr < <(sed -n 's/^gen at //p' "$T_LOG/snapwriter.out")
	for a in "${addr[@]}"; do
		g=$(dd if="/proc/$1/mem" bs=4 count=1 iflag=skip_bytes skip=$((a)) 2> /dev/null | od -An -tu4 | tr -d ' ')
		[[ -n $g ]] || return 1
		gens+=("$g")
	done
	((${#gens[@]} == 2)) && echo "${gens[*]}"
}

# writers_past PID G0 G1: both writers are WRITES_SEEN generations past G0 G1
writers_past() {
	local now
	read -r -a now < <(writer_gens "$1") || return 1
	((now[0] >= $2 + WRITES_SEEN && now[1] >= $3 + WRITES_SEEN))
}

live_writing() {
	local pid=$1 g
	read -r -a g < <(writer_gens "$pid") || { fail "harness: could not read the writers' generations of pid $pid"; return 1; }
	wait_until "$TMO" writers_past "$pid" "${g[@]}" || {
		fail "pid $pid does not write after the dump (generations ${g[*]} -> $(writer_gens "$pid"); threads: $(for t in /proc/"$pid"/task/*; do
			printf '%s %s %s; ' "${t##*/}" "$(stat_field "${t##*/}" 1)" "$(cat "$t/wchan" 2> /dev/null)"; done))"
		return 1
	}
}

# MODE: "" (two writers), fork (a third thread forks children that write
# their copies).
live_snapshot_restore() {
	local mode=$1 pid exe n
	exe=$(readlink -f "$BIN/snapwriter")
	printf 0 > "$T_WORK/ctl"
	start_prog snapwriter "$BIN/snapwriter" "$LIVE_MIB" "$T_WORK/ctl" $mode
	pid=$PROG_PID
	wait_ready snapwriter "$pid" || return
	sleep 0.3
	# Tried again, at most 8 times, when the race did not happen as the
	# test needs it: a child the forking thread made, caught by the freeze,
	# may exit before or during the copy of its pages (the dump then fails,
	# saying so: a live snapshot can't save memory that is gone), and on a
	# loaded machine the writers may not run at all while the pages are
	# copied (a CI run copied 32818 pages in 130 ms with none saved first).
	local try rc
	for try in 1 2 3 4 5 6 7 8; do
		rc=$(stasis dump dump -t "$pid" -D "$T_WORK/img" --live-snapshot)
		n=0
		if [[ $rc != 0 ]]; then
			[[ $mode == fork ]] && grep -q "exited or exec'd \(before\|during\) the live snapshot" "$T_LOG/dump.log" ||
				break
			note "try $try: a child exited during the copy"
			continue
		fi
		# Summed over the tree's processes: in fork mode a child caught
		# by the freeze may have no writer of its own.
		n=$(sed -n 's/.*live snapshot: [0-9]* pages copied, \([0-9]*\) saved first for a writer.*/\1/p' "$T_LOG/dump.log" |
			awk '{ s += $1 } END { print s + 0 }')
		((${n:-0} > 0)) && break
		note "try $try: no writer touched a page during the copy"
	done
	[[ $rc == 0 ]] || { fail "dump: stasis dump exited $(rc_text "$rc"): $(error_message dump)" "$T_LOG/dump.log"; return; }
	grep -q "protected for a live snapshot" "$T_LOG/dump.log" ||
		{ fail "the dump did not protect the memory (not live)" "$T_LOG/dump.log"; return; }
	((${n:-0} > 0)) || { fail "no page was saved first for a writer in 8 tries: the race was not run" "$T_LOG/dump.log"; return; }
	live_nothing_left "$pid" || return
	live_writing "$pid" || return
	printf 1 1<> "$T_WORK/ctl" # the restored writers stop before writing
	kill -9 "$pid"
	expect_killed "$pid" || return
	restore_foreground restore "$T_WORK/img"
	wait_restored restore "$pid" "$exe" 1 "$RESTORE_PID" || return
	kill -USR1 "$pid"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output snapwriter
}

# A third thread keeps discarding (MADV_DONTNEED) and refilling memory:
# a page discarded before it was saved can't be saved. Either the
# snapshot is whole (and restores right) or the dump fails saying so,
# leaves no dump, and the program runs on unharmed.
live_snapshot_discard() {
	local pid rc
	printf 0 > "$T_WORK/ctl"
	start_prog snapwriter "$BIN/snapwriter" "$LIVE_MIB" "$T_WORK/ctl" unmap
	pid=$PROG_PID
	wait_ready snapwriter "$pid" || return
	sleep 0.3
	mkdir -p "$T_WORK/img"
	rc=$(stasis dump dump -t "$pid" -D "$T_WORK/img" --live-snapshot)
	if [[ $rc == 0 ]]; then
		note "the snapshot was whole despite the discards: restoring it"
		live_nothing_left "$pid" || return
		printf 1 1<> "$T_WORK/ctl"
		kill -9 "$pid"
		expect_killed "$pid" || return
		restore_foreground restore "$T_WORK/img"
		wait_restored restore "$pid" "$(readlink -f "$BIN/snapwriter")" 1 "$RESTORE_PID" || return
		kill -USR1 "$pid"
		wait_child "$RESTORE_PID" $((TMO * 2))
		check_output snapwriter
		return
	fi
	grep -q "discarded or moved before the live snapshot saved it" "$T_LOG/dump.log" ||
		{ fail "the dump failed, not for a discarded page: $(error_message dump)" "$T_LOG/dump.log"; return; }
	[[ ! -e $T_WORK/img/inventory.img ]] || { fail "the failed live snapshot left an inventory.img"; return; }
	live_nothing_left "$pid" || return
	live_writing "$pid" || return
	printf 1 1<> "$T_WORK/ctl"
	kill -USR1 "$pid"
	wait_child "$pid" $((TMO * 2))
	note "snapwriter exited $CHILD_RC"
	check_output snapwriter
}

# Options: --live-snapshot is for dump, and not with --track-mem.
live_snapshot_refused() {
	local rc
	mkdir -p "$T_WORK/img"
	rc=$(stasis predump pre-dump -t 1 -D "$T_WORK/img" --live-snapshot)
	[[ $rc != 0 ]] || { fail "pre-dump --live-snapshot was accepted"; return; }
	rc=$(stasis trackmem dump -t 1 -D "$T_WORK/img" --live-snapshot --track-mem)
	[[ $rc != 0 ]] || fail "dump --live-snapshot --track-mem was accepted"
}

# Userfaultfd write-protection of anonymous memory: 5.7+ (Debian 12's
# 6.1 has it); pagemap's uffd-wp bit, which the copy checks: 5.13+.
run_test --needs kernel:userfaultfd_write-protect live.snapshot live_snapshot_restore ""
run_test --needs kernel:userfaultfd_write-protect live.fork live_snapshot_restore fork
run_test --needs kernel:userfaultfd_write-protect live.discard live_snapshot_discard
run_test live.refused live_snapshot_refused
