"""A container's files: /containers/{id}/archive (HEAD, GET, PUT), /changes,
/export, and POST /commit (daemon/containerfs.py, daemon/commit.py)."""

from __future__ import annotations

import json
import logging
import os

from aiohttp import web

from dockyard import errdefs
from dockyard.api.app import Router, json_response, query_bool
from dockyard.daemon.containerfs import stat_header

STAT_HEADER = "X-Docker-Container-Path-Stat"
log = logging.getLogger(__name__)


def _fs(request: web.Request):
    return request.app["daemon"].containerfs


def _path(request: web.Request) -> str:
    path = request.query.get("path", "")
    if not path:
        raise errdefs.InvalidParameter("bad parameter: path cannot be empty")
    return path


async def stat_path(request: web.Request) -> web.Response:
    stat = await _fs(request).stat(request.match_info["id"], _path(request))
    return web.Response(status=200, headers={STAT_HEADER: stat_header(stat)})


async def get_archive(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/x-tar"})

    async def start(stat: dict) -> None:
        response.headers[STAT_HEADER] = stat_header(stat)
        await response.prepare(request)

    return await _send(request, response,
                       _fs(request).archive(request.match_info["id"], _path(request), start))


async def _send(request: web.Request, response: web.StreamResponse, chunks) -> web.StreamResponse:
    """Stream a tar. An error before the first byte is an error response; one
    after it can only cut the connection, which tar readers notice."""
    try:
        async for chunk in chunks:
            await response.write(chunk)
    except Exception:
        if not response.prepared:
            raise
        log.warning("tar stream for %s cut short", request.path, exc_info=True)
        if request.transport is not None:
            request.transport.close()
        return response
    finally:
        await chunks.aclose()
    try:
        await response.write_eof()
    except ConnectionError:
        pass  # a tar reader may hang up once it has read the end-of-archive blocks
    return response


async def put_archive(request: web.Request) -> web.Response:
    from dockyard.api.routes.images import spool_body

    fs = _fs(request)
    ref, path = request.match_info["id"], _path(request)
    fs.containers.get(ref)  # before the upload: a missing container is a 404 at once
    # noOverwriteDirNonDir only when asked for (docker's CLI always asks).
    no_overwrite = "noOverwriteDirNonDir" in request.query and \
        query_bool(request, "noOverwriteDirNonDir")
    spooled = await spool_body(request, fs.containers.images.layout.tmp)
    try:
        await fs.extract(ref, path, spooled, query_bool(request, "copyUIDGID"), no_overwrite)
    finally:
        os.unlink(spooled)
    return web.Response(status=200)


async def changes(request: web.Request) -> web.Response:
    return json_response(await _fs(request).changes(request.match_info["id"]) or None)


async def export(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/x-tar"})

    async def start() -> None:
        await response.prepare(request)

    return await _send(request, response, _fs(request).export(request.match_info["id"], start))


async def commit(request: web.Request) -> web.Response:
    from dockyard.daemon.commit import commit as commit_container

    raw = await request.read()
    config = None
    if raw.strip():
        try:
            body = json.loads(raw)
        except json.JSONDecodeError as e:
            raise errdefs.InvalidParameter(f"invalid JSON: {e}") from e
        if body is not None and not isinstance(body, dict):
            raise errdefs.InvalidParameter("invalid JSON: expected an object")
        if body is not None:
            config = {k: v for k, v in body.items() if k not in ("HostConfig",
                                                                   "NetworkingConfig")}
    q = request.query
    image_id = await commit_container(
        _fs(request), q.get("container", ""), q.get("repo", ""), q.get("tag", ""),
        q.get("author", ""), q.get("comment", ""),
        # dockerd: pause unless asked not to (an empty value pauses too)
        not q.get("pause") or query_bool(request, "pause"), q.getall("changes", []), config)
    return json_response({"Id": image_id}, status=201)


def register(router: Router) -> None:
    router.add("HEAD", "/containers/{id}/archive", stat_path)
    router.add("GET", "/containers/{id}/archive", get_archive)
    router.add("PUT", "/containers/{id}/archive", put_archive)
    router.add("GET", "/containers/{id}/changes", changes)
    router.add("GET", "/containers/{id}/export", export)
    router.add("POST", "/commit", commit)
