"""/containers/{id}/exec and /exec: create, start, resize, inspect.

`POST /exec/{id}/start` without Detach is hijacked as an attach is (101
UPGRADED, then stdin one way and the output the other: multiplexed frames,
or raw bytes when the start asks for Tty), through the attach relay
(dockyard.api.attach: the client's half-close is the EOF of the exec's
stdin without a TTY; with one, the detach keys leave the exec running). As
dockerd: the exec is looked up before the hijack (404, 409 as a normal
response), and a failure after it (a missing binary) is written into the
stream as a line of stdout ending in CRLF, the exit code 126 left for the
client's inspect. The stream ends only once the exit code is recorded: the
docker CLI inspects the exec for it right after.
"""

from __future__ import annotations

import asyncio
import struct

from aiohttp import web

from dockyard import detachkeys, errdefs
from dockyard.api.app import Router, json_body, json_response
from dockyard.api.attach import relay
from dockyard.api.hijack import RAW_STREAM, hijack


def _svc(request: web.Request):
    return request.app["daemon"].execs


async def create(request: web.Request) -> web.Response:
    body = await json_body(request)
    exec_id = _svc(request).create(request.match_info["id"], body)
    return json_response({"Id": exec_id}, status=201)


async def start(request: web.Request) -> web.StreamResponse:
    svc = _svc(request)
    body = await json_body(request)
    exec_id = request.match_info["id"]
    ec, _ = svc.active(exec_id)  # dockerd's ExecExists: refused before any hijack
    console_size = body.get("ConsoleSize")
    if body.get("Detach"):
        await svc.start(exec_id, attach=False, console_size=console_size)
        return web.Response(status=200)
    tty = bool(body.get("Tty"))
    raw = await hijack(request, RAW_STREAM)
    try:
        reader, writer = await svc.start(exec_id, attach=True, console_size=console_size)
    except errdefs.DockyardError as e:
        line = f"{e}\r\n".encode()
        raw.write(line if tty else struct.pack(">BxxxI", 1, len(line)) + line)
        raw.close()
        return web.Response(status=101)
    if await relay(raw, _UntilExit(reader, ec.exited), writer, tty, ec.open_stdin,
                   keys=ec.detach_keys or detachkeys.DEFAULT):
        svc.detached(ec)
    return web.Response(status=101)  # already sent; aiohttp needs a return value


class _UntilExit:
    """The shim's stream, whose end is held back until the exec's exit code is
    recorded (the shim answers the exit and ends the stream on two
    connections, in either order)."""

    def __init__(self, reader: asyncio.StreamReader, exited: asyncio.Future):
        self.reader, self.exited = reader, exited

    async def read(self, n: int) -> bytes:
        try:
            data = await self.reader.read(n)
        except ConnectionError:
            data = b""
        if not data:
            from dockyard.daemon.execs import EXIT_GRACE

            try:
                await asyncio.wait_for(asyncio.shield(self.exited), EXIT_GRACE)
            except asyncio.TimeoutError:
                pass
        return data


async def resize(request: web.Request) -> web.Response:
    height, width = _dimension(request, "h"), _dimension(request, "w")
    await _svc(request).resize(request.match_info["id"], height, width)
    return web.Response(status=200)


def _dimension(request: web.Request, name: str) -> int:
    value = request.query.get(name, "")
    try:
        return int(value)
    except ValueError:
        raise errdefs.InvalidParameter(f'strconv.Atoi: parsing "{value}": invalid syntax') \
            from None


async def inspect(request: web.Request) -> web.Response:
    return json_response(_svc(request).inspect(request.match_info["id"]))


def register(router: Router) -> None:
    router.add("POST", "/containers/{id}/exec", create)
    router.add("POST", "/exec/{id}/start", start)
    router.add("POST", "/exec/{id}/resize", resize)
    router.add("GET", "/exec/{id}/json", inspect)
