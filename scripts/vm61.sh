#!/usr/bin/env bash
# Runs the test suite, built on this host, on Debian 12's own kernel (6.1)
# in a qemu VM: the kernel most Debian 12 machines run, which lacks
# interfaces the host's newer kernel has (PAGEMAP_SCAN, userfaultfd
# WP_ASYNC, eventfd's mode in fdinfo) and so takes stasis's fallbacks.
#
#   scripts/vm61.sh [-k PATTERN]    (as root, after ./test.sh built the tree)
#
# The VM comes from the team's kvm tools (../shared/tools/kvm, or
# $STASIS_KVM_TOOLS): they install qemu and build a Debian 12 image once
# (~3 min, ~2 GB) into $STASIS_VM_DIR (default /var/tmp/stasis-vm61), kept
# for the next run while the tools are unchanged. Under TCG (no usable KVM
# here) the guest runs about 8x slower than the host.
#
# Without -k it runs every test that exercises stasis on the kernel, which
# is all but these (listed in SKIP_ON_VM below, ~70 of ~400): the `.plain`
# runs, which run a test program without stasis; fuzz.decoders, which
# exercises the image decoders only (no kernel) for ~8 min of emulated CPU;
# the kills after a fixed delay, whose timing means nothing under emulation
# (the kills at named steps stay); the repeats of a named step at a later
# count; a program's `.restore` where its `.chain` dumps and restores
# the same state twice; `make install` and the other install.* tests
# (tests/cases/package.sh: they build in the host's tree, render the
# manual page, build the .deb, or start the service as systemd does,
# plumbing no kernel changes; the service itself runs here in rpc.*);
# real.postgresql, real.mariadb, real.java, real.node_cluster and real.go
# (the VM image has no database server, JVM, Node.js or Go); what does not depend
# on the kernel (config.*, crit.*, stats.*, actions.*, checksums.*, the page
# server's protocol checks). Nor does it decode each
# dump's images with crit (STASIS_TEST_DECODE=0): the format is the same
# code on every kernel, checked by the host run, and python's start
# under emulation cost seconds a dump. Test lines are printed as the
# runner prints them, names prefixed "6.1:", then the slowest tests; the
# last line is the runner's `N passed, N failed`.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TOOLS=${STASIS_KVM_TOOLS:-$ROOT/../shared/tools/kvm}
VMDIR=${STASIS_VM_DIR:-/var/tmp/stasis-vm61}
PATTERN=
SKIP_ON_VM='\.plain$|^fuzz\.|^fail\.kill_dumper_[0-9.]+s$|^fail\.kill_dumper_(at|counter)\..*_[0-9]+$'
SKIP_ON_VM+='|^(mem_anon|mem_file|vector_regs|signals|files|rlimits|writer|rseq_tls)\.restore$'
SKIP_ON_VM+='|^(unix\.(pairs|server|dgram)|tree\.(forktree|threads))\.restore$'
SKIP_ON_VM+='|^install\.'	# install.* of tests/cases/install.sh and package.sh: see above
# the VM image has no PostgreSQL or MariaDB (the kvm tools choose its
# packages), nor a JVM, Node.js or Go (a JVM's or Node's start alone is
# tens of seconds emulated)
SKIP_ON_VM+='|^real\.(postgresql(_ipcns)?|mariadb|java|node_cluster|go)$'
# What does not depend on the kernel runs on the host only, to keep the
# VM part (emulated, ~10x slower) within its time: the option and config
# parsing, crit, the stats images and action scripts.
SKIP_ON_VM+='|^(config|crit|stats|actions)\.'
# Likewise the image checksums (hashing files) and the page server's
# protocol checks (garbage, hang-ups, slow clients, TLS, RPC plumbing);
# its transfers of a tree's memory stay (pageserver.stasis, chains, dedup).
SKIP_ON_VM+='|^checksums\.|^pageserver\.(attacks|server_hangs|server_dies|tls|rpc_request|daemon_and_socket)$'
TIMEOUT=${STASIS_VM_TIMEOUT:-3600}

die() { echo "vm61: $*" >&2; echo "0 passed, 1 failed"; exit 1; }

