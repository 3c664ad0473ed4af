"""Container record -> OCI runtime spec (config.json), as dockerd gives runc.

`build()` follows moby v24's `daemon.createSpec`: start from docker's default
Linux spec (runtime/defaults.py) and apply, in docker's order,

    common options   root, args (+ --init), env, cwd, terminal, hostname,
                     kernel.domainname and the network sysctls
    cgroups          linux.cgroupsPath = <CgroupParent or /dockyard>/<id>
    resources        memory, cpu, blockIO, pids (HostConfig -> linux.resources)
    sysctls          HostConfig.Sysctls
    devices          --device, --device-cgroup-rule; all host devices if privileged
    rlimits          HostConfig.Ulimits
    namespaces       network / ipc / pid / uts / cgroup modes
    capabilities     defaults +CapAdd -CapDrop, or everything if privileged
    mounts           defaults minus overridden ones, /dev/shm size, volume and
                     tmpfs mounts, hostname/hosts/resolv.conf, --read-only,
                     privileged rw /sys
    the rest         oomScoreAdj, annotations, user, noNewPrivileges,
                     consoleSize, masked/readonly paths

The result is plain data; building it only reads the host: lstat of device
paths (--device, --privileged), the container's own /etc/passwd and
/etc/group inside the rootfs (runtime/user.py), and a few probes that the
keyword arguments can override (this process's capabilities, cgroup v2 or
not, which net.ipv4 sysctls exist, where docker-init is).
Errors are ValueError subclasses with dockerd's messages; the daemon turns
them into InvalidParameter.

Not done here (yet): seccomp and AppArmor profiles, SELinux labels, user
namespaces, `container:` IPC/PID modes, shareable IPC across containers.
"""

from __future__ import annotations

import copy
import json
import os
import posixpath
import shutil
import stat

from dockyard.runtime import defaults
from dockyard.runtime.user import lookup as lookup_user
from dockyard.strconv import parse_bool

__all__ = ["build", "merge_image_config", "resources", "tweak_capabilities",
           "normalize_capabilities", "parse_security_opt", "devices_from_path",
           "host_devices", "SpecError"]


class SpecError(ValueError):
    """The container record asks for something docker would refuse."""


# --- create-time merge of the image's config --------------------------------

def merge_image_config(config: dict, image_config: dict | None) -> dict:
    """The container Config with the image's defaults filled in, as dockerd's create.

    moby daemon/commit.go `merge` + `mergeAndVerifyConfig`: the user's values
    win; Env is merged per key (user wins); Labels, ExposedPorts and Volumes are
    unions; a non-empty user Entrypoint resets the image's Cmd (only the user's
    Cmd is kept), otherwise a missing Cmd comes from the image and a missing
    (None, not []) Entrypoint too; an Entrypoint of `[""]` (`--entrypoint ""`)
    is reset to None afterwards. OnBuild is never inherited. `image_config` is the
    image config's "config" object (a whole image config JSON is accepted too).
    Returns a new dict; neither argument is changed. The caller refuses a
    result with neither Entrypoint nor Cmd ("No command specified").
    """
    user = copy.deepcopy(config)
    image = image_config or {}
    if "config" in image and ("rootfs" in image or "architecture" in image or "os" in image):
        image = image.get("config") or {}
    image = copy.deepcopy(image)

    if not user.get("User"):
        user["User"] = image.get("User", "")
    if not user.get("ExposedPorts"):
        user["ExposedPorts"] = image.get("ExposedPorts")
    elif image.get("ExposedPorts"):
        for port in image["ExposedPorts"]:
            user["ExposedPorts"].setdefault(port, {})

    if not user.get("Env"):
        user["Env"] = image.get("Env")
    else:
        keys = {e.split("=", 1)[0] for e in user["Env"]}
        for e in image.get("Env") or []:
            if e.split("=", 1)[0] not in keys:
                keys.add(e.split("=", 1)[0])
                user["Env"].append(e)

    labels = user.get("Labels") or {}
    for k, v in (image.get("Labels") or {}).items():
        labels.setdefault(k, v)
    user["Labels"] = labels

    if not user.get("Entrypoint"):
        if not user.get("Cmd"):
            user["Cmd"] = image.get("Cmd")
        if user.get("Entrypoint") is None:
            user["Entrypoint"] = image.get("Entrypoint")

    if image.get("Healthcheck") is not None:
        if user.get("Healthcheck") is None:
            user["Healthcheck"] = image["Healthcheck"]
        else:
            hc, ihc = user["Healthcheck"], image["Healthcheck"]
            for key in ("Test", "Interval", "Timeout", "StartPeriod", "Retries"):
                if not hc.get(key) and ihc.get(key):
                    hc[key] = ihc[key]

    if not user.get("WorkingDir"):
        user["WorkingDir"] = image.get("WorkingDir", "")
    if not user.get("Volumes"):
        user["Volumes"] = image.get("Volumes")
    else:
        user["Volumes"].update(image.get("Volumes") or {})
    if not user.get("StopSignal"):
        user["StopSignal"] = image.get("StopSignal", "")

    if user.get("Entrypoint") == [""]:
        user["Entrypoint"] = None
    return user


