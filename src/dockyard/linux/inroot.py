"""Paths inside a container's root filesystem: `..` and symlinks never lead out.

A container's files are untrusted: `/etc -> /host/etc`, `a/../../..`, a link
swapped in while we look. Every path the daemon opens in a container root
(`cp`, `export`, user lookup) is resolved as if that root were `/`:

- `openat2(2)` with RESOLVE_IN_ROOT (Linux 5.6) does it in the kernel: an
  absolute symlink restarts at the root, `..` at the root stays there, and
  the walk holds references the whole way, so a rename racing us cannot
  move the result outside (the kernel answers EAGAIN then; we retry).
  RESOLVE_NO_MAGICLINKS refuses /proc/<pid>/fd-style links, which point
  wherever the kernel likes.
- `secure_join()` is the lexical form (moby's FollowSymlinkInScope): a
  path string, with components that do not exist kept as written. It is for
  naming a place (a mount destination, a link's target in `cp`'s stat),
  never for opening one.

Only stdlib: the container init and the runtime import this module.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

# openat2 came after the syscall tables were unified: one number on every arch.
_SYS_OPENAT2 = 437

RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

IN_ROOT = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
_MAX_SYMLINKS = 255


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


def openat2(dirfd: int, path: str, flags: int, mode: int = 0, resolve: int = IN_ROOT) -> int:
    """openat2(2); O_CLOEXEC always. Raises OSError naming the call."""
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    raw = os.fsencode(path or ".")
    for _ in range(64):
        fd = _libc.syscall(_SYS_OPENAT2, ctypes.c_int(dirfd), raw, ctypes.byref(how),
                           ctypes.c_size_t(ctypes.sizeof(how)))
        if fd >= 0:
            return fd
        err = ctypes.get_errno()
        if err not in (errno.EAGAIN, errno.EINTR):
            break
    raise OSError(err, f"openat2({path!r}): {os.strerror(err)}", path)


def open_root(root: str) -> int:
    """An O_PATH descriptor of a root directory, to resolve paths against."""
    return os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


def open_at(rootfd: int, path: str, flags: int = os.O_RDONLY, mode: int = 0) -> int:
    """Open `path` inside the root `rootfd`. The last component is followed
    unless `flags` has O_NOFOLLOW (with O_PATH that opens the symlink itself)."""
    return openat2(rootfd, path, flags, mode)


def open_in_root(root: str, path: str, flags: int = os.O_RDONLY) -> int:
    """Open `path` as if `root` were "/" (a chroot's rules); a file descriptor.
    Raises OSError (ENOENT, ELOOP...) naming `path` and `root`."""
    rootfd = open_root(root)
    try:
        return openat2(rootfd, path, flags)
    except OSError as e:
        raise OSError(e.errno, f"{os.strerror(e.errno)}: {path!r} in {root!r}") from None
    finally:
        os.close(rootfd)


def split(path: str) -> tuple[str, str]:
    """(parent, last component) of a path relative to a root; the parent of a
    single name is "." (the root)."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return ".", "."
    return "/".join(parts[:-1]) or ".", parts[-1]


def make_dirs(rootfd: int, path: str, mode: int = 0o755,
              owner: tuple[int, int] | None = (0, 0)) -> int:
    """`mkdir -p` inside the root; returns an O_PATH descriptor of the
    directory. Directories it makes get `mode` (umask aside) and `owner`."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    done: list[str] = []
    fd = openat2(rootfd, ".", os.O_PATH | os.O_DIRECTORY)
    try:
        for part in parts:
            done.append(part)
            try:
                nxt = openat2(rootfd, "/".join(done), os.O_PATH | os.O_DIRECTORY)
            except FileNotFoundError:
                if part == "..":
                    raise
                # `fd` is the parent, already resolved inside the root; mkdirat
                # never follows its last component.
                os.mkdir(part, mode, dir_fd=fd)
                nxt = openat2(fd, part, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW,
                              resolve=RESOLVE_NO_SYMLINKS)
                if owner is not None:
                    os.chown(f"/proc/self/fd/{nxt}", *owner)
                os.chmod(f"/proc/self/fd/{nxt}", mode)
            os.close(fd)
            fd = nxt
        return fd
    except BaseException:
        os.close(fd)
        raise


def proc_path(fd: int, name: str = "") -> str:
    """A path naming `name` in the directory `fd` (or `fd` itself) for calls
    that take no descriptor (xattrs, chmod of an O_PATH fd). The directory is
    the one pinned by `fd`; give follow_symlinks=False for the last part."""
    return f"/proc/self/fd/{fd}/{name}" if name else f"/proc/self/fd/{fd}"


def clean(path: str) -> str:
    """Go's filepath.Clean of an absolute path (no trailing slash, no dots)."""
    return os.path.normpath("/" + path).replace("//", "/")


def secure_join(root: str, unsafe: str) -> str:
    """`root`/`unsafe` with every symlink resolved as if `root` were `/`.

    Components that do not exist yet are kept lexically (they will be made).
    """
    parts = [p for p in unsafe.split("/") if p]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            st = os.lstat(candidate)
        except OSError:
            resolved.append(part)
            continue
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > _MAX_SYMLINKS:
                raise OSError(errno.ELOOP, f"secure join {unsafe}: too many symlinks")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p] + parts
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)
