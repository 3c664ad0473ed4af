"""Kernel parameters under /proc/sys, such as `net.ipv4.ip_forward`.

The files under /proc/sys/net belong to a network namespace, and which one is
decided by the task that opens them: the kernel looks the table up through
`current->nsproxy->net_ns` of the calling *thread* (net_ctl_header_lookup),
not through the namespace of the process that mounted /proc. So a thread that
has entered a container's namespace (linux/netns.run_inside) reads and writes
that namespace's keys through the ordinary /proc/sys paths; checked by
tests/integration/network_linux. /proc/net is different: it is a link to
/proc/self/net, the namespace of the process's main thread; a thread that has
moved must read /proc/thread-self/net.

Keys are written as sysctl(8) takes them: dotted ("net.ipv4.ip_forward"), or
with slashes when a part contains a dot, as an interface name may
("net/ipv6/conf/eth0.100/disable_ipv6").
"""

from __future__ import annotations

import os

_ROOT = "/proc/sys"


def path(key: str) -> str:
    """The file of a key: net.ipv4.ip_forward → /proc/sys/net/ipv4/ip_forward."""
    parts = key.split("/") if "/" in key else key.split(".")
    return os.path.join(_ROOT, *parts)


def read(key: str) -> str:
    """The value, without its trailing newline."""
    with open(path(key)) as f:
        return f.read().strip()


def write(key: str, value: str | int) -> None:
    """Set a key, unless it already has that value.

    Reading first keeps this working where /proc/sys is mounted read-only
    but the value is already right (a daemon run inside a container), and
    a read is cheaper than a write, which some keys (disable_ipv6) make the
    kernel act on under its rtnl lock."""
    value = str(value)
    if read(key) == value:
        return
    with open(path(key), "w") as f:
        f.write(value)


def exists(key: str) -> bool:
    """Whether the kernel has the key (net.ipv6.* is absent with ipv6.disable=1)."""
    return os.path.exists(path(key))
