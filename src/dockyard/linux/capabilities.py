"""Capabilities: names <-> numbers, the bounding set, and capset(2).

A process has five sets (capabilities(7)): bounding (the ceiling for what
execve can ever grant), permitted, effective, inheritable, ambient. A container
init drops the bounding set first (PR_CAPBSET_DROP needs CAP_SETPCAP, which the
later capset may take away), then switches user, then sets the other four.

We never ask for more than the host has. A capability missing from our own
bounding set cannot be had by anyone below us: capset would fail with EPERM for
the whole container (runc and dockerd fail `--privileged` that way on hosts
without CAP_SYS_RESOURCE). Like podman, `plan()` drops such names from the
request and says so at debug level.
"""

from __future__ import annotations

import ctypes
import errno as _errno
import os
from dockyard.linux import syscalls as sc

# Index = capability number (linux/capability.h).
NAMES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
]
NUMBERS = {name: i for i, name in enumerate(NAMES)}
CAP_SETPCAP = NUMBERS["CAP_SETPCAP"]

KINDS = ("bounding", "effective", "permitted", "inheritable", "ambient")


def last_cap() -> int:
    """The highest capability number the running kernel knows."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return len(NAMES) - 1


def to_mask(caps) -> int:
    mask = 0
    for c in caps:
        mask |= 1 << c
    return mask


def from_mask(mask: int) -> set[int]:
    return {i for i in range(64) if mask >> i & 1}


def names(caps) -> list[str]:
    return [NAMES[c] if c < len(NAMES) else f"CAP_{c}" for c in sorted(caps)]


def current(kind: str = "bounding", status: str = "/proc/self/status") -> set[int]:
    """One of our own sets, read from /proc/self/status (CapBnd, CapEff...)."""
    key = {"bounding": "CapBnd", "effective": "CapEff", "permitted": "CapPrm",
           "inheritable": "CapInh", "ambient": "CapAmb"}[kind] + ":"
    with open(status) as f:
        for line in f:
            if line.startswith(key):
                return from_mask(int(line.split()[1], 16))
    raise LookupError(f"{key} not in {status}")


class Plan:
    """Numeric sets per kind, and the names left out (and why)."""

    def __init__(self) -> None:
        self.sets: dict[str, set[int]] = {k: set() for k in KINDS}
        self.unknown: list[str] = []      # names nobody knows: warn
        self.unavailable: list[str] = []  # not in the host's bounding set


def plan(spec: dict | None, host_bounding: set[int], kernel_last: int) -> Plan:
    """Turn OCI `process.capabilities` into numeric sets we can actually get.

    Unknown names (and ones newer than the running kernel) are skipped with a
    warning, as runc does; names the host's bounding set lacks are dropped
    (with a debug log) instead of failing the container.
    """
    p = Plan()
    unknown, unavailable = set(), set()
    for kind in KINDS:
        for name in (spec or {}).get(kind) or []:
            num = NUMBERS.get(name)
            if num is None or num > kernel_last:
                unknown.add(name)
            elif num not in host_bounding:
                unavailable.add(name)
            else:
                p.sets[kind].add(num)
    # An ambient capability must also be permitted and inheritable, or the
    # kernel refuses to raise it (runc ignores those failures; so do we).
    p.sets["ambient"] &= p.sets["permitted"] & p.sets["inheritable"]
    p.unknown = sorted(unknown)
    p.unavailable = sorted(unavailable)
    return p


# capget/capset with _LINUX_CAPABILITY_VERSION_3: two 32-bit words per set.
_VERSION_3 = 0x20080522


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


_libc = ctypes.CDLL(None, use_errno=True)


def capget() -> dict[str, set[int]]:
    hdr = _Header(_VERSION_3, 0)
    data = (_Data * 2)()
    if _libc.capget(ctypes.byref(hdr), data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"capget: {os.strerror(err)}")
    return {k: from_mask(getattr(data[0], k) | getattr(data[1], k) << 32)
            for k in ("effective", "permitted", "inheritable")}


def capset(effective: set[int], permitted: set[int], inheritable: set[int]) -> None:
    hdr = _Header(_VERSION_3, 0)
    data = (_Data * 2)()
    for kind, caps in (("effective", effective), ("permitted", permitted),
                       ("inheritable", inheritable)):
        mask = to_mask(caps)
        setattr(data[0], kind, mask & 0xFFFFFFFF)
        setattr(data[1], kind, mask >> 32)
    if _libc.capset(ctypes.byref(hdr), data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"capset(eff={to_mask(effective):#x}, prm={to_mask(permitted):#x}, "
                           f"inh={to_mask(inheritable):#x}): {os.strerror(err)}")


def drop_bounding(keep: set[int], kernel_last: int) -> None:
    """Drop every capability not in `keep` from our bounding set.

    Needs CAP_SETPCAP in the effective set, so it comes before capset().
    EINVAL (a number the kernel does not know) is not an error.
    """
    for cap in range(kernel_last + 1):
        if cap in keep:
            continue
        try:
            sc.prctl(sc.PR_CAPBSET_DROP, cap)
        except OSError as e:
            if e.errno != _errno.EINVAL:
                raise


def set_ambient(caps: set[int]) -> None:
    """Replace the ambient set. Each cap must be permitted and inheritable."""
    sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_CLEAR_ALL)
    for cap in sorted(caps):
        sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_RAISE, cap)


def set_keepcaps(on: bool) -> None:
    """Keep the permitted set across setuid() away from root (PR_SET_KEEPCAPS)."""
    sc.prctl(sc.PR_SET_KEEPCAPS, 1 if on else 0)
