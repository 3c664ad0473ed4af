"""Credentials as clients send them: docker's AuthConfig.

`POST /images/create` and `POST /images/{name}/push` carry them in the
`X-Registry-Auth` header as base64url (padded, as Go's URLEncoding writes
it; docker-py's urlsafe_b64encode writes the same) of a JSON object;
`POST /auth` carries the JSON object as its body. `auth` is
base64("user:password"), the form config.json keeps; `identitytoken` is an
OAuth2 refresh token, `registrytoken` a bearer token to use as it is.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass


@dataclass
class AuthConfig:
    username: str = ""
    password: str = ""
    auth: str = ""
    email: str = ""
    serveraddress: str = ""
    identitytoken: str = ""
    registrytoken: str = ""

    @classmethod
    def from_dict(cls, doc: object) -> "AuthConfig":
        """The fields docker reads, matched without regard to case as Go's
        encoding/json does; anything else is ignored."""
        if not isinstance(doc, dict):
            return cls()
        known = {name: name for name in cls.__dataclass_fields__}
        values = {}
        for key, value in doc.items():
            name = known.get(str(key).lower())
            if name and isinstance(value, str):
                values[name] = value
        config = cls(**values)
        if not config.username and not config.password and config.auth:
            config.username, config.password = split_auth(config.auth)
        return config

    @property
    def has_credentials(self) -> bool:
        return bool(self.username and self.password)

    def to_dict(self) -> dict[str, str]:
        """docker's JSON of it: empty fields left out."""
        return {k: v for k, v in self.__dict__.items() if v}


def split_auth(auth: str) -> tuple[str, str]:
    """`auth` of config.json: base64("user:password")."""
    try:
        text = base64.b64decode(auth + "=" * (-len(auth) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    user, _, password = text.partition(":")
    return user, password


def decode_header(value: str) -> AuthConfig:
    """X-Registry-Auth: a value that does not decode is no credentials at all,
    as dockerd treats it ("to increase compatibility with the existing api")."""
    doc = _decode(value)
    return AuthConfig.from_dict(doc) if doc is not None else AuthConfig()


def decode_config_header(value: str) -> dict[str, AuthConfig]:
    """X-Registry-Config (a build's): the client's credentials by registry
    ("https://index.docker.io/v1/" for Docker Hub); none if it does not decode."""
    doc = _decode(value)
    if not isinstance(doc, dict):
        return {}
    return {key: AuthConfig.from_dict(entry) for key, entry in doc.items()
            if isinstance(entry, dict)}


def _decode(value: str):
    """base64url (padding optional) JSON, or None."""
    value = value.strip()
    if not value:
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (binascii.Error, ValueError):
        return None


def encode_header(config: AuthConfig) -> str:
    return base64.urlsafe_b64encode(json.dumps(config.to_dict()).encode()).decode()
