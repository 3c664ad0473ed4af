"""A registry repository in memory, for pulls without HTTP.

It serves manifests, configs and layer blobs built here from tar members;
`on_open` lets a test act (fail, pause) when a blob is asked for.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from typing import Callable

from dockyard.distribution.errors import BlobUnknown
from dockyard.distribution.repository import Manifest
from dockyard.image import mediatypes as mt

OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(*files: tuple[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@dataclass
class Blob:
    data: bytes
    diff_id: str

    @property
    def digest(self) -> str:
        return sha256(self.data)


def gzip_layer(tar: bytes) -> Blob:
    return Blob(gzip.compress(tar, mtime=0), sha256(tar))


class Body:
    """A blob response: read() through the bytes."""

    def __init__(self, data: bytes, status: int = 200):
        self._data = io.BytesIO(data)
        self.status = status
        self._length = len(data)

    def header(self, name: str, default: str = "") -> str:
        return str(self._length) if name == "Content-Length" else default

    def read(self, n: int = -1) -> bytes:
        return self._data.read(n)

    def close(self, reuse: bool = True) -> None:
        pass


@dataclass
class FakeRepository:
    """One repository: blobs by digest, and manifests made of them."""
    blobs: dict[str, bytes] = field(default_factory=dict)
    # digest -> called (with the digest) before a blob is served; it may raise
    on_open: Callable[[str], None] = lambda digest: None
    requests: list[str] = field(default_factory=list)

    def image(self, layers: list[Blob], label: str = "") -> Manifest:
        """A manifest naming `layers`, with a config told apart by `label`."""
        config = json.dumps({
            "architecture": mt.host_arch(), "os": "linux",
            "config": {"Labels": {"which": label}},
            "rootfs": {"type": "layers", "diff_ids": [l.diff_id for l in layers]},
        }).encode()
        self.blobs[sha256(config)] = config
        for layer in layers:
            self.blobs[layer.digest] = layer.data
        raw = json.dumps({
            "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": mt.OCI_CONFIG, "digest": sha256(config),
                       "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": l.digest, "size": len(l.data)}
                       for l in layers],
        }).encode()
        return Manifest(raw, mt.OCI_MANIFEST, sha256(raw))

    def open_blob(self, digest: str, headers: dict[str, str] | None = None) -> Body:
        self.requests.append(digest)
        self.on_open(digest)
        if digest not in self.blobs:
            raise BlobUnknown()
        return Body(self.blobs[digest])

    def read_blob(self, digest: str, limit: int = 4 << 20) -> bytes:
        return self.open_blob(digest).read(limit + 1)
