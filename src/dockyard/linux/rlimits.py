"""Resource limits (setrlimit(2)) named as the OCI spec names them.

Raising a hard limit above the current one needs CAP_SYS_RESOURCE. Hosts whose
bounding set lacks it (this one) cannot raise any hard limit, not even as
root: setrlimit fails with EPERM, which `apply()` reports with the limit's
number as runc does (`error setting rlimit type 7: operation not permitted`),
plus the host's ceiling so the user knows what to ask for instead.
"""

from __future__ import annotations

import ctypes
import os
import resource

NUMBERS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3,
    "RLIMIT_CORE": 4, "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7,
    "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9, "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11,
    "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13, "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}

_INFINITY = 2**64 - 1  # RLIM_INFINITY as the spec writes it (uint64 max)


class Rlimit:
    __slots__ = ("number", "soft", "hard")

    def __init__(self, number: int, soft: int, hard: int) -> None:
        self.number, self.soft, self.hard = number, soft, hard

    def __eq__(self, other) -> bool:
        return isinstance(other, Rlimit) and (self.number, self.soft, self.hard) == \
            (other.number, other.soft, other.hard)

    def __repr__(self) -> str:
        return f"Rlimit({self.number}, {self.soft}, {self.hard})"


def _value(v: int) -> int:
    v = int(v)
    return _INFINITY if v < 0 or v >= _INFINITY else v


def parse(rlimits: list[dict] | None) -> list[Rlimit]:
    """OCI `process.rlimits` -> numbers (ValueError in runc's words)."""
    out, seen = [], set()
    for r in rlimits or []:
        name = r.get("type", "")
        if name not in NUMBERS:
            raise ValueError(f"wrong rlimit value: {name}")
        if name in seen:
            raise ValueError(f"duplicate rlimit type: {name}")
        seen.add(name)
        out.append(Rlimit(NUMBERS[name], _value(r.get("soft", 0)), _value(r.get("hard", 0))))
    return out


def go_strerror(err: int) -> str:
    """strerror as Go prints it (lower-case first letter)."""
    s = os.strerror(err)
    return s[:1].lower() + s[1:]


class _Rlimit(ctypes.Structure):
    _fields_ = [("cur", ctypes.c_uint64), ("max", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)


def setrlimit(number: int, soft: int, hard: int) -> None:
    """setrlimit(2) via prlimit64, keeping the kernel's errno (Python's
    resource.setrlimit turns EPERM and EINVAL into a bare ValueError)."""
    new = _Rlimit(soft & _INFINITY, hard & _INFINITY)
    if _libc.prlimit64(0, number, ctypes.byref(new), None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setrlimit({number}, {soft}, {hard}): {os.strerror(err)}")


def getrlimit(number: int) -> tuple[int, int]:
    """(soft, hard) with RLIM_INFINITY as 2**64-1."""
    soft, hard = resource.getrlimit(number)
    return _value(soft), _value(hard)


def apply(limits: list[Rlimit]) -> None:
    """setrlimit each limit on the calling process."""
    for lim in limits:
        try:
            setrlimit(lim.number, lim.soft, lim.hard)
        except OSError as e:
            err = e.errno
            _, host_hard = getrlimit(lim.number)
            hint = ""
            if lim.soft > lim.hard:
                hint = f" (soft limit {lim.soft} is above the hard limit {lim.hard})"
            elif lim.hard > host_hard:
                hint = f" (hard limit {lim.hard} is above the host's {host_hard})"
            raise OSError(err, f"error setting rlimit type {lim.number}: "
                               f"{go_strerror(err)}{hint}") from None
