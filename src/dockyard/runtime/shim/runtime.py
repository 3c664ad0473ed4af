"""The OCI runtime's CLI, as the shim drives it: `create`, then any verb.

Two ways to run a verb, with the same arguments, stdio, exit code and stderr:

- exec: posix_spawn `<runtime> [--root R] --log L --log-format json VERB ...`
  (runc, crun, or any runc-compatible CLI);
- in-process, when the runtime is our own `dockyard-runtime` (`is_ours`): fork
  the shim and call the CLI's entry point (dockyard.runtime.oci) in the child,
  which then exits with the code the program would have. The verbs run as
  they do in a `dockyard-runtime` process, minus starting an interpreter and
  importing the runtime (~35-60 ms a verb; more under load). The shim is
  single-threaded, so the child, and the container init it forks for
  `create`, are the fresh single-threaded processes fork() must give them.

Imported before `runtime create` runs, so it imports little: `socket` only for
a console socket (--tty), `json` only to read the runtime's log on failure.
"""

from __future__ import annotations

import os
import select
import signal
import sys

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


def is_ours(path: str) -> bool:
    """Whether `path` is our own runtime: the `dockyard-runtime` installed next
    to this interpreter (where the daemon finds it too), so that its code is
    the code this process can import."""
    ours = os.path.join(os.path.dirname(sys.executable), "dockyard-runtime")
    try:
        return os.path.samestat(os.stat(path), os.stat(ours))
    except OSError:
        return False


class Runtime:
    def __init__(self, path: str, root: str | None, bundle: str, container_id: str,
                 in_process: bool = False):
        self.path, self.root, self.bundle, self.id = path, root, bundle, container_id
        self.in_process = in_process  # fork and call, rather than exec (see above)
        self.devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        self.running: dict[int, tuple] = {}  # pid -> (stderr read end, done callback)
        # In-process verbs also write their exit code, as one byte, to a pipe
        # just before they exit: the verb is over then, and the caller need not
        # wait for the kernel to tear the process down (a few ms for a fork of
        # a Python process) and for SIGCHLD. The child is still reaped later.
        self.results: dict[int, int] = {}  # read end of such a pipe -> pid
        self.finished: set[int] = set()    # pids that reported, not yet reaped

    def argv(self, *args: str) -> list[str]:
        # --log as containerd gives it: runc logs there (and its errors to stderr)
        argv = [self.path] + (["--root", self.root] if self.root else [])
        return argv + ["--log", os.path.join(self.bundle, "log.json"), "--log-format", "json",
                       *args]

    def spawn(self, argv: list[str], stdin: int, stdout: int, stderr: int) -> int:
        if self.in_process:
            return self._fork(argv, (stdin, stdout, stderr))
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

    def _fork(self, argv: list[str], stdio: tuple[int, int, int]) -> int:
        """The in-process twin of posix_spawn(argv): a child of ours that runs
        the runtime's CLI on argv[1:] and exits with its code."""
        for stream in (sys.stdout, sys.stderr):  # nothing buffered may be written twice
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        result_r, result_w = os.pipe()
        try:
            pid = os.fork()
        except OSError as e:
            os.close(result_r)
            os.close(result_w)
            raise Failed(f"fork: {e.strerror}") from None
        if pid:
            os.close(result_w)
            self.results[result_r] = pid
            return pid
        code = 1
        try:
            _become_runtime(argv, stdio, result_w)
            from dockyard.runtime import oci

            code = oci.main(argv[1:])
        except BaseException as e:  # noqa: BLE001 - said on stderr, as a crashing program would
            try:
                os.write(2, f"{argv[0]}: {type(e).__name__}: {e}\n".encode())
            except OSError:
                pass
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (OSError, ValueError):
                    pass
            try:
                os.write(result_w, bytes([code & 0xFF]))
            except OSError:
                pass
            os._exit(code)

    def run(self, args: list[str], done, stdio: tuple[int, int, int] | None = None) -> None:
        """Start `runtime ARGS`; `done(exit_code, stderr's last line)` is called
        from `reaped` once the caller's reaper has collected it. With `stdio`
        (an exec's), the caller reads the runtime's stderr itself: `done` gets
        "" for it."""
        if stdio is not None:
            try:
                pid = self.spawn(self.argv(*args), *stdio)
            except Failed as e:
                done(1, str(e))
                return
            self.running[pid] = (-1, done)
            return
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
        if pid in self.finished:
            self.finished.discard(pid)
            return True
        for fd in [fd for fd, p in self.results.items() if p == pid]:
            os.close(fd)  # (it died without a word)
            del self.results[fd]
        if pid not in self.running:
            return False
        self._done(pid, os.waitstatus_to_exitcode(status))
        return True

    def result(self, fd: int) -> int | None:
        """Read the exit code an in-process verb wrote to its result pipe `fd`
        (readable); its command is over then (`done` is called if it was one
        of `run`'s). None if it exited without one: `reaped` will tell."""
        pid = self.results.pop(fd)
        try:
            data = os.read(fd, 1)
        except OSError:
            data = b""
        os.close(fd)
        if not data:
            return None
        self.finished.add(pid)
        if pid in self.running:
            self._done(pid, data[0])
        return data[0]

    def _done(self, pid: int, code: int) -> None:
        r, done = self.running.pop(pid)
        message = ""
        if r >= 0:
            message = last_line(read_available(r))
            os.close(r)
        done(code, message)

    def run_quietly(self, *args: str) -> None:
        """Run `runtime ARGS` to completion, ignoring the outcome (cleanup)."""
        try:
            pid = self.spawn(self.argv(*args), self.devnull, self.devnull, self.devnull)
            os.waitpid(pid, 0)
        except (Failed, ChildProcessError):
            return
        for fd in [fd for fd, p in self.results.items() if p == pid]:
            os.close(fd)
            del self.results[fd]

    def log_failure(self, message: str) -> None:
        """Log an error of a verb run in the shim itself as the runtime's CLI
        logs its own: in --log, as JSON."""
        from dockyard.runtime.ocicli.log import Logger

        Logger(os.path.join(self.bundle, "log.json"), "json").error(message)

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


