"""A container's root filesystem: carrying out the OCI `mounts` list,
pivot_root, masked and read-only paths. The kernel side of the mount plan
(the device nodes in /dev are devices.py's).

The plan arrives as OCI config data; `parse_mount()` turns one entry into
mount(2)'s vocabulary (flags, propagation, data) exactly as runc's specconv
does, and the functions below act on it. They run in the container init, in
its own mount namespace, in the order `dockyard.runtime.init` documents; the
functions marked "after pivot_root" take container paths.

Destinations are resolved inside the rootfs with `secure_join()`: a symlink in
the image (`/etc -> /host/etc`) is followed as if the rootfs were `/`, never
out of it. (A rootfs changed by someone else between the join and the mount
can still race us; runc closes that with /proc/self/fd paths. Ours is a
single-tenant image we just unpacked.)
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat

from dockyard.linux import syscalls as sc
from dockyard.linux.inroot import clean, secure_join  # noqa: F401 (re-exported)
from dockyard.linux.mount import mount, mount_of, mountinfo, umount, unescape

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_POSIXACL = 1 << 16
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_I_VERSION = 1 << 23
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

# option -> (clear?, flag): runc's specconv table, which is mount(8)'s.
FLAGS = {
    "acl": (False, MS_POSIXACL), "async": (True, MS_SYNCHRONOUS), "atime": (True, MS_NOATIME),
    "bind": (False, MS_BIND), "defaults": (False, 0), "dev": (True, MS_NODEV),
    "diratime": (True, MS_NODIRATIME), "dirsync": (False, MS_DIRSYNC),
    "exec": (True, MS_NOEXEC), "iversion": (False, MS_I_VERSION),
    "lazytime": (False, MS_LAZYTIME), "loud": (True, MS_SILENT), "mand": (False, MS_MANDLOCK),
    "noacl": (True, MS_POSIXACL), "noatime": (False, MS_NOATIME), "nodev": (False, MS_NODEV),
    "nodiratime": (False, MS_NODIRATIME), "noexec": (False, MS_NOEXEC),
    "noiversion": (True, MS_I_VERSION), "nolazytime": (True, MS_LAZYTIME),
    "nomand": (True, MS_MANDLOCK), "norelatime": (True, MS_RELATIME),
    "nostrictatime": (True, MS_STRICTATIME), "nosuid": (False, MS_NOSUID),
    "nosymfollow": (False, MS_NOSYMFOLLOW), "rbind": (False, MS_BIND | MS_REC),
    "relatime": (False, MS_RELATIME), "remount": (False, MS_REMOUNT), "ro": (False, MS_RDONLY),
    "rw": (True, MS_RDONLY), "silent": (False, MS_SILENT), "strictatime": (False, MS_STRICTATIME),
    "suid": (True, MS_NOSUID), "sync": (False, MS_SYNCHRONOUS), "symfollow": (True, MS_NOSYMFOLLOW),
}
PROPAGATION = {
    "rprivate": MS_PRIVATE | MS_REC, "private": MS_PRIVATE, "rslave": MS_SLAVE | MS_REC,
    "slave": MS_SLAVE, "rshared": MS_SHARED | MS_REC, "shared": MS_SHARED,
    "runbindable": MS_UNBINDABLE | MS_REC, "unbindable": MS_UNBINDABLE,
}
# Recursive attributes (mount_setattr(2), Linux 5.12+): option -> (clear?, MOUNT_ATTR_*).
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC = 0x1, 0x2, 0x4, 0x8
MOUNT_ATTR__ATIME, MOUNT_ATTR_NOATIME, MOUNT_ATTR_STRICTATIME = 0x70, 0x10, 0x20
MOUNT_ATTR_NODIRATIME, MOUNT_ATTR_NOSYMFOLLOW = 0x80, 0x200000
REC_ATTRS = {
    "rro": (False, MOUNT_ATTR_RDONLY), "rrw": (True, MOUNT_ATTR_RDONLY),
    "rnosuid": (False, MOUNT_ATTR_NOSUID), "rsuid": (True, MOUNT_ATTR_NOSUID),
    "rnodev": (False, MOUNT_ATTR_NODEV), "rdev": (True, MOUNT_ATTR_NODEV),
    "rnoexec": (False, MOUNT_ATTR_NOEXEC), "rexec": (True, MOUNT_ATTR_NOEXEC),
    "rnodiratime": (False, MOUNT_ATTR_NODIRATIME), "rdiratime": (True, MOUNT_ATTR_NODIRATIME),
    "rrelatime": (False, 0), "rnorelatime": (True, 0),
    "rnoatime": (False, MOUNT_ATTR_NOATIME), "ratime": (True, MOUNT_ATTR_NOATIME),
    "rstrictatime": (False, MOUNT_ATTR_STRICTATIME),
    "rnostrictatime": (True, MOUNT_ATTR_STRICTATIME),
    "rnosymfollow": (False, MOUNT_ATTR_NOSYMFOLLOW), "rsymfollow": (True, MOUNT_ATTR_NOSYMFOLLOW),
}
_ATIME_OPTS = {"rrelatime", "rnoatime", "rstrictatime"}


class Mount:
    """One OCI mount in mount(2)'s words (runc's configs.Mount)."""

    def __init__(self, destination: str, type: str, source: str = "", flags: int = 0,
                 propagation: list[int] | None = None, data: str = "",
                 tmpcopyup: bool = False, attr_set: int = 0, attr_clr: int = 0) -> None:
        self.destination, self.type, self.source = destination, type, source
        self.flags, self.propagation, self.data = flags, list(propagation or []), data
        self.tmpcopyup, self.attr_set, self.attr_clr = tmpcopyup, attr_set, attr_clr

    def __repr__(self) -> str:
        return (f"Mount({self.destination!r}, {self.type!r}, {self.source!r}, "
                f"flags={self.flags:#x}, propagation={self.propagation}, data={self.data!r})")


def parse_mount(m: dict, bundle: str = "/") -> Mount:
    """An OCI `mounts` entry -> Mount. Unknown options are filesystem data."""
    out = Mount(destination=m.get("destination", ""), type=m.get("type") or "",
                source=m.get("source") or "")
    data = []
    for opt in m.get("options") or []:
        if opt in FLAGS and FLAGS[opt][1]:
            clear, flag = FLAGS[opt]
            out.flags = out.flags & ~flag if clear else out.flags | flag
        elif opt in PROPAGATION:
            out.propagation.append(PROPAGATION[opt])
        elif opt in REC_ATTRS:
            clear, flag = REC_ATTRS[opt]
            if clear:
                out.attr_clr |= flag
            else:
                out.attr_set |= flag
                if opt in _ATIME_OPTS:
                    # mount_setattr(2): an atime mode must also clear MOUNT_ATTR__ATIME.
                    out.attr_clr |= MOUNT_ATTR__ATIME
        elif opt == "tmpcopyup":
            out.tmpcopyup = True
        elif opt != "defaults":
            data.append(opt)
    out.data = ",".join(data)
    if out.flags & MS_BIND:
        # The type of a bind mount means nothing to the kernel; runc calls it "bind".
        out.type = "bind"
        if not os.path.isabs(out.source):
            out.source = os.path.join(bundle, out.source)
    return out


def _statfs_type(path: str) -> int:
    buf = ctypes.create_string_buffer(256)  # struct statfs; f_type is the first word
    if _libc.statfs(os.fsencode(path), buf) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"statfs {path}: {os.strerror(err)}")
    return ctypes.c_long.from_buffer(buf).value


_libc = ctypes.CDLL(None, use_errno=True)
PROC_SUPER_MAGIC = 0x9FA0


# -- before pivot_root: host paths ------------------------------------------------

def prepare_root(rootfs: str, propagation: int = 0) -> None:
    """Cut our mount namespace off from the host's, then make rootfs a mount.

    - `/` becomes rslave (or the spec's rootfsPropagation): our mounts no
      longer propagate to the host, host mounts still reach us.
    - pivot_root(2) refuses a new root whose parent mount is shared, so that
      parent is made private (only in our namespace).
    - pivot_root needs the new root to be a mount point: bind it onto itself.
    """
    mount(None, "/", None, propagation or (MS_SLAVE | MS_REC))
    parent, shared = _parent_mount(rootfs)
    if shared:
        mount(None, parent, None, MS_PRIVATE)
    mount(rootfs, rootfs, None, MS_BIND | MS_REC)


def _parent_mount(path: str) -> tuple[str, bool]:
    mountpoint, optional = mount_of(path)
    return mountpoint, any(o.startswith("shared:") for o in optional)


def _check_proc_mount(rootfs: str, dest: str, source: str) -> None:
    """Mounts inside the container's /proc could hide what maskedPaths hide;
    runc allows only a proc on /proc itself and a few files (lxcfs)."""
    proc = os.path.join(rootfs, "proc")
    if dest != proc and not dest.startswith(proc + "/"):
        return
    if dest == proc:
        if not source or _statfs_type(source) == PROC_SUPER_MAGIC:
            return
        raise OSError(errno.EPERM, f"{dest!r} cannot be mounted because it is not of type proc")
    allowed = ("cpuinfo", "diskstats", "meminfo", "stat", "swaps", "uptime", "loadavg",
               "slabinfo", "net/dev", "sys/kernel/ns_last_pid")
    if any(dest == os.path.join(proc, a) for a in allowed):
        return
    raise OSError(errno.EPERM, f"{dest!r} cannot be mounted because it is inside /proc")


def _propagate(m: Mount, dest: str) -> None:
    flags = m.flags
    if m.type == "tmpfs" or clean(m.destination) == "/dev":
        # Made read-only at the end (finalize), after /dev is filled in.
        flags &= ~MS_RDONLY
    mount(m.source, dest, None if m.type == "bind" else m.type, flags, m.data)
    for pflag in m.propagation:  # propagation changes take a call each
        mount(None, dest, None, pflag)


def create_if_not_exists(path: str, is_dir: bool) -> None:
    """What a bind needs to be mounted on: a directory, or a file for a file."""
    if os.path.lexists(path):
        return
    if is_dir:
        os.makedirs(path, 0o755, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(path), 0o755, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_CLOEXEC, 0o755))


def _remount_bind(m: Mount, dest: str) -> None:
    """A bind mount takes ro/nosuid/... only through a second, remount call."""
    flags = m.flags | MS_REMOUNT
    try:
        mount(m.source, dest, None, flags)
    except OSError:
        # A bind of something on a read-only filesystem must stay read-only.
        if os.statvfs(m.source).f_flag & MS_RDONLY:
            mount(m.source, dest, None, flags | MS_RDONLY)
        else:
            raise


def _set_rec_attr(m: Mount, dest: str) -> None:
    if not (m.attr_set or m.attr_clr):
        return
    attr = (ctypes.c_uint64 * 4)(m.attr_set, m.attr_clr, 0, 0)
    # mount_setattr(AT_FDCWD, dest, AT_RECURSIVE, &attr, sizeof attr); nr 442 everywhere
    if _libc.syscall(ctypes.c_long(442), ctypes.c_int(-100), os.fsencode(dest),
                     ctypes.c_uint(0x8000), attr, ctypes.c_size_t(32)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount_setattr({dest!r}, set={m.attr_set:#x}, "
                           f"clr={m.attr_clr:#x}): {os.strerror(err)}")


def mount_entry(m: Mount, rootfs: str, cgroupns: bool = False) -> None:
    """Carry out one mount into `rootfs` (runc's mountToRootfs)."""
    if m.type in ("proc", "sysfs"):
        dest = os.path.join(rootfs, clean(m.destination).lstrip("/"))
        if os.path.lexists(dest) and not os.path.isdir(dest) or os.path.islink(dest):
            raise OSError(errno.ENOTDIR,
                          f"filesystem {m.type!r} must be mounted on ordinary directory")
        os.makedirs(dest, 0o755, exist_ok=True)
        _propagate(m, dest)
        return
    dest = secure_join(rootfs, m.destination)
    if m.type == "mqueue":
        os.makedirs(dest, 0o755, exist_ok=True)
        _propagate(m, dest)
    elif m.type == "tmpfs":
        try:
            mode = stat.S_IMODE(os.stat(dest).st_mode)
        except FileNotFoundError:
            mode = None
            os.makedirs(dest, 0o755, exist_ok=True)
        if m.tmpcopyup:
            _tmpfs_copyup(m, dest)
        else:
            _propagate(m, dest)
        if mode is not None:
            # The tmpfs root keeps the mode of the directory it covers (as runc).
            os.chmod(dest, mode)
    elif m.type == "bind":
        st = os.stat(m.source)
        _check_proc_mount(rootfs, dest, m.source)
        create_if_not_exists(dest, stat.S_ISDIR(st.st_mode))
        _propagate(m, dest)
        if m.flags & ~(MS_REC | MS_REMOUNT | MS_BIND):
            _remount_bind(m, dest)
        _set_rec_attr(m, dest)
    elif m.type == "cgroup":
        if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
            _mount_cgroup2(m, dest, rootfs)
        else:
            _mount_cgroup1(m, dest, rootfs, cgroupns)
    else:
        _check_proc_mount(rootfs, dest, m.source)
        os.makedirs(dest, 0o755, exist_ok=True)
        _propagate(m, dest)


def _tmpfs_copyup(m: Mount, dest: str) -> None:
    """Mount a tmpfs elsewhere, copy what `dest` holds into it, move it over."""
    import shutil
    import tempfile
    tmp = tempfile.mkdtemp(prefix="dockyard-copyup-")
    try:
        _propagate(m, tmp)
        try:
            shutil.copytree(dest, tmp, symlinks=True, dirs_exist_ok=True)
            mount(tmp, dest, None, MS_MOVE)
        except BaseException:
            umount(tmp, sc.MNT_DETACH)
            raise
    finally:
        os.rmdir(tmp)


def _cgroup_v1_hierarchies() -> list[tuple[str, str, list[str]]]:
    """(mountpoint, mount root, subsystems) of each v1 hierarchy, first mount wins."""
    own: dict[str, str] = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            hid, subs, path = line.rstrip("\n").split(":", 2)
            for s in subs.split(","):
                if s:
                    own[s] = path
    seen: set[str] = set()
    out = []
    for fields in mountinfo():
        sep = fields.index("-")
        if fields[sep + 1] != "cgroup":
            continue
        subs = [o for o in fields[sep + 3].split(",") if o in own and o not in seen]
        if subs:
            seen.update(subs)
            out.append((unescape(fields[4]), unescape(fields[3]), subs))
    return [(mp, root, subs) for mp, root, subs in out]


def _own_cgroup(subsystem: str) -> str:
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, subs, path = line.rstrip("\n").split(":", 2)
            if subsystem in subs.split(","):
                return path
    raise LookupError(f"no cgroup for {subsystem} in /proc/self/cgroup")


def _mount_cgroup1(m: Mount, dest: str, rootfs: str, cgroupns: bool) -> None:
    """cgroup v1: a tmpfs at /sys/fs/cgroup, then one directory per hierarchy,
    holding only the container's own cgroup (runc's mountCgroupV1)."""
    hierarchies = _cgroup_v1_hierarchies()  # read before anything is mounted over
    tmpfs = Mount(destination=m.destination, type="tmpfs", source="tmpfs",
                  flags=MS_NOEXEC | MS_NOSUID | MS_NODEV, data="mode=755",
                  propagation=list(m.propagation))
    mount_entry(tmpfs, rootfs)
    for mountpoint, root, subs in hierarchies:
        name = os.path.basename(mountpoint)
        target = os.path.join(dest, name)
        os.makedirs(target, 0o755, exist_ok=True)
        if cgroupns:
            # In a cgroup namespace a fresh mount shows the namespace's root,
            # which is the container's cgroup.
            flags = MS_NOEXEC | MS_NOSUID | MS_NODEV | (m.flags & MS_RDONLY)
            data = ",".join(subs)
            source = "systemd" if data == "name=systemd" else "cgroup"
            mount(source, target, "cgroup", flags, data)
        else:
            own = _own_cgroup(subs[0])
            rel = os.path.relpath(own, root)
            bind = Mount(destination=os.path.join(clean(m.destination), name), type="bind",
                         source=os.path.normpath(os.path.join(mountpoint, rel)),
                         flags=MS_BIND | MS_REC | m.flags, propagation=list(m.propagation))
            mount_entry(bind, rootfs)
        if "," in name:  # cpu,cpuacct: links named after each controller
            for sub in name.split(","):
                link = os.path.join(dest, sub)
                if not os.path.lexists(link):
                    os.symlink(name, link)


def _mount_cgroup2(m: Mount, dest: str, rootfs: str) -> None:
    os.makedirs(dest, 0o755, exist_ok=True)
    try:
        mount(m.source or "cgroup", dest, "cgroup2", m.flags, m.data)
        return
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.EBUSY):
            raise
    # Without a cgroup namespace the kernel refuses a new cgroup2 mount: bind
    # the host's hierarchy instead.
    bind = Mount(destination=m.destination, type="bind", source="/sys/fs/cgroup",
                 flags=MS_BIND | m.flags, propagation=list(m.propagation))
    mount_entry(bind, rootfs)


def pivot_root(rootfs: str) -> None:
    """Make `rootfs` our `/` and let go of the old root.

    pivot_root(".", ".") stacks the old root on top of the new one at "/";
    we then stand on the old root (fchdir), make it rslave so the unmount does
    not travel back to the host, and detach it. No directory for put_old is
    needed, so a read-only rootfs works.
    """
    oldroot = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        newroot = os.open(rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fchdir(newroot)
            sc.pivot_root(".", ".")
        finally:
            os.close(newroot)
        os.fchdir(oldroot)
        mount(None, ".", None, MS_SLAVE | MS_REC)
        umount(".", sc.MNT_DETACH)
    finally:
        os.close(oldroot)
    os.chdir("/")


def move_root(rootfs: str) -> None:
    """`--no-pivot`: move the rootfs mount onto `/` and chroot into it, for
    roots pivot_root(2) refuses (an initramfs). The old root stays reachable
    from a process that escapes the chroot; that is why pivot_root is the
    default."""
    os.chdir(rootfs)
    mount(rootfs, "/", None, MS_MOVE)
    os.chroot(".")
    os.chdir("/")


# -- after pivot_root: container paths -------------------------------------------

def finalize(mounts: list[Mount], readonly_root: bool, umask: int | None = None) -> None:
    """Read-only tmpfs and /dev mounts, then a read-only `/`, then the umask
    (process.user.umask, default 022)."""
    for m in mounts:
        if m.flags & MS_RDONLY and (m.type == "tmpfs" or clean(m.destination) == "/dev"):
            _remount_readonly(clean(m.destination), m.flags)
    if readonly_root:
        flags = MS_BIND | MS_REMOUNT | MS_RDONLY
        try:
            mount(None, "/", None, flags)
        except OSError:
            # The remount must repeat the mount's locked flags (nosuid, nodev...).
            mount(None, "/", None, flags | os.statvfs("/").f_flag)
    os.umask(0o022 if umask is None else umask)


def _remount_readonly(dest: str, flags: int) -> None:
    for _ in range(5):
        try:
            mount(None, dest, None, flags | MS_REMOUNT | MS_BIND | MS_RDONLY)
            return
        except OSError as e:
            if e.errno != errno.EBUSY:
                raise
            import time
            time.sleep(0.1)
    raise OSError(errno.EBUSY, f"unable to mount {dest} as readonly max retries reached")


def readonly_path(path: str) -> None:
    """Bind `path` onto itself, read-only (nothing to do when it is absent)."""
    try:
        mount(path, path, None, MS_BIND | MS_REC)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return
        raise
    keep = os.statvfs(path).f_flag & (MS_NOSUID | MS_NODEV | MS_NOEXEC)
    mount(path, path, None, keep | MS_BIND | MS_REMOUNT | MS_RDONLY)


def mask_path(path: str) -> None:
    """Hide `path`: /dev/null over a file, an empty read-only tmpfs over a directory."""
    try:
        mount("/dev/null", path, None, MS_BIND)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return
        if e.errno != errno.ENOTDIR:
            raise
        mount("tmpfs", path, "tmpfs", MS_RDONLY)
