"""The image config is fetched as dockerd's pullSchema2Config fetches it: up
to 5 attempts, 250 ms before the second and twice as long before each next
one, none after an error no retry can cure; its failure is worded as
dockerd's ("error pulling image configuration: download failed after
attempts=N: ..."), after the layers' "Pulling fs layer"."""

from __future__ import annotations

import threading

from dockyard.daemon.distribution import DistributionService
from dockyard.distribution.endpoints import ServiceConfig
from dockyard.distribution.errors import BlobUnknown, ConfigPullFailed, UnexpectedStatus
from dockyard.distribution.pull import Puller
from dockyard.distribution.progress import short_id
from dockyard.image import reference
from pull_fakes import FakeRepository, gzip_layer, layer_tar, sha256

LAYER = gzip_layer(layer_tar(("etc/hello", b"hello\n")))
SERVER_ERROR = UnexpectedStatus("500 Internal Server Error")


class Waits(threading.Event):
    """The pull's cancel flag, never set: records the waits asked of it."""

    def __init__(self):
        super().__init__()
        self.asked: list[float] = []

    def wait(self, timeout=None) -> bool:
        self.asked.append(timeout)
        return False


def pull(images, repo: FakeRepository, config_fails: list[BaseException],
         cancelled: threading.Event | None = None, corrupt: bool = False):
    """Pull a one-layer image whose config GETs raise `config_fails` first;
    (the messages, the config requests, the error or the image ID)."""
    manifest = repo.image([LAYER], "config")
    config = manifest.doc["config"]["digest"]
    if corrupt:
        repo.blobs[config] = repo.blobs[config] + b" "
    script = list(config_fails)

    def fail(digest: str) -> None:
        if digest == config and script:
            raise script.pop(0)

    repo.on_open = fail
    messages: list[dict] = []
    target = DistributionService(images, ServiceConfig())._image_target()
    puller = Puller(repo, target, messages.append, cancelled or threading.Event(),
                    retry_tick=1 if cancelled else 0)
    try:
        outcome = puller.pull(reference.parse_normalized("registry.test/config:1"), manifest)
    except Exception as e:  # noqa: BLE001 - handed to the test
        outcome = e
    return messages, repo.requests.count(config), outcome


def test_an_unknown_config_blob_is_not_tried_again(images):
    messages, asked, error = pull(images, FakeRepository(), [BlobUnknown()])
    assert asked == 1
    assert isinstance(error, ConfigPullFailed)
    assert str(error) == ("error pulling image configuration: download failed after "
                          "attempts=1: unknown blob")
    assert [m["status"] for m in messages if m.get("id") == short_id(LAYER.digest)] == \
        ["Pulling fs layer"]


def test_a_config_that_always_fails_is_asked_5_times_and_said_6(images):
    cancel = Waits()
    messages, asked, error = pull(images, FakeRepository(), [SERVER_ERROR] * 5, cancel)
    assert asked == 5
    assert str(error) == ("error pulling image configuration: download failed after "
                          "attempts=6: received unexpected HTTP status: 500 Internal Server Error")
    assert cancel.asked == [0.25, 0.5, 1.0, 2.0]


def test_a_config_that_fails_twice_then_comes(images):
    cancel = Waits()
    messages, asked, moved = pull(images, FakeRepository(), [SERVER_ERROR] * 2, cancel)
    assert asked == 3 and cancel.asked[:2] == [0.25, 0.5]
    assert moved is True
    assert images.get("registry.test/config:1").id
    assert "Pull complete" in [m.get("status") for m in messages]


def test_a_config_that_does_not_verify_is_refused_at_once(images):
    repo = FakeRepository()
    messages, asked, error = pull(images, repo, [], corrupt=True)
    assert asked == 1
    config = [d for d in repo.blobs if repo.blobs[d].startswith(b"{") and sha256(repo.blobs[d]) != d]
    assert str(error) == ("error pulling image configuration: image config verification "
                          f"failed for digest {config[0]}")


class GoneDuringTheWait(Waits):
    """The client goes while the pull waits to ask again."""

    def wait(self, timeout=None) -> bool:
        super().wait(timeout)
        return True


def test_a_cancelled_pull_stops_waiting_for_the_config(images):
    cancel = GoneDuringTheWait()
    _, asked, error = pull(images, FakeRepository(), [SERVER_ERROR], cancel)
    assert (asked, cancel.asked) == (1, [0.25])
    assert type(error).__name__ == "Cancelled"
