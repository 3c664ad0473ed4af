"""What both cgroup versions share: the interface, and reading/writing cgroupfs.

cgroupfs files are written with one write(2) each, unbuffered: the kernel
parses every write as a whole value, and its answer (EINVAL, EBUSY, ENOSPC...)
is the error of that write, so a failing write raises OSError naming the file
and the value, the way runc's errors do.
"""

from __future__ import annotations

import abc
import errno
import os
import signal
import time

# logging is imported when a warning is logged: it costs ~5-10 ms to import
# (traceback, linecache, tokenize...), and the runtime's CLI and the shim,
# which start for every container, rarely log one.
LOGGER = "dockyard.linux.cgroups"

# How long destroy() keeps retrying rmdir while the last tasks drain (EBUSY),
# and how long freeze()/thaw() wait for the kernel to report the new state.
RMDIR_TIMEOUT = 5.0
FREEZE_TIMEOUT = 10.0


def write_file(dirpath: str, name: str, value: str | int) -> None:
    path = os.path.join(dirpath, name)
    data = str(value).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    except OSError as e:
        raise OSError(e.errno, f"write {path!r} = {str(value)!r}: {os.strerror(e.errno)}",
                      path) from None


def read_file(dirpath: str, name: str) -> str:
    with open(os.path.join(dirpath, name)) as f:
        return f.read()


def read_int(dirpath: str, name: str) -> int | None:
    """A single-number file; None when absent ("max" is returned as None too)."""
    try:
        text = read_file(dirpath, name).strip()
    except FileNotFoundError:
        return None
    if text == "max":
        return None
    return int(text)


def read_keyed(dirpath: str, name: str) -> dict[str, int]:
    """A flat keyed file ("key value" lines: memory.stat, cpu.stat, memory.events)."""
    out: dict[str, int] = {}
    try:
        text = read_file(dirpath, name)
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                pass
    return out


def read_procs(dirpath: str) -> list[int]:
    """Every pid in the cgroup at `dirpath` and in the cgroups below it."""
    pids: list[int] = []
    for root, _dirs, _files in os.walk(dirpath):
        try:
            text = read_file(root, "cgroup.procs")
        except FileNotFoundError:
            continue      # removed while walking
        pids += [int(p) for p in text.split()]
    return pids


def rmdir_tree(dirpath: str, timeout: float = RMDIR_TIMEOUT) -> None:
    """rmdir a cgroup and any cgroups below it, deepest first.

    A cgroup can be removed once it has no tasks, but killed tasks leave it
    asynchronously: rmdir fails with EBUSY until the last has exited, so keep
    retrying for `timeout` seconds before giving up.
    """
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            for root, dirs, _files in os.walk(dirpath, topdown=False):
                for d in dirs:
                    _rmdir(os.path.join(root, d))
            _rmdir(dirpath)
            return
        except OSError as e:
            if e.errno != errno.EBUSY or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def _rmdir(path: str) -> None:
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        raise OSError(e.errno, f"rmdir {path!r}: {os.strerror(e.errno)}", path) from None


def kill_pids(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def device_rule_line(rule: dict) -> str:
    """An OCI device rule in devices.allow/deny's words: "c 1:3 rwm", "a *:* rwm"."""
    def num(v):
        return "*" if v is None or v == -1 else str(v)
    return (f"{rule.get('type') or 'a'} {num(rule.get('major'))}:{num(rule.get('minor'))} "
            f"{rule.get('access') or 'rwm'}")


def clean_path(path: str) -> str:
    """A cgroup path made relative and kept inside its hierarchy ("/../x" -> "x")."""
    return os.path.normpath("/" + path).lstrip("/")


def own_cgroup(controller: str) -> str | None:
    """This process's cgroup in the hierarchy of `controller` ("" = cgroup v2)."""
    with open("/proc/self/cgroup") as f:
        for line in f:
            _id, controllers, path = line.rstrip("\n").split(":", 2)
            if controller in (controllers.split(",") if controllers else [""]):
                return path
    return None


def mountinfo() -> list[tuple[str, str, list[str]]]:
    """(mount point, fs type, super options) of every mount this process sees."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, rfields = left.split(), right.split()
            if len(fields) < 5 or len(rfields) < 3:
                continue
            mnt = fields[4].replace("\\040", " ")
            out.append((mnt, rfields[0], rfields[2].split(",")))
    return out


class Cgroup(abc.ABC):
    """A container's cgroup, whichever version the host runs.

    Lifecycle: create(resources) -> add(pid) -> [update, freeze/thaw, stats,
    kill_all] -> destroy(). `resources` is an OCI `linux.resources` object;
    keys left out are left alone. `path` is the OCI cgroupsPath ("/dockyard/<id>"):
    absolute paths are from the hierarchy's root, relative ones from this
    process's own cgroup, as runc's cgroupfs driver does. Warnings (settings
    the host can't honour and that docker also ignores) are logged and kept
    in `self.warnings`.
    """

    path: str

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warn(self, msg: str) -> None:
        import logging

        logging.getLogger(LOGGER).warning("cgroup %s: %s", self.path, msg)
        self.warnings.append(msg)

    @abc.abstractmethod
    def create(self, resources: dict | None = None) -> None:
        """Make the cgroup (and missing parents) and apply `resources`."""

    @abc.abstractmethod
    def update(self, resources: dict) -> None:
        """Apply `resources` to an existing cgroup."""

    @abc.abstractmethod
    def add(self, pid: int) -> None:
        """Move process `pid` (all its threads) into the cgroup."""

    @abc.abstractmethod
    def pids(self) -> list[int]:
        """Processes in the cgroup and below it."""

    @abc.abstractmethod
    def freeze(self) -> None:
        """Stop every task; returns once the kernel reports the cgroup frozen."""

    @abc.abstractmethod
    def thaw(self) -> None:
        """Let the tasks run again."""

    @abc.abstractmethod
    def state(self) -> str:
        """"frozen" or "thawed"."""

    @abc.abstractmethod
    def oom_kill_count(self) -> int:
        """How many tasks the OOM killer has killed in this cgroup (0 if unknown)."""

    @abc.abstractmethod
    def stats(self) -> dict:
        """{"cpu": {...}, "memory": {...}, "pids": {...}} (see the module docs)."""

    @abc.abstractmethod
    def exists(self) -> bool:
        """Whether the cgroup directory is there."""

    @abc.abstractmethod
    def destroy(self) -> None:
        """Remove the cgroup everywhere, waiting (a bounded time) for tasks to leave."""

    def kill_all(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to every process in the cgroup.

        The cgroup is frozen while the pids are read and signalled, so that
        nothing forks past the list (runc's signalAllProcesses), then thawed
        again - unless it was paused before and the signal is not SIGKILL, in
        which case it stays paused with the signal pending.
        """
        was_frozen = self.state() == "frozen"
        self.freeze()
        try:
            kill_pids(self.pids(), sig)
        finally:
            if not was_frozen or sig == signal.SIGKILL:
                self.thaw()

    def _wait(self, predicate, what: str, timeout: float = FREEZE_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.001
        while not predicate():
            if time.monotonic() > deadline:
                raise OSError(errno.ETIMEDOUT, f"cgroup {self.path}: timed out waiting "
                              f"for {what}")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
