"""The `local` volume driver on a temporary directory: names and options as
moby's local driver checks them (dockerd 20.10's words), the layout on disk,
and crash safety (a create or remove cut short leaves nothing a restart lists).

The tests of volumes with their own filesystem mount a tmpfs, so they need root.
"""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess

import pytest

from dockyard.volume import local
from dockyard.volume.local import (LocalDriver, NoSuchVolume, VolumeMountError,
                                   VolumeOptionError, validate_name, validate_options)

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounts a tmpfs: needs root")
TMPFS = {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}
BAD_NAME = ('"{0}" includes invalid characters for a local volume name, only '
            '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
            'directory, use absolute path')


@pytest.fixture
def root(tmp_path):
    path = str(tmp_path / "volumes")
    yield path
    # never leave a mount behind, whatever a test did
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f if line.split()[4].startswith(str(tmp_path))]
    for m in reversed(mounts):
        subprocess.run(["umount", "-l", m], check=False)
    assert not mounts, f"left mounted: {mounts}"


def is_mount(path: str) -> bool:
    return os.path.ismount(path)


# -- names and options -----------------------------------------------------------------

@pytest.mark.parametrize("name", ["ab", "a.b_c-d", "9x", "A-", "x" * 200, "0123456789abcdef" * 4])
def test_valid_names(name):
    validate_name(name)


@pytest.mark.parametrize("name", ["ba$d", "x/y", "_x", ".x", "-x", ".new-x-1234",
                                  ".trash-y-5678", "a b", "é1", "ab\n", ""])
def test_invalid_names(name):
    with pytest.raises(VolumeOptionError) as e:
        validate_name(name)
    assert str(e.value) == BAD_NAME.format(name)


@pytest.mark.parametrize("name", ["a", "_", "$"])
def test_one_character_is_too_short(name):
    with pytest.raises(VolumeOptionError) as e:
        validate_name(name)
    assert str(e.value) == ("volume name is too short, names should be at least two "
                            "alphanumeric characters")


@pytest.mark.parametrize("opts", [{}, TMPFS, {"type": "tmpfs", "device": "tmpfs"},
                                  {"type": "none", "device": "/srv", "o": "bind"},
                                  {"type": "nfs", "device": ":/export", "o": "addr=10.0.0.1"}])
def test_valid_options(opts):
    validate_options(opts)


@pytest.mark.parametrize("opts, message", [
    ({"foo": "bar"}, 'invalid option: "foo"'),
    ({"type": "tmpfs", "device": "tmpfs", "Type": "x"}, 'invalid option: "Type"'),
    ({"o": "size=1m"}, 'missing required option: "device"'),
    ({"type": "tmpfs"}, 'missing required option: "device"'),
    ({"type": "tmpfs", "o": "size=1m"}, 'missing required option: "device"'),
    ({"device": "tmpfs"}, 'missing required option: "type"'),
    ({"device": "tmpfs", "o": "size=1m"}, 'missing required option: "type"'),
    ({"size": "10m"}, "quota size requested but no quota support"),
    ({"size": "10m", "type": "tmpfs", "device": "tmpfs"},
     "quota size requested but no quota support"),
])
def test_invalid_options(opts, message):
    with pytest.raises(VolumeOptionError) as e:
        validate_options(opts)
    assert str(e.value) == message


# -- create ----------------------------------------------------------------------------

def test_create_lays_out_the_volume(root):
    driver = LocalDriver(root)
    assert (driver.name, driver.scope, driver.records) == ("local", "local", {})
    assert os.stat(root).st_mode & 0o7777 == 0o701
    record, created = driver.create("v1", {}, {"a": "b"})
    assert created is True
    assert set(record) == {"Name", "Driver", "Labels", "Options", "CreatedAt"}
    assert (record["Name"], record["Driver"], record["Labels"], record["Options"]) == (
        "v1", "local", {"a": "b"}, {})
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", record["CreatedAt"])
    assert driver.records == {"v1": record}
    top = os.path.join(root, "v1")
    assert driver.path("v1") == os.path.join(top, "_data")
    assert sorted(os.listdir(root)) == ["v1"]  # no staging directory left
    assert sorted(os.listdir(top)) == ["_data", "volume.json"]
    assert os.listdir(driver.path("v1")) == []
    assert os.stat(top).st_mode & 0o7777 == 0o701
    assert os.stat(driver.path("v1")).st_mode & 0o7777 == 0o755
    with open(os.path.join(top, "volume.json")) as f:
        assert json.load(f) == record
    # nothing to mount without options
    assert driver.needs_mount("v1") is False
    assert driver.mount("v1") == driver.path("v1")
    assert not is_mount(driver.path("v1"))
    driver.unmount("v1")


