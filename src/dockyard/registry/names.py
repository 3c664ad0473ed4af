"""Repository names and tags, checked by the distribution spec's grammar.

From the OCI distribution spec ("Pulling manifests"):

    <name>      [a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(\\/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*
    <reference> a tag:  [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
                or a digest (see digest.py)

and "many clients impose a limit of 255 characters on the length of the
concatenation of the registry hostname, port, and <name>"; distribution caps the
name itself at 255, and so do we. Patterns are compiled ASCII-only and matched
whole (Python's `$` would accept a trailing newline).
"""

from __future__ import annotations

import re

from dockyard.registry.errors import NameInvalid, TagInvalid

NAME_MAX = 255
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_NAME = re.compile(_COMPONENT + r"(?:/" + _COMPONENT + r")*", re.ASCII)
_TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}", re.ASCII)


def validate_name(name: str) -> str:
    """`name` if it is a valid repository name, else NameInvalid."""
    if len(name) > NAME_MAX:
        raise NameInvalid(f"repository name must not be more than {NAME_MAX} characters",
                          detail={"name": name})
    if not _NAME.fullmatch(name):
        raise NameInvalid(f"invalid repository name {name!r}", detail={"name": name})
    return name


def validate_tag(tag: str) -> str:
    """`tag` if it is a valid tag, else TagInvalid."""
    if not _TAG.fullmatch(tag):
        raise TagInvalid(f"invalid tag {tag!r}", detail={"tag": tag})
    return tag


def is_valid_tag(tag: str) -> bool:
    return bool(_TAG.fullmatch(tag))
