# Installing stasis as a system tool (issue 18): make install and
# uninstall into a DESTDIR, the CRIU compatibility names, `--version`, the
# RPC service started as systemd's stasis.socket starts it (LISTEN_FDS),
# and the Debian packages built with dpkg-buildpackage and installed into
# a fresh Debian 12 root (opt-in, --needs deb: about 3 minutes).
#
# Named install.*: scripts/vm61.sh leaves them out of the 6.1 VM run (they
# build in the host's tree, or test plumbing that no kernel interface
# changes; the RPC service itself runs there in rpc.*).

SOCKET_ACTIVATE=$ROOT/tests/py/socket_activate.py

# make_install TAG DESTDIR TARGETS...: make TARGETS DESTDIR=..., output in
# T_LOG/TAG.out.
make_install() {
	local tag=$1 dest=$2
	shift 2
	note "make $* DESTDIR=$dest"
	make -C "$ROOT" -s "$@" DESTDIR="$dest" > "$T_LOG/$tag.out" 2>&1 ||
		fail "make $* failed" "$T_LOG/$tag.out"
}

# What is left under DIR but directories.
files_under() { find "$1" ! -type d -printf '%P\n' | sort; }

# make install-criu-compat: `criu` and `crit` run stasis, libcriu.so.2 is
# libstasis under libcriu's soname and works as libcriu (a program loading
# it by that name checks the kernel through stasis), the units name the
# installed binary; make uninstall then leaves no file behind.
test_install_compat() {
	local dest=$T_WORK/inst p left
	p=$dest/usr/local
	make_install install "$dest" install install-criu-compat || return
	files_under "$dest" > "$T_LOG/installed.txt"
	[[ $(readlink "$p/sbin/criu") == stasis ]] || fail "sbin/criu is not a link to stasis" "$T_LOG/installed.txt" || return
	[[ $(readlink -f "$p/bin/crit") == "$(readlink -f "$p/sbin/stasis")" ]] ||
		fail "bin/crit does not lead to sbin/stasis" "$T_LOG/installed.txt" || return
	"$p/sbin/criu" --version > "$T_LOG/criu-version.out" 2>&1 && grep -q '^Version: ' "$T_LOG/criu-version.out" ||
		fail "the installed criu --version" "$T_LOG/criu-version.out" || return
	"$p/bin/crit" --help > "$T_LOG/crit-help.out" 2>&1
	grep -q 'decode' "$T_LOG/crit-help.out" || fail "the installed crit is not stasis's crit" "$T_LOG/crit-help.out" || return
	objdump -p "$p/lib/libcriu.so.2" > "$T_LOG/libcriu.objdump" 2>&1
	grep -Eq 'SONAME +libcriu\.so\.2$' "$T_LOG/libcriu.objdump" ||
		fail "lib/libcriu.so.2 has not libcriu's soname" "$T_LOG/libcriu.objdump" || return
	# as crun does: dlopen("libcriu.so.2"), then libcriu's calls
	LD_LIBRARY_PATH=$p/lib PATH=$p/sbin:$PATH timeout "$TMO" "$PYTHON" -c '
import ctypes
lib = ctypes.CDLL("libcriu.so.2")
assert lib.criu_init_opts() == 0, "criu_init_opts"
r = lib.criu_check()
print("criu_check", r)
raise SystemExit(r != 0)' > "$T_LOG/libcriu.out" 2>&1 ||
		fail "criu_check() through the installed libcriu.so.2 failed" "$T_LOG/libcriu.out" || return
	grep -qx "ExecStart=/usr/local/sbin/stasis service" "$p/lib/systemd/system/stasis.service" ||
		fail "the installed stasis.service does not run /usr/local/sbin/stasis" "$p/lib/systemd/system/stasis.service" || return

	make_install uninstall "$dest" uninstall || return
	left=$(files_under "$dest")
	[[ -z $left ]] || fail "make uninstall left: $(echo $left)"
}
run_test install.criu_compat test_install_compat

