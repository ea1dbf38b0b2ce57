# The declared tests. The runner reads every tests/cases/*.sh, whose
# run_test lines record their tests here (nothing runs yet), and the
# "test" lines of progs/*.c (lib/scenarios.sh); then it knows each test's
# name, command and needs before it starts any. A worker reads the same
# files for their functions only (its run_test does nothing).

DECL_NAMES=() DECL_CMDS=() DECL_NEEDS=() DECL_ALONE=()
declare -A DECL_SEEN=()

declaration_error() {
	echo "run.sh: declaration error: $*" >&2
	exit 2
}

# run_test [--alone] [--needs NEED]... NAME FUNCTION [ARGS...]
#   --alone       run with no other test at the same time: the test
#                 depends on something global (pid numbering, a system
#                 setting), on its timing, or loads the whole machine
#   --needs NEED  skipped, saying why, where NEED does not hold (need_reason)
# Names must be unique; -k PATTERN selects by name.
run_test() {
	local alone=0 needs=() name
	while [[ ${1:-} == --* ]]; do
		case $1 in
		--alone) alone=1 ;;
		--needs)
			need_known "${2:-}" || declaration_error "run_test: no need '${2:-}' (see need_reason)"
			needs+=("$2")
			shift
			;;
		*) declaration_error "run_test: unknown option $1" ;;
		esac
		shift
	done
	name=${1:-}
	(($# >= 2)) || declaration_error "run_test $name: no function to run"
	shift
	[[ -z ${DECL_SEEN[$name]:-} ]] || declaration_error "test $name is declared twice"
	DECL_SEEN[$name]=1
	[[ -z $PATTERN || $name =~ $PATTERN ]] || return 0
	DECL_NAMES+=("$name")
	DECL_CMDS+=("$(printf '%q ' "$@")")
	DECL_NEEDS+=("${needs[*]}")
	DECL_ALONE+=("$alone")
}

# Every test function must exist: a misspelt one is found before the run.
check_declared_functions() {
	local i fn
	for i in "${!DECL_CMDS[@]}"; do
		eval "set -- ${DECL_CMDS[i]}"
		fn=$1
		declare -F "$fn" > /dev/null || declaration_error "test ${DECL_NAMES[i]}: no function $fn"
	done
}

# ---------------------------------------------------------------------------
# Needs
# ---------------------------------------------------------------------------

need_known() {
	case $1 in
	criu | uffd | memtrack | hugepages | deb | runc | podman | crun-built | mntroot | kernel:?*) return 0 ;;
	*) return 1 ;;
	esac
}

# need_reason NEED: nothing if this machine has NEED, else why not.
#   criu          CRIU_BIN names a CRIU binary (images exchanged with it)
#   uffd          pre-dump tracks memory with a userfaultfd (6.7+)
#   memtrack      pre-dump can track memory writes at all
#   hugepages     at least 8 free huge pages (vm.nr_hugepages) for MAP_HUGETLB
#   deb           STASIS_TEST_DEB=1 (opt-in, CI sets it: the .deb build and
#                 a fresh Debian root take minutes) and Debian's packaging
#                 tools (scripts/install-deps.sh installs them then)
#   runc, podman  the container runtime is installed (Debian's runc, podman),
#                 with Debian's static busybox for the container
#                 (busybox-static): tests/cases/runtime.sh; and mntroot
#   crun-built    crun_bin is a crun built with checkpoint support
#                 (scripts/build-crun.sh, from Debian's source: Debian's
#                 crun has none), and as runc above
#   mntroot       the root directory is a mount point, as on any machine
#                 but in a chroot (../shared/tools/fresh-root-ci.sh runs
#                 CI in one): a container's pivot_root, and the remount of
#                 / private that runc and podman make, need it
#   kernel:NAME   `stasis check` answers yes for NAME (spaces as _, e.g.
#                 kernel:time_namespaces, kernel:PAGEMAP_SCAN)
need_reason() {
	case $1 in
	criu)
		[[ -n ${CRIU_BIN:-} && -x ${CRIU_BIN:-} ]] ||
			echo "CRIU_BIN does not name a CRIU binary (set it to exchange images with CRIU)"
		;;
	uffd)
		[[ $(mem_track_method) == uffd ]] ||
			echo "no userfaultfd WP_ASYNC on this kernel (6.7+): pre-dump tracks with soft-dirty bits, no tracker fd"
		;;
	memtrack)
		[[ $(mem_track_method) != none ]] ||
			echo "this kernel can't track memory writes (no soft-dirty bits, no userfaultfd WP_ASYNC)"
		;;
	hugepages)
		(($(awk '/^HugePages_Free:/ { print $2 }' /proc/meminfo) >= 8)) ||
			echo "fewer than 8 free huge pages (raise vm.nr_hugepages)"
		;;
	deb)
		if [[ -z ${STASIS_TEST_DEB:-} ]]; then
			echo "opt-in: STASIS_TEST_DEB=1 builds the Debian packages and installs them into a fresh root (minutes; CI sets it)"
		elif ! command -v dh > /dev/null || ! command -v lintian > /dev/null || ! command -v mmdebstrap > /dev/null; then
			echo "needs debhelper, lintian and mmdebstrap (scripts/install-deps.sh with STASIS_TEST_DEB=1)"
		fi
		;;
	runc | podman | crun-built)
		if [[ $1 == crun-built ]] && ! "$(crun_bin)" --version 2> /dev/null | grep -q '+CRIU'; then
			echo "no crun with checkpoint support at $(crun_bin) (scripts/build-crun.sh builds it from Debian's source in about 2 minutes; STASIS_CRUN names another)"
		elif [[ $1 != crun-built ]] && ! command -v "$1" > /dev/null; then
			echo "$1 is not installed (apt-get install $1 busybox-static)"
		elif [[ ! -x /bin/busybox ]] || ldd /bin/busybox > /dev/null 2>&1; then
			echo "no static /bin/busybox for the container (apt-get install busybox-static)"
		else
			need_reason mntroot
		fi
		;;
	mntroot)
		root_is_mount ||
			echo "/ is not a mount point here (a chroot): a container can't pivot_root nor make / private"
		;;
	kernel:*)
		kernel_has "${1#kernel:}" || echo "this kernel lacks ${1#kernel:} (stasis check)"
		;;
	esac
}

# The crun the runtime.crun_* tests drive: scripts/build-crun.sh's.
crun_bin() { echo "${STASIS_CRUN:-/var/tmp/stasis-crun/crun}"; }

# Whether the root directory is a mount point: in a chroot, the mount
# holding it lies outside, and /proc/self/mountinfo has no line for "/".
root_is_mount() {
	awk '$5 == "/" { found = 1 } END { exit !found }' /proc/self/mountinfo
}

# kernel_has NAME: `stasis check` has a line "NAME  yes ...", NAME with
# its spaces written as _.
kernel_has() {
	local line
	while IFS= read -r line; do
		[[ $line =~ ^(.*[^ ])\ +(yes|no)(\ |$) ]] || continue
		[[ ${BASH_REMATCH[1]// /_} == "$1" ]] && [[ ${BASH_REMATCH[2]} == yes ]] && return 0
	done < <("$STASIS" check 2> /dev/null)
	return 1
}

# How this kernel lets pre-dump track memory writes, as `stasis check`
# says: uffd (userfaultfd WP_ASYNC, 6.7+), softdirty, or none.
mem_track_method() {
	case $("$STASIS" check 2> /dev/null | grep '^memory tracking ') in
	*userfaultfd*) echo uffd ;;
	*soft-dirty*) echo softdirty ;;
	*) echo none ;;
	esac
}
