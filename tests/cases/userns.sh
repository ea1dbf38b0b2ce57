# A tree whose root has a user namespace of its own (src/ns/user.c), as
# an unprivileged user makes it (`unshare -U -r`, rootless containers):
# the dump saves its maps (userns-ID.img) and the creds as seen inside;
# the restore makes a new one with the same maps, the tree's other
# namespaces owned by it, and the processes are root inside and the user
# outside again. A container (user, pid and mount namespaces) both ways
# with CRIU; what can't be made again is refused by name.

USERNS_UID=1000		# the user who makes the namespaces (uid_map "0 1000 1")

# AS_UID CMD...: CMD as USERNS_UID, no supplementary groups, with its
# login uid where ours is unset (set once, then kept: the restored task
# writes it back inside, as its namespace names it).
AS_UID=(sh -c 'echo "$1" > /proc/self/loginuid 2> /dev/null; shift; exec "$@"' sh "$USERNS_UID"
	setpriv --reuid "$USERNS_UID" --regid "$USERNS_UID" --clear-groups)

userns_ok() {
	getent passwd "$USERNS_UID" > /dev/null || { skip "no user $USERNS_UID here"; return 1; }
	"${AS_UID[@]}" unshare -U -r true 2> /dev/null ||
		{ skip "uid $USERNS_UID can't make a user namespace here (user namespaces off?)"; return 1; }
	chmod 711 "$T_WORK"
	mkdir -m 777 "$T_WORK/u"
}

# What of pid's user namespace must come back: its maps, setgroups, the
# ids, capabilities and login uid of pid as we see them.
# CRIU's images have no setgroups (its restore leaves "allow"): NOSG=1
# leaves it out.
userns_facts() {
	local pid=$1
	cat "/proc/$pid/uid_map" "/proc/$pid/gid_map"
	[[ -n ${NOSG:-} ]] || cat "/proc/$pid/setgroups"
	grep -E '^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb):' "/proc/$pid/status"
	cat "/proc/$pid/loginuid"
}

# pid is in a user namespace that is not ours, a child of ours.
own_userns() {
	[[ $(readlink "/proc/$1/ns/user") != "$(readlink /proc/self/ns/user)" ]] ||
		fail "pid $1 was restored into our user namespace"
}

# The counter: a shell, root in the user namespace unshare made for it,
# printing its count and its ids as it sees them, and appending the
# count to a file it made (owned by the user outside).
start_userns_counter() {
	userns_ok || return
	start_prog counter "${AS_UID[@]}" unshare -U -r --fork sh -c '
i=0
while :; do i=$((i+1)); echo "$i $(id -u) $(id -g)"; echo $i >> "$1/own"; sleep 0.05; done' sh "$T_WORK/u"
	wait_until "$TMO" has_lines "$T_LOG/counter.out" 5 || { fail "the counter printed nothing" "$T_LOG/counter.err"; return 1; }
	# sh execs setpriv, which execs unshare, which forks the shell: the
	# tree's root is unshare
	SH_PID=$(tr -d " " < "/proc/$PROG_PID/task/$PROG_PID/children")
}

# Each line after the first n says uid and gid 0.
root_inside_after() {
	local bad
	bad=$(tail -n +"$(($1 + 1))" "$T_LOG/counter.out" | grep -v ' 0 0$' | head -n1)
	[[ -z $bad ]] || fail "after the restore the counter saw itself as: $bad" "$T_LOG/counter.out"
}

test_userns_alone() {
	local pid n rc before own
	start_userns_counter || return
	pid=$PROG_PID
	before=$(userns_facts "$SH_PID")
	[[ $(status_field "$SH_PID" Uid) == "$USERNS_UID" ]] || { fail "harness: the shell is not uid $USERNS_UID outside"; return; }
	note "login uid $(cat "/proc/$SH_PID/loginuid")"

	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	ls "$T_WORK/img"/userns-*.img > /dev/null 2>&1 || { fail "the dump wrote no userns image"; return; }
	n=$(line_count "$T_LOG/counter.out")
	own=$(line_count "$T_WORK/u/own")
	rc=$(stasis restore restore -D "$T_WORK/img" -d)
	[[ $rc == 0 ]] || { fail "restore exited $(rc_text "$rc"): $(error_message restore)" "$T_LOG/restore.log"; return; }
	wait_until "$TMO" has_lines "$T_LOG/counter.out" $((n + 5)) || { fail "the counter did not go on"; return; }
	own_userns "$SH_PID"
	[[ $(userns_facts "$SH_PID") == "$before" ]] ||
		fail "the shell's user namespace, ids or login uid differ: $(diff <(echo "$before") <(userns_facts "$SH_PID") | tr '\n' ' ')"
	[[ $(nsenter -t "$SH_PID" -U id -u) == 0 ]] || fail "id inside the restored namespace is not root"
	wait_until "$TMO" has_lines "$T_WORK/u/own" $((own + 5)) || fail "the shell no longer writes its own file"
	root_inside_after "$n"
	kill_leftovers
	check_sequence <(cut -d' ' -f1 "$T_LOG/counter.out")
}