# `stasis --version`: the release of the file VERSION, which is also the
# Debian package's version, and the commit the binary was built from.
test_install_version() {
	local want_v want_c got_c
	"$STASIS" --version > "$T_LOG/version.out" 2>&1 || fail "stasis --version failed" "$T_LOG/version.out" || return
	want_v=$(cat "$ROOT/VERSION")
	grep -qx "Version: $want_v" "$T_LOG/version.out" || fail "no line 'Version: $want_v'" "$T_LOG/version.out" || return
	# a commit of this repository (the binary may be older than HEAD),
	# or out of git the release's tag
	got_c=$(sed -n 's/^GitID: //p' "$T_LOG/version.out")
	got_c=${got_c%-dirty}
	if git -C "$ROOT" rev-parse --git-dir > /dev/null 2>&1; then
		git -C "$ROOT" cat-file -e "${got_c##*-g}^{commit}" 2> /dev/null ||
			fail "GitID '$got_c' is no commit of $ROOT" "$T_LOG/version.out" || return
	else
		[[ $got_c == "v$want_v" ]] || fail "GitID '$got_c' out of git, want v$want_v" "$T_LOG/version.out" || return
	fi
	[[ $(sed -n '1s/^stasis (\([^)]*\)).*/\1/p' "$ROOT/debian/changelog") == "$want_v" ]] ||
		fail "debian/changelog's version is not VERSION ($want_v)" "$ROOT/debian/changelog"
}
run_test install.version test_install_version

# The service as systemd's units start it: socket_activate.py makes the
# socket stasis.socket describes (SOCK_SEQPACKET, its mode) and execs
# stasis.service's command with LISTEN_FDS; a python program dumps itself
# through it with pycriu (use_sk), and pycriu restores it through it. The
# socket is systemd's: the service leaves it when stopped. A LISTEN_PID
# that is not the service's is someone else's and is not taken.
test_install_socket_activation() {
	local sk=$T_WORK/stasis.sock svc pid exe rc mode out=$T_LOG/selfdump.out
	# the units' sources: a make here would race install.criu_compat's
	start_prog service "$PYTHON" "$SOCKET_ACTIVATE" "$ROOT/systemd/stasis.socket" \
		"$ROOT/systemd/stasis.service.in" "$sk" "$STASIS" -v4 -o "$T_LOG/service.log"
	svc=$PROG_PID
	wait_until "$TMO" test -S "$sk" || fail "no socket at $sk" "$T_LOG/service.err" || return
	mode=$(stat -c %a "$sk")
	[[ $mode == 600 ]] || fail "the socket's mode is $mode, not stasis.socket's 0600" || return
	wait_until "$TMO" grep -q "serving on the socket systemd passed" "$T_LOG/service.log" ||
		fail "the service did not take the socket from LISTEN_FDS" "$T_LOG/service.log" || return
	grep -q '^ExecStart: @SBINDIR@/stasis service$' "$T_LOG/service.err" ||
		fail "stasis.service's command: $(cat "$T_LOG/service.err")" || return

	start_prog selfdump "$PYTHON" "$ROOT/tests/py/selfdump.py" --sk "$sk" "$T_WORK/img" 1
	pid=$PROG_PID
	exe=$(readlink -f "$PYTHON")
	wait_until "$TMO" test -e "$T_WORK/img/1/inventory.img" ||
		fail "the self-dump made no images: $(grep -h FAIL "$out" "$T_LOG/selfdump.err")" "$T_LOG/service.log" || return
	expect_killed "$pid" || return
	decode_images "$T_WORK/img/1" dump
	rc=$(rpc_run restore --sk "$sk" restore "$T_WORK/img/1")
	[[ $rc == 0 ]] || fail "pycriu restore() through the service failed: $(cat "$T_LOG/restore.out")" "$T_WORK/img/1/restore.log" || return
	has_line "$T_LOG/restore.out" "restored $pid" || fail "restore reply: $(cat "$T_LOG/restore.out"), want pid $pid" || return
	wait_until "$TMO" has_line "$T_LOG/selfdump.err" "RESTORED 1" ||
		fail "the restored copy did not learn it was restored: $(tail -2 "$T_LOG/selfdump.err")" || return
	touch "$T_WORK/img/go-1"
	wait_gone "$pid" "$TMO" || fail "the program did not finish after its restore" || return
	grep -q FAIL "$out" && { fail "$(grep -m1 FAIL "$out")"; return; }
	check_sequence "$out" || return

	kill -TERM "$svc"
	wait_gone "$svc" "$TMO" || fail "the service did not stop on SIGTERM" || return
	[[ -S $sk ]] || fail "the stopped service removed systemd's socket" || return

	# LISTEN_PID of another process: not ours, and there is no --address
	LISTEN_FDS=1 LISTEN_PID=1 timeout "$TMO" "$STASIS" service 3< /dev/null > "$T_LOG/other_pid.out" 2>&1
	grep -q -- "--address" "$T_LOG/other_pid.out" ||
		fail "the service took LISTEN_FDS meant for pid 1: $(cat "$T_LOG/other_pid.out")"
}
run_test install.socket_activation test_install_socket_activation

