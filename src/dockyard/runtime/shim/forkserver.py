"""The fork server: shims forked from a Python process that is already running.

Starting a shim as a program costs an interpreter start and the shim's
imports (~30-50 ms); its `create` then imports the runtime (~20-40 ms more)
when the runtime is our own. Both are paid before the container exists, for
every container. The fork server pays them once: the daemon starts it (one
per daemon, `python -m dockyard.runtime.shim --fork-server FD`, through
dockyard.runtime.shimclient), it imports the shim and our runtime, and then
only forks. A shim forked from it is the same program as a started one, with
its modules already in memory (shared with the server, copy-on-write).

Protocol, on the SOCK_SEQPACKET socket FD (one message per shim):

    daemon -> server   the shim's flags as a JSON list of strings (without
                       --status-fd), with two fds attached (SCM_RIGHTS): the
                       status pipe's write end, and the shim's stderr

    daemon -> server   "prime" (a JSON string, no fds): a container will be
                       started soon; get the cgroup rwsem ready (see below)

Nothing is answered on the socket: the shim reports on the status fd as a
started one does, and a shim that cannot be made says so there too. The
server exits when the socket reaches EOF (the daemon has gone); shims it
forked are in sessions of their own and live on.

A spare: each shim is detached as `shim.__main__.detach` does it (a first
child takes a session of its own and forks the shim, which is then not the
session's leader, and exits), and two forks in a row of a Python process
take ~4 ms before the second one runs. So the server keeps one shim-to-be
forked ahead, idle in its own session, waiting on a socket of its own; a
request is handed to it (the message and its fds, as they came), and the
next spare is forked once requests pause. Without a spare (in a burst of
requests, or if it has died) the shim is forked then.

The server stays single-threaded, imports nothing that starts threads, and
keeps no fd that a shim should not inherit: a shim forked from it is as fresh
a process as one started by exec, and forks the container's init in turn.
"""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import socket
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

MAX_MESSAGE = 1 << 20  # the flags of one shim; log options are short
PRIME = b'"prime"'     # a message that asks for the cgroup rwsem to be readied (no fds)
PRIME_HOLD = 0.1       # s the rwsem is kept ready after a "prime" or a request
PRIME_INTERVAL = 0.002  # s between the attaches that keep it so
SPARE_DELAY = 0.05     # s after a request, if no other came, the next spare is forked
PRIME_CGROUP_ATTACH = os.environ.get("DOCKYARD_SHIM_PRIME_CGROUP", "1") != "0"

# What a shim and our runtime import, imported once here. (The runtime's
# init modules are included: `create` forks the init from a fork of the shim.)
PRELOAD = (
    "dockyard.runtime.shim.__main__", "dockyard.runtime.shim.server",
    "dockyard.runtime.shim.runtime", "dockyard.runtime.logfile", "dockyard.linux.prctl",
    "dockyard.runtime.oci", "dockyard.runtime.ocicli.create", "dockyard.runtime.ocicli.bundle",
    "dockyard.runtime.ocicli.state", "dockyard.runtime.init", "dockyard.runtime.console",
    "dockyard.runtime.shim.execs", "dockyard.runtime.ocicli.exec", "dockyard.runtime.execinit",
    "dockyard.linux.cgroups", "fcntl", "termios", "shutil",
)


def preload() -> None:
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)


