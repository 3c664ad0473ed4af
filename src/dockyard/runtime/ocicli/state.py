"""The runtime's state directory: one directory per container.

    <root>/                      --root (default /run/dockyard-runtime), 0711
      <id>/                      0711; its existence reserves the ID
        state.json               what `state`, `kill`, `delete` need (atomic writes)
        exec.fifo                made by `create`, opened by the waiting init,
                                 removed by `start`: while it exists the
                                 container is "created"

state.json (version 1):

    {"version": 1, "id", "bundle", "rootfs", "created" (RFC 3339, ns),
     "owner": "", "annotations": {...}, "pid", "start_time" (field 22 of
     /proc/<pid>/stat: a recycled pid is never mistaken for the init),
     "cgroups_path", "freezer" (the file that says whether the cgroup is
     frozen: v1 freezer.state, v2 cgroup.freeze; read directly by `state`
     and `start`, which then need not load the cgroup code),
     "pid_namespace" (bool: the init is PID 1 of its own),
     "config": the spec as it was at create time (exec will need it)}

The status is never stored; it is read from the kernel each time, as runc
does: a frozen cgroup is "paused"; a missing or recycled or zombie init is
"stopped"; an init that still waits on exec.fifo is "created"; else "running".
"""

from __future__ import annotations

import json
import os
import re
import time

STATE_VERSION = 1
OCI_VERSION = "1.0.2"
_ID = re.compile(r"^[\w+\-.]+$")


class StateError(Exception):
    """Message in runc's words (`container does not exist`)."""


def valid_id(container_id: str) -> bool:
    return bool(_ID.match(container_id)) and container_id not in (".", "..")


def rfc3339nano(ns: int) -> str:
    """Go's time.RFC3339Nano in UTC: trailing zeros of the fraction dropped."""
    secs, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    frac_s = f"{frac:09d}".rstrip("0")
    return f"{base}.{frac_s}Z" if frac_s else f"{base}Z"


def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time) of /proc/<pid>/stat, None if no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    rest = data[data.rindex(")") + 2:].split()  # comm may hold spaces and ')'
    return rest[0], int(rest[19])


class ContainerDir:
    def __init__(self, root: str, container_id: str) -> None:
        if not valid_id(container_id):
            raise StateError("invalid container ID format")
        self.root = root
        self.id = container_id
        self.path = os.path.join(root, container_id)
        self.state_file = os.path.join(self.path, "state.json")
        self.fifo = os.path.join(self.path, "exec.fifo")

    # -- lifecycle of the directory ----------------------------------------

    def reserve(self) -> None:
        """Make the directory; fail if the ID is taken."""
        os.makedirs(self.root, 0o711, exist_ok=True)
        try:
            os.mkdir(self.path, 0o711)
        except FileExistsError:
            raise StateError("container with given ID already exists") from None

    def make_fifo(self) -> int:
        """exec.fifo (0622, as runc) and an O_PATH fd to it for the init, which
        reopens it through /proc/self/fd after pivot_root hid the state dir."""
        old = os.umask(0)
        try:
            os.mkfifo(self.fifo, 0o622)
        finally:
            os.umask(old)
        return os.open(self.fifo, os.O_PATH | os.O_CLOEXEC)

    def remove(self) -> None:
        import shutil
        shutil.rmtree(self.path, ignore_errors=True)

    # -- state.json --------------------------------------------------------

    def save(self, state: dict) -> None:
        """Atomic (temp + rename), not durable: the state dir lives on a tmpfs
        (/run) and means nothing after a reboot, so there is no fsync (runc
        has none either)."""
        tmp = os.path.join(self.path, ".state.json.tmp")
        # json.dumps, not json.dump: only the former has the C encoder (the
        # state holds the whole spec: ~1 ms in pure Python, on create's path).
        data = json.dumps(state, separators=(",", ":"))
        with open(tmp, "w") as f:
            f.write(data)
        os.replace(tmp, self.state_file)

    def load(self) -> dict:
        try:
            with open(self.state_file) as f:
                return json.load(f)
        except FileNotFoundError:
            raise StateError("container does not exist") from None

    def exists(self) -> bool:
        return os.path.exists(self.state_file)


def init_alive(state: dict) -> bool:
    """The recorded init still runs (same pid, same start time, not a zombie)."""
    pid = state.get("pid") or 0
    if pid <= 0:
        return False
    st = proc_stat(pid)
    return st is not None and st[1] == state.get("start_time") and st[0] not in ("Z", "X")


def frozen(state: dict, cgroup=None) -> bool:
    """The container's cgroup is frozen (paused)."""
    path = state.get("freezer")
    if path and cgroup is None:
        try:
            with open(path) as f:
                value = f.read().strip()
        except OSError:
            return False
        return value in ("FROZEN", "1")
    if cgroup is None:
        from dockyard.linux.cgroups import open_cgroup
        cgroup = open_cgroup(state["cgroups_path"])
    try:
        return cgroup.state() == "frozen"
    except OSError:
        return False


def freezer_file(cgroup) -> str | None:
    """Where `frozen()` can look without the cgroup code (None: not known)."""
    d = getattr(cgroup, "dir", None)
    if callable(d):                      # v1: one directory per controller
        d = d("freezer")
        return os.path.join(d, "freezer.state") if d else None
    return os.path.join(d, "cgroup.freeze") if isinstance(d, str) else None


def status(cdir: ContainerDir, state: dict, cgroup=None) -> str:
    """created | running | paused | stopped, from the kernel (runc's refreshState)."""
    if frozen(state, cgroup):
        return "paused"
    if not init_alive(state):
        return "stopped"
    if os.path.exists(cdir.fifo):
        return "created"
    return "running"


def oci_state(state: dict, status_: str) -> dict:
    """The OCI `state` document, in runc's field order."""
    out = {
        "ociVersion": OCI_VERSION,
        "id": state["id"],
        "pid": state["pid"] if status_ != "stopped" else 0,
        "status": status_,
        "bundle": state["bundle"],
        "rootfs": state["rootfs"],
        "created": state["created"],
        "owner": state.get("owner", ""),
    }
    if state.get("annotations"):
        out["annotations"] = state["annotations"]
    return out
