"""The daemon's side of the shim: start one, talk to it, find it again.

    handle = await spawn(id=..., bundle=..., runtime=..., socket=..., exit_file=...)
    reader, writer = await handle.attach(stdin=True, stdout=True, stderr=True)
    await handle.start()
    result = await handle.wait()   # {"exit_code": 0, "finished_at": ..., "oom_killed": False}
    pid, reader, writer = await handle.exec("e1", process, stdin=True)  # an OCI process
    result = await handle.wait(exec_id="e1")

Shims are forked by the fork server (dockyard.runtime.shim.forkserver), one
per daemon process, started by the first `spawn` (or ahead of it, by
`start_fork_server()`, so that the first container does not wait for it);
`spawn(python=...)` or USE_FORK_SERVER = False starts each shim as a program.

After a daemon restart, `await connect(socket_path, exit_file)` finds a live
shim again (it raises OSError when none answers there). Every request is one
short UNIX connection (protocol in dockyard.runtime.shim); a handle holds no
connection of its own, so it stays valid across the shim's lifetime and
`wait()` can be asked any number of times. Once the shim is gone, `wait()`
answers from the exit file, which the shim writes before it answers waiters
and before it removes its socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import struct
import sys
import threading

from dockyard import errdefs

FRAME = struct.Struct(">BxxxI")  # stream (1 stdout, 2 stderr), 3 zero bytes, size
STDOUT, STDERR = 1, 2
_UNIX_PATH_MAX = 107
USE_FORK_SERVER = True


class RuntimeFailed(errdefs.System):
    """The runtime refused (create, start, kill): the message is the runtime's own,
    e.g. `runc create failed: unable to start container process: exec: "nosuch":
    executable file not found in $PATH`."""


async def spawn(*, id: str, bundle: str, runtime: str, socket: str, exit_file: str,
                runtime_root: str | None = None, stdin: bool = False, tty: bool = False,
                log_driver: str = "json-file", log_path: str | None = None,
                log_opts: dict[str, str] | None = None, shim_log: str | None = None,
                python: str | None = None, timeout: float = 60.0,
                exec_runtime: bool = False) -> ShimHandle:
    """Start a shim for the bundle and return once the runtime has created the
    container (its init waits for `start`). Raises RuntimeFailed with the
    runtime's message if create fails; no shim is left running then.

    The shim's own diagnostics go to `shim_log` (default <bundle>/shim.log).
    Our own runtime runs inside the shim's forks unless `exec_runtime`."""
    flags = ["--id", id, "--bundle", bundle, "--runtime", runtime, "--socket", socket,
             "--exit-file", exit_file, "--log-driver", log_driver]
    if runtime_root:
        flags += ["--runtime-root", runtime_root]
    if stdin:
        flags.append("--stdin")
    if tty:
        flags.append("--tty")
    if exec_runtime:
        flags.append("--exec-runtime")
    if log_path:
        flags += ["--log-path", log_path]
    for key, value in (log_opts or {}).items():
        flags += ["--log-opt", f"{key}={value}"]
    status_r, status_w = os.pipe()
    shim_log = shim_log or os.path.join(bundle, "shim.log")
    try:
        log_fd = os.open(shim_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
    except OSError:
        log_fd = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    proc = None
    try:
        if python is not None or not USE_FORK_SERVER or not _fork(flags, status_w, log_fd):
            argv = [python or sys.executable, "-m", "dockyard.runtime.shim", *flags,
                    "--status-fd", str(status_w)]
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=log_fd, pass_fds=(status_w,))
    except BaseException:
        os.close(status_r)
        raise
    finally:
        os.close(status_w)
        os.close(log_fd)
    try:
        line = await asyncio.wait_for(_read_line(status_r), timeout)
    except asyncio.TimeoutError:
        raise RuntimeFailed(f"the shim did not report within {timeout:g}s") from None
    finally:
        if proc is not None:
            await proc.wait()  # the first of the shim's forks: it exits at once
    try:
        status = json.loads(line)
    except ValueError:
        raise RuntimeFailed(f"shim failed: {_tail(shim_log) or 'no status reported'}") from None
    if not status.get("ok"):
        if status.get("shim_pid"):
            await _gone(int(status["shim_pid"]), 5.0)
        raise RuntimeFailed(status.get("error") or "runtime create failed")
    return ShimHandle(socket, exit_file=exit_file, pid=int(status["pid"]),
                      shim_pid=int(status.get("shim_pid") or 0), id=id)


