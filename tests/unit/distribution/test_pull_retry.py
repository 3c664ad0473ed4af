"""A failed layer download is tried again as dockerd's download manager does:
up to 5 more times, after "Retrying in N seconds" counted down (5 s more per
failure), unless the error is one no retry can cure."""

from __future__ import annotations

import threading

import pytest

from dockyard.distribution import progress
from dockyard.distribution.errors import (BlobUnknown, LayerVerificationFailed, RegistryError,
                                          RegistryErrors, RequestFailed, TransportError,
                                          UnexpectedResponse, UnexpectedStatus, should_retry)
from dockyard.distribution.pull import Cancelled, ImageTarget, Layer, Puller
from dockyard.image.content import ContentStore
from dockyard.store.layout import Layout
from pull_fakes import Body, FakeRepository, gzip_layer, layer_tar

BLOB = gzip_layer(layer_tar(("etc/hello", b"hello\n")))
LAYER = Layer(BLOB.digest, len(BLOB.data), "application/vnd.oci.image.layer.v1.tar+gzip",
              BLOB.diff_id)
SERVER_ERROR = UnexpectedStatus("500 Internal Server Error")


def countdown(*seconds: int) -> list[str]:
    """The statuses of the waits after the given failures, as dockerd words them."""
    out = []
    for total in seconds:
        out += [f"Retrying in {n} second{'s' if n != 1 else ''}" for n in range(total, 0, -1)]
    return out


class Failing(FakeRepository):
    """Raises the scripted errors on the first blob requests, then serves."""

    def __init__(self, *errors: BaseException):
        super().__init__()
        self.blobs[BLOB.digest] = BLOB.data
        self.script = list(errors)
        self.on_open = self._next

    def _next(self, digest: str) -> None:
        if self.script:
            raise self.script.pop(0)


def puller(tmp_path, repo, messages: list, cancelled=None, **options) -> Puller:
    layout = Layout(str(tmp_path))
    layout.create()
    target = ImageTarget(ContentStore(layout), None, lambda _: False, lambda _: "",
                         lambda *a: False)
    return Puller(repo, target, messages.append, cancelled or threading.Event(), **options)


def statuses(messages: list[dict]) -> list[str]:
    return [m["status"] for m in messages]


def retries(messages: list[dict]) -> list[str]:
    return [s for s in statuses(messages) if s.startswith("Retrying")]


# -- which errors are tried again -------------------------------------------------

@pytest.mark.parametrize("err, again", [
    (SERVER_ERROR, True),
    (TransportError("GET", "https://r/v2/x/blobs/d", "connect: connection refused"), True),
    (RequestFailed("GET", "d", "connection reset by peer"), True),
    (RegistryErrors([RegistryError("UNKNOWN", "boom")]), True),
    (RegistryErrors([RegistryError("BLOB_UNKNOWN")]), True),   # in a body that is no 404's
    (BlobUnknown(), False),
    (RegistryErrors([RegistryError("UNAUTHORIZED")]), False),
    (RegistryError("DENIED"), False),
    (RegistryError("TOOMANYREQUESTS"), False),
    (RegistryError("UNSUPPORTED"), False),
    (RegistryError("NAME_UNKNOWN"), False),
    (UnexpectedResponse(404, b"not here", "invalid character"), False),
    (RequestFailed("GET", "d", "no basic auth credentials"), False),
    (OSError(28, "No space left on device"), False),
    (LayerVerificationFailed("sha256:x", resumed=False), False),
    (LayerVerificationFailed("sha256:x", resumed=True), True),
])
def test_should_retry_is_dockerds_rule(err, again):
    assert should_retry(err) is again


# -- the attempts and their countdown -----------------------------------------------

def test_a_failed_attempt_is_retried_after_a_countdown(tmp_path):
    repo = Failing(SERVER_ERROR, SERVER_ERROR)
    messages: list[dict] = []
    p = puller(tmp_path, repo, messages, retry_tick=0)
    p._download(LAYER, set())
    assert p.target.content.exists(BLOB.digest)
    assert len(repo.requests) == 3
    assert retries(messages) == countdown(5, 10)
    # each failed request is shown as dockerd's progress reader shows it: no counts
    assert messages[:2] == [{"status": "Downloading", "progressDetail": {}, "id": LAYER.id},
                            {"status": "Retrying in 5 seconds", "progressDetail": {},
                             "id": LAYER.id}]
    assert statuses(messages)[-1] == "Download complete"


def test_a_download_is_given_up_after_six_attempts(tmp_path):
    repo = Failing(*[SERVER_ERROR] * 6)
    messages: list[dict] = []
    p = puller(tmp_path, repo, messages, retry_tick=0)
    with pytest.raises(UnexpectedStatus):
        p._download(LAYER, set())
    assert len(repo.requests) == 6
    assert retries(messages) == countdown(5, 10, 15, 20, 25)
    assert not p.target.content.exists(BLOB.digest)


