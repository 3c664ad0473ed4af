"""The container's first two processes, forked from `dockyard-runtime create`.

    create (P0) ──fork──▶ intermediate (P1) ──fork──▶ init (P2, PID 1)
    plans, cgroup,        joins the cgroup,          the checklist below,
    state.json,           oom_score_adj, enters      then blocks on exec.fifo
    waits for "created"   namespaces, reports the    until `start`, then
                          init's pid, exits          execve(process.args)

P0, P1 and P2 talk over one SOCK_SEQPACKET socketpair (one JSON object per
message; EOF when every peer is gone):

    P1 -> P0  {"type": "pid", "pid": N}        N as P0 sees it (host pid)
    P2 -> P0  {"type": "ready"}                rootfs done; P0 writes state.json
    P0 -> P2  {"type": "run"}                  (so `delete` finds a half-made
                                               container) and lets it finish
    P2 -> P0  {"type": "created"}              all checks passed; P2 now waits
    P1|P2 -> P0  {"type": "error", "msg": "...", "after_ready": bool}

Everything runs in processes forked from the single-threaded CLI: the plan
(`InitConfig`) is inherited memory, nothing is serialized, and no Python
interpreter is started twice. After P1 exits, P2 is re-parented to the
nearest subreaper (the shim), which reaps it.
"""

from __future__ import annotations

import json
import os
import stat

from dockyard.linux import (capabilities, devices, namespaces, rlimits, rootfs, signals,
                           syscalls, user)
from dockyard.runtime.ocicli.bundle import InitConfig, goq
from dockyard.runtime.ocicli.log import trace


class InitError(Exception):
    """A failed step; `msg` is in runc's words."""


def send(fd: int, **msg) -> None:
    os.write(fd, json.dumps(msg).encode())


def recv(fd: int) -> dict | None:
    data = os.read(fd, 65536)
    return json.loads(data) if data else None


def errtext(e: BaseException) -> str:
    """An exception as runc would print it: `mkdir /x: permission denied`."""
    if isinstance(e, OSError):
        if e.filename is not None and e.strerror:
            return f"{e.filename}: {rlimits.go_strerror(e.errno) if e.errno else e.strerror}"
        if e.strerror:
            return e.strerror
    return str(e)


def _step(what: str, fn, *args):
    """Run one checklist step; a failure reads `<what>: <cause>` (runc's wrapping)."""
    try:
        return fn(*args)
    except InitError:
        raise
    except Exception as e:  # noqa: BLE001 - every failure ends the init, with a message
        raise InitError(f"{what}: {errtext(e)}" if what else errtext(e)) from e


# -- P1: the intermediate process -------------------------------------------------

def intermediate(cfg: InitConfig, cgroup) -> "NoReturn":  # noqa: F821
    """Runs in P1. Never returns."""
    try:
        # Join the cgroup before anything else: the init is born inside it
        # (limits apply from its first instruction), and a new cgroup
        # namespace (unshared below) is rooted at the container's cgroup.
        trace("intermediate")
        _step("unable to apply cgroup configuration", cgroup.add, os.getpid())
        trace("joined cgroup")
        if cfg.oom_score_adj is not None:
            # Inherited by the init. Lowering it needs CAP_SYS_RESOURCE, which
            # we still have here if the host has it at all.
            _step("failed to update /proc/self/oom_score_adj", _write,
                  "/proc/self/oom_score_adj", str(cfg.oom_score_adj))
        # setns() into the spec's paths, unshare() the new ones. A new pid
        # namespace holds our *next* child only: fork again.
        _step("error entering namespaces", namespaces.enter, cfg.ns)
        pid = os.fork()
        if pid == 0:
            init(cfg)  # never returns
        send(cfg.sync_fd, type="pid", pid=pid)
        os._exit(0)
    except BaseException as e:  # noqa: BLE001
        try:
            send(cfg.sync_fd, type="error", msg=errtext(e), after_ready=False)
        finally:
            os._exit(1)


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


# -- P2: the container init -------------------------------------------------------

def init(cfg: InitConfig) -> "NoReturn":  # noqa: F821
    """Runs in P2 (PID 1 of a new pid namespace). Never returns."""
    ready = False
    try:
        signals.reset()
        # A session of our own: no terminal of the caller's can reach us, and
        # a console pty can become our controlling terminal.
        os.setsid()
        trace("init")
        _prepare_rootfs(cfg)
        trace("rootfs prepared")
        _finish_rootfs(cfg)
        _step("error setting rlimits for ready process", rlimits.apply, cfg.rlimits)
        # Ready: P0 records the container (pid, start time) before we go on,
        # so a `create` killed from here on still leaves a deletable container.
        send(cfg.sync_fd, type="ready")
        ready = True
        if (recv(cfg.sync_fd) or {}).get("type") != "run":
            os._exit(1)  # P0 is gone or gave up: nobody will start us
        trace("run received")
        path, env = _finalize_process(cfg)
        trace("finalized")
        send(cfg.sync_fd, type="created")
        os.close(cfg.sync_fd)
    except BaseException as e:  # noqa: BLE001
        try:
            send(cfg.sync_fd, type="error", msg=errtext(e), after_ready=ready)
        finally:
            os._exit(1)
    _wait_start_and_exec(cfg, path, env)


