"""mount(2) and umount2(2), and carrying out a snapshotter's mount plan.

The snapshotter says *what* to mount as `Mount(type, source, options)`, in
mount(8)'s words: options mix per-mount flags ("ro", "rbind", "nosuid") with
filesystem data ("lowerdir=...", "upperdir=..."). Here they are split, as
mount(8) and containerd's mount.All do: flags become mount(2)'s `mountflags`,
everything else is joined with commas into its `data` argument.
"""

from __future__ import annotations

import ctypes
import errno
import os
TYPE_CHECKING = False  # typing costs ~4 ms to import; the runtime's CLI imports this module
if TYPE_CHECKING:  # data only: linux/ does not depend on storage/ at run time
    from typing import Iterable

    from dockyard.storage.snapshots import Mount

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MNT_DETACH = 0x2

# The kernel copies at most one page of mount(2)'s `data` (copy_mount_options);
# a longer overlay lowerdir= list would be cut short, not refused.
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                        ctypes.c_ulong, ctypes.c_char_p]
_libc.mount.restype = ctypes.c_int
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.umount2.restype = ctypes.c_int

# option -> (flags to set, flags to clear), as mount(8) reads them
_FLAG_OPTIONS = {
    "ro": (MS_RDONLY, 0), "rw": (0, MS_RDONLY),
    "bind": (MS_BIND, 0), "rbind": (MS_BIND | MS_REC, 0),
    "nosuid": (MS_NOSUID, 0), "suid": (0, MS_NOSUID),
    "nodev": (MS_NODEV, 0), "dev": (0, MS_NODEV),
    "noexec": (MS_NOEXEC, 0), "exec": (0, MS_NOEXEC),
    "private": (MS_PRIVATE, 0), "rprivate": (MS_PRIVATE | MS_REC, 0),
}


def _arg(s: str | None) -> bytes | None:
    return os.fsencode(s) if s else None


def mount(source: str | None, target: str, fstype: str | None,
          flags: int = 0, data: str = "") -> None:
    raw = data.encode() if data else None
    call = f"mount({source!r}, {target!r}, {fstype!r}, {flags:#x}, {data!r})"
    if raw is not None and len(raw) >= _PAGE_SIZE:
        raise OSError(errno.E2BIG, f"{call}: data is longer than a page ({len(raw)} bytes)")
    if _libc.mount(_arg(source), os.fsencode(target), _arg(fstype), flags, raw) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{call}: {os.strerror(err)}")


def umount(target: str, flags: int = 0) -> None:
    """umount2(2); MNT_DETACH in `flags` detaches now and cleans up when unused."""
    if _libc.umount2(os.fsencode(target), flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"umount2({target!r}, {flags:#x}): {os.strerror(err)}")


def parse_options(options: Iterable[str]) -> tuple[int, str]:
    """Split mount(8)-style options into mount(2)'s flags and data string."""
    flags, data = 0, []
    for opt in options:
        if opt in _FLAG_OPTIONS:
            set_, clear = _FLAG_OPTIONS[opt]
            flags = (flags | set_) & ~clear
        else:
            data.append(opt)
    return flags, ",".join(data)


def mount_one(m: "Mount", target: str) -> None:
    flags, data = parse_options(m.options)
    if m.type == "bind" or flags & MS_BIND:
        # A bind mount ignores every flag but MS_BIND|MS_REC on the first
        # call; ro/nosuid/... take effect only through a remount of the bind.
        mount(m.source, target, None, flags & (MS_BIND | MS_REC))
        extra = flags & ~(MS_BIND | MS_REC | MS_PRIVATE)
        if extra:
            try:
                mount(None, target, None, MS_REMOUNT | MS_BIND | extra)
            except OSError:
                umount(target, MNT_DETACH)
                raise
    else:
        mount(m.source, target, m.type, flags & ~(MS_PRIVATE | MS_REC), data)
    if flags & MS_PRIVATE:
        # Propagation is changed by its own call, with no other flags.
        mount(None, target, None, flags & (MS_PRIVATE | MS_REC))


def mount_all(mounts: list["Mount"], target: str) -> None:
    """Mount each of `mounts` on `target`, in order (each on top of the last,
    as containerd's mount.All). On failure, what was mounted is unmounted."""
    done = 0
    try:
        for m in mounts:
            mount_one(m, target)
            done += 1
    except BaseException:
        for _ in range(done):
            umount(target, MNT_DETACH)
        raise


def unmount_all(target: str, flags: int = 0) -> None:
    """Unmount everything stacked on `target` (no-op when nothing is)."""
    while True:
        try:
            umount(target, flags)
        except OSError as e:
            if e.errno in (errno.EINVAL, errno.ENOENT):  # not (or no longer) a mount point
                return
            raise


def mountinfo(path: str = "/proc/self/mountinfo") -> list[list[str]]:
    """The fields of each line of mountinfo: [4] is the mount point (escaped,
    see unescape), [6:index("-")] the optional fields, then type and source."""
    with open(path) as f:
        return [line.split() for line in f]


def unescape(s: str) -> str:
    return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n") \
        .replace("\\134", "\\")


def mount_of(path: str) -> tuple[str, list[str]]:
    """The mount point `path` lives on, and that mount's optional fields
    ("shared:N" when it propagates to its peers, "master:N" when it receives
    from one), from /proc/self/mountinfo: the last, longest match wins."""
    best, optional = "/", []
    for f in mountinfo():
        mp = unescape(f[4])
        if (path == mp or path.startswith(mp.rstrip("/") + "/")) and len(mp) >= len(best):
            best, optional = mp, f[6:f.index("-")]
    return best, optional


def mount_points_under(path: str) -> list[str]:
    """Mount points at `path` or below it, parents first. (os.path.ismount
    cannot tell a bind mount from the same filesystem: it compares devices.)"""
    path = path.rstrip("/") or "/"
    prefix = path + "/" if path != "/" else "/"
    found = {unescape(f[4]) for f in mountinfo()}
    return sorted((m for m in found if m == path or m.startswith(prefix)),
                  key=lambda m: m.count("/"))


def is_mount_point(path: str) -> bool:
    return (path.rstrip("/") or "/") in mount_points_under(path)
