"""A layer download broken mid-blob goes on from where it stopped."""

from __future__ import annotations

import hashlib
import io
import threading

import pytest

from dockyard.distribution.errors import RequestFailed
from dockyard.distribution.pull import MAX_RESUMES, ImageTarget, Layer, Puller
from dockyard.image.content import ContentStore
from dockyard.store.layout import Layout

DATA = bytes(range(256)) * 4096  # 1 MiB
DIGEST = "sha256:" + hashlib.sha256(DATA).hexdigest()


class Body:
    """A response body that breaks after `cut` bytes (if given)."""

    def __init__(self, data: bytes, status: int, cut: int | None):
        self._data = io.BytesIO(data)
        self.status = status
        self._cut = cut

    def header(self, name: str, default: str = "") -> str:
        return default

    def read(self, n: int = -1) -> bytes:
        if self._cut is not None and self._data.tell() >= self._cut:
            raise RequestFailed("GET", "blob", "connection reset by peer")
        limit = n if self._cut is None else min(n, self._cut - self._data.tell())
        return self._data.read(limit)

    def close(self, reuse: bool = True) -> None:
        pass


class Repo:
    """Serves DATA, breaking the first `breaks` bodies; `ranges` whether it
    answers Range requests."""

    def __init__(self, breaks: int, ranges: bool):
        self.breaks, self.ranges = breaks, ranges
        self.requests: list[str] = []

    def open_blob(self, digest: str, headers: dict[str, str] | None = None) -> Body:
        wanted = (headers or {}).get("Range", "")
        self.requests.append(wanted)
        cut = 100_000 * len(self.requests) if len(self.requests) <= self.breaks else None
        if wanted and self.ranges:
            start = int(wanted.removeprefix("bytes=").rstrip("-"))
            return Body(DATA[start:], 206, None if cut is None else cut - start)
        return Body(DATA, 200, cut)


def download(tmp_path, repo: Repo, **puller_options) -> ContentStore:
    layout = Layout(str(tmp_path))
    layout.create()
    content = ContentStore(layout)
    target = ImageTarget(content, None, lambda _: False, lambda _: "", lambda *a: False)
    puller = Puller(repo, target, lambda msg: None, threading.Event(), **puller_options)
    puller._download(Layer(DIGEST, len(DATA), "application/vnd.oci.image.layer.v1.tar", ""),
                     set())
    return content


@pytest.mark.parametrize("ranges", [True, False])
def test_broken_downloads_resume(tmp_path, ranges):
    repo = Repo(breaks=2, ranges=ranges)
    content = download(tmp_path, repo)
    assert content.exists(DIGEST)
    if ranges:
        assert repo.requests == ["", "bytes=100000-", "bytes=200000-"]
    else:
        assert repo.requests[1:] == ["bytes=100000-", "bytes=200000-"]


def test_an_attempt_that_keeps_breaking_fails(tmp_path):
    repo = Repo(breaks=MAX_RESUMES + 1, ranges=True)
    with pytest.raises(RequestFailed):
        download(tmp_path, repo, max_download_retries=0)
    assert len(repo.requests) == MAX_RESUMES + 1


def test_the_next_attempt_asks_for_the_rest(tmp_path):
    """An attempt that broke more than MAX_RESUMES times failed; the retry
    goes on from the bytes it got, as dockerd's temp file lets it."""
    repo = Repo(breaks=MAX_RESUMES + 1, ranges=True)
    content = download(tmp_path, repo, retry_tick=0)
    assert content.exists(DIGEST)
    assert repo.requests[MAX_RESUMES + 1:] == [f"bytes={100_000 * (MAX_RESUMES + 1)}-"]
