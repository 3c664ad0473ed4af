"""Image references, parsed and normalized as docker does.

This follows github.com/distribution/reference (regexp.go, normalize.go,
reference.go, helpers.go) and the digest checks of
github.com/opencontainers/go-digest, which that package relies on. The grammar:

    reference        := name [ ":" tag ] [ "@" digest ]
    name             := [domain "/"] remote-name
    domain           := host [":" port-number]
    host             := domain-name | IPv4address | "[" IPv6address "]"
    domain-name      := domain-component ["." domain-component]*
    domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
    port-number      := /[0-9]+/
    path-component   := alpha-numeric [separator alpha-numeric]*
    remote-name      := path-component ["/" path-component]*
    alpha-numeric    := /[a-z0-9]+/
    separator        := /[_.]|__|[-]+/
    tag              := /[\\w][\\w.-]{0,127}/
    digest           := algorithm ":" /[0-9a-fA-F]{32,}/
    identifier       := /[a-f0-9]{64}/

"Normalizing" turns what users type ("busybox") into the canonical name
("docker.io/library/busybox"); "familiar" is the way back. Error messages are
docker's, word for word, because the CLI prints them verbatim.

Go's regexp is RE2 with leftmost-first submatches, the same choice Python's
backtracking engine makes, so the groups captured here are the ones docker gets.
Two differences are handled explicitly: every pattern is compiled with re.ASCII
(RE2's \\w is ASCII-only) and matched with fullmatch (Python's "$" also matches
before a trailing newline).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from dockyard import errdefs

__all__ = [
    "DEFAULT_DOMAIN",
    "DEFAULT_TAG",
    "LEGACY_DEFAULT_DOMAIN",
    "OFFICIAL_REPO_PREFIX",
    "REPOSITORY_NAME_MAX",
    "Reference",
    "ReferenceError",
    "familiarize",
    "is_full_id",
    "is_id_prefix",
    "parse_any",
    "parse_normalized",
    "validate_tag",
]

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
REPOSITORY_NAME_MAX = 255
LOCALHOST = "localhost"

# --- messages (distribution/reference and go-digest) -------------------------

ERR_REFERENCE_INVALID_FORMAT = "invalid reference format"
ERR_TAG_INVALID_FORMAT = "invalid tag format"
ERR_DIGEST_INVALID_FORMAT = "invalid digest format"
ERR_NAME_CONTAINS_UPPERCASE = "repository name must be lowercase"
ERR_NAME_EMPTY = "repository name must have at least one component"
ERR_NAME_TOO_LONG = f"repository name must not be more than {REPOSITORY_NAME_MAX} characters"
# go-digest
ERR_CHECKSUM_INVALID_FORMAT = "invalid checksum digest format"
ERR_CHECKSUM_INVALID_LENGTH = "invalid checksum digest length"
ERR_DIGEST_UNSUPPORTED = "unsupported digest algorithm"


class ReferenceError(errdefs.InvalidParameter, ValueError):  # noqa: A001 - the brief's name
    """A string is not a valid image reference, tag or digest.

    An InvalidParameter, as moby reports these, and a ValueError for callers that
    only care that the value was bad.
    """


# --- grammar (regexp.go) -----------------------------------------------------

_ALPHANUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_DOMAIN_NAME_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_OPTIONAL_PORT = r"(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9A-Fa-f]{32,}"
_IDENTIFIER = r"[a-f0-9]{64}"
_IPV6_ADDRESS = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN_NAME = _DOMAIN_NAME_COMPONENT + r"(?:\." + _DOMAIN_NAME_COMPONENT + r")*"
_HOST = r"(?:" + _DOMAIN_NAME + r"|" + _IPV6_ADDRESS + r")"
_DOMAIN_AND_PORT = _HOST + _OPTIONAL_PORT
_PATH_COMPONENT = _ALPHANUMERIC + r"(?:" + _SEPARATOR + _ALPHANUMERIC + r")*"
_REMOTE_NAME = _PATH_COMPONENT + r"(?:/" + _PATH_COMPONENT + r")*"
_NAME = r"(?:" + _DOMAIN_AND_PORT + r"/)?" + _REMOTE_NAME

_REFERENCE_RE = re.compile(
    r"(" + _NAME + r")(?::(" + _TAG + r"))?(?:@(" + _DIGEST + r"))?", re.ASCII
)
_NAME_RE = re.compile(r"(?:(" + _DOMAIN_AND_PORT + r")/)?(" + _REMOTE_NAME + r")", re.ASCII)
_TAG_RE = re.compile(_TAG, re.ASCII)
_DIGEST_RE = re.compile(_DIGEST, re.ASCII)
_IDENTIFIER_RE = re.compile(_IDENTIFIER, re.ASCII)
_ID_PREFIX_RE = re.compile(r"(?:sha256:)?[a-f0-9]{1,64}", re.ASCII)

# go-digest: the general shape of a digest, and the algorithms docker can verify
# (go-digest v1.0.0 as vendored by moby, with crypto/sha256 and crypto/sha512
# linked in) with the length of their lowercase-hex encoding.
_GO_DIGEST_RE = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+", re.ASCII)
_HEX_RE = re.compile(r"[a-f0-9]+", re.ASCII)
_ALGORITHM_HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}


def _validate_digest(digest: str) -> None:
    """go-digest's Digest.Validate, raising ReferenceError with its messages."""
    algorithm, sep, encoded = digest.partition(":")
    if not sep or not encoded:
        raise ReferenceError(ERR_CHECKSUM_INVALID_FORMAT)
    length = _ALGORITHM_HEX_LENGTH.get(algorithm)
    if length is None:
        if not _GO_DIGEST_RE.fullmatch(digest):
            raise ReferenceError(ERR_CHECKSUM_INVALID_FORMAT)
        raise ReferenceError(ERR_DIGEST_UNSUPPORTED)
    if len(encoded) != length:
        raise ReferenceError(ERR_CHECKSUM_INVALID_LENGTH)
    if not _HEX_RE.fullmatch(encoded):
        raise ReferenceError(ERR_CHECKSUM_INVALID_FORMAT)


