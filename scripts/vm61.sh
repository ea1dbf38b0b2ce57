#!/usr/bin/env bash
# Runs the test suite, built on this host, on Debian 12's own kernel (6.1)
# in a qemu VM: the kernel most Debian 12 machines run, which lacks
# interfaces the host's newer kernel has (PAGEMAP_SCAN, userfaultfd
# WP_ASYNC, eventfd's mode in fdinfo) and so takes stasis's fallbacks.
#
#   scripts/vm61.sh [-a | -k PATTERN] [-l]   (as root, after ./test.sh built the tree)
#
# -l lists the tests it would run, and runs nothing.
#
# The VM comes from the team's kvm tools (../shared/tools/kvm, or
# $STASIS_KVM_TOOLS): they install qemu and build a Debian 12 image once
# (~3 min, ~2 GB) into $STASIS_VM_DIR (default /var/tmp/stasis-vm61), kept
# for the next run while the tools are unchanged. Under TCG (no usable KVM
# here) the guest runs about 8x slower than the host.
#
# With -a it runs every test that exercises stasis on the kernel, which
# is all but these (listed in SKIP_ON_VM below, ~120 of ~690): the `.plain`
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
# under emulation cost seconds a dump. That is ~570 tests, ~80 of which
# skip (CRIU's, the runtimes'): ~55 minutes on a quiet machine, over CI's
# hour in CI (it timed out with ~430 done).
#
# Without -a or -k, as CI runs it, it runs each kind of kernel state once
# on 6.1, ~355 tests of which ~265 run (~33 minutes; ONLY_WITH_ALL below):
# a program's `.leave_running` and its `.restore` (where a `.chain` of it
# restores too) stay on the host: the dump's way back (the cure of the
# injected code) and the restore are the same code for every kind, and
# run here in the `.chain`s, in pre-dumps and live snapshots (which leave
# the tree running) and in KEPT_IN_CI.
# So do the layers above the kernel: the service's transports and
# attacks (rpc.*, sec.*, lib.*: a few stay, which pin their client by
# pid on 6.1, not SO_PEERPIDFD), refusals and damaged or missing images
# (checks in stasis's code), progress display, kills at more points of
# an injected call than three, and the failure variants of network
# locking, TCP and the page server.
#
# Test lines are printed as the runner prints them, names prefixed "6.1:",
# then the slowest tests; the last line is the runner's `N passed, N
# failed`. Every test's time ends in build/vm61.timings.
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
# CI's run leaves these to -a (see above).
ONLY_WITH_ALL='\.leave_running$|(^|\.|_)refused|damaged|corrupt|truncated|_failed$|failed_(dump|restore)$'
ONLY_WITH_ALL+='|_(bin|unpriv)$|_disk_full$|no_gnutls|_undo$|^progress\.'
ONLY_WITH_ALL+='|^rpc\.(version|notify|malformed|hangup|selfdump|rst_sibling|pid_busy|unpriv_)'
ONLY_WITH_ALL+='|^sec\.(netns|forged|single_pre|exec_at|opath_(status|ghost)|unreadable|link_remap|root_only|ipc_ns|rpc_|symlinks_root)'
ONLY_WITH_ALL+='|^lib\.(service|notify|veto|bad_service|restore_child|criu_swrk)$'
ONLY_WITH_ALL+='|^fail\.(no_inventory|pid_busy|no_such_pid|missing_dir|empty_dir|dump_missing_dir|tree_bad_rlimit)$'
ONLY_WITH_ALL+='|^fail\.(dump|restore)_cut\.([a-z-]+_[0-9]+|.*_helpers)$'
ONLY_WITH_ALL+='|^fail\.kill_dumper_at\.(scratch-taken|way-back-written|mask-blocked|resumed|resumed-exit|syscall-exit|park-mask)$'
ONLY_WITH_ALL+='|^netlock\.(check|no_libnftables|skip|join_ns_path|join_ns_iptables|join_ns_other|rpc)$'
ONLY_WITH_ALL+='|^tcp\.(address_taken|close_dumped_closed|check_ipt_legacy|outside_stream_nft|reset_peer|rpc)$'
ONLY_WITH_ALL+='|^files\.(ghost_limit|missing|replaced|size_changed|build_id_changed|external)$'
ONLY_WITH_ALL+='|^pageserver\.(same_dir|auto_dedup_server|rpc.*)$|^lazyps\.(images_same_dir|images_rpc|source_dead_early|rpc_sk)$'
ONLY_WITH_ALL+='|^lazy\.(check|no_daemon|rpc_sk)$|^mntns\.(subdir|link_remap_escape|nested_host_root|skip|rpc)$'
ONLY_WITH_ALL+='|^anon_fds\.(timerfd_scripts|timerfd_bad_time)$|^predump\.(feature_check|rpc|rpc_loop|stale_parent)$'
# ... but for these: the way back from a dump, by a thread of many and
# by a process with its anonymous memory
KEPT_IN_CI='^(tree\.threads|mem_anon)\.leave_running$'
TIMEOUT=${STASIS_VM_TIMEOUT:-3600}

