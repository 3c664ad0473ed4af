"""Apply a layer tar into an empty directory that becomes an overlay lower dir.

A layer (OCI image spec, layer.md; docker's layers are the same) is a tar of the
changes made on top of its parent: added and changed files in full, deletions as
*whiteouts*. Overlayfs has its own way to say "deleted" in a lower dir, so each
whiteout is translated as it is applied:

    dir/.wh.name        name was deleted   -> a character device 0/0 named `name`.
                        Overlayfs treats a 0/0 char device in a layer as "hide
                        this name from every layer below" (it is what overlay
                        itself writes into an upper dir when you rm a file).
    dir/.wh..wh..opq    dir is opaque      -> xattr trusted.overlay.opaque="y"
                        on dir. Overlayfs then shows only this layer's dir
                        entries there, none of the lower layers' (it is what
                        overlay writes when a dir is removed and re-created).

The tar is untrusted input, and we write as root, so: member names are confined
to `dest` (no `..` escapes), nothing is ever written *through* a symlink (every
parent is checked with lstat), and overlay's own markers are never taken from
the tar's xattrs (that would let a layer forge an opaque directory).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import posixpath
import shutil
import stat
import tarfile
from typing import BinaryIO

from dockyard import errdefs
from dockyard.storage.compression import CorruptStream

log = logging.getLogger(__name__)

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
_XATTR_PAX_PREFIX = "SCHILY.xattr."
_CHUNK = 1 << 20


class InvalidLayer(errdefs.InvalidParameter):
    """The layer tar is malformed, truncated, or tries to write outside its root."""


def chain_ids(diff_ids: list[str]) -> list[str]:
    """OCI chain IDs: ChainID(L0) = DiffID(L0);
    ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + DiffID(Ln))."""
    chains: list[str] = []
    for diff_id in diff_ids:
        if not chains:
            chains.append(diff_id)
        else:
            h = hashlib.sha256(f"{chains[-1]} {diff_id}".encode()).hexdigest()
            chains.append("sha256:" + h)
    return chains


def apply_layer(stream: BinaryIO, dest: str) -> int:
    """Unpack the (decompressed) layer tar `stream` into the empty dir `dest`.

    Returns the unpacked size: the sum of the sizes of regular file members.
    Raises InvalidLayer for an unsafe or corrupt layer; `dest` is then left
    half-filled, for the caller to remove with its snapshot.
    """
    applier = _Applier(dest)
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                applier.apply(tar, member)
    except (tarfile.TarError, EOFError, CorruptStream) as e:
        raise InvalidLayer(f"invalid layer tar: {e}") from e
    applier.finish()
    return applier.size


def _normalize(name: str) -> str:
    """The member's path relative to the layer root ("" for the root itself).

    Leading "/" and "./" are dropped (tars made with `tar -C dir .` or with
    absolute names are common). A path that leaves the root through ".." is
    refused. This is purely lexical; symlinks are dealt with while writing."""
    stripped = name
    while stripped.startswith(("/", "./")):
        stripped = stripped[1:] if stripped.startswith("/") else stripped[2:]
    path = posixpath.normpath(stripped) if stripped else "."
    if path == ".." or path.startswith("../"):
        raise InvalidLayer(f"layer path {name!r} escapes the layer root")
    return "" if path == "." else path


class _Applier:
    def __init__(self, dest: str):
        self.dest = dest
        self.size = 0
        self._dir_times: dict[str, tuple[int, int]] = {}  # host path -> (atime_ns, mtime_ns)

    # -- paths ------------------------------------------------------------------

    def _host(self, path: str) -> str:
        return os.path.join(self.dest, path) if path else self.dest

    def _parent(self, path: str, name: str, create: bool = True) -> None:
        """Make sure every parent of `path` is a real directory inside dest,
        creating missing ones (0755, as docker does). An existing parent that is
        a symlink (or not a directory) is refused: following it would write
        outside the layer, e.g. `evil -> /etc` then `evil/passwd`."""
        current = self.dest
        for part in posixpath.dirname(path).split("/") if "/" in path else []:
            current = os.path.join(current, part)
            try:
                st = os.lstat(current)
            except FileNotFoundError:
                if not create:
                    raise InvalidLayer(f"layer path {name!r} is not in the layer") from None
                os.mkdir(current, 0o755)
                continue
            if stat.S_ISLNK(st.st_mode):
                raise InvalidLayer(f"layer path {name!r} goes through a symlink")
            if not stat.S_ISDIR(st.st_mode):
                raise InvalidLayer(f"layer path {name!r} goes through a non-directory")

    def _clear(self, host: str, keep_dir: bool) -> None:
        """Remove what is at `host` so an entry can take its place (later tar
        entries replace earlier ones). A directory is kept if the new entry is
        a directory too: it merges, keeping its contents."""
        try:
            st = os.lstat(host)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return
            shutil.rmtree(host)  # does not follow symlinks inside
            self._dir_times = {p: t for p, t in self._dir_times.items()
                               if p != host and not p.startswith(host + "/")}
        else:
            os.unlink(host)

    # -- entries ----------------------------------------------------------------

    def apply(self, tar: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        path = _normalize(m.name)
        parents = path.split("/")[:-1]
        if any(p.startswith(WHITEOUT_META_PREFIX) for p in parents):
            return  # inside aufs bookkeeping dirs (.wh..wh.plnk/...): not image files
        if any(p.startswith(WHITEOUT_PREFIX) for p in parents):
            raise InvalidLayer(f"layer path {m.name!r} is inside a whiteout")
        base = posixpath.basename(path)
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(path, base, m.name)
            return
        if not path:
            if not m.isdir():
                raise InvalidLayer(f"layer root {m.name!r} is not a directory")
            self._metadata(self.dest, m)
            return
        self._parent(path, m.name)
        host = self._host(path)
        self._clear(host, keep_dir=m.isdir())
        if m.isreg():
            self._write_file(tar, m, host)
            self.size += m.size
        elif m.isdir():
            if not os.path.lexists(host):
                os.mkdir(host, 0o755)
        elif m.issym():
            # Any target is fine, absolute ones too (etc/mtab -> /proc/mounts):
            # symlinks are resolved inside the container's root, never by us.
            os.symlink(m.linkname, host)
        elif m.islnk():
            self._hardlink(m, host)
            return  # a hard link shares its target's inode and metadata
        elif m.ischr() or m.isblk() or m.isfifo():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
            os.mknod(host, kind | 0o600, os.makedev(m.devmajor, m.devminor))
        else:
            raise InvalidLayer(f"layer path {m.name!r} has unsupported tar type {m.type!r}")
        self._metadata(host, m)

    def _write_file(self, tar: tarfile.TarFile, m: tarfile.TarInfo, host: str) -> None:
        # O_NOFOLLOW|O_EXCL: never open something that appeared at this name.
        fd = os.open(host, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
        with os.fdopen(fd, "wb") as out:
            src = tar.extractfile(m)
            assert src is not None
            while chunk := src.read(_CHUNK):
                out.write(chunk)
            if out.tell() != m.size:
                raise InvalidLayer(f"layer path {m.name!r}: unexpected end of data")

    def _hardlink(self, m: tarfile.TarInfo, host: str) -> None:
        target = _normalize(m.linkname)
        if not target:
            raise InvalidLayer(f"hard link {m.name!r} points at the layer root")
        self._parent(target, m.linkname, create=False)
        source = self._host(target)
        try:
            st = os.lstat(source)
        except FileNotFoundError:
            raise InvalidLayer(
                f"hard link {m.name!r} -> {m.linkname!r}: target is not in the layer") from None
        # Regular files, and symlinks (tar records any multiply-linked inode
        # this way); never directories.
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
            raise InvalidLayer(f"hard link {m.name!r} -> {m.linkname!r}: target is not a file")
        os.link(source, host, follow_symlinks=False)

    def _whiteout(self, path: str, base: str, name: str) -> None:
        parent = posixpath.dirname(path)
        if base == WHITEOUT_OPAQUE:
            self._parent(path, name)
            host = self._host(parent)
            if parent and not os.path.lexists(host):
                os.mkdir(host, 0o755)
            elif parent and not stat.S_ISDIR(os.lstat(host).st_mode):
                raise InvalidLayer(f"opaque whiteout {name!r} in a non-directory")
            os.setxattr(host, OVERLAY_OPAQUE_XATTR, b"y", follow_symlinks=False)
            return
        if base.startswith(WHITEOUT_META_PREFIX):
            # Other .wh..wh. names are aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs):
            # nothing a lower dir needs, never a file of the image.
            return
        hidden = base[len(WHITEOUT_PREFIX):]
        if hidden in ("", ".", ".."):
            raise InvalidLayer(f"invalid whiteout {name!r}")
        target = posixpath.join(parent, hidden)
        self._parent(target, name)
        host = self._host(target)
        self._clear(host, keep_dir=False)
        os.mknod(host, stat.S_IFCHR | 0o000, os.makedev(0, 0))

    # -- metadata ---------------------------------------------------------------

    def _metadata(self, host: str, m: tarfile.TarInfo) -> None:
        # Order matters: chown(2) clears setuid/setgid bits and the
        # security.capability xattr, so ownership first, then mode, then xattrs.
        os.chown(host, m.uid, m.gid, follow_symlinks=False)
        if not m.issym():  # a symlink's mode means nothing (and lchmod does not exist)
            os.chmod(host, stat.S_IMODE(m.mode))
        self._xattrs(host, m)
        mtime_ns = int(m.mtime * 1e9)  # tarfile has already read a PAX mtime (sub-second)
        atime_ns = int(float(m.pax_headers["atime"]) * 1e9) if "atime" in m.pax_headers \
            else mtime_ns
        if m.isdir():
            # Creating entries inside a directory updates its mtime, so
            # directories get theirs at the very end (see finish).
            self._dir_times[host] = (atime_ns, mtime_ns)
        else:
            os.utime(host, ns=(atime_ns, mtime_ns), follow_symlinks=False)

    def _xattrs(self, host: str, m: tarfile.TarInfo) -> None:
        for key, value in m.pax_headers.items():
            if not key.startswith(_XATTR_PAX_PREFIX):
                continue
            name = key[len(_XATTR_PAX_PREFIX):]
            if name.startswith("trusted.overlay."):
                # Overlayfs reads its markers (opaque, redirect, metacopy) from
                # trusted.overlay.*; only our whiteout translation may set them.
                log.warning("layer path %r: ignoring xattr %s", m.name, name)
                continue
            # tarfile decodes PAX values as UTF-8 with surrogateescape:
            # encoding back the same way gives the exact bytes (binary ones too).
            raw = value.encode("utf-8", "surrogateescape")
            try:
                os.setxattr(host, name, raw, follow_symlinks=False)
            except OSError as e:
                # As moby does: a filesystem without xattr support, or a
                # namespace the kernel refuses here (user.* on a symlink,
                # security.* under an LSM), loses the xattr with a warning.
                if e.errno not in (errno.EOPNOTSUPP, errno.EPERM):
                    raise
                log.warning("layer path %r: cannot set xattr %s: %s", m.name, name, e.strerror)

    def finish(self) -> None:
        # Every entry is in place now, so no later create or unlink can bump
        # these times again. Deepest first: utime(2) changes only the inode it
        # names, so this order is not load-bearing, but it is safe to keep
        # even if a future step (say, removing leftovers) touches parents.
        for host in sorted(self._dir_times, key=lambda p: -p.count("/")):
            os.utime(host, ns=self._dir_times[host], follow_symlinks=False)
