"""The upload state machine: start → write/close/resume → commit or cancel."""

from __future__ import annotations

import threading

import pytest

from dockyard.registry import layout
from dockyard.registry.digest import digest_of
from dockyard.registry.errors import BlobUploadInvalid, BlobUploadUnknown, DigestInvalid
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
