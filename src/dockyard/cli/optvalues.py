"""The value types of docker's container flags (docker/cli opts/, go-units), each
a function from what the user typed to what the API wants, raising ValueError
with docker's message; pflag.FlagSet reports it as `invalid argument "v" for
"-x, --xx" flag: <message>`. Pure, except that `-e NAME` reads the environment.
"""

from __future__ import annotations

import ipaddress
import os
import re

from dockyard.cli import govalues

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

def validate_attach(val: str) -> str:
    s = val.lower()
    if s in ("stdin", "stdout", "stderr"):
        return s
    raise ValueError("valid streams are STDIN, STDOUT and STDERR")


def validate_env(val: str) -> str:
    key, eq, _ = val.partition("=")
    if key == "":
        raise ValueError(f"invalid environment variable: {val}")
    if eq:
        return val
    if key in os.environ:
        return f"{key}={os.environ[key]}"
    return val


def validate_label(val: str) -> str:
    key = val.partition("=")[0].lstrip(" \t")
    if key == "":
        raise ValueError(f"invalid label '{val}': empty name")
    if " " in key or "\t" in key:
        raise ValueError(f"label '{key}' contains whitespaces")
    return val


def parse_ip(val: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(val)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # Go prints ::ffff:a.b.c.d as a.b.c.d
    return ip


def validate_ip(val: str) -> str:
    ip = parse_ip(val.strip())
    if ip is None:
        raise ValueError(f"IP address is not correctly formatted: {val}")
    return str(ip)


_DOMAIN_RE = re.compile(r"^(:?(:?[a-zA-Z0-9]|(:?[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9]))"
                        r"(:?\.(:?[a-zA-Z0-9]|(:?[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])))*)\.?\s*$")


def validate_dns_search(val: str) -> str:
    val = val.strip(" ")
    if val == ".":
        return val
    m = _DOMAIN_RE.search(val) if re.search(r"[a-zA-Z]", val) else None
    if m is None or len(m.group(1)) >= 255:
        raise ValueError(f"{val} is not a valid domain")
    return m.group(1)


def validate_extra_host(val: str) -> str:
    key, sep, value = val.partition("=")
    if not sep:
        key, sep, value = val.partition(":")
    if not sep or key == "" or ":" in key:
        raise ValueError(f'bad format for add-host: "{val}"')
    if value != "host-gateway":
        addr = value[1:-1] if len(value) > 2 and value[0] == "[" and value[-1] == "]" else value
        if parse_ip(addr) is None:
            raise ValueError(f'invalid IP address in add-host: "{addr}"')
        value = addr
    return f"{key}:{value}"


def validate_link(val: str) -> str:
    if val == "":
        raise ValueError("empty string specified for links")
    if len(val.split(":", 2)) > 2:
        raise ValueError(f"bad format for links: {val}")
    return val


_CGROUP_RULE = re.compile(r"^[acb] ([0-9]+|\*):([0-9]+|\*) [rwm]{1,3}$")


def validate_device_cgroup_rule(val: str) -> str:
    if not _CGROUP_RULE.match(val):
        raise ValueError(f"invalid device cgroup format '{val}'")
    return val


_SYSCTLS = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
            "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"}


def validate_sysctl(val: str) -> str:
    key, sep, _ = val.partition("=")
    if sep and key and (key in _SYSCTLS or key.startswith(("net.", "fs.mqueue."))):
        return val
    raise ValueError(f"sysctl '{val}' is not allowed")


def mem_bytes(val: str) -> int:
    return govalues.ram_in_bytes(val)


def mem_swap_bytes(val: str) -> int:
    return -1 if val == "-1" else govalues.ram_in_bytes(val)


def nano_cpus(val: str) -> int:
    """opts.ParseCPUs: a rational number of CPUs, in billionths."""
    from fractions import Fraction
    try:
        if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|[+-]?\d+/\d+", val):
            raise ValueError
        cpus = Fraction(val)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"failed to parse {val} as a rational number") from None
    nano = cpus * 1_000_000_000
    if nano.denominator != 1:
        raise ValueError("value is too precise")
    return int(nano)


_ULIMITS = {"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
            "nproc", "rss", "rtprio", "rttime", "sigpending", "stack"}


def ulimit(val: str) -> dict[str, Any]:
    """units.ParseUlimit: name=soft[:hard]."""
    name, sep, limits = val.partition("=")
    if not sep:
        raise ValueError(f"invalid ulimit argument: {val}")
    if name not in _ULIMITS:
        raise ValueError(f"invalid ulimit type: {name}")
    parts = limits.split(":")
    if len(parts) > 2:
        raise ValueError(f"too many limit value arguments - {limits}, can only have up to two, "
                         "`soft[:hard]`")
    hard = govalues.parse_int(parts[1], 64, 10) if len(parts) == 2 else None
    soft = govalues.parse_int(parts[0], 64, 10)
    if hard is None:
        hard = soft
    if hard != -1:
        if soft == -1:
            raise ValueError("ulimit soft limit must be less than or equal to hard limit: "
                             f"soft: -1 (unlimited), hard: {hard}")
        if soft > hard:
            raise ValueError("ulimit soft limit must be less than or equal to hard limit: "
                             f"{soft} > {hard}")
    return {"Name": name, "Hard": hard, "Soft": soft}


