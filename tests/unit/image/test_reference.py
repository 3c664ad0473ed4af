"""Image references, checked against distribution/reference's own test tables.

Cases come from normalize_test.go and reference_test.go (TestValidateReferenceName,
TestValidateRemoteName, TestParseRepositoryInfo, TestNormalizedSplitHostname,
TestParseAnyReference, TestParseDockerRef, TestReferenceParse, TestWithTag,
TestWithDigest), run through the normalizing entry points docker uses.
"""

from __future__ import annotations

import dataclasses

import pytest

from dockyard import errdefs
from dockyard.image.reference import (
    Reference,
    ReferenceError,
    familiarize,
    is_full_id,
    is_id_prefix,
    parse_any,
    parse_normalized,
    validate_tag,
)

HEX = "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c"
DIGEST = "sha256:" + HEX
FFS = "sha256:" + "f" * 64


# --- normalization: input -> (full string, domain, path, familiar name) ------

NORMALIZED = [
    ("busybox", "docker.io/library/busybox", "docker.io", "library/busybox", "busybox"),
    ("library/ubuntu", "docker.io/library/ubuntu", "docker.io", "library/ubuntu", "ubuntu"),
    ("docker.io/foo", "docker.io/library/foo", "docker.io", "library/foo", "foo"),
    ("docker.io/library/foo/bar", "docker.io/library/foo/bar", "docker.io", "library/foo/bar",
     "library/foo/bar"),
    ("index.docker.io/fooo/bar", "docker.io/fooo/bar", "docker.io", "fooo/bar", "fooo/bar"),
    ("index.docker.io/library/ubuntu-12.04-base", "docker.io/library/ubuntu-12.04-base",
     "docker.io", "library/ubuntu-12.04-base", "ubuntu-12.04-base"),
    ("other/library", "docker.io/other/library", "docker.io", "other/library", "other/library"),
    ("store/foo/bar", "docker.io/store/foo/bar", "docker.io", "store/foo/bar", "store/foo/bar"),
    ("localhost/fooo", "localhost/fooo", "localhost", "fooo", "localhost/fooo"),
    ("localhost/fooo/bar", "localhost/fooo/bar", "localhost", "fooo/bar", "localhost/fooo/bar"),
    ("LOCALDOMAIN/fooo", "LOCALDOMAIN/fooo", "LOCALDOMAIN", "fooo", "LOCALDOMAIN/fooo"),
    ("Foo/bar", "Foo/bar", "Foo", "bar", "Foo/bar"),
    ("127.0.0.1:8000/private/moonbase", "127.0.0.1:8000/private/moonbase", "127.0.0.1:8000",
     "private/moonbase", "127.0.0.1:8000/private/moonbase"),
    ("example.com/privatebase", "example.com/privatebase", "example.com", "privatebase",
     "example.com/privatebase"),
    ("example.com:8000/privatebasee", "example.com:8000/privatebasee", "example.com:8000",
     "privatebasee", "example.com:8000/privatebasee"),
    ("test-com:8080/foo", "test-com:8080/foo", "test-com:8080", "foo", "test-com:8080/foo"),
    ("test_com/foo", "docker.io/test_com/foo", "docker.io", "test_com/foo", "test_com/foo"),
    ("xn--n3h.com:18080/foo", "xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo",
     "xn--n3h.com:18080/foo"),
    ("[fc00::1]:5000/docker/docker", "[fc00::1]:5000/docker/docker", "[fc00::1]:5000",
     "docker/docker", "[fc00::1]:5000/docker/docker"),
    # A single component is never a domain, not even "localhost".
    ("localhost", "docker.io/library/localhost", "docker.io", "library/localhost", "localhost"),
    # docker quirk: "foo_bar.com" contains "." so it is split off as a domain, but it is
    # not a valid domain, so the whole string parses as a domain-less path.
    ("foo_bar.com/x", "foo_bar.com/x", "", "foo_bar.com/x", "foo_bar.com/x"),
]


