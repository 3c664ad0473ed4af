"""Repository names, tags and digests, by the distribution spec's grammar."""

from __future__ import annotations

import pytest

from dockyard.registry.digest import Digest, digest_of, parse_digest
from dockyard.registry.errors import DigestInvalid, NameInvalid, TagInvalid
from dockyard.registry.names import validate_name, validate_tag

HEX = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize("name", [
    "a", "busybox", "test/busybox", "a/b/c/d", "foo.bar", "foo_bar", "foo__bar", "foo-bar",
    "foo---bar", "0", "a" * 255, "library/ubuntu-20.04",
])
def test_valid_names(name):
    assert validate_name(name) == name


@pytest.mark.parametrize("name", [
    "", "A", "Busybox", "-a", "a-", "a_", "_a", "a//b", "/a", "a/", "a..b", "a___b", "a.-b",
    "a:b", "a b", "a\n", "a" * 256, "é",
])
def test_invalid_names(name):
    with pytest.raises(NameInvalid) as info:
        validate_name(name)
    assert info.value.code == "NAME_INVALID"


@pytest.mark.parametrize("tag", ["1", "latest", "v1.0.0-rc_1", "_x", "A", "a" * 128])
def test_valid_tags(tag):
    assert validate_tag(tag) == tag


@pytest.mark.parametrize("tag", ["", ".a", "-a", "a" * 129, "a:b", "a/b", "a\n", "a+b"])
def test_invalid_tags(tag):
    with pytest.raises(TagInvalid) as info:
        validate_tag(tag)
    assert info.value.code == "TAG_INVALID"


def test_digest_parses_into_its_parts():
    d = parse_digest("sha256:" + HEX)
    assert d == Digest("sha256", HEX)
    assert str(d) == "sha256:" + HEX
    assert parse_digest("sha512:" + "a" * 128).algorithm == "sha512"


@pytest.mark.parametrize("value", [
    "sha256:" + HEX[:-1],           # too short
    "sha256:" + HEX + "0",          # too long
    "sha256:" + HEX.upper(),        # hex must be lowercase
    "md5:" + "a" * 32,              # an algorithm we cannot verify
    "sha256" + HEX,                 # no separator
    "SHA256:" + HEX,                # algorithm grammar is lowercase
    "sha256:",
    "",
])
def test_invalid_digests(value):
    with pytest.raises(DigestInvalid) as info:
        parse_digest(value)
    assert info.value.code == "DIGEST_INVALID"
    assert info.value.detail == {"digest": value}


def test_digest_of_bytes():
    assert str(digest_of(b"")) == "sha256:" + HEX
    assert digest_of(b"", "sha512").algorithm == "sha512"
