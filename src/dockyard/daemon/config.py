"""dockyardd's configuration: flags, and the JSON file in daemon.json's shape.

As dockerd, a setting may come from a flag or from the file but not from both:
that is refused at start, so nobody wonders which one won.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field

from dockyard.strconv import parse_bool

DEFAULT_HOST = "unix:///run/dockyard/dockyard.sock"
DEFAULT_DATA_ROOT = "/var/lib/dockyard"
DEFAULT_EXEC_ROOT = "/run/dockyard"

# flag dest -> key in the config file
FILE_KEYS = {
    "hosts": "hosts", "data_root": "data-root", "exec_root": "exec-root",
    "pidfile": "pidfile", "debug": "debug", "log_level": "log-level", "labels": "labels",
    "default_runtime": "default-runtime", "runtimes": "runtimes",
    "bridge": "bridge", "bip": "bip", "fixed_cidr": "fixed-cidr",
    "default_address_pools": "default-address-pools", "mtu": "mtu",
    "iptables": "iptables", "ip_forward": "ip-forward", "ip_masq": "ip-masq", "icc": "icc",
    "userland_proxy": "userland-proxy", "ip": "ip", "dns": "dns", "dns_search": "dns-search",
    "dns_opts": "dns-opts", "iptables_chain_prefix": "iptables-chain-prefix",
    "insecure_registries": "insecure-registries", "registry_mirrors": "registry-mirrors",
    "max_concurrent_downloads": "max-concurrent-downloads",
    "max_concurrent_uploads": "max-concurrent-uploads",
    "max_download_attempts": "max-download-attempts",
}

DEFAULT_BRIDGE = "dockyard0"


class ConfigError(Exception):
    pass


@dataclass
class Config:
    hosts: list[str] = field(default_factory=lambda: [DEFAULT_HOST])
    data_root: str = DEFAULT_DATA_ROOT
    exec_root: str = DEFAULT_EXEC_ROOT
    pidfile: str | None = None
    debug: bool = False
    log_level: str = "info"
    labels: list[str] = field(default_factory=list)
    default_runtime: str = "dockyard"
    runtimes: dict = field(default_factory=dict)  # name -> {"path": ...}, as daemon.json
    # networking, as dockerd's flags of the same names
    bridge: str = DEFAULT_BRIDGE          # the default network's Linux bridge ("none": no default network)
    bip: str | None = None                # the bridge's address and prefix, e.g. 172.17.0.1/16
    fixed_cidr: str | None = None         # the part of the subnet containers get addresses from
    default_address_pools: list = field(default_factory=list)  # [{"base": CIDR, "size": N}]
    mtu: int = 1500
    iptables: bool = True
    ip_forward: bool = True
    ip_masq: bool = True
    icc: bool = True                      # containers on the default bridge may talk to each other
    userland_proxy: bool = True
    ip: str = "0.0.0.0"                   # host address of published ports that name none
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_opts: list[str] = field(default_factory=list)
    # Our chains are <prefix>, <prefix>-ISOLATION-STAGE-1, ...: a second daemon on the
    # same host (with its own bridge) takes another prefix so neither rebuilds the other's.
    iptables_chain_prefix: str = "DOCKYARD"
    # registries, as dockerd's flags of the same names (dockyard.distribution.endpoints)
    insecure_registries: list[str] = field(default_factory=list)
    registry_mirrors: list[str] = field(default_factory=list)
    # layers moved at once by one pull or push (0: no limit, as dockerd), and how
    # often a failed layer download is tried again
    max_concurrent_downloads: int = 3
    max_concurrent_uploads: int = 5
    max_download_attempts: int = 5

    @property
    def pidfile_path(self) -> str:
        return self.pidfile or f"{self.exec_root}/dockyardd.pid"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dockyardd", description="A self-sufficient runtime for containers")
    # Defaults are None so that we can tell a flag that was given from one that was not.
    p.add_argument("-H", "--host", dest="hosts", action="append", metavar="HOST",
                   help=f"daemon socket(s) to connect to (default {DEFAULT_HOST})")
    p.add_argument("--data-root", dest="data_root", help=f"root of persistent state (default {DEFAULT_DATA_ROOT})")
    p.add_argument("--exec-root", dest="exec_root", help=f"root of execution state (default {DEFAULT_EXEC_ROOT})")
    p.add_argument("-p", "--pidfile", dest="pidfile", help="path to use for the daemon PID file")
    p.add_argument("--config-file", dest="config_file", help="daemon configuration file (JSON)")
    p.add_argument("-D", "--debug", dest="debug", action="store_true", default=None, help="enable debug mode")
    p.add_argument("-l", "--log-level", dest="log_level",
                   choices=["debug", "info", "warn", "error", "fatal"], help="logging level (default info)")
    p.add_argument("--label", dest="labels", action="append", help="set key=value labels on the daemon")
    p.add_argument("--default-runtime", dest="default_runtime",
                   help="default OCI runtime for containers (default dockyard)")
    p.add_argument("--add-runtime", dest="runtimes", action="append", metavar="NAME=PATH",
                   help="register an additional OCI runtime")
    net = p.add_argument_group("networking")
    net.add_argument("-b", "--bridge", dest="bridge",
                     help=f"attach containers to a network bridge (default {DEFAULT_BRIDGE}; 'none': no default network)")
    net.add_argument("--bip", dest="bip", help="specify network bridge IP (CIDR)")
    net.add_argument("--fixed-cidr", dest="fixed_cidr", help="IPv4 subnet for fixed IPs")
    net.add_argument("--default-address-pool", dest="default_address_pools", action="append",
                     type=_address_pool, metavar="base=CIDR,size=N",
                     help="default address pools for node specific local networks")
    net.add_argument("--mtu", dest="mtu", type=int, help="set the containers network MTU (default 1500)")
    for name, what in (("iptables", "enable addition of iptables rules"),
                       ("ip-forward", "enable net.ipv4.ip_forward"),
                       ("ip-masq", "enable IP masquerading"),
                       ("icc", "enable inter-container communication"),
                       ("userland-proxy", "use userland proxy for loopback traffic")):
        net.add_argument(f"--{name}", dest=name.replace("-", "_"), type=_bool, nargs="?",
                         const=True, metavar="true|false", help=f"{what} (default true)")
    net.add_argument("--ip", dest="ip", help="default IP when binding container ports (default 0.0.0.0)")
    net.add_argument("--dns", dest="dns", action="append", help="DNS server to use")
    net.add_argument("--dns-search", dest="dns_search", action="append", help="DNS search domains to use")
    net.add_argument("--dns-opt", dest="dns_opts", action="append", help="DNS options to use")
    net.add_argument("--iptables-chain-prefix", dest="iptables_chain_prefix",
                     help="name prefix of the daemon's iptables chains (default DOCKYARD)")
    reg = p.add_argument_group("registries")
    reg.add_argument("--insecure-registry", dest="insecure_registries", action="append",
                     metavar="REGISTRY", help="enable insecure registry communication")
    reg.add_argument("--registry-mirror", dest="registry_mirrors", action="append",
                     metavar="URL", help="preferred Docker registry mirror")
    reg.add_argument("--max-concurrent-downloads", dest="max_concurrent_downloads", type=int,
                     metavar="N", help="set the max concurrent downloads for each pull (default 3)")
    reg.add_argument("--max-concurrent-uploads", dest="max_concurrent_uploads", type=int,
                     metavar="N", help="set the max concurrent uploads for each push (default 5)")
    reg.add_argument("--max-download-attempts", dest="max_download_attempts", type=int,
                     metavar="N", help="set the max download attempts for each pull (default 5)")
    p.add_argument("-v", "--version", action="store_true", help="print version information and quit")
    return p


def _bool(text: str) -> bool:
    """Go's strconv.ParseBool, which dockerd's boolean flags use (--iptables=false)."""
    try:
        return parse_bool(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"parse error on {text!r}: invalid syntax") from None


def _address_pool(text: str) -> dict:
    """base=10.10.0.0/16,size=24 as dockerd's --default-address-pool."""
    pool = dict(kv.partition("=")[::2] for kv in text.split(","))
    if set(pool) != {"base", "size"} or not pool["size"].isdigit():
        raise argparse.ArgumentTypeError(f"invalid address pool {text!r}: use base=CIDR,size=N")
    return {"base": pool["base"], "size": int(pool["size"])}


