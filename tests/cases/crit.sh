# `stasis crit` (src/crit) against CRIU's crit, on dumps that hold every
# kind of image `stasis image-kinds` lists: tests/py/crit_check.py decodes
# and encodes each image both ways, compares show, info and the x
# explorers, and names the kinds no dump here had (a new kind of image
# needs a program below).

# crit_seed NAME CMD...: a dump of CMD (which the dump kills) into
# T_WORK/crit/NAME; CRIT_DUMP_ARGS: more dump options.
crit_seed() {
	local name=$1
	shift
	start_prog "$name" "$@"
	wait_ready "$name" "$PROG_PID" || return 1
	dump "dump_$name" "$PROG_PID" "$T_WORK/crit/$name" ${CRIT_DUMP_ARGS:-}
}

# Run by the name crit (a link to stasis), stasis is crit.
crit_by_name() {
	ln -s "$STASIS" "$T_WORK/crit-link/crit"
	"$T_WORK/crit-link/crit" x "$T_WORK/crit/tree" ps > "$T_LOG/crit-link.out" 2>&1 ||
		{ fail "stasis run as crit failed" "$T_LOG/crit-link.out"; return 1; }
	"$CRIT" x "$T_WORK/crit/tree" ps | cmp -s - "$T_LOG/crit-link.out" ||
		fail "stasis run as crit printed another process tree than crit" "$T_LOG/crit-link.out"
}

test_crit() {
	local out=$T_LOG/crit_check.out rc unseen
	mkdir -p "$T_WORK/crit" "$T_WORK/crit-link"
	crit_seed tree "$BIN/fuzz" || return
	crit_seed pty "$BIN/pty_pair" || return
	crit_seed pairs "$BIN/unix_pairs" || return
	crit_seed server "$BIN/unix_server" || return
	crit_seed memfd "$PYTHON" "$ROOT/tests/progs/memfd.py" || return
	crit_seed fifo "$PYTHON" "$ROOT/tests/progs/fifo.py" "$T_FILES/fifo" || return
	crit_seed ghost "$PYTHON" "$ROOT/tests/progs/ghost.py" "$T_FILES/ghost.dat" 100000 || return
	crit_seed seccomp "$BIN/seccomp_threads" mixed || return
	# UTS and IPC namespaces of its own (System V objects, messages too)
	crit_seed ns unshare --uts "$BIN/ipc_ns" || return
	crit_seed netns unshare -n "$BIN/fuzz" || return
	crit_seed packet "$BIN/packet" || return	# packet_sock_entry, a VMA_AREA_SOCKET mapping
	crit_seed netlink "$BIN/netlink" criu || return	# netlink_sk_entry
	CRIT_DUMP_ARGS=--file-locks crit_seed locks "$BIN/locks" || return
	# cgroup.img: cgtree.py in cgroups of its own (cases/cgroup.sh)
	CG_NOSKIP=1 cg_layout && cg_remove && cg_make || return
	CRIT_DUMP_ARGS=--manage-cgroups crit_seed cgroup "$PYTHON" -u "$ROOT/tests/progs/cgtree.py" $(cg_args) || return
	cg_remove || return
	crit_seed timens "$BIN/timens" || return	# a time namespace of its own: timens-ID.img
	# a user namespace of its own: userns-ID.img; not in a chroot, where
	# unshare(CLONE_NEWUSER) is refused (EPERM)
	local ns_unseen=()
	if unshare -U -r true 2> /dev/null; then
		crit_seed userns unshare -U -r "$BIN/fuzz" || return
	else
		ns_unseen+=('userns-%u\.img')
		note "no user namespace can be made here (a chroot?): no user namespace dump"
	fi
	# a mount namespace of its own (cases/mntns.sh): mountpoints-ID.img, a
	# tmpfs's tar; not in a chroot, where the container can't pivot_root:
	# then those kinds are the only ones no dump may have
	if ! root_is_mount; then
		ns_unseen+=('mountpoints-%u\.img' 'tmpfs-dev-%u\.tar\.gz\.img')
		note "/ is not a mount point (a chroot): no mount namespace dump"
	elif command -v busybox > /dev/null; then
		start_container || return
		dump dump_mntns "$PROG_PID" "$T_WORK/crit/mntns" "${MNT_DUMP_EXT[@]}" || return
	fi
	# no network lock: the dump kills the pair, and nothing restores it
	CRIT_DUMP_ARGS="--tcp-established --network-lock skip" crit_seed tcp "$PYTHON" -u "$ROOT/tests/py/tcp_prog.py" pair 4 4000 || return
	crit_seed restored "$BIN/mem_anon" || return	# restored: its stats-restore
	local pid=$PROG_PID exe
	exe=$(readlink "$BIN/mem_anon" -f)
	expect_killed "$pid" || return
	restore_detached restore "$T_WORK/crit/restored" "$pid" "$exe" 1 || return
	kill -KILL "$pid"
	crit_by_name || return
	"$PYTHON" "$ROOT/tests/py/crit_check.py" "$STASIS" "$T_WORK"/crit/* > "$out" 2>&1
	rc=$?
	note "crit_check.py: $(grep '^KINDS' "$out")"
	if grep -q '^FAIL' "$out"; then
		fail "stasis crit differs from crit: $(grep -m1 '^FAIL' "$out" | cut -c1-400)" "$out"
		return
	fi
	((rc == 0)) || { fail "crit_check.py failed (rc $rc)" "$out"; return; }
	unseen=$(sed -n 's/^UNSEEN //p' "$out" | tr ' ' '\n' | grep -Ev "^($(IFS='|'; echo "${ns_unseen[*]:-}"))\$" | paste -sd' ')
	[[ -z $unseen ]] || fail "no dump here had these kinds of image: $unseen" "$out"
}

run_test crit.against_crit test_crit
