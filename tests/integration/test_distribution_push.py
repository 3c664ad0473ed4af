"""Push remembers across a restart what it sent, as dockerd's v2 metadata does:
a committed image's uncompressed layers, gzipped on their first push, are
found or mounted on the next one instead of being compressed and sent again.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile

import pytest

from harness import Daemon, load_busybox, running_daemon
from test_distribution import BUSYBOX_ARCHIVE, MANIFEST_TYPES, REGISTRY, SKOPEO, registry

pytestmark = pytest.mark.skipif(not (os.path.exists(REGISTRY) and os.path.exists(SKOPEO)),
                                reason="needs docker-registry and skopeo")


def layer_digests(reg, repo: str, tag: str) -> list[str]:
    status, _, raw = reg.get(f"/v2/{repo}/manifests/{tag}", {"Accept": MANIFEST_TYPES})
    assert status == 200, raw
    return [l["digest"] for l in json.loads(raw)["layers"]]


def statuses(out: str, *wanted: str) -> list[str]:
    return [line for line in out.splitlines() if line.split(": ", 1)[-1] in wanted]


def metadata_files(d: Daemon) -> list[str]:
    return os.listdir(os.path.join(d.root, "images", "distribution", "v2metadata-by-diffid",
                                   "sha256"))


def test_a_committed_image_is_mounted_after_a_restart_not_gzipped_again():
    with registry() as reg, running_daemon() as d:
        base = load_busybox(d)  # docker save's layers: uncompressed, like a commit's
        d.docker("run", "--name", "committer", base, "sh", "-c", "echo made-here > /hello",
                 check=True)
        first = f"{reg.addr}/test/first:1"
        d.docker("commit", "committer", first, check=True)
        d.docker("rm", "committer", check=True)
        pushed = d.docker("push", first, check=True).stdout
        assert len(statuses(pushed, "Pushed")) == 2, pushed
        assert len(metadata_files(d)) == 2

        d.stop()
        d.start()
        second = f"{reg.addr}/test/second:1"
        d.docker("tag", first, second, check=True)
        out = d.docker("push", second, check=True).stdout
        assert len(statuses(out, "Mounted from test/first")) == 2, out
        assert not statuses(out, "Pushing", "Pushed"), out
        assert layer_digests(reg, "test/second", "1") == layer_digests(reg, "test/first", "1")

        again = d.docker("push", first, check=True).stdout
        assert len(statuses(again, "Layer already exists")) == 2, again


def test_a_torn_record_is_ignored_and_the_layer_sent_again():
    with registry() as reg, running_daemon() as d:
        d.docker("import", "-", f"{reg.addr}/test/imported:1",
                 input=_one_file_tar(b"imported\n"), check=True)
        name = f"{reg.addr}/test/imported:1"
        d.docker("push", name, check=True)
        d.stop()
        (record,) = metadata_files(d)
        path = os.path.join(d.root, "images", "distribution", "v2metadata-by-diffid", "sha256",
                            record)
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)
        d.start()
        other = f"{reg.addr}/test/imported-again:1"
        d.docker("tag", name, other, check=True)
        out = d.docker("push", other, check=True).stdout
        # Nothing known of the layer: compressed again, to the same bytes.
        assert statuses(out, "Pushed"), out
        assert layer_digests(reg, "test/imported-again", "1") == \
            layer_digests(reg, "test/imported", "1")


def _one_file_tar(data: bytes) -> bytes:
    import io
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_a_repository_that_lost_the_blob_is_forgotten_and_the_layer_sent():
    import http.client
    with registry() as reg, running_daemon() as d:
        first = f"{reg.addr}/test/first:1"
        d.docker("import", "-", first, input=_one_file_tar(b"lost\n"), check=True)
        d.docker("push", first, check=True)
        (digest,) = layer_digests(reg, "test/first", "1")
        conn = http.client.HTTPConnection("127.0.0.1", reg.port, timeout=10)
        try:
            conn.request("DELETE", f"/v2/test/first/blobs/{digest}")
            assert conn.getresponse().status == 202
        finally:
            conn.close()
        second = f"{reg.addr}/test/second:1"
        d.docker("tag", first, second, check=True)
        out = d.docker("push", second, check=True).stdout
        assert statuses(out, "Pushed") and not statuses(out, "Mounted from test/first"), out
        assert layer_digests(reg, "test/second", "1") == [digest]
        (record,) = metadata_files(d)
        path = os.path.join(d.root, "images", "distribution", "v2metadata-by-diffid", "sha256",
                            record)
        with open(path) as f:
            assert [e["SourceRepository"] for e in json.load(f)] == [f"{reg.addr}/test/second"]


def test_pulled_layers_are_recorded_so_a_push_of_an_image_built_on_them_mounts_them():
    """The base layers' record comes from the pull: after the pulled tag is
    gone (and with it the image's RepoDigests), a push of an image committed
    on top of it to another repository mounts the base from where it was pulled."""
    with registry() as reg, running_daemon() as d:
        reg.seed(f"docker-archive:{BUSYBOX_ARCHIVE}", "test/base:1")
        pulled = f"{reg.addr}/test/base:1"
        d.docker("pull", pulled, check=True)
        d.docker("run", "--name", "builder", pulled, "sh", "-c", "echo on-top > /top",
                 check=True)
        derived = f"{reg.addr}/test/derived:1"
        d.docker("commit", "builder", derived, check=True)
        d.docker("rm", "builder", check=True)
        d.docker("rmi", pulled, check=True)
        d.stop()
        d.start()
        out = d.docker("push", derived, check=True).stdout
        base_layer = layer_digests(reg, "test/base", "1")[0]
        assert statuses(out, "Mounted from test/base") != []
        assert layer_digests(reg, "test/derived", "1")[0] == base_layer
        assert len(statuses(out, "Pushed")) == 1  # the committed layer only