@pytest.mark.parametrize("err", [RegistryErrors([RegistryError("UNAUTHORIZED")]),
                                 BlobUnknown(),
                                 RequestFailed("GET", "d", "no basic auth credentials")])
def test_errors_no_retry_can_cure_fail_at_once(tmp_path, err):
    repo = Failing(err)
    messages: list[dict] = []
    with pytest.raises(type(err)):
        puller(tmp_path, repo, messages, retry_tick=0)._download(LAYER, set())
    assert len(repo.requests) == 1
    assert retries(messages) == []


def test_bad_bytes_from_one_piece_are_not_retried(tmp_path):
    repo = Failing()
    repo.blobs[BLOB.digest] = BLOB.data[:-1] + bytes([BLOB.data[-1] ^ 1])
    messages: list[dict] = []
    with pytest.raises(LayerVerificationFailed) as e:
        puller(tmp_path, repo, messages, retry_tick=0)._download(LAYER, set())
    assert str(e.value) == f"filesystem layer verification failed for digest {BLOB.digest}"
    assert len(repo.requests) == 1 and retries(messages) == []


class Scripted:
    """Answers blob requests from a script, in order: a body to serve or an
    error to raise; records each request's Range ("" for the whole blob)."""

    def __init__(self, *answers: Body | BaseException):
        self.answers = list(answers)
        self.requests: list[str] = []

    def open_blob(self, digest: str, headers: dict[str, str] | None = None):
        self.requests.append((headers or {}).get("Range", ""))
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


class Breaking(Body):
    def read(self, n: int = -1) -> bytes:
        data = super().read(n)
        if not data:
            raise RequestFailed("GET", "blob", "connection reset by peer")
        return data


def test_bad_bytes_from_a_resumed_download_start_it_over(tmp_path):
    """The first body breaks after 100 bytes, the range request answers bytes
    that do not match; the whole blob asked for after that is right."""
    repo = Scripted(Breaking(BLOB.data[:100]), Body(b"\0" * (len(BLOB.data) - 100), 206),
                    Body(BLOB.data))
    messages: list[dict] = []
    p = puller(tmp_path, repo, messages, retry_tick=0)
    p._download(LAYER, set())
    assert p.target.content.exists(BLOB.digest)
    assert repo.requests == ["", "bytes=100-", ""]
    assert retries(messages) == countdown(5)


def test_a_failed_resume_shows_no_empty_downloading(tmp_path):
    """dockerd seeks a resumed blob before its progress reader exists: a
    refused range request shows no "Downloading" as a refused fresh one does.
    The first body breaks after 100 bytes, two range requests are refused."""
    repo = Scripted(Breaking(BLOB.data[:100]), SERVER_ERROR, SERVER_ERROR,
                    Body(BLOB.data[100:], 206))
    messages: list[dict] = []
    p = puller(tmp_path, repo, messages, retry_tick=0)
    p._download(LAYER, set())
    assert p.target.content.exists(BLOB.digest)
    assert repo.requests == ["", "bytes=100-", "bytes=100-", "bytes=100-"]
    assert retries(messages) == countdown(5, 10)
    assert {"status": "Downloading", "progressDetail": {}, "id": LAYER.id} not in messages


def test_the_countdown_ends_when_the_client_goes(tmp_path):
    """With real seconds (60 of them per tick here), a cancel ends the wait."""
    repo = Failing(SERVER_ERROR)
    retrying = threading.Event()
    cancelled = threading.Event()
    messages: list[dict] = []

    def emit(msg: dict) -> None:
        messages.append(msg)
        if msg["status"].startswith("Retrying"):
            retrying.set()

    layout = Layout(str(tmp_path))
    layout.create()
    target = ImageTarget(ContentStore(layout), None, lambda _: False, lambda _: "",
                         lambda *a: False)
    p = Puller(repo, target, emit, cancelled, retry_tick=60)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            p._download(LAYER, set())
        except BaseException as e:  # noqa: BLE001 - handed to the test
            failure.append(e)

    worker = threading.Thread(target=run)
    worker.start()
    assert retrying.wait(10)
    cancelled.set()
    worker.join(10)
    assert not worker.is_alive()
    assert isinstance(failure[0], Cancelled)
    assert str(failure[0]) == "download cancelled during retry delay"
    assert retries(messages) == ["Retrying in 5 seconds"]
    assert len(repo.requests) == 1


def test_progress_update_of_a_retry_has_dockerds_shape():
    assert progress.update("0123456789ab", "Retrying in 1 second") == {
        "status": "Retrying in 1 second", "progressDetail": {}, "id": "0123456789ab"}
