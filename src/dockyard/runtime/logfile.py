"""Container log files: docker's `json-file` driver, our `local` driver, and `none`.

The shim writes them (`open_writer` + one `Copier` per output stream); the daemon
reads them for `docker logs` (`read`, `aread`). Stdlib only, and cheap to import:
the shim imports this module on every container start.

json-file, byte for byte as dockerd writes it
---------------------------------------------
One JSON object per line, keys in this order:

    {"log":"hi\\n","stream":"stdout","time":"2026-11-28T02:36:04.123456789Z"}

`log` holds the bytes the container wrote, escaped as moby's
jsonlog.ffjsonWriteJSONBytesAsString does: `"` `\\` newline and carriage return
by name; every other byte below 0x20, and `<` `>` `&`, as \\u00XX; U+2028 and
U+2029 as escapes; each byte that is not part of valid UTF-8 as the six
characters \\ufffd; everything else raw UTF-8. `time` is Go's time.RFC3339Nano
in UTC, which drops trailing zeros of the fraction (".1234Z", or no fraction).

Lines are cut as moby's logger.Copier cuts them. A complete line is one entry
ending in "\\n". A line longer than 16 KiB is cut into 16384-byte *partial*
entries that do not end in "\\n", followed by the rest of the line with its
"\\n"; every piece of one line carries the time of its first piece. When the
stream ends in the middle of a line, that tail is written as a partial entry.

Rotation is moby's loggerutils.LogFile: before an entry is written, if the file
already holds max-size bytes or more, `<log>.N-1` is removed, `<log>.i` renamed
to `<log>.i+1`, `<log>` to `<log>.1`, and a new `<log>` begun. With max-file=1
the file is truncated instead. With compress=true every rotated file becomes
`<log>.N.gz`, whose gzip header's extra field holds `{"lastTime":"<RFC3339Nano>"}`.

local, our own compact format
-----------------------------
A sequence of records, no file header; integers big-endian:

    uint32  N        length of what follows up to the trailing copy of N
    uint8   stream   1 = stdout, 2 = stderr
    uint8   flags    bit 0: partial (the bytes do not end a line); others 0
    int64   time     nanoseconds since the Unix epoch, UTC
    bytes   message  N - 10 bytes, as written; a complete line keeps its "\\n"
    uint32  N        again, so `--tail` can walk the file backwards

Rotation and cutting are as json-file; the defaults are docker's for its own
`local` driver: max-size=20m, max-file=5, compress=true.
"""

from __future__ import annotations

import functools
import os
import struct
import time
TYPE_CHECKING = False  # typing costs ~4 ms to import; the shim imports this module
if TYPE_CHECKING:
    from typing import Any, AsyncIterator, Callable, Iterator

from dockyard import errdefs

Entry = tuple[str, int, bytes]  # (stream, time in ns since the epoch, bytes)

PARTIAL_SIZE = 16 * 1024  # moby logger.Copier's defaultBufSize
STREAMS = {"stdout": 1, "stderr": 2}
_STREAM_NAMES = {1: "stdout", 2: "stderr"}
_LOCAL = struct.Struct(">IBBq")  # N, stream, flags, time
_LOCAL_N = struct.Struct(">I")
_LOCAL_FIXED = 10  # stream + flags + time

DRIVERS = ("json-file", "local", "none")
_OPTS = {
    "json-file": {"max-size", "max-file", "compress", "labels", "labels-regex", "env",
                  "env-regex", "tag"},
    "local": {"max-size", "max-file", "compress"},
    "none": set(),
}


# -- times ---------------------------------------------------------------------

def format_time(ns: int, fixed: bool = False) -> str:
    """RFC 3339 in UTC with nanoseconds: Go's RFC3339Nano (trailing zeros dropped)
    or, with `fixed`, moby's RFC3339NanoFixed (always nine digits, as `logs -t`)."""
    sec, frac = divmod(ns, 1_000_000_000)
    base = _second(sec)
    if fixed:
        return f"{base}.{frac:09d}Z"
    if not frac:
        return base + "Z"
    return f"{base}.{frac:09d}".rstrip("0") + "Z"


