"""Create-time checks of a container's Config and HostConfig, in dockerd's words.

Everything a user can get wrong is refused here, before anything is made, so a
bad `create` leaves nothing behind.
"""

from __future__ import annotations

import os
import signal as signals
from typing import Any

from dockyard import errdefs

MIN_MEMORY = 6 * 1024 * 1024
RESTART_POLICIES = ("", "no", "always", "unless-stopped", "on-failure")
LOG_DRIVERS = ("json-file", "local", "none")


def validate_config(config: dict[str, Any]) -> None:
    """daemon/container.go validateContainerConfig."""
    workdir = config.get("WorkingDir") or ""
    if workdir and not workdir.startswith("/"):
        raise errdefs.InvalidParameter(
            f"the working directory '{workdir}' is invalid, it needs to be an absolute path")
    if config.get("StopSignal"):
        parse_signal(config["StopSignal"])
    for env in config.get("Env") or []:
        if not isinstance(env, str) or env.partition("=")[0] == "":
            raise errdefs.InvalidParameter(f"invalid environment variable: {env}")
    health = config.get("Healthcheck") or {}
    for key in ("Interval", "Timeout", "StartPeriod"):
        if health.get(key) and health[key] < 1_000_000:
            raise errdefs.InvalidParameter(f"{key} in Healthcheck cannot be less than 1ms")
    if (health.get("Retries") or 0) < 0:
        raise errdefs.InvalidParameter("Retries in Healthcheck cannot be negative")


def validate_create(config: dict[str, Any], hc: dict[str, Any], runtimes) -> list[str]:
    validate_config(config)
    warnings: list[str] = []
    if hc.get("NetworkMode") == "host" and hc.get("PortBindings"):
        # (dockerd drops them: the host's own ports are the container's)
        hc["PortBindings"] = {}
        warnings.append("Published ports are discarded when using host network mode")
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
    swappiness = hc.get("MemorySwappiness")
    if swappiness is not None and swappiness != -1 and not 0 <= swappiness <= 100:
        raise errdefs.InvalidParameter(
            f"Invalid value: {swappiness}, valid memory swappiness range is 0-100")
    reservation = hc.get("MemoryReservation") or 0
    if reservation and reservation < MIN_MEMORY:
        raise errdefs.InvalidParameter("Minimum memory reservation allowed is 6MB")
    if memory and reservation and reservation > memory:
        raise errdefs.InvalidParameter(
            "Minimum memory limit can not be less than memory reservation limit, see usage")
    nano = hc.get("NanoCpus") or 0
    if nano > 0 and (hc.get("CpuPeriod") or 0) > 0:
        raise errdefs.InvalidParameter("Conflicting options: Nano CPUs and CPU Period cannot "
                                       "both be set")
    if nano > 0 and (hc.get("CpuQuota") or 0) > 0:
        raise errdefs.InvalidParameter("Conflicting options: Nano CPUs and CPU Quota cannot "
                                       "both be set")
    ncpu = os.cpu_count() or 1
    if nano < 0 or nano > ncpu * 1_000_000_000:
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
    blkio = hc.get("BlkioWeight") or 0
    if blkio and not 10 <= blkio <= 1000:
        raise errdefs.InvalidParameter("Range of blkio weight is from 10 to 1000")
    if hc.get("IOMaximumBandwidth") or hc.get("IOMaximumIOps"):
        raise errdefs.InvalidParameter("Invalid QoS settings: linux does not support Maximum IO "
                                       "Bandwidth or Maximum IO IOps")
    if (hc.get("ShmSize") or 0) < 0:
        raise errdefs.InvalidParameter("SHM size can not be less than 0")
    oom_score = hc.get("OomScoreAdj") or 0
    if not -1000 <= oom_score <= 1000:
        raise errdefs.InvalidParameter(
            f"Invalid value {oom_score}, range for oom score adj is [-1000, 1000]")
    # (an unknown network is refused at start, with 404, as dockerd does)
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


def parse_signal(sig: str | int) -> int:
    """`SIGTERM`, `TERM`, `term` or `15`, as docker's signal.ParseSignal."""
    if isinstance(sig, int):
        return sig
    text = str(sig).strip()
    if text.lstrip("-").isdigit():
        number = int(text)  # any number but 0, as ParseSignal (kill checks the range)
        if number == 0:
            raise errdefs.InvalidParameter(f"Invalid signal: {sig}")
        return number
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(getattr(signals.Signals, name))
    except AttributeError:
        if (name.startswith("SIGRTMIN+") or name.startswith("SIGRTMAX-")) and name[9:].isdigit():
            base = signals.SIGRTMIN if name.startswith("SIGRTMIN") else signals.SIGRTMAX
            offset = int(name[9:])
            return int(base) + offset if name.startswith("SIGRTMIN") else int(base) - offset
        raise errdefs.InvalidParameter(f"Invalid signal: {sig}") from None