def _check_transfer_limits(config: Config) -> None:
    """dockerd's words for them; a limit of 0 transfers means none, but a
    pull must try a layer at least once."""
    for what, value, least in (("max concurrent downloads", config.max_concurrent_downloads, 0),
                               ("max concurrent uploads", config.max_concurrent_uploads, 0),
                               ("max download attempts", config.max_download_attempts, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise ConfigError(f"invalid {what}: {value}")


def load(argv: list[str] | None = None) -> tuple[Config, argparse.Namespace]:
    args = parser().parse_args(argv)
    from_file: dict = {}
    if args.config_file:
        try:
            with open(args.config_file) as f:
                from_file = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"unable to configure the daemon with file {args.config_file}: {e}") from e
        unknown = set(from_file) - set(FILE_KEYS.values())
        if unknown:
            raise ConfigError("the following directives don't match any configuration option: "
                              + ", ".join(sorted(unknown)))
    config = Config()
    both = []
    for dest, key in FILE_KEYS.items():
        flag_value = getattr(args, dest)
        if flag_value is not None and key in from_file:
            both.append(f"{key}: (from flag: {flag_value}, from file: {from_file[key]})")
        value = flag_value if flag_value is not None else from_file.get(key)
        if value is not None:
            setattr(config, dest, value)
    if both:
        raise ConfigError("the following directives are specified both as a flag and in the "
                          "configuration file: " + ", ".join(both))
    if isinstance(config.runtimes, list):  # from --add-runtime name=path
        pairs = [r.partition("=") for r in config.runtimes]
        bad = [n for n, sep, path in pairs if not sep or not n or not path]
        if bad:
            raise ConfigError("invalid --add-runtime: use name=path")
        config.runtimes = {n: {"path": path} for n, _, path in pairs}
    if config.debug:
        config.log_level = "debug"
    _check_transfer_limits(config)
    if config.insecure_registries or config.registry_mirrors:
        from dockyard import errdefs
        from dockyard.distribution.endpoints import ServiceConfig
        try:  # refused at start, as dockerd refuses a bad mirror
            ServiceConfig(list(config.insecure_registries), list(config.registry_mirrors))
        except errdefs.InvalidParameter as e:
            raise ConfigError(str(e)) from e
    return config, args