# A web server and a pipeline in user and pid namespaces of their own
# (the shell is pid 1 there): python3's http.server, its log piped
# through cat into a file the user owns, served over TCP before and
# after the restore.
test_userns_pidns() {
	local pid n rc before port page
	userns_ok || return
	port=$((20000 + RANDOM % 20000))
	echo "page-$port" > "$T_WORK/u/page"
	chmod 644 "$T_WORK/u/page"
	start_prog web "${AS_UID[@]}" unshare -U -r -p -f sh -c '
exec > /dev/null 2>&1; cd "$1" && python3 -u -m http.server "$2" --bind 127.0.0.1 2>&1 | cat > log' sh "$T_WORK/u" "$port"
	wait_until "$TMO" eval 'curl -sf "http://127.0.0.1:$port/page" > /dev/null' ||
		{ fail "the server did not answer" "$T_LOG/web.err"; return; }
	pid=$(tr -d " " < "/proc/$PROG_PID/task/$PROG_PID/children")	# the shell: pid 1
	[[ $(ns_pid "$pid") == 1 ]] || { fail "harness: the shell is not pid 1 of its namespace"; return; }
	before=$(userns_facts "$pid")
	dump dump "$pid" "$T_WORK/img" || return
	wait_gone "$pid" || { fail "pid $pid alive after the dump"; return; }
	n=$(line_count "$T_WORK/u/log")
	rc=$(stasis restore restore -D "$T_WORK/img" -d --pidfile "$T_WORK/pid")
	[[ $rc == 0 ]] || { fail "restore exited $(rc_text "$rc"): $(error_message restore)" "$T_LOG/restore.log"; return; }
	pid=$(cat "$T_WORK/pid")
	T_PIDS+=("$pid")
	page=$(curl -sf --max-time 10 "http://127.0.0.1:$port/page")
	[[ $page == "page-$port" ]] || { fail "the restored server answered '$page'"; return; }
	wait_until "$TMO" has_lines "$T_WORK/u/log" $((n + 1)) || fail "the server's log pipeline did not go on"
	own_userns "$pid"
	[[ $(ns_pid "$pid") == 1 ]] || fail "the restored shell is not pid 1 of its namespace"
	[[ $(userns_facts "$pid") == "$before" ]] ||
		fail "the user namespace or ids differ: $(diff <(echo "$before") <(userns_facts "$pid") | tr '\n' ' ')"
	[[ $(nsenter -t "$pid" -U id -u) == 0 ]] || fail "id inside the restored namespace is not root"
	[[ $(ns_owner "$pid" pid) == "$(stat -L -c %i "/proc/$pid/ns/user")" ]] ||
		fail "the pid namespace is not owned by the tree's user namespace"
	[[ $(status_field "$(pgrep -P "$pid" -f http.server)" Uid) == "$USERNS_UID" ]] ||
		fail "the restored server is not uid $USERNS_UID outside"
	kill -9 "$pid"
}