@functools.lru_cache(maxsize=4)
def _second(sec: int) -> str:
    """The date and time of day of a second (every log line needs one; most
    lines share theirs with the previous one)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))


def _days_from_civil(y: int, m: int, d: int) -> int:
    # Howard Hinnant's algorithm: days since 1970-01-01 of a proleptic Gregorian date.
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


@functools.lru_cache(maxsize=64)
def _civil_seconds(text: str) -> int:
    """`YYYY-MM-DDThh:mm:ss` -> seconds since the epoch (the lines of a log
    share their seconds with their neighbours: worth remembering)."""
    if len(text) != 19:
        raise ValueError(text)
    return (_days_from_civil(int(text[0:4]), int(text[5:7]), int(text[8:10])) * 86400
            + int(text[11:13]) * 3600 + int(text[14:16]) * 60 + int(text[17:19]))


def parse_time(text: str) -> int:
    """RFC 3339 (any fraction, `Z` or `+hh:mm`) -> nanoseconds since the epoch."""
    if text[-1:] == "Z" and text[19:20] == "." and text[20:-1].isdigit():
        try:  # the form every log line has: RFC3339Nano in UTC
            return _civil_seconds(text[:19]) * 1_000_000_000 + int(text[20:-1].ljust(9, "0")[:9])
        except ValueError:
            pass
    try:
        secs = _civil_seconds(text[:19])
        i, frac = 19, 0
        if i < len(text) and text[i] in ".,":
            j = i + 1
            while j < len(text) and text[j].isdigit():
                j += 1
            frac = int((text[i + 1:j] + "000000000")[:9])
            i = j
        zone = text[i:]
        if zone not in ("Z", "z"):
            sign = 1 if zone[0] == "+" else -1 if zone[0] == "-" else 0
            if not sign or len(zone) != 6:
                raise ValueError
            secs -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    except (ValueError, IndexError):
        raise ValueError(f"invalid RFC 3339 time: {text!r}") from None
    return secs * 1_000_000_000 + frac


# -- options ---------------------------------------------------------------------

def parse_size(text: str) -> int:
    """go-units FromHumanSize, as dockerd reads max-size: decimal units, so
    "10m" is 10,000,000 bytes; "10mb", "10MiB", "1.5k" and "100" work too."""
    s = text.strip()
    i = 0
    while i < len(s) and (s[i].isdigit() or s[i] == "."):
        i += 1
    number, rest = s[:i], s[i:].lstrip(" ").lower()
    unit = rest[:1] if rest[:1] in ("k", "m", "g", "t", "p") else ""
    rest = rest[len(unit):]
    if rest.startswith("i"):
        rest = rest[1:]
    if rest not in ("", "b") or not number or number[0] == "." or ".." in number \
            or number.endswith("."):
        raise errdefs.InvalidParameter(f"invalid size: '{text}'")
    mul = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}[unit]
    return int(float(number) * mul)


def validate(driver: str, opts: dict[str, str]) -> dict[str, Any]:
    """Check a driver's log-opts as dockerd does and return the rotation settings
    {"max_size": bytes or -1, "max_file": n, "compress": bool}."""
    if driver not in _OPTS:
        raise errdefs.InvalidParameter(f'logger: no log driver named \'{driver}\' is registered')
    for key in opts:
        if key not in _OPTS[driver]:
            raise errdefs.InvalidParameter(f"unknown log opt '{key}' for {driver} log driver")
    local = driver == "local"
    max_size = 20 * 1024 * 1024 if local else -1
    if "max-size" in opts:
        max_size = parse_size(opts["max-size"])
        if max_size <= 0:
            raise errdefs.InvalidParameter("max-size must be a positive number")
    max_file = 5 if local else 1
    if "max-file" in opts:
        try:
            max_file = int(opts["max-file"])
        except ValueError:
            raise errdefs.InvalidParameter(
                f'strconv.Atoi: parsing "{opts["max-file"]}": invalid syntax') from None
        if max_file < 1:
            raise errdefs.InvalidParameter("max-file cannot be less than 1")
    compress = local and max_file > 1
    if "compress" in opts:
        value = opts["compress"].lower()
        if value not in ("1", "t", "true", "0", "f", "false"):
            raise errdefs.InvalidParameter(
                f'strconv.ParseBool: parsing "{opts["compress"]}": invalid syntax')
        compress = value in ("1", "t", "true")
        if compress and (max_file == 1 or max_size == -1):
            raise errdefs.InvalidParameter(
                "compress cannot be true when max-file is less than 2 or max-size is not set")
    return {"max_size": max_size, "max_file": max_file, "compress": compress}


# -- writing ---------------------------------------------------------------------

def _json_escapes() -> dict[int, str]:
    table = {c: "\\u%04x" % c for c in range(0x20)}
    table.update({0x0A: "\\n", 0x0D: "\\r", ord('"'): '\\"', ord("\\"): "\\\\",
                  ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026",
                  0x2028: "\\u2028", 0x2029: "\\u2029"})
    # decode(..., "surrogateescape") turns each byte of invalid UTF-8 into one lone
    # surrogate U+DC80..U+DCFF; Go's utf8.DecodeRune likewise rejects one byte at a
    # time, and moby writes \ufffd for each.
    table.update({c: "\\ufffd" for c in range(0xDC80, 0xDD00)})
    return table


_ESCAPES = _json_escapes()


# Bytes copied as they are: printable ASCII but for the quote, the backslash and
# what Go's encoder escapes for HTML. (Controls need escapes, non-ASCII bytes a
# UTF-8 check.)
_PLAIN = bytes(b for b in range(0x20, 0x80) if b not in b'"\\<>&')


def json_escape(data: bytes) -> bytes:
    """The inside of `json_string(data)`: most log lines are plain ASCII, which
    is copied as it is (deleting the plain bytes leaves nothing: a fast test);
    the rest goes through the escape table."""
    if not data.translate(None, _PLAIN):
        return data
    return data.decode("utf-8", "surrogateescape").translate(_ESCAPES).encode("utf-8")


def json_string(data: bytes) -> bytes:
    """`data` as a JSON string literal, escaped exactly as moby's jsonlog."""
    return b'"' + json_escape(data) + b'"'


