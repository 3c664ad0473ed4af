"""docker's output conventions in the CLI: sizes, durations, truncation, tables.

The expected strings come from github.com/docker/go-units' own tests
(size_test.go, duration_test.go), from docker/cli's formatter, and from the
real docker CLI (28.2) printing the same daemon responses used here.
"""

from __future__ import annotations

import json

import pytest

from dockyard.cli import formatting as f
from dockyard.cli.command import Parser, StatusError, UsageError
from dockyard.cli.images import filters_param, parse_filters
from dockyard.cli.inspect import go_json_compact

MINUTE, HOUR, DAY = 60, 3600, 86400
WEEK, MONTH, YEAR = 7 * DAY, 30 * DAY, 365 * DAY
KB, MB, GB, TB, PB = 1000, 1000**2, 1000**3, 1000**4, 1000**5
KiB, MiB, GiB, TiB, PiB = 1024, 1024**2, 1024**3, 1024**4, 1024**5


# --- sizes -------------------------------------------------------------------------


@pytest.mark.parametrize("size, expected", [
    (1000, "1kB"), (1024, "1.024kB"), (1000000, "1MB"), (1048576, "1.049MB"),
    (2 * MB, "2MB"), (3.42 * GB, "3.42GB"), (5.372 * TB, "5.372TB"), (2.22 * PB, "2.22PB"),
    (10000000000000 * PB, "1e+04YB"), (0, "0B"),
])
def test_human_size_as_go_units(size, expected):
    assert f.human_size(size) == expected


@pytest.mark.parametrize("size, expected", [
    (0, "0B"), (999, "999B"), (1000, "1kB"), (4260, "4.26kB"), (1982256, "1.98MB"),
    (1982272, "1.98MB"), (16, "16B"), (1995000, "2MB"), (123456789, "123MB"),
    # %.3g switches to an exponent at 1000 of a unit, and docker prints that.
    (999999, "1e+03kB"),
])
def test_human_size_with_precision_3_as_docker_images_prints(size, expected):
    assert f.human_size_with_precision(size, 3) == expected


@pytest.mark.parametrize("size, expected", [
    (1024, "1KiB"), (1048576, "1MiB"), (2 * MiB, "2MiB"), (3.42 * GiB, "3.42GiB"),
    (5.372 * TiB, "5.372TiB"), (2.22 * PiB, "2.22PiB"),
    (KiB**5 * PiB, "1.049e+06YiB"), (25276510208, "23.54GiB"), (0, "0B"),
])
def test_bytes_size_as_go_units(size, expected):
    assert f.bytes_size(size) == expected


# --- durations ---------------------------------------------------------------------


@pytest.mark.parametrize("seconds, expected", [
    (0.45, "Less than a second"), (-5, "Less than a second"), (1, "1 second"),
    (45, "45 seconds"), (59, "59 seconds"), (60, "About a minute"), (119, "About a minute"),
    (3 * MINUTE, "3 minutes"), (35 * MINUTE + 40, "35 minutes"), (59 * MINUTE, "59 minutes"),
    (HOUR, "About an hour"), (HOUR + 29 * MINUTE, "About an hour"),
    (HOUR + 31 * MINUTE, "2 hours"), (HOUR + 59 * MINUTE, "2 hours"),
    (3 * HOUR + 29 * MINUTE, "3 hours"), (3 * HOUR + 31 * MINUTE, "4 hours"),
    (24 * HOUR, "24 hours"), (DAY + 12 * HOUR, "36 hours"), (2 * DAY, "2 days"),
    (7 * DAY, "7 days"), (13 * DAY + 5 * HOUR, "13 days"), (2 * WEEK, "2 weeks"),
    (2 * WEEK + 4 * DAY, "2 weeks"), (4 * WEEK + 3 * DAY, "4 weeks"), (MONTH, "4 weeks"),
    (MONTH + 2 * WEEK, "6 weeks"), (2 * MONTH, "2 months"), (5 * MONTH + 2 * WEEK, "5 months"),
    (13 * MONTH, "13 months"), (24 * MONTH, "24 months"), (24 * MONTH + 2 * WEEK, "2 years"),
    (3 * YEAR + 2 * MONTH, "3 years"),
])
def test_human_duration_as_go_units(seconds, expected):
    assert f.human_duration(seconds) == expected


