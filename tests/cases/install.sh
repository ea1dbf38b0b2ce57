# make install: the binary, libstasis and the manual page land under
# DESTDIR, the binary runs, the page renders without warnings, and it names
# every long option of `stasis --help` (so the page can't fall behind the
# command line).

test_make_install() {
	local inst=$T_WORK/inst prefix opts o missing=
	prefix=$inst/usr/local
	note "make install DESTDIR=$inst"
	make -C "$ROOT" -s install DESTDIR="$inst" > "$T_LOG/make-install.out" 2>&1 ||
		{ fail "make install failed" "$T_LOG/make-install.out"; return; }
	find "$inst" | sort > "$T_LOG/installed.txt"

	local f
	for f in sbin/stasis share/man/man8/stasis.8 lib/libstasis.so.1 lib/libstasis.so \
		 lib/libstasis.a lib/pkgconfig/libstasis.pc include/criu/criu.h include/stasis.h; do
		[[ -e $prefix/$f ]] || fail "make install did not install $prefix/$f" "$T_LOG/installed.txt"
	done
	[[ -n $T_FAIL ]] && return 1
	[[ -x $prefix/sbin/stasis ]] || { fail "$prefix/sbin/stasis is not executable"; return; }

	"$prefix/sbin/stasis" --version > "$T_LOG/version.out" 2>&1 ||
		{ fail "the installed stasis --version failed" "$T_LOG/version.out"; return; }
	grep -q '^Version: ' "$T_LOG/version.out" ||
		{ fail "the installed stasis --version printed no 'Version:' line" "$T_LOG/version.out"; return; }

	# Rendered as man would show it; any warning of groff or man fails.
	MANWIDTH=80 man --warnings -l "$prefix/share/man/man8/stasis.8" \
		> "$T_LOG/page.raw" 2> "$T_LOG/page.warnings" ||
		{ fail "man could not render the installed page" "$T_LOG/page.warnings"; return; }
	[[ -s $T_LOG/page.warnings ]] &&
		{ fail "the page renders with warnings" "$T_LOG/page.warnings"; return; }
	sed 's/.\x08//g' "$T_LOG/page.raw" > "$T_LOG/page.txt"
	grep -q '^NAME' "$T_LOG/page.txt" || { fail "the rendered page has no NAME section" "$T_LOG/page.txt"; return; }

	opts=$("$ROOT/build/stasis" --help | grep -o -- '--[a-z][a-z-]*' | sort -u)
	[[ -n $opts ]] || { fail "stasis --help lists no long option"; return; }
	note "long options of --help: $(echo $opts)"
	for o in $opts; do
		grep -qF -- "$o" "$T_LOG/page.txt" || missing+=" $o"
	done
	[[ -z $missing ]] || fail "the manual page does not mention:$missing" "$T_LOG/page.txt"
}
run_test --alone install.make_install test_make_install
