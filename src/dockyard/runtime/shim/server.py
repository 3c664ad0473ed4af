"""The shim's event loop: the container's stdio, the socket, the exit.

One thread and poll(2): the container's output pipes (or pty master) feed the
log and every attached connection; attached clients feed the container's
stdin; SIGCHLD arrives as a byte on a wakeup pipe, and the reaper tells the
container's init from the runtime commands we run and from exec'd
processes. Each process's stdio (the init's, each exec's: `Stdio`) is
served the same way; only the init's goes to the log (see `execs`). While
an attached client holds HIGH_WATER bytes not yet sent, that process's
output is not read (it blocks on write, as under dockerd), rather than the
shim growing. The protocol is in the package docstring.
"""

from __future__ import annotations

import errno
import json
import os
import select
import socket
import struct
import sys
import time

from dockyard.runtime import logfile
from dockyard.runtime.ocicli.log import trace
from dockyard.runtime.shim.execs import Execs
from dockyard.runtime.shim.runtime import Created, Runtime, read_available, unix_path

DRAIN_TIMEOUT = 2.0   # after the init's exit, wait this long for its stdio to reach EOF
FLUSH_TIMEOUT = 10.0  # then give attached clients this long to take what is left
HIGH_WATER = 1 << 20
READ_SIZE = 1 << 17  # one read, one log write and one frame per 128 KiB of output
FRAME = struct.Struct(">BxxxI")
STREAMS = {"stdout": 1, "stderr": 2}


def listen(path: str) -> socket.socket:
    name, dirfd = unix_path(path)
    try:
        os.unlink(name)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(name)
        sock.listen(64)
    finally:
        if dirfd >= 0:
            os.close(dirfd)
    sock.setblocking(False)
    return sock


