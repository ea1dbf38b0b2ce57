# PostgreSQL, run as Debian ships it: a postmaster and its workers
# (checkpointer, background writer, WAL writer, autovacuum, logical
# replication launcher) sharing a System V segment and a big shared
# anonymous mapping, with a data directory, a lock file and a unix socket.
# Checkpointed with rows in a table, restored, then asked: the rows are
# there, a new client connects (a backend forked by the restored
# postmaster), writes, and the server shuts down cleanly.

pg_bin() { compgen -G '/usr/lib/postgresql/*/bin/postgres' | sort -V | tail -n1 | xargs -r dirname; }

# pg_sql SQL: one statement through the server's socket, as postgres;
# prints the result alone.
pg_sql() {
	timeout "$TMO" runuser -u postgres -- "$PG_BIN/psql" -X -q -A -t -h "$PG_DIR/sock" -d postgres -c "$1" \
		2>> "$T_LOG/psql.err"
}

pg_ready() { [[ $(pg_sql 'select 1') == 1 ]]; }

# the server's processes: the postmaster and its children (each of which
# leads a session of its own)
pg_procs() { { pgrep -u postgres -x postgres | grep -x "$PG_PID"; pgrep -P "$PG_PID"; } | sort -n | paste -sd' '; }

# test_postgresql [ipcns]: ipcns runs the server in an IPC namespace of its
# own (as in a container): its segment is then saved with the namespace,
# and the restored server must be in a new one, not ours.
test_postgresql() {
	local pid exe rc before after wrap=()
	[[ ${1-} == ipcns ]] && wrap=(unshare --ipc)
	PG_BIN=$(pg_bin)
	[[ -x $PG_BIN/initdb ]] || { fail "no PostgreSQL server (scripts/install-deps.sh installs it)"; return; }
	PG_DIR=$T_WORK/pg
	chmod 711 "$T_WORK"
	mkdir -p "$PG_DIR/sock" && chown postgres: "$PG_DIR" "$PG_DIR/sock" || { fail "can't make $PG_DIR"; return; }
	runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust > "$T_LOG/initdb.log" 2>&1 ||
		{ fail "initdb failed" "$T_LOG/initdb.log"; return; }
	# unix socket only: TCP connections are another issue's
	start_prog postgres "${wrap[@]}" setpriv --reuid=postgres --regid=postgres --init-groups \
		"$PG_BIN/postgres" -D "$PG_DIR/data" -c listen_addresses= -c unix_socket_directories="$PG_DIR/sock" \
		-c shared_buffers=32MB
	pid=$PROG_PID PG_PID=$PROG_PID
	wait_until "$TMO" pg_ready || { fail "postgres never answered" "$T_LOG/postgres.err"; return; }
	pg_sql "create table t (id int primary key, v text); insert into t select g, md5(g::text) from generate_series(1, 20000) g" ||
		{ fail "create table failed" "$T_LOG/psql.err"; return; }
	pg_sql checkpoint
	before=$(pg_sql "select count(*), sum(id), max(v) from t")
	wait_until "$TMO" eval '(($(wc -w <<< "$(pg_procs)") >= 6))' || fail "fewer workers than expected: $(pg_procs)"
	local procs
	procs=$(pg_procs)
	note "postgres: pid $pid, processes $procs, table: $before"
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	[[ -z $(pg_procs) ]] || { fail "postgres processes left after the dump: $(pg_procs)"; return; }
	rc=$(stasis restore restore -D "$T_WORK/img" -d --pidfile "$T_WORK/r.pid")
	[[ $rc == 0 ]] || { fail "restore exited $(rc_text "$rc"): $(error_message restore)" "$T_LOG/restore.log"; return; }
	T_PIDS+=($procs)
	[[ $(pidfile_pid "$T_WORK/r.pid") == "$pid" ]] || fail "restored root $(pidfile_pid "$T_WORK/r.pid"), want $pid"
	[[ $(pg_procs) == "$procs" ]] || fail "restored processes: $(pg_procs), want $procs"
	if ((${#wrap[@]})); then
		[[ $(readlink "/proc/$pid/ns/ipc") != "$(readlink /proc/self/ns/ipc)" ]] ||
			fail "the restored server is in our IPC namespace, not one of its own"
	fi
	after=$(pg_sql "select count(*), sum(id), max(v) from t")
	[[ $after == "$before" ]] || { fail "after the restore the table holds '$after', before '$before'" "$T_LOG/psql.err"; return; }
	pg_sql "insert into t select g, 'after' from generate_series(20001, 20100) g; update t set v = 'x' where id = 1" ||
		fail "writes after the restore failed" "$T_LOG/psql.err"
	[[ $(pg_sql "select count(*) from t where v in ('after', 'x')") == 101 ]] || fail "the writes after the restore are not there"
	runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t "$TMO" stop > "$T_LOG/pg_ctl.log" 2>&1 ||
		fail "pg_ctl stop failed" "$T_LOG/pg_ctl.log"
	wait_until "$TMO" not_running "$pid" || fail "the postmaster did not stop"
	grep -q "database system is shut down" "$T_LOG/postgres.err" ||
		fail "no clean shutdown in the server's log" "$T_LOG/postgres.err"
	# (a readiness poll that came before the server was up is refused with a FATAL of its own)
	! grep -vE "FATAL: +the database system is starting up" "$T_LOG/postgres.err" |
		grep -qE "PANIC|FATAL|server process .* was terminated" ||
		fail "the server's log: $(grep -vE 'FATAL: +the database system is starting up' "$T_LOG/postgres.err" |
			grep -m1 -E 'PANIC|FATAL|terminated')" "$T_LOG/postgres.err"
}

run_test real.postgresql test_postgresql
run_test real.postgresql_ipcns test_postgresql ipcns
