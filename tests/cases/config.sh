# CRIU's configuration files: the default ones, $CRIU_CONFIG_FILE, --config,
# --no-default-config, and the command line over all of them.

# A sleeping program to dump; its pid in $PROG_PID.
config_sleeper() {
	start_prog sleep sleep 1000
	wait_until "$TMO" exe_is "$PROG_PID" /usr/bin/sleep || fail "sleep did not start"
}

# stasis run with the environment given before the command (no -o or -v
# of the runner's: the configuration decides them); prints the status.
config_stasis() {
	local tag=$1
	shift
	local -a cmd=("$@")
	while [[ ${cmd[0]} == *=* ]]; do cmd=("${cmd[@]:1}"); done
	make_images_dir "${cmd[@]:1}"	# past the binary
	note "config: $*"
	timeout -k 5 "$TMO" env "$@" > "$T_LOG/$tag.stdout" 2> "$T_LOG/$tag.stderr" < /dev/null
	echo $?
}

# The user's ~/.criu/default.conf is read: its log file, verbosity and
# --leave-running (with a comment and a quoted value) decide the dump;
# --no-default-config makes the same dump ignore it.
test_config_default_files() {
	local home=$T_WORK/home pid rc
	mkdir -p "$home/.criu" && cat > "$home/.criu/default.conf" <<-'CONF'
		# what every dump here does
		log-file "from config.log"
		verbosity 4   # all of it
		leave-running
	CONF
	config_sleeper || return
	pid=$PROG_PID
	rc=$(config_stasis dump HOME="$home" "$STASIS" dump -t "$pid" -D "$T_WORK/img")
	[[ $rc == 0 ]] || { fail "dump exited $rc: $(error_message dump)"; return; }
	[[ -s "$T_WORK/img/from config.log" ]] || fail "the configured log file was not written"
	# the fds' lines are written at level 4 only
	grep -q 'fd [0-9]* -> file' "$T_WORK/img/from config.log" ||
		fail "the log is not at the configured verbosity 4" "$T_WORK/img/from config.log"
	runs_freely "$pid" || { fail "leave-running from the configuration was not applied"; return; }

	rc=$(config_stasis dump2 HOME="$home" "$STASIS" dump --no-default-config -t "$pid" -D "$T_WORK/img2")
	[[ $rc == 0 ]] || { fail "dump --no-default-config exited $rc: $(error_message dump2)"; return; }
	[[ ! -e "$T_WORK/img2/from config.log" ]] || fail "--no-default-config still read ~/.criu/default.conf"
	wait_gone "$pid" 5 || fail "--no-default-config still left the tree running"
}