# --- the reference -----------------------------------------------------------


def _familiar_repository(domain: str, path: str) -> tuple[str, str]:
    """familiarizeName: drop "docker.io" and, for official images, "library/"."""
    if domain == DEFAULT_DOMAIN:
        domain = ""
        if path.startswith(OFFICIAL_REPO_PREFIX):
            remainder = path[len(OFFICIAL_REPO_PREFIX) :]
            if "/" not in remainder:
                path = remainder
    return domain, path


def _join(domain: str, path: str) -> str:
    return f"{domain}/{path}" if domain else path


@dataclass(frozen=True)
class Reference:
    """A named image reference: domain, path, and optionally a tag and a digest.

    Build one with parse_normalized(); the constructor does not validate. The
    domain is empty only for references docker itself leaves without one (a
    first component such as "foo_bar.com" that looks like a domain but is not
    one); `name` is then just the path, as in Go.
    """

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The canonical name, e.g. "docker.io/library/busybox"."""
        return _join(self.domain, self.path)

    @property
    def familiar_name(self) -> str:
        """The name as users type it, e.g. "busybox", "user/app", "localhost:5000/app"."""
        return _join(*_familiar_repository(self.domain, self.path))

    def _with_suffix(self, name: str) -> str:
        if self.tag is not None:
            name += ":" + self.tag
        if self.digest is not None:
            name += "@" + self.digest
        return name

    def __str__(self) -> str:
        """The full reference: name[:tag][@digest]."""
        return self._with_suffix(self.name)

    def familiar(self) -> str:
        """docker's FamiliarString, e.g. "busybox:latest"."""
        return self._with_suffix(self.familiar_name)

    def with_tag(self, tag: str) -> Reference:
        """docker's WithTag: set the tag, keeping any digest."""
        validate_tag(tag)
        return dataclasses.replace(self, tag=tag)

    def with_digest(self, digest: str) -> Reference:
        """docker's WithDigest: set the digest, keeping any tag.

        Like docker, this checks only the reference grammar's digest shape, not
        the algorithm or the length.
        """
        if not _DIGEST_RE.fullmatch(digest):
            raise ReferenceError(ERR_DIGEST_INVALID_FORMAT)
        return dataclasses.replace(self, digest=digest)

    def tagged_or_latest(self) -> Reference:
        """docker's TagNameOnly: add the "latest" tag when there is neither tag nor digest."""
        if self.tag is None and self.digest is None:
            return dataclasses.replace(self, tag=DEFAULT_TAG)
        return self


# --- parsing (reference.go, normalize.go) ------------------------------------


