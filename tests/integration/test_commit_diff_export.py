"""`diff`, `export` and `commit`: what a container changed, its whole filesystem,
and its changes as a new image that runs, through our CLI, the docker CLI and
docker-py on the same daemon.

The scenario: a base image is committed from busybox with /data, /keep and
/etc/conf; a second container on it changes a file, deletes one, deletes a
file of the image, makes a directory, and replaces /keep with a new one
(overlayfs makes that an opaque directory). The diff must list exactly that,
as dockerd 20.10 lists it; the committed layer must carry the whiteouts as
OCI `.wh.` files; the new image must run and show the changes.
"""

from __future__ import annotations

import io
import json
import tarfile
import time

import docker.errors
import pytest

from test_cp import remove_containers  # noqa: F401 (autouse: every container goes at the end)

IMAGE = "busybox:local"
# /data's time is set apart: a directory whose time is within the same second as in
# the layer below (whole seconds there) counts as unchanged, as in moby, and /data
# would then be listed after /data/a, as the parent of the deleted /data/b.
BASE = ("mkdir -p /data /keep && echo a > /data/a && echo b > /data/b && echo x > /keep/x"
        " && echo y > /keep/y && echo conf > /etc/conf && touch -d '2000-01-01 00:00:00' /data")
CHANGE = ("echo more >> /data/a && rm /data/b && rm /bin/echo && mkdir /new"
          " && echo n > /new/file && rm -rf /keep && mkdir /keep && echo z > /keep/z"
          " && echo extra > /etc/extra")
EXPECTED_DIFF = """C /bin
D /bin/echo
C /data
C /data/a
D /data/b
C /etc
A /etc/extra
D /keep
A /keep/z
A /new
A /new/file
"""


def run(daemon, *args: str) -> str:
    return daemon.run_cli(*args, check=True).stdout


def layer_members(daemon, image: str) -> list[str]:
    """The names in the top layer of `image`, read from `save`."""
    data = daemon.api().request("GET", f"/images/{image}/get").read()
    with tarfile.open(fileobj=io.BytesIO(data)) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))
        top = manifest[0]["Layers"][-1]
        with tarfile.open(fileobj=outer.extractfile(top)) as layer:
            return [m.name for m in layer]


def test_diff_commit_and_run(daemon, loaded_busybox, tmp_path):
    run(daemon, "run", "--name", "base", IMAGE, "sh", "-c", BASE)
    base_id = run(daemon, "commit", "base", "base:1").strip()
    assert base_id.startswith("sha256:") and len(base_id) == 71
    run(daemon, "run", "--name", "changed", "base:1", "sh", "-c", CHANGE)

    ours, theirs = daemon.run_cli("diff", "changed"), daemon.docker("diff", "changed")
    assert ours.stdout == theirs.stdout == EXPECTED_DIFF
    assert daemon.api().get("/containers/changed/changes")[:2] == [
        {"Path": "/bin", "Kind": 0}, {"Path": "/bin/echo", "Kind": 2}]

    new_id = run(daemon, "commit", "-m", "the change", "-a", "Someone <s@example.com>",
                 "changed", "changed:1").strip()
    names = layer_members(daemon, "changed:1")
    for expected in ("bin/.wh.echo", "data/.wh.b", "data/a", "keep/.wh..wh..opq", "keep/z",
                     "new/file", "etc/extra"):
        assert expected in names, expected
    assert not [n for n in names if n.startswith(("proc", "sys", "etc/hostname", "etc/hosts"))]
    script = ("cat /data/a; ls /data /keep; cat /etc/extra /etc/conf; "
              "test -e /bin/echo || echo no-echo")
    out = run(daemon, "run", "--rm", "changed:1", "sh", "-c", script)
    assert out == "a\nmore\n/data:\na\n\n/keep:\nz\nextra\nconf\nno-echo\n"

    inspect = daemon.api().get("/images/changed:1/json")
    assert inspect["Id"] == new_id and inspect["Parent"] == base_id
    assert inspect["Comment"] == "the change" and inspect["Author"] == "Someone <s@example.com>"
    assert inspect["Container"] == daemon.api().get("/containers/changed/json")["Id"]
    assert inspect["ContainerConfig"]["Cmd"] == ["sh", "-c", CHANGE]
    history = daemon.api().get("/images/changed:1/history")
    assert history[0]["CreatedBy"] == f"sh -c {CHANGE}" and history[0]["Comment"] == "the change"
    assert [h["Id"] for h in history[:2]] == [new_id, base_id]
    assert len(inspect["RootFS"]["Layers"]) == 3


