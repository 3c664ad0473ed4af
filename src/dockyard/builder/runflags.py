"""RUN's BuildKit flags: --mount, --network, --security, --device.

dockerd's classic builder refuses a RUN that uses any of them ("the --mount
option requires BuildKit"), but only when the RUN is about to run: the
Dockerfile must parse first, and docker's parser checks their values. This
module reads the values as buildkit does, so that a Dockerfile is accepted
or refused with the same error as by docker.

A --mount is read twice. When the Dockerfile is parsed, without variables,
only its CSV form and a variable in `from=` are checked; when the RUN is
dispatched, its values are substituted and every field is checked.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from dockyard import strconv
from dockyard.builder.bflag import with_suggestion
from dockyard.builder.gostrings import quote

NETWORK_MODES = ("default", "none", "host")
SECURITY_MODES = ("insecure", "sandbox")
MOUNT_TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
SHARING_MODES = ("shared", "private", "locked")
_MOUNT_KEYS = ("type", "from", "source", "target", "readonly", "id", "sharing", "required",
               "size", "mode", "uid", "gid", "src", "dst", "destination", "ro", "rw",
               "readwrite", "env")


class RunFlagError(ValueError):
    """A RUN flag value docker refuses; the message is docker's."""


@dataclass
class Mount:
    type: str = "bind"
    from_: str = ""
    source: str = ""
    target: str = ""
    read_only: bool = False
    size_limit: int = 0
    cache_id: str = ""
    cache_sharing: str = ""
    required: bool = False
    env: str | None = None
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None


@dataclass
class Device:
    name: str = ""
    required: bool = False


def check_network(value: str) -> str:
    if value not in NETWORK_MODES:
        raise RunFlagError(f"invalid network mode {quote(value)}")
    return value


def check_security(value: str) -> str:
    if value not in SECURITY_MODES:
        raise RunFlagError(f"security {quote(value)} is not valid")
    return value


def parse_mount(value: str, expand: Callable[[str], str] | None = None) -> Mount:
    """A --mount value; with expand None, only what can be checked before
    variables are known."""
    fields = csv_fields(value, "mounts")
    mount = Mount()
    ro_auto = True  # read-only unless said otherwise, except cache and tmpfs
    for item in fields:
        key, has_value, text = item.partition("=")
        key = key.lower()
        if not has_value:
            if expand is None:
                continue
            if key in ("readonly", "ro", "readwrite", "rw"):
                mount.read_only, ro_auto = key in ("readonly", "ro"), False
            elif key == "required" and mount.type in ("secret", "ssh"):
                mount.required = True
            elif key == "required":
                raise RunFlagError(f"unexpected key '{key}' for mount type '{mount.type}'")
            else:
                raise RunFlagError(f"invalid field '{item}' must be a key=value pair")
            continue
        if expand is not None:
            text = expand(text)
        elif key == "from":
            dollar = text.find("$")
            if dollar not in (-1, len(text) - 1):
                raise RunFlagError(f"'{key}' doesn't support variable expansion, define alias stage instead")
        else:
            continue
        if key in ("readonly", "ro", "readwrite", "rw"):
            ro_auto = False
        _set_mount_field(mount, key, text, item)
    return _check_mount(mount, ro_auto)


def _set_mount_field(mount: Mount, key: str, value: str, item: str) -> None:
    if key == "type":
        if value.lower() not in MOUNT_TYPES:
            raise RunFlagError(with_suggestion(f"unsupported mount type {quote(value)}", value,
                                               list(MOUNT_TYPES), case_sensitive=True))
        mount.type = value.lower()
    elif key == "from":
        mount.from_ = value
    elif key in ("source", "src"):
        mount.source = value
    elif key in ("target", "dst", "destination"):
        mount.target = value
    elif key in ("readonly", "ro"):
        mount.read_only = _bool(key, value)
    elif key in ("readwrite", "rw"):
        mount.read_only = not _bool(key, value)
    elif key == "required":
        if mount.type not in ("secret", "ssh"):
            raise RunFlagError(f"unexpected key '{key}' for mount type '{mount.type}'")
        mount.required = _bool(key, value)
    elif key == "size":
        if mount.type != "tmpfs":
            raise RunFlagError(f"unexpected key '{key}' for mount type '{mount.type}'")
        mount.size_limit = _ram_in_bytes(key, value)
    elif key == "id":
        mount.cache_id = value
    elif key == "sharing":
        if value.lower() not in SHARING_MODES:
            raise RunFlagError(with_suggestion(f"unsupported sharing value {quote(value)}", value,
                                               list(SHARING_MODES), case_sensitive=True))
        mount.cache_sharing = value.lower()
    elif key in ("mode", "uid", "gid"):
        setattr(mount, key, _uint32(key, value, 8 if key == "mode" else 10))
    elif key == "env":
        mount.env = value
    else:
        raise RunFlagError(with_suggestion(f"unexpected key '{key}' in '{item}'", key,
                                           list(_MOUNT_KEYS), case_sensitive=True))


