# Lazy migration from a finished dump (CRIU's `page-server --lazy-pages`):
# the dump is written whole to DIR and the tree is gone; `stasis
# page-server --lazy-pages -D DIR` serves the lazy pages of DIR's images
# to the other side's `lazy-pages --page-server --address A --port P`,
# whose restore --lazy-pages runs the tree from a copy of the images
# while its memory arrives over TCP (PS_IOV_GET of CRIU's page-server
# protocol). tests/progs/lazymem.c checks every word of its memory. With
# a pre-dump before the dump, what did not change since is restored from
# the parent's images and only the rest is lazy. Garbage on the server's
# port (a silent connection, noise, a request for pages that are not
# lazy) is dropped and the next daemon served; the server ends once a
# daemon has ended its session. Uses lazy.sh's helpers and pageserver.sh's
# ps_start.

# le64 N: N as the 8 bytes of a little-endian u64, for printf.
le64() {
	local n=$1 i out=
	for ((i = 0; i < 8; i++)); do
		out+=$(printf '\\x%02x' $((n & 255)))
		n=$((n >> 8))
	done
	echo "$out"
}

# lpi_garbage TAG PID: a connection that says nothing, noise, and a
# PS_IOV_GET of a page of PID that is no lazy page (at 0x1000): each
# dropped, the server waiting for the next.
lpi_garbage() {
	local tag=$1 pid=$2 fd
	exec {fd}<>/dev/tcp/127.0.0.1/"$PS_PORT" && exec {fd}>&-
	exec {fd}<>/dev/tcp/127.0.0.1/"$PS_PORT" && { head -c 100 /dev/urandom >&$fd; sleep 0.2; exec {fd}>&-; }
	exec {fd}<>/dev/tcp/127.0.0.1/"$PS_PORT" &&
		{ printf "$(le64 7)$(le64 1)$(le64 4096)$(le64 "$pid")" >&$fd; sleep 0.2; exec {fd}>&-; }
	wait_until 5 test "$(grep -c "that connection is dropped" "$T_LOG/$tag.log")" -ge 3 ||
		fail "$tag: the server did not drop the three garbage connections" "$T_LOG/$tag.log"
	grep -q "asked for 1 pages at 0x1000 of pid $pid, which are no lazy pages" "$T_LOG/$tag.log" ||
		fail "$tag: the request for pages that are not lazy was not refused" "$T_LOG/$tag.log"
	alive "$PS_PID" || { fail "$tag: the lazy page server died of garbage on its port" "$T_LOG/$tag.log"; return 1; }
}

# lpi_daemon DIR: stasis's `lazy-pages --page-server` from the server
# (ready when it returns): LAZY_PID; its log lazy.log.
lpi_daemon() {
	local rc
	rc=$(stasis lazy lazy-pages -D "$1" --page-server --address 127.0.0.1 --port "$PS_PORT" -d \
		--pidfile "$T_WORK/lazy.pid")
	[[ $rc == 0 ]] || { fail "lazy-pages --page-server exited $(rc_text "$rc"): $(error_message lazy)" "$T_LOG/lazy.log"; return 1; }
	LAZY_PID=$(pidfile_pid "$T_WORK/lazy.pid")
	T_PIDS+=("$LAZY_PID")
}

# lpi_restore DIR MIN_KIB: restore --lazy-pages from DIR, the program
# checked, the daemon done, and (unless MIN_KIB is empty) the server
# done: at least MIN_KIB KiB served.
lpi_restore() {
	local dir=$1 min_kib=$2
	lazy_restore restore "$dir"
	wait_restored restore "$PID" "$EXE" 1 "$RESTORE_PID" || return
	restore_was_lazy restore
	kill -USR1 "$PID"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output lazymem
	[[ $CHILD_RC == 0 ]] || fail "foreground restore exited $CHILD_RC (the program's status)" "$T_LOG/lazymem.out"
	lazy_done lazy || return
	[[ -z $min_kib ]] || lpi_done "$min_kib"
}

# lpi_done MIN_KIB: the server ended well once the daemon was done,
# having served at least MIN_KIB KiB.
lpi_done() {
	local kib
	wait_child "$PS_PID" "$TMO"
	[[ $CHILD_RC == 0 ]] || { fail "the lazy page server exited $CHILD_RC" "$T_LOG/ps.log"; return 1; }
	kib=$(sed -n 's/.*lazy pages: the daemon is done, \([0-9]*\) KiB served.*/\1/p' "$T_LOG/ps.log")
	note "the page server served ${kib:-?} KiB"
	[[ -n $kib ]] && ((kib >= $1)) || fail "the page server served ${kib:-?} KiB, not the ${1}+ KiB lazy" "$T_LOG/ps.log"
}

