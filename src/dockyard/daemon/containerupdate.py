"""`POST /containers/{id}/update`: new resource limits and restart policy.

As dockerd's ContainerUpdate: the body (docker's UpdateConfig: the Resources
fields of a HostConfig and a RestartPolicy) is checked as a create's would be,
merged into the record field by field (only what is set: a zero is "unchanged",
container/container_unix.go UpdateContainer), saved, and, when the container
runs (paused included), applied to its cgroup through the OCI runtime's
`update --resources FILE ID`. A stopped or restarting container gets the record
only: its next start builds its cgroup from it. A change the runtime refuses
puts the old HostConfig back.

Errors are dockerd's: "Cannot update container <id>: <why>", 400 for what the
request got wrong, 500 for what the runtime refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
from typing import Any

from dockyard import errdefs

# The fields UpdateContainer copies when set (non-zero), in its order. Block
# I/O device lists are left out below API 1.55, as dockerd's router does.
_SET_WHEN_NONZERO = ("BlkioWeight", "CpuShares", "NanoCpus", "CpuPeriod", "CpuQuota",
                     "CpusetCpus", "CpusetMems")
_SET_LATER = ("MemorySwap", "MemoryReservation", "CpuRealtimePeriod", "CpuRealtimeRuntime")


class CannotUpdate(errdefs.InvalidParameter):
    pass


async def update(svc, ref: str, body: dict[str, Any]) -> dict[str, Any]:
    from dockyard.daemon.validate import validate_create

    body = dict(body or {})
    for key in ("BlkioWeightDevice", "BlkioDeviceReadBps", "BlkioDeviceWriteBps",
                "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps"):
        body.pop(key, None)
    if body.get("PidsLimit") is not None and body["PidsLimit"] <= 0:
        body["PidsLimit"] = 0  # 0 and -1 both mean unlimited
    policy = body.get("RestartPolicy") or {}
    # daemon/container.go verifyContainerSettings(update=true): a create's checks,
    # except that swap may be given without memory (the container's own stands)
    probe = {k: v for k, v in body.items() if k not in ("AutoRemove", "Runtime", "LogConfig")}
    if not probe.get("Memory"):
        probe.pop("MemorySwap", None)
    warnings = validate_create({}, probe, svc.runtimes)

    c = svc.get(ref)
    async with svc.lock(c):
        if c.state.get("Status") == "removing" or c.id not in svc.containers:
            raise errdefs.System(f"Cannot update container {c.id}: container is marked for "
                                 'removal and cannot be "update"')
        backup = copy.deepcopy(c.record["HostConfig"])
        try:
            merge(c.host_config, body)
        except CannotUpdate as e:
            c.record["HostConfig"] = backup
            raise CannotUpdate(f"Cannot update container {c.id}: {e}") from None
        svc.checkpoint(c)
        if policy.get("Name"):
            svc.restarts.policy_changed(c)
        try:
            if c.running and not c.state.get("Restarting") and c.id in svc.live:
                try:
                    await _apply(svc, c, live_resources(body))
                except errdefs.DockyardError as e:
                    c.record["HostConfig"] = backup
                    svc.checkpoint(c)
                    raise errdefs.System(f"Cannot update container {c.id}: {e}") from None
        finally:
            svc.emit(c, "update")
    return {"Warnings": warnings or None}  # (null without any, as dockerd)


def merge(hc: dict[str, Any], body: dict[str, Any]) -> None:
    """container/container_unix.go UpdateContainer: the set fields of `body`
    into the container's HostConfig; CannotUpdate for a conflicting change."""
    nano = body.get("NanoCpus") or 0
    if nano > 0 and (hc.get("CpuPeriod") or 0) > 0:
        raise CannotUpdate("Conflicting options: Nano CPUs cannot be updated as CPU Period "
                           "has already been set")
    if nano > 0 and (hc.get("CpuQuota") or 0) > 0:
        raise CannotUpdate("Conflicting options: Nano CPUs cannot be updated as CPU Quota "
                           "has already been set")
    if (body.get("CpuPeriod") or 0) > 0 and (hc.get("NanoCpus") or 0) > 0:
        raise CannotUpdate("Conflicting options: CPU Period cannot be updated as NanoCPUs "
                           "has already been set")
    if (body.get("CpuQuota") or 0) > 0 and (hc.get("NanoCpus") or 0) > 0:
        raise CannotUpdate("Conflicting options: CPU Quota cannot be updated as NanoCPUs "
                           "has already been set")
    for key in _SET_WHEN_NONZERO:
        if body.get(key):
            hc[key] = body[key]
    memory = body.get("Memory") or 0
    if memory:
        if memory > (hc.get("MemorySwap") or 0) and not body.get("MemorySwap"):
            raise CannotUpdate("Memory limit should be smaller than already set memoryswap "
                               "limit, update the memoryswap at the same time")
        hc["Memory"] = memory
    for key in _SET_LATER:
        if body.get(key):
            hc[key] = body[key]
    if body.get("PidsLimit") is not None:
        hc["PidsLimit"] = body["PidsLimit"]
    policy = body.get("RestartPolicy") or {}
    if policy.get("Name"):
        if hc.get("AutoRemove") and policy["Name"] != "no":
            raise CannotUpdate("Restart policy cannot be updated because AutoRemove is "
                               "enabled for the container")
        hc["RestartPolicy"] = {"Name": policy["Name"],
                               "MaximumRetryCount": policy.get("MaximumRetryCount") or 0}


def live_resources(body: dict[str, Any]) -> dict[str, Any]:
    """daemon/update_linux.go toContainerdResources: the OCI linux.resources of
    what the request sets (not of the whole record), for the runtime's update."""
    out: dict[str, Any] = {}
    if body.get("BlkioWeight"):
        out["blockIO"] = {"weight": body["BlkioWeight"]}
    cpu: dict[str, Any] = {}
    for key, name in (("CpusetCpus", "cpus"), ("CpusetMems", "mems"), ("CpuShares", "shares")):
        if body.get(key):
            cpu[name] = body[key]
    period, quota = 0, 0
    if body.get("NanoCpus"):
        period = 100_000
        quota = body["NanoCpus"] * period // 1_000_000_000
    quota = quota or body.get("CpuQuota") or 0
    period = period or body.get("CpuPeriod") or 0
    if period:
        cpu["period"] = period
    if quota:
        cpu["quota"] = quota
    if cpu:
        out["cpu"] = cpu
    memory: dict[str, Any] = {}
    if body.get("Memory"):
        memory["limit"] = body["Memory"]
    if body.get("MemoryReservation"):
        memory["reservation"] = body["MemoryReservation"]
    if (body.get("MemorySwap") or 0) > 0:
        memory["swap"] = body["MemorySwap"]
    if memory:
        out["memory"] = memory
    if body.get("PidsLimit") is not None:
        limit = body["PidsLimit"]
        out["pids"] = {"limit": limit if limit > 0 else -1}
    return out


async def _apply(svc, c, resources: dict[str, Any]) -> None:
    """`<runtime> update --resources FILE ID` (runc's verb), the file in the bundle."""
    if not resources:
        return
    path = os.path.join(svc.bundle(c), "update-resources.json")
    await asyncio.to_thread(_write, path, json.dumps(resources).encode())
    try:
        await svc.runtimes.run(c.host_config["Runtime"], "update", "--resources", path, c.id)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _write(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
