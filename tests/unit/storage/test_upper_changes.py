"""A container's upper dir read as `docker diff` and as a layer tar
(storage/changes.py), and tar streams written and unpacked inside a root
(storage/archive.py, linux/inroot.py).

Runs as root: overlay whiteouts are 0/0 character devices (mknod) and opaque
directories carry a trusted.* xattr.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile

import pytest

from dockyard import errdefs
from dockyard.linux import inroot
from dockyard.storage import archive
from dockyard.storage.changes import ADD, DELETE, MODIFY, Change, changes, layer_tar
from dockyard.storage.layer import apply_layer

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mknod, trusted xattrs)")

EMPTY_LAYER = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"


def write(path, data=b"x", mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def whiteout(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))


def opaque(path):
    os.makedirs(path, exist_ok=True)
    os.setxattr(path, "trusted.overlay.opaque", b"y")


@pytest.fixture
def layers(tmp_path):
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    for name in ("etc/passwd", "data/a", "data/b", "keep/x", "same/f"):
        write(f"{lower}/{name}")
    os.makedirs(upper)
    # what a container did: changed a file, deleted one, replaced a dir, added a tree
    write(f"{upper}/etc/passwd", b"changed")
    whiteout(f"{upper}/data/b")
    opaque(f"{upper}/keep")
    write(f"{upper}/keep/z")
    write(f"{upper}/new/deep/file")
    os.link(f"{upper}/new/deep/file", f"{upper}/new/hard")
    os.symlink("/etc/passwd", f"{upper}/new/link")
    os.setxattr(f"{upper}/new/deep/file", "user.note", b"kept")
    os.chown(f"{upper}/new/deep/file", 1000, 1001)
    # a directory copied up unchanged (same mode, size and mtime below)
    os.makedirs(f"{upper}/same")
    st = os.stat(f"{lower}/same")
    os.utime(f"{upper}/same", ns=(st.st_atime_ns, st.st_mtime_ns))
    # what the runtime made for its mounts: never a change
    write(f"{upper}/etc/hostname", b"", 0o755)
    os.makedirs(f"{upper}/proc")
    os.makedirs(f"{upper}/dev")
    return str(lower), str(upper)


INIT = ("/etc/hostname", "/proc")


def test_changes_as_docker_lists_them(layers):
    lower, upper = layers
    got = changes(upper, [lower], INIT, ("/dev", "/etc"))
    assert [str(c) for c in got] == [
        "C /data", "D /data/b",          # a deletion lists its parent first
        "C /etc/passwd",                 # /etc only as an init dir: its change is the file's
        "D /keep", "A /keep/z",          # an opaque directory is a deletion (dockerd 20.10)
        "A /new", "A /new/deep", "A /new/deep/file", "A /new/hard", "A /new/link",
    ]
    assert got[0] == Change("/data", MODIFY) and got[1].kind == DELETE
    assert got[5].api() == {"Path": "/new", "Kind": ADD}


def test_changes_without_the_init_rules_show_everything(layers):
    lower, upper = layers
    paths = [str(c) for c in changes(upper, [lower])]
    assert "A /etc/hostname" in paths and "A /proc" in paths and "A /dev" in paths


def test_layer_tar_converts_whiteouts_and_keeps_metadata(layers):
    lower, upper = layers
    buf = io.BytesIO()
    count = layer_tar(upper, buf, INIT, ("/dev", "/etc"))
    data = buf.getvalue()
    assert data.endswith(b"\0" * 1024) and len(data) % 512 == 0
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar}
    assert len(members) == count
    assert "data/.wh.b" in members and members["data/.wh.b"].isreg()
    assert members["data/.wh.b"].mode == 0o600 and members["data/.wh.b"].size == 0
    assert "keep/.wh..wh..opq" in members and members["keep"].isdir()
    assert "trusted.overlay.opaque" not in str(members["keep"].pax_headers)
    f = members["new/deep/file"]
    assert (f.uid, f.gid) == (1000, 1001)
    assert f.pax_headers["SCHILY.xattr.user.note"] == "kept"
    assert members["new/hard"].islnk() and members["new/hard"].linkname == "new/deep/file"
    assert members["new/link"].issym() and members["new/link"].linkname == "/etc/passwd"
    assert "etc/hostname" not in members and "proc" not in members
    assert "dev" not in members      # an init dir with nothing of the container's in it
    assert "etc" in members          # ... and one with something
    assert data.startswith(b"data/\0")  # directories are named with a trailing slash
    # unpacked again as a layer, the whiteouts are overlay's own again
    dest = os.path.join(os.path.dirname(upper), "unpacked")
    os.mkdir(dest)
    apply_layer(io.BytesIO(data), dest)
    st = os.lstat(f"{dest}/data/b")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(f"{dest}/keep", "trusted.overlay.opaque") == b"y"


def test_an_empty_upper_dir_is_docker_empty_layer(tmp_path):
    upper = tmp_path / "upper"
    os.makedirs(upper / "dev")
    buf = io.BytesIO()
    assert layer_tar(str(upper), buf, (), ("/dev",)) == 0
    assert "sha256:" + hashlib.sha256(buf.getvalue()).hexdigest() == EMPTY_LAYER


# -- tar streams inside a root -----------------------------------------------------------

def tar_of(*members: tuple) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, extra in members:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = kind, 0o644, 1_600_000_000
            data = None
            if kind == tarfile.REGTYPE:
                data = io.BytesIO(extra or b"")
                info.size = len(extra or b"")
            elif kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = extra
            elif kind == tarfile.CHRTYPE:
                info.devmajor, info.devminor = extra
            tar.addfile(info, data)
    buf.seek(0)
    return buf


@pytest.fixture
def root(tmp_path):
    box = tmp_path / "root" / "dest"
    box.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    fd = inroot.open_root(str(box))
    yield str(box), str(outside), fd
    os.close(fd)


def test_extract_never_leaves_the_destination(root):
    box, outside, fd = root
    stream = tar_of(("esc", tarfile.SYMTYPE, "/"), (f"esc{outside}/a", tarfile.REGTYPE, b"1"),
                    ("up", tarfile.SYMTYPE, "../../.."), (f"up{outside}/b", tarfile.REGTYPE, b"2"),
                    (f"up{outside}/null", tarfile.CHRTYPE, (1, 3)))
    archive.Extractor(fd, "/dest").extract(stream)
    assert os.listdir(outside) == []
    assert open(f"{box}{outside}/a", "rb").read() == b"1"
    assert open(f"{box}{outside}/b", "rb").read() == b"2"
    assert stat.S_ISCHR(os.lstat(f"{box}{outside}/null").st_mode)
    assert os.readlink(f"{box}/esc") == "/"
    with pytest.raises(archive.BreakoutError, match='invalid entry name "../x"'):
        archive.Extractor(fd, "/dest").extract(tar_of(("../x", tarfile.REGTYPE, b"")))
    with pytest.raises(archive.BreakoutError):
        archive.Extractor(fd, "/dest").extract(tar_of(("h", tarfile.LNKTYPE, "../../etc/passwd")))


def test_extract_overwrite_rules_and_owner(root):
    box, _, fd = root
    os.mkdir(f"{box}/d")
    write(f"{box}/f")
    with pytest.raises(errdefs.System, match='cannot overwrite directory "d" with non-directory'):
        archive.Extractor(fd, "/dest", no_overwrite_dir_non_dir=True).extract(
            tar_of(("d", tarfile.REGTYPE, b"")))
    with pytest.raises(errdefs.System, match='cannot overwrite non-directory "f" with directory'):
        archive.Extractor(fd, "/dest", no_overwrite_dir_non_dir=True).extract(
            tar_of(("f", tarfile.DIRTYPE, None)))
    archive.Extractor(fd, "/dest", chown=(7, 8)).extract(tar_of(("d", tarfile.REGTYPE, b"z")))
    st = os.lstat(f"{box}/d")
    assert stat.S_ISREG(st.st_mode) and (st.st_uid, st.st_gid) == (7, 8)
    assert st.st_mtime == 1_600_000_000


def test_open_at_resolves_inside_the_root(root):
    box, outside, fd = root
    os.symlink("/", f"{box}/abs")
    os.symlink("../../../../..", f"{box}/rel")
    os.makedirs(f"{box}{outside}")
    for path in (f"abs{outside}", f"rel{outside}", f"/../..{outside}"):
        opened = inroot.open_at(fd, path, os.O_PATH)
        try:
            assert os.readlink(inroot.proc_path(opened)) == f"{box}{outside}"
        finally:
            os.close(opened)
    made = inroot.make_dirs(fd, "rel/x/y")
    os.close(made)
    assert os.path.isdir(f"{box}/x/y") and not os.path.exists(f"{outside}/x")
    assert inroot.secure_join(box, "rel/x") == f"{box}/x"


def test_walk_order_and_writer_names(tmp_path):
    for name in ("b", "a/z", "a/y", "c"):
        write(f"{tmp_path}/t/{name}")
    fd = os.open(f"{tmp_path}/t", os.O_RDONLY | os.O_DIRECTORY)
    try:
        paths = [e.path for e in archive.walk_children(fd, ".", "")]
    finally:
        os.close(fd)
    assert paths == ["a", "a/y", "a/z", "b", "c"]
    assert archive.rebase("./x", ".", "etc") == "etc/x"
    assert archive.rebase(".", ".", "/") == "" and archive.rebase("./x", ".", "/") == "/x"
