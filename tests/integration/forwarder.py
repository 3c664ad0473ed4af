"""A plain HTTP forwarder on 127.0.0.1 to a registry, for tests that need the
registry to misbehave: a subclass's `on_get` may hold an answer back or
change it; HEADs and everything else pass through as they are."""

from __future__ import annotations

import http.client
import http.server
import threading

WAIT = 60  # seconds an answer may take on a loaded machine


class Forwarder:
    def __init__(self, upstream_port: int):
        forwarder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 - http.server's name
                status, headers, data = self._upstream()
                answer = forwarder.on_get(self, status, headers, data)
                self.answer(*(answer or (status, headers, data, len(data))))

            def do_HEAD(self):  # noqa: N802
                status, headers, _ = self._upstream()
                self.answer(status, headers, b"", int(headers.get("Content-Length", 0)))

            def _upstream(self) -> tuple[int, dict, bytes]:
                conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=WAIT)
                try:
                    headers = {k: v for k, v in self.headers.items()
                               if k.lower() not in ("host", "connection")}
                    conn.request(self.command, self.path, headers=headers)
                    r = conn.getresponse()
                    return r.status, dict(r.getheaders()), r.read()
                finally:
                    conn.close()

            def answer(self, status: int, headers: dict, data: bytes, length: int) -> None:
                """`data` under a Content-Length of `length` (true or not)."""
                self.send_response(status)
                for k, v in headers.items():
                    if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(length))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.addr = f"127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def on_get(self, handler, status: int, headers: dict,
               data: bytes) -> tuple[int, dict, bytes, int] | None:
        """What to answer a GET instead of the registry's answer (None: that)."""
        return None

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(WAIT)
