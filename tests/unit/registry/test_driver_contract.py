"""The storage driver contract (driver.py), one suite run against every driver.

A new driver (S3) joins by adding a factory to DRIVERS."""

from __future__ import annotations

import threading

import pytest

from dockyard.registry.driver import InvalidOffset, InvalidPath, PathNotFound, StorageDriver
from dockyard.registry.filesystem import FilesystemDriver
from dockyard.registry.memory import MemoryDriver

DRIVERS = {
    "filesystem": lambda tmp_path: FilesystemDriver(str(tmp_path / "root")),
    "inmemory": lambda tmp_path: MemoryDriver(),
}


@pytest.fixture(params=sorted(DRIVERS))
def driver(request, tmp_path) -> StorageDriver:
    return DRIVERS[request.param](tmp_path)


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
