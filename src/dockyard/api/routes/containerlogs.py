"""`GET /containers/{id}/logs`: the log file, framed as docker frames it.

Without a TTY each entry goes out as a multiplexed frame (stream 1 or 2);
with one, as raw bytes. `follow` keeps reading until the container stops.
Everything that can be wrong with the request is found before the response
starts (dockerd's order), since an error cannot be reported after the 200;
each batch the reader hands over goes out in one write.
"""

from __future__ import annotations

import asyncio
import struct

from aiohttp import web

from dockyard import errdefs
from dockyard.api.app import query_bool
from dockyard.api.hijack import RAW_STREAM, send_headers_now

STREAM_IDS = {"stdout": 1, "stderr": 2}
FOLLOW_INTERVAL = 0.1  # how often a follower looks for new entries


class ReadLogsNotSupported(errdefs.NotImplemented):
    pass


def _nanoseconds(text: str | None, name: str) -> int | None:
    """`since`/`until` as the API takes them: unix seconds with an optional
    fraction (the CLI converts durations and dates first); 0 means unset."""
    from dockyard.timefilter import parse_timestamps

    if not text or (name == "until" and text == "0"):
        return None
    seconds, nanos = parse_timestamps(text, 0)
    ns = seconds * 1_000_000_000 + nanos
    return ns or None


def _tail(text: str | None) -> int | None:
    """moby: `strconv.Atoi(tail)`, anything unreadable ("all", "x") meaning all."""
    try:
        n = int(text or "")
    except ValueError:
        return None
    return None if n < 0 else n


async def stream_logs(request: web.Request, svc) -> web.StreamResponse:
    from dockyard.runtime.logfile import LogReader, format_time

    want = {s for s in ("stdout", "stderr") if query_bool(request, s)}
    if not want:
        raise errdefs.InvalidParameter("Bad parameters: you must choose at least one stream")
    c = svc.get(request.match_info["id"])
    if c.state.get("Status") == "removing" or c.state.get("Dead"):
        raise errdefs.Conflict("can not get logs from container which is dead or marked for "
                               "removal")
    driver = c.host_config["LogConfig"]["Type"]
    if driver not in ("json-file", "local"):
        raise ReadLogsNotSupported("configured logging driver does not support reading")
    since = _nanoseconds(request.query.get("since"), "since")
    until = _nanoseconds(request.query.get("until"), "until")
    tail = _tail(request.query.get("tail"))
    tty = bool(c.config.get("Tty"))
    timestamps = query_bool(request, "timestamps")
    follow = query_bool(request, "follow") and c.running
    path = c.record["LogPath"]  # "" until the first start: nothing to read

    response = web.StreamResponse(headers={"Content-Type": RAW_STREAM})
    await response.prepare(request)
    send_headers_now(response)

    def encode(batch) -> bytes:
        out = bytearray()
        for stream, time_ns, data in batch:
            if stream not in want:
                continue
            if timestamps:
                data = format_time(time_ns, fixed=True).encode() + b" " + data
            if not tty:
                out += struct.pack(">BxxxI", STREAM_IDS[stream], len(data))
            out += data
        return bytes(out)

    reader = None
    try:
        if path:
            reader = await asyncio.to_thread(LogReader, path, driver, since, until, tail)
            batches = reader.batches()

            def next_chunk() -> bytes | None:
                batch = next(batches, None)
                return None if batch is None else encode(batch)

            while (chunk := await asyncio.to_thread(next_chunk)) is not None:
                if chunk:
                    await response.write(chunk)
            while follow and not reader.done:
                finished = not c.running  # one more look after the container stopped
                chunk = await asyncio.to_thread(lambda: encode(reader.poll()))
                if chunk:
                    await response.write(chunk)
                if finished:
                    break
                await asyncio.sleep(FOLLOW_INTERVAL)
        await response.write_eof()
    except (ConnectionError, OSError):
        pass
    finally:
        if reader is not None:
            reader.close()
    return response
