"""Configuration: S3 storage and the pull-through cache, from flags and the JSON file."""

from __future__ import annotations

import json

import pytest

from dockyard.registry.__main__ import _parser, config_from_args
from dockyard.registry.proxy import ProxySettings, parse_challenge
from dockyard.registry.s3 import DEFAULT_PART, S3Settings


def _config(*argv: str):
    return config_from_args(_parser().parse_args(["serve", *argv]))


def test_s3_flags_need_no_root():
    config = _config("--s3-bucket", "b", "--s3-endpoint", "http://127.0.0.1:9000",
                     "--s3-region", "eu-west-1", "--s3-prefix", "reg")
    assert config.root == ""
    assert config.s3 == S3Settings(bucket="b", region="eu-west-1",
                                   endpoint="http://127.0.0.1:9000", prefix="reg")
    with pytest.raises(SystemExit, match="--root or --s3-bucket"):
        _config("--addr", "127.0.0.1:5000")
    with pytest.raises(SystemExit, match="--s3-bucket"):
        _config("--s3-region", "eu-west-1")


def test_config_file_s3_and_proxy_with_flags_on_top(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({
        "s3": {"bucket": "images", "access_key": "AK", "secret_key": "SK", "endpoint": None},
        "proxy": {"remoteurl": "https://upstream.example", "username": "u", "password": "p"}}))
    config = _config("--config", str(path), "--s3-prefix", "r", "--proxy-password", "q")
    assert config.s3 == S3Settings(bucket="images", prefix="r", access_key="AK",
                                   secret_key="SK", part_size=DEFAULT_PART)
    assert config.proxy == ProxySettings("https://upstream.example", "u", "q")
    config = _config("--root", str(tmp_path), "--proxy", "http://127.0.0.1:1")
    assert config.proxy == ProxySettings("http://127.0.0.1:1") and config.s3 is None


def test_gc_takes_the_same_storage_flags():
    args = _parser().parse_args(["gc", "--s3-bucket", "b", "--dry-run"])
    assert config_from_args(args).s3 == S3Settings(bucket="b") and args.dry_run


def test_parse_challenge():
    assert parse_challenge('Bearer realm="https://auth.example/token",service="registry",'
                           'scope="repository:lib/app:pull"') == (
        "bearer", {"realm": "https://auth.example/token", "service": "registry",
                   "scope": "repository:lib/app:pull"})
    assert parse_challenge('Basic realm="dockyard registry"') == (
        "basic", {"realm": "dockyard registry"})
