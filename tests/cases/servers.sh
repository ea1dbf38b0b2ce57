# Servers as Debian ships them, run the way their users run them, and
# checkpointed in the middle of their work, then asked to do what their
# users do next:
#   nginx  a master and two workers sharing the listening socket, with
#          epoll, an access log opened by the master before the fork;
#          after the restore it serves, reloads its configuration (new
#          workers forked by the restored master) and quits gracefully.
#   redis  one process with its background threads, a data set in memory
#          and TCP clients; after the restore the data is there, it takes
#          writes and forks a child to save the data set (BGSAVE).
#   tmux   a server holding a shell that counts in a pane (a pty) and a
#          unix socket for clients; after the restore the count goes on,
#          a client lists the sessions and attaches through a terminal,
#          and a new window gets a new shell.
#   node   a Node.js cluster: the primary accepts and passes connections
#          to two workers over IPC channels; after the restore both
#          answer, and a worker killed is replaced by the primary.
#   java   a JVM (two dozen threads, the JDK's HTTP server, a counting
#          thread, a 16 MB array); after the restore it counts and
#          serves on, and ends on SIGTERM.
#   go     a Go HTTP server (goroutines on the runtime's threads, a 32 MB
#          slice); after the restore it counts and serves on.
#   mariadb  InnoDB with a table; after the restore the rows are there,
#          it takes writes and shuts down cleanly.
#   apache Apache httpd with its event MPM: a root parent and two
#          children of www-data with their threads, the scoreboard in
#          memory shared across the fork; after the restore it serves,
#          a graceful restart replaces the children, and it stops.
#   memcached  four worker threads holding 2,000 items and a client's
#          TCP connection (--tcp-established); after the restore the
#          same connection reads the items and writes, and so does a new
#          one.

