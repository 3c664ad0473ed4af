"""The volume service: docker's volumes and the rules that keep their data safe.

A volume is kept by its driver (volume/local.py: a directory under the data
root). This service adds what docker adds on top: generated names and the
`com.docker.volume.anonymous` label for volumes nobody named, references (the
containers whose mount points name a volume: a referenced volume cannot be
removed, whether its container runs or not), the filters of list and prune,
sizes for `system df`, and the volume events.

References live in memory only: they are rebuilt at start from the containers'
records, which are the truth (daemon/containermounts.py).

Threads. Creates and removes do file-system work and run in worker threads
(the container create path and the API routes); one lock guards the
references and the driver's records.
"""

from __future__ import annotations

import logging
import secrets
import threading
from typing import Any, Callable

from dockyard import errdefs
from dockyard.daemon.filtering import bool_filter, invalid_filter, labels_match, matches
from dockyard.storage.snapshots import tree_size
from dockyard.volume.local import (LocalDriver, NoSuchVolume, VolumeMountError,
                                   VolumeOptionError)

log = logging.getLogger(__name__)

ANONYMOUS_LABEL = "com.docker.volume.anonymous"
LIST_FILTERS = ("dangling", "name", "driver", "label")
PRUNE_FILTERS = ("label", "label!", "all")


class VolumeNotFound(errdefs.NotFound):
    pass


class VolumeInUse(errdefs.Conflict):
    pass


