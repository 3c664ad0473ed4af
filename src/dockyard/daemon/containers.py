"""The container service: docker's container lifecycle and its rules.

created → running ⇄ paused → exited → removed. Every transition is a method
here; each one checks the state it starts from (with dockerd's error for the
wrong one), does its steps with an undo for each, saves the record, and emits
the event. The processes themselves belong to the shim (one per container) and
the OCI runtime; this service talks to them and keeps the record true.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal as signals
from typing import Any, Callable

from dockyard import errdefs
from dockyard.daemon import etcfiles, names
from dockyard.daemon.container import Container, host_config, new_state, now_rfc3339, parse_time
from dockyard.daemon.images import ImageService
from dockyard.daemon.runtimes import Runtimes
from dockyard.storage.layer import chain_ids
from dockyard.store import atomic
from dockyard.store.layout import Layout
from dockyard.store.records import RecordStore

log = logging.getLogger(__name__)


class NoSuchContainer(errdefs.NotFound):
    pass


class NotRunning(errdefs.Conflict):
    pass


class Live:
    """What the daemon holds for a container whose shim is alive."""

    def __init__(self, shim):
        self.shim = shim
        self.exited = asyncio.get_running_loop().create_future()
        self.watcher: asyncio.Task | None = None


class ContainerService:
    def __init__(self, layout: Layout, exec_root: str, images: ImageService,
                 runtimes: Runtimes, emit: Callable[..., None]):
        self.layout = layout
        self.exec_root = exec_root
        self.images = images
        self.runtimes = runtimes
        self._emit = emit
        self.records = RecordStore(layout.containers, "config.v2.json")
        self.containers: dict[str, Container] = {}
        self.names: dict[str, str] = {}
        self.live: dict[str, Live] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiters: dict[str, list[tuple[str, asyncio.Future]]] = {}
        self._pending_attach: dict[str, list] = {}
        self.on_exit_hooks: list[Callable] = []  # restart policies hook in here
        images.container_using = self.using_image
        for record_id, record in self.records.load_all():
            if record is None:
                self.records.delete(record_id)  # a create cut short by a crash
                continue
            c = Container(record)
            self.containers[c.id] = c
            self.names[c.name] = c.id

    # -- paths ------------------------------------------------------------------
    def bundle(self, c: Container) -> str:
        return os.path.join(self.exec_root, "containers", c.id)

    def rootfs(self, c: Container) -> str:
        return os.path.join(self.bundle(c), "rootfs")

    def data_dir(self, c: Container) -> str:
        return self.records.dir(c.id)

    def exit_file(self, c: Container) -> str:
        return os.path.join(self.data_dir(c), "exit.json")

    def shim_socket(self, c: Container) -> str:
        return os.path.join(self.bundle(c), "shim.sock")

    # -- lookups ----------------------------------------------------------------
    def get(self, ref: str) -> Container:
        """By full ID, name, or unambiguous ID prefix, as dockerd's GetContainer."""
        if ref in self.containers:
            return self.containers[ref]
        by_name = self.names.get("/" + ref.lstrip("/"))
        if by_name:
            return self.containers[by_name]
        if ref:
            found = [c for i, c in self.containers.items() if i.startswith(ref)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise errdefs.InvalidParameter(f"multiple IDs found with provided prefix: {ref}")
        raise NoSuchContainer(f"No such container: {ref}")

    def using_image(self, image_id: str) -> str | None:
        for c in self.containers.values():
            if c.image_id == image_id:
                return c.id
        return None

    def counts(self) -> dict[str, int]:
        out = {"running": 0, "paused": 0, "stopped": 0}
        for c in self.containers.values():
            key = "paused" if c.paused else "running" if c.running else "stopped"
            out[key] += 1
        return out

    def lock(self, c: Container) -> asyncio.Lock:
        return self._locks.setdefault(c.id, asyncio.Lock())

    def save(self, c: Container) -> None:
        self.records.save(c.id, c.record)

    def emit(self, c: Container, action: str, **extra: str) -> None:
        attrs = {"image": c.config.get("Image", ""), "name": c.name.lstrip("/")}
        attrs.update(c.config.get("Labels") or {})
        attrs.update(extra)
        self._emit("container", action, c.id, attrs)

    # -- create -----------------------------------------------------------------
    def create(self, body: dict[str, Any], name: str | None) -> dict[str, Any]:
        from dockyard.runtime.spec import (merge_image_config, parse_security_opt,
                                           tweak_capabilities)
        from dockyard.daemon.validate import validate_create

        if not body.get("Image"):
            raise errdefs.InvalidParameter("Config cannot be empty in order to create a container")
        image = self.images.get(body["Image"])
        hc = host_config(body.get("HostConfig"))
        config = {k: v for k, v in body.items() if k not in ("HostConfig", "NetworkingConfig")}
        config = merge_image_config(config, image.container_config)
        warnings = validate_create(config, hc, self.runtimes)
        try:
            tweak_capabilities(hc.get("CapAdd"), hc.get("CapDrop"), bool(hc.get("Privileged")))
            parse_security_opt(hc.get("SecurityOpt"))
        except ValueError as e:
            raise errdefs.InvalidParameter(str(e)) from e
        if not hc.get("Runtime"):
            hc["Runtime"] = self.runtimes.default
        stored_name = names.validate(name) if name else names.generate(self.names)
        if stored_name in self.names:
            other = self.names[stored_name]
            raise errdefs.Conflict(
                f'Conflict. The container name "{stored_name}" is already in use by container '
                f'"{other}". You have to remove (or rename) that container to be able to reuse '
                "that name.")
        container_id = secrets.token_hex(32)
        config.setdefault("Hostname", "")
        if not config["Hostname"]:
            config["Hostname"] = container_id[:12]
        entrypoint = config.get("Entrypoint") or []
        cmd = config.get("Cmd") or []
        argv = list(entrypoint) + list(cmd)
        if not argv:
            raise errdefs.InvalidParameter("No command specified")
        record = {
            "Id": container_id, "Created": now_rfc3339(), "Path": argv[0], "Args": argv[1:],
            "State": new_state(), "Image": image.id, "ResolvConfPath": "", "HostnamePath": "",
            "HostsPath": "", "LogPath": "", "Name": stored_name, "RestartCount": 0,
            "Driver": "overlay2", "Platform": "linux", "MountLabel": "", "ProcessLabel": "",
            "AppArmorProfile": "", "ExecIDs": None, "HostConfig": hc, "Config": config,
        }
        c = Container(record)
        data_dir = self.records.dir(container_id)
        if hc["LogConfig"]["Type"] in ("json-file", "local"):
            suffix = "json.log" if hc["LogConfig"]["Type"] == "json-file" else "local.log"
            record["LogPath"] = os.path.join(data_dir, f"{container_id}-{suffix}")
        record.update(ResolvConfPath=os.path.join(data_dir, "resolv.conf"),
                      HostnamePath=os.path.join(data_dir, "hostname"),
                      HostsPath=os.path.join(data_dir, "hosts"))
        # The name is taken before any I/O so two creates cannot both win it.
        self.names[stored_name] = container_id
        try:
            parent = chain_ids(image.diff_ids)[-1] if image.diff_ids else None
            self.images.snapshots.prepare(container_id, parent, {"container": container_id})
            try:
                self.save(c)
            except BaseException:
                self.images.snapshots.remove(container_id)
                raise
        except BaseException:
            del self.names[stored_name]
            raise
        self.containers[container_id] = c
        self.emit(c, "create")
        return {"Id": container_id, "Warnings": warnings}

    # -- start ------------------------------------------------------------------
    async def start(self, ref: str) -> None:
        c = self.get(ref)
        try:
            async with self.lock(c):
                if c.paused:
                    raise errdefs.Conflict("cannot start a paused container, try unpause instead")
                if c.running:
                    raise errdefs.NotModified(f"container {c.id} is already running")
                if c.state.get("Status") == "removing":
                    raise errdefs.Conflict("container is marked for removal and cannot be started")
                await self._start(c)
        except _StartFailed as e:
            # As dockerd: a --rm container that cannot start is removed at once
            # (`docker run --rm` waits for that before it reports the error).
            if c.host_config.get("AutoRemove"):
                with contextlib.suppress(errdefs.DockyardError):
                    await self.remove(c.id, force=True)
            raise e.error from e

    async def _start(self, c: Container) -> None:
        try:
            try:
                await self._start_steps(c)
            except errdefs.DockyardError as e:
                raise _StartFailed(e) from e
        except BaseException as e:
            # Clients attached before start (`docker run`) learn it failed: their
            # connections close, as dockerd closes them.
            for fut in self._pending_attach.pop(c.id, []):
                if not fut.done():
                    fut.set_exception(errdefs.Conflict(f"container {c.id} failed to start"))
            raise e

    async def _start_steps(self, c: Container) -> None:
        from dockyard.runtime import shimclient

        import time as _t
        T=[_t.perf_counter()]
        def mark(what):
            now=_t.perf_counter(); log.warning("TIMING %s %.1f ms", what, (now-T[0])*1000); T[0]=now
        async with contextlib.AsyncExitStack() as undo:
            rootfs = await asyncio.to_thread(self._mount_rootfs, c)
            mark("mount")
            undo.push_async_callback(asyncio.to_thread, self._unmount_rootfs, c)
            files = await asyncio.to_thread(self._write_etc_files, c)
            mark("etc")
            spec = await asyncio.to_thread(self._write_bundle, c, rootfs, files)
            mark("bundle")
            runtime = self.runtimes.path(c.host_config["Runtime"])
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.exit_file(c))
            log_config = c.host_config["LogConfig"]
            try:
                shim = await shimclient.spawn(
                    id=c.id, bundle=self.bundle(c), runtime=runtime,
                    runtime_root=self.runtimes.root, socket=self.shim_socket(c),
                    exit_file=self.exit_file(c), stdin=bool(c.config.get("OpenStdin")),
                    tty=bool(c.config.get("Tty")), log_driver=log_config["Type"],
                    log_path=c.record["LogPath"] or None,
                    log_opts=log_config.get("Config") or {})
            except shimclient.RuntimeFailed as e:
                self._start_failed(c, str(e))
                raise _StartFailed(_start_error(c, str(e))) from e
            mark("spawn")
            live = Live(shim)
            self.live[c.id] = live
            undo.callback(self.live.pop, c.id, None)
            await self._connect_pending_attachers(c, shim)
            mark("attachers")
            try:
                await shim.start()
                mark("shim.start")
            except shimclient.RuntimeFailed as e:
                with contextlib.suppress(Exception):
                    await self.runtimes.run(c.host_config["Runtime"], "delete", "--force", c.id)
                self._start_failed(c, str(e))
                raise _StartFailed(_start_error(c, str(e))) from e
            undo.pop_all()
        c.set_running(shim.pid)
        self.save(c)
        mark("save")
        self.emit(c, "start")
        live.watcher = asyncio.create_task(self._watch(c, live))
        del spec

    def _start_failed(self, c: Container, message: str) -> None:
        code = 127 if _command_not_found(message) else 126 if "permission denied" in message else 128
        c.set_start_failed(message, code)
        self.save(c)

    def _mount_rootfs(self, c: Container) -> str:
        from dockyard.linux.mount import mount_all

        rootfs = self.rootfs(c)
        os.makedirs(rootfs, exist_ok=True)
        if not os.path.ismount(rootfs):
            mount_all(self.images.snapshots.mounts(c.id), rootfs)
        return rootfs

    def _unmount_rootfs(self, c: Container) -> None:
        from dockyard.linux.mount import unmount_all

        rootfs = self.rootfs(c)
        if os.path.exists(rootfs):
            with contextlib.suppress(OSError):
                unmount_all(rootfs)
        shutil.rmtree(self.bundle(c), ignore_errors=True)

    def _write_etc_files(self, c: Container) -> dict[str, str]:
        hc = c.host_config
        hostname = c.config.get("Hostname") or c.short_id
        mode = hc.get("NetworkMode") or "default"
        if mode == "host":
            hostname = os.uname().nodename
            with open("/etc/hosts") as f:
                hosts_text = f.read()
        else:
            hosts_text = etcfiles.hosts([tuple(h.split(":", 1)[::-1]) for h in hc.get("ExtraHosts") or []])
        try:
            with open("/etc/resolv.conf") as f:
                host_resolv = f.read()
        except OSError:
            host_resolv = ""
        resolv = host_resolv if mode == "host" else etcfiles.resolv_conf(
            host_resolv, hc.get("Dns"), hc.get("DnsSearch"), hc.get("DnsOptions"))
        return etcfiles.write(self.data_dir(c), hostname, hosts_text, resolv)

    def _write_bundle(self, c: Container, rootfs: str, files: dict[str, str]) -> dict:
        from dockyard.runtime import spec as oci_spec

        image = self.images.images.get(c.image_id)
        try:
            spec = oci_spec.build({**c.record, "ID": c.id}, image.container_config, rootfs, files)
        except ValueError as e:  # SpecError, UserLookupError: what the user asked for
            raise errdefs.InvalidParameter(str(e)) from e
        os.makedirs(self.bundle(c), exist_ok=True)
        atomic.write_bytes(os.path.join(self.bundle(c), "config.json"),
                           json.dumps(spec, indent=1).encode())
        return spec

    async def _connect_pending_attachers(self, c: Container, shim) -> None:
        """Clients that attached before start (`docker run`) get their streams
        now, before the process runs, so they miss no output."""
        pending = self._pending_attach.pop(c.id, [])
        for fut in pending:
            if not fut.done():
                fut.set_result(shim)
        ready = [p.ready for p in pending if hasattr(p, "ready")]
        if ready:
            await asyncio.wait(ready, timeout=5)

    # -- exit -------------------------------------------------------------------
    async def _watch(self, c: Container, live: Live) -> None:
        try:
            result = await live.shim.wait()
        except (ConnectionError, OSError, asyncio.IncompleteReadError) as e:
            log.warning("lost the shim of %s (%s); reading its exit file", c.short_id, e)
            result = await asyncio.to_thread(self._read_exit_file, c)
        await self._exited(c, result)

    def _read_exit_file(self, c: Container) -> dict[str, Any]:
        try:
            return atomic.read_json(self.exit_file(c))
        except (FileNotFoundError, ValueError):
            return {"exit_code": 255, "finished_at": now_rfc3339(), "oom_killed": False}

    async def _exited(self, c: Container, result: dict[str, Any]) -> None:
        live = self.live.pop(c.id, None)
        exit_code = int(result.get("exit_code", 255))
        if result.get("oom_killed"):
            self.emit(c, "oom")
        c.set_stopped(exit_code, result.get("finished_at"), bool(result.get("oom_killed")))
        self.save(c)
        await asyncio.to_thread(self._unmount_rootfs, c)
        self.emit(c, "die", exitCode=str(exit_code))
        if live is not None and not live.exited.done():
            live.exited.set_result(exit_code)
        self._resolve_waiters(c, ("not-running", "next-exit"), exit_code)
        for hook in self.on_exit_hooks:
            await hook(c)
        if c.host_config.get("AutoRemove") and c.id in self.containers:
            with contextlib.suppress(errdefs.DockyardError):
                await self.remove(c.id, force=True)

    def _resolve_waiters(self, c: Container, conditions: tuple[str, ...], code: int) -> None:
        keep = []
        for condition, fut in self._waiters.get(c.id, []):
            if condition in conditions:
                if not fut.done():
                    fut.set_result(code)
            else:
                keep.append((condition, fut))
        self._waiters[c.id] = keep

    # -- wait -------------------------------------------------------------------
    def register_wait(self, ref: str, condition: str) -> asyncio.Future:
        """A future for the exit code; registered before the response headers
        go out, so a client that starts the container next cannot miss the exit."""
        if condition not in ("not-running", "next-exit", "removed"):
            raise errdefs.InvalidParameter(f"invalid condition: {condition!r}")
        c = self.get(ref)
        fut = asyncio.get_running_loop().create_future()
        if condition == "not-running" and not c.running:
            fut.set_result(c.state["ExitCode"])
            return fut
        self._waiters.setdefault(c.id, []).append((condition, fut))
        return fut

    # -- stop, kill, restart ----------------------------------------------------
    async def stop(self, ref: str, timeout: int | None = None, sig: str | None = None) -> None:
        c = self.get(ref)
        async with self.lock(c):
            if not c.running:
                raise errdefs.NotModified(f"container {c.id} is already stopped")
            await self._stop(c, timeout, sig)

    async def _stop(self, c: Container, timeout: int | None, sig: str | None = None) -> None:
        if timeout is None:
            timeout = c.config.get("StopTimeout")
            timeout = 10 if timeout is None else timeout
        stop_signal = _signal_number(sig or c.config.get("StopSignal") or "SIGTERM")
        live = self.live.get(c.id)
        c.state["StoppedByUser"] = True
        if live is not None:
            with contextlib.suppress(errdefs.DockyardError):
                await self._signal(c, stop_signal)
            done = False
            if timeout is None or timeout >= 0:
                done = await _wait_future(live.exited, timeout)
            else:
                await live.exited
                done = True
            if not done:
                await self._signal(c, signals.SIGKILL)
                await live.exited
        self.emit(c, "stop")

    async def kill(self, ref: str, sig: str | None = None) -> None:
        c = self.get(ref)
        if not c.running:
            raise NotRunning(f"Container {c.id} is not running")
        number = _signal_number(sig or "SIGKILL")
        await self._signal(c, number)

    async def _signal(self, c: Container, number: int) -> None:
        self.emit(c, "kill", signal=str(number))
        runtime = c.host_config["Runtime"]
        await self.runtimes.run(runtime, "kill", c.id, str(number))
        if c.paused and number == signals.SIGKILL:
            # A frozen task cannot act on SIGKILL until it is thawed.
            await self.runtimes.run(runtime, "resume", c.id)

    async def restart(self, ref: str, timeout: int | None = None) -> None:
        c = self.get(ref)
        async with self.lock(c):
            if c.running:
                await self._stop(c, timeout)
            try:
                await self._start(c)
            except _StartFailed as e:
                raise e.error from e
        self.emit(c, "restart")

    # -- pause ------------------------------------------------------------------
    async def pause(self, ref: str) -> None:
        c = self.get(ref)
        async with self.lock(c):
            if not c.running:
                raise NotRunning(f"Container {c.id} is not running")
            if c.paused:
                raise errdefs.Conflict(f"Container {c.id} is already paused")
            await self.runtimes.run(c.host_config["Runtime"], "pause", c.id)
            c.set_paused(True)
            self.save(c)
            self.emit(c, "pause")

    async def unpause(self, ref: str) -> None:
        c = self.get(ref)
        async with self.lock(c):
            if not c.paused:
                raise errdefs.Conflict(f"Container {c.id} is not paused")
            await self.runtimes.run(c.host_config["Runtime"], "resume", c.id)
            c.set_paused(False)
            self.save(c)
            self.emit(c, "unpause")

    # -- remove, rename ---------------------------------------------------------
    async def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        c = self.get(ref)
        async with self.lock(c):
            if c.id not in self.containers:
                return  # removed while we waited for the lock (AutoRemove)
            if c.running:
                if not force:
                    what = "paused" if c.paused else "running"
                    raise errdefs.Conflict(
                        f"You cannot remove a {what} container {c.id}. Stop the container "
                        "before attempting removal or force remove")
                live = self.live.get(c.id)
                with contextlib.suppress(errdefs.DockyardError):
                    await self._signal(c, signals.SIGKILL)
                if live is not None:
                    await _wait_future(live.exited, 30)
            c.state["Status"] = "removing"
            await asyncio.to_thread(self._destroy, c)
        self._locks.pop(c.id, None)
        self.emit(c, "destroy")
        self._resolve_waiters(c, ("removed", "not-running", "next-exit"), c.state["ExitCode"])
        self._waiters.pop(c.id, None)

    def _destroy(self, c: Container) -> None:
        self._unmount_rootfs(c)
        with contextlib.suppress(errdefs.NotFound):
            self.images.snapshots.remove(c.id)
        self.records.delete(c.id)
        self.containers.pop(c.id, None)
        self.names.pop(c.name, None)

    def rename(self, ref: str, new_name: str) -> None:
        c = self.get(ref)
        if not new_name:
            raise errdefs.InvalidParameter("Neither old nor new names may be empty")
        stored = names.validate(new_name)
        if stored == c.name:
            raise errdefs.InvalidParameter("Renaming a container with the same name as its "
                                           "current name")
        if stored in self.names:
            raise errdefs.Conflict(
                f'Conflict. The container name "{stored}" is already in use by container '
                f'"{self.names[stored]}". You have to remove (or rename) that container to be '
                "able to reuse that name.")
        old = c.name
        self.names[stored] = c.id
        del self.names[old]
        c.record["Name"] = stored
        self.save(c)
        self.emit(c, "rename", oldName=old)

    # -- attach -----------------------------------------------------------------
    async def shim_for_attach(self, ref: str, ready: asyncio.Future):
        """The shim to attach to: now if the container runs, else at its next start."""
        c = self.get(ref)
        if c.id in self.live:
            return self.live[c.id].shim
        fut = asyncio.get_running_loop().create_future()
        fut.ready = ready
        self._pending_attach.setdefault(c.id, []).append(fut)
        return await fut

    # -- restore after a daemon restart -----------------------------------------
    async def restore(self) -> None:
        """Take back containers whose shims outlived the previous daemon, and
        record the exit of those that ended while it was away."""
        for c in list(self.containers.values()):
            if c.state.get("Status") == "removing":
                await asyncio.to_thread(self._destroy, c)
                continue
            if not c.running:
                continue
            from dockyard.runtime import shimclient
            try:
                shim = await shimclient.connect(self.shim_socket(c))
            except (OSError, ConnectionError):
                result = await asyncio.to_thread(self._read_exit_file, c)
                with contextlib.suppress(errdefs.DockyardError, OSError):
                    await self.runtimes.run(c.host_config["Runtime"], "delete", "--force", c.id)
                await self._exited(c, result)
                continue
            mark("spawn")
            live = Live(shim)
            self.live[c.id] = live
            live.watcher = asyncio.create_task(self._watch(c, live))

    async def shutdown(self) -> None:
        """Leave containers running (live restore); just stop watching them."""
        for live in list(self.live.values()):
            if live.watcher is not None:
                live.watcher.cancel()
        for live in list(self.live.values()):
            with contextlib.suppress(Exception):
                await live.shim.close()


