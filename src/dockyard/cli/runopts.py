"""`create`/`run` flags → the body of `POST /containers/create`, as docker makes it.

This is docker/cli's cli/command/container/opts.go (addFlags and parse) for
docker 28.2: the same flags with the same types (optvalues, optspecs),
defaults and help, each value checked when it is set; then the same
translation into Config, HostConfig and NetworkingConfig, with the same
errors in the same order for what only the whole command line can tell. The
body has the field order, the nulls and the empty lists and maps of docker's
own (Go marshals maps with sorted keys), so a daemon sees the same request
from either client; the integration tests compare the two bodies.
"""

from __future__ import annotations

import os
import re

from dockyard.cli import govalues
from dockyard.cli.optspecs import (
    OptionsError,
    is_qualified_cdi,
    mount,
    network,
    parse_device,
    parse_port_spec,
    parse_security_opts,
    parse_volume,
    port_range,
    read_kv_file,
    split_proto_port,
    standard_publish,
)
from dockyard.cli.optvalues import (
    duration,
    gpu_request,
    int64,
    kv_map,
    mem_bytes,
    mem_swap_bytes,
    merge_gpus,
    merge_map,
    merge_ulimit,
    nano_cpus,
    throttle_bps_device,
    throttle_iops_device,
    uint16,
    uint64,
    ulimit,
    validate_attach,
    validate_device_cgroup_rule,
    validate_dns_search,
    validate_env,
    validate_extra_host,
    validate_ip,
    validate_label,
    validate_link,
    validate_sysctl,
    weight_device,
)
from dockyard.cli.pflag import FlagSet

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from dockyard.cli.pflag import Values

__all__ = ["OptionsError", "add_container_flags", "add_create_flags", "build",
           "normalize_capabilities"]

# --- the flags (addFlags) -----------------------------------------------------------------

CGROUPNS_HELP = ("Cgroup namespace to use (host|private)\n"
                 "'host':    Run the container in the Docker host's cgroup namespace\n"
                 "'private': Run the container in its own private cgroup namespace\n"
                 "'':        Use the cgroup namespace as configured by the\n"
                 "           default-cgroupns-mode option on the daemon (default)")


def add_create_flags(fs: FlagSet, verb: str) -> None:
    """The flags `create` and `run` share beyond addFlags: --name, --pull, -q,
    --platform, --disable-content-trust, --use-api-socket."""
    fs.string("name", help="Assign a name to the container")
    fs.string("pull", default="missing",
              help=f'Pull image before {verb} ("always", "|missing", "never")'
              if verb == "creating" else
              f'Pull image before {verb} ("always", "missing", "never")')
    fs.bool("quiet", "q", help="Suppress the pull output")
    fs.bool("use-api-socket", help="Bind mount Docker API socket and required auth")
    fs.string("platform", default=os.environ.get("DOCKER_DEFAULT_PLATFORM", ""),
              help="Set platform if server is multi-platform capable", show_default="")
    fs.bool("disable-content-trust", default=True, help="Skip image verification")


