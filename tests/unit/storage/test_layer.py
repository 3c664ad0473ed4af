"""Layer application into an overlay lower dir, with tars built in memory.

Runs as root: whiteouts are char devices (mknod) and opaque markers are
trusted.* xattrs, both of which need CAP_MKNOD / CAP_SYS_ADMIN.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import stat
import struct
import tarfile

import pytest
import zstandard

from dockyard import errdefs
from dockyard.storage.compression import detect, open_decompressed
from dockyard.storage.layer import InvalidLayer, apply_layer, chain_ids

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mknod, trusted xattrs)")

MTIME = 1_600_000_000


# -- building tars ------------------------------------------------------------

def entry(name, kind=tarfile.REGTYPE, data=b"", mode=None, uid=0, gid=0,
          linkname="", xattrs=None, mtime=MTIME, dev=(0, 0)):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode if mode is not None else (0o755 if kind == tarfile.DIRTYPE else 0o644)
    info.uid, info.gid = uid, gid
    info.mtime = mtime
    info.linkname = linkname
    info.devmajor, info.devminor = dev
    if kind == tarfile.REGTYPE:
        info.size = len(data)
    if xattrs:
        info.pax_headers = {"SCHILY.xattr." + k: v.decode("utf-8", "surrogateescape")
                            for k, v in xattrs.items()}
    return info, data


def file(name, data=b"", **kw):
    return entry(name, tarfile.REGTYPE, data, **kw)


def directory(name, **kw):
    return entry(name, tarfile.DIRTYPE, **kw)


def symlink(name, target, **kw):
    return entry(name, tarfile.SYMTYPE, linkname=target, **kw)


def hardlink(name, target, **kw):
    return entry(name, tarfile.LNKTYPE, linkname=target, **kw)


def make_tar(*entries) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def apply(tmp_path, *entries) -> tuple[str, int]:
    dest = tmp_path / "fs"
    dest.mkdir(exist_ok=True)
    size = apply_layer(io.BytesIO(make_tar(*entries)), str(dest))
    return str(dest), size


# -- files, dirs, links ---------------------------------------------------------

def test_files_dirs_and_metadata(tmp_path):
    dest, size = apply(
        tmp_path,
        directory("./", mode=0o755),
        directory("./etc/", mode=0o750, uid=1, gid=2, mtime=MTIME - 100),
        file("./etc/passwd", b"root:x:0:0\n", mode=0o600, uid=1000, gid=1001),
        file("/usr/bin/tool", b"#!/bin/sh\n", mode=0o4755),
    )
    assert size == len(b"root:x:0:0\n") + len(b"#!/bin/sh\n")
    st = os.lstat(f"{dest}/etc/passwd")
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o600, 1000, 1001)
    assert st.st_mtime == MTIME
    assert open(f"{dest}/etc/passwd", "rb").read() == b"root:x:0:0\n"
    # A directory's mtime survives the entries created in it afterwards.
    st = os.lstat(f"{dest}/etc")
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime) == \
        (0o750, 1, 2, MTIME - 100)
    # Missing parents are made 0755; setuid survives (chown before chmod).
    assert stat.S_IMODE(os.lstat(f"{dest}/usr").st_mode) == 0o755
    assert stat.S_IMODE(os.lstat(f"{dest}/usr/bin/tool").st_mode) == 0o4755
    assert sorted(os.listdir(dest)) == ["etc", "usr"]


def test_absolute_symlink_is_kept_as_is(tmp_path):
    dest, _ = apply(tmp_path, directory("etc/"), symlink("etc/mtab", "/proc/mounts"),
                    symlink("bin/sh", "busybox"))
    assert os.readlink(f"{dest}/etc/mtab") == "/proc/mounts"
    assert os.readlink(f"{dest}/bin/sh") == "busybox"
    assert os.lstat(f"{dest}/etc/mtab").st_mtime == MTIME


def test_hardlink_shares_the_inode(tmp_path):
    dest, size = apply(tmp_path, file("bin/busybox", b"x" * 10, mode=0o755),
                       hardlink("bin/ls", "bin/busybox"), hardlink("sbin/init", "./bin/busybox"))
    assert size == 10
    ino = os.lstat(f"{dest}/bin/busybox").st_ino
    assert os.lstat(f"{dest}/bin/ls").st_ino == ino == os.lstat(f"{dest}/sbin/init").st_ino


def test_hardlink_target_must_be_in_the_layer(tmp_path):
    with pytest.raises(InvalidLayer, match="not in the layer"):
        apply(tmp_path, hardlink("bin/ls", "bin/missing"))
    with pytest.raises(InvalidLayer, match="escapes"):
        apply(tmp_path, hardlink("bin/ls", "../../etc/passwd"))


def test_hardlink_through_symlink_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("s")
    with pytest.raises(InvalidLayer, match="symlink"):
        apply(tmp_path, symlink("evil", str(outside)), hardlink("x", "evil/secret"))


def test_devices_and_fifo(tmp_path):
    dest, _ = apply(tmp_path, entry("dev/null", tarfile.CHRTYPE, mode=0o666, dev=(1, 3)),
                    entry("dev/loop0", tarfile.BLKTYPE, mode=0o660, dev=(7, 0)),
                    entry("run/fifo", tarfile.FIFOTYPE, mode=0o600))
    st = os.lstat(f"{dest}/dev/null")
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3
    assert stat.S_IMODE(st.st_mode) == 0o666
    assert stat.S_ISBLK(os.lstat(f"{dest}/dev/loop0").st_mode)
    assert stat.S_ISFIFO(os.lstat(f"{dest}/run/fifo").st_mode)


def test_later_entries_replace_earlier_ones(tmp_path):
    dest, _ = apply(
        tmp_path,
        file("a", b"first"), symlink("a", "elsewhere"),               # file -> symlink
        directory("d/", mode=0o700), file("d/keep", b"k"),
        directory("d/", mode=0o711, mtime=MTIME + 5),                 # dir + dir merge
        file("f", b"old"), file("f", b"new"),
        directory("gone/"), file("gone/x"), file("gone", b"now a file"),  # dir -> file
    )
    assert os.readlink(f"{dest}/a") == "elsewhere"
    assert os.path.exists(f"{dest}/d/keep")
    assert stat.S_IMODE(os.lstat(f"{dest}/d").st_mode) == 0o711
    assert os.lstat(f"{dest}/d").st_mtime == MTIME + 5
    assert open(f"{dest}/f", "rb").read() == b"new"
    assert open(f"{dest}/gone", "rb").read() == b"now a file"


# -- whiteouts ----------------------------------------------------------------------

def test_whiteout_becomes_a_0_0_char_device(tmp_path):
    dest, _ = apply(tmp_path, directory("bin/"), file("bin/.wh.wget", mode=0o600),
                    file("etc/app/.wh.gone"))
    for path in (f"{dest}/bin/wget", f"{dest}/etc/app/gone"):
        st = os.lstat(path)
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
    assert not any(n.startswith(".wh.") for _, _, names in os.walk(dest) for n in names)


def test_opaque_dir_gets_the_overlay_xattr(tmp_path):
    dest, _ = apply(tmp_path, directory("opaque/"), file("opaque/.wh..wh..opq"),
                    file("opaque/y"), file("new/.wh..wh..opq"))
    assert os.getxattr(f"{dest}/opaque", "trusted.overlay.opaque") == b"y"
    assert os.getxattr(f"{dest}/new", "trusted.overlay.opaque") == b"y"  # made for it
    assert sorted(os.listdir(f"{dest}/opaque")) == ["y"]
    assert os.listdir(f"{dest}/new") == []


def test_aufs_metadata_whiteouts_are_skipped(tmp_path):
    dest, _ = apply(tmp_path, directory(".wh..wh.plnk/"), file(".wh..wh.plnk/123.456"),
                    file(".wh..wh.aufs"))
    assert os.listdir(dest) == []


def test_nothing_is_created_inside_a_whiteout_name(tmp_path):
    with pytest.raises(InvalidLayer, match="inside a whiteout"):
        apply(tmp_path, file("a/.wh.b/c", b"x"))


def test_whiteout_cannot_name_dotdot(tmp_path):
    with pytest.raises(InvalidLayer):
        apply(tmp_path, file("a/.wh.."))


# -- hostile paths ----------------------------------------------------------------

@pytest.mark.parametrize("name", ["../escape", "a/../../escape", "./../escape", "/../../x"])
def test_escape_refused(tmp_path, name):
    with pytest.raises(InvalidLayer, match="escapes the layer root") as e:
        apply(tmp_path, file(name, b"pwned"))
    assert isinstance(e.value, errdefs.InvalidParameter)
    assert not (tmp_path / "escape").exists()


def test_absolute_member_name_stays_inside(tmp_path):
    dest, _ = apply(tmp_path, file("/etc/x", b"1"))
    assert open(f"{dest}/etc/x", "rb").read() == b"1"


@pytest.mark.parametrize("target", ["OUTSIDE", "../outside", "../../../../../../OUTSIDE"])
def test_write_through_symlink_refused(tmp_path, target):
    outside = tmp_path / "outside"
    outside.mkdir()
    target = target.replace("OUTSIDE", str(outside))
    with pytest.raises(InvalidLayer, match="goes through a symlink"):
        apply(tmp_path, symlink("evil", target), file("evil/x", b"pwned"))
    assert list(outside.iterdir()) == []


def test_write_through_symlink_to_tmp_refused(tmp_path):
    name = f"dockyard-test-{os.getpid()}"
    with pytest.raises(InvalidLayer, match="goes through a symlink"):
        apply(tmp_path, symlink("evil", "/tmp"), file(f"evil/{name}", b"pwned"))
    assert not os.path.lexists(f"/tmp/{name}")


def test_whiteout_through_symlink_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("v")
    with pytest.raises(InvalidLayer, match="symlink"):
        apply(tmp_path, symlink("evil", str(outside)), file("evil/.wh.victim"))
    assert (outside / "victim").read_text() == "v"


def test_non_directory_parent_refused(tmp_path):
    with pytest.raises(InvalidLayer, match="non-directory"):
        apply(tmp_path, file("f", b"x"), file("f/y", b"y"))


# -- xattrs -------------------------------------------------------------------------

def _capability(bit: int) -> bytes:
    # struct vfs_cap_data, revision 2: magic_etc, then {permitted, inheritable} x 2
    VFS_CAP_REVISION_2, VFS_CAP_FLAGS_EFFECTIVE = 0x02000000, 0x1
    return struct.pack("<5I", VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE, 1 << bit, 0, 0, 0)


def test_xattrs_from_pax_headers(tmp_path):
    cap = _capability(10)  # CAP_NET_BIND_SERVICE; binary, not valid UTF-8 either way
    dest, _ = apply(tmp_path,
                    file("bin/ping", b"elf", mode=0o755, uid=1000,
                         xattrs={"security.capability": cap, "user.note": b"hello"}),
                    directory("d/", xattrs={"user.dir": b"\xff\x00binary"}))
    # The capability survives the chown to uid 1000 (chown clears it).
    assert os.getxattr(f"{dest}/bin/ping", "security.capability") == cap
    assert os.getxattr(f"{dest}/bin/ping", "user.note") == b"hello"
    assert os.getxattr(f"{dest}/d", "user.dir") == b"\xff\x00binary"


def test_forged_overlay_xattr_is_ignored(tmp_path):
    dest, _ = apply(tmp_path, directory("d/", xattrs={"trusted.overlay.opaque": b"y",
                                                     "trusted.overlay.redirect": b"/x"}))
    assert "trusted.overlay.opaque" not in os.listxattr(f"{dest}/d")
    assert "trusted.overlay.redirect" not in os.listxattr(f"{dest}/d")


# -- corrupt input --------------------------------------------------------------------

def test_truncated_tar_refused(tmp_path):
    data = make_tar(file("a", b"x" * 5000), file("b", b"y" * 5000))
    dest = tmp_path / "fs"
    dest.mkdir()
    with pytest.raises(InvalidLayer):
        apply_layer(io.BytesIO(data[:2048]), str(dest))


def test_garbage_refused(tmp_path):
    dest = tmp_path / "fs"
    dest.mkdir()
    with pytest.raises(InvalidLayer):
        apply_layer(io.BytesIO(b"this is not a tar" * 100), str(dest))


def test_truncated_gzip_refused(tmp_path):
    data = gzip.compress(make_tar(file("a", os.urandom(20000))))
    dest = tmp_path / "fs"
    dest.mkdir()
    with pytest.raises(InvalidLayer):
        apply_layer(open_decompressed(io.BytesIO(data[: len(data) // 2])), str(dest))


# -- compression ----------------------------------------------------------------------

class _Pipe(io.RawIOBase):
    """Non-seekable, short reads: what a socket or an HTTP body gives."""

    def __init__(self, data: bytes):
        self._data = data

    def readable(self):
        return True

    def readinto(self, b):
        n = min(len(b), 3, len(self._data))
        b[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


COMPRESSORS = {
    "none": lambda b: b,
    "gzip": gzip.compress,
    "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
    "bzip2": bz2.compress,
    "xz": lzma.compress,
}


def test_detect():
    assert detect(b"\x1f\x8b\x08\x00") == "gzip"
    assert detect(b"\x28\xb5\x2f\xfd") == "zstd"
    assert detect(make_tar(file("a"))[:4]) == "none"
    assert detect(b"") == "none"


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_open_decompressed_streams(tmp_path, kind):
    tar = make_tar(file("etc/hello", b"hi\n"), symlink("etc/mtab", "/proc/mounts"))
    blob = COMPRESSORS[kind](tar)
    assert detect(blob[:4]) == (kind if kind in ("gzip", "zstd") else "none")
    with open_decompressed(_Pipe(blob)) as f:
        assert f.read() == tar
    dest = tmp_path / "fs"
    dest.mkdir()
    apply_layer(open_decompressed(io.BufferedReader(_Pipe(blob))), str(dest))
    assert (dest / "etc" / "hello").read_bytes() == b"hi\n"


def test_zstd_frames_back_to_back_are_one_stream():
    c = zstandard.ZstdCompressor()
    with open_decompressed(io.BytesIO(c.compress(b"one ") + c.compress(b"two"))) as f:
        assert f.read() == b"one two"


def test_closing_the_reader_closes_the_source():
    src = io.BytesIO(gzip.compress(b"x"))
    open_decompressed(src).close()
    assert src.closed


# -- chain IDs ------------------------------------------------------------------------

def test_chain_ids():
    a, b, c = ("sha256:" + ch * 64 for ch in "abc")
    assert chain_ids([]) == []
    assert chain_ids([a]) == [a]
    ab = "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()
    abc = "sha256:" + hashlib.sha256(f"{ab} {c}".encode()).hexdigest()
    assert chain_ids([a, b, c]) == [a, ab, abc]
