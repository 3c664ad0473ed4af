"""The fixture image made by real docker, unpacked into snapshots and mounted.

layers.docker-save.tar holds 4 layers that delete a file (etc/app/.wh.gone), a
busybox link (bin/.wh.wget) and make a directory opaque (opaque/.wh..wh..opq).
Each is applied into a snapshot keyed by its chain ID; a read-only view of the
top chain is mounted with overlayfs and must list exactly what `docker export`
listed (layers.rootfs-listing.txt), less what docker adds at run time.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import tarfile

import pytest

from dockyard.linux.mount import mount_all, unmount_all
from dockyard.storage.layer import apply_layer, chain_ids
from dockyard.storage.snapshots import Snapshotter
from dockyard.store.layout import Layout
from paths import FIXTURES

ARCHIVE = FIXTURES / "layers.docker-save.tar"
LISTING = FIXTURES / "layers.rootfs-listing.txt"

# Chain ID of the 4 diff IDs, worked out with `printf '%s' "$prev $diff" | sha256sum`.
TOP_CHAIN = "sha256:8ef104bc5063a8fd8dc3663ee8895604cadce918f8199143ff8b1dd005557f8a"

# What `docker export` lists but docker makes when the container is created,
# not the image. The image has no dev/, proc/ or sys/ at all (its first layer
# is busybox's bin/ only), so those dirs go too; the listing comparison below
# would show them if a layer had them.
ADDED_AT_RUN_TIME = {
    ".dockerenv", "etc/hostname", "etc/hosts", "etc/resolv.conf", "etc/mtab",
    "dev/", "dev/console", "dev/pts/", "dev/shm/", "proc/", "sys/",
}


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")


@pytest.fixture
def archive():
    with tarfile.open(ARCHIVE) as tar:
        yield tar


def manifest_and_diff_ids(tar: tarfile.TarFile) -> tuple[list[str], list[str]]:
    [manifest] = json.load(tar.extractfile("manifest.json"))
    config = json.load(tar.extractfile(manifest["Config"]))
    return manifest["Layers"], config["rootfs"]["diff_ids"]


def listing(root: str) -> list[str]:
    """`mode path [-> target]` for everything under root, as the fixture lists it."""
    lines = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            if stat.S_ISDIR(st.st_mode):
                rel += "/"
            tail = f"-> {os.readlink(path)}" if stat.S_ISLNK(st.st_mode) else " "
            lines.append(f"{stat.filemode(st.st_mode)} {rel} {tail}")
    return sorted(lines, key=lambda line: line.split(" ")[1])


def mounted(path: str) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def test_layer_blobs_match_their_diff_ids(archive):
    layers, diff_ids = manifest_and_diff_ids(archive)
    assert len(layers) == len(diff_ids) == 4
    for name, diff_id in zip(layers, diff_ids):
        digest = hashlib.sha256(archive.extractfile(name).read()).hexdigest()
        assert "sha256:" + digest == diff_id, name
    chains = chain_ids(diff_ids)
    assert chains[0] == diff_ids[0]
    assert chains[-1] == TOP_CHAIN


def unpack(archive: tarfile.TarFile, snapshots: Snapshotter) -> list[str]:
    """prepare(key, parent chain) -> apply_layer into fs_path -> commit(chain)."""
    layers, diff_ids = manifest_and_diff_ids(archive)
    chains = chain_ids(diff_ids)
    parent = None
    for i, (name, chain) in enumerate(zip(layers, chains)):
        key = f"extract-{i}"
        snapshots.prepare(key, parent)
        apply_layer(archive.extractfile(name), snapshots.fs_path(key))
        snapshots.commit(chain, key)
        parent = chain
    return chains


@pytest.fixture
def snapshots(tmp_path) -> Snapshotter:
    layout = Layout(str(tmp_path / "root"))
    layout.create()
    return Snapshotter(layout)


@needs_root
def test_layers_apply_and_mount_as_docker_shows_them(archive, snapshots, tmp_path):
    chains = unpack(archive, snapshots)
    assert [i.key for i in snapshots.walk()] == chains

    mounts = snapshots.view("rootfs", TOP_CHAIN)
    assert [m.type for m in mounts] == ["overlay"]
    target = str(tmp_path / "rootfs")
    os.mkdir(target)
    try:
        mount_all(mounts, target)
        assert mounted(target)
        actual = listing(target)
        with open(os.path.join(target, "data", "a")) as f:
            assert f.read() == "hello\n"
        with pytest.raises(OSError) as e:  # lowerdir-only overlay: read-only
            open(os.path.join(target, "new"), "w").close()
        assert e.value.errno == errno.EROFS
    finally:
        unmount_all(target)
    assert not mounted(target)

    with open(LISTING) as f:
        expected = [line.rstrip("\n") for line in f]
    expected = [line for line in expected if line.split(" ")[1] not in ADDED_AT_RUN_TIME]
    assert actual == expected
    # The fixture's README promises these, whatever the listing says:
    paths = {line.split(" ")[1] for line in actual}
    assert {"etc/app/keep", "opaque/y"} <= paths
    assert not {"bin/wget", "etc/app/gone", "opaque/x"} & paths

    snapshots.remove("rootfs")
    for chain in reversed(chains):
        snapshots.remove(chain)
    assert os.listdir(snapshots.layout.snapshots) == []


@needs_root
def test_container_rootfs_is_writable_and_records_changes(archive, snapshots, tmp_path):
    """An active snapshot on the chain: overlay with upper and work dirs.
    Writes land in the upper dir; deleting a lower file leaves overlay's own
    whiteout there (a 0/0 char device), the same form apply_layer writes."""
    chains = unpack(archive, snapshots)
    mounts = snapshots.prepare("ctr", chains[-1])
    upper = snapshots.fs_path("ctr")
    target = str(tmp_path / "rootfs")
    os.mkdir(target)
    try:
        mount_all(mounts, target)
        with open(os.path.join(target, "data", "b"), "w") as f:
            f.write("new")
        os.unlink(os.path.join(target, "etc", "app", "keep"))
    finally:
        unmount_all(target)
    assert not mounted(target)
    with open(os.path.join(upper, "data", "b")) as f:
        assert f.read() == "new"
    st = os.lstat(os.path.join(upper, "etc", "app", "keep"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert snapshots.usage("ctr") == 3


@needs_root
def test_view_of_one_layer_is_a_read_only_bind(archive, snapshots, tmp_path):
    chains = unpack(archive, snapshots)
    mounts = snapshots.view("base", chains[0])
    assert [(m.type, m.options) for m in mounts] == [("bind", ("ro", "rbind"))]
    target = str(tmp_path / "rootfs")
    os.mkdir(target)
    try:
        mount_all(mounts, target)
        assert os.path.islink(os.path.join(target, "bin", "wget"))  # not yet deleted
        with pytest.raises(OSError) as e:
            open(os.path.join(target, "bin", "new"), "w").close()
        assert e.value.errno == errno.EROFS
    finally:
        unmount_all(target)
    assert not mounted(target)
