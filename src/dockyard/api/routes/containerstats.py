"""GET /containers/{id}/stats and /containers/{id}/top (daemon/stats.py, daemon/top.py).

Stats frames are written as Go's json.Encoder writes them: compact, one per
line. With stream=1 the headers go out at once and frames follow as the
collector makes them; a client that leaves is noticed at the next write. As
dockerd, a streamed body carries no Content-Type of its own (Go sniffs
"text/plain; charset=utf-8"), a single frame is "application/json".
"""

from __future__ import annotations

import json

from aiohttp import web

from dockyard.api.app import Router, json_response, query_bool
from dockyard.api.hijack import send_headers_now


def _frame(frame: dict) -> bytes:
    return (json.dumps(frame, separators=(",", ":")) + "\n").encode()


async def stats(request: web.Request) -> web.StreamResponse:
    collector = request.app["daemon"].stats
    stream = query_bool(request, "stream", default=True)
    one_shot = query_bool(request, "one-shot")
    c = collector.container(request.match_info["id"], stream, one_shot)
    content_type = "text/plain; charset=utf-8" if stream else "application/json"
    response = web.StreamResponse(headers={"Content-Type": content_type})
    frames = collector.frames(c, stream, one_shot)
    try:
        if stream:
            await response.prepare(request)
            send_headers_now(response)
            async for frame in frames:
                await response.write(_frame(frame))
        else:
            body = b"".join([_frame(frame) async for frame in frames])
            response.content_length = len(body)
            await response.prepare(request)
            await response.write(body)
    except ConnectionError:
        return response          # the client left: nothing more to say
    finally:
        await frames.aclose()
    await response.write_eof()
    return response


async def top(request: web.Request) -> web.Response:
    from dockyard.daemon.top import top as container_top
    result = await container_top(request.app["daemon"].containers, request.match_info["id"],
                                 request.query.get("ps_args", ""))
    return json_response(result)


def register(router: Router) -> None:
    router.add("GET", "/containers/{id}/stats", stats)
    router.add("GET", "/containers/{id}/top", top)