# Maps of several lines written by root (a range of 1000 ids at 100000,
# another at 200000; setgroups allowed), a root shell inside and a child
# of it that is uid 1500 and in groups 1001 and 5 there (200500 outside):
# the maps, setgroups, and each process's ids and groups come back.
test_userns_maps() {
	local pid n rc child before_root before_child
	userns_ok || return
	mkfifo "$T_WORK/go"
	# python: its capabilities in the new namespace last until it execs
	start_prog maps "$PYTHON" -c 'import ctypes, os, sys
if ctypes.CDLL(None, use_errno=True).unshare(0x10000000):
    sys.exit("unshare: %s" % os.strerror(ctypes.get_errno()))
open(sys.argv[1]).read()
os.setgroups([])
os.setresgid(0, 0, 0)
os.setresuid(0, 0, 0)
os.execvp("sh", ["sh", "-c", sys.argv[2]])' "$T_WORK/go" '
setpriv --reuid 1500 --regid 1500 --groups 1001,5 sh -c "while :; do id -G > /dev/null; sleep 0.05; done" &
i=0
while :; do i=$((i+1)); echo $i $(id -u); sleep 0.05; done'
	pid=$PROG_PID
	wait_until "$TMO" eval '[[ $(readlink "/proc/$pid/ns/user") != "$(readlink /proc/self/ns/user)" ]]' ||
		{ fail "harness: no user namespace made" "$T_LOG/maps.err"; return; }
	# one write(2) each, as the kernel wants
	"$PYTHON" -c 'import os, sys
for f in ("uid_map", "gid_map"):
    fd = os.open("/proc/%s/%s" % (sys.argv[1], f), os.O_WRONLY)
    os.write(fd, b"0 100000 1000\n1000 200000 1000\n")' "$pid" || { fail "harness: can't write the maps"; return; }
	echo go > "$T_WORK/go"
	wait_until "$TMO" has_lines "$T_LOG/maps.out" 5 || { fail "the counter printed nothing" "$T_LOG/maps.err"; return; }
	child=$(pgrep -P "$pid" -x sh)
	[[ $(status_field "$child" Uid) == 200500 ]] || { fail "harness: the child is uid $(status_field "$child" Uid) outside"; return; }
	before_root=$(userns_facts "$pid")
	before_child=$(userns_facts "$child")
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	n=$(line_count "$T_LOG/maps.out")
	rc=$(stasis restore restore -D "$T_WORK/img" -d)
	[[ $rc == 0 ]] || { fail "restore exited $(rc_text "$rc"): $(error_message restore)" "$T_LOG/restore.log"; return; }
	wait_until "$TMO" has_lines "$T_LOG/maps.out" $((n + 5)) || { fail "the counter did not go on"; return; }
	[[ $(userns_facts "$pid") == "$before_root" ]] ||
		fail "the root's namespace or ids differ: $(diff <(echo "$before_root") <(userns_facts "$pid") | tr '\n' ' ')"
	[[ $(userns_facts "$child") == "$before_child" ]] ||
		fail "the child's ids differ: $(diff <(echo "$before_child") <(userns_facts "$child") | tr '\n' ' ')"
	[[ $(grep -c -v ' 0$' "$T_LOG/maps.out") == 0 ]] || fail "the root shell saw itself as another uid than 0"
	kill_leftovers
	check_sequence <(cut -d' ' -f1 "$T_LOG/maps.out")
}

# The inode of the user namespace that owns pid's namespace of kind.
ns_owner() {
	"$PYTHON" -c 'import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
print(os.fstat(fcntl.ioctl(fd, 0xb701)).st_ino)' "/proc/$1/ns/$2"
}

# Network, UTS and IPC namespaces of the tree's own, in its user
# namespace: made again owned by the new one, with the host name, the
# loopback up and a message queue (owned by root inside) as they were.
test_userns_other_ns() {
	local pid n rc k user
	userns_ok || return
	start_prog counter "${AS_UID[@]}" unshare -U -r -n -u -i --fork sh -c '
hostname box-in-userns && ip link set lo up && ipcmk -Q > /dev/null || exit 1
i=0
while :; do i=$((i+1)); echo "$i $(id -u) $(id -g) $(hostname) $(ipcs -q | grep -c "^0x")"; sleep 0.05; done'
	wait_until "$TMO" has_lines "$T_LOG/counter.out" 5 || { fail "the counter printed nothing" "$T_LOG/counter.err"; return; }
	pid=$PROG_PID
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	n=$(line_count "$T_LOG/counter.out")
	rc=$(stasis restore restore -D "$T_WORK/img" -d)
	[[ $rc == 0 ]] || { fail "restore exited $(rc_text "$rc"): $(error_message restore)" "$T_LOG/restore.log"; return; }
	wait_until "$TMO" has_lines "$T_LOG/counter.out" $((n + 5)) || { fail "the counter did not go on"; return; }
	own_userns "$pid"
	user=$(stat -L -c %i "/proc/$pid/ns/user")
	for k in net uts ipc; do
		[[ $(readlink "/proc/$pid/ns/$k") != "$(readlink "/proc/self/ns/$k")" ]] || fail "the $k namespace is ours"
		[[ $(ns_owner "$pid" "$k") == "$user" ]] || fail "the $k namespace is not owned by the tree's user namespace"
	done
	local bad
	bad=$(tail -n +"$((n + 1))" "$T_LOG/counter.out" | grep -v ' 0 0 box-in-userns 1$' | head -n1)
	[[ -z $bad ]] || fail "after the restore the counter saw: $bad" "$T_LOG/counter.out"
	[[ $(nsenter -t "$pid" -n ip -o link show lo) == *LOWER_UP* ]] || fail "the loopback is not up"
	kill_leftovers
	check_sequence <(cut -d' ' -f1 "$T_LOG/counter.out")
}

