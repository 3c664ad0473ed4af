"""/events: the event log, replayed from `since` and followed until `until`."""

from __future__ import annotations

import asyncio
import json
import time

from aiohttp import web

from dockyard import errdefs
from dockyard.api import filters
from dockyard.api.app import Router
from dockyard.api.hijack import send_headers_now

EVENT_FILTERS = {"type", "event", "container", "image", "label", "daemon", "network",
                 "volume", "plugin", "node", "service", "secret", "config", "scope"}


def _timestamp(text: str | None) -> float | None:
    """docker's `since`/`until`: seconds with an optional fraction, or an RFC 3339 time."""
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        from dockyard.daemon.container import parse_time
        try:
            return parse_time(text)
        except ValueError:
            raise errdefs.InvalidParameter(f"invalid timestamp: {text!r}") from None


def _matches(event: dict, f: dict[str, list[str]]) -> bool:
    actor = event["Actor"]
    attrs = actor.get("Attributes") or {}
    if "type" in f and event["Type"] not in f["type"]:
        return False
    if "event" in f and event["Action"] not in f["event"] and \
            event["Action"].split(":")[0] not in f["event"]:
        return False
    for kind in ("container", "network", "volume"):
        if kind in f and (event["Type"] != kind or not any(
                actor["ID"].startswith(v) or attrs.get("name") == v for v in f[kind])):
            return False
    if "image" in f:
        image_names = {attrs.get("image"), attrs.get("name"), actor["ID"]}
        if not image_names & set(f["image"]):
            return False
    if "label" in f:
        for item in f["label"]:
            key, sep, value = item.partition("=")
            if key not in attrs or (sep and attrs[key] != value):
                return False
    return True


async def events(request: web.Request) -> web.StreamResponse:
    bus = request.app["daemon"].events
    f = filters.parse(request.query.get("filters"))
    for key in f:
        if key not in EVENT_FILTERS:
            raise errdefs.InvalidParameter(f"invalid filter '{key}'")
    since = _timestamp(request.query.get("since"))
    until = _timestamp(request.query.get("until"))
    queue = bus.subscribe()  # before the backlog is read: nothing falls in between
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    send_headers_now(response)

    async def send(event: dict) -> None:
        await response.write((json.dumps(event) + "\n").encode())

    try:
        seen = set()
        for event in bus.backlog():
            seen.add(event["timeNano"])
            t = event["timeNano"] / 1e9
            if since is not None and t >= since and (until is None or t <= until) \
                    and _matches(event, f):
                await send(event)
        while True:
            timeout = None if until is None else until - time.time()
            if timeout is not None and timeout <= 0:
                break
            try:
                event = await asyncio.wait_for(queue.get(), timeout)
            except asyncio.TimeoutError:
                break
            if event["timeNano"] in seen:
                continue
            if _matches(event, f):
                await send(event)
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        bus.unsubscribe(queue)
    await response.write_eof()
    return response


def register(router: Router) -> None:
    router.add("GET", "/events", events)
