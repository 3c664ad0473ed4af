"""Pulls from a registry that lies: about a blob's bytes, or about its
Content-Length. A forwarder on 127.0.0.1 stands between the daemon and
docker-registry (test_distribution.py's) and tells one lie about one blob;
the daemon must refuse bad bytes and keep nothing of them, and must get the
right bytes in spite of a wrong length.
"""

from __future__ import annotations

import json
import os

import pytest

import test_distribution
from forwarder import WAIT, Forwarder
from test_distribution import (LAYERS_OCI_ARCHIVE, MANIFEST_TYPES, d, dy,  # noqa: F401
                               registry)

pytestmark = test_distribution.pytestmark  # needs docker-registry and skopeo


@pytest.fixture(scope="module")
def reg():
    with registry() as r:
        r.seed(f"oci-archive:{LAYERS_OCI_ARCHIVE}", "test/layers:oci")
        yield r


class Liar(Forwarder):
    """Tells `lie` about the blob `digest` the first `times` times it is asked
    for in full:

    - "tampered": the right length, one byte changed;
    - "short": the right Content-Length, half the body, then the connection closed;
    - "long": the whole body under a Content-Length 1000 bytes larger, then closed;
    - "small": a Content-Length half the real one (the rest never read)."""

    def __init__(self, upstream_port: int, digest: str, lie: str, times: int = 1):
        super().__init__(upstream_port)
        self.digest, self.lie, self.times = digest, lie, times
        self.requests: list[str] = []  # the Range header of each request for the blob

    def on_get(self, handler, status, headers, data):
        if not handler.path.endswith(f"/blobs/{self.digest}"):
            return None
        wanted = handler.headers.get("Range", "")
        self.requests.append(wanted)
        if wanted or len(self.requests) > self.times:
            return None
        handler.close_connection = True
        half = len(data) // 2
        if self.lie == "tampered":
            return status, headers, data[:half] + bytes([data[half] ^ 0xFF]) + data[half + 1:], \
                len(data)
        return {"short": (status, headers, data[:half], len(data)),
                "long": (status, headers, data, len(data) + 1000),
                "small": (status, headers, data[:half], half)}[self.lie]


def biggest_layer(reg) -> dict:
    status, _, body = reg.get("/v2/test/layers/manifests/oci", {"Accept": MANIFEST_TYPES})
    assert status == 200, body
    return max(json.loads(body)["layers"], key=lambda desc: desc["size"])


def content_blobs(daemon) -> set[str]:
    found = set()
    for dirpath, _, files in os.walk(daemon.root):
        found.update(files)
    return found


def test_bytes_that_do_not_match_the_digest_are_refused_and_nothing_is_kept(d, reg):
    layer = biggest_layer(reg)
    with Liar(reg.port, layer["digest"], "tampered", times=2) as liar:
        name = f"{liar.addr}/test/layers:oci"
        theirs = d.docker("pull", name, timeout=WAIT)
        ours = d.run_cli("pull", name, timeout=WAIT)
    message = f"filesystem layer verification failed for digest {layer['digest']}\n"
    assert theirs.returncode == ours.returncode == 1
    assert theirs.stderr == ours.stderr == message
    # Not retried (dockerd retries a failed check only after a resumed
    # download), and no trace of it: no image, no blob, no layer.
    assert liar.requests == ["", ""]
    assert d.docker("images", "-aq").stdout == ""
    assert layer["digest"][7:] not in content_blobs(d)


@pytest.mark.parametrize("lie, asked", [("short", 2), ("small", 2), ("long", 1)])
def test_a_wrong_content_length_is_mended(d, reg, lie, asked):
    """A body that stops short is asked for again from where it stopped; one
    that claims more than the manifest's size is read to that size only."""
    layer = biggest_layer(reg)
    with Liar(reg.port, layer["digest"], lie) as liar:
        name = f"{liar.addr}/test/layers:oci"
        pulled = d.docker("pull", name, timeout=WAIT)
        assert pulled.returncode == 0, pulled.stderr
        assert "Retrying" not in pulled.stdout
        half = f"bytes={layer['size'] // 2}-"
        assert liar.requests == ["", half][:asked]
        ran = d.docker("run", "--rm", name, "true")
    assert ran.returncode == 0, ran.stderr
