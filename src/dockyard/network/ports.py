"""Container ports in docker's words: "80/tcp" keys, the bindings a container
asks for (HostConfig.PortBindings, -P) and the two ways the API shows them
(NetworkSettings.Ports in inspect, the "Ports" list of `ps`).

Pure: the daemon allocates the host ports and programs the kernel elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

PROTOCOLS = ("tcp", "udp", "sctp")


class PortError(ValueError):
    pass


def parse_key(key: str) -> tuple[int, str]:
    """"80/tcp" → (80, "tcp"); "80" means tcp, as docker's nat.NewPort."""
    number, _, proto = key.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in PROTOCOLS or not number.isdigit() or not 0 < int(number) < 65536:
        raise PortError(f"invalid port specification: {key!r}")
    return int(number), proto


def parse_host_port(text: str) -> tuple[int, int]:
    """A HostPort: "" (any), "8080", or a range "8000-8010" to pick from."""
    if not text:
        return 0, 0
    first, _, last = text.partition("-")
    try:
        start, end = int(first), int(last or first)
    except ValueError:
        raise PortError(f"invalid port specification: {text!r}") from None
    if not (0 <= start <= end < 65536):
        raise PortError(f"invalid port specification: {text!r}")
    return start, end


@dataclass(frozen=True)
class Request:
    """One host binding a container asks for; host_port 0..0 means any free port."""
    proto: str
    container_port: int
    host_ip: str
    host_port_start: int
    host_port_end: int


@dataclass(frozen=True)
class Published:
    """A binding as made: the host address and port now forwarded to the container."""
    proto: str
    container_port: int
    host_ip: str
    host_port: int

    @property
    def key(self) -> str:
        return f"{self.container_port}/{self.proto}"


def requests(port_bindings: dict[str, Any] | None, exposed: Iterable[str],
             publish_all: bool, default_ip: str) -> list[Request]:
    """What to publish: every PortBindings entry, and with -P every exposed
    port that has none, on a free port. A binding without HostIp takes the
    daemon's --ip (0.0.0.0 unless set)."""
    bindings = dict(port_bindings or {})
    if publish_all:
        for key in exposed:
            if not bindings.get(key):
                bindings[key] = [{"HostIp": "", "HostPort": ""}]
    out = []
    for key in sorted(bindings, key=_key_order):
        port, proto = parse_key(key)
        for b in bindings[key] or []:
            start, end = parse_host_port(str((b or {}).get("HostPort") or ""))
            host_ip = (b or {}).get("HostIp") or default_ip
            out.append(Request(proto, port, host_ip, start, end))
    return out


def _key_order(key: str) -> tuple[int, str]:
    try:
        return parse_key(key)
    except PortError:
        return 0, key  # reported by requests()


def inspect_view(exposed: Iterable[str], published: Iterable[Published]) -> dict[str, Any]:
    """NetworkSettings.Ports of a running container: each exposed or published
    port, with its host bindings or null."""
    view: dict[str, Any] = {}
    for key in exposed:
        port, proto = parse_key(key)
        view[f"{port}/{proto}"] = None
    for p in published:
        view.setdefault(p.key, None)
        view[p.key] = (view[p.key] or []) + [{"HostIp": p.host_ip, "HostPort": str(p.host_port)}]
    return view


def list_view(ports: dict[str, Any]) -> list[dict[str, Any]]:
    """The `ps` list's Ports, from NetworkSettings.Ports: one entry per
    binding, and one without a public port for each port only exposed."""
    out = []
    for key, bindings in ports.items():
        port, proto = parse_key(key)
        if not bindings:
            out.append({"PrivatePort": port, "Type": proto})
        for b in bindings or []:
            out.append({"IP": b["HostIp"], "PrivatePort": port,
                        "PublicPort": int(b["HostPort"]), "Type": proto})
    return out


def from_view(ports: dict[str, Any]) -> list[Published]:
    """The bindings recorded in NetworkSettings.Ports (a daemon restart reads them back)."""
    out = []
    for key, bindings in (ports or {}).items():
        port, proto = parse_key(key)
        for b in bindings or []:
            out.append(Published(proto, port, b["HostIp"], int(b["HostPort"])))
    return out
