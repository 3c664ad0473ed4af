"""The registry run as a container: the image `python -m dockyard.registry.image`
makes, loaded and run by dockyardd with the docker CLI and with ours, pushed
to and pulled from through a published port on 127.0.0.1.

The archive is made once for the module (about 100 MiB, a few seconds).
Every container and volume is removed by the test that made it; the
daemons are the harness's (their own bridge, subnet and chains).
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys

import pytest

from harness import load_busybox, wait_for
from paths import FIXTURES, REPO

TAG = "dockyard/registry:latest"


@pytest.fixture(scope="module")
def registry_archive(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("registry-image") / "registry.tar")
    subprocess.run([sys.executable, "-m", "dockyard.registry.image", "-o", path],
                   check=True, cwd=REPO, timeout=300)
    return path


def v2(port: int) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/v2/")
        response = conn.getresponse()
        response.read()
        return response.status, dict(response.getheaders())
    finally:
        conn.close()


def answering(port: int) -> bool:
    try:
        return v2(port)[0] == 200
    except OSError:
        return False


def published_port(run, name: str) -> int:
    out = run("port", name, "5000/tcp", check=True).stdout
    return int(out.splitlines()[0].rpartition(":")[2])


def test_archive_is_an_image_with_the_registry_as_entrypoint(registry_archive, daemon):
    out = daemon.run_cli("load", "-i", registry_archive, check=True, timeout=120).stdout
    assert out == f"Loaded image: {TAG}\n"
    inspect = json.loads(daemon.run_cli("image", "inspect", TAG, check=True).stdout)[0]
    config = inspect["Config"]
    assert config["Entrypoint"] == ["python3", "-m", "dockyard.registry"]
    assert config["Cmd"] == ["serve", "--config", "/etc/dockyard/registry.json"]
    assert config["ExposedPorts"] == {"5000/tcp": {}}
    assert config["Volumes"] == {"/var/lib/registry": {}}
    assert len(inspect["RootFS"]["Layers"]) == 1
    # The interpreter runs in the container: help of the registry's own CLI.
    ran = daemon.run_cli("run", "--rm", TAG, "gc", "--help", check=True, timeout=60)
    assert "--dry-run" in ran.stdout


def test_docker_cli_runs_the_registry_and_pushes_and_pulls_through_it(registry_archive,
                                                                      daemon):
    """docker load / run -p / push / pull / run, all through the docker CLI."""
    load_busybox(daemon)
    daemon.docker("load", "-i", registry_archive, check=True, timeout=120)
    name = f"dyt-registry-{os.getpid()}"
    volume = f"dyt-registry-data-{os.getpid()}"
    daemon.docker("run", "-d", "--name", name, "-p", "127.0.0.1::5000",
                  "-v", f"{volume}:/var/lib/registry", TAG, check=True)
    try:
        port = published_port(daemon.docker, name)
        wait_for(lambda: answering(port), timeout=30, what="the registry container")
        status, headers = v2(port)
        assert headers.get("Docker-Distribution-API-Version") == "registry/2.0"
        image = f"127.0.0.1:{port}/dyt/busybox:pushed"
        daemon.docker("tag", "busybox:local", image, check=True)
        pushed = daemon.docker("push", image, check=True, timeout=120).stdout
        assert "digest: sha256:" in pushed
        daemon.docker("rmi", image, "busybox:local", check=True)
        daemon.docker("pull", image, check=True, timeout=120)
        ran = daemon.docker("run", "--rm", image, "echo", "pulled back", check=True)
        assert ran.stdout == "pulled back\n"
        # The blobs are in the container's volume, where the image says.
        mountpoint = json.loads(daemon.docker("volume", "inspect", volume,
                                              check=True).stdout)[0]["Mountpoint"]
        assert os.listdir(os.path.join(mountpoint, "repositories", "dyt"))== ["busybox"]
        # The server stops on SIGTERM as PID 1, well inside docker stop's 10 s.
        daemon.docker("stop", name, check=True, timeout=30)
        state = json.loads(daemon.docker("inspect", name, check=True).stdout)[0]["State"]
        assert (state["Status"], state["ExitCode"]) == ("exited", 0)
    finally:
        daemon.docker("rm", "-f", name)
        daemon.docker("volume", "rm", volume)


def test_our_cli_runs_the_registry_with_htpasswd(registry_archive, daemon, tmp_path):
    """Arguments after the image go to `python -m dockyard.registry`: here an
    htpasswd file bind-mounted in; our CLI logs in, pushes and pulls."""
    import bcrypt

    load_busybox(daemon)
    daemon.run_cli("load", "-i", registry_archive, check=True, timeout=120)
    auth = tmp_path / "auth"
    auth.mkdir()
    hashed = bcrypt.hashpw(b"pw-for-test", bcrypt.gensalt(rounds=4)).decode()
    (auth / "htpasswd").write_text(f"tester:{hashed}\n")
    name = f"dyt-registry-auth-{os.getpid()}"
    daemon.run_cli("run", "-d", "--name", name, "-p", "127.0.0.1::5000",
                   "-v", f"{auth}:/auth:ro", TAG,
                   "serve", "--config", "/etc/dockyard/registry.json",
                   "--htpasswd", "/auth/htpasswd", check=True)
    try:
        port = published_port(daemon.run_cli, name)
        wait_for(lambda: v2_status(port) == 401, timeout=30, what="the registry container")
        image = f"127.0.0.1:{port}/dyt/busybox:auth"
        daemon.run_cli("tag", "busybox:local", image, check=True)
        refused = daemon.run_cli("push", image, timeout=120)
        assert refused.returncode == 1
        assert "no basic auth credentials" in refused.stderr
        daemon.run_cli("login", "-u", "tester", "--password-stdin", f"127.0.0.1:{port}",
                       input="pw-for-test\n", check=True)
        daemon.run_cli("push", image, check=True, timeout=120)
        daemon.run_cli("rmi", image, check=True)
        daemon.run_cli("pull", image, check=True, timeout=120)
        ran = daemon.run_cli("run", "--rm", image, "echo", "with auth", check=True)
        assert ran.stdout == "with auth\n"
    finally:
        daemon.run_cli("rm", "-f", "-v", name)


def v2_status(port: int) -> int:
    try:
        return v2(port)[0]
    except OSError:
        return 0