def serve(ctl_fd: int) -> NoReturn:
    """Fork a shim for every message on `ctl_fd`; exit at its EOF."""
    os.chdir("/")  # hold no mount busy
    # Terminal signals meant for the daemon's process group are not ours (the
    # daemon starts us in a session of our own).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Children are reaped by the kernel: the server waits for none of them.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    ctl = socket.socket(fileno=ctl_fd)
    os.set_inheritable(ctl_fd, False)
    preload()
    primer = Primer(own_procs_file() if PRIME_CGROUP_ATTACH else None)
    # Everything imported so far lives as long as any shim: moved out of the
    # collector's sight, so that no shim's collections write to (and so copy)
    # the pages it shares with us.
    gc.freeze()
    spare = fork_spare(ctl)
    spare_due = None  # when to fork the next spare
    while True:
        if spare_due is not None:
            if not select.select([ctl], [], [], max(0.0, spare_due - time.monotonic()))[0]:
                spare, spare_due = fork_spare(ctl), None
                continue
        try:
            msg, fds, _flags, _addr = socket.recv_fds(ctl, MAX_MESSAGE, 2)
        except InterruptedError:
            continue
        except OSError as e:
            sys.stderr.write(f"shim fork server: {e}\n")
            os._exit(1)
        if not msg:
            os._exit(0)  # the daemon has gone (and the spare sees EOF)
        if msg == PRIME and not fds:
            primer.request(ctl)
            continue
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            continue
        if spare is None or not _hand_over(spare, msg, fds):
            if spare is not None:
                spare.close()  # it has died
            fork_shim(ctl, msg, fds)
        primer.request(ctl)  # (unless the daemon's "prime" is still in force)
        # The next spare is forked once requests pause: its two forks would
        # compete for the CPUs with the shim just started, in its busiest ms.
        spare, spare_due = None, time.monotonic() + SPARE_DELAY


def _hand_over(spare: socket.socket, msg: bytes, fds: list[int]) -> bool:
    try:
        socket.send_fds(spare, [msg], fds)
    except OSError:
        return False
    for fd in fds:
        os.close(fd)
    spare.close()
    return True


