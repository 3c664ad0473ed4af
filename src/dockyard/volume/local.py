"""The `local` volume driver: a volume is a plain directory under the data root.

    <data-root>/volumes/<name>/
      volume.json       the record: name, driver, labels, options, creation time
      _data/            what containers see; or the mount point of the volume's
                        filesystem when options name one (type/device/o)

Crash safety. A volume comes into being by one rename: its directory is made
and filled (record fsynced) under a temporary name starting with ".new-", then
renamed into place. It goes the same way: renamed to ".trash-..." first, then
deleted. Volume names start with a letter or digit, so these never collide with
one, and the daemon removes any of them a crash left at start. The record is
never rewritten after create.

Volumes with options mount their filesystem (a tmpfs, a block device, an NFS
export, a bind of another directory) on `_data` when the first container using
them starts, and unmount it when the last one stops, as moby's local driver.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import threading
import time
from typing import Any

from dockyard.store import atomic

DRIVER = "local"
DATA = "_data"
RECORD = "volume.json"
NAME_CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"
_NAME = re.compile(f"{NAME_CHARS}+")
# The options moby's local driver takes, and those each one needs with it.
_VALID_OPTIONS = ("type", "o", "device", "size")
_REQUIRED_WITH = {"device": ("type",), "type": ("device",), "o": ("device", "type")}


class NoSuchVolume(LookupError):
    pass


class VolumeOptionError(ValueError):
    """A name or option the driver refuses (dockerd: 400)."""


class VolumeMountError(RuntimeError):
    """The volume's filesystem could not be mounted (or unmounted)."""


def validate_name(name: str) -> None:
    if len(name) == 1:
        raise VolumeOptionError("volume name is too short, names should be at least two "
                                "alphanumeric characters")
    if not _NAME.fullmatch(name):
        raise VolumeOptionError(
            f'"{name}" includes invalid characters for a local volume name, only '
            f'"{NAME_CHARS}" are allowed. If you intended to pass a host directory, '
            "use absolute path")


def validate_options(opts: dict[str, str]) -> None:
    for key in opts:
        if key not in _VALID_OPTIONS:
            raise VolumeOptionError(f'invalid option: "{key}"')
    if "size" in opts:
        # moby sets it as an XFS project quota; without quota support it refuses
        raise VolumeOptionError("quota size requested but no quota support")
    for key, needed in _REQUIRED_WITH.items():
        if key in opts:
            for other in needed:
                if other not in opts:
                    raise VolumeOptionError(f'missing required option: "{other}"')


