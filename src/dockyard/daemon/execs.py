"""The exec service: processes run in a running container (dockerd's exec
store, daemon/exec.go).

An exec is made by `create` (`POST /containers/{id}/exec`), which only
records its configuration under a new ID; `start` (`POST /exec/{id}/start`)
runs it, once, through the container's shim (`ShimHandle.exec`), which
holds its stdio and reaps it; a watcher then waits for its exit code. The
store lives in memory, as dockerd's: a restarted daemon knows no exec from
before, but execs into the containers it took back work as before.

Docker's rules kept here: an exec needs a running, unpaused, not restarting
container (409); an exec runs once ("has already run"); a start that fails
leaves exit code 126 and the runtime's words ("OCI runtime exec failed:
exec failed: unable to start container process: exec: \"nosuch\": ...:
unknown"); the exec inherits the container's environment, user and working
directory unless it sets its own; `--privileged` gives every capability the
daemon has. Events: `exec_create: <cmd>`, `exec_start: <cmd>`, `exec_die`
(with exitCode), all with the execID attribute. The container's `ExecIDs`
lists the execs created and not yet ended.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import secrets
import time
from typing import Any

from dockyard import errdefs
from dockyard.daemon.container import Container

log = logging.getLogger(__name__)

START_TIMEOUT = 10.0     # a resize waits this long for the exec to be started (dockerd's)
EXIT_GRACE = 5.0         # a stream waits this long for the exit code after the output
KEEP_FINISHED = 5 * 60   # s a finished exec stays inspectable (dockerd's GC period)


class ExecConfig:
    """One exec, as dockerd's exec.Config."""

    def __init__(self, container: Container, body: dict[str, Any], detach_keys: bytes):
        cmd = list(body.get("Cmd") or [])
        config = container.config
        self.id = secrets.token_hex(32)
        self.container_id = container.id
        self.entrypoint, self.args = cmd[0], cmd[1:]
        self.tty = bool(body.get("Tty"))
        self.privileged = bool(body.get("Privileged"))
        self.user = body.get("User") or config.get("User") or ""
        self.working_dir = body.get("WorkingDir") or config.get("WorkingDir") or ""
        self.env = _exec_env(container, self.tty, list(body.get("Env") or []))
        self.open_stdin = bool(body.get("AttachStdin"))
        self.open_stdout = bool(body.get("AttachStdout"))
        self.open_stderr = bool(body.get("AttachStderr"))
        self.detach_keys = detach_keys
        self.running = False
        self.exit_code: int | None = None
        self.pid = 0
        self.started = asyncio.get_running_loop().create_future()  # set once start is over
        self.exited = asyncio.get_running_loop().create_future()   # the exit code
        self.finished_at = 0.0

    @property
    def command(self) -> str:
        """What events say: dockerd's `Entrypoint + " " + strings.Join(Args, " ")`."""
        return f"{self.entrypoint} {' '.join(self.args)}"

    def inspect(self) -> dict[str, Any]:
        process: dict[str, Any] = {"tty": self.tty, "entrypoint": self.entrypoint,
                                   "arguments": list(self.args), "privileged": self.privileged}
        if self.user:
            process["user"] = self.user
        return {
            "ID": self.id, "Running": self.running, "ExitCode": self.exit_code,
            "ProcessConfig": process, "OpenStdin": self.open_stdin,
            "OpenStderr": self.open_stderr, "OpenStdout": self.open_stdout, "CanRemove": False,
            "ContainerID": self.container_id,
            # a []byte in dockerd: JSON has it in base64
            "DetachKeys": base64.b64encode(self.detach_keys).decode(), "Pid": self.pid,
        }


def _exec_env(c: Container, tty: bool, env: list[str]) -> list[str]:
    """dockerd: ReplaceOrAppendEnvValues(CreateDaemonEnvironment(tty), Env) -- PATH,
    HOSTNAME and (with a TTY) TERM, then the container's Env, then the exec's."""
    from dockyard.runtime import defaults
    from dockyard.runtime.spec import _replace_or_append_env as replace_or_append

    base = ["PATH=" + defaults.DEFAULT_PATH_ENV, "HOSTNAME=" + (c.config.get("Hostname") or "")]
    if tty:
        base.append("TERM=xterm")
    return replace_or_append(replace_or_append(base, c.config.get("Env") or []), env)


