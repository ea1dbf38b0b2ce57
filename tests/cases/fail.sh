# Failures that must be clean: damaged images, a pid in use, usage
# errors, a tree member exiting during the dump, a tree whose restore
# fails half way.

# Dump mem_anon (killing it), damage one image, restore must fail cleanly.
test_corrupt() {
	local what=$1 pid f size
	start_prog mem_anon "$BIN/mem_anon"
	pid=$PROG_PID
	wait_ready mem_anon "$pid" || return
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	case $what in
	core)
		f=$T_WORK/img/core-$pid.img
		[[ -f $f ]] || fail "no core-$pid.img in the dump" || return
		size=$(stat -c %s "$f")
		truncate -s $((size / 2)) "$f"
		note "truncated $f from $size to $((size / 2)) bytes"
		;;
	mm)
		f=$T_WORK/img/mm-$pid.img
		[[ -f $f ]] || fail "no mm-$pid.img in the dump" || return
		flip_bytes "$f"
		;;
	inventory)
		rm -f "$T_WORK/img/inventory.img"
		;;
	esac
	forget_checksums "$T_WORK/img"
	expect_restore_fails restore "$T_WORK/img" "$pid"
}

# Invert the first entry's size field (bytes 8-11, after the two magics)
# and 16 bytes in the middle: no reader can take this for a valid image.
flip_bytes() {
	"$PYTHON" - "$1" << 'EOF'
import sys
path = sys.argv[1]
data = bytearray(open(path, 'rb').read())
mid = len(data) // 2
for i in list(range(8, 12)) + list(range(mid, min(mid + 16, len(data)))):
    data[i] ^= 0xFF
open(path, 'wb').write(bytes(data))
EOF
	note "flipped bytes 8-11 and 16 from the middle of $1"
	if "$CRIT" decode -i "$1" > /dev/null 2>&1; then
		note "warning: crit still decodes the damaged $1"
	fi
}

# Restoring while the original still holds the pid must fail with "busy"
# or "in use" and leave the original alone.
test_pid_busy() {
	local pid rc msg
	start_prog mem_anon "$BIN/mem_anon"
	pid=$PROG_PID
	wait_ready mem_anon "$pid" || return
	dump dump "$pid" "$T_WORK/img" --leave-running || return
	rc=$(stasis restore restore -D "$T_WORK/img")
	[[ $rc != 0 ]] || fail "restore succeeded although pid $pid is in use" "$T_LOG/restore.log"
	[[ $rc != 124 && $rc != 137 ]] || fail "restore hung" "$T_LOG/restore.log"
	msg="$(cat "$T_LOG/restore.stderr" 2>/dev/null) $(grep -i -m3 'busy\|in use' "$T_LOG/restore.log" 2>/dev/null)"
	grep -qi 'busy\|in use' <<< "$msg" ||
		fail "error message does not say 'busy' or 'in use': $(error_message restore)" "$T_LOG/restore.log"
	runs_freely "$pid" || fail "original in state $(proc_state "$pid") after the refused restore" || return
	kill -USR1 "$pid"
	wait_child "$pid"
	check_output mem_anon
	[[ $CHILD_RC == 0 ]] || fail "original exited $CHILD_RC" "$T_LOG/mem_anon.err"
}

test_no_such_pid() {
	local pid rc
	sleep 0 &
	pid=$!
	wait "$pid"
	alive "$pid" && fail "harness: pid $pid reused already" && return
	mkdir -p "$T_WORK/img"
	rc=$(stasis dump dump -t "$pid" -D "$T_WORK/img")
	[[ $rc != 0 ]] || fail "dump of non-existent pid $pid succeeded" "$T_LOG/dump.log"
	[[ -n $(error_message dump) ]] || fail "no error message for a non-existent pid" "$T_LOG/dump.log"
	[[ ! -e $T_WORK/img/inventory.img ]] || fail "dump of non-existent pid left an inventory.img"
}

test_missing_dir() {
	expect_restore_fails restore "$T_WORK/does-not-exist" ""
}

# A dump into a directory that does not exist is refused (as CRIU does:
# a mistyped -D must not scatter images in a new directory), in one line
# naming it, before the tree is touched; nothing is made.
test_dump_missing_dir() {
	local pid rc dir=$T_WORK/no-such-dir
	start_prog mem_anon "$BIN/mem_anon"
	pid=$PROG_PID
	wait_ready mem_anon "$pid" || return
	note "stasis dump -t $pid -D $dir (not made)"
	"$STASIS" dump -t "$pid" -D "$dir" > "$T_LOG/dump.stdout" 2> "$T_LOG/dump.stderr" < /dev/null
	rc=$?
	[[ $rc != 0 ]] || fail "dump into a missing directory succeeded"
	grep -qx "Error: can't use images directory $dir: No such file or directory" "$T_LOG/dump.stderr" ||
		fail "message: $(head -n3 "$T_LOG/dump.stderr")"
	(($(wc -l < "$T_LOG/dump.stderr") == 1)) || fail "more than one line on stderr" "$T_LOG/dump.stderr"
	[[ ! -e $dir ]] || fail "the dump made $dir"
	runs_freely "$pid" || fail "pid $pid in state $(proc_state "$pid") after the refused dump" || return
	kill -USR1 "$pid"
	wait_child "$pid"
	check_output mem_anon
}

