"""Pull (`POST /images/create?fromImage=`), push (`POST /images/{name}/push`)
and login (`POST /auth`).

Pull and push answer with dockerd's JSON progress stream. As dockerd's
WriteFlusher does, the status line waits for the first message: an error
before it (a bad reference, an unknown manifest, no credentials) is the
response's HTTP status and `{"message"}`; an error after it is the stream's
last message, under a 200 already sent.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Callable

from aiohttp import web

from dockyard import errdefs
from dockyard.api.app import Router, json_body, json_line, json_response
from dockyard.api.routes.images import stream_error
from dockyard.distribution.authconfig import AuthConfig, decode_header

Operation = Callable[[Callable[[dict], None], threading.Event], None]


def _service(request: web.Request):
    return request.app["daemon"].distribution


async def progress_stream(request: web.Request, run: Operation) -> web.StreamResponse:
    """Run `run(emit, cancelled)` in a worker thread and stream what it emits.

    A client that goes away sets `cancelled`: the worker stops at its next
    chunk or message (and undoes what it must); nothing is left to answer.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    cancelled = threading.Event()
    done = object()

    def emit(message: dict) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, message)

    async def work() -> None:
        try:
            await asyncio.to_thread(run, emit, cancelled)
        finally:
            queue.put_nowait(done)  # after every message emitted before it

    task = asyncio.create_task(work())
    # Its outcome is read below, unless the client left first: then it is
    # only the worker noticing, not worth a "never retrieved" warning.
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    response: web.StreamResponse | None = None
    try:
        while (message := await queue.get()) is not done:
            if response is None:
                response = web.StreamResponse(headers={"Content-Type": "application/json"})
                await response.prepare(request)
            await response.write(json_line(message))
        try:
            await task
        except Exception as e:  # noqa: BLE001 - after the first message, errors are stream messages
            if response is None:
                raise
            await response.write(json_line(stream_error(e)))
        if response is None:
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await response.prepare(request)
        await response.write_eof()
    except (ConnectionError, asyncio.CancelledError):
        cancelled.set()  # the client went away: stop downloading for nobody
        if response is None:
            raise
    finally:
        if not task.done():
            cancelled.set()
    return response


async def pull(request: web.Request) -> web.StreamResponse:
    """The `fromImage` half of POST /images/create."""
    svc = _service(request)
    creds = decode_header(request.headers.get("X-Registry-Auth", ""))
    image, tag = request.query.get("fromImage", ""), request.query.get("tag", "")
    platform = request.query.get("platform", "")

    def run(emit, cancelled):
        svc.pull(image, tag, platform, creds, emit, cancelled)

    return await progress_stream(request, run)


async def push(request: web.Request) -> web.StreamResponse:
    svc = _service(request)
    header = request.headers.get("X-Registry-Auth", "")
    if header:
        creds = decode_header(header)
    else:
        # The old form: credentials as the body, required when there is no header.
        raw = await request.read()
        try:
            creds = AuthConfig.from_dict(json.loads(raw))
        except ValueError as e:
            reason = "EOF" if not raw.strip() else str(e)
            raise errdefs.InvalidParameter(
                f"Bad parameters and missing X-Registry-Auth: {reason}") from e
    name, tag = request.match_info["name"], request.query.get("tag", "")

    def run(emit, cancelled):
        svc.push(name, tag, creds, emit, cancelled)

    return await progress_stream(request, run)


async def auth(request: web.Request) -> web.Response:
    svc = _service(request)
    creds = AuthConfig.from_dict(await json_body(request))
    return json_response(await asyncio.to_thread(svc.login, creds))


async def search(request: web.Request) -> web.Response:
    """Docker Hub's search API is not part of the distribution spec, and
    this engine speaks only the spec to registries."""
    raise errdefs.NotImplemented(
        "search is not supported by this engine: registries are reached through the "
        "distribution API, which has no search (a registry lists its repositories at "
        "GET /v2/_catalog)")


def register(router: Router) -> None:
    router.add("GET", "/images/search", search)
    router.add("POST", "/images/{name:.+}/push", push)
    router.add("POST", "/auth", auth)