def fork_spare(ctl: socket.socket) -> socket.socket | None:
    """Fork a shim-to-be that waits for its request; our end of its socket
    (None if it could not be made)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        pid = os.fork()
    except OSError as e:
        sys.stderr.write(f"shim fork server: fork: {e.strerror}\n")
        ours.close()
        theirs.close()
        return None
    if pid == 0:
        try:
            ours.close()
            _detach(ctl)
            msg, fds, _flags, _addr = socket.recv_fds(theirs, MAX_MESSAGE, 2)
            theirs.close()
        except BaseException:  # noqa: BLE001 - (the server closed our socket)
            os._exit(1)
        if not msg or len(fds) != 2:
            os._exit(0)  # the server has gone: no shim needed
        _run_shim(msg, *fds)  # never returns
    theirs.close()
    return ours


def fork_shim(ctl: socket.socket, msg: bytes, fds: list[int]) -> None:
    """Fork the shim for a request now."""
    status_fd, stderr_fd = fds
    try:
        pid = os.fork()
    except OSError as e:
        _fail(status_fd, f"fork: {e.strerror}")
        os.close(status_fd)
        os.close(stderr_fd)
        return
    if pid == 0:
        try:
            _detach(ctl, (status_fd, stderr_fd))
        except BaseException as e:  # noqa: BLE001 - the daemon waits on the status fd
            _fail(status_fd, f"shim: {type(e).__name__}: {e}")
            os._exit(1)
        _run_shim(msg, status_fd, stderr_fd)  # never returns
    os.close(status_fd)
    os.close(stderr_fd)
    # (The child is reaped by the kernel: SIGCHLD is ignored.)


def _detach(ctl: socket.socket, theirs: tuple[int, ...] = ()) -> None:
    """In a child of the server: a session of our own, then a fork whose
    parent exits, so that the child, which returns, is not the session's
    leader and no terminal can become its controlling terminal (as
    `shim.__main__.detach`)."""
    ctl.close()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.setsid()
    if os.fork():
        os._exit(0)


# -- the container's cgroup attach ------------------------------------------------
#
# Moving a process into a cgroup (a write to cgroup.procs, which `create` does
# for the container's intermediate process) takes cgroup_threadgroup_rwsem for
# writing. That is a percpu rwsem: cheap for its readers (every fork and exit),
# dear for a writer, who must first wait for an RCU grace period (rcu_sync_enter
# -> synchronize_rcu: 10-15 ms here) so that readers switch to the slow path,
# and who waits holding cgroup_mutex, so every cgroup mkdir waits too. The
# grace period is skipped while the rwsem is still in its "readers slow" state:
# while another writer waits or holds it, and until a grace period has passed
# since the last one left (rcu_sync's GP_EXIT, extended by GP_REPLAY when
# another leaves meanwhile). Attaches that follow each other closely pay once.
#
# So the server keeps that state up around a container's start: a child of
# its own (the primer) makes an attach that moves nothing, its own pid into
# its own cgroup, every PRIME_INTERVAL, for PRIME_HOLD. The first one waits
# out the grace period; the runtime's attach then finds the rwsem ready. The
# daemon says "prime" when a container is created or its start begins: the
# grace period then passes while the client and the daemon do their part,
# before the runtime's mkdirs (which would wait for it otherwise). A request
# for a shim primes too, unless a primer is still at work: then the grace
# period overlaps the shim's start and the runtime's reading of the spec.
# Any error is ignored: it is only ever a head start. A host whose cgroupfs is
# mounted with `favordynmods` (Linux 6.0+) has no grace period to wait for.

class Primer:
    def __init__(self, procs: str | None) -> None:
        self.procs = procs  # own_procs_file(), or None: priming is off
        self.until = 0.0    # when the current primer stops

    def request(self, ctl: socket.socket) -> None:
        now = time.monotonic()
        if self.procs is None or now < self.until - PRIME_HOLD / 2:
            return
        self.until = now + PRIME_HOLD
        try:
            if os.fork():
                return
        except OSError:
            return
        ctl.close()
        while True:
            _attach_self(self.procs)
            if time.monotonic() + PRIME_INTERVAL >= self.until:
                os._exit(0)
            time.sleep(PRIME_INTERVAL)  # (a timer, not a wait for an event)


def own_procs_file() -> str | None:
    """cgroup.procs of our own cgroup, in the unified hierarchy if one is
    mounted (it has no controllers on a hybrid host), else in a v1 one. Every
    hierarchy shares the one rwsem."""
    from dockyard.linux.cgroups import own_cgroup
    from dockyard.linux.cgroups.v1 import v1_mountpoints
    from dockyard.linux.cgroups.v2 import v2_mountpoint

    try:
        mnt, path = v2_mountpoint(), own_cgroup("")
        if mnt is None or path is None:
            mnt, path = next(((m, own_cgroup(c)) for c, m in v1_mountpoints().items()
                              if own_cgroup(c) is not None), (None, None))
    except (OSError, ValueError):
        return None
    if mnt is None or path is None:
        return None
    return os.path.join(mnt, path.lstrip("/"), "cgroup.procs")


def _attach_self(procs: str) -> None:
    try:
        fd = os.open(procs, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, str(os.getpid()).encode())
        finally:
            os.close(fd)
    except OSError:
        pass


def _run_shim(msg: bytes, status_fd: int, stderr_fd: int) -> NoReturn:
    """Become the shim for request `msg`: the stdio a started shim gets
    (/dev/null, /dev/null, the stderr fd), its flags, and its life."""
    try:
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.dup2(stderr_fd, 2)
        for fd in (null, stderr_fd):
            if fd > 2:
                os.close(fd)
        argv = [str(a) for a in json.loads(msg)] + ["--status-fd", str(status_fd)]
        sys.argv = [sys.argv[0]] + argv
        from dockyard.runtime.shim import __main__ as shim

        shim.run(shim.parse_or_exit(argv))  # never returns
    except SystemExit as e:
        os._exit(e.code if isinstance(e.code, int) else 2)
    except BaseException as e:  # noqa: BLE001 - the daemon waits on the status fd
        _fail(status_fd, f"shim: {type(e).__name__}: {e}")
    os._exit(1)


def _fail(status_fd: int, error: str) -> None:
    try:
        os.write(status_fd, json.dumps({"ok": False, "error": error}).encode() + b"\n")
    except OSError:
        pass