@pytest.mark.parametrize(("text", "full", "domain", "path", "familiar"), NORMALIZED)
def test_normalize(text: str, full: str, domain: str, path: str, familiar: str) -> None:
    ref = parse_normalized(text)
    assert (str(ref), ref.domain, ref.path, ref.name) == (full, domain, path, full)
    assert (ref.familiar_name, ref.familiar()) == (familiar, familiar)
    assert ref.tag is None and ref.digest is None
    # Both spellings normalize to the same thing.
    assert parse_normalized(full) == ref
    assert parse_normalized(familiar) == ref


# --- tags, digests and ports -----------------------------------------------

SHA512 = "sha512:" + "a" * 128

TAGGED = [
    # input, full string, tag, digest, familiar string
    ("busybox:latest", "docker.io/library/busybox:latest", "latest", None, "busybox:latest"),
    ("lowercase:Uppercase", "docker.io/library/lowercase:Uppercase", "Uppercase", None,
     "lowercase:Uppercase"),
    # a single component is never a domain: ":5000" is a tag
    ("test.com:5000", "docker.io/library/test.com:5000", "5000", None, "test.com:5000"),
    ("192.168.1.1:5000", "docker.io/library/192.168.1.1:5000", "5000", None, "192.168.1.1:5000"),
    ("localhost:5000", "docker.io/library/localhost:5000", "5000", None, "localhost:5000"),
    ("192.168.1.1:5000/repo:5050", "192.168.1.1:5000/repo:5050", "5050", None,
     "192.168.1.1:5000/repo:5050"),
    ("test:5000/repo@" + FFS, "test:5000/repo@" + FFS, None, FFS, "test:5000/repo@" + FFS),
    ("test:5000/repo:tag@" + FFS, "test:5000/repo:tag@" + FFS, "tag", FFS,
     "test:5000/repo:tag@" + FFS),
    ("[2001:db8::1]:5000/repo:tag", "[2001:db8::1]:5000/repo:tag", "tag", None,
     "[2001:db8::1]:5000/repo:tag"),
    ("b.gcr.io/test.example.com/my-app:test.example.com",
     "b.gcr.io/test.example.com/my-app:test.example.com", "test.example.com", None,
     "b.gcr.io/test.example.com/my-app:test.example.com"),
    ("redis@" + DIGEST, "docker.io/library/redis@" + DIGEST, None, DIGEST, "redis@" + DIGEST),
    ("localhost:5000/app@" + DIGEST, "localhost:5000/app@" + DIGEST, None, DIGEST,
     "localhost:5000/app@" + DIGEST),
    ("busybox:latest@" + DIGEST, "docker.io/library/busybox:latest@" + DIGEST, "latest", DIGEST,
     "busybox:latest@" + DIGEST),
    ("docker.io/dmcgowan/myapp:1.0", "docker.io/dmcgowan/myapp:1.0", "1.0", None,
     "dmcgowan/myapp:1.0"),
    ("foo@" + SHA512, "docker.io/library/foo@" + SHA512, None, SHA512, "foo@" + SHA512),
]


@pytest.mark.parametrize(("text", "full", "tag", "digest", "familiar"), TAGGED)
def test_tags_digests_ports(
    text: str, full: str, tag: str | None, digest: str | None, familiar: str
) -> None:
    ref = parse_normalized(text)
    assert (str(ref), ref.tag, ref.digest, ref.familiar()) == (full, tag, digest, familiar)
    assert parse_normalized(str(ref)) == ref


def test_name_length_limit() -> None:
    # The limit is on the path, not the domain or the tag.
    ref = parse_normalized("example.com/" + "a" * 255 + ":tag")
    assert len(ref.path) == 255
    ref = parse_normalized("a/" * 127 + "a:tag-puts-this-over-max")
    assert (ref.domain, len(ref.path), ref.tag) == ("docker.io", 255, "tag-puts-this-over-max")
    too_long = "^repository name must not be more than 255 characters$"
    with pytest.raises(ReferenceError, match=too_long):
        parse_normalized("example.com/" + "a" * 256)
    with pytest.raises(ReferenceError, match=too_long):
        parse_normalized("domain/" + "a" * 256 + ":tag")  # docker.io/domain/aaa...


# --- validity --------------------------------------------------------------

