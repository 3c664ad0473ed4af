"""`exec`: run a command in a running container, as the docker CLI does
(cli/command/container/exec.go).

1. `GET /containers/{id}/json` first, so that "No such container" wins over
   any other error, and the TTY check before anything is made on the daemon;
2. `POST /containers/{id}/exec` with the command and the flags;
3. with -d, `POST /exec/{id}/start` {"Detach": true}, and done;
4. else the same start upgraded to a raw stream (cli/attach.py's Streamer:
   stdin to the exec, its output to ours, the terminal in raw mode with -it,
   its size sent to `/exec/{id}/resize` now and on every SIGWINCH; the
   detach keys typed end the command, "read escape sequence", status 1,
   leaving the exec running);
5. when the output ends, `GET /exec/{id}/json`: its ExitCode is our exit
   status (126 when the command could not be run, as dockerd reports it;
   the daemon's error is then in the stream itself).
"""

from __future__ import annotations

import os

from dockyard.cli.command import PROG, Cli, StatusError
from dockyard.cli.pflag import FlagSet

USE = "[OPTIONS] CONTAINER COMMAND [ARG...]"


def _validate_env(value: str) -> str:
    from dockyard.cli.optvalues import validate_env  # (only when -e is given: it costs ~8 ms)

    return validate_env(value)


def _flags(path: str) -> FlagSet:
    fs = FlagSet(path, USE, "Execute a command in a running container",
                 aliases=f"{PROG} container exec, {PROG} exec", args=(2, None),
                 interspersed=False)
    fs.bool("detach", "d", help="Detached mode: run command in the background")
    fs.string("detach-keys", help="Override the key sequence for detaching a container")
    fs.list("env", "e", "Set environment variables", _validate_env)
    fs.list("env-file", help="Read in a file of environment variables")
    fs.bool("interactive", "i", help="Keep STDIN open even if not attached")
    fs.bool("privileged", help="Give extended privileges to the command")
    fs.bool("tty", "t", help="Allocate a pseudo-TTY")
    fs.string("user", "u", help='Username or UID (format: "<name|uid>[:<group|gid>]")')
    fs.string("workdir", "w", help="Working directory inside the container")
    return fs


def exec_options(o) -> dict:
    """ParseExecConfig: the body of `POST /containers/{id}/exec`."""
    from dockyard.cli.attach import detach_keys
    from dockyard.cli.optspecs import OptionsError, read_kv_file

    env: list[str] = []
    try:
        for path in o.env_file or []:
            env += read_kv_file(path, os.environ)
    except OptionsError as e:
        raise StatusError(str(e)) from None
    env += list(o.env or [])
    body = {"User": o.user, "Privileged": bool(o.privileged), "Tty": bool(o.tty),
            "AttachStdin": False, "AttachStderr": False, "AttachStdout": False,
            "DetachKeys": detach_keys(o.detach_keys), "Env": env or None,
            "WorkingDir": o.workdir, "Cmd": list(o.args[1:])}
    if not o.detach:
        body.update(AttachStdout=True, AttachStderr=True, AttachStdin=bool(o.interactive))
    return body


def exec_(cli: Cli, argv: list[str], path: str) -> int:
    from dockyard.cli.attach import is_terminal

    o = _flags(path).parse(argv)
    container = o.args[0]
    body = exec_options(o)
    cli.client.get(f"/containers/{container}/json")
    if not o.detach and body["AttachStdin"] and body["Tty"] and not is_terminal(cli.stdin):
        raise StatusError("the input device is not a TTY")
    exec_id = cli.client.post(f"/containers/{container}/exec", body=body).get("Id") or ""
    if not exec_id:
        raise StatusError("exec ID empty")
    if o.detach:
        cli.client.request("POST", f"/exec/{exec_id}/start",
                           body={"Detach": True, "Tty": body["Tty"]}).read()
        return 0
    return _interactive(cli, exec_id, body)


def _interactive(cli: Cli, exec_id: str, body: dict) -> int:
    """interactiveExec: the hijacked start, the streams, the exit status."""
    from dockyard.cli.attach import Streamer, is_terminal, monitor_tty_size
    from dockyard.client.hijack import Hijacked

    tty = body["Tty"]
    response = cli.client.request("POST", f"/exec/{exec_id}/start",
                                  body={"Detach": False, "Tty": tty},
                                  headers={"Connection": "Upgrade", "Upgrade": "tcp"})
    streamer = Streamer(cli, Hijacked(response.sock, response.fp), tty,
                        stdin=body["AttachStdin"], stdout=True, stderr=True, err_to_out=tty,
                        detach_keys=body["DetachKeys"])
    try:
        streamer.start()
        if tty and is_terminal(cli.stdin):
            monitor_tty_size(cli, exec_id, is_exec=True)
        streamer.wait_output()
    finally:
        streamer.close()
    if streamer.error is not None:
        raise StatusError(str(streamer.error))
    if streamer.detached:  # the exec runs on; docker's CLI says so, and fails
        raise StatusError("read escape sequence")
    status = int(cli.client.get(f"/exec/{exec_id}/json").get("ExitCode") or 0)
    if status != 0:
        raise StatusError("", status)
    return 0
