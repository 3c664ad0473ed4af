"""The auth dance against a small in-process registry and token server on
127.0.0.1 (auth.py, client.py): scopes, Basic, Bearer, token caching."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from dockyard.distribution.auth import Session, repository_scope
from dockyard.distribution.authconfig import AuthConfig
from dockyard.distribution.client import connect, login
from dockyard.distribution.endpoints import Endpoint
from dockyard.distribution.errors import RequestFailed, TransportError
from dockyard.distribution.transport import Transport


def test_scope_strings():
    assert repository_scope("library/busybox", ["pull"]) == "repository:library/busybox:pull"
    assert repository_scope("team/app", ["pull", "push"]) == "repository:team/app:pull,push"


class FakeRegistry:
    """/v2/ behind Bearer (mode "bearer") or Basic (mode "basic") auth; a
    token server at /token that wants user:secret (or nothing, anonymous)."""

    def __init__(self, mode: str):
        self.mode = mode
        self.token_requests: list[dict] = []
        self.seen_auth: list[str] = []
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, status, doc=None, headers=()):
                raw = json.dumps(doc or {}).encode()
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.send_header("Docker-Distribution-API-Version", "registry/2.0")
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self):
                url = urlsplit(self.path)
                auth = self.headers.get("Authorization", "")
                if url.path == "/token":
                    query = parse_qs(url.query)
                    registry.token_requests.append({"query": query, "auth": auth})
                    if auth and auth != "Basic " + base64.b64encode(b"user:secret").decode():
                        return self._send(401, {"errors": [{"code": "UNAUTHORIZED",
                                                            "message": "bad password"}]})
                    return self._send(200, {"token": "tok-" + ",".join(query.get("scope", [])),
                                            "expires_in": 300})
                registry.seen_auth.append(auth)
                if registry.mode == "bearer":
                    if auth.startswith("Bearer tok-"):
                        return self._send(200, {})
                    challenge = (f'Bearer realm="http://127.0.0.1:{registry.port}/token",'
                                 'service="fake"')
                else:
                    if auth == "Basic " + base64.b64encode(b"user:secret").decode():
                        return self._send(200, {})
                    challenge = 'Basic realm="fake"'
                self._send(401, {"errors": [{"code": "UNAUTHORIZED",
                                             "message": "authentication required"}]},
                           [("WWW-Authenticate", challenge)])

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(f"http://127.0.0.1:{self.port}", verify_tls=False)


@pytest.fixture
def transport():
    t = Transport("dockyard-test")
    yield t
    t.close()


def test_bearer_token_for_the_scopes_with_credentials_then_cached(transport):
    with FakeRegistry("bearer") as reg:
        creds = AuthConfig(username="user", password="secret")
        repo = connect(transport, [reg.endpoint], creds, "team/app", ["pull", "push"])
        for _ in range(2):
            r = repo.session.request("GET", "/v2/team/app/tags/list", repo.scopes)
            r.read()
            r.close()
            assert r.status == 200
        assert len(reg.token_requests) == 1  # the second request reused the token
        query = reg.token_requests[0]["query"]
        assert query == {"service": ["fake"], "scope": ["repository:team/app:pull,push"],
                         "account": ["user"]}
        assert reg.seen_auth[-1] == "Bearer tok-repository:team/app:pull,push"


def test_anonymous_bearer_token(transport):
    with FakeRegistry("bearer") as reg:
        repo = connect(transport, [reg.endpoint], AuthConfig(), "library/x", ["pull"])
        r = repo.session.request("GET", "/v2/", repo.scopes)
        r.close()
        assert r.status == 200
        assert reg.token_requests[0]["auth"] == ""
        assert "account" not in reg.token_requests[0]["query"]


def test_basic_without_credentials_is_not_sent(transport):
    with FakeRegistry("basic") as reg:
        repo = connect(transport, [reg.endpoint], AuthConfig(), "x", ["pull"])
        before = len(reg.seen_auth)
        with pytest.raises(RequestFailed) as e:
            repo.session.request("HEAD", "/v2/x/manifests/1", repo.scopes)
        assert str(e.value) == (f'Head "http://127.0.0.1:{reg.port}/v2/x/manifests/1": '
                                "no basic auth credentials")
        assert len(reg.seen_auth) == before


def test_login_basic_success_and_failure(transport):
    with FakeRegistry("basic") as reg:
        assert login(transport, [reg.endpoint], AuthConfig(username="user", password="secret")) \
            == ("Login Succeeded", "")
        with pytest.raises(Exception) as e:
            login(transport, [reg.endpoint], AuthConfig(username="user", password="wrong"))
        assert str(e.value) == (f"login attempt to http://127.0.0.1:{reg.port}/v2/ failed with "
                                "status: 401 Unauthorized")


def test_login_bearer_wrong_password_is_unauthorized(transport):
    from dockyard import errdefs
    with FakeRegistry("bearer") as reg:
        assert login(transport, [reg.endpoint],
                     AuthConfig(username="user", password="secret"))[0] == "Login Succeeded"
        with pytest.raises(errdefs.Unauthorized) as e:
            login(transport, [reg.endpoint], AuthConfig(username="user", password="nope"))
        assert str(e.value).endswith("unauthorized: bad password")


def test_unreachable_endpoint_falls_through_then_fails_as_go_says(transport):
    with FakeRegistry("basic") as reg:
        dead = Endpoint("http://127.0.0.1:1", verify_tls=False)
        repo = connect(transport, [dead, reg.endpoint], AuthConfig(), "x", ["pull"])
        assert repo.session.endpoint == reg.endpoint
    with pytest.raises(TransportError) as e:
        connect(transport, [dead], AuthConfig(), "x", ["pull"])
    assert str(e.value) == ('Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: '
                            "connect: connection refused")


def test_session_ping_learns_challenges(transport):
    with FakeRegistry("bearer") as reg:
        s = Session(transport, reg.endpoint, AuthConfig())
        assert s.ping() == 401
        assert s.confirmed_v2
        assert [c.scheme for c in s.challenges] == ["bearer"]