while getopts "k:" opt; do
	case $opt in
	k) PATTERN=$OPTARG ;;
	*) echo "usage: $0 [-k PATTERN]" >&2; exit 2 ;;
	esac
done

[ -x "$TOOLS/build-vm.sh" ] && [ -x "$TOOLS/vm-run.sh" ] ||
	die "no VM tools at $TOOLS (set STASIS_KVM_TOOLS to the kvm tools' directory)"
[ -x "$ROOT/build/stasis" ] && [ -d "$ROOT/build/tests" ] ||
	die "build the tree first (./test.sh, or make && make -C tests)"

# The archive of a suite in /etc/apt/sources.list ("deb URI SUITE ..."), if any.
list_mirror() {
	awk -v want="$1" '$1 == "deb" {
		i = 2; if ($2 ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }
		if ($(i + 1) == want) { print $i; exit } }' /etc/apt/sources.list 2>/dev/null
}

# Guest packages the tests use beyond the tools' own list: busybox for the
# container tests (mntns.*), curl for the web server in a network namespace
# and the servers' tests (tests/cases/servers.sh), nginx, Redis, tmux,
# Apache and memcached.
export EXTRA_PKGS="busybox-static curl nginx-light redis-server tmux apache2 memcached"
# The image is rebuilt when the tools that make it, or that list, change.
stamp=$( (cat "$TOOLS"/build-vm.sh "$TOOLS"/vm-init "$TOOLS"/initrd-init.c; echo "$EXTRA_PKGS") | sha256sum | cut -c1-16)
if [ "$(cat "$VMDIR/stasis.stamp" 2>/dev/null)" != "$stamp" ] || [ ! -r "$VMDIR/rootfs.img" ]; then
	echo "vm61: building the Debian 12 VM image in $VMDIR (about 3 minutes)" >&2
	rm -rf "$VMDIR" && mkdir -p "$VMDIR" && cp "$TOOLS"/* "$VMDIR"/ ||
		die "can't copy the VM tools to $VMDIR"
	# build-vm.sh finds the archive in deb822 sources; a fresh debootstrapped
	# root has a one-line sources.list instead
	export MIRROR=${MIRROR:-$(list_mirror bookworm)} SECMIRROR=${SECMIRROR:-$(list_mirror bookworm-security)}
	[ -n "$MIRROR" ] || unset MIRROR
	[ -n "$SECMIRROR" ] || unset SECMIRROR
	"$VMDIR/build-vm.sh" > "$VMDIR/build.log" 2>&1 ||
		die "building the VM image failed: $(tail -n 3 "$VMDIR/build.log" | tr '\n' ' ')"
	echo "$stamp" > "$VMDIR/stasis.stamp"
fi

# The runner takes one bash regex: the chosen names become one, exactly.
if [ -z "$PATTERN" ]; then
	names=$("$ROOT/tests/run.sh" -l | grep -E '^[a-z]' | grep -v -E "$SKIP_ON_VM" |
		sed 's/[].[\\*^$()+?{}|]/\\&/g' | paste -sd'|')
	PATTERN="^($names)\$"
fi

# In the guest, /host is this tree, read-write; logs go to the guest's /tmp.
q=$(printf '%q' "$PATTERN")
# The guest's /tmp, where tests make their files, is mounted nodev: the
# test containers' /dev/null (tests/cases/mntns.sh) could not be opened.
# Each wait of a test gets 30 s there (20 on the host): under emulation a
# loaded CI machine ran a 128 MiB live snapshot in 14 s.
cmd="mount -o remount,dev /tmp; echo \"6.1: kernel \$(uname -r)\"; STASIS_TEST_TIMEOUT=${STASIS_VM_TEST_TIMEOUT:-30} STASIS_TEST_LOGS=/tmp/stasis-tests STASIS_TEST_DECODE=0 STASIS_TEST_SLOWEST=${STASIS_TEST_SLOWEST:-25} tests/run.sh -k $q"
"$VMDIR/vm-run.sh" "$ROOT" "$cmd" "$TIMEOUT" 2>&1 |
	sed -u -E 's/^(PASS|FAIL|SKIP) /\1 6.1:/'
rc=${PIPESTATUS[0]}
[ "$rc" = 124 ] && die "the VM run timed out after ${TIMEOUT}s"
exit "$rc"
