"""Images through the Engine API, checked against what real docker produced."""

import io
import json
import os
import tarfile
import threading

import pytest

from paths import FIXTURES

LAYERS_ID = "sha256:a3a902cba36cfccf9d3df60d5100865aed25e06a3a264f2ca477faf21da45577"
BUSYBOX_ID = "sha256:e9242c1a8a93414f2150bda5836e3b7856e4eeb92e041669d1389393a3a73f9f"


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
    assert e.value.status == 400 and "RUN is not a valid change command" in e.value.message
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
    assert api.json("DELETE", "/images/busybox:local") == [
        {"Untagged": "busybox:local"}, {"Deleted": BUSYBOX_ID}]
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
    assert e.value.status == 400 and e.value.message == "invalid filter 'colour'"


def test_prune_removes_only_dangling(daemon, busybox_rootfs):
    load(daemon, FIXTURES / "busybox.docker-save.tar")
    client = daemon.client()
    try:
        client.api.import_image_from_data(busybox_rootfs.read_bytes())
        result = client.images.prune()
        assert len([d for d in result["ImagesDeleted"] if "Deleted" in d]) == 1
        assert result["SpaceReclaimed"] > 1_000_000
        assert [i.tags for i in client.images.list()] == [["busybox:local"]]
    finally:
        client.close()


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


@pytest.mark.parametrize("case", sorted(BAD_ARCHIVES))
def test_bad_archives_are_refused_and_leave_nothing(daemon, case):
    load(daemon, FIXTURES / "busybox.docker-save.tar")
    before = {d: sorted(os.listdir(os.path.join(daemon.root, d)))
              for d in ("content/blobs/sha256", "layers", "snapshots")}
    with pytest.raises(Exception) as e:
        load(daemon, BAD_ARCHIVES[case]())
    assert e.value.status in (400, 500), e.value
    assert e.value.message
    after = {d: sorted(os.listdir(os.path.join(daemon.root, d)))
             for d in ("content/blobs/sha256", "layers", "snapshots")}
    assert after == before
    assert os.listdir(os.path.join(daemon.root, "content/ingest")) == []
    assert os.listdir(os.path.join(daemon.root, "tmp")) == []
    assert [i["RepoTags"] for i in daemon.api().get("/images/json")] == [["busybox:local"]]
    assert not os.path.exists("/tmp/dockyard-escape-test")


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
