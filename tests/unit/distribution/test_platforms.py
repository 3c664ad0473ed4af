"""Platform specifiers and choosing an index entry (platforms.py)."""

import pytest

from dockyard import errdefs
from dockyard.distribution import platforms
from dockyard.distribution.platforms import Platform


@pytest.mark.parametrize("spec, expected", [
    ("linux/amd64", Platform("linux", "amd64")),
    ("linux/x86_64", Platform("linux", "amd64")),
    ("LINUX/AARCH64", Platform("linux", "arm64")),
    ("linux/arm64/v8", Platform("linux", "arm64")),
    ("linux/arm", Platform("linux", "arm", "v7")),
    ("linux/arm/v6", Platform("linux", "arm", "v6")),
    ("linux/armhf", Platform("linux", "arm", "v7")),
    ("linux/386", Platform("linux", "386")),
    ("i386", Platform("linux", "386")),
    ("arm64", Platform("linux", "arm64")),
    ("windows/amd64", Platform("windows", "amd64")),
])
def test_parse_normalizes(spec, expected):
    assert platforms.parse(spec) == expected


@pytest.mark.parametrize("spec", ["", "linux//amd64", "a/b/c/d"])
def test_parse_refuses(spec):
    with pytest.raises(errdefs.InvalidParameter):
        platforms.parse(spec)


def _entry(digest, os, arch, variant=None):
    p = {"os": os, "architecture": arch}
    if variant:
        p["variant"] = variant
    return {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
            "size": 1, "platform": p}


INDEX = [_entry("sha256:a", "linux", "amd64"), _entry("sha256:b", "linux", "arm64", "v8"),
         _entry("sha256:c", "linux", "arm", "v6"), _entry("sha256:d", "linux", "arm", "v7"),
         _entry("sha256:e", "windows", "amd64"),
         {"digest": "sha256:f", "platform": {"os": "unknown", "architecture": "unknown"}}]


@pytest.mark.parametrize("wanted, digest", [
    (Platform("linux", "amd64"), "sha256:a"),
    (Platform("linux", "arm64"), "sha256:b"),          # no variant and v8 are the same
    (Platform("linux", "arm", "v7"), "sha256:d"),      # exact variant first
    (Platform("linux", "arm", "v6"), "sha256:c"),
    (Platform("windows", "amd64"), "sha256:e"),
])
def test_choose_best_entry(wanted, digest):
    assert platforms.choose(INDEX, wanted)["digest"] == digest


def test_older_arm_variant_runs_on_newer_host():
    entries = [_entry("sha256:v5", "linux", "arm", "v5"), _entry("sha256:v6", "linux", "arm", "v6")]
    assert platforms.choose(entries, Platform("linux", "arm", "v7"))["digest"] == "sha256:v6"
    assert platforms.choose(entries, Platform("linux", "arm", "v5"))["digest"] == "sha256:v5"


def test_no_match():
    assert platforms.choose(INDEX, Platform("linux", "s390x")) is None
    assert platforms.choose([_entry("sha256:v7", "linux", "arm", "v7")],
                            Platform("linux", "arm", "v6")) is None


def test_host_is_linux():
    assert platforms.host().os == "linux"
    assert platforms.choose(INDEX[:2], platforms.host()) is not None or \
        platforms.host().architecture not in ("amd64", "arm64")
