"""Hijacked connections: the HTTP connection becomes a raw byte stream.

`attach` and `exec start` answer `101 UPGRADED` (`Upgrade: tcp`) and from then
on the socket carries the process's stdio both ways. aiohttp knows the `tcp`
upgrade but gives no raw stream, so after the 101 goes out we take the transport
over with a protocol of our own. Our protocol returns True from eof_received:
a client that half-closes (the docker CLI does, when its stdin ends) still
reads the output that follows.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

RAW_STREAM = "application/vnd.docker.raw-stream"
MULTIPLEXED_STREAM = "application/vnd.docker.multiplexed-stream"


def send_headers_now(response: web.StreamResponse) -> None:
    """aiohttp holds the headers back to send them with the first body chunk;
    a client that waits for them (wait, hijacked streams) must get them at once."""
    response._payload_writer.send_headers()  # noqa: SLF001 - no public way to flush


class RawStream(asyncio.Protocol):
    def __init__(self, transport: asyncio.Transport, buffered: bytes):
        self.transport = transport
        self.reader = asyncio.StreamReader()
        self.closed = asyncio.Event()
        if buffered:
            self.reader.feed_data(buffered)

    # asyncio.Protocol ---------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        self.reader.feed_data(data)

    def eof_received(self) -> bool:
        self.reader.feed_eof()
        return True  # keep our side open for the output still to come

    def connection_lost(self, exc: Exception | None) -> None:
        self.reader.feed_eof()
        self.closed.set()

    # for the relay --------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()


async def hijack(request: web.Request, content_type: str = RAW_STREAM) -> RawStream:
    upgrade = "upgrade" in request.headers.get("Connection", "").lower()
    headers = {"Content-Type": content_type}
    if upgrade:
        headers.update({"Connection": "Upgrade", "Upgrade": "tcp"})
        response = web.StreamResponse(status=101, reason="UPGRADED", headers=headers)
    else:
        response = web.StreamResponse(status=200, headers=headers)
        response.force_close()
    await response.prepare(request)
    send_headers_now(response)
    transport = request.transport
    protocol = request.protocol
    buffered = getattr(protocol, "_message_tail", b"") or b""
    if buffered:
        protocol._message_tail = b""  # noqa: SLF001 - bytes that followed the request
    raw = RawStream(transport, buffered)
    transport.set_protocol(raw)
    transport.resume_reading()
    return raw
