#!/usr/bin/env bash
# Builds crun with checkpoint support against libstasis as its libcriu, as
# a user would (README, "Containers"): Debian's crun has none. Debian's
# source package (`apt-get source crun`), configured with the build tree's
# criu.pc (`make build/lib/criu-compat/criu.pc`), built outside the
# repository. crun dlopens libcriu.so.2 at run time: the crun built here
# works with any stasis tree's build/lib on LD_LIBRARY_PATH.
#
#   scripts/build-crun.sh      (as root: it installs crun's build deps)
#
# Result: $STASIS_CRUN_DIR/crun (default /var/tmp/stasis-crun/crun), which
# the runtime.crun_* tests drive. Run again, it does only what is missing
# (about a minute the first time, most of it crun's configure and make).
# Needs Debian's package mirror (STASIS_DEBIAN_MIRROR, default
# deb.debian.org), not the internet.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${STASIS_CRUN_DIR:-/var/tmp/stasis-crun}
MIRROR=${STASIS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")

die() { echo "build-crun: $*" >&2; exit 1; }

STASIS_TEST_CRUN=1 "$ROOT/scripts/install-deps.sh" # crun's build deps
make -s -C "$ROOT" build/lib/criu-compat/criu.pc

# The source, as `apt-get source crun` gets it with a deb-src line, but
# through a source list and apt state of our own under DIR: the machine's
# apt sources and caches stay as they are.
mkdir -p "$DIR/apt/lists/partial" "$DIR/apt/cache/archives/partial"
echo "deb-src $MIRROR $SUITE main" > "$DIR/apt/sources.list"
apt_o=(-o Dir::Etc::SourceList="$DIR/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
	-o Dir::State::Lists="$DIR/apt/lists" -o Dir::Cache="$DIR/apt/cache" -o APT::Sandbox::User=root)
if ! compgen -G "$DIR/crun_*.dsc" > /dev/null; then
	apt-get "${apt_o[@]}" update -qq || die "apt-get update of $MIRROR $SUITE's sources failed"
	(cd "$DIR" && apt-get "${apt_o[@]}" source --download-only -qq crun) ||
		die "apt-get source crun failed (from $MIRROR $SUITE)"
fi
dsc=$(compgen -G "$DIR/crun_*.dsc" | sort -V | tail -n 1)
ver=$(sed -n 's/^Version: //p' "$dsc")
src=$DIR/crun-${ver%-*}
# (apt checked the files against the archive's signed index: dpkg-source's
# warning that it has no key for the .dsc's own signature goes to a log)
[ -d "$src" ] || dpkg-source -x "$dsc" "$src" > "$DIR/unpack.log" 2>&1 ||
	die "dpkg-source could not unpack $dsc: $DIR/unpack.log"

# CRIU support needs criu > 3.16.1 in pkg-config (criu.pc: 4.2.0 and
# libstasis's criu.h); systemd's cgroup driver is left out (it would
# want libsystemd-dev, which pulls a newer systemd onto the machine).
cd "$src"
if [ ! -f config.status ]; then
	PKG_CONFIG_PATH=$ROOT/build/lib/criu-compat ./configure --disable-systemd > "$DIR/configure.log" 2>&1 ||
		die "crun's configure failed: $DIR/configure.log"
fi
make -j"$(nproc)" > "$DIR/make.log" 2>&1 || die "crun's make failed: $DIR/make.log"
./crun --version | grep -q '+CRIU' || die "crun built without checkpoint support: see $DIR/configure.log"
install -m 0755 crun "$DIR/crun"
echo "$DIR/crun: $("$DIR/crun" --version | head -n 1), $("$DIR/crun" --version | tail -n 1)"