def _check_mount(mount: Mount, ro_auto: bool) -> Mount:
    if mount.type not in ("secret", "ssh", "cache"):
        for name in ("mode", "uid", "gid"):
            if getattr(mount, name) is not None:
                raise RunFlagError(f"{name} not allowed for {quote(mount.type)} type mounts")
    if ro_auto:
        mount.read_only = mount.type not in ("cache", "tmpfs")
    if mount.type == "secret":
        if mount.from_:
            raise RunFlagError("secret mount should not have a from")
        if mount.cache_sharing:
            raise RunFlagError("secret mount should not define sharing")
        if not (mount.source or mount.target or mount.cache_id):
            raise RunFlagError("invalid secret mount. one of source, target required")
        if mount.source and mount.cache_id:
            raise RunFlagError("both source and id can't be set")
    if mount.cache_sharing and mount.type != "cache":
        raise RunFlagError(f"invalid cache sharing set for {mount.type} mount")
    return mount


def parse_device(value: str) -> Device:
    """A --device value: `name[,required[=bool]]` or `name=...,required=...`."""
    device = Device()
    for item in csv_fields(value, "devices"):
        key, has_value, text = item.partition("=")
        key = key.lower()
        if not has_value:
            if key == "required":
                device.required = True
            elif not device.name:
                device.name = item
            else:
                raise RunFlagError(f"invalid field '{item}' must be a key=value pair")
        elif key == "name":
            if device.name:
                raise RunFlagError(f"device name already set to {device.name}")
            device.name = text
        elif key == "required":
            device.required = _bool(key, text)
        elif not device.name:
            device.name = item
        else:
            raise RunFlagError(with_suggestion(f"unexpected key '{key}' in '{item}'", key,
                                               ["name", "required"], case_sensitive=True))
    return device


def csv_fields(line: str, what: str) -> list[str]:
    """One CSV record, as Go's encoding/csv reads it (go-csvvalue)."""
    if line.endswith("\r\n"):
        line = line[:-2]
    elif line.endswith("\n"):
        line = line[:-1]
    if not line:
        raise RunFlagError(f"failed to parse csv {what}: EOF")
    data = line.encode("utf-8", "surrogateescape")  # Go counts columns in bytes
    fields: list[bytes] = []
    pos = 0
    while True:
        if data[pos:pos + 1] != b'"':
            end = data.find(b",", pos)
            item = data[pos:] if end < 0 else data[pos:end]
            if b'"' in item:
                raise _csv_error(what, pos + item.index(b'"'), 'bare " in non-quoted-field')
            fields.append(item)
            if end < 0:
                break
            pos = end + 1
            continue
        pos, item = _quoted_field(data, pos + 1, what)
        fields.append(item)
        if pos >= len(data):
            break
        pos += 1  # the comma after the closing quote
    return [f.decode("utf-8", "surrogateescape") for f in fields]


def _quoted_field(data: bytes, pos: int, what: str) -> tuple[int, bytes]:
    """A field after its opening quote: where it ends and its value."""
    value = b""
    while True:
        close = data.find(b'"', pos)
        if close < 0:
            raise _csv_error(what, pos, 'extraneous or missing " in quoted-field')
        value += data[pos:close]
        pos = close + 1
        following = data[pos:pos + 1]
        if following == b'"':       # "" is a quote
            value += b'"'
            pos += 1
        elif following in (b",", b""):
            return pos, value
        else:
            raise _csv_error(what, pos - 1, 'extraneous or missing " in quoted-field')


def _csv_error(what: str, pos: int, reason: str) -> RunFlagError:
    return RunFlagError(f"failed to parse csv {what}: parse error on line 1, column {pos + 1}: {reason}")


def _bool(key: str, value: str) -> bool:
    try:
        return strconv.parse_bool(value)
    except ValueError:
        raise RunFlagError(f"invalid value for {key}: {value}") from None


def _uint32(key: str, value: str, base: int) -> int:
    digits = "01234567" if base == 8 else "0123456789"
    # strconv.ParseUint: digits only (underscores need base 0), and no sign.
    if not value or any(c not in digits for c in value) or int(value, base) >= 2**32:
        raise RunFlagError(f"invalid value {value} for {key}")
    return int(value, base)


_FLOAT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", re.ASCII)


def _ram_in_bytes(key: str, value: str) -> int:
    """go-units RAMInBytes: `64m`, `1.5GiB`, `512 k` (binary multiples)."""
    invalid = RunFlagError(f"invalid value for {key}: {value}")
    sep = max(value.rfind(c) for c in "0123456789. ")
    if sep < 0:
        raise invalid
    number, suffix = value[:sep + 1], value[sep + 1:]
    if value[sep] == " ":
        number = value[:sep]
    if not _FLOAT.fullmatch(number) or float(number) < 0:
        raise invalid
    suffix = suffix.lower()
    if not suffix or suffix == "b":
        return int(float(number))
    if len(suffix) > 3 or suffix[0] not in "kmgtp" or suffix[1:] not in ("", "b", "ib"):
        raise invalid
    return int(float(number) * 1024 ** ("kmgtp".index(suffix[0]) + 1))
