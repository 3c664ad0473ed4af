"""The structured container options: --mount and --network (CSV fields),
-v (loader.ParseVolume), -p/--expose (go-connections' nat), --device,
--security-opt, and --env-file/--label-file (kvfile), parsed as docker
parses them, with docker's messages. The flag-level ones raise ValueError
(pflag reports them with the flag); the rest raise OptionsError, which
`run` and `create` print as "docker: <message>" with status 125.
"""

from __future__ import annotations

import os
import re

from dockyard.cli import govalues
from dockyard.cli.optvalues import csv_fields, go_bool, parse_ip

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class OptionsError(ValueError):
    """What opts.go's parse() returns: docker prints "docker: <message>" and exits 125."""


def mount(value: str) -> dict[str, Any]:
    """opts.MountOpt.Set: `type=bind,source=/a,target=/b,readonly`."""
    m: dict[str, Any] = {"Type": "volume"}
    opts: dict[str, dict[str, Any]] = {}

    def section(name: str) -> dict[str, Any]:
        if name not in opts:
            opts[name] = {"Labels": {}, "DriverConfig": {}} if name == "VolumeOptions" else {}
        return opts[name]

    for field in csv_fields(value):
        key, eq, val = field.partition("=")
        key = key.lower()
        if not eq:
            if key in ("readonly", "ro"):
                m["ReadOnly"] = True
            elif key == "volume-nocopy":
                section("VolumeOptions")["NoCopy"] = True
            elif key == "bind-nonrecursive":
                section("BindOptions")["NonRecursive"] = True
            else:
                raise ValueError(f"invalid field '{field}' must be a key=value pair")
            continue
        if key == "type":
            m["Type"] = val.lower()
        elif key in ("source", "src"):
            m["Source"] = os.path.abspath(val) if not val.startswith("/") and \
                val.startswith(".") else val
        elif key in ("target", "dst", "destination"):
            m["Target"] = val
        elif key in ("readonly", "ro"):
            try:
                m["ReadOnly"] = go_bool(val)
            except ValueError:
                raise ValueError(f"invalid value for {key}: {val}") from None
        elif key == "consistency":
            m["Consistency"] = val.lower()
        elif key == "bind-propagation":
            section("BindOptions")["Propagation"] = val.lower()
        elif key == "bind-nonrecursive":
            try:
                section("BindOptions")["NonRecursive"] = go_bool(val)
            except ValueError:
                raise ValueError(f"invalid value for {key}: {val}") from None
        elif key == "bind-recursive":
            if val == "disabled":
                section("BindOptions")["NonRecursive"] = True
            elif val == "writable":
                section("BindOptions")["ReadOnlyNonRecursive"] = True
            elif val == "readonly":
                section("BindOptions")["ReadOnlyForceRecursive"] = True
            elif val != "enabled":
                raise ValueError(f'invalid value for {key}: {val} (must be "enabled", '
                                 '"disabled", "writable", or "readonly")')
        elif key == "volume-subpath":
            section("VolumeOptions")["Subpath"] = val
        elif key == "volume-nocopy":
            try:
                section("VolumeOptions")["NoCopy"] = go_bool(val)
            except ValueError:
                raise ValueError(f"invalid value for volume-nocopy: {val}") from None
        elif key == "volume-label":
            k, _, v = val.partition("=")
            if k:
                section("VolumeOptions")["Labels"][k] = v
        elif key == "volume-driver":
            section("VolumeOptions")["DriverConfig"]["Name"] = val
        elif key == "volume-opt":
            k, _, v = val.partition("=")
            driver = section("VolumeOptions")["DriverConfig"]
            driver.setdefault("Options", {})
            if k:
                driver["Options"][k] = v
        elif key == "image-subpath":
            section("ImageOptions")["Subpath"] = val
        elif key == "tmpfs-size":
            try:
                section("TmpfsOptions")["SizeBytes"] = govalues.ram_in_bytes(val)
            except ValueError:
                raise ValueError(f"invalid value for {key}: {val}") from None
        elif key == "tmpfs-mode":
            try:
                section("TmpfsOptions")["Mode"] = govalues.parse_uint(val, 32, 8)
            except ValueError:
                raise ValueError(f"invalid value for {key}: {val}") from None
        else:
            raise ValueError(f"unexpected key '{key}' in '{field}'")
    if m["Type"] == "":
        raise ValueError("type is required")
    if not m.get("Target"):
        raise ValueError("target is required")
    for name, kind in (("VolumeOptions", "volume"), ("ImageOptions", "image"),
                       ("BindOptions", "bind"), ("TmpfsOptions", "tmpfs")):
        if name in opts and m["Type"] != kind:
            prefix = name[:-len("Options")].lower()
            raise ValueError(f"cannot mix '{prefix}-*' options with mount type '{m['Type']}'")
    bind = opts.get("BindOptions", {})
    if bind.get("ReadOnlyNonRecursive") and not m.get("ReadOnly"):
        raise ValueError("option 'bind-recursive=writable' requires 'readonly' to be "
                         "specified in conjunction")
    if bind.get("ReadOnlyForceRecursive"):
        if not m.get("ReadOnly"):
            raise ValueError("option 'bind-recursive=readonly' requires 'readonly' to be "
                             "specified in conjunction")
        if bind.get("Propagation") != "rprivate":
            raise ValueError("option 'bind-recursive=readonly' requires "
                             "'bind-propagation=rprivate' to be specified in conjunction")
    return _mount_json(m, opts)