def weight_device(val: str) -> dict[str, Any]:
    path, sep, weight = val.partition(":")
    if not sep or path == "":
        raise ValueError(f"bad format: {val}")
    if not path.startswith("/dev/"):
        raise ValueError(f"bad format for device path: {val}")
    try:
        w = govalues.parse_uint(weight, 16, 10)
    except ValueError:
        raise ValueError(f"invalid weight for device: {val}") from None
    if w > 0 and not 10 <= w <= 1000:
        raise ValueError(f"invalid weight for device: {val}")
    return {"Path": path, "Weight": w}


def throttle_bps_device(val: str) -> dict[str, Any]:
    path, sep, rate = val.partition(":")
    if not sep or path == "":
        raise ValueError(f"bad format: {val}")
    if not path.startswith("/dev/"):
        raise ValueError(f"bad format for device path: {val}")
    try:
        r = govalues.ram_in_bytes(rate)
    except ValueError:
        raise ValueError(f"invalid rate for device: {val}. The correct format is "
                         "<device-path>:<number>[<unit>]. Number must be a positive integer. "
                         "Unit is optional and can be kb, mb, or gb") from None
    return {"Path": path, "Rate": r}


def throttle_iops_device(val: str) -> dict[str, Any]:
    path, sep, rate = val.partition(":")
    if not sep or path == "":
        raise ValueError(f"bad format: {val}")
    if not path.startswith("/dev/"):
        raise ValueError(f"bad format for device path: {val}")
    try:
        r = govalues.parse_uint(rate, 64, 10)
    except ValueError:
        raise ValueError(f"invalid rate for device: {val}. The correct format is "
                         "<device-path>:<number>. Number must be a positive integer") from None
    return {"Path": path, "Rate": r}


def csv_fields(value: str) -> list[str]:
    import csv
    try:
        return next(csv.reader([value], strict=True))
    except (csv.Error, StopIteration) as e:
        raise ValueError(str(e)) from None


def go_bool(val: str) -> bool:
    from dockyard.cli.command import parse_go_bool
    return parse_go_bool(val)


def gpu_request(value: str) -> dict[str, Any]:
    """opts.GpuOpts.Set: `all`, `2`, `device=0,1`, `capabilities=compute`."""
    req: dict[str, Any] = {"Driver": "", "Count": 0, "DeviceIDs": None, "Capabilities": None,
                           "Options": None}
    seen: set[str] = set()

    def count(v: str) -> int:
        if v == "all":
            return -1
        try:
            return govalues.parse_int(v, 64, 10)
        except ValueError:
            raise ValueError(f'invalid count ({v}): value must be either "all" or an integer: '
                             f'strconv.Atoi: parsing {govalues.go_quote(v)}: invalid syntax') \
                from None

    for field in csv_fields(value):
        key, eq, val = field.partition("=")
        if key in seen:
            raise ValueError(f"gpu request key '{key}' can be specified only once")
        seen.add(key)
        if not eq:
            seen.add("count")
            req["Count"] = count(key)
            continue
        if key == "driver":
            req["Driver"] = val
        elif key == "count":
            req["Count"] = count(val)
        elif key == "device":
            req["DeviceIDs"] = val.split(",")
        elif key == "capabilities":
            req["Capabilities"] = [val.split(",") + ["gpu"]]
        elif key == "options":
            req["Options"] = dict(sorted(kv_map(csv_fields(val)).items()))
        else:
            raise ValueError(f"unexpected key '{key}' in '{field}'")
    if "count" not in seen and req["DeviceIDs"] is None:
        req["Count"] = 1
    if req["Options"] is None:
        req["Options"] = {}
    if req["Capabilities"] is None:
        req["Capabilities"] = [["gpu"]]
    return req


def int64(val: str) -> int:
    return govalues.parse_int(val, 64)


def uint16(val: str) -> int:
    return govalues.parse_uint(val, 16)


def uint64(val: str) -> int:
    return govalues.parse_uint(val, 64)


def duration(val: str) -> int:
    return govalues.parse_duration(val)


def merge_map(current: dict[str, str] | None, kv: str) -> dict[str, str]:
    out = dict(current or {})
    k, _, v = kv.partition("=")
    out[k] = v
    return out


def merge_ulimit(current: dict[str, dict] | None, u: dict) -> dict[str, dict]:
    out = dict(current or {})
    out[u["Name"]] = u
    return out


def merge_gpus(current: list | None, req: dict) -> list:
    return [*(current or []), req]


def kv_map(values: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        k, _, v = value.partition("=")
        out[k] = v
    return out
