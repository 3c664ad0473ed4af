"""`cp` and the archive endpoints: our CLI against the docker CLI, docker-py's
put_archive/get_archive, and paths and tar streams that try to leave the
container root.

Each copy case runs through both CLIs on the same daemon, into twin local
directories (or twin container directories), and the two results must be the
same trees with the same output; the cases are docker's copy rules (file to
file, file into a directory, a directory to a new name or into an existing
one, `/.`, links with and without -L, `-` streams). Escapes are checked on
the host side: a sentinel directory outside the container must stay empty.
"""

from __future__ import annotations

import base64
import io
import json
import os
import stat
import tarfile
import uuid

import docker.errors
import pytest

from dockyard.client.api import APIError

IMAGE = "busybox:local"
SETUP = ("mkdir -p /data/sub /data/empty && echo one > /data/a.txt && echo two > /data/sub/b.txt"
         " && ln -s a.txt /data/rel-link && ln -s /data/sub /data/abs-link"
         " && ln /data/a.txt /data/hard && chmod 0640 /data/a.txt && mkdir /dst"
         " && echo file > /dst/afile")


@pytest.fixture(autouse=True)
def remove_containers(daemon):
    yield
    api = daemon.api()
    for c in api.get("/containers/json", query={"all": "1"}) or []:
        api.request("DELETE", f"/containers/{c['Id']}", query={"force": "1"}).read()
    assert api.get("/containers/json", query={"all": "1"}) == []


def tree(root: str) -> dict[str, tuple]:
    """What a local copy made: type, permission bits, contents or link target."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            rel = os.path.relpath(path, root)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                with open(path, "rb") as f:
                    out[rel] = ("file", stat.S_IMODE(st.st_mode), f.read())
    return out


def run_container(daemon, *args: str, name: str | None = None) -> str:
    argv = ["run", "-d"] + (["--name", name] if name else []) + [*args]
    return daemon.run_cli(*argv, check=True).stdout.strip()


def errors(text: str) -> str:
    """stderr without the docker CLI's debug log lines (its tar writer logs
    'Can't add file ... closed pipe' when a copy is refused half-way)."""
    return "".join(line for line in text.splitlines(True) if not line.startswith("time="))


def members(data: bytes) -> list[tuple]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [(m.name, m.type, m.linkname, m.size, m.mode) for m in tar]


def test_copy_out_follows_dockers_rules(daemon, loaded_busybox, tmp_path):
    cid = run_container(daemon, IMAGE, "sh", "-c", SETUP + " && sleep 600")
    cases = [
        # (source in the container, destination relative to the local twin dir, pre-made?)
        ("/data/a.txt", "new.txt", None),
        ("/data/a.txt", "existing-dir", "dir"),
        ("/data/a.txt", "existing-file", "file"),
        ("/data", "newdir", None),
        ("/data", "existing-dir", "dir"),
        ("/data/.", "existing-dir", "dir"),
        ("/data/.", "newdir2", None),
        ("/data/rel-link", "link-copy", None),
        ("/data/abs-link", "abs-copy", None),
        ("/data/a.txt", "nodir/", None),
        ("/data", "existing-file", "file"),
        ("/nosuch", "x", None),
        ("/data/a.txt", "missing-parent/x", None),
    ]
    for flags in ([], ["-L"]):
        for src, dst, pre in cases:
            outputs = []
            trees = []
            for tool in ("ours", "docker"):
                root = tmp_path / f"{tool}-{len(flags)}-{uuid.uuid4().hex[:6]}"
                root.mkdir()
                if pre == "dir":
                    (root / dst).mkdir()
                elif pre == "file":
                    (root / dst).write_text("old\n")
                run = daemon.run_cli if tool == "ours" else daemon.docker
                r = run("cp", *flags, f"{cid}:{src}", str(root / dst))
                outputs.append((r.returncode, r.stdout, r.stderr.replace(str(root), "ROOT")))
                trees.append(tree(str(root)))
            assert outputs[0] == outputs[1], (flags, src, dst)
            assert trees[0] == trees[1], (flags, src, dst)
    # spot checks of what the rules mean
    root = tmp_path / "spot"
    root.mkdir()
    daemon.run_cli("cp", f"{cid}:/data", str(root / "copy"), check=True)
    got = tree(str(root))
    assert got["copy/a.txt"] == ("file", 0o640, b"one\n")
    assert got["copy/rel-link"] == ("link", "a.txt")
    assert got["copy/sub/b.txt"][2] == b"two\n"
    assert os.stat(root / "copy/hard").st_ino == os.stat(root / "copy/a.txt").st_ino
    daemon.run_cli("cp", "-L", f"{cid}:/data/rel-link", str(root / "followed"), check=True)
    assert tree(str(root))["followed"] == ("file", 0o640, b"one\n")


