"""/images: list, inspect, history, tag, delete, prune, load, save, import."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile

from aiohttp import web

from dockyard import errdefs
from dockyard.api import filters
from dockyard.api.app import Router, json_line, json_response, query_bool

CHUNK = 1 << 20

log = logging.getLogger(__name__)


def _service(request: web.Request):
    return request.app["daemon"].images


async def spool_body(request: web.Request, directory: str) -> str:
    """Write the request body to a temp file; the caller unlinks it.

    Archives are read with random access (manifest.json may come last), and
    the blocking store code then reads a plain file in a worker thread.
    """
    fd, path = tempfile.mkstemp(dir=directory, prefix="upload-")
    try:
        with os.fdopen(fd, "wb") as f:
            while chunk := await request.content.read(CHUNK):
                f.write(chunk)
    except BaseException:
        os.unlink(path)
        raise
    return path


async def json_lines(request: web.Request, messages: list[dict]) -> web.StreamResponse:
    """A JSON message stream, one message a line, as Go's encoder writes them."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    for message in messages:
        await response.write(json_line(message))
    await response.write_eof()
    return response


def stream_error(err: BaseException) -> dict:
    """An error as the last message of a stream (moby's streamformatter.FormatError):
    the status is already 200, so clients read it from here."""
    if not isinstance(err, errdefs.DockyardError):
        log.error("unexpected error", exc_info=err)
    message = str(err) or type(err).__name__
    return {"errorDetail": {"message": message}, "error": message}


async def list_images(request: web.Request) -> web.Response:
    svc = _service(request)
    f = filters.parse(request.query.get("filters"))
    if request.query.get("filter"):  # API < 1.28: a reference pattern
        f.setdefault("reference", []).append(request.query["filter"])
    return json_response(await asyncio.to_thread(svc.list, f, query_bool(request, "all")))


async def inspect_image(request: web.Request) -> web.Response:
    svc = _service(request)
    return json_response(await asyncio.to_thread(svc.inspect, request.match_info["name"]))


async def image_history(request: web.Request) -> web.Response:
    svc = _service(request)
    return json_response(await asyncio.to_thread(svc.history, request.match_info["name"]))


async def tag_image(request: web.Request) -> web.Response:
    svc = _service(request)
    await asyncio.to_thread(svc.tag, request.match_info["name"], request.query.get("repo", ""),
                            request.query.get("tag", ""))
    return web.Response(status=201)


async def delete_image(request: web.Request) -> web.Response:
    svc = _service(request)
    result = await asyncio.to_thread(svc.delete, request.match_info["name"],
                                     query_bool(request, "force"))
    return json_response(result)


async def prune_images(request: web.Request) -> web.Response:
    svc = _service(request)
    f = filters.parse(request.query.get("filters"))
    return json_response(await asyncio.to_thread(svc.prune, f))


async def load_images(request: web.Request) -> web.StreamResponse:
    """As dockerd's postImagesLoad: once the archive is received the answer is
    200, and a failed load is the stream's error message (docker-py raises
    ImageLoadError, the docker CLI prints the message alone)."""
    svc = _service(request)
    path = await spool_body(request, svc.layout.tmp)
    try:
        lines = await asyncio.to_thread(svc.load_file, path)
        messages = [{"stream": line + "\n"} for line in lines]
    except Exception as e:  # noqa: BLE001 - every failure goes into the stream
        messages = [stream_error(e)]
    finally:
        os.unlink(path)
    return await json_lines(request, messages)


async def save_images(request: web.Request) -> web.StreamResponse:
    svc = _service(request)
    names = request.query.getall("names", []) if "name" not in request.match_info \
        else [request.match_info["name"]]
    if not names:
        raise errdefs.InvalidParameter("no images specified")
    selection = await asyncio.to_thread(svc.resolve_for_save, names)
    fd, path = tempfile.mkstemp(dir=svc.layout.tmp, prefix="save-")
    try:
        with os.fdopen(fd, "w+b") as f:
            await asyncio.to_thread(svc.save, selection, f)
            f.seek(0)
            response = web.StreamResponse(headers={"Content-Type": "application/x-tar"})
            await response.prepare(request)
            while chunk := await asyncio.to_thread(f.read, CHUNK):
                await response.write(chunk)
            await response.write_eof()
            return response
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


async def create_image(request: web.Request) -> web.StreamResponse:
    """`fromSrc=-` imports the body; `fromImage` pulls from a registry."""
    svc = _service(request)
    src = request.query.get("fromSrc")
    if src is None:
        if not request.query.get("fromImage", ""):
            raise errdefs.InvalidParameter("fromImage or fromSrc is required")
        from dockyard.api.routes import distribution
        return await distribution.pull(request)
    if src != "-":
        raise errdefs.NotImplemented("import from a URL is not supported; pipe the file to '-'")
    changes = request.query.getall("changes", [])
    path = await spool_body(request, svc.layout.tmp)
    try:
        def run():
            with open(path, "rb") as f:
                return svc.import_(f, request.query.get("repo", ""), request.query.get("tag", ""),
                                   changes, request.query.get("message", ""),
                                   request.query.get("platform", ""))
        image = await asyncio.to_thread(run)
    finally:
        os.unlink(path)
    return await json_lines(request, [{"status": image.id}])


def register(router: Router) -> None:
    router.add("GET", "/images/json", list_images)
    router.add("POST", "/images/load", load_images)
    router.add("GET", "/images/get", save_images)
    router.add("POST", "/images/create", create_image)
    router.add("POST", "/images/prune", prune_images)
    router.add("GET", "/images/{name:.+}/json", inspect_image)
    router.add("GET", "/images/{name:.+}/history", image_history)
    router.add("GET", "/images/{name:.+}/get", save_images)
    router.add("POST", "/images/{name:.+}/tag", tag_image)
    router.add("DELETE", "/images/{name:.+}", delete_image)
