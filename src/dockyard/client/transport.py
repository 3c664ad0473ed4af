"""HTTP/1.1 over a UNIX or TCP socket, with only the standard library's socket.

Why not http.client: importing it pulls in email.parser and ssl, about 40 ms
on a cold start, which is most of what `dockyard version` may cost. The
subset here is what the Engine API needs, with http.client's interface so
callers do not notice: Connection.request()/getresponse()/close(), and
Response.status/reason/read()/read1()/getheader()/getheaders()/close().

- Requests: a bytes body is sent with Content-Length; an iterable of chunks
  with `encode_chunked=True` as Transfer-Encoding: chunked; POST/PUT/PATCH
  without a body send Content-Length: 0.
- Responses: bodies framed by Content-Length, by chunked encoding, or by the
  end of the connection; none for HEAD, 1xx, 204 and 304. The socket closes
  when the body has been read. After a 101 (an upgraded, "hijacked" stream
  such as attach), `response.sock` and `response.fp` carry the raw stream.
"""

from __future__ import annotations

import socket

TYPE_CHECKING = False  # typing costs ~10 ms at start-up; only type checkers need it
if TYPE_CHECKING:
    from typing import Iterable

_NO_BODY_STATUS = {204, 304}
_MAX_LINE = 65536


class HTTPError(OSError):
    """The peer did not speak HTTP/1.x."""


class Headers:
    """Response headers: order kept, names looked up case-insensitively."""

    def __init__(self, items: list[tuple[str, str]]):
        self._items = items

    def get(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        values = [v for k, v in self._items if k.lower() == name]
        return ", ".join(values) if values else default

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)


class Response:
    def __init__(self, sock: socket.socket, method: str):
        self.sock = sock
        self.fp = sock.makefile("rb")
        self.status, self.reason = self._status_line()
        while self.status == 100:  # "100 Continue" comes before the real answer
            self._read_headers()
            self.status, self.reason = self._status_line()
        self.headers = Headers(self._read_headers())
        self.msg = self.headers
        self._chunked = False
        self._remaining: int | None = None  # None: until the connection ends
        self._chunk_left = 0
        self._done = False
        if method == "HEAD" or self.status < 200 or self.status in _NO_BODY_STATUS:
            self._done = self.status != 101
            if self._done:
                self._finish()
        elif "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self._chunked = True
        elif self.headers.get("Content-Length") is not None:
            self._remaining = int(self.headers["Content-Length"])
            if self._remaining == 0:
                self._done = True
                self._finish()

    # -- head --

    def _line(self) -> bytes:
        line = self.fp.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise HTTPError("HTTP line too long")
        return line

    def _status_line(self) -> tuple[int, str]:
        line = self._line()
        if not line:
            raise ConnectionResetError("the daemon closed the connection without answering")
        parts = line.decode("iso-8859-1").rstrip("\r\n").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise HTTPError(f"bad HTTP status line: {line[:80]!r}")
        return int(parts[1]), parts[2] if len(parts) > 2 else ""

    def _read_headers(self) -> list[tuple[str, str]]:
        items = []
        while True:
            line = self._line()
            if line in (b"\r\n", b"\n", b""):
                return items
            name, _, value = line.decode("iso-8859-1").partition(":")
            items.append((name.strip(), value.strip()))

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    def getheaders(self) -> list[tuple[str, str]]:
        return self.headers.items()

    # -- body --

    def read(self, amt: int | None = None) -> bytes:
        if amt is None or amt < 0:
            parts = []
            while chunk := self.read1(1 << 20):
                parts.append(chunk)
            return b"".join(parts)
        out = bytearray()
        while len(out) < amt:
            chunk = self.read1(amt - len(out))
            if not chunk:
                break
            out += chunk
        return bytes(out)

    def read1(self, amt: int = 65536) -> bytes:
        """Up to `amt` bytes, returning as soon as some are there; b"" at the end."""
        if self._done:
            return b""
        if amt <= 0:
            return b""
        if self._chunked:
            data = self._read1_chunked(amt)
        elif self._remaining is not None:
            data = self.fp.read1(min(amt, self._remaining)) if self._remaining else b""
            self._remaining -= len(data)
            if self._remaining and not data:
                raise ConnectionResetError("the daemon closed the connection mid-response")
        else:
            data = self.fp.read1(amt)
        if not data or self._remaining == 0:
            self._done = True
            self._finish()
        return data

    def _read1_chunked(self, amt: int) -> bytes:
        if self._chunk_left == 0:
            line = self._line()
            if not line:
                raise ConnectionResetError("the daemon closed the connection mid-response")
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                self._read_headers()  # trailers
                return b""
            self._chunk_left = size
        data = self.fp.read1(min(amt, self._chunk_left))
        if not data:
            raise ConnectionResetError("the daemon closed the connection mid-response")
        self._chunk_left -= len(data)
        if self._chunk_left == 0:
            self.fp.readline(_MAX_LINE)  # the CRLF after each chunk
        return data

    def readable(self) -> bool:
        return True

    def _finish(self) -> None:
        if self.status != 101:
            self.close()

    def close(self) -> None:
        self._done = True
        try:
            self.fp.close()
        finally:
            self.sock.close()

    def __enter__(self) -> "Response":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Connection:
    """One HTTP/1.1 connection; `address` is a socket path or (host, port)."""

    def __init__(self, address: str | tuple[str, int], timeout: float | None = None,
                 host_header: str = "localhost"):
        self.address = address
        self.timeout = timeout
        self.host_header = host_header
        self.sock: socket.socket | None = None
        self._method = "GET"

    def connect(self) -> None:
        if isinstance(self.address, str):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                if self.timeout is not None:
                    sock.settimeout(self.timeout)
                sock.connect(self.address)
            except BaseException:
                sock.close()
                raise
        else:
            sock = socket.create_connection(self.address, self.timeout)
        self.sock = sock

    def request(self, method: str, url: str, body: bytes | str | Iterable[bytes] | None = None,
                headers: dict[str, str] | None = None, encode_chunked: bool = False) -> None:
        if self.sock is None:
            self.connect()
        self._method = method
        hdrs = {"Host": self.host_header, "Accept-Encoding": "identity"}
        hdrs.update(headers or {})
        lower = {k.lower() for k in hdrs}
        if isinstance(body, str):
            body = body.encode()
        if body is None:
            if method in ("POST", "PUT", "PATCH") and "content-length" not in lower:
                hdrs["Content-Length"] = "0"
        elif isinstance(body, (bytes, bytearray, memoryview)):
            if "content-length" not in lower:
                hdrs["Content-Length"] = str(len(body))
        elif encode_chunked and "transfer-encoding" not in lower:
            hdrs["Transfer-Encoding"] = "chunked"
        head = f"{method} {url} HTTP/1.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
        assert self.sock is not None
        self.sock.sendall(head.encode("iso-8859-1"))
        if body is None:
            return
        if isinstance(body, (bytes, bytearray, memoryview)):
            self.sock.sendall(body)
        elif encode_chunked:
            for chunk in body:
                if chunk:
                    self.sock.sendall(b"%x\r\n" % len(chunk) + bytes(chunk) + b"\r\n")
            self.sock.sendall(b"0\r\n\r\n")
        else:
            for chunk in body:
                self.sock.sendall(chunk)

    def getresponse(self) -> Response:
        assert self.sock is not None
        response = Response(self.sock, self._method)
        self.sock = None  # the response owns the socket now
        return response

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
