"""The daemon process and the Engine API basics: ping, version, errors, the lock."""

import json
import os
import signal
import subprocess

import pytest

from harness import DOCKYARDD, Daemon, wait_for
from paths import REFERENCE


def raw(daemon, method, path, body=None):
    conn = daemon.api()._connection()
    conn.request(method, path, body=body)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, dict(resp.getheaders()), data


def test_ping_carries_the_negotiation_headers(daemon):
    status, headers, body = raw(daemon, "GET", "/_ping")
    assert (status, body) == (200, b"OK")
    assert headers["Api-Version"] == "1.42"
    assert headers["Ostype"] == "linux"
    assert headers["Docker-Experimental"] == "false"
    assert headers["Builder-Version"] == "1"
    assert headers["Server"].startswith("Dockyard/")
    status, headers, body = raw(daemon, "HEAD", "/_ping")
    assert status == 200 and body == b""


def test_versioned_and_unversioned_paths(daemon):
    for path in ("/version", "/v1.42/version", "/v1.41/version", "/v1.24/version"):
        status, _, body = raw(daemon, "GET", path)
        assert status == 200, path
        assert json.loads(body)["ApiVersion"] == "1.42"
    status, _, body = raw(daemon, "GET", "/v9.99/version")
    assert status == 400
    assert json.loads(body)["message"] == (
        "client version 9.99 is too new. Maximum supported API version is 1.42")
    status, _, body = raw(daemon, "GET", "/v1.0/version")
    assert status == 400 and "too old" in json.loads(body)["message"]


def test_errors_have_dockerds_shape(daemon):
    reference = (REFERENCE / "error-404.http.txt").read_text()
    expected_type = [l for l in reference.splitlines() if l.startswith("Content-Type")][0]
    status, headers, body = raw(daemon, "GET", "/images/nope/json")
    assert status == 404
    assert f"Content-Type: {headers['Content-Type']}" == expected_type
    assert json.loads(body) == {"message": "No such image: nope:latest"}
    status, _, body = raw(daemon, "GET", "/no/such/endpoint")
    assert status == 404 and json.loads(body) == {"message": "page not found"}


def test_version_and_info_shapes(daemon):
    ref_info = json.loads((REFERENCE / "info.json").read_text())
    info = daemon.api().get("/info")
    missing = set(ref_info) - set(info)
    assert not missing, f"info lacks {missing}"
    for key, value in ref_info.items():
        assert type(info[key]) is type(value) or value is None or info[key] is None, key
    ref_version = json.loads((REFERENCE / "version.json").read_text())
    version = daemon.api().get("/version")
    assert set(ref_version) <= set(version)


def test_docker_cli_and_docker_py_negotiate(daemon):
    result = daemon.docker("version", "--format", "{{.Server.APIVersion}}", check=True)
    assert result.stdout.strip() == "1.42"
    client = daemon.client()
    try:
        assert client.ping() is True
        assert client.version()["ApiVersion"] == "1.42"
        assert client.api.api_version == "1.42"
    finally:
        client.close()


def test_one_daemon_per_data_root(daemon, tmp_path):
    second = subprocess.run(
        [DOCKYARDD, "--data-root", daemon.root, "--exec-root", str(tmp_path / "exec"),
         "-H", f"unix://{tmp_path}/other.sock"], capture_output=True, text=True, timeout=30)
    assert second.returncode == 1
    assert f"data root {daemon.root} is in use by another daemon (pid {daemon.proc.pid})" \
        in second.stderr
    assert not (tmp_path / "other.sock").exists()


def test_sigterm_shuts_down_cleanly(tmp_path):
    d = Daemon(str(tmp_path))
    try:
        d.start("--pidfile", str(tmp_path / "d.pid"))
        assert (tmp_path / "d.pid").read_text().strip() == str(d.proc.pid)
        assert d.stop(signal.SIGTERM) == 0
        assert not os.path.exists(d.socket)
        assert not (tmp_path / "d.pid").exists()
        # The lock went with the process: a new daemon takes the same root at once.
        d.start()
        assert d.stop() == 0
    finally:
        d.stop()
        d.remove_network_setup()


def test_config_file_and_conflicting_flag(tmp_path):
    cfg = tmp_path / "daemon.json"
    cfg.write_text(json.dumps({"data-root": str(tmp_path / "root"), "debug": True}))
    result = subprocess.run([DOCKYARDD, "--config-file", str(cfg), "--data-root", "/elsewhere",
                             "-H", f"unix://{tmp_path}/x.sock"], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 1
    assert "specified both as a flag and in the configuration file" in result.stderr
    assert "data-root" in result.stderr


def test_two_daemons_side_by_side(daemon, tmp_path):
    other = Daemon(str(tmp_path))
    other.start()
    try:
        assert other.api().get("/info")["DockerRootDir"] == other.root
        assert daemon.api().get("/info")["DockerRootDir"] == daemon.root
    finally:
        assert other.stop() == 0
        other.remove_network_setup()


@pytest.mark.parametrize("path", ["/images/json", "/v1.41/images/json"])
def test_empty_image_list(daemon, path):
    status, _, body = raw(daemon, "GET", path)
    assert status == 200 and json.loads(body) == []


def test_wait_for_reports_timeouts():
    with pytest.raises(TimeoutError):
        wait_for(lambda: False, timeout=0.05)
