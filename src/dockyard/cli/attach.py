"""What an attached container needs on our side (docker/cli's hijack.go, tty.go,
signals.go and the wait in utils.go): the exit status (Waiter), the streams
between the terminal and the hijacked connection (Streamer), the terminal in
raw mode and its size (RawTerminal, monitor_tty_size), and the signals this
process gets, passed on to the container (SignalProxy).

Threads, because the standard library has no other way to wait on a
terminal and a socket at once without taking over the whole process: one
copies stdin to the connection and half-closes it at EOF, one copies the
connection to stdout/stderr; the main thread waits for the output to end
and then for the exit status. Both copy threads are daemon threads: a stdin
that never ends does not keep the command from exiting.
"""

from __future__ import annotations

import json
import os
import sys
import threading

from dockyard.cli.command import Cli

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from dockyard.client.hijack import Hijacked


class Waiter:
    """`POST /containers/{id}/wait`, whose headers mean the daemon is waiting; the
    body, read later, is the exit status (125 if waiting failed, as docker)."""

    def __init__(self, cli: Cli, container_id: str, removed: bool):
        self.cli = cli
        condition = "removed" if removed else "next-exit"
        self.response = cli.client.request("POST", f"/containers/{container_id}/wait",
                                           query={"condition": condition})
        self._status: int | None = None

    def status(self) -> int:
        if self._status is not None:
            return self._status
        try:
            result = json.loads(self.response.read() or b"{}")
        except (OSError, ValueError) as e:
            self.cli.err.write(f"error waiting for container: {e}\n")
            self._status = 125
            return 125
        error = result.get("Error") or {}
        if error.get("Message"):
            self.cli.err.write(f"Error waiting for container: {error['Message']}\n")
            self._status = 125
        else:
            self._status = int(result.get("StatusCode", 0))
        return self._status

    def close(self) -> None:
        try:
            self.response.close()
        except OSError:
            pass


def is_terminal(stream) -> bool:
    try:
        return os.isatty(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return False


def binary(stream):
    """The byte stream under a text stream (sys.stdout.buffer), or an adapter."""
    stream.flush()
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:
        return buffer
    return _TextSink(stream)


class _TextSink:
    def __init__(self, stream):
        import codecs
        self.stream = stream
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def write(self, data: bytes) -> None:
        self.stream.write(self.decoder.decode(data))

    def flush(self) -> None:
        self.stream.flush()


class Streamer:
    """hijackedIOStreamer: stdin → the connection, the connection → stdout/stderr.

    With a TTY and a terminal on stdin, the terminal is put in raw mode (every
    key goes to the container, which echoes) and restored as soon as the
    output ends, or at close()."""

    def __init__(self, cli: Cli, conn: Hijacked, tty: bool, stdin: bool, stdout: bool,
                 stderr: bool, err_to_out: bool = False):
        self.cli = cli
        self.conn = conn
        self.tty = tty
        self.stdin = stdin
        self.out = binary(cli.out) if stdout else None
        self.err = (binary(cli.out) if err_to_out else binary(cli.err)) if stderr else None
        self.error: Exception | None = None
        self._raw: RawTerminal | None = None
        self._output: threading.Thread | None = None
        self._input: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def start(self) -> None:
        if self.stdin and self.tty and is_terminal(self.cli.stdin):
            self._raw = RawTerminal(self.cli.stdin.fileno())
        if self.out is not None or self.err is not None:
            self._output = threading.Thread(target=self._copy_output, daemon=True)
            self._output.start()
        if self.stdin:
            self._input = threading.Thread(target=self._copy_input, daemon=True)
            self._input.start()

    def _copy_output(self) -> None:
        from dockyard.client import hijack
        try:
            if self.tty:
                hijack.copy_raw(self.conn.read1, self.out)
            else:
                hijack.demultiplex(self.conn.read1, self.out, self.err)
        except BrokenPipeError:
            pass
        except hijack.StreamError as e:
            self.error = e
        finally:
            self.restore()

    def _copy_input(self) -> None:
        read = _input_reader(self.cli.stdin)
        try:
            while chunk := read():
                self.conn.send(chunk)
        except OSError:
            pass
        self.restore()
        self.conn.close_write()

    def wait_output(self) -> None:
        if self._output is not None:
            self._output.join()

    def restore(self) -> None:
        with self._lock:
            if self._raw is not None:
                self._raw.restore()
                self._raw = None

    def close(self) -> None:
        """Give the terminal back, end the connection, let the output thread finish."""
        self.restore()
        with self._lock:
            closed, self._closed = self._closed, True
        if not closed:
            self.conn.close()
        if self._output is not None:
            self._output.join(5)


def _input_reader(stdin):
    """A function returning the next bytes of stdin, b"" at its end."""
    try:
        fd = stdin.fileno()
    except (AttributeError, OSError, ValueError):
        fd = None
    if fd is not None:
        return lambda: os.read(fd, 32768)
    buffer = getattr(stdin, "buffer", None)
    if buffer is not None:
        return lambda: buffer.read1(32768) if hasattr(buffer, "read1") else buffer.read(32768)
    return lambda: stdin.read(32768).encode()


class RawTerminal:
    """moby/term's MakeRaw (cfmakeraw) on a terminal, and its restore."""

    def __init__(self, fd: int):
        import termios
        self.fd = fd
        self.saved = termios.tcgetattr(fd)
        mode = list(self.saved)
        mode[0] &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP
                     | termios.INLCR | termios.IGNCR | termios.ICRNL | termios.IXON)
        mode[1] &= ~termios.OPOST
        mode[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG
                     | termios.IEXTEN)
        mode[2] &= ~(termios.CSIZE | termios.PARENB)
        mode[2] |= termios.CS8
        mode[6] = list(mode[6])
        mode[6][termios.VMIN] = 1
        mode[6][termios.VTIME] = 0
        termios.tcsetattr(fd, termios.TCSANOW, mode)

    def restore(self) -> None:
        import termios
        try:
            termios.tcsetattr(self.fd, termios.TCSANOW, self.saved)
        except termios.error:
            pass


