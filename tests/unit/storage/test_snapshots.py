"""The overlay snapshotter's lifecycle and the mounts it plans (no mounting here)."""

from __future__ import annotations

import json
import os

import pytest

from dockyard import errdefs
from dockyard.storage.snapshots import Mount, Snapshotter
from dockyard.store.layout import Layout


@pytest.fixture
def layout(tmp_path) -> Layout:
    layout = Layout(str(tmp_path / "root"))
    layout.create()
    return layout


@pytest.fixture
def sn(layout) -> Snapshotter:
    return Snapshotter(layout)


def write(sn: Snapshotter, key: str, name: str, data: bytes = b"x") -> str:
    path = os.path.join(sn.fs_path(key), name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def committed(sn: Snapshotter, name: str, parent: str | None) -> None:
    sn.prepare("extract-" + name, parent)
    write(sn, "extract-" + name, name)
    sn.commit(name, "extract-" + name)


def test_prepare_commit_lifecycle(sn, layout):
    mounts = sn.prepare("extract-1", None, labels={"a": "1"})
    fs = sn.fs_path("extract-1")
    assert mounts == [Mount("bind", fs, ("rw", "rbind"))]
    info = sn.stat("extract-1")
    assert (info.key, info.parent, info.kind, info.n, info.labels) == \
        ("extract-1", None, "active", 1, {"a": "1"})
    assert fs == os.path.join(layout.snapshot(1), "fs")
    assert os.path.isdir(os.path.join(layout.snapshot(1), "work"))
    write(sn, "extract-1", "hello", b"hi")

    sn.commit("sha256:l0", "extract-1", labels={"b": "2"})
    with pytest.raises(errdefs.NotFound):
        sn.stat("extract-1")
    info = sn.stat("sha256:l0")
    assert (info.kind, info.n, info.labels) == ("committed", 1, {"a": "1", "b": "2"})
    assert sn.fs_path("sha256:l0") == fs
    assert not os.path.exists(os.path.join(layout.snapshot(1), "work"))
    with open(os.path.join(layout.snapshot(1), "info.json")) as f:
        assert json.load(f)["key"] == "sha256:l0"
    assert open(os.path.join(fs, "hello"), "rb").read() == b"hi"


def test_mount_options_shape(sn, layout):
    committed(sn, "c1", None)
    committed(sn, "c2", "c1")
    committed(sn, "c3", "c2")
    fs = {k: sn.fs_path(k) for k in ("c1", "c2", "c3")}

    # active on a chain: overlay, lower dirs nearest first
    [m] = sn.prepare("ctr", "c3")
    work = os.path.join(layout.snapshot(sn.stat("ctr").n), "work")
    assert m == Mount("overlay", "overlay", (
        f"lowerdir={fs['c3']}:{fs['c2']}:{fs['c1']}",
        f"upperdir={sn.fs_path('ctr')}", f"workdir={work}"))
    assert sn.mounts("ctr") == [m]

    # a view of one layer is a read-only bind of it; of several, lowers only
    assert sn.view("v1", "c1") == [Mount("bind", fs["c1"], ("ro", "rbind"))]
    assert sn.view("v3", "c3") == [Mount("overlay", "overlay",
                                         (f"lowerdir={fs['c3']}:{fs['c2']}:{fs['c1']}",))]
    assert sn.stat("v3").kind == "view"
    assert not os.path.exists(os.path.join(layout.snapshot(sn.stat("v3").n), "work"))
    # an empty view
    assert sn.view("v0", None) == [Mount("bind", sn.fs_path("v0"), ("ro", "rbind"))]

    # short names keep the option string small: each lower is <snapshots>/<n>/fs
    lowers = m.options[0].removeprefix("lowerdir=").split(":")
    assert lowers == [os.path.join(layout.snapshots, str(sn.stat(k).n), "fs")
                      for k in ("c3", "c2", "c1")]


def test_overlay_options_are_appended(layout):
    sn = Snapshotter(layout, overlay_options=("index=off",))
    committed(sn, "c1", None)
    committed(sn, "c2", "c1")
    [m] = sn.prepare("ctr", "c1")
    assert m.options[-1] == "index=off"
    [m] = sn.view("v", "c2")
    assert m.options[-1] == "index=off"


def test_errors(sn):
    committed(sn, "c1", None)
    sn.prepare("a", "c1")
    sn.view("v", "c1")
    with pytest.raises(errdefs.Conflict, match="snapshot a already exists"):
        sn.prepare("a", None)
    with pytest.raises(errdefs.Conflict, match="already exists"):
        sn.commit("c1", "a")
    with pytest.raises(errdefs.NotFound, match="snapshot nope does not exist"):
        sn.prepare("b", "nope")
    with pytest.raises(errdefs.NotFound):
        sn.commit("x", "nope")
    with pytest.raises(errdefs.InvalidParameter, match="not committed"):
        sn.prepare("b", "a")  # active snapshots are never parents
    with pytest.raises(errdefs.InvalidParameter, match="cannot commit"):
        sn.commit("x", "v")  # views are never committed
    with pytest.raises(errdefs.InvalidParameter):
        sn.mounts("c1")
    assert sorted(i.key for i in sn.walk()) == ["a", "c1", "v"]


def test_remove_refuses_with_children(sn, layout):
    committed(sn, "c1", None)
    committed(sn, "c2", "c1")
    sn.prepare("ctr", "c2")
    with pytest.raises(errdefs.Conflict, match="child"):
        sn.remove("c1")
    with pytest.raises(errdefs.Conflict):
        sn.remove("c2")
    n = sn.stat("ctr").n
    sn.remove("ctr")
    sn.remove("c2")
    sn.remove("c1")
    assert list(sn.walk()) == []
    assert os.listdir(layout.snapshots) == []
    assert not os.path.exists(layout.snapshot(n))
    with pytest.raises(errdefs.NotFound):
        sn.remove("c1")


def test_numbers_are_max_plus_one(sn):
    for k in ("a", "b", "c"):
        sn.prepare(k, None)
    assert [i.n for i in sn.walk()] == [1, 2, 3]
    sn.remove("b")
    sn.prepare("d", None)
    assert sn.stat("d").n == 4
    sn.remove("d")
    sn.remove("c")
    sn.prepare("e", None)
    assert sn.stat("e").n == 2


def test_usage_counts_hard_links_once(sn):
    sn.prepare("a", None)
    path = write(sn, "a", "big", b"x" * 1000)
    os.link(path, os.path.join(sn.fs_path("a"), "link"))
    os.mkdir(os.path.join(sn.fs_path("a"), "d"))
    write(sn, "a", "d/small", b"y" * 10)
    os.symlink("big", os.path.join(sn.fs_path("a"), "sym"))
    assert sn.usage("a") == 1000 + 10 + len("big")


def test_reload_and_repair(layout):
    sn = Snapshotter(layout)
    committed(sn, "c1", None)
    sn.prepare("ctr", "c1", labels={"x": "y"})
    snaps = layout.snapshots
    # What crashes leave behind: a dir without info.json (prepare died before
    # its last step), one with a torn info.json, a half-deleted trash dir, a
    # temp file of an atomic write, and a committed snapshot's work dir.
    os.makedirs(os.path.join(snaps, "7", "fs", "junk"))
    os.makedirs(os.path.join(snaps, "8", "fs"))
    with open(os.path.join(snaps, "8", "info.json"), "w") as f:
        f.write('{"key": "torn"')
    os.makedirs(os.path.join(snaps, "trash-3-abcd", "fs"))
    open(os.path.join(snaps, ".tmp-xyz"), "w").close()
    open(os.path.join(layout.snapshot(1), ".tmp-abc"), "w").close()
    os.mkdir(os.path.join(layout.snapshot(1), "work"))

    again = Snapshotter(layout)
    assert sorted(os.listdir(snaps)) == ["1", "2"]
    assert sorted((i.key, i.kind, i.parent) for i in again.walk()) == \
        [("c1", "committed", None), ("ctr", "active", "c1")]
    assert again.stat("ctr").labels == {"x": "y"}
    assert sorted(os.listdir(layout.snapshot(1))) == ["fs", "info.json"]
    assert again.mounts("ctr") == sn.mounts("ctr")
    assert again.prepare("next", None) and again.stat("next").n == 3


def test_data_root_with_a_comma_is_refused(tmp_path):
    with pytest.raises(errdefs.InvalidParameter):
        Snapshotter(Layout(str(tmp_path / "a,b")))