test_empty_dir() {
	mkdir -p "$T_WORK/empty"
	expect_restore_fails restore "$T_WORK/empty" ""
}

# A tree in which one process (child 2 of treeexit) exits about when the
# dump starts, DELAY ms after its setup.  Either outcome is fine, but it
# must be clean: a dump that succeeds restores to a tree that passes; a
# dump that fails says why and leaves every other process running
# (not stopped, not traced) and passing.
exit_attempt() {
	local n=$1 delay=$2 label=treeexit-$1 root rc exiter what p live
	start_prog "$label" "$BIN/treeexit" "$delay" 8
	root=$PROG_PID
	wait_ready "$label" "$root" || return
	rc=$(stasis "dump$n" dump -t "$root" -D "$T_WORK/img$n")
	exiter=$(awk '$1 == "INFO" && $2 == "exiter" { print $3 }' "$T_LOG/$label.out")
	case $rc in
	0)
		if [[ -f $T_WORK/img$n/core-$exiter.img ]]; then
			what="dumped it as $(crit decode -i "$T_WORK/img$n/core-$exiter.img" 2>/dev/null |
				"$PYTHON" -c 'import json,sys; print({1:"alive",2:"zombie",3:"stopped"}.get(json.load(sys.stdin)["entries"][0]["tc"]["task_state"],"?"))' 2>/dev/null)"
		else
			what="dumped the tree without it"
		fi
		note "attempt $n (delay ${delay} ms): the dump succeeded and $what"
		decode_images "$T_WORK/img$n" "dump$n"
		expect_killed "$root" || return
		restore_foreground "restore$n" "$T_WORK/img$n"
		wait_restored "restore$n" "$root" "$(readlink -f "$BIN/treeexit")" 1 "$RESTORE_PID" || return
		kill -USR1 "$root"
		wait_child "$RESTORE_PID" $((TMO * 2))
		check_output "$label"
		[[ $CHILD_RC == 0 ]] || fail "attempt $n: the dump succeeded ($what) but the restored root exited $CHILD_RC" \
			"$T_LOG/$label.out"
		;;
	124 | 137)
		fail "attempt $n (delay ${delay} ms): dump hung" "$T_LOG/dump$n.log"
		;;
	*)
		note "attempt $n (delay ${delay} ms): the dump failed (rc $rc): $(error_message "dump$n")"
		[[ -n $(error_message "dump$n") ]] || fail "attempt $n: the dump failed (rc $rc) without saying why" "$T_LOG/dump$n.log"
		[[ ! -f $T_WORK/img$n/inventory.img ]] || fail "attempt $n: the failed dump left an inventory.img"
		live=0
		for p in $(tree_members "$root"); do
			[[ $p == "$exiter" ]] && continue
			wait_until 5 runs_freely "$p" ||
				fail "attempt $n: after the failed dump pid $p is in state $(proc_state "$p"), TracerPid $(status_field "$p" TracerPid)" \
					"$T_LOG/dump$n.log" || return
			live=$((live + 1))
		done
		((live == 4)) || fail "attempt $n: $live processes of the tree left running after the failed dump, expected 4 (root and 3 children)" || return
		kill -USR1 "$root"
		wait_child "$root"
		check_output "$label"
		[[ $CHILD_RC == 0 ]] || fail "attempt $n: after the failed dump the tree exited $CHILD_RC" "$T_LOG/$label.out"
		;;
	esac
}

test_tree_exit_during_dump() {
	local d n=0
	for d in 0 5 15 40 100; do
		n=$((n + 1))
		exit_attempt "$n" "$d" || return
		kill_leftovers
	done
}

