"""Digests: `algorithm ":" encoded`, as the OCI image spec defines them.

    digest    := algorithm ":" encoded
    algorithm := component (separator component)*
    component := [a-z0-9]+
    separator := [+._-]
    encoded   := [a-zA-Z0-9=_-]+

The registry verifies what it is given, so it accepts only the algorithms it can
compute (sha256, sha384 and sha512; the image spec registers sha256 and sha512,
and go-digest, which distribution uses, also knows sha384), each with its exact
lowercase-hex length. Anything else is DIGEST_INVALID, never a 500.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from dockyard.registry.errors import DigestInvalid

_GRAMMAR = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+", re.ASCII)
_HEX = re.compile(r"[a-f0-9]+", re.ASCII)
HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}
CANONICAL = "sha256"


@dataclass(frozen=True)
class Digest:
    algorithm: str
    encoded: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.encoded}"

    def hasher(self) -> "hashlib._Hash":
        return hashlib.new(self.algorithm)


def parse_digest(value: str) -> Digest:
    """The digest in `value`, or DigestInvalid saying what is wrong with it."""
    if not _GRAMMAR.fullmatch(value):
        raise DigestInvalid(f"invalid digest {value!r}", detail={"digest": value})
    algorithm, encoded = value.split(":", 1)
    length = HEX_LENGTH.get(algorithm)
    if length is None:
        raise DigestInvalid(f"unsupported digest algorithm {algorithm!r}",
                            detail={"digest": value})
    if len(encoded) != length or not _HEX.fullmatch(encoded):
        raise DigestInvalid(f"invalid {algorithm} digest {value!r}", detail={"digest": value})
    return Digest(algorithm, encoded)


def is_digest(value: str) -> bool:
    """True when `value` has a digest's shape (a tag never contains ':')."""
    return ":" in value


def digest_of(data: bytes, algorithm: str = CANONICAL) -> Digest:
    return Digest(algorithm, hashlib.new(algorithm, data).hexdigest())
