"""Images through the Engine API, checked against what real docker produced."""

import hashlib
import io
import json
import os
import tarfile
import threading
import time

import pytest

from paths import FIXTURES

LAYERS_ID = "sha256:a3a902cba36cfccf9d3df60d5100865aed25e06a3a264f2ca477faf21da45577"
BUSYBOX_ID = "sha256:e9242c1a8a93414f2150bda5836e3b7856e4eeb92e041669d1389393a3a73f9f"


def chain_ids(diff_ids):
    chains = [diff_ids[0]]
    for diff_id in diff_ids[1:]:
        chains.append("sha256:" + hashlib.sha256(f"{chains[-1]} {diff_id}".encode()).hexdigest())
    return chains


def load(daemon, path_or_bytes):
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else open(path_or_bytes, "rb").read()
    return list(daemon.api().stream_json("POST", "/images/load", body=data,
                                         headers={"Content-Type": "application/x-tar"}))


def store_is_empty(daemon):
    root = daemon.root
    leftovers = {d: os.listdir(os.path.join(root, d)) for d in
                 ("content/blobs/sha256", "content/ingest", "layers", "snapshots", "images/meta",
                  "tmp")}
    return {k: v for k, v in leftovers.items() if v}


def test_load_docker_save_matches_real_docker(daemon):
    expected = json.loads((FIXTURES / "layers.image-inspect.json").read_text())[0]
    messages = load(daemon, FIXTURES / "layers.docker-save.tar")
    assert messages == [{"stream": "Loaded image: fixture/layers:1.0\n"}]
    got = daemon.api().get("/images/fixture/layers:1.0/json")
    assert got["Id"] == expected["Id"] == LAYERS_ID
    assert got["RootFS"] == expected["RootFS"]
    assert got["Config"] == expected["Config"]
    assert got["ContainerConfig"] == expected["ContainerConfig"]
    assert got["Size"] == expected["Size"]
    assert got["RepoTags"] == ["fixture/layers:1.0"]
    for key in ("Created", "DockerVersion", "Architecture", "Os", "Comment", "Author", "Container"):
        assert got[key] == expected[key], key


def test_history_matches_real_docker(daemon):
    load(daemon, FIXTURES / "layers.docker-save.tar")
    expected = [json.loads(l) for l in (FIXTURES / "layers.history.jsonl").read_text().splitlines()]
    history = daemon.api().get("/images/fixture/layers:1.0/history")
    assert [h["CreatedBy"] for h in history] == [e["CreatedBy"] for e in expected]
    assert history[0]["Id"] == LAYERS_ID and history[0]["Tags"] == ["fixture/layers:1.0"]
    sizes = [h["Size"] for h in history]
    # Layers that only delete (whiteouts) weigh nothing, as in docker's listing.
    assert [s for s in sizes if s] == [16, 1982256 + 13 * len("busybox")]
    assert [e["Size"] for e in expected if e["Size"] != "0B"] == ["16B", "1.98MB"]


@pytest.mark.parametrize("archive", ["layers.oci-archive.tar", "oci-layout-dir"])
def test_load_oci_archives(daemon, archive, tmp_path):
    if archive == "oci-layout-dir":
        path = tmp_path / "layout.tar"
        with tarfile.open(path, "w") as tar:
            tar.add(FIXTURES / "layers.oci-layout", arcname=".")
    else:
        path = FIXTURES / archive
    messages = load(daemon, path)
    assert messages == [{"stream": "Loaded image: fixture/layers:1.0\n"}]
    # skopeo rewrote the config in OCI's shape, so the ID differs from docker's;
    # the layers and the configuration they describe do not.
    expected = json.loads((FIXTURES / "layers.image-inspect.json").read_text())[0]
    got = daemon.api().get("/images/fixture/layers:1.0/json")
    assert got["RootFS"] == expected["RootFS"]
    assert got["Config"]["Cmd"] == expected["Config"]["Cmd"]
    assert got["Config"]["Env"] == expected["Config"]["Env"]
    assert got["Size"] == expected["Size"]


