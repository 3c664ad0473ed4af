"""`port`: a container's published ports, from NetworkSettings.Ports of its
inspect, as docker's CLI prints them (cli/command/container/port.go).

    dockyard port CONTAINER                  every mapping, "80/tcp -> 0.0.0.0:8080"
    dockyard port CONTAINER 80[/tcp]         the host addresses of one port
"""

from __future__ import annotations

from dockyard.cli.command import PROG, Cli, StatusError
from dockyard.cli.formatting import natural_key
from dockyard.cli.pflag import FlagSet


def _host_port(binding: dict) -> str:
    """net.JoinHostPort: an IPv6 address goes in brackets."""
    host, port = binding.get("HostIp") or "", binding.get("HostPort") or ""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def port(cli: Cli, argv: list[str], path: str) -> int:
    fs = FlagSet(path, "CONTAINER [PRIVATE_PORT[/PROTO]]",
                 "List port mappings or a specific mapping for the container",
                 aliases=f"{PROG} container port, {PROG} port", args=(1, 2))
    o = fs.parse(argv)
    name = o.args[0]
    c = cli.client.get(f"/containers/{name}/json")
    ports = (c.get("NetworkSettings") or {}).get("Ports") or {}
    out = []
    if len(o.args) > 1:
        spec = o.args[1]
        number, _, proto = spec.partition("/")
        if not (number.isdigit() and number.isascii() and int(number) < 65536):
            raise StatusError(f'Error: invalid port ({number}): strconv.ParseUint: parsing '
                              f'"{number}": {_parse_error(number)}')
        frontends = ports.get(f"{number}/{proto or 'tcp'}") or []
        if not frontends:
            raise StatusError(f"Error: No public port '{spec}' published for {name}")
        out = [_host_port(b) for b in frontends]
    else:
        out = [f"{private} -> {_host_port(b)}" for private, frontends in ports.items()
               for b in frontends or []]
    if out:
        cli.out.write("\n".join(sorted(out, key=natural_key)) + "\n")
    return 0


def _parse_error(number: str) -> str:
    """strconv.ParseUint's reason: out of range for digits, else the syntax."""
    return "value out of range" if number.isdigit() and number.isascii() else "invalid syntax"