# A plain dump, served from its own directory, the restore beside it.
test_lpi_same_dir() {
	lazymem_dumped 64 || return
	ps_start ps "$T_WORK/img" --lazy-pages || return
	lpi_garbage ps "$PID" || return
	lpi_daemon "$T_WORK/img" || return
	lpi_restore "$T_WORK/img" 60000
	[[ -z $(find "$T_WORK/img" -newer "$T_WORK/img/inventory.img" -name '*.img') ]] ||
		fail "the page server changed the images: $(find "$T_WORK/img" -newer "$T_WORK/img/inventory.img" -name '*.img')"
}
run_test lazyps.images_same_dir test_lpi_same_dir

# The same asked over RPC (a PAGE_SERVER request with lazy_pages, through
# `stasis swrk`): the reply names the server's pid and port; the server,
# no child of ours, ends once the daemon is done.
test_lpi_rpc() {
	local out kib
	lazymem_dumped 64 || return
	out=$(timeout -k 5 "$TMO" "$PYTHON" "$ROOT/tests/py/rpc_drive.py" --bin "$STASIS" page_server "$T_WORK/img" --lazy 2>&1)
	[[ $out =~ ^ps\ ([0-9]+)\ ([0-9]+)$ ]] || { fail "PAGE_SERVER with lazy_pages answered: $out" "$T_WORK/img/ps.log"; return 1; }
	PS_PID=${BASH_REMATCH[1]} PS_PORT=${BASH_REMATCH[2]}
	T_PIDS+=("$PS_PID")
	lpi_daemon "$T_WORK/img" || return
	lpi_restore "$T_WORK/img" "" || return
	wait_gone "$PS_PID" "$TMO" || { fail "the RPC's lazy page server did not end after the daemon" "$T_WORK/img/ps.log"; return 1; }
	kib=$(sed -n 's/.*lazy pages: the daemon is done, \([0-9]*\) KiB served.*/\1/p' "$T_WORK/img/ps.log")
	[[ -n $kib ]] && ((kib >= 60000)) || fail "the RPC's page server served ${kib:-?} KiB, not the 60000+ KiB lazy" "$T_WORK/img/ps.log"
}
run_test lazyps.images_rpc test_lpi_rpc

# A pre-dump, half the memory rewritten, the dump with it as parent: the
# other side restores from a copy of both, the unchanged half from the
# parent's pages and the rewritten half (the dump's own pages, the only
# lazy ones) from the server.
test_lpi_predump() {
	local rc
	start_prog lazymem "$BIN/lazymem" 64 rewrite
	PID=$PROG_PID
	wait_ready lazymem "$PID" || return
	EXE=$(readlink "/proc/$PID/exe")
	mkdir -p "$T_WORK/img/1" "$T_WORK/img/2"
	rc=$(stasis pre pre-dump -t "$PID" -D "$T_WORK/img/1")
	[[ $rc == 0 ]] || { fail "pre-dump exited $(rc_text "$rc"): $(error_message pre)" "$T_LOG/pre.log"; return 1; }
	kill -USR2 "$PID"
	wait_until "$TMO" has_line "$T_LOG/lazymem.out" REWRITTEN || { fail "lazymem did not rewrite its memory"; return 1; }
	dump dump "$PID" "$T_WORK/img/2" --prev-images-dir ../1 --track-mem || return
	expect_killed "$PID" || return
	grep -q "KiB in the parent dump" "$T_LOG/dump.log" || { fail "the dump did not use its parent" "$T_LOG/dump.log"; return 1; }
	cp -a "$T_WORK/img" "$T_WORK/dst"
	ps_start ps "$T_WORK/img/2" --lazy-pages || return
	lpi_daemon "$T_WORK/dst/2" || return
	lpi_restore "$T_WORK/dst/2" 30000 || return
	local kib
	kib=$(sed -n 's/.*lazy pages: the daemon is done, \([0-9]*\) KiB served.*/\1/p' "$T_LOG/ps.log")
	((kib < 50000)) || fail "the server served $kib KiB: the pages left to the parent went lazily too" "$T_LOG/ps.log"
}
run_test lazyps.images_predump test_lpi_predump