def test_save_then_load_round_trip(daemon, tmp_path):
    load(daemon, FIXTURES / "layers.docker-save.tar")
    load(daemon, FIXTURES / "busybox.docker-save.tar")
    response = daemon.api().request("GET", "/images/get",
                                    query=[("names", "fixture/layers:1.0"), ("names", "busybox:local")])
    archive = response.read()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile("manifest.json"))
        index = json.load(tar.extractfile("index.json"))
    assert {"manifest.json", "index.json", "oci-layout"} <= names
    assert {m["RepoTags"][0] for m in manifest} == {"fixture/layers:1.0", "busybox:local"}
    assert {m["annotations"]["io.containerd.image.name"] for m in index["manifests"]} == {
        "docker.io/fixture/layers:1.0", "docker.io/library/busybox:local"}
    # Layers shared by both images are stored once.
    assert sum(1 for n in names if n.startswith("blobs/sha256/")) == len(
        {n for n in names if n.startswith("blobs/sha256/")})
    for ref in ("fixture/layers:1.0", "busybox:local"):
        daemon.api().json("DELETE", f"/images/{ref}")
    assert store_is_empty(daemon) == {}
    assert sorted(m["stream"] for m in load(daemon, archive)) == [
        "Loaded image: busybox:local\n", "Loaded image: fixture/layers:1.0\n"]
    assert daemon.api().get("/images/fixture/layers:1.0/json")["Id"] == LAYERS_ID
    assert daemon.api().get("/images/busybox:local/json")["Id"] == BUSYBOX_ID


def test_import_with_changes(daemon, busybox_rootfs):
    client = daemon.client()
    try:
        out = client.api.import_image_from_data(
            busybox_rootfs.read_bytes(), repository="imported", tag="v1",
            changes=['CMD ["sh", "-c", "echo hi"]', "ENV A=b C=d", "WORKDIR /srv",
                     "LABEL x=y", "EXPOSE 80", "USER nobody"])
        image_id = json.loads(out.strip().splitlines()[-1])["status"]
        image = client.images.get("imported:v1")
        assert image.id == image_id
        cfg = image.attrs["Config"]
        assert cfg["Cmd"] == ["sh", "-c", "echo hi"]
        assert cfg["Env"] == ["A=b", "C=d"]
        assert cfg["WorkingDir"] == "/srv"
        assert cfg["Labels"] == {"x": "y"}
        assert cfg["ExposedPorts"] == {"80/tcp": {}}
        assert cfg["User"] == "nobody"
        assert image.attrs["Comment"] == "Imported from -"
        history = image.history()
        assert len(history) == 1 and history[0]["Comment"] == "Imported from -"
    finally:
        client.close()


def test_import_bad_change_leaves_nothing(daemon, busybox_rootfs):
    conn = daemon.api()
    with pytest.raises(Exception) as e:
        conn.request("POST", "/images/create", query={"fromSrc": "-", "changes": "RUN rm -rf /"},
                     body=busybox_rootfs.read_bytes())
    # dockerd's parser lowercases the instruction it refuses
    assert e.value.status == 400 and e.value.message == "run is not a valid change command"
    assert store_is_empty(daemon) == {}


