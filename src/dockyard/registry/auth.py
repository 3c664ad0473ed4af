"""Who may do what: htpasswd basic auth, and the bearer token flow.

Every request names the access it needs as the token spec's scopes
(`repository:<name>:pull`, `repository:<name>:push`, `repository:<name>:delete`,
`registry:catalog:*`; the base `/v2/` needs none but still a known client).
An access controller either lets the request through or raises:

    Unauthorized  401 + `WWW-Authenticate` (the challenge telling the client how
                  to authenticate: `Basic realm="..."`, or
                  `Bearer realm="...",service="...",scope="..."`)
    Denied        403, credentials fine but not for this

`BasicAuth` checks `Authorization: Basic` against an htpasswd file, as
distribution's htpasswd access controller: bcrypt entries (`$2y$`, `$2a$`,
`$2b$`, what `htpasswd -B` writes) and, beyond it, `{SHA}` entries (base64 of
SHA-1, what `htpasswd -s` writes). Other formats (MD5 `$apr1$`, crypt, plain)
are refused when the file is loaded, rather than locking their user out in
silence. bcrypt is slow on purpose (~0.1 s per check), and clients send the same
credentials with every request, so a successful check is remembered as an HMAC
of the password under a key that lives only in this process.

`TokenAuth` is the other half of docker's token flow: a client without a token
is sent to the token endpoint (`TokenServer`, served by the registry itself at
`/token`) which checks its basic credentials and signs a token (a JWT, HS256,
HMAC-SHA256 with a key from the configuration) granting the scopes it asked
for; each request's token must grant every scope the request needs, for that
repository and action. Authenticated users are granted what they ask for; a
per-user policy would go in `TokenServer.grant`.
"""

from __future__ import annotations

import abc
import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass

from dockyard import errdefs
from dockyard.registry.errors import Denied, Unauthorized


@dataclass(frozen=True)
class Access:
    """One scope: a resource (type and name) and the actions wanted on it."""

    type: str
    name: str
    actions: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"


def parse_scope(scope: str) -> Access | None:
    """`repository:name:pull,push` → Access; None for what is not a scope. The
    name may hold a ":" (a registry host with a port), so the actions are what
    follows the last one."""
    kind, sep, rest = scope.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not sep or not sep2 or not kind or not name:
        return None
    return Access(kind, name, tuple(a for a in actions.split(",") if a))


# --- htpasswd ------------------------------------------------------------------


class HtpasswdInvalid(errdefs.InvalidParameter):
    pass


def parse_htpasswd(text: str) -> dict[str, str]:
    """user → hash, from htpasswd lines (`user:hash`; blank lines and # comments skipped)."""
    entries = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not user or not hashed:
            raise HtpasswdInvalid(f"htpasswd line {number}: expected user:hash")
        if not (hashed.startswith(("$2y$", "$2a$", "$2b$")) or hashed.startswith("{SHA}")):
            raise HtpasswdInvalid(f"htpasswd line {number}: user {user!r}: only bcrypt "
                                  "(htpasswd -B) and {SHA} entries are supported")
        entries[user] = hashed
    return entries


def check_password(hashed: str, password: str) -> bool:
    """Whether `password` matches one htpasswd hash."""
    if hashed.startswith("{SHA}"):
        expected = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
        return hmac.compare_digest(expected, hashed[5:])
    import bcrypt  # imported here: only servers with an htpasswd file need it

    try:
        return bcrypt.checkpw(password.encode(), hashed.encode())
    except ValueError:  # a malformed hash never matches
        return False


class Htpasswd:
    """The users of one htpasswd file, with remembered successful checks."""

    def __init__(self, entries: dict[str, str]):
        self._entries = entries
        self._key = secrets.token_bytes(32)
        self._verified: dict[str, bytes] = {}
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: str) -> "Htpasswd":
        with open(path, encoding="utf-8") as f:
            return cls(parse_htpasswd(f.read()))

    def verify(self, user: str, password: str) -> bool:
        hashed = self._entries.get(user)
        if hashed is None:
            return False
        mac = hmac.new(self._key, f"{user}\0{password}".encode(), hashlib.sha256).digest()
        with self._lock:
            if hmac.compare_digest(self._verified.get(user, b""), mac):
                return True
        if not check_password(hashed, password):
            return False
        with self._lock:
            self._verified[user] = mac
        return True


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """(user, password) from an `Authorization: Basic ...` value, else None."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


# --- access controllers --------------------------------------------------------


class AccessController(abc.ABC):
    @abc.abstractmethod
    def authorize(self, authorization: str | None, wanted: list[Access]) -> str:
        """The user's name ("" when anonymous), or Unauthorized / Denied."""


class AllowAll(AccessController):
    def authorize(self, authorization: str | None, wanted: list[Access]) -> str:
        return ""