def test_the_record_keeps_its_own_copies(root):
    driver = LocalDriver(root)
    labels, options = {"a": "b"}, dict(TMPFS)
    record, _ = driver.create("v1", options, labels)
    labels["x"] = "y"
    options["o"] = "size=2m"
    assert (record["Labels"], record["Options"]) == ({"a": "b"}, TMPFS)


def test_an_existing_name_returns_the_volume_unchanged(root):
    driver = LocalDriver(root)
    first, _ = driver.create("v1", {}, {"a": "b"})
    with open(os.path.join(root, "v1", "volume.json"), "rb") as f:
        on_disk = f.read()
    again, created = driver.create("v1", TMPFS, {"a": "c"})
    assert (again, created) == (first, False)
    with open(os.path.join(root, "v1", "volume.json"), "rb") as f:
        assert f.read() == on_disk
    assert sorted(os.listdir(root)) == ["v1"]


@pytest.mark.parametrize("name, options", [("a", {}), ("ba$d", {}), ("v1", {"foo": "bar"}),
                                           ("v1", {"o": "size=1m"})])
def test_a_refused_create_leaves_nothing(root, name, options):
    driver = LocalDriver(root)
    with pytest.raises(VolumeOptionError):
        driver.create(name, options, {})
    assert (driver.records, os.listdir(root)) == ({}, [])


def test_a_create_that_fails_halfway_leaves_nothing(root, monkeypatch):
    driver = LocalDriver(root)

    def full(path, obj):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(local.atomic, "write_json", full)
    with pytest.raises(OSError):
        driver.create("v1", {}, {})
    assert (driver.records, os.listdir(root)) == ({}, [])
    monkeypatch.undo()
    record, created = driver.create("v1", {}, {})
    assert created and sorted(os.listdir(root)) == ["v1"]


def test_a_create_interrupted_before_its_rename_leaves_nothing(root, monkeypatch):
    driver = LocalDriver(root)

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(local.os, "rename", interrupted)
    with pytest.raises(KeyboardInterrupt):
        driver.create("v1", {}, {})
    monkeypatch.undo()
    assert (driver.records, os.listdir(root)) == ({}, [])


# -- remove ----------------------------------------------------------------------------

def test_remove(root):
    driver = LocalDriver(root)
    driver.create("v1", {}, {})
    driver.create("v2", {}, {})
    os.makedirs(os.path.join(driver.path("v1"), "sub"))
    with open(os.path.join(driver.path("v1"), "sub", "f"), "w") as f:
        f.write("data")
    driver.remove("v1")
    assert list(driver.records) == ["v2"]
    assert sorted(os.listdir(root)) == ["v2"]  # no .trash- left either
    with pytest.raises(NoSuchVolume):
        driver.remove("v1")
    with pytest.raises(NoSuchVolume):
        driver.mount("v1")


def test_a_remove_cut_short_after_its_rename_is_gone_and_finished_at_start(root, monkeypatch):
    driver = LocalDriver(root)
    driver.create("v1", {}, {"a": "b"})
    monkeypatch.setattr(LocalDriver, "_discard", staticmethod(lambda path: None))
    driver.remove("v1")  # "crashes" before the delete
    monkeypatch.undo()
    left = os.listdir(root)
    assert len(left) == 1 and left[0].startswith(".trash-v1-"), left
    assert "v1" not in driver.records
    again = LocalDriver(root)
    assert (again.records, os.listdir(root)) == ({}, [])


# -- start: what is listed, what is cleaned ----------------------------------------------

