"""The build context: receiving the tar stream, the Dockerfile, COPY sources."""

import io
import os
import tarfile

import pytest

from dockyard import errdefs
from dockyard.builder import context


def cli_tar(entries, end=True):
    """A context tar as the docker CLI writes it: ustar, names without "./",
    uid/gid 0, no user names; without end blocks nor final padding when
    `end` is false (what it sends with `-f -`)."""
    out = io.BytesIO()
    for name, kind, value, mode in entries:
        info = tarfile.TarInfo(name)
        info.mode, info.uname, info.gname, info.mtime = mode, "", "", 1700000000
        data = b""
        if kind == "file":
            data = value
            info.size = len(data)
        elif kind == "dir":
            info.type = tarfile.DIRTYPE
        else:
            info.type, info.linkname = tarfile.SYMTYPE, value
        out.write(info.tobuf(tarfile.USTAR_FORMAT))
        out.write(data)
        if data:
            out.write(b"\0" * (-len(data) % 512))
    raw = out.getvalue()
    if end:
        return raw + b"\0" * 1024
    return raw.rstrip(b"\0") if entries[-1][1] == "file" else raw


def f(name, data=b"x\n", mode=0o644):
    return (name, "file", data, mode)


def receive(tmp_path, body):
    d = tmp_path / "ctx"
    d.mkdir()
    context.receive(io.BytesIO(body), str(d))
    return d


# --- receive -----------------------------------------------------------------------

def test_receive_keeps_files_modes_dirs_and_symlinks(tmp_path):
    body = cli_tar([f("Dockerfile", b"FROM busybox\n"), ("d/", "dir", None, 0o750),
                    f("d/run.sh", b"#!/bin/sh\n", 0o755), ("abs", "link", "/etc/hostname", 0o777),
                    ("dangling", "link", "/nonexistent", 0o777),
                    ("out", "link", "../outside.txt", 0o777)])
    d = receive(tmp_path, body)
    assert (d / "Dockerfile").read_bytes() == b"FROM busybox\n"
    assert (d / "d").stat().st_mode & 0o7777 == 0o750
    assert (d / "d/run.sh").stat().st_mode & 0o7777 == 0o755
    assert os.readlink(d / "abs") == "/etc/hostname"
    assert os.readlink(d / "dangling") == "/nonexistent"
    assert os.readlink(d / "out") == "../outside.txt"


def test_receive_reads_in_chunks(tmp_path):
    class Pipe(io.RawIOBase):
        def __init__(self, data):
            self.data, self.biggest = data, 0

        def readable(self):
            return True

        def readinto(self, b):
            n = min(len(b), 700, len(self.data))
            b[:n], self.data = self.data[:n], self.data[n:]
            self.biggest = max(self.biggest, n)
            return n

    pipe = Pipe(cli_tar([f("big", b"a" * 3_000_000)]))
    d = tmp_path / "ctx"
    d.mkdir()
    context.receive(pipe, str(d))
    assert (d / "big").stat().st_size == 3_000_000


def test_stream_without_end_blocks_nor_padding_is_accepted(tmp_path):
    body = cli_tar([f("inctx.txt"), f(".dockerfile.0123456789abcdef0123", b"FROM x\n", 0o600)],
                   end=False)
    assert len(body) % 512 != 0
    d = receive(tmp_path, body)
    assert (d / ".dockerfile.0123456789abcdef0123").read_bytes() == b"FROM x\n"
    assert (d / ".dockerfile.0123456789abcdef0123").stat().st_mode & 0o777 == 0o600


def test_stream_ending_inside_the_padding_is_accepted(tmp_path):
    body = cli_tar([f("a", b"abc")], end=False) + b"\0" * 100
    assert (receive(tmp_path, body) / "a").read_bytes() == b"abc"


def test_gzip_body_is_accepted(tmp_path):
    import gzip
    d = receive(tmp_path, gzip.compress(cli_tar([f("a", b"abc")])))
    assert (d / "a").read_bytes() == b"abc"


def test_empty_body_is_an_empty_context(tmp_path):
    d = receive(tmp_path, b"")
    assert os.listdir(d) == []
    with pytest.raises(errdefs.System, match="^Cannot locate specified Dockerfile: Dockerfile$"):
        context.locate_dockerfile(str(d), "Dockerfile")


