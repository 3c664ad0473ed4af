"""Control groups, v1 and v2, behind one `Cgroup` interface. Stdlib only (the shim uses it).

    cg = open_cgroup("/dockyard/<id>")     # v1 or v2, by what the host mounts
    cg.create(spec["linux"]["resources"])  # directories, delegation, limits
    cg.add(pid)                            # the container's init joins
    cg.update({...}); cg.freeze(); cg.thaw(); cg.state(); cg.stats()
    cg.kill_all(signal.SIGKILL)
    cg.oom_kill_count()                    # before destroy: the shim reports OOMKilled
    cg.destroy()                           # rmdir everywhere, retrying while tasks drain

`open_cgroup` picks v2 only on a pure v2 ("unified") host, where /sys/fs/cgroup
is itself cgroup2. On a hybrid host (v1 controllers + an empty cgroup2 at
/sys/fs/cgroup/unified, like this project's machines) the controllers live in
v1, so v1 is used. Tests point either class at any tree:
`CgroupV2(path, mountpoint=...)`, `CgroupV1(path, mountpoints={...})`.

`stats()` returns, with None for what the host doesn't report:

    {"cpu": {"usage_total": ns, "usage_user": ns, "usage_kernel": ns,
             "percpu": [ns, ...] (v1 only), "throttling": {"periods",
             "throttled_periods", "throttled_time" (ns)}},
     "memory": {"usage", "max_usage", "limit" (None: unlimited), "failcnt",
                "stat": {memory.stat as ints}},
     "pids": {"current", "limit" (None: unlimited)},
     "blkio": {"io_service_bytes_recursive": [{"major", "minor", "op", "value"}, ...],
               ... the other blkio counters dockerd names (v1 only)},
     "memory_events": {memory.events as ints} (v2 only)}
"""

from __future__ import annotations

import os

from dockyard.linux.cgroups._base import Cgroup, own_cgroup, read_file
from dockyard.linux.cgroups.v1 import CgroupV1, v1_mountpoints
from dockyard.linux.cgroups.v2 import (CgroupV2, blkio_weight_to_io_weight, shares_to_weight,
                                       swap_max, v2_mountpoint)

__all__ = ["Cgroup", "CgroupV1", "CgroupV2", "open_cgroup", "features", "unified_host",
           "shares_to_weight", "blkio_weight_to_io_weight", "swap_max"]


def unified_host() -> bool:
    """True when the host runs cgroup v2 only (/sys/fs/cgroup is cgroup2)."""
    return v2_mountpoint() == "/sys/fs/cgroup"


def open_cgroup(path: str) -> Cgroup:
    """The cgroup at OCI cgroupsPath `path`, in the version the host uses."""
    if unified_host():
        return CgroupV2(path, "/sys/fs/cgroup")
    return CgroupV1(path)


def features() -> dict:
    """What the host's cgroups can do, for /info and create-time warnings.

    {"version": 1|2, "controllers": [...], "swap_limit": bool, "freezer": bool,
     "kill": bool (cgroup.kill: v2 only)}
    """
    if unified_host():
        root = "/sys/fs/cgroup"
        controllers = read_file(root, "cgroup.controllers").split()
        own = os.path.normpath(root + "/" + (own_cgroup("") or "/").lstrip("/"))
        # the root cgroup has no memory.swap.max; the daemon's own cgroup does
        # when swap accounting is on
        return {"version": 2, "controllers": controllers,
                "swap_limit": os.path.exists(os.path.join(own, "memory.swap.max")),
                "freezer": os.path.exists(os.path.join(own, "cgroup.freeze")),
                "kill": os.path.exists(os.path.join(own, "cgroup.kill"))}
    mounts = v1_mountpoints()
    memory = mounts.get("memory")
    return {"version": 1, "controllers": sorted(c for c in mounts if "=" not in c),
            "swap_limit": bool(memory) and os.path.exists(
                os.path.join(memory, "memory.memsw.limit_in_bytes")),
            "freezer": "freezer" in mounts, "kill": False}
