"""`exec`: run a new process inside a running container (runc exec).

    exec [--process FILE | ARGS...] [--console-socket PATH] [--pid-file FILE]
         [-d/--detach] [-t/--tty] [--cwd DIR] [-e/--env K=V]... [-u/--user UID[:GID]]
         [-g/--additional-gids GID]... [-c/--cap CAP]... [--no-new-privs]
         [--preserve-fds N] [--ignore-paused] ID

The process is the one in --process (an OCI `process` object, what
containerd's shim writes), or the container's own process from its
config.json with ARGS and the flags above put in. It joins every namespace
the container has, through the init's /proc/<pid>/ns files, and the
container's cgroup in every hierarchy; it gets the process's capabilities,
rlimits, user and noNewPrivileges, nothing of ours. See
dockyard.runtime.execinit for the processes.

With --detach the command returns once the process runs (its pid in
--pid-file); the caller, a child subreaper (our shim, containerd's), reaps
it. Without, this command becomes a subreaper itself, waits for the process,
passes on the signals it gets, and exits with its status.

Errors are runc's: `exec failed: unable to start container process: exec:
"nosuch": executable file not found in $PATH`, before the process runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal

from dockyard.runtime.ocicli import state as st
from dockyard.runtime.ocicli.bundle import BundleError, InitConfig, _env
from dockyard.runtime.ocicli.log import trace

class ExecError(Exception):
    """What went wrong, in runc's words, without the `exec failed: ` prefix."""


def run(root: str, container_id: str, opts: dict, args: list[str], log) -> int:
    """The `exec` command; returns the exit code (0 with --detach)."""
    detach = bool(opts.get("detach"))
    cfg, state = prepare(root, container_id, opts, args, log)
    if not detach:
        from dockyard.linux.prctl import set_child_subreaper

        set_child_subreaper()  # the process is re-parented to us when P1 exits
    parent, middle = fork_joiner(cfg, state, opts.get("console-socket"))
    try:
        pid = sync(parent, middle)
    finally:
        os.close(parent)
    trace("exec: running")
    if opts.get("pid-file"):
        from dockyard.runtime.ocicli.create import _write_pid_file

        _write_pid_file(opts["pid-file"], pid)
    return 0 if detach else _wait(pid)


def prepare(root: str, container_id: str, opts: dict, args: list[str], log,
            process: dict | None = None) -> tuple[InitConfig, dict]:
    """Every check that needs no process: the container's state, the process
    (`process`, or as --process and ARGS say), its plan. (cfg, state);
    ExecError or StateError."""
    cdir = st.ContainerDir(root, container_id)
    state = cdir.load()  # StateError: container does not exist
    status = st.status(cdir, state)
    if status == "stopped":
        raise ExecError("cannot exec in a stopped container")
    if status == "paused" and not opts.get("ignore-paused"):
        raise ExecError("cannot exec in a paused container (use --ignore-paused to override)")
    if process is None:
        process = load_process(opts, args, state.get("config") or {})
    cfg = plan(container_id, state, process)
    console_socket = opts.get("console-socket")
    if cfg.terminal and not console_socket:
        raise ExecError("cannot allocate tty if dockyard-runtime will detach without setting "
                        "console socket")
    if console_socket and not cfg.terminal:
        raise ExecError("cannot use console socket if dockyard-runtime will not detach or "
                        "allocate tty")
    cfg.preserve_fds = int(opts.get("preserve-fds") or 0)
    for msg in cfg.warnings:
        log.warning(msg)
    trace("exec: planned")
    return cfg, state


def load_process(opts: dict, args: list[str], spec: dict) -> dict:
    """--process FILE, or the container's process with ARGS and the flags in."""
    path = opts.get("process")
    if path:
        try:
            with open(path, "rb") as f:
                process = json.load(f)
        except OSError as e:
            raise ExecError(f"open {path}: {e.strerror}") from None
        except ValueError as e:
            raise ExecError(f"{path}: {e}") from None
        if not isinstance(process, dict):
            raise ExecError(f"{path}: not a process object")
        return process
    if not args:
        raise ExecError("args must not be empty")
    process = json.loads(json.dumps(spec.get("process") or {}))  # a deep copy
    process["args"] = list(args)
    if opts.get("cwd"):
        process["cwd"] = opts["cwd"]
    if opts.get("env"):
        process["env"] = list(process.get("env") or []) + list(opts["env"])
    if opts.get("tty"):
        process["terminal"] = True
    if opts.get("no-new-privs"):
        process["noNewPrivileges"] = True
    user = process.setdefault("user", {})
    if opts.get("user"):
        uid, _, gid = opts["user"].partition(":")
        try:
            user["uid"] = int(uid)
            if gid:
                user["gid"] = int(gid)
        except ValueError:
            raise ExecError(f"parsing {opts['user']} as int for uid failed") from None
    if opts.get("additional-gids"):
        try:
            user["additionalGids"] = [int(g) for g in opts["additional-gids"]]
        except ValueError as e:
            raise ExecError(f"invalid additional-gids: {e}") from None
    for name in opts.get("cap") or []:
        caps = process.setdefault("capabilities", {})
        for kind in ("bounding", "effective", "permitted", "ambient"):
            caps.setdefault(kind, [])
            if name not in caps[kind]:
                caps[kind].append(name)
    return process


