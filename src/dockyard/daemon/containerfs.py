"""A container's files from outside: `cp` (the archive endpoints), `diff`, `export`.

Every verb works on running and stopped containers alike. A running (or
paused) container's root is already mounted in its bundle; a stopped one's
snapshot is mounted for the operation at a private place under the exec root
and unmounted after, with the container's lock held so it cannot start (and
mount the same upper dir) meanwhile. `diff` needs no mount: it reads the
snapshot's upper dir (storage/changes.py).

Paths the client names are container paths. Each is resolved INSIDE the
container root (linux/inroot.py): `..` stops at the root, symlinks, absolute
or relative, resolve as the container would see them. What is then read or
written goes through descriptors (storage/archive.py), never a host path
built from container data.

The rules and messages are dockerd's (daemon/archive*.go, containerfs_linux.go):

    HEAD/GET  the path's stat as X-Docker-Container-Path-Stat (base64 JSON of
              name, size, mode as Go's os.FileMode, mtime, linkTarget); the
              last component is not followed unless the path ends in "/" or
              "/."; GET then sends a tar whose entries start with the path's
              base name (go-archive's TarResourceRebase).
    PUT       the path (last component followed) must be a directory;
              the tar is unpacked into it with `noOverwriteDirNonDir`, and
              with `copyUIDGID` everything is owned by the container's user.
    errors    "Could not find the file <path> in container <name>" (404);
              "extraction point is not a directory", "container rootfs is
              marked read-only" (400); anything else from the filesystem 500.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import json
import logging
import os
import stat
import time
import uuid
from typing import TYPE_CHECKING, Any, AsyncIterator, BinaryIO, Callable, Iterator

from dockyard import errdefs
from dockyard.linux import inroot
from dockyard.storage import archive, changes

if TYPE_CHECKING:
    from dockyard.daemon.container import Container
    from dockyard.daemon.containers import ContainerService
    from dockyard.volume.mountpoint import MountPoint

log = logging.getLogger(__name__)

# What docker keeps in a container's *init* layer: mount points the runtime
# fills. Ours are made in the container's own upper dir, so diff and commit
# leave them out as docker never sees them (daemon/initlayer/setup_unix.go).
INIT_PATHS = ("/dev/pts", "/dev/shm", "/dev/mqueue", "/dev/console", "/proc", "/sys",
              "/.dockerenv", "/etc/resolv.conf", "/etc/hosts", "/etc/hostname", "/etc/mtab")
INIT_DIRS = ("/dev", "/etc")

# Go's os.FileMode type bits, as the path-stat header carries them.
MODE_DIR = 1 << 31
MODE_SYMLINK = 1 << 27
MODE_DEVICE = 1 << 26
MODE_NAMED_PIPE = 1 << 25
MODE_SOCKET = 1 << 24
MODE_SETUID = 1 << 23
MODE_SETGID = 1 << 22
MODE_CHAR_DEVICE = 1 << 21
MODE_STICKY = 1 << 20
_CHUNK = 1 << 20


class FileNotFound(errdefs.NotFound):
    pass


def go_file_mode(st_mode: int) -> int:
    """os.FileMode of a stat(2) mode, as Go's os.Lstat fills it."""
    mode = st_mode & 0o777
    kind = stat.S_IFMT(st_mode)
    mode |= {stat.S_IFBLK: MODE_DEVICE, stat.S_IFCHR: MODE_DEVICE | MODE_CHAR_DEVICE,
             stat.S_IFDIR: MODE_DIR, stat.S_IFIFO: MODE_NAMED_PIPE,
             stat.S_IFLNK: MODE_SYMLINK, stat.S_IFSOCK: MODE_SOCKET}.get(kind, 0)
    if st_mode & stat.S_ISUID:
        mode |= MODE_SETUID
    if st_mode & stat.S_ISGID:
        mode |= MODE_SETGID
    if st_mode & stat.S_ISVTX:
        mode |= MODE_STICKY
    return mode


