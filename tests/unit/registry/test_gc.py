"""Garbage collection: referenced blobs are kept, everything else goes."""

from __future__ import annotations

import json

from registry_fill import OCI_INDEX, OCI_MANIFEST, descriptor, image_manifest, push_blob
from dockyard.registry import gc
from dockyard.registry.digest import digest_of, parse_digest


def _fill(registry):
    """Two repositories sharing a layer; an index; a referrer; garbage."""
    a = image_manifest(registry, "a", [b"shared", b"only-a"], config=b'{"a":1}')
    registry.put_manifest("a", "v1", a, OCI_MANIFEST)
    b = image_manifest(registry, "b", [b"shared"], config=b'{"b":1}')
    registry.put_manifest("b", str(digest_of(b)), b, OCI_MANIFEST)
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                        "manifests": [descriptor(OCI_MANIFEST, b)]}).encode()
    registry.put_manifest("b", "multi", index, OCI_INDEX)
    ref = image_manifest(registry, "a", [b"signature"], subject=descriptor(OCI_MANIFEST, a))
    registry.put_manifest("a", str(digest_of(ref)), ref, OCI_MANIFEST)
    push_blob(registry, "a", b"orphan layer")           # pushed, never referenced
    deleted = image_manifest(registry, "a", [b"gone-layer"], config=b'{"gone":1}')
    registry.put_manifest("a", "old", deleted, OCI_MANIFEST)
    registry.delete_manifest("a", str(digest_of(deleted)))
    kept = [a, b"shared", b"only-a", b'{"a":1}', b, b'{"b":1}', index, ref, b"signature",
            b"{}"]
    removed = [b"orphan layer", deleted, b"gone-layer", b'{"gone":1}']
    return [digest_of(x) for x in kept], [digest_of(x) for x in removed]


def test_mark_finds_everything_referenced(registry):
    kept, removed = _fill(registry)
    marked = gc.mark(registry).marked
    assert set(kept) <= marked
    assert not set(removed) & marked


def test_dry_run_removes_nothing(registry):
    kept, removed = _fill(registry)
    report = gc.collect(registry.driver, dry_run=True)
    assert {d for d, _ in report.removed} == set(removed)
    assert all(registry.blob_exists(d) for d in kept + removed)


def test_collect_removes_only_unreferenced_blobs(registry):
    kept, removed = _fill(registry)
    report = gc.collect(registry.driver)
    assert {d for d, _ in report.removed} == set(removed)
    assert report.bytes_removed == sum(size for _, size in report.removed) > 0
    assert all(registry.blob_exists(d) for d in kept)
    assert not any(registry.blob_exists(d) for d in removed)
    # the repositories still serve what they had, and no longer claim what went
    assert registry.get_manifest("a", "v1")[0] == kept[0]
    assert registry.stat_blob("a", digest_of(b"shared")).size == len(b"shared")
    assert digest_of(b"orphan layer") not in gc._layer_links(registry.driver, "a")
    # a second run finds nothing more
    assert gc.collect(registry.driver).removed == []


def test_index_child_is_kept_through_the_index_alone(registry):
    child = image_manifest(registry, "r", [b"l"])
    d, _ = registry.put_manifest("r", str(digest_of(child)), child, OCI_MANIFEST)
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                        "manifests": [descriptor(OCI_MANIFEST, child)]}).encode()
    registry.put_manifest("r", "multi", index, OCI_INDEX)
    registry.driver.delete("/repositories/r/_manifests/revisions/sha256/" + d.encoded)
    gc.collect(registry.driver)
    assert registry.blob_exists(d) and registry.blob_exists(digest_of(b"l"))


def test_unreadable_manifest_is_reported_not_fatal(registry):
    data = image_manifest(registry, "r", [b"l"])
    d, _ = registry.put_manifest("r", "t", data, OCI_MANIFEST)
    registry.driver.delete(f"/blobs/sha256/{d.encoded[:2]}/{d.encoded}")
    report = gc.collect(registry.driver, dry_run=True)
    assert report.unreadable == [("r", parse_digest(str(d)))]
