"""POST /build (the classic builder, `version=1`) and POST /build/prune.

The request's query is read as dockerd's newImageBuildOptions reads it,
with its errors; the body, the build context, is unpacked to disk as it
arrives (never held in memory), then the Dockerfile is read. Errors up to
there are HTTP errors; from the first step on, the answer is a 200 stream of
JSON messages and an error is its last message, as dockerd writes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import tempfile
from typing import Any

from aiohttp import web

from dockyard import errdefs
from dockyard.api.app import Router, json_line, json_response, query_bool
from dockyard.api.routes.images import stream_error
from dockyard.image import reference

log = logging.getLogger(__name__)

_RESOURCES = (("memory", "Memory"), ("memswap", "MemorySwap"), ("cpushares", "CpuShares"),
              ("cpuperiod", "CpuPeriod"), ("cpuquota", "CpuQuota"))


def _json_query(request: web.Request, name: str, what: str, kind: type) -> Any:
    text = request.query.get(name, "")
    if not text:
        return kind()
    try:
        value = json.loads(text)
    except ValueError as e:
        raise errdefs.InvalidParameter(f"error reading {what}: {e}") from e
    if not isinstance(value, kind):
        raise errdefs.InvalidParameter(f"error reading {what}: expected a JSON {kind.__name__}")
    return value


def _int_query(request: web.Request, name: str) -> int:
    text = request.query.get(name, "")
    if not text:
        return 0
    try:
        return int(text)
    except ValueError:
        raise errdefs.InvalidParameter(
            f'strconv.ParseInt: parsing "{text}": invalid syntax') from None


def _tags(request: web.Request) -> list[reference.Reference]:
    """Each `t`, as sanitizeRepoAndTags: normalized, `:latest` added, no
    digest, duplicates dropped."""
    out: list[reference.Reference] = []
    for text in request.query.getall("t", []):
        if not text:
            continue
        try:
            ref = reference.parse_normalized(text)
        except reference.ReferenceError as e:
            raise errdefs.System(str(e)) from e
        if ref.digest:
            raise errdefs.System("build tag cannot contain a digest")
        ref = ref.tagged_or_latest()
        if ref not in out:
            out.append(ref)
    return out


def options(request: web.Request):
    from dockyard.daemon.build import BuildOptions

    q = request.query
    version = q.get("version", "")
    if version not in ("", "1"):
        if version == "2":
            raise errdefs.InvalidParameter("buildkit not supported by daemon")
        raise errdefs.System(f'invalid version "{version}"')
    if q.getall("securityopt", []):
        raise errdefs.InvalidParameter(
            "The daemon on this platform does not support setting security options on build")
    if query_bool(request, "squash"):
        raise errdefs.InvalidParameter("squash is only supported with experimental mode")
    isolation = q.get("isolation", "")
    if isolation and isolation.lower() != "default":
        raise errdefs.InvalidParameter(f"Invalid isolation: {isolation}")
    force_rm = query_bool(request, "forcerm")
    rm = True if force_rm or q.get("rm", "") == "" else query_bool(request, "rm")
    build_args = _json_query(request, "buildargs", "build args", dict)
    labels = _json_query(request, "labels", "labels", dict)
    cache_from = _json_query(request, "cachefrom", "cache-from", list)
    resources = {key: _int_query(request, name) for name, key in _RESOURCES
                 if q.get(name)}
    for name, key in (("cpusetcpus", "CpusetCpus"), ("cpusetmems", "CpusetMems"),
                      ("cgroupparent", "CgroupParent")):
        if q.get(name):
            resources[key] = q[name]
    ulimits = _json_query(request, "ulimits", "ulimit settings", list)
    if ulimits:
        resources["Ulimits"] = ulimits
    return BuildOptions(
        tags=_tags(request), build_args=build_args, labels=labels, target=q.get("target", ""),
        no_cache=query_bool(request, "nocache"), pull=query_bool(request, "pull"), rm=rm,
        force_rm=force_rm,
        network_mode=q.get("networkmode", ""), cache_from=cache_from,
        shm_size=_int_query(request, "shmsize"),
        extra_hosts=[h for v in q.getall("extrahosts", []) for h in v.split(",") if h],
        resources=resources)


class _Body:
    """The request body as a blocking reader, for the unpacker's thread."""

    def __init__(self, request: web.Request, loop: asyncio.AbstractEventLoop):
        self._content = request.content
        self._loop = loop

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        coro = self._content.read(n if n and n > 0 else -1)
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def close(self) -> None:
        pass