def _parse(s: str) -> Reference:
    """docker's Parse: a reference exactly as written, without normalizing."""
    if s == "":
        raise ReferenceError(ERR_NAME_EMPTY)
    match = _REFERENCE_RE.fullmatch(s)
    if match is None:
        # Go's strings.ToLower maps each rune on its own; Python's lower() also
        # applies SpecialCasing, which unconditionally differs only for U+0130.
        lowered = s.replace("\u0130", "i").lower()
        if lowered != s and _REFERENCE_RE.fullmatch(lowered):
            raise ReferenceError(ERR_NAME_CONTAINS_UPPERCASE)
        raise ReferenceError(ERR_REFERENCE_INVALID_FORMAT)
    name, tag, digest = match.groups()
    name_match = _NAME_RE.fullmatch(name)
    assert name_match is not None  # the same grammar matched it just above
    domain, path = name_match.group(1) or "", name_match.group(2)
    if len(path) > REPOSITORY_NAME_MAX:
        raise ReferenceError(ERR_NAME_TOO_LONG)
    if digest is not None:
        _validate_digest(digest)
    return Reference(domain=domain, path=path, tag=tag, digest=digest)


def _split_docker_domain(name: str) -> tuple[str, str]:
    """splitDockerDomain: the domain and the rest, defaulting to Docker Hub."""
    first, sep, rest = name.partition("/")
    if not sep:
        # A single component ("ubuntu", "ubuntu:latest", even "example.com:5000")
        # is always an official image on Docker Hub.
        return DEFAULT_DOMAIN, OFFICIAL_REPO_PREFIX + name
    if first == LOCALHOST:
        domain, remainder = first, rest
    elif first == LEGACY_DEFAULT_DOMAIN:
        domain, remainder = DEFAULT_DOMAIN, rest
    elif "." in first or ":" in first:
        domain, remainder = first, rest
    elif first.lower() != first:
        # Namespaces cannot be uppercase, so this must be a domain.
        domain, remainder = first, rest
    else:
        domain, remainder = DEFAULT_DOMAIN, name
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


def parse_normalized(s: str) -> Reference:
    """docker's ParseNormalizedNamed: "busybox" -> docker.io/library/busybox.

    The tag is not defaulted; see Reference.tagged_or_latest().
    """
    if _IDENTIFIER_RE.fullmatch(s):
        raise ReferenceError(
            f"invalid repository name ({s}), cannot specify 64-byte hexadecimal strings"
        )
    domain, remainder = _split_docker_domain(s)
    remote = remainder.split(":", 1)[0]
    if remote.lower() != remote:
        raise ReferenceError(
            f"{ERR_REFERENCE_INVALID_FORMAT}: repository name ({remote}) must be lowercase"
        )
    return _parse(domain + "/" + remainder)


def parse_any(s: str) -> Reference | str:
    """docker's ParseAnyReference: an image ID or digest, else a normalized name.

    A bare 64-hex identifier comes back as "sha256:<hex>"; a valid digest
    ("sha256:<hex>") comes back unchanged, as a string. Anything else is
    parse_normalized(s).
    """
    if _IDENTIFIER_RE.fullmatch(s):
        return "sha256:" + s
    try:
        _validate_digest(s)
    except ReferenceError:
        return parse_normalized(s)
    return s


def validate_tag(tag: str) -> None:
    """Raise ReferenceError("invalid tag format") unless `tag` is a valid tag."""
    if not _TAG_RE.fullmatch(tag):
        raise ReferenceError(ERR_TAG_INVALID_FORMAT)


def is_full_id(s: str) -> bool:
    """True for a full image ID: 64 lowercase hex digits, optionally after "sha256:"."""
    return bool(_IDENTIFIER_RE.fullmatch(s.removeprefix("sha256:")))


def is_id_prefix(s: str) -> bool:
    """True for a (possibly full) prefix of an image ID: 1-64 lowercase hex digits,
    optionally after "sha256:"."""
    return bool(_ID_PREFIX_RE.fullmatch(s))


def familiarize(name: str) -> str:
    """docker's FamiliarString of a canonical reference.

    "docker.io/library/busybox" -> "busybox"; a tag or digest is kept
    ("docker.io/user/app:1" -> "user/app:1"); other domains stay. The input is
    parsed as written (not normalized), so invalid input raises ReferenceError.
    """
    return _parse(name).familiar()
