"""Pull, seen through the real clients: the live "Extracting" bar, and
layers that survive an rmi and a prune run while the pull is under way.

The registry is docker-registry (test_distribution.py's); a small gate on
127.0.0.1 forwards to it and can hold one blob's answer until the test lets
it go, which is how the pull is caught half-way, without sleeps.
"""

from __future__ import annotations

import json
import subprocess
import threading

import pytest

import test_distribution
from forwarder import WAIT, Forwarder
from harness import DOCKYARD
from test_distribution import (BUSYBOX_ARCHIVE, LAYERS_OCI_ARCHIVE, MANIFEST_TYPES,  # noqa: F401
                               busybox_id, d, dy, registry)

pytestmark = test_distribution.pytestmark  # needs docker-registry and skopeo


@pytest.fixture(scope="module")
def reg():
    with registry() as r:
        r.seed(f"docker-archive:{BUSYBOX_ARCHIVE}", "test/busybox:1")
        r.seed(f"oci-archive:{LAYERS_OCI_ARCHIVE}", "test/layers:oci")
        yield r


class Gate(Forwarder):
    """Holds the answer for one blob until `go` is set; `reached` says a
    request for it came."""

    def __init__(self, upstream_port: int, held_digest: str):
        super().__init__(upstream_port)
        self.held_digest = held_digest
        self.reached = threading.Event()
        self.go = threading.Event()

    def on_get(self, handler, status, headers, data):
        if handler.path.endswith(f"/blobs/{self.held_digest}"):
            self.reached.set()
            self.go.wait(WAIT)
        return None

    def __exit__(self, *exc) -> None:
        self.go.set()
        super().__exit__(*exc)


def manifest(reg, repo: str, tag: str) -> dict:
    status, _, body = reg.get(f"/v2/{repo}/manifests/{tag}", {"Accept": MANIFEST_TYPES})
    assert status == 200, body
    return json.loads(body)


def test_docker_py_sees_extracting_with_counts_then_pull_complete(d, reg):
    client = d.client()
    try:
        stream = list(client.api.pull(f"{reg.addr}/test/layers", tag="oci", stream=True,
                                      decode=True))
    finally:
        client.close()
    layers = manifest(reg, "test/layers", "oci")["layers"]
    for desc in layers:
        short = desc["digest"][7:19]
        mine = [m for m in stream if m.get("id") == short]
        statuses = [m["status"] for m in mine]
        extracting = [m for m in mine if m["status"] == "Extracting"]
        assert extracting, statuses
        assert statuses[-1] == "Pull complete"
        assert statuses.index("Extracting") > statuses.index("Download complete")
        for m in extracting:
            assert list(m) == ["status", "progressDetail", "progress", "id"]
            assert m["progressDetail"]["total"] == desc["size"]
        assert extracting[-1]["progressDetail"]["current"] == desc["size"]
        assert extracting[-1]["progress"].startswith("[" + "=" * 50 + ">]")


@pytest.mark.parametrize("cli", ["docker", "dockyard"])
def test_a_terminal_shows_the_extracting_bar(d, reg, cli):
    import pexpect
    name = f"{reg.addr}/test/busybox:1"
    argv = [DOCKYARD if cli == "dockyard" else "docker", "-H", d.host, "pull", name]
    child = pexpect.spawn(argv[0], argv[1:], env=d.env(), dimensions=(30, 200), timeout=WAIT)
    try:
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0, child.before
    out = child.before.decode()
    layer = manifest(reg, "test/busybox", "1")["layers"][0]["digest"][7:19]
    assert f"{layer}: Extracting [" + "=" * 50 + ">]" in out
    assert f"{layer}: Pull complete" in out


def test_rmi_and_prune_during_a_pull_leave_its_layers(d, reg):
    """layers:oci is busybox's layer and three more. busybox is here; while
    the layer above it downloads, busybox is removed and everything unused
    pruned: busybox's layer stays for the pull, and the image runs."""
    above = manifest(reg, "test/layers", "oci")["layers"][1]["digest"]
    with Gate(reg.port, above) as gate:
        base = f"{gate.addr}/test/busybox:1"
        d.docker("pull", base, check=True)
        name = f"{gate.addr}/test/layers:oci"
        pull = subprocess.Popen(["docker", "-H", d.host, "pull", name], env=d.env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert gate.reached.wait(WAIT), "the pull never asked for the held blob"
            rmi = d.docker("rmi", base, check=True)
            prune = d.docker("image", "prune", "-af", check=True)
            gate.go.set()
            out, err = pull.communicate(timeout=WAIT)
        finally:
            if pull.poll() is None:
                pull.kill()
                pull.wait()
    assert pull.returncode == 0, err
    # busybox went, its layer did not
    assert rmi.stdout.splitlines()[-1] == f"Deleted: {busybox_id()}"
    assert "Total reclaimed space: 0B" in prune.stdout
    assert "Already exists" in out
    run = d.docker("run", "--rm", name, "ls /etc/app; ls /opaque; ls /bin/busybox", check=True)
    assert run.stdout.split() == ["keep", "y", "/bin/busybox"]
