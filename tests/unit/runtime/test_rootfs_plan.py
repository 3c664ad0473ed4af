"""The mount plan: OCI mount options -> mount(2) flags, secure joins, devices.

Expected flag words are runc's specconv (parseMountOptions) for the mounts
docker puts in every spec.
"""

from __future__ import annotations

import os

import pytest

from dockyard.linux import devices as devs
from dockyard.linux import rootfs as r


def parse(dest, type_, source, options):
    return r.parse_mount({"destination": dest, "type": type_, "source": source,
                          "options": options}, "/bundle")


def test_docker_default_dev_tmpfs():
    m = parse("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"])
    assert m.flags == r.MS_NOSUID | r.MS_STRICTATIME
    assert m.data == "mode=755,size=65536k"
    assert m.type == "tmpfs" and m.propagation == []


def test_devpts_keeps_its_data_options():
    m = parse("/dev/pts", "devpts", "devpts",
              ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"])
    assert m.flags == r.MS_NOSUID | r.MS_NOEXEC
    assert m.data == "newinstance,ptmxmode=0666,mode=0620,gid=5"


def test_sysfs_and_cgroup_read_only():
    m = parse("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "ro"])
    assert m.flags == r.MS_NOSUID | r.MS_NOEXEC | r.MS_NODEV | r.MS_RDONLY
    m = parse("/sys/fs/cgroup", "cgroup", "cgroup", ["ro", "nosuid", "noexec", "nodev"])
    assert m.flags & r.MS_RDONLY and m.data == ""


def test_bind_mounts_become_type_bind_with_propagation_apart():
    m = parse("/etc/hosts", "none", "/var/lib/x/hosts", ["rbind", "rprivate", "ro"])
    assert m.type == "bind"
    assert m.flags == r.MS_BIND | r.MS_REC | r.MS_RDONLY
    assert m.propagation == [r.MS_PRIVATE | r.MS_REC]
    assert m.data == ""


def test_relative_bind_source_is_relative_to_the_bundle():
    m = parse("/data", "bind", "data", ["bind"])
    assert m.source == "/bundle/data"


def test_clearing_options_win_in_order():
    m = parse("/x", "tmpfs", "tmpfs", ["ro", "rw", "nosuid", "suid", "exec"])
    assert m.flags == 0


def test_recursive_attributes_are_not_filesystem_data():
    m = parse("/x", "bind", "/src", ["rbind", "rro", "rnoatime"])
    assert m.attr_set == r.MOUNT_ATTR_RDONLY | r.MOUNT_ATTR_NOATIME
    assert m.attr_clr == r.MOUNT_ATTR__ATIME
    assert m.data == ""


def test_tmpcopyup_is_an_extension():
    m = parse("/x", "tmpfs", "tmpfs", ["tmpcopyup", "size=1m"])
    assert m.tmpcopyup and m.data == "size=1m"


def test_clean():
    assert r.clean("/dev/") == "/dev"
    assert r.clean("dev//pts/../shm") == "/dev/shm"
    assert r.clean("/") == "/"


def test_secure_join_follows_symlinks_inside_the_root(tmp_path):
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    os.symlink("/real", root / "abs")            # absolute: from the rootfs's /
    os.symlink("../../../../real", root / "up")  # dot-dots stop at the rootfs's /
    os.symlink("real/../real", root / "rel")
    assert r.secure_join(str(root), "/abs/x") == str(root / "real/x")
    assert r.secure_join(str(root), "up/x") == str(root / "real/x")
    assert r.secure_join(str(root), "/rel") == str(root / "real")
    assert r.secure_join(str(root), "/../../etc/passwd") == str(root / "etc/passwd")
    assert r.secure_join(str(root), "/new/dir") == str(root / "new/dir")


def test_secure_join_refuses_symlink_loops(tmp_path):
    os.symlink("/b", tmp_path / "a")
    os.symlink("/a", tmp_path / "b")
    with pytest.raises(OSError, match="too many symlinks"):
        r.secure_join(str(tmp_path), "/a")


def test_default_devices_and_overrides():
    names = [d["path"] for d in devs.devices(None)]
    assert names == ["/dev/null", "/dev/random", "/dev/full", "/dev/tty", "/dev/zero",
                     "/dev/urandom"]
    mine = {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600}
    fuse = {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}
    out = devs.devices([mine, fuse])
    assert out.count(mine) == 1 and out[-2:] == [mine, fuse]
    assert [d["path"] for d in out].count("/dev/null") == 1


def test_a_bind_mounted_dev_is_left_alone():
    dev = parse("/dev", "bind", "/dev", ["rbind"])
    assert not devs.needs_dev_setup([dev])
    assert devs.needs_dev_setup([parse("/dev", "tmpfs", "tmpfs", [])])
