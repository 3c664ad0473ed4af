"""A daemon killed in the middle of a load leaves a store that repairs itself."""

import hashlib
import io
import json
import os
import signal
import tarfile
import threading
import time

import pytest


def _archive_with_big_layer(size: int) -> bytes:
    payload = os.urandom(size)  # incompressible, so unpacking takes a while
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        for i in range(4):
            info = tarfile.TarInfo(f"data/part{i}")
            info.size = size // 4
            tar.addfile(info, io.BytesIO(payload[i * size // 4:(i + 1) * size // 4]))
    layer_bytes = layer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    manifest = json.dumps([{"Config": "c.json", "RepoTags": ["big:1"],
                            "Layers": ["l/layer.tar"]}]).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in (("c.json", config), ("l/layer.tar", layer_bytes),
                           ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _consistent(root: str) -> None:
    assert os.listdir(os.path.join(root, "content/ingest")) == []
    assert os.listdir(os.path.join(root, "tmp")) == []
    snapshots = {}
    for n in os.listdir(os.path.join(root, "snapshots")):
        info = json.load(open(os.path.join(root, "snapshots", n, "info.json")))
        snapshots[info["key"]] = info
    assert not [k for k in snapshots if not k.startswith("sha256:")], snapshots
    layers = {json.load(open(os.path.join(root, "layers", f)))["chain_id"]
              for f in os.listdir(os.path.join(root, "layers"))}
    assert layers == set(snapshots)


@pytest.mark.parametrize("delay", [0.05, 0.2, 0.4, 0.7])
def test_kill_during_load(daemon, delay):
    archive = _archive_with_big_layer(64 << 20)

    def send():
        try:
            list(daemon.api().stream_json("POST", "/images/load", body=archive))
        except Exception:  # noqa: BLE001 - the daemon dies under it on purpose
            pass

    sender = threading.Thread(target=send)
    sender.start()
    time.sleep(delay)
    daemon.stop(signal.SIGKILL)
    sender.join(timeout=30)
    daemon.start()
    _consistent(daemon.root)
    images = daemon.api().get("/images/json")
    assert len(images) <= 1  # the load either happened whole or not at all
    if images:
        assert images[0]["RepoTags"] == ["big:1"]
    # The store still works: load again, then remove everything.
    list(daemon.api().stream_json("POST", "/images/load", body=archive))
    assert [i["RepoTags"] for i in daemon.api().get("/images/json")] == [["big:1"]]
    daemon.api().json("DELETE", "/images/big:1")
    assert os.listdir(os.path.join(daemon.root, "snapshots")) == []
    assert os.listdir(os.path.join(daemon.root, "content/blobs/sha256")) == []


def test_kill_during_a_builds_copy(daemon, tmp_path):
    """A daemon killed while a COPY fills its snapshot: the next start removes
    that snapshot and the received context, and the build can be run again."""
    from harness import load_busybox, wait_for

    load_busybox(daemon)
    ctx = tmp_path / "ctx"
    (ctx / "many").mkdir(parents=True)
    (ctx / "Dockerfile").write_text("FROM busybox:local\nCOPY many /many/\n")
    for n in range(1500):  # many small files: the copy takes a while
        (ctx / "many" / f"{n:05}").write_text(str(n))
    snapshots = os.path.join(daemon.root, "snapshots")

    def copying() -> bool:
        for n in os.listdir(snapshots):
            try:
                with open(os.path.join(snapshots, n, "info.json")) as f:
                    if json.load(f)["key"].startswith("build-"):
                        return True
            except (OSError, ValueError):
                continue
        return False

    builder = threading.Thread(target=daemon.docker, args=("build", "-q", str(ctx)),
                               kwargs={"timeout": 120})
    builder.start()
    try:
        wait_for(copying, timeout=60, what="the COPY's snapshot")
        daemon.stop(signal.SIGKILL)
    finally:
        builder.join(timeout=60)
    daemon.start()
    _consistent(daemon.root)
    built = daemon.docker("build", "-q", str(ctx), timeout=120, check=True).stdout.strip()
    assert daemon.docker("run", "--rm", built, "cat", "/many/01499").stdout == "1499"
