"""The storage driver contract (driver.py), one suite run against every driver.

A new driver joins by adding a factory to DRIVERS: it is given pytest's
`getfixturevalue`, so a driver that needs a service (S3: moto's server, see
conftest.py) starts it only when its tests run."""

from __future__ import annotations

import os
import threading
import time

import pytest

from dockyard.registry.driver import InvalidOffset, InvalidPath, PathNotFound, StorageDriver
from dockyard.registry.filesystem import FilesystemDriver
from dockyard.registry.memory import MemoryDriver
from dockyard.registry.s3 import MIN_PART

DRIVERS = {
    "filesystem": lambda fixture: FilesystemDriver(str(fixture("tmp_path") / "root")),
    "inmemory": lambda fixture: MemoryDriver(),
    # parts of S3's minimum size, so a few MiB exercise multipart uploads
    "s3": lambda fixture: fixture("s3_service").driver(part_size=MIN_PART),
}


@pytest.fixture(params=sorted(DRIVERS))
def driver(request) -> StorageDriver:
    return DRIVERS[request.param](request.getfixturevalue)


def test_put_then_get_content(driver):
    driver.put_content("/a/b/c", b"hello")
    assert driver.get_content("/a/b/c") == b"hello"
    driver.put_content("/a/b/c", b"replaced")
    assert driver.get_content("/a/b/c") == b"replaced"


def test_missing_paths_raise_path_not_found(driver):
    for call in (lambda: driver.get_content("/nope"), lambda: driver.stat("/nope"),
                 lambda: driver.list("/nope"), lambda: driver.reader("/nope"),
                 lambda: driver.delete("/nope"), lambda: driver.move("/nope", "/x")):
        with pytest.raises(PathNotFound):
            call()
    assert not driver.exists("/nope")


@pytest.mark.parametrize("path", ["", "/", "a", "/a/../b", "/a/./b", "/a//b", "/.hidden",
                                  "/a/b/", "/a b", "/a/\u00e9"])
def test_invalid_paths_are_refused(driver, path):
    with pytest.raises(InvalidPath):
        driver.put_content(path, b"x")


def test_stat_files_and_directories(driver):
    driver.put_content("/d/f", b"12345")
    info = driver.stat("/d/f")
    assert (info.size, info.is_dir) == (5, False)
    assert driver.stat("/d").is_dir


def test_mtime_is_when_the_file_was_last_written(driver):
    """Upload purging ages a session by its files' mtimes (uploads.py): a write
    through a writer, resumed later, must move the mtime on. (S3 keeps whole
    seconds, hence the wait.)"""
    before = time.time()
    w = driver.writer("/u/data")
    w.write(b"first")
    w.close()
    first = driver.stat("/u/data").mtime
    assert before - 2 <= first <= time.time() + 2
    while time.time() < first + 1.05:
        time.sleep(0.05)
    w = driver.writer("/u/data", append=True)
    w.write(b" second")
    w.close()
    assert driver.stat("/u/data").mtime > first


def test_list_gives_sorted_direct_children_as_full_paths(driver):
    for p in ("/r/b/x", "/r/a", "/r/c/d/e"):
        driver.put_content(p, b"")
    assert driver.list("/r") == ["/r/a", "/r/b", "/r/c"]
    assert "/r" in driver.list("/")


def test_reader_from_an_offset(driver):
    driver.put_content("/f", b"0123456789")
    with driver.reader("/f", 4) as f:
        assert f.read() == b"456789"
    with driver.reader("/f", 10) as f:
        assert f.read() == b""
    with pytest.raises(InvalidOffset):
        driver.reader("/f", 11)


def test_writer_lifecycle_close_append_commit(driver):
    w = driver.writer("/up/data")
    w.write(b"abc")
    w.close()
    assert driver.stat("/up/data").size == 3
    w = driver.writer("/up/data", append=True)
    assert w.size == 3
    w.write(b"def")
    w.commit()
    assert w.size == 6
    assert driver.get_content("/up/data") == b"abcdef"
    w = driver.writer("/up/data")  # not appending: truncates
    w.write(b"z")
    w.commit()
    assert driver.get_content("/up/data") == b"z"


def test_writer_cancel_discards(driver):
    w = driver.writer("/up/data")
    w.write(b"abc")
    w.cancel()
    assert not driver.exists("/up/data")


def test_writer_appends_across_closes_beyond_a_part(driver):
    """Several requests' chunks of one upload, more than a part (S3: the first
    close is a PutObject, the second a multipart upload, the third resumes by
    copying the object as its first part)."""
    data = os.urandom(11 << 20)
    w = driver.writer("/up/big")
    w.write(data[:3 << 20])
    w.close()
    assert driver.stat("/up/big").size == 3 << 20
    w = driver.writer("/up/big", append=True)
    for i in range(3, 7):
        w.write(data[i << 20:(i + 1) << 20])
    w.close()
    assert driver.stat("/up/big").size == w.size == 7 << 20
    w = driver.writer("/up/big", append=True)
    w.write(data[7 << 20:])
    w.commit()
    assert driver.stat("/up/big").size == w.size == len(data)
    assert driver.get_content("/up/big") == data
    with driver.reader("/up/big", 6 << 20) as f:
        assert f.read(10) == data[6 << 20:(6 << 20) + 10]


def test_writer_cancel_after_append_discards_everything(driver):
    w = driver.writer("/up/data")
    w.write(b"kept by close")
    w.close()
    w = driver.writer("/up/data", append=True)
    w.write(os.urandom(MIN_PART + 1))
    w.cancel()
    assert not driver.exists("/up/data") and not driver.exists("/up")