# The container of mntns.sh (a busybox root, proc, tmpfs, devpts, binds,
# python on a pty), made by the user in user, pid and mount namespaces
# of its own: python is pid 1 and root inside, the user outside.

userns_container_restored() {
	local pid=$1 before=$2 tag=$3
	[[ $(userns_facts "$pid") == "$before" ]] ||
		fail "$tag: the user namespace or ids differ: $(diff <(echo "$before") <(userns_facts "$pid") | tr '\n' ' ')"
	own_userns "$pid"
	[[ $(ns_pid "$pid") == 1 ]] || fail "$tag: the restored python is not pid 1 of its namespace: $(ns_pid "$pid")"
	local owner k user
	owner=$(nsenter -t "$pid" -U -p -m sh -c 'id -u; readlink /proc/1/ns/user' 2> /dev/null | head -n1)
	[[ $owner == 0 ]] || fail "$tag: id inside the restored namespaces says '$owner', not root"
	user=$(stat -L -c %i "/proc/$pid/ns/user")
	for k in mnt pid; do
		[[ $(ns_owner "$pid" "$k") == "$user" ]] || fail "$tag: the $k namespace is not owned by the tree's user namespace"
	done
}

userns_facts_before() { BEFORE=$(userns_facts "$1"); }

test_userns_container() {
	local BEFORE
	userns_ok || return
	MNT_USERNS=$USERNS_UID mntns_pidns_cycle userns_facts_before || return
	userns_container_restored "$PROG_PID" "$BEFORE" restore
	[[ $(status_field "$PROG_PID" Uid) == "$USERNS_UID" ]] ||
		fail "the restored python is uid $(status_field "$PROG_PID" Uid) outside"
	kill -9 "$PROG_PID"
	check_sequence <(cut -d' ' -f1 "$T_WORK/shared/out")
}

# The container made by the user (user, pid and mount namespaces), with
# mount namespaces nested in it, as a service with a private /tmp has:
# mntns.sh's two levels of unshare -m under its python's shell, each with
# a tmpfs of its own, the inner shell keeping its file open (fd 3).
# After the restore each shell is in its own mount namespace again, owned
# by the tree's new user namespace (made from inside it, as unshare -m
# made them), sees its tmpfs and file, counts on, and is the user outside.
USERNS_NESTED_CMD=${NESTED_CMD/echo inner-file > \/tmp\/in\/f/echo inner-file > /tmp/in/f; exec 3< /tmp/in/f}

userns_nested_start() {
	start_container : "$USERNS_NESTED_CMD" || return 1
	wait_until "$TMO" has_lines "$T_WORK/shared/deep" 3 || { fail "the nested shells wrote nothing" "$T_LOG/container.err"; return 1; }
	nested_namespaces_ok "$PROG_PID" start || return 1
	BEFORE=$(userns_facts "$PROG_PID")
	BEFORE_INNER=$(userns_facts "$(writer_of inner)")
}

# userns_nested_ok PID TAG: the container (python, PID) and its nested
# namespaces restored in a user namespace of their own.
userns_nested_ok() {
	nested_restored_ok "$1" "$2" "$MNT_N" "$MNT_NI" "$MNT_ND" || return 1
	userns_container_restored "$1" "$BEFORE" "$2"
	userns_nested_views "$@"
}