def go_time(ns: int) -> str:
    """time.Time's JSON form (RFC 3339 with nanoseconds, zeros trimmed) in local time."""
    seconds, frac = divmod(ns, 10**9)
    local = time.localtime(seconds)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", local)
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    offset = local.tm_gmtoff
    if offset == 0:
        return text + "Z"
    sign = "+" if offset > 0 else "-"
    offset = abs(offset)
    return f"{text}{sign}{offset // 3600:02d}:{offset % 3600 // 60:02d}"


def go_base(path: str) -> str:
    """Go's filepath.Base."""
    stripped = path.rstrip("/")
    if not stripped:
        return "/" if path else "."
    return stripped.rsplit("/", 1)[-1]


def absolute(path: str) -> str:
    """filepath.Join("/", path) with a trailing "/" or "/." kept
    (go-archive's PreserveTrailingDotOrSeparator)."""
    cleaned = inroot.clean(path)
    if go_base(path) == "." and go_base(cleaned) != ".":
        cleaned = cleaned.rstrip("/") + "/."
    if path.endswith("/") and not cleaned.endswith("/"):
        cleaned += "/"
    return cleaned


def stat_header(stat_json: dict[str, Any]) -> str:
    raw = json.dumps(stat_json, separators=(",", ":"), ensure_ascii=False)
    # Go's encoder escapes these for HTML safety; the bytes then match dockerd's.
    raw = raw.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return base64.b64encode(raw.encode()).decode()


