# A tree with a mount namespace of its own (src/ns/mnt*.c): a container
# made with unshare and pivot_root on a busybox root, with a tmpfs holding
# files, a bind mount of a directory of it, proc, a devpts instance with a
# shell on one of its ptys, and two external bind mounts of the host (its
# /usr, for python, and a directory where the container writes). Restored
# with --root onto a fresh copy of the root directory, by stasis and by
# CRIU, both ways; mounts stasis can't make again are refused by name;
# a failed restore leaves no mount.

# mnt_root DIR: a busybox root (the host's /usr is bound on its /usr).
mnt_root() {
	local r=$1 c
	mkdir -p "$r"/{bin,proc,tmp,dev/pts,data,mnt,old,usr,etc,gone}
	cp "$(command -v busybox)" "$r/bin/busybox" || return 1
	for c in sh ps wc cat sleep umount echo; do ln -s busybox "$r/bin/$c"; done
	ln -s usr/lib "$r/lib"
	ln -s usr/lib64 "$r/lib64"
	ln -s pts/ptmx "$r/dev/ptmx"
	mknod -m 666 "$r/dev/null" c 1 3
}

# The dump's and the restore's options for the two external mounts.
MNT_DUMP_EXT=(--external 'mnt[/usr]:usr' --external 'mnt[/mnt]:shared')
mnt_restore_ext() { echo --external "mnt[usr]:/usr" --external "mnt[shared]:$T_WORK/shared"; }

# start_container [EXTRA_MOUNT_CMD [AFTER_PIVOT_CMD]]: the container on
# T_WORK/root1, writing to T_WORK/shared/out; PROG_PID is its python.
start_container() {
	local extra=${1:-:} after=${2:-:}
	command -v busybox > /dev/null || { skip "no busybox (apt-get install busybox-static)"; return 1; }
	mnt_root "$T_WORK/root1" || { fail "harness: could not make the busybox root"; return 1; }
	mkdir -p "$T_WORK/shared"
	[[ -z ${MNT_USERNS:-} ]] || chmod 777 "$T_WORK/shared"
	cp "$ROOT/tests/progs/mntns_pty.py" "$T_WORK/shared/"
	# MNT_PIDNS=1: a pid namespace of its own too, the container's init
	# (sh, then python) the child of unshare -f; its proc is the namespace's
	local pre=(unshare -m --propagation private)
	[[ ${MNT_PIDNS:-} == 1 ]] && pre=(unshare -m -p -f --propagation private setsid)
	# MNT_USERNS=UID: made by that user in a user namespace of its own
	# too, where it is root (userns.sh)
	[[ -n ${MNT_USERNS:-} ]] &&
		pre=(setpriv --reuid "$MNT_USERNS" --regid "$MNT_USERNS" --clear-groups unshare -U -r "${pre[@]:1}")
	start_prog container "${pre[@]}" /bin/sh -c '
set -e
R=$1 S=$2
mount --bind "$R" "$R"
cd "$R"
mount -t proc proc proc
mount -t tmpfs -o size=1m,mode=755 tmpfs tmp
echo in-tmpfs > tmp/f
mkdir tmp/sub
echo in-bind > tmp/sub/g
mount --bind tmp/sub data
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts dev/pts
mount --bind /usr usr
mount --bind "$S" mnt
'"$extra"'
pivot_root . old
/bin/umount -l /old
'"$after"'
exec /usr/bin/python3 -u /mnt/mntns_pty.py /mnt/out < /dev/null > /dev/null 2>&1
' sh "$T_WORK/root1" "$T_WORK/shared"
	wait_until "$TMO" has_lines "$T_WORK/shared/out" 5 ||
		{ fail "the container printed nothing" "$T_LOG/container.err"; return 1; }
	if [[ ${MNT_PIDNS:-} == 1 ]]; then
		PROG_PID=$(tr -d " " < /proc/"$PROG_PID"/task/"$PROG_PID"/children)
		T_PIDS+=("$PROG_PID")
		[[ $(ns_pid "$PROG_PID") == 1 ]] || { fail "harness: the container's python is not its pid 1"; return 1; }
	fi
}

# The lines after the first n: every round answered, with the files, ps
# and the pty of the namespace's own devpts.
container_ok_after() {
	local n=$1 bad
	bad=$(tail -n +"$((n + 1))" "$T_WORK/shared/out" | grep -v ' in-tmpfs in-bind shell ps pts$' | head -n1)
	[[ -z $bad ]] || fail "after the restore the container wrote: $bad" "$T_WORK/shared/out"
}

