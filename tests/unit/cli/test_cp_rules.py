"""`cp`'s path rules (docker/cli cp.go, go-archive copy.go) and the local unpack."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from dockyard.cli import cp


@pytest.mark.parametrize("arg, expected", [
    ("c1:/etc", ("c1", "/etc")), ("/abs:path", ("", "/abs:path")),
    ("./rel:path", ("", "./rel:path")), ("plain", ("", "plain")), ("c:", ("c", "")),
])
def test_split_cp_arg(arg, expected):
    assert cp.split_cp_arg(arg) == expected


@pytest.mark.parametrize("cleaned, original, expected", [
    ("/a/b", "/a/b/", "/a/b/"), ("/a/b", "/a/b/.", "/a/b/."), ("/", "/.", "/."),
    ("/a", "/a", "/a"), ("/", "//", "/"),
])
def test_preserve_trailing(cleaned, original, expected):
    assert cp.preserve_trailing_dot_or_separator(cleaned, original) == expected


def test_split_and_rebase_names():
    assert cp.split_path_dir_entry("/a/b/") == ("/a", "b")
    assert cp.split_path_dir_entry("/a/b/.") == ("/a/b", ".")
    assert cp.split_path_dir_entry("/") == ("/", "/")
    assert cp.get_rebase_name("/data/link/", "/real") == ("/real/", "link")
    assert cp.get_rebase_name("/data/link", "/data/link") == ("/data/link", "")
    assert cp.rebase_name("src/x", "src", "dst") == "dst/x"
    assert cp.rebase_name("/x", "/", "dst") == "dst/x"
    assert cp.clean("//a//b/") == "/a/b" and cp.clean("") == "."


@pytest.mark.parametrize("src_dir, dst, exists, dst_dir, expected", [
    (False, "/d", True, True, ("/d", None)),
    (True, "/d", True, True, ("/d", None)),
    (False, "/f", True, False, ("/", ("s", "f"))),
    (True, "/new", False, False, ("/", ("s", "new"))),
    (False, "/new", False, False, ("/", ("s", "new"))),
])
def test_prepare_archive_copy(src_dir, dst, exists, dst_dir, expected):
    assert cp.prepare_archive_copy("/x/s", src_dir, "", dst, exists, dst_dir) == expected


def test_prepare_archive_copy_errors():
    with pytest.raises(cp.CopyError, match="cannot copy directory"):
        cp.prepare_archive_copy("/x/s", True, "", "/f", True, False)
    with pytest.raises(cp.CopyError, match="no such directory"):
        cp.prepare_archive_copy("/x/s", False, "", "/new/", False, False)


def _tar(*members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, kind, link in members:
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.mode = kind, link, 0o640
            tar.addfile(info, io.BytesIO(b"") if kind == tarfile.REGTYPE else None)
    buf.seek(0)
    return buf


def test_unpack_keeps_entries_inside(tmp_path):
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    with pytest.raises(cp.CopyError, match="outside the destination"):
        cp.unpack(_tar(("a", tarfile.SYMTYPE, str(outside)), ("a/planted", tarfile.REGTYPE, "")),
                  str(dest), [])
    assert os.listdir(outside) == []
    with pytest.raises(cp.CopyError, match='invalid entry name "../x"'):
        cp.unpack(_tar(("../x", tarfile.REGTYPE, "")), str(dest), [])
    cp.unpack(_tar(("src/", tarfile.DIRTYPE, ""), ("src/f", tarfile.REGTYPE, "")), str(dest),
              [("src", "renamed")])
    assert (dest / "renamed" / "f").exists()
    assert oct(os.stat(dest / "renamed" / "f").st_mode & 0o777) == oct(0o640)
    with pytest.raises(cp.CopyError, match="cannot overwrite directory"):
        cp.unpack(_tar(("renamed", tarfile.REGTYPE, "")), str(dest), [])
