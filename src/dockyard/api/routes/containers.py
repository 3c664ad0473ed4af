"""/containers: create, start, stop, kill, wait, attach, logs, list, inspect, remove."""

from __future__ import annotations

import asyncio
import contextlib
import json

from aiohttp import web

from dockyard import detachkeys, errdefs
from dockyard.api import filters
from dockyard.api.app import Router, json_body, json_response, query_bool
from dockyard.api.attach import relay, replay_logs
from dockyard.api.errors import status_of
from dockyard.api.hijack import RAW_STREAM, hijack, refuse, send_headers_now


def _svc(request: web.Request):
    return request.app["daemon"].containers


def _views():
    from dockyard.daemon import containerviews
    return containerviews


def _int_query(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise errdefs.InvalidParameter(f"invalid value for {name}: {value!r}") from None


async def create(request: web.Request) -> web.Response:
    body = await json_body(request)
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
    """dockerd's ContainerAttach: refusals before the hijack, as plain text
    (`refuse`); then `logs=1` replays the log, `stream=1` waits for the
    container to run (a `docker run` attaches before its start) and relays
    (dockyard.api.attach) until the output ends, the client detaches or goes."""
    svc = _svc(request)
    name = request.match_info["id"]
    spec = request.query.get("detachKeys", "")
    try:
        try:
            keys = detachkeys.to_bytes(spec) if spec else detachkeys.DEFAULT
        except ValueError:
            raise errdefs.InvalidParameter(f"Invalid detach keys ({spec}) provided") from None
        c = svc.get(name)
        if c.paused:
            raise errdefs.Conflict(f"container {name} is paused, unpause the container before "
                                   "attach")
        if c.state.get("Restarting"):
            raise errdefs.Conflict(f"container {name} is restarting, wait until the container "
                                   "is running")
    except errdefs.DockyardError as e:
        return refuse(status_of(e), str(e))
    want_stdout = query_bool(request, "stdout")
    want_stderr = query_bool(request, "stderr")
    with_stdin = query_bool(request, "stdin") and bool(c.config.get("OpenStdin"))
    tty = bool(c.config.get("Tty"))
    raw = await hijack(request, RAW_STREAM)
    if query_bool(request, "logs"):
        await replay_logs(raw, c, want_stdout, want_stderr)
    svc.emit(c, "attach")
    if not query_bool(request, "stream"):
        raw.close()
        return web.Response(status=101)
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
                stdin=with_stdin, stdout=want_stdout, stderr=want_stderr,
                stdin_once=bool(c.config.get("StdinOnce")))
        except (errdefs.DockyardError, ConnectionError, OSError):
            raw.close()
            return web.Response(status=101)
    finally:
        gone.cancel()
        if not ready.done():
            ready.set_result(None)
    if await relay(raw, reader, writer, tty, with_stdin,
                   stdin_once=bool(c.config.get("StdinOnce")), keys=keys):
        svc.emit(c, "detach")
    return web.Response(status=101)  # already sent; aiohttp needs a return value


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
