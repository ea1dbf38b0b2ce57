# The service as an attacker sees it: a local user with no privileges,
# talking to `stasis service` (root) through its socket, tries to get
# root's powers. Each test mounts one attack; it passes when the attack
# is refused, nothing is written and no privilege is seen. Run against a
# stasis without the guard, each of them fails (see the README).
#
# SEC_SVC_ARGS: how the service lets the user in (an older stasis, which
# has no --allow-users, can be tested with SEC_SVC_ARGS=" ").

RPC_ATTACK=$ROOT/tests/py/rpc_attack.py

# attack TAG ARGS...: rpc_attack.py SOCK ARGS as RPC_USER; its line in
# T_LOG/TAG.out, rc echoed.
attack() {
	local tag=$1
	shift
	install -m 644 "$RPC_ATTACK" "$ROOT/tests/py/rpc_drive.py" "$T_WORK/"
	note "attack $tag: $*"
	timeout -k 5 "$TMO" runuser -u "$RPC_USER" -- "$PYTHON" "$T_WORK/rpc_attack.py" "$SVC_SOCK" "$@" \
		> "$T_LOG/$tag.out" 2> "$T_LOG/$tag.err" < /dev/null
	echo $?
}

# as_user CMD...: a command run as RPC_USER (planting links, making dirs).
as_user() { runuser -u "$RPC_USER" -- "$@"; }

# The service with a user allowed in, a root-only directory with a file
# only root may read or write, and a place of the user's own.
sec_setup() {
	rpc_user_setup || return
	service_start --socket-mode 0666 ${SEC_SVC_ARGS:---allow-users $RPC_USER} || return
	mkdir -m 700 "$T_WORK/rootonly"
	echo untouched > "$T_WORK/rootonly/secret"
	chmod 600 "$T_WORK/rootonly/secret"
}

secret_untouched() {
	[[ $(cat "$T_WORK/rootonly/secret") == untouched ]] ||
		fail "root's file was written through the client: $(head -c 60 "$T_WORK/rootonly/secret" | tr -cd '[:print:]')"
}

# sec_user_prog NAME CMD...: CMD as RPC_USER in its own session, in
# T_WORK/user; its pid in UPID once it is running.
sec_user_prog() {
	local name=$1
	shift
	# its output file is its own, so that its restore may reopen it; a log
	# appended to (runuser, outside the tree, may still write to it after
	# the dump, and restore refuses a file whose size changed, but for one
	# only appended to)
	: > "$T_WORK/user/$name.out"
	chown "$RPC_USER:" "$T_WORK/user/$name.out"
	(cd "$T_WORK/user" && exec runuser -u "$RPC_USER" -- setsid "$@" >> "$T_WORK/user/$name.out" 2>&1 < /dev/null) &
	disown $!
	T_PIDS+=($!)
	wait_until "$TMO" has_lines "$T_WORK/user/$name.out" 1 || { fail "$name printed nothing"; return 1; }
	UPID=$(user_pid "$name-marker")
	[[ -n $UPID ]] || { fail "can't find $name"; return 1; }
	T_PIDS+=("$UPID")
}

user_counter() {
	sec_user_prog "$1" sh -c ": $1-marker; i=0; while :; do i=\$((i+1)); echo \$i; sleep 0.02; done"
}

