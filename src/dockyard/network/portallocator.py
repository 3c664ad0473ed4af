"""Host ports for published container ports, as dockerd's port allocator
(libnetwork/portallocator).

The allocator remembers, per protocol and host IP, which ports it has given
out. A request names one port (`-p 8080:80`), a range to pick from
(`-p 8000-8010:80`), or none (`-p 80`, `-P`): then a port of the ephemeral
range, the one the kernel uses for outgoing connections
(/proc/sys/net/ipv4/ip_local_port_range, which the caller reads and hands to
`ephemeral_range`). Like dockerd, the search for a free port starts after the
last port that range gave out and wraps around, so a port just released is
not handed out again at once (a client may still hold a connection to it).

One thing dockerd leaves to bind(2) is decided here: the wildcard address of
a family (0.0.0.0, ::) overlaps every address of that family, so 0.0.0.0:8080
and 127.0.0.1:8080 cannot both be given out. dockerd finds that out only when
its proxy's bind fails, or not at all without the proxy; refusing it here gives
the same answer with or without one. IPv4 and IPv6 do not overlap: our IPv6
sockets are IPV6_V6ONLY, as Go's.

Pure: no sockets, no files. Not thread-safe: the daemon calls it from its
event loop.
"""

from __future__ import annotations

import ipaddress
from typing import Iterable

from dockyard import errdefs
from dockyard.network.ports import PROTOCOLS

# dockerd's fallback when ip_local_port_range cannot be read or parsed.
DEFAULT_EPHEMERAL_RANGE = (49153, 60999)


class PortAlreadyAllocated(errdefs.System):
    """dockerd's ErrPortAlreadyAllocated. A 500, as dockerd's: libnetwork wraps
    it as an internal error ("driver failed programming external connectivity
    on endpoint NAME (ID): Bind for 0.0.0.0:8080 failed: port is already
    allocated")."""

    def __init__(self, ip: str, port: int):
        # ip:port as dockerd prints it, also for IPv6 ("Bind for :::80 failed").
        super().__init__(f"Bind for {ip}:{port} failed: port is already allocated")
        self.ip, self.port = ip, port


class AllPortsAllocated(errdefs.System):
    def __init__(self) -> None:
        super().__init__("all ports are allocated")


def ephemeral_range(text: str | None) -> tuple[int, int]:
    """The range of /proc/sys/net/ipv4/ip_local_port_range's content ("32768\\t60999\\n"),
    or dockerd's fallback when it is missing (None) or unreadable."""
    try:
        first, last = (int(field) for field in (text or "").split())
    except ValueError:
        return DEFAULT_EPHEMERAL_RANGE
    if not 0 < first <= last < 65536:
        return DEFAULT_EPHEMERAL_RANGE
    return first, last


class PortAllocator:
    """Ports given out per (protocol, host IP); see the module docstring.

    `request()` returns the port given out or raises; `release()` gives it back.
    After a daemon restart, the ports of the containers still running are
    taken again with `request()` of their exact port before anything new is
    allocated."""

    def __init__(self, ephemeral: tuple[int, int] = DEFAULT_EPHEMERAL_RANGE):
        self.ephemeral = ephemeral
        self._used: dict[tuple[str, str], set[int]] = {}
        # (proto, ip, first, last) -> the last port this range gave out: the next
        # search starts after it. dockerd keeps one cursor per range per address.
        self._last: dict[tuple[str, str, int, int], int] = {}

    def request(self, proto: str, host_ips: str | Iterable[str], start: int = 0,
                end: int | None = None) -> int:
        """Give out a port for `proto` on each of `host_ips` (one port for all of
        them, as dockerd does for a binding on both 0.0.0.0 and ::).

        start > 0 and end None or equal: exactly that port. start < end: a
        free port of that range. start 0 (end None or 0): a free port of the
        ephemeral range.
        A host IP of "" is 0.0.0.0, dockerd's default binding address."""
        if proto not in PROTOCOLS:
            raise errdefs.InvalidParameter("unknown protocol")
        ips = [_normalize(ip) for ip in ([host_ips] if isinstance(host_ips, str) else host_ips)]
        if not ips:
            raise errdefs.InvalidParameter("no host address to allocate a port on")
        if end is None:
            end = start
        if start and start == end:
            for ip in ips:
                if self._taken(proto, ip, start):
                    raise PortAlreadyAllocated(ip, start)
            self._take(proto, ips, start)
            return start
        first, last = (start, end) if (start or end) else self.ephemeral
        if not 0 < first < last < 65536:
            raise errdefs.InvalidParameter(f"invalid port range: {start}-{end}")
        cursor = (proto, ips[0], first, last)
        port = self._last.get(cursor, last)
        for _ in range(last - first + 1):
            port = first if port >= last else port + 1
            if not any(self._taken(proto, ip, port) for ip in ips):
                self._take(proto, ips, port)
                for ip in ips:
                    self._last[(proto, ip, first, last)] = port
                return port
        raise AllPortsAllocated()

    def release(self, proto: str, host_ip: str, port: int) -> None:
        """Give a port back; releasing one not given out is not an error."""
        used = self._used.get((proto, _normalize(host_ip)))
        if used is not None:
            used.discard(port)

    def release_all(self) -> None:
        self._used.clear()
        self._last.clear()

    def in_use(self, proto: str, host_ip: str) -> frozenset[int]:
        return frozenset(self._used.get((proto, _normalize(host_ip)), ()))

    def _take(self, proto: str, ips: list[str], port: int) -> None:
        for ip in ips:
            self._used.setdefault((proto, ip), set()).add(port)

    def _taken(self, proto: str, ip: str, port: int) -> bool:
        """Whether `port` on `ip` overlaps a port given out: the same address,
        or the wildcard of the same family on either side."""
        if port in self._used.get((proto, ip), ()):
            return True
        wildcard = _wildcard(ip)
        if ip != wildcard:
            return port in self._used.get((proto, wildcard), ())
        return any(port in ports for (p, other), ports in self._used.items()
                   if p == proto and other != ip and _wildcard(other) == wildcard)


def _normalize(ip: str) -> str:
    """One spelling per address ("::0001" is "::1"), so that lookups match."""
    if not ip:
        return "0.0.0.0"
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        raise errdefs.InvalidParameter(f"invalid host IP address: {ip}") from None


def _wildcard(ip: str) -> str:
    return "::" if ":" in ip else "0.0.0.0"