# --- capabilities -----------------------------------------------------------

def normalize_capabilities(caps: list[str] | None, available=None) -> list[str]:
    """Upper-case, add "CAP_", keep "ALL"; unknown or unavailable names refused.

    oci/caps NormalizeLegacyCapabilities. `available`: the capabilities the
    daemon holds (default: this process's effective set).
    """
    avail = set(defaults.available_capabilities() if available is None else available)
    out = []
    for c in caps or []:
        c = c.upper()
        if c != "ALL":
            if not c.startswith("CAP_"):
                c = "CAP_" + c
            if c not in defaults.KNOWN_CAPABILITIES:
                raise SpecError(f"unknown capability: {json.dumps(c)}")
            if c not in avail:
                raise SpecError("capability not supported by your kernel or not available "
                                f"in the current environment: {json.dumps(c)}")
        out.append(c)
    return out


def tweak_capabilities(cap_add, cap_drop, privileged: bool, available=None) -> list[str]:
    """The container's capability list (bounding = effective = permitted).

    oci/caps TweakCapabilities: privileged gets everything available; ALL in
    CapAdd adds everything available minus CapDrop; ALL in CapDrop leaves just
    CapAdd; otherwise defaults minus CapDrop, plus CapAdd. Errors carry
    daemon.validateCapabilities' prefix: `invalid CapAdd: unknown capability: "CAP_FOO"`.
    """
    avail = list(defaults.available_capabilities() if available is None else available)
    if privileged:
        return avail
    if not cap_add and not cap_drop:
        return list(defaults.DEFAULT_CAPABILITIES)
    try:
        drop = normalize_capabilities(cap_drop, avail)
    except SpecError as e:
        raise SpecError(f"invalid CapDrop: {e}") from None
    try:
        add = normalize_capabilities(cap_add, avail)
    except SpecError as e:
        raise SpecError(f"invalid CapAdd: {e}") from None
    if "ALL" in add:
        return [c for c in avail if c not in drop]
    if "ALL" in drop:
        return add
    return [c for c in defaults.DEFAULT_CAPABILITIES if c not in drop] + add


# --- security options -------------------------------------------------------

def parse_security_opt(opts: list[str] | None) -> dict:
    """HostConfig.SecurityOpt as dockerd reads it (daemon/daemon_unix.go parseSecurityOpt).

    Returns {"no_new_privileges": bool, "seccomp": str|None, "apparmor": str|None,
    "label": [..]}. "k=v" and the deprecated "k:v" are both accepted.
    """
    out = {"no_new_privileges": False, "seccomp": None, "apparmor": None, "label": []}
    for opt in opts or []:
        if opt == "no-new-privileges":
            out["no_new_privileges"] = True
            continue
        if opt == "disable":
            out["label"].append("disable")
            continue
        sep = "=" if "=" in opt else ":" if ":" in opt else None
        if sep is None:
            raise SpecError(f'invalid --security-opt 1: "{opt}"')
        k, v = opt.split(sep, 1)
        if k == "label":
            out["label"].append(v)
        elif k == "apparmor":
            out["apparmor"] = v
        elif k == "seccomp":
            out["seccomp"] = v
        elif k == "no-new-privileges":
            try:
                out["no_new_privileges"] = parse_bool(v)
            except ValueError:
                raise SpecError(f'invalid --security-opt 2: "{opt}"') from None
        else:
            raise SpecError(f'invalid --security-opt 2: "{opt}"')
    return out


