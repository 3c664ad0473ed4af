"""Copy-up: a new, empty volume mounted over a directory of the image starts
with a copy of that directory (docker's "populate volume").

The copy keeps what a container would see: modes, owners, timestamps, extended
attributes (capabilities, ACLs), symlinks as symlinks, hard links as links,
device nodes, fifos and sockets. File data moves with copy_file_range(2): the
kernel copies (or shares extents, on filesystems that can) without a trip
through user space. The directory itself takes the source's mode and owner, so
a volume over `/var/lib/app` (mode 0700, uid 999) is usable by the same user.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat

_CHUNK = 1 << 30


def is_empty(path: str) -> bool:
    with os.scandir(path) as it:
        return next(it, None) is None


def populate(source: str, volume: str) -> bool:
    """Copy `source` (a directory in the container's rootfs) into `volume` if the
    volume is empty; False when there was nothing to do.

    The copy is made in a staging directory beside the volume's and its
    entries renamed in at the end: a crash mid-copy leaves the volume empty,
    so the next start copies again, instead of a half copy that would never
    be completed. (A volume that is a mount point of its own, a tmpfs say,
    has no sibling on its filesystem and is copied into directly.)"""
    try:
        st = os.stat(source)
    except FileNotFoundError:
        return False
    if not stat.S_ISDIR(st.st_mode) or not is_empty(volume):
        return False
    links: dict[tuple[int, int], str] = {}
    in_kernel = [True]
    from dockyard.linux.mount import is_mount_point

    if is_mount_point(volume):
        _copy_dir(source, volume, links, in_kernel)
    else:
        staging = volume.rstrip("/") + ".copyup"
        shutil.rmtree(staging, ignore_errors=True)  # a copy a crash cut short
        os.mkdir(staging, 0o700)
        _copy_dir(source, staging, links, in_kernel)
        for name in os.listdir(staging):
            os.rename(os.path.join(staging, name), os.path.join(volume, name))
        os.rmdir(staging)
    _copy_metadata(source, volume, st)
    return True


def _copy_dir(src: str, dst: str, links: dict[tuple[int, int], str],
              in_kernel: list[bool]) -> None:
    with os.scandir(src) as entries:
        for entry in entries:
            s, d = entry.path, os.path.join(dst, entry.name)
            st = entry.stat(follow_symlinks=False)
            mode = st.st_mode
            if stat.S_ISDIR(mode):
                os.mkdir(d, 0o700)
                _copy_dir(s, d, links, in_kernel)
            elif st.st_nlink > 1 and not stat.S_ISDIR(mode) and (st.st_dev, st.st_ino) in links:
                os.link(links[(st.st_dev, st.st_ino)], d)
                continue
            elif stat.S_ISREG(mode):
                _copy_file(s, d, st.st_size, in_kernel)
            elif stat.S_ISLNK(mode):
                os.symlink(os.readlink(s), d)
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
                os.mknod(d, mode, st.st_rdev)
            elif stat.S_ISSOCK(mode):
                continue  # a socket cannot be copied; moby skips it too
            if st.st_nlink > 1 and not stat.S_ISDIR(mode):
                links[(st.st_dev, st.st_ino)] = d
            _copy_metadata(s, d, st)


def _copy_file(src: str, dst: str, size: int, in_kernel: list[bool]) -> None:
    """copy_file_range(2) while the filesystems take it (overlayfs, the usual
    source, refuses it across filesystems: EXDEV), else sendfile(2); either
    way the data stays in the kernel. `in_kernel[0]` remembers a refusal for
    the rest of the copy."""
    with open(src, "rb") as fin, open(dst, "xb") as fout:
        fd_in, fd_out = fin.fileno(), fout.fileno()
        offset = 0
        if in_kernel[0]:
            try:
                while offset < size:
                    n = os.copy_file_range(fd_in, fd_out, min(_CHUNK, size - offset))
                    if n == 0:
                        return
                    offset += n
                return
            except OSError as e:
                if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                    raise
                in_kernel[0] = False
                offset = os.lseek(fd_out, 0, os.SEEK_CUR)
        while offset < size:
            n = os.sendfile(fd_out, fd_in, offset, min(_CHUNK, size - offset))
            if n == 0:
                return  # (the file shrank meanwhile)
            offset += n


def _copy_metadata(src: str, dst: str, st: os.stat_result) -> None:
    """Owner before mode (chown clears setuid bits), xattrs, then times last."""
    link = stat.S_ISLNK(st.st_mode)
    os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
    if not link:
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    for name in _listxattr(src):
        try:
            os.setxattr(dst, name, os.getxattr(src, name, follow_symlinks=False),
                        follow_symlinks=False)
        except OSError as e:
            if e.errno not in (errno.EOPNOTSUPP, errno.EPERM):
                raise
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _listxattr(path: str) -> list[str]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.EOPNOTSUPP, errno.ENODATA):
            return []
        raise
    # overlayfs' own bookkeeping is not the file's
    return [n for n in names if not n.startswith(("trusted.overlay.", "user.overlay."))]
