"""Mount points: what a container asks to have mounted, parsed and checked as
dockerd's Linux parser does (moby's volume/mounts), before anything is made.

A container names its mounts in four places, all read at create time:

    HostConfig.Binds       "src:dst[:mode]"  -v with a source (a host path or a volume name)
    HostConfig.Mounts      {"Type", "Source", "Target", ...}  --mount
    HostConfig.VolumesFrom "container[:ro|rw]"  every mount point of another container
    Config.Volumes         {"/path": {}}  anonymous volumes (-v /path, and the image's VOLUMEs)

Each becomes a `MountPoint`, stored in the container's record keyed by its
destination; the daemon turns them into OCI mounts at every start. This module
is pure: it reads no state, and the only thing it asks the filesystem is
whether a `--mount` bind source exists.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

BIND, VOLUME, TMPFS = "bind", "volume", "tmpfs"
DEFAULT_PROPAGATION = "rprivate"
PROPAGATION_MODES = ("private", "rprivate", "slave", "rslave", "shared", "rshared")
_RW_MODES = ("rw", "ro")
_LABEL_MODES = ("z", "Z")
_COPY_MODES = ("nocopy",)
_CONSISTENCY_MODES = ("consistent", "cached", "delegated")
_TMPFS_FLAGS = ("exec", "noexec")


class MountError(ValueError):
    """A mount the user described wrongly: dockerd answers 400 with this text."""


@dataclass
class MountPoint:
    """moby's MountPoint, as it is kept in the container's record."""
    Type: str
    Destination: str
    Source: str = ""       # a bind's host path; a volume's _data, once it exists
    Name: str = ""         # a volume's name
    Driver: str = ""       # a volume's driver
    RW: bool = True
    Mode: str = ""         # the mode string as given ("ro", "z", ...): shown in inspect
    Propagation: str = ""  # binds only; "" leaves the kernel's default
    Spec: dict[str, Any] = field(default_factory=dict)  # the request, as a mount.Mount
    CopyData: bool = False  # fill a new, empty volume with the image's files at first start
    SkipMountpointCreation: bool = False  # a --mount bind: its source must exist
    TmpfsData: str = ""    # a tmpfs mount point's options ("size=64m,mode=1770")

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> MountPoint:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in record.items() if k in known})

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def anonymous(self) -> bool:
        """A volume nobody named: `rm -v` and `run --rm` take it away."""
        return self.Type == VOLUME and not self.Spec.get("Source")

    def api_view(self) -> dict[str, Any]:
        """The `Mounts` entry of inspect and of the container list."""
        out: dict[str, Any] = {"Type": self.Type}
        if self.Name:
            out["Name"] = self.Name
        out["Source"] = self.Source
        out["Destination"] = self.Destination
        if self.Driver:
            out["Driver"] = self.Driver
        out.update(Mode=self.Mode, RW=self.RW, Propagation=self.Propagation)
        return out


# -- modes ("ro,z,nocopy") ----------------------------------------------------------

def valid_mode(mode: str) -> bool:
    """At most one of each kind: rw/ro, z/Z, a propagation, nocopy, a consistency."""
    if mode == "":
        return True
    counts = [0, 0, 0, 0, 0]
    for o in mode.split(","):
        for i, kind in enumerate((_RW_MODES, _LABEL_MODES, PROPAGATION_MODES, _COPY_MODES,
                                  _CONSISTENCY_MODES)):
            if o in kind:
                counts[i] += 1
                break
        else:
            return False
    return max(counts) <= 1


def read_write(mode: str) -> bool:
    return valid_mode(mode) and "ro" not in mode.split(",")


def _propagation(mode: str) -> str:
    for o in mode.split(","):
        if o in PROPAGATION_MODES:
            return o
    return ""


def clean(path: str) -> str:
    """Go's path.Clean: also "//x" is "/x" (posixpath keeps two leading slashes)."""
    path = posixpath.normpath(path)
    return "/" + path.lstrip("/") if path.startswith("//") else path


def _invalid_spec(raw: str) -> str:
    return f"invalid volume specification: '{raw}'"


# -- -v src:dst:mode ------------------------------------------------------------------

def parse_bind(raw: str, volume_driver: str = "") -> MountPoint:
    """One HostConfig.Binds entry (ParseMountRaw). A source that is an absolute
    path is a bind, anything else a volume name."""
    parts = raw.split(":", 3)
    if parts[0] == "":
        raise MountError(_invalid_spec(raw))
    spec: dict[str, Any] = {}
    mode = ""
    if len(parts) == 1:
        spec["Target"] = parts[0]
    elif len(parts) == 2:
        if valid_mode(parts[1]):
            # "/foo:rw": a destination and a mode is not a volume
            raise MountError(_invalid_spec(raw))
        spec["Source"], spec["Target"] = parts
    elif len(parts) == 3:
        spec["Source"], spec["Target"], mode = parts
    else:
        raise MountError(_invalid_spec(raw))
    if not valid_mode(mode):
        raise MountError(f"invalid mode: {mode}")
    source = spec.get("Source", "")
    spec["Type"] = BIND if posixpath.isabs(source) else VOLUME
    if not read_write(mode):
        spec["ReadOnly"] = True
    if volume_driver and spec["Type"] == VOLUME:
        spec["VolumeOptions"] = {"DriverConfig": {"Name": volume_driver}}
    if "nocopy" in mode.split(","):
        spec.setdefault("VolumeOptions", {})["NoCopy"] = True
    propagation = _propagation(mode)
    if propagation:
        spec["BindOptions"] = {"Propagation": propagation}
    try:
        mp = _from_spec(spec, check_source=None)
    except MountError as e:
        raise MountError(f"{_invalid_spec(raw)}: {e}") from None
    mp.Mode = mode
    if mp.Type == VOLUME and not mp.Mode:
        mp.Mode = "z"  # dockerd's setBindModeIfNull for local volumes
    return mp