class LocalDriver:
    """The volumes under one directory, and the mounts of those with options."""

    name = DRIVER
    scope = "local"

    def __init__(self, root: str):
        self.root = root
        os.makedirs(root, mode=0o701, exist_ok=True)
        self._lock = threading.Lock()
        self._active: dict[str, int] = {}  # name -> containers using its mounted filesystem
        self.records: dict[str, dict[str, Any]] = {}
        for name in sorted(os.listdir(root)):
            path = os.path.join(root, name)
            if name.startswith((".new-", ".trash-")):
                self._discard(path)  # a create or remove a crash cut short
                continue
            try:
                self.records[name] = atomic.read_json(os.path.join(path, RECORD))
            except (OSError, ValueError):
                continue  # not a volume of ours

    # -- paths ------------------------------------------------------------------------
    def path(self, name: str) -> str:
        """The directory a container mounts: `_data`."""
        return os.path.join(self.root, name, DATA)

    # -- create / remove ----------------------------------------------------------------
    def create(self, name: str, options: dict[str, str], labels: dict[str, str]
               ) -> tuple[dict[str, Any], bool]:
        """(record, created): an existing volume of that name is returned as is."""
        validate_name(name)
        validate_options(options)
        with self._lock:
            if name in self.records:
                return self.records[name], False
            record = {"Name": name, "Driver": DRIVER, "Labels": dict(labels),
                      "Options": dict(options),
                      "CreatedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            staging = os.path.join(self.root, f".new-{name}-{secrets.token_hex(4)}")
            try:
                os.makedirs(os.path.join(staging, DATA), mode=0o755)
                os.chmod(staging, 0o701)
                atomic.write_json(os.path.join(staging, RECORD), record)
                os.rename(staging, os.path.join(self.root, name))
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            atomic.fsync_dir(self.root)
            self.records[name] = record
            return record, True

    def remove(self, name: str) -> None:
        with self._lock:
            if name not in self.records:
                raise NoSuchVolume(name)
            if self._active.get(name):
                raise VolumeMountError("volume has active mounts")
            _unmount(self.path(name))
            trash = os.path.join(self.root, f".trash-{name}-{secrets.token_hex(4)}")
            os.rename(os.path.join(self.root, name), trash)
            atomic.fsync_dir(self.root)
            del self.records[name]
        self._discard(trash)

    @staticmethod
    def _discard(path: str) -> None:
        """Delete a volume's directory, never through a mount: a bind volume's
        `_data` is the user's own directory."""
        from dockyard.linux.mount import mount_points_under

        for mountpoint in reversed(mount_points_under(path)):
            with contextlib.suppress(OSError, VolumeMountError):
                _unmount(mountpoint)
        if mount_points_under(path):
            return
        shutil.rmtree(path, ignore_errors=True)

    # -- mounts of volumes with options --------------------------------------------------
    def needs_mount(self, name: str) -> bool:
        opts = self.records[name].get("Options") or {}
        return bool(opts.get("type") or opts.get("device"))

    def mount(self, name: str) -> str:
        """The volume's directory, its filesystem mounted there first if it has one."""
        if name not in self.records:
            raise NoSuchVolume(name)
        if not self.needs_mount(name):
            return self.path(name)
        from dockyard.linux.mount import is_mount_point

        with self._lock:
            data = self.path(name)
            if not self._active.get(name) and not is_mount_point(data):
                _mount_options(self.records[name]["Options"], data)
            self._active[name] = self._active.get(name, 0) + 1
        return data

    def unmount(self, name: str) -> None:
        if name not in self.records or not self.needs_mount(name):
            return
        with self._lock:
            count = self._active.get(name, 0) - 1
            if count > 0:
                self._active[name] = count
                return
            self._active.pop(name, None)
            _unmount(self.path(name))

    def restore_mounts(self, in_use: dict[str, int]) -> None:
        """After a daemon restart: the running containers' count of each mounted
        volume; a filesystem no running container uses any more is unmounted."""
        with self._lock:
            for name in self.records:
                if not self.needs_mount(name):
                    continue
                if in_use.get(name):
                    self._active[name] = in_use[name]
                else:
                    with contextlib.suppress(VolumeMountError):
                        _unmount(self.path(name))


def _mount_options(options: dict[str, str], target: str) -> None:
    """mount -t <type> -o <o> <device> <target>, as moby's local driver."""
    from dockyard.linux.mount import mount
    from dockyard.linux.rootfs import parse_mount

    m = parse_mount({"type": options.get("type") or "", "source": options.get("device") or "",
                     "options": [o for o in (options.get("o") or "").split(",") if o]})
    try:
        mount(m.source, target, None if m.type == "bind" else m.type, m.flags, m.data)
    except OSError as e:
        raise VolumeMountError(
            f"failed to mount local volume: mount {m.source}:{target}, flags: {m.flags:#x}"
            f"{', data: ' + m.data if m.data else ''}: {os.strerror(e.errno).lower()}") from e


def _unmount(target: str) -> None:
    """Unmount everything stacked on `target` (nothing if nothing is); a busy
    filesystem is detached, to go when its last user does."""
    from dockyard.linux.mount import MNT_DETACH, unmount_all

    try:
        unmount_all(target)
    except OSError:
        try:
            unmount_all(target, MNT_DETACH)
        except OSError as e:
            raise VolumeMountError(f"unmounting {target}: {os.strerror(e.errno).lower()}") from e