@pytest.mark.parametrize("body", [
    b"not a tar at all\n",                                          # the recorded junk.bin
    b"FROM busybox:local\nRUN echo in-context Dockerfile\n",       # a bare Dockerfile
    cli_tar([f("a", b"x" * 1000)])[:512 + 600],                    # data cut in a block
    cli_tar([f("a", b"x" * 700)])[:512 + 600],                     # data cut in its last block
    cli_tar([f("a"), f("b")])[:1024 + 100],                        # second header cut
])
def test_short_body_is_unexpected_eof(tmp_path, body):
    with pytest.raises(context.ContextError, match="^unexpected EOF$") as e:
        receive(tmp_path, body)
    assert isinstance(e.value, errdefs.System)  # HTTP 500, as dockerd


@pytest.mark.parametrize("body", [
    b"x" * 2048,                                                   # first block
    cli_tar([f("a", b"z" * 512)], end=False) + b"y" * 512,          # after an entry
])
def test_block_that_is_no_header(tmp_path, body):
    with pytest.raises(context.ContextError, match="^archive/tar: invalid tar header$"):
        receive(tmp_path, body)


def test_entry_climbing_out_is_refused(tmp_path):
    with pytest.raises(errdefs.DockyardError, match="invalid entry name"):
        receive(tmp_path, cli_tar([f("../escape")]))
    assert not (tmp_path / "escape").exists()


def test_absolute_names_and_links_stay_inside(tmp_path):
    # go-archive roots absolute names in the destination; a symlink on the
    # way is resolved inside it too.
    d = receive(tmp_path, cli_tar([f("/abs.txt"), ("real/", "dir", None, 0o755),
                                   ("etc", "link", "/real", 0o777), f("etc/passwd", b"p")]))
    assert (d / "abs.txt").read_bytes() == b"x\n"
    assert (d / "real/passwd").read_bytes() == b"p"
    assert os.readlink(d / "etc") == "/real"


def test_entry_under_a_dangling_link_fails(tmp_path):
    with pytest.raises(context.ContextError):
        receive(tmp_path, cli_tar([("etc", "link", "/nowhere-on-host", 0o777),
                                   f("etc/passwd", b"p")]))
    assert not os.path.exists("/nowhere-on-host")


def test_owner_is_kept(tmp_path):
    out = io.BytesIO()
    info = tarfile.TarInfo("owned")
    info.uid = info.gid = 4321
    info.size = 1
    out.write(info.tobuf(tarfile.USTAR_FORMAT) + b"o" + b"\0" * 511 + b"\0" * 1024)
    st = (receive(tmp_path, out.getvalue()) / "owned").stat()
    assert (st.st_uid, st.st_gid) == (4321, 4321)


# --- the Dockerfile ----------------------------------------------------------------