def test_copy_in_follows_dockers_rules(daemon, loaded_busybox, tmp_path):
    src = tmp_path / "src"
    (src / "dir" / "inner").mkdir(parents=True)
    (src / "dir" / "f.txt").write_text("payload\n")
    (src / "dir" / "inner" / "g.txt").write_text("deep\n")
    os.symlink("f.txt", src / "dir" / "link")
    (src / "single.txt").write_text("single\n")
    os.chmod(src / "single.txt", 0o600)
    cases = [  # (local source, container destination under /d<i>)
        ("single.txt", "/"),
        ("single.txt", "/renamed.txt"),
        ("single.txt", "/afile"),
        ("dir", "/"),
        ("dir", "/newdir"),
        ("dir/.", "/"),
        ("dir", "/afile"),
        ("single.txt", "/nodir/"),
        ("single.txt", "/nosuchdir/x"),
        ("nosuch", "/"),
    ]
    setup = "; ".join(f"mkdir /d{i} && echo file > /d{i}/afile" for i in range(len(cases)))
    results = {}
    for tool in ("ours", "docker"):
        run = daemon.run_cli if tool == "ours" else daemon.docker
        cid = run_container(daemon, IMAGE, "sh", "-c", setup + "; sleep 600")
        for i, (source, dest) in enumerate(cases):
            r = run("cp", f"{src}/{source}", f"{cid}:/d{i}{dest}")  # (Path drops "/.")
            out = tmp_path / f"back-{tool}-{i}"
            daemon.run_cli("cp", f"{cid}:/d{i}", str(out), check=True)
            results.setdefault(i, []).append(
                (r.returncode, r.stdout, errors(r.stderr).replace(cid, "CID"), tree(str(out))))
    for i, (ours, theirs) in results.items():
        assert ours == theirs, cases[i]
    assert results[3][0][3]["dir/inner/g.txt"][2] == b"deep\n"
    assert results[5][0][3]["f.txt"][2] == b"payload\n"     # /. copies the contents
    assert results[6][0][2] == "cannot copy directory\n"


def test_streams_and_stopped_containers(daemon, loaded_busybox, tmp_path):
    created = daemon.run_cli("create", IMAGE, "cat", "/in/hello.txt", check=True).stdout.strip()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        dir_info = tarfile.TarInfo("in")
        dir_info.type, dir_info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(dir_info)
        data = b"hello from a stream\n"
        info = tarfile.TarInfo("in/hello.txt")
        info.size, info.mode, info.mtime = len(data), 0o644, 1_600_000_000
        tar.addfile(info, io.BytesIO(data))
    # `-` into a container that never ran: its snapshot is mounted for the copy
    r = daemon.run_cli("cp", "-", f"{created}:/", input=buf.getvalue())
    assert r.returncode == 0, r.stderr
    assert daemon.run_cli("start", "-a", created).stdout == "hello from a stream\n"
    # now it has exited: copy out as a stream (ours and docker's give the same tar)
    ours = daemon.run_cli("cp", f"{created}:/in", "-")
    theirs = daemon.docker("cp", f"{created}:/in", "-")
    assert ours.returncode == theirs.returncode == 0
    assert members(ours.stdout.encode("utf-8", "surrogateescape")) == \
        members(theirs.stdout.encode("utf-8", "surrogateescape"))
    assert [m[0] for m in members(ours.stdout.encode())] == ["in", "in/hello.txt"]
    assert ours.stdout.startswith("in/\0")  # a directory's name ends in "/" in the stream
    hello = [m for m in members(ours.stdout.encode()) if m[0] == "in/hello.txt"][0]
    # into the exited container, and a file back out
    (tmp_path / "more.txt").write_text("more\n")
    daemon.run_cli("cp", str(tmp_path / "more.txt"), f"{created}:/in/", check=True)
    daemon.run_cli("cp", f"{created}:/in/more.txt", str(tmp_path / "back.txt"), check=True)
    assert (tmp_path / "back.txt").read_text() == "more\n"
    assert hello[4] == 0o644
    # `-` into something that is not a directory: docker's CLI refuses
    r = daemon.run_cli("cp", "-", f"{created}:/in/more.txt", input=buf.getvalue())
    assert (r.returncode, r.stderr.decode()) == (
        1, f'destination "{created}:/in/more.txt" must be a directory\n')
    assert daemon.docker("cp", "-", f"{created}:/in/more.txt",
                         input=buf.getvalue()).stderr == r.stderr
    # no mount is left behind for a stopped container
    assert not [line for line in open("/proc/self/mountinfo") if "containerfs" in line]


