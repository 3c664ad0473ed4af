"""`system df` as docker 28 prints it (docker/cli cli/command/system/df.go,
formatter/disk_usage.go and its test). The answers are parts of dockerd's
own /system/df (shared/reference) plus a made-up build cache; the expected
texts are what the docker 28.2 CLI printed for them, at NOW, in UTC."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest
from paths import REFERENCE

from dockyard.cli import main
from dockyard.cli.command import Cli

NOW = 1795870776  # 2026-11-28 12:59:36 UTC, some twelve hours after the reference was taken

BUILD_CACHE = [
    {"ID": "kx5pxdmjcaklxn6ja2bzq6iku", "Parent": "ra4nssy64ryzfh4l6r8bmjfsv", "Type": "regular",
     "Description": "mount / from exec /bin/sh -c apk add curl", "InUse": False, "Shared": True,
     "Size": 12345678, "CreatedAt": "2024-03-01T10:00:00.123456789Z",
     "LastUsedAt": "2024-06-01T10:00:00Z", "UsageCount": 3},
    {"ID": "p4kslcvcl1c4qdakr4aa0i2ob", "Type": "source.local",
     "Description": "local source for context", "InUse": True, "Shared": False, "Size": 4096,
     "CreatedAt": "2024-03-01T12:00:00+02:00", "LastUsedAt": None, "UsageCount": 1},
    {"ID": "b3ebrbpggf1vsuf3q8ngd2wb9", "Type": "frontend", "Description": "", "InUse": False,
     "Shared": False, "Size": 999999, "CreatedAt": "2023-12-24T18:00:00Z",
     "LastUsedAt": "2024-06-01T10:00:00Z", "UsageCount": 0},
]


@pytest.fixture
def du() -> dict:
    """Four images, three containers (with made-up sizes), the four volumes."""
    ref = json.loads((REFERENCE / "system-df.json").read_text())
    images = [i for i in ref["Images"] if i["Id"][7:15] in
              ("75797e8a", "138d42d4", "e1d703c4", "91370e90")]
    containers = [c for c in ref["Containers"]
                  if c["Names"][0] in ("/keen_yalow", "/ref-web", "/awesome_perlman")]
    for c, size in zip(containers, (0, 4096, 1234567)):
        c["SizeRw"] = size
    return {"LayersSize": ref["LayersSize"], "Images": images, "Containers": containers,
            "Volumes": ref["Volumes"], "BuildCache": BUILD_CACHE, "BuilderSize": 0}


@pytest.fixture(autouse=True)
def at_now_in_utc(monkeypatch):
    monkeypatch.setattr(time, "time", lambda: float(NOW))
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


class _DiskUsage:
    def __init__(self, du: dict):
        self.du = du

    def get(self, path: str, **kw):
        assert path == "/system/df"
        return self.du


def df(du: dict, *argv: str) -> tuple[int, str, str]:
    cli = Cli(out=io.StringIO(), err=io.StringIO())
    cli._client = _DiskUsage(du)
    status = main.run(["system", "df", *argv], cli)
    return status, cli.out.getvalue(), cli.err.getvalue()


EMPTY = {"LayersSize": 0, "Images": [], "Containers": [], "Volumes": [], "BuildCache": []}
EMPTY_SUMMARY = """\
TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE
Images          0         0         0B        0B
Containers      0         0         0B        0B
Local Volumes   0         0         0B        0B
Build Cache     0         0         0B        0B
"""


# --- formatter/disk_usage_test.go ------------------------------------------------------


@pytest.mark.parametrize("argv, expected", [
    ((), EMPTY_SUMMARY),
    (("--format", "table"), EMPTY_SUMMARY),
    (("-v",), """Images space usage:

REPOSITORY   TAG       IMAGE ID   CREATED   SIZE      SHARED SIZE   UNIQUE SIZE   CONTAINERS

Containers space usage:

CONTAINER ID   IMAGE     COMMAND   LOCAL VOLUMES   SIZE      CREATED   STATUS    NAMES

Local Volumes space usage:

VOLUME NAME   LINKS     SIZE

Build cache usage: 0B

CACHE ID   CACHE TYPE   SIZE      CREATED   LAST USED   USAGE     SHARED
"""),
    (("-v", "--format", "raw"), ""),
    (("-v", "--format", "{{json .}}"), '{"Images":[],"Containers":[],"Volumes":[],"BuildCache":[]}'),
    (("--format", "table {{.Type}}\\t{{.Active}}"),
     # testdata/disk-usage-context-write-custom.golden
     "TYPE            ACTIVE\nImages          0\nContainers      0\nLocal Volumes   0\n"
     "Build Cache     0\n"),
    (("--format", "raw"),
     # testdata/disk-usage-raw-format.golden
     "".join(f"type: {t}\ntotal: 0\nactive: 0\nsize: 0B\nreclaimable: 0B\n\n"
             for t in ("Images", "Containers", "Local Volumes", "Build Cache"))),
])
def test_disk_usage_context_write(argv, expected):
    assert df(EMPTY, *argv) == (0, expected, "")


@pytest.mark.parametrize("fmt, message", [
    ("{{InvalidFunction}}",
     'template parsing error: template: :1: function "InvalidFunction" not defined'),
    ("{{nil}}", 'template parsing error: template: :1:2: executing "" at <nil>: '
                "nil is not a command"),
])
def test_disk_usage_context_write_errors(fmt, message):
    assert df(EMPTY, "--format", fmt) == (1, "", message + "\n")


# --- against dockerd's answer ---------------------------------------------------------------


def test_summary(du):
    assert df(du) == (0, """\
TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE
Images          4         3         5.957MB   3.969MB (66%)
Containers      3         1         1.239MB   1.235MB (99%)
Local Volumes   4         3         6B        6B (100%)
Build Cache     3         1         1.004MB   1000kB
""", "")
    assert df(du, "--format", "json")[1] == """\
{"Active":"3","Reclaimable":"3.969MB (66%)","Size":"5.957MB","TotalCount":"4","Type":"Images"}
{"Active":"1","Reclaimable":"1.235MB (99%)","Size":"1.239MB","TotalCount":"3","Type":"Containers"}
{"Active":"3","Reclaimable":"6B (100%)","Size":"6B","TotalCount":"4","Type":"Local Volumes"}
{"Active":"1","Reclaimable":"1000kB","Size":"1.004MB","TotalCount":"3","Type":"Build Cache"}
"""


def test_verbose_tables(du):
    assert df(du, "-v") == (0, """\
Images space usage:

REPOSITORY                     TAG       IMAGE ID       CREATED        SIZE      SHARED SIZE   UNIQUE SIZE   CONTAINERS
dockerpytest_extrahost_build   latest    75797e8a34c0   12 hours ago   1.99MB    1.986MB       232B          0
<none>                         <none>    138d42d456ed   12 hours ago   1.99MB    1.986MB       0B            1
busybox                        latest    91370e901165   12 hours ago   1.99MB    1.986MB       0B            7
alpine                         3.10      e1d703c42212   12 hours ago   1.99MB    0B            1.988MB       3

Containers space usage:

CONTAINER ID   IMAGE           COMMAND                  LOCAL VOLUMES   SIZE      CREATED        STATUS                        NAMES
300e5c04fd41   alpine:3.10     "sh -c 'echo The Mai…"   1               0B        12 hours ago   Created                       keen_yalow
39ff5ff10d2d   busybox:local   "busybox httpd -f -p…"   1               4.1kB     12 hours ago   Up 5 seconds (healthy)        ref-web
e7943d8efd90   alpine:3.10     "sleep 60"               0               1.23MB    12 hours ago   Exited (137) 22 seconds ago   awesome_perlman

Local Volumes space usage:

VOLUME NAME                                                        LINKS     SIZE
dockerpytest_aaa8275f7632e441                                      1         0B
e8f9770d6e72095bc013d23670192b54cca87dd9b56e0343f24f06fd15b2cc21   1         0B
5b353902247e9aeb86f98c3937b221116158c1e66e1d93c6b53e8d50aec3c073   0         6B
ref-vol                                                            1         0B

Build cache usage: 1.004MB

CACHE ID        CACHE TYPE     SIZE      CREATED       LAST USED     USAGE     SHARED
p4kslcvcl1c4*   source.local   4.1kB     2 years ago                 1         false
b3ebrbpggf1v    frontend       1e+03kB   2 years ago   2 years ago   0         false
kx5pxdmjcakl    regular        12.3MB    2 years ago   2 years ago   3         true
""", "")  # noqa: E501


def test_verbose_raw(du):
    du = dict(du, Images=du["Images"][:1], Containers=du["Containers"][:2],
              Volumes=du["Volumes"][3:])
    assert df(du, "-v", "--format", "raw") == (0, """\
type: Image
repository: dockerpytest_extrahost_build
tag: latest
digest: \n\
image_id: sha256:75797e8a34c05d7a3584a6a66185b9a9623dbfbac1cf7a69cd0918ba53e4ee6c
created_at: 2026-11-28 01:26:47 +0000 UTC
virtual_size: 1.99MB

type: Container
container_id: 300e5c04fd41db6e0801078f34e9069546f8f0ce32443c081efdea4e311205e5
image: alpine:3.10
command: "sh -c 'echo The Maid and the Pocket Watch of Blood > /vol1/data.txt'"
created_at: 2026-11-28 01:27:14 +0000 UTC
state: created
status: Created
names: keen_yalow
labels:
ports:
size: 0B

type: Container
container_id: 39ff5ff10d2d62d41d07410844ffb65003f5efc250e030d398ca790806cf1c4d
image: busybox:local
command: "busybox httpd -f -p 80"
created_at: 2026-11-28 01:27:09 +0000 UTC
state: running
status: Up 5 seconds (healthy)
names: ref-web
labels: app=ref
ports: 127.0.0.1:18080->80/tcp
size: 4.1kB