def _mount_json(m: dict[str, Any], opts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """mount.Mount as Go marshals it: its field order, empty fields left out."""
    out: dict[str, Any] = {"Type": m["Type"]}
    for key in ("Source", "Target", "ReadOnly", "Consistency"):
        if m.get(key):
            out[key] = m[key]
    if "BindOptions" in opts:
        out["BindOptions"] = {k: opts["BindOptions"][k] for k in (
            "Propagation", "NonRecursive", "CreateMountpoint", "ReadOnlyNonRecursive",
            "ReadOnlyForceRecursive") if opts["BindOptions"].get(k)}
    if "VolumeOptions" in opts:
        v = opts["VolumeOptions"]
        vo: dict[str, Any] = {}
        if v.get("NoCopy"):
            vo["NoCopy"] = True
        if v["Labels"]:
            vo["Labels"] = dict(sorted(v["Labels"].items()))
        if v.get("Subpath"):
            vo["Subpath"] = v["Subpath"]
        driver = {k: (dict(sorted(x.items())) if isinstance(x, dict) else x)
                  for k, x in v["DriverConfig"].items() if x}
        vo["DriverConfig"] = driver
        out["VolumeOptions"] = vo
    if "ImageOptions" in opts:
        out["ImageOptions"] = {k: v for k, v in opts["ImageOptions"].items() if v}
    if "TmpfsOptions" in opts:
        out["TmpfsOptions"] = {k: opts["TmpfsOptions"][k] for k in ("SizeBytes", "Mode")
                               if opts["TmpfsOptions"].get(k)}
    return out


def network(value: str) -> dict[str, Any]:
    """opts.NetworkOpt.Set: a name, or `name=x,alias=y,ip=...`."""
    n: dict[str, Any] = {"Target": "", "Aliases": [], "IPv4Address": "", "IPv6Address": "",
                         "MacAddress": "", "LinkLocalIPs": [], "DriverOpts": {},
                         "GwPriority": 0, "Links": []}
    if not re.search(r"\w+=\w+(,\w+=\w+)*", value):
        n["Target"] = value
        return n
    for field in csv_fields(value):
        key, eq, val = field.lower().partition("=")
        if not eq or key == "":
            raise ValueError(f"invalid field {field}")
        key, val = key.strip(), val.strip()
        if key == "name":
            n["Target"] = val
        elif key == "alias":
            n["Aliases"].append(val)
        elif key == "ip":
            n["IPv4Address"] = val
        elif key == "ip6":
            n["IPv6Address"] = val
        elif key == "mac-address":
            n["MacAddress"] = val
        elif key == "link-local-ip":
            n["LinkLocalIPs"].append(val)
        elif key == "driver-opt":
            k, eq2, v = val.partition("=")
            if not eq2 or k == "":
                raise ValueError("invalid key value pair format in driver options")
            n["DriverOpts"][k.strip()] = v.strip()
        elif key == "gw-priority":
            try:
                n["GwPriority"] = govalues.parse_int(val, 64, 10)
            except ValueError as e:
                reason = str(e).rsplit(": ", 1)[-1]
                raise ValueError(f"invalid gw-priority ({val}): {reason}") from None
        else:
            raise ValueError(f"invalid field key {key}")
    if not n["Target"]:
        raise ValueError("network name/id is not specified")
    return n


def read_kv_file(path: str, lookup) -> list[str]:
    """kvfile.Parse: KEY=value lines; `#` comments; KEY alone looks the value up."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        from dockyard.cli.command import go_path_error
        raise OptionsError(go_path_error(e)) from None
    lines: list[str] = []
    for number, raw in enumerate(data.splitlines(), 1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise OptionsError(f"invalid env file ({path}): invalid utf8 bytes at line "
                               f"{number}: [{' '.join(str(b) for b in raw)}]") from None
        if number == 1:
            text = text.removeprefix("\ufeff")
        line = text.lstrip()
        if not line or line.startswith("#"):
            continue
        key, eq, _ = line.partition("=")
        if not key:
            raise OptionsError(f"invalid env file ({path}): no variable name on line '{line}'")
        if " " in key or "\t" in key:
            raise OptionsError(f"invalid env file ({path}): variable '{key}' contains "
                               "whitespaces")
        if eq:
            lines.append(line)
        elif lookup is not None and line in lookup:
            lines.append(f"{key}={lookup[line]}")
    return lines


def parse_volume(spec: str) -> dict[str, Any]:
    """loader.ParseVolume: [source:]target[:options], with its quirks (a one-letter
    first part followed by ":" is a Windows drive)."""
    vol: dict[str, Any] = {"Source": "", "Target": "", "Type": ""}
    if not spec:
        raise OptionsError("invalid empty volume spec")
    if len(spec) <= 2:
        vol.update(Target=spec, Type="volume")
        return vol
    buffer = ""
    end = "\0"
    for ch in spec + end:
        if ch == ":" and len(buffer) == 1 and buffer.isalpha():
            buffer += ch
        elif ch in (":", end):
            if not buffer:
                _populate_type(vol)
                raise OptionsError(f"invalid spec: {spec}: empty section between colons")
            if vol["Source"] == "" and ch == end:
                vol["Target"] = buffer
            elif vol["Source"] == "":
                vol["Source"] = buffer
            elif vol["Target"] == "":
                vol["Target"] = buffer
            elif ch == ":":
                _populate_type(vol)
                raise OptionsError(f"invalid spec: {spec}: too many colons")
            buffer = ""
        else:
            buffer += ch
    _populate_type(vol)
    return vol


def _populate_type(vol: dict[str, Any]) -> None:
    src = vol["Source"]
    if src == "":
        vol["Type"] = "volume"
    elif src[0] in "./~" or src.startswith("\\\\") or (
            len(src) > 1 and src[0].isalpha() and src[1] == ":"):
        vol["Type"] = "bind"
    else:
        vol["Type"] = "volume"


def split_proto_port(raw: str) -> tuple[str, str]:
    parts = raw.split("/")
    if not raw or not parts[0]:
        return "", ""
    if len(parts) == 1:
        return "tcp", raw
    if not parts[1]:
        return "tcp", parts[0]
    return parts[1], parts[0]


def port_range(ports: str) -> tuple[int, int]:
    """nat.ParsePortRange (go-connections 0.5)."""
    if ports == "":
        raise ValueError("empty string specified for ports")
    if "-" not in ports:
        p = govalues.parse_uint(ports, 16, 10)
        return p, p
    parts = ports.split("-")
    start = govalues.parse_uint(parts[0], 16, 10)
    end = govalues.parse_uint(parts[1], 16, 10)
    if end < start:
        raise ValueError(f"invalid range specified for port: {ports}")
    return start, end


def parse_port_spec(raw: str) -> list[tuple[str, dict[str, str]]]:
    """nat.ParsePortSpec: [ip:][hostPort:]containerPort[/proto] → (port, binding)s."""
    parts = raw.split(":")
    if len(parts) == 1:
        ip, host_port, container_port = "", "", parts[0]
    elif len(parts) == 2:
        ip, host_port, container_port = "", parts[0], parts[1]
    else:
        ip, host_port, container_port = ":".join(parts[:-2]), parts[-2], parts[-1]
    proto, container_port = split_proto_port(container_port)
    if ip.startswith("["):
        if "]" not in ip or not ip.endswith("]"):
            raise OptionsError(f"invalid IP address {ip}: address {ip}: missing port in address")
        ip = ip[1:ip.index("]")]
    if ip and parse_ip(ip) is None:
        raise OptionsError(f"invalid IP address: {ip}")
    if container_port == "":
        raise OptionsError(f"no port specified: {raw}<empty>")
    try:
        start, end = port_range(container_port)
    except ValueError:
        raise OptionsError(f"invalid containerPort: {container_port}") from None
    host_start = host_end = 0
    if host_port:
        try:
            host_start, host_end = port_range(host_port)
        except ValueError:
            raise OptionsError(f"invalid hostPort: {host_port}") from None
        if end - start != host_end - host_start and end != start:
            raise OptionsError("invalid ranges specified for container and host Ports: "
                               f"{container_port} and {host_port}")
    if proto.lower() not in ("tcp", "udp", "sctp"):
        raise OptionsError(f"invalid proto: {proto}")
    out = []
    for i in range(end - start + 1):
        hp = str(host_start + i) if host_port else ""
        if start == end and host_start != host_end:
            hp = f"{hp}-{host_end}"
        out.append((f"{start + i}/{proto.lower()}", {"HostIp": ip, "HostPort": hp}))
    return out


def standard_publish(values: list[str]) -> list[str]:
    """convertToStandardNotation: `published=8080,target=80` → 8080:80/tcp."""
    out = []
    for publish in values:
        if "=" not in publish:
            out.append(publish)
            continue
        params = {"protocol": "tcp"}
        for param in publish.split(","):
            k, eq, v = param.partition("=")
            if not eq or not k:
                raise OptionsError("invalid publish opts format (should be name=value but got "
                                   f"'{param}')")
            params[k] = v
        out.append(f"{params.get('published', '')}:{params.get('target', '')}/"
                   f"{params['protocol']}")
    return out


def _valid_device_mode(mode: str) -> bool:
    return bool(mode) and all(c in "rwm" for c in mode) and len(set(mode)) == len(mode)


def _clean(p: str) -> str:
    """Go's path.Clean (POSIX normpath keeps a leading "//"; Go does not)."""
    import posixpath
    out = posixpath.normpath(p)
    return "/" + out.lstrip("/") if out.startswith("//") else out


def parse_device(device: str) -> dict[str, str]:
    """validateLinuxPath, then parseLinuxDevice: host[:container][:mode]."""
    split = device.split(":", 2)
    if device.count(":") > 2 or split[0] == "":
        raise OptionsError(f"bad format for path: {device}")
    if len(split) == 1:
        container_path = split[0]
        device = _clean(container_path)
    elif len(split) == 2 and _valid_device_mode(split[1]):
        container_path = split[0]
        device = f"{_clean(container_path)}:{split[1]}"
    elif len(split) == 2:
        container_path = split[1]
        device = f"{split[0]}:{_clean(container_path)}"
    else:
        container_path = split[1]
        if not _valid_device_mode(split[2]):
            raise OptionsError(f"bad mode specified: {split[2]}")
    if not container_path.startswith("/"):
        raise OptionsError(f"{container_path} is not an absolute path")
    arr = device.split(":", 3)
    src, dst, perms = arr[0], "", "rwm"
    if len(arr) == 3:
        perms = arr[2]
    if len(arr) >= 2:
        if _valid_device_mode(arr[1]):
            perms = arr[1]
        else:
            dst = arr[1]
    return {"PathOnHost": src, "PathInContainer": dst or src, "CgroupPermissions": perms}


def is_qualified_cdi(device: str) -> bool:
    return bool(re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9._-]*(/[a-zA-Z0-9][a-zA-Z0-9._-]*)+="
                             r"[a-zA-Z0-9_.:-]+", device))


def parse_security_opts(values: list[str]) -> list[str]:
    out = []
    for opt in values:
        k, sep, v = opt.partition("=")
        if not sep and k != "no-new-privileges":
            k, sep, v = opt.partition(":")
        if (not sep or v == "") and k != "no-new-privileges":
            raise OptionsError(f'Invalid --security-opt: "{opt}"')
        if k == "seccomp" and v not in ("builtin", "unconfined"):
            try:
                with open(v, "rb") as f:
                    raw = f.read()
            except OSError as e:
                from dockyard.cli.command import go_path_error
                raise OptionsError(f"opening seccomp profile ({v}) failed: "
                                   f"{go_path_error(e)}") from None
            import json
            try:
                profile = json.loads(raw)
            except ValueError as e:
                raise OptionsError(f"compacting json for seccomp profile ({v}) failed: "
                                   f"{e}") from None
            opt = "seccomp=" + json.dumps(profile, separators=(",", ":"))
        out.append(opt)
    return out