# 1. Symlinks planted where the service writes for the client: the image
# names and the log name. Root's file stays as it was, nothing appears in
# root's directory, and the images are the client's own files.
test_sec_symlinks() {
	local rc img=$T_WORK/user/img
	sec_setup || return
	user_counter victim || return
	as_user mkdir "$img"
	as_user ln -s "$T_WORK/rootonly/secret" "$img/core-$UPID.img"
	as_user ln -s "$T_WORK/rootonly/secret" "$img/pstree.img"
	as_user ln -s "$T_WORK/rootonly/made" "$img/inventory.img.tmp"
	as_user ln -s "$T_WORK/rootonly/made" "$img/pages-1.img"
	rc=$(attack dump dump "$UPID" "$img")
	grep -q "success=True" "$T_LOG/dump.out" || { fail "the user's dump failed: $(cat "$T_LOG/dump.out")"; return; }
	secret_untouched || return
	[[ ! -e $T_WORK/rootonly/made ]] || { fail "root made a file in a root-only directory for the client"; return; }
	local f owner
	for f in "core-$UPID.img" pstree.img pages-1.img inventory.img; do
		owner=$(stat -c %U "$img/$f" 2>/dev/null)
		[[ -f $img/$f && ! -L $img/$f && $owner == "$RPC_USER" ]] ||
			{ fail "$f is not a regular file of the client's (owner '$owner')"; return; }
	done
	# the log name: refused, and the program runs on
	user_counter victim2 || return
	as_user ln -s "$T_WORK/rootonly/secret" "$img/evil.log"
	rc=$(attack logdump dump "$UPID" "$img" evil.log)
	grep -q "success=False errno=[1-9]" "$T_LOG/logdump.out" ||
		{ fail "a dump whose log is a symlink was not refused: $(cat "$T_LOG/logdump.out")"; return; }
	grep -q "log file evil.log" "$T_LOG/logdump.out" || fail "the refusal does not name the log: $(cat "$T_LOG/logdump.out")"
	secret_untouched || return
	runs_freely "$UPID" || fail "the user's program does not run on after the refused dump"
}

# 1b. Root dumping (command line) into a directory anyone may write: a
# symlink planted there by a user is not followed.
test_sec_symlinks_root_dump() {
	rpc_user_setup || return
	mkdir -m 700 "$T_WORK/rootonly"
	echo untouched > "$T_WORK/rootonly/secret"
	mkdir -m 777 "$T_WORK/shared"
	start_counter || return
	as_user ln -s "$T_WORK/rootonly/secret" "$T_WORK/shared/core-$PROG_PID.img"
	as_user ln -s "$T_WORK/rootonly/secret" "$T_WORK/shared/dump.log"
	dump rootdump "$PROG_PID" "$T_WORK/shared" -o dump.log 2> /dev/null
	secret_untouched
}

# 2. An O_PATH fd (search permission is enough for one) given as the
# status fd: the service must not turn it into a root open for writing.
test_sec_opath_status_fd() {
	local rc img=$T_WORK/user/img
	sec_setup || return
	echo "root's byte" > "$T_WORK/pubfile"	# 0644 root: the user may read, not write
	user_counter victim || return
	as_user mkdir "$img"
	rc=$(attack dump dump "$UPID" "$img")
	grep -q "success=True" "$T_LOG/dump.out" || { fail "the user's dump failed: $(cat "$T_LOG/dump.out")"; return; }
	wait_gone "$UPID" || { fail "the user's program survived its dump"; return; }
	rc=$(attack restore restore "$img" --status-opath "$T_WORK/pubfile")
	[[ $(cat "$T_WORK/pubfile") == "root's byte" ]] || { fail "root wrote into a file through the client's O_PATH fd"; return; }
	grep -q "success=False errno=[1-9].*status_fd.*not open for writing" "$T_LOG/restore.out" ||
		fail "the O_PATH status_fd was not refused by name: $(cat "$T_LOG/restore.out")"
	! alive "$UPID" || fail "pid $UPID was restored despite the refusal"
}

# 3b. The same symlinks against SINGLE_PRE_DUMP (libcriu's criu_pre_dump,
# crun's --pre-dump): its pages and log are the client's own files too.
test_sec_single_pre_dump() {
	local rc img=$T_WORK/user/img f owner
	sec_setup || return
	user_counter victim || return
	as_user mkdir "$img"
	as_user ln -s "$T_WORK/rootonly/secret" "$img/pages-1.img"
	as_user ln -s "$T_WORK/rootonly/made" "$img/pagemap-$UPID.img"
	rc=$(attack predump single-pre-dump "$UPID" "$img")
	grep -q "success=True" "$T_LOG/predump.out" || { fail "the user's pre-dump failed: $(cat "$T_LOG/predump.out")"; return; }
	secret_untouched || return
	[[ ! -e $T_WORK/rootonly/made ]] || { fail "root made a file in a root-only directory for the client"; return; }
	for f in pages-1.img "pagemap-$UPID.img" dump.log; do
		owner=$(stat -c %U "$img/$f" 2>/dev/null)
		[[ -f $img/$f && ! -L $img/$f && $owner == "$RPC_USER" ]] ||
			{ fail "$f is not a regular file of the client's (owner '$owner')"; return; }
	done
	runs_freely "$UPID" || fail "the user's program does not run on after its pre-dump"
}

