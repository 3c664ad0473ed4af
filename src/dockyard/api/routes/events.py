"""/events: the event log, replayed from `since` and followed until `until`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

from aiohttp import web

from dockyard import errdefs
from dockyard.api import filters
from dockyard.api.app import Router
from dockyard.api.hijack import send_headers_now

# The object types whose filter matches an event's actor ID or name by prefix
# (daemon/events/filter.go fuzzyMatchName); the filter applies to every event.
FUZZY_NAME_FILTERS = ("container", "daemon", "plugin", "volume", "network", "service", "node",
                      "secret", "config")


def _event_time(text: str | None) -> float | None:
    """`since`/`until` as the API takes them (the CLI converts durations and dates
    first): unix seconds with an optional fraction (moby's eventTime)."""
    from dockyard.timefilter import parse_timestamps

    seconds, nanos = parse_timestamps(text or "", -1)
    if seconds == -1:
        return None
    return seconds + nanos / 1e9


def _exact(f: dict[str, list[str]], field: str, *sources: str) -> bool:
    return field not in f or any(s in f[field] for s in sources)


def _fuzzy(f: dict[str, list[str]], field: str, *sources: str) -> bool:
    return field not in f or any(s == v or (s and s.startswith(v))
                                 for s in sources for v in f[field])


def _strip_tag(image: str) -> str:
    from dockyard.image.reference import parse_normalized

    try:
        return parse_normalized(image).familiar_name
    except Exception:  # noqa: BLE001 - not a reference: compared as it is
        return image


def _matches(event: dict, f: dict[str, list[str]]) -> bool:
    """daemon/events/filter.go Include; unknown filter keys are ignored, as there."""
    actor = event["Actor"]
    attrs = actor.get("Attributes") or {}
    action = event["Action"]
    if {"health_status", "exec_create", "exec_start"} & set(f.get("event", [])):
        if not _fuzzy(f, "event", action):
            return False
    elif not _exact(f, "event", action):
        return False
    if not _exact(f, "type", event["Type"]) or not _exact(f, "scope", event.get("scope", "")):
        return False
    for field in FUZZY_NAME_FILTERS:
        if not _fuzzy(f, field, actor["ID"], attrs.get("name", "")):
            return False
    if "image" in f:
        name = attrs.get("name" if event["Type"] == "image" else "image", "")
        if not _exact(f, "image", actor["ID"], name, _strip_tag(actor["ID"]), _strip_tag(name)):
            return False
    for item in f.get("label", []):
        key, sep, value = item.partition("=")
        if key not in attrs or (sep and attrs[key] != value):
            return False
    return True


async def events(request: web.Request) -> web.StreamResponse:
    bus = request.app["daemon"].events
    f = filters.parse(request.query.get("filters"))
    since = _event_time(request.query.get("since"))
    until = _event_time(request.query.get("until"))
    if since is not None and until is not None and since > until:
        raise errdefs.InvalidParameter(
            f"`since` time ({request.query['since']}) cannot be after `until` time "
            f"({request.query['until']})")
    queue = bus.subscribe()  # before the backlog is read: nothing falls in between
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    send_headers_now(response)

    async def send(event: dict) -> None:
        await response.write((json.dumps(event) + "\n").encode())

    try:
        backlog = bus.backlog()
        seen = {id(event) for event in backlog}  # the same objects come through the queue
        if since is not None or until is not None:  # (moby's loadBufferedEvents)
            for event in backlog:
                t = event["timeNano"] / 1e9
                if t >= (since or 0) and (until is None or t <= until) and _matches(event, f):
                    await send(event)
        while True:
            timeout = None if until is None else until - time.time()
            if timeout is not None and timeout <= 0:
                break
            try:
                event = await asyncio.wait_for(queue.get(), timeout)
            except asyncio.TimeoutError:
                break
            if id(event) in seen:
                continue
            if _matches(event, f):
                await send(event)
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        bus.unsubscribe(queue)
    with contextlib.suppress(ConnectionError):  # (the client may have gone: nothing to end)
        await response.write_eof()
    return response


def register(router: Router) -> None:
    router.add("GET", "/events", events)