type: Volume
name: ref-vol
driver: local

type: Build Cache
build_cache_id: p4kslcvcl1c4qdakr4aa0i2ob*
parent_id: \n\
build_cache_type: source.local
description: local source for context
created_at: 2024-03-01 12:00:00 +0200 +0200
created_since: 2 years ago
last_used_at: \n\
last_used_since: \n\
usage_count: 1
in_use: true
shared: false

type: Build Cache
build_cache_id: b3ebrbpggf1vsuf3q8ngd2wb9
parent_id: \n\
build_cache_type: frontend
description: \n\
created_at: 2023-12-24 18:00:00 +0000 UTC
created_since: 2 years ago
last_used_at: 2024-06-01 10:00:00 +0000 UTC
last_used_since: 2 years ago
usage_count: 0
in_use: false
shared: false

type: Build Cache
build_cache_id: kx5pxdmjcaklxn6ja2bzq6iku
parent_id: ra4nssy64ryzfh4l6r8bmjfsv
build_cache_type: regular
description: mount / from exec /bin/sh -c apk add curl
created_at: 2024-03-01 10:00:00.123456789 +0000 UTC
created_since: 2 years ago
last_used_at: 2024-06-01 10:00:00 +0000 UTC
last_used_since: 2 years ago
usage_count: 3
in_use: false
shared: true

""", "")


def test_verbose_template_over_the_lists(du):
    fmt = "{{range .BuildCache}}{{json .}}{{println}}{{end}}"
    assert df(du, "-v", "--format", fmt)[1] == """\
{"CacheType":"source.local","CreatedAt":"2024-03-01 12:00:00 +0200 +0200","CreatedSince":"2 years ago","Description":"local source for context","ID":"p4kslcvcl1c4qdakr4aa0i2ob*","InUse":"true","LastUsedAt":"","LastUsedSince":"","Parent":"","Shared":"false","Size":"4.1kB","UsageCount":"1"}
{"CacheType":"frontend","CreatedAt":"2023-12-24 18:00:00 +0000 UTC","CreatedSince":"2 years ago","Description":"","ID":"b3ebrbpggf1vsuf3q8ngd2wb9","InUse":"false","LastUsedAt":"2024-06-01 10:00:00 +0000 UTC","LastUsedSince":"2 years ago","Parent":"","Shared":"false","Size":"1e+03kB","UsageCount":"0"}
{"CacheType":"regular","CreatedAt":"2024-03-01 10:00:00.123456789 +0000 UTC","CreatedSince":"2 years ago","Description":"mount / from exec /bin/sh -c apk add curl","ID":"kx5pxdmjcaklxn6ja2bzq6iku","InUse":"false","LastUsedAt":"2024-06-01 10:00:00 +0000 UTC","LastUsedSince":"2 years ago","Parent":"ra4nssy64ryzfh4l6r8bmjfsv","Shared":"true","Size":"12.3MB","UsageCount":"3"}
"""  # noqa: E501
    assert df(du, "-v", "--format", '{{range .Volumes}}{{.Name}}={{.Label "com.dockerpy.test"}} '
                                    "{{end}}")[1] == (
        "dockerpytest_aaa8275f7632e441=true "
        "e8f9770d6e72095bc013d23670192b54cca87dd9b56e0343f24f06fd15b2cc21= "
        "5b353902247e9aeb86f98c3937b221116158c1e66e1d93c6b53e8d50aec3c073= ref-vol= ")


def test_verbose_template_error_comes_after_its_output(du):
    # Execute writes as it goes, and its error is not "template parsing error"
    assert df(du, "-v", "--format", "{{range .Images}}{{.ID}}{{.Nope}}{{end}}") == (
        1, "sha256:75797e8a34c05d7a3584a6a66185b9a9623dbfbac1cf7a69cd0918ba53e4ee6c",
        'template: :1:26: executing "" at <.Nope>: can\'t evaluate field Nope in type '
        "*formatter.imageContext\n")
    assert df(du, "-v", "--format", "{{")[2] == \
        'template parsing error: template: :1: unclosed action\n'


def test_reclaimable_percentages_round_toward_zero():
    images = [{"Containers": 1, "Size": 300, "SharedSize": 0},   # in use: 300 of 200 are not free
              {"Containers": 0, "Size": 50, "SharedSize": 0}]
    rows = df(dict(EMPTY, LayersSize=200, Images=images))[1].splitlines()
    assert rows[1].split()[-2:] == ["-100B", "(-50%)"]


def test_help_is_dockers(monkeypatch):
    monkeypatch.setattr("os.get_terminal_size", lambda fd=0: (_ for _ in ()).throw(OSError()))
    expected = (Path(__file__).parent / "testdata" / "help" / "system-df.txt").read_text()
    assert df(EMPTY, "--help") == (0, expected, "")