# container_goes_on N PID TAG: the container counts on after a restore, as it was.
container_goes_on() {
	local n=$1 pid=$2
	wait_until "$TMO" has_lines "$T_WORK/shared/out" $((n + 12)) || {
		fail "$3: the container did not go on (its processes: $(for p in $pid $(cat /proc/"$pid"/task/*/children 2> /dev/null); do
			printf '%s %s %s (syscall %s) %s; ' "$p" "$(stat_field "$p" 1)" "$(cat /proc/"$p"/wchan 2> /dev/null)" \
				"$(cut -d' ' -f1-4 /proc/"$p"/syscall 2> /dev/null)" "$(tr '\0' ' ' < /proc/"$p"/cmdline 2> /dev/null)"; done); its shell's tty: $(
			for p in $(cat /proc/"$pid"/task/*/children 2> /dev/null); do timeout 2 stty -a < /proc/"$p"/fd/0 2>&1 | tr '\n' ' '; done))"
		return 1
	}
	[[ $(readlink "/proc/$pid/ns/mnt") != "$(readlink /proc/self/ns/mnt)" ]] ||
		fail "$3: pid $pid was restored into our mount namespace"
	# mountinfo names the root within its file system: T_WORK's path from
	# the mount it is on (all of it where that is /; not where /tmp is a tmpfs)
	local fs_mnt rel
	fs_mnt=$(findmnt -n -o TARGET -T "$T_WORK")
	rel=${T_WORK#"${fs_mnt%/}"}
	grep -qF -e " $T_WORK/root2 / " -e " $rel/root2 / " -e " / / " "/proc/$pid/mountinfo" ||
		fail "$3: the restored root is not $T_WORK/root2: $(head -n1 "/proc/$pid/mountinfo")"
	container_ok_after "$n"
}

host_mounts_of() { grep -c -- "$1" /proc/self/mountinfo; }

test_mntns_container() {
	local pid n rc
	start_container || return
	pid=$PROG_PID
	container_ok_after 0
	dump dump "$pid" "$T_WORK/img" "${MNT_DUMP_EXT[@]}" || return
	expect_killed "$pid" || return
	ls "$T_WORK/img"/mountpoints-*.img "$T_WORK/img"/tmpfs-dev-*.tar.gz.img > /dev/null ||
		{ fail "the dump wrote no mountpoints or tmpfs image"; return; }
	mnt_root "$T_WORK/root2"
	n=$(line_count "$T_WORK/shared/out")
	# shellcheck disable=SC2046
	rc=$(stasis restore restore -D "$T_WORK/img" -d --root "$T_WORK/root2" $(mnt_restore_ext))
	[[ $rc == 0 ]] || { fail "restore exited $(rc_text "$rc"): $(error_message restore)" "$T_LOG/restore.log"; return; }
	container_goes_on "$n" "$pid" restore || return
	[[ $(host_mounts_of "$T_WORK/root2") == 0 ]] || fail "the restore left mounts on the host: $(grep "$T_WORK" /proc/self/mountinfo)"
	kill_leftovers
	check_sequence <(cut -d' ' -f1 "$T_WORK/shared/out")
}

# The same container in a pid namespace of its own (as runc makes them):
# its python is pid 1 there and comes back so, with proc of the new pid
# namespace mounted by it.
# mntns_pidns_cycle [HOOK]: started (MNT_USERNS: see start_container),
# HOOK run with its pid before the dump, dumped, restored and going on;
# PROG_PID is the restored python.
mntns_pidns_cycle() {
	local hook=${1:-:} pid n rc
	MNT_PIDNS=1 start_container || return
	pid=$PROG_PID
	"$hook" "$pid"
	dump dump "$pid" "$T_WORK/img" "${MNT_DUMP_EXT[@]}" || return
	wait_gone "$pid" || { fail "pid $pid alive after the dump"; return; }
	mnt_root "$T_WORK/root2"
	n=$(line_count "$T_WORK/shared/out")
	# shellcheck disable=SC2046
	rc=$(stasis restore restore -D "$T_WORK/img" -d --root "$T_WORK/root2" $(mnt_restore_ext) --pidfile "$T_WORK/pid")
	[[ $rc == 0 ]] || { fail "restore exited $(rc_text "$rc"): $(error_message restore)" "$T_LOG/restore.log"; return; }
	pid=$(cat "$T_WORK/pid")
	T_PIDS+=("$pid")
	PROG_PID=$pid
	container_goes_on "$n" "$pid" restore || return
	[[ $(ns_pid "$pid") == 1 ]] || fail "the restored python is not pid 1 of its namespace: $(ns_pid "$pid")"
}

test_mntns_pidns() {
	mntns_pidns_cycle || return
	kill -9 "$PROG_PID"
	check_sequence <(cut -d' ' -f1 "$T_WORK/shared/out")
}

# Propagation inside the container, and a bind whose root was removed:
# a shared tmpfs with a peer (a bind of it) and a slave, made so again
# (a mount made on the shared one after the restore shows in the peer and
# the slave, not on the host), and /gone, a bind of a removed directory,
# still shows it removed.
mnt_field() { awk -v mp="$2" '$5 == mp { for (i = 7; $i != "-"; i++) printf "%s ", $i; print "" }' "/proc/$1/mountinfo"; }

test_mntns_propagation() {
	local pid n rc a b c group
	start_container 'mkdir tmp/s1 tmp/s2 tmp/s3 tmp/rm
mount -t tmpfs shared tmp/s1
mkdir tmp/s1/sub
mount --make-shared tmp/s1
mount --bind tmp/s1 tmp/s2
mount --bind tmp/s1 tmp/s3
mount --make-slave tmp/s3
mount --bind tmp/rm gone
rmdir tmp/rm' || return
	pid=$PROG_PID
	dump dump "$pid" "$T_WORK/img" "${MNT_DUMP_EXT[@]}" || return
	expect_killed "$pid" || return
	mnt_root "$T_WORK/root2"
	n=$(line_count "$T_WORK/shared/out")
	# shellcheck disable=SC2046
	rc=$(stasis restore restore -D "$T_WORK/img" -d --root "$T_WORK/root2" $(mnt_restore_ext))
	[[ $rc == 0 ]] || { fail "restore exited $(rc_text "$rc"): $(error_message restore)" "$T_LOG/restore.log"; return; }
	container_goes_on "$n" "$pid" restore || return
	a=$(mnt_field "$pid" /tmp/s1) b=$(mnt_field "$pid" /tmp/s2) c=$(mnt_field "$pid" /tmp/s3)
	group=$(grep -o 'shared:[0-9]*' <<< "$a" | cut -d: -f2)
	[[ -n $group && $b == *"shared:$group "* ]] || fail "/tmp/s1 ($a) and /tmp/s2 ($b) are not peers after the restore"
	[[ -n $group && $c == *"master:$group "* ]] || fail "/tmp/s3 ($c) is not a slave of /tmp/s1 ($a)"
	nsenter -t "$pid" -m mount -t tmpfs late /tmp/s1/sub || { fail "can't mount in the restored container"; return; }
	[[ -n $(mnt_field "$pid" /tmp/s2/sub) && -n $(mnt_field "$pid" /tmp/s3/sub) ]] ||
		fail "a mount on the shared tmpfs did not reach its peer and slave: $(grep /tmp/s "/proc/$pid/mountinfo")"
	! grep -q " late " /proc/self/mountinfo || fail "the container's mount reached the host"
	grep -q "//deleted /gone " "/proc/$pid/mountinfo" || fail "/gone is no bind of a removed directory: $(grep ' /gone ' "/proc/$pid/mountinfo")"
	kill_leftovers
}

# A kind mounted anew of which only a subdirectory was mounted (sysfs's
# kernel/ on /gone): restore mounts a whole sysfs aside and binds that.
test_mntns_subdir() {
	local pid n rc
	start_container 'mkdir tmp/sys
mount -t sysfs sysfs tmp/sys
mount --bind tmp/sys/kernel gone
umount tmp/sys
rmdir tmp/sys' || return
	pid=$PROG_PID
	grep -q " /kernel /gone .* sysfs " "/proc/$pid/mountinfo" || { fail "harness: no sysfs subdirectory on /gone"; return; }
	dump dump "$pid" "$T_WORK/img" "${MNT_DUMP_EXT[@]}" || return
	expect_killed "$pid" || return
	mnt_root "$T_WORK/root2"
	n=$(line_count "$T_WORK/shared/out")
	# shellcheck disable=SC2046
	rc=$(stasis restore restore -D "$T_WORK/img" -d --root "$T_WORK/root2" $(mnt_restore_ext))
	[[ $rc == 0 ]] || { fail "restore exited $(rc_text "$rc"): $(error_message restore)" "$T_LOG/restore.log"; return; }
	container_goes_on "$n" "$pid" restore || return
	grep -q " /kernel /gone .* sysfs " "/proc/$pid/mountinfo" ||
		fail "/gone is not sysfs's kernel/ after the restore: $(grep ' /gone ' "/proc/$pid/mountinfo")"
	[[ -d /proc/$pid/root/gone/mm ]] || fail "/gone holds no mm/ (not sysfs's kernel/)"
	[[ $(grep -c " - sysfs " "/proc/$pid/mountinfo") == 1 ]] || fail "the whole sysfs mounted aside was left in the container"
	kill_leftovers
}

# Over RPC, as runc drives it: ext_mnt pairs at dump and restore, root.
test_mntns_rpc() {
	local pid n rc
	start_container || return
	pid=$PROG_PID
	mkdir -p "$T_WORK/img"
	rc=$(rpc_run rpcdump --bin "$STASIS" dump "$pid" "$T_WORK/img" --ext-mnt /usr usr --ext-mnt /mnt shared)
	[[ $rc == 0 ]] || { fail "the RPC dump failed: $(cat "$T_LOG/rpcdump.out" "$T_LOG/rpcdump.err")" "$T_WORK/img/dump.log"; return; }
	expect_killed "$pid" || return
	mnt_root "$T_WORK/root2"
	n=$(line_count "$T_WORK/shared/out")
	rc=$(rpc_run rpcrestore --bin "$STASIS" restore "$T_WORK/img" --root "$T_WORK/root2" --ext-mnt usr /usr \
		--ext-mnt shared "$T_WORK/shared")
	[[ $rc == 0 ]] || { fail "the RPC restore failed: $(cat "$T_LOG/rpcrestore.out" "$T_LOG/rpcrestore.err")" "$T_WORK/img/restore.log"; return; }
	container_goes_on "$n" "$pid" "RPC restore" || return
	kill_leftovers
}

# The lines each writer wrote so far.
mnt_counts() {
	MNT_N=$(line_count "$T_WORK/shared/out") MNT_NI=$(line_count "$T_WORK/shared/inner")
	MNT_ND=$(line_count "$T_WORK/shared/deep")
}

# ps_pause: no ps runs in the container until ps_resume: a dump that
# catches one with another process's /proc file open (seldom) makes a
# tree whose ps, restored, may never end (CRIU's restore of it as ours),
# and the container stops. The round that may have one in flight ends
# first (two more lines).
ps_pause() {
	local n
	touch "$T_WORK/shared/nops"
	n=$(line_count "$T_WORK/shared/out")
	wait_until "$TMO" has_lines "$T_WORK/shared/out" $((n + 2))
}
ps_resume() { rm -f "$T_WORK/shared/nops"; }

# criu_both_ways START CHECK: START's container (MNT_PIDNS, MNT_USERNS:
# see start_container) dumped by stasis into img1; CRIU restores it and
# CHECK PID TAG finds it going on; CRIU dumps it into img2, stasis
# restores that, and CHECK again. PROG_PID: the restored one, as the
# pidfiles say (another pid in a pid namespace of the tree's own).
criu_both_ways() {
	local start=$1 check=$2 rc pid
	"$start" || return 1
	pid=$PROG_PID
	ps_pause
	dump dump "$pid" "$T_WORK/img1" "${MNT_DUMP_EXT[@]}" || return 1
	expect_killed "$pid" || return 1
	mnt_root "$T_WORK/root2"
	mnt_counts
	# shellcheck disable=SC2046
	timeout -k 5 "$TMO" "$CRIU_BIN" restore -D "$T_WORK/img1" -d --root "$T_WORK/root2" $(mnt_restore_ext) \
		--pidfile "$T_WORK/pid1" -o "$T_LOG/criu-restore.log" -v4 > "$T_LOG/criu-restore.out" 2>&1 < /dev/null
	rc=$?
	[[ $rc == 0 ]] || { fail "CRIU could not restore stasis's images (rc $rc)" "$T_LOG/criu-restore.log"; return 1; }
	pid=$(cat "$T_WORK/pid1")
	T_PIDS+=("$pid")
	PROG_PID=$pid
	ps_resume
	"$check" "$pid" "CRIU's restore" || return 1
	ps_pause
	mkdir -p "$T_WORK/img2"
	timeout -k 5 "$TMO" "$CRIU_BIN" dump -t "$pid" -D "$T_WORK/img2" "${MNT_DUMP_EXT[@]}" \
		-o "$T_LOG/criu-dump.log" -v4 > "$T_LOG/criu-dump.out" 2>&1 < /dev/null
	rc=$?
	[[ $rc == 0 ]] || { fail "CRIU could not dump the restored container (rc $rc)" "$T_LOG/criu-dump.log"; return 1; }
	wait_gone "$pid" "$TMO" || { fail "pid $pid alive after CRIU's dump"; return 1; }
	rm -rf "$T_WORK/root2"
	mnt_root "$T_WORK/root2"
	mnt_counts
	# shellcheck disable=SC2046
	rc=$(stasis restore restore -D "$T_WORK/img2" -d --root "$T_WORK/root2" $(mnt_restore_ext) --pidfile "$T_WORK/pid2")
	[[ $rc == 0 ]] || { fail "stasis could not restore CRIU's images (rc $rc): $(error_message restore)" "$T_LOG/restore.log"; return 1; }
	pid=$(cat "$T_WORK/pid2")
	T_PIDS+=("$pid")
	PROG_PID=$pid
	ps_resume
	"$check" "$pid" "stasis's restore of CRIU's images"
}

# mntns_criu_cycle [HOOK]: the container both ways with CRIU 4.2; HOOK
# runs with its pid before the first dump, and with the restored pid and
# a tag after each restore.
mntns_criu_cycle() {
	MNT_HOOK=${1:-:} criu_both_ways cycle_start cycle_check
}
cycle_start() { start_container && "$MNT_HOOK" "$PROG_PID"; }
cycle_check() { container_goes_on "$MNT_N" "$1" "$2" && "$MNT_HOOK" "$1" "$2"; }

# Both ways with CRIU 4.2: its restore of our images, ours of its.
test_mntns_criu() {
	mntns_criu_cycle || return
	kill_leftovers
	check_sequence <(cut -d' ' -f1 "$T_WORK/shared/out")
}

# A mount of a kind stasis can't make again (a bind of a host directory
# not named external): refused in one line naming the mount point and the
# options that would help, and the container runs on.
test_mntns_refused() {
	local pid n rc
	start_container || return
	pid=$PROG_PID
	rc=$(stasis dump dump -t "$pid" -D "$T_WORK/img" --external 'mnt[/usr]:usr')
	[[ $rc != 0 ]] || { fail "a bind of a host directory that is not external was dumped"; return; }
	grep -qE "^Error: pid $pid: mount [0-9]+ at /mnt .*--external mnt\[/mnt\]:KEY.*--skip-mnt /mnt" \
		"$T_LOG/dump.stderr" || fail "no error naming /mnt and the options: $(error_message dump)"
	[[ ! -e $T_WORK/img/inventory.img ]] || fail "the refused dump left an inventory.img"
	wait_until 5 runs_freely "$pid" || { fail "the container does not run freely after the refused dump"; return; }
	n=$(line_count "$T_WORK/shared/out")
	wait_until "$TMO" has_lines "$T_WORK/shared/out" $((n + 5)) || fail "the container stopped"
	kill_leftovers
}

# --skip-mnt leaves a mount out: the restored container has none there.
test_mntns_skip() {
	local pid n rc
	start_container 'mkdir -p tmp/skipme && mount -t tmpfs none tmp/skipme' || return
	pid=$PROG_PID
	dump dump "$pid" "$T_WORK/img" "${MNT_DUMP_EXT[@]}" --skip-mnt /tmp/skipme || return
	expect_killed "$pid" || return
	mnt_root "$T_WORK/root2"
	n=$(line_count "$T_WORK/shared/out")
	# shellcheck disable=SC2046
	rc=$(stasis restore restore -D "$T_WORK/img" -d --root "$T_WORK/root2" $(mnt_restore_ext))
	[[ $rc == 0 ]] || { fail "restore exited $(rc_text "$rc"): $(error_message restore)" "$T_LOG/restore.log"; return; }
	container_goes_on "$n" "$pid" restore || return
	! grep -q " /tmp/skipme " "/proc/$pid/mountinfo" || fail "the skipped mount came back"
	kill_leftovers
}

# A restore that fails (a --root that is no directory, a missing external
# mount) leaves no mount on the host and no process.
test_mntns_failed_restore() {
	local pid rc
	start_container || return
	pid=$PROG_PID
	dump dump "$pid" "$T_WORK/img" "${MNT_DUMP_EXT[@]}" || return
	expect_killed "$pid" || return
	rc=$(stasis restore1 restore -D "$T_WORK/img" -d --root "$T_WORK/no-such-root" $(mnt_restore_ext))
	[[ $rc != 0 ]] || { fail "a restore onto a missing root succeeded"; return; }
	grep -q "no-such-root" "$T_LOG/restore1.stderr" || fail "the error does not name the root: $(error_message restore1)"
	mnt_root "$T_WORK/root2"
	rc=$(stasis restore2 restore -D "$T_WORK/img" -d --root "$T_WORK/root2" --external "mnt[usr]:/usr")
	[[ $rc != 0 ]] || { fail "a restore without an external mount's source succeeded"; return; }
	grep -q "external (key shared).*--external mnt\[shared\]:PATH" "$T_LOG/restore2.stderr" ||
		fail "the error does not name the external mount: $(error_message restore2)"
	rc=$(stasis restore3 restore -D "$T_WORK/img" -d)
	[[ $rc != 0 ]] || { fail "a restore without --root succeeded"; return; }
	grep -q -- "--root DIR" "$T_LOG/restore3.stderr" || fail "the error does not ask for --root: $(error_message restore3)"
	# (other tests of the machine mount and unmount on the host meanwhile:
	# what is ours is under T_WORK, or stasis's yard)
	[[ $(host_mounts_of "$T_WORK") == 0 ]] || fail "mounts under the work dir: $(grep "$T_WORK" /proc/self/mountinfo)"
	[[ $(host_mounts_of stasis-yard) == 0 ]] || fail "a restore's yard is on the host: $(grep stasis-yard /proc/self/mountinfo)"
	! alive "$pid" || fail "pid $pid is alive after the failed restores"
}

# Mount namespaces nested in the container's: a shell under
# unshare -m --propagation private (a child of the container's python's
# shell, as a sandbox is) with a tmpfs of its own holding a file it keeps
# reading, and (two levels) one more below it with a tmpfs of its own on
# top. Each counts lines into /mnt, pausing on a FIFO rather than forking
# sleep (1 run in 10 of CRIU's dump of them, restored by stasis, lost
# both shells: a shell caught forking, not a matter of mounts, it seems);
# after the restore each is in its own
# namespace again, sees its tmpfs and file, counts on, and the container
# does not see their mounts.
NESTED_CMD='mkdir -p /tmp/in
/usr/bin/unshare -m --propagation private /bin/sh -c '"'"'
mount -t tmpfs -o size=1m inner /tmp/in
echo inner-file > /tmp/in/f
/usr/bin/mkfifo /tmp/in/tick
mkdir /tmp/in/deep
/usr/bin/unshare -m --propagation private /bin/sh -c "
mount -t tmpfs -o size=1m deep /tmp/in/deep
echo deep-file > /tmp/in/deep/g
i=0; while :; do i=\$((i + 1)); read a < /tmp/in/f; read b < /tmp/in/deep/g; echo \"\$i \$a \$b\" >> /mnt/deep; read -t 0.1 t <> /tmp/in/tick; done
" &
i=0; while :; do i=$((i + 1)); read a < /tmp/in/f; echo "$i $a" >> /mnt/inner; read -t 0.1 t <> /tmp/in/tick; done
'"'"' < /dev/null > /dev/null 2>&1 &'

# nested_ok FILE WORDS N: FILE grew past N lines, all of them "COUNT WORDS", in sequence.
nested_goes_on() {
	local f=$T_WORK/shared/$1 words=$2 n=$3 bad
	wait_until "$TMO" has_lines "$f" $((n + 10)) || { fail "$4: $1 stopped counting" "$f"; return 1; }
	bad=$(cut -d' ' -f2- "$f" | grep -vxF "$words" | head -n1)
	[[ -z $bad ]] || { fail "$4: $1 has \"$bad\"" "$f"; return 1; }
	check_sequence <(cut -d' ' -f1 "$f")
}

# The pid of the shell that writes FILE (inner or deep: the container's
# python's child, or its child).
writer_of() {
	local p
	for p in $(pgrep -P "$PROG_PID" -x sh) $(pgrep -P "$(pgrep -d, -P "$PROG_PID" -x sh)" -x sh); do
		grep -q " /tmp/in " "/proc/$p/mountinfo" 2> /dev/null || continue
		if [[ $1 == deep ]]; then grep -q " /tmp/in/deep " "/proc/$p/mountinfo" && echo "$p"
		else grep -q " /tmp/in/deep " "/proc/$p/mountinfo" || echo "$p"; fi
	done | head -n1
}

# Each writer in a mount namespace of its own, distinct from the container's and each other's.
nested_namespaces_ok() {
	local inner deep cont=$1 tag=$2
	inner=$(writer_of inner) deep=$(writer_of deep)
	if [[ -z $inner || -z $deep ]]; then
		local p
		for p in $(pgrep -x sh); do echo "== $p $(cat "/proc/$p/cmdline" | tr '\0' ' ')"; cat "/proc/$p/mountinfo"; done > "$T_LOG/shells.txt" 2>&1
		fail "$tag: no writer in a nested namespace (inner '$inner', deep '$deep')" "$T_LOG/shells.txt"
		return 1
	fi
	T_PIDS+=("$inner" "$deep")
	local a b c
	a=$(readlink "/proc/$cont/ns/mnt") b=$(readlink "/proc/$inner/ns/mnt") c=$(readlink "/proc/$deep/ns/mnt")
	[[ $a != "$b" && $b != "$c" && $a != "$c" ]] || { fail "$tag: namespaces not distinct: $a $b $c"; return 1; }
	! grep -q " /tmp/in " "/proc/$cont/mountinfo" || { fail "$tag: the container sees the nested tmpfs"; return 1; }
	cat "/proc/$inner/mountinfo" > "$T_LOG/inner.mountinfo"
	cat "/proc/$deep/mountinfo" > "$T_LOG/deep.mountinfo"
	grep -q " /tmp/in .* - tmpfs " "$T_LOG/inner.mountinfo" ||
		{ fail "$tag: no tmpfs on /tmp/in in the inner namespace (pid $inner)" "$T_LOG/inner.mountinfo"; return 1; }
	grep -q " /tmp/in/deep .* - tmpfs " "$T_LOG/deep.mountinfo" ||
		{ fail "$tag: no tmpfs on /tmp/in/deep in the deep one (pid $deep)" "$T_LOG/deep.mountinfo"; return 1; }
	! grep -q " /tmp/in/deep " "/proc/$inner/mountinfo" || fail "$tag: the inner namespace sees the deep tmpfs"
}

start_nested() {
	start_container : "$NESTED_CMD" || return 1
	wait_until "$TMO" has_lines "$T_WORK/shared/deep" 3 || { fail "the nested shells wrote nothing" "$T_LOG/container.err"; return 1; }
	nested_namespaces_ok "$PROG_PID" start
}

nested_restored_ok() {
	local pid=$1 tag=$2 n=$3 ni=$4 nd=$5
	container_goes_on "$n" "$pid" "$tag" || return 1
	nested_namespaces_ok "$pid" "$tag" || return 1
	nested_goes_on inner "inner-file" "$ni" "$tag" || return 1
	nested_goes_on deep "inner-file deep-file" "$nd" "$tag" || return 1
	[[ $(host_mounts_of "$T_WORK/root2") == 0 ]] || fail "$tag left mounts on the host: $(grep "$T_WORK" /proc/self/mountinfo)"
}

# Processes whose mounts are of T_WORK/root2 or a restore's yard (what
# a restore onto root2 made).
root2_users() {
	local fs_mnt rel
	fs_mnt=$(findmnt -n -o TARGET -T "$T_WORK")
	rel=${T_WORK#"${fs_mnt%/}"}
	grep -lF -e "$rel/root2 " -e stasis-yard /proc/[0-9]*/mountinfo 2> /dev/null | cut -d/ -f3 | tr '\n' ' '
}

# left_nothing TAG: the failed restore TAG left no process (root2_users)
# and no mount on the host.
left_nothing() {
	wait_until 5 eval '[[ -z $(root2_users) ]]' || { fail "the $1 restore left processes: $(root2_users)"; return 1; }
	[[ $(host_mounts_of "$T_WORK") == 0 && $(host_mounts_of stasis-yard) == 0 ]] ||
		{ fail "the $1 restore left mounts on the host: $(grep -e "$T_WORK" -e stasis-yard /proc/self/mountinfo)"; return 1; }
}

# A restore of T_WORK/img onto root2 cut once every namespace is made
# and every process in it: nothing left, on the host or anywhere.
nested_cut_leaves_nothing() {
	# shellcheck disable=SC2046
	stasis_killed_at cut task-rebuilt:2 restore -D "$T_WORK/img" -d --root "$T_WORK/root2" $(mnt_restore_ext) || return 1
	grep -q "mount namespace [0-9]* made" "$T_LOG/cut.log" ||
		{ fail "the cut restore made no nested namespace" "$T_LOG/cut.log"; return 1; }
	left_nothing cut
}

test_mntns_nested() {
	local pid n ni nd rc
	start_nested || return
	pid=$PROG_PID
	dump dump "$pid" "$T_WORK/img" "${MNT_DUMP_EXT[@]}" || return
	expect_killed "$pid" || return
	[[ $(ls "$T_WORK/img"/mountpoints-*.img | wc -l) == 3 ]] || { fail "not 3 mountpoints images: $(ls "$T_WORK/img")"; return; }
	mnt_root "$T_WORK/root2"
	nested_cut_leaves_nothing || return
	wait_until 5 not_alive "$pid" || { fail "the cut restore left pid $pid"; return; }
	n=$(line_count "$T_WORK/shared/out") ni=$(line_count "$T_WORK/shared/inner") nd=$(line_count "$T_WORK/shared/deep")
	# shellcheck disable=SC2046
	rc=$(stasis restore restore -D "$T_WORK/img" -d --root "$T_WORK/root2" $(mnt_restore_ext))
	[[ $rc == 0 ]] || { fail "restore exited $(rc_text "$rc"): $(error_message restore)" "$T_LOG/restore.log"; return; }
	nested_restored_ok "$pid" restore "$n" "$ni" "$nd"
	kill_leftovers
}

# The same, both ways with CRIU: its restore of our images, ours of its.
nested_check() { nested_restored_ok "$1" "$2" "$MNT_N" "$MNT_NI" "$MNT_ND"; }

test_mntns_nested_criu() {
	criu_both_ways start_nested nested_check || return
	kill_leftovers
}

# A nested namespace made with --propagation unchanged: its /tmp is a
# peer of the container's shared /tmp. After the restore they are peers
# again (one peer group across the two namespaces): a mount the container
# makes under its /tmp shows in the nested one, not on the host.
PEER_CMD='mount --make-shared /tmp
mkdir -p /tmp/peer
/usr/bin/mkfifo /tmp/tick
/usr/bin/unshare -m --propagation unchanged /bin/sh -c '"'"'i=0; while :; do i=$((i + 1)); echo "$i" >> /mnt/peer; read -t 0.1 t <> /tmp/tick; done'"'"' < /dev/null > /dev/null 2>&1 &'

# The container's (pid $1) child shell in a mount namespace of its own.
nested_shell() {
	local p
	for p in $(pgrep -P "$1" -x sh); do
		[[ $(readlink "/proc/$p/ns/mnt") != "$(readlink "/proc/$1/ns/mnt")" ]] && echo "$p"
	done | head -n1
}

test_mntns_nested_shared() {
	local pid n rc sh a b group
	start_container : "$PEER_CMD" || return
	pid=$PROG_PID
	wait_until "$TMO" has_lines "$T_WORK/shared/peer" 3 || { fail "the nested shell wrote nothing"; return; }
	dump dump "$pid" "$T_WORK/img" "${MNT_DUMP_EXT[@]}" || return
	expect_killed "$pid" || return
	mnt_root "$T_WORK/root2"
	n=$(line_count "$T_WORK/shared/peer")
	# shellcheck disable=SC2046
	rc=$(stasis restore restore -D "$T_WORK/img" -d --root "$T_WORK/root2" $(mnt_restore_ext))
	[[ $rc == 0 ]] || { fail "restore exited $(rc_text "$rc"): $(error_message restore)" "$T_LOG/restore.log"; return; }
	wait_until "$TMO" has_lines "$T_WORK/shared/peer" $((n + 10)) || { fail "the nested shell did not go on"; return; }
	sh=$(nested_shell "$pid")
	[[ -n $sh ]] || { fail "no shell in a namespace of its own after the restore"; return; }
	T_PIDS+=("$sh")
	a=$(mnt_field "$pid" /tmp) b=$(mnt_field "$sh" /tmp)
	group=$(grep -o 'shared:[0-9]*' <<< "$a" | cut -d: -f2)
	[[ -n $group && $b == *"shared:$group "* ]] || { fail "/tmp of the container ($a) and of the nested namespace ($b) are not peers"; return; }
	nsenter -t "$pid" -m mount -t tmpfs late /tmp/peer || { fail "can't mount in the restored container"; return; }
	[[ -n $(mnt_field "$sh" /tmp/peer) ]] || fail "a mount on the container's /tmp did not reach the nested namespace: $(grep /tmp "/proc/$sh/mountinfo")"
	! grep -q " late " /proc/self/mountinfo || fail "the container's mount reached the host"
	kill_leftovers
}

# A process of a tree whose root shares our mount namespace in one of its
# own (unshare -m under a host shell): refused as CRIU does, in one line,
# and the tree runs on.
test_mntns_nested_host_root() {
	local pid rc n
	start_prog hostroot /bin/sh -c '
unshare -m --propagation private /bin/sh -c "mount -t tmpfs x \"\$1\"; i=0; while :; do i=\$((i+1)); echo \$i >> \"\$1/../count\"; sleep 0.1; done" sh "$1/in" &
wait' sh "$T_WORK"
	mkdir -p "$T_WORK/in"
	pid=$PROG_PID
	wait_until "$TMO" has_lines "$T_WORK/count" 3 || { fail "the nested shell wrote nothing" "$T_LOG/hostroot.err"; return; }
	rc=$(stasis dump dump -t "$pid" -D "$T_WORK/img")
	[[ $rc != 0 ]] || { fail "a nested mount namespace under a root in ours was dumped"; return; }
	grep -qE "^Error: pid [0-9]+ is in a mount namespace of its own, and its root \(pid $pid\) in stasis's" \
		"$T_LOG/dump.stderr" || fail "no error naming the nested process: $(error_message dump)"
	n=$(line_count "$T_WORK/count")
	wait_until "$TMO" has_lines "$T_WORK/count" $((n + 5)) || fail "the tree stopped after the refused dump"
	kill_leftovers
}

# --link-remap in a container (unshare -m, pivot_root): a busybox shell
# holds fd 3 on /d/e/f, deleted but still named /keep, and writes what it
# reads through it and the inodes of both each round to /out. The link
# remap is made inside the container's root (the paths of its files are
# its own), never in the host's same-named directory; the restore (onto
# the same root, where the link is) gives it the same file back.
# lr_container ROOT [AFTER_UNLINK_CMD [BEFORE_OPEN_CMD]]: PROG_PID is the
# shell; BEFORE_OPEN_CMD may set K, the other name (/keep).
lr_container() {
	local r=$1 c
	command -v busybox > /dev/null || { skip "no busybox (apt-get install busybox-static)"; return 1; }
	mnt_root "$r" || { fail "harness: could not make the busybox root"; return 1; }
	for c in rm rmdir ln stat mkdir mount; do ln -s busybox "$r/bin/$c"; done
	mkdir -p "$r/d/e"
	echo lr-data > "$r/keep"
	ln "$r/keep" "$r/d/e/f"
	# the container's own busybox shell (the host's is out of its reach)
	start_prog lrc unshare -m --propagation private /bin/sh -c '
set -e
mount --bind "$1" "$1"
cd "$1"
mount -t proc proc proc
pivot_root . old
/bin/umount -l /old
exec /bin/sh -c "$2" < /dev/null > /dev/null 2>&1' sh "$r" '
K=/keep
'"${3:-:}"'
exec 3< /d/e/f
rm /d/e/f
'"${2:-:}"'
while :; do
	echo "$(cat /proc/self/fd/3) $(stat -L -c %i /proc/self/fd/3) $(stat -c %i $K)" >> /out
	sleep 0.1
done'
	wait_until "$TMO" has_lines "$r/out" 3 || { fail "the container wrote nothing" "$T_LOG/lrc.err"; return 1; }
}

# lr_cycle ROOT: dumped with --link-remap (0), or refused in one line (1,
# the tree running on); restored onto ROOT, reading its file as before.
lr_cycle() {
	local r=$1 pid=$PROG_PID rc n ino
	rc=$(stasis dump dump -t "$pid" -D "$T_WORK/img" --link-remap)
	if [[ $rc != 0 ]]; then
		[[ $(grep -c '^Error' "$T_LOG/dump.stderr") == 1 ]] || fail "the refused dump said: $(cat "$T_LOG/dump.stderr")"
		n=$(line_count "$r/out")
		wait_until "$TMO" has_lines "$r/out" $((n + 3)) || fail "the container stopped after the refused dump"
		return 1
	fi
	expect_killed "$pid" || return 2
	ls "$r"/d/e/link_remap.* "$r"/d/link_remap.* > "$T_WORK/links" 2> /dev/null
	[[ -s $T_WORK/links ]] || { fail "no link remap in the container's root: $(ls -R "$r" | head -c 300)"; return 2; }
	n=$(line_count "$r/out")
	rc=$(stasis restore restore -D "$T_WORK/img" -d --root "$r")
	[[ $rc == 0 ]] || { fail "restore exited $(rc_text "$rc"): $(error_message restore)" "$T_LOG/restore.log"; return 2; }
	wait_until "$TMO" has_lines "$r/out" $((n + 3)) || { fail "the restored container wrote nothing"; return 2; }
	ino=$(stat -c %i "$r/keep")
	[[ $(tail -n 1 "$r/out") == "lr-data $ino $ino" ]] ||
		fail "the restored shell's fd 3 is not /keep's file: $(tail -n 1 "$r/out") (/keep: $ino)"
	[[ ! -e $(head -n 1 "$T_WORK/links") ]] || fail "the restore left the link remap $(cat "$T_WORK/links")"
	kill_leftovers
}

test_mntns_link_remap() {
	local before
	before=$(ls -d /d/e/link_remap.* /d/link_remap.* /link_remap.* 2> /dev/null)
	lr_container "$T_WORK/root1" || return
	lr_cycle "$T_WORK/root1"
	[[ $? != 1 ]] || fail "the dump was refused: $(error_message dump)"
	[[ $(ls -d /d/e/link_remap.* /d/link_remap.* /link_remap.* 2> /dev/null) == "$before" ]] ||
		fail "a link remap was made in the host's tree: $(ls -d /d/e/link_remap.* /d/link_remap.* /link_remap.* 2> /dev/null)"
}

# The same, the file's directory replaced in the container by an
# absolute symlink to a directory of the host: the link is made inside
# the container's root (in /d, the symlink's target not being there),
# never in the host's directory.
test_mntns_link_remap_escape() {
	local h=$T_WORK/host-target
	mkdir -p "$h"
	lr_container "$T_WORK/root1" "rmdir /d/e; ln -s $h /d/e" || return
	lr_cycle "$T_WORK/root1"
	[[ $? != 1 ]] || fail "the dump was refused: $(error_message dump)"
	[[ -z $(ls -A "$h") ]] || fail "the container's symlink led a link remap into the host: $(ls -A "$h")"
}

run_test --needs mntroot mntns.container test_mntns_container
run_test --needs mntroot mntns.nested test_mntns_nested
run_test --needs mntroot mntns.nested_host_root test_mntns_nested_host_root
run_test --needs mntroot mntns.nested_shared test_mntns_nested_shared

run_test --needs mntroot mntns.pidns test_mntns_pidns
run_test --needs mntroot mntns.propagation test_mntns_propagation
run_test --needs mntroot mntns.subdir test_mntns_subdir
run_test --needs mntroot mntns.rpc test_mntns_rpc
run_test --needs mntroot mntns.refused test_mntns_refused
run_test --needs mntroot mntns.skip test_mntns_skip
run_test --needs mntroot mntns.failed_restore test_mntns_failed_restore
# The same in a tmpfs the container mounted, its directory removed too
# (zdtm's unlink_regular00): the link remap made in the tmpfs is in the
# tmpfs's archive (saved after the fds, as CRIU does), and the restored
# shell reads the same file as the tmpfs's other name.
test_mntns_link_remap_tmpfs() {
	local r=$T_WORK/root1 pid rc n tarimg
	lr_container "$r" "rmdir /d/e" \
		"mount -t tmpfs none /d; mkdir /d/e; echo lr-data > /d/e/f; ln /d/e/f /d/k; K=/d/k" || return
	pid=$PROG_PID
	dump dump "$pid" "$T_WORK/img" --link-remap || return
	expect_killed "$pid" || return
	for tarimg in "$T_WORK"/img/tmpfs-dev-*.tar.gz.img; do
		tar -tzf "$tarimg" | grep -q 'link_remap\.' && break
		tarimg=
	done
	[[ -n $tarimg ]] || { fail "no tmpfs archive holds the link remap: $(for t in "$T_WORK"/img/tmpfs-dev-*.tar.gz.img; do tar -tzf "$t"; done | paste -sd' ')"; return; }
	n=$(line_count "$r/out")
	rc=$(stasis restore restore -D "$T_WORK/img" -d --root "$r")
	[[ $rc == 0 ]] || { fail "restore exited $(rc_text "$rc"): $(error_message restore)" "$T_LOG/restore.log"; return; }
	wait_until "$TMO" has_lines "$r/out" $((n + 3)) || { fail "the restored container wrote nothing"; return; }
	[[ $(tail -n 1 "$r/out") =~ ^lr-data\ ([0-9]+)\ ([0-9]+)$ && ${BASH_REMATCH[1]} == "${BASH_REMATCH[2]}" ]] ||
		fail "the restored shell's fd 3 is not /d/k's file: $(tail -n 1 "$r/out")"
	kill_leftovers
}

run_test --needs mntroot mntns.link_remap test_mntns_link_remap
run_test --needs mntroot mntns.link_remap_tmpfs test_mntns_link_remap_tmpfs
run_test --needs mntroot mntns.link_remap_escape test_mntns_link_remap_escape
