"""COPY/ADD source hashes, against values recorded from dockerd 20.10."""

import hashlib
import io
import os
import tarfile

import pytest

from dockyard.builder import context, sourcehash

# The context of the recording's first build (section 1), as the CLI sent it.
S1 = [
    ("Dockerfile", b"FROM busybox:local\n", 0o644),
    ("config.json", b'{"k": "v"}\n', 0o644),
    ("files/", None, 0o755),
    ("files/.hidden", b"hidden\n", 0o644),
    ("files/run.sh", b"#!/bin/sh\necho run\n", 0o755),
    ("files/sub/", None, 0o755),
    ("files/sub/data.txt", b"data\n", 0o600),
    ("hello.txt", b"hello v2\n", 0o644),
]



def cli_tar(entries, uid=0, mtime=1700000000):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data, mode in entries:
            info = tarfile.TarInfo(name)
            info.mode, info.uid, info.gid, info.mtime = mode, uid, uid, mtime
            info.uname = info.gname = ""
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif isinstance(data, str):
                info.type, info.linkname = tarfile.SYMTYPE, data
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def unpack(tmp_path, body, name="ctx"):
    d = tmp_path / name
    d.mkdir()
    context.receive(io.BytesIO(body), str(d))
    return str(d)


def copy_hash(directory, *sources):
    hasher = sourcehash.SourceHasher(directory)
    return sourcehash.combined_hash([hasher.source_hash(rel) for source in sources
                                     for rel in context.resolve_source(directory, source)])


def test_recorded_multi_and_dir(tmp_path):
    # Section 1 (note: the recorded Dockerfile differs, which no hash here covers).
    d = unpack(tmp_path, cli_tar(S1))
    assert copy_hash(d, "hello.txt", "config.json") == \
        "multi:dac955ea982dbfd4e76ce8e89eb5754d7067958feace9f4737c8d3e49e30c2cc"
    assert copy_hash(d, "files") == \
        "dir:89d08ead33c6269088db08bb9bbcb49370b42d24801fc5f3d5d36a53b96a7ce9"
    assert copy_hash(d, "files/sub") == \
        "dir:64dd9bb9193c66e9f6bcc84d4ee81b6aeeb156253b221fa9b185f31c588f366d"
    assert copy_hash(d, "files/run.sh") == \
        "file:f392bafc94d54b7064199926909f9415291db1cc708f7ef20efdf26c95666712"


@pytest.mark.parametrize("uid,mode,mtime,expected", [
    (0, 0o644, 1700000000, "c50ecf0f8081044924e199cfe6cfd18d0c9dd4d16be07790bb24f7088112b98e"),
    (0, 0o644, 1234567890, "c50ecf0f8081044924e199cfe6cfd18d0c9dd4d16be07790bb24f7088112b98e"),
    (4321, 0o644, 1700000000, "b66cadd48b8feab05434a22b7981cb8abd2df12e096387a8efeb90b930199334"),
    (0, 0o600, 1700000000, "26095ce29ddd37537a88cc2a2979fb10132d3cb82196ad2aabb7f140157ef335"),
])
def test_recorded_header_variants(tmp_path, uid, mode, mtime, expected):
    # Section 1.13: mtime does not count; uid/gid and mode do.
    d = unpack(tmp_path, cli_tar([("hello.txt", b"hello\n", mode)], uid=uid, mtime=mtime))
    assert copy_hash(d, "hello.txt") == "file:" + expected


def test_wildcard_matching_one_is_a_file_hash_and_several_multi(tmp_path):
    d = unpack(tmp_path, cli_tar(S1))
    assert copy_hash(d, "hel*.txt") == copy_hash(d, "hello.txt")
    assert copy_hash(d, "files/*") == copy_hash(d, "files/.hidden", "files/run.sh", "files/sub")
    assert copy_hash(d, "files/*").startswith("multi:")


def test_symlink_source_hashes_its_target(tmp_path):
    d = unpack(tmp_path, cli_tar([("d/", None, 0o755), ("d/in.txt", b"inside\n", 0o644),
                                  ("dir-link", "d", 0o777), ("in-link", "d/in.txt", 0o777)]))
    assert copy_hash(d, "in-link") == copy_hash(d, "d/in.txt")
    assert copy_hash(d, "dir-link") == copy_hash(d, "d")


def test_dir_with_links_counts_targets_and_unresolvable_paths(tmp_path):
    d = unpack(tmp_path, cli_tar([("d/", None, 0o755), ("d/in.txt", b"inside\n", 0o644),
                                  ("d/link", "in.txt", 0o777), ("d/dangling", "/nowhere", 0o777)]))
    hasher = sourcehash.SourceHasher(d)
    entry = hasher.entry_hash
    parts = sorted([entry("d"), entry("d/in.txt"), entry("d/in.txt"), "d/dangling"])
    assert hasher.source_hash("d") == \
        "dir:" + hashlib.sha256(",".join(parts).encode()).hexdigest()


def test_whole_context_leaves_the_root_out(tmp_path):
    """dockerd's walk of a directory source skips the context's root (checked
    against dockerd 20.10: `COPY . /ctx/` has the same hash)."""
    d = unpack(tmp_path, cli_tar([("a", b"a", 0o644)]))
    hasher = sourcehash.SourceHasher(d)
    parts = [hasher.entry_hash("a")]
    assert copy_hash(d, ".") == "dir:" + hashlib.sha256(",".join(parts).encode()).hexdigest()


@pytest.mark.skipif(os.geteuid() != 0, reason="the file must be owned by root, as in an image")
def test_image_sources_hash_as_dockerds_lazy_source(tmp_path):
    """`COPY --from`: Go's mode with its type bits, the host's owner names
    (dockerd 20.10 gave file:6a3e04be... for a 1-byte "\n" file m, 0644, 0:0)."""
    (tmp_path / "m").write_bytes(b"\n")
    os.chown(tmp_path / "m", 0, 0)
    os.chmod(tmp_path / "m", 0o644)
    hasher = sourcehash.SourceHasher(str(tmp_path), image=True)
    assert hasher.source_hash("m") == \
        "file:6a3e04befd401fb38cc3158ef1c9299277cb7b7da75f7fa1fa4ceab1c638a640"


def test_hard_link_hashes_as_the_cli_sends_it(tmp_path):
    d = tmp_path / "ctx"
    d.mkdir()
    (d / "a").write_bytes(b"same")
    os.link(d / "a", d / "b")
    hasher = sourcehash.SourceHasher(str(d))
    header = ("nameb" "mode420" "uid0" "gid0" "size0" "typeflag1" "linknamea"
              "uname" "gname" "devmajor0" "devminor0")
    os.chmod(d / "a", 0o644)
    assert hasher.entry_hash("b") == hashlib.sha256(header.encode()).hexdigest()
    assert hasher.entry_hash("a") != hasher.entry_hash("b")


def test_combined_hash():
    assert sourcehash.combined_hash(["file:ab"]) == "file:ab"
    assert sourcehash.combined_hash(["file:ab", "dir:cd"]) == \
        "multi:" + hashlib.sha256(b"file:ab,dir:cd").hexdigest()


def test_copy_comment():
    h = "file:c50ecf0f8081044924e199cfe6cfd18d0c9dd4d16be07790bb24f7088112b98e"
    assert sourcehash.copy_comment("COPY", h, "/h/") == f"COPY {h} in /h/ "
    assert sourcehash.copy_comment("add", h, "/d", chown="1000:1000") == \
        f"ADD --chown=1000:1000{h} in /d "