def test_locate_dockerfile(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM x\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub/Dockerfile.x").write_text("FROM y\n")
    found = context.locate_dockerfile(str(tmp_path))
    assert found == context.Dockerfile("Dockerfile", str(tmp_path / "Dockerfile"))
    assert context.locate_dockerfile(str(tmp_path), "sub/Dockerfile.x").path == \
        str(tmp_path / "sub/Dockerfile.x")


def test_locate_dockerfile_lowercase_default(tmp_path):
    (tmp_path / "dockerfile").write_text("FROM x\n")
    assert context.locate_dockerfile(str(tmp_path), "Dockerfile").name == "dockerfile"


def test_locate_dockerfile_missing(tmp_path):
    with pytest.raises(context.DockerfileNotFound,
                       match="^Cannot locate specified Dockerfile: nope$"):
        context.locate_dockerfile(str(tmp_path), "nope")


def test_locate_dockerfile_never_outside(tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (tmp_path / "Dockerfile.out").write_text("FROM x\n")
    (ctx / "link").symlink_to(tmp_path / "Dockerfile.out")
    for name in ("../Dockerfile.out", "link", str(tmp_path / "Dockerfile.out")):
        with pytest.raises(context.DockerfileNotFound):
            context.locate_dockerfile(str(ctx), name)


def test_empty_dockerfile(tmp_path):
    (tmp_path / "Dockerfile").write_bytes(b"")
    with pytest.raises(errdefs.InvalidParameter,
                       match=r"^the Dockerfile \(Dockerfile\) cannot be empty$"):
        context.locate_dockerfile(str(tmp_path), "Dockerfile")


def test_remove_build_files(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM x\n")
    (tmp_path / ".dockerignore").write_text("Dockerfile\n.dockerignore\n")
    (tmp_path / "keep").write_text("k")
    assert context.remove_build_files(str(tmp_path), "Dockerfile") == \
        [".dockerignore", "Dockerfile"]
    assert sorted(os.listdir(tmp_path)) == ["keep"]


def test_remove_build_files_keeps_what_is_not_excluded(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM x\n")
    (tmp_path / ".dockerignore").write_text("*.md\n")
    assert context.remove_build_files(str(tmp_path), "Dockerfile") == []
    assert context.remove_build_files(str(tmp_path / "none"), "Dockerfile") == []
    assert sorted(os.listdir(tmp_path)) == [".dockerignore", "Dockerfile"]


# --- COPY/ADD sources --------------------------------------------------------------

@pytest.fixture
def ctx(tmp_path):
    (tmp_path / "f.txt").write_text("f")
    (tmp_path / "d").mkdir()
    (tmp_path / "d/in.txt").write_text("inside\n")
    (tmp_path / "w").mkdir()
    for name in ("one.txt", "two.txt", "x1.txt", "t.md", "a*b"):
        (tmp_path / "w" / name).write_text(name)
    os.symlink("d/in.txt", tmp_path / "in-link")
    os.symlink("d", tmp_path / "dir-link")
    os.symlink("/etc/hostname", tmp_path / "abs-link")
    os.symlink("/d/in.txt", tmp_path / "abs-in-link")
    os.symlink("../outside.txt", tmp_path / "rel-out-link")
    os.symlink("/nonexistent", tmp_path / "dangling")
    (tmp_path.parent / "outside.txt").write_text("o")
    return str(tmp_path)


def test_plain_sources(ctx):
    assert context.resolve_source(ctx, "f.txt") == ["f.txt"]
    assert context.resolve_source(ctx, "/f.txt") == ["f.txt"]
    assert context.resolve_source(ctx, "./d/") == ["d/"]
    assert context.resolve_source(ctx, ".") == ["."]


def test_symlink_sources_are_followed_inside(ctx):
    assert context.resolve_source(ctx, "in-link") == ["in-link"]
    assert context.follow(ctx, "in-link") == os.path.join(ctx, "d/in.txt")
    assert context.follow(ctx, "dir-link") == os.path.join(ctx, "d")
    assert context.follow(ctx, "abs-in-link") == os.path.join(ctx, "d/in.txt")


@pytest.mark.parametrize("source", ["missing.txt", "missing-dir/", "abs-link", "rel-out-link",
                                    "dangling"])
def test_missing_sources(ctx, source):
    with pytest.raises(context.SourceNotFound) as e:
        context.resolve_source(ctx, source)
    assert str(e.value) == ("file not found in build context or excluded by .dockerignore: "
                            f"stat {source}: file does not exist")


@pytest.mark.parametrize("source", ["../x", "./../x", "/../x", "d/../../x", ".."])
def test_forbidden_sources(ctx, source):
    with pytest.raises(context.ForbiddenPath) as e:
        context.resolve_source(ctx, source)
    shown = source.lstrip("/").removeprefix("./")
    assert str(e.value) == f"forbidden path outside the build context: {shown} ()"


def test_wildcards(ctx):
    assert context.resolve_source(ctx, "w/*.txt") == ["w/one.txt", "w/two.txt", "w/x1.txt"]
    assert context.resolve_source(ctx, "w/x?.txt") == ["w/x1.txt"]
    assert context.resolve_source(ctx, "w/t*.md") == ["w/t.md"]
    assert context.resolve_source(ctx, "*") == sorted(os.listdir(ctx))
    assert context.resolve_source(ctx, "nomatch*.txt") == []
    # An escaped "*" is no wildcard, and the builder then takes the name
    # literally, backslash included: dockerd finds no such file either.
    with pytest.raises(context.SourceNotFound):
        context.resolve_source(ctx, "w/a\\*b")
    assert context.resolve_source(ctx, "w/[ot]*") == ["w/one.txt", "w/t.md", "w/two.txt"]
    assert context.resolve_source(ctx, "../*") == []


@pytest.mark.parametrize("pattern,name,expected", [
    ("*", "abc", True), ("*", "a/b", False), ("a/*", "a/b", True), ("*/b", "a/b", True),
    ("a*c", "abbbc", True), ("a*c", "ab/c", False), ("?", "/", False), ("a?c", "abc", True),
    ("[a-c]x", "bx", True), ("[^a-c]x", "bx", False), ("[^a-c]x", "dx", True),
    ("[]a]", "]", False), ("[\\]]", "]", True), ("\\*", "*", True), ("\\*", "a", False),
    ("[", "[", False), ("a[", "a", False), ("[a-", "a", False), ("*.txt", ".hidden.txt", True),
    ("", "", True), ("", "a", False),
])
def test_go_match(pattern, name, expected):
    assert context.go_match(pattern, name) is expected


def test_has_wildcards():
    assert context.has_wildcards("a*")
    assert context.has_wildcards("[ab]")
    assert not context.has_wildcards("a\\*b")
    assert not context.has_wildcards("plain.txt")
