"""`GET /containers/{id}/logs`: the log file, framed as docker frames it.

Without a TTY each entry goes out as a multiplexed frame (stream 1 or 2);
with one, as raw bytes. `follow` keeps reading until the container stops.
"""

from __future__ import annotations

import struct

from aiohttp import web

from dockyard import errdefs
from dockyard.api.app import query_bool
from dockyard.api.hijack import RAW_STREAM, send_headers_now

STREAM_IDS = {"stdout": 1, "stderr": 2}


def _nanoseconds(text: str | None) -> int | None:
    """`since`/`until` as docker sends them: seconds, with an optional fraction."""
    if not text or text == "0":
        return None
    seconds, _, fraction = text.partition(".")
    try:
        return int(seconds) * 1_000_000_000 + int((fraction + "000000000")[:9] or 0)
    except ValueError:
        raise errdefs.InvalidParameter(f"invalid timestamp {text!r}") from None


def _tail(text: str | None) -> int | None:
    if text in (None, "", "all"):
        return None
    try:
        return int(text)
    except ValueError:
        raise errdefs.InvalidParameter(f"invalid tail value {text!r}") from None


async def stream_logs(request: web.Request, svc) -> web.StreamResponse:
    from dockyard.runtime import logfile

    c = svc.get(request.match_info["id"])
    want = {s for s in ("stdout", "stderr") if query_bool(request, s)}
    if not want:
        raise errdefs.InvalidParameter("Bad parameters: you must choose at least one stream")
    driver = c.host_config["LogConfig"]["Type"]
    if driver not in ("json-file", "local"):
        raise errdefs.InvalidParameter(
            f'configured logging driver does not support reading: "{driver}"')
    tty = bool(c.config.get("Tty"))
    timestamps = query_bool(request, "timestamps")
    follow = query_bool(request, "follow")
    response = web.StreamResponse(headers={"Content-Type": RAW_STREAM})
    await response.prepare(request)
    send_headers_now(response)
    entries = logfile.aread(c.record["LogPath"], _nanoseconds(request.query.get("since")),
                            _nanoseconds(request.query.get("until")),
                            _tail(request.query.get("tail")), follow and c.running,
                            driver=driver, stop=lambda: not c.running)
    try:
        async for stream, time_ns, data in entries:
            if stream not in want:
                continue
            if timestamps:
                data = logfile.format_time(time_ns, fixed=True).encode() + b" " + data
            if tty:
                await response.write(data)
            else:
                await response.write(struct.pack(">BxxxI", STREAM_IDS[stream], len(data)) + data)
    except (ConnectionError, OSError):
        return response
    await response.write_eof()
    return response