# -- the fork server ------------------------------------------------------------------

class _ForkServer:
    """`python -m dockyard.runtime.shim --fork-server FD`, our child, and our end
    of its socket (protocol in dockyard.runtime.shim.forkserver)."""

    def __init__(self) -> None:
        import socket as socket_
        import subprocess

        ours, theirs = socket_.socketpair(socket_.AF_UNIX, socket_.SOCK_SEQPACKET)
        try:
            # Its own session: a ^C meant for the daemon's terminal is not for
            # it. Its stderr is ours: it says little, and only when it fails.
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "dockyard.runtime.shim", "--fork-server",
                 str(theirs.fileno())],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),), start_new_session=True)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.sock = ours
        self.owner = os.getpid()

    def usable(self) -> bool:
        return (self.owner == os.getpid() and self.sock.fileno() >= 0
                and self.proc.poll() is None)

    def send(self, flags: list[str], fds: list[int]) -> None:
        import socket as socket_

        socket_.send_fds(self.sock, [json.dumps(flags).encode()], fds)

    def close(self) -> None:
        self.sock.close()  # EOF: it exits
        try:
            self.proc.wait(5)
        except Exception:  # noqa: BLE001 - (TimeoutExpired) it is in the way no more
            self.proc.kill()
            self.proc.wait()


_server: _ForkServer | None = None
_server_lock = threading.Lock()
_starts_left = 3  # a server that keeps dying is given up on: shims are started then


def start_fork_server() -> bool:
    """Start the fork server now, if it does not run yet (it takes as long as
    starting a shim: better at daemon start than at the first container).
    False when it cannot run; spawn() then starts shims as programs."""
    return _fork_server() is not None


def stop_fork_server() -> None:
    """Stop the fork server (shims it forked live on)."""
    global _server
    with _server_lock:
        if _server is not None and _server.owner == os.getpid():
            _server.close()
        _server = None


def prepare_spawn() -> None:
    """Say that a spawn() may come soon: call it when a container is created
    (`docker run` starts it ~10 ms later) and when its start begins. The fork
    server then gets the kernel ready for the container's cgroup attach, which
    otherwise waits 10-15 ms for an RCU grace period, and keeps it ready for
    0.1 s (see dockyard.runtime.shim.forkserver). Cheap: one datagram; never
    blocks, never fails."""
    import socket as socket_

    if not USE_FORK_SERVER:
        return
    server = _fork_server()
    if server is None:
        return
    try:
        server.sock.send(b'"prime"', socket_.MSG_DONTWAIT)
    except OSError:
        pass


def _fork_server() -> _ForkServer | None:
    global _server, _starts_left
    with _server_lock:
        if _server is not None and _server.usable():
            return _server
        if _server is not None and _server.owner == os.getpid():
            _server.sock.close()
            _server.proc.poll()  # (reaped, if it has exited)
        _server = None
        if _starts_left <= 0:
            return None
        if _starts_left == 3:
            import atexit

            atexit.register(stop_fork_server)
        _starts_left -= 1
        try:
            _server = _ForkServer()
        except OSError:
            return None
        return _server


def _fork(flags: list[str], status_w: int, log_fd: int) -> bool:
    """Ask the fork server for a shim; False if there is none to ask."""
    for _ in range(2):  # a server found dead is started again once
        server = _fork_server()
        if server is None:
            return False
        try:
            server.send(flags, [status_w, log_fd])
            return True
        except OSError:
            with _server_lock:
                server.sock.close()
    return False


async def connect(socket_path: str, exit_file: str | None = None) -> ShimHandle:
    """A handle on the live shim serving `socket_path` (after a daemon restart).
    Raises OSError (FileNotFoundError, ConnectionRefusedError) when none answers:
    the container has exited; its exit file says how."""
    handle = ShimHandle(socket_path, exit_file=exit_file)
    state = await handle.state(fallback=False)
    handle.pid = int(state.get("pid") or 0)
    return handle