def _fake_volume(root: str, dirname: str, name: str | None = None) -> None:
    os.makedirs(os.path.join(root, dirname, "_data"))
    with open(os.path.join(root, dirname, "volume.json"), "w") as f:
        json.dump({"Name": name or dirname, "Driver": "local", "Labels": {}, "Options": {},
                   "CreatedAt": "2026-01-01T00:00:00Z"}, f)
    with open(os.path.join(root, dirname, "_data", "file"), "w") as f:
        f.write("x")


def test_start_lists_volumes_and_removes_leftovers(root):
    driver = LocalDriver(root)
    driver.create("keep", {}, {"a": "b"})
    driver.create("tmp", TMPFS, {})
    _fake_volume(root, ".new-x-1234", "x")
    _fake_volume(root, ".trash-y-5678", "y")
    os.makedirs(os.path.join(root, "nometa", "_data"))     # not a volume of ours
    os.makedirs(os.path.join(root, "badmeta"))
    with open(os.path.join(root, "badmeta", "volume.json"), "w") as f:
        f.write("{half a rec")
    with open(os.path.join(root, "metadata.db"), "w") as f:  # a file, not a directory
        f.write("")
    again = LocalDriver(root)
    assert again.records == driver.records
    assert sorted(again.records) == ["keep", "tmp"]
    assert again.records["tmp"]["Options"] == TMPFS
    assert sorted(os.listdir(root)) == ["badmeta", "keep", "metadata.db", "nometa", "tmp"]


@needs_root
def test_a_leftover_with_a_mounted_filesystem_is_unmounted_before_it_goes(root):
    LocalDriver(root)
    _fake_volume(root, ".trash-t-1234", "t")
    data = os.path.join(root, ".trash-t-1234", "_data")
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", data], check=True)
    with open(os.path.join(data, "on-tmpfs"), "w") as f:
        f.write("x")
    LocalDriver(root)
    assert os.listdir(root) == []


# -- volumes with their own filesystem -------------------------------------------------

@needs_root
def test_a_tmpfs_volume_is_mounted_while_used(root):
    driver = LocalDriver(root)
    driver.create("tv", TMPFS, {})
    data = driver.path("tv")
    assert driver.needs_mount("tv") and not is_mount(data)
    assert driver.mount("tv") == data
    assert is_mount(data)
    with open("/proc/self/mountinfo") as f:
        line = [m for m in f if m.split()[4] == data][0]
    assert " - tmpfs tmpfs " in line and "size=1024k" in line
    with open(os.path.join(data, "f"), "w") as f:
        f.write("on tmpfs")
    assert driver.mount("tv") == data  # a second user: mounted once
    driver.unmount("tv")
    assert is_mount(data)              # the first user still has it
    with pytest.raises(VolumeMountError, match="volume has active mounts"):
        driver.remove("tv")
    assert "tv" in driver.records
    driver.unmount("tv")
    assert not is_mount(data)
    assert os.listdir(data) == []      # the tmpfs's files went with it
    driver.unmount("tv")                # one too many: no harm
    driver.remove("tv")
    assert os.listdir(root) == []


@needs_root
def test_a_bad_filesystem_is_an_error_and_counts_no_user(root):
    driver = LocalDriver(root)
    driver.create("bad", {"type": "nosuchfs", "device": "x"}, {})
    with pytest.raises(VolumeMountError) as e:
        driver.mount("bad")
    assert str(e.value) == ("failed to mount local volume: mount x:" + driver.path("bad") +
                            ", flags: 0x0: no such device")
    assert not is_mount(driver.path("bad"))
    driver.remove("bad")  # nothing holds it
    assert os.listdir(root) == []


@needs_root
def test_restore_mounts_after_a_restart(root):
    driver = LocalDriver(root)
    driver.create("t1", TMPFS, {})
    driver.create("t2", TMPFS, {})
    driver.mount("t1")
    driver.mount("t2")
    # a new daemon: t1 is still used by one running container, t2 by none
    again = LocalDriver(root)
    again.restore_mounts({"t1": 1})
    assert is_mount(again.path("t1")) and not is_mount(again.path("t2"))
    again.unmount("t1")
    assert not is_mount(again.path("t1"))