def test_since_adds_ago():
    assert f.since(1000, now=1000 + 2 * HOUR) == "2 hours ago"
    assert f.since(1000, now=1000) == "Less than a second ago"


def test_times_in_go_layouts(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    import time
    time.tzset()
    try:
        assert f.rfc3339(1795829012) == "2026-11-28T01:23:32Z"
        assert f.go_time_string(1795829012) == "2026-11-28 01:23:32 +0000 UTC"
        monkeypatch.setenv("TZ", "Europe/Paris")
        time.tzset()
        assert f.rfc3339(1795829012) == "2026-11-28T02:23:32+01:00"
        assert f.go_time_string(1795829012) == "2026-11-28 02:23:32 +0100 CET"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


# --- truncation --------------------------------------------------------------------


def test_truncate_id():
    full = "sha256:e9242c1a8a93414f2150bda5836e3b7856e4eeb92e041669d1389393a3a73f9f"
    assert f.truncate_id(full) == "e9242c1a8a93"
    assert f.truncate_id(full[7:]) == "e9242c1a8a93"
    assert f.truncate_id("<missing>") == "<missing>"
    assert f.truncate_id("abc") == "abc"


@pytest.mark.parametrize("text, width, expected", [
    ("/bin/sh -c #(nop)  ENTRYPOINT [\"/bin/sh\" \"-c\"]", 45,
     "/bin/sh -c #(nop)  ENTRYPOINT [\"/bin/sh\" \"-c…"),
    ("short", 45, "short"),
    ("x" * 45, 45, "x" * 45),
    ("x" * 46, 45, "x" * 44 + "…"),
    ("abc", 1, "a"),
    ("abc", 0, ""),
    # wide characters count as two columns (docker's displayutils_test.go)
    ("t🐳ststring", 0, ""), ("t🐳ststring", 1, "t"), ("t🐳ststring", 2, "t…"),
    ("t🐳ststring", 6, "t🐳st…"), ("t🐳ststring", 20, "t🐳ststring"),
    ("你好世界teststring", 1, "你"), ("你好世界teststring", 3, "你…"),
    ("你好世界teststring", 6, "你好…"), ("你好世界teststring", 20, "你好世界teststring"),
])
def test_ellipsis_like_docker(text, width, expected):
    assert f.ellipsis(text, width) == expected


# --- JSON as Go prints it ------------------------------------------------------------


def test_go_json_indent_keeps_tokens_and_empty_containers():
    raw = '[{"Id":"sha256:x","RepoTags":["a:1"],"Empty":[],"Obj":{},' \
          '"Cmd":"echo \\u003chi\\u003e & \\"q\\"","Num":1.50,"N":null}]'
    assert f.go_json_indent(raw) == (
        '[\n'
        '    {\n'
        '        "Id": "sha256:x",\n'
        '        "RepoTags": [\n'
        '            "a:1"\n'
        '        ],\n'
        '        "Empty": [],\n'
        '        "Obj": {},\n'
        '        "Cmd": "echo \\u003chi\\u003e & \\"q\\"",\n'
        '        "Num": 1.50,\n'
        '        "N": null\n'
        '    }\n'
        ']')


def test_go_json_indent_drops_whitespace_between_tokens():
    assert f.go_json_indent('[ {"a" : [ 1 , 2 ] }\n]') == \
        '[\n    {\n        "a": [\n            1,\n            2\n        ]\n    }\n]'
    assert go_json_compact('[ {"a" : [ 1 , "x y" ] }\n]') == '[{"a":[1,"x y"]}]'


def test_go_quote():
    assert f.go_quote('Foo') == '"Foo"'
    assert f.go_quote('a"b\\c\n\x01') == '"a\\"b\\\\c\\n\\x01"'


# --- formats ---------------------------------------------------------------------------


def test_template_body_like_preformat():
    assert f.template_body("table {{.ID}}\\t{{.Size}}  ") == "{{.ID}}\t{{.Size}}"
    assert f.template_body("json") == "{{json .}}"
    assert f.template_body("{{.ID}}\\n") == "{{.ID}}\n"
    assert f.is_table("table") and f.is_table("table{{.ID}}") and not f.is_table("json")


def test_image_format_choices():
    assert f.image_format("", False, False) == f.DEFAULT_IMAGE_TABLE
    assert f.image_format("table", True, False) == "{{.ID}}"
    assert f.image_format("", False, True) == f.DEFAULT_IMAGE_TABLE_DIGEST
    assert f.image_format("table {{.ID}}", False, True) == "table {{.ID}}\t{{.Digest}}"
    assert f.image_format("table {{.Digest}}", False, True) == "table {{.Digest}}"
    # a custom format wins over -q, as in docker
    assert f.image_format("{{.Repository}}", True, False) == "{{.Repository}}"
    assert f.history_format("", False, False) == f.NON_HUMAN_HISTORY_TABLE
    assert f.history_format("", True, True) == "{{.ID}}"


# --- image rows and tables ------------------------------------------------------------------

# GET /images/json of a daemon holding the two fixture images, and what
# `docker images` printed for it an hour and a bit after they were made.
IMAGES = [
    {"Containers": -1, "Created": 1795829012,
     "Id": "sha256:a3a902cba36cfccf9d3df60d5100865aed25e06a3a264f2ca477faf21da45577",
     "Labels": {"org.example.fixture": "layers"}, "ParentId": "", "RepoDigests": None,
     "RepoTags": ["fixture/layers:1.0"], "SharedSize": -1, "Size": 1982272,
     "VirtualSize": 1982272},
    {"Containers": -1, "Created": 1795828735,
     "Id": "sha256:e9242c1a8a93414f2150bda5836e3b7856e4eeb92e041669d1389393a3a73f9f",
     "Labels": None, "ParentId": "", "RepoDigests": None, "RepoTags": ["busybox:local"],
     "SharedSize": -1, "Size": 1982256, "VirtualSize": 1982256},
]
NOW = 1795829012 + 3700
DOCKER_IMAGES = (
    "REPOSITORY       TAG       IMAGE ID       CREATED             SIZE\n"
    "fixture/layers   1.0       a3a902cba36c   About an hour ago   1.98MB\n"
    "busybox          local     e9242c1a8a93   About an hour ago   1.98MB\n"
)


def test_image_rows_fields():
    rows = f.image_rows(IMAGES, now=NOW)
    assert [(r.Repository, r.Tag, r.ID) for r in rows] == [
        ("fixture/layers", "1.0", "a3a902cba36c"), ("busybox", "local", "e9242c1a8a93")]
    row = rows[1]
    assert row.Size == "1.98MB" and row.VirtualSize == "1.982MB"
    assert row.Containers == "N/A" and row.SharedSize == "N/A"
    assert row.UniqueSize == "N/A" and row.Digest == "<none>"
    assert row.CreatedSince == "About an hour ago"
    assert list(vars(row)) == sorted(vars(row))  # {{json .}} prints keys in Go's map order
    untrunc = f.image_rows(IMAGES, trunc=False, now=NOW)
    assert untrunc[0].ID == IMAGES[0]["Id"]


def test_image_rows_dangling_multi_tag_and_digests():
    dgst = "sha256:" + "ab" * 32
    images = [
        {"Id": "sha256:" + "1" * 64, "Created": 0, "Size": 5, "RepoTags": [],
         "RepoDigests": []},
        {"Id": "sha256:" + "2" * 64, "Created": 0, "Size": 5,
         "RepoTags": ["<none>:<none>"], "RepoDigests": ["<none>@<none>"]},
        {"Id": "sha256:" + "3" * 64, "Created": 0, "Size": 5,
         "RepoTags": ["a:1", "docker.io/library/a:2", "localhost:5000/b:x"],
         "RepoDigests": ["a@" + dgst, "c@" + dgst]},
    ]
    rows = f.image_rows(images, now=NOW)
    assert [(r.Repository, r.Tag, r.Digest) for r in rows] == [
        ("<none>", "<none>", "<none>"), ("<none>", "<none>", "<none>"),
        ("a", "1", "<none>"), ("a", "2", "<none>"), ("localhost:5000/b", "x", "<none>"),
        ("c", "<none>", "")]
    rows = f.image_rows(images[2:], digests=True, now=NOW)
    assert [(r.Repository, r.Tag, r.Digest) for r in rows] == [
        ("a", "1", dgst), ("a", "2", dgst), ("localhost:5000/b", "x", "<none>"),
        ("c", "<none>", dgst)]


def test_split_reference():
    assert f.split_reference("busybox:local") == ("busybox", "local", None)
    assert f.split_reference("docker.io/library/busybox:1") == ("busybox", "1", None)
    assert f.split_reference("docker.io/user/app:1") == ("user/app", "1", None)
    assert f.split_reference("localhost:5000/app") == ("localhost:5000/app", None, None)
    assert f.split_reference("a@sha256:00") == ("a", None, "sha256:00")
    assert f.split_reference("<none>:<none>") is None


def test_default_images_table_matches_docker():
    rows = f.image_rows(IMAGES, now=NOW)
    assert f.render(f.image_format("", False, False), rows, f.IMAGE_HEADER) == DOCKER_IMAGES


def test_quiet_and_custom_formats():
    rows = f.image_rows(IMAGES, now=NOW)
    assert f.render(f.image_format("", True, False), rows, f.IMAGE_HEADER) == \
        "a3a902cba36c\ne9242c1a8a93\n"
    assert f.render("{{.Repository}}:{{.Tag}}", rows, f.IMAGE_HEADER) == \
        "fixture/layers:1.0\nbusybox:local\n"
    assert f.render("table {{.Repository}}\\t{{.Size}}", rows, f.IMAGE_HEADER) == (
        "REPOSITORY       SIZE\n"
        "fixture/layers   1.98MB\n"
        "busybox          1.98MB\n")


def test_json_format_is_docker_marshal_json():
    rows = f.image_rows(IMAGES, now=NOW)
    lines = f.render("json", rows, f.IMAGE_HEADER).splitlines()
    assert len(lines) == 2
    assert lines[1] == (
        '{"Containers":"N/A","CreatedAt":"%s","CreatedSince":"About an hour ago",'
        '"Digest":"\\u003cnone\\u003e","ID":"e9242c1a8a93","Repository":"busybox",'
        '"SharedSize":"N/A","Size":"1.98MB","Tag":"local","UniqueSize":"N/A",'
        '"VirtualSize":"1.982MB"}' % rows[1].CreatedAt)
    assert f.render("{{json .}}", rows, f.IMAGE_HEADER) == f.render("json", rows, f.IMAGE_HEADER)
    # inside a larger template a row is a struct of strings
    assert f.render("{{.Tag}} {{json .Digest}}", rows[1:], f.IMAGE_HEADER) == 'local "<none>"\n'


def test_unknown_field_fails_as_on_a_struct():
    with pytest.raises(f.FormatError) as e:
        f.render("{{.Nope}}", f.image_rows(IMAGES, now=NOW), f.IMAGE_HEADER)
    assert str(e.value) == ('template parsing error: template: :1:2: executing "" at <.Nope>: '
                            "can't evaluate field Nope in type *formatter.imageContext")


def test_empty_table_still_has_its_header():
    assert f.render(f.DEFAULT_IMAGE_TABLE, [], f.IMAGE_HEADER) == \
        "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n"


def test_bad_template_is_a_format_error():
    with pytest.raises(f.FormatError, match="^template parsing error: "):
        f.render("{{.ID", f.image_rows(IMAGES, now=NOW), f.IMAGE_HEADER)


# --- history ---------------------------------------------------------------------------

HISTORY = [
    {"Comment": "", "Created": 1795829012, "CreatedBy": "/bin/sh -c #(nop)  CMD [\"cat /data/a\"]",
     "Id": "sha256:a3a902cba36cfccf9d3df60d5100865aed25e06a3a264f2ca477faf21da45577",
     "Size": 0, "Tags": ["fixture/layers:1.0"]},
    {"Comment": "", "Created": 1795829012,
     "CreatedBy": "/bin/sh -c #(nop)  ENTRYPOINT [\"/bin/sh\" \"-c\"]",
     "Id": "<missing>", "Size": 0, "Tags": None},
    {"Comment": "", "Created": 1795829012,
     "CreatedBy": "/bin/sh -c mkdir -p /data /etc/app && echo \"$GREETING\" > /data/a",
     "Id": "<missing>", "Size": 16, "Tags": None},
    {"Comment": "Imported from -", "Created": 1795828735, "CreatedBy": "",
     "Id": "<missing>", "Size": 1982256, "Tags": None},
]
DOCKER_HISTORY = (
    "IMAGE          CREATED             CREATED BY                                      SIZE      COMMENT\n"
    "a3a902cba36c   About an hour ago   /bin/sh -c #(nop)  CMD [\"cat /data/a\"]          0B        \n"
    "<missing>      About an hour ago   /bin/sh -c #(nop)  ENTRYPOINT [\"/bin/sh\" \"-c…   0B        \n"
    "<missing>      About an hour ago   /bin/sh -c mkdir -p /data /etc/app && echo \"…   16B       \n"
    "<missing>      About an hour ago                                                   1.98MB    Imported from -\n"
)
DOCKER_HISTORY_NOT_HUMAN = (
    "IMAGE          CREATED AT             CREATED BY                                      SIZE      COMMENT\n"
    "a3a902cba36c   2026-11-28T01:23:32Z   /bin/sh -c #(nop)  CMD [\"cat /data/a\"]          0         \n"
    "<missing>      2026-11-28T01:23:32Z   /bin/sh -c #(nop)  ENTRYPOINT [\"/bin/sh\" \"-c…   0         \n"
    "<missing>      2026-11-28T01:23:32Z   /bin/sh -c mkdir -p /data /etc/app && echo \"…   16        \n"
    "<missing>      2026-11-28T01:18:55Z                                                   1982256   Imported from -\n"
)


def test_history_table_matches_docker():
    rows = f.history_rows(HISTORY, now=NOW)
    assert f.render(f.history_format("", False, True), rows, f.HISTORY_HEADER) == DOCKER_HISTORY


def test_history_not_human_matches_docker(monkeypatch):
    import time
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        rows = f.history_rows(HISTORY, human=False, now=NOW)
        assert f.render(f.history_format("", False, False), rows, f.HISTORY_HEADER) == \
            DOCKER_HISTORY_NOT_HUMAN
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_history_no_trunc_and_tabs_and_old_dates():
    rows = f.history_rows([{"Id": "sha256:" + "f" * 64, "Created": 100, "CreatedBy": "a\tb" * 30,
                            "Size": 1, "Comment": ""}], trunc=False, now=NOW)
    assert rows[0].CreatedBy == "a b" * 30
    assert rows[0].ID == "sha256:" + "f" * 64
    assert rows[0].CreatedSince == "N/A"  # before 2000


# --- flags -------------------------------------------------------------------------------


def _parser() -> Parser:
    p = Parser("dockyard history", "[OPTIONS] IMAGE", "Show the history of an image",
               args=(1, 1))
    p.flag("-H", "--human", default=True, help="Print sizes")
    p.flag("-q", "--quiet", help="Only IDs")
    p.option("--format", default="")
    p.option("-f", "--filter", metavar="filter", action="append")
    return p


@pytest.mark.parametrize("argv, human, quiet", [
    (["img"], True, False), (["-H=false", "img"], False, False),
    (["--human=0", "img"], False, False), (["img", "-q"], True, True),
    (["--quiet=true", "--human=F", "img"], False, True), (["-qH", "img"], True, True),
])
def test_bool_flags_take_values_only_after_equals(argv, human, quiet):
    opts = _parser().parse(argv)
    assert (opts.human, opts.quiet, opts.args) == (human, quiet, ["img"])


def test_flag_errors_are_pflags():
    with pytest.raises(UsageError) as e:
        _parser().parse(["--bogus", "img"])
    assert e.value.status == 125
    assert e.value.message.startswith("unknown flag: --bogus\n\nUsage:  dockyard history")
    with pytest.raises(UsageError, match="^unknown shorthand flag: 'z' in -z"):
        _parser().parse(["-z", "img"])
    with pytest.raises(UsageError, match="^flag needs an argument: --format"):
        _parser().parse(["img", "--format"])
    with pytest.raises(UsageError, match='^invalid argument "maybe" for "-H, --human" flag: '
                                         'strconv.ParseBool: parsing "maybe": invalid syntax'):
        _parser().parse(["-H=maybe", "img"])


def test_argument_count_errors_exit_1():
    with pytest.raises(StatusError) as e:
        _parser().parse([])
    assert e.value.status == 1
    assert e.value.message == (
        "dockyard: 'dockyard history' requires 1 argument\n\n"
        "Usage:  dockyard history [OPTIONS] IMAGE\n\n"
        "Run 'dockyard history --help' for more information")


def test_filters_like_filter_opt():
    assert parse_filters(None) == {}
    filters = parse_filters(["dangling=true", "Label=a=b", " label = c ", "label=c"])
    assert filters == {"dangling": ["true"], "label": ["a=b", "c"]}
    assert filters_param(filters) == '{"dangling":["true"],"label":["a=b","c"]}'
    with pytest.raises(StatusError, match="bad format of filter"):
        parse_filters(["nofilter"])


# --- JSON message streams (load, import) ----------------------------------------------


class _Chunks:
    def __init__(self, *chunks: bytes):
        self.chunks = list(chunks)

    def read1(self, n: int) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""


def test_json_stream_decodes_objects_split_anywhere():
    from dockyard.cli.jsonstream import iter_messages
    text = '{"stream":"Loaded image: café:1\\n"}\r\n{"status":"sha256:ab"}'.encode()
    cut = text.index("é".encode()) + 1   # in the middle of a UTF-8 sequence
    got = list(iter_messages(_Chunks(text[:cut], text[cut:40], text[40:])))
    assert got == [{"stream": "Loaded image: café:1\n"}, {"status": "sha256:ab"}]


def test_json_stream_display_like_jsonmessage():
    import io
    from dockyard.cli.jsonstream import display
    out = io.StringIO()
    display(iter([
        {"stream": "Loaded image: a:1\n"},
        {"status": "sha256:" + "a" * 64},
        {"id": "l1", "status": "Downloading", "progressDetail": {"current": 1, "total": 2},
         "progress": "[=>   ]"},                      # no progress bars off a terminal
        {"id": "l1", "status": "Download complete", "progressDetail": {}},
        {"aux": {"ID": "sha256:x"}},                   # aux messages are not printed
    ]), out)
    assert out.getvalue() == ("Loaded image: a:1\nsha256:" + "a" * 64 + "\n"
                              "l1: Download complete\n")
    with pytest.raises(StatusError) as e:
        display(iter([{"status": "working"},
                      {"errorDetail": {"message": "archive/tar: invalid tar header"},
                       "error": "archive/tar: invalid tar header"}]), io.StringIO())
    assert (e.value.message, e.value.status) == ("archive/tar: invalid tar header", 1)


# --- start-up ---------------------------------------------------------------------------


def test_cli_modules_import_nothing_heavy():
    """`dockyard images` must start fast: no aiohttp, no daemon code, no http.client
    (which drags in email and ssl), no typing in our own modules."""
    import subprocess
    import sys
    code = (
        "import sys\n"
        "from dockyard.cli import main, images, system, inspect, formatting, jsonstream\n"
        "from dockyard.client import api\n"
        "heavy = ('aiohttp', 'dockyard.daemon', 'dockyard.api', 'dockyard.image',\n"
        "         'http.client', 'email', 'ssl', 'asyncio', 'dataclasses')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "[]\n"
