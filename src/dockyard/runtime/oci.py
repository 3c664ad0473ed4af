"""`dockyard-runtime`: our OCI runtime, a drop-in for runc's CLI subset.

    dockyard-runtime [--root DIR] [--log FILE] [--log-format text|json] [--debug] COMMAND
      create [--bundle DIR] [--pid-file FILE] [--console-socket PATH]
             [--preserve-fds N] [--no-pivot] [--no-new-keyring] ID
      start ID | state ID | pause ID | resume ID
      kill [--all] ID [SIGNAL]          SIGNAL: KILL, SIGKILL or 9; default TERM
      delete [--force] ID
      exec [--process FILE] [--console-socket PATH] [--pid-file FILE] [-d] [-t]
           [--cwd DIR] [-e K=V]... [-u UID[:GID]] [--ignore-paused] ID [ARGS...]
      update [-r FILE|-] [--memory N] [--cpu-quota N] [--pids-limit N] ... ID

Output, errors and exit codes follow runc 1.1: `state` prints the OCI state
JSON (2-space indent, no trailing newline); failures exit 1 with a logrus
line on stderr (or in --log, plus the bare message on stderr). The messages
are runc's, with our program name where runc says "runc".

This process must stay single-threaded: `create` forks the container's init
from it (dockyard.runtime.init).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

from dockyard.runtime.ocicli import state as st
from dockyard.runtime.ocicli import update as ocicli_update
from dockyard.runtime.ocicli.log import Logger, trace

PROG = "dockyard-runtime"
DEFAULT_ROOT = "/run/dockyard-runtime"

# command -> {flag: takes a value?}; aliases map to the canonical name
_FLAGS = {
    "create": {"bundle": True, "pid-file": True, "console-socket": True, "preserve-fds": True,
               "no-pivot": False, "no-new-keyring": False},
    "start": {}, "state": {}, "pause": {}, "resume": {},
    "kill": {"all": False},
    "delete": {"force": False},
}
_FLAGS["exec"] = {"process": True, "console-socket": True, "pid-file": True, "detach": False,
                  "tty": False, "cwd": True, "env": True, "user": True, "additional-gids": True,
                  "cap": True, "no-new-privs": False, "preserve-fds": True,
                  "ignore-paused": False, "process-label": True, "apparmor": True,
                  "cgroup": True}
_ALIASES = {"b": "bundle", "a": "all", "f": "force"}
_CMD_ALIASES = {"exec": {"p": "process", "d": "detach", "t": "tty", "e": "env", "u": "user",
                         "g": "additional-gids", "c": "cap"}}  # a command's own short flags
_REPEATED = ("env", "additional-gids", "cap", "cgroup")  # flags that may be given again
_GLOBAL = {"root": True, "log": True, "log-format": True, "debug": False,
           "systemd-cgroup": False, "criu": True, "rootless": True}
_NARGS = {"create": (1, 1), "start": (1, 1), "state": (1, 1), "pause": (1, 1),
          "resume": (1, 1), "kill": (1, 2), "delete": (1, 1), "exec": (1, 1 << 30)}
# Commands whose flags end at the first positional argument (the ID; what
# follows is the process's own argv).
_POSITIONAL_ENDS_FLAGS = {"exec"}


class UsageError(Exception):
    pass


class Failure(Exception):
    """A command failed; the message is what runc would print."""


def parse(argv: list[str], known: dict[str, bool], aliases: dict | None = None,
          stop: bool = False, repeated: tuple = ()) -> tuple[dict, list[str]]:
    """urfave/cli style: -x/--x, `--x v` or `--x=v`; flags stop at the first
    positional argument for globals (and with `stop`), and anywhere for
    command flags. Flags in `repeated` collect their values in a list."""
    aliases = {**_ALIASES, **(aliases or {})}
    opts: dict = {}
    rest: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            rest += argv[i + 1:]
            break
        if a.startswith("-") and a != "-":
            name, eq, value = a.lstrip("-").partition("=")
            name = aliases.get(name, name)
            if name not in known:
                raise UsageError(f"flag provided but not defined: -{name}")
            if known[name]:
                if not eq:
                    i += 1
                    if i >= len(argv):
                        raise UsageError(f"flag needs an argument: -{name}")
                    value = argv[i]
                if name in repeated:
                    opts.setdefault(name, []).append(value)
                else:
                    opts[name] = value
            else:
                opts[name] = value.lower() not in ("false", "0") if eq else True
            i += 1
            continue
        if known is _GLOBAL or stop:
            return opts, rest + argv[i:]
        rest.append(a)
        i += 1
    return opts, rest


def main(argv: list[str] | None = None) -> int:
    """The console script. Run as a program (argv None), it leaves with
    os._exit: nothing needs finalizing, and interpreter teardown is a
    measurable part of a command this short. Given argv, it returns the code."""
    trace("main")
    try:
        code = _main(sys.argv[1:] if argv is None else argv)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    if argv is not None:
        return code
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _main(argv: list[str]) -> int:
    log = Logger()
    try:
        gopts, rest = parse(argv, _GLOBAL)
        log = Logger(gopts.get("log"), gopts.get("log-format", "text"), bool(gopts.get("debug")))
        if not rest:
            raise UsageError("no command given")
        if rest[0] in ("-v", "--version", "version"):
            print(f"{PROG} version 0.1.0\nspec: {st.OCI_VERSION}")
            return 0
        cmd = rest[0]
        if cmd not in _FLAGS:
            raise UsageError(f"No help topic for '{cmd}'")
        opts, args = parse(rest[1:], _FLAGS[cmd], _CMD_ALIASES.get(cmd),
                           cmd in _POSITIONAL_ENDS_FLAGS, _REPEATED)
        lo, hi = _NARGS[cmd]
        if len(args) < lo or len(args) > hi:
            kind = ("exactly", lo) if lo == hi else (("a minimum of", lo) if len(args) < lo
                                                    else ("a maximum of", hi))
            raise UsageError(f'{sys.argv[0] or PROG}: "{cmd}" requires {kind[0]} {kind[1]} '
                             'argument(s)')  # runc names itself by os.Args[0] here
        root = gopts.get("root") or DEFAULT_ROOT
        return _COMMANDS[cmd](root, opts, args, log) or 0
    except (UsageError, Failure, st.StateError) as e:
        log.fatal(str(e))
    except KeyboardInterrupt:
        return 130


# -- commands ---------------------------------------------------------------------

def cmd_create(root: str, opts: dict, args: list[str], log: Logger) -> None:
    from dockyard.runtime.ocicli.create import CreateError, create
    try:
        create(root, args[0], opts.get("bundle") or ".", opts.get("pid-file"),
               opts.get("console-socket"), log, int(opts.get("preserve-fds") or 0),
               bool(opts.get("no-pivot")))
    except (CreateError, st.StateError) as e:
        raise Failure(f"{PROG} create failed: {e}") from None
    except OSError as e:
        raise Failure(f"{PROG} create failed: {e.strerror or e}") from None


def cmd_exec(root: str, opts: dict, args: list[str], log: Logger) -> int:
    from dockyard.runtime.ocicli.exec import ExecError, run
    try:
        return run(root, args[0], opts, args[1:], log)
    except ExecError as e:
        raise Failure(f"exec failed: {e}") from None
    except OSError as e:
        raise Failure(f"exec failed: {e.strerror or e}") from None


def _load(root: str, container_id: str) -> tuple[st.ContainerDir, dict]:
    cdir = st.ContainerDir(root, container_id)
    return cdir, cdir.load()


def _cgroup(state: dict):
    from dockyard.linux.cgroups import open_cgroup
    return open_cgroup(state["cgroups_path"])


def _status(cdir: st.ContainerDir, state: dict, cgroup=None) -> str:
    return st.status(cdir, state, cgroup)


def cmd_state(root: str, opts: dict, args: list[str], log: Logger) -> None:
    cdir, state = _load(root, args[0])
    doc = st.oci_state(state, _status(cdir, state))
    sys.stdout.write(json.dumps(doc, indent=2))
    sys.stdout.flush()


def cmd_start(root: str, opts: dict, args: list[str], log: Logger) -> None:
    cdir, state, fd = begin_start(root, args[0])
    try:
        data = _read_exec_fifo(fd, state)
    finally:
        os.close(fd)
    finish_start(cdir, data)


# `start` in three parts, so that a caller with an event loop of its own (our
# shim) can run it without blocking: begin_start, then read the fd until EOF
# (or the init's death), then finish_start with what was read.

def begin_start(root: str, container_id: str) -> tuple[st.ContainerDir, dict, int]:
    """start's checks, then exec.fifo opened for reading (non-blocking): the
    waiting init, whose open(O_WRONLY) this completes, writes one byte and
    execs, and the exec closes its end (EOF). Raises Failure or StateError."""
    cdir, state = _load(root, container_id)
    trace("start: loaded")
    status = _status(cdir, state)
    trace("start: status")
    if status == "stopped":
        raise Failure("cannot start a container that has stopped")
    if status == "running":
        raise Failure("cannot start an already running container")
    if status != "created":
        raise Failure(f"cannot start a container in the {status} state")
    try:
        return cdir, state, os.open(cdir.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise Failure("cannot start an already running container") from None


def finish_start(cdir: st.ContainerDir, data: bytes, init_died: bool = False) -> None:
    """The end of start, given all that the init wrote to exec.fifo (runc's
    exec/handleFifoResult)."""
    if not data:
        raise Failure("container process is already dead" if init_died
                      else "cannot start an already running container")
    os.unlink(cdir.fifo)
    trace("start: done")


def _read_exec_fifo(fd: int, state: dict) -> bytes:
    """Read exec.fifo until the init's execve closes it (EOF), or the init dies."""
    import select
    data = b""
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP)
    while True:
        # On Linux a FIFO reports no POLLHUP before its first writer came,
        # so this waits for the init, then for its execve (EOF).
        if poller.poll(100):
            try:
                chunk = os.read(fd, 64)
            except BlockingIOError:
                continue
            if not chunk:
                return data
            data += chunk
        elif not st.init_alive(state):
            try:
                data += os.read(fd, 64)
            except BlockingIOError:
                pass
            if not data:
                raise Failure("container process is already dead")
            return data


