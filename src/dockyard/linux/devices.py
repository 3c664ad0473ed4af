"""The container's /dev: device nodes, the ptmx symlink, the standard
symlinks, /dev/console. Runs in the container init; see rootfs.py for the
mounts around it.

When the spec mounts a tmpfs on /dev (docker always does), the init fills it:
the default nodes every container gets (runc's list: null zero full random
urandom tty), then the spec's `linux.devices`, each made with mknod(2) and
exactly the mode/uid/gid asked (umask 0). /dev/ptmx is never a node of its
own: it points at the container's devpts instance (`pts/ptmx`), so ptys
opened in the container are the container's. A spec that bind-mounts a whole
/dev gets none of this.
"""

from __future__ import annotations

import errno
import os
import stat

from dockyard.linux import syscalls as sc
from dockyard.linux.mount import mount
from dockyard.linux.rootfs import MS_BIND, Mount, clean, secure_join


def needs_dev_setup(mounts: list[Mount]) -> bool:
    """False when the spec bind-mounts a whole /dev (then we leave it alone)."""
    return not any(m.type == "bind" and clean(m.destination) == "/dev" for m in mounts)


# Devices every container gets (runc's specconv.AllowedDevices with a path).
DEFAULT_DEVICES = [
    {"path": "/dev/null", "type": "c", "major": 1, "minor": 3},
    {"path": "/dev/random", "type": "c", "major": 1, "minor": 8},
    {"path": "/dev/full", "type": "c", "major": 1, "minor": 7},
    {"path": "/dev/tty", "type": "c", "major": 5, "minor": 0},
    {"path": "/dev/zero", "type": "c", "major": 1, "minor": 5},
    {"path": "/dev/urandom", "type": "c", "major": 1, "minor": 9},
]


def devices(spec_devices: list[dict] | None) -> list[dict]:
    """The device nodes to create: defaults the spec does not override, then
    the spec's own (`linux.devices`)."""
    spec_devices = list(spec_devices or [])
    paths = {d.get("path") for d in spec_devices}
    return [d for d in DEFAULT_DEVICES if d["path"] not in paths] + spec_devices


_DEV_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def create_devices(rootfs: str, nodes: list[dict]) -> None:
    """mknod each device (falling back to a bind of the host's node on EPERM)."""
    old = os.umask(0)  # fileMode is meant exactly
    try:
        for node in nodes:
            path = node.get("path") or ""
            if not path or clean(path) == "/dev/ptmx":
                continue  # /dev/ptmx is the devpts instance's, see setup_ptmx
            kind = node.get("type", "c")
            if kind not in _DEV_TYPES:
                raise ValueError(f"{kind} is not a valid device type for device {path}")
            dest = secure_join(rootfs, path)
            os.makedirs(os.path.dirname(dest), 0o755, exist_ok=True)
            mode = (node.get("fileMode") if node.get("fileMode") is not None else 0o666) & 0o7777
            try:
                sc.mknod(dest, mode | _DEV_TYPES[kind], node.get("major", 0), node.get("minor", 0))
            except OSError as e:
                if e.errno == errno.EEXIST:
                    continue
                if e.errno != errno.EPERM:
                    raise
                os.close(os.open(dest, os.O_CREAT | os.O_CLOEXEC, 0o000))
                mount(path, dest, None, MS_BIND)
                continue
            os.chown(dest, node.get("uid") or 0, node.get("gid") or 0)
    finally:
        os.umask(old)


def setup_ptmx(rootfs: str) -> None:
    """/dev/ptmx -> pts/ptmx: the ptmx of the container's own devpts instance."""
    ptmx = os.path.join(rootfs, "dev/ptmx")
    if os.path.lexists(ptmx):
        os.unlink(ptmx)
    os.symlink("pts/ptmx", ptmx)


def setup_dev_symlinks(rootfs: str) -> None:
    links = [("/proc/self/fd", "dev/fd"), ("/proc/self/fd/0", "dev/stdin"),
             ("/proc/self/fd/1", "dev/stdout"), ("/proc/self/fd/2", "dev/stderr")]
    if os.path.exists("/proc/kcore"):
        links.append(("/proc/kcore", "dev/core"))
    for src, dst in links:
        try:
            os.symlink(src, os.path.join(rootfs, dst))
        except FileExistsError:
            pass


# -- after pivot_root: container paths ------------------------------------------

def reopen_dev_null() -> None:
    """Stdio fds that are the host's /dev/null become the container's."""
    fd = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
    try:
        rdev = os.fstat(fd).st_rdev
        for i in (0, 1, 2):
            try:
                st = os.fstat(i)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == rdev:
                os.dup2(fd, i, inheritable=True)
    finally:
        os.close(fd)


def mount_console(slave: str) -> None:
    """/dev/console is the pty slave (a bind mount, as runc)."""
    old = os.umask(0)
    try:
        os.close(os.open("/dev/console", os.O_CREAT | os.O_CLOEXEC, 0o666))
    finally:
        os.umask(old)
    mount(slave, "/dev/console", None, MS_BIND)