def test_export_whole_filesystem(daemon, loaded_busybox, tmp_path):
    run(daemon, "run", "--name", "base", IMAGE, "sh", "-c", BASE)
    ours, theirs = tmp_path / "ours.tar", tmp_path / "theirs.tar"
    run(daemon, "export", "-o", str(ours), "base")
    daemon.docker("export", "-o", str(theirs), "base", check=True)
    assert ours.read_bytes() == theirs.read_bytes()
    with tarfile.open(ours) as tar:
        names = tar.getnames()
        assert tar.extractfile("data/a").read() == b"a\n"
        assert tar.getmember("bin/sh").issym()
    assert "bin/busybox" in names and "keep/y" in names and "." not in names
    # to stdout; and the errors of both CLIs
    streamed = daemon.api().request("GET", "/containers/base/export").read()
    assert streamed == ours.read_bytes()
    for args in (["export", "nosuch"], ["export", "-o", "/nonexistent-dir/x.tar", "base"],
                 ["diff", "nosuch"]):
        a, b = daemon.run_cli(*args), daemon.docker(*args)
        assert (a.returncode, a.stderr) == (b.returncode, b.stderr), args


def test_commit_changes_pause_and_errors(daemon, loaded_busybox):
    cid = run(daemon, "run", "-d", "--name", "live", IMAGE, "sh", "-c",
              "mkdir -p /w && echo hi > /w/f && sleep 600").strip()
    since = time.time()
    image_id = run(daemon, "commit", "-c", 'CMD ["cat", "/w/f"]', "-c", "ENV X=1 Y=two",
                   "-c", "EXPOSE 8080", "-c", "LABEL team=core", "-c", "WORKDIR /w",
                   "-c", "USER 1000", "-c", "VOLUME /v", "-c", "ONBUILD RUN true",
                   "live", "conf:1").strip()
    config = daemon.api().get("/images/conf:1/json")["Config"]
    assert config["Cmd"] == ["cat", "/w/f"] and config["Env"][-2:] == ["X=1", "Y=two"]
    assert config["ExposedPorts"] == {"8080/tcp": {}} and config["Labels"] == {"team": "core"}
    assert (config["WorkingDir"], config["User"]) == ("/w", "1000")
    assert config["Volumes"] == {"/v": {}} and config["OnBuild"] == ["RUN true"]
    assert run(daemon, "run", "--rm", "conf:1") == "hi\n"
    # the default pauses the running container around the commit
    events = daemon.api().request("GET", "/events", query={
        "since": f"{since:.9f}", "until": f"{time.time():.9f}",
        "filters": json.dumps({"container": [cid]})}).read().decode()
    actions = [json.loads(line)["Action"] for line in events.splitlines()]
    assert actions == ["pause", "unpause", "commit"]
    commit_event = json.loads(events.splitlines()[-1])
    assert commit_event["Actor"]["Attributes"]["imageID"] == image_id
    assert commit_event["Actor"]["Attributes"]["imageRef"] == "conf:1"
    since = time.time()
    run(daemon, "commit", "-p=false", "live")
    events = daemon.api().request("GET", "/events", query={
        "since": f"{since:.9f}", "until": f"{time.time():.9f}",
        "filters": json.dumps({"container": [cid]})}).read().decode()
    assert [json.loads(line)["Action"] for line in events.splitlines()] == ["commit"]
    assert daemon.api().get(f"/containers/{cid}/json")["State"]["Status"] == "running"

    images_before = daemon.api().get("/images/json", query={"all": "1"})
    for args in (["commit", "-c", "RUN true", "live"], ["commit", "-c", "STOPSIGNAL 9", "live"],
                 ["commit", "nosuch"], ["commit", "live", "Bad:tag"],
                 ["commit", "-c", "ENV", "live"], ["commit"]):
        ours, theirs = daemon.run_cli(*args), daemon.docker(*args)
        assert (ours.returncode, ours.stderr.replace("dockyard", "docker")) == \
            (theirs.returncode, theirs.stderr), args
        assert ours.returncode != 0
    assert daemon.api().get("/images/json", query={"all": "1"}) == images_before

    # a container that changed nothing commits an empty layer
    run(daemon, "run", "--name", "idle", IMAGE, "true")
    run(daemon, "commit", "idle", "idle:1")
    inspect = daemon.api().get("/images/idle:1/json")
    assert inspect["RootFS"]["Layers"] == daemon.api().get(f"/images/{IMAGE}/json")[
        "RootFS"]["Layers"]
    history = daemon.api().get("/images/idle:1/history")
    assert history[0]["Size"] == 0 and history[0]["CreatedBy"] == "true"


def test_docker_py_commit(daemon, loaded_busybox):
    client = daemon.client()
    try:
        c = client.containers.run(IMAGE, ["sh", "-c", "echo py > /py.txt"], detach=True)
        c.wait()
        image = c.commit(repository="pyimg", tag="v1", message="from py", author="py",
                         changes=["ENV FROM_PY=1"])
        assert "pyimg:v1" in image.tags
        assert "FROM_PY=1" in image.attrs["Config"]["Env"]
        assert image.attrs["Comment"] == "from py" and image.attrs["Author"] == "py"
        out = client.containers.run("pyimg:v1", ["cat", "/py.txt"], remove=True)
        assert out == b"py\n"
        assert [ch["Path"] for ch in c.diff()] == ["/py.txt"]
        with pytest.raises(docker.errors.NotFound):
            client.api.commit("nosuch")
    finally:
        client.close()
