"""What an attached container needs on our side (docker/cli's hijack.go, tty.go,
signals.go and the wait in utils.go): the exit status (Waiter), the streams
between the terminal and the hijacked connection (Streamer), the terminal in
raw mode and its size (RawTerminal, monitor_tty_size), and the signals this
process gets, passed on to the container (SignalProxy).

With a TTY and stdin, the keys typed are watched for the detach sequence
(--detach-keys, else `detachKeys` of the config file, else ctrl-p,ctrl-q), as
docker's CLI does on its side: what comes before it is sent, the sequence
itself never is, and the command ends at once, leaving the container running
(`run` and `start` exit 0, `attach` says "read escape sequence" and exits 1).

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

    def __init__(self, cli: Cli, container_id: str, removed: bool = False,
                 condition: str | None = None):
        self.cli = cli
        condition = condition or ("removed" if removed else "next-exit")
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

    @classmethod
    def attach(cls, cli: Cli, container: str, tty: bool, stdin: bool, stdout: bool = True,
               stderr: bool = True, err_to_out: bool = False, detach_keys: str = ""
               ) -> "Streamer":
        """POST /containers/{id}/attach, hijacked, and a streamer on it (not started)."""
        from dockyard.cli.command import StatusError
        from dockyard.client import hijack

        try:
            conn = hijack.attach(cli.client, container, stdin=stdin, stdout=stdout,
                                 stderr=stderr, detach_keys=detach_keys)
        except hijack.UpgradeRefused as e:
            raise StatusError(str(e)) from None
        return cls(cli, conn, tty, stdin=stdin, stdout=stdout, stderr=stderr,
                   err_to_out=err_to_out, detach_keys=detach_keys)

    def __init__(self, cli: Cli, conn: Hijacked, tty: bool, stdin: bool, stdout: bool,
                 stderr: bool, err_to_out: bool = False, detach_keys: str = ""):
        self.cli = cli
        self.conn = conn
        self.tty = tty
        self.stdin = stdin
        self.out = binary(cli.out) if stdout else None
        self.err = (binary(cli.out) if err_to_out else binary(cli.err)) if stderr else None
        self.error: Exception | None = None
        self.detached = False
        self.detach_keys = detach_keys
        self._raw: RawTerminal | None = None
        self._output: threading.Thread | None = None
        self._input: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._over = threading.Event()  # the output has ended, or the user detached

    def start(self) -> None:
        if self.stdin and self.tty and is_terminal(self.cli.stdin):
            self._raw = RawTerminal(self.cli.stdin.fileno())
        if self.out is not None or self.err is not None:
            self._output = threading.Thread(target=self._copy_output, daemon=True)
            self._output.start()
        else:
            self._over.set()  # nothing to wait for but the input
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
            self._over.set()

    def _copy_input(self) -> None:
        read = _input_reader(self.cli.stdin)
        proxy = None
        if self.tty:
            from dockyard import detachkeys
            proxy = detachkeys.EscapeProxy(_escape_keys(self.detach_keys))
        try:
            while chunk := read():
                detached = False
                if proxy is not None:
                    chunk, detached = proxy.feed(chunk)
                if chunk:
                    self.conn.send(chunk)
                if detached:
                    self.restore()
                    self.detached = True
                    self._over.set()
                    return
        except OSError:
            pass
        self.restore()
        self.conn.close_write()

    def wait_output(self) -> None:
        """Until the output ends, or the user detaches (`detached`)."""
        self._over.wait()

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


def detach_keys(flag: str) -> str:
    """The detach keys to ask for: the flag's, else the config file's `detachKeys`."""
    if flag:
        return flag
    from dockyard.cli import clientconfig
    keys = clientconfig.load().get("detachKeys")
    return keys if isinstance(keys, str) else ""


def _escape_keys(spec: str) -> bytes:
    """As docker's CLI: a spec it cannot read is warned about and the default used."""
    from dockyard import detachkeys
    if not spec:
        return detachkeys.DEFAULT
    try:
        return detachkeys.to_bytes(spec)
    except ValueError as e:
        sys.stderr.write(f"WARNING: invalid detach escape keys, using default: {e}\n")
        return detachkeys.DEFAULT


INPUT_CHUNK = 1 << 18


def _input_reader(stdin):
    """A function returning the next bytes of stdin, b"" at its end."""
    try:
        fd = stdin.fileno()
    except (AttributeError, OSError, ValueError):
        fd = None
    if fd is not None:
        return lambda: os.read(fd, INPUT_CHUNK)
    buffer = getattr(stdin, "buffer", None)
    if buffer is not None:
        return lambda: (buffer.read1(INPUT_CHUNK) if hasattr(buffer, "read1")
                        else buffer.read(INPUT_CHUNK))
    return lambda: stdin.read(INPUT_CHUNK).encode()


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


