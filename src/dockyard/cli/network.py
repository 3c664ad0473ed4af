"""`network` commands: create, ls, inspect, rm, prune, connect, disconnect —
docker's flags, output and exit codes (docker/cli cli/command/network/*.go).

`network create` consolidates --subnet, --ip-range, --gateway and
--aux-address into IPAM configs on the client, as docker does, so its
mistakes ("no matching subnet for gateway 10.9.9.1") are reported without a
request. `network ls` sorts by name in natural order and renders
formatter.networkContext rows.
"""

from __future__ import annotations

import ipaddress

from dockyard.cli import formatting
from dockyard.cli.command import (FORMAT_HELP, INSPECT_FORMAT_HELP, PROG, Cli, StatusError,
                                  write_listing)
from dockyard.cli.pflag import FlagSet

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Mapping

DEFAULT_TABLE = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
HEADER = {
    "ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv4": "IPV4",
    "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT",
}
PRUNE_WARNING = ("WARNING! This will remove all custom networks not used by at least one "
                 "container.\nAre you sure you want to continue?")


def _csv(value: str) -> list[str]:
    """pflag's stringSlice: one flag may carry several values, comma-separated."""
    from dockyard.cli.optvalues import csv_fields
    return csv_fields(value) if value else []


def _extend(current: list | None, values: list) -> list:
    return [*(current or []), *values]


def _strings(fs: FlagSet, long: str, help: str) -> None:
    fs.add(long, metavar="strings", help=help, default=[], convert=_csv, merge=_extend)


# --- create ----------------------------------------------------------------------


def create(cli: Cli, argv: list[str], path: str) -> int:
    fs = FlagSet(path, "[OPTIONS] NETWORK", "Create a network", args=(1, 1))
    from dockyard.cli.optvalues import validate_label
    fs.bool("attachable", help="Enable manual container attachment")
    fs.map("aux-address", help="Auxiliary IPv4 or IPv6 addresses used by Network driver")
    fs.string("config-from", help="The network from which to copy the configuration")
    fs.bool("config-only", help="Create a configuration only network")
    fs.string("driver", "d", help="Driver to manage the Network", default="bridge")
    _strings(fs, "gateway", "IPv4 or IPv6 Gateway for the master subnet")
    fs.bool("ingress", help="Create swarm routing-mesh network")
    fs.bool("internal", help="Restrict external access to the network")
    _strings(fs, "ip-range", "Allocate container ip from a sub-range")
    fs.string("ipam-driver", help="IP Address Management Driver", default="default")
    fs.map("ipam-opt", help="Set IPAM driver specific options")
    fs.bool("ipv4", help="Enable or disable IPv4 address assignment", default=True)
    fs.bool("ipv6", help="Enable or disable IPv6 address assignment")
    fs.list("label", help="Set metadata on a network", validate=validate_label)
    fs.map("opt", "o", help="Set driver specific options")
    fs.string("scope", help="Control the network's scope")
    _strings(fs, "subnet", "Subnet in CIDR format that represents a network segment")
    o = fs.parse(argv)
    try:
        configs = ipam_configs(o.subnet, o.ip_range, o.gateway, o.aux_address)
    except ValueError as e:
        raise StatusError(str(e)) from None
    body: dict[str, Any] = {
        "Name": o.args[0], "CheckDuplicate": True, "Driver": o.driver, "Scope": o.scope,
    }
    if "ipv4" in o.changed:
        body["EnableIPv4"] = o.ipv4
    if "ipv6" in o.changed:
        body["EnableIPv6"] = o.ipv6
    body.update({
        "IPAM": {"Driver": o.ipam_driver, "Config": configs, "Options": o.ipam_opt},
        "Internal": o.internal, "Attachable": o.attachable, "Ingress": o.ingress,
        "ConfigOnly": o.config_only,
        "ConfigFrom": {"Network": o.config_from} if o.config_from else None,
        "Options": o.opt,
        "Labels": {k: v for k, _, v in (label.partition("=") for label in o.label or [])},
    })
    from dockyard.client.api import APIError
    try:
        reply = cli.client.post("/networks/create", body=body) or {}
    except APIError as e:
        # docker's client trims the daemon's message ("...predefined bridge network ")
        raise StatusError(f"Error response from daemon: {e.message.strip()}") from None
    cli.out.write(f"{reply.get('Id', '')}\n")
    return 0


def _matches(subnet: str, data: str) -> bool:
    """subnetMatches: whether `data` (an address, or the first address of a
    CIDR) lies in `subnet`; errors are Go's net.ParseCIDR ones."""
    try:
        network = ipaddress.ip_network(subnet, strict=False)
    except ValueError:
        raise ValueError(f"invalid subnet: invalid CIDR address: {subnet}") from None
    if "/" in data:
        try:
            ip = ipaddress.ip_interface(data).ip
        except ValueError:
            raise ValueError(f"invalid CIDR address: {data}") from None
    else:
        try:
            ip = ipaddress.ip_address(data)
        except ValueError:
            return False
    return ip.version == network.version and ip in network


