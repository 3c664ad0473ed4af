"""What a container changed: its overlay upper dir, read as docker reads it.

An active snapshot's upper dir holds exactly what was written on top of the
image: new and modified files in full (overlayfs copies a file up on its first
change), and deletions in overlay's own form:

    a 0/0 character device    `name` was deleted (a *whiteout*)
    trusted.overlay.opaque=y  on a directory: nothing below it shows through
                              (it was removed and made again)

From that, two products:

- `changes()`: `docker diff`, as dockerd 20.10's OverlayChanges lists it:
  the upper dir walked in filepath.Walk's order; a whiteout or an opaque
  directory is D (Kind 2); anything else is C (0) if the image has that path
  and A (1) if not; a directory that exists below with the same mode, size
  and mtime is not a change of its own; and the parent of an A or D is
  listed as C (once, before it) when it was not listed already.
- `layer_tar()`: the same tree as an image layer (OCI layer.md): whiteouts
  become empty `.wh.<name>` files, an opaque directory is followed by a
  `.wh..wh..opq` file, hard links stay links, ownership, modes and xattrs
  are kept (storage/archive.py writes the entries).

`skip` names paths the runtime itself puts in every container (the mount
points of /proc, /etc/hosts, ...): docker keeps those in a separate *init*
layer below the container's, so neither its diff nor its commits ever show
them. `init_dirs` are the directories that init layer would hold: they count
as present in the image, and as unchanged unless something in them changed.

The upper dir is complete only while overlayfs does not redirect renamed
directories or copy up metadata alone (`redirect_dir`, `metacopy`: off by
default, and not asked for by our snapshotter).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import BinaryIO, Iterable

from dockyard.linux.inroot import open_at, open_root, proc_path
from dockyard.storage.archive import Entry, TarWriter, walk_children
from dockyard.storage.layer import OVERLAY_OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX

MODIFY, ADD, DELETE = 0, 1, 2
KINDS = {MODIFY: "C", ADD: "A", DELETE: "D"}


@dataclass(frozen=True)
class Change:
    path: str
    kind: int

    def api(self) -> dict:
        return {"Path": self.path, "Kind": self.kind}

    def __str__(self) -> str:
        return f"{KINDS[self.kind]} {self.path}"


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(entry: Entry) -> bool:
    try:
        return os.getxattr(proc_path(entry.dirfd, entry.name), OVERLAY_OPAQUE_XATTR,
                           follow_symlinks=False) == b"y"
    except OSError:
        return False


def _upper_entries(upper: str, skip: frozenset[str]) -> Iterable[Entry]:
    """The upper dir's entries (paths "/a/b"), `skip`ped paths and all below them left out."""
    fd = os.open(upper, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        pruned: str | None = None
        for entry in walk_children(fd, ".", ""):
            path = "/" + entry.path
            if pruned is not None and path.startswith(pruned):
                continue
            if path in skip:
                pruned = path + "/"
                continue
            pruned = None
            entry.path = path
            yield entry
    finally:
        os.close(fd)


def _same_time(a: int, b: int) -> bool:
    """moby's sameFsTime: equal, or the same second with one of them whole
    (a tar keeps whole seconds only)."""
    return a == b or (a // 10**9 == b // 10**9 and (a % 10**9 == 0 or b % 10**9 == 0))


def changes(upper: str, lowers: list[str], skip: Iterable[str] = (),
            init_dirs: Iterable[str] = ()) -> list[Change]:
    """`docker diff` of an upper dir over its lower dirs (nearest first)."""
    skip, init_dirs = frozenset(skip), frozenset(init_dirs)
    out: list[Change] = []
    changed_dirs: set[str] = set()
    lower_fds = [open_root(lower) for lower in lowers]
    try:
        _collect(upper, lower_fds, skip, init_dirs, out, changed_dirs)
    finally:
        for fd in lower_fds:
            os.close(fd)
    return out


def _stat_below(lower_fds: list[int], path: str) -> os.stat_result | None:
    """The path in the nearest lower dir that has it (symlinks followed, as
    moby's os.Stat does, but inside that layer's root), or None."""
    for fd in lower_fds:
        try:
            found = open_at(fd, path, os.O_PATH)
        except OSError:
            continue
        try:
            return os.fstat(found)
        finally:
            os.close(found)
    return None


def _collect(upper: str, lower_fds: list[int], skip: frozenset[str], init_dirs: frozenset[str],
             out: list[Change], changed_dirs: set[str]) -> None:
    for entry in _upper_entries(upper, skip):
        path, st = entry.path, entry.st
        is_dir = stat.S_ISDIR(st.st_mode)
        if is_whiteout(st) or (is_dir and is_opaque(entry)):
            kind = DELETE
        elif path in init_dirs and is_dir:
            continue  # as if in the init layer, unchanged
        else:
            below = _stat_below(lower_fds, path)
            if below is None:
                kind = ADD
            elif is_dir and stat.S_ISDIR(below.st_mode) and below.st_size == st.st_size \
                    and below.st_mode == st.st_mode \
                    and _same_time(below.st_mtime_ns, st.st_mtime_ns):
                continue  # only there as the parent of something changed
            else:
                kind = MODIFY
        if is_dir:
            changed_dirs.add(path)
        if kind in (ADD, DELETE):
            parent = os.path.dirname(path)
            if parent != "/" and parent not in changed_dirs:
                out.append(Change(parent, MODIFY))
                changed_dirs.add(parent)
        out.append(Change(path, kind))


def layer_tar(upper: str, out: BinaryIO, skip: Iterable[str] = (),
              init_dirs: Iterable[str] = ()) -> int:
    """Write the upper dir as an OCI layer tar to `out`; returns the number of
    entries (0: an empty layer, which is the end-of-archive blocks alone).
    An `init_dirs` directory is written only if something under it is."""
    writer = TarWriter(out)
    init_dirs = frozenset(init_dirs)
    pending: list[Entry] = []  # init dirs met, not written yet (their fds stay open below them)
    for entry in _upper_entries(upper, frozenset(skip)):
        while pending and not entry.path.startswith(pending[-1].path + "/"):
            pending.pop()
        if entry.path in init_dirs and stat.S_ISDIR(entry.st.st_mode) and not is_opaque(entry):
            pending.append(entry)
            continue
        for held in pending:
            writer.add(held, held.path[1:])
        pending.clear()
        name = entry.path[1:]
        st = entry.st
        if is_whiteout(st):
            parent, _, base = name.rpartition("/")
            writer.add_empty(f"{parent}/{WHITEOUT_PREFIX}{base}" if parent else
                             WHITEOUT_PREFIX + base, 0o600, st.st_uid, st.st_gid,
                             st.st_mtime_ns // 10**9)
            continue
        writer.add(entry, name)
        if stat.S_ISDIR(st.st_mode) and is_opaque(entry):
            writer.add_empty(f"{name}/{WHITEOUT_OPAQUE}", stat.S_IMODE(st.st_mode) & 0o777,
                             st.st_uid, st.st_gid, 0)
    writer.close()
    return writer.entries