VALID = [
    "docker/docker", "debian", "localhost/library/debian", "LOCALDOMAIN/library/debian",
    "docker.io/debian", "index.docker.io/docker/docker", "127.0.0.1:5000/library/debian",
    "192.168.0.1", "192.168.0.1:80", "192.168.0.1:8/debian",
    "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
    "[fc00::1]:5000/docker", "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
    "docker.io/" + HEX,  # hex is fine once a domain removes the ambiguity
    "Docker/docker", "DOCKER/docker", "docker-rules/docker", "docker---rules/docker",
    "d/docker", "jess/t", "dock__er/docker", "a__b", "a.b_c-d", "sub-dom1.foo.com/bar/baz/quux",
]


@pytest.mark.parametrize("text", VALID)
def test_valid_names(text: str) -> None:
    parse_normalized(text)


INVALID = [
    "https://github.com/docker/docker", "-docker", "-docker/docker", "-docker.io/docker/docker",
    "docker-/docker", "-docker-/docker", "docker///docker", "docker.io/docker///docker", "foo//bar",
    "[fc00::1]", "[fc00::1]:5000", "fc00::1:5000/debian", "[fe80::1%eth0]:5000/debian",
    "[2001:db8:3:4::192.0.2.33]:5000/debian", "[2001:db8::1]:tag",
    "____/____", "_docker/_docker", "a___b",
    "dock..er/docker", "dock_.er/docker", "dock-.er/docker",
    "docker/", "/docker", "busybox:", "busybox@", "busybox:-tag", "busybox:" + "a" * 129,
    ":justtag", "@" + FFS, "aa/asdf$$^/aa", "busybox\n", " busybox", "bü/x",
]

# distribution/reference's "namespace too long" case: a valid-looking name whose path
# is over 255 characters.
TOO_LONG_NAMESPACE = "_".join(
    ["this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255"] * 4
)


@pytest.mark.parametrize("text", INVALID)
def test_invalid_names(text: str) -> None:
    with pytest.raises(ReferenceError):
        parse_normalized(text)


ERRORS = [
    ("", "invalid reference format"),
    ("busybox:", "invalid reference format"),
    ("docker///docker", "invalid reference format"),
    ("Busybox", "invalid reference format: repository name (library/Busybox) must be lowercase"),
    ("Uppercase:tag",
     "invalid reference format: repository name (library/Uppercase) must be lowercase"),
    ("docker/Docker",
     "invalid reference format: repository name (docker/Docker) must be lowercase"),
    ("test:5000/Uppercase/lowercase:tag",
     "invalid reference format: repository name (Uppercase/lowercase) must be lowercase"),
    # An uppercase first component is taken as a domain; when it is not a valid one
    # but would be a valid lowercase path, Parse says so without the prefix.
    ("Foo_Bar/baz", "repository name must be lowercase"),
    (HEX, f"invalid repository name ({HEX}), cannot specify 64-byte hexadecimal strings"),
    ("repo@sha256:" + "f" * 34, "invalid checksum digest length"),
    ("repo@sha256:" + "F" * 64, "invalid checksum digest format"),
    ("validname@invaliddigest:" + "f" * 64, "unsupported digest algorithm"),
    (TOO_LONG_NAMESPACE + "/docker", "repository name must not be more than 255 characters"),
]


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_error_messages(text: str, message: str) -> None:
    with pytest.raises(ReferenceError) as info:
        parse_normalized(text)
    assert str(info.value) == message


def test_error_kind() -> None:
    with pytest.raises(ValueError):
        parse_normalized("-x")
    with pytest.raises(errdefs.InvalidParameter):
        parse_normalized("-x")


# --- helpers: TagNameOnly, WithTag, WithDigest -----------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("library/busybox", "docker.io/library/busybox:latest"),
        ("docker.io/busybox:1", "docker.io/library/busybox:1"),
        ("gcr.io/library/busybox", "gcr.io/library/busybox:latest"),
        ("busybox@" + DIGEST, "docker.io/library/busybox@" + DIGEST),
        ("gcr.io/busybox:x@" + DIGEST, "gcr.io/busybox:x@" + DIGEST),
    ],
)
def test_tagged_or_latest(text: str, expected: str) -> None:
    assert str(parse_normalized(text).tagged_or_latest()) == expected


