"""/networks: list, inspect, create, connect, disconnect, remove, prune
(dockerd's api/server/router/network).

A network's name may contain slashes ("a/b" is a valid name), so the ID part
of a path takes everything up to the verb, as dockerd's `{id:.+}` does.
"""

from __future__ import annotations

from aiohttp import web

from dockyard import errdefs
from dockyard.api import filters
from dockyard.api.app import Router, json_body, json_response


def _svc(request: web.Request):
    return request.app["daemon"].networks


async def _body(request: web.Request) -> dict:
    if not (await request.read()).strip():
        raise errdefs.InvalidParameter("got EOF while reading request body")
    return await json_body(request)


def _string(body: dict, key: str) -> str:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise errdefs.InvalidParameter(
            f"json: cannot unmarshal {type(value).__name__} into Go struct field "
            f".{key} of type string")
    return value or ""


async def list_networks(request: web.Request) -> web.Response:
    f = filters.parse(request.query.get("filters"))
    return json_response(_svc(request).list(f))


async def inspect_network(request: web.Request) -> web.Response:
    verbose = request.query.get("verbose", "")
    if verbose:
        from dockyard.strconv import parse_bool
        try:
            parse_bool(verbose)
        except ValueError as e:
            raise errdefs.InvalidParameter(f"invalid value for verbose: {verbose}: {e}") from None
    result = _svc(request).inspect(request.match_info["id"], scope=request.query.get("scope", ""))
    return json_response(result)


async def create_network(request: web.Request) -> web.Response:
    body = await _body(request)
    _string(body, "Name")
    _string(body, "Driver")
    return json_response(await _svc(request).create(body), status=201)


async def connect(request: web.Request) -> web.Response:
    body = await _body(request)
    await _svc(request).connect(request.match_info["id"], _string(body, "Container"),
                                body.get("EndpointConfig") or {})
    return web.Response(status=200)


async def disconnect(request: web.Request) -> web.Response:
    body = await _body(request)
    await _svc(request).disconnect(request.match_info["id"], _string(body, "Container"),
                                   bool(body.get("Force")))
    return web.Response(status=200)


async def remove_network(request: web.Request) -> web.Response:
    await _svc(request).remove(request.match_info["id"])
    return web.Response(status=204)


async def prune_networks(request: web.Request) -> web.Response:
    f = filters.parse(request.query.get("filters"))
    return json_response(await _svc(request).prune(f))


def register(router: Router) -> None:
    router.add("GET", "/networks", list_networks)
    router.add("GET", "/networks/", list_networks)
    router.add("POST", "/networks/create", create_network)
    router.add("POST", "/networks/prune", prune_networks)
    router.add("POST", "/networks/{id:.+}/connect", connect)
    router.add("POST", "/networks/{id:.+}/disconnect", disconnect)
    router.add("GET", "/networks/{id:.+}", inspect_network)
    router.add("DELETE", "/networks/{id:.+}", remove_network)
