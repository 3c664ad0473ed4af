"""Restart policies at work: the container service's side of daemon/restartmanager.py.

At an exit (`exited`, called by the service's exit handling once the container
is recorded stopped) the container's manager decides; a container to restart
is put in docker's `restarting` state (State.Running and State.Restarting true,
Status "restarting", Pid 0, RestartCount one more), the `die` event goes out as
for any exit, and after the manager's delay the container is started through
the service's own start path (rootfs, shim, attachers, the `start` event; no
`restart` event, as dockerd). The start takes the container's lock, so a user's
stop, kill or remove that holds it goes first.

Stop, kill and remove win over a pending restart (`exit_on_next`, dockerd's
ExitOnNext in killWithSignal): the manager is canceled, a restart still waiting
out its delay is dropped and the container ends `exited` with the exit code it
had; the container is marked stopped by the user (State.StoppedByUser, docker's
HasBeenManuallyStopped, kept in the record). A manual start or restart resets
the manager, the restart count and that mark (`reset`).

At daemon start (`restart_at_restore`) the decision is dockerd's restore: a
container that is not running, was started before and whose policy says so is
started, all such containers at once; `always` ones even after a `docker stop`,
`unless-stopped` ones unless the user stopped them, `on-failure` ones after a
failure, within their retry count. A container whose restart was pending when
the daemon stopped is one of them.

What is only in memory here (the managers' backoff delays, the pending timers)
may be lost with the daemon: the record says `restarting`, and the next daemon
decides again from it.
"""

from __future__ import annotations

import asyncio
import logging
import signal as signals
import time
import weakref

from dockyard.daemon.container import Container, parse_time
from dockyard.daemon.restartmanager import RestartManager, policy_name
from dockyard.daemon.validate import parse_signal

log = logging.getLogger(__name__)

RESTORE_CONCURRENCY = 16


class Restarts:
    def __init__(self, svc):
        self.svc = svc
        # a container's manager lives while its record object does (removal drops it)
        self._managers: weakref.WeakKeyDictionary[Container, RestartManager] = \
            weakref.WeakKeyDictionary()
        self._pending: dict[str, asyncio.Task] = {}
        self.restoring = False  # exits found at daemon start are decided by the restore

    def manager(self, c: Container) -> RestartManager:
        m = self._managers.get(c)
        if m is None:
            m = self._managers[c] = RestartManager(c.host_config.get("RestartPolicy"),
                                                   c.record.get("RestartCount") or 0)
        return m

    # -- at an exit -------------------------------------------------------------
    def exited(self, c: Container) -> None:
        """The container was just recorded stopped: turn it `restarting` and
        schedule its start if its policy says so."""
        if self.restoring or policy_name(c.host_config.get("RestartPolicy")) == "no":
            return
        s = c.state
        ran_for = max(0.0, time.time() - parse_time(s["StartedAt"]))
        delay = self.manager(c).should_restart(s["ExitCode"], bool(s.get("StoppedByUser")),
                                               ran_for)
        if delay is None:
            return
        c.record["RestartCount"] = (c.record.get("RestartCount") or 0) + 1
        s.update(Status="restarting", Running=True, Restarting=True, Paused=False, Pid=0)
        exit_status = (s["ExitCode"], s["FinishedAt"])
        self._pending[c.id] = asyncio.create_task(self._restart_after(c, delay, exit_status))

    async def _restart_after(self, c: Container, delay: float,
                             exit_status: tuple[int, str]) -> None:
        await asyncio.sleep(delay)
        async with self.svc.lock(c):
            if self._pending.get(c.id) is not asyncio.current_task():
                return  # dropped by a stop, kill or remove while we waited
            del self._pending[c.id]
            if c.id not in self.svc.containers:
                return
            try:
                await self.svc._start(c)
            except Exception as e:  # noqa: BLE001 - any failure leaves it stopped
                log.warning("restarting container %s: %s", c.short_id, e)
                self._stopped(c, *exit_status, error=c.state.get("Error") or str(e))

    def _stopped(self, c: Container, exit_code: int, finished_at: str, error: str = "") -> None:
        c.set_stopped(exit_code, finished_at, bool(c.state.get("OOMKilled")), error)
        self.svc.checkpoint(c)
        self.svc._resolve_waiters(c, ("not-running", "next-exit"), exit_code)

    # -- a user's stop, kill, remove, start -------------------------------------
    def exit_on_next(self, c: Container, number: int | None = None) -> bool:
        """A stop (number None), or the signal `number` sent by kill or remove.
        daemon/kill.go: the stop signal, SIGKILL, or any signal when the container
        has no StopSignal of its own cancels the restarts; every one marks the
        container stopped by the user. True when the container was restarting
        (then there is no process to signal)."""
        restarting = bool(c.state.get("Restarting"))
        own = c.config.get("StopSignal")
        if number is None or number == signals.SIGKILL or not own or \
                number == parse_signal(own):
            self.manager(c).cancel()
            task = self._pending.pop(c.id, None)
            if task is not None:
                task.cancel()
                self._stopped(c, c.state["ExitCode"], c.state["FinishedAt"],
                              c.state.get("Error") or "")
        if not c.state.get("StoppedByUser"):
            c.state["StoppedByUser"] = True
            if c.id in self.svc.containers:
                self.svc.checkpoint(c)
        return restarting

    def reset(self, c: Container) -> None:
        """A manual start or restart: a new manager, no restarts counted, not
        stopped by the user (daemon/start.go ResetRestartManager)."""
        m = self._managers.pop(c, None)
        if m is not None:
            m.cancel()
        c.record["RestartCount"] = 0
        c.state.pop("StoppedByUser", None)

    def policy_changed(self, c: Container) -> None:
        """`docker update --restart`: the next exit follows the new policy."""
        m = self._managers.get(c)
        if m is not None:
            m.set_policy(c.host_config.get("RestartPolicy"))

    def shutdown(self) -> None:
        """Pending restarts are left to the next daemon (the records say
        `restarting`)."""
        for task in self._pending.values():
            task.cancel()
        self._pending.clear()

    # -- at daemon start --------------------------------------------------------
    def restart_at_restore(self, c: Container) -> bool:
        """daemon/daemon.go restore: Container.ShouldRestart with a new manager,
        for a container that was started before and is not running."""
        s = c.state
        if s.get("Running") or s["StartedAt"].startswith("0001-") or \
                s.get("Status") in ("created", "removing"):
            return False
        ran_for = parse_time(s["FinishedAt"]) - parse_time(s["StartedAt"])
        m = RestartManager(c.host_config.get("RestartPolicy"), c.record.get("RestartCount") or 0)
        return m.should_restart(s["ExitCode"], bool(s.get("StoppedByUser")), ran_for) is not None

    async def start_all(self, containers: list[Container]) -> None:
        """Start these containers concurrently, as a user's start would."""
        gate = asyncio.Semaphore(RESTORE_CONCURRENCY)

        async def start(c: Container) -> None:
            async with gate:
                try:
                    await self.svc.start(c.id)
                except Exception as e:  # noqa: BLE001 - one container must not stop the rest
                    log.warning("restarting container %s at daemon start: %s", c.short_id, e)

        await asyncio.gather(*(start(c) for c in containers))
