"""Linux namespaces: the OCI names, their clone flags, and entering them.

A container's `linux.namespaces` list says, for each kind, either "make a new
one" (no `path`) or "join this one" (`path`, e.g. /proc/<pid>/ns/net or a bind
mount of it made by the network code). `plan()` turns that list into the two
halves the kernel wants: one unshare(2) flag word and a list of files to
setns(2) into. It is pure, so the rules are tested without root.

Two kernel facts shape `enter()`:
- setns(2) into a mount namespace changes how every later path resolves, so
  every namespace file is opened *before* any of them is entered (runc's
  nsexec does the same).
- unshare(CLONE_NEWPID) and setns() into a pid namespace do not move the caller;
  only children forked afterwards are in the new namespace. The caller must
  fork to get a process (PID 1 of a new namespace) that lives in it.
"""

from __future__ import annotations

import os
from dockyard.linux import syscalls as sc

# OCI type -> (clone flag, file name under /proc/<pid>/ns)
KINDS: dict[str, tuple[int, str]] = {
    "pid": (sc.CLONE_NEWPID, "pid"),
    "network": (sc.CLONE_NEWNET, "net"),
    "mount": (sc.CLONE_NEWNS, "mnt"),
    "ipc": (sc.CLONE_NEWIPC, "ipc"),
    "uts": (sc.CLONE_NEWUTS, "uts"),
    "user": (sc.CLONE_NEWUSER, "user"),
    "cgroup": (sc.CLONE_NEWCGROUP, "cgroup"),
    "time": (sc.CLONE_NEWTIME, "time"),
}

# Joining order: a user namespace first (it grants the rights for the others),
# the mount namespace last (its files are already open; nothing resolves after).
_JOIN_ORDER = ["user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount"]


class Plan:
    def __init__(self) -> None:
        self.new: set[str] = set()          # OCI types to create
        self.join: dict[str, str] = {}      # OCI type -> path

    @property
    def unshare_flags(self) -> int:
        flags = 0
        for kind in self.new:
            flags |= KINDS[kind][0]
        return flags

    def has(self, kind: str) -> bool:
        """True when the container gets its own `kind` (new or joined)."""
        return kind in self.new or kind in self.join


def plan(namespaces: list[dict]) -> Plan:
    """Validate an OCI `linux.namespaces` list (ValueError in runc's words)."""
    p = Plan()
    for ns in namespaces or []:
        kind = ns.get("type", "")
        if kind not in KINDS:
            raise ValueError(f"namespace {kind!r} does not exist")
        if kind in p.new or kind in p.join:
            raise ValueError(f"malformed spec file: duplicated ns {kind!r}")
        path = ns.get("path") or ""
        if path:
            p.join[kind] = path
        else:
            p.new.add(kind)
    return p


def enter(p: Plan) -> None:
    """setns() into every joined namespace, then unshare() the new ones.

    Run in the intermediate process; the pid namespace (new or joined) applies
    to its next child only.
    """
    fds: list[tuple[str, int]] = []
    try:
        for kind in _JOIN_ORDER:
            if kind in p.join:
                path = p.join[kind]
                try:
                    fds.append((kind, os.open(path, os.O_RDONLY | os.O_CLOEXEC)))
                except OSError as e:
                    raise OSError(e.errno, f"open {path}: {os.strerror(e.errno)}") from None
        for kind, fd in fds:
            sc.setns(fd, KINDS[kind][0])
    finally:
        for _, fd in fds:
            os.close(fd)
    if p.unshare_flags:
        sc.unshare(p.unshare_flags)


def ns_path(pid: int, kind: str) -> str:
    return f"/proc/{pid}/ns/{KINDS[kind][1]}"