# a TCP port nobody listens on now (the kernel's choice for port 0)
free_port() { "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# the children of a process, sorted, on one line
children_of() { pgrep -P "$1" | sort -n | paste -sd' '; }

# children_replaced PID OLD N: PID has N children, none of them in OLD
children_replaced() {
	local new
	new=$(children_of "$1")
	[[ $(wc -w <<< "$new") == "$3" && -z $(comm -12 <(tr " " "\n" <<< "$new") <(tr " " "\n" <<< "$2")) ]]
}

# http_get PORT PAGE N: N requests, each a new connection; all must get PAGE
http_get() {
	local i body
	for ((i = 0; i < $3; i++)); do
		body=$(curl -s -m "$TMO" "http://127.0.0.1:$1/") || return 1
		[[ $body == "$2" ]] || return 1
	done
}

# served LOG N: the access log LOG has N answers 200 to "GET /"
served() { [[ $(grep -c '"GET / HTTP/1.1" 200' "$1" 2>/dev/null) == "$2" ]]; }

# dump_restore_threads PID: dumped (killed) and restored, with as many
# threads as the dump saved (a runtime such as the JVM may start or end
# a thread of its own between a count and the freeze)
dump_restore_threads() {
	local pid=$1 threads exe
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" || return 1
	expect_killed "$pid" || return 1
	threads=$(ls "$T_WORK"/img/core-*.img | wc -l)
	restore_detached restore "$T_WORK/img" "$pid" "$exe" 0 || return 1
	[[ $(ls "/proc/$pid/task" | wc -l) == "$threads" ]] || fail "restored with $(ls "/proc/$pid/task" | wc -l) threads, the dump saved $threads"
}

# ---- nginx ----

NGX_PAGE="stasis-nginx-page"

ngx_conf() {	# DIR PORT
	mkdir -p "$1/logs" "$1/tmp" "$1/www" && echo "$NGX_PAGE" > "$1/www/index.html" || return 1
	cat > "$1/nginx.conf" <<-EOF
	daemon off;
	master_process on;
	worker_processes 2;
	pid $1/nginx.pid;
	error_log $1/logs/error.log info;
	events { worker_connections 64; }
	http {
		access_log $1/logs/access.log;
		client_body_temp_path $1/tmp;
		proxy_temp_path $1/tmp;
		fastcgi_temp_path $1/tmp;
		uwsgi_temp_path $1/tmp;
		scgi_temp_path $1/tmp;
		server { listen 127.0.0.1:$2; root $1/www; }
	}
	EOF
}

ngx_get() { http_get "$NGX_PORT" "$NGX_PAGE" "$1"; }

test_nginx_workers() {
	local pid exe workers
	command -v nginx > /dev/null || { fail "no nginx (scripts/install-deps.sh installs nginx-light)"; return; }
	NGX_DIR=$T_WORK/nginx NGX_PORT=$(free_port)
	chmod 711 "$T_WORK"	# its workers run as www-data, as Debian's nginx does
	ngx_conf "$NGX_DIR" "$NGX_PORT" || { fail "can't write nginx's configuration"; return; }
	start_prog nginx nginx -c "$NGX_DIR/nginx.conf" -p "$NGX_DIR"
	pid=$PROG_PID
	wait_until "$TMO" eval '[[ $(wc -w <<< "$(children_of '"$pid"')") == 2 ]]' ||
		{ fail "nginx did not start two workers" "$NGX_DIR/logs/error.log"; return; }
	ngx_get 5 || { fail "nginx does not serve its page" "$NGX_DIR/logs/error.log"; return; }
	workers=$(children_of "$pid")
	note "nginx: master $pid, workers $workers, port $NGX_PORT"
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	curl -s -m 2 "http://127.0.0.1:$NGX_PORT/" > /dev/null && { fail "something still serves after the dump"; return; }
	restore_detached restore "$T_WORK/img" "$pid" "$exe" 0 || return
	T_PIDS+=($workers)
	[[ $(children_of "$pid") == "$workers" ]] || fail "restored workers: $(children_of "$pid"), want $workers"
	ngx_get 20 || { fail "the restored nginx does not serve its page" "$NGX_DIR/logs/error.log"; return; }
	wait_until "$TMO" served "$NGX_DIR/logs/access.log" 25 ||
		fail "the access log has $(grep -c 'GET /' "$NGX_DIR/logs/access.log") requests, want 25" \
			"$NGX_DIR/logs/access.log"
	# a reload: the restored master reads its configuration again, forks
	# new workers and tells the old ones to finish
	nginx -c "$NGX_DIR/nginx.conf" -p "$NGX_DIR" -s reload 2>> "$T_LOG/nginx-s.err" ||
		{ fail "nginx -s reload failed" "$T_LOG/nginx-s.err"; return; }
	wait_until "$TMO" children_replaced "$pid" "$workers" 2 ||
		{ fail "after a reload the workers are '$(children_of "$pid")' (old: $workers)" "$NGX_DIR/logs/error.log"; return; }
	T_PIDS+=($(children_of "$pid"))
	ngx_get 5 || { fail "nginx does not serve after the reload" "$NGX_DIR/logs/error.log"; return; }
	nginx -c "$NGX_DIR/nginx.conf" -p "$NGX_DIR" -s quit 2>> "$T_LOG/nginx-s.err" || fail "nginx -s quit failed" "$T_LOG/nginx-s.err"
	wait_until "$TMO" not_running "$pid" || fail "the master did not quit"
	! grep -E '\[(alert|crit|emerg)\]' "$NGX_DIR/logs/error.log" ||
		fail "nginx's error log: $(grep -m1 -E '\[(alert|crit|emerg)\]' "$NGX_DIR/logs/error.log")" "$NGX_DIR/logs/error.log"
}

run_test real.nginx_workers test_nginx_workers

# ---- redis ----

rcli() { timeout "$TMO" redis-cli -p "$RDS_PORT" "$@" 2>> "$T_LOG/redis-cli.err"; }
rds_info() { rcli info persistence | tr -d '\r' | sed -n "s/^$1://p"; }
rds_ready() { [[ $(rcli ping) == PONG ]]; }
rds_saved() { [[ $(rds_info rdb_bgsave_in_progress) == 0 && $(rds_info rdb_last_bgsave_status) == ok && -s $RDS_DIR/dump.rdb ]]; }
rds_state() { echo "$(rcli dbsize) $(rcli get key:4321) $(rcli llen list) $(rcli hget hash f77)"; }

test_redis() {
	local pid before threads
	command -v redis-server > /dev/null || { fail "no redis-server (scripts/install-deps.sh installs it)"; return; }
	RDS_DIR=$T_WORK/redis RDS_PORT=$(free_port)
	mkdir -p "$RDS_DIR"
	start_prog redis redis-server --port "$RDS_PORT" --bind 127.0.0.1 --dir "$RDS_DIR" --save "" --appendonly no \
		--daemonize no --logfile "$RDS_DIR/redis.log"
	pid=$PROG_PID
	wait_until "$TMO" rds_ready || { fail "redis never answered" "$RDS_DIR/redis.log"; return; }
	{ seq 1 50000 | awk '{ print "SET key:" $1 " value-" $1 }'
	  seq 1 1000 | awk '{ print "RPUSH list item-" $1 }'
	  seq 1 100 | awk '{ print "HSET hash f" $1 " v" $1 }'; } | rcli --pipe > "$T_LOG/pipe.out" ||
		{ fail "loading the data set failed" "$T_LOG/pipe.out"; return; }
	before=$(rds_state)
	[[ $before == "50002 value-4321 1000 v77" ]] || { fail "the data set before the dump: $before" "$T_LOG/redis-cli.err"; return; }
	threads=$(ls "/proc/$pid/task" | wc -l)
	note "redis: pid $pid, port $RDS_PORT, $threads threads, state $before"
	dump_restore_threads "$pid" || return
	[[ $(rds_state) == "$before" ]] || { fail "after the restore: '$(rds_state)', before: '$before'" "$T_LOG/redis-cli.err"; return; }
	[[ $(rcli set after restored) == OK && $(rcli incr counter) == 1 ]] || fail "writes after the restore failed"
	# BGSAVE: the restored server forks a child that writes the data set
	rcli bgsave > /dev/null
	wait_until "$TMO" rds_saved || { fail "BGSAVE did not finish: $(rcli info persistence | grep -E 'bgsave|rdb_last' | tr -d '\r' | paste -sd' ')" "$RDS_DIR/redis.log"; return; }
	redis-check-rdb "$RDS_DIR/dump.rdb" > "$T_LOG/check-rdb.out" 2>&1 || fail "redis-check-rdb refuses the saved data set" "$T_LOG/check-rdb.out"
	grep -q "keys read: 50005\|Checked 50005 keys" "$T_LOG/check-rdb.out" ||
		grep -q "RDB looks OK" "$T_LOG/check-rdb.out" || fail "the saved data set does not check" "$T_LOG/check-rdb.out"
	rcli shutdown nosave > /dev/null
	wait_until "$TMO" not_running "$pid" || fail "redis did not shut down"
	! grep -E '# (WARNING|Error)|Guru Meditation' "$RDS_DIR/redis.log" | grep -v -E 'WARNING (Memory overcommit|.*THP|.*somaxconn)' ||
		fail "redis's log: $(grep -m1 -E '# (WARNING|Error)|Guru Meditation' "$RDS_DIR/redis.log")" "$RDS_DIR/redis.log"
}

run_test real.redis test_redis

# ---- tmux ----

tx() { timeout "$TMO" tmux -S "$TMX_SOCK" "$@" 2>> "$T_LOG/tmux.err"; }
tx_last_tick() { tx capture-pane -p -t s1:0 | sed -n 's/^tick \([0-9]*\)$/\1/p' | tail -n1; }
tx_ticked_past() { local n; n=$(tx_last_tick); [[ -n $n ]] && ((n > $1)); }

test_tmux_session() {
	local pid exe last
	command -v tmux > /dev/null || { fail "no tmux (scripts/install-deps.sh installs it)"; return; }
	TMX_SOCK=$T_WORK/tmux.sock
	(cd "$T_FILES" && TERM=xterm setsid tmux -S "$TMX_SOCK" -f /dev/null new-session -d -s s1 -x 80 -y 24 \
		'i=0; while :; do i=$((i + 1)); echo tick $i; sleep 0.2; done' > "$T_LOG/tmux.out" 2>> "$T_LOG/tmux.err" < /dev/null)
	pid=$(tx display -p '#{pid}')
	[[ -n $pid ]] || { fail "tmux did not start" "$T_LOG/tmux.err"; return; }
	T_PIDS+=("$pid")
	wait_until "$TMO" tx_ticked_past 3 || { fail "the pane does not count" "$T_LOG/tmux.err"; return; }
	note "tmux: server $pid, its children $(children_of "$pid")"
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	restore_detached restore "$T_WORK/img" "$pid" "$exe" 0 || return
	T_PIDS+=($(children_of "$pid"))
	last=$(tx_last_tick)
	[[ -n $last ]] || { fail "the restored server shows no count" "$T_LOG/tmux.err"; return; }
	wait_until "$TMO" tx_ticked_past $((last + 3)) || { fail "the count stopped at $(tx_last_tick) after the restore"; return; }
	[[ $(tx list-sessions -F '#{session_name}:#{session_windows}') == s1:1 ]] ||
		fail "list-sessions: $(tx list-sessions 2>&1)"
	# a new window: the restored server forks a shell on a new pty
	tx new-window -t s1 "echo window-made > '$T_WORK/window.out'; sleep 1000" ||
		fail "new-window failed" "$T_LOG/tmux.err"
	wait_until "$TMO" grep -qx window-made "$T_WORK/window.out" || fail "the new window's shell did not run"
	# a client attached through a terminal sees the pane
	TERM=xterm timeout "$TMO" script -qfec "tmux -S '$TMX_SOCK' attach -t s1:0" "$T_LOG/attach.typescript" \
		< /dev/null > /dev/null 2>&1 &
	local client=$!
	wait_until "$TMO" grep -q "tick" "$T_LOG/attach.typescript" || fail "an attached client sees no count"
	tx detach-client -a -s s1 > /dev/null 2>&1; tx detach-client -s s1 > /dev/null 2>&1
	kill "$client" 2> /dev/null; wait "$client" 2> /dev/null
	tx kill-server
	wait_until "$TMO" not_running "$pid" || fail "the tmux server did not end on kill-server"
}

run_test real.tmux_session test_tmux_session

# ---- Node.js cluster ----

# node_hits N: N requests; prints the workers that answered, sorted, unique
node_hits() {
	local i out
	for ((i = 0; i < $1; i++)); do
		out=$(curl -s -m "$TMO" "http://127.0.0.1:$NODE_PORT/") || return 1
		[[ $out =~ ^worker\ ([0-9]+)\ hit\ [0-9]+$ ]] || return 1
		echo "${BASH_REMATCH[1]}"
	done | sort -n | uniq | paste -sd' '
}

test_node_cluster() {
	local pid exe workers answered victim
	command -v node > /dev/null || { fail "no node (scripts/install-deps.sh installs nodejs)"; return; }
	NODE_PORT=$(free_port)
	start_prog node node "$ROOT/tests/apps/cluster.js" "$NODE_PORT"
	pid=$PROG_PID
	wait_until "$TMO" grep -qx READY "$T_LOG/node.out" || { fail "the cluster did not start" "$T_LOG/node.err"; return; }
	workers=$(children_of "$pid")
	answered=$(node_hits 6) && [[ $answered == "$workers" ]] ||
		{ fail "before the dump the workers answering are '$answered', want '$workers'" "$T_LOG/node.err"; return; }
	note "node: primary $pid, workers $workers, port $NODE_PORT"
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	restore_detached restore "$T_WORK/img" "$pid" "$exe" 0 || return
	T_PIDS+=($workers)
	[[ $(children_of "$pid") == "$workers" ]] || fail "restored workers: $(children_of "$pid"), want $workers"
	# both workers get connections the restored primary accepted and
	# passed them over the restored IPC channels
	answered=$(node_hits 10) && [[ $answered == "$workers" ]] ||
		{ fail "after the restore the workers answering are '$answered', want '$workers'" "$T_LOG/node.err"; return; }
	# a worker killed: the restored primary sees it exit and forks another
	victim=${workers%% *}
	kill -9 "$victim"
	wait_until "$TMO" eval '[[ $(wc -w <<< "$(children_of '"$pid"')") == 2 && " $(children_of '"$pid"') " != *" '"$victim"' "* ]]' ||
		{ fail "no worker replaced $victim: children '$(children_of "$pid")'" "$T_LOG/node.out"; return; }
	T_PIDS+=($(children_of "$pid"))
	wait_until "$TMO" eval '[[ $(node_hits 6) == "$(children_of '"$pid"')" ]]' ||
		fail "the replaced cluster's answers: '$(node_hits 6)', workers '$(children_of "$pid")'" "$T_LOG/node.err"
	grep -q "worker $victim exited (SIGKILL)" "$T_LOG/node.out" || fail "the primary did not log the exit" "$T_LOG/node.out"
}

run_test real.node_cluster test_node_cluster

# ---- Java and Go: a ticker ----

# A ticker (tests/apps: Ticker.java, ticker.go) answers "ticks N sum S"
# over HTTP on TICK_PORT while a thread (a goroutine) counts every 10 ms.
tick_get() { curl -s -m "$TMO" "http://127.0.0.1:$TICK_PORT/"; }
tick_count() { tick_get | sed -n "s/^ticks \([0-9]*\) sum $TICK_SUM\$/\1/p"; }
tick_past() { local n; n=$(tick_count); [[ -n $n ]] && ((n > $1)); }

# ticker_run LABEL SUM CMD...: the ticker started (CMD listens on
# TICK_PORT), dumped and restored with as many threads, counting and
# serving on with its data's sum right, then ended by SIGTERM.
ticker_run() {
	local label=$1 pid threads before
	TICK_SUM=$2
	shift 2
	start_prog "$label" "$@"
	pid=$PROG_PID
	wait_until "$TMO" grep -qx READY "$T_LOG/$label.out" || { fail "$label did not start" "$T_LOG/$label.err"; return 1; }
	before=$(tick_count)
	[[ -n $before ]] || { fail "$label answers '$(tick_get)'" "$T_LOG/$label.err"; return 1; }
	threads=$(ls "/proc/$pid/task" | wc -l)
	note "$label: pid $pid, $threads threads, port $TICK_PORT, ticks $before"
	dump_restore_threads "$pid" || return 1
	wait_until "$TMO" tick_past $((before + 20)) ||
		{ fail "after the restore $label answers '$(tick_get)' (ticks were $before)" "$T_LOG/$label.err"; return 1; }
	kill -TERM "$pid"
	wait_until "$TMO" not_running "$pid" || fail "$label did not end on SIGTERM"
}

test_java() {
	command -v javac > /dev/null || { fail "no javac (scripts/install-deps.sh installs openjdk-17-jdk-headless)"; return; }
	javac -d "$T_WORK/classes" "$ROOT/tests/apps/Ticker.java" 2> "$T_LOG/javac.err" || { fail "javac failed" "$T_LOG/javac.err"; return; }
	TICK_PORT=$(free_port)
	ticker_run java 13999993000000 java -Xmx256m -cp "$T_WORK/classes" Ticker "$TICK_PORT" || return
	! grep -E "SIGSEGV|fatal error|hs_err" "$T_LOG/java.out" "$T_LOG/java.err" ||
		fail "the JVM: $(grep -m1 -hE 'SIGSEGV|fatal error|hs_err' "$T_LOG/java.out" "$T_LOG/java.err")" "$T_LOG/java.err"
}

run_test real.java test_java

test_go() {
	command -v go > /dev/null || { fail "no go (scripts/install-deps.sh installs golang-go)"; return; }
	(cd "$ROOT/tests/apps" && GOCACHE=$T_WORK/gocache GOPATH=$T_WORK/gopath \
		go build -o "$T_WORK/ticker" ticker.go) > "$T_LOG/go-build.log" 2>&1 ||
		{ fail "go build failed" "$T_LOG/go-build.log"; return; }
	TICK_PORT=$(free_port)
	ticker_run go 23999994000000 "$T_WORK/ticker" "$TICK_PORT"
}

run_test real.go test_go

# ---- MariaDB ----

my_sql() { timeout "$TMO" mariadb -S "$MY_DIR/sock" -N -B -e "$1" 2>> "$T_LOG/mariadb-client.err"; }
my_ready() { [[ $(my_sql 'select 1') == 1 ]]; }

# MariaDB as Debian ships it: InnoDB's threads, its buffer pool, an 8 TiB
# reservation without access, POSIX locks on its files (hence -l). Its
# io_uring (InnoDB's default asynchronous I/O here) is one of what stasis
# refuses by name, so InnoDB is told to use its own threads instead.
test_mariadb() {
	local pid exe before
	command -v mariadbd > /dev/null || { fail "no mariadbd (scripts/install-deps.sh installs mariadb-server)"; return; }
	MY_DIR=$T_WORK/mariadb
	chmod 711 "$T_WORK"
	mkdir -p "$MY_DIR" && chown mysql: "$MY_DIR" || { fail "can't make $MY_DIR"; return; }
	mariadb-install-db --user=mysql --datadir="$MY_DIR/data" --auth-root-authentication-method=socket \
		> "$T_LOG/install-db.log" 2>&1 || { fail "mariadb-install-db failed" "$T_LOG/install-db.log"; return; }
	start_prog mariadb mariadbd --user=mysql --datadir="$MY_DIR/data" --socket="$MY_DIR/sock" --skip-networking \
		--log-error="$MY_DIR/error.log" --pid-file="$MY_DIR/pid" --innodb-use-native-aio=0 --innodb-buffer-pool-size=64M
	pid=$PROG_PID
	wait_until "$TMO" my_ready || { fail "mariadbd never answered" "$MY_DIR/error.log"; return; }
	my_sql "set max_recursive_iterations = 10000; create database t;
		create table t.a (id int primary key, v varchar(40)) engine=innodb;
		insert into t.a with recursive s(n) as (select 1 union all select n + 1 from s where n < 5000) select n, md5(n) from s" ||
		{ fail "filling the table failed" "$T_LOG/mariadb-client.err"; return; }
	before=$(my_sql "select count(*), sum(id), max(v) from t.a")
	note "mariadb: pid $pid, $(ls "/proc/$pid/task" | wc -l) threads, table: $before"
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" -l || return
	expect_killed "$pid" || return
	restore_detached restore "$T_WORK/img" "$pid" "$exe" 0 -l || return
	[[ $(my_sql "select count(*), sum(id), max(v) from t.a") == "$before" ]] ||
		{ fail "after the restore the table holds '$(my_sql "select count(*), sum(id), max(v) from t.a")', before '$before'" "$T_LOG/mariadb-client.err"; return; }
	my_sql "insert into t.a values (5001, 'after'); update t.a set v = 'x' where id = 1" || fail "writes after the restore failed" "$T_LOG/mariadb-client.err"
	[[ $(my_sql "select count(*) from t.a where v in ('after', 'x')") == 2 ]] || fail "the writes after the restore are not there"
	timeout "$TMO" mariadb-admin -S "$MY_DIR/sock" shutdown 2>> "$T_LOG/mariadb-client.err" || fail "mariadb-admin shutdown failed"
	wait_until "$TMO" not_running "$pid" || fail "mariadbd did not shut down"
	grep -q "Shutdown complete" "$MY_DIR/error.log" || fail "no clean shutdown in the server's log" "$MY_DIR/error.log"
	! grep -E "\[ERROR\]|crashed|Assertion" "$MY_DIR/error.log" ||
		fail "the server's log: $(grep -m1 -E '\[ERROR\]|crashed|Assertion' "$MY_DIR/error.log")" "$MY_DIR/error.log"
}

run_test real.mariadb test_mariadb

# ---- apache ----

AP_PAGE="stasis-apache-page"
AP_MODS=/usr/lib/apache2/modules

ap_conf() {	# DIR PORT
	mkdir -p "$1/logs" "$1/run" "$1/www" && echo "$AP_PAGE" > "$1/www/index.html" || return 1
	cat > "$1/httpd.conf" <<-EOF
	ServerRoot $1
	ServerName localhost
	Listen 127.0.0.1:$2
	PidFile $1/run/httpd.pid
	DefaultRuntimeDir $1/run
	LoadModule mpm_event_module $AP_MODS/mod_mpm_event.so
	LoadModule authz_core_module $AP_MODS/mod_authz_core.so
	LoadModule dir_module $AP_MODS/mod_dir.so
	User www-data
	Group www-data
	StartServers 2
	MinSpareThreads 4
	MaxSpareThreads 16
	ThreadsPerChild 8
	MaxRequestWorkers 16
	ErrorLog $1/logs/error.log
	LogLevel notice
	LogFormat "%h \"%r\" %>s" short
	CustomLog $1/logs/access.log short
	DocumentRoot $1/www
	DirectoryIndex index.html
	EOF
}

ap_ctl() { timeout "$TMO" apache2 -d "$AP_DIR" -f "$AP_DIR/httpd.conf" -k "$1" >> "$T_LOG/apache-k.out" 2>&1; }

ap_get() { http_get "$AP_PORT" "$AP_PAGE" "$1"; }

test_apache_event() {
	local pid exe children
	[[ -x /usr/sbin/apache2 ]] || { fail "no apache2 (scripts/install-deps.sh installs it)"; return; }
	AP_DIR=$T_WORK/apache AP_PORT=$(free_port)
	chmod 711 "$T_WORK"	# its children run as www-data, as Debian's apache2 does
	ap_conf "$AP_DIR" "$AP_PORT" || { fail "can't write apache's configuration"; return; }
	start_prog apache apache2 -d "$AP_DIR" -f "$AP_DIR/httpd.conf" -DFOREGROUND
	pid=$PROG_PID
	wait_until "$TMO" eval '[[ $(wc -w <<< "$(children_of '"$pid"')") == 2 ]]' ||
		{ fail "apache did not start two children" "$AP_DIR/logs/error.log"; return; }
	ap_get 5 || { fail "apache does not serve its page" "$AP_DIR/logs/error.log"; return; }
	children=$(children_of "$pid")
	note "apache: parent $pid, children $children, port $AP_PORT, threads $(ls /proc/$pid/task | wc -l) $(for c in $children; do ls /proc/$c/task | wc -l; done | paste -sd' ')"
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" || return
	expect_killed "$pid" || return
	restore_detached restore "$T_WORK/img" "$pid" "$exe" 0 || return
	T_PIDS+=($children)
	[[ $(children_of "$pid") == "$children" ]] || fail "restored children: $(children_of "$pid"), want $children"
	ap_get 20 || { fail "the restored apache does not serve its page" "$AP_DIR/logs/error.log"; return; }
	wait_until "$TMO" served "$AP_DIR/logs/access.log" 25 ||
		fail "the access log has $(grep -c 'GET /' "$AP_DIR/logs/access.log") requests, want 25" "$AP_DIR/logs/access.log"
	# a graceful restart: the restored parent reads its configuration
	# again and replaces its children, which it watches through the
	# scoreboard
	ap_ctl graceful || { fail "apache2 -k graceful failed" "$T_LOG/apache-k.out"; return; }
	wait_until "$TMO" children_replaced "$pid" "$children" 2 ||
		{ fail "after a graceful restart the children are '$(children_of "$pid")' (old: $children)" "$AP_DIR/logs/error.log"; return; }
	T_PIDS+=($(children_of "$pid"))
	ap_get 5 || { fail "apache does not serve after the graceful restart" "$AP_DIR/logs/error.log"; return; }
	ap_ctl stop || fail "apache2 -k stop failed" "$T_LOG/apache-k.out"
	wait_until "$TMO" not_running "$pid" || fail "the parent did not stop"
	! grep -E ':(crit|alert|emerg)\]|exit signal|Segmentation' "$AP_DIR/logs/error.log" ||
		fail "apache's error log: $(grep -m1 -E ':(crit|alert|emerg)\]|exit signal|Segmentation' "$AP_DIR/logs/error.log")" "$AP_DIR/logs/error.log"
}

run_test real.apache_event test_apache_event

# ---- memcached ----

# mc_cmd FD LINE [DATA]: one command on the connection FD, its reply's
# lines (without \r) up to the one that ends it
mc_cmd() {
	local fd=$1 line
	printf '%s\r\n' "$2" >&"$fd"
	[[ -z ${3+x} ]] || printf '%s\r\n' "$3" >&"$fd"
	while IFS= read -r -t "$TMO" -u "$fd" line; do
		line=${line%$'\r'}
		echo "$line"
		[[ $line =~ ^(END|STORED|NOT_STORED|ERROR|CLIENT_ERROR.*|SERVER_ERROR.*|[0-9]+)$ ]] && return 0
	done
	return 1
}

mc_items() { mc_cmd "$1" stats | sed -n 's/^STAT curr_items //p'; }

test_memcached() {
	local pid exe port threads fd fd2 i
	command -v memcached > /dev/null || { fail "no memcached (scripts/install-deps.sh installs it)"; return; }
	port=$(free_port)
	start_prog memcached memcached -u memcache -l 127.0.0.1 -p "$port" -t 4 -m 64 -U 0
	pid=$PROG_PID
	wait_until "$TMO" eval "exec {fd}<>/dev/tcp/127.0.0.1/$port" 2> /dev/null ||
		{ fail "memcached never took a connection" "$T_LOG/memcached.err"; return; }
	for ((i = 0; i < 2000; i++)); do
		printf 'set k%d 0 0 %d noreply\r\nval%d\r\n' "$i" "$((3 + ${#i}))" "$i"
	done >&"$fd"
	wait_until "$TMO" eval '[[ $(mc_items '"$fd"') == 2000 ]]' ||
		{ fail "memcached holds $(mc_items "$fd") items, want 2000" "$T_LOG/memcached.err"; return; }
	threads=$(ls "/proc/$pid/task" | wc -l)
	note "memcached: pid $pid, port $port, $threads threads, a client connection on fd $fd"
	exe=$(readlink "/proc/$pid/exe")
	dump dump "$pid" "$T_WORK/img" --tcp-established || return
	expect_killed "$pid" || return
	threads=$(ls "$T_WORK"/img/core-*.img | wc -l)
	restore_detached restore "$T_WORK/img" "$pid" "$exe" 0 --tcp-established || return
	[[ $(ls "/proc/$pid/task" | wc -l) == "$threads" ]] || fail "restored with $(ls "/proc/$pid/task" | wc -l) threads, the dump saved $threads"
	# the connection made before the dump goes on
	[[ $(mc_cmd "$fd" "get k1234" | paste -sd' ') == "VALUE k1234 0 7 val1234 END" ]] ||
		{ fail "the client's connection after the restore: get k1234 gives '$(mc_cmd "$fd" "get k1234" | paste -sd' ')'"; return; }
	[[ $(mc_cmd "$fd" "set after 0 0 5" "after") == STORED && $(mc_items "$fd") == 2001 ]] ||
		{ fail "a write on the client's connection failed: $(mc_items "$fd") items"; return; }
	# and a new one
	exec {fd2}<>"/dev/tcp/127.0.0.1/$port" || { fail "the restored memcached takes no new connection"; return; }
	[[ $(mc_cmd "$fd2" "get after" | paste -sd' ') == "VALUE after 0 5 after END" && $(mc_items "$fd2") == 2001 ]] ||
		fail "a new connection sees '$(mc_cmd "$fd2" "get after" | paste -sd' ')', $(mc_items "$fd2") items"
	exec {fd}>&- {fd2}>&-
	kill -TERM "$pid"
	wait_until "$TMO" not_running "$pid" || fail "memcached did not stop on SIGTERM"
}

run_test real.memcached test_memcached