class VolumeService:
    def __init__(self, root: str, emit: Callable[..., None]):
        self.driver = LocalDriver(root)
        self._emit = emit
        self._lock = threading.RLock()
        self.refs: dict[str, set[str]] = {}  # volume name -> IDs of containers naming it

    # -- views --------------------------------------------------------------------------
    def _records(self) -> list[dict[str, Any]]:
        """Every volume's record, by name (a copy: creates and removes go on
        in other threads)."""
        with self._lock:
            return sorted(self.driver.records.values(), key=lambda r: r["Name"])

    def view(self, record: dict[str, Any]) -> dict[str, Any]:
        """A volume as the API shows it (types/volume.Volume)."""
        return {
            "CreatedAt": record["CreatedAt"], "Driver": record["Driver"],
            "Labels": _sorted(record.get("Labels")),
            "Mountpoint": self.driver.path(record["Name"]), "Name": record["Name"],
            "Options": _sorted(record.get("Options")), "Scope": self.driver.scope,
        }

    def exists(self, name: str) -> bool:
        return name in self.driver.records

    def inspect(self, name: str) -> dict[str, Any]:
        return self.view(self._record(name, "get"))

    def _record(self, name: str, op: str) -> dict[str, Any]:
        record = self.driver.records.get(name)
        if record is None:
            raise VolumeNotFound(f"{op} {name}: no such volume")
        return record

    # -- create -------------------------------------------------------------------------
    def create(self, name: str = "", driver: str = "", options: dict[str, str] | None = None,
               labels: dict[str, str] | None = None, ref: str | None = None) -> dict[str, Any]:
        """POST /volumes/create, and the volumes a container create asks for.
        An existing volume of that name is returned as it is (dockerd does the
        same; its options and labels are not compared). `ref` is a container
        that references the volume from now on."""
        labels = dict(labels or {})
        if not name:
            name = secrets.token_hex(32)
            labels[ANONYMOUS_LABEL] = ""
        if driver not in ("", self.driver.name):
            raise errdefs.NotFound(f'create {name}: error looking up volume plugin {driver}: '
                                   f'plugin "{driver}" not found')
        with self._lock:
            try:
                record, created = self.driver.create(name, dict(options or {}), labels)
            except VolumeOptionError as e:
                raise errdefs.InvalidParameter(f"create {name}: {e}") from None
            if ref is not None:
                self.refs.setdefault(name, set()).add(ref)
        if created:
            self._emit("volume", "create", name, {"driver": record["Driver"]})
        return self.view(record)

    # -- references ---------------------------------------------------------------------
    def reference(self, name: str, ref: str) -> dict[str, Any]:
        """A container names an existing volume (--volumes-from, a restart of the daemon)."""
        with self._lock:
            record = self._record(name, "get")
            self.refs.setdefault(name, set()).add(ref)
        return self.view(record)

    def release(self, name: str, ref: str) -> None:
        with self._lock:
            users = self.refs.get(name)
            if users is not None:
                users.discard(ref)
                if not users:
                    del self.refs[name]

    def in_use(self, name: str) -> bool:
        return bool(self.refs.get(name))

    # -- mount (at each start) ----------------------------------------------------------
    def open(self, name: str) -> str:
        """The volume's files on the host (its own filesystem mounted first, if
        it has one), until `close`."""
        try:
            return self.driver.mount(name)
        except NoSuchVolume:
            raise VolumeNotFound(f"get {name}: no such volume") from None
        except VolumeMountError as e:
            raise errdefs.System(f"error while mounting volume '{self.driver.path(name)}': "
                                 f"{e}") from e

    def close(self, name: str) -> None:
        try:
            self.driver.unmount(name)
        except VolumeMountError as e:
            log.warning("volume %s: %s", name, e)

    def mount(self, name: str, container_id: str, destination: str, rw: bool,
              propagation: str) -> str:
        """The host path to bind into a starting container (`open`, and the event)."""
        path = self.open(name)
        self._emit("volume", "mount", name, {
            "container": container_id, "destination": destination, "driver": self.driver.name,
            "propagation": propagation, "read/write": "true" if rw else "false"})
        return path

    def unmount(self, name: str, container_id: str) -> None:
        self.close(name)
        self._emit("volume", "unmount", name,
                   {"container": container_id, "driver": self.driver.name})

    # -- remove, prune ------------------------------------------------------------------
    def remove(self, name: str, force: bool = False) -> None:
        """DELETE /volumes/{name}: refused while a container names the volume,
        even with force (force only makes a missing volume no error)."""
        with self._lock:
            if name not in self.driver.records:
                if force:
                    return
                raise VolumeNotFound(f"get {name}: no such volume")
            users = self.refs.get(name)
            if users:
                raise VolumeInUse(f"remove {name}: volume is in use - [{', '.join(sorted(users))}]")
            record = self.driver.records[name]
            try:
                self.driver.remove(name)
            except (OSError, VolumeMountError) as e:
                raise errdefs.System(f"remove {name}: {e}") from e
        self._emit("volume", "destroy", name, {"driver": record["Driver"]})

    def remove_anonymous(self, name: str) -> None:
        """`rm -v`, `run --rm`: an anonymous volume goes unless another container
        still names it (--volumes-from)."""
        try:
            self.remove(name)
        except (VolumeInUse, VolumeNotFound):
            pass

    def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        """POST /volumes/prune: unused volumes without mount options; only the
        anonymous ones unless the `all` filter is true (API 1.42)."""
        for key in filters:
            if key not in PRUNE_FILTERS:
                raise invalid_filter(key)
        everything = bool_filter(filters, "all", False)
        deleted, reclaimed = [], 0
        for record in self._records():
            name, labels = record["Name"], record.get("Labels") or {}
            if self.in_use(name) or record.get("Options"):
                continue
            if not everything and ANONYMOUS_LABEL not in labels:
                continue
            if "label" in filters and not labels_match(labels, filters["label"]):
                continue
            if "label!" in filters and labels_match(labels, filters["label!"]):
                continue
            size = tree_size(self.driver.path(name))
            try:
                self.remove(name)
            except errdefs.DockyardError:
                continue
            deleted.append(name)
            reclaimed += size
        self._emit("volume", "prune", "", {"reclaimed": str(reclaimed)})
        return {"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed}

    # -- list, df -----------------------------------------------------------------------
    def list(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        for key in filters:
            if key not in LIST_FILTERS:
                raise invalid_filter(key)
        dangling = bool_filter(filters, "dangling", None)
        out = []
        for record in self._records():
            name = record["Name"]
            if "name" in filters and not matches(filters["name"], name):
                continue
            if "driver" in filters and record["Driver"] not in filters["driver"]:
                continue
            if "label" in filters and not labels_match(record.get("Labels") or {},
                                                       filters["label"]):
                continue
            if dangling is not None and self.in_use(name) == dangling:
                continue
            out.append(self.view(record))
        return {"Volumes": out, "Warnings": None}

    def usage(self) -> list[dict[str, Any]]:
        """`system df`: each volume with its reference count and size. Volumes
        with mount options are left out, as dockerd leaves them out: their
        files live elsewhere (a tmpfs, a device, a server)."""
        out = []
        for record in self._records():
            if record.get("Options"):
                continue
            name = record["Name"]
            view = self.view(record)
            view["UsageData"] = {"RefCount": len(self.refs.get(name, ())),
                                 "Size": tree_size(self.driver.path(name))}
            out.append(view)
        return out


def _sorted(mapping: dict[str, str] | None) -> dict[str, str] | None:
    """A map as Go's encoding/json writes it: keys sorted; empty is null."""
    return dict(sorted(mapping.items())) if mapping else None
