"""/containers: create, start, stop, kill, wait, attach, logs, list, inspect, remove."""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct

from aiohttp import web

from dockyard import errdefs
from dockyard.api import filters
from dockyard.api.app import Router, json_response, query_bool
from dockyard.api.hijack import RAW_STREAM, hijack, send_headers_now


def _svc(request: web.Request):
    return request.app["daemon"].containers


def _views():
    from dockyard.daemon import containerviews
    return containerviews


async def _json_body(request: web.Request) -> dict:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as e:
        raise errdefs.InvalidParameter(f"invalid JSON: {e}") from e
    if not isinstance(body, dict):
        raise errdefs.InvalidParameter("invalid JSON: expected an object")
    return body


def _int_query(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise errdefs.InvalidParameter(f"invalid value for {name}: {value!r}") from None


async def create(request: web.Request) -> web.Response:
    body = await _json_body(request)
    result = await _svc(request).create(body, request.query.get("name"))
    return json_response(result, status=201)


async def list_containers(request: web.Request) -> web.Response:
    svc = _svc(request)
    f = filters.parse(request.query.get("filters"))
    size = query_bool(request, "size")
    selected = _views().select(svc, f, query_bool(request, "all"), _int_query(request, "limit") or 0,
                               request.query.get("before"), request.query.get("since"))
    if size:
        return json_response(await asyncio.to_thread(
            lambda: [_views().summary(svc, c, True) for c in selected]))
    return json_response([_views().summary(svc, c) for c in selected])


async def inspect(request: web.Request) -> web.Response:
    svc = _svc(request)
    c = svc.get(request.match_info["id"])
    return json_response(await asyncio.to_thread(_views().inspect, svc, c,
                                                 query_bool(request, "size")))


async def start(request: web.Request) -> web.Response:
    await _svc(request).start(request.match_info["id"])
    return web.Response(status=204)


async def stop(request: web.Request) -> web.Response:
    await _svc(request).stop(request.match_info["id"], _int_query(request, "t"),
                             request.query.get("signal") or None)
    return web.Response(status=204)


async def restart(request: web.Request) -> web.Response:
    await _svc(request).restart(request.match_info["id"], _int_query(request, "t"))
    return web.Response(status=204)


async def kill(request: web.Request) -> web.Response:
    name = request.match_info["id"]
    try:
        await _svc(request).kill(name, request.query.get("signal") or None)
    except errdefs.InvalidParameter:
        raise  # a bad signal is refused as it is, before the container is looked up
    except errdefs.DockyardError as e:
        raise type(e)(f"Cannot kill container: {name}: {e}") from e
    return web.Response(status=204)


async def pause(request: web.Request) -> web.Response:
    await _svc(request).pause(request.match_info["id"])
    return web.Response(status=204)


async def unpause(request: web.Request) -> web.Response:
    await _svc(request).unpause(request.match_info["id"])
    return web.Response(status=204)


async def remove(request: web.Request) -> web.Response:
    await _svc(request).remove(request.match_info["id"], query_bool(request, "force"),
                               query_bool(request, "v"))
    return web.Response(status=204)


async def rename(request: web.Request) -> web.Response:
    await _svc(request).rename(request.match_info["id"], request.query.get("name", ""))
    return web.Response(status=204)


async def wait(request: web.Request) -> web.StreamResponse:
    """The headers go out as soon as the wait is registered (as dockerd does):
    the docker CLI starts the container only after it has them."""
    fut = _svc(request).register_wait(request.match_info["id"],
                                      request.query.get("condition") or "not-running")
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    send_headers_now(response)
    code = await fut
    with contextlib.suppress(ConnectionError):  # the client may have given up waiting
        await response.write((json.dumps({"Error": None, "StatusCode": code}) + "\n").encode())
        await response.write_eof()
    return response


async def attach(request: web.Request) -> web.StreamResponse:
    svc = _svc(request)
    c = svc.get(request.match_info["id"])
    want_stdin = query_bool(request, "stdin")
    want_stdout = query_bool(request, "stdout")
    want_stderr = query_bool(request, "stderr")
    tty = bool(c.config.get("Tty"))
    if c.paused:
        raise errdefs.Conflict("You cannot attach to a paused container, unpause it first")
    raw = await hijack(request, RAW_STREAM)
    svc.emit(c, "attach")
    ready = asyncio.get_running_loop().create_future()
    waiting = asyncio.create_task(svc.shim_for_attach(c.id, ready))
    gone = asyncio.create_task(raw.closed.wait())
    try:
        # Until the container starts, the only thing to notice is the client leaving.
        await asyncio.wait([waiting, gone], return_when=asyncio.FIRST_COMPLETED)
        if not waiting.done():
            waiting.cancel()
            return web.Response(status=101)
        try:
            shim = waiting.result()
            reader, writer = await shim.attach(
                stdin=want_stdin and bool(c.config.get("OpenStdin")),
                stdout=want_stdout, stderr=want_stderr,
                stdin_once=bool(c.config.get("StdinOnce")))
        except (errdefs.DockyardError, ConnectionError, OSError):
            raw.close()
            return web.Response(status=101)
    finally:
        gone.cancel()
        if not ready.done():
            ready.set_result(None)
    await relay(raw, reader, writer, tty, want_stdin)
    return web.Response(status=101)  # already sent; aiohttp needs a return value


async def relay(raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tty: bool,
                with_stdin: bool) -> None:
    """Copy the shim's frames to the client (headers stripped for a TTY) and the
    client's bytes to the shim, until the shim closes the output side."""

    async def to_client():
        while True:
            try:
                header = await reader.readexactly(8)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            size = struct.unpack(">I", header[4:])[0]
            payload = await reader.readexactly(size) if size else b""
            raw.write(payload if tty else header + payload)

    async def to_shim():
        try:
            while chunk := await raw.reader.read(65536):
                if with_stdin:
                    writer.write(chunk)
                    await writer.drain()
            if with_stdin and writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            pass

    output = asyncio.create_task(to_client())
    inbound = asyncio.create_task(to_shim())
    try:
        await output
    finally:
        inbound.cancel()
        with contextlib.suppress(Exception):
            writer.close()
        raw.close()


async def logs(request: web.Request) -> web.StreamResponse:
    from dockyard.api.routes.containerlogs import stream_logs
    return await stream_logs(request, _svc(request))


async def prune(request: web.Request) -> web.Response:
    f = filters.parse(request.query.get("filters"))
    return json_response(await _svc(request).prune(f))


async def resize(request: web.Request) -> web.Response:
    await _svc(request).resize(request.match_info["id"], _int_query(request, "h") or 0,
                               _int_query(request, "w") or 0)
    return web.Response(status=200)


def register(router: Router) -> None:
    router.add("POST", "/containers/create", create)
    router.add("GET", "/containers/json", list_containers)
    router.add("POST", "/containers/prune", prune)
    router.add("GET", "/containers/{id}/json", inspect)
    router.add("POST", "/containers/{id}/start", start)
    router.add("POST", "/containers/{id}/stop", stop)
    router.add("POST", "/containers/{id}/restart", restart)
    router.add("POST", "/containers/{id}/kill", kill)
    router.add("POST", "/containers/{id}/pause", pause)
    router.add("POST", "/containers/{id}/unpause", unpause)
    router.add("POST", "/containers/{id}/wait", wait)
    router.add("POST", "/containers/{id}/rename", rename)
    router.add("POST", "/containers/{id}/attach", attach)
    router.add("POST", "/containers/{id}/resize", resize)
    router.add("GET", "/containers/{id}/logs", logs)
    router.add("DELETE", "/containers/{id}", remove)
