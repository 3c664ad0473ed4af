"""The registry image's root filesystem writer: host paths kept as they are
(links on the way included), bytecode filtering, and ldd's output read."""

from __future__ import annotations

import io
import os
import re
import sys
import tarfile

from dockyard.registry import image


def entries(build) -> dict[str, tarfile.TarInfo]:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        build(image.RootfsWriter(tar))
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_a_path_through_a_linked_directory_keeps_the_link_and_the_real_path(tmp_path):
    (tmp_path / "usr" / "lib").mkdir(parents=True)
    (tmp_path / "usr" / "lib" / "libc.so.6").write_bytes(b"\x7fELF")
    (tmp_path / "usr" / "lib" / "libc.so").symlink_to("libc.so.6")
    (tmp_path / "lib").symlink_to("usr/lib")
    got = entries(lambda w: w.host_path(str(tmp_path / "lib" / "libc.so")))
    root = str(tmp_path).lstrip("/")
    assert got[f"{root}/lib"].issym() and got[f"{root}/lib"].linkname == "usr/lib"
    assert got[f"{root}/usr/lib/libc.so"].linkname == "libc.so.6"
    libc = got[f"{root}/usr/lib/libc.so.6"]
    assert libc.isreg() and libc.size == 4 and (libc.uid, libc.uname) == (0, "root")
    # Nothing is written through the link: every entry's parent is a directory.
    dirs = {n for n, m in got.items() if m.isdir()}
    for name in got:
        parent = os.path.dirname(name)
        assert parent in dirs or parent == "", name
    assert not any(n.startswith(f"{root}/lib/") for n in got)


def test_each_path_is_written_once(tmp_path):
    (tmp_path / "a").write_text("x")
    got = []

    def build(w):
        w.host_path(str(tmp_path / "a"))
        w.host_path(str(tmp_path / "a"))
        w.directory("/etc")
        w.file("/etc/passwd", b"root:x:0:0::/root:/bin/sh\n")
        got.extend(w.tar.getnames())

    entries(build)
    assert len(got) == len(set(got))
    assert got[-2:] == ["etc", "etc/passwd"]


def test_walk_skips_what_the_pattern_names_and_foreign_bytecode(tmp_path):
    for rel in ("os.py", "test/test_os.py", "lib-dynload/_tkinter.so", "lib-dynload/_ssl.so",
                "__pycache__/os" + image.PYC, "__pycache__/os.cpython-311.opt-1.pyc",
                "idlelibx/keep.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    got = list(image._walk(str(tmp_path), image.STDLIB_SKIP))
    assert sorted(got) == sorted(["os.py", "lib-dynload/_ssl.so", "__pycache__/os" + image.PYC,
                                  "idlelibx/keep.py"])


def test_shared_libraries_of_the_interpreter_include_libc():
    libs = image.shared_libraries([os.path.realpath(sys._base_executable)])
    assert libs and all(os.path.isabs(p) and os.path.exists(p) for p in libs)
    assert any(re.search(r"/libc\.so", p) for p in libs)


def test_image_config_runs_the_registry_module():
    config = image.image_config("sha256:" + "0" * 64, s3=False)
    assert config["rootfs"] == {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]}
    assert config["config"]["Entrypoint"] == ["python3", "-m", "dockyard.registry"]
    assert f"PYTHONPATH={image.PACKAGES}" in config["config"]["Env"]
    assert config["history"][0]["created_by"].startswith("python -m dockyard.registry.image")