def ipam_configs(subnets: list[str], ranges: list[str], gateways: list[str],
                 aux: dict[str, str]) -> list[dict[str, Any]]:
    """createIPAMConfig: one config per subnet, with its range, gateway and
    auxiliary addresses, refused as docker refuses them."""
    if len(subnets) < len(ranges) or len(subnets) < len(gateways):
        raise ValueError("every ip-range or gateway must have a corresponding subnet")
    data: dict[str, dict[str, Any]] = {}
    for s in subnets:
        for k in data:
            if _matches(s, k) or _matches(k, s):
                raise ValueError("multiple overlapping subnet configuration is not supported")
        data[s] = {"Subnet": s, "AuxiliaryAddresses": {}}
    for r in ranges:
        try:
            ipaddress.ip_interface(r)
        except ValueError:
            raise ValueError(f"invalid CIDR address: {r}") from None
        _assign(data, subnets, "IPRange", r, "range",
                "cannot configure multiple ranges ({}, {}) on the same subnet ({})")
    for g in gateways:
        _assign(data, subnets, "Gateway", g, "gateway",
                "cannot configure multiple gateways ({}, {}) for the same subnet ({})")
    for key, address in aux.items():
        match = False
        for s in subnets:
            if _matches(s, address):
                data[s]["AuxiliaryAddresses"][key] = address
                match = True
        if not match:
            raise ValueError(f"no matching subnet for aux-address {address}")
    return [_omit_empty(c) for c in data.values()]


def _assign(data: dict[str, dict[str, Any]], subnets: list[str], key: str, value: str,
            noun: str, twice: str) -> None:
    """Put an ip-range or gateway into the config of every subnet holding it."""
    match = False
    for s in subnets:
        if not _matches(s, value):
            continue
        if data[s].get(key):
            raise ValueError(twice.format(value, data[s][key], s))
        data[s][key] = value
        match = True
    if not match:
        raise ValueError(f"no matching subnet for {noun} {value}")


def _omit_empty(conf: dict[str, Any]) -> dict[str, Any]:
    """IPAMConfig's `omitempty` fields."""
    return {k: v for k, v in conf.items() if v or k == "Subnet"}


# --- ls -----------------------------------------------------------------------------


# formatter.networkContext: the fields, and Label, the method with an argument.
_NetworkRow = formatting.struct_type("*network.networkContext", formatting.LabeledRow)


def network_row(n: Mapping[str, Any], trunc: bool = True):
    labels = n.get("Labels") or {}
    network_id = n.get("Id", "")
    row = _NetworkRow({
        "CreatedAt": formatting.rfc3339_time_string(n.get("Created", "")),
        "Driver": n.get("Driver", ""),
        "ID": formatting.truncate_id(network_id) if trunc else network_id,
        "IPv4": "true" if n.get("EnableIPv4") else "false",
        "IPv6": "true" if n.get("EnableIPv6") else "false",
        "Internal": "true" if n.get("Internal") else "false",
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
        "Name": n.get("Name", ""),
        "Scope": n.get("Scope", ""),
    })
    row.__dict__["_labels"] = labels
    return row


def network_format(fmt: str, quiet: bool) -> str:
    """network.NewFormat."""
    if fmt == "table":
        return formatting.QUIET_FORMAT if quiet else DEFAULT_TABLE
    if fmt == "raw":
        if quiet:
            return "network_id: {{.ID}}"
        return "network_id: {{.ID}}\\nname: {{.Name}}\\ndriver: {{.Driver}}\\nscope: {{.Scope}}\\n"
    return fmt


def list_networks(cli: Cli, argv: list[str], path: str) -> int:
    fs = FlagSet(f"{PROG} network ls", "[OPTIONS]", "List networks",
                 aliases=f"{PROG} network ls, {PROG} network list", args=(0, 0))
    from dockyard.cli.ps import add_filter_flag, filters_json
    add_filter_flag(fs, help='Provide filter values (e.g. "driver=bridge")')
    fs.string("format", help=FORMAT_HELP)
    fs.bool("no-trunc", help="Do not truncate the output")
    fs.bool("quiet", "q", help="Only display network IDs")
    o = fs.parse(argv)
    from dockyard.cli.clientconfig import listing_format
    fmt = listing_format(o.format, o.quiet, "networksFormat")
    filters = filters_json(o.filter or [])
    networks = cli.client.get("/networks", query={"filters": filters} if filters else None)
    networks = sorted(networks or [], key=lambda n: formatting.natural_key(n.get("Name", "")))
    rows = [network_row(n, trunc=not o.no_trunc) for n in networks]
    write_listing(cli, network_format(fmt, o.quiet), rows, HEADER)
    return 0


# --- inspect -------------------------------------------------------------------------


def inspect(cli: Cli, argv: list[str], path: str) -> int:
    fs = FlagSet(path, "[OPTIONS] NETWORK [NETWORK...]",
                 "Display detailed information on one or more networks", args=(1, None))
    fs.string("format", "f", help=INSPECT_FORMAT_HELP)
    fs.bool("verbose", "v", help="Verbose output for diagnostics")
    o = fs.parse(argv)
    from dockyard.cli import inspect as inspector

    class Verbose(inspector.InspectType):
        def url(self, ref: str, size: bool = False) -> tuple[str, dict | None]:
            return self.path.format(ref), {"verbose": "true"}

    kind = inspector.TYPES["network"]
    if o.verbose:
        kind = Verbose(kind.name, kind.path)
    return inspector.run_inspect(cli, o.args, o.format, [kind])