class ProcessIO:
    """The stdio a runtime verb that starts a process (create, exec) runs with,
    which the process inherits, and the shim's ends of it.

    With a terminal the runtime makes the pty inside the container and sends
    its master over `console` (a UNIX socket the shim listens on, at
    `console_path`, passed as --console-socket); the runtime's own stderr is
    a pipe (`err_r`) for its error. Without, pipes: stdin (only with `stdin`;
    else /dev/null, as docker), stdout and stderr, whose write ends are the
    runtime's and then the process's stdio."""

    def __init__(self, runtime: Runtime, console_path: str | None, stdin: bool):
        self.console = None
        self.console_name = ""
        self.master = self.stdin_w = self.out_r = -1
        self.child_ends: list[int] = []  # fds only the runtime (and the process) keep
        if console_path is not None:
            import socket

            self.console_name, dirfd = unix_path(console_path)
            _unlink(self.console_name)
            self.console = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.console.bind(self.console_name)
            self.console.listen(1)
            if dirfd >= 0:
                self.child_ends.append(dirfd)  # the runtime resolves the name through it
            self.err_r, err_w = os.pipe()
            self.stdio = (runtime.devnull, runtime.devnull, err_w)
            self.child_ends.append(err_w)
        else:
            in_r = runtime.devnull
            if stdin:
                in_r, self.stdin_w = os.pipe()
                self.child_ends.append(in_r)
            self.out_r, out_w = os.pipe()
            self.err_r, err_w = os.pipe()
            self.child_ends += [out_w, err_w]
            self.stdio = (in_r, out_w, err_w)

    def console_args(self) -> list[str]:
        return ["--console-socket", self.console_name] if self.console is not None else []

    def take_master(self) -> None:
        """Accept the runtime's connection on the console socket (ready, or it
        is waited for) and keep the pty master it sends."""
        import socket

        conn, _ = self.console.accept()
        with conn:
            _, fds, _, _ = socket.recv_fds(conn, 4096, 4)
        for extra in fds[1:]:
            os.close(extra)
        if fds:
            self.master = fds[0]
            os.set_inheritable(self.master, False)

    def runtime_done(self) -> None:
        """The runtime is over: the ends only it needed are closed, and the
        console socket (once any master waiting on it is taken)."""
        for fd in self.child_ends:
            os.close(fd)
        self.child_ends = []
        if self.console is not None:
            if self.master < 0 and select.select([self.console], [], [], 0)[0]:
                self.take_master()
            self.console.close()
            self.console = None
            _unlink(self.console_name)

    def error(self) -> str:
        """The runtime's last line on its stderr (after a failure)."""
        return last_line(read_available(self.err_r))

    def ours(self) -> tuple[dict[int, str], int]:
        """Once the process runs: its output fds (-> "stdout" | "stderr") and the
        fd its stdin is written to (-1: none), all non-blocking. Failed if the
        runtime sent no pty master."""
        if self.console_name:
            os.close(self.err_r)
            if self.master < 0:
                raise Failed("the runtime sent no pty master to the console socket")
            outputs, stdin_fd = {self.master: "stdout"}, self.master
        else:
            outputs, stdin_fd = {self.out_r: "stdout", self.err_r: "stderr"}, self.stdin_w
        for fd in outputs:
            os.set_blocking(fd, False)
        if stdin_fd >= 0:
            os.set_blocking(stdin_fd, False)
        return outputs, stdin_fd

    def close(self) -> None:
        """After a failure: every end of ours."""
        self.runtime_done()
        for fd in (self.err_r, self.out_r, self.stdin_w, self.master):
            if fd >= 0:
                os.close(fd)
        self.err_r = self.out_r = self.stdin_w = self.master = -1


