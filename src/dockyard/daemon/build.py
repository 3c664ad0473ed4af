"""POST /build: dockerd's classic builder, step by step.

A build receives the context (builder/context.py), reads the Dockerfile into
stages (builder/instructions.py), then dispatches every instruction of every
stage up to the target, printing docker's progress as it goes:

    Step 3/9 : RUN make
     ---> Running in 4f1c0e2d9a77
    <the command's output>
    Removing intermediate container 4f1c0e2d9a77
     ---> 9d2e4c1a0b3f

Each step after FROM commits an image on the previous one, so every
intermediate image is a cache entry (builder/imagecache.py), found again by
the record the step leaves in its ContainerConfig (builder/dispatchers.py):

- metadata instructions (ENV, LABEL, CMD, ...) change the run config; the
  step creates a container that never runs, and commits it (no layer);
- WORKDIR also makes the directory in that container's filesystem;
- RUN starts a container with the step's command and commits its changes
  as a layer (storage/changes.py turns the overlay upper dir into a tar);
- COPY and ADD write into a snapshot of their own on the current image and
  commit that, with no container (daemon/buildcopy.py).

Containers are created and removed through the container service, as for
any client; images are stored through the image service, as `commit` does.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import copy
import logging
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, BinaryIO, Callable

from dockyard import errdefs
from dockyard.builder import expansion
from dockyard.builder.buildargs import BuildArgs
from dockyard.builder.commands import (
    AddCommand, ArgCommand, CopyCommand, Instruction, RunCommand, Stage,
    StopSignalCommand, WorkdirCommand, new_label_command)
from dockyard.builder.dispatchers import (
    DispatchState, apply_metadata, normalize_dest, normalize_workdir, prepend_env_on_cmd,
    resolve_cmd_line, with_cmd_comment, with_cmd_comment_string)
from dockyard.builder.instructions import (
    InstructionError, check_classic_builder_support, find_stage, parse_command)
from dockyard.builder.shell import Lexer
from dockyard.builder.sourcehash import SourceHasher, copy_comment
from dockyard.daemon.buildcache import BuildCache
from dockyard.daemon.images import short_id
from dockyard.daemon.containerfs import INIT_DIRS, INIT_PATHS
from dockyard.image import commit as image_commit
from dockyard.image.layers import SCRATCH_PREFIX
from dockyard.image.reference import Reference
from dockyard.image.store import Image
from dockyard.storage import changes

if TYPE_CHECKING:
    from dockyard.daemon.containerfs import ContainerFS
    from dockyard.daemon.containers import ContainerService
    from dockyard.daemon.images import ImageService

log = logging.getLogger(__name__)

SCRATCH = "scratch"


@dataclass
class BuildOptions:
    """The query of POST /build that the executor uses."""
    tags: list[Reference] = field(default_factory=list)
    build_args: dict[str, str | None] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    target: str = ""
    no_cache: bool = False
    rm: bool = True
    force_rm: bool = False
    network_mode: str = ""
    pull: bool = False
    cache_from: list[str] = field(default_factory=list)
    shm_size: int = 0
    extra_hosts: list[str] = field(default_factory=list)
    resources: dict[str, Any] = field(default_factory=dict)


class RunFailed(errdefs.DockyardError):
    """A RUN that exited non-zero: the stream's error carries the code."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


Send = Callable[[dict[str, Any]], Awaitable[None]]


class Progress:
    """The build's messages: `{"stream": ...}` text, RUN's stderr in red as
    dockerd colours it, and `{"aux": ...}` results."""

    def __init__(self, send: Send):
        self._send = send

    async def out(self, text: str) -> None:
        await self._send({"stream": text})

    async def err(self, text: str) -> None:
        await self._send({"stream": f"\x1b[91m{text}\x1b[0m"})

    async def aux(self, value: dict[str, Any]) -> None:
        await self._send({"aux": value})