def test_empty_files(driver):
    driver.put_content("/e", b"")
    assert driver.get_content("/e") == b"" and driver.stat("/e").size == 0
    with driver.reader("/e") as f:
        assert f.read() == b""
    with pytest.raises(InvalidOffset):
        driver.reader("/e", 1)
    w = driver.writer("/w")
    w.commit()
    assert driver.stat("/w").size == 0


def test_names_sharing_a_prefix_are_apart(driver):
    for p in ("/t/a/x", "/t/ab", "/t/a-b/y", "/t/a.c"):
        driver.put_content(p, p.encode())
    assert driver.list("/t/a") == ["/t/a/x"]
    driver.delete("/t/a")
    assert driver.list("/t") == ["/t/a-b", "/t/a.c", "/t/ab"]
    assert not driver.exists("/t/a")
    with pytest.raises(PathNotFound):
        driver.delete("/t/a")


def test_move_replaces_destination_and_removes_source(driver):
    driver.put_content("/src/f", b"new")
    driver.put_content("/dst/f", b"old")
    driver.move("/src/f", "/dst/f")
    assert driver.get_content("/dst/f") == b"new"
    assert not driver.exists("/src/f")
    assert not driver.exists("/src"), "no empty directories are left behind"


def test_delete_removes_a_tree_and_leaves_no_empty_parents(driver):
    driver.put_content("/t/a/b/c", b"1")
    driver.put_content("/t/a/d", b"2")
    driver.put_content("/keep", b"3")
    driver.delete("/t/a/b")
    assert not driver.exists("/t/a/b/c")
    assert driver.exists("/t/a/d")
    driver.delete("/t/a")
    assert not driver.exists("/t")
    assert driver.list("/") == ["/keep"]


def test_concurrent_put_content_never_shows_a_mix(driver):
    a, b = b"a" * 100_000, b"b" * 100_000
    driver.put_content("/race", a)
    seen, stop = set(), threading.Event()

    def read():
        while not stop.is_set():
            seen.add(driver.get_content("/race"))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(50):
            driver.put_content("/race", a if i % 2 else b)
    finally:
        stop.set()
        reader.join()
    assert seen <= {a, b}


def test_filesystem_local_path_is_the_file(tmp_path):
    driver = FilesystemDriver(str(tmp_path))
    driver.put_content("/x/y", b"data")
    with open(driver.local_path("/x/y"), "rb") as f:
        assert f.read() == b"data"
    assert MemoryDriver().local_path("/x/y") is None


def test_filesystem_temp_files_are_out_of_sight(tmp_path):
    driver = FilesystemDriver(str(tmp_path))
    driver.put_content("/a", b"1")
    assert driver.list("/") == ["/a"]
    assert (tmp_path / ".tmp").is_dir() and not list((tmp_path / ".tmp").iterdir())


# --- S3 only: what a listing, a batch or a multipart upload leaves behind -------------


@pytest.fixture
def s3(s3_service):
    return s3_service.driver(part_size=MIN_PART)


def _multipart_uploads(driver) -> list:
    return driver.client.list_multipart_uploads(Bucket=driver.bucket).get("Uploads", [])


def test_s3_keys_live_under_the_root_prefix(s3, s3_service):
    s3.put_content("/a/b", b"1")
    keys = [o["Key"] for o in s3.client.list_objects_v2(Bucket=s3.bucket)["Contents"]]
    assert keys == ["registry/root/a/b"]
    neighbour = s3_service.driver(prefix="registry/rootless", bucket=s3.bucket)
    neighbour.put_content("/a/c", b"2")
    assert s3.list("/a") == ["/a/b"] and s3.list("/") == ["/a"]
    s3.delete("/a")
    assert neighbour.get_content("/a/c") == b"2"


def test_s3_listing_and_deleting_page_by_page(s3):
    s3.list_page, s3.delete_batch = 2, 3
    for i in range(7):
        s3.put_content(f"/d/{i}/f", b"x")
    s3.put_content("/d/file", b"y")
    assert s3.list("/d") == [f"/d/{i}" for i in range(7)] + ["/d/file"]
    s3.delete("/d")
    assert s3.client.list_objects_v2(Bucket=s3.bucket).get("KeyCount") == 0


def test_s3_writers_leave_no_multipart_upload_behind(s3):
    for end in ("commit", "cancel", "close"):
        w = s3.writer(f"/up/{end}")
        w.write(os.urandom(MIN_PART + 10))
        assert len(_multipart_uploads(s3)) == 1
        assert not s3.exists(f"/up/{end}"), "nothing is visible before the upload completes"
        getattr(w, end)()
        assert _multipart_uploads(s3) == []
    assert s3.list("/up") == ["/up/close", "/up/commit"]


def test_s3_moves_beyond_the_copy_limit_in_parts(s3, monkeypatch):
    from dockyard.registry import s3 as s3module

    monkeypatch.setattr(s3module, "MAX_COPY", 10 << 20)  # S3's is 5 GiB
    data = os.urandom(12 << 20)
    s3.put_content("/src", data)
    s3.move("/src", "/dst")
    assert s3.get_content("/dst") == data and not s3.exists("/src")
    head = s3.client.head_object(Bucket=s3.bucket, Key="registry/root/dst")
    assert head["ETag"].endswith('-2"'), "a multipart object of two copied parts"
    assert _multipart_uploads(s3) == []


def test_s3_failures_name_the_request(s3_service):
    from dockyard.registry.s3 import StorageUnavailable

    missing = s3_service.driver(bucket="no-such-bucket")
    with pytest.raises(StorageUnavailable, match="s3 PutObject no-such-bucket/.*NoSuchBucket"):
        missing.put_content("/x", b"1")