class _StartFailed(Exception):
    """The runtime refused to create or start the container; carries the API error."""

    def __init__(self, error: errdefs.DockyardError):
        super().__init__(str(error))
        self.error = error


def _command_not_found(message: str) -> bool:
    return "executable file not found" in message or "no such file or directory" in message


def _start_error(c: Container, message: str) -> errdefs.DockyardError:
    """As dockerd: a missing or non-executable command is the user's error (400)."""
    if _command_not_found(message) or "permission denied" in message:
        return errdefs.InvalidParameter(message)
    return errdefs.System(message)


async def _wait_future(fut: asyncio.Future, timeout: float | None) -> bool:
    try:
        await asyncio.wait_for(asyncio.shield(fut), timeout)
        return True
    except asyncio.TimeoutError:
        return False


def _signal_number(sig: str | int) -> int:
    """`SIGTERM`, `TERM`, `term` or `15`, as docker's signal.ParseSignal."""
    if isinstance(sig, int):
        return sig
    text = str(sig).strip()
    if text.isdigit():
        number = int(text)
        if number <= 0 or number > 64:
            raise errdefs.InvalidParameter(f"Invalid signal: {sig}")
        return number
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(getattr(signals.Signals, name))
    except AttributeError:
        if name.startswith("SIGRTMIN+") or name.startswith("SIGRTMAX-"):
            base = signals.SIGRTMIN if name.startswith("SIGRTMIN") else signals.SIGRTMAX
            offset = int(name[9:])
            return int(base) + offset if name.startswith("SIGRTMIN") else int(base) - offset
        raise errdefs.InvalidParameter(f"Invalid signal: {sig}") from None
