"""dockerd's JSON progress messages for pull and push, byte for byte.

Two kinds of message go out (moby's pkg/progress and streamformatter):

- a *message*: `{"status": "Pulling from library/busybox", "id": "latest"}`,
  the id left out when empty;
- an *update* of one item's action: `{"status": "Downloading",
  "progressDetail": {"current": N, "total": M}, "progress": "[==>  ] 1MB/2MB",
  "id": "a3ed95caeb02"}`. An update without counts still carries
  `"progressDetail": {}`, which is how clients know the line belongs to the
  item and redraw it in place.

The `progress` text is JSONProgress.String() as the daemon renders it:
with no terminal to measure, Go assumes 200 columns, so the bar is always
there. Items are named by the first 12 hex digits of their digest.

`Reader` wraps a stream and reports what has gone through it at most every
100 ms (and every 1% or 512 kB), plus the last update, as ProgressReader.
"""

from __future__ import annotations

import time
from typing import Any, BinaryIO, Callable

Emit = Callable[[dict], None]

_DECIMAL_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def human_size(size: float) -> str:
    """go-units HumanSize: decimal units, four significant digits."""
    size = float(size)
    i = 0
    while size >= 1000.0 and i < len(_DECIMAL_UNITS) - 1:
        size /= 1000.0
        i += 1
    return "%.4g%s" % (size, _DECIMAL_UNITS[i])


def progress_string(current: int, total: int) -> str:
    """JSONProgress.String() at the daemon's assumed width of 200 columns."""
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        return "%8s" % human_size(current)
    percentage = min(int(current / total * 100) // 2, 50)
    bar = "[" + "=" * percentage + ">" + " " * max(50 - percentage, 0) + "] "
    if current > total:
        numbers = "%8s" % human_size(current)
    else:
        numbers = "%8s/%s" % (human_size(current), human_size(total))
    return bar + numbers


def short_id(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


def message(text: str, id: str = "") -> dict:
    msg: dict[str, Any] = {"status": text}
    if id:
        msg["id"] = id
    return msg


def update(id: str, action: str, current: int = 0, total: int = 0) -> dict:
    detail: dict[str, int] = {}
    if current:
        detail["current"] = current
    if total:
        detail["total"] = total
    msg: dict[str, Any] = {"status": action, "progressDetail": detail}
    text = progress_string(current, total)
    if text:
        msg["progress"] = text
    msg["id"] = id
    return msg


def aux(value: dict) -> dict:
    return {"progressDetail": {}, "aux": value}


class Reader:
    """Reads through to `src`, emitting `action` updates for `id` as it goes."""

    INTERVAL = 0.1
    STEP = 512 * 1024

    def __init__(self, src: BinaryIO, emit: Emit, id: str, action: str, total: int,
                 start: int = 0):
        self._src = src
        self._emit = emit
        self.id = id
        self.action = action
        self.total = total
        self.current = start
        self._last_update = start
        self._last_time = 0.0
        self._step = min(self.STEP, int(total * 0.01)) if total > 0 else self.STEP
        self._ended = False

    def read(self, n: int = -1) -> bytes:
        data = self._src.read(n)
        self.current += len(data)
        if not data and self._ended:
            # Read again past the end (decompressors look for a next member):
            # the end was reported once, as Go's single EOF is.
            return data
        self._ended = not data
        if self.current - self._last_update > self._step or not data:
            self._report(last=not data)
            self._last_update = self.current
        return data

    def _report(self, last: bool) -> None:
        now = time.monotonic()
        if last or self.current == self.total or now - self._last_time >= self.INTERVAL:
            self._last_time = now
            self._emit(update(self.id, self.action, self.current, self.total))

    def finish(self) -> None:
        """A full bar, as Close does when the reader stopped short of `total`."""
        if self.current < self.total:
            self.current = self.total
            self._report(last=False)