class ShimHandle:
    """One container's shim, as the daemon sees it."""

    def __init__(self, socket_path: str, *, exit_file: str | None = None, pid: int = 0,
                 shim_pid: int = 0, id: str | None = None):
        self.socket_path, self.exit_file = socket_path, exit_file
        self.pid, self.shim_pid, self.id = pid, shim_pid, id
        self._open: set[asyncio.StreamWriter] = set()

    def __repr__(self) -> str:
        return f"<ShimHandle {self.socket_path} pid={self.pid}>"

    async def start(self) -> None:
        """`runtime start`: the container's process runs."""
        reply = await self._call({"op": "start"})
        if not reply.get("ok"):
            raise RuntimeFailed(reply.get("error") or "runtime start failed")

    async def exec(self, exec_id: str, process: dict, *, stdin: bool = False,
                   stdout: bool = True, stderr: bool = True, attach: bool = True
                   ) -> tuple[int, asyncio.StreamReader | None, asyncio.StreamWriter | None]:
        """Run `process` (an OCI process) in the container as exec `exec_id`.
        Returns its pid and, with `attach`, streams over that same connection
        as `attach` gives them (stdin, if asked, is a pipe whose EOF the
        writer's EOF is). RuntimeFailed with the runtime's words if it could
        not be started (e.g. `exec failed: unable to start container process:
        exec: "nosuch": executable file not found in $PATH`)."""
        reader, writer = await _open_unix(self.socket_path)
        try:
            writer.write(json.dumps({"op": "exec", "exec_id": exec_id, "process": process,
                                     "stdin": stdin, "stdout": stdout, "stderr": stderr,
                                     "attach": attach}).encode() + b"\n")
            await writer.drain()
            line = await reader.readline()
            if not line:
                raise ConnectionResetError(f"the shim at {self.socket_path} closed without a "
                                           "reply")
            reply = _decode(line)
        except BaseException:
            writer.close()
            raise
        if not reply.get("ok") or not attach:
            writer.close()
        if not reply.get("ok"):
            raise RuntimeFailed(reply.get("error") or "runtime exec failed")
        return int(reply.get("pid") or 0), (reader if attach else None), \
            (writer if attach else None)

    async def attach(self, stdin: bool = False, stdout: bool = True, stderr: bool = True,
                     stdin_once: bool = True, exec_id: str | None = None
                     ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Streams over one shim connection. The reader yields frames (see
        `read_frame`; with a TTY all are stream 1, carrying raw pty bytes) until
        the container has exited and its output is flushed; bytes written to
        the writer go to the container's stdin, and `writer.write_eof()` (or
        closing the writer) closes it: pipes only, only if the shim was started
        with stdin, and not with `stdin_once=False` (docker's StdinOnce)."""
        reader, writer = await _open_unix(self.socket_path)
        try:
            writer.write(json.dumps({"op": "attach", "stdin": stdin, "stdout": stdout,
                                     "stderr": stderr, "stdin_once": stdin_once,
                                     "exec_id": exec_id}).encode() + b"\n")
            await writer.drain()
            reply = _decode(await reader.readline())
        except BaseException:
            writer.close()
            raise
        if not reply.get("ok"):
            writer.close()
            raise errdefs.System(reply.get("error") or "attach failed")
        return reader, writer

    async def wait(self, exec_id: str | None = None) -> dict:
        """{"exit_code": N, "finished_at": RFC3339Nano, "oom_killed": bool} once the
        container has exited; from the exit file if the shim is already gone.
        With `exec_id`: {"exit_code": N, "finished_at": ...} of that exec, or
        errdefs.NotFound if the shim knows no such exec."""
        if exec_id is not None:
            reply = await self._call({"op": "wait", "exec_id": exec_id})
            if not reply.get("ok"):
                raise errdefs.NotFound(reply.get("error") or "no such exec")
            return reply
        try:
            reply = await self._call({"op": "wait"})
        except (OSError, asyncio.IncompleteReadError):
            result = self._exit_result()
            if result is None:
                raise
            return result
        return reply

    async def state(self, fallback: bool = True) -> dict:
        """{"pid": N, "status": "created"|"running"|"stopped"[, "exit_code": N]}."""
        try:
            return await self._call({"op": "state"})
        except OSError:
            result = self._exit_result() if fallback else None
            if result is None:
                raise
            return {"ok": True, "pid": self.pid, "status": "stopped",
                    "exit_code": result.get("exit_code")}

    async def resize(self, height: int, width: int, exec_id: str | None = None) -> None:
        """TIOCSWINSZ on the container's pty, or on exec `exec_id`'s (NotFound
        if that exec has exited)."""
        reply = await self._call({"op": "resize", "height": int(height), "width": int(width),
                                  "exec_id": exec_id})
        if not reply.get("ok"):
            kind = errdefs.NotFound if reply.get("not_found") else errdefs.System
            raise kind(reply.get("error") or "resize failed")

    async def kill(self, signal: str | int = "TERM", all: bool = False,
                   exec_id: str | None = None) -> None:
        """`runtime kill [--all] ID SIGNAL`, run by the shim; with `exec_id`, the
        signal is sent to that exec's process by the shim itself."""
        reply = await self._call({"op": "kill", "signal": str(signal), "all": all,
                                  "exec_id": exec_id})
        if not reply.get("ok"):
            kind = errdefs.NotFound if reply.get("not_found") else RuntimeFailed
            raise kind(reply.get("error") or "kill failed")

    async def close(self) -> None:
        """Drop the connections this handle has open (a pending wait ends with
        an error); the shim and the container go on."""
        for writer in list(self._open):
            writer.close()
        self._open.clear()

    async def _call(self, request: dict) -> dict:
        reader, writer = await _open_unix(self.socket_path)
        self._open.add(writer)
        try:
            writer.write(json.dumps(request).encode() + b"\n")
            await writer.drain()
            line = await reader.readline()
        finally:
            self._open.discard(writer)
            writer.close()
        if not line:
            raise ConnectionResetError(f"the shim at {self.socket_path} closed without a reply")
        return _decode(line)

    def _exit_result(self) -> dict | None:
        if not self.exit_file:
            return None
        try:
            with open(self.exit_file, "rb") as f:
                return json.load(f)
        except (OSError, ValueError):
            return None


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes] | None:
    """The next (stream, payload) from an attach reader; None at the end."""
    try:
        header = await reader.readexactly(FRAME.size)
    except asyncio.IncompleteReadError as e:
        if e.partial:
            raise
        return None
    stream, size = FRAME.unpack(header)
    return stream, await reader.readexactly(size) if size else b""