# Dump forktree, damage the image of a grandchild, and restore: the
# restore must fail (not hang), say why, and leave no process with any
# pid of the tree behind.  Then the undamaged image must still restore
# (nothing of the failed attempt is in the way).
#   core:   core-G.img cut in half (the restore fails while reading images)
#   rlimit: core-G.img decodes, but RLIMIT_CORE has cur > max: fails in the
#           middle, once the tree has been forked and partly rebuilt
#   pages:  G's pages-N.img cut in half: fails in the middle, while G's
#           memory is read in
#   checksum: a byte of G's pages-N.img flipped, its checksum kept: the
#           pages are checked beside the restore (by then the tree is
#           made), which must still refuse it by name, leaving nothing
test_tree_bad_image() {
	local what=$1 g p pp f id rc img=$T_WORK/img
	tree_start forktree "$BIN/forktree" || return
	for p in "${TREE_PIDS[@]}"; do
		pp=$(status_field "$p" PPid)
		[[ $p != "$TREE_ROOT" && $pp != "$TREE_ROOT" && $(status_field "$pp" PPid) == "$TREE_ROOT" ]] && g=$p && break
	done
	[[ -n ${g:-} ]] || fail "harness: no grandchild in the tree" || return
	dump dump "$TREE_ROOT" "$img" || return
	expect_tree_killed || return
	cp -a "$img" "$T_WORK/img.good"
	case $what in
	core)
		f=$img/core-$g.img
		truncate -s $(($(stat -c %s "$f") / 2)) "$f"
		note "cut $f in half"
		;;
	rlimit)
		f=$img/core-$g.img
		"$PYTHON" - "$f" << 'PY' || fail "harness: could not edit $f" || return
import sys
import pycriu
path = sys.argv[1]
img = pycriu.images.load(open(path, 'rb'))
lim = img['entries'][0]['tc']['rlimits']['rlimits'][4]   # RLIMIT_CORE
lim['cur'], lim['max'] = 100, 10
pycriu.images.dump(img, open(path, 'wb'))
PY
		note "set RLIMIT_CORE of $g to cur 100 > max 10 in $f"
		;;
	pages)
		id=$(crit decode -i "$img/pagemap-$g.img" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["entries"][0]["pages_id"])')
		f=$img/pages-$id.img
		[[ -s $f ]] || fail "harness: $f is missing or empty" || return
		truncate -s $(($(stat -c %s "$f") / 2)) "$f"
		note "cut $f ($g's pages) in half"
		;;
	checksum)
		id=$(crit decode -i "$img/pagemap-$g.img" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["entries"][0]["pages_id"])')
		f=$img/pages-$id.img
		[[ -s $f ]] || fail "harness: $f is missing or empty" || return
		"$PYTHON" -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(int(sys.argv[2])); b = f.read(1); f.seek(-1, 1); f.write(bytes([b[0] ^ 1]))' \
			"$f" $(($(stat -c %s "$f") / 2)) || fail "harness: could not edit $f" || return
		note "flipped a bit in the middle of $f ($g's pages), checksums kept"
		;;
	esac
	[[ $what == checksum ]] || forget_checksums "$img"
	rc=$(stasis restore restore -D "$img")
	[[ $rc != 0 ]] || fail "restore with a damaged image of grandchild $g succeeded" "$T_LOG/restore.log" || return
	[[ $rc != 124 && $rc != 137 ]] || fail "restore hung (killed after ${TMO}s)" "$T_LOG/restore.log" || return
	[[ -n $(error_message restore) ]] || fail "no error message on stderr or in the log" "$T_LOG/restore.log"
	note "restore failed: $(error_message restore)"
	wait_until 5 tree_gone "${TREE_PIDS[@]}" ||
		fail "the failed restore left processes behind: $(existing_pids "${TREE_PIDS[@]}")" "$T_LOG/restore.log" || return
	if [[ $what == checksum ]]; then
		grep -q "image pages-$id.img is damaged" <<< "$(error_message restore)" ||
			fail "the error does not name pages-$id.img as damaged: $(error_message restore)" "$T_LOG/restore.log" || return
		[[ $(grep -c . "$T_LOG/restore.stderr") == 1 ]] ||
			fail "not one line on stderr: $(cat "$T_LOG/restore.stderr")" "$T_LOG/restore.log" || return
	fi
	[[ $what == core ]] && return
	restore_detached restore-good "$T_WORK/img.good" "$TREE_ROOT" "$TREE_EXE" 1 || return
	expect_tree restore-good "$TREE_ROOT" "$TREE_SIG" || return
	kill -USR1 "$TREE_ROOT"
	wait_gone "$TREE_ROOT" || fail "restored forktree did not exit after SIGUSR1" "$T_LOG/forktree.out"
	check_output forktree
}

run_test fail.truncated_core test_corrupt core
run_test fail.damaged_mm test_corrupt mm
run_test fail.no_inventory test_corrupt inventory
run_test fail.pid_busy test_pid_busy
run_test fail.no_such_pid test_no_such_pid
run_test fail.missing_dir test_missing_dir
run_test fail.empty_dir test_empty_dir
run_test fail.dump_missing_dir test_dump_missing_dir
run_test fail.tree_exit_during_dump test_tree_exit_during_dump
run_test fail.tree_corrupt_core test_tree_bad_image core
run_test fail.tree_bad_rlimit test_tree_bad_image rlimit
run_test fail.tree_truncated_pages test_tree_bad_image pages
run_test fail.tree_damaged_pages test_tree_bad_image checksum