# --- resources --------------------------------------------------------------

def resources(host_config: dict) -> dict:
    """linux.resources (without devices) for a HostConfig at create time.

    daemon/daemon_unix.go getMemoryResources/getCPUResources/getPidsLimit after
    adaptContainerSettings: MemorySwap 0 with Memory set means 2 x Memory;
    MemorySwap -1 (unlimited) is left out, as docker does; PidsLimit None is
    left out and 0 or negative becomes -1 (unlimited); NanoCpus becomes a quota
    over a 100ms period, which CpuPeriod/CpuQuota override.
    """
    hc = host_config
    mem: dict = {}
    memory = hc.get("Memory") or 0
    swap = hc.get("MemorySwap") or 0
    if memory > 0 and swap == 0:
        swap = memory * 2
    if memory > 0:
        mem["limit"] = memory
    if (hc.get("MemoryReservation") or 0) > 0:
        mem["reservation"] = hc["MemoryReservation"]
    if swap > 0:
        mem["swap"] = swap
    swappiness = hc.get("MemorySwappiness")
    if swappiness is not None and swappiness != -1:
        mem["swappiness"] = swappiness
    mem["disableOOMKiller"] = bool(hc.get("OomKillDisable"))
    if hc.get("KernelMemory"):
        mem["kernel"] = hc["KernelMemory"]
    if hc.get("KernelMemoryTCP"):
        mem["kernelTCP"] = hc["KernelMemoryTCP"]
    out: dict = {"memory": mem}

    cpu: dict = {}
    shares = hc.get("CpuShares") or 0
    if shares < 0:
        raise SpecError("shares: invalid argument")
    if shares > 0:
        cpu["shares"] = shares
    if hc.get("CpusetCpus"):
        cpu["cpus"] = hc["CpusetCpus"]
    if hc.get("CpusetMems"):
        cpu["mems"] = hc["CpusetMems"]
    if (hc.get("NanoCpus") or 0) > 0:
        cpu["period"] = 100000
        cpu["quota"] = hc["NanoCpus"] * 100000 // 1_000_000_000
    if hc.get("CpuPeriod"):
        cpu["period"] = hc["CpuPeriod"]
    if hc.get("CpuQuota"):
        cpu["quota"] = hc["CpuQuota"]
    if hc.get("CpuRealtimePeriod"):
        cpu["realtimePeriod"] = hc["CpuRealtimePeriod"]
    if hc.get("CpuRealtimeRuntime"):
        cpu["realtimeRuntime"] = hc["CpuRealtimeRuntime"]
    if cpu:
        out["cpu"] = cpu

    out["blockIO"] = _block_io(hc)
    if hc.get("PidsLimit") is not None:
        limit = hc["PidsLimit"]
        out["pids"] = {"limit": limit if limit > 0 else -1}
    return out