def resize(cli: Cli, container_id: str, is_exec: bool = False, grow: int = 0) -> bool:
    """POST /containers/{id}/resize (or /exec/{id}/resize) with the terminal's
    size (plus `grow` rows and columns); False if it failed."""
    from dockyard.client.api import APIError
    try:
        size = os.get_terminal_size(cli.out.fileno())
    except (AttributeError, OSError, ValueError):
        return True
    if size.lines == 0 and size.columns == 0:
        return True
    try:
        kind = "exec" if is_exec else "containers"
        cli.client.request("POST", f"/{kind}/{container_id}/resize",
                           query={"h": str(size.lines + grow),
                                  "w": str(size.columns + grow)}).read()
    except (APIError, OSError):
        return False
    return True


def monitor_tty_size(cli: Cli, container_id: str, is_exec: bool = False) -> None:
    """initTtySize and MonitorTtySize: the size now (retried for a moment, as docker
    does, in case the process is not ready yet), and again on every SIGWINCH.
    `container_id` is an exec's ID with `is_exec`."""
    if not resize(cli, container_id, is_exec):
        def retry():
            import time
            for attempt in range(10):
                time.sleep((attempt + 1) * 0.01)
                if resize(cli, container_id, is_exec):
                    return
            cli.err.write("failed to resize tty, using default size\n")
        threading.Thread(target=retry, daemon=True).start()
    import signal
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGWINCH, lambda *_: threading.Thread(
            target=resize, args=(cli, container_id, is_exec), daemon=True).start())


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


def streamed_status(streamer: Streamer, waiter: Waiter) -> int | None:
    """After the start: the output to its end, then the exit status; None if the
    user detached (the container runs on)."""
    from dockyard.cli.command import StatusError
    streamer.wait_output()
    streamer.close()
    if streamer.detached:
        waiter.close()
        return None
    if streamer.error is not None:
        raise StatusError(str(streamer.error))
    return waiter.status()


# --- the `attach` command ------------------------------------------------------------------------


def _check_state(cli: Cli, container: str) -> dict:
    """inspectContainerAndCheckState."""
    from dockyard.cli.command import StatusError
    c = cli.client.get(f"/containers/{container}/json")
    state = c.get("State") or {}
    if not state.get("Running"):
        raise StatusError("You cannot attach to a stopped container, start it first")
    if state.get("Paused"):
        raise StatusError("You cannot attach to a paused container, unpause it first")
    if state.get("Restarting"):
        raise StatusError("You cannot attach to a restarting container, wait until it is running")
    return c


def attach(cli: Cli, argv: list[str], path: str) -> int:
    """`attach` as docker's RunAttach: wait registered first, the state checked
    (twice: before and after the hijack, so a container that stopped in between
    is not waited on forever), the TTY resized (one row and column more, then
    the real size, which redraws the prompt), the streams until the output
    ends, then the container's exit status."""
    from dockyard.cli.command import PROG, StatusError
    from dockyard.cli.pflag import FlagSet
    fs = FlagSet(path, "[OPTIONS] CONTAINER",
                 "Attach local standard input, output, and error streams to a running container",
                 aliases=f"{PROG} container attach, {PROG} attach", args=(1, 1))
    fs.string("detach-keys", help="Override the key sequence for detaching a container")
    fs.bool("no-stdin", help="Do not attach STDIN")
    fs.bool("sig-proxy", default=True, help="Proxy all received signals to the process")
    o = fs.parse(argv)
    container = o.args[0]
    waiter = Waiter(cli, container, condition="not-running")
    proxy = streamer = None
    try:
        c = _check_state(cli, container)
        config = c.get("Config") or {}
        tty = bool(config.get("Tty"))
        if not o.no_stdin and tty and not is_terminal(cli.stdin):
            raise StatusError("the input device is not a TTY")
        keys = detach_keys(o.detach_keys)
        with_stdin = not o.no_stdin and bool(config.get("OpenStdin"))
        if o.sig_proxy and not tty:
            proxy = SignalProxy(cli, c["Id"])
        streamer = Streamer.attach(cli, container, tty, stdin=with_stdin, detach_keys=keys)
        _check_state(cli, container)
        if tty and is_terminal(cli.out):
            resize(cli, c["Id"], grow=1)
            monitor_tty_size(cli, c["Id"])
        streamer.start()
        status = streamed_status(streamer, waiter)
        if status is None:
            raise StatusError("read escape sequence")
    finally:
        if streamer is not None:
            streamer.close()
        if proxy is not None:
            proxy.stop()
        waiter.close()
    if status != 0:
        raise StatusError("", status)
    return 0
