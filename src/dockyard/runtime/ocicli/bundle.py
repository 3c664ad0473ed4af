"""A bundle's config.json -> the plan the container init carries out.

Everything that can be checked before forking is checked here, with runc's
messages (its specconv and config validator), so a bad spec fails `create`
without leaving anything behind. The result is plain data that the forked
init inherits; nothing here touches the kernel except reading our own
capability bounding set.
"""

from __future__ import annotations

import json
import os

from dockyard.linux import capabilities, devices, namespaces, rlimits, rootfs

# Device cgroup rules every container gets after the spec's own (runc's
# specconv.AllowedDevices): mknod of anything, the default nodes, ptys, tun.
_DEFAULT_RULES = [
    {"allow": True, "type": "c", "access": "m"},
    {"allow": True, "type": "b", "access": "m"},
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},  # /dev/pts/*
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},  # /dev/pts/ptmx
    {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},  # /dev/net/tun
]


class BundleError(Exception):
    """The bundle cannot be run; the message is what the user sees."""


def goq(s: str) -> str:
    """Go's %q (double-quoted, escaped) for the strings we quote in errors."""
    return json.dumps(s, ensure_ascii=False)


class InitConfig:
    """The init's plan: every field of the spec it acts on, checked and
    converted (mounts parsed, capability names numbered, rlimits numbered).

    Fields: id bundle rootfs spec ns mounts devices setup_dev rlimits caps
    args env cwd uid gid additional_gids umask terminal console_size
    no_new_privileges oom_score_adj hostname readonly_root masked_paths
    readonly_paths sysctl root_propagation cgroups_path resources.
    Set by create before it forks: preserve_fds no_pivot freezer sync_fd
    fifo_fd console_fd.
    """

    def __init__(self, **fields) -> None:
        self.debug: list[str] = []      # messages for the log
        self.warnings: list[str] = []
        self.preserve_fds = 0
        self.no_pivot = False
        self.freezer: str | None = None
        self.sync_fd = self.fifo_fd = self.console_fd = -1
        self.__dict__.update(fields)


def load_spec(bundle: str) -> dict:
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except FileNotFoundError:
        raise BundleError("JSON specification file config.json not found") from None
    except ValueError as e:
        raise BundleError(f"config.json: {e}") from None


def _env(env: list[str]) -> list[str]:
    """Validate process.env; a repeated name keeps its first place, last value
    (what Go's os.Setenv loop in runc's init produces)."""
    out: dict[str, str] = {}
    for pair in env or []:
        name, sep, value = pair.partition("=")
        if not sep:
            raise BundleError(f"invalid environment variable: {goq(pair)}")
        if not name:
            raise BundleError(f"environment variable name can't be empty: {goq(pair)}")
        if "\0" in name:
            raise BundleError(f"environment variable name can't contain null(\\x00): {goq(pair)}")
        if "\0" in value:
            raise BundleError(f"environment variable value can't contain null(\\x00): {goq(pair)}")
        out[name] = value
    return [f"{k}={v}" for k, v in out.items()]


def _rootfs(bundle: str, root: dict | None) -> str:
    path = (root or {}).get("path") or ""
    if not path:
        raise BundleError("root.path is empty")
    path = os.path.join(bundle, path)
    try:
        os.stat(path)
    except OSError as e:
        raise BundleError(f"invalid rootfs: stat {path}: {rlimits.go_strerror(e.errno)}") from None
    return os.path.realpath(path)


