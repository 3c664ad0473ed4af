"""While a pulled layer is unpacked, "Extracting" follows the compressed
bytes read (dockerd's progress reader over the blob), then "Pull complete"."""

from __future__ import annotations

import os
import threading

from dockyard.daemon.distribution import DistributionService
from dockyard.daemon.images import ImageService
from dockyard.distribution import progress
from dockyard.distribution.endpoints import ServiceConfig
from dockyard.distribution.pull import Puller
from dockyard.image import reference
from pull_fakes import FakeRepository, gzip_layer, layer_tar

# Random bytes do not compress: the blob is as big as the file, 3 MB.
BIG = gzip_layer(layer_tar(("data/big", os.urandom(3_000_000)), ("etc/hello", b"hi\n")))


def pull(images: ImageService, repo: FakeRepository, label: str) -> list[dict]:
    messages: list[dict] = []
    target = DistributionService(images, ServiceConfig())._image_target()
    Puller(repo, target, messages.append, threading.Event(), retry_tick=0).pull(
        reference.parse_normalized(f"registry.test/{label}:1"), repo.image([BIG], label))
    return messages


def of_layer(messages: list[dict]) -> list[dict]:
    return [m for m in messages if m.get("id") == progress.short_id(BIG.digest)]


def test_extracting_counts_the_blob_as_it_is_unpacked(images, monkeypatch):
    monkeypatch.setattr(progress.Reader, "INTERVAL", 0)  # every 1% step, not every 100 ms
    messages = of_layer(pull(images, FakeRepository(), "big"))
    statuses = [m["status"] for m in messages]
    first = statuses.index("Extracting")
    assert statuses[first - 1] == "Download complete"
    assert statuses[-1] == "Pull complete"
    extracting = messages[first:-1]
    assert {m["status"] for m in extracting} == {"Extracting"}
    currents = [m["progressDetail"]["current"] for m in extracting]
    assert currents == sorted(currents) and currents[0] < len(BIG.data) // 10
    assert len(set(currents)) >= 50 and currents[-1] == len(BIG.data)
    # the last bytes, then the end of the blob: two full bars, as Go's reader gives
    assert currents.count(len(BIG.data)) <= 2
    for m in extracting:
        assert list(m) == ["status", "progressDetail", "progress", "id"]
        assert m["progressDetail"]["total"] == len(BIG.data)
        assert m["progress"] == progress.progress_string(m["progressDetail"]["current"],
                                                         len(BIG.data))
    assert extracting[-1]["progress"].startswith("[" + "=" * 50 + ">]")


def test_extracting_is_rate_limited_as_downloading_is(images, monkeypatch):
    monkeypatch.setattr(progress.Reader, "INTERVAL", 3600)
    messages = of_layer(pull(images, FakeRepository(), "big"))
    extracting = [m for m in messages if m["status"] == "Extracting"]
    # the first step, then nothing until the whole blob is through
    assert 1 < len(extracting) <= 3
    assert extracting[-1]["progressDetail"]["current"] == len(BIG.data)


def test_the_unpacked_layer_is_the_image(images):
    pull(images, FakeRepository(), "big")
    image = images.get("registry.test/big:1")
    top = images.layers.chain(image.diff_ids)[-1]
    with open(os.path.join(images.snapshots.fs_path(top.chain_id), "etc/hello"), "rb") as f:
        assert f.read() == b"hi\n"
