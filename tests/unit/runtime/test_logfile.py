"""Log files: docker's json-file format byte for byte, moby's line cutting and
rotation, our local format, and the reader (since, until, tail, follow)."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import struct
import threading
import time

import pytest

from dockyard import errdefs
from dockyard.runtime import logfile
from dockyard.runtime.logfile import Copier, JSONFileWriter, LocalWriter

T0 = 1795833364_123456789  # 2026-11-28T02:36:04.123456789Z


def clock(start: int = T0, step: int = 1000):
    now = [start - step]

    def tick() -> int:
        now[0] += step
        return now[0]
    return tick


def lines(path) -> list[bytes]:
    with open(path, "rb") as f:
        return f.read().splitlines(keepends=True)


# -- format --------------------------------------------------------------------------

@pytest.mark.parametrize("raw, escaped", [
    (b"hi\n", '"hi\\n"'),
    (b'say "x" \\ y\r\n', '"say \\"x\\" \\\\ y\\r\\n"'),
    (b"\t\x00\x1b\x08\x0c", '"\\u0009\\u0000\\u001b\\u0008\\u000c"'),  # not \t \b \f
    (b"<a href='x'>&</a>", "\"\\u003ca href='x'\\u003e\\u0026\\u003c/a\\u003e\""),
    (b"\x7f", '"\x7f"'),
    ("héllo ✓ 🐳".encode(), '"héllo ✓ 🐳"'),  # raw UTF-8, as Go writes it
    ("\u2028\u2029".encode(), '"\\u2028\\u2029"'),
    (b"\xff", '"\\ufffd"'),
    (b"a\xe2\x82b", '"a\\ufffd\\ufffdb"'),  # one replacement per bad byte, as Go
    (b"\xed\xa0\x80", '"\\ufffd\\ufffd\\ufffd"'),  # an encoded surrogate is invalid
    ("\ufffd".encode(), '"\ufffd"'),  # a real U+FFFD stays raw
])
def test_json_string_escapes_as_moby_jsonlog(raw, escaped):
    assert logfile.json_string(raw) == escaped.encode()
    json.loads(logfile.json_string(raw))  # valid JSON for any bytes


@pytest.mark.parametrize("ns, text", [
    (T0, "2026-11-28T02:36:04.123456789Z"),
    (1795833364_120000000, "2026-11-28T02:36:04.12Z"),  # Go's RFC3339Nano trims zeros
    (1795833364_000000000, "2026-11-28T02:36:04Z"),
    (0, "1970-01-01T00:00:00Z"),
])
def test_time_format_is_go_rfc3339nano_utc(ns, text):
    assert logfile.format_time(ns) == text
    assert logfile.parse_time(text) == ns


def test_time_fixed_and_parsing_offsets():
    assert logfile.format_time(1795833364_120000000, fixed=True) == \
        "2026-11-28T02:36:04.120000000Z"
    assert logfile.parse_time("2026-11-28T03:36:04.5+01:00") == 1795833364_500000000
    assert logfile.parse_time("2026-11-28T01:36:04-01:00") == 1795833364_000000000
    with pytest.raises(ValueError):
        logfile.parse_time("yesterday")


def test_json_file_line_is_byte_exact(tmp_path):
    path = tmp_path / "c-json.log"
    writer = JSONFileWriter(str(path))
    copier = Copier("stdout", writer, clock())
    copier.feed(b"hi\n")
    Copier("stderr", writer, clock(T0 + 1)).feed(b"<oops>\n")
    writer.close()
    assert path.read_bytes() == (
        b'{"log":"hi\\n","stream":"stdout","time":"2026-11-28T02:36:04.123456789Z"}\n'
        b'{"log":"\\u003coops\\u003e\\n","stream":"stderr",'
        b'"time":"2026-11-28T02:36:04.12345679Z"}\n')
    assert oct(path.stat().st_mode & 0o777) == "0o640"


# -- cutting lines (moby logger.Copier) ----------------------------------------------

class Collect:
    def __init__(self):
        self.messages = []

    def log(self, stream, line, time_ns, partial):
        self.messages.append((line, time_ns, partial))


@pytest.mark.parametrize("chunk", [1, 7, 2048, 65536])
def test_long_line_cut_into_16k_partials_sharing_one_time(chunk):
    data = b"a" * 40000 + b"\n" + b"next\n"
    sink = Collect()
    copier = Copier("stdout", sink, clock())
    for i in range(0, len(data), chunk):
        copier.feed(data[i:i + chunk])
    copier.close()
    got = [(len(line), partial) for line, _, partial in sink.messages]
    assert got == [(16384, True), (16384, True), (40000 - 32768, False), (4, False)]
    times = [t for _, t, _ in sink.messages]
    assert times[0] == times[1] == times[2] < times[3]


def test_newline_just_past_the_buffer_gives_an_empty_last_piece():
    sink = Collect()
    Copier("stdout", sink, clock()).feed(b"b" * 16384 + b"\n")
    assert [(len(line), partial) for line, _, partial in sink.messages] == \
        [(16384, True), (0, False)]


def test_unterminated_tail_is_a_partial_at_eof(tmp_path):
    path = tmp_path / "c-json.log"
    writer = JSONFileWriter(str(path))
    copier = Copier("stdout", writer, clock())
    copier.feed(b"one\ntw")
    copier.feed(b"o\nthree")
    assert len(lines(path)) == 2  # "three" waits for its newline
    copier.close()
    assert [json.loads(line)["log"] for line in lines(path)] == ["one\n", "two\n", "three"]


def test_a_failed_write_drops_that_message_only():
    class Full(Collect):
        def log(self, stream, line, time_ns, partial):
            if line == b"lost":
                raise OSError(28, "No space left on device")
            super().log(stream, line, time_ns, partial)

    sink = Full()
    copier = Copier("stdout", sink, clock())
    with pytest.raises(OSError):
        copier.feed(b"kept\nlost\nlater")
    copier.feed(b" on\n")
    assert [line for line, _, _ in sink.messages] == [b"kept", b"later on"]


# -- rotation (moby loggerutils.LogFile) ---------------------------------------------

def _fill(path, n, **kw):
    writer = JSONFileWriter(str(path), **kw)
    copier = Copier("stdout", writer, clock())
    for i in range(n):
        copier.feed(b"line %03d\n" % i)
    writer.close()


def test_rotation_keeps_max_file_files_of_about_max_size(tmp_path):
    path = tmp_path / "c-json.log"
    _fill(path, 100, max_size=500, max_file=3)
    assert sorted(os.listdir(tmp_path)) == ["c-json.log", "c-json.log.1", "c-json.log.2"]
    one = len(lines(path)[0])
    for rotated in ("c-json.log.1", "c-json.log.2"):
        size = (tmp_path / rotated).stat().st_size
        assert 500 <= size < 500 + one  # rotated before the write that would pass it
    got = [d for _, _, d in logfile.read(str(path))]
    assert got[-1] == b"line 099\n"
    assert got == [b"line %03d\n" % i for i in range(100 - len(got), 100)]


def test_max_file_1_truncates_in_place(tmp_path):
    path = tmp_path / "c-json.log"
    _fill(path, 100, max_size=500, max_file=1)
    assert os.listdir(tmp_path) == ["c-json.log"]
    assert path.stat().st_size < 500 + len(lines(path)[0])
    assert [d for _, _, d in logfile.read(str(path))][-1] == b"line 099\n"


def test_compressed_rotations_carry_last_time_and_read_back(tmp_path):
    path = tmp_path / "c-json.log"
    _fill(path, 100, max_size=500, max_file=3, compress=True)
    assert sorted(os.listdir(tmp_path)) == ["c-json.log", "c-json.log.1.gz", "c-json.log.2.gz"]
    raw = (tmp_path / "c-json.log.1.gz").read_bytes()
    assert raw[3] & 0x04  # FEXTRA
    (xlen,) = struct.unpack_from("<H", raw, 10)
    extra = json.loads(raw[12:12 + xlen])
    last = json.loads(gzip.decompress(raw).splitlines()[-1])
    assert extra == {"lastTime": last["time"]}
    got = [d for _, _, d in logfile.read(str(path))]
    assert got == [b"line %03d\n" % i for i in range(100 - len(got), 100)] and len(got) > 12
    assert [d for _, _, d in logfile.read(str(path), tail=10)] == got[-10:]


# -- options ----------------------------------------------------------------------------

@pytest.mark.parametrize("text, size", [
    ("10m", 10_000_000), ("1k", 1000), ("1.5k", 1500), ("100", 100), ("10mb", 10_000_000),
    ("10MiB", 10_000_000), ("2G", 2_000_000_000), ("5 k", 5000),
])
def test_sizes_as_go_units_from_human_size(text, size):
    assert logfile.parse_size(text) == size


@pytest.mark.parametrize("driver, opts, message", [
    ("json-file", {"max-size": "ten"}, "invalid size: 'ten'"),
    ("json-file", {"max-size": "0"}, "max-size must be a positive number"),
    ("json-file", {"max-file": "0"}, "max-file cannot be less than 1"),
    ("json-file", {"compress": "true", "max-size": "1m"},
     "compress cannot be true when max-file is less than 2 or max-size is not set"),
    ("json-file", {"bogus": "1"}, "unknown log opt 'bogus' for json-file log driver"),
    ("syslog", {}, "logger: no log driver named 'syslog' is registered"),
])
def test_bad_log_opts_in_dockerd_words(driver, opts, message):
    with pytest.raises(errdefs.InvalidParameter, match="^" + message.replace("(", r"\(")):
        logfile.validate(driver, opts)


def test_defaults_per_driver(tmp_path):
    assert logfile.validate("json-file", {}) == {"max_size": -1, "max_file": 1,
                                                 "compress": False}
    assert logfile.validate("local", {}) == {"max_size": 20 * 1024 * 1024, "max_file": 5,
                                             "compress": True}
    assert logfile.open_writer("none", None) is None


# -- local format ------------------------------------------------------------------

def test_local_format_records_and_reading(tmp_path):
    path = tmp_path / "container.log"
    writer = LocalWriter(str(path), max_size=-1, max_file=1, compress=False)
    Copier("stdout", writer, clock()).feed(b"out\n")
    err = Copier("stderr", writer, clock(T0 + 5))
    err.feed(b"partial")
    err.close()
    writer.close()
    data = path.read_bytes()
    n, stream, flags, stamp = struct.unpack_from(">IBBq", data)
    assert (n, stream, flags, stamp) == (14, 1, 0, T0)
    assert data[14:18] == b"out\n" and struct.unpack_from(">I", data, 18) == (14,)
    assert list(logfile.read(str(path), driver="local")) == [
        ("stdout", T0, b"out\n"), ("stderr", T0 + 5, b"partial")]


def test_local_tail_walks_back_across_rotations(tmp_path):
    path = tmp_path / "container.log"
    writer = LocalWriter(str(path), max_size=300, max_file=4, compress=False)
    copier = Copier("stdout", writer, clock())
    for i in range(60):
        copier.feed(b"line %03d\n" % i)
    writer.close()
    assert len(os.listdir(tmp_path)) == 4
    every = [d for _, _, d in logfile.read(str(path), driver="local")]
    for n in (1, 5, 17, 40):
        assert [d for _, _, d in logfile.read(str(path), driver="local", tail=n)] == every[-n:]


# -- reading -----------------------------------------------------------------------

@pytest.fixture
def ten(tmp_path):
    path = tmp_path / "c-json.log"
    writer = JSONFileWriter(str(path), max_size=300, max_file=5)
    copier = Copier("stdout", writer, clock(step=1_000_000_000))
    for i in range(10):
        copier.feed(b"line %d\n" % i)
    writer.close()
    assert len(os.listdir(tmp_path)) > 1  # spread over rotated files
    return str(path)


def test_since_until_tail(ten):
    def read(**kw):
        return [d.decode().strip() for _, _, d in logfile.read(ten, **kw)]
    sec = 1_000_000_000
    assert read() == [f"line {i}" for i in range(10)]
    assert read(since=T0 + 3 * sec) == [f"line {i}" for i in range(3, 10)]
    assert read(until=T0 + 3 * sec) == [f"line {i}" for i in range(4)]
    assert read(tail=3) == ["line 7", "line 8", "line 9"]
    assert read(tail=0) == []
    assert read(tail=100) == read()
    assert read(tail=5, since=T0 + 7 * sec) == ["line 7", "line 8", "line 9"]
    entry = next(iter(logfile.read(ten)))
    assert entry == ("stdout", T0, b"line 0\n")


def test_tail_skips_a_line_still_being_written(tmp_path):
    path = tmp_path / "c-json.log"
    _fill(path, 3)
    with open(path, "ab") as f:
        f.write(b'{"log":"torn')
    assert [d for _, _, d in logfile.read(str(path), tail=2)] == [b"line 001\n", b"line 002\n"]
    assert len(list(logfile.read(str(path)))) == 3


def test_follow_sees_new_lines_across_rotation_until_stopped(tmp_path):
    path = tmp_path / "c-json.log"
    writer = JSONFileWriter(str(path), max_size=400, max_file=3)
    copier = Copier("stdout", writer, clock())
    copier.feed(b"before\n")
    done = threading.Event()

    def produce():
        for i in range(20):
            copier.feed(b"live %02d\n" % i)
            time.sleep(0.005)
        writer.close()
        time.sleep(0.2)
        done.set()

    got = []
    thread = threading.Thread(target=produce)
    reader = logfile.read(str(path), tail=1, follow=True, stop=done.is_set, interval=0.01)
    first = next(reader)
    thread.start()
    got = [first] + list(reader)
    thread.join()
    assert [d for _, _, d in got] == [b"before\n"] + [b"live %02d\n" % i for i in range(20)]


def test_follow_ends_past_until(tmp_path):
    path = tmp_path / "c-json.log"
    writer = JSONFileWriter(str(path))
    copier = Copier("stdout", writer, clock(step=10))
    copier.feed(b"a\nb\nc\n")
    got = list(logfile.read(str(path), until=T0 + 10, follow=True, interval=0.01))
    assert [d for _, _, d in got] == [b"a\n", b"b\n"]


def test_aread_follows_with_an_event(tmp_path):
    path = tmp_path / "c-json.log"
    writer = JSONFileWriter(str(path))
    copier = Copier("stdout", writer, clock())
    copier.feed(b"one\n")

    async def go():
        stop = asyncio.Event()
        out = []

        async def consume():
            async for entry in logfile.aread(str(path), follow=True, stop=stop, interval=0.01):
                out.append(entry[2])
        task = asyncio.create_task(consume())
        await asyncio.sleep(0.05)
        copier.feed(b"two\n")
        await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 5)
        return out

    assert asyncio.run(go()) == [b"one\n", b"two\n"]


def test_reading_a_none_log_is_refused():
    with pytest.raises(errdefs.InvalidParameter):
        logfile.LogReader("/nonexistent", driver="none")