def test_with_tag_and_digest() -> None:
    ref = parse_normalized("test.com:8000/foo")
    assert str(ref.with_tag("TAG5")) == "test.com:8000/foo:TAG5"
    # WithTag keeps a digest and WithDigest keeps a tag; WithDigest checks only the
    # grammar, so a short sha256 passes, as in docker's TestWithTag.
    short = "sha256:1234567890098765432112345667890098765"
    assert str(ref.with_digest(short).with_tag("TAG5")) == f"test.com:8000/foo:TAG5@{short}"
    assert str(ref.with_tag("t").with_digest(DIGEST)) == f"test.com:8000/foo:t@{DIGEST}"
    assert ref.with_tag("t").familiar() == "test.com:8000/foo:t"
    with pytest.raises(ReferenceError, match="^invalid tag format$"):
        ref.with_tag("-foo")
    with pytest.raises(ReferenceError, match="^invalid digest format$"):
        ref.with_digest("foo")
    with pytest.raises(ReferenceError, match="^invalid digest format$"):
        ref.with_digest("sha256:abc")


def test_reference_is_frozen_and_comparable() -> None:
    ref = parse_normalized("busybox:1")
    assert ref == Reference("docker.io", "library/busybox", "1", None)
    assert {ref, parse_normalized("docker.io/library/busybox:1")} == {ref}
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.tag = "2"  # type: ignore[misc]


@pytest.mark.parametrize("tag", ["latest", "v1.0", "A_b-c", "_x", "1", "a" * 128])
def test_valid_tags(tag: str) -> None:
    validate_tag(tag)


@pytest.mark.parametrize("tag", ["", "-foo", ".foo", "a" * 129, "a/b", "a:b", "a@b", "tág", "a\n"])
def test_invalid_tags(tag: str) -> None:
    with pytest.raises(ReferenceError, match="^invalid tag format$"):
        validate_tag(tag)


# --- IDs: ParseAnyReference and prefixes -----------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (HEX, DIGEST),
        (DIGEST, DIGEST),
        (SHA512, SHA512),
        # 63 hex digits is a name, as is a short one
        (HEX[:-1], "docker.io/library/" + HEX[:-1]),
        ("dbcc1", "docker.io/library/dbcc1"),
        # an invalid digest is not an ID: it falls through to a name with a tag
        ("sha256:abc", "docker.io/library/sha256:abc"),
        ("redis:latest", "docker.io/library/redis:latest"),
        ("dmcgowan/myapp@" + DIGEST, "docker.io/dmcgowan/myapp@" + DIGEST),
    ],
)
def test_parse_any(text: str, expected: str) -> None:
    result = parse_any(text)
    assert str(result) == expected
    assert isinstance(result, str) == (not expected.startswith("docker.io/"))


def test_parse_any_still_rejects() -> None:
    with pytest.raises(ReferenceError, match="must be lowercase"):
        parse_any("Busybox")


@pytest.mark.parametrize(
    ("text", "full", "prefix"),
    [
        (HEX, True, True),
        (DIGEST, True, True),
        (HEX.upper(), False, False),
        (HEX[:-1], False, True),
        ("sha256:" + HEX[:12], False, True),
        ("d", False, True),
        (HEX + "0", False, False),
        ("sha256:", False, False),
        ("", False, False),
        ("sha512:" + HEX, False, False),
        ("xyz", False, False),
    ],
)
def test_ids(text: str, full: bool, prefix: bool) -> None:
    assert (is_full_id(text), is_id_prefix(text)) == (full, prefix)


@pytest.mark.parametrize(
    ("name", "familiar"),
    [
        ("docker.io/library/busybox", "busybox"),
        ("docker.io/library/busybox:latest", "busybox:latest"),
        ("docker.io/library/foo/bar", "library/foo/bar"),
        ("docker.io/user/app@" + DIGEST, "user/app@" + DIGEST),
        ("localhost:5000/app", "localhost:5000/app"),
        ("quay.io/library/x", "quay.io/library/x"),
        ("busybox", "busybox"),
    ],
)
def test_familiarize(name: str, familiar: str) -> None:
    assert familiarize(name) == familiar


def test_familiarize_rejects() -> None:
    with pytest.raises(ReferenceError, match="^repository name must have at least one"):
        familiarize("")
    with pytest.raises(ReferenceError, match="^invalid reference format$"):
        familiarize("a//b")
