"""The overlay snapshotter, after containerd's (core/snapshots/snapshotter.go).

A snapshot is a filesystem state with a parent. Its lifecycle:

    prepare(key, parent)  an *active* snapshot: a writable dir on top of the
                          committed `parent` (None: on top of nothing). Mount
                          what it returns and write into it, or, to import a
                          layer, unpack the layer straight into fs_path(key).
    commit(name, key)     the active snapshot becomes *committed* under `name`
                          (for layers, the chain ID); `key` is gone. Only
                          committed snapshots can be parents, and they are
                          never written again.
    view(key, parent)     a read-only *view* of a committed snapshot, tracked
                          by `key`; it cannot be committed.
    remove(key)           any snapshot without children.

Importing layers L0, L1 (chain IDs C0, C1):

    prepare("extract-1", None); apply_layer(tar0, fs_path("extract-1"))
    commit(C0, "extract-1")
    prepare("extract-2", C0);   apply_layer(tar1, fs_path("extract-2"))
    commit(C1, "extract-2")
    mounts = prepare(container_id, C1)     # a container's rootfs

Keys and names share one space. Snapshots do not mount anything: they return
`Mount`s, data that `dockyard.linux.mount.mount_all` carries out.

On disk (see store/layout.py), one numbered dir per snapshot, so that the
overlay option string (all lower dirs, colon-separated) stays under the one
page the kernel copies from mount(2)'s data argument:

    snapshots/<n>/info.json   key, parent, kind, labels, created
    snapshots/<n>/fs/         the files: an overlay lower dir, or an upper dir
    snapshots/<n>/work/       overlay's workdir; active snapshots only
    snapshots/trash-<n>-<r>/  a snapshot being removed

info.json is written last when a snapshot is made, so a dir without one was
never finished; removal first renames the dir to a trash name, so a crash
mid-delete never leaves half a snapshot under a live number. Startup deletes
both.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import stat
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Iterator

from dockyard import errdefs
from dockyard.store import atomic
from dockyard.store.layout import Layout

log = logging.getLogger(__name__)

ACTIVE = "active"
VIEW = "view"
COMMITTED = "committed"
_TRASH_PREFIX = "trash-"
_RECORD_VERSION = 1


@dataclass(frozen=True)
class Mount:
    """One mount to perform, in mount(8)'s words: type, source, options
    (flags such as "ro" and "rbind" as well as filesystem data)."""
    type: str
    source: str
    options: tuple[str, ...] = ()


@dataclass
class Info:
    key: str
    parent: str | None
    kind: str  # "active", "view" or "committed"
    n: int  # the snapshots/<n> dir
    labels: dict[str, str] = field(default_factory=dict)
    created: float = 0.0


class NoSuchSnapshot(errdefs.NotFound):
    pass


class Snapshotter:
    def __init__(self, layout: Layout, overlay_options: tuple[str, ...] = ()):
        """`overlay_options` are appended to every overlay mount: what the
        daemon decides after probing the kernel (e.g. "index=off")."""
        self.layout = layout
        self.overlay_options = tuple(overlay_options)
        self._lock = threading.Lock()
        self._index: dict[str, Info] = {}
        # lowerdir= is a colon-separated list inside a comma-separated string.
        if any(c in layout.snapshots for c in ",:"):
            raise errdefs.InvalidParameter(
                f"data root {layout.root!r}: overlay cannot use paths with ',' or ':'")
        os.makedirs(layout.snapshots, mode=0o700, exist_ok=True)
        self._load()

    # -- paths ----------------------------------------------------------------

    def _dir(self, info: Info) -> str:
        return self.layout.snapshot(info.n)

    def _fs(self, info: Info) -> str:
        return os.path.join(self._dir(info), "fs")

    def _work(self, info: Info) -> str:
        return os.path.join(self._dir(info), "work")

    def fs_path(self, key: str) -> str:
        """The snapshot's files: where a layer is unpacked between prepare and commit."""
        with self._lock:
            return self._fs(self._get(key))

    # -- startup --------------------------------------------------------------

    def _load(self) -> None:
        """Rebuild the index from disk, deleting what a crash left half-done."""
        root = self.layout.snapshots
        atomic.remove_stale_temps(root)
        for name in sorted(os.listdir(root)):
            path = os.path.join(root, name)
            if name.startswith(_TRASH_PREFIX):
                log.info("snapshots: deleting %s, removed before a crash", name)
                shutil.rmtree(path, ignore_errors=True)
            elif name.isdigit():
                info = self._read(path, int(name))
                if info is None:
                    log.warning("snapshots: deleting %s, left half-made by a crash", name)
                    shutil.rmtree(path, ignore_errors=True)
                elif info.key in self._index:
                    log.error("snapshots: %s and %s both claim key %s; ignoring %s",
                              self._index[info.key].n, name, info.key, name)
                else:
                    self._index[info.key] = info
        for info in self._index.values():
            atomic.remove_stale_temps(self._dir(info))
            if info.kind == COMMITTED:  # a crash between commit's two steps
                shutil.rmtree(self._work(info), ignore_errors=True)
            if info.parent is not None and info.parent not in self._index:
                log.error("snapshots: %s has a missing parent %s", info.key, info.parent)

    @staticmethod
    def _read(path: str, n: int) -> Info | None:
        try:
            rec = atomic.read_json(os.path.join(path, "info.json"))
            info = Info(key=rec["key"], parent=rec["parent"], kind=rec["kind"], n=n,
                        labels=dict(rec.get("labels") or {}), created=rec["created"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if info.kind not in (ACTIVE, VIEW, COMMITTED) or not os.path.isdir(
                os.path.join(path, "fs")):
            return None
        return info

    def _write(self, info: Info) -> None:
        atomic.write_json(os.path.join(self._dir(info), "info.json"), {
            "version": _RECORD_VERSION, "key": info.key, "parent": info.parent,
            "kind": info.kind, "labels": info.labels, "created": info.created})

    # -- lookups --------------------------------------------------------------

    def _get(self, key: str) -> Info:
        try:
            return self._index[key]
        except KeyError:
            raise NoSuchSnapshot(f"snapshot {key} does not exist") from None

    def stat(self, key: str) -> Info:
        with self._lock:
            return dataclasses.replace(self._get(key), labels=dict(self._get(key).labels))

    def walk(self) -> Iterator[Info]:
        """Every snapshot, oldest (lowest n) first; a copy, safe to modify the store meanwhile."""
        with self._lock:
            infos = sorted(self._index.values(), key=lambda i: i.n)
            infos = [dataclasses.replace(i, labels=dict(i.labels)) for i in infos]
        return iter(infos)

    def _parents(self, info: Info) -> list[Info]:
        """The chain below `info`, nearest first."""
        chain = []
        parent = info.parent
        while parent is not None:
            p = self._get(parent)
            chain.append(p)
            parent = p.parent
        return chain

    # -- lifecycle ------------------------------------------------------------

    def prepare(self, key: str, parent: str | None,
                labels: dict[str, str] | None = None) -> list[Mount]:
        """A new active (writable) snapshot on top of the committed `parent`."""
        return self._create(key, parent, ACTIVE, labels)

    def view(self, key: str, parent: str | None,
             labels: dict[str, str] | None = None) -> list[Mount]:
        """A new read-only view of the committed `parent`."""
        return self._create(key, parent, VIEW, labels)

    def _create(self, key: str, parent: str | None, kind: str,
                labels: dict[str, str] | None) -> list[Mount]:
        with self._lock:
            if key in self._index:
                raise errdefs.Conflict(f"snapshot {key} already exists")
            if parent is not None:
                p = self._get(parent)
                if p.kind != COMMITTED:
                    raise errdefs.InvalidParameter(
                        f"parent snapshot {parent} is not committed")
            n = max((i.n for i in self._index.values()), default=0) + 1
            while os.path.lexists(self.layout.snapshot(n)):  # a stray dir: never reuse it
                n += 1
            info = Info(key=key, parent=parent, kind=kind, n=n,
                        labels=dict(labels or {}), created=time.time())
            path = self._dir(info)
            os.mkdir(path, 0o700)
            try:
                os.mkdir(self._fs(info), 0o755)
                if kind == ACTIVE:
                    os.mkdir(self._work(info), 0o700)
                self._write(info)  # last: before this, startup deletes the dir
            except BaseException:
                shutil.rmtree(path, ignore_errors=True)
                raise
            atomic.fsync_dir(self.layout.snapshots)
            self._index[key] = info
            return self._mounts(info)

    def commit(self, name: str, key: str, labels: dict[str, str] | None = None) -> None:
        """Make the active snapshot `key` the committed snapshot `name`."""
        with self._lock:
            info = self._get(key)
            if info.kind != ACTIVE:
                raise errdefs.InvalidParameter(f"snapshot {key} is not active: cannot commit")
            if name in self._index:
                raise errdefs.Conflict(f"snapshot {name} already exists")
            committed = Info(key=name, parent=info.parent, kind=COMMITTED, n=info.n,
                             labels={**info.labels, **(labels or {})}, created=time.time())
            self._write(committed)  # the one atomic step: from here on it is `name`
            del self._index[key]
            self._index[name] = committed
        # A committed snapshot is only ever a lower dir: overlay's workdir is
        # no longer needed (startup finishes this if we crash here).
        shutil.rmtree(self._work(committed), ignore_errors=True)

    def mounts(self, key: str) -> list[Mount]:
        """The mounts of an active snapshot or view, again."""
        with self._lock:
            info = self._get(key)
            if info.kind == COMMITTED:
                raise errdefs.InvalidParameter(
                    f"snapshot {key} is committed: prepare or view on top of it to mount it")
            return self._mounts(info)

    def _mounts(self, info: Info) -> list[Mount]:
        lowers = [self._fs(p) for p in self._parents(info)]
        if info.kind == ACTIVE:
            if not lowers:  # nothing below: the dir itself, writable
                return [Mount("bind", self._fs(info), ("rw", "rbind"))]
            return [Mount("overlay", "overlay", (
                "lowerdir=" + ":".join(lowers),
                "upperdir=" + self._fs(info),
                "workdir=" + self._work(info),
            ) + self.overlay_options)]
        if not lowers:
            return [Mount("bind", self._fs(info), ("ro", "rbind"))]
        if len(lowers) == 1:  # one layer needs no overlay: bind it read-only
            return [Mount("bind", lowers[0], ("ro", "rbind"))]
        # Overlay with lower dirs only (no upperdir) is read-only by nature.
        return [Mount("overlay", "overlay",
                      ("lowerdir=" + ":".join(lowers),) + self.overlay_options)]

    def remove(self, key: str) -> None:
        """Delete a snapshot; its children must be removed first."""
        with self._lock:
            info = self._get(key)
            children = [i.key for i in self._index.values() if i.parent == key]
            if children:
                raise errdefs.Conflict(
                    f"snapshot {key} has {len(children)} child snapshot(s): remove them first")
            trash = os.path.join(self.layout.snapshots,
                                 f"{_TRASH_PREFIX}{info.n}-{uuid.uuid4().hex[:8]}")
            os.rename(self._dir(info), trash)
            atomic.fsync_dir(self.layout.snapshots)
            del self._index[key]
        try:
            shutil.rmtree(trash)
        except OSError as e:  # e.g. still mounted; startup deletes the trash again
            log.warning("snapshots: cannot delete %s yet: %s", trash, e)

    def usage(self, key: str) -> int:
        """Bytes in the snapshot's own files (not its parents'), counted as
        docker counts a container's SizeRw (see tree_size)."""
        with self._lock:
            top = self._fs(self._get(key))
        return tree_size(top)


def tree_size(top: str) -> int:
    """Bytes the files under `top` take, as docker counts them (SizeRw, volume
    sizes): apparent sizes of everything but directories, each inode once
    (hard links share one). Entries that vanish meanwhile are skipped."""
    seen: set[tuple[int, int]] = set()
    total = 0
    pending = [top]
    while pending:
        try:
            entries = os.scandir(pending.pop())
        except FileNotFoundError:
            continue
        with entries:
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    pending.append(entry.path)
                elif (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_size
    return total
