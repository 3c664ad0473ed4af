"""Offline garbage collection: mark every blob a manifest references, sweep the rest.

Mark: for every repository, every manifest it holds (tagged or not, so
referrers, which are usually untagged, are kept with everything else; but see
`delete_untagged` below): the manifest's own blob, its config and layers, and
for an index its child manifests, recursively (a child is normally a manifest
of the repository too; following the reference as well keeps it even if its
revision was deleted while the index still names it).

Sweep: every blob under /blobs that is not marked is deleted, and so is any
repository's layer link to it (a link to nothing would make the blob look
pushed to a client checking with HEAD). Upload sessions idle since before
`uploads_older_than` are deleted too, as the server's upload purger would
(uploads.py); younger ones are left alone.

With `delete_untagged` (distribution's `garbage-collect --delete-untagged`),
manifests no tag keeps are deleted first, and the mark starts from the rest,
so their blobs go in the same run. A repository keeps, as distribution does,
every manifest a tag names and, recursively, the child manifests of a kept
index. distribution knows nothing of `subject` and so deletes untagged
referrers (signatures, SBOMs) of a tagged image; here the subject relation
keeps in both directions, as the OCI working group advises treating referrers
like the children of an index: the referrers of a kept manifest are kept (a
tagged image keeps its signatures), and so is the subject of a kept manifest
(a tagged signature keeps what it signs). An untagged image and its untagged
referrers go together. A manifest is deleted from its repository as a
DELETE by digest would (storage.py); its blob is then one more unmarked blob.

"Offline" means the registry must not be serving while this runs, as with
distribution's `garbage-collect`: a push between mark and sweep could link a
blob that the sweep then deletes. A manifest that cannot be read (its bytes
missing, or not a manifest) is reported and the collection goes on; what it
references cannot be known, so its own blob is kept if present.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from dockyard.registry import layout
from dockyard.registry.digest import HEX_LENGTH, Digest
from dockyard.registry.driver import PathNotFound, StorageDriver
from dockyard.registry.errors import ManifestInvalid, RegistryError
from dockyard.registry.manifest import parse_manifest
from dockyard.registry.storage import Registry
from dockyard.registry.uploads import UploadInfo

log = logging.getLogger(__name__)


@dataclass
class Report:
    marked: set[Digest] = field(default_factory=set)
    removed: list[tuple[Digest, int]] = field(default_factory=list)  # (digest, size)
    unreadable: list[tuple[str, Digest]] = field(default_factory=list)  # (repository, manifest)
    manifests_removed: list[tuple[str, Digest]] = field(default_factory=list)  # untagged
    uploads_removed: list[UploadInfo] = field(default_factory=list)
    dry_run: bool = False

    @property
    def bytes_removed(self) -> int:
        return sum(size for _, size in self.removed)


def mark(registry: Registry, report: Report | None = None,
         doomed: frozenset[tuple[str, Digest]] = frozenset()) -> Report:
    """The digests of every blob some manifest of some repository references,
    the manifests in `doomed` ((repository, digest) about to go) left out."""
    report = report or Report()
    for name in registry.repositories():
        for digest in registry.revisions(name):
            if (name, digest) not in doomed:
                _mark_manifest(registry, name, digest, report)
    return report


def untagged(registry: Registry, name: str) -> list[Digest]:
    """The manifests of `name` that delete_untagged removes: every one that no
    tag keeps (see the module docstring for what a kept manifest keeps)."""
    kept = _kept_manifests(registry, name)
    return [d for d in registry.revisions(name) if d not in kept]


def _kept_manifests(registry: Registry, name: str) -> set[Digest]:
    kept: set[Digest] = set()
    todo = _tag_targets(registry, name)
    while todo:
        d = todo.pop()
        if d in kept:
            continue
        kept.add(d)
        todo += registry.referrer_digests(name, d)
        try:
            manifest = parse_manifest(registry.driver.get_content(layout.blob_data(d)))
        except (PathNotFound, ManifestInvalid):
            continue  # what it references cannot be known; mark() reports it
        todo += [child.digest for child in manifest.manifests]
        if manifest.subject is not None:
            todo.append(manifest.subject.digest)
    return kept


def _tag_targets(registry: Registry, name: str) -> list[Digest]:
    found = []
    for tag in registry.tags(name):
        try:
            found.append(registry.resolve(name, tag))
        except (RegistryError, ValueError):
            continue  # a tag whose link is gone or garbled keeps nothing
    return found


def _mark_manifest(registry: Registry, name: str, digest: Digest, report: Report) -> None:
    if digest in report.marked:
        return
    report.marked.add(digest)
    try:
        manifest = parse_manifest(registry.driver.get_content(layout.blob_data(digest)))
    except (PathNotFound, ManifestInvalid):
        report.unreadable.append((name, digest))
        log.warning("gc: manifest %s of %s cannot be read", digest, name)
        return
    for blob in manifest.blobs():
        report.marked.add(blob.digest)
    for child in manifest.manifests:
        _mark_manifest(registry, name, child.digest, report)


def blobs(driver: StorageDriver) -> list[tuple[Digest, int]]:
    """Every blob in storage with its size."""
    found = []
    try:
        algorithms = driver.list(layout.BLOBS)
    except PathNotFound:
        return []
    for algorithm_path in algorithms:
        algorithm = algorithm_path.rsplit("/", 1)[1]
        if algorithm not in HEX_LENGTH:
            continue
        for prefix in driver.list(algorithm_path):
            for blob_dir in driver.list(prefix):
                d = Digest(algorithm, blob_dir.rsplit("/", 1)[1])
                try:
                    found.append((d, driver.stat(layout.blob_data(d)).size))
                except PathNotFound:
                    continue  # a directory without data: nothing to keep or count
    return found


def collect(driver: StorageDriver, dry_run: bool = False, delete_untagged: bool = False,
            uploads_older_than: float | None = None) -> Report:
    """Mark and sweep; with `dry_run`, only report what would be removed.

    With `delete_untagged`, manifests no tag keeps go first; with
    `uploads_older_than` (a time.time()), upload sessions idle since before then."""
    registry = Registry(driver)
    report = Report(dry_run=dry_run)
    if delete_untagged:
        report.manifests_removed = [(name, d) for name in registry.repositories()
                                    for d in untagged(registry, name)]
    mark(registry, report, frozenset(report.manifests_removed))
    doomed = [(d, size) for d, size in blobs(driver) if d not in report.marked]
    report.removed = doomed
    if uploads_older_than is not None:
        report.uploads_removed = registry.uploads.purge(uploads_older_than, dry_run)
    if dry_run:
        return report
    for name, d in report.manifests_removed:
        registry.delete_manifest(name, str(d))
    gone = {d for d, _ in doomed}
    for name in registry.repositories():
        for d in _layer_links(driver, name):
            if d in gone:
                _delete(driver, layout.layer_link(name, d).rsplit("/", 1)[0])
    for d, _ in doomed:
        _delete(driver, layout.blob_dir(d))
    return report


def _layer_links(driver: StorageDriver, name: str) -> list[Digest]:
    found = []
    try:
        algorithms = driver.list(layout.layers(name))
    except PathNotFound:
        return []
    for algorithm_path in algorithms:
        algorithm = algorithm_path.rsplit("/", 1)[1]
        found += [Digest(algorithm, p.rsplit("/", 1)[1]) for p in driver.list(algorithm_path)]
    return found


def _delete(driver: StorageDriver, path: str) -> None:
    try:
        driver.delete(path)
    except PathNotFound:
        pass
