"""Manifests in storage: kinds, references that must exist, tags, referrers, delete."""

from __future__ import annotations

import json

import pytest

from registry_fill import OCI_INDEX, OCI_MANIFEST, descriptor, image_manifest, push_blob
from dockyard.registry.digest import digest_of
from dockyard.registry.errors import (DigestInvalid, ManifestBlobUnknown, ManifestInvalid,
                                      ManifestUnknown, NameUnknown, TagInvalid)
from dockyard.registry.manifest import DOCKER_MANIFEST, parse_manifest


def test_put_by_tag_then_get_by_tag_and_digest(registry):
    data = image_manifest(registry, "r", [b"layer"])
    d, _ = registry.put_manifest("r", "v1", data, OCI_MANIFEST)
    assert d == digest_of(data)
    assert registry.get_manifest("r", "v1") == (d, OCI_MANIFEST, data)
    assert registry.get_manifest("r", str(d)) == (d, OCI_MANIFEST, data)
    assert registry.tags("r") == ["v1"]


def test_missing_blob_is_manifest_blob_unknown_and_nothing_is_stored(registry):
    push_blob(registry, "r", b"{}")
    body = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": descriptor("application/vnd.oci.image.config.v1+json", b"{}"),
            "layers": [descriptor("application/vnd.oci.image.layer.v1.tar", b"never pushed")]}
    data = json.dumps(body).encode()
    with pytest.raises(ManifestBlobUnknown) as info:
        registry.put_manifest("r", "v1", data, OCI_MANIFEST)
    assert info.value.detail == {"digest": str(digest_of(b"never pushed"))}
    assert registry.tags("r") == []
    assert not registry.blob_exists(digest_of(data))


def test_a_blob_of_another_repository_does_not_count(registry):
    push_blob(registry, "other", b"layer")
    push_blob(registry, "r", b"{}")
    body = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": descriptor("application/vnd.oci.image.config.v1+json", b"{}"),
            "layers": [descriptor("application/vnd.oci.image.layer.v1.tar", b"layer")]}
    with pytest.raises(ManifestBlobUnknown):
        registry.put_manifest("r", "v1", json.dumps(body).encode(), OCI_MANIFEST)
    assert registry.mount_blob("r", digest_of(b"layer"), "other")
    registry.put_manifest("r", "v1", json.dumps(body).encode(), OCI_MANIFEST)


def test_index_needs_its_child_manifests(registry):
    child = image_manifest(registry, "r", [b"l"])
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                        "manifests": [descriptor(OCI_MANIFEST, child)]}).encode()
    with pytest.raises(ManifestBlobUnknown):
        registry.put_manifest("r", "multi", index, OCI_INDEX)
    registry.put_manifest("r", str(digest_of(child)), child, OCI_MANIFEST)
    d, manifest = registry.put_manifest("r", "multi", index, OCI_INDEX)
    assert manifest.is_index and registry.get_manifest("r", "multi")[1] == OCI_INDEX


def test_put_by_digest_must_match_the_bytes(registry):
    data = image_manifest(registry, "r", [])
    with pytest.raises(DigestInvalid):
        registry.put_manifest("r", str(digest_of(b"else")), data, OCI_MANIFEST)
    d, _ = registry.put_manifest("r", str(digest_of(data)), data, OCI_MANIFEST)
    assert registry.tags("r") == [] and registry.revisions("r") == [d]


@pytest.mark.parametrize("data,content_type", [
    (b"not json", OCI_MANIFEST),
    (b"[]", OCI_MANIFEST),
    (b'{"schemaVersion": 1}', OCI_MANIFEST),
    (b'{"schemaVersion": 2, "mediaType": "text/plain", "config": {}}', None),
    (b'{"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v1'
     b'+prettyjws"}', None),
    (b'{"schemaVersion": 2, "layers": []}', OCI_MANIFEST),   # no config
    (b'{"schemaVersion": 2, "config": {"mediaType": "x", "digest": "sha256:1", "size": 1}}',
     OCI_MANIFEST),                                         # bad digest
    (b'{"schemaVersion": 2, "mediaType": "' + OCI_MANIFEST.encode() + b'", "config": '
     b'{"mediaType": "x", "digest": "sha256:' + b"a" * 64 + b'", "size": -1}}', None),
])
def test_invalid_manifests(data, content_type):
    with pytest.raises(ManifestInvalid):
        parse_manifest(data, content_type)