# 4. The target execs a setuid program between the first check and the
# seize (at the pre-dump notification): what was seized is checked.
test_sec_exec_at_predump() {
	# setuid programs on a file system of our own (/tmp may be nosuid)
	local suid=$T_WORK/suidfs
	mkdir -p "$suid" && mount -t tmpfs -o size=16m,mode=755 stasis-suid "$suid" ||
		{ fail "can't mount a file system for a setuid program"; return; }
	exec_at_predump "$suid"
	alive "$UPID" && kill -9 "$UPID" && wait_gone "$UPID"
	umount -l "$suid"
}

exec_at_predump() {
	local rc img=$T_WORK/user/img suid=$1
	sec_setup || return
	install -m 4755 "$(command -v sleep)" "$suid/sleep"
	install -m 4755 "$(command -v id)" "$suid/id"
	[[ $(as_user "$suid/id" -u) == 0 ]] || { fail "a setuid root program does not run as root here"; return; }
	sec_user_prog setuid sh -c ": setuid-marker; trap 'exec $suid/sleep 300' USR1; echo up; while :; do sleep 0.05; done" || return
	as_user mkdir "$img"
	rc=$(attack exec exec-at-predump "$UPID" "$img")
	grep -q "success=False errno=1 .*could not ptrace once seized" "$T_LOG/exec.out" ||
		{ fail "the dump of a process that became setuid root was not refused: $(cat "$T_LOG/exec.out")"; return; }
	local euid
	euid=$(awk '/^Uid:/ { print $3 }' "/proc/$UPID/status")
	[[ $euid == 0 ]] || { fail "the target did not become setuid root (euid $euid)"; return; }
	! compgen -G "$img/pages-*.img" > /dev/null || fail "memory of a setuid root process was written for the client"
	runs_freely "$UPID" || fail "the setuid process does not run on after the refused dump"
}

# 5. A deleted root-only file the user's process holds by an O_PATH fd:
# its bytes are not saved for the client; the dump is refused by name.
test_sec_opath_ghost() {
	local rc img=$T_WORK/user/img
	sec_setup || return
	mkdir -m 711 "$T_WORK/hid"
	echo ROOTSECRETBYTES > "$T_WORK/hid/secret"
	chmod 600 "$T_WORK/hid/secret"
	sec_user_prog holder "$PYTHON" -c "
import os, time
fd = os.open('$T_WORK/hid/secret', os.O_PATH)
print('holder-marker', fd, flush=True)
time.sleep(300)" || return
	rm "$T_WORK/hid/secret"
	as_user mkdir "$img"
	rc=$(attack dump dump "$UPID" "$img")
	! grep -rq ROOTSECRETBYTES "$img" || { fail "a root-only file's bytes were saved for the client"; return; }
	grep -q "success=False errno=[1-9].*nor may the client" "$T_LOG/dump.out" ||
		fail "the dump was not refused by name: $(cat "$T_LOG/dump.out")"
	runs_freely "$UPID" || fail "the user's program does not run on after the refused dump"
}

