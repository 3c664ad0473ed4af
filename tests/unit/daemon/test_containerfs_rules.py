"""The path-stat header of the archive endpoints, in Go's words (daemon/containerfs.py)."""

from __future__ import annotations

import base64
import json
import stat

import pytest

from dockyard.daemon.containerfs import absolute, go_base, go_file_mode, go_time, stat_header


@pytest.mark.parametrize("st_mode, expected", [
    (stat.S_IFDIR | 0o755, (1 << 31) | 0o755),
    (stat.S_IFREG | 0o4755, (1 << 23) | 0o755),
    (stat.S_IFLNK | 0o777, (1 << 27) | 0o777),
    (stat.S_IFCHR | 0o666, (1 << 26) | (1 << 21) | 0o666),
    (stat.S_IFDIR | 0o1777, (1 << 31) | (1 << 20) | 0o777),
])
def test_go_file_mode(st_mode, expected):
    assert go_file_mode(st_mode) == expected


def test_go_time_and_names(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    import time
    time.tzset()
    assert go_time(1_600_000_000 * 10**9) == "2020-09-13T12:26:40Z"
    assert go_time(1_600_000_000 * 10**9 + 120_000_000) == "2020-09-13T12:26:40.12Z"
    assert [go_base(p) for p in ("/etc/", "/", "/etc/.", "a")] == ["etc", "/", ".", "a"]
    assert [absolute(p) for p in ("etc/", "/a/../b/.", "/", "x/..")] == [
        "/etc/", "/b/.", "/", "/"]


def test_stat_header_is_go_json():
    header = stat_header({"name": "<a&b>", "size": 1, "mode": 0, "mtime": "t",
                          "linkTarget": ""})
    raw = base64.b64decode(header).decode()
    assert raw == ('{"name":"\\u003ca\\u0026b\\u003e","size":1,"mode":0,"mtime":"t",'
                   '"linkTarget":""}')
    assert json.loads(raw)["name"] == "<a&b>"