class LogFile:
    """One log file and its rotated predecessors (moby loggerutils.LogFile)."""

    def __init__(self, path: str, max_size: int = -1, max_file: int = 1,
                 compress: bool = False, mode: int = 0o640):
        self.path, self.max_size, self.max_file = path, max_size, max_file
        self.compress, self.mode = compress, mode
        self.last_time = 0
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, mode)
        self.size = os.lseek(self.fd, 0, os.SEEK_END)

    def write(self, record: bytes, time_ns: int) -> None:
        self.write_all([(record, time_ns)])

    def write_all(self, records: list[tuple[bytes, int]]) -> None:
        """Append (record, time) pairs in as few write(2)s as rotation allows:
        the file is rotated before the record that finds it at max_size, as
        moby's LogFile checks before each message."""
        batch: list[bytes] = []
        size = self.size
        for record, time_ns in records:
            if self.max_size > 0 and size >= self.max_size:
                self._append(b"".join(batch))
                batch.clear()
                self._rotate()
                size = 0
            batch.append(record)
            size += len(record)
            self.last_time = time_ns
        self._append(b"".join(batch))

    def _append(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
            self.size += n

    def _rotate(self) -> None:
        os.close(self.fd)
        self.fd = -1
        if self.max_file >= 2:
            ext = ".gz" if self.compress else ""
            _remove(f"{self.path}.{self.max_file - 1}{ext}")
            for i in range(self.max_file - 1, 1, -1):
                _rename(f"{self.path}.{i - 1}{ext}", f"{self.path}.{i}{ext}")
            _rename(self.path, self.path + ".1")
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC
                          | os.O_CLOEXEC, self.mode)
        self.size = 0
        if self.max_file >= 2 and self.compress:
            _gzip_file(self.path + ".1", self.last_time)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _rename(src: str, dst: str) -> None:
    try:
        os.rename(src, dst)
    except FileNotFoundError:
        pass


