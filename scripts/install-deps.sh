#!/usr/bin/env bash
# Installs the Debian packages stasis needs to build and test, if missing.
# Run as root. Safe to run again: it installs only what is absent.
set -euo pipefail

need=() need_rec=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_hdr() { [ -e "/usr/include/$1" ]; }

have_cmd gcc || need+=(gcc)
have_hdr assert.h || need+=(libc6-dev)
have_cmd make || need+=(make)
have_cmd protoc-c || need+=(protobuf-c-compiler)
have_hdr protobuf-c/protobuf-c.h || need+=(libprotobuf-c-dev)
have_hdr nftables/libnftables.h || need+=(libnftables-dev)   # the network lock (--network-lock nftables)
have_hdr xxhash.h || need+=(libxxhash-dev)   # image checksums (XXH3)
have_hdr gnutls/gnutls.h || need+=(libgnutls28-dev)   # the page server's --tls
have_cmd iptables-restore || need+=(iptables)   # the network lock's default, iptables (as CRIU)
have_cmd nft || need+=(nftables)          # tests look at the lock's table
have_cmd crit || need+=(criu)            # crit, to check every image we write
have_cmd python3 || need+=(python3)
have_cmd script || need+=(bsdutils)      # `script` gives tests a real terminal
have_cmd setsid || need+=(util-linux)
have_cmd bc || need+=(bc)
have_cmd xxhsum || need+=(xxhash)       # checksums.* check our hashes with xxHash's own tool
have_cmd pgrep || need+=(procps)
have_cmd unshare || need+=(util-linux)
have_cmd pkg-config || need+=(pkg-config)   # the libstasis tests build through its .pc file
have_cmd runuser || need+=(util-linux)    # the non-root RPC client test
have_cmd useradd || need+=(passwd)
have_cmd mount || need+=(mount)            # a test hides a file under a bind mount
have_cmd man || need+=(man-db)             # install.make_install renders the manual page
have_cmd ip || need+=(iproute2)            # netlink tests and ip monitor, a real netlink program
have_cmd tar || need+=(tar)                # a mount namespace's tmpfs contents, as CRIU keeps them
have_cmd curl || need+=(curl)              # netns.*: a web server in a network namespace
have_cmd openssl || need+=(openssl)        # pageserver.tls makes its certificates
# containers (tests/cases/mntns.sh, runtime.sh): a static busybox for
# their root, and the runtimes that drive stasis as their criu
{ [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; } || need+=(busybox-static)
have_cmd runc || need+=(runc)
have_cmd podman || need_rec+=(podman)     # with its recommends: its default network (netavark)
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null ||
	need+=(postgresql)                 # real.postgresql: a database checkpointed
have_cmd nginx || need+=(nginx-light)      # real.nginx_workers: a web server with workers
have_cmd redis-server || need+=(redis-server)   # real.redis: threads, a data set, BGSAVE's fork
have_cmd tmux || need+=(tmux)              # real.tmux_session: a terminal multiplexer's server
have_cmd node || need+=(nodejs)            # real.node_cluster: a Node.js cluster
have_cmd javac || need+=(openjdk-17-jdk-headless)   # real.java: a JVM (its test compiles a class)
have_cmd mariadbd || need+=(mariadb-server)   # real.mariadb: InnoDB, its threads and reservations
have_cmd go || need+=(golang-go)           # real.go: a Go program (its test builds it)
[ -x /usr/sbin/apache2 ] || need+=(apache2)   # real.apache_event: a web server with threaded children
have_cmd memcached || need+=(memcached)   # real.memcached: worker threads and a client kept over TCP
# the fuzz test (tests/cases/fuzz.sh): clang, and libFuzzer + sanitizer runtimes
have_cmd clang || need+=(clang)
compgen -G '/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a' >/dev/null ||
	need+=(libclang-rt-dev)
# crun with checkpoint support (scripts/build-crun.sh sets it; CI runs
# it): dpkg-source to unpack Debian's source, and crun's build deps
if [ -n "${STASIS_TEST_CRUN:-}" ]; then
	have_cmd dpkg-source || need+=(dpkg-dev)
	have_cmd xz || need+=(xz-utils)
	have_hdr seccomp.h || need+=(libseccomp-dev)
	have_hdr yajl/yajl_tree.h || need+=(libyajl-dev)
	have_hdr sys/capability.h || need+=(libcap-dev)
	have_cmd gperf || need+=(gperf)
fi
# install.deb (opt-in, STASIS_TEST_DEB=1, as CI runs it): Debian's
# packaging tools, and mmdebstrap for the fresh root it installs into
if [ -n "${STASIS_TEST_DEB:-}" ]; then
	have_cmd dpkg-buildpackage || need+=(dpkg-dev)
	dpkg -s build-essential >/dev/null 2>&1 || need+=(build-essential)   # dpkg-checkbuilddeps wants it
	have_cmd dh || need+=(debhelper)
	have_cmd lintian || need+=(lintian)
	have_cmd mmdebstrap || need+=(mmdebstrap)
fi

if [ ${#need[@]} -eq 0 ] && [ ${#need_rec[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "stasis needs these Debian packages: ${need[*]} ${need_rec[*]} (run as root to install them)" >&2
	exit 1
fi
echo "installing: ${need[*]} ${need_rec[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
[ ${#need[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
[ ${#need_rec[@]} -eq 0 ] || apt-get install -y -qq "${need_rec[@]}" >/dev/null
