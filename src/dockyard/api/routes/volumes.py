"""/volumes: list, create, inspect, remove, prune (dockerd's api/server/router/volume).

The service does file-system work (mkdir, fsync, rmtree, du), so each call
runs in a worker thread.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from dockyard import API_VERSION, errdefs
from dockyard.api import filters
from dockyard.api.app import Router, json_body, json_response, query_bool, version_tuple


def _svc(request: web.Request):
    return request.app["daemon"].volumes


def _map(body: dict, key: str) -> dict[str, str]:
    value = body.get(key) or {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise errdefs.InvalidParameter(
            f"json: cannot unmarshal {type(value).__name__} into Go struct field "
            f"CreateOptions.{key} of type map[string]string")
    return value


async def list_volumes(request: web.Request) -> web.Response:
    f = filters.parse(request.query.get("filters"))
    return json_response(await asyncio.to_thread(_svc(request).list, f))


async def create_volume(request: web.Request) -> web.Response:
    body = await json_body(request)
    for key in ("Name", "Driver"):
        if not isinstance(body.get(key) or "", str):
            raise errdefs.InvalidParameter(
                f"json: cannot unmarshal {type(body[key]).__name__} into Go struct field "
                f"CreateOptions.{key} of type string")
    volume = await asyncio.to_thread(
        _svc(request).create, body.get("Name") or "", body.get("Driver") or "",
        _map(body, "DriverOpts"), _map(body, "Labels"))
    return json_response(volume, status=201)


async def inspect_volume(request: web.Request) -> web.Response:
    return json_response(_svc(request).inspect(request.match_info["name"]))


async def remove_volume(request: web.Request) -> web.Response:
    await asyncio.to_thread(_svc(request).remove, request.match_info["name"],
                            query_bool(request, "force"))
    return web.Response(status=204)


async def update_volume(request: web.Request) -> web.Response:
    """PUT /volumes/{name}: only cluster volumes can be updated, and this
    engine has no swarm."""
    raise errdefs.Unavailable("volume update only valid for cluster volumes, but swarm is "
                              "unavailable")


async def prune_volumes(request: web.Request) -> web.Response:
    f = filters.parse(request.query.get("filters"))
    version = request.match_info.get("api_version") or API_VERSION
    if version_tuple(version) < (1, 42):
        # Before API 1.42 prune took every unused volume, named or not.
        f.setdefault("all", ["true"])
    return json_response(await asyncio.to_thread(_svc(request).prune, f))


def register(router: Router) -> None:
    router.add("GET", "/volumes", list_volumes)
    router.add("POST", "/volumes/create", create_volume)
    router.add("POST", "/volumes/prune", prune_volumes)
    # (a name may hold slashes: it is refused as a name, not as a path)
    router.add("GET", "/volumes/{name:.*}", inspect_volume)
    router.add("DELETE", "/volumes/{name:.*}", remove_volume)
    router.add("PUT", "/volumes/{name:.*}", update_volume)
