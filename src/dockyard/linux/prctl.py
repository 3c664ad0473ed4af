"""prctl(2) for the shim, which must start fast.

`dockyard.linux.syscalls` has the general wrappers, but importing it costs ~40 ms
(platform, re, typing, mount); the shim needs one prctl option, so it comes from
here: ctypes and os only.
"""

from __future__ import annotations

import ctypes
import os

PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37

_libc = ctypes.CDLL(None, use_errno=True)


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    result = _libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg2), ctypes.c_ulong(arg3),
                         ctypes.c_ulong(arg4), ctypes.c_ulong(arg5))
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({option}, {arg2}, {arg3}, {arg4}, {arg5}): "
                           f"{os.strerror(err)}")
    return result


def set_child_subreaper(on: bool = True) -> None:
    """Orphaned descendants are re-parented to us instead of to init, so we can
    wait(2) for a container's init after the runtime that forked it has exited."""
    prctl(PR_SET_CHILD_SUBREAPER, 1 if on else 0)


def is_child_subreaper() -> bool:
    value = ctypes.c_int(0)
    prctl(PR_GET_CHILD_SUBREAPER, ctypes.addressof(value))
    return bool(value.value)