def warn(message: str) -> None:
    try:
        sys.stderr.write(f"shim: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


class Stdio:
    """One process's stdio as the shim holds it: the container init's, or an
    exec's. `outputs`: fd -> (stream number, docker's line cutter feeding the
    log, or None); `stdin_fd`: the write end of its stdin pipe, the pty
    master, or -1; `master`: the pty master, or -1."""
    __slots__ = ("outputs", "stdin_fd", "master", "stdin_buf", "stdin_close")

    def __init__(self, outputs: dict[int, tuple], stdin_fd: int, master: int):
        self.outputs, self.stdin_fd, self.master = outputs, stdin_fd, master
        self.stdin_buf = bytearray()
        self.stdin_close = False  # close stdin once stdin_buf is written


class Conn:
    __slots__ = ("sock", "fd", "inbuf", "out", "kind", "streams", "stdin", "stdin_once",
                 "closing", "eof", "stdio", "exec_id")

    def __init__(self, sock: socket.socket):
        self.sock, self.fd = sock, sock.fileno()
        self.inbuf, self.out = b"", bytearray()
        self.kind = "request"    # -> "attach" | "wait" | "reply"
        self.streams: tuple = ()  # 1 and/or 2, for an attached client
        self.stdin = False        # its bytes go to the process's stdin
        self.stdin_once = True    # its EOF is the process's stdin's EOF
        self.closing = False      # close once `out` is sent
        self.eof = False          # the client's input has ended
        self.stdio: Stdio | None = None  # what an attached client is attached to
        self.exec_id: str | None = None  # an exec's waiter: which exec


class Starting:
    """`start` under way in the loop: exec.fifo's read end, what came through it."""
    __slots__ = ("fd", "cdir", "done", "data")

    def __init__(self, fd: int, cdir, done) -> None:
        self.fd, self.cdir, self.done, self.data = fd, cdir, done, b""


class Shim:
    def __init__(self, opts: dict, runtime: Runtime, created: Created, writer,
                 wake_r: int, listener: socket.socket, oom_count=None):
        self.o, self.runtime = opts, runtime
        self.oom_count = oom_count or oom_counter(runtime.bundle)
        self.pid = created.pid
        self.writer, self.wake_r, self.listener = writer, wake_r, listener
        self.stdio = Stdio({fd: (STREAMS[name], logfile.Copier(name, writer) if writer else None)
                            for fd, name in created.outputs.items()},
                           created.stdin_fd, created.master)
        self.execs = Execs(self)  # processes exec'd in the container
        self.conns: dict[int, Conn] = {}
        self.status = "created"
        self.exit_status: int | None = None  # the init's raw wait status
        self.result: dict | None = None      # the wait reply, once recorded
        self.phase = "run"  # -> "drain" (output) -> "delete" (runtime) -> "done"
        self.deadline = 0.0
        self.deleted = False
        self.starting: Starting | None = None  # our own runtime's `start`, under way
        self.unsynced = -1  # the exit file's fd, until it is fsynced

    # -- the loop ---------------------------------------------------------------
    def serve(self) -> None:
        poller = select.poll()
        registered: dict[int, int] = {}
        while self.phase != "done":
            wanted = self._interest()
            for fd in [fd for fd in registered if fd not in wanted]:
                poller.unregister(fd)
                del registered[fd]
            for fd, mask in wanted.items():
                if registered.get(fd) != mask:
                    poller.register(fd, mask)
                    registered[fd] = mask
            timeout = None
            deadline = min(self.deadline if self.phase != "run" else float("inf"),
                           self.execs.deadline())
            if deadline != float("inf"):
                timeout = max(0, int((deadline - time.monotonic()) * 1000)) + 1
            for fd, events in poller.poll(timeout):
                self._event(fd, events)
            self.execs.advance()
            self._advance()

    def _interest(self) -> dict[int, int]:
        IN, OUT = select.POLLIN, select.POLLOUT
        wanted = {self.wake_r: IN, self.listener.fileno(): IN}
        for fd in self.runtime.results:  # in-process runtime commands
            wanted[fd] = IN
        if self.starting is not None:
            wanted[self.starting.fd] = IN
        for fd in self.execs.poll_fds():
            wanted[fd] = IN
        for stdio in self.stdios():
            backlog = max((len(c.out) for c in self.conns.values()
                           if c.kind == "attach" and c.stdio is stdio), default=0)
            if backlog < HIGH_WATER:
                for fd in stdio.outputs:
                    wanted[fd] = IN
            if stdio.stdin_fd >= 0 and stdio.stdin_buf:
                wanted[stdio.stdin_fd] = wanted.get(stdio.stdin_fd, 0) | OUT  # (a pty: both)
        for c in self.conns.values():
            mask = OUT if c.out else 0
            if c.kind in ("request", "wait") or (c.kind == "attach" and not c.eof
                                                 and len(c.stdio.stdin_buf) < HIGH_WATER):
                mask |= IN
            if mask:
                wanted[c.fd] = mask
        return wanted

    def _event(self, fd: int, events: int) -> None:
        readable = events & (select.POLLIN | select.POLLHUP | select.POLLERR)
        if fd == self.wake_r:
            read_available(self.wake_r)
            self._reap()
        elif fd == self.listener.fileno():
            self._accept()
        elif fd in self.runtime.results:
            self.runtime.result(fd)
        elif self.starting is not None and fd == self.starting.fd:
            self._start_readable()
        elif self.execs.event(fd):
            pass
        elif fd in self.conns:
            c = self.conns[fd]
            if readable:
                self._conn_readable(c, hangup=bool(events & (select.POLLHUP | select.POLLERR)))
            if fd in self.conns and c.out and events & select.POLLOUT:
                self._conn_writable(c)
        else:
            for stdio in self.stdios():
                if fd in stdio.outputs and readable:
                    self._output(stdio, fd)
                if fd == stdio.stdin_fd and events & (select.POLLOUT | select.POLLERR
                                                      | select.POLLHUP):
                    self._write_stdin(stdio)

    def stdios(self) -> list[Stdio]:
        """The container init's stdio, then every exec's."""
        return [self.stdio, *self.execs.stdios()]

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if not pid:
                return
            if pid == self.pid and self.exit_status is None:
                trace("shim: init reaped")
                self.exit_status, self.status = status, "stopped"
                self.phase, self.deadline = "drain", time.monotonic() + DRAIN_TIMEOUT
                if self.starting is not None:
                    self._start_readable(init_died=True)
            elif not self.runtime.reaped(pid, status):
                # an exec'd process (maybe before its `runtime exec` has told
                # us its pid), or an orphan re-parented to us
                self.execs.reaped(pid, status)

    # -- the container's stdio ----------------------------------------------------
    def _output(self, stdio: Stdio, fd: int) -> None:
        stream, copier = stdio.outputs[fd]
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError as e:  # EIO: the pty's last slave fd is closed
            if e.errno != errno.EIO:
                warn(f"reading the container's output: {e}")
            data = b""
        if not data:
            self._close_output(stdio, fd)
            return
        if copier is not None:
            try:
                copier.feed(data)
            except OSError as e:
                warn(f"writing the log: {e}")
        frame = FRAME.pack(stream, len(data)) + data
        for c in self.conns.values():
            if c.kind == "attach" and c.stdio is stdio and stream in c.streams \
                    and not c.closing:
                c.out += frame

    def _close_output(self, stdio: Stdio, fd: int) -> None:
        _, copier = stdio.outputs.pop(fd)
        if copier is not None:
            try:
                copier.close()  # an unterminated last line goes out as a partial
            except OSError as e:
                warn(f"writing the log: {e}")
        if fd != stdio.master:  # the master is also stdin; closed at the exit
            os.close(fd)

    def _write_stdin(self, stdio: Stdio) -> None:
        try:
            del stdio.stdin_buf[:os.write(stdio.stdin_fd, stdio.stdin_buf)]
        except BlockingIOError:
            return
        except OSError:  # EPIPE or EIO: nobody reads the process's stdin any more
            stdio.stdin_buf.clear()
        if stdio.stdin_close and not stdio.stdin_buf:
            self._close_stdin(stdio)

    def _close_stdin(self, stdio: Stdio) -> None:
        if stdio.stdin_fd >= 0 and stdio.stdin_fd != stdio.master:
            os.close(stdio.stdin_fd)
            stdio.stdin_fd = -1
        stdio.stdin_buf.clear()

    def close_stdio(self, stdio: Stdio) -> None:
        """The process has exited and its output is drained (or given up on):
        its remaining fds are closed, attached clients get the rest and end."""
        for fd in list(stdio.outputs):
            self._close_output(stdio, fd)
        for c in list(self.conns.values()):
            if c.kind == "attach" and c.stdio is stdio:
                c.closing, c.stdin = True, False
                self._conn_writable(c)  # the rest of the output, or the close
        self._close_stdin(stdio)
        if stdio.master >= 0:
            os.close(stdio.master)
            stdio.master = stdio.stdin_fd = -1

    # -- connections ----------------------------------------------------------------
    def _accept(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        sock.setblocking(False)
        self.conns[sock.fileno()] = Conn(sock)

    def _conn_readable(self, c: Conn, hangup: bool) -> None:
        # POLLHUP on a UNIX socket: the peer closed both directions. A half-close
        # (SHUT_WR) shows only as EOF when reading.
        try:
            data = c.sock.recv(READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if c.kind == "request":
            if not data:
                self._drop(c)
                return
            c.inbuf += data
            if b"\n" in c.inbuf:
                line, _, rest = c.inbuf.partition(b"\n")
                c.inbuf = b""
                self._request(c, line)
                if rest and c.kind == "attach":
                    self._stdin_from(c, rest)
            elif len(c.inbuf) > 65536:
                self._drop(c)
        elif c.kind == "attach":
            if data:
                self._stdin_from(c, data)
                return
            c.eof = True
            self._end_stdin(c)
            if hangup and c.fd in self.conns:
                self._drop(c)
        elif not data:  # a waiter went away
            self._drop(c)

    def _stdin_from(self, c: Conn, data: bytes) -> None:
        stdio = c.stdio
        if c.stdin and stdio.stdin_fd >= 0 and not stdio.stdin_close:
            stdio.stdin_buf += data

    def _end_stdin(self, c: Conn) -> None:
        stdio = c.stdio
        if c.stdin and c.stdin_once and stdio.master < 0 and stdio.stdin_fd >= 0:
            stdio.stdin_close = True
            if not stdio.stdin_buf:
                self._close_stdin(stdio)
        c.stdin = False
        if c.closing and not c.out:
            self._drop(c)

    def _conn_writable(self, c: Conn) -> None:
        try:
            del c.out[:c.sock.send(c.out)]
        except BlockingIOError:
            return
        except OSError:
            self._drop(c)
            return
        if c.closing and not c.out:
            self._drop(c)

    def _drop(self, c: Conn) -> None:
        self.conns.pop(c.fd, None)
        c.sock.close()

    def _reply(self, c: Conn, obj: dict, close: bool = True) -> None:
        c.out += json.dumps(obj).encode() + b"\n"
        if close:
            c.kind, c.closing = "reply", True
        # At once, not at the next turn of the loop: a reply is small, and the
        # socket's buffer has room for it unless the client stopped reading.
        if self.conns.get(c.fd) is c:  # (not a client that has gone)
            self._conn_writable(c)

    # -- requests ---------------------------------------------------------------------
    def _request(self, c: Conn, line: bytes) -> None:
        try:
            req = json.loads(line)
            op = req["op"]
        except (ValueError, KeyError, TypeError):
            self._reply(c, {"ok": False, "error": f"bad request: {line[:200]!r}"})
            return
        if req.get("exec_id") is not None and op in ("wait", "attach", "resize", "kill", "state"):
            self.execs.request(c, op, req)
        elif op == "exec":
            self.execs.start(c, req)
        elif op == "wait":
            if self.result is not None:
                self._reply(c, self.result)
            else:
                c.kind = "wait"
        elif op == "attach":
            self.attach(c, req, self.stdio, self.phase != "run")
        elif op == "state":
            state = {"ok": True, "pid": self.pid, "status": self.status}
            if self.result is not None:
                state["exit_code"] = self.result["exit_code"]
            self._reply(c, state)
        elif op == "start":
            self._start(c)
        elif op == "resize":
            self._resize(c, req)
        elif op == "kill":
            args = ["kill", *(["--all"] if req.get("all") else []), self.runtime.id,
                    str(req.get("signal", "TERM"))]
            self.runtime.run(args, lambda code, message: self._reply(
                c, {"ok": True} if code == 0 else {"ok": False, "error": message or
                                                   f"runtime kill exited with status {code}"}))
        else:
            self._reply(c, {"ok": False, "error": f"unknown op {op!r}"})

    def attach(self, c: Conn, req: dict, stdio: Stdio, ended: bool,
               reply: dict | None = None) -> None:
        """`c` becomes a client attached to `stdio` (`ended`: its process has
        exited: nothing more will come), once sent `reply`."""
        c.kind, c.stdio = "attach", stdio
        c.streams = tuple(n for name, n in STREAMS.items() if req.get(name))
        c.stdin = bool(req.get("stdin")) and stdio.stdin_fd >= 0 and not stdio.stdin_close
        c.stdin_once = bool(req.get("stdin_once", True))
        c.closing = ended  # (then closed as soon as the reply is sent)
        self._reply(c, reply or {"ok": True}, close=False)

    def _start(self, c: Conn) -> None:
        if self.status != "created":
            self._reply(c, {"ok": False,
                            "error": f"cannot start a container that is {self.status}"})
            return

        def started(code: int, message: str) -> None:
            trace("shim: started")
            if code != 0:
                self._reply(c, {"ok": False, "error": message or
                                f"runtime start exited with status {code}"})
                return
            if self.status == "created":  # (it may have run and exited already)
                self.status = "running"
            self._reply(c, {"ok": True})

        if self.starting is not None:  # (the first one has released the init)
            started(1, "cannot start an already running container")
            return
        trace("shim: start")
        if self.runtime.in_process:
            self._begin_start(started)
        else:
            self.runtime.run(["start", self.runtime.id], started)

    def _begin_start(self, done) -> None:
        """Our own runtime's `start` (dockyard.runtime.oci), run in this loop
        rather than in a fork: its checks, then exec.fifo opened for reading;
        the init writes a byte to it and execs, which closes it (EOF). It needs
        no process (~5 ms saved from a fork's), and an init that dies instead
        is seen at once, reaped by us, with no timeout to wait out."""
        from dockyard.runtime import oci
        from dockyard.runtime.ocicli.state import StateError

        try:
            cdir, _, fd = oci.begin_start(self.runtime.root or oci.DEFAULT_ROOT, self.runtime.id)
        except (oci.Failure, StateError) as e:
            self.runtime.log_failure(str(e))
            done(1, str(e))
            return
        self.starting = Starting(fd, cdir, done)

    def _start_readable(self, init_died: bool = False) -> None:
        s = self.starting
        while True:
            try:
                chunk = os.read(s.fd, 64)
            except BlockingIOError:
                if not init_died:
                    return  # the init has not exec'd yet
                chunk = b""
            if not chunk:
                break
            s.data += chunk
        self.starting = None
        os.close(s.fd)
        from dockyard.runtime import oci

        try:
            oci.finish_start(s.cdir, s.data, init_died)
        except (oci.Failure, OSError) as e:
            message = str(e) if isinstance(e, oci.Failure) else f"unlink exec.fifo: {e}"
            self.runtime.log_failure(message)
            s.done(1, message)
            return
        s.done(0, "")

    def _resize(self, c: Conn, req: dict, master: int = -2) -> None:
        master = self.stdio.master if master == -2 else master
        if master >= 0:
            import fcntl
            import termios

            try:
                size = struct.pack("HHHH", int(req.get("height", 0)), int(req.get("width", 0)),
                                   0, 0)
                fcntl.ioctl(master, termios.TIOCSWINSZ, size)
            except (OSError, ValueError, TypeError, struct.error) as e:
                self._reply(c, {"ok": False, "error": f"ioctl(TIOCSWINSZ): {e}"})
                return
        self._reply(c, {"ok": True})

    # -- the exit -----------------------------------------------------------------------
    def _advance(self) -> None:
        now = time.monotonic()
        if self.phase == "drain" and (not self.stdio.outputs or now >= self.deadline):
            for fd in list(self.stdio.outputs):
                self._close_output(self.stdio, fd)
            self.unsynced = self._record_exit()  # the waiters have their answer: now the cleanup
            self.phase, self.deadline = "delete", now + FLUSH_TIMEOUT
            self.runtime.run(["delete", self.runtime.id], self._deleted)
        elif self.phase == "delete" and self.deleted:
            # stay until replies and attached output are sent, or time is up
            busy = any(c.out or c.kind == "attach" for c in self.conns.values())
            if not busy or now >= self.deadline:
                self.phase = "done"
                if self.unsynced >= 0:  # last: a request meanwhile is answered first
                    _sync_exit_file(self.o["exit_file"], self.unsynced)
                    self.unsynced = -1

    def _deleted(self, code: int, message: str) -> None:
        trace("shim: deleted")
        if code != 0:
            warn(f"runtime delete: {message}")
        self.deleted = True

    def _record_exit(self) -> int:
        """Output drained: write the exit file, then tell the waiters. Returns
        the exit file's fd, to be synced (-1 if it could not be written)."""
        if self.writer is not None:
            self.writer.close()
        code = os.waitstatus_to_exitcode(self.exit_status)
        self.result = {"ok": True, "exit_code": code if code >= 0 else 128 - code,
                       "finished_at": logfile.format_time(time.time_ns()),
                       "oom_killed": self._oom_killed()}
        try:
            unsynced = _write_exit_file(self.o["exit_file"], json.dumps(
                self.result, separators=(",", ":")).encode())
        except OSError as e:
            warn(f"writing the exit file: {e}")
            unsynced = -1
        trace("shim: exit recorded")
        for c in list(self.conns.values()):
            if c.kind == "wait" and c.exec_id is None:
                self._reply(c, self.result)
        self.close_stdio(self.stdio)
        return unsynced

    def _oom_killed(self) -> bool:
        """Whether the kernel's OOM killer struck in the container's cgroup (read
        before `runtime delete` removes it)."""
        try:
            return self.oom_count() > 0
        except Exception as e:  # noqa: BLE001 - the exit is recorded regardless
            warn(f"reading the OOM kill count: {e}")
            return False


def _write_exit_file(path: str, data: bytes) -> int:
    """The first half of store.atomic's crash-safe write: a temp file renamed
    into place, so that a reader sees no file or the whole of it. The fsyncs
    (~2 ms on ext4, a journal commit each) come after the waiters have their
    answer, when the shim is done (`_sync_exit_file`): the file matters to a
    daemon that restarts, and the wait reply is what it has first. (A host
    crash within that window, the time `runtime delete` takes, can leave an
    empty file, which readers take as a missing one.) Returns the file's fd,
    still open for the fsync."""
    directory = os.path.dirname(path) or "."
    tmp = os.path.join(directory, f".tmp-exit-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o644)
        while data:
            data = data[os.write(fd, data):]
        os.replace(tmp, path)
    except BaseException:
        os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return fd


def _sync_exit_file(path: str, fd: int) -> None:
    try:
        os.fsync(fd)
        dfd = os.open(os.path.dirname(path) or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError as e:
        warn(f"syncing the exit file: {e}")
    finally:
        os.close(fd)


def oom_counter(bundle: str):
    """A function returning the OOM kill count of the container's cgroup (path
    from config.json linux.cgroupsPath). Made while the runtime creates the
    container, so that the exit, when the count is read, has less to do."""
    try:
        with open(os.path.join(bundle, "config.json"), "rb") as f:
            path = json.load(f)["linux"]["cgroupsPath"]
    except (OSError, ValueError, KeyError, TypeError):
        return lambda: 0
    try:
        from dockyard.linux.cgroups import open_cgroup
    except ImportError:
        return lambda: _oom_kill_count(path)
    try:
        return open_cgroup(path).oom_kill_count
    except Exception as e:  # noqa: BLE001 - the exit is recorded regardless
        warn(f"finding the cgroup {path}: {e}")
        return lambda: 0


def _oom_kill_count(path: str) -> int:
    """`oom_kill` of cgroup v1 memory.oom_control or v2 memory.events."""
    rel = path.strip("/")
    for name in (f"/sys/fs/cgroup/memory/{rel}/memory.oom_control",
                 f"/sys/fs/cgroup/{rel}/memory.events"):
        try:
            with open(name) as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
    return 0