# userns_nested_views PID TAG: the nested shells under PID (the tree's
# root) in mount namespaces owned by its user namespace, the inner one
# with its ids and fd 3, the tmpfs seen inside and not by PID.
userns_nested_views() {
	local pid=$1 tag=$2 inner deep user p
	inner=$(writer_of inner) deep=$(writer_of deep)
	user=$(stat -L -c %i "/proc/$pid/ns/user")
	for p in "$inner" "$deep"; do
		[[ $(stat -L -c %i "/proc/$p/ns/user") == "$user" ]] || fail "$tag: pid $p is not in the tree's user namespace"
		[[ $(ns_owner "$p" mnt) == "$user" ]] ||
			fail "$tag: the mount namespace of pid $p is not owned by the tree's user namespace"
		[[ $(status_field "$p" Uid) == "${MNT_USERNS:-0}" ]] || fail "$tag: pid $p is uid $(status_field "$p" Uid) outside"
	done
	[[ $(userns_facts "$inner") == "$BEFORE_INNER" ]] ||
		fail "$tag: the inner shell's ids differ: $(diff <(echo "$BEFORE_INNER") <(userns_facts "$inner") | tr '\n' ' ')"
	[[ $(readlink "/proc/$inner/fd/3") == /tmp/in/f && $(cat "/proc/$inner/fd/3") == inner-file ]] ||
		fail "$tag: the inner shell's fd 3 is $(readlink "/proc/$inner/fd/3") ($(cat "/proc/$inner/fd/3" 2>&1))"
	# its tmpfs's files are root's inside, the user's outside, as they were
	[[ $(stat -c %u:%g "/proc/$inner/root/tmp/in/f") == "${MNT_USERNS:-0}:${MNT_USERNS:-0}" ]] ||
		fail "$tag: /tmp/in/f of the inner namespace is owned by $(stat -c %u:%g "/proc/$inner/root/tmp/in/f") outside"
	# its view differs from the container's: it sees the tmpfs, from inside
	[[ $(nsenter -t "$inner" -U -m cat /tmp/in/f 2>&1) == inner-file ]] ||
		fail "$tag: inside the inner namespace /tmp/in/f reads '$(nsenter -t "$inner" -U -m cat /tmp/in/f 2>&1)'"
	! nsenter -t "$pid" -U -m cat /tmp/in/f > /dev/null 2>&1 || fail "$tag: the container sees the inner tmpfs's file"
}

# Without a pid namespace (the tree is made outside the user namespace,
# its processes join it last) no proc can be mounted: a busybox root
# with a tmpfs on /tmp, the host's /usr and the shared directory on
# /mnt, and a shell counting into /mnt/out above the same nested shells,
# pausing with sleep: a FIFO open is reopened through /proc/self, which
# such a tree lacks, as its processes' login uid (left unset here) is
# written through their /proc.
userns_nopid_start() {
	command -v busybox > /dev/null || { skip "no busybox (apt-get install busybox-static)"; return 1; }
	mnt_root "$T_WORK/root1" || { fail "harness: could not make the busybox root"; return 1; }
	mkdir -p "$T_WORK/shared"
	chmod 777 "$T_WORK/shared"
	start_prog container "${AS_UID[@]:5}" unshare -U -r -m --propagation private /bin/sh -c '
set -e
mount --bind "$1" "$1"
cd "$1"
mount -t tmpfs -o size=1m,mode=755 tmpfs tmp
mount --bind /usr usr
mount --bind "$2" mnt
pivot_root . old
/bin/umount -l /old
exec /bin/sh -c "$3" < /dev/null > /dev/null 2>&1
' sh "$T_WORK/root1" "$T_WORK/shared" "${USERNS_NESTED_CMD//read -t 0.1 t <> \/tmp\/in\/tick/sleep 0.1}"'
i=0; while :; do i=$((i + 1)); echo "$i" >> /mnt/out; sleep 0.1; done'
	wait_until "$TMO" has_lines "$T_WORK/shared/deep" 3 || { fail "the nested shells wrote nothing" "$T_LOG/container.err"; return 1; }
	nested_namespaces_ok "$PROG_PID" start || return 1
	BEFORE=$(userns_facts "$PROG_PID")
	BEFORE_INNER=$(userns_facts "$(writer_of inner)")
}

