"""Detach keys: the key sequence that leaves a TTY attach (or exec) without
stopping the process, as docker reads and watches for it (moby/term's ToBytes
and its escape proxy).

    keys = to_bytes("ctrl-p,ctrl-q")        # b"\\x10\\x11"; ValueError if bad
    proxy = EscapeProxy(keys)
    data, detached = proxy.feed(chunk)      # pass `data` on; stop if `detached`

The spec is a comma-separated list of keys, each either one character (its
byte as is: "a", ",", a control character typed literally) or a name:
`ctrl-@`, `ctrl-a` .. `ctrl-z`, `ctrl-[`, `ctrl-\\`, `ctrl-]`, `ctrl-^`,
`ctrl-_` (bytes 0 to 31) and `DEL` (127). Names are lowercase, as docker's.

The proxy holds back bytes that match the start of the sequence: they reach
the process only once a byte that does not continue the sequence arrives
(held bytes first, then that byte, which is not looked at again as the start
of a new sequence, as in docker), or never, if the sequence completes or the
input ends meanwhile. Bytes before the sequence in the same chunk pass.

Pure and stdlib only: the daemon's attach and exec relays and the CLI use it.
"""

from __future__ import annotations

DEFAULT_SPEC = "ctrl-p,ctrl-q"
DEFAULT = b"\x10\x11"

_NAMES = {f"ctrl-{c}": i for i, c in enumerate("@abcdefghijklmnopqrstuvwxyz[\\]^_")}
_NAMES["DEL"] = 127


def to_bytes(spec: str) -> bytes:
    """term.ToBytes: the bytes of a detach-keys spec; ValueError with docker's
    message ("unknown character: 'ctrl-P'") for a key it does not know."""
    codes = bytearray()
    for key in spec.split(","):
        raw = key.encode()
        if len(raw) == 1:  # one byte, as Go's len(): "é" is two and must be named
            codes += raw
        elif key in _NAMES:
            codes.append(_NAMES[key])
        else:
            raise ValueError(f"unknown character: '{key}'")
    return bytes(codes)


class EscapeProxy:
    """Watches a byte stream for `keys` (empty: watches for nothing)."""

    __slots__ = ("keys", "pos")

    def __init__(self, keys: bytes = DEFAULT):
        self.keys = keys
        self.pos = 0  # how many bytes of the sequence are matched and held back

    @property
    def held(self) -> bytes:
        return self.keys[:self.pos]

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(the bytes to pass on now, whether the sequence is complete). Once
        it is, the rest of `data` is dropped: the attach ends there."""
        keys = self.keys
        if not keys:
            return data, False
        first = keys[0]
        if self.pos == 0 and first not in data:  # the usual case: nothing to watch
            return data, False
        out = bytearray()
        start = 0  # data[start:i] passes as it is
        for i, byte in enumerate(data):
            if byte == keys[self.pos]:
                if self.pos == 0:
                    out += data[start:i]
                self.pos += 1
                start = i + 1
                if self.pos == len(keys):
                    return bytes(out), True
            elif self.pos:
                out += keys[:self.pos]
                self.pos = 0
                start = i  # this byte passes, and is not the start of a new sequence
        if self.pos == 0:
            out += data[start:]
        return bytes(out), False