def _gzip_file(path: str, last_time: int) -> None:
    """`path` -> `path.gz` with moby's {"lastTime": ...} in the header's FEXTRA
    field (Python's gzip module cannot write one, so the member is built here)."""
    import zlib

    extra = b'{"lastTime":"' + format_time(last_time).encode() + b'"}'
    header = (b"\x1f\x8b\x08\x04" + struct.pack("<I", 0) + b"\x00\xff"
              + struct.pack("<H", len(extra)) + extra)
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    crc = size = 0
    tmp = path + ".gz.tmp"
    with open(path, "rb") as src, open(tmp, "wb") as dst:
        os.fchmod(dst.fileno(), 0o640)
        dst.write(header)
        while chunk := src.read(1 << 16):
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
            dst.write(deflate.compress(chunk))
        dst.write(deflate.flush() + struct.pack("<II", crc, size & 0xFFFFFFFF))
    os.replace(tmp, path + ".gz")
    os.unlink(path)


class JSONFileWriter:
    """The json-file driver: `log(stream, line, time_ns, partial)` per message."""

    driver = "json-file"

    def __init__(self, path: str, max_size: int = -1, max_file: int = 1,
                 compress: bool = False):
        self.file = LogFile(path, max_size, max_file, compress)
        self.pending: list[tuple[bytes, int]] = []  # written at flush()

    def log(self, stream: str, line: bytes, time_ns: int, partial: bool) -> None:
        # moby's marshalMessage adds back the newline the copier stripped
        self.pending.append((b'{"log":"' + json_escape(line) + (b'' if partial else b'\\n')
                             + b'","stream":"' + stream.encode() + b'","time":"'
                             + format_time(time_ns).encode() + b'"}\n', time_ns))

    def flush(self) -> None:
        """Write what `log` was given (the copier flushes after each chunk of output)."""
        pending, self.pending = self.pending, []
        if pending:
            self.file.write_all(pending)

    def close(self) -> None:
        self.flush()
        self.file.close()


class LocalWriter:
    """Our `local` driver (format in the module docstring)."""

    driver = "local"

    def __init__(self, path: str, max_size: int = 20 * 1024 * 1024, max_file: int = 5,
                 compress: bool = True):
        self.file = LogFile(path, max_size, max_file, compress)
        self.pending: list[tuple[bytes, int]] = []

    def log(self, stream: str, line: bytes, time_ns: int, partial: bool) -> None:
        if not partial:
            line += b"\n"
        n = _LOCAL_FIXED + len(line)
        self.pending.append((_LOCAL.pack(n, STREAMS[stream], 1 if partial else 0, time_ns)
                             + line + _LOCAL_N.pack(n), time_ns))

    flush = JSONFileWriter.flush

    def close(self) -> None:
        self.flush()
        self.file.close()


def open_writer(driver: str, path: str | None, opts: dict[str, str] | None = None):
    """The writer for `driver`, or None for `none`."""
    settings = validate(driver, opts or {})
    if driver == "none":
        return None
    if not path:
        raise errdefs.InvalidParameter(f"the {driver} log driver needs a log path")
    cls = JSONFileWriter if driver == "json-file" else LocalWriter
    return cls(path, settings["max_size"], settings["max_file"], settings["compress"])