# What runs inside the fresh root (install.deb): apt installs the
# packages, the installed stasis checks the kernel, and a shell counter is
# dumped and restored through the installed `criu` name. One "KEY value"
# line per result, for the test to check.
DEB_ROOT_SCRIPT='
export DEBIAN_FRONTEND=noninteractive PATH=/usr/sbin:/usr/bin:/sbin:/bin
apt-get update -qq || exit 1
apt-get install -y -q --no-install-recommends /tmp/debs/stasis_*.deb /tmp/debs/libstasis1_*.deb \
	/tmp/debs/libstasis-dev_*.deb /tmp/debs/stasis-criu-compat_*.deb || exit 1
echo "INSTALLED $(dpkg-query -W -f "\${Package}:\${Status} " stasis libstasis1 libstasis-dev stasis-criu-compat)"
[ -L /etc/systemd/system/sockets.target.wants/stasis.socket ] && echo "ENABLED stasis.socket"
echo "VERSION $(stasis --version | head -n 1)"
stasis check > /tmp/check.out 2>&1
echo "CHECK $?"
setsid sh -c "i=0; while :; do i=\$((i+1)); echo \$i; sleep 0.05; done" > /tmp/counter.out 2> /dev/null < /dev/null &
pid=$!
sleep 1
mkdir /tmp/img
criu dump -t "$pid" -D /tmp/img -o dump.log -v4
echo "DUMP $?"
sleep 0.5
kill -0 "$pid" 2> /dev/null && echo "ALIVE_AFTER_DUMP"
n=$(wc -l < /tmp/counter.out)
criu restore -D /tmp/img -d -o restore.log -v4 --pidfile /tmp/restore.pid
echo "RESTORE $? $(cat /tmp/restore.pid 2> /dev/null) $pid"
sleep 1.5
echo "COUNTED $n $(wc -l < /tmp/counter.out)"
kill -9 "$pid" 2> /dev/null
'

# A Debian 12 root made by mmdebstrap, as ../shared/tools/fresh-root-ci.sh
# makes it (its tar, /tmp/fresh-root.tar, if there), else made once and
# kept in STASIS_FRESH_ROOT_TAR. Echoes the tar's path.
fresh_root_tar() {
	local tar=${STASIS_FRESH_ROOT_TAR:-/var/tmp/stasis-fresh-root.tar}
	[[ -s /tmp/fresh-root.tar ]] && { echo /tmp/fresh-root.tar; return; }
	if [[ ! -s $tar ]]; then
		note "mmdebstrap bookworm $tar"
		mmdebstrap --variant=apt --format=tar --include=ca-certificates bookworm "$tar.new" > "$T_LOG/mmdebstrap.log" 2>&1 &&
			mv "$tar.new" "$tar" || { fail "mmdebstrap could not make a Debian 12 root" "$T_LOG/mmdebstrap.log"; return 1; }
	fi
	echo "$tar"
}

# The Debian packages: dpkg-buildpackage -b from a copy of the tree (what
# git would commit, as a fresh clone has it, and the GitID of this
# checkout), lintian with every warning or error explained in
# debian/README.source, then apt installs them into a fresh Debian 12
# root, where the installed stasis checks the kernel and dumps and
# restores a shell counter through the `criu` name: the count goes on.
# in_fresh_root ROOT: its /tmp/check.sh run there, with a /proc. The
# /proc is mounted in a mount namespace of its own, gone with its last
# process, never left under T_WORK for the cleanup's rm -rf to walk into;
# in a chroot (no mount namespace can make / private there) it is
# mounted here and taken away after.
in_fresh_root() {
	local root=$1 rc
	if root_is_mount; then
		timeout -k 5 600 unshare -m --propagation private \
			sh -c 'mount -t proc proc "$1/proc" && exec chroot "$1" /bin/bash /tmp/check.sh' sh "$root"
		return
	fi
	mount -t proc proc "$root/proc" || return
	timeout -k 5 600 chroot "$root" /bin/bash /tmp/check.sh
	rc=$?
	umount -l "$root/proc"
	return $rc
}

