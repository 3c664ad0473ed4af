"""A pull holds the layers (and blobs) it counts on until its image is
stored: an `rmi` or `image prune` run meanwhile leaves them, and the image
the pull stores is whole. The pull is paused at a chosen point by a hook,
the rmi and prune run from the test's thread, then the pull goes on."""

from __future__ import annotations

import dataclasses
import os
import threading

import pytest

from dockyard.daemon.distribution import DistributionService
from dockyard.daemon.images import ImageService
from dockyard.distribution.endpoints import ServiceConfig
from dockyard.distribution.errors import BlobUnknown
from dockyard.distribution.pull import Cancelled, Puller
from dockyard.image import reference
from dockyard.storage.layer import chain_ids
from pull_fakes import FakeRepository, gzip_layer, layer_tar

BASE = gzip_layer(layer_tar(("etc/base", b"base\n")))
TOP = gzip_layer(layer_tar(("etc/top", b"top\n")))
OTHER = gzip_layer(layer_tar(("etc/other", b"other\n")))
WAIT = 10  # seconds a step may take before the test gives up


class Pause:
    """Stops the pull's thread where it is called until the test says go."""

    def __init__(self):
        self.reached = threading.Event()
        self.go = threading.Event()

    def __call__(self) -> None:
        self.reached.set()
        assert self.go.wait(WAIT)


def puller(images: ImageService, repo: FakeRepository, cancelled=None,
           before_store=None) -> Puller:
    target = DistributionService(images, ServiceConfig())._image_target()
    if before_store is not None:
        add_image = target.add_image

        def paused_add(raw: bytes) -> str:
            before_store()
            return add_image(raw)
        target = dataclasses.replace(target, add_image=paused_add)
    return Puller(repo, target, lambda msg: None, cancelled or threading.Event(), retry_tick=0)


def pull(images, repo, name, layers, **options) -> str:
    """Pull `layers` as image `name` (its config labelled with the name)."""
    manifest = repo.image(layers, name)
    puller(images, repo, **options).pull(reference.parse_normalized(f"registry.test/{name}:1"),
                                         manifest)
    return images.get(f"registry.test/{name}:1").id


def in_background(fn) -> tuple[threading.Thread, list]:
    outcome: list = []

    def run() -> None:
        try:
            outcome.append(fn())
        except BaseException as e:  # noqa: BLE001 - handed to the test
            outcome.append(e)
    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def rmi_and_prune(images: ImageService, name: str) -> list[dict]:
    """What a user might run while the pull is busy: remove the other image,
    then prune everything unused."""
    out = images.delete(f"registry.test/{name}:1")
    images.prune({"dangling": ["false"]})
    return out


def assert_whole(images: ImageService, image_id: str, *files: str) -> None:
    """Every layer of the image is there, and its files are in the snapshots."""
    image = images.images.get(image_id)
    layers = images.layers.chain(image.diff_ids)
    images.inspect(image_id)
    found = set()
    for layer in layers:
        assert os.path.isdir(images.snapshots.fs_path(layer.chain_id))
        assert images.content.exists(layer.blob_digest)
        for f in files:
            if os.path.exists(os.path.join(images.snapshots.fs_path(layer.chain_id), f)):
                found.add(f)
    assert found == set(files)


def test_rmi_and_prune_between_the_layers_and_the_image(images):
    """The layers are all there ("Already exists", the other image's); the
    other image goes before this one is stored."""
    repo = FakeRepository()
    pull(images, repo, "a", [BASE, TOP])
    pause = Pause()
    thread, outcome = in_background(lambda: pull(images, repo, "b", [BASE, TOP],
                                                 before_store=pause))
    assert pause.reached.wait(WAIT)
    removed = rmi_and_prune(images, "a")
    pause.go.set()
    thread.join(WAIT)
    assert isinstance(outcome[0], str), outcome
    assert [list(d) for d in removed] == [["Untagged"], ["Untagged"], ["Deleted"]]
    assert_whole(images, outcome[0], "etc/base", "etc/top")


def test_rmi_and_prune_while_a_layer_above_downloads(images):
    """The base is the other image's; the layer on it is still coming."""
    repo = FakeRepository()
    pull(images, repo, "a", [BASE])
    pause = Pause()
    repo.on_open = lambda digest: pause() if digest == TOP.digest else None
    thread, outcome = in_background(lambda: pull(images, repo, "b", [BASE, TOP]))
    assert pause.reached.wait(WAIT)
    rmi_and_prune(images, "a")
    pause.go.set()
    thread.join(WAIT)
    assert isinstance(outcome[0], str), outcome
    assert_whole(images, outcome[0], "etc/base", "etc/top")


def test_rmi_and_prune_keep_a_blob_the_pull_unpacks_elsewhere(images):
    """The pull has BASE's blob already, to unpack on another parent; the
    image that unpacked it first goes meanwhile."""
    repo = FakeRepository()
    pull(images, repo, "a", [BASE])
    pause = Pause()
    repo.on_open = lambda digest: pause() if digest == OTHER.digest else None
    thread, outcome = in_background(lambda: pull(images, repo, "b", [OTHER, BASE]))
    assert pause.reached.wait(WAIT)
    rmi_and_prune(images, "a")
    pause.go.set()
    thread.join(WAIT)
    assert isinstance(outcome[0], str), outcome
    assert_whole(images, outcome[0], "etc/base", "etc/other")


def test_a_failed_pull_lets_go_of_its_layers(images):
    repo = FakeRepository()
    pull(images, repo, "a", [BASE])

    def missing(digest: str) -> None:
        if digest == TOP.digest:
            raise BlobUnknown()
    repo.on_open = missing
    with pytest.raises(BlobUnknown):
        pull(images, repo, "b", [BASE, TOP])
    freed = images.delete("registry.test/a:1")
    assert {"Deleted": chain_ids([BASE.diff_id])[0]} in freed


def test_a_cancelled_pull_lets_go_of_its_layers(images):
    repo = FakeRepository()
    pull(images, repo, "a", [BASE])
    cancelled = threading.Event()
    repo.on_open = lambda digest: cancelled.set() if digest == TOP.digest else None
    with pytest.raises(Cancelled):
        pull(images, repo, "b", [BASE, TOP], cancelled=cancelled)
    freed = images.delete("registry.test/a:1")
    assert {"Deleted": chain_ids([BASE.diff_id])[0]} in freed


def test_holds_of_two_pulls_are_counted(images):
    """Two pulls of the same base: the first to finish does not free the
    other's hold."""
    repo = FakeRepository()
    pull(images, repo, "a", [BASE])
    base = chain_ids([BASE.diff_id])[0]
    store = images.layers
    with store.hold([base]):
        with store.hold([base]):
            pass
        assert store.release(base, in_use=set()) == []
    assert store.release(base, in_use=set()) == [base]
