"""/_ping, /version, /info."""

from __future__ import annotations

import asyncio

from aiohttp import web

from dockyard.api.app import Router, json_response


async def ping(request: web.Request) -> web.Response:
    headers = {"Builder-Version": "1", "Cache-Control": "no-cache, no-store, must-revalidate",
               "Pragma": "no-cache"}
    if request.method == "HEAD":
        return web.Response(status=200, headers=headers, content_type="text/plain")
    return web.Response(status=200, text="OK", headers=headers, content_type="text/plain")


async def version(request: web.Request) -> web.Response:
    return json_response(request.app["daemon"].system.version())


async def info(request: web.Request) -> web.Response:
    daemon = request.app["daemon"]
    return json_response(await asyncio.to_thread(daemon.system.info))


async def disk_usage(request: web.Request) -> web.Response:
    from dockyard.daemon.system import disk_usage as usage
    return json_response(await asyncio.to_thread(usage, request.app["daemon"]))


def register(router: Router) -> None:
    router.add("GET", "/_ping", ping)
    router.add("HEAD", "/_ping", ping)
    router.add("GET", "/version", version)
    router.add("GET", "/info", info)
    router.add("GET", "/system/df", disk_usage)
