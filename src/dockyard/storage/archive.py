"""Tar streams of directory trees, written and unpacked as moby's go-archive does.

Writing (`TarWriter`, `walk`): what `docker cp`, `export` and a committed
layer carry, so clients see the bytes dockerd would send:

- PAX headers; names relative, a directory's with a trailing "/"; mtime in
  whole seconds and no atime/ctime (go-archive truncates, so that the same
  files always make the same layer digest); no user or group names; the mode
  is the permission bits plus setuid, setgid and sticky;
- a second name of an inode already written is a hard link to the first;
- extended attributes as SCHILY.xattr.* records, except overlayfs's own
  trusted.overlay.* (a layer must not carry them, see storage/layer.py);
- sockets are left out (tar cannot hold them);
- the end is two zero blocks and nothing more: Python's tarfile pads to
  10 KiB, and an empty layer must hash to docker's empty-layer digest.

Reading (`Extractor`): go-archive's Unpack, into a directory that acts as
the root for every name in the stream. Names are cleaned, `..` that would
leave the root is refused ("invalid entry name"), and every parent is
resolved with openat2's RESOLVE_IN_ROOT (linux/inroot.py): a symlink in the
way, absolute or relative, resolves inside the destination, never on the
host. Entries are then made with *at() calls on that resolved parent,
without following their own name, and their metadata set through a
descriptor of what was made: a device node in the stream lands inside the
destination or nowhere.

Nothing here follows a symlink while walking: directories are read through
descriptors opened O_NOFOLLOW relative to their parent, so a running
container that swaps a directory for a link mid-walk cannot make us read
host files.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
import tarfile
from dataclasses import dataclass
from typing import BinaryIO, Iterator

from dockyard import errdefs
from dockyard.linux import inroot

BLOCK = 512
END_OF_ARCHIVE = b"\0" * (2 * BLOCK)
XATTR_PAX = "SCHILY.xattr."
_CHUNK = 1 << 20
_OWN_XATTRS = ("trusted.overlay.",)


# --- walking -------------------------------------------------------------------

@dataclass
class Entry:
    """One file met while walking: `path` relative to the walk's start."""
    path: str
    name: str  # the name in `dirfd` (or "." for a start given as a descriptor)
    dirfd: int  # its directory, open while the entry is being handled
    st: os.stat_result


def walk(dirfd: int, name: str, path: str) -> Iterator[Entry]:
    """`name` in `dirfd`, then (for a directory) everything under it: depth
    first, names in byte order, a directory before its contents (Go's
    filepath.Walk order, which docker's listings and tars follow)."""
    st = os.lstat(name, dir_fd=dirfd)
    yield Entry(path, name, dirfd, st)
    if stat.S_ISDIR(st.st_mode):
        yield from walk_children(dirfd, name, path)


