# Process trees seen from outside: a signature of the tree to compare
# after each restore, and the checks that every process of it went with
# a dump, came back, or ended with the root.

# tree_signature ROOT: one line per process of the tree, as the tree's own
# pid namespace sees it, sorted by pid:
#   PID ppid=PPID pgid=G sid=S state=X comm=NAME tids=T1,T2,...
# The root's ppid is "-" (a detached restore re-parents it).  The state is
# Z, T or t as such, anything else (running, sleeping) "r".  A restore must
# reproduce this exactly; a --leave-running dump must not change it.
tree_signature() {
	local root=$1 p st pp comm tids
	for p in $(tree_members "$root"); do
		st=$(proc_state "$p") || continue
		case $st in Z | T | t) ;; *) st=r ;; esac
		if [[ $p == "$root" ]]; then
			pp=-
		else
			pp=$(ns_pid "$(status_field "$p" PPid)")
		fi
		comm=$(tr ' ' _ < "/proc/$p/comm" 2>/dev/null)
		tids=$(awk '$1 == "NSpid:" { print $NF }' /proc/$p/task/*/status 2>/dev/null | sort -n | paste -sd, -)
		echo "$(ns_pid "$p") ppid=$pp pgid=$(ns_field "/proc/$p/status" NSpgid)" \
			"sid=$(ns_field "/proc/$p/status" NSsid) state=$st comm=$comm tids=$tids"
	done | sort -n
}

tree_is() { [[ $(tree_signature "$1") == "$2" ]]; }

# expect_tree TAG ROOT SIGNATURE: within 5 s the tree under ROOT must look
# exactly like SIGNATURE (see tree_signature).  The difference goes to
# T_LOG/TAG.tree-diff.
expect_tree() {
	local tag=$1 root=$2 want=$3 got first
	wait_until 5 tree_is "$root" "$want" && return 0
	got=$(tree_signature "$root")
	diff -u <(echo "$want") <(echo "$got") > "$T_LOG/$tag.tree-diff"
	first="$(grep -m1 '^-[0-9]' "$T_LOG/$tag.tree-diff") / $(grep -m1 '^+[0-9]' "$T_LOG/$tag.tree-diff")"
	fail "$tag: the tree differs from the dumped one (want / got): $first" "$T_LOG/$tag.tree-diff"
}

# Add every process of the tree under ROOT to what cleanup kills.
track_tree() {
	local p
	for p in $(tree_members "$1"); do
		T_PIDS+=("$p")
	done
}

# tree_start LABEL CMD...: start a tree program and wait for READY.  Sets
# TREE_ROOT, TREE_EXE, TREE_PIDS (every process of the tree) and TREE_SIG.
tree_start() {
	local label=$1
	shift
	start_prog "$label" "$@"
	TREE_ROOT=$PROG_PID
	wait_ready "$label" "$TREE_ROOT" || return
	tree_snapshot "$TREE_ROOT"
}

tree_snapshot() {
	TREE_EXE=$(readlink "/proc/$1/exe")
	mapfile -t TREE_PIDS < <(tree_members "$1")
	T_PIDS+=("${TREE_PIDS[@]}")
	TREE_SIG=$(tree_signature "$1")
	echo "$TREE_SIG" > "$T_LOG/tree.txt"
	note "tree under $1: ${#TREE_PIDS[@]} processes (T_LOG/tree.txt)"
}

# After a dump without --leave-running: every process of the tree is gone,
# and no pid of it is held any more, not even by a zombie (the restore
# needs them free).
expect_tree_killed() {
	wait_until "$TMO" no_live_pids "${TREE_PIDS[@]}" || {
		fail "processes $(live_pids "${TREE_PIDS[@]}" | tr '\n' ' ')of the tree still alive after a dump without --leave-running"
		return 1
	}
	wait "$TREE_ROOT" 2>/dev/null
	wait_until 5 tree_gone "${TREE_PIDS[@]}" || {
		fail "pids of the dumped tree still held (zombies?) 5 s after the dump"
		return 1
	}
}

# Every process of the tree must end with the root (no helper left
# behind).
tree_finished() {
	wait_until 5 tree_gone "${TREE_PIDS[@]}" ||
		fail "processes of the tree left after the root exited: $(for p in "${TREE_PIDS[@]}"; do [[ -e /proc/$p ]] && echo -n "$p ($(proc_state "$p")) "; done)"
}

# restored_tree_passes PROG IMG: IMG restored in the foreground, the tree
# (PROG's, from tree_start) checks itself on SIGUSR1: its root exits 0,
# its output is PROG's, and no process of it is left.
restored_tree_passes() {
	local prog=$1 img=$2
	restore_foreground restore "$img"
	wait_restored restore "$TREE_ROOT" "$TREE_EXE" 1 "$RESTORE_PID" || return
	expect_tree restore "$TREE_ROOT" "$TREE_SIG"
	kill -USR1 "$TREE_ROOT"
	wait_child "$RESTORE_PID" $((TMO * 2))
	check_output "$prog"
	[[ $CHILD_RC == 0 ]] || fail "the restored $prog exited $CHILD_RC" "$T_LOG/$prog.out"
	tree_finished
}

# A restore that failed must not leave any process of the tree behind:
# add those that are still there after 5 s to the failure reason.
failed_restore_leftovers() {
	wait_until 5 tree_gone "${TREE_PIDS[@]}" && return 0
	T_FAIL+="; and it left processes behind: $(existing_pids "${TREE_PIDS[@]}")"
	note "the failed restore left processes behind: $(existing_pids "${TREE_PIDS[@]}")"
}