class ExecService:
    def __init__(self, containers):
        self.containers = containers
        self.execs: dict[str, ExecConfig] = {}
        self._watchers: set[asyncio.Task] = set()
        self._specs: dict[str, tuple[str, dict]] = {}  # container -> (StartedAt, process)
        containers.on_exit_hooks.append(self._container_exited)
        for c in containers.containers.values():
            c.record["ExecIDs"] = None  # execs of a previous daemon are not known

    # -- lookups ----------------------------------------------------------------
    def get(self, exec_id: str) -> ExecConfig:
        ec = self.execs.get(exec_id)
        if ec is None or ec.container_id not in self.containers.containers:
            raise errdefs.NotFound(f"No such exec instance: {exec_id}")
        return ec

    def active(self, exec_id: str) -> tuple[ExecConfig, Container]:
        """dockerd's getExecConfig: the exec, in a container that runs."""
        ec = self.get(exec_id)
        c = self.containers.containers[ec.container_id]
        if not c.running:
            raise errdefs.Conflict(f"Container {c.id} is not running: {c.status_text()}")
        if c.paused:
            raise _paused(c.id)
        if c.state.get("Restarting"):
            raise _restarting(c.id)
        return ec, c

    # -- create -----------------------------------------------------------------
    def create(self, ref: str, body: dict[str, Any]) -> str:
        if not body.get("Cmd"):
            raise errdefs.InvalidParameter("No exec command specified")
        c = self.containers.get(ref)
        if not c.running:
            raise errdefs.Conflict(f"Container {c.id} is not running")
        if c.paused:
            raise _paused(ref)
        if c.state.get("Restarting"):
            raise _restarting(c.id)
        keys = b""
        if body.get("DetachKeys"):
            from dockyard import detachkeys

            try:
                keys = detachkeys.to_bytes(body["DetachKeys"])
            except ValueError as e:  # (a plain error in dockerd: a 500)
                raise errdefs.System(
                    f"Invalid escape keys ({body['DetachKeys']}) provided") from e
        self._collect()
        ec = ExecConfig(c, body, keys)
        self.execs[ec.id] = ec
        c.record["ExecIDs"] = [*(c.record.get("ExecIDs") or []), ec.id]
        self.containers.emit(c, f"exec_create: {ec.command}", execID=ec.id)
        from dockyard.runtime import shimclient

        shimclient.prepare_spawn()  # the cgroup attach of the start to come is readied
        return ec.id

    def _collect(self) -> None:
        """Forget execs that ended long ago, or whose container is gone."""
        cutoff = time.monotonic() - KEEP_FINISHED
        for exec_id, ec in list(self.execs.items()):
            if ec.container_id not in self.containers.containers or (
                    ec.exit_code is not None and ec.finished_at < cutoff):
                del self.execs[exec_id]

    # -- start ------------------------------------------------------------------
    async def start(self, exec_id: str, *, attach: bool, console_size=None):
        """Run the exec. With `attach`, the shim's (reader, writer) of its
        stdio (as ShimHandle.attach gives them); else (None, None)."""
        ec, c = self.active(exec_id)
        if ec.exit_code is not None:
            raise errdefs.Conflict(f"Error: Exec command {ec.id} has already run")
        if ec.running:
            raise errdefs.Conflict(f"Error: Exec command {ec.id} is already running")
        ec.running = True
        self.containers.emit(c, f"exec_start: {ec.command}", execID=ec.id)
        from dockyard.runtime import shimclient

        try:
            live = self.containers.live.get(c.id)
            if live is None:
                raise errdefs.Conflict(f"Container {c.id} is not running")
            process = self._process(c, ec, await self._spec_process(c), console_size)
            if ec.user:  # (reads the container's /etc/passwd and /etc/group)
                process["user"] = await asyncio.to_thread(self._user, c, ec.user)
            try:
                pid, reader, writer = await live.shim.exec(
                    ec.id, process, stdin=ec.open_stdin and attach, stdout=ec.open_stdout,
                    stderr=ec.open_stderr, attach=attach)
            except shimclient.RuntimeFailed as e:
                raise _start_failed(f"OCI runtime exec failed: {e}: unknown") from e
            except (OSError, ConnectionError, asyncio.IncompleteReadError) as e:
                raise errdefs.System(f"OCI runtime exec failed: {e}: unknown") from e
        except BaseException:
            self._ended(c, ec, 126)
            raise
        ec.pid = pid
        ec.started.set_result(None)
        task = asyncio.create_task(self._watch(c, ec, live.shim))
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)
        return reader, writer

    async def _spec_process(self, c: Container) -> dict[str, Any]:
        """The process of the container's spec (its bundle's config.json), read
        once per run of the container."""
        started = c.state.get("StartedAt")
        cached = self._specs.get(c.id)
        if cached is None or cached[0] != started:
            def read() -> dict[str, Any]:
                with open(os.path.join(self.containers.bundle(c), "config.json"), "rb") as f:
                    return json.load(f).get("process") or {}
            try:
                cached = self._specs[c.id] = (started, await asyncio.to_thread(read))
            except (OSError, ValueError) as e:
                raise errdefs.System(f"reading the container's spec: {e}") from e
        return cached[1]

    @staticmethod
    def _process(c: Container, ec: ExecConfig, base: dict[str, Any], console_size
                 ) -> dict[str, Any]:
        """The OCI process: the container's own, with the exec's command,
        environment, cwd, terminal and capabilities (daemon/exec.go
        ContainerExecStart + execSetPlatformOpt)."""
        process = json.loads(json.dumps(base))  # (a deep copy)
        process.update(args=[ec.entrypoint, *ec.args], env=list(ec.env),
                       cwd=ec.working_dir or "/", terminal=ec.tty)
        process.pop("consoleSize", None)
        if ec.tty and console_size and len(console_size) == 2 and any(console_size):
            process["consoleSize"] = {"height": int(console_size[0]),
                                      "width": int(console_size[1])}
        if ec.privileged:
            from dockyard.runtime.defaults import available_capabilities

            every = list(available_capabilities())
            process["capabilities"] = {kind: list(every) for kind in
                                       ("bounding", "effective", "permitted", "inheritable")}
        return process

    def _user(self, c: Container, user: str) -> dict[str, Any]:
        """-u, looked up in the container's files as dockerd's getUser (with GroupAdd)."""
        from dockyard.runtime import user as users

        try:
            return users.lookup(self.containers.rootfs(c), user, c.host_config.get("GroupAdd"))
        except ValueError as e:
            raise errdefs.InvalidParameter(str(e)) from e

    async def _watch(self, c: Container, ec: ExecConfig, shim) -> None:
        try:
            result = await shim.wait(exec_id=ec.id)
            code = int(result.get("exit_code", 255))
        except (errdefs.DockyardError, OSError, ConnectionError,
                asyncio.IncompleteReadError) as e:
            log.warning("lost exec %s of %s: %s", ec.id[:12], c.short_id, e)
            code = 137  # the shim is gone, and the process with it
        self._ended(c, ec, code)
        self.containers.emit(c, "exec_die", execID=ec.id, exitCode=str(code))

    def _ended(self, c: Container, ec: ExecConfig, code: int) -> None:
        ec.running, ec.exit_code, ec.finished_at = False, code, time.monotonic()
        ids = [i for i in c.record.get("ExecIDs") or [] if i != ec.id]
        c.record["ExecIDs"] = ids or None
        if not ec.started.done():
            ec.started.set_result(None)
        if not ec.exited.done():
            ec.exited.set_result(code)

    async def _container_exited(self, c: Container) -> None:
        """Execs created and never started go with the container's run."""
        self._specs.pop(c.id, None)
        for ec in list(self.execs.values()):
            if ec.container_id == c.id and not ec.running and ec.exit_code is None:
                del self.execs[ec.id]
        c.record["ExecIDs"] = [i for i in c.record.get("ExecIDs") or []
                               if i in self.execs] or None

    def detached(self, ec: ExecConfig) -> None:
        """The client left the exec's stream with the detach keys; it runs on."""
        c = self.containers.containers.get(ec.container_id)
        if c is not None:
            self.containers.emit(c, "exec_detach", execID=ec.id)

    # -- resize, inspect --------------------------------------------------------
    async def resize(self, exec_id: str, height: int, width: int) -> None:
        ec, c = self.active(exec_id)
        try:
            await asyncio.wait_for(asyncio.shield(ec.started), START_TIMEOUT)
        except asyncio.TimeoutError:
            raise errdefs.System("timeout waiting for exec session ready") from None
        live = self.containers.live.get(c.id)
        if not ec.pid or ec.exit_code is not None or live is None:
            raise errdefs.NotFound("no such exec")  # (containerd's words)
        await live.shim.resize(height, width, exec_id=ec.id)

    def inspect(self, exec_id: str) -> dict[str, Any]:
        return self.get(exec_id).inspect()

    async def shutdown(self) -> None:
        for task in list(self._watchers):
            task.cancel()


def _paused(ref: str) -> errdefs.Conflict:
    return errdefs.Conflict(f"Container {ref} is paused, unpause the container before exec")


def _restarting(container_id: str) -> errdefs.Conflict:
    return errdefs.Conflict(f"Container {container_id} is restarting, wait until the container "
                            "is running")


def _start_failed(message: str) -> errdefs.DockyardError:
    """translateContainerdStartErr's kinds (the exit code is 126 whatever the cause)."""
    lower = message.lower()
    if any(s in lower for s in ("executable file not found", "no such file or directory",
                                "permission denied")):
        return errdefs.InvalidParameter(message)
    return errdefs.System(message)