def _rdev(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return os.major(st.st_rdev), os.minor(st.st_rdev)


def _block_io(hc: dict) -> dict:
    bio: dict = {}
    if hc.get("BlkioWeight"):
        bio["weight"] = hc["BlkioWeight"]
    weights = []
    for d in hc.get("BlkioWeightDevice") or []:
        major, minor = _rdev(d["Path"])
        weights.append({"major": major, "minor": minor, "weight": d["Weight"]})
    if weights:
        bio["weightDevice"] = weights
    for key, name in (("BlkioDeviceReadBps", "throttleReadBpsDevice"),
                      ("BlkioDeviceWriteBps", "throttleWriteBpsDevice"),
                      ("BlkioDeviceReadIOps", "throttleReadIOPSDevice"),
                      ("BlkioDeviceWriteIOps", "throttleWriteIOPSDevice")):
        rates = []
        for d in hc.get(key) or []:
            major, minor = _rdev(d["Path"])
            rates.append({"major": major, "minor": minor, "rate": d["Rate"]})
        if rates:
            bio[name] = rates
    return bio


# --- devices ----------------------------------------------------------------

class NotADevice(Exception):
    pass


def device_from_path(path: str) -> dict:
    """An OCI linux.devices entry for the node at `path` (lstat: links aren't devices)."""
    st = os.lstat(path)
    kind = {stat.S_IFBLK: "b", stat.S_IFCHR: "c", stat.S_IFIFO: "p"}.get(stat.S_IFMT(st.st_mode))
    if kind is None:
        raise NotADevice(path)
    return {"path": path, "type": kind, "major": os.major(st.st_rdev),
            "minor": os.minor(st.st_rdev), "fileMode": stat.S_IMODE(st.st_mode),
            "uid": st.st_uid, "gid": st.st_gid}


def _device_rule(dev: dict, access: str) -> dict:
    return {"allow": True, "type": dev["type"], "major": dev["major"],
            "minor": dev["minor"], "access": access}


def devices_from_path(on_host: str, in_container: str, permissions: str
                      ) -> tuple[list[dict], list[dict]]:
    """(linux.devices, device cgroup rules) for one `--device` (oci.DevicesFromPath).

    A symlink is followed; a directory contributes every device below it, with
    its path rebased onto `in_container`.
    """
    resolved = on_host
    if os.path.islink(on_host):
        resolved = os.path.realpath(on_host)
    try:
        dev = device_from_path(resolved)
    except NotADevice as e:
        err: Exception = e
    except OSError as e:
        err = e
    else:
        dev["path"] = in_container
        return [dev], [_device_rule(dev, permissions)]

    devs: list[dict] = []
    if isinstance(err, NotADevice) and os.path.isdir(resolved):
        for dirpath, dirnames, filenames in os.walk(resolved):
            dirnames.sort()
            for name in sorted(filenames):
                p = os.path.join(dirpath, name)
                try:
                    child = device_from_path(p)
                except (NotADevice, OSError):
                    continue
                child["path"] = p.replace(resolved, in_container, 1)
                devs.append(child)
    if devs:
        return devs, [_device_rule(d, permissions) for d in devs]
    if isinstance(err, OSError) and err.errno:
        msg = os.strerror(err.errno)
        reason = f"lstat {resolved}: {msg[:1].lower()}{msg[1:]}"
    else:
        reason = "not a device node"
    raise SpecError(f'error gathering device information while adding custom device '
                    f'"{on_host}": {reason}')


_SKIPPED_DEV_DIRS = {"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"}


def host_devices(root: str = "/dev") -> list[dict]:
    """Every device node under /dev, as containerd's HostDevices (for --privileged).

    Skips pts, shm, fd, mqueue (and lxc/udev private dirs), /dev/console,
    FIFOs, and anything that vanishes or is not a device.
    """
    out: list[dict] = []
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return out
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            if entry.name not in _SKIPPED_DEV_DIRS:
                out += host_devices(entry.path)
            continue
        if entry.name == "console":
            continue
        try:
            dev = device_from_path(entry.path)
        except (NotADevice, FileNotFoundError):
            continue
        if dev["type"] != "p":
            out.append(dev)
    return out


def _device_cgroup_rules(rules: list[str] | None) -> list[dict]:
    out = []
    for rule in rules or []:
        parts = rule.split(" ")
        ok = (len(parts) == 3 and parts[0] in ("a", "b", "c") and ":" in parts[1]
              and parts[2] and len(parts[2]) <= 3 and set(parts[2]) <= set("rwm"))
        if ok:
            major, minor = parts[1].split(":", 1)
            ok = all(x == "*" or x.isdigit() and x.isascii() for x in (major, minor))
        if not ok:
            raise SpecError(f"invalid device cgroup rule format: '{rule}'")
        out.append({"allow": True, "type": parts[0],
                    "major": -1 if major == "*" else int(major),
                    "minor": -1 if minor == "*" else int(minor), "access": parts[2]})
    return out


# --- mounts -----------------------------------------------------------------

# mount(8) flags by the kernel flag they set or clear, for merging tmpfs options
_FLAG_KEY = {
    "ro": "rdonly", "rw": "rdonly", "suid": "nosuid", "nosuid": "nosuid",
    "dev": "nodev", "nodev": "nodev", "exec": "noexec", "noexec": "noexec",
    "sync": "sync", "async": "sync", "dirsync": "dirsync", "remount": "remount",
    "mand": "mand", "nomand": "mand", "atime": "noatime", "noatime": "noatime",
    "diratime": "nodiratime", "nodiratime": "nodiratime", "relatime": "relatime",
    "norelatime": "relatime", "strictatime": "strictatime", "nostrictatime": "strictatime",
}
_PROPAGATION = {"bind", "rbind", "unbindable", "runbindable", "private", "rprivate",
                "shared", "rshared", "slave", "rslave"}
_TMPFS_DATA = {"", "size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol"}


def merge_tmpfs_options(options: list[str]) -> list[str]:
    """moby/sys/mount MergeTmpfsOptions: the last of each kind wins, order kept."""
    seen: set[str] = set()
    out: list[str] = []
    for opt in reversed(options):
        if opt == "defaults":
            continue
        if opt in _FLAG_KEY or opt in _PROPAGATION:
            key = "propagation" if opt in _PROPAGATION else _FLAG_KEY[opt]
        else:
            k, sep, _ = opt.partition("=")
            if not sep or k not in _TMPFS_DATA:
                raise SpecError(f"invalid tmpfs option {opt.split('=', 1)!r}")
            key = "data:" + k
        if key not in seen:
            seen.add(key)
            out.insert(0, opt)
    return out


def _depth(destination: str) -> int:
    return len(posixpath.normpath(destination).split("/"))


def _network_file_mounts(files: dict, readonly: bool) -> list[dict]:
    """hostname, hosts and resolv.conf bind mounts (container.NetworkMounts)."""
    out = []
    for name in ("resolv.conf", "hostname", "hosts"):
        src = (files or {}).get(name)
        if not src or not os.path.exists(src):
            continue          # docker warns "can't stat this filename" and skips it
        opts = ["rbind", "ro", "rprivate"] if readonly else ["rbind", "rprivate"]
        out.append({"destination": "/etc/" + name, "type": "bind", "source": src,
                    "options": opts})
    return out


def _mounts(spec: dict, hc: dict, files: dict, extra: list[dict], ipc_mode: str,
            tmpfs: dict[str, str]) -> None:
    """daemon/oci_linux.go WithMounts, on spec["mounts"] (defaults + init)."""
    readonly = bool(hc.get("ReadonlyRootfs"))
    user: list[dict] = [copy.deepcopy(m) for m in extra]
    _rootfs_propagation(spec, user)
    taken = {m["destination"] for m in user}
    user += [m for m in _network_file_mounts(files, readonly) if m["destination"] not in taken]
    if ipc_mode == "host":
        user.append({"destination": "/dev/shm", "type": "bind", "source": "/dev/shm",
                     "options": ["rbind", "rprivate"]})
    for dest, data in {**(hc.get("Tmpfs") or {}), **tmpfs}.items():
        opts = ["noexec", "nosuid", "nodev", "rprivate"] + (data.split(",") if data else [])
        user.append({"destination": dest, "type": "tmpfs", "source": "tmpfs",
                     "options": merge_tmpfs_options(opts)})
    user.sort(key=lambda m: _depth(m["destination"]))
    user_dests = {m["destination"] for m in user}

    mount_dev = "/dev" in user_dests
    shm_size = hc.get("ShmSize") or defaults.DEFAULT_SHM_SIZE
    kept = []
    for m in spec["mounts"]:
        if m["destination"] in user_dests:
            continue
        if mount_dev and m["destination"].startswith("/dev/"):
            continue
        if m["destination"] == "/dev/shm":
            if ipc_mode == "none":
                continue
            m["options"].append(f"size={shm_size}")
        kept.append(m)

    if readonly:
        for m in kept:
            if m["destination"] not in ("/proc", "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev"):
                if "ro" not in m["options"]:
                    m["options"].append("ro")
    spec["mounts"] = kept + user

    if hc.get("Privileged"):
        for m in spec["mounts"]:
            if m["destination"] == "/sys" or m["type"] == "cgroup":
                m["options"] = [o for o in m["options"] if o != "ro"]
        spec["linux"].pop("maskedPaths", None)
        spec["linux"].pop("readonlyPaths", None)


def _rootfs_propagation(spec: dict, mounts: list[dict]) -> None:
    """A shared bind needs a shared rootfs, a slave one a slave (or shared)
    rootfs, or the propagation would stop at the container's root."""
    linux = spec["linux"]
    for m in mounts:
        options = set(m.get("options") or ())
        current = linux.get("rootfsPropagation", "")
        if options & {"shared", "rshared"} and current not in ("shared", "rshared"):
            linux["rootfsPropagation"] = "shared"
        elif options & {"slave", "rslave"} and \
                current not in ("shared", "rshared", "slave", "rslave"):
            linux["rootfsPropagation"] = "rslave"


# --- namespaces -------------------------------------------------------------

def host_uses_cgroup_v2() -> bool:
    """True on a cgroup v2 only ("unified") host; hybrid and v1 hosts are False."""
    return os.path.exists("/sys/fs/cgroup/cgroup.controllers")


def _set_namespace(spec: dict, ns: dict) -> None:
    nss = spec["linux"]["namespaces"]
    for i, n in enumerate(nss):
        if n["type"] == ns["type"]:
            nss[i] = ns
            return
    nss.append(ns)


def _remove_namespace(spec: dict, kind: str) -> None:
    spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] != kind]