class ContainerFS:
    def __init__(self, containers: ContainerService):
        self.containers = containers
        self.mounts_dir = os.path.join(containers.exec_root, "containerfs")
        self._clean_stale_mounts()

    def _clean_stale_mounts(self) -> None:
        """Mounts a previous daemon left when it stopped mid-operation."""
        from dockyard.linux.mount import MNT_DETACH, unmount_all

        if not os.path.isdir(self.mounts_dir):
            return
        for name in os.listdir(self.mounts_dir):
            path = os.path.join(self.mounts_dir, name)
            with contextlib.suppress(OSError):
                unmount_all(path, MNT_DETACH)
            if not os.path.ismount(path):
                with contextlib.suppress(OSError):
                    os.rmdir(path)

    # -- the container's root -----------------------------------------------------
    @contextlib.asynccontextmanager
    async def root(self, c: Container, volumes: bool = False) -> AsyncIterator[int]:
        """An O_PATH descriptor of the container's root filesystem, mounted
        for as long as the block runs; with `volumes`, its volumes and bind
        mounts too, where the container sees them (what `cp` reads and writes;
        `export` leaves them out, as docker's)."""
        rootfs = self.containers.rootfs(c)
        if c.running and await asyncio.to_thread(os.path.ismount, rootfs):
            async with self._view(c, rootfs, volumes) as fd:
                yield fd
            return
        async with self.containers.lock(c):
            if c.id not in self.containers.containers:
                raise errdefs.NotFound(f"No such container: {c.id}")
            target = await asyncio.to_thread(self.mount_snapshot, c.id)
            try:
                async with self._view(c, target, volumes) as fd:
                    yield fd
            finally:
                await asyncio.to_thread(self.unmount_snapshot, target)

    @contextlib.asynccontextmanager
    async def _view(self, c: Container, rootfs: str, volumes: bool) -> AsyncIterator[int]:
        from dockyard.daemon.containermounts import mount_points

        points = mount_points(c) if volumes else []
        if not points:
            fd = await asyncio.to_thread(inroot.open_root, rootfs)
            try:
                yield fd
            finally:
                os.close(fd)
            return
        view, opened = await asyncio.to_thread(self._mount_view, c, rootfs, points)
        try:
            fd = await asyncio.to_thread(inroot.open_root, view)
            try:
                yield fd
            finally:
                os.close(fd)
        finally:
            await asyncio.to_thread(self._unmount_view, view, opened)

    def _mount_view(self, c: Container, rootfs: str, points: list[MountPoint]
                    ) -> tuple[str, list[str]]:
        """The rootfs bound at a private place with the container's volumes and
        bind mounts on it (read-only ones read-only), as dockerd's
        mountVolumes: private, so nothing made here reaches the container or
        the host. (The volumes it had to mount, to close afterwards.)"""
        from dockyard.linux.mount import MS_BIND, MS_PRIVATE, MS_RDONLY, MS_REC, MS_REMOUNT, mount
        from dockyard.linux.rootfs import create_if_not_exists
        from dockyard.volume.mountpoint import TMPFS, VOLUME

        os.makedirs(self.mounts_dir, mode=0o700, exist_ok=True)
        view = os.path.join(self.mounts_dir, f"{c.id}-view-{uuid.uuid4().hex[:8]}")
        os.mkdir(view, 0o700)
        opened: list[str] = []
        try:
            mount(rootfs, view, None, MS_BIND | MS_REC)
            mount(None, view, None, MS_PRIVATE | MS_REC)
            for point in points:
                if point.Type == TMPFS:
                    continue  # (only the running container has its contents)
                if point.Type == VOLUME:
                    source = self.containers.mounts.volumes.open(point.Name)
                    opened.append(point.Name)
                else:
                    source = os.path.realpath(point.Source)
                dest = inroot.secure_join(view, point.Destination)
                create_if_not_exists(dest, os.path.isdir(source))
                mount(source, dest, None, MS_BIND | MS_REC)
                if not point.RW:
                    mount(None, dest, None, MS_REMOUNT | MS_BIND | MS_RDONLY)
        except BaseException:
            self._unmount_view(view, opened)
            raise
        return view, opened

    def _unmount_view(self, view: str, opened: list[str]) -> None:
        from dockyard.linux.mount import MNT_DETACH, mount_points_under, umount

        for mountpoint in reversed(mount_points_under(view)):
            with contextlib.suppress(OSError):
                umount(mountpoint, MNT_DETACH)
        for name in opened:
            self.containers.mounts.volumes.close(name)
        with contextlib.suppress(OSError):
            os.rmdir(view)

    @contextlib.contextmanager
    def snapshot_mounted(self, key: str) -> Iterator[str]:
        """The snapshot `key` (a container's ID, or a build step's) mounted at
        a private place of its own for the block (a worker thread; a
        container's lock is the caller's)."""
        target = self.mount_snapshot(key)
        try:
            yield target
        finally:
            self.unmount_snapshot(target)

    def mount_snapshot(self, key: str) -> str:
        """The snapshot `key` mounted at a new private place (a worker thread);
        unmount_snapshot() undoes it."""
        from dockyard.linux.mount import mount_all

        os.makedirs(self.mounts_dir, mode=0o700, exist_ok=True)
        target = os.path.join(self.mounts_dir, f"{key}-{uuid.uuid4().hex[:8]}")
        os.mkdir(target, 0o700)
        try:
            mount_all(self.containers.images.snapshots.mounts(key), target)
        except BaseException:
            os.rmdir(target)
            raise
        return target

    @staticmethod
    def unmount_snapshot(target: str) -> None:
        from dockyard.linux.mount import MNT_DETACH, unmount_all

        try:
            unmount_all(target)
        except OSError as e:
            log.warning("unmounting %s: %s; detaching it", target, e)
            unmount_all(target, MNT_DETACH)
        if not os.path.ismount(target):
            os.rmdir(target)

    # -- stat, archive ------------------------------------------------------------
    def _stat(self, rootfd: int, path: str, name: str, ref: str
              ) -> tuple[dict[str, Any], int, str]:
        """(the stat JSON, a descriptor of the directory holding the path, the
        path's name in it). The last component is not followed unless the
        path ends in "/" or "/." (lstat's rules); then the directory itself
        is the descriptor and the name is "."."""
        follow = path.endswith("/") or go_base(path) == "."
        parent, base = (path, ".") if follow else inroot.split(path)
        try:
            dirfd = inroot.open_at(rootfd, parent, os.O_PATH | os.O_DIRECTORY)
        except FileNotFoundError:
            raise FileNotFound(f"Could not find the file {name} in container {ref}") from None
        except OSError as e:
            raise errdefs.System(f"lstat {path}: {os.strerror(e.errno).lower()}") from None
        try:
            st = os.lstat(base, dir_fd=dirfd)
            link_target = ""
            if stat.S_ISLNK(st.st_mode):
                # Followed as far as it goes, dangling links too (FollowSymlinkInScope).
                root = os.readlink(inroot.proc_path(rootfd))
                link_target = inroot.secure_join(root, path)[len(root):] or "/"
        except FileNotFoundError:
            os.close(dirfd)
            raise FileNotFound(f"Could not find the file {name} in container {ref}") from None
        except BaseException:
            os.close(dirfd)
            raise
        return {"name": go_base(path), "size": st.st_size, "mode": go_file_mode(st.st_mode),
                "mtime": go_time(st.st_mtime_ns), "linkTarget": link_target}, dirfd, base

    async def stat(self, ref: str, path: str) -> dict[str, Any]:
        c = self.containers.get(ref)
        async with self.root(c, volumes=True) as rootfd:
            result, fd, _ = await asyncio.to_thread(self._stat, rootfd, path, path, ref)
            os.close(fd)
        return result

    async def archive(self, ref: str, path: str,
                      start: Callable[[dict[str, Any]], Any]) -> AsyncIterator[bytes]:
        """The tar of `path`, in chunks; `start(stat)` is awaited before the
        first chunk (the route sends its headers then)."""
        c = self.containers.get(ref)
        abs_path = absolute(path)
        async with self.root(c, volumes=True) as rootfd:
            stat_json, fd, name = await asyncio.to_thread(self._stat, rootfd, abs_path, path, ref)
            try:
                await start(stat_json)
                self.containers.emit(c, "archive-path")
                async for chunk in produce(lambda out: _write_resource(fd, name, abs_path, out)):
                    yield chunk
            finally:
                os.close(fd)

    # -- extract ------------------------------------------------------------------
    async def extract(self, ref: str, path: str, tar_path: str, copy_uid_gid: bool,
                      no_overwrite_dir_non_dir: bool) -> None:
        """Unpack the tar in the file `tar_path` into the directory `path`."""
        c = self.containers.get(ref)
        async with self.root(c, volumes=True) as rootfd:
            await asyncio.to_thread(self._extract, c, rootfd, path, ref, tar_path, copy_uid_gid,
                                    no_overwrite_dir_non_dir)
        self.containers.emit(c, "extract-to-dir")

    def _extract(self, c: Container, rootfd: int, path: str, ref: str, tar_path: str,
                 copy_uid_gid: bool, no_overwrite: bool) -> None:
        abs_path = absolute(path)
        try:
            destfd = inroot.open_at(rootfd, abs_path, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            raise FileNotFound(f"Could not find the file {path} in container {ref}") from None
        except NotADirectoryError:
            raise errdefs.InvalidParameter("extraction point is not a directory") from None
        except OSError as e:
            raise errdefs.System(f"{abs_path}: {os.strerror(e.errno).lower()}") from None
        try:
            _check_writable(c, abs_path)
            owner = None
            if copy_uid_gid and c.config.get("User"):
                owner = _user_ids(rootfd, c.config["User"])
            with open(tar_path, "rb") as f:
                archive.check_names(f)
                f.seek(0)
                archive.Extractor(destfd, inroot.clean(abs_path), no_overwrite,
                                  owner).extract(f)
        except FileNotFoundError as e:
            raise FileNotFound(f"Could not find the file {path} in container {ref}") from e
        except OSError as e:
            raise errdefs.System(str(e)) from e
        finally:
            os.close(destfd)

    # -- export, changes ----------------------------------------------------------
    async def export(self, ref: str, start: Callable[[], Any]) -> AsyncIterator[bytes]:
        c = self.containers.get(ref)
        async with self.root(c) as rootfd:
            await start()
            async for chunk in produce(lambda out: _write_tree(rootfd, out)):
                yield chunk
        self.containers.emit(c, "export")

    def upper_and_lowers(self, c: Container) -> tuple[str, list[str]]:
        """The container's upper dir and the image's layer dirs, nearest first."""
        images = self.containers.images
        image = images.images.get(c.image_id)
        lowers = [images.snapshots.fs_path(chain) for chain in reversed(image.chain_ids)]
        return images.snapshots.fs_path(c.id), lowers

    async def changes(self, ref: str) -> list[dict[str, Any]]:
        c = self.containers.get(ref)

        def compute() -> list[dict[str, Any]]:
            upper, lowers = self.upper_and_lowers(c)
            return [ch.api() for ch in changes.changes(upper, lowers, INIT_PATHS, INIT_DIRS)]

        return await asyncio.to_thread(compute)


# -- the work done in a worker thread ------------------------------------------------

def _check_writable(c: Container, path: str) -> None:
    """dockerd's checks before an extract: a read-only volume, or a read-only
    rootfs when the path is not on a volume."""
    from dockyard.daemon.containermounts import covering

    point = covering(c, path)
    if point is not None and not point.RW:
        raise errdefs.System("mounted volume is marked read-only")
    if point is None and c.host_config.get("ReadonlyRootfs"):
        raise errdefs.InvalidParameter("container rootfs is marked read-only")


def _write_resource(dirfd: int, name: str, abs_path: str, out: BinaryIO) -> None:
    """go-archive's TarResourceRebase of `name` in `dirfd`: a directory's
    entries start with the path's base name ("/" makes them absolute), a file
    is the one entry, named by that base name."""
    writer = archive.TarWriter(out)
    base = go_base(abs_path)
    if stat.S_ISDIR(os.lstat(name, dir_fd=dirfd).st_mode):
        for entry in archive.walk(dirfd, name, "."):
            writer.add(entry, archive.rebase(entry.path, ".", base))
    else:
        for entry in archive.walk(dirfd, name, base):
            writer.add(entry, entry.path)
    writer.close()


def _write_tree(rootfd: int, out: BinaryIO) -> None:
    """The whole root, as go-archive's Tar(root): entries relative, no root entry."""
    writer = archive.TarWriter(out)
    dirfd = os.open(inroot.proc_path(rootfd), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for entry in archive.walk_children(dirfd, ".", ""):
            writer.add(entry, entry.path)
    finally:
        os.close(dirfd)
    writer.close()


def _user_ids(rootfd: int, user: str) -> tuple[int, int]:
    """The container user's uid and gid, from its own /etc/passwd and /etc/group."""
    from dockyard.runtime import user as users

    root = os.readlink(inroot.proc_path(rootfd))
    try:
        ids = users.lookup(root, user)
    except ValueError as e:
        raise errdefs.InvalidParameter(str(e)) from e
    return ids["uid"], ids["gid"]


async def produce(work: Callable[[BinaryIO], None]) -> AsyncIterator[bytes]:
    """Run `work(out)` in a worker thread, yielding what it writes as it comes.

    A pipe between them: the worker blocks when the reader falls behind, and a
    reader that stops early (the client went away) closes its end, which ends
    the worker with EPIPE."""
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    with contextlib.suppress(OSError):  # fewer, larger reads
        fcntl.fcntl(wfd, fcntl.F_SETPIPE_SZ, _CHUNK)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with os.fdopen(wfd, "wb", buffering=_CHUNK) as out:
                work(out)
        except BrokenPipeError:
            pass
        except BaseException as e:  # noqa: BLE001 - handed to the reader
            log.warning("writing a tar stream: %s", e)
            failure.append(e)

    worker = asyncio.ensure_future(asyncio.to_thread(run))
    try:
        while chunk := await asyncio.to_thread(os.read, rfd, _CHUNK):
            yield chunk
    finally:
        os.close(rfd)
        await asyncio.shield(worker)
    if failure:
        raise errdefs.System(str(failure[0]))


