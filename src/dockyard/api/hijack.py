"""Hijacked connections: the HTTP connection becomes a raw byte stream.

`attach` and `exec start` answer `101 UPGRADED` (`Upgrade: tcp`) and from then
on the socket carries the process's stdio both ways. aiohttp knows the `tcp`
upgrade but gives no raw stream, so after the 101 goes out we take the transport
over with a protocol of our own. Our protocol returns True from eof_received:
a client that half-closes (the docker CLI does, when its stdin ends) still
reads the output that follows.

Both directions are flow-controlled: the client's bytes wait in the kernel
once `reader` holds READ_LIMIT of them, and `drain()` waits while the client
has not taken what was written; a relay that waits on both moves no more than
the slowest side takes.

A request refused before the upgrade is answered as dockerd answers it on a
hijacked connection: the status, the stream content type and the message as
plain text (`refuse`).
"""

from __future__ import annotations

import asyncio
import socket
import struct

from aiohttp import web

RAW_STREAM = "application/vnd.docker.raw-stream"
MULTIPLEXED_STREAM = "application/vnd.docker.multiplexed-stream"


def send_headers_now(response: web.StreamResponse) -> None:
    """aiohttp holds the headers back to send them with the first body chunk;
    a client that waits for them (wait, hijacked streams) must get them at once."""
    response._payload_writer.send_headers()  # noqa: SLF001 - no public way to flush


READ_LIMIT = 1 << 18    # the client's bytes held before its socket is left unread
WRITE_HIGH = 1 << 20    # drain() waits while more than this is unsent...
WRITE_LOW = 1 << 18     # ...until it is down to this


class RawStream(asyncio.Protocol):
    def __init__(self, transport: asyncio.Transport, buffered: bytes):
        self.transport = transport
        self.reader = asyncio.StreamReader(limit=READ_LIMIT)
        self.reader.set_transport(transport)  # it pauses reading when it holds too much
        self.closed = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        transport.set_write_buffer_limits(WRITE_HIGH, WRITE_LOW)
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
        self._writable.set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # for the relay --------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(data)

    async def until_read(self, timeout: float = 0.2) -> None:
        """Wait (at most `timeout`) until the client has read all that was sent
        (SIOCOUTQ of a UNIX socket counts the bytes its peer has not read yet).
        docker-py reads the 101's headers through a buffered reader and the
        stream from the raw socket: bytes that arrive with the headers would be
        lost to it, so output that is ready at once (attach's logs=1) waits
        for the headers to be taken, as it happens to under dockerd."""
        import fcntl
        import termios
        sock = self.transport.get_extra_info("socket")
        if sock is None or sock.family != socket.AF_UNIX:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline and not self.closed.is_set():
            try:
                unread = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ,
                                                        b"\0" * 4))[0]
            except OSError:
                return
            if unread == 0:
                return
            await asyncio.sleep(0.002)

    async def drain(self) -> None:
        """Wait until the client has taken most of what was written (at once
        if the connection is gone: check `closed`)."""
        if not self._writable.is_set():
            await self._writable.wait()

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


def refuse(status: int, message: str) -> web.Response:
    """dockerd's answer to an attach it refuses before hijacking: the status line,
    the stream content type and the message as text (not JSON), then the close."""
    response = web.Response(status=status, body=(message + "\r\n").encode(),
                            headers={"Content-Type": RAW_STREAM})
    response.force_close()
    return response
