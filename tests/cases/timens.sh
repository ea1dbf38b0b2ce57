# Time namespaces (src/task/timens.c): a tree in one of its own is saved
# and comes back in a new one (tests/progs/timens.c, its scenarios); a
# nested one is refused at dump, in one line, and the tree runs on.

# test_timens_refused HOW MESSAGE: timens HOW (kids, child) makes the
# nested namespace.
test_timens_refused() {
	local how=$1 msg=$2 pid rc
	start_prog timens "$BIN/timens" "$how"
	pid=$PROG_PID
	wait_ready timens "$pid" || return
	rc=$(stasis dump dump -t "$pid" -D "$T_WORK/img")
	[[ $rc != 0 ]] || { fail "the dump did not refuse the nested time namespace ($how)"; return; }
	grep -qE "^Error: pid [0-9]+: $msg" "$T_LOG/dump.stderr" || fail "message: $(error_message dump)"
	(($(wc -l < "$T_LOG/dump.stderr") == 1)) || fail "more than one line on stderr" "$T_LOG/dump.stderr"
	[[ ! -e $T_WORK/img/inventory.img ]] || fail "the failed dump left an inventory.img"
	runs_freely "$pid" || { fail "the program does not run freely after the refused dump"; return; }
	kill -USR1 "$pid"
	wait_child "$pid"
	check_output timens
}

run_test --needs kernel:time_namespaces timens.refused.kids test_timens_refused kids \
	"made a time namespace for its children to come .*nested time namespaces can't be dumped"
run_test --needs kernel:time_namespaces timens.refused.child test_timens_refused child \
	"in a time namespace other than the root's .*nested time namespaces can't be dumped"
