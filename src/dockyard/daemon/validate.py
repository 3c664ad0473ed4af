"""Create-time checks of a container's Config and HostConfig, in dockerd's words.

Everything a user can get wrong is refused here, before anything is made, so a
bad `create` leaves nothing behind.
"""

from __future__ import annotations

import os
from typing import Any

from dockyard import errdefs

MIN_MEMORY = 6 * 1024 * 1024
RESTART_POLICIES = ("", "no", "always", "unless-stopped", "on-failure")
LOG_DRIVERS = ("json-file", "local", "none")


def validate_create(config: dict[str, Any], hc: dict[str, Any], runtimes) -> list[str]:
    warnings: list[str] = []
    memory = hc.get("Memory") or 0
    if memory and memory < MIN_MEMORY:
        raise errdefs.InvalidParameter("Minimum memory limit allowed is 6MB")
    swap = hc.get("MemorySwap") or 0
    if memory and swap > 0 and swap < memory:
        raise errdefs.InvalidParameter(
            "Minimum memoryswap limit should be larger than memory limit, see usage")
    if swap and swap != -1 and not memory:
        raise errdefs.InvalidParameter(
            "You should always set the Memory limit when using Memoryswap limit, see usage")
    reservation = hc.get("MemoryReservation") or 0
    if memory and reservation and reservation > memory:
        raise errdefs.InvalidParameter(
            "Minimum memory limit can not be less than memory reservation limit, see usage")
    if reservation and reservation < MIN_MEMORY:
        raise errdefs.InvalidParameter("Minimum memory reservation allowed is 6MB")
    nano = hc.get("NanoCpus") or 0
    if nano and (hc.get("CpuQuota") or hc.get("CpuPeriod")):
        raise errdefs.InvalidParameter("Conflicting options: Nano CPUs and CPU Period cannot "
                                       "both be set")
    if nano < 0:
        raise errdefs.InvalidParameter("Range of CPUs is from 0.01 to 2.00, as there are only "
                                       "2 CPUs available")
    ncpu = os.cpu_count() or 1
    if nano > ncpu * 1_000_000_000:
        raise errdefs.InvalidParameter(
            f"Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available")
    period = hc.get("CpuPeriod") or 0
    if period and not 1000 <= period <= 1_000_000:
        raise errdefs.InvalidParameter("CPU cfs period can not be less than 1ms (i.e. 1000) or "
                                       "larger than 1s (i.e. 1000000)")
    quota = hc.get("CpuQuota") or 0
    if quota and quota > 0 and quota < 1000:
        raise errdefs.InvalidParameter("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if (hc.get("CpuShares") or 0) < 0:
        raise errdefs.InvalidParameter("invalid CPU shares: must be positive")
    cpus = hc.get("CpusetCpus") or ""
    if cpus and not _cpuset_ok(cpus, ncpu):
        raise errdefs.InvalidParameter(
            f"Requested CPUs are not available - requested {cpus}, available: 0-{ncpu - 1}")
    policy = hc.get("RestartPolicy") or {}
    name = policy.get("Name") or ""
    if name not in RESTART_POLICIES:
        raise errdefs.InvalidParameter(f"invalid restart policy '{name}'")
    if policy.get("MaximumRetryCount") and name != "on-failure":
        raise errdefs.InvalidParameter(
            f"maximum retry count cannot be used with restart policy '{name}'")
    if (policy.get("MaximumRetryCount") or 0) < 0:
        raise errdefs.InvalidParameter("maximum retry count cannot be negative")
    if hc.get("AutoRemove") and name not in ("", "no"):
        raise errdefs.InvalidParameter("can't create 'AutoRemove' container with restart policy")
    log_type = (hc.get("LogConfig") or {}).get("Type") or "json-file"
    if log_type not in LOG_DRIVERS:
        raise errdefs.InvalidParameter(
            f'failed to create container: logger: no log driver named "{log_type}" is registered')
    mode = hc.get("NetworkMode") or "default"
    if mode not in ("default", "bridge", "none", "host") and not mode.startswith("container:"):
        raise errdefs.NotFound(f"network {mode} not found")
    if hc.get("Runtime"):
        runtimes.path(hc["Runtime"])
    if (hc.get("OomKillDisable") and not memory):
        warnings.append("OOM killer is disabled for the container, but no memory limit is set, "
                        "this can result in the system running out of resources.")
    for ulimit in hc.get("Ulimits") or []:
        if ulimit.get("Soft", 0) > ulimit.get("Hard", 0):
            raise errdefs.InvalidParameter(
                f"ulimit soft limit must be less than or equal to hard limit: "
                f"{ulimit.get('Soft')} > {ulimit.get('Hard')}")
    return warnings


def _cpuset_ok(text: str, ncpu: int) -> bool:
    try:
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            if int(lo) >= ncpu or (hi and (int(hi) >= ncpu or int(hi) < int(lo))):
                return False
        return True
    except ValueError:
        return False