def _decode(line: bytes) -> dict:
    try:
        obj = json.loads(line)
    except ValueError:
        raise errdefs.System(f"bad reply from the shim: {line[:200]!r}") from None
    if not isinstance(obj, dict):
        raise errdefs.System(f"bad reply from the shim: {line[:200]!r}")
    return obj


async def _open_unix(path: str):
    """open_unix_connection, also for paths longer than sockaddr_un holds
    (through /proc/self/fd/<dirfd>/<name>)."""
    if len(os.fsencode(path)) <= _UNIX_PATH_MAX:
        return await asyncio.open_unix_connection(path)
    dirfd = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return await asyncio.open_unix_connection(f"/proc/self/fd/{dirfd}/{os.path.basename(path)}")
    finally:
        os.close(dirfd)


async def _read_line(fd: int) -> bytes:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    pipe = os.fdopen(fd, "rb", buffering=0)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    try:
        return await reader.readline()
    finally:
        transport.close()


async def _gone(pid: int, timeout: float) -> None:
    """Wait (at most `timeout`) until process `pid`, not our child, has exited."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    loop.add_reader(pidfd, lambda: done.done() or done.set_result(None))
    try:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(done, timeout)
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)


def _tail(path: str) -> str:
    try:
        with open(path, "rb") as f:
            lines = [ln for ln in f.read()[-4096:].decode("utf-8", "replace").splitlines()
                     if ln.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""