def _namespaces(spec: dict, hc: dict, config: dict, netns_path: str | None,
                cgroup_v2: bool) -> None:
    """daemon/oci_linux.go WithNamespaces (no user namespaces)."""
    net = hc.get("NetworkMode") or "default"
    if net == "host":
        _remove_namespace(spec, "network")          # the host's own network stack
    elif not config.get("NetworkDisabled"):
        ns = {"type": "network"}
        if net.startswith("container:") and not netns_path:
            raise SpecError(f"cannot join network of container {net[len('container:'):]}: "
                            "no network namespace path given")
        if netns_path:
            ns["path"] = netns_path
        _set_namespace(spec, ns)

    ipc = hc.get("IpcMode") or ""
    if ipc == "host":
        _remove_namespace(spec, "ipc")
    elif ipc in ("", "private", "shareable", "none"):
        _set_namespace(spec, {"type": "ipc"})
    elif ipc.startswith("container:"):
        raise SpecError(f"invalid IPC mode: {ipc}: sharing another container's IPC "
                        "namespace is not supported yet")
    else:
        raise SpecError(f"invalid IPC mode: {ipc}")

    pid = hc.get("PidMode") or ""
    if pid == "host":
        _remove_namespace(spec, "pid")
    elif pid == "":
        _set_namespace(spec, {"type": "pid"})
    elif pid.startswith("container:"):
        raise SpecError(f"invalid PID mode: {pid}: sharing another container's PID "
                        "namespace is not supported yet")
    else:
        raise SpecError(f"invalid PID mode: {pid}")

    uts = hc.get("UTSMode") or ""
    if uts == "host":
        _remove_namespace(spec, "uts")
        spec.pop("hostname", None)
    elif uts != "":
        raise SpecError(f"invalid UTS mode: {uts}")

    cgns = hc.get("CgroupnsMode") or ""
    if cgns not in ("", "host", "private"):
        raise SpecError(f"invalid cgroup namespace mode: {cgns}")
    if cgns == "":
        # adaptContainerSettings: private on cgroup v2 hosts, host on v1/hybrid
        cgns = "private" if cgroup_v2 else "host"
    if cgns == "private":
        _set_namespace(spec, {"type": "cgroup"})


