"""Restore at daemon start: take back what the previous daemon left.

The previous daemon may have stopped cleanly or been killed at any point, and
shims may have been killed too. For every container record, what its shim
says decides (a shim is found through its socket in the bundle):

    record          shim                         then
    removing        any                          kill what runs, delete it all
    any             creating (no socket yet)     wait for its socket, then as below
    any             created (never started)      kill it, unmount: the start is undone
    any             running                      watch it (record it running)
    running         stopped                      watch it: its exit is handled at once
    running         none                         its exit file, or (a killed shim)
                                                 kill and delete it: exit 137
    not running     stopped or none              nothing may stay mounted or in a cgroup

A shim between its start and its socket is creating the container with the
runtime; it is recognised by its stderr, the bundle's shim.log.

A record left `restarting` (its restart was pending when the daemon stopped) is
the exit it recorded. Exits found here are not restarted with the backoff of a
live exit: once every container is restored, those whose restart policy says so
are started, as dockerd's restore does (daemon/restarts.py `restart_at_restore`).

Containers are restored concurrently, while the fork server starts: a hundred
running containers are taken back in a tenth of a second, not one after the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

from dockyard import errdefs
from dockyard.daemon.container import Container

log = logging.getLogger(__name__)

CREATING_TIMEOUT = 30.0  # how long a creating shim may take to open its socket
POLL = 0.05
CONCURRENCY = 32  # containers restored at once


async def restore(svc) -> None:
    from dockyard.runtime import shimclient

    # now rather than at the first start (it takes as long as starting a shim)
    fork_server = asyncio.create_task(asyncio.to_thread(shimclient.start_fork_server))
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(c: Container) -> None:
        async with gate:
            try:
                await _restore(svc, c)
            except Exception:  # noqa: BLE001 - one container must not stop the daemon
                log.exception("restoring container %s", c.short_id)

    svc.restarts.restoring = True
    try:
        await asyncio.gather(*(one(c) for c in list(svc.containers.values())))
    finally:
        svc.restarts.restoring = False
    await fork_server
    await svc.networking.remove_stale()
    await svc.restarts.start_all([c for c in list(svc.containers.values())
                                  if svc.restarts.restart_at_restore(c)])


async def _restore(svc, c: Container) -> None:
    shim, status = await _find_shim(svc, c)
    if c.state.get("Restarting") and shim is None:
        # its restart was pending: it is the exit it recorded
        c.set_stopped(c.state["ExitCode"], c.state["FinishedAt"], bool(c.state.get("OOMKilled")),
                      c.state.get("Error") or "")
        svc.checkpoint(c)
    if c.state.get("Status") == "removing":
        if shim is not None:
            await _kill(shim, all_=True)
        await svc.force_delete(c)
        await asyncio.to_thread(svc.destroy, c)
        svc.containers.pop(c.id, None)
        svc.names.pop(c.name, None)
        return
    if status == "created":
        log.info("container %s was being started when the daemon stopped: undoing that",
                 c.short_id)
        await _kill(shim)
        await svc.force_delete(c)
        if c.running:
            c.set_stopped(137)
        await svc.networking.release(c)
        svc.checkpoint(c)
        await asyncio.to_thread(svc.unmount_rootfs, c, False)
        await svc.forget_shim(c)
        await svc.shim_gone(c)  # (and its bundle with it)
        return
    if status == "stopped" and c.running:  # it ended while no daemon watched
        await svc.handle_exit(c, await shim.wait())
        await svc.shim_gone(c)
        return
    if status == "running":
        if not c.running or c.state.get("Restarting"):
            log.info("container %s started as the daemon stopped: taken back", c.short_id)
            c.set_running(shim.pid)
            svc.checkpoint(c)
        await svc.networking.restore(c)
        svc.adopt(c, shim)
        return
    if c.running:  # and no shim: it was killed, or ended while no daemon watched
        await svc.handle_exit(c, await svc.after_lost_shim(c))
        await svc.shim_gone(c)
        return
    # Not running: nothing of it may be left mounted or in a cgroup, nor any
    # of its network.
    await svc.force_delete(c)
    if await svc.networking.release(c):
        svc.checkpoint(c)
    if os.path.exists(svc.bundle(c)):
        log.info("container %s: unmounting what a cut-short start or exit left", c.short_id)
        await asyncio.to_thread(svc.unmount_rootfs, c, shim is None)
    if shim is not None:
        await svc.forget_shim(c)
        await svc.shim_gone(c)  # (and its bundle with it)


async def _find_shim(svc, c: Container):
    """(the shim's handle, its status: created | running | stopped), or (None, None)."""
    from dockyard.runtime import shimclient

    socket = svc.shim_socket(c)
    if not os.path.exists(socket) and os.path.isdir(svc.bundle(c)):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CREATING_TIMEOUT
        while not os.path.exists(socket) and _creating(svc, c) and loop.time() < deadline:
            await asyncio.sleep(POLL)
    if not os.path.exists(socket):
        return None, None
    try:
        # (shimclient.connect would ask the state once more: one round trip per shim)
        shim = shimclient.ShimHandle(socket, exit_file=svc.exit_file(c))
        state = await shim.state(fallback=False)
        shim.pid = int(state.get("pid") or 0)
    except (OSError, ConnectionError, asyncio.IncompleteReadError, errdefs.DockyardError):
        return None, None
    return shim, state.get("status")


def _creating(svc, c: Container) -> bool:
    """Whether a process has the bundle's shim.log as its stderr: a shim that has
    not opened its socket yet."""
    shim_log = os.path.join(svc.bundle(c), "shim.log")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/fd/2") == shim_log:
                return True
    return False


async def _kill(shim, all_: bool = False) -> None:
    """SIGKILL the container through its shim, and wait (a while) for its exit."""
    with contextlib.suppress(Exception):
        await shim.kill("KILL", all=all_)
        await asyncio.wait_for(shim.wait(), 10)
