"""The CLI's credentials: config.json `auths`, credential helpers, and the
X-Registry-Auth header it sends (cli/distribution.py)."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from dockyard.cli import distribution as cli_dist


@pytest.fixture
def docker_config(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "cfg"))
    return tmp_path / "cfg"


def decode(header: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(header))


def test_no_credentials_sends_empty_object(docker_config):
    assert decode(cli_dist.registry_auth("127.0.0.1:5000")) == {}


def test_store_then_send(docker_config):
    config = {"psFormat": "table {{.ID}}"}
    creds = {"username": "user", "password": "secret", "serveraddress": "127.0.0.1:5000"}
    assert cli_dist.store_credentials(config, creds) is True   # a password in the file
    written = os.stat(docker_config / "config.json").st_ino
    # the same again: nothing written (docker's fileStore), nothing to warn of
    assert cli_dist.store_credentials(cli_dist.load_config(), creds) is False
    assert os.stat(docker_config / "config.json").st_ino == written
    saved = json.loads((docker_config / "config.json").read_text())
    assert saved == {"psFormat": "table {{.ID}}",
                     "auths": {"127.0.0.1:5000": {"auth": base64.b64encode(b"user:secret").decode()}}}
    assert stat.S_IMODE(os.stat(docker_config / "config.json").st_mode) == 0o600
    assert decode(cli_dist.registry_auth("127.0.0.1:5000")) == {
        "serveraddress": "127.0.0.1:5000", "username": "user", "password": "secret"}
    cli_dist.erase_credentials(cli_dist.load_config(), ["127.0.0.1:5000"])
    assert decode(cli_dist.registry_auth("127.0.0.1:5000")) == {}


def test_docker_hub_and_legacy_keys(docker_config):
    docker_config.mkdir()
    (docker_config / "config.json").write_text(json.dumps({"auths": {
        "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:pw").decode()},
        "https://old.example.com/v1/": {"auth": base64.b64encode(b"old:pw").decode()}}}))
    assert decode(cli_dist.registry_auth("docker.io"))["username"] == "hub"
    assert decode(cli_dist.registry_auth("old.example.com"))["username"] == "old"


def test_credential_helper(docker_config, tmp_path, monkeypatch):
    """A fake docker-credential-fake that keeps its secrets in a JSON file."""
    store = tmp_path / "store.json"
    store.write_text("{}")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    helper = bindir / "docker-credential-fake"
    helper.write_text(f"""#!/usr/bin/env python3
import json, sys
store = json.load(open({str(store)!r}))
verb, data = sys.argv[1], sys.stdin.read()
if verb == "store":
    doc = json.loads(data); store[doc["ServerURL"]] = doc
elif verb == "get":
    if data.strip() not in store:
        print("credentials not found in native keychain"); sys.exit(1)
    print(json.dumps(store[data.strip()]))
elif verb == "erase":
    store.pop(data.strip(), None)
json.dump(store, open({str(store)!r}, "w"))
""")
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    docker_config.mkdir()
    (docker_config / "config.json").write_text(json.dumps({"credHelpers": {"127.0.0.1:5000": "fake"}}))
    assert decode(cli_dist.registry_auth("127.0.0.1:5000")) == {}
    assert cli_dist.store_credentials(cli_dist.load_config(), {
        "username": "user", "password": "secret", "serveraddress": "127.0.0.1:5000"}) is False
    assert json.loads(store.read_text())["127.0.0.1:5000"] == {
        "ServerURL": "127.0.0.1:5000", "Username": "user", "Secret": "secret"}
    saved = json.loads((docker_config / "config.json").read_text())
    assert saved["auths"] == {"127.0.0.1:5000": {}}  # no secret in the file
    assert decode(cli_dist.registry_auth("127.0.0.1:5000")) == {
        "serveraddress": "127.0.0.1:5000", "username": "user", "password": "secret"}
    # registries without a helper of their own still use the file
    assert decode(cli_dist.registry_auth("other:5000")) == {}
    cli_dist.erase_credentials(cli_dist.load_config(), ["127.0.0.1:5000"])
    assert json.loads(store.read_text()) == {}


def test_identity_token_through_a_helper_is_the_token_user(docker_config, tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    helper = bindir / "docker-credential-tok"
    helper.write_text('#!/bin/sh\n[ "$1" = get ] && echo \'{"ServerURL":"r","Username":"<token>",'
                      '"Secret":"refresh"}\'\n')
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    docker_config.mkdir()
    (docker_config / "config.json").write_text(json.dumps({"credsStore": "tok"}))
    assert decode(cli_dist.registry_auth("r")) == {"serveraddress": "r",
                                                   "identitytoken": "refresh"}


@pytest.mark.parametrize("address, host", [
    ("127.0.0.1:5000", "127.0.0.1:5000"), ("http://127.0.0.1:5000/v2/", "127.0.0.1:5000"),
    ("https://index.docker.io/v1/", "index.docker.io")])
def test_convert_to_hostname(address, host):
    assert cli_dist.convert_to_hostname(address) == host