class Builder:
    """One build: the stages of a parsed Dockerfile, dispatched in order."""

    def __init__(self, containers: ContainerService, containerfs: ContainerFS,
                 options: BuildOptions, context_dir: str, escape_token: str,
                 progress: Progress, pull: Callable[[str], Awaitable[None]]):
        self.containers = containers
        self.containerfs = containerfs
        self.images: ImageService = containers.images
        self.options = options
        self.context_dir = context_dir
        self.lexer = Lexer(escape_token)
        self.progress = progress
        self.pull = pull  # fetches an image that is not here (its progress into ours)
        self.hasher = SourceHasher(context_dir)
        self.stage_images: list[str] = []          # by index: each built stage's image
        self.stage_names: dict[str, str] = {}      # by (lower-case) name
        self.tmp_containers: list[str] = []
        self.stages: list[Stage] = []
        self.cache = BuildCache(self.images, options.no_cache, options.cache_from)

    # -- the whole build ----------------------------------------------------------------
    async def build(self, stages: list[Stage], meta_args: list[ArgCommand]) -> str:
        self.stages = stages
        if self.options.labels:
            for key in sorted(self.options.labels):
                stages[-1].commands.append(new_label_command(key, self.options.labels[key]))
        total = len(meta_args) + len(stages) + sum(len(s.commands) for s in stages)
        step = 0
        build_args = BuildArgs(self.options.build_args)
        for meta in meta_args:
            step += 1
            await self._print_step(step, total, meta.code)
            meta = expansion.expand(meta, self.lexer, build_args.all_allowed())
            for arg in meta.args:
                build_args.add_arg(arg.key, arg.value)
                build_args.add_meta_arg(arg.key, arg.value)
        state = DispatchState(build_args.for_stage())
        for index, stage in enumerate(stages):
            if stage.name in self.stage_names:
                raise InstructionError(f"{stage.name} stage name already used")
            state = DispatchState(build_args.for_stage())
            step += 1
            await self._print_step(step, total, stage.code)
            await self._from(state, stage)
            await self.progress.out(f" ---> {short_id(state.image_id)}\n")
            for command in stage.commands:
                step += 1
                await self._print_step(step, total, command.code)
                await self._dispatch(state, command, index)
                await self.progress.out(f" ---> {short_id(state.image_id)}\n")
            if state.image_id:
                await self.progress.aux({"ID": state.image_id})
            build_args.merge_referenced(state.build_args)
            self.stage_images.append(state.image_id)
            if stage.name:
                self.stage_names[stage.name] = state.image_id
        unused = build_args.unused()
        if unused:
            await self.progress.out(
                f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed\n")
        if not state.image_id:
            raise errdefs.System("No image was generated. Is your Dockerfile empty?")
        return state.image_id

    async def _print_step(self, step: int, total: int, code: str) -> None:
        await self.progress.out(f"Step {step}/{total} : {code}")
        await self.progress.out("\n")

    # -- FROM -----------------------------------------------------------------------------
    async def _from(self, state: DispatchState, stage: Stage) -> None:
        stage = expansion.expand(stage, self.lexer, state.build_args.all_meta())
        name = stage.base_name
        by_name = self.stage_names.get(name.lower())
        if by_name is not None:
            image = self.images.images.get(by_name)
        elif name == SCRATCH:
            image = None
        else:
            image = await self._image(name, always_pull=self.options.pull)
        state.begin_stage(stage.name, image.id if image else "",
                          image.container_config if image else None)
        state.run_config["Image"] = state.image_id
        triggers = state.run_config.pop("OnBuild", None) or []
        if triggers:
            from dockyard.builder import parser

            plural = "s" if len(triggers) > 1 else ""
            await self.progress.out(f"# Executing {len(triggers)} build trigger{plural}\n")
            for trigger in triggers:
                state.run_config["Image"] = state.image_id
                ast = parser.parse(trigger).ast
                if len(ast.children) != 1:
                    raise InstructionError("onbuild trigger should be a single expression")
                await self._dispatch(state, parse_command(ast.children[0]),
                                     len(self.stage_images))

    async def _image(self, name: str, always_pull: bool = False) -> Image:
        """An image here by reference or ID (an ambiguous ID prefix counts as
        none, as in dockerd's GetImage); one that is not here is pulled, as
        is every base image with `pull`."""
        if always_pull:
            await self.pull(name)
        try:
            return self.images.get(name)
        except (errdefs.NotFound, errdefs.InvalidParameter):
            if always_pull:
                raise
        await self.pull(name)  # (its errors are the registry's, as dockerd's)
        return self.images.get(name)

    # -- one instruction ------------------------------------------------------------------
    async def _dispatch(self, state: DispatchState, command: Instruction, index: int) -> None:
        env = state.environment()
        command = expansion.expand(command, self.lexer, env)
        check_classic_builder_support(command)
        ok = False
        try:
            if isinstance(command, RunCommand):
                await self._run(state, command)
            elif isinstance(command, WorkdirCommand):
                await self._workdir(state, command)
            elif isinstance(command, (CopyCommand, AddCommand)):
                await self._copy(state, command, index)
            else:
                if isinstance(command, StopSignalCommand):
                    from dockyard.daemon.validate import parse_signal
                    parse_signal(command.signal)
                notes: list[str] = []
                text = apply_metadata(state, command, notes)
                for note in notes:
                    await self.progress.out(note)
                await self._commit(state, with_cmd_comment(state.run_config, text))
            ok = True
        finally:
            if self.options.force_rm or (self.options.rm and ok):
                await self._remove_containers()
        state.run_config["Image"] = state.image_id

    async def _commit(self, state: DispatchState, container_config: dict[str, Any]) -> None:
        """A metadata step: from the cache, or a container created to be
        committed. On `FROM scratch` with nothing yet, there is no image to
        make a container of, and the step is committed as it is."""
        if await self._probe(state, container_config):
            return
        if not state.image_id:
            await self._store(state, _no_layer, container_config, "")
            return
        cid = await self._create(container_config)
        await self._commit_container(state, cid, container_config)

    async def _probe(self, state: DispatchState, config: dict[str, Any]) -> bool:
        cached = self.cache.find(state.image_id, config)
        if cached is None:
            return False
        await self.progress.out(" ---> Using cache\n")
        state.image_id = cached
        return True

    # -- containers -----------------------------------------------------------------------
    async def _create(self, config: dict[str, Any]) -> str:
        options = self.options
        host_config = {
            "NetworkMode": options.network_mode if options.network_mode not in ("", "default")
            else "bridge",
            "LogConfig": {"Type": "none", "Config": {}},
            "ShmSize": options.shm_size,
            "ExtraHosts": options.extra_hosts or None,
            **options.resources,
        }
        body = {**copy.deepcopy(config), "HostConfig": host_config}
        created = await self.containers.create(body, None)
        cid = created["Id"]
        self.tmp_containers.append(cid)
        for warning in created.get("Warnings") or []:
            await self.progress.out(f" ---> [Warning] {warning}\n")
        await self.progress.out(f" ---> Running in {cid[:12]}\n")
        return cid

    async def _remove_containers(self) -> None:
        while self.tmp_containers:
            cid = self.tmp_containers.pop(0)
            try:
                await self.containers.remove(cid, force=True, volumes=True)
            except errdefs.NotFound:
                continue
            except errdefs.DockyardError as e:
                await self.progress.out(f"Removing intermediate container {cid[:12]}: {e}\n")
                continue
            await self.progress.out(f"Removing intermediate container {cid[:12]}\n")

    async def _commit_container(self, state: DispatchState, cid: str,
                                container_config: dict[str, Any], layer: bool = False,
                                created_with: bool = True) -> None:
        """Commit the step's container. When the container was created with
        the step's record itself (`created_with`: every step but RUN), the
        ContainerConfig shows what creating it filled in, as dockerd's does:
        the container's hostname, and labels {} for none."""
        c = self.containers.get(cid)
        if created_with:
            container_config = {**container_config, "Hostname": c.config.get("Hostname", ""),
                                "Labels": container_config.get("Labels") or {}}
        upper = self.images.snapshots.fs_path(cid)

        def write_layer(out: BinaryIO) -> int:
            return changes.layer_tar(upper, out, INIT_PATHS, INIT_DIRS) if layer else 0

        await self._store(state, write_layer, container_config, cid)

    async def _store(self, state: DispatchState, write_layer: Callable[[BinaryIO], int],
                     container_config: dict[str, Any], cid: str) -> None:
        config = copy.deepcopy(state.run_config)
        parent = self.images.images.get(state.image_id).config if state.image_id else None

        def build(diff_id: str) -> dict[str, Any]:
            return image_commit.child_config(parent, diff_id, config, cid, container_config,
                                             state.maintainer, "")

        image = await asyncio.to_thread(self.images.commit, state.image_id, write_layer, build,
                                        None)
        state.image_id = image.id

    # -- RUN ------------------------------------------------------------------------------
    async def _run(self, state: DispatchState, command: RunCommand) -> None:
        run_config = state.run_config
        cmd = resolve_cmd_line(command, run_config) or []
        build_args = state.build_args.filter_allowed(run_config.get("Env") or [])
        save_cmd = prepend_env_on_cmd(state.build_args, build_args, cmd) if build_args else cmd
        probe = {**copy.deepcopy(run_config), "Cmd": save_cmd, "ArgsEscaped": False}
        if save_cmd:
            probe["Entrypoint"] = None
        if await self._probe(state, probe):
            return
        if not state.image_id:
            # FROM scratch, nothing committed yet: no filesystem to run in
            raise errdefs.InvalidParameter(
                f'cannot RUN on an empty filesystem (FROM scratch): exec: "{cmd[0]}": '
                f'stat {cmd[0]}: no such file or directory' if cmd else "No command specified")
        config = {**copy.deepcopy(run_config), "Cmd": cmd, "ArgsEscaped": False,
                  "Env": list(run_config.get("Env") or []) + build_args,
                  "Healthcheck": {"Test": ["NONE"]}}
        if cmd:
            config["Entrypoint"] = [""]
        cid = await self._create(config)
        try:
            code = await self._run_container(cid)
        except (asyncio.CancelledError, ConnectionError, OSError):
            # The build was cancelled or its client left: as dockerd, the
            # command does not run on for nobody. (A container that could
            # not start stays, as dockerd leaves it, unless --force-rm.)
            self.tmp_containers.remove(cid)
            with contextlib.suppress(errdefs.DockyardError):
                await asyncio.shield(self.containers.remove(cid, force=True, volumes=True))
            raise
        if code != 0:
            raise RunFailed(f"The command '{' '.join(cmd)}' returned a non-zero code: {code}",
                            code)
        await self._commit_container(state, cid, probe, layer=True, created_with=False)

    async def _run_container(self, cid: str) -> int:
        """Start the container with its output streamed into the build's, and
        wait for it to end; its exit code."""
        from dockyard.runtime.shimclient import read_frame

        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        attach = asyncio.ensure_future(self.containers.shim_for_attach(cid, ready))
        waiter = self.containers.register_wait(cid, "next-exit")
        relay: asyncio.Task | None = None
        try:
            start = asyncio.ensure_future(self.containers.start(cid))
            done, _ = await asyncio.wait([attach, start], return_when=asyncio.FIRST_COMPLETED)
            if attach in done:
                if attach.exception() is not None:
                    await start  # the start's own error (the runtime's), not the attach's
                shim = attach.result()
                reader, writer = await shim.attach(stdin=False, stdout=True, stderr=True)
                if not ready.done():
                    ready.set_result(None)

                async def pump() -> None:
                    decoders = {1: codecs.getincrementaldecoder("utf-8")("replace"),
                                2: codecs.getincrementaldecoder("utf-8")("replace")}
                    try:
                        while (frame := await read_frame(reader)) is not None:
                            stream, data = frame
                            text = decoders.get(stream, decoders[1]).decode(data)
                            if text:
                                await (self.progress.err(text) if stream == 2
                                       else self.progress.out(text))
                    finally:
                        writer.close()

                relay = asyncio.ensure_future(pump())
            await start
            if relay is not None:
                await relay
            return await waiter
        finally:
            if not ready.done():
                ready.set_result(None)
            attach.cancel()
            if relay is not None and not relay.done():
                relay.cancel()

    # -- WORKDIR --------------------------------------------------------------------------
    async def _workdir(self, state: DispatchState, command: WorkdirCommand) -> None:
        from dockyard.linux import inroot

        config = state.run_config
        config["WorkingDir"] = normalize_workdir(config.get("WorkingDir") or "", command.path)
        container_config = with_cmd_comment_string(config, "WORKDIR " + config["WorkingDir"])
        if await self._probe(state, container_config):
            return
        def make(root: str) -> None:
            rootfd = inroot.open_root(root)
            try:
                os.close(inroot.make_dirs(rootfd, config["WorkingDir"], 0o755, (0, 0)))
            finally:
                os.close(rootfd)

        if not state.image_id:
            await self._snapshot_layer(state, make, container_config)
            return
        cid = await self._create(container_config)

        def make_in_container() -> None:
            with self.containerfs.snapshot_mounted(cid) as root:
                make(root)

        await asyncio.to_thread(make_in_container)
        await self._commit_container(state, cid, container_config, layer=True)

    # -- COPY, ADD --------------------------------------------------------------------------
    async def _copy(self, state: DispatchState, command: CopyCommand | AddCommand,
                    index: int) -> None:
        from dockyard.daemon import buildcopy

        name = "ADD" if isinstance(command, AddCommand) else "COPY"
        from_ = command.from_ if isinstance(command, CopyCommand) else ""
        async with self._source_root(from_, index) as (root, hasher), \
                self._downloads(command if name == "ADD" else None) as downloaded:
            infos = await asyncio.to_thread(buildcopy.copy_infos, name, root,
                                            command.source_paths, hasher, downloaded)
            buildcopy.check_dest(name, infos, command.dest_path)
            text = copy_comment(name, buildcopy.source_hash(infos), command.dest_path,
                                command.chown)
            container_config = with_cmd_comment_string(state.run_config, text)
            if await self._probe(state, container_config):
                return
            dest = normalize_dest(state.run_config.get("WorkingDir") or "", command.dest_path)
            chown, preserve, decompress = command.chown, bool(from_), name == "ADD"

            def fill(root: str) -> None:
                identity = buildcopy.parse_chown(chown, root) if chown else \
                    (None if preserve else (0, 0))
                for info in infos:
                    buildcopy.perform_copy(root, dest, info, identity, decompress)

            await self._snapshot_layer(state, fill, container_config)

    async def _snapshot_layer(self, state: DispatchState, fill: Callable[[str], None],
                              container_config: dict[str, Any]) -> None:
        """A step that writes files without running anything: a snapshot of
        its own on the current image, filled by `fill(root)` in a worker
        thread, its upper dir committed as the layer, then removed."""
        key = SCRATCH_PREFIX + secrets.token_hex(16)
        parent = self.images.images.get(state.image_id).top_chain if state.image_id else None
        snapshots = self.images.snapshots
        await asyncio.to_thread(snapshots.prepare, key, parent, {"build": key})
        try:
            def run() -> None:
                with self.containerfs.snapshot_mounted(key) as root:
                    fill(root)

            await asyncio.to_thread(run)
            upper = snapshots.fs_path(key)
            await self._store(state, lambda out: changes.layer_tar(upper, out), container_config,
                              "")
        finally:
            await asyncio.to_thread(snapshots.remove, key)

    @contextlib.asynccontextmanager
    async def _downloads(self, command: AddCommand | None):
        """ADD's URL sources, each fetched into a directory of its own for
        the step: {url: path}."""
        from dockyard.daemon import buildremote

        urls = [p for p in command.source_paths if buildremote.is_url(p)] if command else []
        if not urls:
            yield {}
            return
        scratch = tempfile.mkdtemp(dir=os.path.dirname(self.context_dir), prefix="add-")
        try:
            fetched = {}
            for n, url in enumerate(urls):
                folder = os.path.join(scratch, str(n))
                os.mkdir(folder)
                fetched[url] = await buildremote.download(url, folder)
                await self.progress.out("\n")  # (where dockerd's download progress ends)
            yield fetched
        finally:
            await asyncio.to_thread(shutil.rmtree, scratch, True)

    @contextlib.asynccontextmanager
    async def _source_root(self, from_: str, index: int):
        """Where COPY's sources are: the context, or the files of an earlier
        stage or of an image (`--from`), mounted read-only for the step."""
        if not from_:
            yield self.context_dir, self.hasher
            return
        try:
            stage = find_stage(self.stages, from_, index)
        except InstructionError as e:
            raise InstructionError(f"invalid from flag value {from_}: {e}") from None
        image = self.images.images.get(self.stage_images[stage]) if stage is not None \
            else await self._image(from_)
        key = SCRATCH_PREFIX + secrets.token_hex(16)
        snapshots = self.images.snapshots
        await asyncio.to_thread(snapshots.view, key, image.top_chain, {"build": key})
        try:
            target = await asyncio.to_thread(self.containerfs.mount_snapshot, key)
            try:
                yield target, SourceHasher(target, image=True)
            finally:
                await asyncio.to_thread(self.containerfs.unmount_snapshot, target)
        finally:
            await asyncio.to_thread(snapshots.remove, key)


def _no_layer(out: BinaryIO) -> int:
    return 0


@dataclass
class Dockerfile:
    stages: list[Stage]
    meta_args: list[ArgCommand]
    escape_token: str
    warnings: list[str]


def read_dockerfile(context_dir: str, name: str, target: str) -> Dockerfile:
    """The Dockerfile the build names, parsed into stages up to `target`;
    then the Dockerfile and .dockerignore are removed from the context if
    the .dockerignore excludes them. Errors here come before any output."""
    from dockyard.builder import context, parser
    from dockyard.builder.instructions import parse_stages, stage_index

    located = context.locate_dockerfile(context_dir, name)
    with open(located.path, "rb") as f:
        try:
            result = parser.parse(f.read())
        except parser.DockerfileParseError as e:
            raise errdefs.InvalidParameter(f"failed to parse {located.name}: {e}") from e
    context.remove_build_files(context_dir, located.name)
    stages, meta_args = parse_stages(result.ast, check_names=False)
    if not stages:
        raise errdefs.InvalidParameter("no build stage in current context")
    if target:
        index = stage_index(stages, target)
        if index is None:
            raise errdefs.InvalidParameter(f"failed to reach build target {target} in Dockerfile")
        stages = stages[:index + 1]
    return Dockerfile(stages, meta_args, result.escape_token, result.warning_lines())
