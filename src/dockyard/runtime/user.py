"""Who a container's process runs as: `user[:group]` against the image's files.

Docker resolves `Config.User` (`-u`) with runc's libcontainer/user against the
container root's /etc/passwd and /etc/group, then adds `HostConfig.GroupAdd`;
this module does the same, with the same rules and error messages:

    ""            uid 0; gid and supplementary groups of passwd's first uid-0
                  entry (if any)
    "name"        passwd entry by name; its gid; every group listing the name
    "1000"        numbers are always ids: passwd's entry for uid 1000 if there
                  is one, else uid 1000 with gid 0 and no groups
    "name:grp"    an explicit group (name or number) replaces the gid, and then
                  no supplementary groups are looked up
    "a:b:c"       everything after the second field is ignored

The files are read INSIDE the root filesystem: each path component is resolved
relative to the root, symlinks included, so `/etc/passwd -> /etc/../../../x`
or `-> /host/etc/passwd` land inside the rootfs, never on the host (what
moby's `symlink.FollowSymlinkInScope` does; `linux/inroot.py` opens them
with openat2's RESOLVE_IN_ROOT, so a swapped-in symlink cannot redirect it). A missing
or unreadable file is "no entries", as in runc; a file that isn't a regular
file (a FIFO, a device) is treated as missing rather than read.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field

from dockyard.linux.inroot import open_in_root

MIN_ID = 0
MAX_ID = (1 << 31) - 1          # runc's bound, for 32-bit compatibility
_MAX_FILE = 64 << 20            # never read more than this of a passwd/group file
_DECIMAL = re.compile(r"[+-]?[0-9]+")   # what Go's strconv.Atoi accepts


class UserLookupError(ValueError):
    """A user or group named in the spec does not exist; message in runc's words."""


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    password: str = ""
    uid: int = 0
    gid: int = 0
    gecos: str = ""
    home: str = ""
    shell: str = ""


@dataclass(frozen=True)
class GroupEntry:
    name: str
    password: str = ""
    gid: int = 0
    members: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExecUser:
    uid: int = 0
    gid: int = 0
    sgids: tuple[int, ...] = field(default=())
    home: str = ""


def _atoi(s: str) -> int | None:
    return int(s) if _DECIMAL.fullmatch(s) else None


def _int_field(s: str) -> int:
    # runc ignores conversion errors in the files: a bad number reads as 0
    n = _atoi(s)
    return n if n is not None else 0


def _fields(line: str, n: int) -> list[str]:
    parts = line.split(":")[:n]
    return parts + [""] * (n - len(parts))


def parse_passwd(text: str) -> list[PasswdEntry]:
    """Entries of an /etc/passwd file (name:password:UID:GID:GECOS:home:shell)."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        name, pw, uid, gid, gecos, home, shell = _fields(line, 7)
        out.append(PasswdEntry(name, pw, _int_field(uid), _int_field(gid), gecos, home, shell))
    return out


def parse_group(text: str) -> list[GroupEntry]:
    """Entries of an /etc/group file (name:password:GID:member,member); # comments."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, pw, gid, members = _fields(line, 4)
        out.append(GroupEntry(name, pw, _int_field(gid),
                              tuple(members.split(",")) if members else ()))
    return out


def _check_range(n: int) -> int:
    if not MIN_ID <= n <= MAX_ID:
        raise UserLookupError(f"uids and gids must be in range {MIN_ID}-{MAX_ID}")
    return n


def get_exec_user(user_spec: str, passwd: str | None, group: str | None) -> ExecUser:
    """Resolve `user[:group]` against passwd/group file contents (None: no file).

    runc's user.GetExecUser with zero defaults: the rules in the module docstring.
    """
    user_arg, group_arg = _fields(user_spec, 2)
    uid_arg, gid_arg = _atoi(user_arg), _atoi(group_arg)
    uid, gid, home, sgids = 0, 0, "", ()

    users = parse_passwd(passwd) if passwd is not None else []
    if user_arg == "":
        matches = [u for u in users if u.uid == uid]
    elif uid_arg is not None:
        matches = [u for u in users if u.uid == uid_arg]
    else:
        matches = [u for u in users if u.name == user_arg]

    matched_name = ""
    if matches:                               # first match wins
        matched_name = matches[0].name
        uid, gid, home = matches[0].uid, matches[0].gid, matches[0].home
    elif user_arg != "":
        if uid_arg is None:
            raise UserLookupError(
                f"unable to find user {user_arg}: no matching entries in passwd file")
        uid = _check_range(uid_arg)

    if group_arg != "" or matched_name != "":
        groups = parse_group(group) if group is not None else []
        if group_arg == "":
            found = [g for g in groups if matched_name in g.members]
        elif gid_arg is not None:
            found = [g for g in groups if g.gid == gid_arg]
        else:
            found = [g for g in groups if g.name == group_arg]
        if group_arg != "":
            if found:
                gid = found[0].gid
            elif gid_arg is None:
                raise UserLookupError(
                    f"unable to find group {group_arg}: no matching entries in group file")
            else:
                gid = _check_range(gid_arg)
        else:
            # supplementary groups only in the implicit form (no explicit group)
            sgids = tuple(g.gid for g in found)
    return ExecUser(uid, gid, sgids, home)


def get_additional_groups(names: list[str], group: str | None) -> list[int]:
    """GroupAdd entries (names or numbers) as gids, in order, without repeats.

    A name must exist in /etc/group; a number need not (runc's
    GetAdditionalGroups; docker's order is random, ours is the caller's).
    """
    groups = parse_group(group) if group is not None else []
    gids: list[int] = []
    for ag in names:
        for g in groups:
            if g.name == ag or str(g.gid) == ag:
                # first match wins; runc (oddly) refuses a name whose gid was
                # already added, we just don't repeat it
                if g.gid not in gids:
                    gids.append(g.gid)
                break
        else:
            n = _atoi(ag)
            if n is None:
                raise UserLookupError(
                    f"Unable to find group {ag}: no matching entries in group file")
            n = _check_range(n)
            if n not in gids:
                gids.append(n)
    return gids


# --- reading files inside a root filesystem --------------------------------

def read_file_in_root(root: str, path: str) -> str | None:
    """The text of a regular file inside `root`, or None if it can't be read."""
    try:
        fd = open_in_root(root, path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(_MAX_FILE)
    except OSError:
        return None
    finally:
        os.close(fd)
    return data.decode("utf-8", "surrogateescape")


def lookup(rootfs: str, user_spec: str, group_add: list[str] | None = None) -> dict:
    """The OCI `process.user` for `user_spec` and GroupAdd in this rootfs.

    As docker's getUser: {"uid", "gid", "additionalGids": [gid, *supplementary
    groups of the user, *GroupAdd]}. Raises UserLookupError in runc's words.
    """
    passwd = read_file_in_root(rootfs, "/etc/passwd")
    group = read_file_in_root(rootfs, "/etc/group")
    u = get_exec_user(user_spec or "", passwd, group)
    extra = get_additional_groups(list(group_add), group) if group_add else []
    return {"uid": u.uid, "gid": u.gid, "additionalGids": [u.gid, *u.sgids, *extra]}
