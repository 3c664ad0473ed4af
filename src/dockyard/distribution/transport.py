"""HTTP to registries: requests over http.client, kept-alive connections, redirects.

Why not aiohttp, which the daemon already has: a pull writes every byte it
reads into the content store and hashes it, which is blocking work; done
on the event loop it would stall every other API call. So pulls and pushes
run in worker threads, and each thread speaks plain blocking HTTP here;
hashlib and file writes release the GIL, so downloads really run side by side.

Connections are pooled per (scheme, host) and reused once a response has
been read to its end. Blob downloads are often redirected to a storage
backend (S3, a CDN): a redirect is followed without the Authorization
header unless it stays on the same host, as Go's client does.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
from typing import BinaryIO, Iterable, Iterator
from urllib.parse import urljoin, urlsplit

from dockyard.distribution.errors import RequestFailed, TransportError

CHUNK = 1 << 20
TIMEOUT = 60.0
MAX_REDIRECTS = 10


class Response:
    """An open response: headers now, the body as it is read."""

    def __init__(self, method: str, url: str, raw: http.client.HTTPResponse,
                 release):
        self.method = method
        self.url = url
        self.status = raw.status
        self.reason = raw.reason
        self.headers = raw.headers
        self._raw = raw
        self._release = release

    @property
    def status_line(self) -> str:
        return f"{self.status} {self.reason}"

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name, default)

    def header_values(self, name: str) -> list[str]:
        return self.headers.get_all(name) or []

    def read(self, n: int = -1) -> bytes:
        try:
            data = self._raw.read(n) if n >= 0 else self._raw.read()
        except (OSError, http.client.HTTPException) as e:
            self.close(reuse=False)
            raise RequestFailed(self.method, self.url, _reason(e)) from e
        if self._raw.isclosed():
            self.close()
        return data

    def iter_chunks(self, size: int = CHUNK) -> Iterator[bytes]:
        while chunk := self.read(size):
            yield chunk

    def close(self, reuse: bool = True) -> None:
        if self._release is not None:
            release, self._release = self._release, None
            release(reuse and self._raw.isclosed())

    def __enter__(self) -> "Response":
        return self

    def __exit__(self, *exc) -> None:
        self.close(reuse=False)


def _reason(e: BaseException) -> str:
    """What Go would print after the URL for a failure below HTTP."""
    if isinstance(e, ConnectionRefusedError):
        return "connect: connection refused"
    if isinstance(e, ssl.SSLError):
        if "WRONG_VERSION_NUMBER" in str(e) or "record layer failure" in str(e):
            return "http: server gave HTTP response to HTTPS client"
        if isinstance(e, ssl.SSLCertVerificationError):
            return f"tls: failed to verify certificate: {e.verify_message}"
        return f"tls: {(e.reason or str(e)).lower().replace('_', ' ')}"
    if isinstance(e, (socket.timeout, TimeoutError)):
        return "net/http: request canceled (Client.Timeout exceeded while awaiting headers)"
    if isinstance(e, http.client.RemoteDisconnected):
        return "EOF"
    return e.strerror if isinstance(e, OSError) and e.strerror else str(e) or type(e).__name__


class Transport:
    """One pool of connections; safe to share between threads."""

    def __init__(self, user_agent: str, timeout: float = TIMEOUT):
        self.user_agent = user_agent
        self.timeout = timeout
        self._idle: dict[tuple[str, str, bool], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()

    def _connection(self, scheme: str, netloc: str,
                    verify: bool) -> tuple[http.client.HTTPConnection, bool]:
        """A connection, and whether it was kept alive from an earlier request."""
        key = (scheme, netloc, verify)
        with self._lock:
            idle = self._idle.get(key)
            if idle:
                return idle.pop(), True
        if scheme == "https":
            context = ssl.create_default_context()
            if not verify:  # an --insecure-registry: TLS if it speaks it, unchecked
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            return http.client.HTTPSConnection(netloc, timeout=self.timeout,
                                               context=context), False
        return http.client.HTTPConnection(netloc, timeout=self.timeout), False

    def _put_back(self, key, conn: http.client.HTTPConnection, reuse: bool) -> None:
        if not reuse:
            conn.close()
            return
        with self._lock:
            self._idle.setdefault(key, []).append(conn)

    def close(self) -> None:
        with self._lock:
            for conns in self._idle.values():
                for conn in conns:
                    conn.close()
            self._idle.clear()

    def request(self, method: str, url: str, headers: dict[str, str] | None = None,
                body: bytes | BinaryIO | Iterable[bytes] | None = None, verify: bool = True,
                follow_redirects: bool = True) -> Response:
        """Send one request (following redirects of GET and HEAD); raise
        TransportError when no HTTP answer came."""
        headers = {"User-Agent": self.user_agent, **(headers or {})}
        for _ in range(MAX_REDIRECTS + 1):
            response = self._send(method, url, headers, body, verify)
            if not follow_redirects or method not in ("GET", "HEAD") or \
                    response.status not in (301, 302, 303, 307, 308):
                return response
            location = response.header("Location")
            response.close(reuse=False)
            if not location:
                return response
            target = urljoin(url, location)
            if urlsplit(target).netloc != urlsplit(url).netloc:
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            url = target
        raise RequestFailed(method, url, "stopped after 10 redirects")

    def _send(self, method: str, url: str, headers: dict[str, str], body,
              verify: bool) -> Response:
        parts = urlsplit(url)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        key = (parts.scheme, parts.netloc, verify)
        # A kept-alive connection the server has closed meanwhile fails on
        # first use; the request is sent again on a fresh one, if its body can
        # be sent again.
        while True:
            conn, reused = self._connection(parts.scheme, parts.netloc, verify)
            try:
                if body is not None and not isinstance(body, (bytes, bytearray)):
                    chunked = "Content-Length" not in headers
                    conn.request(method, path, body=_chunks(body), headers=headers,
                                 encode_chunked=chunked)
                else:
                    conn.request(method, path, body=body, headers=headers)
                raw = conn.getresponse()
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                stale = isinstance(e, (http.client.RemoteDisconnected, BrokenPipeError,
                                       ConnectionResetError))
                if reused and stale and (body is None or isinstance(body, (bytes, bytearray))):
                    continue
                raise TransportError(method, url, _dial_reason(e, parts.netloc)) from e
            if method == "HEAD":
                raw.read()  # no body; marks the response complete so the connection is reused
            return Response(method, url, raw, lambda reuse, c=conn: self._put_back(key, c, reuse))


def _dial_reason(e: BaseException, netloc: str) -> str:
    if isinstance(e, ConnectionRefusedError):
        host, _, port = netloc.rpartition(":")
        addr = netloc if port.isdigit() else netloc + ":443"
        return f"dial tcp {addr}: connect: connection refused"
    return _reason(e)


def _chunks(body) -> Iterator[bytes]:
    if hasattr(body, "read"):
        while chunk := body.read(CHUNK):
            yield chunk
    else:
        yield from body
