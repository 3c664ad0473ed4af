"""Thin ctypes wrappers for the syscalls Python's `os` module lacks.

Each wrapper raises OSError whose message names the call and its arguments
(`sethostname('web'): Operation not permitted`), as runc and crun do, so an
error that reaches a user says which kernel call refused and why. Only stdlib:
the container init imports this module in a forked, single-threaded process.
"""

from __future__ import annotations

import ctypes
import os

from dockyard.linux.mount import MNT_DETACH, umount as umount2  # noqa: F401 (re-export)

_libc = ctypes.CDLL(None, use_errno=True)

# Syscall numbers glibc has no wrapper for (pivot_root), or whose wrapper
# refuses what we need (rt_sigaction). They differ per arch.
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "ppc64le": 203, "s390x": 217,
                   "riscv64": 41}[os.uname().machine]
_SYS_RT_SIGACTION = {"x86_64": 13, "aarch64": 134, "ppc64le": 173, "s390x": 174,
                     "riscv64": 134}[os.uname().machine]

# clone(2) flags, as unshare(2) and setns(2) take them.
CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# prctl(2) options.
PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_IS_SET = 1
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_LOWER = 3
PR_CAP_AMBIENT_CLEAR_ALL = 4


def _fail(call: str) -> OSError:
    err = ctypes.get_errno()
    return OSError(err, f"{call}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    if _libc.unshare(ctypes.c_int(flags)) != 0:
        raise _fail(f"unshare({flags:#x})")


def setns(fd: int, nstype: int = 0) -> None:
    if _libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)) != 0:
        raise _fail(f"setns({fd}, {nstype:#x})")


def pivot_root(new_root: str, put_old: str) -> None:
    if _libc.syscall(ctypes.c_long(_SYS_PIVOT_ROOT), os.fsencode(new_root),
                     os.fsencode(put_old)) != 0:
        raise _fail(f"pivot_root({new_root!r}, {put_old!r})")


def sigaction(sig: int, disposition: int) -> None:
    """rt_sigaction(sig, SIG_DFL or SIG_IGN) by the kernel's call itself:
    glibc's sigaction refuses the two real-time signals it keeps for its
    threads (32 and 33), which a process may still have inherited ignored."""
    # The kernel's struct sigaction: the disposition first, then no flags,
    # no restorer and an empty mask, all zeros whatever the arch's order.
    action = (ctypes.c_ulong * 4)(int(disposition))
    if _libc.syscall(ctypes.c_long(_SYS_RT_SIGACTION), ctypes.c_int(sig), ctypes.byref(action),
                     None, ctypes.c_size_t(8)) != 0:
        raise _fail(f"rt_sigaction({sig}, {int(disposition)})")


def sethostname(name: str) -> None:
    raw = name.encode()
    if _libc.sethostname(raw, ctypes.c_size_t(len(raw))) != 0:
        raise _fail(f"sethostname({name!r})")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    """prctl(2); returns the call's (non-negative) result."""
    ret = _libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg2), ctypes.c_ulong(arg3),
                      ctypes.c_ulong(arg4), ctypes.c_ulong(arg5))
    if ret < 0:
        raise _fail(f"prctl({option}, {arg2}, {arg3}, {arg4}, {arg5})")
    return ret


def set_child_subreaper(on: bool = True) -> None:
    """Orphaned descendants are re-parented to us instead of to PID 1."""
    prctl(PR_SET_CHILD_SUBREAPER, 1 if on else 0)


def set_no_new_privs() -> None:
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def mknod(path: str, mode: int, major: int, minor: int) -> None:
    try:
        os.mknod(path, mode, os.makedev(major, minor))
    except OSError as e:
        raise OSError(e.errno, f"mknod({path!r}, {mode:#o}, {major}:{minor}): "
                               f"{os.strerror(e.errno)}") from None