# 5b. An O_PATH fd on a deleted file comes back as an O_PATH fd, with the
# file's bytes (root's own dump: root may read them).
test_sec_opath_restored() {
	local fl
	echo KEPTBYTES > "$T_WORK/kept"
	start_prog holder "$PYTHON" -c "
import os, time
fd = os.open('$T_WORK/kept', os.O_PATH)
os.dup2(fd, 7)
print('READY', flush=True)
while True:
    time.sleep(0.05)"
	wait_until "$TMO" has_line "$T_LOG/holder.out" READY || { fail "holder not ready"; return; }
	rm "$T_WORK/kept"
	dump opath "$PROG_PID" "$T_WORK/img" || return
	expect_killed "$PROG_PID" || return
	restore_detached ropath "$T_WORK/img" "$PROG_PID" "" 0 || return
	fl=$(awk '/^flags:/ { print $2 }' "/proc/$PROG_PID/fdinfo/7")
	((8#$fl & 8#10000000)) || fail "fd 7 came back without O_PATH (flags $fl)"
}

# Restore reads only images the client could read: root's dump of the
# user's own process, in root's 0700 directory, named by its path.
test_sec_unreadable_images() {
	local rc
	sec_setup || return
	user_counter victim || return
	mkdir -m 700 "$T_WORK/rootimg"
	dump rootdump "$UPID" "$T_WORK/rootimg" || return
	wait_gone "$UPID" || { fail "the dumped program survived"; return; }
	rc=$(attack restore restore-path "$T_WORK/rootimg" "$T_WORK/user")
	grep -q "success=False errno=13 .*images_dir.*Permission denied" "$T_LOG/restore.out" ||
		{ fail "the user restored images it can't read: $(cat "$T_LOG/restore.out")"; return; }
	! alive "$UPID" || fail "pid $UPID was restored from images the user can't read"
}

# A tree of the user's (a shell and six children), dumped and restored
# through the service: its processes read their images through the one
# broker at the same time.
test_sec_user_tree() {
	local rc img=$T_WORK/user/img before after
	sec_setup || return
	sec_user_prog tree sh -c ": tree-marker; for i in 1 2 3 4 5 6; do sleep 1000 & done; while :; do echo x; sleep 0.05; done" || return
	wait_until "$TMO" eval '(($(pgrep -s "$UPID" -f "^sleep 1000" | wc -l) == 6))' || { fail "the tree did not start"; return; }
	before=$(pgrep -s "$UPID" -f "^sleep 1000" | sort -n | tr '\n' ' ')
	as_user mkdir "$img"
	rc=$(attack dump dump "$UPID" "$img")
	grep -q "success=True" "$T_LOG/dump.out" || { fail "the user's dump failed: $(cat "$T_LOG/dump.out")"; return; }
	wait_gone "$UPID" || { fail "the tree survived its dump"; return; }
	rc=$(rpc_user urestore --sk "$SVC_SOCK" restore "$img")
	[[ $rc == 0 ]] || { fail "the user could not restore its tree: $(cat "$T_LOG/urestore.out")" "$img/restore.log"; return; }
	after=$(pgrep -s "$UPID" -f "^sleep 1000" | sort -n | tr '\n' ' ')
	[[ $after == "$before" ]] || fail "the tree came back as '$after', not '$before'"
}

# --link-remap for a client: the link keeping the user's deleted file is
# made as the user. In a directory the user may not write (root's now),
# the dump is refused and nothing appears there; in its own, the tree
# comes back holding the very file of its other name, the link gone.
test_sec_link_remap() {
	local rc img=$T_WORK/user/img d=$T_WORK/user/d ino
	sec_setup || return
	as_user mkdir "$d" "$img"
	as_user sh -c "echo lr > $d/f && ln $d/f $T_WORK/user/other"
	sec_user_prog lr sh -c ": lr-marker; exec 3< d/f; rm d/f; while :; do echo x; sleep 0.05; done" || return
	wait_until "$TMO" eval "[[ ! -e $d/f ]]" || { fail "the program did not remove d/f"; return; }
	chown root: "$d"
	rc=$(attack dump-root dump-link-remap "$UPID" "$img")
	! grep -q "success=True" "$T_LOG/dump-root.out" || { fail "the link remap was made in root's directory"; return; }
	[[ -z $(ls -A "$d") ]] || { fail "the refused dump left $(ls -A "$d") in root's directory"; return; }
	alive "$UPID" || { fail "the program died of the refused dump"; return; }
	chown "$RPC_USER:" "$d"
	rc=$(attack dump dump-link-remap "$UPID" "$img")
	grep -q "success=True" "$T_LOG/dump.out" || { fail "the user's dump failed: $(cat "$T_LOG/dump.out")" "$img/dump.log"; return; }
	wait_gone "$UPID" || { fail "the program survived its dump"; return; }
	[[ $(stat -c %U "$d"/link_remap.*) == "$RPC_USER" ]] || fail "the link remap is not the user's: $(ls -l "$d")"
	rc=$(rpc_user urestore --sk "$SVC_SOCK" restore "$img")
	[[ $rc == 0 ]] || { fail "the user could not restore: $(cat "$T_LOG/urestore.out")" "$img/restore.log"; return; }
	ino=$(stat -c %i "$T_WORK/user/other")
	[[ $(stat -L -c %i "/proc/$UPID/fd/3") == "$ino" ]] || fail "the restored fd 3 is not the file of the other name"
	[[ -z $(ls -A "$d") ]] || fail "the restore left $(ls -A "$d")"
}

# sec_forge_ns FIELD PYTHON: the user's counter, dumped through the
# service into T_WORK/user/img, then its images edited by the user to
# claim a namespace of the tree's own: FIELD of its ids set to 999, and
# PYTHON run to write that namespace's images (d: the directory).
sec_forge_ns() {
	local field=$1 code=$2 rc img=$T_WORK/user/img
	sec_setup || return
	user_counter victim || return
	as_user mkdir "$img"
	rc=$(attack dump dump "$UPID" "$img")
	grep -q "success=True" "$T_LOG/dump.out" || { fail "the user's dump failed: $(cat "$T_LOG/dump.out")"; return; }
	wait_gone "$UPID" || { fail "the counter survived its dump"; return; }
	as_user "$PYTHON" - "$img" "$UPID" "$field" "$code" << 'PY' || { fail "harness: could not forge the images"; return; }
import sys
import pycriu
d, pid, field, code = sys.argv[1:5]
path = "%s/ids-%s.img" % (d, pid)
ids = pycriu.images.load(open(path, "rb"))
ids["entries"][0][field] = 999
pycriu.images.dump(ids, open(path, "wb"))
exec(code)
PY
	forget_checksums "$img"	# the attacker can rewrite the list too
}

# sec_forged_refused WHAT: the service refuses to restore the forged
# images (WHAT: the kind of namespace, as the log names it), and nothing
# of the counter comes back.
sec_forged_refused() {
	local what=$1 rc img=$T_WORK/user/img
	rc=$(rpc_user urestore --sk "$SVC_SOCK" restore "$img")
	[[ $rc != 0 ]] || { fail "the service restored a forged $what namespace for the user"; return; }
	grep -q "$what namespace of its own: only root may restore it" "$img/restore.log" ||
		fail "the restore's log names no $what namespace: $(grep -m1 Error "$img/restore.log")"
	! alive "$UPID" || fail "pid $UPID was restored"
}

# Images of the user's own dump, edited by the user to claim a UTS
# namespace of the tree's own (whose host name restore would set): the
# service must refuse to make namespaces for a client, and the host name
# stays ours.
test_sec_forged_uts() {
	local host
	host=$(hostname)
	sec_forge_ns uts_ns_id '
uts = {"magic": "UTSNS", "entries": [{"nodename": "pwned", "domainname": "pwned"}]}
pycriu.images.dump(uts, open("%s/utsns-999.img" % d, "wb"))' || return
	sec_forged_refused UTS
	[[ $(hostname) == "$host" ]] || fail "the host name is now $(hostname)"
}

# Images the user forged after its own dump: a user namespace of the
# tree's own whose maps would make the user's processes root of the host
# ("0 0 4294967295": root would write the maps). Refused, nothing made.
test_sec_forged_userns() {
	sec_forge_ns user_ns_id '
ext = [{"first": 0, "lower_first": 0, "count": 4294967295}]
u = {"magic": "USERNS", "entries": [{"uid_map": ext, "gid_map": ext}]}
pycriu.images.dump(u, open("%s/userns-999.img" % d, "wb"))' || return
	sec_forged_refused user
}

# sec_ns_dump_refused KIND WHAT [FLAG]: the user's own counter, made by
# the user in a user namespace of its own (with FLAG, a namespace of kind
# KIND too: /proc/PID/ns/KIND), dumped through the service: refused with
# a line naming the WHAT namespace, and the counter runs on.
sec_ns_dump_refused() {
	local kind=$1 what=$2 flag=${3:-} rc
	sec_setup || return
	as_user unshare -Ur $flag true 2> /dev/null ||
		{ skip "the test user can't make a user namespace here (in a chroot, or user namespaces off)"; return; }
	sec_user_prog "${kind}user" unshare -Ur $flag sh -c ": ${kind}user-marker; i=0; while :; do i=\$((i+1)); echo \$i; sleep 0.02; done" ||
		return
	[[ $(readlink "/proc/$UPID/ns/$kind") != "$(readlink "/proc/self/ns/$kind")" ]] ||
		{ fail "harness: the user's program is not in a $what namespace of its own"; return; }
	as_user mkdir "$T_WORK/user/img"
	rc=$(attack dump dump "$UPID" "$T_WORK/user/img")
	grep -q "success=False" "$T_LOG/dump.out" || { fail "the service dumped the user's $what namespace: $(cat "$T_LOG/dump.out")"; return; }
	grep -q "$what namespace of its own: only root may dump it" "$T_WORK/user/img/dump.log" ||
		fail "the dump's log names no $what namespace: $(grep -m1 Error "$T_WORK/user/img/dump.log")"
	wait_until 5 runs_freely "$UPID" || fail "the user's program does not run on after the refusal"
}

# The user's own process in a user namespace of its own: the service
# would save maps that root writes at restore: refused, and it runs on.
test_sec_userns_dump() { sec_ns_dump_refused user user; }

# The user's own process in an IPC namespace of its own (made in a user
# namespace of the user's): the service would read every segment there as
# root, and the namespace's objects need not be the user's: refused, and
# the process runs on.
test_sec_ipc_ns_dump() { sec_ns_dump_refused ipc IPC -i; }

# The user's own process in a mount namespace of its own (made in a user
# namespace of the user's): its mounts would be made again by root from
# what the images say: refused, and the process runs on.
test_sec_mnt_ns_dump() { sec_ns_dump_refused mnt mount -m; }

# Images the user forged after its own dump: a mount namespace whose
# mounts bind the host's /etc into a root of the user's (as an external
# mount, and as a bind of the root). The service refuses the request's
# root for a non-root client, and the namespace without it; nothing is
# mounted and no process restored.
test_sec_forged_mnt() {
	local rc img=$T_WORK/user/img
	sec_setup || return
	user_counter victim || return
	as_user mkdir "$img" "$T_WORK/user/root"
	rc=$(attack dump dump "$UPID" "$img")
	grep -q "success=True" "$T_LOG/dump.out" || { fail "the user's dump failed: $(cat "$T_LOG/dump.out")"; return; }
	wait_gone "$UPID" || { fail "the counter survived its dump"; return; }
	as_user "$PYTHON" - "$img" "$UPID" << 'PY' || { fail "harness: could not forge the images"; return; }
import sys
import pycriu
d, pid = sys.argv[1], sys.argv[2]
path = "%s/ids-%s.img" % (d, pid)
ids = pycriu.images.load(open(path, "rb"))
ids["entries"][0]["mnt_ns_id"] = 999
pycriu.images.dump(ids, open(path, "wb"))
def m(i, parent, mp, root, fstype=0, key=None):
    e = {"fstype": fstype, "mnt_id": i, "root_dev": "0:1", "parent_mnt_id": parent, "flags": "0x0",
         "root": root, "mountpoint": mp, "source": "none", "options": "", "sb_flags": "0x0"}
    if key:
        e["ext_key"] = key
    return e
mnts = {"magic": "MNTS", "entries": [m(1, 0, "/", "/"), m(2, 1, "/mnt", "/etc"), m(3, 1, "/x", "/", key="etc")]}
pycriu.images.dump(mnts, open("%s/mountpoints-999.img" % d, "wb"))
PY
	forget_checksums "$img"	# the attacker can rewrite the list too
	rc=$(attack urestore restore "$img" --root "$T_WORK/user/root" --ext-mnt etc /etc)
	grep -q "success=False" "$T_LOG/urestore.out" || { fail "the service restored a forged mount namespace: $(cat "$T_LOG/urestore.out")"; return; }
	grep -q "root (a mount namespace's new root) is for root clients only" "$T_LOG/service.log" "$img/restore.log" 2> /dev/null ||
		fail "nothing says root is refused: $(cat "$T_LOG/urestore.out")"
	rc=$(attack urestore2 restore "$img" --ext-mnt etc /etc)
	grep -q "success=False" "$T_LOG/urestore2.out" || { fail "the service restored a forged mount namespace: $(cat "$T_LOG/urestore2.out")"; return; }
	grep -q "mount namespace of its own: only root may restore it" "$img/restore.log" ||
		fail "the restore's log names no mount namespace: $(grep -m1 Error "$img/restore.log")"
	! grep -qE "$T_WORK|stasis-yard" /proc/self/mountinfo || fail "the refused restores left mounts: $(grep "$T_WORK" /proc/self/mountinfo)"
	[[ -z $(ls -A "$T_WORK/user/root") ]] || fail "the user's root holds: $(ls -A "$T_WORK/user/root")"
	! alive "$UPID" || fail "pid $UPID was restored"
}

# 6. A service started without --allow-users serves root only, and says
# so with an errno pycriu shows.
test_sec_root_only() {
	local rc
	rpc_user_setup || return
	service_start --socket-mode 0666 || return
	user_counter victim || return
	as_user mkdir "$T_WORK/user/img"
	rc=$(attack dump dump "$UPID" "$T_WORK/user/img")
	grep -q "success=False errno=1 msg=uid [0-9]* may not use this stasis service" "$T_LOG/dump.out" ||
		{ fail "a user not allowed in was served: $(cat "$T_LOG/dump.out")"; return; }
	runs_freely "$UPID" || fail "the user's program does not run on after the refusal"
	rc=$(rpc_user pycriu --sk "$SVC_SOCK" dump "$UPID" "$T_WORK/user/img")
	grep -q "Error(1)" "$T_LOG/pycriu.out" || fail "pycriu does not show the refusal's errno: $(cat "$T_LOG/pycriu.out")"
}

# 7. The TLS files a request names are read as the client: a user
# naming root's private key (0600, in a directory it may list) as tls_key
# is refused, the log saying why, and its program runs on; the user's own
# copy of the same key serves (the dump goes through over TLS).
# (make_certs, tls_args, ps_start, ps_wait: pageserver.sh)
test_sec_rpc_tls_key() {
	local rc img=$T_WORK/user/img c=$T_WORK/certs
	sec_setup || return
	make_certs "$c" ca || return
	chmod 755 "$c" && chmod 644 "$c/ca.pem" "$c/ca-cert.pem" && chmod 600 "$c/ca-key.pem"
	install -m 600 -o "$RPC_USER" "$c/ca-key.pem" "$T_WORK/user/key.pem"
	user_counter victim || return
	as_user mkdir "$img"
	ps_start ps "$T_WORK/remote" $(tls_args "$c") --timeout 3 || return
	rc=$(attack tlsroot dump-ps "$UPID" "$img" --ps "127.0.0.1:$PS_PORT" --tls "$c")
	grep -q "success=False errno=[1-9]" "$T_LOG/tlsroot.out" ||
		{ fail "root's key was used for the client: $(cat "$T_LOG/tlsroot.out")"; return; }
	grep -q "can't read the private key $c/ca-key.pem: Permission denied" "$img/dump.log" ||
		{ fail "the log does not say why: $(grep -m1 Error "$img/dump.log")" "$img/dump.log"; return; }
	runs_freely "$UPID" || { fail "the user's program does not run on after the refused dump"; return; }
	rc=$(attack tlsown dump-ps "$UPID" "$img" --ps "127.0.0.1:$PS_PORT" --tls "$c" --tls-key "$T_WORK/user/key.pem")
	grep -q "success=True" "$T_LOG/tlsown.out" ||
		{ fail "the dump with the user's own key failed: $(cat "$T_LOG/tlsown.out")" "$img/dump.log"; return; }
	ps_wait ps || return
	grep -q "TLS: session up" "$img/dump.log" || fail "the dump's connection was not TLS" "$img/dump.log"
	compgen -G "$T_WORK/remote/pagemap-$UPID.img" > /dev/null || fail "the server wrote no pagemap-$UPID.img"
}

# 8. ps.fd is the client's own socket, taken from it, and must be a TCP
# connection: a file, a listening socket, an unconnected one and a unix
# one (whose peer would see root's credentials on what the service
# writes) are refused by name and the program runs on; a socket the user
# connected to the page server carries the dump.
test_sec_rpc_ps_fd() {
	local rc img=$T_WORK/user/img kind
	declare -A why=([file]="is not a socket" [listen]="is a listening socket" [unconnected]="is not connected"
		[unix]="is not a TCP connection")
	sec_setup || return
	user_counter victim || return
	as_user mkdir "$img"
	ps_start ps "$T_WORK/remote" || return
	for kind in file listen unconnected unix; do
		rc=$(attack "psfd-$kind" dump-ps "$UPID" "$img" --ps-fd "$kind")
		grep -q "success=False errno=[1-9][0-9]* msg=.*ps.fd [0-9]* ${why[$kind]}" "$T_LOG/psfd-$kind.out" ||
			{ fail "a ps.fd that is $kind was not refused by name: $(cat "$T_LOG/psfd-$kind.out")"; return; }
	done
	runs_freely "$UPID" || { fail "the user's program does not run on after the refusals"; return; }
	rc=$(attack psfd dump-ps "$UPID" "$img" --ps-fd "127.0.0.1:$PS_PORT")
	grep -q "success=True" "$T_LOG/psfd.out" || { fail "the dump over the user's ps.fd failed: $(cat "$T_LOG/psfd.out")" "$img/dump.log"; return; }
	ps_wait ps || return
	compgen -G "$T_WORK/remote/pagemap-$UPID.img" > /dev/null || fail "the server wrote no pagemap-$UPID.img"
	! compgen -G "$img/pages-*.img" > /dev/null || fail "the dump wrote pages locally"
}

# 9. A dump serving its lazy pages (RPC lazy_pages) hands the tree's
# memory to whoever connects to the port, and a PAGE_SERVER with
# lazy_pages hands out images: a user asking for either is refused by
# name, nothing listens on the port, and the program runs on.
test_sec_rpc_lazy_dump() {
	local rc img=$T_WORK/user/img port
	sec_setup || return
	user_counter victim || return
	as_user mkdir "$img"
	install -m 644 "$ROOT/tests/py/rpc_drive.py" "$T_WORK/"
	port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	timeout -k 5 "$TMO" runuser -u "$RPC_USER" -- "$PYTHON" "$T_WORK/rpc_drive.py" --sk "$SVC_SOCK" lazydump "$UPID" \
		"$img" "$port" > "$T_LOG/lazydump.out" 2>&1 < /dev/null
	grep -q "^dump failed .*lazy pages is for root clients only" "$T_LOG/lazydump.out" ||
		fail "a user's dump with lazy_pages was not refused by name: $(cat "$T_LOG/lazydump.out")"
	! grep -q '^ready' "$T_LOG/lazydump.out" || fail "the user's lazy dump said status-ready"
	! ss -Htln "sport = :$port" | grep -q . || fail "something listens on port $port after the refusal"
	runs_freely "$UPID" || fail "the user's program does not run on after the refusal"
	timeout -k 5 "$TMO" runuser -u "$RPC_USER" -- "$PYTHON" "$T_WORK/rpc_drive.py" --sk "$SVC_SOCK" page_server \
		"$img" --lazy > "$T_LOG/lazyps.out" 2>&1 < /dev/null
	grep -q "^FAIL: page server request failed: PAGE_SERVER is for root clients only" "$T_LOG/lazyps.out" ||
		fail "a user's PAGE_SERVER with lazy_pages was not refused by name: $(cat "$T_LOG/lazyps.out")"
}

run_test sec.symlinks test_sec_symlinks
run_test sec.symlinks_root_dump test_sec_symlinks_root_dump
run_test sec.opath_status_fd test_sec_opath_status_fd
run_test sec.single_pre_dump test_sec_single_pre_dump
run_test sec.exec_at_predump test_sec_exec_at_predump
run_test sec.opath_ghost test_sec_opath_ghost
run_test sec.opath_restored test_sec_opath_restored
run_test sec.unreadable_images test_sec_unreadable_images
run_test sec.user_tree test_sec_user_tree
run_test sec.link_remap test_sec_link_remap
run_test sec.root_only test_sec_root_only
run_test sec.forged_uts test_sec_forged_uts
run_test sec.ipc_ns_dump test_sec_ipc_ns_dump
run_test sec.mnt_ns_dump test_sec_mnt_ns_dump
run_test sec.forged_mnt test_sec_forged_mnt
run_test sec.forged_userns test_sec_forged_userns
run_test sec.userns_dump test_sec_userns_dump
run_test sec.rpc_tls_key test_sec_rpc_tls_key
run_test sec.rpc_ps_fd test_sec_rpc_ps_fd
run_test sec.rpc_lazy_dump test_sec_rpc_lazy_dump