class BasicAuth(AccessController):
    def __init__(self, htpasswd: Htpasswd, realm: str):
        self.htpasswd = htpasswd
        self.realm = realm

    def authorize(self, authorization: str | None, wanted: list[Access]) -> str:
        challenge = f'Basic realm="{self.realm}"'
        credentials = basic_credentials(authorization)
        if credentials is None:
            raise Unauthorized(challenge=challenge)
        if not self.htpasswd.verify(*credentials):
            raise Unauthorized("invalid username or password", challenge=challenge)
        return credentials[0]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenInvalid(errdefs.Unauthorized):
    pass


def sign_token(key: bytes, claims: dict) -> str:
    """A JWT (HS256) carrying `claims`."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def verify_token(key: bytes, token: str, issuer: str, service: str, now: float) -> dict:
    """The claims of a token we signed, still valid and meant for `service`."""
    try:
        header, payload, signature = token.split(".")
        expected = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(signature)):
            raise TokenInvalid("invalid token signature")
        if json.loads(_unb64(header)).get("alg") != "HS256":
            raise TokenInvalid("unexpected token algorithm")
        claims = json.loads(_unb64(payload))
    except (ValueError, binascii.Error) as e:
        raise TokenInvalid("malformed token") from e
    if claims.get("iss") != issuer or claims.get("aud") != service:
        raise TokenInvalid("token not issued for this registry")
    if not claims.get("nbf", 0) - 60 <= now < claims.get("exp", 0):
        raise TokenInvalid("token expired")
    return claims


def granted(claims: dict, wanted: Access) -> bool:
    for access in claims.get("access", []):
        if access.get("type") == wanted.type and access.get("name") == wanted.name:
            actions = set(access.get("actions", []))
            if "*" in actions or set(wanted.actions) <= actions:
                return True
    return False


@dataclass(frozen=True)
class TokenConfig:
    realm: str     # where clients get tokens: the URL of our /token endpoint
    service: str   # the audience tokens are signed for
    issuer: str
    key: bytes     # the HMAC key, shared by the token server and the registry
    expiration: int = 300


class TokenAuth(AccessController):
    def __init__(self, config: TokenConfig):
        self.config = config

    def _challenge(self, wanted: list[Access], error: str = "") -> str:
        c = self.config
        parts = [f'realm="{c.realm}"', f'service="{c.service}"']
        if wanted:
            parts.append('scope="' + " ".join(str(a) for a in wanted) + '"')
        if error:
            parts.append(f'error="{error}"')
        return "Bearer " + ",".join(parts)

    def authorize(self, authorization: str | None, wanted: list[Access]) -> str:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized(challenge=self._challenge(wanted))
        try:
            claims = verify_token(self.config.key, token.strip(), self.config.issuer,
                                  self.config.service, time.time())
        except TokenInvalid as e:
            raise Unauthorized(str(e), challenge=self._challenge(wanted, "invalid_token"))
        for access in wanted:
            if not granted(claims, access):
                # A token without the scope: the client asks for a new one.
                raise Unauthorized("insufficient scope",
                                   detail=[{"Type": access.type, "Name": access.name,
                                            "Action": a} for a in access.actions],
                                   challenge=self._challenge(wanted, "insufficient_scope"))
        return claims.get("sub", "")


class TokenServer:
    """The token endpoint: basic credentials in, a signed token for the asked scopes out."""

    def __init__(self, config: TokenConfig, htpasswd: Htpasswd | None):
        self.config = config
        self.htpasswd = htpasswd

    def grant(self, user: str, asked: list[Access]) -> list[Access]:
        """What `user` gets of what was asked: everything for a known user,
        pull only for anonymous clients when there is no htpasswd file."""
        if user:
            return asked
        return [Access(a.type, a.name, tuple(x for x in a.actions if x == "pull"))
                for a in asked if a.type == "repository" and "pull" in a.actions]

    def issue(self, authorization: str | None, service: str, scopes: list[str]) -> dict:
        if service and service != self.config.service:
            raise Denied(f"unknown service {service!r}")
        user = ""
        credentials = basic_credentials(authorization)
        if self.htpasswd is not None:
            if credentials is None or not self.htpasswd.verify(*credentials):
                raise Unauthorized("invalid username or password",
                                   challenge=f'Basic realm="{self.config.realm}"')
            user = credentials[0]
        asked = [a for a in map(parse_scope, scopes) if a is not None]
        now = int(time.time())
        claims = {
            "iss": self.config.issuer, "sub": user, "aud": self.config.service,
            "iat": now, "nbf": now, "exp": now + self.config.expiration,
            "jti": _b64(os.urandom(12)),
            "access": [{"type": a.type, "name": a.name, "actions": list(a.actions)}
                       for a in self.grant(user, asked)],
        }
        token = sign_token(self.config.key, claims)
        return {"token": token, "access_token": token, "expires_in": self.config.expiration,
                "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}