def plan(container_id: str, bundle: str, spec: dict) -> InitConfig:
    """Validate `spec` (runc's rules and words) and derive the init's plan."""
    process = spec.get("process")
    if not process:
        raise BundleError("process property must not be empty")
    cwd = process.get("cwd") or ""
    if not cwd:
        raise BundleError("Cwd property must not be empty")
    if not cwd.startswith("/"):
        raise BundleError("Cwd must be an absolute path")
    args = process.get("args") or []
    if not args:
        raise BundleError("args must not be empty")
    linux = spec.get("linux") or {}
    try:
        ns = namespaces.plan(linux.get("namespaces") or [])
        limits = rlimits.parse(process.get("rlimits"))
    except ValueError as e:
        raise BundleError(str(e)) from None
    if "user" in ns.new or "user" in ns.join or linux.get("uidMappings") \
            or linux.get("gidMappings"):
        raise BundleError("user namespaces are not supported by dockyard-runtime yet")
    rootfs_path = _rootfs(bundle, spec.get("root"))
    hostname = spec.get("hostname") or None
    if hostname and not ns.has("uts"):
        raise BundleError("unable to set hostname without a private UTS namespace")
    masked, ro_paths = linux.get("maskedPaths") or [], linux.get("readonlyPaths") or []
    if (masked or ro_paths) and not ns.has("mount"):
        raise BundleError("unable to restrict sys entries without a private MNT namespace")
    propagation = linux.get("rootfsPropagation") or ""
    if propagation and propagation not in rootfs.PROPAGATION:
        raise BundleError(f"rootfsPropagation={propagation} is not supported")
    mounts = []
    for m in spec.get("mounts") or []:
        if "\0" in "".join(str(m.get(k) or "") for k in ("source", "destination", "type")):
            raise BundleError("mount field contains null byte")
        mounts.append(rootfs.parse_mount(m, bundle))

    user = process.get("user") or {}
    size = process.get("consoleSize")
    cfg = InitConfig(
        id=container_id, bundle=bundle, rootfs=rootfs_path, spec=spec, ns=ns, mounts=mounts,
        devices=devices.devices(linux.get("devices")), setup_dev=devices.needs_dev_setup(mounts),
        rlimits=limits, caps=capabilities.Plan(), args=list(args),
        env=_env(process.get("env") or []), cwd=cwd,
        uid=int(user.get("uid") or 0), gid=int(user.get("gid") or 0),
        additional_gids=[int(g) for g in user.get("additionalGids") or []],
        umask=int(user["umask"]) if user.get("umask") is not None else None,
        terminal=bool(process.get("terminal")),
        console_size=(int(size.get("height") or 0), int(size.get("width") or 0)) if size else None,
        no_new_privileges=bool(process.get("noNewPrivileges")),
        oom_score_adj=process.get("oomScoreAdj"), hostname=hostname,
        readonly_root=bool((spec.get("root") or {}).get("readonly")),
        masked_paths=list(masked), readonly_paths=list(ro_paths),
        sysctl=dict(linux.get("sysctl") or {}),
        root_propagation=rootfs.PROPAGATION.get(propagation, 0),
        cgroups_path=linux.get("cgroupsPath") or container_id,
        resources=_resources(linux),
    )
    _plan_capabilities(cfg, process.get("capabilities"))
    for key in ("apparmorProfile", "selinuxLabel"):
        if process.get(key):
            cfg.debug.append(f"process.{key} is not supported: ignored")
    if linux.get("seccomp"):
        cfg.debug.append("linux.seccomp is not supported yet: running without a seccomp filter")
    if spec.get("hooks"):
        cfg.warnings.append("OCI hooks are not supported yet: ignoring spec.hooks")
    return cfg


def _resources(linux: dict) -> dict:
    """linux.resources with runc's default device rules appended (after the
    spec's, so a spec deny-all still lets the init mknod the default nodes)."""
    res = dict(linux.get("resources") or {})
    rules = list(res.get("devices") or [])
    overridden = {d.get("path") for d in linux.get("devices") or []}
    rules += _DEFAULT_RULES[:2]
    for d in devices.DEFAULT_DEVICES:
        if d["path"] not in overridden:
            rules.append({"allow": True, "type": "c", "major": d["major"],
                          "minor": d["minor"], "access": "rwm"})
    rules += _DEFAULT_RULES[2:]
    res["devices"] = rules
    return res


def _plan_capabilities(cfg: InitConfig, spec_caps: dict | None) -> None:
    host = capabilities.current("bounding")
    cfg.caps = capabilities.plan(spec_caps, host, capabilities.last_cap())
    if cfg.caps.unknown:
        cfg.warnings.append("ignoring unknown or unavailable capabilities: "
                            f"[{' '.join(cfg.caps.unknown)}]")
    if cfg.caps.unavailable:
        cfg.debug.append("dropping capabilities the host's bounding set lacks: "
                         f"[{' '.join(cfg.caps.unavailable)}]")