test_install_deb() {
	local src=$T_WORK/src/stasis root=$T_WORK/root out=$T_LOG/root.out tar tag p unexplained= n m
	mkdir -p "$src" "$root" || return
	(cd "$ROOT" && git ls-files -co --exclude-standard --deduplicate | tar --ignore-failed-read -cf - -T -) 2> "$T_LOG/copy.err" |
		tar -C "$src" -xf - || fail "can't copy the tree" "$T_LOG/copy.err" || return
	note "dpkg-buildpackage -b -us -uc in $src"
	(cd "$src" && GITID=$(git -C "$ROOT" describe --always --dirty --abbrev=12 2> /dev/null) \
		timeout 900 dpkg-buildpackage -b -us -uc) > "$T_LOG/build.log" 2>&1 ||
		fail "dpkg-buildpackage failed" "$T_LOG/build.log" || return
	for p in stasis libstasis1 libstasis-dev stasis-criu-compat; do
		compgen -G "$T_WORK/src/${p}_*.deb" > /dev/null || fail "no package $p was built" "$T_LOG/build.log" || return
	done
	dpkg-deb -x "$T_WORK"/src/stasis_*.deb "$T_WORK/x" && "$T_WORK/x/usr/sbin/stasis" --version > "$T_LOG/deb-version.out" 2>&1
	grep -q "^GitID: .*$(git -C "$ROOT" rev-parse --short=12 HEAD 2> /dev/null || echo "v$(cat "$ROOT/VERSION")")" "$T_LOG/deb-version.out" ||
		fail "the packaged stasis does not name the commit built from" "$T_LOG/deb-version.out" || return

	note "lintian"
	lintian --pedantic "$T_WORK"/src/stasis_*.changes > "$T_LOG/lintian.out" 2>&1
	for tag in $(awk '$1 ~ /^[WE]:$/ { print $3 }' "$T_LOG/lintian.out" | sort -u); do
		grep -q -- "$tag" "$ROOT/debian/README.source" || unexplained+=" $tag"
	done
	[[ -z $unexplained ]] || fail "lintian tags not explained in debian/README.source:$unexplained" "$T_LOG/lintian.out" || return

	tar=$(fresh_root_tar) || return
	tar -C "$root" -xf "$tar" || fail "can't unpack $tar" || return
	cp /etc/resolv.conf "$root/etc/resolv.conf"
	mkdir -p "$root/tmp/debs" && cp "$T_WORK"/src/*.deb "$root/tmp/debs/" && rm -f "$root"/tmp/debs/*-dbgsym_*
	printf '%s\n' "$DEB_ROOT_SCRIPT" > "$root/tmp/check.sh"
	note "apt install and stasis in the fresh root $root"
	in_fresh_root "$root" > "$out" 2>&1
	grep -q "^INSTALLED .*stasis:install ok installed" "$out" && ! grep "^INSTALLED" "$out" | grep -qv "ok installed " ||
		fail "apt could not install the packages into the fresh root" "$out" || return
	grep -q "^INSTALLED .*stasis-criu-compat:install ok installed" "$out" || fail "stasis-criu-compat not installed" "$out" || return
	grep -q "^ENABLED stasis.socket" "$out" || fail "installing did not enable stasis.socket" "$out" || return
	grep -qx "VERSION Version: $(cat "$ROOT/VERSION")" "$out" || fail "the installed stasis --version" "$out" || return
	grep -qx "CHECK 0" "$out" || fail "stasis check failed in the fresh root: $(cat "$root/tmp/check.out")" "$out" || return
	grep -qx "DUMP 0" "$out" || fail "criu (stasis) dump failed in the fresh root" "$root/tmp/img/dump.log" || return
	grep -q "^ALIVE_AFTER_DUMP" "$out" && { fail "the counter still runs after its dump" "$out"; return; }
	grep -Eq "^RESTORE 0 ([0-9]+) \1$" "$out" || fail "criu (stasis) restore failed in the fresh root: $(grep ^RESTORE "$out")" "$root/tmp/img/restore.log" || return
	read -r _ n m < <(grep "^COUNTED" "$out")
	((m > n + 5)) || fail "the restored counter did not count on ($n lines before, $m after)" "$out" || return
	check_sequence "$root/tmp/counter.out"
}
run_test --needs deb install.deb test_install_deb