def _prepare_rootfs(cfg: InitConfig) -> None:
    """Mounts, /dev, pivot_root (runc's prepareRootfs) and the console."""
    if cfg.ns.has("mount"):
        # First, before any mount: `/` becomes rslave, so nothing we mount
        # from here on propagates back to the host.
        _step("error preparing rootfs", rootfs.prepare_root, cfg.rootfs, cfg.root_propagation)
        cgroupns = cfg.ns.has("cgroup")
        for m in cfg.mounts:
            # In spec order: later mounts go on top of earlier ones
            # (/dev, then /dev/pts, /dev/shm inside it).
            _step(f"error mounting {goq(m.source)} to rootfs at {goq(m.destination)}",
                  rootfs.mount_entry, m, cfg.rootfs, cgroupns)
        if cfg.setup_dev:
            # After the mounts: /dev is the spec's tmpfs by now.
            _step("error creating device nodes", devices.create_devices, cfg.rootfs, cfg.devices)
            _step("error setting up ptmx", devices.setup_ptmx, cfg.rootfs)
            _step("error setting up /dev symlinks", devices.setup_dev_symlinks, cfg.rootfs)
        # pivot_root, not chroot: the host's tree is unmounted from our
        # namespace, not just out of sight.
        _step("error jailing process inside rootfs",
              rootfs.move_root if cfg.no_pivot else rootfs.pivot_root, cfg.rootfs)
    else:
        _step("error jailing process inside rootfs", _chroot, cfg.rootfs)
    if cfg.setup_dev:
        # Stdio that was the host's /dev/null becomes the container's.
        _step("error reopening /dev/null inside container", devices.reopen_dev_null)
    # cwd is created if missing, as root, before the user switch (as runc).
    _step("", _mkdir_all, cfg.cwd)
    if cfg.terminal:
        # After pivot_root (the container's devpts) and before /dev can be
        # made read-only (/dev/console is created in it).
        _step("", _setup_console, cfg)


def _mkdir_all(path: str) -> None:
    try:
        os.makedirs(path, 0o755, exist_ok=True)
    except OSError as e:
        raise OSError(e.errno, f"mkdir {path}: {rlimits.go_strerror(e.errno)}") from None


def _chroot(path: str) -> None:
    os.chdir(path)
    os.chroot(".")
    os.chdir("/")


def _setup_console(cfg: InitConfig, mount_console: bool = True) -> None:
    """A pty from the container's devpts, the master to --console-socket, the
    slave as stdio and controlling terminal (and, for the init, /dev/console)."""
    from dockyard.runtime import console
    master, slave = console.open_pty(cfg.console_size)
    try:
        if mount_console:
            devices.mount_console(slave)
        console.send_master(cfg.console_fd, master)
    finally:
        os.close(master)
        os.close(cfg.console_fd)
    console.become_stdio(slave)


def _finish_rootfs(cfg: InitConfig) -> None:
    """What must follow the console and precede the capability drop."""
    if cfg.ns.has("mount"):
        # Read-only `/`, /dev, tmpfs only now: /dev/console, device nodes
        # and cwd had to be created first.
        _step("error setting rootfs as readonly", rootfs.finalize, cfg.mounts, cfg.readonly_root,
              cfg.umask)
    else:
        os.umask(0o022 if cfg.umask is None else cfg.umask)
    if cfg.hostname:
        _step("", syscalls.sethostname, cfg.hostname)
    for key, value in cfg.sysctl.items():
        # Before readonlyPaths, which make /proc/sys read-only.
        _step("", _write, "/proc/sys/" + key.replace(".", "/"), value)
    for path in cfg.readonly_paths:
        _step(f"can't make {goq(path)} read-only", rootfs.readonly_path, path)
    for path in cfg.masked_paths:
        # After readonlyPaths: a mask inside a read-only path still works
        # (the bind of /dev/null is a new mount on top).
        _step(f"can't mask path {path}", rootfs.mask_path, path)
    if cfg.no_new_privileges:
        # Unprivileged and irreversible; before seccomp (which would need it)
        # and execve (which it governs).
        _step("prctl(SET_NO_NEW_PRIVS)", syscalls.set_no_new_privs)


