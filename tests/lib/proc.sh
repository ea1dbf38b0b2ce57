# Process inspection and waiting: what the tests ask of /proc, and
# polling with a timeout. No per-test state.

# Field N (1-based, counting from "state") of /proc/PID/stat, after the
# command name, which may itself contain spaces and parentheses.
stat_field() {
	local s f
	{ read -r s < "/proc/$1/stat"; } 2>/dev/null || return 1
	s=${s##*) }
	read -r -a f <<< "$s"
	echo "${f[$2 - 1]}"
}

proc_state() { stat_field "$1" 1; }
proc_sid() { stat_field "$1" 4; }

# Alive = exists and is not a zombie.
alive() {
	local st
	st=$(proc_state "$1") || return 1
	[[ $st != Z && $st != X ]]
}

status_field() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null; }

# Running or sleeping normally: not stopped, not traced, not a zombie.
runs_freely() {
	local st
	st=$(proc_state "$1") || return 1
	[[ $st == [RSD] && $(status_field "$1" TracerPid) == 0 ]]
}

# Is SIGUSR1 caught (SigCgt bit 9)?  A restored process can take the signal
# only once its handlers are back.
catches_usr1() {
	local cgt
	cgt=$(status_field "$1" SigCgt) || return 1
	(((0x$cgt >> 9) & 1))
}

# wait_until SECONDS CMD...: poll CMD every 50 ms; 1 on timeout.
wait_until() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS >= end)) && return 1
		sleep 0.05
	done
	return 0
}

not_alive() { ! alive "$1"; }
wait_gone() { wait_until "${2:-$TMO}" not_alive "$1"; }

# wait_child PID [SECONDS]: wait for one of our own children with a
# timeout; its exit status goes to CHILD_RC ("timeout" if it did not end).
# Not usable inside $(...): a subshell cannot wait for our children.
wait_child() {
	CHILD_RC=timeout
	wait_until "${2:-$TMO}" not_running "$1" || return 1
	wait "$1" 2>/dev/null
	CHILD_RC=$?
}
not_running() { ! kill -0 "$1" 2>/dev/null || [[ $(proc_state "$1") == Z ]]; }

has_line() { grep -qx -- "$2" "$1" 2>/dev/null; }
line_count() { wc -l < "$1" 2>/dev/null || echo 0; }
has_lines() { (($(line_count "$1") >= $2)); }
exe_is() { [[ $(readlink "/proc/$1/exe") == "$2" ]]; }

# Every process whose session id is $1.
session_members() {
	local d sid
	for d in /proc/[0-9]*; do
		sid=$(stat_field "${d#/proc/}" 4 2>/dev/null) || continue
		[[ $sid == "$1" ]] && echo "${d#/proc/}"
	done
}

# tree_members PID: PID and all its descendants (pids as we see them),
# each parent before its children.
tree_members() {
	local c
	[[ -d /proc/$1 ]] || return 0
	echo "$1"
	for c in $(cat /proc/$1/task/*/children 2>/dev/null); do
		tree_members "$c"
	done
}

# ns_field FILE KEY: the last number of the "KEY:" line of a status file,
# i.e. the value in the innermost pid namespace (NSpid, NSpgid, NSsid).
ns_field() { awk -v k="$2:" '$1 == k { print $NF; exit }' "$1" 2>/dev/null; }

# The pid of PID as its own pid namespace sees it.
ns_pid() { ns_field "/proc/$1/status" NSpid; }

# The first child of PID (of its main thread).
child_of() {
	local c
	c=$(cat "/proc/$1/task/$1/children" 2>/dev/null) || return 1
	set -- $c
	[[ -n ${1:-} ]] && echo "$1"
}

# The pid namespace of PID (an inode string).
pidns_of() { readlink "/proc/$1/ns/pid" 2>/dev/null; }

# tree_gone PID...: none of these pids is held any more, not even by a
# zombie (a restore needs them free).
tree_gone() {
	local p
	for p in "$@"; do [[ -e /proc/$p ]] && return 1; done
	return 0
}
live_pids() {
	local p
	for p in "$@"; do alive "$p" && echo "$p"; done
}
no_live_pids() { [[ -z $(live_pids "$@") ]]; }

# The pids of those given that still exist, with their state and command., with their state and command
existing_pids() {
	local p
	for p in "$@"; do
		[[ -e /proc/$p ]] && echo -n "$p ($(proc_state "$p"), $(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | cut -c1-40)) "
	done
}

