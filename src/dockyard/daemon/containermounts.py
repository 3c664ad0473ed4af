"""A container's mounts: its volumes, bind mounts and tmpfs mounts, from
create to remove (moby's daemon/volumes.go and volumes_unix.go).

    create   every mount the container asks for is parsed and checked
             (volume/mountpoint.py); the volumes it names are created or found,
             and referenced by the container; an empty volume is filled with
             the image's files at its destination (copy-up, from the
             container's snapshot); the mount points go into its record
             ("MountPoints", by destination). Nothing is left behind when a
             step fails: references are dropped, new anonymous volumes removed.
    start    each mount point becomes an OCI bind mount, parents before
             children: a volume is mounted (if it has its own filesystem); a
             bind source given with -v is made when missing, and resolved
             through symlinks once, on the host.
    exit     the volumes are unmounted (their filesystems when the last
             user stops).
    remove   the references go; with `rm -v` or `--rm`, so do the anonymous
             volumes nobody else names.

The record is the truth: references are rebuilt from it at daemon start.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from typing import Any

from dockyard import errdefs
from dockyard.daemon.container import Container
from dockyard.daemon.volumes import VolumeService
from dockyard.volume import mountpoint as mp_
from dockyard.volume.mountpoint import TMPFS, VOLUME, MountError, MountPoint

log = logging.getLogger(__name__)


def mount_points(c: Container) -> list[MountPoint]:
    """The container's mount points, parents first (fewer path components)."""
    points = [MountPoint.from_record(r) for r in (c.record.get("MountPoints") or {}).values()]
    return sorted(points, key=lambda m: (m.Destination.rstrip("/").count("/"), m.Destination))


def covering(c: Container, path: str) -> MountPoint | None:
    """The mount point that holds `path` in the container (the deepest one)."""
    path = mp_.clean(path)
    found = None
    for point in mount_points(c):
        if path == point.Destination or path.startswith(point.Destination.rstrip("/") + "/"):
            found = point
    return found


def api_mounts(c: Container) -> list[dict[str, Any]]:
    """`Mounts` in inspect and in the container list."""
    return [m.api_view() for m in mount_points(c)]


