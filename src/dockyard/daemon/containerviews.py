"""Containers as the Engine API shows them: inspect, the `ps` list, its filters."""

from __future__ import annotations

import copy
import re
from typing import Any

from dockyard import errdefs
from dockyard.daemon.filtering import labels_match
from dockyard.daemon.container import Container, parse_time
from dockyard.daemon.containermounts import api_mounts
from dockyard.network import ports
from dockyard.storage.layer import chain_ids

PS_FILTERS = {"id", "name", "label", "status", "exited", "ancestor", "before", "since",
              "health", "network", "volume", "publish", "expose", "is-task", "isolation"}
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")


def network_settings(c: Container) -> dict[str, Any]:
    """NetworkSettings as dockerd shows it (the record keeps what start made)."""
    ns = copy.deepcopy(c.record.get("NetworkSettings") or {})
    out = {
        "Bridge": "", "SandboxID": "", "HairpinMode": False, "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0, "Ports": {}, "SandboxKey": "",
        "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None, "EndpointID": "",
        "Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": "",
        "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "", "Networks": {},
    }
    out.update({k: v for k, v in ns.items() if k in out})
    return out


def inspect(svc, c: Container, size: bool = False) -> dict[str, Any]:
    out = copy.deepcopy(c.record)
    state = out["State"]
    state.pop("StoppedByUser", None)
    order = ["Id", "Created", "Path", "Args", "State", "Image", "ResolvConfPath", "HostnamePath",
             "HostsPath", "LogPath", "Name", "RestartCount", "Driver", "Platform", "MountLabel",
             "ProcessLabel", "AppArmorProfile", "ExecIDs", "HostConfig"]
    result = {k: out[k] for k in order if k in out}
    result["GraphDriver"] = graph_driver(svc, c)
    if size:
        rw, rootfs = sizes(svc, c)
        result["SizeRw"], result["SizeRootFs"] = rw, rootfs
    result["Mounts"] = api_mounts(c)
    result["Config"] = out["Config"]
    result["NetworkSettings"] = network_settings(c)
    return result


def graph_driver(svc, c: Container) -> dict[str, Any]:
    snapshots = svc.images.snapshots
    try:
        info = snapshots.stat(c.id)
    except errdefs.NotFound:
        return {"Data": None, "Name": "overlay2"}
    lowers = []
    parent = info.parent
    while parent:
        lowers.append(snapshots.fs_path(parent))
        parent = snapshots.stat(parent).parent
    upper = snapshots.fs_path(c.id)
    data = {"LowerDir": ":".join(lowers), "MergedDir": svc.rootfs(c),
            "UpperDir": upper, "WorkDir": upper.rsplit("/", 1)[0] + "/work"}
    return {"Data": data, "Name": "overlay2"}


def sizes(svc, c: Container) -> tuple[int, int]:
    try:
        rw = svc.images.snapshots.usage(c.id)
    except errdefs.NotFound:
        rw = 0
    try:
        image = svc.images.images.get(c.image_id)
        base = svc.images.size(image)
    except errdefs.NotFound:
        base = 0
    return rw, rw + base


def summary(svc, c: Container, size: bool = False) -> dict[str, Any]:
    ns = network_settings(c)
    out = {
        "Id": c.id,
        "Names": [c.name],
        "Image": c.config.get("Image", ""),
        "ImageID": c.image_id,
        "Command": c.command_line(),
        "Created": int(parse_time(c.record["Created"])),
        "Ports": ports.list_view(ns["Ports"] or {}),
        "Labels": c.config.get("Labels") or {},
        "State": c.state["Status"],
        "Status": c.status_text(),
        "HostConfig": {"NetworkMode": c.host_config.get("NetworkMode") or "default"},
        # (the list leaves the aliases out, as dockerd's)
        "NetworkSettings": {"Networks": {name: {**ep, "Aliases": None}
                                         for name, ep in ns["Networks"].items()}},
        "Mounts": api_mounts(c),
    }
    if size:
        out["SizeRw"], out["SizeRootFs"] = sizes(svc, c)
    return out