userns_nopid_ok() {
	local pid=$1 tag=$2
	wait_until "$TMO" has_lines "$T_WORK/shared/out" $((MNT_N + 10)) || { fail "$tag: the root shell did not go on"; return 1; }
	check_sequence <(cat "$T_WORK/shared/out")
	nested_namespaces_ok "$pid" "$tag" || return 1
	nested_goes_on inner "inner-file" "$MNT_NI" "$tag" || return 1
	nested_goes_on deep "inner-file deep-file" "$MNT_ND" "$tag" || return 1
	[[ $(userns_facts "$pid") == "$BEFORE" ]] ||
		fail "$tag: the user namespace or ids differ: $(diff <(echo "$BEFORE") <(userns_facts "$pid") | tr '\n' ' ')"
	own_userns "$pid"
	userns_nested_views "$@"
}

# test_userns_nested_mnt START CHECK
test_userns_nested_mnt() {
	local BEFORE BEFORE_INNER MNT_N MNT_NI MNT_ND pid rc start=$1 check=$2
	userns_ok || return
	local MNT_USERNS=$USERNS_UID MNT_PIDNS=1
	"$start" || return
	pid=$PROG_PID
	dump dump "$pid" "$T_WORK/img" "${MNT_DUMP_EXT[@]}" || return
	expect_killed "$pid" || return
	[[ $(ls "$T_WORK/img"/mountpoints-*.img | wc -l) == 3 ]] || { fail "not 3 mountpoints images: $(ls "$T_WORK/img")"; return; }
	ls "$T_WORK/img"/userns-*.img > /dev/null 2>&1 || { fail "the dump wrote no userns image"; return; }
	mnt_root "$T_WORK/root2"
	# failed restores leave nothing: one cut (mntns.sh), one that fails on
	# its own (a tmpfs's files gone)
	nested_cut_leaves_nothing || return
	local tar
	tar=$(ls "$T_WORK/img"/tmpfs-dev-*.tar.gz.img | head -n1)
	mv "$tar" "$T_WORK/tar.saved"
	# shellcheck disable=SC2046
	rc=$(stasis failed restore -D "$T_WORK/img" -d --root "$T_WORK/root2" $(mnt_restore_ext))
	mv "$T_WORK/tar.saved" "$tar"
	[[ $rc != 0 ]] || { fail "a restore without a tmpfs's files succeeded"; return; }
	grep -q "tmpfs" "$T_LOG/failed.stderr" || fail "the failed restore's error does not name the tmpfs: $(error_message failed)"
	left_nothing failed || return
	mnt_counts
	# shellcheck disable=SC2046
	rc=$(stasis restore restore -D "$T_WORK/img" -d --root "$T_WORK/root2" $(mnt_restore_ext) --pidfile "$T_WORK/pid")
	[[ $rc == 0 ]] || { fail "restore exited $(rc_text "$rc"): $(error_message restore)" "$T_LOG/restore.log"; return; }
	pid=$(cat "$T_WORK/pid")
	T_PIDS+=("$pid")
	PROG_PID=$pid
	"$check" "$pid" restore
	kill_leftovers
}

# Both ways with CRIU 4.2: it restores our images, and we its. Made by
# root (CRIU can't read the limits of another uid's processes here).
# The facts before the dump, then the same after each restore.
userns_criu_check() {
	local pid=$1 tag=${2:-}
	[[ -n $tag ]] || { BEFORE=$(userns_facts "$pid"); return; }
	userns_container_restored "$pid" "$BEFORE" "$tag"
}

test_userns_criu() {
	local BEFORE NOSG=1
	userns_ok || return
	MNT_PIDNS=1 MNT_USERNS=0 mntns_criu_cycle userns_criu_check || return
	kill -9 "$PROG_PID"
	check_sequence <(cut -d' ' -f1 "$T_WORK/shared/out")
}

# The same nested namespaces both ways with CRIU 4.2 (made by root, as
# userns.criu; CRIU's images have no setgroups).
test_userns_nested_criu() {
	local BEFORE BEFORE_INNER MNT_N MNT_NI MNT_ND NOSG=1
	userns_ok || return
	local MNT_USERNS=0 MNT_PIDNS=1
	criu_both_ways userns_nested_start userns_nested_ok || return
	kill_leftovers
}