die() { echo "vm61: $*" >&2; echo "0 passed, 1 failed"; exit 1; }

ALL=0 LIST=0
while getopts "ak:l" opt; do
	case $opt in
	a) ALL=1 ;;
	k) PATTERN=$OPTARG ;;
	l) LIST=1 ;;
	*) echo "usage: $0 [-a | -k PATTERN] [-l]" >&2; exit 2 ;;
	esac
done

[ -x "$TOOLS/build-vm.sh" ] && [ -x "$TOOLS/vm-run.sh" ] ||
	die "no VM tools at $TOOLS (set STASIS_KVM_TOOLS to the kvm tools' directory)"
[ -x "$ROOT/build/stasis" ] && [ -d "$ROOT/build/tests" ] ||
	die "build the tree first (./test.sh, or make && make -C tests)"

# ci_choice: of the names on stdin, those CI's run takes (see above).
ci_choice() {
	re=$ONLY_WITH_ALL keep=$KEPT_IN_CI awk '$0 !~ ENVIRON["re"] || $0 ~ ENVIRON["keep"] { name[++n] = $0; have[$0] = 1 }
		END { for (i = 1; i <= n; i++) {
			k = name[i]; p = substr(k, 1, length(k) - 8)
			if (k ~ /\.restore$/ && ((p ".chain") in have || (p ".chain3") in have)) continue
			print k } }'
}
# The runner takes one bash regex: the chosen names become one, exactly.
if [ -z "$PATTERN" ]; then
	chosen=$("$ROOT/tests/run.sh" -l | grep -E '^[a-z]' | grep -v -E "$SKIP_ON_VM" |
		if [ "$ALL" = 1 ]; then cat; else ci_choice; fi)
	PATTERN="^($(sed 's/[].[\\*^$()+?{}|]/\\&/g' <<<"$chosen" | paste -sd'|'))\$"
fi
if [ "$LIST" = 1 ]; then
	if [ -n "${chosen+set}" ]; then
		printf '%s\n' "$chosen"
	else
		"$ROOT/tests/run.sh" -l | grep -E '^[a-z]' | grep -E "$PATTERN"
	fi
	exit
fi

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

# In the guest, /host is this tree, read-write; logs go to the guest's /tmp.
q=$(printf '%q' "$PATTERN")
# The guest's /tmp, where tests make their files, is mounted nodev: the
# test containers' /dev/null (tests/cases/mntns.sh) could not be opened.
# Each wait of a test gets 30 s there (20 on the host): under emulation a
# loaded CI machine ran a 128 MiB live snapshot in 14 s.
cmd="mount -o remount,dev /tmp; echo \"6.1: kernel \$(uname -r)\"; STASIS_TEST_TIMEOUT=${STASIS_VM_TEST_TIMEOUT:-30} STASIS_TEST_LOGS=/tmp/stasis-tests STASIS_TEST_DECODE=0 STASIS_TEST_SLOWEST=${STASIS_TEST_SLOWEST:-25} tests/run.sh -k $q; rc=\$?; cp /tmp/stasis-tests/timings build/vm61.timings 2>/dev/null; exit \$rc"
"$VMDIR/vm-run.sh" "$ROOT" "$cmd" "$TIMEOUT" 2>&1 |
	sed -u -E 's/^(PASS|FAIL|SKIP) /\1 6.1:/'
rc=${PIPESTATUS[0]}
[ "$rc" = 124 ] && die "the VM run timed out after ${TIMEOUT}s"
exit "$rc"
