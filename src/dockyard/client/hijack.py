"""Hijacked connections: attach, and the stream framing the Engine API uses.

`POST /containers/{id}/attach` asks the daemon to upgrade the HTTP connection
(`Connection: Upgrade`, `Upgrade: tcp`). After its `101 UPGRADED` the socket
is a raw byte stream in both directions: what we write is the container's
stdin, and we half-close our side (shutdown(SHUT_WR)) when stdin ends, which
the daemon passes on as EOF while output keeps coming. What we read is the
container's output:

- with a TTY, the terminal's bytes as they are;
- without one, frames: an 8-byte header `[stream, 0, 0, 0, size (big-endian
  uint32)]` and `size` bytes of payload, stream 1 being stdout and 2 stderr
  (0 is stdin, which dockerd echoes to stdout; 3 is an error from the daemon,
  which ends the stream). `logs` uses the same framing.

The connection ends when the daemon closes it: the container's output is over.
"""

from __future__ import annotations

import socket
import struct

from dockyard.client.api import Client

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO, Callable

STDIN, STDOUT, STDERR, SYSTEMERR = 0, 1, 2, 3


class StreamError(Exception):
    """The daemon reported an error inside a multiplexed stream (stream 3)."""


class Hijacked:
    """An upgraded connection: `read1()` what the daemon sends (bytes it had
    already buffered come first), `send()` to it, `close_write()` at the end
    of input, `close()` when done."""

    def __init__(self, sock: socket.socket, fp):
        self.sock = sock
        self.fp = fp

    def read1(self, n: int = 65536) -> bytes:
        try:
            return self.fp.read1(n)
        except (OSError, ValueError):
            return b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close_write(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        """Stop both directions now (a reader blocked in read1 returns b"")."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.fp.close()
        finally:
            self.sock.close()


class UpgradeRefused(Exception):
    """The daemon answered the upgrade with an error status: said as docker says it
    (the daemon's message is not read, as docker does not read it)."""

    def __init__(self, status: int):
        super().__init__(f"unable to upgrade to tcp, received {status}")
        self.status = status


def attach(client: Client, container: str, stdin: bool, stdout: bool, stderr: bool,
           detach_keys: str = "", logs: bool = False) -> Hijacked:
    """POST /containers/{id}/attach?stream=1 upgraded; UpgradeRefused if the daemon
    refuses."""
    from dockyard.client.api import APIError

    query = {"stream": "1"}
    if logs:
        query["logs"] = "1"
    for name, on in (("stdin", stdin), ("stdout", stdout), ("stderr", stderr)):
        if on:
            query[name] = "1"
    if detach_keys:
        query["detachKeys"] = detach_keys
    try:
        response = client.request("POST", f"/containers/{container}/attach",
                                  query=sorted(query.items()),
                                  headers={"Connection": "Upgrade", "Upgrade": "tcp",
                                           "Content-Type": "text/plain"})
    except APIError as e:
        raise UpgradeRefused(e.status) from None
    return Hijacked(response.sock, response.fp)


CHUNK = 1 << 18


def demultiplex(read1: Callable[[int], bytes], out: BinaryIO | None,
                err: BinaryIO | None) -> None:
    """stdcopy.StdCopy: copy each frame's payload to `out` (stdin, stdout) or `err`
    (stderr) until the stream ends; StreamError for a system-error frame.

    Read in large chunks, whatever the frames' sizes; what arrived is written
    and flushed before the next read, and at every change of stream, so
    interleaved stdout and stderr keep their order on a shared terminal. A
    frame cut short by the end of the stream gives what it has."""
    buf = bytearray()
    while True:
        chunk = read1(CHUNK)
        if chunk:
            buf += chunk
        at = _write_frames(buf, out, err, eof=not chunk)
        del buf[:at]
        if not chunk:
            return


def _write_frames(buf: bytearray, out, err, eof: bool) -> int:
    """Write the payloads of the frames in `buf`; how many bytes were used."""
    at, target, pending = 0, None, []
    while len(buf) - at >= 8:
        stream = buf[at]
        size = struct.unpack_from(">I", buf, at + 4)[0]
        if len(buf) - at - 8 < size and not eof:
            break
        if stream == SYSTEMERR:
            _flush(target, pending)
            raise StreamError(buf[at + 8:at + 8 + size].decode(errors="replace"))
        if stream not in (STDIN, STDOUT, STDERR):
            _flush(target, pending)
            raise StreamError(f"Unrecognized input header: {stream}")
        dest = err if stream == STDERR else out
        if dest is not target:
            _flush(target, pending)
            target, pending = dest, []
        payload = buf[at + 8:at + 8 + size]
        if dest is not None and payload:
            pending.append(payload)
        at += 8 + len(payload)
    _flush(target, pending)
    return len(buf) if eof else at


def _flush(target, pending: list) -> None:
    if target is not None and pending:
        target.write(b"".join(pending))
        target.flush()


def copy_raw(read1: Callable[[int], bytes], out: BinaryIO | None) -> None:
    """A TTY's output: the bytes as they come."""
    while chunk := read1(CHUNK):
        if out is not None:
            out.write(chunk)
            out.flush()
