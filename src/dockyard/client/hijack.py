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


def attach(client: Client, container: str, stdin: bool, stdout: bool, stderr: bool,
           detach_keys: str = "", logs: bool = False) -> Hijacked:
    """POST /containers/{id}/attach?stream=1 upgraded; APIError if the daemon refuses."""
    query = {"stream": "1"}
    if logs:
        query["logs"] = "1"
    for name, on in (("stdin", stdin), ("stdout", stdout), ("stderr", stderr)):
        if on:
            query[name] = "1"
    if detach_keys:
        query["detachKeys"] = detach_keys
    response = client.request("POST", f"/containers/{container}/attach",
                              query=sorted(query.items()),
                              headers={"Connection": "Upgrade", "Upgrade": "tcp",
                                       "Content-Type": "text/plain"})
    return Hijacked(response.sock, response.fp)


def _read_exactly(read1: Callable[[int], bytes], n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = read1(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def demultiplex(read1: Callable[[int], bytes], out: BinaryIO | None,
                err: BinaryIO | None) -> None:
    """stdcopy.StdCopy: copy each frame's payload to `out` (stdin, stdout) or `err`
    (stderr) until the stream ends; StreamError for a system-error frame.

    Each payload is written and flushed as it arrives, so interleaved stdout
    and stderr keep their order on a shared terminal."""
    while True:
        header = _read_exactly(read1, 8)
        if len(header) < 8:
            return
        stream = header[0]
        size = struct.unpack(">I", header[4:8])[0]
        payload = _read_exactly(read1, size)
        if stream == SYSTEMERR:
            raise StreamError(payload.decode(errors="replace"))
        if stream not in (STDIN, STDOUT, STDERR):
            raise StreamError(f"Unrecognized input header: {stream}")
        target = err if stream == STDERR else out
        if target is not None and payload:
            target.write(payload)
            target.flush()
        if len(payload) < size:
            return


def copy_raw(read1: Callable[[int], bytes], out: BinaryIO | None) -> None:
    """A TTY's output: the bytes as they come."""
    while chunk := read1(65536):
        if out is not None:
            out.write(chunk)
            out.flush()