# -- --mount type=...,source=...,target=... ------------------------------------------

def parse_mount(cfg: dict[str, Any],
                source_exists: Callable[[str], bool] = os.path.lexists) -> MountPoint:
    """One HostConfig.Mounts entry (ParseMountSpec): a bind's source must exist
    unless BindOptions.CreateMountpoint asks for it to be made."""
    mp = _from_spec(dict(cfg), check_source=source_exists)
    if mp.Type == VOLUME:
        mp.Mode = "z"
    if mp.Type == BIND and not (cfg.get("BindOptions") or {}).get("CreateMountpoint"):
        mp.SkipMountpointCreation = True
    return mp


def _config_error(spec: dict[str, Any], message: str) -> MountError:
    return MountError(f'invalid mount config for type "{spec.get("Type", "")}": {message}')


def _check_exclusive(spec: dict[str, Any]) -> None:
    for option, kind in (("BindOptions", BIND), ("VolumeOptions", VOLUME),
                         ("TmpfsOptions", TMPFS)):
        if spec.get(option) is not None and spec.get("Type") != kind:
            raise _config_error(spec, f"field {option} must not be specified")


def _check_target(target: str) -> None:
    if clean(target.replace("\\", "/")) == "/":
        raise MountError("invalid specification: destination can't be '/'")
    if not posixpath.isabs(target.replace("\\", "/")):
        raise MountError(f"invalid mount path: '{target}' mount path must be absolute")


def _from_spec(spec: dict[str, Any], check_source: Callable[[str], bool] | None) -> MountPoint:
    _check_exclusive(spec)
    kind = spec.get("Type", "")
    target = spec.get("Target") or ""
    if not target:
        raise _config_error(spec, "field Target must not be empty")
    try:
        _check_target(target)
    except MountError as e:
        raise _config_error(spec, str(e)) from None
    source = spec.get("Source") or ""
    mp = MountPoint(Type=kind, Destination=clean(target), RW=not spec.get("ReadOnly"),
                    Spec=spec)
    if kind == BIND:
        if not source:
            raise _config_error(spec, "field Source must not be empty")
        propagation = (spec.get("BindOptions") or {}).get("Propagation") or ""
        if propagation and propagation not in PROPAGATION_MODES:
            raise _config_error(spec, f"invalid propagation mode: {propagation}")
        if not posixpath.isabs(source):
            raise _config_error(spec, f"invalid mount path: '{source}' mount path must be absolute")
        create = (spec.get("BindOptions") or {}).get("CreateMountpoint")
        if check_source is not None and not create and not check_source(source):
            raise _config_error(spec, f"bind source path does not exist: {source}")
        mp.Source = clean(source)
        mp.Propagation = propagation or DEFAULT_PROPAGATION
    elif kind == VOLUME:
        if not source and spec.get("ReadOnly"):
            # (an empty volume nobody can write to, as dockerd 20.10 refuses it)
            raise _config_error(spec, "must not set ReadOnly mode when using anonymous volumes")
        options = spec.get("VolumeOptions") or {}
        mp.Name = source
        mp.Driver = (options.get("DriverConfig") or {}).get("Name") or ""
        mp.CopyData = not options.get("NoCopy")
    elif kind == TMPFS:
        if source:
            raise _config_error(spec, "field Source must not be specified")
        try:
            mp.TmpfsData = tmpfs_data(spec.get("TmpfsOptions"), bool(spec.get("ReadOnly")))
        except MountError as e:
            raise _config_error(spec, str(e)) from None
    else:
        raise _config_error(spec, "mount type unknown")
    return mp


def tmpfs_data(options: dict[str, Any] | None, readonly: bool) -> str:
    """TmpfsOptions as mount data (ConvertTmpfsOptions): the size in the largest
    unit that divides it, the mode in octal."""
    raw = ["ro"] if readonly else []
    options = options or {}
    if options.get("Mode"):
        raw.append(f"mode={options['Mode']:o}")
    size = options.get("SizeBytes") or 0
    if size:
        suffix = ""
        for unit, divisor in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
            if size % divisor == 0:
                size, suffix = size // divisor, unit
                break
        raw.append(f"size={size}{suffix}")
    for opt in options.get("Options") or []:
        if not 1 <= len(opt) <= 2:
            raise MountError("invalid option array length")
        if opt[0] not in _TMPFS_FLAGS:
            raise MountError("invalid option: " + opt[0])
        raw.append("=".join(opt))
    return ",".join(raw)


# -- --volumes-from container:mode ----------------------------------------------------

def parse_volumes_from(spec: str) -> tuple[str, str]:
    """(container, mode): "rw" when none is given. Propagation and copy modes
    are refused (the copies keep the original's)."""
    if spec == "":
        raise MountError("volumes-from specification cannot be an empty string")
    container, _, mode = spec.partition(":")
    if mode == "":
        return container, "rw"
    if not valid_mode(mode) or _propagation(mode) or "nocopy" in mode.split(","):
        raise MountError(f"invalid mode: {mode}")
    return container, mode