def test_argument_errors_like_docker(daemon, loaded_busybox):
    cid = run_container(daemon, IMAGE, "sleep", "600")
    for args in (["a", "b"], ["a:b", "c:d"], ["", "x"], ["x", ""], ["a"],
                 [f"{cid}:/etc/passwd", "/nonexistent-dir/x"],
                 ["nosuchcontainer:/x", "/tmp"], [f"{cid}:/dev/null", "-"]):
        ours, theirs = daemon.run_cli("cp", *args), daemon.docker("cp", *args)
        assert (ours.returncode, ours.stderr.replace("dockyard", "docker")) == \
            (theirs.returncode, theirs.stderr), args


def test_ownership_and_archive_mode(daemon, loaded_busybox, tmp_path):
    src = tmp_path / "owned.txt"
    src.write_text("x\n")
    os.chown(src, 1234, 5678)
    os.chmod(src, 0o4750)
    cid = run_container(daemon, "-u", "1001:1002", IMAGE, "sleep", "600")
    client = daemon.client()
    try:
        daemon.run_cli("cp", str(src), f"{cid}:/kept.txt", check=True)
        daemon.run_cli("cp", "-a", str(src), f"{cid}:/archived.txt", check=True)
        c = client.containers.get(cid)
        for name, owner in (("kept.txt", (1234, 5678)), ("archived.txt", (1001, 1002))):
            chunks, st = c.get_archive(f"/{name}")
            with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
                (m,) = tar.getmembers()
            assert (m.uid, m.gid) == owner, name
            assert m.mode == 0o4750 and st["mode"] == 0o750 | (1 << 23), name  # Go's ModeSetuid
            assert st["name"] == name and st["size"] == 2
        # copying out gives the files to the user running cp (root here), modes kept
        daemon.run_cli("cp", f"{cid}:/kept.txt", str(tmp_path / "out.txt"), check=True)
        st = os.stat(tmp_path / "out.txt")
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o4750)
        assert st.st_mtime == int(os.stat(src).st_mtime)
    finally:
        client.close()


def test_docker_py_put_and_get_archive(daemon, loaded_busybox):
    client = daemon.client()
    try:
        c = client.containers.run(IMAGE, ["sleep", "600"], detach=True)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo("pkg/conf.ini")
            payload = b"[a]\nb=1\n"
            info.size, info.mode, info.uid, info.gid = len(payload), 0o600, 42, 43
            tar.addfile(info, io.BytesIO(payload))
        assert c.put_archive("/", buf.getvalue()) is True
        chunks, st = c.get_archive("/pkg")
        assert st["name"] == "pkg" and st["mode"] & (1 << 31)
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            got = {m.name: m for m in tar}
            assert tar.extractfile(got["pkg/conf.ini"]).read() == payload
        assert (got["pkg/conf.ini"].uid, got["pkg/conf.ini"].gid) == (42, 43)
        assert list(got) == ["pkg", "pkg/conf.ini"]
        with pytest.raises(docker.errors.NotFound) as e:
            c.get_archive("/nosuch")
        assert f"Could not find the file /nosuch in container {c.id}" in str(e.value)
        with pytest.raises(docker.errors.APIError) as e:
            c.put_archive("/pkg/conf.ini", buf.getvalue())
        assert e.value.status_code == 400 and "extraction point is not a directory" in str(e.value)
        with pytest.raises(docker.errors.NotFound):
            c.put_archive("/no/such/dir", buf.getvalue())
        # the root itself: entries rebased to "/" as dockerd sends them
        api = daemon.api()
        response = api.request("HEAD", f"/containers/{c.id}/archive", query={"path": "/"})
        stat_json = json.loads(base64.b64decode(response.getheader(
            "X-Docker-Container-Path-Stat")))
        assert stat_json["name"] == "/" and stat_json["linkTarget"] == ""
        with pytest.raises(APIError) as e:
            api.request("GET", f"/containers/{c.id}/archive", query={"path": ""})
        assert (e.value.status, e.value.message) == (400, "bad parameter: path cannot be empty")
    finally:
        client.close()