def test_import_changes_healthcheck_and_stopsignal_like_dockerd(daemon, busybox_rootfs):
    out = daemon.docker("import", "-c", "HEALTHCHECK --interval=5s CMD true",
                        str(busybox_rootfs), "hc:1")
    assert out.returncode == 0, out.stderr
    cfg = daemon.api().get("/images/hc:1/json")["Config"]
    assert cfg["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000}
    # dockerd 20.10 (API 1.41) does not take STOPSIGNAL as a change
    out = daemon.docker("import", "-c", "STOPSIGNAL SIGTERM", str(busybox_rootfs), "ss:1")
    assert out.returncode == 1
    assert out.stderr == "Error response from daemon: stopsignal is not a valid change command\n"


def test_import_refusals_like_dockerd(daemon, busybox_rootfs):
    api = daemon.api()
    for query, message in (
            ({"platform": "windows/amd64"}, "operating system is not supported"),
            ({"repo": "sha256", "tag": "x"},
             "refusing to create an ambiguous tag using digest algorithm as name")):
        with pytest.raises(Exception) as e:
            api.request("POST", "/images/create", query={"fromSrc": "-", **query},
                        body=busybox_rootfs.read_bytes())
        assert (e.value.status, e.value.message) == (400, message)
    with pytest.raises(Exception) as e:
        api.request("POST", "/images/create", query={"fromSrc": "-"},
                    body=b"this is not a tar archive" * 100)
    assert e.value.message == \
        "Error processing tar file(exit status 1): archive/tar: invalid tar header"
    assert store_is_empty(daemon) == {}


def test_rmi_untags_then_deletes(daemon):
    load(daemon, FIXTURES / "busybox.docker-save.tar")
    api = daemon.api()
    api.request("POST", "/images/busybox:local/tag", query={"repo": "other", "tag": "x"}).read()
    api.request("POST", "/images/busybox:local/tag", query={"repo": "third"}).read()
    with pytest.raises(Exception) as e:
        api.json("DELETE", "/images/" + BUSYBOX_ID[7:19])
    assert e.value.status == 409
    assert e.value.message == ("conflict: unable to delete e9242c1a8a93 (must be forced) - "
                               "image is referenced in multiple repositories")
    assert api.json("DELETE", "/images/other:x") == [{"Untagged": "other:x"}]
    assert api.json("DELETE", "/images/third") == [{"Untagged": "third:latest"}]
    layer = api.get("/images/busybox:local/json")["RootFS"]["Layers"][0]
    # as dockerd: the image, then the layers it freed (their chain IDs)
    assert api.json("DELETE", "/images/busybox:local") == [
        {"Untagged": "busybox:local"}, {"Deleted": BUSYBOX_ID}, {"Deleted": layer}]
    assert store_is_empty(daemon) == {}


def test_rmi_of_a_parents_last_tag_only_untags_it(daemon):
    """As dockerd 20.10 answered: removing the last tag of an image a
    committed image builds on untags it (exit 0), and the parent stays; by ID
    it is a conflict that cannot be forced."""
    load(daemon, FIXTURES / "busybox.docker-save.tar")
    daemon.docker("run", "--name", "dyt-parent", "busybox:local", "sh", "-c", "echo x > /y",
                  check=True)
    daemon.docker("commit", "dyt-parent", "dyt-derived:1", check=True)
    daemon.docker("rm", "dyt-parent", check=True)
    untagged = daemon.docker("rmi", "busybox:local")
    assert (untagged.returncode, untagged.stdout) == (0, "Untagged: busybox:local\n")
    assert daemon.docker("images", "-aq", "--no-trunc").stdout.count("sha256:") == 2
    refused = daemon.docker("rmi", BUSYBOX_ID[7:19])
    assert refused.returncode == 1
    assert refused.stderr == ("Error response from daemon: conflict: unable to delete "
                              "e9242c1a8a93 (cannot be forced) - image has dependent child "
                              "images\n")
    daemon.docker("rmi", "dyt-derived:1", check=True)
    assert store_is_empty(daemon) == {}


def test_rmi_reports_the_freed_layers_as_dockerd_does(daemon):
    # The findings' setup: busybox:local shares the bottom layer, which stays.
    load(daemon, FIXTURES / "busybox.docker-save.tar")
    load(daemon, FIXTURES / "layers.docker-save.tar")
    api = daemon.api()
    chains = chain_ids(api.get("/images/fixture/layers:1.0/json")["RootFS"]["Layers"])
    result = api.json("DELETE", "/images/fixture/layers:1.0")
    # what dockerd 20.10 answered: the image, then the freed chains, top first
    assert result[:2] == [{"Untagged": "fixture/layers:1.0"}, {"Deleted": LAYERS_ID}]
    assert [d["Deleted"] for d in result[2:]] == list(reversed(chains))[:3]
    assert [d["Deleted"][7:15] for d in result[2:]] == ["8ef104bc", "cd22c1be", "feb54cbe"]
    load(daemon, FIXTURES / "layers.docker-save.tar")
    api.json("DELETE", "/images/busybox:local")
    out = daemon.docker("rmi", "fixture/layers:1.0")
    assert out.stdout.splitlines() == ["Untagged: fixture/layers:1.0", f"Deleted: {LAYERS_ID}"] + \
        [f"Deleted: {c}" for c in reversed(chains)]
    assert store_is_empty(daemon) == {}


def test_shared_layers_survive_removal_of_one_image(daemon):
    load(daemon, FIXTURES / "busybox.docker-save.tar")
    load(daemon, FIXTURES / "layers.docker-save.tar")
    api = daemon.api()
    api.json("DELETE", "/images/busybox:local")
    assert api.get("/images/fixture/layers:1.0/json")["Id"] == LAYERS_ID
    assert len(os.listdir(os.path.join(daemon.root, "snapshots"))) == 4
    api.json("DELETE", "/images/fixture/layers:1.0")
    assert store_is_empty(daemon) == {}


def test_image_list_filters(daemon, busybox_rootfs):
    load(daemon, FIXTURES / "busybox.docker-save.tar")
    load(daemon, FIXTURES / "layers.docker-save.tar")
    api = daemon.api()
    api.request("POST", "/images/create", query={"fromSrc": "-", "changes": "LABEL k=v"},
                body=busybox_rootfs.read_bytes()).read()

    def ids(filters):
        return {i["Id"] for i in api.get("/images/json", query={"filters": json.dumps(filters)})}

    dangling = ids({"dangling": ["true"]})
    assert len(dangling) == 1 and not dangling & {LAYERS_ID, BUSYBOX_ID}
    assert ids({"dangling": ["false"]}) == {LAYERS_ID, BUSYBOX_ID}
    assert ids({"reference": ["busybox"]}) == {BUSYBOX_ID}
    assert ids({"reference": ["fixture/*:1.0"]}) == {LAYERS_ID}
    assert ids({"reference": ["*"]}) == {BUSYBOX_ID}  # `*` does not cross a slash
    assert ids({"label": ["org.example.fixture=layers"]}) == {LAYERS_ID}
    assert ids({"label": ["k"]}) == dangling
    assert ids({"since": ["busybox:local"]}) == {LAYERS_ID} | dangling
    assert ids({"before": ["fixture/layers:1.0"]}) == {BUSYBOX_ID}
    # The older map form of filters works too.
    assert ids({"dangling": {"true": True}}) == dangling
    with pytest.raises(Exception) as e:
        ids({"colour": ["red"]})
    assert e.value.status == 400 and e.value.message == "Invalid filter 'colour'"
    for bad in ("maybe", "yes", "TRUE"):
        with pytest.raises(Exception) as e:
            ids({"dangling": [bad]})
        assert (e.value.status, e.value.message) == (400, f"Invalid filter 'dangling=[{bad}]'")
    with pytest.raises(Exception) as e:
        ids({"reference": ["["]})
    assert (e.value.status, e.value.message) == (500, "syntax error in pattern")


def test_reference_filter_lists_only_the_matching_tags(daemon):
    load(daemon, FIXTURES / "busybox.docker-save.tar")
    api = daemon.api()
    for repo, tag in (("bb", "latest"), ("bb", "x"), ("a/b/c", "1"), ("localhost:5000/x", "y")):
        api.request("POST", "/images/busybox:local/tag", query={"repo": repo, "tag": tag}).read()
    listed = api.get("/images/json", query={"filters": json.dumps({"reference": ["bb:*"]})})
    assert [i["RepoTags"] for i in listed] == [["bb:latest", "bb:x"]]
    out = daemon.docker("images", "--format", "{{.Repository}}:{{.Tag}}", "bb")
    assert out.stdout.splitlines() == ["bb:latest", "bb:x"]
    client = daemon.client()
    try:
        # (docker-py's images.list(name=) inspects each image again: all tags there)
        assert [i["RepoTags"] for i in client.api.images(name="busybox")] == [["busybox:local"]]
        assert [i["RepoTags"] for i in client.api.images(name="a/b/*")] == [["a/b/c:1"]]
    finally:
        client.close()


def test_tag_named_like_a_digest_is_refused(daemon):
    load(daemon, FIXTURES / "busybox.docker-save.tar")
    api = daemon.api()
    with pytest.raises(Exception) as e:
        api.request("POST", "/images/busybox:local/tag",
                    query={"repo": "sha256", "tag": BUSYBOX_ID[7:]})
    assert (e.value.status, e.value.message) == (
        400, "refusing to create an ambiguous tag using digest algorithm as name")
    out = daemon.docker("tag", "busybox:local", BUSYBOX_ID)
    assert out.returncode == 1 and out.stderr == (
        "Error response from daemon: refusing to create an ambiguous tag using digest "
        "algorithm as name\n")
    assert api.get("/images/busybox:local/json")["RepoTags"] == ["busybox:local"]


def test_prune_removes_only_dangling(daemon, busybox_rootfs):
    load(daemon, FIXTURES / "busybox.docker-save.tar")
    client = daemon.client()
    try:
        out = client.api.import_image_from_data(busybox_rootfs.read_bytes())
        image_id = json.loads(out.strip().splitlines()[-1])["status"]
        layer = client.images.get(image_id).attrs["RootFS"]["Layers"][0]
        size = client.images.get(image_id).attrs["Size"]
        result = client.images.prune()
        assert result["ImagesDeleted"] == [{"Deleted": image_id}, {"Deleted": layer}]
        assert result["SpaceReclaimed"] == size > 1_000_000
        assert [i.tags for i in client.images.list()] == [["busybox:local"]]
    finally:
        client.close()


def test_prune_with_a_bad_dangling_value_deletes_nothing(daemon, busybox_rootfs):
    load(daemon, FIXTURES / "busybox.docker-save.tar")
    api = daemon.api()
    api.request("POST", "/images/create", query={"fromSrc": "-"},
                body=busybox_rootfs.read_bytes()).read()
    before = api.get("/images/json")
    for bad in ("maybe", "yes", "TRUE", "2"):
        with pytest.raises(Exception) as e:
            api.request("POST", "/images/prune", query={"filters": json.dumps({"dangling": [bad]})})
        assert (e.value.status, e.value.message) == (400, f"Invalid filter 'dangling=[{bad}]'")
    assert api.get("/images/json") == before


def test_prune_space_reclaimed_counts_shared_layers_once(daemon, busybox_rootfs):
    api = daemon.api()
    for n in range(2):  # two dangling images over one layer
        api.request("POST", "/images/create", query={"fromSrc": "-", "changes": f"ENV N={n}"},
                    body=busybox_rootfs.read_bytes()).read()
    images = api.get("/images/json")
    assert len(images) == 2 and images[0]["Size"] == images[1]["Size"]
    result = api.post("/images/prune")
    assert result["SpaceReclaimed"] == images[0]["Size"]
    assert len(result["ImagesDeleted"]) == 3
    assert store_is_empty(daemon) == {}


def test_prune_until_like_dockerd(daemon, busybox_rootfs):
    load(daemon, FIXTURES / "busybox.docker-save.tar")
    created = daemon.api().get("/images/json")[0]["Created"]
    age = int(time.time()) - created
    assert age > 10
    client = daemon.client()
    try:
        client.api.import_image_from_data(busybox_rootfs.read_bytes(), repository="new")
        # docker-py's call from the findings, with a Go duration: only older images go
        nothing = client.images.prune(filters={"dangling": False, "until": "100000h"})
        assert nothing == {"ImagesDeleted": None, "SpaceReclaimed": 0}
        result = client.images.prune(filters={"dangling": False, "until": f"{age // 2}s"})
        assert result["ImagesDeleted"][:2] == [{"Untagged": "busybox:local"},
                                               {"Deleted": BUSYBOX_ID}]
        assert [i.tags for i in client.images.list()] == [["new:latest"]]
    finally:
        client.close()
    out = daemon.docker("image", "prune", "-a", "-f", "--filter", "until=2000-01-01T00:00:00")
    assert (out.returncode, out.stdout) == (0, "Total reclaimed space: 0B\n")
    out = daemon.docker("image", "prune", "-a", "-f", "--filter", "until=garbage")
    assert out.returncode == 1 and out.stderr == (
        'Error response from daemon: failed to parse value as time or duration: "garbage"\n')
    with pytest.raises(Exception) as e:
        daemon.api().request("POST", "/images/prune",
                             query={"filters": json.dumps({"until": ["garbage"]})})
    assert e.value.status == 500


def test_docker_py_image_calls(daemon, tmp_path):
    client = daemon.client()
    try:
        images = client.images.load((FIXTURES / "layers.docker-save.tar").read_bytes())
        assert [i.id for i in images] == [LAYERS_ID]
        image = client.images.get("fixture/layers:1.0")
        assert image.tag("copy", "v2") is True
        assert sorted(client.images.get(LAYERS_ID).tags) == ["copy:v2", "fixture/layers:1.0"]
        with open(tmp_path / "out.tar", "wb") as f:
            for chunk in image.save(named=True):
                f.write(chunk)
        client.images.remove("copy:v2")
        with pytest.raises(Exception) as e:
            client.images.get("copy:v2")
        assert type(e.value).__name__ == "ImageNotFound"
        client.images.remove(LAYERS_ID)
        again = client.images.load((tmp_path / "out.tar").read_bytes())
        assert [i.id for i in again] == [LAYERS_ID]
    finally:
        client.close()


# -- bad input ------------------------------------------------------------------------

def _rewrite_tar(src, edit):
    """Copy an archive, letting `edit(name, data)` change or drop members."""
    out = io.BytesIO()
    with tarfile.open(src) as tin, tarfile.open(fileobj=out, mode="w") as tout:
        for m in tin.getmembers():
            data = tin.extractfile(m).read() if m.isfile() else None
            if data is not None:
                data = edit(m.name, data)
                if data is None:
                    continue
                m.size = len(data)
                tout.addfile(m, io.BytesIO(data))
            else:
                tout.addfile(m)
    return out.getvalue()


def _layer_tar(*members):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, payload
                tar.addfile(info)
    return out.getvalue()


def _single_layer_archive(layer: bytes) -> bytes:
    import hashlib
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    manifest = json.dumps([{"Config": "config.json", "RepoTags": ["evil:1"],
                            "Layers": ["l/layer.tar"]}]).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in (("config.json", config), ("l/layer.tar", layer),
                           ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


BAD_ARCHIVES = {
    "truncated": lambda: (FIXTURES / "layers.docker-save.tar").read_bytes()[:1_000_000],
    "garbage": lambda: b"this is not a tar archive" * 100,
    "diff-id-mismatch": lambda: _rewrite_tar(
        FIXTURES / "layers.docker-save.tar",
        lambda n, d: d.replace(b"keep", b"kept") if n.endswith("layer.tar") else d),
    "missing-layer": lambda: _rewrite_tar(
        FIXTURES / "layers.docker-save.tar",
        lambda n, d: None if n.startswith("249943214bca") and n.endswith("layer.tar") else d),
    "oci-blob-digest-mismatch": lambda: _rewrite_tar(
        FIXTURES / "layers.oci-archive.tar",
        lambda n, d: d + b" " if n.endswith("e2f33b026c4010e42442653ae1601d12609322bec2fb84c094632f72e689c764") else d),
    "dotdot-escape": lambda: _single_layer_archive(_layer_tar(("../../escaped", "file", b"x"))),
    "symlink-escape": lambda: _single_layer_archive(_layer_tar(
        ("etc", "symlink", "/tmp"), ("etc/dockyard-escape-test", "file", b"x"))),
}


BAD_ARCHIVE_MESSAGES = {
    "truncated": "Error processing tar file(exit status 1): unexpected EOF",
    "garbage": "Error processing tar file(exit status 1): archive/tar: invalid tar header",
}


@pytest.mark.parametrize("case", sorted(BAD_ARCHIVES))
def test_bad_archives_are_refused_and_leave_nothing(daemon, case):
    load(daemon, FIXTURES / "busybox.docker-save.tar")
    before = {d: sorted(os.listdir(os.path.join(daemon.root, d)))
              for d in ("content/blobs/sha256", "layers", "snapshots")}
    # As dockerd: the upload was taken (200), the failure is the stream's message.
    messages = load(daemon, BAD_ARCHIVES[case]())
    assert len(messages) == 1 and set(messages[0]) == {"errorDetail", "error"}, messages
    message = messages[0]["error"]
    assert messages[0]["errorDetail"] == {"message": message}
    assert message == BAD_ARCHIVE_MESSAGES.get(case, message)
    # short and clear: one line, no Python internals
    assert "\n" not in message
    assert not any(w in message for w in ("Error('", "ReadError", "Traceback", "method gz"))
    after = {d: sorted(os.listdir(os.path.join(daemon.root, d)))
             for d in ("content/blobs/sha256", "layers", "snapshots")}
    assert after == before
    assert os.listdir(os.path.join(daemon.root, "content/ingest")) == []
    assert os.listdir(os.path.join(daemon.root, "tmp")) == []
    assert [i["RepoTags"] for i in daemon.api().get("/images/json")] == [["busybox:local"]]
    assert not os.path.exists("/tmp/dockyard-escape-test")


def test_failed_load_through_docker_py_and_the_docker_cli(daemon):
    garbage = b"this is not a tar archive" * 100
    client = daemon.client()
    try:
        import docker.errors
        with pytest.raises(docker.errors.ImageLoadError) as e:
            client.images.load(garbage)
        assert str(e.value) == \
            "Error processing tar file(exit status 1): archive/tar: invalid tar header"
    finally:
        client.close()
    out = daemon.docker("load", input=b"not a tar")
    assert (out.returncode, out.stdout) == (1, b"")
    assert out.stderr == b"Error processing tar file(exit status 1): unexpected EOF\n"
    assert store_is_empty(daemon) == {}


def test_save_writes_repositories(daemon):
    load(daemon, FIXTURES / "layers.docker-save.tar")
    archive = daemon.api().request("GET", "/images/fixture/layers:1.0/get").read()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        repositories = json.load(tar.extractfile("repositories"))
    top = daemon.api().get("/images/fixture/layers:1.0/json")["RootFS"]["Layers"][-1]
    assert repositories == {"fixture/layers": {"1.0": top[7:]}}


def test_save_name_errors_like_dockerd(daemon):
    load(daemon, FIXTURES / "busybox.docker-save.tar")
    for name, message in (("nothere:1", "reference does not exist"),
                          ("busybox:nothere", "reference does not exist"),
                          ("nothere", "No such image: nothere")):
        out = daemon.docker("save", name)
        assert out.returncode == 1 and out.stderr == f"Error response from daemon: {message}\n"


def test_concurrent_loads_of_the_same_image(daemon):
    data = (FIXTURES / "layers.docker-save.tar").read_bytes()
    errors = []

    def worker():
        try:
            load(daemon, data)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [i["Id"] for i in daemon.api().get("/images/json")] == [LAYERS_ID]
    assert len(os.listdir(os.path.join(daemon.root, "snapshots"))) == 4
    assert len(os.listdir(os.path.join(daemon.root, "layers"))) == 4
