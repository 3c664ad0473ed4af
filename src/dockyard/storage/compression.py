"""Layer blobs arrive compressed or not; tell which from their first bytes.

Media types lie often enough (docker save archives carry no media type at all,
some registries label zstd layers as gzip), so, like containerd and moby, we
trust the magic number of the stream itself:

    gzip   1f 8b              (RFC 1952)
    zstd   28 b5 2f fd        (RFC 8878, little-endian 0xFD2FB528)
    bzip2  42 5a 68 "BZh"
    xz     fd 37 7a 58 5a 00  "\\xfd7zXZ\\0"

Anything else is taken to be a plain tar.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zlib
from typing import BinaryIO

import zstandard

from dockyard import errdefs

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BZIP2_MAGIC = b"BZh"
XZ_MAGIC = b"\xfd7zXZ\x00"
_SNIFF = 6  # enough bytes for the longest magic (xz)

_CHUNK = 1 << 20


class CorruptStream(errdefs.InvalidParameter):
    """The compressed stream is damaged or ends early."""


def detect(first_bytes: bytes) -> str:
    """"gzip", "zstd" or "none": the compressions an image layer's media type can name."""
    if first_bytes.startswith(GZIP_MAGIC):
        return "gzip"
    if first_bytes.startswith(ZSTD_MAGIC):
        return "zstd"
    return "none"


def _sniff(first_bytes: bytes) -> str:
    kind = detect(first_bytes)
    if kind == "none":
        if first_bytes.startswith(BZIP2_MAGIC):
            return "bzip2"
        if first_bytes.startswith(XZ_MAGIC):
            return "xz"
    return kind


def open_decompressed(f: BinaryIO) -> BinaryIO:
    """A streaming reader of `f`'s decompressed bytes (or of `f` itself, if plain).

    Reads from the current position, without seeking, so pipes and HTTP bodies
    work. Closing the returned reader closes `f`. Damaged or truncated
    compressed data raises CorruptStream when it is read.
    """
    head = _read_exactly(f, _SNIFF)
    source = _Prefixed(head, f)
    kind = _sniff(head)
    if kind == "gzip":
        # GzipFile reads concatenated members too (pigz, parallel gzip writers).
        reader = gzip.GzipFile(fileobj=source, mode="rb")
    elif kind == "zstd":
        # Several frames back to back are one stream (zstd:chunked, seekable zstd).
        reader = zstandard.ZstdDecompressor().stream_reader(
            source, read_size=_CHUNK, read_across_frames=True, closefd=False)
    elif kind == "bzip2":
        reader = bz2.BZ2File(source, mode="rb")
    elif kind == "xz":
        reader = lzma.LZMAFile(source, mode="rb")
    else:
        reader = None
    return io.BufferedReader(_Decompressed(kind, reader, source), buffer_size=_CHUNK)


def _read_exactly(f: BinaryIO, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = f.read(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


class _Prefixed(io.RawIOBase):
    """Gives back the sniffed bytes before the rest of the underlying file."""

    def __init__(self, head: bytes, f: BinaryIO):
        self._head = head
        self._f = f

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        readinto = getattr(self._f, "readinto", None)
        if readinto is not None:  # straight into the caller's buffer: no copy
            return readinto(b) or 0
        data = self._f.read(len(b))
        b[:len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._f.close()
        super().close()


class _Decompressed(io.RawIOBase):
    """Turns every decompressor's error into one kind: CorruptStream."""

    _ERRORS = (EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError, zstandard.ZstdError)

    def __init__(self, kind: str, reader, source: _Prefixed):
        self.kind = kind
        self._reader = reader or source
        self._source = source

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self._reader is self._source:  # not compressed
            return self._source.readinto(b)
        try:
            data = self._reader.read(len(b))
        except self._ERRORS as e:
            raise CorruptStream(f"corrupt {self.kind} stream: {e}") from e
        except OSError as e:  # bz2 reports bad data as a bare OSError
            if self.kind != "bzip2":
                raise
            raise CorruptStream(f"corrupt {self.kind} stream: {e}") from e
        b[:len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            try:
                if self._reader is not self._source:
                    self._reader.close()
            finally:
                self._source.close()
        super().close()
