"""`dockyard-runtime update`: new resource limits for a live container, as runc's.

    update [-r|--resources FILE|-] [--memory N] [--memory-swap N]
           [--memory-reservation N] [--cpu-share N] [--cpu-period N]
           [--cpu-quota N] [--cpu-rt-period N] [--cpu-rt-runtime N]
           [--cpuset-cpus LIST] [--cpuset-mems LIST] [--blkio-weight N]
           [--pids-limit N] ID

`--resources` is an OCI `linux.resources` object (a file, or `-` for stdin);
with it the other flags are ignored, as runc does. Memory sizes take runc's
suffixes (`100m`, `1g`; `-1` for unlimited). What is set goes to the
container's cgroup (linux/cgroups `update`: only the given keys are written)
and into the state's copy of the spec, so that a later `update` or `exec`
reads the limits as they are. A stopped container is refused with runc's
"container not running".
"""

from __future__ import annotations

import json
import re
import sys

FLAGS = {"resources": True, "memory": True, "memory-swap": True, "memory-reservation": True,
         "kernel-memory": True, "kernel-memory-tcp": True, "cpu-share": True,
         "cpu-period": True, "cpu-quota": True, "cpu-burst": True, "cpu-idle": True,
         "cpu-rt-period": True, "cpu-rt-runtime": True, "cpuset-cpus": True,
         "cpuset-mems": True, "blkio-weight": True, "pids-limit": True,
         "l3-cache-schema": True, "mem-bw-schema": True}
ALIASES = {"r": "resources"}
_SIZE = re.compile(r"^(\d+(?:\.\d+)*) ?([kmgtp])?i?b?$")
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def register(flags: dict, nargs: dict, commands: dict, aliases: dict | None = None) -> None:
    """Make `update` a verb of the runtime's CLI (runtime/oci.py)."""
    flags["update"] = FLAGS
    nargs["update"] = (1, 1)
    commands["update"] = cmd_update
    if aliases is not None:
        aliases["update"] = ALIASES


def ram_in_bytes(text: str) -> int:
    """go-units RAMInBytes: `64m`, `1.5g`, `100MiB`, `512 kb`; binary multiples."""
    m = _SIZE.match(text.strip().lower())
    if not m:
        raise ValueError(f"invalid size: '{text}'")
    return int(float(m.group(1)) * _UNITS[m.group(2) or ""])


def resources_from_flags(opts: dict) -> dict:
    """The flags' linux.resources (runc's update, without --resources)."""
    memory: dict = {}
    for flag, key in (("memory", "limit"), ("memory-swap", "swap"),
                      ("memory-reservation", "reservation")):
        if opts.get(flag):
            memory[key] = -1 if opts[flag] == "-1" else _size(flag, opts[flag])
    cpu: dict = {}
    for flag, key in (("cpu-share", "shares"), ("cpu-period", "period"), ("cpu-quota", "quota"),
                      ("cpu-rt-period", "realtimePeriod"), ("cpu-rt-runtime", "realtimeRuntime")):
        if opts.get(flag):
            cpu[key] = _int(flag, opts[flag])
    for flag, key in (("cpuset-cpus", "cpus"), ("cpuset-mems", "mems")):
        if opts.get(flag):
            cpu[key] = opts[flag]
    out: dict = {}
    if memory:
        out["memory"] = memory
    if cpu:
        out["cpu"] = cpu
    if opts.get("blkio-weight"):
        out["blockIO"] = {"weight": _int("blkio-weight", opts["blkio-weight"])}
    if opts.get("pids-limit") is not None:
        out["pids"] = {"limit": _int("pids-limit", opts["pids-limit"])}
    return out


def _size(flag: str, value: str) -> int:
    try:
        return ram_in_bytes(value)
    except ValueError as e:
        raise ValueError(f"invalid value for {flag}: {e}") from None


def _int(flag: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f'invalid value for {flag}: strconv.ParseInt: parsing "{value}": '
                         "invalid syntax") from None


def read_resources(source: str) -> dict:
    try:
        if source == "-":
            doc = json.load(sys.stdin)
        else:
            with open(source) as f:
                doc = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"invalid resources: {e}") from None
    if not isinstance(doc, dict):
        raise ValueError("invalid resources: not a JSON object")
    return doc


def merge_into_spec(spec_resources: dict, update: dict) -> None:
    """What was set, into the spec's linux.resources (kept in the state)."""
    for section, values in update.items():
        if isinstance(values, dict) and isinstance(spec_resources.get(section), dict):
            spec_resources[section].update(values)
        else:
            spec_resources[section] = values


def cmd_update(root: str, opts: dict, args: list[str], log) -> None:
    from dockyard.runtime.oci import Failure, _cgroup, _load, _status

    cdir, state = _load(root, args[0])
    try:
        resources = read_resources(opts["resources"]) if opts.get("resources") \
            else resources_from_flags(opts)
    except (OSError, ValueError) as e:
        raise Failure(str(e)) from None
    if resources.get("memory", {}).get("limit") == -1 and "swap" not in resources["memory"]:
        resources["memory"]["swap"] = 0
    cgroup = _cgroup(state)
    if _status(cdir, state, cgroup) not in ("running", "created", "paused"):
        raise Failure("container not running")
    try:
        cgroup.update(resources)
    except (OSError, ValueError) as e:
        raise Failure(f"unable to set cgroup limits: {getattr(e, 'strerror', None) or e}") \
            from None
    linux = state.setdefault("config", {}).setdefault("linux", {})
    merge_into_spec(linux.setdefault("resources", {}), resources)
    cdir.save(state)