class Copier:
    """moby's logger.Copier for one stream: raw bytes in, log messages out.

    Complete lines go out as they are found; a line that fills the 16 KiB buffer
    without a newline goes out in PARTIAL_SIZE pieces; at end of stream the
    unterminated rest goes out as a partial message. All pieces of one line carry
    the time of the first."""

    def __init__(self, stream: str, writer, clock: Callable[[], int] = time.time_ns):
        self.stream, self.writer, self.clock = stream, writer, clock
        self.pending = bytearray()
        self.partial_time: int | None = None

    def feed(self, data: bytes) -> None:
        self.pending += data
        self._split(eof=False)

    def close(self) -> None:
        self._split(eof=True)

    def _split(self, eof: bool) -> None:
        buf, start, size = self.pending, 0, PARTIAL_SIZE
        try:
            while True:
                # moby's buffer holds at most 16 KiB: a newline past that is not seen yet
                nl = buf.find(b"\n", start, start + size)
                if nl >= 0:
                    stamp = self.partial_time if self.partial_time is not None else self.clock()
                    line, start = bytes(buf[start:nl]), nl + 1
                    self.partial_time = None
                    self.writer.log(self.stream, line, stamp, False)
                elif len(buf) - start >= size or (eof and len(buf) > start):
                    piece = bytes(buf[start:start + size])
                    start += len(piece)
                    if self.partial_time is None:
                        self.partial_time = self.clock()
                    self.writer.log(self.stream, piece, self.partial_time, True)
                else:
                    break
            flush = getattr(self.writer, "flush", None)
            if flush is not None:
                flush()  # one write(2) for all the lines of this chunk
        finally:  # messages the writer failed on (disk full) are dropped, as dockerd does
            del buf[:start]


# -- reading ---------------------------------------------------------------------