def _finalize_process(cfg: InitConfig) -> tuple[str, list[str]]:
    """User, capabilities and the executable (runc's finalizeNamespace).
    Returns (path to exec, environment)."""
    # Nothing of ours (nor what create's caller leaked) reaches the container
    # process; --preserve-fds N keeps fds 3..3+N-1 open.
    _cloexec_from(3 + cfg.preserve_fds)
    try:
        os.chdir(cfg.cwd)
        chdir_later = False
    except PermissionError:
        chdir_later = True  # maybe only the container user may enter it
    except OSError as e:
        raise InitError(f"chdir to cwd ({goq(cfg.cwd)}) set in config.json failed: "
                        f"{rlimits.go_strerror(e.errno)}") from e
    caps, last = cfg.caps.sets, capabilities.last_cap()
    # The bounding set first: PR_CAPBSET_DROP needs CAP_SETPCAP, which the
    # capset below may remove.
    _step("unable to apply bounding set", capabilities.drop_bounding, caps["bounding"], last)
    # setuid() away from root clears permitted/effective unless KEEPCAPS is
    # set; the spec's capabilities are meant for the container user too.
    _step("unable to set keep caps", capabilities.set_keepcaps, True)
    env = _step("unable to setup user", _setup_user, cfg)
    if chdir_later:
        try:
            os.chdir(cfg.cwd)
        except OSError as e:
            raise InitError(f"chdir to cwd ({goq(cfg.cwd)}) set in config.json failed: "
                            f"{rlimits.go_strerror(e.errno)}") from e
    _step("unable to clear keep caps", capabilities.set_keepcaps, False)
    _step("unable to apply caps", _apply_caps, caps)
    # Resolved as the container user, in the container's PATH, before
    # `created` is reported: a missing command fails `create`, not `start`.
    path = lookpath(cfg.args[0], _getenv(env, "PATH"))
    if not os.access(path, os.X_OK, effective_ids=True):
        raise InitError(f"exec {path}: permission denied")
    return path, env


def _setup_user(cfg: InitConfig) -> list[str]:
    if cfg.uid != 0:
        user.fix_stdio_owner(cfg.uid)
    # Supplementary groups, then gid, then uid: only root may change the first two.
    user.switch(cfg.uid, cfg.gid, cfg.additional_gids, user.setgroups_allowed())
    env = list(cfg.env)
    if _getenv(env, "HOME") is None:
        env.append("HOME=" + (user.home_of(cfg.uid) or "/"))
    return env


def _apply_caps(caps: dict[str, set[int]]) -> None:
    capabilities.capset(caps["effective"], caps["permitted"], caps["inheritable"])
    # Raising an ambient capability needs it permitted and inheritable
    # (plan() kept only those), so this comes after capset.
    capabilities.set_ambient(caps["ambient"])


def _getenv(env: list[str], name: str) -> str | None:
    for pair in env:
        k, _, v = pair.partition("=")
        if k == name:
            return v
    return None


def _cloexec_from(low: int) -> None:
    """Mark every fd >= `low` close-on-exec (fds the caller of create leaked)."""
    try:
        fds = [int(n) for n in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(low, 1024))
    for fd in fds:
        if fd >= low:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass


def lookpath(name: str, path_env: str | None) -> str:
    """Go's exec.LookPath, errors and all (what runc reports)."""
    if "/" in name:
        err = _find_executable(name)
        if err is None:
            return name
        raise InitError(f"exec: {goq(name)}: {err}")
    for d in (path_env or "").split(":") if path_env else []:
        candidate = os.path.join(d or ".", name)
        if _find_executable(candidate) is None:
            if not candidate.startswith("/"):
                raise InitError(f"exec: {goq(name)}: cannot run executable found "
                                "relative to current directory")
            return candidate
    raise InitError(f"exec: {goq(name)}: executable file not found in $PATH")


def _find_executable(path: str) -> str | None:
    try:
        st = os.stat(path)
    except OSError as e:
        return f"stat {path}: {rlimits.go_strerror(e.errno)}"
    if not stat.S_ISDIR(st.st_mode) and st.st_mode & 0o111:
        return None
    return "permission denied"


def _wait_start_and_exec(cfg: InitConfig, path: str, env: list[str]) -> "NoReturn":  # noqa: F821
    """Block until `start` opens exec.fifo, then become the container process."""
    try:
        # The O_PATH fd from create, reopened for writing through /proc (the
        # state dir is out of reach since pivot_root). open() blocks until a
        # reader (start) opens the other end.
        fifo = os.open(f"/proc/self/fd/{cfg.fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
        os.write(fifo, b"0")
        # Keep `fifo` open: execve closes it (O_CLOEXEC), and that EOF tells
        # `start` the exec has happened.
        os.close(cfg.fifo_fd)
        # Seccomp would be loaded here, as close to execve as possible.
        try:
            os.execve(path, cfg.args, dict(p.split("=", 1) for p in env))
        except OSError as e:
            raise InitError(f"exec {path}: {rlimits.go_strerror(e.errno)}") from None
    except BaseException as e:  # noqa: BLE001 - nobody listens any more: say it on
        try:                    # the container's stderr, as runc's init does
            os.write(2, f"{errtext(e)}\n".encode())
        finally:
            os._exit(1)
