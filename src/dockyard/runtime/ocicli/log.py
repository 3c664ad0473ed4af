"""Logging as runc does it (logrus), so tools that read runc's logs read ours.

    --log-format text   time="2026-11-28T02:46:37Z" level=error msg="..."
    --log-format json   {"level":"error","msg":"...","time":"2026-11-28T02:46:37Z"}

Without --log, entries go to stderr (text). With --log they go to the file,
and a fatal error is *also* printed bare on stderr (runc's fatalWithCode), so
the caller (our shim, containerd) can always show the user the last line.
Debug entries are written only with --debug.
"""

from __future__ import annotations

import os
import sys
import time

# DOCKYARD_RUNTIME_TRACE=1: timestamps of create's phases on stderr, from
# every process (CLOCK_MONOTONIC, comparable across them); =/some/file: appended
# to that file instead (for runtimes whose stderr is a shim's pipe).
_TRACE = os.environ.get("DOCKYARD_RUNTIME_TRACE") or ""


_trace_fd: list = [-1, None]  # the trace file, kept open: (fd, (st_dev, st_ino))


def trace(what: str) -> None:
    if _TRACE:
        line = f"trace {time.monotonic():.4f} pid={os.getpid()} {what}\n".encode()
        try:
            if _TRACE.startswith("/"):
                os.write(_trace_file(), line)
            else:
                os.write(2, line)
        except OSError:
            pass


def _trace_file() -> int:
    """The trace file's fd, opened once, while its path still resolves on the
    host (a process that joined a container's mount namespace reaches it
    only through the fd it had), and checked still to be that file (a
    forked runtime closes the fds it inherits; the number may be reused)."""
    fd, ident = _trace_fd
    if fd >= 0:
        try:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) == ident:
                return fd
        except OSError:
            pass
    fd = os.open(_TRACE, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    st = os.fstat(fd)
    _trace_fd[:] = [fd, (st.st_dev, st.st_ino)]
    return fd


LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _needs_quote(s: str) -> bool:
    return not s or any(not (c.isalnum() or c in "-._/@^+") for c in s)


def _quote(s: str) -> str:
    # Go's strconv.Quote for the printable ASCII and common escapes.
    out = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") \
        .replace("\t", "\\t").replace("\r", "\\r")
    return f'"{out}"'


class Logger:
    def __init__(self, path: str | None = None, fmt: str = "text", debug: bool = False) -> None:
        self.path = path
        self.fmt = fmt
        self.level = LEVELS["debug"] if debug else LEVELS["info"]

    def _format(self, level: str, msg: str) -> str:
        if self.fmt == "json":
            import json

            return json.dumps({"level": level, "msg": msg, "time": _now()},
                              separators=(",", ":")) + "\n"
        m = _quote(msg) if _needs_quote(msg) else msg
        return f'time="{_now()}" level={level} msg={m}\n'

    def log(self, level: str, msg: str) -> None:
        if LEVELS[level] < self.level:
            return
        line = self._format(level, msg).encode()
        try:
            if self.path:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                             0o644)
                try:
                    os.write(fd, line)
                finally:
                    os.close(fd)
            else:
                os.write(2, line)
        except OSError:
            pass

    def debug(self, msg: str) -> None:
        self.log("debug", msg)

    def info(self, msg: str) -> None:
        self.log("info", msg)

    def warning(self, msg: str) -> None:
        self.log("warning", msg)

    def error(self, msg: str) -> None:
        self.log("error", msg)

    def fatal(self, msg: str, code: int = 1) -> "NoReturn":  # noqa: F821
        """Log the error; with --log, also print it bare on stderr; exit."""
        self.error(msg)
        if self.path:
            try:
                sys.stderr.write(msg + "\n")
                sys.stderr.flush()
            except OSError:
                pass
        raise SystemExit(code)