def _decode_json(line: bytes) -> Entry | None:
    import json

    try:
        obj = json.loads(line)
        return (obj.get("stream", ""), parse_time(obj["time"]),
                obj.get("log", "").encode("utf-8", "replace"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # a torn or foreign line: skipped, as a reader of a live file must


def _decode_local(payload: bytes) -> Entry:
    stream, _flags, stamp = struct.unpack_from(">BBq", payload)
    return _STREAM_NAMES.get(stream, str(stream)), stamp, payload[_LOCAL_FIXED:]


def _parse(buf: bytes | bytearray, driver: str) -> tuple[list[Entry], int]:
    """Complete entries at the start of `buf`, and how many bytes they took."""
    out: list[Entry] = []
    pos = 0
    if driver == "json-file":
        while (nl := buf.find(b"\n", pos)) >= 0:
            entry = _decode_json(bytes(buf[pos:nl]))
            if entry is not None:
                out.append(entry)
            pos = nl + 1
    else:
        while len(buf) - pos >= 4:
            (n,) = _LOCAL_N.unpack_from(buf, pos)
            if len(buf) - pos < n + 8:
                break
            out.append(_decode_local(bytes(buf[pos + 4:pos + 4 + n])))
            pos += n + 8
    return out, pos


def _rotated(path: str) -> list[str]:
    """Existing rotated files, oldest first (`<log>.N[.gz]` ... `<log>.1[.gz]`)."""
    found: dict[int, str] = {}
    prefix = os.path.basename(path) + "."
    try:
        names = os.listdir(os.path.dirname(path) or ".")
    except FileNotFoundError:
        return []
    for name in names:
        if name.startswith(prefix):
            suffix = name[len(prefix):]
            num = suffix[:-3] if suffix.endswith(".gz") else suffix
            if num.isdigit() and int(num) > 0:
                found[int(num)] = os.path.join(os.path.dirname(path), name)
    return [found[k] for k in sorted(found, reverse=True)]


def _gzip_last_time(path: str) -> int | None:
    """The lastTime moby (and we) put in a rotated file's gzip header, if any."""
    import json

    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:2] != b"\x1f\x8b" or not head[3] & 0x04:
            return None
        extra = f.read(struct.unpack_from("<H", head, 10)[0])
    try:
        return parse_time(json.loads(extra)["lastTime"])
    except (ValueError, KeyError, TypeError):
        return None


def _file_bytes(path: str) -> bytes:
    if path.endswith(".gz"):
        import gzip

        with gzip.open(path, "rb") as f:
            return f.read()
    with open(path, "rb") as f:
        return f.read()


def _tail_file(f, size: int, n: int, driver: str) -> list[Entry]:
    """The last `n` entries of an open file's first `size` bytes, read backwards."""
    if driver == "local":  # hop from record to record by the trailing lengths
        raw: list[bytes] = []
        pos = size
        while pos >= 8 and len(raw) < n:
            f.seek(pos - 4)
            (length,) = _LOCAL_N.unpack(f.read(4))
            start = pos - 8 - length
            if start < 0:
                break
            f.seek(start)
            raw.append(f.read(length + 8))
            pos = start
        return _parse(b"".join(reversed(raw)), driver)[0]
    # json-file: count newlines from the end, a block at a time
    pos, chunks, lines = size, [], 0
    while pos > 0 and lines <= n:
        step = min(1 << 16, pos)
        pos -= step
        f.seek(pos)
        chunk = f.read(step)
        chunks.append(chunk)
        lines += chunk.count(b"\n")
    data = b"".join(reversed(chunks))
    data = data[:data.rfind(b"\n") + 1]  # drop a line still being written
    last = data.split(b"\n")[:-1][-n:]
    return _parse(b"\n".join(last) + b"\n" if last else b"", driver)[0]


class LogReader:
    """Reads one container's log: what is there (`batches`), then what comes
    (`poll`). `since`/`until` are nanoseconds since the epoch; `tail` is the
    number of entries from the end (None or negative: all; 0: none)."""

    def __init__(self, path: str, driver: str = "json-file", since: int | None = None,
                 until: int | None = None, tail: int | None = None):
        if driver not in ("json-file", "local"):
            raise errdefs.InvalidParameter(
                f'configured logging driver does not support reading: "{driver}"')
        self.path, self.driver = path, driver
        self.since, self.until, self.tail = since, until, tail
        self.done = False
        # Not atomic against a rotation in between (dockerd holds a lock the
        # writer takes; the writer here is another process): a line may be
        # missed or read twice if the file rotates at this very moment.
        self.rotated = _rotated(path)
        try:
            self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            self.offset = os.fstat(self.fd).st_size
            self.ino = os.fstat(self.fd).st_ino
        except FileNotFoundError:
            self.fd, self.offset, self.ino = -1, 0, 0
        self.buf = bytearray()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _filter(self, entries: list[Entry]) -> list[Entry]:
        out = []
        for e in entries:
            if self.since is not None and e[1] < self.since:
                continue
            if self.until is not None and e[1] > self.until:
                self.done = True
                break
            out.append(e)
        return out

    def batches(self) -> Iterator[list[Entry]]:
        """The entries already written, oldest first, in lists."""
        if self.tail is not None and self.tail >= 0:
            yield self._filter(self._tail(self.tail)) if self.tail else []
            return
        for path in self.rotated:
            if self.done:
                return
            if self.since is not None and path.endswith(".gz"):
                last = _gzip_last_time(path)
                if last is not None and last < self.since:
                    continue
            try:
                data = _file_bytes(path)
            except FileNotFoundError:
                continue  # rotated away while we read
            yield self._filter(_parse(data, self.driver)[0])
        if self.fd >= 0:
            pos = 0
            while pos < self.offset and not self.done:
                chunk = os.pread(self.fd, min(1 << 20, self.offset - pos), pos)
                if not chunk:
                    break
                pos += len(chunk)
                self.buf += chunk
                entries, used = _parse(self.buf, self.driver)
                del self.buf[:used]
                yield self._filter(entries)

    def _tail(self, n: int) -> list[Entry]:
        """The last `n` entries across the current file and the rotated ones."""
        out: list[Entry] = []
        files = [(self.path, self.offset)] if self.fd >= 0 else []
        files += [(p, None) for p in reversed(self.rotated)]
        for path, end in files:
            if len(out) >= n:
                break
            need = n - len(out)
            try:
                if path.endswith(".gz"):  # bounded by max-size: decompress it whole
                    out = _parse(_file_bytes(path), self.driver)[0][-need:] + out
                    continue
                # the current file through our fd: it may have been rotated since
                f = os.fdopen(os.dup(self.fd), "rb") if end is not None else open(path, "rb")
            except FileNotFoundError:
                continue  # rotated away while we read
            with f:
                size = end if end is not None else os.fstat(f.fileno()).st_size
                out = _tail_file(f, size, need, self.driver) + out
        return out

    def poll(self) -> list[Entry]:
        """Entries written since the last call; follows rotation and truncation."""
        if self.done:
            return []
        out: list[Entry] = []
        if self.fd < 0:
            try:
                self.fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return out
            self.offset, self.ino = 0, os.fstat(self.fd).st_ino
        while True:
            out += self._read_new()
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                break  # between the rename and the new file: next poll
            if st.st_ino != self.ino:  # rotated: finish the old file, then the new
                out += self._read_new()
                os.close(self.fd)
                self.fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
                self.offset, self.ino = 0, os.fstat(self.fd).st_ino
                self.buf.clear()
                continue
            if st.st_size < self.offset:  # max-file=1: truncated in place
                self.offset = 0
                self.buf.clear()
                continue
            break
        return self._filter(out)

    def _read_new(self) -> list[Entry]:
        out: list[Entry] = []
        while True:
            chunk = os.pread(self.fd, 1 << 20, self.offset)
            if not chunk:
                return out
            self.offset += len(chunk)
            self.buf += chunk
            entries, used = _parse(self.buf, self.driver)
            del self.buf[:used]
            out += entries


def read(path: str, since: int | None = None, until: int | None = None,
         tail: int | None = None, follow: bool = False, *, driver: str = "json-file",
         stop: Callable[[], bool] | None = None, interval: float = 0.1) -> Iterator[Entry]:
    """Yield (stream, time_ns, bytes) from a container's log, oldest first.

    With `follow`, keep yielding new entries until `until` is passed or `stop()`
    returns true (checked between polls; what was written before it turned true
    is still yielded). Without `stop`, following ends only when the caller stops
    iterating."""
    reader = LogReader(path, driver, since, until, tail)
    try:
        for batch in reader.batches():
            yield from batch
        while follow and not reader.done:
            finished = stop is not None and stop()
            yield from reader.poll()
            if finished:
                return
            time.sleep(interval)
    finally:
        reader.close()


async def aread(path: str, since: int | None = None, until: int | None = None,
                tail: int | None = None, follow: bool = False, *, driver: str = "json-file",
                stop: Callable[[], bool] | None = None,
                interval: float = 0.1) -> AsyncIterator[Entry]:
    """`read` for asyncio: file reads run in a worker thread, waits are asyncio
    sleeps. `stop` may also be an asyncio.Event."""
    import asyncio

    if isinstance(stop, asyncio.Event):
        stop = stop.is_set
    reader = await asyncio.to_thread(LogReader, path, driver, since, until, tail)
    try:
        batches = reader.batches()
        while (batch := await asyncio.to_thread(next, batches, None)) is not None:
            for entry in batch:
                yield entry
        while follow and not reader.done:
            finished = stop is not None and stop()
            for entry in await asyncio.to_thread(reader.poll):
                yield entry
            if finished:
                return
            await asyncio.sleep(interval)
    finally:
        reader.close()
