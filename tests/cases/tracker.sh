# The memory tracker a pre-dump leaves in the program (a userfaultfd, see
# src/dump/track.c): one fd at one number whatever the number of dumps,
# below the program's limit of open files, never 0-2, never a program's
# own userfaultfd, never inherited for good, never restored. Uses
# pre_dump, pages_bytes and restore_and_check of predump.sh.

# "FD TARGET" lines of a process, by fd number.
fd_list() {
	local f
	for f in /proc/"$1"/fd/*; do
		[[ -e $f || -L $f ]] && printf '%s %s\n' "${f##*/}" "$(readlink "$f")"
	done | sort -n
}
uffd_fds() { fd_list "$1" | awk '$2 == "anon_inode:[userfaultfd]" { print $1 }' | tr '\n' ' ' | sed 's/ $//'; }
fd_inode() { stat -L -c %i "/proc/$1/fd/$2" 2>/dev/null; }
fd_cloexec() { (( 8#$(awk '$1 == "flags:" { print $2 }' "/proc/$1/fdinfo/$2") & 8#2000000 )); }
oneline() { tr '\n' ' ' <<< "$1"; }

# Notes stasis keeps of the trackers it made for pid $1 (soft-dirty:
# of its armings, one file per process).
tracker_notes() {
	if [[ $(mem_track_method) == softdirty ]]; then
		ls /run/stasis/softdirty/ 2> /dev/null | grep -c -- "-$1\$"
	else
		cat /run/stasis/trackers/[0-9]* 2> /dev/null | awk -v p="$1" '$2 == p' | wc -l
	fi
}

# Did the dump TAG take pages from its parent for every process? Asked of
# its log: how many bytes it saved depends on how much the program wrote
# meanwhile, which a busy machine stretches.
used_parent() {
	if grep -q "every page is saved" "$T_LOG/$1.log" || ! grep -q "KiB in the parent dump" "$T_LOG/$1.log"; then
		fail "$1 did not take pages from its parent" "$T_LOG/$1.log"
		return 1
	fi
}

# A restore of DIR (the dump killed PID), then its fds must be BEFORE:
# the tracker is never one of the program's fds.
restore_expect_fds() {
	local dir=$1 pid=$2 exe=$3 before=$4 label=$5
	restore_foreground restore "$dir"
	wait_restored restore "$pid" "$exe" 1 "$RESTORE_PID" || return
	[[ $(fd_list "$pid") == "$before" ]] ||
		fail "restored fds: $(oneline "$(fd_list "$pid")"), before the pre-dumps: $(oneline "$before")"
	kill -USR1 "$pid"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output "$label"
}

# `ulimit -n 64` (soft and hard) and stdin closed: the tracker takes fd
# 63 (not 0, the lowest free one), close-on-exec, and keeps it through a
# second pre-dump; the dump uses its parents; the restored program has
# its own fds only and every page right.
test_tracker_low_limit() {
	local pid exe before after1 slot
	start_prog dirtier bash -c 'ulimit -n 64 && exec "$0" "$@" 0<&-' "$BIN/dirtier" "$DIRTIER_MIB"
	wait_ready dirtier "$PROG_PID" || return
	pid=$PROG_PID exe=$(readlink "/proc/$PROG_PID/exe")
	before=$(fd_list "$pid")
	pre_dump pre1 "$T_WORK/img/1" || return
	after1=$(fd_list "$pid")
	slot=$(uffd_fds "$pid")
	[[ $slot == 63 ]] || { fail "the tracker is on fd '$slot', not 63 (the highest below the limit of 64): fds $(oneline "$after1")"; return; }
	[[ $after1 == "$(printf '%s\n63 anon_inode:[userfaultfd]\n' "$before" | sort -n)" ]] ||
		{ fail "the pre-dump left fds $(oneline "$after1"); before it: $(oneline "$before")"; return; }
	fd_cloexec "$pid" 63 || fail "the tracker is not close-on-exec"
	sleep 0.3
	pre_dump pre2 "$T_WORK/img/2" --prev-images-dir ../1 || return
	[[ $(fd_list "$pid") == "$after1" ]] ||
		{ fail "the second pre-dump left fds $(oneline "$(fd_list "$pid")"), the first $(oneline "$after1")"; return; }
	sleep 0.3
	dump dump "$pid" "$T_WORK/img/3" --prev-images-dir ../2 || return
	expect_killed "$pid" || return
	used_parent dump || return
	restore_expect_fds "$T_WORK/img/3" "$pid" "$exe" "$before" dirtier
}

# Pre-dumps in a row of one running process, in chains of TRACK_CHAIN
# (each the parent of the next; restore follows at most 64 parents), each
# chain started by a pre-dump without a parent: its fds stay the same (one
# tracker, one number), stasis keeps one note for it, and the last dump,
# over the last chain, restores right. With soft-dirty bits (no fd, each
# arming a clear_refs) fewer rounds: that kernel runs in a slow VM here.
TRACK_ROUNDS=600 TRACK_CHAIN=40
test_tracker_many_predumps() {
	local pid exe fds i t0 t1 parent
	[[ $(mem_track_method) != softdirty ]] || TRACK_ROUNDS=90
	start_prog dirtier "$BIN/dirtier" 4
	wait_ready dirtier "$PROG_PID" || return
	pid=$PROG_PID exe=$(readlink "/proc/$PROG_PID/exe")
	pre_dump pre1 "$T_WORK/img/1" || return
	fds=$(fd_list "$pid")
	t0=$(date +%s%N)
	for ((i = 2; i <= TRACK_ROUNDS; i++)); do
		mkdir -p "$T_WORK/img/$i"
		parent=(--prev-images-dir "../$((i - 1))")
		((i % TRACK_CHAIN == 1)) && parent=()
		timeout -k 5 "$TMO" "$STASIS" pre-dump -t "$pid" -D "$T_WORK/img/$i" "${parent[@]}" \
			-o "$T_LOG/pre.log" -v2 > /dev/null 2> "$T_LOG/pre.stderr" < /dev/null ||
			{ fail "pre-dump $i of $TRACK_ROUNDS failed: $(tail -n1 "$T_LOG/pre.stderr")" "$T_LOG/pre.log"; return; }
		[[ $(fd_list "$pid") == "$fds" ]] ||
			{ fail "after pre-dump $i the fds are $(oneline "$(fd_list "$pid")"); after the first: $(oneline "$fds")"; return; }
	done
	t1=$(date +%s%N)
	note "$((TRACK_ROUNDS - 1)) pre-dumps in $(((t1 - t0) / 1000000)) ms"
	echo "$((TRACK_ROUNDS - 1)) pre-dumps in $(((t1 - t0) / 1000000)) ms" > "$T_LOG/timing"
	(($(tracker_notes "$pid") == 1)) || fail "stasis keeps $(tracker_notes "$pid") notes of trackers of pid $pid, not 1"
	grep -q "every page is saved" "$T_LOG/pre.log" && fail "the last pre-dump did not use its parent" "$T_LOG/pre.log"
	dump dump "$pid" "$T_WORK/img/last" --prev-images-dir "../$TRACK_ROUNDS" || return
	expect_killed "$pid" || return
	used_parent dump || return
	restore_and_check "$T_WORK/img/last" "$pid" "$exe"
}

child_line() { grep -q '^CHILD ' "$1"; }

# A fork after a pre-dump copies the tracker into the child; the next
# dump (-R --track-mem) closes the copy and gives the child a tracker of
# its own, and a last dump over it restores both processes right, with
# no tracker among their fds.
test_tracker_fork_copy() {
	local pid exe child slot before
	start_prog trackfork "$BIN/trackfork" 16
	wait_ready trackfork "$PROG_PID" || return
	pid=$PROG_PID exe=$(readlink "/proc/$PROG_PID/exe")
	before=$(fd_list "$pid")
	pre_dump pre1 "$T_WORK/img/1" || return
	slot=$(uffd_fds "$pid")
	kill -USR2 "$pid"
	wait_until "$TMO" child_line "$T_LOG/trackfork.out" || { fail "trackfork did not fork"; return; }
	child=$(awk '$1 == "CHILD" { print $2 }' "$T_LOG/trackfork.out")
	[[ $(uffd_fds "$child") == "$slot" && $(fd_inode "$child" "$slot") == "$(fd_inode "$pid" "$slot")" ]] ||
		{ fail "harness: the child ($child) has no copy of the tracker (fd $slot): $(oneline "$(fd_list "$child")")"; return; }
	dump dump2 "$pid" "$T_WORK/img/2" -R --track-mem --prev-images-dir ../1 || return
	[[ $(uffd_fds "$pid") == "$slot" ]] || fail "the parent's userfaultfds after the dump: '$(uffd_fds "$pid")', not $slot"
	[[ $(uffd_fds "$child") == "$slot" && $(fd_inode "$child" "$slot") != "$(fd_inode "$pid" "$slot")" ]] ||
		fail "the child's userfaultfds after the dump: '$(uffd_fds "$child")' (inode $(fd_inode "$child" "$slot")); want its own tracker on fd $slot, not the parent's copy (inode $(fd_inode "$pid" "$slot"))"
	[[ $(fd_list "$child") == "$(fd_list "$pid")" ]] || fail "the child's fds $(oneline "$(fd_list "$child")") are not the parent's $(oneline "$(fd_list "$pid")")"
	sleep 0.3
	dump dump3 "$pid" "$T_WORK/img/3" --prev-images-dir ../2 || return
	expect_killed "$pid" || return
	wait_gone "$child" "$TMO" || return
	used_parent dump3 || return
	restore_foreground restore "$T_WORK/img/3"
	wait_restored restore "$pid" "$exe" 1 "$RESTORE_PID" || return
	[[ $(fd_list "$pid") == "$before" ]] || fail "the restored parent's fds: $(oneline "$(fd_list "$pid")"), before: $(oneline "$before")"
	[[ $(fd_list "$child") == "$before" ]] || fail "the restored child's fds: $(oneline "$(fd_list "$child")"), want $(oneline "$before")"
	kill -USR1 "$pid"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output trackfork
}

# Stasis loses its note of the tracker (/run emptied): the next pre-dump
# can't vouch for its parent and saves everything, and replaces the
# tracker on the same fd (a new inode); the chain goes on from there.
# With soft-dirty bits the note is the process's own (no fd, no inode).
test_tracker_note_lost() {
	local pid exe slot ino fds full second sd=0
	[[ $(mem_track_method) == softdirty ]] && sd=1
	start_dirtier || return
	pid=$PROG_PID exe=$DIRTIER_EXE
	pre_dump pre1 "$T_WORK/img/1" || return
	fds=$(fd_list "$pid") slot=$(uffd_fds "$pid")
	if ((sd)); then
		(($(tracker_notes "$pid") == 1)) || { fail "stasis keeps $(tracker_notes "$pid") notes for pid $pid, not 1"; return; }
		rm -f /run/stasis/softdirty/*-"$pid"
	else
		ino=$(fd_inode "$pid" "$slot")
		rm -f "/run/stasis/trackers/$ino"
	fi
	sleep 0.2
	pre_dump pre2 "$T_WORK/img/2" --prev-images-dir ../1 || return
	full=$(pages_bytes "$T_WORK/img/1") second=$(pages_bytes "$T_WORK/img/2")
	((second * 10 >= full * 9)) || fail "without its note the pre-dump saved only $second bytes of $full"
	grep -q "no note of its memory track" "$T_LOG/pre2.log" || fail "no warning about the lost note" "$T_LOG/pre2.log"
	[[ $(fd_list "$pid") == "$fds" ]] || fail "the pre-dump left fds $(oneline "$(fd_list "$pid")"), the first $(oneline "$fds")"
	((sd)) || [[ $(fd_inode "$pid" "$slot") != "$ino" ]] || fail "the tracker was not replaced (inode $ino)"
	sleep 0.2
	dump dump "$pid" "$T_WORK/img/3" --prev-images-dir ../2 || return
	expect_killed "$pid" || return
	used_parent dump || return
	restore_and_check "$T_WORK/img/3" "$pid" "$exe"
}

nulled_line() { grep -q '^NULLED ' "$1"; }

# The program puts /dev/null over its tracker (dup2): the next pre-dump
# saves everything (nothing tracked its writes) and arms a new tracker on
# another fd, leaving the program's /dev/null alone; the dump over that
# pre-dump restores right, with the program's fds.
test_tracker_overwritten() {
	local pid exe slot before full second new
	start_prog trackfork "$BIN/trackfork" 16
	wait_ready trackfork "$PROG_PID" || return
	pid=$PROG_PID exe=$(readlink "/proc/$PROG_PID/exe")
	pre_dump pre1 "$T_WORK/img/1" || return
	slot=$(uffd_fds "$pid")
	kill -HUP "$pid"
	wait_until "$TMO" nulled_line "$T_LOG/trackfork.out" || { fail "trackfork did not put /dev/null over its tracker"; return; }
	before=$(fd_list "$pid")
	[[ $before == *"$slot /dev/null"* ]] || { fail "harness: fd $slot is not /dev/null: $(oneline "$before")"; return; }
	pre_dump pre2 "$T_WORK/img/2" --prev-images-dir ../1 || return
	full=$(pages_bytes "$T_WORK/img/1") second=$(pages_bytes "$T_WORK/img/2")
	((second >= full)) || fail "the pre-dump after the tracker was overwritten saved $second bytes of $full"
	grep -q "no memory tracker from the parent dump" "$T_LOG/pre2.log" || fail "no warning that the tracker is gone" "$T_LOG/pre2.log"
	new=$(uffd_fds "$pid")
	[[ -n $new && $new != "$slot" ]] || fail "the new tracker is on fd '$new' (the program's /dev/null is on $slot)"
	[[ $(fd_list "$pid") == "$(printf '%s\n%s anon_inode:[userfaultfd]\n' "$before" "$new" | sort -n)" ]] ||
		fail "the pre-dump left fds $(oneline "$(fd_list "$pid")"); before it: $(oneline "$before")"
	dump dump "$pid" "$T_WORK/img/3" --prev-images-dir ../2 || return
	expect_killed "$pid" || return
	used_parent dump || return
	restore_expect_fds "$T_WORK/img/3" "$pid" "$exe" "$before" trackfork
}

# A program with its own userfaultfd (write-protect, async, at the fd
# stasis would pick): a pre-dump and a second one over it leave it alone
# and put the tracker elsewhere; the dump refuses it by name, the program
# runs on, and its own protection is intact.
test_tracker_own_uffd() {
	local pid own ino slot rc
	start_prog ownuffd "$BIN/ownuffd"
	wait_ready ownuffd "$PROG_PID" || return
	pid=$PROG_PID
	own=$(awk '$1 == "UFFD" { print $2 }' "$T_LOG/ownuffd.out")
	ino=$(fd_inode "$pid" "$own")
	pre_dump pre1 "$T_WORK/img/1" || return
	slot=$(uffd_fds "$pid")
	slot=${slot//$own/}
	slot=${slot// /}
	[[ -n $slot && $slot != "$own" ]] || { fail "no tracker besides the program's fd $own: $(uffd_fds "$pid")"; return; }
	[[ $(fd_inode "$pid" "$own") == "$ino" ]] || fail "the pre-dump changed the program's fd $own"
	pre_dump pre2 "$T_WORK/img/2" --prev-images-dir ../1 || return
	[[ $(uffd_fds "$pid") == "$(printf '%s\n' "$own" "$slot" | sort -n | tr '\n' ' ' | sed 's/ $//')" ]] ||
		fail "after the second pre-dump the userfaultfds are $(uffd_fds "$pid"); want the program's $own and the tracker $slot"
	grep -q "every page is saved" "$T_LOG/pre2.log" && fail "the second pre-dump did not use its parent" "$T_LOG/pre2.log"
	rc=$(stasis dump dump -t "$pid" -D "$T_WORK/img/3" --prev-images-dir ../2)
	[[ $rc != 0 ]] || { fail "the dump of a program holding a userfaultfd succeeded"; return; }
	error_message dump | grep -q "fd $own.*userfaultfd" ||
		fail "the dump's refusal does not name fd $own as a userfaultfd: $(error_message dump)" "$T_LOG/dump.log"
	runs_freely "$pid" || { fail "the program does not run after the refused dump"; return; }
	[[ $(fd_inode "$pid" "$own") == "$ino" ]] || fail "the refused dump changed the program's fd $own"
	kill -USR1 "$pid"
	wait_gone "$pid" "$TMO"
	check_output ownuffd
}

# The tests of the userfaultfd tracker's fd need one: a kernel without
# userfaultfd WP_ASYNC (6.1) tracks with soft-dirty bits and has none.
run_test --needs uffd tracker.low_limit test_tracker_low_limit
run_test tracker.many_predumps test_tracker_many_predumps
run_test --needs uffd tracker.fork_copy test_tracker_fork_copy
run_test tracker.note_lost test_tracker_note_lost
run_test --needs uffd tracker.overwritten test_tracker_overwritten
run_test --needs uffd tracker.own_uffd test_tracker_own_uffd
