"""A small, synchronous Engine API client over http.client."""

from __future__ import annotations

import json
import os
from urllib.parse import urlencode, quote

from dockyard.client.transport import Connection, Response

TYPE_CHECKING = False  # typing costs ~10 ms at start-up; only type checkers need it
if TYPE_CHECKING:
    from typing import Any, BinaryIO, Iterator

DEFAULT_HOST = "unix:///run/dockyard/dockyard.sock"
USER_AGENT = "Dockyard-Client/0.1.0 (linux)"


def default_host() -> str:
    return os.environ.get("DOCKYARD_HOST") or os.environ.get("DOCKER_HOST") or DEFAULT_HOST


class APIError(Exception):
    """The daemon answered with an error status; `message` is its message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class Client:
    def __init__(self, host: str | None = None, timeout: float | None = None):
        self.host = host or default_host()
        self.timeout = timeout

    def _connection(self) -> Connection:
        if self.host.startswith("unix://"):
            return Connection(self.host[len("unix://"):], self.timeout)
        if self.host.startswith("tcp://") or self.host.startswith("http://"):
            hostport = self.host.split("://", 1)[1].rstrip("/")
            host, _, port = hostport.rpartition(":") if ":" in hostport else (hostport, "", "80")
            return Connection((host.strip("[]"), int(port)), self.timeout, host_header=hostport)
        raise ValueError(f"unsupported host {self.host!r}")

    def request(self, method: str, path: str, query: dict | list | None = None,
                body: Any = None, headers: dict[str, str] | None = None) -> Response:
        """Send a request and return the open response; raise APIError on >= 400."""
        url = quote(path, safe="/:@?=&")
        if query:
            items = query.items() if isinstance(query, dict) else query
            url += "?" + urlencode([(k, v) for k, v in items if v is not None])
        hdrs = {"User-Agent": USER_AGENT, **(headers or {})}
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        conn = self._connection()
        try:
            if body is not None and hasattr(body, "read"):
                hdrs.setdefault("Transfer-Encoding", "chunked")
                conn.request(method, url, body=_chunks(body), headers=hdrs, encode_chunked=True)
            else:
                conn.request(method, url, body=body, headers=hdrs)
            response = conn.getresponse()
        except (FileNotFoundError, ConnectionRefusedError) as e:
            conn.close()
            raise ConnectionError(
                f"Cannot connect to the Docker daemon at {self.host}. "
                "Is the docker daemon running?") from e
        if response.status >= 400:
            raw = response.read()
            conn.close()
            try:
                message = json.loads(raw).get("message", "")
            except (ValueError, AttributeError):
                message = raw.decode(errors="replace").strip()
            if not message:
                import http.client  # only for the rare error without a message
                message = http.client.responses.get(response.status, "")
            raise APIError(response.status, message)
        return response

    def json(self, method: str, path: str, **kw: Any) -> Any:
        response = self.request(method, path, **kw)
        raw = response.read()
        return json.loads(raw) if raw.strip() else None

    def get(self, path: str, **kw: Any) -> Any:
        return self.json("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.json("POST", path, **kw)

    def stream_json(self, method: str, path: str, **kw: Any) -> Iterator[dict]:
        """A JSON-stream body (one object per line), yielding objects as they come."""
        return json_messages(self.request(method, path, **kw))


def _chunks(f: BinaryIO) -> Iterator[bytes]:
    while chunk := f.read(1 << 20):
        yield chunk


def json_messages(response: Any, chunk_size: int = 65536) -> Iterator[dict]:
    """Decode a body of concatenated JSON values (load, import, events) as they
    arrive; bytes that never become a value raise ValueError at the end."""
    import codecs

    decoder = json.JSONDecoder()
    utf8 = codecs.getincrementaldecoder("utf-8")("replace")
    read = getattr(response, "read1", None) or response.read
    buf = ""
    while True:
        chunk = read(chunk_size)
        buf += utf8.decode(chunk or b"", final=not chunk)
        while True:
            buf = buf.lstrip()
            if not buf:
                break
            try:
                obj, end = decoder.raw_decode(buf)
            except ValueError:
                if not chunk:
                    raise ValueError(f"invalid character in JSON stream: {buf[:40]!r}") from None
                break
            buf = buf[end:]
            yield obj
        if not chunk:
            return
