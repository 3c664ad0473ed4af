"""The container service: docker's container lifecycle and its rules.

created → running ⇄ paused → exited → removed. Every transition is a method
here; each one checks the state it starts from (with dockerd's error for the
wrong one), does its steps with an undo for each, saves the record, and emits
the event. The processes themselves belong to the shim (one per container) and
the OCI runtime; this service talks to them and keeps the record true.

Concurrency. Everything runs on the event loop thread, which alone touches the
indexes (`containers`, `names`, `live`); blocking work (mounts, file writes)
goes to a worker thread in one hop per step. Transitions a user asks for take
the container's lock. The exit of a container is handled without it (a `stop`
holding the lock waits for that exit); until its handling is done — rootfs
unmounted, waiters answered — the container stays in `live`, and `start` and
`remove` wait for it. A new shim is only started once the previous one has
gone (it runs `runtime delete` after reporting the exit, and it shares the
bundle's socket path).

Writes. The record is written durably (temp file, fsync, rename) on every change.
Files derived at every start (hostname, hosts, resolv.conf, the bundle's
config.json in the exec root) are rewritten from the record, so they are not
fsynced.
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
from dockyard.daemon.filtering import labels_match
from dockyard.daemon import etcfiles, names
from dockyard.daemon.container import Container, host_config, new_state, now_rfc3339, parse_time
from dockyard.daemon.images import ImageService
from dockyard.daemon.restarts import Restarts
from dockyard.daemon.runtimes import Runtimes
from dockyard.daemon.validate import parse_signal
from dockyard.storage.layer import chain_ids
from dockyard.store.layout import Layout
from dockyard.store.records import RecordStore

log = logging.getLogger(__name__)

CGROUP_V2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
SHIM_GONE_TIMEOUT = 30.0  # how long a start waits for the previous shim to finish


class NoSuchContainer(errdefs.NotFound):
    pass


class NotRunning(errdefs.Conflict):
    pass


class Live:
    """What the daemon holds for a container whose shim is alive."""

    def __init__(self, shim):
        self.shim = shim
        # the exit code, once the exit is handled (state saved, rootfs unmounted)
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
        self._old_shims: dict[str, asyncio.Task] = {}  # id -> a task done when that shim is gone
        self._restarting: set[str] = set()  # AutoRemove is held off while these restart
        self.on_exit_hooks: list[Callable] = []
        self.networking = None  # daemon/containernetwork.py, set by the daemon's wiring
        self.mounts = None  # daemon/containermounts.py, set by the daemon's wiring
        self.restarts = Restarts(self)  # restart policies (daemon/restarts.py)
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

    def log_path(self, c: Container) -> str:
        suffix = "json.log" if c.host_config["LogConfig"]["Type"] == "json-file" else "local.log"
        return os.path.join(self.data_dir(c), f"{c.id}-{suffix}")

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
            key = "paused" if c.paused else "running" if c.running and \
                not c.state.get("Restarting") else "stopped"
            out[key] += 1
        return out

    def lock(self, c: Container) -> asyncio.Lock:
        return self._locks.setdefault(c.id, asyncio.Lock())

    def save(self, c: Container) -> None:
        """Durably (create, rename)."""
        self.records.save(c.id, c.record)

    def checkpoint(self, c: Container) -> None:
        """A state change, written as durably as the record itself: a record
        cut short by a power loss would be taken for a half-made container."""
        self.records.save(c.id, c.record)

    def emit(self, c: Container, action: str, **extra: str) -> None:
        attrs = {"image": c.config.get("Image", ""), "name": c.name.lstrip("/")}
        attrs.update(c.config.get("Labels") or {})
        attrs.update(extra)
        self._emit("container", action, c.id, attrs)

    # -- create -----------------------------------------------------------------
    async def create(self, body: dict[str, Any], name: str | None) -> dict[str, Any]:
        c, parent, warnings = self._new_container(body, name)
        # The name is taken before any I/O so two creates cannot both win it.
        self.names[c.name] = c.id
        try:
            await asyncio.to_thread(self._create_on_disk, c, parent)
        except BaseException:
            del self.names[c.name]
            raise
        self.containers[c.id] = c
        self.emit(c, "create")
        return {"Id": c.id, "Warnings": warnings}

    def _new_container(self, body: dict[str, Any], name: str | None
                       ) -> tuple[Container, str | None, list[str]]:
        """The record of a container to create, checked as dockerd's containerCreate."""
        from dockyard.daemon.validate import validate_create
        from dockyard.runtime.spec import (merge_image_config, parse_security_opt,
                                           tweak_capabilities)

        if not body.get("Image"):
            raise errdefs.InvalidParameter("Config cannot be empty in order to create a container")
        image = self.images.get(body["Image"])
        hc = host_config(body.get("HostConfig"), CGROUP_V2)
        config = {k: v for k, v in body.items() if k not in ("HostConfig", "NetworkingConfig")}
        config = merge_image_config(config, image.container_config)
        for key in ("ExposedPorts", "StopSignal", "StopTimeout", "Healthcheck", "Shell",
                    "MacAddress", "NetworkDisabled", "ArgsEscaped"):
            if key in config and config[key] in (None, "", {}, [], False):
                del config[key]  # `omitempty` in docker's Config
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
            raise errdefs.Conflict(_name_in_use(stored_name, self.names[stored_name]))
        container_id = secrets.token_hex(32)
        if not config.get("Hostname"):
            # dockerd: the host's name with --network host, else the short ID
            config["Hostname"] = os.uname().nodename if hc["NetworkMode"] == "host" \
                else container_id[:12]
        argv = list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])
        if not argv:
            raise errdefs.InvalidParameter("No command specified")
        record = {
            "Id": container_id, "Created": now_rfc3339(), "Path": argv[0], "Args": argv[1:],
            "State": new_state(), "Image": image.id, "ResolvConfPath": "", "HostnamePath": "",
            "HostsPath": "", "LogPath": "", "Name": stored_name, "RestartCount": 0,
            "Driver": "overlay2", "Platform": "linux", "MountLabel": "", "ProcessLabel": "",
            "AppArmorProfile": "", "ExecIDs": None, "HostConfig": hc, "Config": config,
        }
        parent = chain_ids(image.diff_ids)[-1] if image.diff_ids else None
        c = Container(record)
        self.networking.on_create(c, body.get("NetworkingConfig"))
        return c, parent, warnings

    def _create_on_disk(self, c: Container, parent: str | None) -> None:
        """The snapshot, the mounts (volumes made, filled from the snapshot),
        then the record: a crash before the record leaves a snapshot the next
        start removes, and at worst an unused anonymous volume."""
        self.images.snapshots.prepare(c.id, parent, {"container": c.id})
        try:
            self.mounts.register(c)
            try:
                self.save(c)
            except BaseException:
                self.mounts.unregister(c)
                raise
        except BaseException:
            self.images.snapshots.remove(c.id)
            raise

    # -- start ------------------------------------------------------------------
    async def start(self, ref: str) -> None:
        c = self.get(ref)
        try:
            async with self.lock(c):
                if c.paused:
                    raise errdefs.Conflict("cannot start a paused container, try unpause instead")
                if c.running:
                    raise errdefs.NotModified(f"container {c.id} is already running")
                if c.state.get("Status") == "removing" or c.id not in self.containers:
                    raise errdefs.Conflict("container is marked for removal and cannot be started")
                self.restarts.reset(c)
                await self._start(c)
        except _StartFailed as e:
            # As dockerd: a --rm container that cannot start is removed at once
            # (`docker run --rm` waits for that before it reports the error).
            if c.host_config.get("AutoRemove"):
                with contextlib.suppress(errdefs.DockyardError):
                    await self.remove(c.id, force=True, volumes=True)
            raise e.error from e

    async def _start(self, c: Container) -> None:
        try:
            try:
                await self._settle(c)
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

    async def _settle(self, c: Container) -> None:
        """Wait until the previous run is wholly over: its exit handled, its shim gone."""
        live = self.live.get(c.id)
        if live is not None:
            await live.exited
        await self.shim_gone(c)

    async def shim_gone(self, c: Container) -> None:
        """Wait (a while) until the previous shim has gone and its bundle with it."""
        gone = self._old_shims.pop(c.id, None)
        if gone is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(gone, SHIM_GONE_TIMEOUT)

    async def _start_steps(self, c: Container) -> None:
        from dockyard.runtime import shimclient

        shimclient.prepare_spawn()  # (the fork server gets ready while we prepare the bundle)
        async with contextlib.AsyncExitStack() as undo:
            try:
                netns_path = await self.networking.attach(c)
            except errdefs.DockyardError as e:
                raise self._start_failed(c, str(e), errdefs.kind_of(e)) from e
            undo.push_async_callback(self.networking.release, c)
            if netns_path:  # what is allocated is on disk before anything uses it
                self.checkpoint(c)
            try:
                await asyncio.to_thread(self._prepare, c, netns_path)
            except errdefs.DockyardError as e:  # (a mount, the spec): recorded as it is
                raise self._start_failed(c, str(e), errdefs.kind_of(e), translate=False) from e
            undo.push_async_callback(asyncio.to_thread, self._unprepare, c)
            log_config = c.host_config["LogConfig"]
            try:
                shim = await shimclient.spawn(
                    id=c.id, bundle=self.bundle(c), runtime=self.runtimes.path(
                        c.host_config["Runtime"]),
                    runtime_root=self.runtimes.root, socket=self.shim_socket(c),
                    exit_file=self.exit_file(c), stdin=bool(c.config.get("OpenStdin")),
                    tty=bool(c.config.get("Tty")), log_driver=log_config["Type"],
                    log_path=c.record["LogPath"] or None,
                    log_opts=log_config.get("Config") or {})
            except shimclient.RuntimeFailed as e:
                raise self._start_failed(c, "failed to create shim task: OCI runtime create "
                                            f"failed: {e}: unknown") from e
            live = Live(shim)
            self.live[c.id] = live
            undo.callback(self.live.pop, c.id, None)
            await self._connect_pending_attachers(c, shim)
            try:
                await shim.start()
            except (shimclient.RuntimeFailed, OSError, ConnectionError) as e:
                with contextlib.suppress(Exception):
                    await self.runtimes.run(c.host_config["Runtime"], "delete", "--force", c.id)
                raise self._start_failed(c, f"OCI runtime start failed: {e}: unknown") from e
            undo.pop_all()
        c.set_running(shim.pid)
        self.checkpoint(c)
        self.emit(c, "start")
        live.watcher = asyncio.create_task(self._watch(c, live))

    def _start_failed(self, c: Container, message: str, kind: type = errdefs.System,
                      translate: bool = True) -> errdefs.DockyardError:
        """daemon/errors.go translateContainerdStartErr: the exit code and error
        a start that failed leaves, and the kind of error it is. Errors before
        the runtime was asked (`translate` false) keep their kind, and 128."""
        lower = message.lower() if translate else ""
        code, error = 128, kind(message)
        if "executable file not found" in lower or "no such file or directory" in lower:
            code, error = 127, errdefs.InvalidParameter(message)
        if "permission denied" in lower:
            code, error = 126, errdefs.InvalidParameter(message)
        if "not a directory" in lower:
            message += (": Are you trying to mount a directory onto a file (or vice-versa)? "
                        "Check if the specified host path exists and is the expected type")
            code, error = 127, errdefs.InvalidParameter(message)
        c.set_start_failed(message, code)
        self.checkpoint(c)
        return error

    def _prepare(self, c: Container, netns_path: str | None) -> None:
        """The bundle: rootfs mounted, /etc files written, config.json (one
        worker-thread hop for all of it)."""
        from dockyard.linux.mount import mount_all
        from dockyard.runtime import spec as oci_spec

        rootfs = self.rootfs(c)
        os.makedirs(rootfs, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.exit_file(c))
        if not os.path.ismount(rootfs):
            mount_all(self.images.snapshots.mounts(c.id), rootfs)
        try:
            mounts, tmpfs = self.mounts.setup(c)
        except BaseException:
            self.unmount_rootfs(c)
            raise
        try:
            files = etcfiles.for_container(c, self.data_dir(c), self.networking.etc_view(c))
            c.record.update(ResolvConfPath=files["resolv.conf"], HostnamePath=files["hostname"],
                            HostsPath=files["hosts"])
            if c.host_config["LogConfig"]["Type"] in ("json-file", "local"):
                c.record["LogPath"] = self.log_path(c)
            image = self.images.images.get(c.image_id)
            try:
                spec = oci_spec.build({**c.record, "ID": c.id}, image.container_config, rootfs,
                                      files, netns_path=netns_path, mounts=mounts, tmpfs=tmpfs)
            except ValueError as e:  # SpecError, UserLookupError: what the user asked for
                raise errdefs.InvalidParameter(str(e)) from e
            with open(os.path.join(self.bundle(c), "config.json"), "wb") as f:
                f.write(json.dumps(spec).encode())
        except BaseException:
            self._unprepare(c)
            raise

    def _unprepare(self, c: Container, remove_bundle: bool = True) -> None:
        """Undo `_prepare`: the rootfs unmounted, the volumes released."""
        self.unmount_rootfs(c, remove_bundle)
        self.mounts.teardown(c)

    def unmount_rootfs(self, c: Container, remove_bundle: bool = True) -> None:
        """Unmount the container's rootfs and, unless told otherwise, remove its
        bundle (a shim still running `runtime delete` needs the bundle: runc
        logs there, and fails when it cannot)."""
        from dockyard.linux.mount import MNT_DETACH, unmount_all

        rootfs = self.rootfs(c)
        if os.path.exists(rootfs):
            try:
                unmount_all(rootfs)
            except OSError as e:  # EBUSY: a process of the container is still dying
                log.warning("unmounting %s: %s; detaching it", rootfs, e)
                with contextlib.suppress(OSError):
                    unmount_all(rootfs, MNT_DETACH)
            if os.path.ismount(rootfs):  # never recurse into a container's files
                log.error("%s is still mounted; its bundle is left in place", rootfs)
                return
        if remove_bundle:
            shutil.rmtree(self.bundle(c), ignore_errors=True)

    def remove_bundle(self, c: Container) -> None:
        if not os.path.ismount(self.rootfs(c)):  # (never a container's files)
            shutil.rmtree(self.bundle(c), ignore_errors=True)

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
        except (ConnectionError, OSError, asyncio.IncompleteReadError, errdefs.DockyardError) as e:
            log.warning("lost the shim of %s (%s)", c.short_id, e)
            result = await self.after_lost_shim(c)
        await self.handle_exit(c, result)

    async def after_lost_shim(self, c: Container) -> dict[str, Any]:
        """The shim is gone: its exit file, if it wrote one; else it died (kill -9)
        with the container maybe still running, which is then killed and deleted,
        and reported as containerd reports a dead shim's task: 128 + SIGKILL."""
        result = await asyncio.to_thread(self._read_exit_file, c)
        if result is None:
            await self.force_delete(c)
            result = {"exit_code": 128 + signals.SIGKILL, "finished_at": now_rfc3339(),
                      "oom_killed": False}
        return result

    async def force_delete(self, c: Container) -> None:
        """`runtime delete --force`: kills what is left and removes the cgroup,
        if the runtime still has state for the container."""
        if not os.path.exists(os.path.join(self.runtimes.root, c.id)):
            return
        try:
            await self.runtimes.run(c.host_config["Runtime"], "delete", "--force", c.id)
        except (errdefs.DockyardError, OSError) as e:
            log.warning("runtime delete --force %s: %s", c.short_id, e)

    def _read_exit_file(self, c: Container) -> dict[str, Any] | None:
        try:
            with open(self.exit_file(c), "rb") as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    async def handle_exit(self, c: Container, result: dict[str, Any]) -> None:
        live = self.live.get(c.id)
        exit_code = int(result.get("exit_code", 255))
        oom = bool(result.get("oom_killed"))
        if oom:
            self.emit(c, "oom")
        c.set_stopped(exit_code, result.get("finished_at"), oom)
        self.restarts.exited(c)  # may make it `restarting`, its start scheduled
        auto_remove = c.host_config.get("AutoRemove") and c.id not in self._restarting
        if not auto_remove:  # (removed next: the record goes; a crash meanwhile reads the exit file)
            self.checkpoint(c)
        self.emit(c, "die", exitCode=str(exit_code))
        await asyncio.to_thread(self.unmount_rootfs, c, False)
        await self.forget_shim(c)  # the bundle goes once the shim has
        # its addresses are free before a restart asks for them again
        if await self.networking.release(c) and not auto_remove:
            self.checkpoint(c)
        await asyncio.to_thread(self.mounts.teardown, c)
        self.live.pop(c.id, None)
        if live is not None and not live.exited.done():
            live.exited.set_result(exit_code)
        self._resolve_waiters(c, ("not-running", "next-exit"), exit_code)
        for hook in self.on_exit_hooks:
            await hook(c)
        if auto_remove and c.id in self.containers:
            with contextlib.suppress(errdefs.DockyardError):
                await self.remove(c.id, force=True, volumes=True)

    async def _shim_probe(self, c: Container):
        """A connection to the shim, which reads EOF when the shim has exited
        (after its `runtime delete`); opened before the bundle (and the socket's
        name in it) goes."""
        from dockyard.runtime.shimclient import _open_unix

        try:
            reader, writer = await _open_unix(self.shim_socket(c))
        except OSError:
            return None
        return reader, writer

    def _resolve_waiters(self, c: Container, conditions: tuple[str, ...], code: int) -> None:
        keep = []
        for condition, fut in self._waiters.get(c.id, []):
            if condition in conditions:
                if not fut.done():
                    fut.set_result(code)
            elif not fut.done():
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
        number = parse_signal(sig) if sig else None
        c = self.get(ref)
        async with self.lock(c):
            if not c.running:
                raise errdefs.NotModified(f"container {c.id} is already stopped")
            await self._stop(c, timeout, number)

    async def _stop(self, c: Container, timeout: int | None, number: int | None = None) -> None:
        """daemon/stop.go containerStop: the stop signal; if it cannot be sent, 2 s
        for the container to end anyway; then `timeout` seconds (-1: forever)
        before SIGKILL."""
        if timeout is None:
            timeout = c.config.get("StopTimeout")
            timeout = 10 if timeout is None else timeout
        if number is None:
            number = parse_signal(c.config.get("StopSignal") or "SIGTERM")
        self.restarts.exit_on_next(c)  # (a pending restart is dropped: it ends exited)
        live = self.live.get(c.id)
        if live is not None:
            try:
                await self._signal(c, number)
            except errdefs.DockyardError:
                if not await _wait_future(live.exited, 2):
                    with contextlib.suppress(errdefs.DockyardError):
                        await self._signal(c, signals.SIGKILL)
            if not await _wait_future(live.exited, timeout if timeout >= 0 else None):
                with contextlib.suppress(errdefs.DockyardError):
                    await self._signal(c, signals.SIGKILL)
                await live.exited
        self.emit(c, "stop")

    async def kill(self, ref: str, sig: str | None = None) -> None:
        number = parse_signal(sig) if sig else signals.SIGKILL
        if not 0 < number <= 64:  # signal.ValidSignalForPlatform
            raise errdefs.InvalidParameter(f"the linux daemon does not support signal {number}")
        c = self.get(ref)
        if not c.running:
            raise NotRunning(f"Container {c.id} is not running")
        await self._signal(c, number)
        live = self.live.get(c.id)
        if number == signals.SIGKILL and live is not None:
            # dockerd's Kill returns once the container is gone (so `kill; rm` works)
            if not await _wait_future(live.exited, 10):
                raise errdefs.System("tried to kill container, but did not receive an exit event")

    async def _signal(self, c: Container, number: int) -> None:
        """daemon/kill.go killWithSignal: a paused container is resumed after its
        stop signal or SIGKILL is sent, so that it can act on it."""
        if self.restarts.exit_on_next(c, number):
            return  # restarting: no process to signal
        runtime = c.host_config["Runtime"]
        # The event goes first: dockerd sends it while it holds the container, so
        # it always comes before the `die` the signal may cause.
        self.emit(c, "kill", signal=str(number))
        await self.runtimes.run(runtime, "kill", c.id, str(number))
        stop_signal = parse_signal(c.config.get("StopSignal") or "SIGTERM")
        if c.paused and number in (signals.SIGKILL, stop_signal):
            try:
                await self.runtimes.run(runtime, "resume", c.id)
            except errdefs.DockyardError as e:  # (a runtime may thaw it itself)
                log.debug("resuming %s after signal %d: %s", c.short_id, number, e)

    async def restart(self, ref: str, timeout: int | None = None) -> None:
        c = self.get(ref)
        async with self.lock(c):
            if c.running:
                self._restarting.add(c.id)  # a --rm container is not removed by this stop
                try:
                    await self._stop(c, timeout)
                finally:
                    self._restarting.discard(c.id)
            self.restarts.reset(c)
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
            if c.state.get("Restarting"):
                raise errdefs.Conflict(f"Container {c.id} is restarting, wait until the "
                                       "container is running")
            await self.runtimes.run(c.host_config["Runtime"], "pause", c.id)
            c.set_paused(True)
            self.checkpoint(c)
            self.emit(c, "pause")

    async def unpause(self, ref: str) -> None:
        c = self.get(ref)
        async with self.lock(c):
            if not c.paused:
                raise errdefs.Conflict(f"Container {c.id} is not paused")
            await self.runtimes.run(c.host_config["Runtime"], "resume", c.id)
            c.set_paused(False)
            self.checkpoint(c)
            self.emit(c, "unpause")

    async def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        """`container prune`: every stopped container the filters keep."""
        from dockyard import timefilter
        from dockyard.daemon import containerviews

        for key in filters:
            if key not in ("until", "label", "label!"):
                raise errdefs.InvalidParameter(f"invalid filter '{key}'")
        deleted, reclaimed = [], 0
        for c in list(self.containers.values()):
            if c.running or c.paused:
                continue
            labels = c.config.get("Labels") or {}
            if "label" in filters and not labels_match(labels, filters["label"]):
                continue
            if "label!" in filters and labels_match(labels, filters["label!"]):
                continue
            if "until" in filters and parse_time(c.record["Created"]) >= \
                    timefilter.until_seconds(filters["until"][-1]):
                continue
            rw, _ = await asyncio.to_thread(containerviews.sizes, self, c)
            await self.remove(c.id)
            deleted.append(c.id)
            reclaimed += rw
        self._emit("container", "prune", "", {"reclaimed": str(reclaimed)})
        return {"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    # -- remove, rename ---------------------------------------------------------
    async def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        c = self.get(ref)
        async with self.lock(c):
            if c.id not in self.containers:
                return  # removed while we waited for the lock (AutoRemove)
            if c.running:
                if not force:
                    procedure = "Stop the container before attempting removal or force remove"
                    if c.paused:
                        procedure = "Unpause and then stop the container before attempting " \
                                    "removal or force remove"
                    what = "paused" if c.paused else \
                        "restarting" if c.state.get("Restarting") else "running"
                    raise errdefs.Conflict(f"You cannot remove a {what} container {c.id}. "
                                           f"{procedure}")
                with contextlib.suppress(errdefs.DockyardError):
                    await self._signal(c, signals.SIGKILL)
            live = self.live.get(c.id)
            if live is not None and not await _wait_future(live.exited, 30):
                raise errdefs.System(f"could not kill running container {c.id}, cannot remove")
            c.state["Status"] = "removing"
            self.checkpoint(c)
            await self.shim_gone(c)
            await asyncio.to_thread(self.destroy, c, volumes)
            self.containers.pop(c.id, None)
            self.names.pop(c.name, None)
        self._locks.pop(c.id, None)
        self.emit(c, "destroy")
        self._resolve_waiters(c, ("removed", "not-running", "next-exit"), c.state["ExitCode"])
        self._waiters.pop(c.id, None)

    def destroy(self, c: Container, volumes: bool = False) -> None:
        """The container's files, its record, then its volume references (and
        its anonymous volumes, with `volumes`)."""
        self.unmount_rootfs(c)
        with contextlib.suppress(errdefs.NotFound):
            self.images.snapshots.remove(c.id)
        self.records.delete(c.id)
        self.mounts.remove(c, volumes)

    async def rename(self, ref: str, new_name: str) -> None:
        if not new_name:
            raise errdefs.InvalidParameter("Neither old nor new names may be empty")
        c = self.get(ref)
        try:
            stored = names.validate(new_name)
        except errdefs.InvalidParameter as e:
            raise errdefs.InvalidParameter(
                "Error when allocating new name: Invalid container name "
                f"(/{new_name.lstrip('/')}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed") from e
        if stored == c.name:
            raise errdefs.InvalidParameter("Renaming a container with the same name as its "
                                           "current name")
        if stored in self.names:
            raise errdefs.Conflict(_name_in_use(stored, self.names[stored]))
        old = c.name
        self.names[stored] = c.id
        del self.names[old]
        c.record["Name"] = stored
        try:
            await asyncio.to_thread(self.save, c)
        except BaseException:
            c.record["Name"] = old
            self.names[old] = c.id
            del self.names[stored]
            raise
        self.emit(c, "rename", oldName=old)

    # -- attach, resize ---------------------------------------------------------
    async def shim_for_attach(self, ref: str, ready: asyncio.Future):
        """The shim to attach to: now if the container runs, else at its next start."""
        c = self.get(ref)
        live = self.live.get(c.id)
        if live is not None and not live.exited.done() and c.running:
            return live.shim
        fut = asyncio.get_running_loop().create_future()
        fut.ready = ready
        self._pending_attach.setdefault(c.id, []).append(fut)
        return await fut

    async def resize(self, ref: str, height: int, width: int) -> None:
        c = self.get(ref)
        live = self.live.get(c.id)
        if live is None or not c.running:
            raise NotRunning(f"Container {c.id} is not running")
        await live.shim.resize(height, width)
        self.emit(c, "resize", height=str(height), width=str(width))

    # -- restore after a daemon restart -----------------------------------------
    async def restore(self) -> None:
        """Take back what the previous daemon left: see daemon/containerrestore.py."""
        from dockyard.daemon.containerrestore import restore

        await restore(self)

    def adopt(self, c: Container, shim) -> None:
        """Watch a container whose shim a previous daemon started."""
        live = Live(shim)
        self.live[c.id] = live
        live.watcher = asyncio.create_task(self._watch(c, live))

    async def forget_shim(self, c: Container) -> None:
        """Once this shim is gone (after its `runtime delete`), the bundle goes;
        a start or a remove waits for both (see `shim_gone`). Called once the
        rootfs is unmounted, before anything removes the bundle (the shim's
        socket is found there)."""
        probe = await self._shim_probe(c)
        self._old_shims[c.id] = asyncio.create_task(self._remove_bundle_after(c, probe))

    async def _remove_bundle_after(self, c: Container, probe) -> None:
        if probe is not None:
            await _until_closed(probe)
        await asyncio.to_thread(self.remove_bundle, c)

    async def shutdown(self) -> None:
        """Leave containers running (live restore); just stop watching them."""
        self.restarts.shutdown()
        for live in list(self.live.values()):
            if live.watcher is not None:
                live.watcher.cancel()
        for live in list(self.live.values()):
            with contextlib.suppress(Exception):
                await live.shim.close()
        for task in self._old_shims.values():
            task.cancel()


class _StartFailed(Exception):
    """The runtime refused to create or start the container; carries the API error."""

    def __init__(self, error: errdefs.DockyardError):
        super().__init__(str(error))
        self.error = error


def _name_in_use(name: str, by: str) -> str:
    return (f'Conflict. The container name "{name}" is already in use by container "{by}". '
            "You have to remove (or rename) that container to be able to reuse that name.")


async def _until_closed(conn) -> None:
    reader, writer = conn
    try:
        while await reader.read(4096):
            pass
    except (OSError, ConnectionError):
        pass
    finally:
        writer.close()


async def _wait_future(fut: asyncio.Future, timeout: float | None) -> bool:
    try:
        await asyncio.wait_for(asyncio.shield(fut), timeout)
        return True
    except asyncio.TimeoutError:
        return False


_signal_number = parse_signal  # (the name the unit tests know)
