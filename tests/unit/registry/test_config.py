"""Configuration: S3 storage, the pull-through cache and upload purging, from flags and
the JSON file."""

from __future__ import annotations

import json

import pytest

from dockyard.registry.__main__ import _parser, config_from_args
from dockyard.registry.proxy import ProxySettings, parse_challenge
from dockyard.registry.s3 import DEFAULT_PART, S3Settings
from dockyard.registry.server import InvalidDuration, UploadPurging, parse_duration


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


def test_parse_duration_takes_go_durations_and_seconds():
    assert parse_duration("168h") == 168 * 3600
    assert parse_duration("2h10m") == 2 * 3600 + 600
    assert parse_duration("1.5s") == 1.5 and parse_duration("250ms") == 0.25
    assert parse_duration(30) == 30.0 and parse_duration(0.2) == 0.2
    for bad in ("", "10", "h", "-1h", "1d", "0s", 0, True, None):
        with pytest.raises(InvalidDuration):
            parse_duration(bad)


def test_upload_purging_defaults_are_distributions():
    assert _config("--root", "/r").upload_purging == UploadPurging(
        enabled=True, age=168 * 3600, interval=24 * 3600, dry_run=False)


def test_upload_purging_from_the_config_file_with_flags_on_top(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"root": str(tmp_path), "maintenance": {"uploadpurging": {
        "enabled": True, "age": "2h", "interval": "10m", "dryrun": True}}}))
    assert _config("--config", str(path)).upload_purging == UploadPurging(True, 7200, 600, True)
    config = _config("--config", str(path), "--upload-purge-age", "1s",
                     "--upload-purge-interval", "100ms")
    assert config.upload_purging == UploadPurging(True, 1.0, 0.1, True)
    assert not _config("--config", str(path), "--no-upload-purge").upload_purging.enabled
    path.write_text(json.dumps({"root": str(tmp_path),
                                "maintenance": {"uploadpurging": {"enabled": False}}}))
    assert _config("--config", str(path)).upload_purging == UploadPurging(enabled=False)


def test_bad_purge_durations_are_refused(tmp_path):
    with pytest.raises(SystemExit, match="invalid duration '1 week'"):
        _config("--root", str(tmp_path), "--upload-purge-age", "1 week")
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"root": str(tmp_path),
                                "maintenance": {"uploadpurging": {"interval": "soon"}}}))
    with pytest.raises(SystemExit, match="invalid duration 'soon'"):
        _config("--config", str(path))


def test_gc_flags_as_distributions_garbage_collect():
    args = _parser().parse_args(["gc", "--root", "/r", "-m", "-d", "--upload-purge-age", "1h"])
    assert args.delete_untagged and args.dry_run
    assert config_from_args(args).upload_purging.age == 3600
    assert not _parser().parse_args(["gc", "--root", "/r"]).delete_untagged
