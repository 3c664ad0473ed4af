"""POST /containers/{id}/update: resources and restart policy (daemon/containerupdate.py)."""

from __future__ import annotations

from aiohttp import web

from dockyard.api.app import Router, json_body, json_response


async def update(request: web.Request) -> web.Response:
    from dockyard.daemon import containerupdate

    body = await json_body(request)
    result = await containerupdate.update(request.app["daemon"].containers,
                                          request.match_info["id"], body)
    return json_response(result)


def register(router: Router) -> None:
    router.add("POST", "/containers/{id}/update", update)
