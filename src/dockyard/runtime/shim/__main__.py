"""`python -m dockyard.runtime.shim`: flags, detaching, create, report, serve.

The order of work is chosen for the time to "created": this module imports
only what is needed before `runtime create` starts; the event loop's modules
(json, socket: ~12 ms) are imported, and the socket is bound, while the
runtime works in its own process. (Started by the fork server, a shim finds
every module imported already: see dockyard.runtime.shim.forkserver.)

`python -m dockyard.runtime.shim --fork-server FD` runs the fork server.
"""

from __future__ import annotations

import os
import signal
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

from dockyard.runtime import logfile
from dockyard.runtime.ocicli.log import trace
from dockyard.runtime.shim.runtime import Failed, Runtime, is_ours

USAGE = """usage: python -m dockyard.runtime.shim --id ID --bundle DIR --runtime PATH
    [--runtime-root DIR] --socket PATH --exit-file PATH --status-fd N [--stdin] [--tty]
    [--log-driver json-file|local|none] [--log-path FILE] [--log-opt KEY=VALUE]...
    [--exec-runtime]
       python -m dockyard.runtime.shim --fork-server FD

One shim per container: creates it with the OCI runtime, reports
{"ok": true, "pid": N, "shim_pid": N} (or {"ok": false, "error": ...}) on the
status fd, then serves start/attach/wait/resize/state/kill/exec on --socket until the
container has exited. Our own runtime runs in forks of the shim unless
--exec-runtime is given. See `pydoc dockyard.runtime.shim`."""

_VALUED = {"--id": "id", "--bundle": "bundle", "--runtime": "runtime",
           "--runtime-root": "runtime_root", "--socket": "socket", "--exit-file": "exit_file",
           "--status-fd": "status_fd", "--log-driver": "log_driver", "--log-path": "log_path",
           "--log-opt": "log_opt"}
_REQUIRED = ("--id", "--bundle", "--runtime", "--socket", "--exit-file", "--status-fd")


def parse_args(argv: list[str]) -> dict:
    opts: dict = {"runtime_root": None, "stdin": False, "tty": False, "exec_runtime": False,
                  "log_driver": "json-file", "log_path": None, "log_opts": {}}
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg in ("-h", "--help"):
            print(USAGE)
            sys.exit(0)
        if arg in ("--stdin", "--tty", "--exec-runtime"):
            opts[arg[2:].replace("-", "_")] = True
            continue
        flag, eq, value = arg.partition("=")
        if flag not in _VALUED:
            raise ValueError(f"unknown flag {arg!r}")
        if not eq:
            if not args:
                raise ValueError(f"flag {flag} needs a value")
            value = args.pop(0)
        if flag == "--log-opt":
            key, eq, val = value.partition("=")
            if not eq:
                raise ValueError(f"invalid log opt {value!r}: want KEY=VALUE")
            opts["log_opts"][key] = val
        else:
            opts[_VALUED[flag]] = value
    for flag in _REQUIRED:
        if not opts.get(_VALUED[flag]):
            raise ValueError(f"missing {flag}")
    opts["status_fd"] = int(opts["status_fd"])
    return opts


def detach() -> None:
    """fork, setsid, fork: the process the daemon started exits at once (the
    daemon reaps it, and it reaps the middle one); the grandchild runs on in a
    session of its own, of which it is not the leader, so that no terminal can
    become its controlling terminal."""
    if os.fork():
        os.wait()
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    os.chdir("/")  # hold no mount busy


def sigchld_wakeup() -> int:
    """A pipe that turns readable whenever SIGCHLD arrives."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so that the wakeup fd fires
    signal.set_wakeup_fd(wake_w)
    return wake_r


def report(fd: int, obj: dict) -> None:
    import json

    data = json.dumps(obj).encode() + b"\n"
    try:
        while data:
            data = data[os.write(fd, data):]
    except OSError:
        pass  # the daemon has gone; the exit file will tell
    os.close(fd)


def fail(status_fd: int, error: str) -> None:
    report(status_fd, {"ok": False, "error": error, "shim_pid": os.getpid()})
    os._exit(1)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--fork-server"] and len(argv) == 2:
        from dockyard.runtime.shim import forkserver

        forkserver.serve(int(argv[1]))
    opts = parse_or_exit(argv)
    detach()
    run(opts)


def parse_or_exit(argv: list[str]) -> dict:
    """The options, with fds 0-2 open and the status fd ours alone."""
    try:
        opts = parse_args(argv)
    except ValueError as e:
        sys.stderr.write(f"shim: {e}\n{USAGE}\n")
        sys.exit(2)
    for fd in (0, 1, 2):  # no pipe of ours may land on a stdio number
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)
    os.set_inheritable(opts["status_fd"], False)
    return opts


def run(opts: dict) -> NoReturn:
    """The detached shim's life: create, report, serve, exit."""
    status_fd = opts["status_fd"]
    trace("shim: run")
    try:
        from dockyard.linux.prctl import set_child_subreaper

        set_child_subreaper()  # before the runtime runs: its init becomes our child
        writer = logfile.open_writer(opts["log_driver"], opts["log_path"], opts["log_opts"])
        runtime = Runtime(opts["runtime"], opts["runtime_root"], opts["bundle"], opts["id"],
                          in_process=not opts["exec_runtime"] and is_ours(opts["runtime"]))
        wake_r = sigchld_wakeup()
        creating = runtime.begin_create(stdin=opts["stdin"], tty=opts["tty"])
        trace("shim: create begun")
    except Exception as e:  # noqa: BLE001 - reported to the daemon
        fail(status_fd, str(e))
    # While the runtime works (in a process of its own): the event loop's
    # imports, the socket, and the cgroup the exit will read the OOM count of.
    from dockyard.runtime.shim import server

    listener = listen_error = None
    try:
        listener = server.listen(opts["socket"])
    except OSError as e:
        listen_error = f"listening on {opts['socket']}: {e}"
    oom_count = server.oom_counter(opts["bundle"])
    trace("shim: listening")
    try:
        created = creating.finish(wake_r)
    except Failed as e:
        if listener is not None:
            _unlink(opts["socket"])
        fail(status_fd, str(e))
    if listen_error:
        runtime.run_quietly("delete", "--force", runtime.id)
        fail(status_fd, listen_error)
    report(status_fd, {"ok": True, "pid": created.pid, "shim_pid": os.getpid()})
    trace("shim: created, reported")
    try:
        server.Shim(opts, runtime, created, writer, wake_r, listener, oom_count).serve()
    finally:
        _unlink(opts["socket"])
    os._exit(0)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


if __name__ == "__main__":
    main()
