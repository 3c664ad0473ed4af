"""Offline garbage collection: mark every blob a manifest references, sweep the rest.

Mark: for every repository, every manifest it holds (tagged or not, so
referrers, which are usually untagged, are kept with everything else): the
manifest's own blob, its config and layers, and for an index its child
manifests, recursively (a child is normally a manifest of the repository too;
following the reference as well keeps it even if its revision was deleted
while the index still names it).

Sweep: every blob under /blobs that is not marked is deleted, and so is any
repository's layer link to it (a link to nothing would make the blob look
pushed to a client checking with HEAD). Upload sessions are not blobs and are
left alone.

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
from dockyard.registry.errors import ManifestInvalid
from dockyard.registry.manifest import parse_manifest
from dockyard.registry.storage import Registry

log = logging.getLogger(__name__)


@dataclass
class Report:
    marked: set[Digest] = field(default_factory=set)
    removed: list[tuple[Digest, int]] = field(default_factory=list)  # (digest, size)
    unreadable: list[tuple[str, Digest]] = field(default_factory=list)  # (repository, manifest)
    dry_run: bool = False

    @property
    def bytes_removed(self) -> int:
        return sum(size for _, size in self.removed)


def mark(registry: Registry, report: Report | None = None) -> Report:
    """The digests of every blob some manifest of some repository references."""
    report = report or Report()
    for name in registry.repositories():
        for digest in registry.revisions(name):
            _mark_manifest(registry, name, digest, report)
    return report


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


def collect(driver: StorageDriver, dry_run: bool = False) -> Report:
    """Mark and sweep; with `dry_run`, only report what would be removed."""
    registry = Registry(driver)
    report = mark(registry, Report(dry_run=dry_run))
    doomed = [(d, size) for d, size in blobs(driver) if d not in report.marked]
    report.removed = doomed
    if dry_run:
        return report
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