class Creating:
    """`runtime create`, under way."""

    def __init__(self, runtime: Runtime, stdin: bool, tty: bool):
        self.runtime = runtime
        bundle = runtime.bundle
        # with a TTY the runtime makes the pty and sends us its master (SCM_RIGHTS)
        self.io = ProcessIO(runtime, os.path.join(bundle, "console.sock") if tty else None,
                            stdin)
        argv = ["create", "--bundle", bundle, "--pid-file", os.path.join(bundle, "init.pid"),
                *self.io.console_args()]
        self.pid = runtime.spawn(runtime.argv(*argv, runtime.id), *self.io.stdio)

    def finish(self, wake_r: int) -> Created:
        """Wait for the runtime (`wake_r` turns readable on SIGCHLD; an in-process
        runtime's result pipe when it is done), taking the pty master when it
        comes; the created container, or Failed."""
        runtime, io = self.runtime, self.io
        result = next((fd for fd, pid in runtime.results.items() if pid == self.pid), -1)
        while True:
            watch = [wake_r] + ([io.console] if io.console and io.master < 0 else [])
            ready, _, _ = select.select(watch + ([result] if result >= 0 else []), [], [], 0.1)
            if wake_r in ready:
                read_available(wake_r)
            if io.console in ready:
                io.take_master()
            if result in ready:
                code = runtime.result(result)
                result = -1
                if code is not None:
                    break  # (reaped later, by the shim's reaper)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                runtime.reaped(pid, status)  # (its result pipe, if any)
                code = os.waitstatus_to_exitcode(status)
                break
        io.runtime_done()
        if code != 0:
            message = (io.error() or self.runtime.log_error()
                       or f"runtime create exited with status {code}")
            self.runtime.run_quietly("delete", "--force", self.runtime.id)
            raise Failed(message)
        try:
            with open(os.path.join(self.runtime.bundle, "init.pid")) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError) as e:
            raise Failed(f"reading the runtime's pid file: {e}") from None
        outputs, stdin_fd = io.ours()
        return Created(pid, outputs, stdin_fd, io.master)


def _become_runtime(argv: list[str], stdio: tuple[int, int, int], keep: int) -> None:
    """In a child forked from the shim: the process state a spawned runtime
    would start with (`become_child`), and its argv. `keep`: the result pipe."""
    become_child(stdio, {keep})
    sys.argv = list(argv)


def become_child(stdio: tuple[int, int, int], keep: set[int]) -> None:
    """In a child forked from the shim, to run the runtime (or an exec's first
    process): only `stdio` as fds 0-2, and the fds in `keep`. Every other fd
    of the shim (the socket, clients, the status fd, other pipes) is closed,
    so that no peer waits on an fd this child, or what it forks, still
    holds. Signals as Python sets them up in a new process: SIGCHLD back to
    its default, and no wakeup fd writing into the shim's pipe."""
    import gc

    # Objects of the shim that exist now are never collected here, so no
    # finalizer (a socket's) can close an fd number the runtime has reused.
    gc.freeze()
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for target, fd in enumerate(stdio):
        if fd != target:
            os.dup2(fd, target)
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass  # (the listing's own fd, closed already)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
