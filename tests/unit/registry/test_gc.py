"""Garbage collection: referenced blobs are kept, everything else goes."""

from __future__ import annotations

import json
import time

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


# --- --delete-untagged -------------------------------------------------------------


def _put(registry, name, reference, data, media_type=OCI_MANIFEST):
    return registry.put_manifest(name, reference, data, media_type)[0]


def _untagged_fill(registry):
    """In "r": a tagged index over an untagged child, a tagged image with an
    untagged signature, a tagged SBOM of an untagged image, an untagged image
    with an untagged signature of its own, and a manifest that lost its tag."""
    child = image_manifest(registry, "r", [b"child layer"])
    _put(registry, "r", str(digest_of(child)), child)
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                        "manifests": [descriptor(OCI_MANIFEST, child)]}).encode()
    _put(registry, "r", "multi", index, OCI_INDEX)
    signed = image_manifest(registry, "r", [b"signed layer"])
    _put(registry, "r", "signed", signed)
    signature = image_manifest(registry, "r", [b"sig 1"], config=b'{"sig":1}',
                               subject=descriptor(OCI_MANIFEST, signed))
    _put(registry, "r", str(digest_of(signature)), signature)
    described = image_manifest(registry, "r", [b"described layer"])
    _put(registry, "r", str(digest_of(described)), described)
    sbom = image_manifest(registry, "r", [b"sbom"], config=b'{"sbom":1}',
                          subject=descriptor(OCI_MANIFEST, described))
    _put(registry, "r", "sbom", sbom)
    orphan = image_manifest(registry, "r", [b"orphan layer"], config=b'{"orphan":1}')
    _put(registry, "r", str(digest_of(orphan)), orphan)
    orphan_sig = image_manifest(registry, "r", [b"orphan sig"], config=b'{"osig":1}',
                                subject=descriptor(OCI_MANIFEST, orphan))
    _put(registry, "r", str(digest_of(orphan_sig)), orphan_sig)
    old = image_manifest(registry, "r", [b"old layer"], config=b'{"old":1}')
    _put(registry, "r", "latest", old)
    _put(registry, "r", "latest", signed)  # the tag moves on: "old" is untagged now
    kept = [child, index, signed, signature, described, sbom]
    gone = [orphan, orphan_sig, old]
    gone_blobs = [b"orphan layer", b'{"orphan":1}', b"orphan sig", b'{"osig":1}',
                  b"old layer", b'{"old":1}']
    return ([digest_of(x) for x in kept], [digest_of(x) for x in gone],
            [digest_of(x) for x in gone_blobs])


def test_untagged_keeps_index_children_referrers_and_subjects(registry):
    kept, gone, _ = _untagged_fill(registry)
    assert set(gc.untagged(registry, "r")) == set(gone)


def test_delete_untagged_removes_manifests_and_then_their_blobs(registry):
    kept, gone, gone_blobs = _untagged_fill(registry)
    other = image_manifest(registry, "other", [b"orphan layer"])  # a tagged image's too
    _put(registry, "other", "t", other)
    shared = str(digest_of(b"orphan layer"))
    report = gc.collect(registry.driver, delete_untagged=True)
    assert set(report.manifests_removed) == {("r", d) for d in gone}
    assert {d for d, _ in report.removed} == set(gone) | set(gone_blobs) - {
        parse_digest(shared)}
    for d in kept:
        assert registry.get_manifest("r", str(d))[0] == d
    for d in gone:
        assert not registry.has_manifest("r", d)
    assert registry.blob_exists(parse_digest(shared))
    signed = registry.resolve("r", "signed")
    assert [x["digest"] for x in registry.referrers("r", signed)] == [str(kept[3])]
    orphan = gone[0]
    assert registry.referrers("r", orphan) == []  # its signature's link went with it
    assert gc.collect(registry.driver, delete_untagged=True).manifests_removed == []


def test_delete_untagged_dry_run_reports_and_deletes_nothing(registry):
    kept, gone, gone_blobs = _untagged_fill(registry)
    report = gc.collect(registry.driver, dry_run=True, delete_untagged=True)
    assert set(report.manifests_removed) == {("r", d) for d in gone}
    assert {d for d, _ in report.removed} == set(gone) | set(gone_blobs)
    assert all(registry.has_manifest("r", d) for d in kept + gone)
    assert all(registry.blob_exists(d) for d in gone_blobs)


def test_without_delete_untagged_untagged_manifests_stay(registry):
    kept, gone, gone_blobs = _untagged_fill(registry)
    report = gc.collect(registry.driver)
    assert report.manifests_removed == [] and report.removed == []
    assert all(registry.has_manifest("r", d) for d in gone)


def test_the_same_manifest_tagged_elsewhere_keeps_its_blobs(registry):
    data = image_manifest(registry, "a", [b"l"])
    image_manifest(registry, "b", [b"l"])
    _put(registry, "a", str(digest_of(data)), data)  # untagged in a
    _put(registry, "b", "t", data)                    # tagged in b
    report = gc.collect(registry.driver, delete_untagged=True)
    assert report.manifests_removed == [("a", digest_of(data))]
    assert report.removed == []
    assert registry.get_manifest("b", "t")[0] == digest_of(data)


# --- stale upload sessions -----------------------------------------------------------


def test_collect_purges_stale_uploads_only_when_asked(registry):
    upload = registry.uploads.start("r")
    upload.write(b"abandoned")
    upload.close()
    assert gc.collect(registry.driver).uploads_removed == []
    assert gc.collect(registry.driver, uploads_older_than=time.time() - 3600).uploads_removed == []
    report = gc.collect(registry.driver, dry_run=True, uploads_older_than=time.time() + 1)
    assert [i.uuid for i in report.uploads_removed] == [upload.uuid]
    assert [i.uuid for i in registry.uploads.list()] == [upload.uuid]
    report = gc.collect(registry.driver, uploads_older_than=time.time() + 1)
    assert [i.uuid for i in report.uploads_removed] == [upload.uuid]
    assert registry.uploads.list() == []