# $CRIU_CONFIG_FILE, then --config, then the command line: each later one
# wins; --config also skips the default files.
test_config_precedence() {
	local home=$T_WORK/home pid rc
	mkdir -p "$home/.criu" "$T_WORK/img"
	echo "log-file home.log" > "$home/.criu/default.conf"
	printf 'log-file env.log\nleave-running\n' > "$T_WORK/env.conf"
	printf 'log-file cfg.log\n' > "$T_WORK/cfg.conf"
	config_sleeper || return
	pid=$PROG_PID
	rc=$(config_stasis d1 HOME="$home" CRIU_CONFIG_FILE="$T_WORK/env.conf" \
		"$STASIS" dump -t "$pid" -D "$T_WORK/img")
	[[ $rc == 0 ]] || { fail "dump with CRIU_CONFIG_FILE exited $rc: $(error_message d1)"; return; }
	[[ -e $T_WORK/img/env.log && ! -e $T_WORK/img/home.log ]] ||
		fail "CRIU_CONFIG_FILE did not override the default file: $(ls "$T_WORK/img" | grep log)"
	rm -f "$T_WORK"/img/*.log
	rc=$(config_stasis d2 HOME="$home" CRIU_CONFIG_FILE="$T_WORK/env.conf" \
		"$STASIS" dump --config "$T_WORK/cfg.conf" -t "$pid" -D "$T_WORK/img")
	[[ $rc == 0 ]] || { fail "dump with --config exited $rc: $(error_message d2)"; return; }
	[[ -e $T_WORK/img/cfg.log && ! -e $T_WORK/img/env.log ]] ||
		fail "--config did not override CRIU_CONFIG_FILE: $(ls "$T_WORK/img" | grep log)"
	rm -f "$T_WORK"/img/*.log
	rc=$(config_stasis d3 HOME="$home" CRIU_CONFIG_FILE="$T_WORK/env.conf" \
		"$STASIS" dump --config="$T_WORK/cfg.conf" -o cli.log -t "$pid" -D "$T_WORK/img")
	[[ $rc == 0 ]] || { fail "dump with -o exited $rc: $(error_message d3)"; return; }
	[[ -e $T_WORK/img/cli.log && ! -e $T_WORK/img/cfg.log ]] ||
		fail "the command line did not override --config: $(ls "$T_WORK/img" | grep log)"
}

# A broken file or an unknown option in it: one line naming it, no dump.
test_config_bad() {
	local pid rc
	config_sleeper || return
	pid=$PROG_PID
	printf 'log-file "no end\n' > "$T_WORK/quote.conf"
	rc=$(config_stasis q "$STASIS" dump --config "$T_WORK/quote.conf" -t "$pid" -D "$T_WORK/img")
	[[ $rc != 0 ]] || fail "a file with an unclosed quote was accepted"
	grep -q "quote.conf:1: .*quote" "$T_LOG/q.stderr" || fail "message: $(error_message q)"
	printf 'no-such-option 1\n' > "$T_WORK/opt.conf"
	rc=$(config_stasis o "$STASIS" dump --config "$T_WORK/opt.conf" -t "$pid" -D "$T_WORK/img")
	[[ $rc != 0 ]] || fail "an unknown option in the file was accepted"
	grep -q "no-such-option" "$T_LOG/o.stderr" || fail "message: $(error_message o)"
	runs_freely "$pid" || fail "the tree does not run freely after the refused dumps"
}

# zdtm's and runtimes' tuning options and CRIU's -vvvv are accepted.
test_config_criu_tuning() {
	local pid rc
	config_sleeper || return
	pid=$PROG_PID
	rc=$(config_stasis d "$STASIS" dump --no-default-config --timeout 10 --pre-dump-mode splice \
		-vvvv -o d.log -t "$pid" -D "$T_WORK/img")
	[[ $rc == 0 ]] || { fail "dump exited $rc: $(error_message d)"; return; }
	expect_killed "$pid" || return
	rc=$(config_stasis r "$STASIS" restore --no-default-config --timeout=10 -d -D "$T_WORK/img" -o r.log)
	[[ $rc == 0 ]] || { fail "restore exited $rc: $(error_message r)"; return; }
	wait_until "$TMO" exe_is "$pid" /usr/bin/sleep || fail "the sleeper was not restored"
	T_PIDS+=("$pid")
	rc=$(config_stasis m "$STASIS" dump --pre-dump-mode copy -t "$pid" -D "$T_WORK/img2")
	[[ $rc != 0 ]] && grep -q "pre-dump-mode" "$T_LOG/m.stderr" || fail "a bad --pre-dump-mode was accepted"
}

# CRIU's --inherit-fd debug[N]:TEXT writes TEXT to fd N when the option
# is read, whatever follows (here a restore that fails: no such directory).
test_inherit_fd_debug() {
	local rc
	"$STASIS" restore -D "$T_WORK/none" --inherit-fd 'debug[3]:MARK-one' --inherit-fd 'debug[3]:-two' \
		3> "$T_WORK/mark" > "$T_LOG/r.stdout" 2> "$T_LOG/r.stderr" < /dev/null
	rc=$?
	[[ $rc != 0 ]] || fail "a restore of a missing directory succeeded"
	[[ $(cat "$T_WORK/mark") == MARK-one-two ]] || fail "fd 3 got '$(cat "$T_WORK/mark")', want MARK-one-two"
	"$STASIS" restore -D "$T_WORK/none" --inherit-fd 'debug[9]:x' > /dev/null 2> "$T_LOG/r2.stderr" < /dev/null
	grep -qx "Error: --inherit-fd debug\[9\]:x: can't write to fd 9: Bad file descriptor" "$T_LOG/r2.stderr" ||
		fail "a closed fd: $(head -n1 "$T_LOG/r2.stderr")"
}

# CRIU's options stasis lacks are refused by name in one line, saying what
# they are for; --no-SWITCH of an off-by-default switch is accepted; CRIU's
# other spellings (-V, --daemon, -x) and --display-stats work.
test_config_criu_options() {
	local pid rc opt
	for opt in --evasive-devices -s "--exec-cmd=/x" "-L /a" --stream; do
		"$STASIS" dump $opt -t 1 -D "$T_WORK" > /dev/null 2> "$T_LOG/opt.stderr" < /dev/null
		rc=$?
		[[ $rc != 0 ]] || fail "$opt: accepted"
		grep -qE "^Error: (-[a-zA-Z] \()?--[a-z-]+\)?: CRIU's option that .*; stasis does not support it$" \
			"$T_LOG/opt.stderr" || fail "$opt: $(head -n1 "$T_LOG/opt.stderr")"
		(($(wc -l < "$T_LOG/opt.stderr") == 1)) || fail "$opt: more than one line" "$T_LOG/opt.stderr"
	done
	"$STASIS" dump --bogus -t 1 -D "$T_WORK" > /dev/null 2> "$T_LOG/opt.stderr" < /dev/null
	[[ $(cat "$T_LOG/opt.stderr") == "Error: unknown option --bogus" ]] || fail "--bogus: $(cat "$T_LOG/opt.stderr")"
	[[ $("$STASIS" -V) == "$("$STASIS" --version)" ]] || fail "-V differs from --version"
	start_prog mem_anon "$BIN/mem_anon"
	pid=$PROG_PID
	wait_ready mem_anon "$pid" || return
	mkdir -p "$T_WORK/img"
	"$STASIS" dump --no-tcp-established --no-manage-cgroups=x -t "$pid" -D "$T_WORK/img" > /dev/null \
		2> "$T_LOG/no.stderr" < /dev/null
	rc=$?
	[[ $rc != 0 ]] || fail "--no-manage-cgroups=x (not a switch) accepted"
	rc=$(stasis dump dump --no-tcp-established --no-shell-job --display-stats -x -t "$pid" -D "$T_WORK/img")
	[[ $rc == 0 ]] || { fail "dump with --no- switches and --display-stats: $(error_message dump)"; return; }
	grep -qx "Memory pages written: [0-9]* (0x[0-9a-f]*)" "$T_LOG/dump.stdout" ||
		fail "--display-stats printed no pages written" "$T_LOG/dump.stdout"
	expect_killed "$pid" || return
	rc=$(stasis restore restore -D "$T_WORK/img" --daemon --display-stats --pidfile "$T_WORK/r.pid")
	[[ $rc == 0 ]] || { fail "restore --daemon: $(error_message restore)"; return; }
	T_PIDS+=("$(pidfile_pid "$T_WORK/r.pid")")
	grep -qx "Pages restored: [1-9][0-9]* (0x[0-9a-f]*)" "$T_LOG/restore.stdout" ||
		fail "--display-stats printed no pages restored" "$T_LOG/restore.stdout"
	kill -USR1 "$pid"
	wait_until "$TMO" not_running "$pid" || fail "the restored program did not finish"
	check_output mem_anon
}

run_test config.default_files test_config_default_files
run_test config.criu_options test_config_criu_options
run_test config.precedence test_config_precedence
run_test config.bad test_config_bad
run_test config.criu_tuning test_config_criu_tuning

# check --feature NAME as zdtm and runtimes ask it (with zdtm's own
# spelling -verbosity=0): 0 for what stasis handles, 1 for what it does
# not, an error naming an unknown feature; the list names them all.
test_check_feature() {
	local rc
	rc=$(config_stasis ok "$STASIS" check --no-default-config -verbosity=0 --feature kcmp_epoll --feature timerfd)
	[[ $rc == 0 ]] || fail "check --feature kcmp_epoll timerfd exited $rc: $(cat "$T_LOG/ok.stdout" "$T_LOG/ok.stderr")"
	rc=$(config_stasis no "$STASIS" check --feature autofs)
	[[ $rc == 1 ]] && grep -qx "autofs is not supported" "$T_LOG/no.stdout" ||
		fail "check --feature autofs (autofs mounts, not in stasis) exited $rc: $(cat "$T_LOG/no.stdout")"
	# tun devices and files are saved (netns.sh) where the kernel has them
	if [[ -c /dev/net/tun ]]; then
		rc=$(config_stasis tun "$STASIS" check --feature tun)
		[[ $rc == 0 ]] && grep -qx "tun is supported" "$T_LOG/tun.stdout" ||
			fail "check --feature tun with /dev/net/tun here exited $rc: $(cat "$T_LOG/tun.stdout")"
	fi
	rc=$(config_stasis bad "$STASIS" check --feature no_such_thing)
	[[ $rc == 1 ]] && grep -q "unknown feature no_such_thing" "$T_LOG/bad.stderr" ||
		fail "an unknown feature: exit $rc, $(cat "$T_LOG/bad.stderr")"
	rc=$(config_stasis list "$STASIS" check --feature list)
	[[ $rc == 0 ]] && grep -qw mem_dirty_track "$T_LOG/list.stdout" || fail "the feature list: $(cat "$T_LOG/list.stdout")"
}
run_test config.check_feature test_check_feature
run_test config.inherit_fd_debug test_inherit_fd_debug