def _tar(*entries: tarfile.TarInfo, data: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info in entries:
            body = (data or {}).get(info.name)
            if body is not None:
                info.size = len(body)
            tar.addfile(info, io.BytesIO(body) if body is not None else None)
    return buf.getvalue()


def _info(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "", mode: int = 0o644,
          dev: tuple[int, int] = (0, 0)) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, linkname, mode
    info.devmajor, info.devminor = dev
    return info


def test_paths_and_tars_never_leave_the_container_root(daemon, loaded_busybox, tmp_path):
    sentinel = tmp_path / "host-sentinel"
    sentinel.mkdir()
    host = str(sentinel)
    cid = run_container(daemon, IMAGE, "sh", "-c",
                        f"mkdir -p /box && ln -s / /box/root-link && ln -s ../../../../.. "
                        f"/box/up-link && ln -s {host} /box/host-link && mkdir -p {host} "
                        f"&& echo inside > /etc/marker && sleep 600")
    api = daemon.api()

    def put(path: str, data: bytes, **query) -> None:
        api.request("PUT", f"/containers/{cid}/archive", query={"path": path, **query},
                    body=data, headers={"Content-Type": "application/x-tar"}).read()

    def get_file(path: str) -> bytes:
        data = api.request("GET", f"/containers/{cid}/archive", query={"path": path}).read()
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            return tar.extractfile(tar.getmembers()[0]).read()

    payload = {"x.txt": b"where am I\n"}
    # `..` and links in the requested path resolve inside the root
    for path in (f"/../../../..{host}", f"/box/up-link{host}", f"/box/root-link{host}",
                 "/box/host-link"):
        put(path, _tar(_info("x.txt"), data=payload))
        assert os.listdir(host) == [], path
    assert get_file(f"{host}/x.txt") == b"where am I\n"
    # reads through links stay inside too: the container's file, never the host's
    assert get_file("/box/up-link/etc/marker") == b"inside\n"
    assert get_file("/../../etc/marker") == b"inside\n"
    head = api.request("HEAD", f"/containers/{cid}/archive", query={"path": "/box/up-link"})
    assert json.loads(base64.b64decode(head.getheader("X-Docker-Container-Path-Stat")))[
        "linkTarget"] == "/"
    # entries that climb out of the destination are refused before anything is written
    with pytest.raises(APIError) as e:
        put("/box", _tar(_info("ok.txt"), _info("../../../../..{}/evil".format(host)),
                         data={"ok.txt": b"1", f"../../../../..{host}/evil": b"2"}))
    assert e.value.status == 500 and "invalid entry name" in e.value.message
    with pytest.raises(APIError):
        get_file("/box/ok.txt")
    # a link in the stream, then a file through it: it lands under the destination
    put("/box", _tar(_info("esc", tarfile.SYMTYPE, linkname="/"),
                     _info("esc" + host + "/through.txt"),
                     _info("up", tarfile.SYMTYPE, linkname="../../../../../.."),
                     _info("up" + host + "/through-up.txt"),
                     data={"esc" + host + "/through.txt": b"a",
                           "up" + host + "/through-up.txt": b"b"}))
    assert os.listdir(host) == []
    assert get_file(f"/box{host}/through.txt") == b"a"
    assert get_file(f"/box{host}/through-up.txt") == b"b"
    # device nodes: made inside the container (as dockerd does), never through a link
    put("/box/host-link", _tar(_info("null", tarfile.CHRTYPE, mode=0o666, dev=(1, 3))))
    assert os.listdir(host) == []
    listing = api.request("GET", f"/containers/{cid}/archive",
                          query={"path": f"{host}/null"}).read()
    (m,) = tarfile.open(fileobj=io.BytesIO(listing)).getmembers()
    assert m.ischr() and (m.devmajor, m.devminor) == (1, 3)
    # a hard link to an absolute path means the destination's path, not the host's
    with pytest.raises(APIError) as e:
        put("/box", _tar(_info("pw", tarfile.LNKTYPE, linkname="/etc/passwd")))
    assert e.value.status == 404
    # an absolute symlink is kept as written and resolves in the container
    put("/box", _tar(_info("abs", tarfile.SYMTYPE, linkname="/etc/marker")))
    data = api.request("GET", f"/containers/{cid}/archive", query={"path": "/box/abs"}).read()
    (m,) = tarfile.open(fileobj=io.BytesIO(data)).getmembers()
    assert m.issym() and m.linkname == "/etc/marker"
    assert os.listdir(host) == []
