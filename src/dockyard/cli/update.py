"""`update`: new resource limits and restart policy for one or more containers
(docker/cli cli/command/container/update.go): the same flags, the same body
(docker's UpdateConfig: every Resources field, zero for "unchanged"), each
container's name printed when its update worked, the daemon's warnings after
them, and every error at the end with status 1."""

from __future__ import annotations

from typing import Any

from dockyard.cli.command import PROG, Cli, StatusError
from dockyard.cli.pflag import FlagSet


# docker's `update` flags: (name, shorthand, metavar, help); each a number of its kind
_FLAGS = (
    ("blkio-weight", "", "uint16",
     "Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)"),
    ("cpu-period", "", "int", "Limit CPU CFS (Completely Fair Scheduler) period"),
    ("cpu-quota", "", "int", "Limit CPU CFS (Completely Fair Scheduler) quota"),
    ("cpu-rt-period", "", "int", "Limit the CPU real-time period in microseconds"),
    ("cpu-rt-runtime", "", "int", "Limit the CPU real-time runtime in microseconds"),
    ("cpu-shares", "c", "int", "CPU shares (relative weight)"),
    ("cpus", "", "decimal", "Number of CPUs"),
    ("cpuset-cpus", "", "string", "CPUs in which to allow execution (0-3, 0,1)"),
    ("cpuset-mems", "", "string", "MEMs in which to allow execution (0-3, 0,1)"),
    ("memory", "m", "bytes", "Memory limit"),
    ("memory-reservation", "", "bytes", "Memory soft limit"),
    ("memory-swap", "", "swap", "Swap limit equal to memory plus swap: -1 to enable unlimited "
                                "swap"),
    ("pids-limit", "", "int", "Tune container pids limit (set -1 for unlimited)"),
    ("restart", "", "string", "Restart policy to apply when a container exits"),
)


def _flags(path: str) -> FlagSet:
    from dockyard.cli.optvalues import int64, mem_bytes, mem_swap_bytes, nano_cpus, uint16

    kinds = {"uint16": (uint16, 0), "int": (int64, 0), "decimal": (nano_cpus, 0),
             "bytes": (mem_bytes, 0), "swap": (mem_swap_bytes, 0), "string": (None, "")}
    fs = FlagSet(path, "[OPTIONS] CONTAINER [CONTAINER...]",
                 "Update configuration of one or more containers",
                 aliases=f"{PROG} container update, {PROG} update", args=(1, None))
    for name, short, metavar, text in _FLAGS:
        convert, default = kinds[metavar]
        fs.add(name, short, "bytes" if metavar == "swap" else metavar, text, default, convert)
    fs.add("kernel-memory", metavar="bytes", default=0, convert=mem_bytes,
           help="Kernel memory limit (deprecated)",
           deprecated="and no longer supported by the kernel")
    return fs


def body(o: Any) -> dict[str, Any]:
    """The UpdateConfig docker sends: container.Resources in its field order, then
    the restart policy (Name "" when --restart is not given: unchanged)."""
    from dockyard.cli.runopts import _restart_policy

    return {
        "CpuShares": o.cpu_shares, "Memory": o.memory, "NanoCpus": o.cpus,
        "CgroupParent": "", "BlkioWeight": o.blkio_weight, "BlkioWeightDevice": None,
        "BlkioDeviceReadBps": None, "BlkioDeviceWriteBps": None, "BlkioDeviceReadIOps": None,
        "BlkioDeviceWriteIOps": None, "CpuPeriod": o.cpu_period, "CpuQuota": o.cpu_quota,
        "CpuRealtimePeriod": o.cpu_rt_period, "CpuRealtimeRuntime": o.cpu_rt_runtime,
        "CpusetCpus": o.cpuset_cpus, "CpusetMems": o.cpuset_mems, "Devices": None,
        "DeviceCgroupRules": None, "DeviceRequests": None, "MemoryReservation":
        o.memory_reservation, "MemorySwap": o.memory_swap, "MemorySwappiness": None,
        "OomKillDisable": None, "PidsLimit": o.pids_limit or None, "Ulimits": None,
        "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
        "RestartPolicy": _restart_policy(o.restart),
    }


def update(cli: Cli, argv: list[str], path: str) -> int:
    from dockyard.cli.containers import _error_text
    from dockyard.cli.optspecs import OptionsError

    fs = _flags(path)
    o = fs.parse(argv)
    if not o.changed:
        raise StatusError("you must provide one or more flags when using this command")
    try:
        request = body(o)
    except OptionsError as e:
        raise StatusError(str(e)) from None
    warnings: list[str] = []
    errors: list[str] = []
    for name in o.args:
        try:
            result = cli.client.post(f"/containers/{name}/update", body=request) or {}
        except Exception as e:  # noqa: BLE001 - reported per container
            errors.append(_error_text(e))
            continue
        cli.out.write(name + "\n")
        warnings += result.get("Warnings") or []
    if warnings:
        cli.out.write("\n".join(warnings) + "\n")
    if errors:
        raise StatusError("\n".join(errors))
    return 0