def parse_signal(raw: str) -> int:
    if raw.isdigit():
        return int(raw)
    name = raw.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise Failure(f"unknown signal {json.dumps(raw)}") from None


def cmd_kill(root: str, opts: dict, args: list[str], log: Logger) -> None:
    cdir, state = _load(root, args[0])
    sig = parse_signal(args[1] if len(args) > 1 else "SIGTERM")
    cgroup = _cgroup(state)
    status = _status(cdir, state, cgroup)
    if opts.get("all"):
        if status == "stopped" and not cgroup.exists():
            return
        cgroup.kill_all(sig)
        return
    if status not in ("running", "created", "paused"):
        raise Failure("container not running")
    try:
        os.kill(state["pid"], sig)
    except OSError as e:
        raise Failure(f"unable to signal init: {e.strerror}") from None
    if status == "paused" and sig == signal.SIGKILL:
        # A frozen task cannot die: thaw so the SIGKILL is delivered (cgroup v1).
        cgroup.thaw()


def cmd_delete(root: str, opts: dict, args: list[str], log: Logger) -> None:
    cid, force = args[0], bool(opts.get("force"))
    cdir = st.ContainerDir(root, cid)
    try:
        state = cdir.load()
    except st.StateError:
        if os.path.isdir(cdir.path):
            cdir.remove()  # a create that died half-way
        if force:
            return
        raise
    cgroup = _cgroup(state)
    status = _status(cdir, state, cgroup)
    if status == "stopped":
        _destroy(cdir, state, cgroup, log)
    elif status == "created" or force:
        _kill_and_destroy(cdir, state, cgroup, status, log)
    else:
        raise Failure(f"cannot delete container {cid} that is not stopped: {status}")


