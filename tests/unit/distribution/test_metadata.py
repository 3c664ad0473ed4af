"""The v2 metadata store: what it records survives a restart; what it cannot
read back is skipped, never fatal."""

from __future__ import annotations

import json
import os

from dockyard.distribution.metadata import MAX_PER_DIFF_ID, V2Metadata, V2MetadataStore
from dockyard.store.layout import Layout

DIFF_ID = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64
GZ = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def blob(n: int, repo: str = "127.0.0.1:5000/app") -> V2Metadata:
    return V2Metadata(f"sha256:{n:064x}", repo, 100 + n, GZ)


def test_entries_survive_a_restart_newest_first(tmp_path):
    store = V2MetadataStore(Layout(str(tmp_path)).distribution_metadata)
    store.add(DIFF_ID, blob(1))
    store.add(DIFF_ID, blob(2, "127.0.0.1:5000/other"))
    again = V2MetadataStore(Layout(str(tmp_path)).distribution_metadata)
    assert again.get(DIFF_ID) == [blob(2, "127.0.0.1:5000/other"), blob(1)]
    assert again.get(OTHER) == []
    path = tmp_path / "images" / "distribution" / "v2metadata-by-diffid" / "sha256" / ("a" * 64)
    assert json.loads(path.read_text())[0] == {
        "Digest": blob(1).Digest, "SourceRepository": "127.0.0.1:5000/app", "Size": 101,
        "MediaType": GZ}


def test_adding_again_refreshes_instead_of_duplicating(tmp_path):
    store = V2MetadataStore(str(tmp_path))
    store.add(DIFF_ID, blob(1))
    store.add(DIFF_ID, blob(2))
    store.add(DIFF_ID, blob(1))
    assert store.get(DIFF_ID) == [blob(1), blob(2)]


def test_the_oldest_entries_go_beyond_the_limit(tmp_path):
    store = V2MetadataStore(str(tmp_path))
    for n in range(MAX_PER_DIFF_ID + 5):
        store.add(DIFF_ID, blob(n))
    entries = V2MetadataStore(str(tmp_path)).get(DIFF_ID)
    assert len(entries) == MAX_PER_DIFF_ID
    assert entries[0] == blob(MAX_PER_DIFF_ID + 4) and entries[-1] == blob(5)


def test_remove_forgets_one_repository_and_the_file_when_empty(tmp_path):
    store = V2MetadataStore(str(tmp_path))
    store.add(DIFF_ID, blob(1))
    store.add(DIFF_ID, blob(1, "127.0.0.1:5000/other"))
    store.remove(DIFF_ID, blob(1).Digest, "127.0.0.1:5000/other")
    assert V2MetadataStore(str(tmp_path)).get(DIFF_ID) == [blob(1)]
    store.remove(DIFF_ID, blob(1).Digest, "127.0.0.1:5000/app")
    assert os.listdir(tmp_path / "v2metadata-by-diffid" / "sha256") == []


def test_torn_or_foreign_files_are_skipped_and_stale_temps_removed(tmp_path):
    store = V2MetadataStore(str(tmp_path))
    store.add(DIFF_ID, blob(1))
    store.add(OTHER, blob(2))
    d = tmp_path / "v2metadata-by-diffid" / "sha256"
    full = (d / ("b" * 64)).read_bytes()
    (d / ("b" * 64)).write_bytes(full[:len(full) // 2])          # torn
    (d / ("c" * 64)).write_text('{"not": "a list"}')              # not ours
    (d / ("d" * 64)).write_text('[{"Digest": 1}]')                # missing fields
    (d / ".tmp-abc").write_text("half a write")
    (d / "README").write_text("not a diff_id")
    again = V2MetadataStore(str(tmp_path))
    assert again.get(DIFF_ID) == [blob(1)]
    assert again.get(OTHER) == []
    assert not (d / ".tmp-abc").exists()
    again.add(OTHER, blob(3))  # a torn record is written afresh
    assert V2MetadataStore(str(tmp_path)).get(OTHER) == [blob(3)]


def test_without_a_root_it_is_memory_only():
    store = V2MetadataStore(None)
    store.add(DIFF_ID, blob(1))
    assert store.get(DIFF_ID) == [blob(1)]


def test_registry_and_path_of_an_entry():
    entry = blob(1, "127.0.0.1:5000/team/app")
    assert (entry.registry, entry.path) == ("127.0.0.1:5000", "team/app")
