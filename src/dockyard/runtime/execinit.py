"""An exec'd process's first steps, forked from `dockyard-runtime exec`
(runc's setns process: nsexec's join, then linuxSetnsInit), or from our shim.

    exec (P0) ──fork──▶ joiner (P1) ──fork──▶ process (P2)
    plan, checks,       joins the cgroup,     setsid, console, rlimits,
    waits for the       setns() into every    no_new_privs, user, caps,
    outcome, pid file   namespace of the      cwd, then execve(args)
                        init, reports P2's
                        pid, exits

P0, P1 and P2 share one SOCK_SEQPACKET socketpair (one JSON object per
message, as dockyard.runtime.init):

    P1 -> P0  {"type": "pid", "pid": N}       N as P0 sees it (host pid)
    P1|P2 -> P0  {"type": "error", "msg": "..."}

P2's end is close-on-exec: a successful execve closes it, and P0 reads EOF
with no error before it. So everything that can fail (a missing binary, a
bad cwd, a user the kernel refuses) fails the `exec` command before the
process runs, as runc's does.

Joining order (runc's nsexec): the cgroup first, while the cgroup paths
still resolve as the host's (and so that a new cgroup namespace view is the
container's); then every namespace file is opened before any is entered
(dockyard.linux.namespaces.enter), the user namespace first, the mount
namespace last. A pid namespace takes only the next child: hence P2.

A caller that forks from a long-lived process of its own (our shim, which
runs our runtime's exec in its loop) needs no P1 (`fork_into`): it points
its own pid_for_children at the container's pid namespace for the one
fork() and back, and the child joins the cgroup (writing 0, "myself", to
cgroup.procs: its pid means nothing in the host's terms any more) and the
other namespaces itself. One fork of a Python process fewer, and the caller
knows the pid at once.
"""

from __future__ import annotations

import os

from dockyard.linux import namespaces, rlimits, signals, syscalls
from dockyard.runtime.init import (InitError, _finalize_process, _setup_console, _step,
                                   errtext, send)
from dockyard.runtime.ocicli.bundle import InitConfig
from dockyard.runtime.ocicli.log import trace


def joiner(cfg: InitConfig, cgroup) -> "NoReturn":  # noqa: F821
    """Runs in P1. Never returns."""
    try:
        if cgroup is not None:
            _step("failed to add the exec process to the container's cgroup", cgroup.add,
                  os.getpid())
        trace("exec: joined cgroup")
        _step("error joining the container's namespaces", namespaces.enter, cfg.ns)
        trace("exec: joined namespaces")
        pid = os.fork()
        if pid == 0:
            process(cfg)  # never returns
        trace("exec: forked")
        send(cfg.sync_fd, type="pid", pid=pid)
        os._exit(0)
    except BaseException as e:  # noqa: BLE001
        try:
            send(cfg.sync_fd, type="error", msg=errtext(e))
        finally:
            os._exit(1)


def fork_into(cfg: InitConfig, cgroup, in_child) -> int:
    """Fork the process (P2) straight into the container's pid namespace;
    returns its pid (as we see it). `in_child(keep)` runs first in it (the
    caller's fds are closed there, all but those in `keep`). Errors of P2
    come on cfg.sync_fd, as from `joiner`."""
    target = cfg.ns.join.get("pid")
    own = ns = -1
    try:
        if target:
            own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
            ns = os.open(target, os.O_RDONLY | os.O_CLOEXEC)
            syscalls.setns(ns, syscalls.CLONE_NEWPID)  # our next child only
        try:
            pid = os.fork()
            if pid == 0:
                _join_and_run(cfg, cgroup, in_child)  # never returns
        finally:
            if own >= 0:
                syscalls.setns(own, syscalls.CLONE_NEWPID)  # (only the parent gets here)
        return pid
    finally:
        for fd in (own, ns):
            if fd >= 0:
                os.close(fd)


def _join_and_run(cfg: InitConfig, cgroup, in_child) -> "NoReturn":  # noqa: F821
    """P2 of `fork_into`: in_child, the cgroup, the namespaces but pid, then
    `process`."""
    try:
        in_child({cfg.sync_fd, cfg.console_fd})
        trace("exec: forked into the pid namespace")
        if cgroup is not None:
            _step("failed to add the exec process to the container's cgroup", cgroup.add, 0)
        trace("exec: joined cgroup")
        rest = namespaces.Plan()
        rest.join = {kind: path for kind, path in cfg.ns.join.items() if kind != "pid"}
        _step("error joining the container's namespaces", namespaces.enter, rest)
        trace("exec: joined namespaces")
    except BaseException as e:  # noqa: BLE001
        try:
            send(cfg.sync_fd, type="error", msg=errtext(e))
        finally:
            os._exit(1)
    process(cfg)


def process(cfg: InitConfig) -> "NoReturn":  # noqa: F821
    """Runs in P2, inside every namespace of the container. Never returns."""
    try:
        trace("exec: process")
        signals.reset()
        # A session of its own, as runc's nsexec gives every container
        # process: no terminal of the caller's reaches it, and a console pty
        # becomes its controlling terminal.
        os.setsid()
        if cfg.terminal:
            _step("", _setup_console, cfg, False)  # (no /dev/console: the init has it)
        _step("error setting rlimits for exec process", rlimits.apply, cfg.rlimits)
        if cfg.no_new_privileges:
            _step("prctl(SET_NO_NEW_PRIVS)", syscalls.set_no_new_privs)
        path, env = _finalize_process(cfg)
        trace("exec: finalized")
        # Seccomp would be loaded here, as close to execve as possible.
        try:
            os.execve(path, cfg.args, dict(p.split("=", 1) for p in env))
        except OSError as e:
            raise InitError(f"exec {path}: {rlimits.go_strerror(e.errno)}") from None
    except BaseException as e:  # noqa: BLE001
        try:
            send(cfg.sync_fd, type="error", msg=errtext(e))
        finally:
            os._exit(1)
