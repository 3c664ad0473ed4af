"""Speaking to one registry endpoint with one set of credentials.

The dance, as docker's distribution client does it: `GET /v2/` first (the
"ping"). 200 means no auth. 401 comes with challenges (challenge.py); from
then on every request is authorized by the first challenge we can answer:

- `Basic`: the username and password on every request. Without
  credentials the request is not even sent: "no basic auth credentials".
- `Bearer realm=R,service=S`: a token from the token server R for the
  scopes the operation needs, e.g. `repository:library/busybox:pull` or
  `repository:team/app:pull,push` (one `scope` parameter each). With
  credentials the token request carries them as Basic auth (and names the
  `account`); with an identity token (an OAuth2 refresh token from an
  earlier login) it is an OAuth2 POST instead. Anonymous tokens are fine
  for public repositories. Tokens are cached per scope set until they
  expire (`expires_in`, at least 60 s as the token spec says).

A `registrytoken` given by the client is used as the bearer token as it is.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from urllib.parse import urlencode

from dockyard.distribution import challenge
from dockyard.distribution.authconfig import AuthConfig
from dockyard.distribution.endpoints import Endpoint
from dockyard.distribution.errors import (NO_BASIC_AUTH_CREDENTIALS, RegistryError,
                                          RequestFailed, UnexpectedStatus, parse_error_body)
from dockyard.distribution.transport import Response, Transport

CLIENT_ID = "docker"  # what dockerd calls itself to token servers
MIN_TOKEN_LIFETIME = 60.0
API_VERSION_HEADER = "Docker-Distribution-API-Version"


def repository_scope(path: str, actions: list[str]) -> str:
    """A resource scope of the token spec: `repository:<name>:<actions>`."""
    return f"repository:{path}:{','.join(actions)}"


def error_of(response: Response) -> Exception:
    """HandleErrorResponse: what a failed response means, reading its body
    (bearer `error=` parameters first, as RFC 6750 puts them in the header)."""
    if 400 <= response.status < 500:
        body = response.read() if response.method != "HEAD" else b""
        for c in challenge.parse(response.header_values("WWW-Authenticate")):
            if c.scheme != "bearer":
                continue
            code = {"invalid_token": "UNAUTHORIZED",
                    "insufficient_scope": "DENIED"}.get(c.parameters.get("error", ""))
            if code:
                return RegistryError(code, c.parameters.get("error_description", ""))
        err = parse_error_body(response.status, body)
        if response.status == 401 and not isinstance(err, RegistryError) and \
                not hasattr(err, "errors"):
            return RegistryError("UNAUTHORIZED", "")
        return err
    response.close(reuse=False)
    return UnexpectedStatus(response.status_line)


class Session:
    """Authorized HTTP to one endpoint. Shared by a pull's download threads."""

    def __init__(self, transport: Transport, endpoint: Endpoint, creds: AuthConfig,
                 offline_access: bool = False):
        self.transport = transport
        self.endpoint = endpoint
        self.creds = creds
        self.offline_access = offline_access  # ask for a refresh token (login)
        self.challenges: list[challenge.Challenge] = []
        self.confirmed_v2 = False
        self.identity_token = ""  # a refresh token the token server gave us
        self._tokens: dict[tuple, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def url(self, path: str) -> str:
        return path if "://" in path else self.endpoint.url + path

    def ping(self) -> int:
        """GET /v2/: learn the challenges; the status it answered."""
        response = self.transport.request("GET", self.url("/v2/"),
                                          verify=self.endpoint.verify_tls)
        try:
            response.read()
        finally:
            response.close()
        self.confirmed_v2 = "registry/2.0" in response.header(API_VERSION_HEADER).split()
        if response.status == 401:
            self.challenges = challenge.parse(response.header_values("WWW-Authenticate"))
        return response.status

    def request(self, method: str, path: str, scopes: list[str] | None = None,
                headers: dict[str, str] | None = None, body=None,
                follow_redirects: bool = True) -> Response:
        url = self.url(path)
        hdrs = dict(headers or {})
        self._authorize(method, url, hdrs, scopes or [])
        return self.transport.request(method, url, hdrs, body, verify=self.endpoint.verify_tls,
                                      follow_redirects=follow_redirects)

    # -- authorizing ---------------------------------------------------------------
    def _authorize(self, method: str, url: str, headers: dict[str, str],
                   scopes: list[str]) -> None:
        for c in self.challenges:
            if c.scheme == "bearer":
                token = self.creds.registrytoken
                if not token:
                    try:
                        token = self._token(c.parameters, scopes)
                    except RequestFailed:
                        raise  # the token server could not be reached: already worded
                    except Exception as e:  # its refusal, worded as Go's url.Error
                        raise RequestFailed(method, url, e) from e
                headers["Authorization"] = f"Bearer {token}"
                return
            if c.scheme == "basic":
                if not self.creds.has_credentials:
                    raise RequestFailed(method, url, NO_BASIC_AUTH_CREDENTIALS)
                pair = f"{self.creds.username}:{self.creds.password}".encode()
                headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
                return

    def _token(self, params: dict[str, str], scopes: list[str]) -> str:
        realm = params.get("realm", "")
        service = params.get("service", "")
        key = (realm, service, tuple(sorted(scopes)))
        with self._lock:
            cached = self._tokens.get(key)
            if cached and cached[1] > time.monotonic():
                return cached[0]
        if not realm:
            raise RegistryError("UNAUTHORIZED", "no realm specified for token auth challenge")
        refresh = self.creds.identitytoken or self.identity_token
        if refresh:
            token, lifetime = self._oauth_token(realm, service, scopes, refresh)
        else:
            token, lifetime = self._basic_token(realm, service, scopes)
        with self._lock:
            self._tokens[key] = (token, time.monotonic() + lifetime)
        return token

    def _basic_token(self, realm: str, service: str, scopes: list[str]) -> tuple[str, float]:
        query: list[tuple[str, str]] = []
        if service:
            query.append(("service", service))
        query.extend(("scope", s) for s in scopes)
        headers = {}
        if self.creds.has_credentials:
            query.append(("account", self.creds.username))
            pair = f"{self.creds.username}:{self.creds.password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        if self.offline_access:
            query += [("offline_token", "true"), ("client_id", CLIENT_ID)]
        sep = "&" if "?" in realm else "?"
        url = realm + (sep + urlencode(query) if query else "")
        doc = self._token_response(self.transport.request("GET", url, headers,
                                                          verify=self.endpoint.verify_tls))
        token = doc.get("token") or doc.get("access_token") or ""
        if not token:
            raise RegistryError("UNAUTHORIZED", "authorization server did not include a token "
                                                "in the response")
        if doc.get("refresh_token"):
            self.identity_token = doc["refresh_token"]
        return token, _lifetime(doc)

    def _oauth_token(self, realm: str, service: str, scopes: list[str],
                     refresh: str) -> tuple[str, float]:
        form = {"grant_type": "refresh_token", "refresh_token": refresh, "service": service,
                "client_id": CLIENT_ID, "scope": " ".join(scopes)}
        if self.offline_access:
            form["access_type"] = "offline"
        body = urlencode(form).encode()
        doc = self._token_response(self.transport.request(
            "POST", realm, {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
                            "Content-Length": str(len(body))}, body,
            verify=self.endpoint.verify_tls))
        if doc.get("refresh_token"):
            self.identity_token = doc["refresh_token"]
        return doc.get("access_token") or doc.get("token") or "", _lifetime(doc)

    @staticmethod
    def _token_response(response: Response) -> dict:
        if response.status >= 300:
            raise error_of(response)
        raw = response.read()
        response.close()
        try:
            doc = json.loads(raw)
        except ValueError as e:
            raise RegistryError("UNKNOWN", f"unable to decode token response: {e}") from e
        return doc if isinstance(doc, dict) else {}


def _lifetime(doc: dict) -> float:
    try:
        expires = float(doc.get("expires_in") or 0)
    except (TypeError, ValueError):
        expires = 0
    return max(expires, MIN_TOKEN_LIFETIME)