def test_media_type_field_must_agree_with_content_type():
    body = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                       "config": descriptor("c", b"{}"), "layers": []}).encode()
    assert parse_manifest(body, DOCKER_MANIFEST).media_type == DOCKER_MANIFEST
    assert parse_manifest(body, "application/json").media_type == DOCKER_MANIFEST
    with pytest.raises(ManifestInvalid):
        parse_manifest(body, OCI_MANIFEST)


def test_oci_manifest_without_media_type_takes_the_content_type():
    body = json.dumps({"schemaVersion": 2, "manifests": []}).encode()
    assert parse_manifest(body, None).media_type == OCI_INDEX
    assert parse_manifest(body, OCI_INDEX).media_type == OCI_INDEX


def test_invalid_tag(registry):
    with pytest.raises(TagInvalid):
        registry.put_manifest("r", "-bad", image_manifest(registry, "r", []), OCI_MANIFEST)


def test_referrers_and_their_artifact_type(registry):
    subject = image_manifest(registry, "r", [b"base"])
    s, _ = registry.put_manifest("r", "v1", subject, OCI_MANIFEST)
    sbom = image_manifest(registry, "r", [b"sbom"], artifactType="application/spdx+json",
                          subject=descriptor(OCI_MANIFEST, subject),
                          annotations={"k": "v"})
    sig = image_manifest(registry, "r", [b"sig"], config=b'{"sig":1}',
                         subject=descriptor(OCI_MANIFEST, subject))
    d1, m1 = registry.put_manifest("r", str(digest_of(sbom)), sbom, OCI_MANIFEST)
    d2, _ = registry.put_manifest("r", str(digest_of(sig)), sig, OCI_MANIFEST)
    assert m1.subject.digest == s
    found = {r["digest"]: r for r in registry.referrers("r", s)}
    assert set(found) == {str(d1), str(d2)}
    assert found[str(d1)] == {"mediaType": OCI_MANIFEST, "digest": str(d1), "size": len(sbom),
                              "artifactType": "application/spdx+json",
                              "annotations": {"k": "v"}}
    # without artifactType of its own, a manifest's is its config's media type
    assert found[str(d2)]["artifactType"] == "application/vnd.oci.image.config.v1+json"
    only = registry.referrers("r", s, "application/spdx+json")
    assert [r["digest"] for r in only] == [str(d1)]
    registry.delete_manifest("r", str(d1))
    assert [r["digest"] for r in registry.referrers("r", s)] == [str(d2)]
    assert registry.referrers("r", digest_of(b"nothing")) == []


def test_delete_tag_keeps_the_manifest_delete_digest_removes_its_tags(registry):
    data = image_manifest(registry, "r", [b"l"])
    d, _ = registry.put_manifest("r", "a", data, OCI_MANIFEST)
    registry.put_manifest("r", "b", data, OCI_MANIFEST)
    registry.delete_manifest("r", "a")
    assert registry.tags("r") == ["b"]
    assert registry.get_manifest("r", str(d))[0] == d
    registry.delete_manifest("r", str(d))
    assert registry.tags("r") == []
    with pytest.raises(ManifestUnknown):
        registry.get_manifest("r", str(d))
    with pytest.raises(ManifestUnknown):
        registry.delete_manifest("r", "a")


def test_repositories_and_unknown_names(registry):
    push_blob(registry, "b/nested/deep", b"x")
    push_blob(registry, "b", b"x")
    registry.put_manifest("a", "t", image_manifest(registry, "a", []), OCI_MANIFEST)
    assert registry.repositories() == ["a", "b", "b/nested/deep"]
    with pytest.raises(NameUnknown):
        registry.tags("nope")
