"""`create`: everything up to an init waiting on exec.fifo, or nothing at all.

The happy path is a checklist whose undo is guaranteed: a failure at any
step kills whatever init exists, removes the cgroup and the state directory,
and reports the error in runc's words:

    <prog> create failed: unable to start container process: <cause>
    (+ "error during container init: " when the init failed before "ready")

See dockyard.runtime.init for the processes and the sync protocol.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

from dockyard.runtime.ocicli import state as st
from dockyard.runtime.ocicli.bundle import BundleError, InitConfig, plan, load_spec
from dockyard.runtime.ocicli.log import trace


class CreateError(Exception):
    """What went wrong, already in the words the user should see."""

    def __init__(self, msg: str, pid: int = 0) -> None:
        super().__init__(msg)
        self.pid = pid  # the init, if one was started (undo kills it)


def create(root: str, container_id: str, bundle: str, pid_file: str | None,
           console_socket: str | None, log, preserve_fds: int = 0,
           no_pivot: bool = False) -> int:
    """Create the container; returns the init's pid. Raises CreateError."""
    cdir = st.ContainerDir(root, container_id)  # StateError: invalid ID
    bundle = os.path.abspath(bundle)
    try:
        spec = load_spec(bundle)
        cfg = plan(container_id, bundle, spec)
    except BundleError as e:
        raise CreateError(str(e)) from None
    if cfg.terminal and not console_socket:
        raise CreateError("cannot allocate tty if dockyard-runtime will detach without "
                          "setting console socket")
    if console_socket and not cfg.terminal:
        raise CreateError("cannot use console socket if dockyard-runtime will not detach "
                          "or allocate tty")
    cfg.preserve_fds, cfg.no_pivot = preserve_fds, no_pivot
    for msg in cfg.warnings:
        log.warning(msg)
    for msg in cfg.debug:
        log.debug(msg)
    trace("planned")
    cdir.reserve()  # StateError: the ID is taken
    from dockyard.linux.cgroups import open_cgroup  # after the cheap checks
    cgroup = None
    init_pid = 0
    try:
        cfg.cgroups_path = _absolute_cgroups_path(cfg.cgroups_path)
        cgroup = open_cgroup(cfg.cgroups_path)
        if cgroup.exists() and cgroup.pids():
            raise CreateError("container's cgroup is not empty: "
                              f"{len(cgroup.pids())} process(es) found")
        try:
            cgroup.create(cfg.resources)
        except OSError as e:
            raise CreateError("unable to start container process: unable to apply cgroup "
                              f"configuration: {e.strerror or e}") from None
        trace("cgroup created")
        cfg.freezer = st.freezer_file(cgroup)
        init_pid = _spawn(cfg, cdir, cgroup, console_socket)
        trace("init created")
        if pid_file:
            _write_pid_file(pid_file, init_pid)
        return init_pid
    except BaseException as e:
        _undo(cdir, cgroup, init_pid or getattr(e, "pid", 0))
        raise


def _absolute_cgroups_path(path: str) -> str:
    """A relative cgroupsPath is relative to our own cgroup (runc's rule).
    It is made absolute once, here, so that `state`/`kill`/`delete` run from
    another cgroup (the daemon's) find the same directories. On cgroup v1 the
    base is our cgroup in the pids (else devices, freezer...) hierarchy."""
    if path.startswith("/"):
        return path
    from dockyard.linux.cgroups import own_cgroup, unified_host
    base = None
    for controller in ([""] if unified_host() else ["pids", "devices", "freezer", "cpu",
                                                    "memory", "name=systemd"]):
        base = own_cgroup(controller)
        if base:
            break
    return os.path.normpath(os.path.join(base or "/", path))


def _spawn(cfg: InitConfig, cdir: st.ContainerDir, cgroup, console_socket: str | None) -> int:
    cfg.fifo_fd = cdir.make_fifo()
    if console_socket:
        try:
            from dockyard.runtime import console
            cfg.console_fd = console.connect(console_socket)
        except OSError as e:
            raise CreateError(e.strerror) from None
    import _socket  # socket.py costs an import of selectors and enum wrappers

    from dockyard.runtime.init import intermediate  # before fork: imported once
    parent, child = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
    cfg.sync_fd = child.fileno()
    pid = os.fork()
    if pid == 0:
        # P1. The parent's socket end is closed so that P0 sees EOF when P1
        # and P2 are both gone.
        parent.close()
        intermediate(cfg, cgroup)  # never returns
    child.close()
    os.close(cfg.fifo_fd)
    if cfg.console_fd >= 0:
        os.close(cfg.console_fd)
    try:
        return _sync(cfg, cdir, parent.fileno(), pid)
    finally:
        parent.close()


def _sync(cfg: InitConfig, cdir: st.ContainerDir, fd: int, middle: int) -> int:
    """Follow the init through the protocol; returns its pid."""
    from dockyard.runtime.init import recv, send
    init_pid, ready, sent_run, middle_reaped = 0, False, False, False
    try:
        while True:
            msg = recv(fd)
            if msg is None:
                raise CreateError("unable to start container process: error during container "
                                  "init: " + _died(middle, middle_reaped, init_pid), init_pid)
            kind = msg.get("type")
            if kind == "pid":
                init_pid = msg["pid"]
                _reap(middle)
                middle_reaped = True
            elif kind == "error":
                prefix = "" if msg.get("after_ready") else "error during container init: "
                raise CreateError(f"unable to start container process: {prefix}{msg['msg']}",
                                  init_pid)
            elif kind == "ready":
                trace("ready received")
                ready = True
            elif kind == "created":
                return init_pid
            if ready and init_pid and not sent_run:
                _save_state(cfg, cdir, init_pid)
                send(fd, type="run")
                sent_run = True
    finally:
        if not middle_reaped:
            _reap(middle)


def _died(middle: int, reaped: bool, init_pid: int) -> str:
    if not reaped:
        _, status = os.waitpid(middle, 0)
        return f"intermediate process exited unexpectedly ({_describe(status)})"
    return f"container init (pid {init_pid}) exited unexpectedly"


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal: {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _save_state(cfg: InitConfig, cdir: st.ContainerDir, pid: int) -> None:
    ps = st.proc_stat(pid)
    if ps is None:
        raise CreateError("unable to start container process: container init exited "
                          "before it was ready", pid)
    cdir.save({
        "version": st.STATE_VERSION, "id": cfg.id, "bundle": cfg.bundle, "rootfs": cfg.rootfs,
        "created": st.rfc3339nano(time.time_ns()), "owner": "",
        "annotations": cfg.spec.get("annotations") or {},
        "pid": pid, "start_time": ps[1], "cgroups_path": cfg.cgroups_path,
        "freezer": cfg.freezer,
        "pid_namespace": "pid" in cfg.ns.new or "pid" in cfg.ns.join,
        "config": cfg.spec,
    })


def _write_pid_file(path: str, pid: int) -> None:
    """Atomically, no newline (as runc)."""
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path))
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.replace(tmp, path)


def _undo(cdir: st.ContainerDir, cgroup, init_pid: int) -> None:
    if init_pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(init_pid, signal.SIGKILL)
    if cgroup is not None:
        with contextlib.suppress(OSError):
            if cgroup.exists():
                if cgroup.pids():
                    cgroup.kill_all(signal.SIGKILL)
                cgroup.destroy()
    cdir.remove()
