#!/usr/bin/python3
"""Starts a socket unit's service the way systemd does (tests/cases/package.sh).

    socket_activate.py SOCKET_UNIT SERVICE_UNIT PATH BINARY [ARG...]

Reads ListenSequentialPacket=, SocketMode= and Accept= of SOCKET_UNIT and
ExecStart= of SERVICE_UNIT, binds and listens on a socket of that type at
PATH (instead of the unit's path) with that mode, and execs the service's
command with BINARY for its program and ARG... appended, the socket as fd
3, LISTEN_FDS=1 and LISTEN_PID set to the service's pid (as systemd
does: the pid that execs). Prints "ExecStart: ..." (the unit's command)
to stderr. No systemd needed.
"""
import os
import shlex
import socket
import sys


def unit_settings(path):
    """KEY=VALUE lines of a unit file: the last value of each key."""
    keys = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;[" or "=" not in line:
                continue
            k, v = line.split("=", 1)
            keys[k.strip()] = v.strip()
    return keys


def main(socket_unit, service_unit, path, binary, extra):
    sk_keys = unit_settings(socket_unit)
    svc_keys = unit_settings(service_unit)
    if "ListenSequentialPacket" not in sk_keys:
        sys.exit("%s: no ListenSequentialPacket=" % socket_unit)
    if sk_keys.get("Accept", "no") != "no":
        sys.exit("%s: Accept=%s, the service serves the listening socket" % (socket_unit, sk_keys["Accept"]))
    mode = int(sk_keys.get("SocketMode", "0666"), 8)
    cmd = shlex.split(svc_keys["ExecStart"])
    print("ExecStart: %s" % " ".join(cmd), file=sys.stderr, flush=True)
    argv = [binary] + cmd[1:] + extra

    sk = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    old = os.umask(0o777 & ~mode)
    sk.bind(path)
    os.umask(old)
    os.chmod(path, mode)
    sk.listen(128)
    if sk.fileno() != 3:
        os.dup2(sk.fileno(), 3)  # dup2 leaves fd 3 inheritable
        sk.close()
    else:
        os.set_inheritable(3, True)
    os.environ["LISTEN_FDS"] = "1"
    os.environ["LISTEN_PID"] = str(os.getpid())
    os.execv(binary, argv)


if __name__ == "__main__":
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