def select(svc, filters: dict[str, list[str]], all_: bool, limit: int, before: str | None,
           since: str | None) -> list[Container]:
    """The containers `ps` shows, newest first."""
    for key in filters:
        if key not in PS_FILTERS:
            raise errdefs.InvalidParameter(f"Invalid filter '{key}'")
    for value in filters.get("exited", []):
        try:
            int(value)
        except ValueError:
            raise errdefs.InvalidParameter(
                f'strconv.Atoi: parsing "{value}": invalid syntax') from None
    for status in filters.get("status", []):
        if status not in STATUSES:
            raise errdefs.InvalidParameter(f"Invalid filter 'status={status}'")
    for value in filters.get("is-task", []):
        if value not in ("true", "false"):
            raise errdefs.InvalidParameter(f"Invalid filter 'is-task={value}'")
    for value in filters.get("health", []):
        if value not in ("starting", "healthy", "unhealthy", "none"):
            raise errdefs.InvalidParameter(f"Unrecognised filter value for health: {value}")
    created = {c.id: parse_time(c.record["Created"]) for c in svc.containers.values()}
    containers = sorted(svc.containers.values(), key=lambda c: created[c.id], reverse=True)
    before_c = _by_id_or_name(svc, before) if before else None
    since_c = _by_id_or_name(svc, since) if since else None
    for value in filters.get("before", []):
        before_c = _by_id_or_name(svc, value)
    for value in filters.get("since", []):
        since_c = _by_id_or_name(svc, value)
    if limit > 0 or before_c or since_c or filters.get("status") or filters.get("exited"):
        all_ = True
    out = []
    for c in containers:
        if not all_ and not c.running:
            continue
        if before_c and created[c.id] >= created[before_c.id]:
            continue
        if since_c and created[c.id] <= created[since_c.id]:
            continue
        if not _keep(svc, c, filters):
            continue
        out.append(c)
        if limit > 0 and len(out) >= limit:
            break
    return out


def _by_id_or_name(svc, ref: str) -> Container:
    """daemon/list.go idOrNameFilter, with its message."""
    try:
        return svc.get(ref)
    except errdefs.NotFound:
        raise errdefs.NotFound(f"no such container {ref}") from None


def _search(pattern: str, *sources: str) -> bool:
    """filters.Args.Match: a regular expression found in the source (one that
    does not compile matches nothing)."""
    try:
        return any(re.search(pattern, s) for s in sources)
    except re.error:
        return False


def _keep(svc, c: Container, filters: dict[str, list[str]]) -> bool:
    if "id" in filters and not any(_search(v, c.id) for v in filters["id"]):
        return False
    if "name" in filters and not any(_search(v, c.name, c.name.lstrip("/"))
                                     for v in filters["name"]):
        return False
    if "label" in filters and not labels_match(c.config.get("Labels") or {}, filters["label"]):
        return False
    if "status" in filters and c.state["Status"] not in filters["status"]:
        return False
    if "exited" in filters:
        codes = {int(v) for v in filters["exited"]}
        if c.running or c.state["StartedAt"].startswith("0001-") or \
                c.state["ExitCode"] not in codes:
            return False
    if "ancestor" in filters and not any(_descends(svc, c, v) for v in filters["ancestor"]):
        return False
    if "health" in filters:
        health = (c.state.get("Health") or {}).get("Status", "none")
        if health not in filters["health"]:
            return False
    if "volume" in filters:
        # a volume's name, a bind's source, or any mount's destination
        mounts = api_mounts(c)
        known = {m.get("Name") or m["Source"] for m in mounts} | \
            {m["Destination"] for m in mounts}
        if not known & set(filters["volume"]):
            return False
    if "network" in filters:
        nets = (c.record.get("NetworkSettings") or {}).get("Networks") or {}
        known = set(nets) | {ep.get("NetworkID") for ep in nets.values()} - {"", None}
        # a network's name, its ID, or an ID prefix
        if not any(v in known or v and any(len(k) == 64 and k.startswith(v) for k in known)
                   for v in filters["network"]):
            return False
    return True


def _descends(svc, c: Container, ancestor: str) -> bool:
    """`ancestor=` matches the container's image or any image it was built on."""
    try:
        image = svc.images.get(ancestor)
    except errdefs.NotFound:
        return False
    if image.id == c.image_id:
        return True
    try:
        mine = svc.images.images.get(c.image_id)
    except errdefs.NotFound:
        return False
    theirs = chain_ids(image.diff_ids)
    return bool(theirs) and chain_ids(mine.diff_ids)[:len(theirs)] == theirs and \
        _parent_chain_contains(svc, mine.id, image.id)


def _parent_chain_contains(svc, image_id: str, ancestor_id: str) -> bool:
    current = image_id
    while current:
        if current == ancestor_id:
            return True
        try:
            current = svc.images.images.get(current).parent
        except errdefs.NotFound:
            return False
    return False