# refused PID REGEX: the dump of pid fails with one line matching REGEX,
# and pid runs on.
refused() {
	local pid=$1 re=$2 rc
	rc=$(stasis dump dump -t "$pid" -D "$T_WORK/img")
	[[ $rc != 0 ]] || { fail "the dump of pid $pid did not fail"; return 1; }
	grep -qE "^Error: $re" "$T_LOG/dump.stderr" || { fail "the dump said: $(error_message dump)" "$T_LOG/dump.log"; return 1; }
	[[ ! -e $T_WORK/img/inventory.img ]] || fail "a refused dump left an inventory.img"
	wait_until 5 runs_freely "$pid" || fail "pid $pid does not run on after the refusal"
}

LOOP='i=0; while :; do i=$((i+1)); echo $i; sleep 0.05; done'

test_userns_refused() {
	userns_ok || return
	# a user namespace in a user namespace
	start_prog nested "${AS_UID[@]}" unshare -U -r unshare -U -r --fork sh -c "$LOOP"
	wait_until "$TMO" has_lines "$T_LOG/nested.out" 3 || { fail "the nested counter printed nothing" "$T_LOG/nested.err"; return; }
	local inner
	inner=$(tr -d " " < "/proc/$PROG_PID/task/$PROG_PID/children")
	refused "$inner" "pid $inner is in a user namespace nested in another one.*one level" || return
	kill_leftovers
	# a child of the tree in a user namespace other than its root's
	start_prog child "${AS_UID[@]}" sh -c "unshare -U -r sleep 1000 & $LOOP"
	wait_until "$TMO" has_lines "$T_LOG/child.out" 3 || { fail "the counter printed nothing" "$T_LOG/child.err"; return; }
	wait_until "$TMO" eval '[[ -n $(pgrep -P "$PROG_PID" -x sleep) ]]' || { fail "harness: no sleep"; return; }
	refused "$PROG_PID" "pid [0-9]+ is in a user namespace other than its root's" || return
	kill_leftovers
	# a mount namespace nested in the root's that its user namespace does
	# not own: one of a user namespace below it (made by a holder that
	# then went), joined by a shell that stays in the tree's
	start_prog mntown "${AS_UID[@]}" unshare -U -r -m --fork sh -c '
unshare -U -r -m sleep 1000 & h=$!
sleep 0.5
nsenter -t $h -m --preserve-credentials sh -c "while :; do sleep 0.05; done" &
sleep 0.5
kill $h
'"$LOOP"
	wait_until "$TMO" has_lines "$T_LOG/mntown.out" 3 || { fail "the counter printed nothing" "$T_LOG/mntown.err"; return; }
	local root
	root=$(tr -d " " < "/proc/$PROG_PID/task/$PROG_PID/children")
	wait_until "$TMO" eval '[[ $(pgrep -P "$root" -x sh | wc -l) == 1 && -z $(pgrep -P "$root" -x unshare) ]]' ||
		{ fail "harness: no shell in the other mount namespace" "$T_LOG/mntown.err"; return; }
	refused "$root" "pid [0-9]+: its mount namespace is not owned by the user namespace of its root \\(pid $root\\)" || return
	kill_leftovers
	# a time namespace of the tree's own, in its user namespace
	if kernel_has time_namespaces; then
		start_prog timens "${AS_UID[@]}" unshare -U -r -T --fork sh -c "$LOOP"
		wait_until "$TMO" has_lines "$T_LOG/timens.out" 3 || { fail "the counter printed nothing" "$T_LOG/timens.err"; return; }
		# (unshare made it for its children: the shell is in it)
		local sh
		sh=$(tr -d " " < "/proc/$PROG_PID/task/$PROG_PID/children")
		refused "$sh" "pid $sh has a time namespace of its own in its user namespace" || return
	fi
}

run_test userns.alone test_userns_alone
run_test userns.maps test_userns_maps
run_test userns.pidns test_userns_pidns
run_test userns.other_ns test_userns_other_ns
run_test --needs mntroot userns.container test_userns_container
run_test --needs mntroot --needs criu userns.criu test_userns_criu
run_test userns.refused test_userns_refused
run_test --needs mntroot userns.nested_mnt test_userns_nested_mnt userns_nested_start userns_nested_ok
run_test --needs mntroot userns.nested_mnt_nopidns test_userns_nested_mnt userns_nopid_start userns_nopid_ok
run_test --needs mntroot --needs criu userns.nested_criu test_userns_nested_criu
