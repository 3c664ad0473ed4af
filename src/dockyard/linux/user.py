"""Switching identity: setgroups, setgid, setuid, and the passwd facts we need.

Order matters and is the kernel's: supplementary groups and the gid can only
be changed while we are still root (CAP_SETGID), so setgroups and setgid come
before setuid; after setuid to a non-root uid the kernel clears the permitted
and effective capability sets unless PR_SET_KEEPCAPS is set (see
capabilities.set_keepcaps), which the init uses to keep the spec's
capabilities for a non-root user.
"""

from __future__ import annotations

import os
import stat


def _named(call: str, fn, *args) -> None:
    try:
        fn(*args)
    except OSError as e:
        raise OSError(e.errno, f"{call}: {os.strerror(e.errno)}") from None


def setgroups(gids: list[int]) -> None:
    _named(f"setgroups({list(gids)})", os.setgroups, list(gids))


def setgid(gid: int) -> None:
    # os.setresgid sets real, effective and saved ids at once, as setgid(2)
    # does for a privileged caller (and runc's system.Setgid).
    _named(f"setgid({gid})", os.setresgid, gid, gid, gid)


def setuid(uid: int) -> None:
    _named(f"setuid({uid})", os.setresuid, uid, uid, uid)


def switch(uid: int, gid: int, groups: list[int], set_groups: bool = True) -> None:
    """Become uid:gid with exactly `groups` as supplementary groups."""
    if set_groups:
        setgroups(groups)
    setgid(gid)
    setuid(uid)


def setgroups_allowed() -> bool:
    """False inside a user namespace whose setgroups is denied."""
    try:
        with open("/proc/self/setgroups") as f:
            return f.read().strip() != "deny"
    except OSError:
        return True


def home_of(uid: int, passwd: str = "/etc/passwd") -> str | None:
    """Home directory of `uid` in a passwd file; None when absent or unreadable.

    Called after pivot_root, so /etc/passwd is the container's own.
    """
    try:
        with open(passwd, encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.rstrip("\n").split(":")
                if len(parts) >= 6 and parts[2].strip() == str(uid):
                    return parts[5]
    except OSError:
        return None
    return None


def fix_stdio_owner(uid: int) -> None:
    """Give fds 0-2 to `uid` so a non-root container process can reopen them
    (/proc/self/fd/1), as runc does. /dev/null and read-only files are left."""
    try:
        null_rdev = os.stat("/dev/null").st_rdev
    except OSError:
        null_rdev = None
    for fd in (0, 1, 2):
        try:
            st = os.fstat(fd)
        except OSError:
            continue
        if st.st_uid == uid or (stat.S_ISCHR(st.st_mode) and st.st_rdev == null_rdev):
            continue
        try:
            os.fchown(fd, uid, -1)
        except OSError as e:
            if e.errno not in (1, 22, 30):  # EPERM, EINVAL, EROFS: leave it
                raise