def walk_children(dirfd: int, name: str, path: str) -> Iterator[Entry]:
    """What `walk` yields after the directory `name` itself."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                     dir_fd=dirfd)
    except OSError:
        return  # vanished or replaced since it was seen (a running container)
    try:
        for child in sorted(os.listdir(fd), key=os.fsencode):
            try:
                yield from walk(fd, child, f"{path}/{child}" if path else child)
            except FileNotFoundError:
                continue
    finally:
        os.close(fd)


# --- writing -------------------------------------------------------------------

def xattrs(dirfd: int, name: str) -> dict[str, bytes]:
    """The extended attributes of `name` in `dirfd` (not followed), overlay's
    own left out; {} where the filesystem has none."""
    path = inroot.proc_path(dirfd, name) if name != "." else inroot.proc_path(dirfd)
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    out = {}
    for key in sorted(names):
        if key.startswith(_OWN_XATTRS):
            continue
        try:
            out[key] = os.getxattr(path, key, follow_symlinks=False)
        except OSError:
            continue
    return out


def header(name: str, st: os.stat_result, linkname: str = "") -> tarfile.TarInfo | None:
    """go-archive's FileInfoHeaderNoLookups for one lstat result; None for a
    socket (tar has no type for it)."""
    mode = st.st_mode
    info = tarfile.TarInfo(name)
    info.mode = stat.S_IMODE(mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""
    info.mtime = st.st_mtime_ns // 1_000_000_000
    if stat.S_ISREG(mode):
        info.type, info.size = tarfile.REGTYPE, st.st_size
    elif stat.S_ISDIR(mode):
        info.type = tarfile.DIRTYPE
        if not info.name.endswith("/"):
            info.name += "/"
    elif stat.S_ISLNK(mode):
        info.type, info.linkname = tarfile.SYMTYPE, linkname
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    elif stat.S_ISFIFO(mode):
        info.type = tarfile.FIFOTYPE
    else:
        return None
    return info


class TarWriter:
    """Writes tar entries to `out` (anything with write()), go-archive style."""

    def __init__(self, out: BinaryIO):
        self.out = out
        self.entries = 0
        self._links: dict[tuple[int, int], str] = {}

    def _write_header(self, info: tarfile.TarInfo, extra: dict[str, bytes] | None = None) -> None:
        for key, value in (extra or {}).items():
            # tarfile writes PAX values as UTF-8; surrogateescape carries any
            # bytes through (security.capability is binary).
            info.pax_headers[XATTR_PAX + key] = value.decode("utf-8", "surrogateescape")
        self.out.write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        self.entries += 1

    def add_empty(self, name: str, mode: int, uid: int, gid: int, mtime: int) -> None:
        """An empty regular file that exists only in the stream (a whiteout)."""
        info = tarfile.TarInfo(name)
        info.mode, info.uid, info.gid, info.mtime = mode, uid, gid, mtime
        info.uname = info.gname = ""
        self._write_header(info)

    def add(self, entry: Entry, name: str, with_xattrs: bool = True,
            owner: tuple[int, int] | None = None) -> None:
        """The file `entry` under `name`: header, then the contents of a
        regular file, read through a descriptor opened without following.
        `owner` (uid, gid) replaces the file's own, as a chown would: the
        set-user-ID and set-group-ID bits of a non-directory go."""
        st = entry.st
        fd = -1
        if stat.S_ISREG(st.st_mode):
            try:
                fd = os.open(entry.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
                             | os.O_CLOEXEC, dir_fd=entry.dirfd)
            except OSError:
                return  # vanished or replaced since it was seen
            st = os.fstat(fd)
        try:
            linkname = os.readlink(entry.name, dir_fd=entry.dirfd) \
                if stat.S_ISLNK(st.st_mode) else ""
            info = header(name, st, linkname)
            if info is None:
                return
            if owner is not None:
                info.uid, info.gid = owner
                if not info.isdir():
                    info.mode &= ~(stat.S_ISUID | stat.S_ISGID)
            if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
                first = self._links.setdefault((st.st_dev, st.st_ino), info.name)
                if first != info.name:
                    info.type, info.linkname, info.size = tarfile.LNKTYPE, first, 0
            extra = xattrs(entry.dirfd, entry.name) if with_xattrs else None
            self._write_header(info, extra)
            if info.type == tarfile.REGTYPE and info.size:
                self._copy(fd, info.size)
        finally:
            if fd >= 0:
                os.close(fd)

    def _copy(self, fd: int, size: int) -> None:
        left = size
        while left:
            chunk = os.read(fd, min(_CHUNK, left))
            if not chunk:  # shrank while we read it: keep the stream well formed
                chunk = b"\0" * left
            self.out.write(chunk)
            left -= len(chunk)
        if size % BLOCK:
            self.out.write(b"\0" * (BLOCK - size % BLOCK))

    def close(self) -> None:
        self.out.write(END_OF_ARCHIVE)


def rebase(path: str, old: str, new: str) -> str:
    """go-archive's RebaseNames: the first `old` in `path` becomes `new` ("/"
    as `new` means the empty string, so names do not start with "//")."""
    return path.replace(old, "" if new == "/" else new, 1)


# --- reading -------------------------------------------------------------------

class BreakoutError(errdefs.System):
    """A stream entry that would be written outside its destination."""


def entry_name(name: str) -> str:
    """A stream entry's name relative to the destination ("." for the
    destination itself); BreakoutError if it climbs out with ".."."""
    cleaned = posixpath.normpath(name.lstrip("/")) if name.lstrip("/") else "."
    if cleaned == ".." or cleaned.startswith("../"):
        raise BreakoutError(f'invalid entry name "{name}"')
    return cleaned


def check_names(stream: BinaryIO) -> None:
    """Read every header of a (seekable) stream once before anything is
    written: a corrupt stream or a name that leaves the destination then
    changes nothing."""
    try:
        with tarfile.open(fileobj=stream, mode="r:") as tar:
            for m in tar:
                entry_name(m.name)
    except (tarfile.TarError, EOFError) as e:
        raise errdefs.InvalidParameter(f"invalid tar stream: {e}") from e


class Extractor:
    """go-archive's Unpack of a tar stream into the directory `destfd`.

    `dest` is the destination's name for messages. `no_overwrite_dir_non_dir`
    refuses to replace a directory with a non-directory and the reverse;
    `chown` (uid, gid) replaces every entry's owner, else the stream's is kept.
    """

    def __init__(self, destfd: int, dest: str, no_overwrite_dir_non_dir: bool = False,
                 chown: tuple[int, int] | None = None):
        self.destfd = destfd
        self.dest = dest
        self.no_overwrite = no_overwrite_dir_non_dir
        self.chown = chown
        self._dirs: list[tuple[str, tarfile.TarInfo]] = []

    def extract(self, stream: BinaryIO) -> None:
        try:
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                for member in tar:
                    self._entry(tar, member)
        except (tarfile.TarError, EOFError) as e:
            raise errdefs.InvalidParameter(f"invalid tar stream: {e}") from e
        for name, member in self._dirs:  # now nothing more is created inside them
            with self._parent(name) as (parentfd, base):
                _set_times(parentfd, base, member, follow=True)

    def _entry(self, tar: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        name = entry_name(m.name)
        if name == ".":
            return
        with self._parent(name, create=True) as (parentfd, base):
            try:
                st = os.lstat(base, dir_fd=parentfd)
            except FileNotFoundError:
                st = None
            if st is not None:
                is_dir = stat.S_ISDIR(st.st_mode)
                if self.no_overwrite and is_dir and not m.isdir():
                    raise errdefs.System(f'cannot overwrite directory "{name}" with '
                                         f'non-directory "{self.dest}"')
                if self.no_overwrite and not is_dir and m.isdir():
                    raise errdefs.System(f'cannot overwrite non-directory "{name}" with '
                                         f'directory "{self.dest}"')
                if not (is_dir and m.isdir()):
                    _remove_all(parentfd, base)
            self._create(tar, m, name, parentfd, base)

    def _parent(self, name: str, create: bool = False):
        return _ParentDir(self.destfd, name, create)

    def _create(self, tar: tarfile.TarFile, m: tarfile.TarInfo, name: str, parentfd: int,
                base: str) -> None:
        perm = m.mode & 0o777
        if m.isdir():
            try:
                if not stat.S_ISDIR(os.lstat(base, dir_fd=parentfd).st_mode):
                    raise FileNotFoundError
            except FileNotFoundError:
                os.mkdir(base, perm, dir_fd=parentfd)
        elif m.isreg():
            # One descriptor for all of it: data, owner, xattrs, mode, times.
            fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
                         | os.O_CLOEXEC, perm, dir_fd=parentfd)
            with os.fdopen(fd, "wb") as out:
                src = tar.extractfile(m)
                while chunk := src.read(_CHUNK):
                    out.write(chunk)
                out.flush()
                uid, gid = self.chown if self.chown is not None else (m.uid, m.gid)
                os.fchown(fd, uid, gid)
                self._set_xattrs(inroot.proc_path(fd), m)
                os.fchmod(fd, stat.S_IMODE(m.mode))  # after chown, which clears setuid
                mtime_ns, atime_ns = _times_ns(m)
                os.utime(fd, ns=(atime_ns, mtime_ns))
            return
        elif m.ischr() or m.isblk() or m.isfifo():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
            os.mknod(base, kind | perm, os.makedev(m.devmajor, m.devminor), dir_fd=parentfd)
        elif m.islnk():
            target = posixpath.normpath(m.linkname.lstrip("/")) if m.linkname.strip("/") else "."
            if target in (".", "..") or target.startswith("../"):
                raise BreakoutError(f'invalid hardlink target "{m.linkname}"')
            with self._parent(target) as (srcfd, srcbase):
                os.link(srcbase, base, src_dir_fd=srcfd, dst_dir_fd=parentfd,
                        follow_symlinks=False)
        elif m.issym():
            # The target is data, kept verbatim; it is resolved when followed,
            # and everything we open resolves inside the root.
            os.symlink(m.linkname, base, dir_fd=parentfd)
        else:
            raise errdefs.System(f"unhandled tar header type {m.type[0] if m.type else 0}")
        uid, gid = self.chown if self.chown is not None else (m.uid, m.gid)
        os.chown(base, uid, gid, dir_fd=parentfd, follow_symlinks=False)
        self._set_xattrs(inroot.proc_path(parentfd, base), m)
        if not m.issym():
            # After chown, which clears setuid/setgid. Through an O_PATH
            # descriptor: a name swapped for a symlink meanwhile is not followed.
            fd = os.open(base, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parentfd)
            try:
                if not stat.S_ISLNK(os.fstat(fd).st_mode):
                    os.chmod(inroot.proc_path(fd), stat.S_IMODE(m.mode))
            finally:
                os.close(fd)
        if m.isdir():
            self._dirs.append((name, m))
        else:
            _set_times(parentfd, base, m, follow=not (m.issym() or m.islnk()))


    @staticmethod
    def _set_xattrs(path: str, m: tarfile.TarInfo) -> None:
        for key, value in m.pax_headers.items():
            if key.startswith(XATTR_PAX) and not key[len(XATTR_PAX):].startswith(_OWN_XATTRS):
                try:
                    os.setxattr(path, key[len(XATTR_PAX):],
                                value.encode("utf-8", "surrogateescape"), follow_symlinks=False)
                except OSError as e:
                    if e.errno not in (errno.EPERM, errno.ENOTSUP):
                        raise


class _ParentDir:
    """The directory an entry goes in, resolved inside the destination, made
    (0755, root-owned, as go-archive's implied directories) if `create`."""

    def __init__(self, rootfd: int, name: str, create: bool):
        self.rootfd, self.create = rootfd, create
        self.parent, self.base = inroot.split(name)
        self.fd = -1

    def __enter__(self) -> tuple[int, str]:
        if self.create:
            self.fd = inroot.make_dirs(self.rootfd, self.parent)
        else:
            self.fd = inroot.open_at(self.rootfd, self.parent, os.O_PATH | os.O_DIRECTORY)
        return self.fd, self.base

    def __exit__(self, *exc) -> None:
        os.close(self.fd)


def _times_ns(m: tarfile.TarInfo) -> tuple[int, int]:
    """(mtime, atime) in ns; go-archive sets atime to the later of the two."""
    mtime_ns = int(m.mtime) * 1_000_000_000
    atime = float(m.pax_headers.get("atime", 0) or 0)
    return mtime_ns, max(int(atime * 1e9), mtime_ns)


def _set_times(parentfd: int, base: str, m: tarfile.TarInfo, follow: bool) -> None:
    mtime_ns, atime_ns = _times_ns(m)
    if follow:
        fd = os.open(base, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parentfd)
        try:
            if stat.S_ISLNK(os.fstat(fd).st_mode):
                return
            os.utime(inroot.proc_path(fd), ns=(atime_ns, mtime_ns))
        finally:
            os.close(fd)
    else:
        os.utime(base, ns=(atime_ns, mtime_ns), dir_fd=parentfd, follow_symlinks=False)


def _remove_all(dirfd: int, name: str) -> None:
    """rm -rf of `name` in `dirfd`, never following a symlink."""
    st = os.lstat(name, dir_fd=dirfd)
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dirfd)
        return
    fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                 dir_fd=dirfd)
    try:
        for child in os.listdir(fd):
            _remove_all(fd, child)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=dirfd)

