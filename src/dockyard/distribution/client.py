"""Opening a repository on the first endpoint that answers, and `login`.

A registry may have several endpoints (endpoints.py): an insecure one is
tried over HTTPS, then plain HTTP; Docker Hub after its mirrors. An
endpoint that cannot be spoken to at all (refused, TLS to a plain-HTTP
server) gives way to the next; the last one's failure is the error, in
Go's words (`Get "http://host/v2/": dial tcp host: connect: connection refused`).
"""

from __future__ import annotations

from dockyard import errdefs
from dockyard.distribution.auth import Session
from dockyard.distribution.authconfig import AuthConfig
from dockyard.distribution.endpoints import Endpoint
from dockyard.distribution.errors import (RegistryError, RegistryFailure, RequestFailed,
                                          TransportError, first_error)
from dockyard.distribution.repository import Repository
from dockyard.distribution.transport import Transport


def connect(transport: Transport, endpoints: list[Endpoint], creds: AuthConfig, path: str,
            actions: list[str]) -> Repository:
    last: Exception | None = None
    for endpoint in endpoints:
        session = Session(transport, endpoint, creds)
        try:
            session.ping()
        except TransportError as e:
            last = e
            continue
        return Repository(session, path, actions)
    raise last or RegistryFailure(f"no endpoints found for {path}")


class LoginUnauthorized(errdefs.Unauthorized):
    pass


def login(transport: Transport, endpoints: list[Endpoint], creds: AuthConfig) -> tuple[str, str]:
    """loginV2: ping, then `GET /v2/` authorized with the credentials.
    ("Login Succeeded", identity token) or an error in dockerd's words."""
    last: Exception | None = None
    for endpoint in endpoints:
        session = Session(transport, endpoint, creds, offline_access=True)
        url = session.url("/v2/")
        try:
            session.ping()
        except TransportError as e:
            last = e
            continue
        try:
            response = session.request("GET", "/v2/", scopes=[])
        except TransportError as e:
            last = e
            continue
        except RequestFailed as e:
            reason = first_error(e.reason) if isinstance(e.reason, Exception) else e.reason
            if isinstance(reason, RegistryError) and reason.code == "UNAUTHORIZED":
                raise LoginUnauthorized(str(e)) from e
            raise RegistryFailure(str(e)) from e
        response.read()
        response.close()
        if response.status == 200:
            return "Login Succeeded", session.identity_token
        # Untyped in dockerd (a 500), even when the registry said 401.
        raise RegistryFailure(f"login attempt to {url} failed with status: "
                              f"{response.status_line}")
    raise RegistryFailure(str(last)) if last else RegistryFailure("no endpoints found")