def add_container_flags(fs: FlagSet) -> None:
    """addFlags: every flag that becomes part of the container's configuration."""
    lst, b, s = fs.list, fs.bool, fs.string
    # General purpose
    lst("attach", "a", "Attach to STDIN, STDOUT or STDERR", validate_attach)
    lst("device-cgroup-rule", help="Add a rule to the cgroup allowed devices list",
        validate=validate_device_cgroup_rule)
    lst("device", help="Add a host device to the container")
    fs.add("gpus", metavar="gpu-request", convert=gpu_request, merge=merge_gpus,
           help="GPU devices to add to the container ('all' to pass all GPUs)")
    lst("env", "e", "Set environment variables", validate_env)
    lst("env-file", help="Read in a file of environment variables")
    s("entrypoint", help="Overwrite the default ENTRYPOINT of the image")
    lst("group-add", help="Add additional groups to join")
    s("hostname", "h", help="Container host name")
    s("domainname", help="Container NIS domain name")
    b("interactive", "i", help="Keep STDIN open even if not attached")
    lst("label", "l", "Set meta data on a container", validate_label)
    lst("label-file", help="Read in a line delimited file of labels")
    b("read-only", help="Mount the container's root filesystem as read only")
    s("restart", default="no", help="Restart policy to apply when a container exits")
    s("stop-signal", help="Signal to stop the container")
    fs.add("stop-timeout", metavar="int", default=0, convert=int64,
           help="Timeout (in seconds) to stop a container")
    fs.add("sysctl", metavar="map", default={}, convert=validate_sysctl, merge=merge_map,
           help="Sysctl options", show_default="map[]")
    b("tty", "t", help="Allocate a pseudo-TTY")
    fs.add("ulimit", metavar="ulimit", default={}, convert=ulimit, merge=merge_ulimit,
           help="Ulimit options", show_default="[]")
    s("user", "u", help="Username or UID (format: <name|uid>[:<group|gid>])")
    s("workdir", "w", help="Working directory inside the container")
    b("rm", help="Automatically remove the container and its associated anonymous volumes "
      "when it exits")
    # Security
    lst("cap-add", help="Add Linux capabilities")
    lst("cap-drop", help="Drop Linux capabilities")
    b("privileged", help="Give extended privileges to this container")
    lst("security-opt", help="Security Options")
    s("userns", help="User namespace to use")
    s("cgroupns", help=CGROUPNS_HELP)
    # Network and port publishing
    lst("add-host", help="Add a custom host-to-IP mapping (host:ip)",
        validate=validate_extra_host)
    lst("dns", help="Set custom DNS servers", validate=validate_ip)
    lst("dns-opt", help="Set DNS options", dest="dns_option", hidden=True)
    lst("dns-option", help="Set DNS options")
    lst("dns-search", help="Set custom DNS search domains", validate=validate_dns_search)
    lst("expose", help="Expose a port or a range of ports")
    s("ip", help="IPv4 address (e.g., 172.30.100.104)")
    s("ip6", help="IPv6 address (e.g., 2001:db8::33)")
    lst("link", help="Add link to another container", validate=validate_link)
    lst("link-local-ip", help="Container IPv4/IPv6 link-local addresses")
    s("mac-address", help="Container MAC address (e.g., 92:d0:c6:0a:29:33)")
    lst("publish", "p", "Publish a container's port(s) to the host")
    b("publish-all", "P", help="Publish all exposed ports to random ports")
    lst("net", help="Connect a container to a network", validate=network, metavar="network",
        dest="network", hidden=True)
    lst("network", help="Connect a container to a network", validate=network,
        metavar="network")
    lst("net-alias", help="Add network-scoped alias for the container", dest="network_alias",
        hidden=True)
    lst("network-alias", help="Add network-scoped alias for the container")
    # Logging and storage
    s("log-driver", help="Logging driver for the container")
    s("volume-driver", help="Optional volume driver for the container")
    lst("log-opt", help="Log driver options")
    lst("storage-opt", help="Storage driver options for the container")
    lst("tmpfs", help="Mount a tmpfs directory")
    lst("volumes-from", help="Mount volumes from the specified container(s)")
    lst("volume", "v", "Bind mount a volume")
    lst("mount", help="Attach a filesystem mount to the container", validate=mount,
        metavar="mount")
    # Health-checking
    s("health-cmd", help="Command to run to check health")
    fs.add("health-interval", metavar="duration", default=0, convert=duration,
           help="Time between running the check (ms|s|m|h) (default 0s)")
    fs.add("health-retries", metavar="int", default=0, convert=int64,
           help="Consecutive failures needed to report unhealthy")
    fs.add("health-timeout", metavar="duration", default=0, convert=duration,
           help="Maximum time to allow one check to run (ms|s|m|h) (default 0s)")
    fs.add("health-start-period", metavar="duration", default=0, convert=duration,
           help="Start period for the container to initialize before starting health-retries "
           "countdown (ms|s|m|h) (default 0s)")
    fs.add("health-start-interval", metavar="duration", default=0, convert=duration,
           help="Time between running the check during the start period (ms|s|m|h) "
           "(default 0s)")
    b("no-healthcheck", help="Disable any container-specified HEALTHCHECK")
    # Resource management
    fs.add("blkio-weight", metavar="uint16", default=0, convert=uint16,
           help="Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)")
    lst("blkio-weight-device", help="Block IO weight (relative device weight)",
        validate=weight_device, show_default="[]")
    s("cidfile", help="Write the container ID to the file")
    s("cpuset-cpus", help="CPUs in which to allow execution (0-3, 0,1)")
    s("cpuset-mems", help="MEMs in which to allow execution (0-3, 0,1)")
    for name, what in (("cpu-count", "CPU count (Windows only)"),
                       ("cpu-percent", "CPU percent (Windows only)"),
                       ("cpu-period", "Limit CPU CFS (Completely Fair Scheduler) period"),
                       ("cpu-quota", "Limit CPU CFS (Completely Fair Scheduler) quota"),
                       ("cpu-rt-period", "Limit CPU real-time period in microseconds"),
                       ("cpu-rt-runtime", "Limit CPU real-time runtime in microseconds")):
        fs.add(name, metavar="int", default=0, convert=int64, help=what)
    fs.add("cpu-shares", "c", metavar="int", default=0, convert=int64,
           help="CPU shares (relative weight)")
    fs.add("cpus", metavar="decimal", default=0, convert=nano_cpus, help="Number of CPUs")
    lst("device-read-bps", help="Limit read rate (bytes per second) from a device",
        validate=throttle_bps_device, show_default="[]")
    lst("device-read-iops", help="Limit read rate (IO per second) from a device",
        validate=throttle_iops_device, show_default="[]")
    lst("device-write-bps", help="Limit write rate (bytes per second) to a device",
        validate=throttle_bps_device, show_default="[]")
    lst("device-write-iops", help="Limit write rate (IO per second) to a device",
        validate=throttle_iops_device, show_default="[]")
    fs.add("io-maxbandwidth", metavar="bytes", default=0, convert=mem_bytes,
           help="Maximum IO bandwidth limit for the system drive (Windows only)")
    fs.add("io-maxiops", metavar="uint", default=0, convert=uint64,
           help="Maximum IOps limit for the system drive (Windows only)")
    fs.add("kernel-memory", metavar="bytes", default=0, convert=mem_bytes,
           help="Kernel memory limit")
    fs.add("memory", "m", metavar="bytes", default=0, convert=mem_bytes, help="Memory limit")
    fs.add("memory-reservation", metavar="bytes", default=0, convert=mem_bytes,
           help="Memory soft limit")
    fs.add("memory-swap", metavar="bytes", default=0, convert=mem_swap_bytes,
           help="Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
    fs.add("memory-swappiness", metavar="int", default=-1, convert=int64,
           help="Tune container memory swappiness (0 to 100)", show_default="-1")
    b("oom-kill-disable", help="Disable OOM Killer")
    fs.add("oom-score-adj", metavar="int", default=0, convert=int64,
           help="Tune host's OOM preferences (-1000 to 1000)")
    fs.add("pids-limit", metavar="int", default=0, convert=int64,
           help="Tune container pids limit (set -1 for unlimited)")
    # Low-level execution
    s("cgroup-parent", help="Optional parent cgroup for the container")
    s("ipc", help="IPC mode to use")
    s("isolation", help="Container isolation technology")
    s("pid", help="PID namespace to use")
    fs.add("shm-size", metavar="bytes", default=0, convert=mem_bytes, help="Size of /dev/shm")
    s("uts", help="UTS namespace to use")
    s("runtime", help="Runtime to use for this container")
    b("init", help="Run an init inside the container that forwards signals and reaps processes")
    fs.add("annotation", metavar="map", default={}, convert=lambda v: v, merge=merge_map,
           help="Add an annotation to the container (passed through to the OCI runtime)",
           show_default="map[]")


# --- parse(): the flags → Config, HostConfig, NetworkingConfig -------------------------------


def _user_defined(mode: str) -> bool:
    return mode not in ("default", "bridge", "host", "none") and not mode.startswith("container:")


def _endpoint(n: dict[str, Any], o: Values) -> dict[str, Any]:
    """applyContainerOptions + parseNetworkAttachmentOpt for one network."""
    if n["Aliases"] and o.network_alias:
        raise OptionsError("conflicting options: cannot specify both --network-alias and "
                           "per-network alias")
    if n["Links"] and o.link:
        raise OptionsError("conflicting options: cannot specify both --link and per-network links")
    if n["IPv4Address"] and o.ip:
        raise OptionsError("conflicting options: cannot specify both --ip and per-network IPv4 "
                           "address")
    if n["IPv6Address"] and o.ip6:
        raise OptionsError("conflicting options: cannot specify both --ip6 and per-network IPv6 "
                           "address")
    if n["MacAddress"] and o.mac_address:
        raise OptionsError("conflicting options: cannot specify both --mac-address and "
                           "per-network MAC address")
    if n["LinkLocalIPs"] and o.link_local_ip:
        raise OptionsError("conflicting options: cannot specify both --link-local-ip and "
                           "per-network link-local IP addresses")
    n = dict(n)
    if o.network_alias:
        n["Aliases"] = list(o.network_alias)
    if _user_defined(n["Target"]) and o.link:
        n["Links"] = list(o.link)
    n["IPv4Address"] = o.ip or n["IPv4Address"]
    n["IPv6Address"] = o.ip6 or n["IPv6Address"]
    n["MacAddress"] = o.mac_address or n["MacAddress"]
    if o.link_local_ip:
        n["LinkLocalIPs"] = list(o.link_local_ip)
    return n


def _endpoint_settings(n: dict[str, Any]) -> dict[str, Any]:
    if not n["Target"].strip():
        raise OptionsError("no name set for network")
    if not _user_defined(n["Target"]):
        if n["Aliases"]:
            raise OptionsError("network-scoped aliases are only supported for user-defined "
                               "networks")
        if n["Links"]:
            raise OptionsError("links are only supported for user-defined networks")
    ipam = None
    if n["IPv4Address"] or n["IPv6Address"] or n["LinkLocalIPs"]:
        ipam = {"IPv4Address": n["IPv4Address"], "IPv6Address": n["IPv6Address"],
                "LinkLocalIPs": n["LinkLocalIPs"] or None}
        ipam = {k: v for k, v in ipam.items() if v}
    if n["MacAddress"] and not re.fullmatch(r"([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}",
                                             n["MacAddress"].strip()):
        raise OptionsError(f"{n['MacAddress']} is not a valid mac address")
    return {"IPAMConfig": ipam, "Links": n["Links"] or None, "Aliases": n["Aliases"] or None,
            "MacAddress": n["MacAddress"],
            "DriverOpts": dict(sorted(n["DriverOpts"].items())) or None,
            "GwPriority": n["GwPriority"], "NetworkID": "", "EndpointID": "", "Gateway": "",
            "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0, "DNSNames": None}


def _is_zero_endpoint(ep: dict[str, Any]) -> bool:
    return not any(v for v in ep.values())


def _network_endpoints(o: Values) -> dict[str, Any]:
    """parseNetworkOpts: one EndpointSettings per --network (none when there is a single
    --network without options, which the daemon fills in itself)."""
    nets = o.network or []
    endpoints: dict[str, Any] = {}
    if not nets:
        endpoints["default"] = _endpoint_settings(_endpoint(network("default"), o))
    user_defined = non_user_defined = False
    for i, n in enumerate(nets):
        if _user_defined(n["Target"]):
            user_defined = True
        else:
            non_user_defined = True
        if i == 0:
            n = _endpoint(n, o)
        ep = _endpoint_settings(n)
        if n["Target"] in endpoints:
            raise OptionsError(f'network "{n["Target"]}" is specified multiple times')
        if i == 0 and len(nets) == 1 and _is_zero_endpoint(ep):
            continue
        endpoints[n["Target"]] = ep
    if user_defined and non_user_defined:
        raise OptionsError("conflicting options: cannot attach both user-defined and "
                           "non-user-defined network-modes")
    return dict(sorted(endpoints.items()))


def _restart_policy(policy: str) -> dict[str, Any]:
    """opts.ParseRestartPolicy."""
    if policy == "":
        return {"Name": "", "MaximumRetryCount": 0}
    name, sep, count = policy.partition(":")
    if sep and name == "":
        raise OptionsError("invalid restart policy format: no policy provided before colon")
    retries = 0
    if count:
        try:
            retries = govalues.parse_int(count, 64, 10)
        except ValueError:
            raise OptionsError("invalid restart policy format: maximum retry count must be an "
                               "integer") from None
    return {"Name": name, "MaximumRetryCount": retries}


def _healthcheck(o: Values) -> dict[str, Any] | None:
    have = (o.health_cmd or o.health_interval or o.health_timeout or o.health_start_period
            or o.health_retries or o.health_start_interval)
    if o.no_healthcheck:
        if have:
            raise OptionsError("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    if not have:
        return None
    for name in ("interval", "timeout", "retries", "start-period", "start-interval"):
        if getattr(o, "health_" + name.replace("-", "_")) < 0:
            raise OptionsError(f"--health-{name} cannot be negative")
    hc = {"Test": ["CMD-SHELL", o.health_cmd] if o.health_cmd else None,
          "Interval": o.health_interval, "Timeout": o.health_timeout,
          "StartPeriod": o.health_start_period, "StartInterval": o.health_start_interval,
          "Retries": o.health_retries}
    return {k: v for k, v in hc.items() if v}


def _container_mode(value: str) -> bool:
    k, sep, v = value.partition(":")
    return bool(sep) and k == "container" and v != ""


def _volumes(o: Values) -> tuple[list[str], dict[str, dict]]:
    """-v: specs with a source are binds (a relative "./x" made absolute), the
    others anonymous volumes in Config.Volumes."""
    binds: list[str] = []
    volumes: dict[str, dict] = {}
    for spec in dict.fromkeys(o.volume or []):
        parsed = parse_volume(spec)
        if not parsed["Source"]:
            volumes[spec] = {}
            continue
        if parsed["Type"] == "bind" and ":" in spec:
            host, target = spec.split(":", 1)
            if not host.startswith("/") and host.startswith("."):
                host = os.path.abspath(host)
            spec = f"{host}:{target}"
        binds.append(spec)
    return binds, dict(sorted(volumes.items()))


def _ports(o: Values) -> tuple[dict[str, dict], dict[str, list[dict[str, str]]]]:
    """-p and --expose: ExposedPorts and PortBindings."""
    exposed: dict[str, dict] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for spec in standard_publish(o.publish or []):
        for port, binding in parse_port_spec(spec):
            exposed.setdefault(port, {})
            bindings.setdefault(port, []).append(binding)
    for e in o.expose or []:
        if ":" in e:
            raise OptionsError(f"invalid port format for --expose: {e}")
        proto, port = split_proto_port(e)
        try:
            start, end = port_range(port)
        except ValueError as err:
            raise OptionsError(f"invalid range format for --expose: {e}, error: {err}") from None
        for p in range(start, end + 1):
            exposed.setdefault(f"{p}/{proto}", {})
    return dict(sorted(exposed.items())), dict(sorted(bindings.items()))


def _devices(o: Values) -> tuple[list[dict[str, str]], list[dict] | None]:
    """--device: device mappings, and CDI names ("vendor.com/class=name") as a device
    request for the "cdi" driver, after the --gpus requests."""
    devices: list[dict[str, str]] = []
    cdi: list[str] = []
    for device in o.device or []:
        if is_qualified_cdi(device):
            cdi.append(device)
        else:
            devices.append(parse_device(device))
    requests = list(o.gpus or []) or None
    if cdi:
        requests = (requests or []) + [{"Driver": "cdi", "Count": 0, "DeviceIDs": cdi,
                                         "Capabilities": None, "Options": None}]
    return devices, requests


def _env_and_labels(o: Values) -> tuple[list[str] | None, dict[str, str]]:
    """--env-file then -e (later ones win in the container); --label-file then -l."""
    env: list[str] | None = None
    for path in o.env_file or []:
        env = (env or []) + read_kv_file(path, os.environ)
    if o.env:
        env = (env or []) + list(o.env)
    labels: list[str] = []
    for path in o.label_file or []:
        labels += read_kv_file(path, None)
    labels += o.label or []
    return env, dict(sorted(kv_map(labels).items()))


def _check_namespaces(o: Values) -> None:
    if o.pid and o.pid != "host" and not _container_mode(o.pid):
        raise OptionsError("--pid: invalid PID mode")
    if o.uts and o.uts != "host":
        raise OptionsError("--uts: invalid UTS mode")
    if o.userns and o.userns != "host":
        raise OptionsError("--userns: invalid USER mode")
    if o.cgroupns not in ("", "host", "private"):
        raise OptionsError("--cgroupns: invalid CGROUP mode")


def _security(o: Values) -> tuple[list[str] | None, list | None, list | None]:
    """--security-opt, with systempaths=unconfined taken out: it means empty
    MaskedPaths and ReadonlyPaths, and the daemon never sees it."""
    if not o.security_opt:
        return None, None, None
    security = parse_security_opts(o.security_opt)
    if "systempaths=unconfined" in security:
        return [s for s in security if s != "systempaths=unconfined"], [], []
    return security, None, None


def _storage(o: Values) -> dict[str, str]:
    storage: dict[str, str] = {}
    for option in o.storage_opt or []:
        k, sep, v = option.partition("=")
        if not sep:
            raise OptionsError("invalid storage option")
        storage[k] = v
    return dict(sorted(storage.items()))


def _entrypoint(o: Values) -> list[str] | None:
    """--entrypoint X, or [""] for `--entrypoint=` (reset the image's), or none."""
    if o.entrypoint:
        return [o.entrypoint]
    return [""] if "entrypoint" in o.changed else None


def build(o: Values, image: str, args: list[str],
          console_size: tuple[int, int] = (0, 0)) -> dict[str, Any]:
    """opts.go's parse(): the create body for these flags, IMAGE and COMMAND.

    Raises OptionsError with docker's message for what the flags cannot mean
    together, checked in docker's order; the flags themselves were checked
    as they were parsed.
    """
    if o.mac_address and not re.fullmatch(r"([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}",
                                           o.mac_address.strip()):
        raise OptionsError(f"{o.mac_address} is not a valid mac address")
    if o.memory_swappiness != -1 and not 0 <= o.memory_swappiness <= 100:
        raise OptionsError(f"invalid value: {o.memory_swappiness}. Valid memory swappiness "
                           "range is 0-100")
    binds, volumes = _volumes(o)
    tmpfs = dict(sorted(dict(t.partition(":")[::2] for t in o.tmpfs or []).items()))
    exposed, bindings = _ports(o)
    devices, device_requests = _devices(o)
    env, labels = _env_and_labels(o)
    _check_namespaces(o)
    restart = _restart_policy(o.restart)
    if o.log_driver == "none" and o.log_opt:
        raise OptionsError(f"invalid logging opts for driver {o.log_driver}")
    security, masked, readonly = _security(o)
    storage = _storage(o)
    health = _healthcheck(o)

    attach = o.attach or []
    stdin = "stdin" in attach or bool(o.interactive)
    config = _omit_empty({
        "Hostname": o.hostname, "Domainname": o.domainname, "User": o.user,
        "AttachStdin": stdin, "AttachStdout": "stdout" in attach or not attach,
        "AttachStderr": "stderr" in attach or not attach, "ExposedPorts": exposed,
        "Tty": o.tty, "OpenStdin": o.interactive, "StdinOnce": bool(o.interactive and stdin),
        "Env": env, "Cmd": list(args) or None, "Healthcheck": health, "Image": image,
        "Volumes": volumes, "WorkingDir": o.workdir, "Entrypoint": _entrypoint(o),
        "MacAddress": o.mac_address, "OnBuild": None, "Labels": labels,
        "StopSignal": o.stop_signal,
        "StopTimeout": o.stop_timeout if "stop-timeout" in o.changed else None,
    }, omitempty=("ExposedPorts", "MacAddress", "StopSignal"),
        pointers=("Healthcheck", "StopTimeout"))
    host = _omit_empty({
        "Binds": binds or None, "ContainerIDFile": o.cidfile,
        "LogConfig": {"Type": o.log_driver, "Config": dict(sorted(kv_map(o.log_opt or []).items()))},
        "NetworkMode": (o.network or [{"Target": "default"}])[0]["Target"],
        "PortBindings": bindings, "RestartPolicy": restart, "AutoRemove": o.rm,
        "VolumeDriver": o.volume_driver, "VolumesFrom": o.volumes_from or None,
        "ConsoleSize": list(console_size), "Annotations": dict(sorted(o.annotation.items())),
        "CapAdd": normalize_capabilities(o.cap_add), "CapDrop": normalize_capabilities(o.cap_drop),
        "CgroupnsMode": o.cgroupns, "Dns": list(o.dns or []),
        "DnsOptions": list(o.dns_option or []), "DnsSearch": list(o.dns_search or []),
        "ExtraHosts": o.add_host or None, "GroupAdd": o.group_add or None, "IpcMode": o.ipc,
        "Cgroup": "", "Links": o.link or None, "OomScoreAdj": o.oom_score_adj,
        "PidMode": o.pid, "Privileged": o.privileged, "PublishAllPorts": o.publish_all,
        "ReadonlyRootfs": o.read_only, "SecurityOpt": security, "StorageOpt": storage,
        "Tmpfs": tmpfs, "UTSMode": o.uts, "UsernsMode": o.userns, "ShmSize": o.shm_size,
        "Sysctls": dict(sorted(o.sysctl.items())), "Runtime": o.runtime,
        "Isolation": o.isolation,
        # Resources, inlined in HostConfig
        "CpuShares": o.cpu_shares, "Memory": o.memory, "NanoCpus": o.cpus,
        "CgroupParent": o.cgroup_parent, "BlkioWeight": o.blkio_weight,
        "BlkioWeightDevice": list(o.blkio_weight_device or []),
        "BlkioDeviceReadBps": list(o.device_read_bps or []),
        "BlkioDeviceWriteBps": list(o.device_write_bps or []),
        "BlkioDeviceReadIOps": list(o.device_read_iops or []),
        "BlkioDeviceWriteIOps": list(o.device_write_iops or []),
        "CpuPeriod": o.cpu_period, "CpuQuota": o.cpu_quota,
        "CpuRealtimePeriod": o.cpu_rt_period, "CpuRealtimeRuntime": o.cpu_rt_runtime,
        "CpusetCpus": o.cpuset_cpus, "CpusetMems": o.cpuset_mems, "Devices": devices,
        "DeviceCgroupRules": o.device_cgroup_rule or None, "DeviceRequests": device_requests,
        "KernelMemory": o.kernel_memory, "MemoryReservation": o.memory_reservation,
        "MemorySwap": o.memory_swap, "MemorySwappiness": o.memory_swappiness,
        "OomKillDisable": o.oom_kill_disable, "PidsLimit": o.pids_limit,
        "Ulimits": [u for _, u in sorted((o.ulimit or {}).items())],
        "CpuCount": o.cpu_count, "CpuPercent": o.cpu_percent, "IOMaximumIOps": o.io_maxiops,
        "IOMaximumBandwidth": o.io_maxbandwidth,
        "Mounts": list(o.mount or []), "MaskedPaths": masked, "ReadonlyPaths": readonly,
        "Init": o.init if "init" in o.changed else None,
    }, omitempty=("Annotations", "StorageOpt", "Tmpfs", "Sysctls", "Runtime", "KernelMemory",
                  "Mounts"), pointers=("Init",))
    if o.rm and restart["Name"] not in ("", "no"):
        raise OptionsError("conflicting options: cannot specify both --restart and --rm")
    endpoints = _network_endpoints(o)
    return {**config, "HostConfig": host, "NetworkingConfig": {"EndpointsConfig": endpoints}}


def _omit_empty(fields: dict[str, Any], omitempty: tuple[str, ...],
                pointers: tuple[str, ...]) -> dict[str, Any]:
    """Go's `json:",omitempty"`: a value field goes only when it is not empty
    ("", 0, false, an empty list or map), a pointer field only when it is not nil."""
    return {k: v for k, v in fields.items()
            if not (k in omitempty and not v or k in pointers and v is None)}


def normalize_capabilities(caps: list[str] | None) -> list[str] | None:
    """The engine client's normalizeCapabilities: upper case, "CAP_" added, no
    duplicates, sorted; "ALL" stays as it is."""
    out: list[str] = []
    for cap in caps or []:
        cap = cap.upper()
        if cap != "ALL" and not cap.startswith("CAP_"):
            cap = "CAP_" + cap
        if cap not in out:
            out.append(cap)
    return sorted(out) or None