def resize(cli: Cli, container_id: str) -> bool:
    """POST /containers/{id}/resize with the terminal's size; False if it failed."""
    from dockyard.client.api import APIError
    try:
        size = os.get_terminal_size(cli.out.fileno())
    except (AttributeError, OSError, ValueError):
        return True
    if size.lines == 0 and size.columns == 0:
        return True
    try:
        cli.client.request("POST", f"/containers/{container_id}/resize",
                           query={"h": str(size.lines), "w": str(size.columns)}).read()
    except (APIError, OSError):
        return False
    return True


def monitor_tty_size(cli: Cli, container_id: str) -> None:
    """initTtySize and MonitorTtySize: the size now (retried for a moment, as docker
    does, in case the process is not ready yet), and again on every SIGWINCH."""
    if not resize(cli, container_id):
        def retry():
            import time
            for attempt in range(10):
                time.sleep((attempt + 1) * 0.01)
                if resize(cli, container_id):
                    return
            cli.err.write("failed to resize tty, using default size\n")
        threading.Thread(target=retry, daemon=True).start()
    import signal
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGWINCH, lambda *_: threading.Thread(
            target=resize, args=(cli, container_id), daemon=True).start())


class SignalProxy:
    """--sig-proxy: the signals this process gets are sent to the container
    (`POST /containers/{id}/kill?signal=NAME`), as ForwardAllSignals does."""

    SIGNALS = ("SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGALRM",
               "SIGCONT", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGVTALRM", "SIGPROF", "SIGXCPU",
               "SIGXFSZ", "SIGIO", "SIGPWR", "SIGSYS", "SIGTRAP", "SIGABRT")

    def __init__(self, cli: Cli, container_id: str):
        import signal
        self.cli = cli
        self.container_id = container_id
        self.previous: dict[int, Any] = {}
        if threading.current_thread() is not threading.main_thread():
            return
        for name in self.SIGNALS:
            number = getattr(signal, name, None)
            if number is None:
                continue
            try:
                self.previous[number] = signal.signal(number, self._forward)
            except (OSError, ValueError):
                continue

    def _forward(self, number: int, frame) -> None:
        import signal
        name = signal.Signals(number).name.removeprefix("SIG")
        threading.Thread(target=self._kill, args=(name,), daemon=True).start()

    def _kill(self, name: str) -> None:
        try:
            self.cli.client.request("POST", f"/containers/{self.container_id}/kill",
                                    query={"signal": name}).read()
        except Exception:  # noqa: BLE001 - as docker: logged at debug level only
            if self.cli.debug:
                sys.stderr.write(f"Error sending signal {name}\n")

    def stop(self) -> None:
        import signal
        for number, handler in self.previous.items():
            try:
                signal.signal(number, handler)
            except (OSError, ValueError, TypeError):
                pass
        self.previous.clear()