# A byte of the pages file damaged after the dump: the server refuses to
# serve it, naming the file, before it listens (CRIU's protocol carries no
# checksum, so the source is where it is checked); --skip-checksums serves
# it anyway.
test_lpi_damaged() {
	local rc off
	lazymem_dumped 64 || return
	off=$(($(stat -c %s "$T_WORK/img/pages-1.img") / 2))
	printf '\x5a' | dd of="$T_WORK/img/pages-1.img" bs=1 seek="$off" conv=notrunc status=none
	rc=$(stasis ps page-server --lazy-pages -D "$T_WORK/img" --address 127.0.0.1 --port 0)
	[[ $rc != 0 ]] || { fail "page-server --lazy-pages served a damaged pages file"; return 1; }
	grep -q "pages-1.img.*(--skip-checksums" "$T_LOG/ps.log" ||
		fail "the refusal does not name pages-1.img: $(error_message ps)" "$T_LOG/ps.log"
	! grep -q "listening on" "$T_LOG/ps.log" || fail "the server listened before it refused" "$T_LOG/ps.log"
	ps_start ps2 "$T_WORK/img" --lazy-pages --skip-checksums || return
	kill "$PS_PID"
}
run_test lazyps.images_damaged test_lpi_damaged

# CRIU's lazy-pages daemon fetches from stasis's server for CRIU's
# restore of stasis's images (as zdtm's remote lazy-pages flavour).
test_lpi_criu() {
	lazymem_dumped 64 tree || return
	ps_start ps "$T_WORK/img" --lazy-pages || return
	timeout -k 5 $((TMO * 3)) "$CRIU_BIN" lazy-pages -D "$T_WORK/img" --page-server --address 127.0.0.1 \
		--port "$PS_PORT" -d --pidfile "$T_WORK/criu-lazy.pid" -o "$T_LOG/criu-lazy.log" -v4 \
		> "$T_LOG/criu-lazy.stderr" 2>&1 < /dev/null ||
		{ fail "criu lazy-pages --page-server -d failed" "$T_LOG/criu-lazy.log"; return 1; }
	LAZY_PID=$(pidfile_pid "$T_WORK/criu-lazy.pid")
	T_PIDS+=("$LAZY_PID")
	timeout -k 5 "$TMO" "$CRIU_BIN" restore -D "$T_WORK/img" -d --lazy-pages --pidfile "$T_WORK/restore.pid" \
		-o "$T_LOG/criu-restore.log" -v4 > "$T_LOG/criu-restore.stderr" 2>&1 < /dev/null ||
		{ fail "criu restore --lazy-pages failed" "$T_LOG/criu-restore.log"; return 1; }
	wait_restored restore "$PID" "$EXE" 1 || return
	kill -USR1 "$PID"
	wait_until $((TMO * 2)) has_line "$T_LOG/lazymem.out" PASS
	check_output lazymem
	wait_gone "$LAZY_PID" "$TMO" || fail "CRIU's lazy-pages daemon did not end" "$T_LOG/criu-lazy.log"
	lpi_done 60000
}
run_test --needs criu lazyps.images_criu test_lpi_criu

# The other way: CRIU's dump, served by stasis's page server to stasis's
# daemon and restore.
test_lpi_from_criu() {
	local rc
	start_prog lazymem "$BIN/lazymem" 64
	PID=$PROG_PID
	wait_ready lazymem "$PID" || return
	EXE=$(readlink "/proc/$PID/exe")
	mkdir -p "$T_WORK/img"
	timeout -k 5 "$TMO" "$CRIU_BIN" dump -t "$PID" -D "$T_WORK/img" -o "$T_LOG/criu-dump.log" -v4 \
		> "$T_LOG/criu-dump.out" 2>&1 < /dev/null
	rc=$?
	[[ $rc == 0 ]] || { fail "CRIU could not dump (rc $rc)" "$T_LOG/criu-dump.log"; return 1; }
	expect_killed "$PID" || return
	ps_start ps "$T_WORK/img" --lazy-pages || return
	lpi_daemon "$T_WORK/img" || return
	lpi_restore "$T_WORK/img" 60000
}
run_test --needs criu lazyps.images_from_criu test_lpi_from_criu
