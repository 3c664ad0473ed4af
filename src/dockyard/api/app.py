"""The aiohttp application: routing, the version prefix, headers, errors.

Every route answers both `/path` and `/v1.NN/path`, as dockerd does. Responses
carry the headers the docker CLI and docker-py read to negotiate: `Api-Version`
(the highest version we speak; clients downgrade to it), `Ostype`,
`Docker-Experimental` and `Builder-Version`.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Awaitable, Callable

from aiohttp import web

from dockyard import API_VERSION, MIN_API_VERSION, __version__, errdefs
from dockyard.api import errors

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SERVER = f"Dockyard/{__version__} (linux)"
HEADERS = {
    "Api-Version": API_VERSION,
    "Docker-Experimental": "false",
    "Ostype": "linux",
    "Server": SERVER,
}


def version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split("."))


@web.middleware
async def _middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    version = request.match_info.get("api_version")
    if version is not None:
        try:
            wanted = version_tuple(version)
        except ValueError:
            return errors.error_response(400, f"invalid API version {version!r}")
        if wanted > version_tuple(API_VERSION):
            return errors.error_response(
                400, f"client version {version} is too new. "
                     f"Maximum supported API version is {API_VERSION}")
        if wanted < version_tuple(MIN_API_VERSION):
            return errors.error_response(
                400, f"client version {version} is too old. Minimum supported API version "
                     f"is {MIN_API_VERSION}, please upgrade your client to a newer version")
    try:
        response = await handler(request)
    except web.HTTPNotFound:
        response = errors.error_response(404, "page not found")
    except web.HTTPMethodNotAllowed:
        response = errors.error_response(404, "page not found")
    except web.HTTPException:
        raise
    except Exception as e:  # noqa: BLE001 - the error table decides
        response = errors.from_exception(e)
    return response


async def _add_headers(request: web.Request, response: web.StreamResponse) -> None:
    for key, value in HEADERS.items():
        response.headers[key] = value


class Router:
    """Registers each route with and without the `/v{version}` prefix."""

    def __init__(self, app: web.Application):
        self.app = app

    def add(self, method: str, path: str, handler: Handler) -> None:
        self.app.router.add_route(method, path, handler)
        self.app.router.add_route(method, "/v{api_version:[0-9.]+}" + path, handler)


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=(json.dumps(data) + "\n").encode(),
                        headers={"Content-Type": "application/json"})


def json_line(message: Any, go_escapes: bool = False) -> bytes:
    r"""One message of a JSON stream, ended by CRLF as dockerd's stream
    formatter ends it; `go_escapes` writes <, > and & as Go's json.Marshal
    does (\u003c ...), where a stream must match dockerd's bytes."""
    text = json.dumps(message, separators=(",", ":"), ensure_ascii=not go_escapes)
    if go_escapes:
        text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return (text + "\r\n").encode("utf-8", "surrogateescape")


async def json_body(request: web.Request) -> dict:
    """The request body as a JSON object; an empty body is an empty object."""
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


def query_bool(request: web.Request, name: str, default: bool = False) -> bool:
    """dockerd's BoolValue: absent → default; "", "0", "no", "false", "none" → false."""
    if name not in request.query:
        return default
    return request.query[name].strip().lower() not in ("", "0", "no", "false", "none")


def create_app(daemon) -> web.Application:
    from dockyard.api.routes import (build, containerfs, containers, containerstats,
                                     containerupdate, distribution, events, execs, images,
                                     networks, system, volumes)

    app = web.Application(middlewares=[_middleware], client_max_size=0)
    app.on_response_prepare.append(_add_headers)
    app["daemon"] = daemon
    router = Router(app)
    system.register(router)
    images.register(router)
    containers.register(router)
    containerfs.register(router)
    containerupdate.register(router)
    containerstats.register(router)
    execs.register(router)
    events.register(router)
    networks.register(router)
    volumes.register(router)
    build.register(router)
    distribution.register(router)

    async def not_found(request: web.Request) -> web.Response:
        return errors.error_response(404, "page not found")

    app.router.add_route("*", "/{tail:.*}", not_found)
    return app