def _kill_and_destroy(cdir, state, cgroup, status: str, log: Logger) -> None:
    try:
        os.kill(state["pid"], signal.SIGKILL)
    except ProcessLookupError:
        pass
    if status == "paused":
        cgroup.thaw()
    deadline = time.monotonic() + 10
    delay = 0.001
    while st.init_alive(state):
        if time.monotonic() > deadline:
            raise Failure("container init still running")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
    _destroy(cdir, state, cgroup, log)


def _destroy(cdir, state, cgroup, log: Logger) -> None:
    """Remove the cgroup and the state directory (runc's destroy)."""
    if not state.get("pid_namespace", True) and cgroup.exists():
        # Without a pid namespace of its own, the init's death does not take
        # the other processes with it.
        try:
            cgroup.kill_all(signal.SIGKILL)
        except OSError as e:
            log.warning(str(e))
    err = None
    try:
        if cgroup.exists():
            cgroup.destroy()
    except OSError as e:
        err = e
    cdir.remove()
    if err is not None:
        raise Failure(err.strerror or str(err))


def cmd_pause(root: str, opts: dict, args: list[str], log: Logger) -> None:
    cdir, state = _load(root, args[0])
    cgroup = _cgroup(state)
    if _status(cdir, state, cgroup) not in ("running", "created"):
        raise Failure("container not running")
    cgroup.freeze()


def cmd_resume(root: str, opts: dict, args: list[str], log: Logger) -> None:
    cdir, state = _load(root, args[0])
    cgroup = _cgroup(state)
    if _status(cdir, state, cgroup) != "paused":
        raise Failure("container not paused")
    cgroup.thaw()


_COMMANDS = {"create": cmd_create, "start": cmd_start, "state": cmd_state, "kill": cmd_kill,
             "delete": cmd_delete, "pause": cmd_pause, "resume": cmd_resume, "exec": cmd_exec}
ocicli_update.register(_FLAGS, _NARGS, _COMMANDS, _CMD_ALIASES)  # `update` (ocicli/update.py)


if __name__ == "__main__":
    main()
