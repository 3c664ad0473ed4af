"""How many layers one pull moves at once, and how often it tries one: the
daemon's --max-concurrent-downloads (0: no limit) and --max-download-attempts,
with dockerd's defaults and dockerd's words for values it refuses."""

from __future__ import annotations

import threading

import pytest

from dockyard.daemon.config import ConfigError, Config, load
from dockyard.daemon.distribution import DistributionService
from dockyard.distribution.endpoints import ServiceConfig
from dockyard.distribution.errors import UnexpectedStatus
from dockyard.distribution.pull import Puller
from dockyard.image import reference
from harness import wait_for
from pull_fakes import FakeRepository, gzip_layer, layer_tar

LAYERS = [gzip_layer(layer_tar((f"layer/{n}", b"%d\n" % n))) for n in range(5)]


class Holding(FakeRepository):
    """Keeps every blob request waiting until the test lets them go, and
    counts how many wait at once."""

    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most = 0
        self.release = threading.Event()
        self.on_open = self._hold

    def _hold(self, digest: str) -> None:
        if digest not in {l.digest for l in LAYERS}:
            return
        with self.lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        try:
            assert self.release.wait(10)
        finally:
            with self.lock:
                self.in_flight -= 1


def pull_in_background(images, repo, messages: list, **limits) -> threading.Thread:
    target = DistributionService(images, ServiceConfig())._image_target()
    manifest = repo.image(LAYERS, "limits")
    puller = Puller(repo, target, messages.append, threading.Event(), retry_tick=0, **limits)
    worker = threading.Thread(target=puller.pull, args=(
        reference.parse_normalized("registry.test/limits:1"), manifest))
    worker.start()
    return worker


@pytest.mark.parametrize("limit, at_once", [(2, 2), (1, 1), (0, len(LAYERS))])
def test_a_pull_downloads_at_most_the_limit_at_once(images, limit, at_once):
    repo = Holding()
    messages: list[dict] = []
    worker = pull_in_background(images, repo, messages, max_downloads=limit)
    try:
        # the first ones held in their requests, every other one "Waiting"
        wait_for(lambda: repo.in_flight == at_once and [m["status"] for m in messages].count(
            "Waiting") == len(LAYERS) - at_once, what=f"{at_once} downloads at once")
        assert repo.most == at_once
    finally:
        repo.release.set()
        worker.join(20)
    assert not worker.is_alive()
    assert repo.most == at_once
    assert [m["status"] for m in messages].count("Pull complete") == len(LAYERS)


def test_max_download_retries_counts_the_tries_after_the_first(images):
    def fail(digest: str) -> None:
        if digest == LAYERS[0].digest:
            raise UnexpectedStatus("500 Internal Server Error")

    repo = FakeRepository(on_open=fail)
    messages: list[dict] = []
    target = DistributionService(images, ServiceConfig())._image_target()
    puller = Puller(repo, target, messages.append, threading.Event(), retry_tick=0,
                    max_download_retries=2)
    with pytest.raises(UnexpectedStatus):
        puller.pull(reference.parse_normalized("registry.test/limits:1"),
                    repo.image(LAYERS[:1], "retries"))
    assert repo.requests.count(LAYERS[0].digest) == 3


# -- the daemon's flags and configuration file --------------------------------------

def test_dockerds_defaults():
    config, _ = load([])
    assert (config.max_concurrent_downloads, config.max_concurrent_uploads,
            config.max_download_attempts) == (3, 5, 5)
    service = DistributionService.from_config(None, config)
    assert (service.max_downloads, service.max_uploads, service.max_download_retries) == (3, 5, 5)


def test_flags_and_file_reach_the_distribution_service(tmp_path):
    daemon_json = tmp_path / "daemon.json"
    daemon_json.write_text('{"max-concurrent-uploads": 0, "max-download-attempts": 1}')
    config, _ = load(["--max-concurrent-downloads", "7", "--config-file", str(daemon_json)])
    service = DistributionService.from_config(None, config)
    assert (service.max_downloads, service.max_uploads, service.max_download_retries) == (7, 0, 1)


@pytest.mark.parametrize("argv, message", [
    (["--max-concurrent-downloads", "-1"], "invalid max concurrent downloads: -1"),
    (["--max-concurrent-uploads", "-3"], "invalid max concurrent uploads: -3"),
    (["--max-download-attempts", "0"], "invalid max download attempts: 0"),
])
def test_values_dockerd_refuses_are_refused(argv, message):
    with pytest.raises(ConfigError) as e:
        load(argv)
    assert str(e.value) == message


def test_a_file_value_that_is_no_number_is_refused(tmp_path):
    daemon_json = tmp_path / "daemon.json"
    daemon_json.write_text('{"max-concurrent-downloads": "many"}')
    with pytest.raises(ConfigError) as e:
        load(["--config-file", str(daemon_json)])
    assert str(e.value) == "invalid max concurrent downloads: many"


def test_both_flag_and_file_is_refused(tmp_path):
    daemon_json = tmp_path / "daemon.json"
    daemon_json.write_text('{"max-download-attempts": 2}')
    with pytest.raises(ConfigError, match="max-download-attempts"):
        load(["--max-download-attempts", "3", "--config-file", str(daemon_json)])
    assert Config().max_download_attempts == 5
