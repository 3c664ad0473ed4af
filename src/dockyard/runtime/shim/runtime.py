"""The OCI runtime's CLI, as the shim drives it: `create`, then any verb.

Imported before `runtime create` runs, so it imports little: `socket` only for
a console socket (--tty), `json` only to read the runtime's log on failure.
"""

from __future__ import annotations

import os
import select
import signal

UNIX_PATH_MAX = 107  # sockaddr_un.sun_path holds 108 bytes with the NUL


class Failed(Exception):
    """The runtime refused, in its own words (or the shim could not run it)."""


def unix_path(path: str) -> tuple[str, int]:
    """A name for `path` that fits sockaddr_un: the path itself, or, when it is
    too long, /proc/<pid>/fd/<dirfd>/<name> through an O_PATH fd on its
    directory, which other processes (the runtime) can use too while we live.
    Returns the name and the fd to close afterwards (-1 if none)."""
    if len(os.fsencode(path)) <= UNIX_PATH_MAX:
        return path, -1
    dirfd = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    return f"/proc/{os.getpid()}/fd/{dirfd}/{os.path.basename(path)}", dirfd


def last_line(data: bytes) -> str:
    lines = [ln.strip() for ln in data.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def read_available(fd: int) -> bytes:
    """What can be read from `fd` now, without blocking."""
    os.set_blocking(fd, False)
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EAGAIN, or EIO from a pty
            return out
        if not chunk:
            return out
        out += chunk


class Created:
    """A created container: its init's pid and the shim's ends of its stdio."""

    def __init__(self, pid: int, outputs: dict[int, str], stdin_fd: int, master: int):
        self.pid = pid
        self.outputs = outputs    # fd -> "stdout" | "stderr"
        self.stdin_fd = stdin_fd  # write end of the stdin pipe, the pty master, or -1
        self.master = master      # the pty master, or -1


class Runtime:
    def __init__(self, path: str, root: str | None, bundle: str, container_id: str):
        self.path, self.root, self.bundle, self.id = path, root, bundle, container_id
        self.devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        self.running: dict[int, tuple] = {}  # pid -> (stderr read end, done callback)

    def argv(self, *args: str) -> list[str]:
        # --log as containerd gives it: runc logs there (and its errors to stderr)
        argv = [self.path] + (["--root", self.root] if self.root else [])
        return argv + ["--log", os.path.join(self.bundle, "log.json"), "--log-format", "json",
                       *args]

    def spawn(self, argv: list[str], stdin: int, stdout: int, stderr: int) -> int:
        # dup2 clears FD_CLOEXEC on the three targets; every other fd of ours is
        # non-inheritable (PEP 446). Python ignores SIGPIPE and we catch SIGCHLD;
        # the runtime, and the container after it, must start with the defaults.
        actions = [(os.POSIX_SPAWN_DUP2, stdin, 0), (os.POSIX_SPAWN_DUP2, stdout, 1),
                   (os.POSIX_SPAWN_DUP2, stderr, 2)]
        try:
            return os.posix_spawn(argv[0], argv, os.environ, file_actions=actions,
                                  setsigdef=(signal.SIGPIPE, signal.SIGXFSZ, signal.SIGCHLD))
        except OSError as e:
            raise Failed(f"{argv[0]}: {e.strerror}") from None

    def run(self, args: list[str], done) -> None:
        """Start `runtime ARGS`; `done(exit_code, stderr's last line)` is called
        from `reaped` once the caller's reaper has collected it."""
        r, w = os.pipe()
        try:
            pid = self.spawn(self.argv(*args), self.devnull, self.devnull, w)
        except Failed as e:
            os.close(r)
            done(1, str(e))
            return
        finally:
            os.close(w)
        self.running[pid] = (r, done)

    def reaped(self, pid: int, status: int) -> bool:
        """Tell a reaped child to us; True if it was one of our commands. Their
        stderr is short (an error line), so it waits in the pipe until now."""
        if pid not in self.running:
            return False
        r, done = self.running.pop(pid)
        message = last_line(read_available(r))
        os.close(r)
        done(os.waitstatus_to_exitcode(status), message)
        return True

    def run_quietly(self, *args: str) -> None:
        """Run `runtime ARGS` to completion, ignoring the outcome (cleanup)."""
        try:
            os.waitpid(self.spawn(self.argv(*args), self.devnull, self.devnull, self.devnull), 0)
        except (Failed, ChildProcessError):
            pass

    def log_error(self) -> str:
        """The last error the runtime wrote to its --log, if any."""
        import json

        try:
            with open(os.path.join(self.bundle, "log.json"), "rb") as f:
                lines = f.read().splitlines()
        except OSError:
            return ""
        for line in reversed(lines):
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("level") == "error":
                return str(entry.get("msg", ""))
        return ""

    def begin_create(self, stdin: bool, tty: bool) -> Creating:
        """Start `runtime create`; `Creating.finish` waits for it. The split lets
        the caller do its own imports while the runtime works (~40 ms for runc)."""
        return Creating(self, stdin, tty)


class Creating:
    """`runtime create`, under way."""

    def __init__(self, runtime: Runtime, stdin: bool, tty: bool):
        self.runtime, self.tty = runtime, tty
        self.console = None
        self.master = self.stdin_fd = self.out_r = -1
        self.child_ends: list[int] = []  # fds only the runtime (and the init) keep
        bundle = runtime.bundle
        argv = ["create", "--bundle", bundle, "--pid-file", os.path.join(bundle, "init.pid")]
        if tty:  # the runtime makes the pty and sends us its master (SCM_RIGHTS)
            import socket

            name, dirfd = unix_path(os.path.join(bundle, "console.sock"))
            _unlink(name)
            self.console = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.console.bind(name)
            self.console.listen(1)
            argv += ["--console-socket", name]
            if dirfd >= 0:
                self.child_ends.append(dirfd)  # the runtime resolves the name through it
            self.err_r, err_w = os.pipe()
            stdio = (runtime.devnull, runtime.devnull, err_w)
            self.child_ends.append(err_w)
        else:
            in_r = runtime.devnull  # no --stdin: the container reads /dev/null, as docker
            if stdin:
                in_r, self.stdin_fd = os.pipe()
                self.child_ends.append(in_r)
            self.out_r, out_w = os.pipe()
            self.err_r, err_w = os.pipe()
            self.child_ends += [out_w, err_w]
            stdio = (in_r, out_w, err_w)
        self.pid = runtime.spawn(runtime.argv(*argv, runtime.id), *stdio)

    def finish(self, wake_r: int) -> Created:
        """Wait for the runtime (`wake_r` turns readable on SIGCHLD), taking the
        pty master when it comes; the created container, or Failed."""
        while True:
            watch = [wake_r] + ([self.console] if self.console and self.master < 0 else [])
            ready, _, _ = select.select(watch, [], [], 0.1)
            if wake_r in ready:
                read_available(wake_r)
            if self.console in ready:
                self._take_master()
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                break
        for fd in self.child_ends:
            os.close(fd)
        if self.console is not None:
            if self.master < 0 and select.select([self.console], [], [], 0)[0]:
                self._take_master()
            self.console.close()
            _unlink(os.path.join(self.runtime.bundle, "console.sock"))
        if status != 0:
            code = os.waitstatus_to_exitcode(status)
            message = (last_line(read_available(self.err_r)) or self.runtime.log_error()
                       or f"runtime create exited with status {code}")
            self.runtime.run_quietly("delete", "--force", self.runtime.id)
            raise Failed(message)
        try:
            with open(os.path.join(self.runtime.bundle, "init.pid")) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError) as e:
            raise Failed(f"reading the runtime's pid file: {e}") from None
        if self.tty:
            os.close(self.err_r)
            if self.master < 0:
                raise Failed("the runtime sent no pty master to the console socket")
            outputs, stdin_fd = {self.master: "stdout"}, self.master
        else:
            outputs, stdin_fd = {self.out_r: "stdout", self.err_r: "stderr"}, self.stdin_fd
        for fd in outputs:
            os.set_blocking(fd, False)
        if stdin_fd >= 0:
            os.set_blocking(stdin_fd, False)
        return Created(pid, outputs, stdin_fd, self.master)

    def _take_master(self) -> None:
        import socket

        conn, _ = self.console.accept()
        with conn:
            _, fds, _, _ = socket.recv_fds(conn, 4096, 4)
        for extra in fds[1:]:
            os.close(extra)
        if fds:
            self.master = fds[0]
            os.set_inheritable(self.master, False)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