# --- rm, prune -------------------------------------------------------------------------


def remove(cli: Cli, argv: list[str], path: str) -> int:
    fs = FlagSet(f"{PROG} network rm", "NETWORK [NETWORK...]", "Remove one or more networks",
                 aliases=f"{PROG} network rm, {PROG} network remove", args=(1, None))
    fs.bool("force", "f", help="Do not error if the network does not exist")
    o = fs.parse(argv)
    from dockyard.client.api import APIError
    status = 0
    for name in o.args:
        try:
            if not name.strip():
                raise ValueError("invalid network name or ID: value is empty")
            cli.client.request("DELETE", f"/networks/{name.strip()}").read()
        except APIError as e:
            if o.force and e.status == 404:
                continue
            cli.err.write(f"Error response from daemon: {e.message}\n")
            status = 1
            continue
        except ValueError as e:
            cli.err.write(f"{e}\n")
            status = 1
            continue
        cli.out.write(f"{name}\n")
    if status:
        # cli.StatusError{Status: "exit status 1"}: docker prints the status too.
        raise StatusError(f"exit status {status}", status)
    return 0


def prune(cli: Cli, argv: list[str], path: str) -> int:
    fs = FlagSet(path, "[OPTIONS]", "Remove all unused networks", args=(0, 0))
    from dockyard.cli.ps import add_filter_flag, filters_json
    add_filter_flag(fs, short="", help='Provide filter values (e.g. "until=<timestamp>")')
    fs.bool("force", "f", help="Do not prompt for confirmation")
    o = fs.parse(argv)
    if not o.force:
        from dockyard.cli.images import confirm
        if not confirm(cli, PRUNE_WARNING):
            return 0  # a cancellation: no message, status 0
    filters = filters_json(o.filter or [])
    report = cli.client.post("/networks/prune",
                             query={"filters": filters} if filters else None) or {}
    _, output = formatting.prune_report(report, "NetworksDeleted", "Deleted Networks:")
    if output:
        cli.out.write(output + "\n")
    return 0


# --- connect, disconnect -----------------------------------------------------------------


def _ids(network: str, container: str) -> tuple[str, str]:
    """The engine client's trimID, for both."""
    for kind, value in (("network", network), ("container", container)):
        if not value.strip():
            raise StatusError(f"invalid {kind} name or ID: value is empty")
    return network.strip(), container.strip()


def connect(cli: Cli, argv: list[str], path: str) -> int:
    fs = FlagSet(path, "[OPTIONS] NETWORK CONTAINER", "Connect a container to a network",
                 args=(2, 2))
    from dockyard.cli.govalues import parse_int
    from dockyard.cli.optvalues import validate_link
    _strings(fs, "alias", "Add network-scoped alias for the container")
    _strings(fs, "driver-opt", "driver options for the network")
    fs.add("gw-priority", metavar="int", default=0, convert=parse_int,
           help="Highest gw-priority provides the default gateway. Accepts positive and "
                "negative values.")
    fs.string("ip", help='IPv4 address (e.g., "172.30.100.104")')
    fs.string("ip6", help='IPv6 address (e.g., "2001:db8::33")')
    fs.list("link", help="Add link to another container", validate=validate_link)
    _strings(fs, "link-local-ip", "Add a link-local address for the container")
    o = fs.parse(argv)
    driver_opts = {}
    for opt in o.driver_opt:
        key, eq, value = opt.partition("=")
        if not eq or not key.strip():
            raise StatusError("invalid key/value pair format in driver options")
        driver_opts[key.strip()] = value.strip()
    network, container = _ids(*o.args)
    ipam = {k: v for k, v in (("IPv4Address", o.ip), ("IPv6Address", o.ip6),
                              ("LinkLocalIPs", o.link_local_ip)) if v}
    endpoint = {
        "IPAMConfig": ipam, "Links": o.link or None, "Aliases": o.alias,
        "DriverOpts": driver_opts, "GwPriority": o.gw_priority, "NetworkID": "",
        "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
        "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
        "MacAddress": "", "DNSNames": None,
    }
    cli.client.request("POST", f"/networks/{network}/connect",
                       body={"Container": container, "EndpointConfig": endpoint}).read()
    return 0


def disconnect(cli: Cli, argv: list[str], path: str) -> int:
    fs = FlagSet(path, "[OPTIONS] NETWORK CONTAINER", "Disconnect a container from a network",
                 args=(2, 2))
    fs.bool("force", "f", help="Force the container to disconnect from a network")
    o = fs.parse(argv)
    network, container = _ids(*o.args)
    cli.client.request("POST", f"/networks/{network}/disconnect",
                       body={"Container": container, "Force": o.force}).read()
    return 0
