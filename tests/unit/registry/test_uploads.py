"""The upload state machine: start → write/close/resume → commit or cancel; and the
purge of sessions left idle."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from aiohttp.test_utils import TestServer

from test_driver_contract import DRIVERS
from dockyard.registry import layout
from dockyard.registry.app import REGISTRY
from dockyard.registry.digest import digest_of
from dockyard.registry.errors import BlobUploadInvalid, BlobUploadUnknown, DigestInvalid
from dockyard.registry.memory import MemoryDriver
from dockyard.registry.server import Config, UploadPurging, create_app
from dockyard.registry.storage import Registry
from dockyard.registry.uploads import Uploads


def test_chunks_across_requests_commit_to_a_blob(registry):
    upload = registry.uploads.start("r")
    upload.write(b"hello ")
    upload.close()
    assert registry.uploads.size("r", upload.uuid) == 6
    resumed = registry.uploads.resume("r", upload.uuid)
    assert resumed.size == 6
    resumed.write(b"world")
    d = registry.finish_upload("r", resumed, digest_of(b"hello world"))
    assert registry.driver.get_content(layout.blob_data(d)) == b"hello world"
    assert registry.stat_blob("r", d).size == 11
    with pytest.raises(BlobUploadUnknown):
        registry.uploads.resume("r", upload.uuid)  # the session is gone once committed
    assert not registry.driver.exists(layout.upload_dir(upload.uuid))


def test_wrong_digest_stores_nothing_and_ends_the_session(registry):
    upload = registry.uploads.start("r")
    upload.write(b"actual bytes")
    with pytest.raises(DigestInvalid):
        registry.finish_upload("r", upload, digest_of(b"other bytes"))
    assert not registry.blob_exists(digest_of(b"actual bytes"))
    assert not registry.blob_exists(digest_of(b"other bytes"))
    assert not registry.driver.exists(layout.upload_dir(upload.uuid))
    assert not registry.repository_exists("r")


def test_a_session_belongs_to_its_repository(registry):
    upload = registry.uploads.start("mine")
    upload.close()
    with pytest.raises(BlobUploadUnknown):
        registry.uploads.resume("theirs", upload.uuid)
    with pytest.raises(BlobUploadUnknown):
        registry.uploads.resume("mine", "../../etc")


def test_one_request_at_a_time_per_session(registry):
    upload = registry.uploads.start("r")
    with pytest.raises(BlobUploadInvalid):
        registry.uploads.resume("r", upload.uuid)
    upload.close()
    registry.uploads.resume("r", upload.uuid).close()


def test_cancel_removes_the_session(registry):
    upload = registry.uploads.start("r")
    upload.write(b"x")
    upload.close()
    registry.uploads.cancel("r", upload.uuid)
    with pytest.raises(BlobUploadUnknown):
        registry.uploads.size("r", upload.uuid)
    assert registry.uploads.list() == []


def test_resume_without_the_running_hash_rehashes(registry):
    """A restarted registry (a new Uploads over the same driver) knows no hashes."""
    upload = registry.uploads.start("r")
    upload.write(b"first half, ")
    upload.close()
    fresh = Uploads(registry.driver)
    resumed = fresh.resume("r", upload.uuid)
    resumed.write(b"second half")
    d = resumed.commit(digest_of(b"first half, second half"))
    assert registry.driver.get_content(layout.blob_data(d)) == b"first half, second half"


def test_sha512_digests_are_verified_too(registry):
    upload = registry.uploads.start("r")
    upload.write(b"abc")
    d = registry.finish_upload("r", upload, digest_of(b"abc", "sha512"))
    assert d.algorithm == "sha512" and registry.stat_blob("r", d).size == 3


def test_concurrent_pushes_of_the_same_blob(registry):
    data = b"same layer " * 10_000
    digests, errors = [], []

    def push():
        try:
            upload = registry.uploads.start("r")
            for i in range(0, len(data), 7_000):
                upload.write(data[i:i + 7_000])
            digests.append(registry.finish_upload("r", upload, digest_of(data)))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=push) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert digests == [digest_of(data)] * 8
    assert registry.driver.get_content(layout.blob_data(digest_of(data))) == data
    assert registry.uploads.list() == []


# --- purging stale sessions ------------------------------------------------------


@pytest.fixture(params=["filesystem", "inmemory", "s3"])
def any_registry(request, tmp_path):
    """Purging works through the driver interface alone: over every driver, S3 too."""
    return Registry(DRIVERS[request.param](request.getfixturevalue))


def _idle_session(registry, repository: str = "r", data: bytes = b"part") -> str:
    upload = registry.uploads.start(repository)
    upload.write(data)
    upload.close()
    return upload.uuid


def test_purge_deletes_idle_sessions_and_keeps_recent_ones(any_registry):
    uploads = any_registry.uploads
    stale, recent = _idle_session(any_registry), _idle_session(any_registry)
    assert uploads.purge(time.time() - 3600) == []  # both younger than an hour
    assert {i.uuid for i in uploads.list()} == {stale, recent}
    # Both started together; "recent" is resumed a little later (more than S3's
    # one-second mtime resolution), which makes it younger than the cut-off.
    cutoff = uploads.last_active(stale) + 0.01
    while time.time() < cutoff + 1.05:
        time.sleep(0.05)
    resumed = uploads.resume("r", recent)
    resumed.write(b" more")
    resumed.close()
    purged = uploads.purge(cutoff)
    assert [i.uuid for i in purged] == [stale] and purged[0].repository == "r"
    assert [i.uuid for i in uploads.list()] == [recent]
    with pytest.raises(BlobUploadUnknown):
        uploads.resume("r", stale)
    assert not any_registry.driver.exists(layout.upload_dir(stale))
    resumed = uploads.resume("r", recent)
    d = any_registry.finish_upload("r", resumed, digest_of(b"part more"))
    assert any_registry.stat_blob("r", d).size == 9


def test_purge_never_touches_a_session_a_request_holds(registry):
    held = registry.uploads.start("r")
    held.write(b"streaming")
    idle = _idle_session(registry)
    purged = registry.uploads.purge(time.time() + 3600)  # everything is "old"
    assert [i.uuid for i in purged] == [idle]
    d = registry.finish_upload("r", held, digest_of(b"streaming"))
    assert registry.blob_exists(d)


def test_purge_holds_what_it_deletes(registry, monkeypatch):
    """A request cannot resume a session while the purge is deleting it."""
    uuid = _idle_session(registry)
    seen = []
    real_delete = registry.uploads._delete_session

    def delete_while_a_request_comes(u):
        with pytest.raises(BlobUploadInvalid):
            registry.uploads.resume("r", u)
        seen.append(u)
        real_delete(u)

    monkeypatch.setattr(registry.uploads, "_delete_session", delete_while_a_request_comes)
    registry.uploads.purge(time.time() + 3600)
    assert seen == [uuid]
    with pytest.raises(BlobUploadUnknown):
        registry.uploads.resume("r", uuid)


def test_purge_dry_run_deletes_nothing(registry):
    uuid = _idle_session(registry)
    assert [i.uuid for i in registry.uploads.purge(time.time() + 3600, dry_run=True)] == [uuid]
    resumed = registry.uploads.resume("r", uuid)  # still there, hash and all
    resumed.write(b"!")
    assert registry.finish_upload("r", resumed, digest_of(b"part!"))


def test_purge_keeps_a_session_without_files_and_sees_one_without_info(registry):
    """No file: no age, kept (as distribution keeps one without a start time);
    only data: its mtime is the age."""
    uuid = _idle_session(registry)
    registry.driver.delete(layout.upload_info(uuid))
    assert registry.uploads.last_active(uuid) is not None
    assert [i.uuid for i in registry.uploads.purge(time.time() + 3600)] == [uuid]
    assert registry.uploads.last_active("00000000-0000-0000-0000-000000000000") is None


def test_the_server_purges_periodically_only_when_enabled(tmp_path):
    async def sessions_left(purging: UploadPurging) -> int:
        app = create_app(Config(root=str(tmp_path), upload_purging=purging), MemoryDriver())
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            _idle_session(app[REGISTRY])
            await asyncio.sleep(0.5)
            return len(app[REGISTRY].uploads.list())
        finally:
            await server.close()

    tiny = UploadPurging(age=0.05, interval=0.05)
    assert asyncio.run(sessions_left(tiny)) == 0
    assert asyncio.run(sessions_left(UploadPurging(enabled=False, age=0.05, interval=0.05))) == 1
    assert asyncio.run(sessions_left(UploadPurging(age=0.05, interval=0.05, dry_run=True))) == 1
    assert asyncio.run(sessions_left(UploadPurging(age=3600, interval=0.05))) == 1
