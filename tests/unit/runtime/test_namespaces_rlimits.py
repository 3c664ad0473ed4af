"""linux.namespaces and process.rlimits: validation in runc's words."""

from __future__ import annotations

import pytest

from dockyard.linux import namespaces as ns
from dockyard.linux import rlimits
from dockyard.linux import syscalls as sc


def test_new_and_joined_namespaces():
    p = ns.plan([{"type": "pid"}, {"type": "mount"}, {"type": "network", "path": "/run/netns/x"},
                 {"type": "uts"}, {"type": "ipc"}, {"type": "cgroup"}])
    assert p.new == {"pid", "mount", "uts", "ipc", "cgroup"}
    assert p.join == {"network": "/run/netns/x"}
    assert p.unshare_flags == (sc.CLONE_NEWPID | sc.CLONE_NEWNS | sc.CLONE_NEWUTS
                               | sc.CLONE_NEWIPC | sc.CLONE_NEWCGROUP)
    assert p.has("network") and p.has("pid") and not p.has("user")


def test_duplicate_and_unknown_namespaces():
    with pytest.raises(ValueError, match="duplicated ns 'pid'"):
        ns.plan([{"type": "pid"}, {"type": "pid", "path": "/proc/1/ns/pid"}])
    with pytest.raises(ValueError, match="does not exist"):
        ns.plan([{"type": "nosuch"}])


def test_ns_path():
    assert ns.ns_path(42, "network") == "/proc/42/ns/net"
    assert ns.ns_path(42, "mount") == "/proc/42/ns/mnt"


def test_rlimits_parse():
    out = rlimits.parse([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096},
                         {"type": "RLIMIT_CORE", "soft": -1, "hard": 18446744073709551615}])
    assert out == [rlimits.Rlimit(7, 1024, 4096),
                   rlimits.Rlimit(4, 2**64 - 1, 2**64 - 1)]


def test_rlimit_errors():
    with pytest.raises(ValueError, match="wrong rlimit value: RLIMIT_NOPE"):
        rlimits.parse([{"type": "RLIMIT_NOPE", "soft": 1, "hard": 1}])
    with pytest.raises(ValueError, match="duplicate rlimit type: RLIMIT_NOFILE"):
        rlimits.parse([{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1}] * 2)


def test_go_strerror_is_lower_case_first():
    assert rlimits.go_strerror(1) == "operation not permitted"
    assert rlimits.go_strerror(2) == "no such file or directory"