async def build(request: web.Request) -> web.StreamResponse:
    from dockyard.builder import context
    from dockyard.daemon.build import Builder, Progress, RunFailed, read_dockerfile
    from dockyard.daemon.images import short_id

    daemon = request.app["daemon"]
    opts = options(request)
    remote = request.query.get("remote", "")
    if remote == "client-session":
        raise errdefs.InvalidParameter("client-session contexts need BuildKit, which this "
                                       "engine does not have")
    quiet = query_bool(request, "q")
    # (a directory of its own: downloads for the build go beside the context)
    context_dir = os.path.join(tempfile.mkdtemp(dir=daemon.layout.tmp, prefix="build-"),
                               "context")
    os.mkdir(context_dir)
    try:
        if remote:
            from dockyard.daemon.buildremote import fetch_context
            await fetch_context(remote, context_dir, request.query.get("dockerfile", ""))
        else:
            body = _Body(request, asyncio.get_running_loop())
            await asyncio.to_thread(context.receive, body, context_dir)
        dockerfile = await asyncio.to_thread(read_dockerfile, context_dir,
                                             request.query.get("dockerfile", ""), opts.target)

        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        held: list[dict[str, Any]] = []

        async def write(message: dict[str, Any]) -> None:
            await response.write(json_line(message, go_escapes=True))

        async def send(message: dict[str, Any]) -> None:
            if quiet:
                held.append(message)
            else:
                await write(message)

        progress = Progress(send)
        for line in dockerfile.warnings:
            await progress.err(line + "\n")
        builder = Builder(daemon.containers, daemon.containerfs, opts, context_dir,
                          dockerfile.escape_token, progress,
                          _puller(request, daemon.distribution, send))
        try:
            image_id = await _unless_client_leaves(
                request, builder.build(dockerfile.stages, dockerfile.meta_args))
            for ref in opts.tags:
                daemon.images.tag(image_id, ref.familiar(), None)
        except _ClientLeft:
            return response
        except Exception as e:  # noqa: BLE001 - reported in the stream, as dockerd does
            for message in held:
                await write(message)
            error = stream_error(e)
            if isinstance(e, RunFailed):
                error["errorDetail"]["code"] = e.code
            await write(error)
        else:
            if quiet:
                await write({"stream": image_id + "\n"})
            else:
                await write({"stream": f"Successfully built {short_id(image_id)}\n"})
                for ref in opts.tags:
                    await write({"stream": f"Successfully tagged {ref.familiar()}\n"})
        await response.write_eof()
        return response
    finally:
        await asyncio.to_thread(shutil.rmtree, os.path.dirname(context_dir), True)


def _puller(request: web.Request, distribution, send):
    """How the build pulls a base image it does not have: through the
    daemon's pull, with the credentials of X-Registry-Config (the client's
    auths by registry), its progress messages into the build's stream."""
    import threading

    from dockyard.distribution.authconfig import AuthConfig, decode_config_header

    configs = decode_config_header(request.headers.get("X-Registry-Config", ""))
    loop = asyncio.get_running_loop()

    async def pull(name: str) -> None:
        try:
            ref = reference.parse_normalized(name)
        except reference.ReferenceError as e:
            raise errdefs.InvalidParameter(str(e)) from e
        key = "https://index.docker.io/v1/" if ref.domain == "docker.io" else ref.domain
        creds = configs.get(key) or AuthConfig()
        cancelled = threading.Event()

        def emit(message: dict[str, Any]) -> None:
            asyncio.run_coroutine_threadsafe(send(message), loop).result()

        try:
            await asyncio.to_thread(distribution.pull, ref.familiar_name,
                                    ref.digest or ref.tag or "latest", "", creds, emit, cancelled)
        finally:
            cancelled.set()

    return pull


class _ClientLeft(Exception):
    pass


async def _unless_client_leaves(request: web.Request, work):
    """Run `work`; cancel it if the client goes away (dockerd cancels the
    build, and a running step's container is removed). aiohttp does not
    cancel handlers, and a step may print nothing for long: the connection
    is looked at a few times a second."""
    task = asyncio.ensure_future(work)

    async def gone() -> None:
        while request.transport is not None and not request.transport.is_closing():
            await asyncio.sleep(0.25)

    watcher = asyncio.ensure_future(gone())
    try:
        await asyncio.wait([task, watcher], return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise _ClientLeft
    return task.result()


async def prune_build_cache(request: web.Request) -> web.Response:
    """The classic builder's cache is the images it made (builder/imagecache.py):
    they go with `image prune -a`; there is no separate cache to remove."""
    return json_response({"CachesDeleted": None, "SpaceReclaimed": 0})


def register(router: Router) -> None:
    router.add("POST", "/build", build)
    router.add("POST", "/build/prune", prune_build_cache)
