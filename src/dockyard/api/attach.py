"""The attach relay: a hijacked client on one side, a shim's attach connection
on the other (moby's container/stream CopyStreams, as dockerd runs it).

Output: the shim sends docker's multiplexed frames. Without a TTY they go to
the client as they are, in whatever chunks they arrive (nothing to parse);
with one, their headers are stripped and the client gets the terminal's bytes.

Input, when the attach has stdin (asked for, and the container's OpenStdin):
the client's bytes go to the shim. With a TTY they pass through the detach-key
watch (dockyard.detachkeys): the sequence ends the attach, leaving the process
running. The end of the client's input (its half-close) is, as in dockerd:
- without a TTY and with StdinOnce (`docker run -i`): the EOF of the
  container's stdin; the output keeps coming until the container's ends;
- otherwise (a TTY, or stdin kept open for later attaches): the end of this
  attach; the container and its stdin go on.
Without stdin, the client's bytes are read and dropped and its EOF changes
nothing.

Every copy waits for the other side to take what it was given (drain), so a
slow client slows the container's output as under dockerd, and a client that
goes away ends the attach at the next write: the shim drops the connection and
the container writes on, into its log only.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct

from dockyard import detachkeys

CHUNK = 1 << 18
FRAME = struct.Struct(">BxxxI")
STREAM_IDS = {"stdout": 1, "stderr": 2}


async def relay(raw, reader, writer, tty: bool, with_stdin: bool, *, stdin_once: bool = True,
                keys: bytes = detachkeys.DEFAULT) -> bool:
    """Run one attach until it ends (see the module docstring); closes both
    connections. True if the client detached with `keys` (TTY and stdin only;
    docker's default sequence when none was given, as dockerd's copyEscapable)."""
    output = asyncio.create_task(_to_client(raw, reader, tty))
    inbound = asyncio.create_task(_to_shim(raw, writer, tty, with_stdin, stdin_once, keys))
    gone = asyncio.create_task(raw.closed.wait())
    pending = {output, inbound, gone}
    detached = False
    try:
        while True:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if inbound in done:
                outcome = inbound.result()
                detached = outcome == "detach"
                if outcome in ("detach", "end"):
                    return detached
            if output in done or gone in done:
                return False
    finally:
        for task in pending:
            task.cancel()
        with contextlib.suppress(Exception):
            writer.close()
        raw.close()


async def _chunks(reader):
    """The shim's output as it arrives. A reader that offers only readexactly
    (a wrapper holding back the end of the stream) is read a frame at a time."""
    read = getattr(reader, "read", None)
    try:
        if read is not None:
            while chunk := await read(CHUNK):
                yield chunk
            return
        while True:
            try:
                header = await reader.readexactly(FRAME.size)
            except asyncio.IncompleteReadError:
                return
            size = FRAME.unpack(header)[1]
            yield header + (await reader.readexactly(size) if size else b"")
    except (ConnectionError, OSError, asyncio.IncompleteReadError):
        return


async def _to_client(raw, reader, tty: bool) -> None:
    pending = bytearray()  # TTY: a frame not yet complete
    async for chunk in _chunks(reader):
        if tty:
            pending += chunk
            chunk = _payloads(pending)
            if not chunk:
                continue
        raw.write(chunk)
        await raw.drain()
        if raw.closed.is_set():
            return


def _payloads(buf: bytearray) -> bytes:
    """The payloads of the complete frames at the start of `buf`, which loses them."""
    out, at = bytearray(), 0
    while len(buf) - at >= FRAME.size:
        size = FRAME.unpack_from(buf, at)[1]
        if len(buf) - at - FRAME.size < size:
            break
        out += buf[at + FRAME.size:at + FRAME.size + size]
        at += FRAME.size + size
    del buf[:at]
    return bytes(out)


async def _to_shim(raw, writer, tty: bool, with_stdin: bool, stdin_once: bool,
                   keys: bytes) -> str | None:
    """"detach", "end" (the attach is over), or None (the output goes on)."""
    proxy = detachkeys.EscapeProxy(keys) if tty and with_stdin else None
    try:
        while chunk := await raw.reader.read(CHUNK):
            if not with_stdin:
                continue
            detached = False
            if proxy is not None:
                chunk, detached = proxy.feed(chunk)
            if chunk:
                writer.write(chunk)
                await writer.drain()
            if detached:
                return "detach"
        if not with_stdin:
            return None
        if stdin_once and not tty:
            if writer.can_write_eof():
                writer.write_eof()
            return None
        return "end"
    except (ConnectionError, OSError):
        return None


async def replay_logs(raw, c, stdout: bool, stderr: bool) -> None:
    """attach's `logs=1`: what the log holds, framed as the stream will be, before
    the stream (dockerd reads its json-file or local log the same way)."""
    from dockyard.runtime import logfile

    tty = bool(c.config.get("Tty"))
    driver = c.host_config["LogConfig"]["Type"]
    if driver not in ("json-file", "local"):
        message = b"Error attaching: configured logging driver does not support reading\n"
        raw.write(message if tty else FRAME.pack(1, len(message)) + message)
        return
    path = c.record.get("LogPath")
    if not path:
        return  # never started: nothing logged yet
    want = {name for name, on in (("stdout", stdout), ("stderr", stderr)) if on}
    await raw.until_read()
    out = bytearray()
    try:
        async for stream, _time, data in logfile.aread(path, driver=driver):
            if stream not in want:
                continue
            out += data if tty else FRAME.pack(STREAM_IDS[stream], len(data)) + data
            if len(out) >= CHUNK:
                raw.write(bytes(out))
                out.clear()
                await raw.drain()
    except OSError:
        pass  # (a log removed meanwhile) what was read goes out; the stream follows
    if out:
        raw.write(bytes(out))
        await raw.drain()