class ContainerMounts:
    def __init__(self, volumes: VolumeService, containers, containerfs):
        self.volumes = volumes
        self.containers = containers
        self.containerfs = containerfs  # mounts a container's snapshot for copy-up

    # -- create ---------------------------------------------------------------------------
    def register(self, c: Container) -> None:
        """Resolve the mounts `c` asks for into its record (a worker thread)."""
        hc, config = c.host_config, c.config
        points = self._parse(c)
        referenced: list[str] = []
        try:
            for point in points.values():
                if point.Type == VOLUME:
                    self._volume_for(c, point)
                    referenced.append(point.Name)
            for dest in config.get("Volumes") or {}:
                dest = mp_.clean(dest)
                if dest in points:
                    continue  # a mount the user asked for wins over the image's VOLUME
                view = self.volumes.create(driver=hc.get("VolumeDriver") or "", ref=c.id)
                points[dest] = MountPoint(Type=VOLUME, Destination=dest, Name=view["Name"],
                                          Driver=view["Driver"], Source=view["Mountpoint"],
                                          CopyData=True)
                referenced.append(view["Name"])
            self._copy_up(c, [p for p in points.values() if p.Type == VOLUME and p.CopyData])
        except BaseException:
            self._drop(c.id, [p for p in points.values() if p.Name in referenced])
            raise
        c.record["MountPoints"] = {d: p.to_record() for d, p in points.items()}

    def unregister(self, c: Container) -> None:
        """Undo `register` for a create that failed later."""
        self._drop(c.id, mount_points(c))

    def _drop(self, container_id: str, points: list[MountPoint],
              remove_anonymous: bool = True) -> None:
        """The container's references go; its anonymous volumes too if asked."""
        for point in points:
            if point.Type == VOLUME and point.Name:
                self.volumes.release(point.Name, container_id)
                if remove_anonymous and point.anonymous:
                    self.volumes.remove_anonymous(point.Name)

    def _parse(self, c: Container) -> dict[str, MountPoint]:
        """VolumesFrom, then Binds, then Mounts, as registerMountPoints; a later
        one at the same destination replaces a --volumes-from copy, but two of
        the user's own at one destination are an error."""
        hc = c.host_config
        points: dict[str, MountPoint] = {}
        for spec in hc.get("VolumesFrom") or []:
            try:
                ref, mode = mp_.parse_volumes_from(spec)
                other = self.containers.get(ref)
            except (MountError, errdefs.NotFound) as e:
                raise errdefs.InvalidParameter(str(e)) from None
            for point in mount_points(other):
                point.RW = point.RW and mp_.read_write(mode)
                point.CopyData, point.Mode = False, ""
                points[point.Destination] = point
        taken = set(hc.get("Tmpfs") or {})
        for raw in hc.get("Binds") or []:
            try:
                point = mp_.parse_bind(raw, hc.get("VolumeDriver") or "")
            except MountError as e:  # (dockerd returns these untyped: 500)
                raise errdefs.System(str(e)) from None
            self._claim(taken, point.Destination, point.Destination)
            points[point.Destination] = point
        for spec in hc.get("Mounts") or []:
            try:
                point = mp_.parse_mount(spec)
            except MountError as e:
                raise errdefs.InvalidParameter(str(e)) from None
            self._claim(taken, point.Destination, spec.get("Target") or "")
            points[point.Destination] = point
        return points

    @staticmethod
    def _claim(taken: set[str], destination: str, shown: str) -> None:
        if destination in taken:
            raise errdefs.InvalidParameter(f"Duplicate mount point: {shown}")
        taken.add(destination)

    def _volume_for(self, c: Container, point: MountPoint) -> None:
        """Create or find the volume a mount point names, referenced by `c`."""
        options = point.Spec.get("VolumeOptions") or {}
        if point.Source:  # a --volumes-from copy: the volume exists
            self.volumes.reference(point.Name, c.id)
            return
        view = self.volumes.create(
            point.Name, point.Driver, (options.get("DriverConfig") or {}).get("Options"),
            options.get("Labels"), ref=c.id)
        point.Name, point.Driver, point.Source = view["Name"], view["Driver"], view["Mountpoint"]

    # -- start ----------------------------------------------------------------------------
    def setup(self, c: Container) -> tuple[list[dict], dict[str, str]]:
        """(OCI bind mounts, tmpfs mounts) for a start (a worker thread)."""
        mounts: list[dict] = []
        tmpfs: dict[str, str] = {}
        mounted: list[str] = []
        try:
            for point in mount_points(c):
                if point.Type == TMPFS:
                    tmpfs[point.Destination] = point.TmpfsData
                    continue
                if point.Type == VOLUME:
                    source = self.volumes.mount(point.Name, c.id, point.Destination, point.RW,
                                                point.Propagation)
                    mounted.append(point.Name)
                else:
                    source = self._bind_source(point)
                mounts.append(self._oci_mount(point, source))
        except BaseException:
            for name in mounted:
                self.volumes.unmount(name, c.id)
            raise
        return mounts, tmpfs

    def teardown(self, c: Container) -> None:
        """The volumes a start mounted, unmounted (a worker thread)."""
        for point in mount_points(c):
            if point.Type == VOLUME:
                self.volumes.unmount(point.Name, c.id)

    def _copy_up(self, c: Container, points: list[MountPoint]) -> None:
        """The image's files at each destination into its volume, if the volume
        is empty (populateVolumes). The destination is resolved inside the
        container's filesystem: a symlink in the image cannot make us read
        the host."""
        if not points:
            return
        from dockyard.linux.inroot import secure_join
        from dockyard.volume.copyup import populate

        with self.containerfs.snapshot_mounted(c.id) as rootfs:
            for point in points:
                volume = self.volumes.open(point.Name)
                try:
                    populate(secure_join(rootfs, point.Destination), volume)
                except OSError as e:
                    raise errdefs.System(f"failed to populate volume: {e}") from e
                finally:
                    self.volumes.close(point.Name)
                point.CopyData = False

    @staticmethod
    def _bind_source(point: MountPoint) -> str:
        """A -v source is made when missing (as docker); a --mount one must
        exist. Either is resolved through symlinks here, once, so what is
        mounted is what was checked."""
        source = point.Source
        if not point.SkipMountpointCreation:
            try:
                os.makedirs(source, 0o755, exist_ok=True)
            except FileExistsError:
                pass  # a file: bound as a file
            except OSError as e:
                if e.errno != errno.ENOTDIR:
                    raise errdefs.System(f"error while creating mount source path "
                                         f"'{source}': {e.strerror}") from e
        resolved = os.path.realpath(source)
        if not os.path.lexists(resolved):
            raise errdefs.InvalidParameter(
                f'invalid mount config for type "bind": bind source path does not exist: '
                f"{source}")
        _check_propagation(resolved, point.Propagation)
        return resolved

    @staticmethod
    def _oci_mount(point: MountPoint, source: str) -> dict:
        """WithMounts: rbind (bind when non-recursive), ro, the propagation."""
        non_recursive = (point.Spec.get("BindOptions") or {}).get("NonRecursive")
        options = ["bind" if non_recursive else "rbind"]
        if not point.RW:
            options.append("ro")
        if point.Propagation:
            options.append(point.Propagation)
        return {"destination": point.Destination, "type": "bind", "source": source,
                "options": options}

    # -- remove, restart --------------------------------------------------------------------
    def remove(self, c: Container, remove_volumes: bool) -> None:
        """The container's references go; its anonymous volumes too if asked."""
        self._drop(c.id, mount_points(c), remove_volumes)

    def restore(self) -> None:
        """At daemon start: every container's references, and the mounted
        volumes' user counts from the containers still running."""
        running: dict[str, int] = {}
        for c in self.containers.containers.values():
            for point in mount_points(c):
                if point.Type != VOLUME or not point.Name:
                    continue
                with contextlib.suppress(errdefs.NotFound):
                    self.volumes.reference(point.Name, c.id)
                if c.running:
                    running[point.Name] = running.get(point.Name, 0) + 1
        self.volumes.driver.restore_mounts(running)


def _check_propagation(source: str, propagation: str) -> None:
    """ensureShared / ensureSharedOrSlave: a shared bind of a source whose mount
    does not propagate would silently not be shared."""
    if propagation not in ("shared", "rshared", "slave", "rslave"):
        return
    from dockyard.linux.mount import mount_of

    mountpoint, optional = mount_of(source)
    shared = any(o.startswith("shared:") for o in optional)
    slave = any(o.startswith("master:") for o in optional)
    if propagation in ("shared", "rshared") and not shared:
        raise errdefs.System(f"path {source} is mounted on {mountpoint} but it is not a "
                             "shared mount")
    if not shared and not slave:
        raise errdefs.System(f"path {source} is mounted on {mountpoint} but it is not a "
                             "shared or slave mount")
