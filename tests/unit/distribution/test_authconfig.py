"""X-Registry-Auth as clients encode it (authconfig.py)."""

import base64
import json

from dockyard.distribution.authconfig import AuthConfig, decode_header, encode_header


def test_docker_cli_header_round_trip():
    config = AuthConfig(username="user", password="p@ss/w?rd~", serveraddress="127.0.0.1:5000")
    header = encode_header(config)
    assert "+" not in header and "/" not in header  # URL-safe alphabet
    assert json.loads(base64.urlsafe_b64decode(header)) == {
        "username": "user", "password": "p@ss/w?rd~", "serveraddress": "127.0.0.1:5000"}
    assert decode_header(header) == config


def test_unpadded_and_case_insensitive_fields():
    raw = json.dumps({"Username": "u", "PASSWORD": "p", "extra": 1}).encode()
    header = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert decode_header(header) == AuthConfig(username="u", password="p")


def test_auth_field_gives_username_and_password():
    header = encode_header(AuthConfig(auth=base64.b64encode(b"user:se:cret").decode()))
    config = decode_header(header)
    assert (config.username, config.password) == ("user", "se:cret")
    assert config.has_credentials


def test_empty_and_garbage_headers_are_no_credentials():
    assert decode_header("") == AuthConfig()
    assert decode_header("e30=") == AuthConfig()  # {} as the docker CLI sends it
    assert decode_header("!!not base64!!") == AuthConfig()
    assert decode_header(base64.urlsafe_b64encode(b"[1,2]").decode()) == AuthConfig()
    assert not AuthConfig(username="u").has_credentials
