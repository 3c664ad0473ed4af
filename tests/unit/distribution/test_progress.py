"""dockerd's progress messages (progress.py), checked against Go's output."""

import io

from dockyard.distribution import progress


def test_human_size_is_go_units():
    assert progress.human_size(0) == "0B"
    assert progress.human_size(999) == "999B"
    assert progress.human_size(1000) == "1kB"
    assert progress.human_size(1048576) == "1.049MB"
    assert progress.human_size(772_788) == "772.8kB"


def test_progress_string_at_200_columns():
    assert progress.progress_string(1048576, 2097152) == (
        "[" + "=" * 25 + ">" + " " * 25 + "]  1.049MB/2.097MB")
    assert progress.progress_string(2097152, 2097152) == "[" + "=" * 50 + ">]  2.097MB/2.097MB"
    assert progress.progress_string(0, 0) == ""
    assert progress.progress_string(1000, 0) == "     1kB"
    # a current beyond the total drops the total
    assert progress.progress_string(3000, 2000).endswith("]      3kB")


def test_message_and_update_shapes():
    assert progress.message("Pulling from library/busybox", "latest") == {
        "status": "Pulling from library/busybox", "id": "latest"}
    assert progress.message("Digest: sha256:x") == {"status": "Digest: sha256:x"}
    assert progress.update("a3ed95caeb02", "Pulling fs layer") == {
        "status": "Pulling fs layer", "progressDetail": {}, "id": "a3ed95caeb02"}
    msg = progress.update("a3ed95caeb02", "Downloading", 10, 100)
    assert list(msg) == ["status", "progressDetail", "progress", "id"]
    assert msg["progressDetail"] == {"current": 10, "total": 100}
    assert progress.aux({"Tag": "1", "Digest": "sha256:x", "Size": 527}) == {
        "progressDetail": {}, "aux": {"Tag": "1", "Digest": "sha256:x", "Size": 527}}


def test_short_id():
    assert progress.short_id("sha256:" + "ab" * 32) == "abababababab"


def test_reader_reports_progress_and_the_end():
    sent = []
    data = b"x" * 300_000
    reader = progress.Reader(io.BytesIO(data), sent.append, "id", "Downloading", len(data))
    reader.INTERVAL = 0  # no rate limit for the test
    out = b""
    while chunk := reader.read(10_000):
        out += chunk
    assert out == data
    assert sent, "no progress reported"
    assert all(m["status"] == "Downloading" and m["id"] == "id" for m in sent)
    assert sent[-1]["progressDetail"] == {"current": len(data), "total": len(data)}
    currents = [m["progressDetail"]["current"] for m in sent]
    assert currents == sorted(currents)