# --- the spec ---------------------------------------------------------------

def _replace_or_append_env(base: list[str], overrides: list[str]) -> list[str]:
    """container.ReplaceOrAppendEnvValues: KEY=v replaces or appends; bare KEY unsets."""
    env: list[str | None] = list(base)
    index = {e.split("=", 1)[0]: i for i, e in enumerate(env)}
    for value in overrides:
        key, sep, _ = value.partition("=")
        if not sep:
            if key in index:
                env[index[key]] = None
            continue
        if key in index:
            env[index[key]] = value
        else:
            env.append(value)
    return [e for e in env if e]


def _hostname(container: dict, hc: dict) -> str:
    name = (container.get("Config") or {}).get("Hostname") or ""
    if name:
        return name
    if (hc.get("NetworkMode") or "") == "host":
        return os.uname().nodename
    return container["ID"][:12]


def _sysctl_exists(name: str) -> bool:
    from dockyard.linux import sysctl
    return sysctl.exists(name)


def _cgroups_path(hc: dict, container_id: str) -> str:
    parent = hc.get("CgroupParent") or defaults.CGROUP_PARENT
    return posixpath.normpath(posixpath.join(parent, container_id))


def build(container: dict, image_config: dict | None, rootfs: str, files: dict | None, *,
          init_path: str | None = None, netns_path: str | None = None,
          mounts: list[dict] | None = None, tmpfs: dict[str, str] | None = None,
          cgroup_v2: bool | None = None,
          available_caps: list[str] | None = None) -> dict:
    """The OCI config.json for `container` ({"ID", "Name", "Config", "HostConfig"}).

    `Config` is already merged with the image (merge_image_config), so
    `image_config` is not consulted. `rootfs` becomes root.path and is where
    /etc/passwd and /etc/group are read. `files` maps "hostname", "hosts",
    "resolv.conf" to the files to bind at /etc/<name> (missing ones skipped).

    init_path       the init binary for HostConfig.Init (default: docker-init on PATH)
    netns_path      a network namespace to join instead of creating one
                    (required for NetworkMode "container:<id>")
    mounts          volume/bind mounts already in OCI form; they override
                    defaults at the same destination
    tmpfs           tmpfs mounts (destination -> options) besides HostConfig.Tmpfs:
                    the --mount type=tmpfs ones
    cgroup_v2       whether the host is cgroup v2 only (default: probed); it
                    decides the default cgroup namespace mode as in docker
    available_caps  the daemon's capabilities (default: this process's CapEff)
    """
    del image_config  # merged into Config by the daemon at create time
    cid = container["ID"]
    config = container.get("Config") or {}
    hc = container.get("HostConfig") or {}
    if cgroup_v2 is None:
        cgroup_v2 = host_uses_cgroup_v2()
    secopt = parse_security_opt(hc.get("SecurityOpt"))
    privileged = bool(hc.get("Privileged"))

    caps = tweak_capabilities(hc.get("CapAdd"), hc.get("CapDrop"), privileged, available_caps)

    # -- common options: root, args, env, cwd, hostname
    entrypoint = config.get("Entrypoint") or []
    cmd = config.get("Cmd") or []
    args = list(entrypoint) + list(cmd)
    if not args:
        raise SpecError("No command specified")
    mounts_default = defaults.default_mounts()
    pid_mode = hc.get("PidMode") or ""
    if hc.get("Init") and pid_mode == "":
        # only in a private pid namespace: elsewhere there is already an init
        if init_path is None:
            init_path = shutil.which(defaults.INIT_BINARY)
            if init_path is None:
                raise SpecError(f'exec: "{defaults.INIT_BINARY}": '
                                "executable file not found in $PATH")
        args = [defaults.INIT_PATH_IN_CONTAINER, "--"] + args
        mounts_default.append({"destination": defaults.INIT_PATH_IN_CONTAINER, "type": "bind",
                               "source": init_path, "options": ["bind", "ro"]})

    tty = bool(config.get("Tty"))
    hostname = _hostname(container, hc)
    base_env = ["PATH=" + defaults.DEFAULT_PATH_ENV, "HOSTNAME=" + hostname]
    if tty:
        base_env.append("TERM=xterm")
    env = _replace_or_append_env(base_env, config.get("Env") or [])

    process: dict = {
        "terminal": tty,
        "user": lookup_user(rootfs, config.get("User") or "", hc.get("GroupAdd")),
        "args": args,
        "env": env,
        "cwd": config.get("WorkingDir") or "/",
        "capabilities": {"bounding": list(caps), "effective": list(caps),
                         "permitted": list(caps)},
        "oomScoreAdj": hc.get("OomScoreAdj") or 0,
    }
    if not tty:
        del process["terminal"]
    ulimits = hc.get("Ulimits") or []
    if ulimits:
        process["rlimits"] = [{"type": "RLIMIT_" + u["Name"].upper(), "hard": u["Hard"],
                               "soft": u["Soft"]} for u in ulimits]
    if secopt["no_new_privileges"]:
        process["noNewPrivileges"] = True
    console = hc.get("ConsoleSize") or [0, 0]
    if tty and (console[0] > 0 or console[1] > 0):
        process["consoleSize"] = {"height": console[0], "width": console[1]}

    sysctl: dict = {}
    if config.get("Domainname"):
        sysctl["kernel.domainname"] = config["Domainname"]
    net_mode = hc.get("NetworkMode") or "default"
    if net_mode != "host" and not net_mode.startswith("container:"):
        # docker's defaults for a private network namespace: ping without
        # CAP_NET_RAW, and any port without CAP_NET_BIND_SERVICE
        if _sysctl_exists("net.ipv4.ping_group_range"):
            sysctl["net.ipv4.ping_group_range"] = "0 2147483647"
        if _sysctl_exists("net.ipv4.ip_unprivileged_port_start"):
            sysctl["net.ipv4.ip_unprivileged_port_start"] = "0"
    sysctl.update(hc.get("Sysctls") or {})

    # -- resources and devices
    res = resources(hc)
    if privileged:
        devices = host_devices()
        for d in hc.get("Devices") or []:
            if d.get("PathOnHost") == d.get("PathInContainer"):
                continue          # already there: privileged gets all of /dev
            devs, _ = devices_from_path(d["PathOnHost"], d.get("PathInContainer") or
                                        d["PathOnHost"], "rwm")
            devices += devs
        rules = [{"allow": True, "access": "rwm"}]
    else:
        devices, rules = [], defaults.default_device_rules()
        for d in hc.get("Devices") or []:
            devs, perms = devices_from_path(d["PathOnHost"],
                                            d.get("PathInContainer") or d["PathOnHost"],
                                            d.get("CgroupPermissions") or "rwm")
            devices += devs
            rules += perms
        rules += _device_cgroup_rules(hc.get("DeviceCgroupRules"))
    linux: dict = {
        "resources": {"devices": rules, **res},
        "cgroupsPath": _cgroups_path(hc, cid),
        "namespaces": [{"type": t} for t in defaults.DEFAULT_NAMESPACES],
        "maskedPaths": list(defaults.DEFAULT_MASKED_PATHS),
        "readonlyPaths": list(defaults.DEFAULT_READONLY_PATHS),
    }
    if devices:
        linux["devices"] = devices
    if sysctl:
        linux["sysctl"] = sysctl

    spec: dict = {
        "ociVersion": defaults.OCI_VERSION,
        "process": process,
        "root": {"path": rootfs},
        "hostname": hostname,
        "mounts": mounts_default,
        "linux": linux,
    }
    if hc.get("ReadonlyRootfs"):
        spec["root"]["readonly"] = True

    _namespaces(spec, hc, config, netns_path, cgroup_v2)
    _mounts(spec, hc, files or {}, mounts or [], hc.get("IpcMode") or "private", tmpfs or {})

    if hc.get("Annotations"):
        spec["annotations"] = dict(hc["Annotations"])
    # explicit lists win, even for privileged (docker applies them last)
    if hc.get("MaskedPaths") is not None:
        linux["maskedPaths"] = list(hc["MaskedPaths"])
    if hc.get("ReadonlyPaths") is not None:
        linux["readonlyPaths"] = list(hc["ReadonlyPaths"])
    return spec
