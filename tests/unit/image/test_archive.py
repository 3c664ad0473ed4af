"""Loading archives that are not what they claim: dockerd's words, nothing kept."""

import gzip
import io
import os
import sys
import tarfile
from pathlib import Path

import pytest

from dockyard.daemon.images import ImageService
from dockyard.image.archive import INVALID_HEADER, UNEXPECTED_EOF, InvalidArchive
from dockyard.store.layout import Layout

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from paths import FIXTURES  # noqa: E402

LAYERS = FIXTURES / "layers.docker-save.tar"


@pytest.fixture
def svc(tmp_path):
    layout = Layout(str(tmp_path / "root"))
    layout.create()
    return ImageService(layout)


def stored(svc):
    root = svc.layout.root
    return {d: sorted(os.listdir(os.path.join(root, d)))
            for d in ("content/blobs/sha256", "layers", "images/meta", "content/ingest")}


def with_garbage_after_first_member(data: bytes) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        first = tar.getmembers()[0]
    end = first.offset_data + -(-first.size // 512) * 512
    return data[:end] + b"\x01garbage header" * 64 + data[end + 1024:]


CASES = {
    "garbage": (b"this is not a tar archive" * 100, INVALID_HEADER),
    "short garbage": (b"not a tar", UNEXPECTED_EOF),
    "truncated": (LAYERS.read_bytes()[:1_000_000], UNEXPECTED_EOF),
    "truncated in a header": (LAYERS.read_bytes()[:1536 + 100], UNEXPECTED_EOF),
    "damaged header after the first": (with_garbage_after_first_member(LAYERS.read_bytes()),
                                       INVALID_HEADER),
    "truncated gzip": (gzip.compress(LAYERS.read_bytes())[:500_000], UNEXPECTED_EOF),
    "empty": (b"", "invalid archive: no manifest.json or index.json found"),
    "only zeros": (b"\0" * 1024, "invalid archive: no manifest.json or index.json found"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_unreadable_archives(svc, case):
    data, message = CASES[case]
    with pytest.raises(InvalidArchive) as e:
        svc.load(io.BytesIO(data))
    assert str(e.value) == message
    assert stored(svc) == {"content/blobs/sha256": [], "layers": [], "images/meta": [],
                           "content/ingest": []}
    assert os.listdir(svc.layout.tmp) == []


def test_compressed_archives_load(svc):
    assert svc.load(io.BytesIO(gzip.compress(LAYERS.read_bytes()))) == [
        "Loaded image: fixture/layers:1.0"]


def test_a_damaged_layer_tar_is_reported_as_dockerd_does(svc):
    data = LAYERS.read_bytes()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        layer = next(m for m in tar.getmembers() if m.name.endswith("layer.tar"))
    # the layer's first header is no tar header any more
    start = layer.offset_data
    broken = data[:start] + b"\xff" * 512 + data[start + 512:]
    with pytest.raises(Exception) as e:
        svc.load(io.BytesIO(broken))
    assert str(e.value) == INVALID_HEADER
    assert len(svc.images) == 0 and stored(svc)["layers"] == []


def test_a_sha256_tag_in_an_archive_is_refused_before_anything_is_stored(svc):
    out = io.BytesIO()
    with tarfile.open(LAYERS) as tin, tarfile.open(fileobj=out, mode="w") as tout:
        for m in tin.getmembers():
            f = tin.extractfile(m) if m.isfile() else None
            if m.name == "manifest.json":
                body = f.read().replace(b"fixture/layers:1.0", b"sha256:latest")
                m.size = len(body)
                f = io.BytesIO(body)
            tout.addfile(m, f)
    with pytest.raises(Exception) as e:
        svc.load(io.BytesIO(out.getvalue()))
    assert str(e.value) == "refusing to create an ambiguous tag using digest algorithm as name"
    assert stored(svc)["layers"] == []
