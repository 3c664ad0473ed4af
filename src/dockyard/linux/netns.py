"""Network namespaces that outlive their processes, and threads that work inside them.

A namespace lives as long as something refers to it. Bind-mounting its
/proc file onto a plain file (what `ip netns add` does) keeps a namespace
with no process in it alive, so the daemon can make a container's network
(the "sandbox") before the container exists and keep it across restarts of
the container's process.

Network namespaces are per thread: a thread that calls setns(2) moves alone,
and a socket belongs for good to the namespace of the thread that made it.
`run_inside` uses that to configure links or open sockets inside a
namespace from a short-lived thread, while the rest of the process stays put.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Callable, TypeVar

from dockyard.linux import syscalls
from dockyard.linux.mount import MNT_DETACH, MS_BIND, mount, umount

T = TypeVar("T")


def create(path: str) -> None:
    """A new, empty network namespace (only a down `lo`), pinned at `path`."""
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o444)
    os.close(fd)
    try:
        def pin() -> None:
            syscalls.unshare(syscalls.CLONE_NEWNET)
            mount(f"/proc/self/task/{threading.get_native_id()}/ns/net", path, None, MS_BIND)
        _in_thread(pin)
    except BaseException:
        os.unlink(path)
        raise


def delete(path: str) -> None:
    """Unpin a namespace: it (and the veth ends in it) goes once no process uses it."""
    with contextlib.suppress(OSError):  # not mounted: a create cut short
        umount(path, MNT_DETACH)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def run_inside(path: str, fn: Callable[[], T]) -> T:
    """fn() in a thread that has entered the namespace pinned at `path`.

    The thread ends with fn, so no thread of ours is ever left in a
    container's namespace by mistake."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        def entered() -> T:
            syscalls.setns(fd, syscalls.CLONE_NEWNET)
            return fn()
        return _in_thread(entered)
    finally:
        os.close(fd)


def open_fd(path: str) -> int:
    """A descriptor of the namespace, for netlink's IFLA_NET_NS_FD (the caller closes it)."""
    return os.open(path, os.O_RDONLY | os.O_CLOEXEC)


def _in_thread(fn: Callable[[], T]) -> T:
    """Run fn in a new thread and return its result (or raise its error)."""
    box: dict = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except BaseException as e:  # handed to the caller's thread
            box["error"] = e

    t = threading.Thread(target=target, name="netns")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["result"]