def plan(container_id: str, state: dict, process: dict) -> InitConfig:
    """Check `process` (runc's validateProcessSpec) and derive the plan: the
    fields dockyard.runtime.init's process steps act on, and the namespaces
    to join, those of the container's init."""
    from dockyard.linux import capabilities, namespaces, rlimits

    cwd = process.get("cwd") or ""
    if not cwd:
        raise ExecError("Cwd property must not be empty")
    if not cwd.startswith("/"):
        raise ExecError("Cwd must be an absolute path")
    args = process.get("args") or []
    if not args:
        raise ExecError("args must not be empty")
    try:
        env = _env(process.get("env") or [])
        limits = rlimits.parse(process.get("rlimits"))
    except (BundleError, ValueError) as e:
        raise ExecError(str(e)) from None
    ns = namespaces.Plan()
    pid = state["pid"]
    for entry in ((state.get("config") or {}).get("linux") or {}).get("namespaces") or []:
        kind = entry.get("type", "")
        if kind in namespaces.KINDS:
            ns.join[kind] = namespaces.ns_path(pid, kind)
    user = process.get("user") or {}
    size = process.get("consoleSize")
    cfg = InitConfig(
        id=container_id, ns=ns, rlimits=limits, args=list(args), env=env, cwd=cwd,
        uid=int(user.get("uid") or 0), gid=int(user.get("gid") or 0),
        additional_gids=[int(g) for g in user.get("additionalGids") or []],
        terminal=bool(process.get("terminal")),
        console_size=(int(size.get("height") or 0), int(size.get("width") or 0)) if size else None,
        no_new_privileges=bool(process.get("noNewPrivileges")),
    )
    cfg.caps = capabilities.plan(process.get("capabilities"), capabilities.current("bounding"),
                                 capabilities.last_cap())
    if cfg.caps.unknown:
        cfg.warnings.append("ignoring unknown or unavailable capabilities: "
                            f"[{' '.join(cfg.caps.unknown)}]")
    return cfg


def fork_joiner(cfg: InitConfig, state: dict, console_socket: str | None, cgroup=None,
                in_child=None) -> tuple[int, int]:
    """Fork the joiner (P1). Returns our end of the sync socket, to read with
    `sync` (or `outcome`, a message at a time), and P1's pid. `cgroup`: the
    container's, if the caller has it open already. With `in_child(keep)`
    (a caller that forks from a busy process of its own, and closes its own
    fds there, all but those in `keep`), the process itself is forked at once
    (dockyard.runtime.execinit.fork_into), and its pid is returned."""
    import _socket

    from dockyard.runtime.execinit import fork_into, joiner

    if cgroup is None and state.get("cgroups_path"):
        from dockyard.linux.cgroups import open_cgroup

        cgroup = open_cgroup(state["cgroups_path"])
    if console_socket:
        from dockyard.runtime import console

        try:
            cfg.console_fd = console.connect(console_socket)
        except OSError as e:
            raise ExecError(e.strerror) from None
    parent, child = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
    cfg.sync_fd = child.fileno()
    try:
        if in_child is not None:
            middle = fork_into(cfg, cgroup, in_child)
        else:
            middle = os.fork()
            if middle == 0:
                parent.close()
                joiner(cfg, cgroup)  # never returns
    except BaseException:
        parent.close()
        raise
    finally:
        child.close()
        if cfg.console_fd >= 0:
            os.close(cfg.console_fd)
            cfg.console_fd = -1
    return parent.detach(), middle


def outcome(msg: dict | None, pid: int) -> int | None:
    """One message from P1 or P2 (None: EOF), given the pid known so far.
    Returns the pid once the process has exec'd (EOF after its pid), None
    while more is to come; ExecError if it failed."""
    if msg is None:
        if not pid:
            raise ExecError("unable to start container process: the setns process exited "
                            "unexpectedly")
        return pid
    if msg.get("type") == "error":
        raise ExecError(f"unable to start container process: {msg.get('msg')}")
    return None


def sync(fd: int, middle: int) -> int:
    """Follow P1 and P2 until EOF: the process's pid, or ExecError."""
    from dockyard.runtime.init import recv

    pid, reaped = 0, False
    try:
        while True:
            msg = recv(fd)
            if msg is not None and msg.get("type") == "pid":
                pid = msg["pid"]
                _reap(middle)
                reaped = True
                continue
            try:
                done = outcome(msg, pid)
            except ExecError:
                if pid:
                    _reap(pid)  # (ours only without --detach; it exits by itself)
                raise
            if done:
                return done
    finally:
        if not reaped:
            _reap(middle)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _wait(pid: int) -> int:
    """Without --detach: pass signals on to the process, and exit as it did."""
    def forward(number, _frame):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, number)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
                signal.SIGUSR2, signal.SIGWINCH):
        signal.signal(sig, forward)
    while True:
        try:
            got, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 255
        except InterruptedError:
            continue
        if got == pid:
            code = os.waitstatus_to_exitcode(status)
            return code if code >= 0 else 128 - code
