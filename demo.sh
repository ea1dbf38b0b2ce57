#!/usr/bin/env bash
# Builds stasis and shows a checkpoint and restore of a running program:
# a shell loop counting into a file is dumped (and so stopped), shown gone,
# restored with its old pid, and seen counting on from where it stopped.
# Installs its Debian dependencies first. Needs root.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh
make -s -j"$(nproc)"

work=$(mktemp -d /tmp/stasis-demo.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# The program: its own session, stdio on files, nothing else open (fds
# our caller leaked would be dumped too, and a pipe is not supported yet).
(
	for fd in $(ls /proc/$BASHPID/fd); do [ "$fd" -gt 2 ] && [ "$fd" != 255 ] && eval "exec $fd>&-"; done
	exec setsid sh -c 'i=0; while :; do i=$((i+1)); echo "$i"; sleep 0.1; done' \
		</dev/null >"$work/count.txt" 2>&1
) &
pid=$!
disown "$pid"	# no job notice when the dump kills it
sleep 1
echo "== a program counts into count.txt, pid $pid; last lines: $(tail -n 3 "$work/count.txt" | tr '\n' ' ')"

mkdir -p "$work/img"
build/stasis dump -t "$pid" -D "$work/img" -o dump.log -v4
echo "== dumped to $work/img: $(ls "$work/img" | grep -c img) image files; the program is gone:"
ps -p "$pid" >/dev/null && { echo "   still running?!"; exit 1; } || echo "   no process $pid"
before=$(tail -n 1 "$work/count.txt")
sleep 1

build/stasis restore -D "$work/img" -d -o restore.log -v4
echo "== restored: pid $pid is back: $(ps -o pid=,comm= -p "$pid")"
sleep 1
after=$(tail -n 1 "$work/count.txt")
echo "== it counted on: last line before dump $before, now $after"
if ! awk 'NR > 1 && $1 != prev + 1 { exit 1 } { prev = $1 }' "$work/count.txt"; then
	echo "FAILED: the count has a gap or a repeat"; exit 1
fi
echo "== no gap, no repeat in $(wc -l <"$work/count.txt") lines. Checkpoint and restore worked."
