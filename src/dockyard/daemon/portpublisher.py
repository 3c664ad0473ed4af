"""Published ports: a host port given out, held, and forwarded to a container.

Each published port is three things, made in this order and undone in reverse:

1. the port, given out by the allocator (a free one when none was asked for),
   so that two containers never get the same one;
2. a listening socket on it, bound by the daemon (so that "address already in
   use" fails the start that asked), handed to the container's userland proxy
   (network/proxy.py), which serves connections the packet rules cannot:
   those to 127.0.0.1 and those from the host itself;
3. the packet rules (DNAT to the container's address), which serve everything
   that arrives from elsewhere without passing through a process.

The proxy and the rules outlive the daemon; after a restart the allocator is
told again what the running containers hold (their NetworkSettings.Ports).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

from dockyard import errdefs
from dockyard.linux import sysctl
from dockyard.network import portallocator
from dockyard.network.firewall import PortMapping
from dockyard.network.ports import Published, Request

log = logging.getLogger(__name__)

# How many busy ports a request for "any free port" skips before giving up.
BIND_ATTEMPTS = 16


class PortPublisher:
    def __init__(self, driver, proxies):
        """`proxies` is None when the daemon runs with --userland-proxy=false."""
        self.driver = driver
        self.proxies = proxies
        try:
            text = sysctl.read("net.ipv4.ip_local_port_range")
        except OSError:
            text = None
        self.allocator = portallocator.PortAllocator(portallocator.ephemeral_range(text))

    async def publish(self, c, net, ep: dict, wanted: list[Request],
                      endpoint_name: str) -> list[Published]:
        if net.internal:  # dockerd ignores -p on an internal network: no way in
            return []
        published: list[Published] = []
        bindings = []
        try:
            for r in wanted:
                port, sock = self._take(r)
                published.append(Published(r.proto, r.container_port, r.host_ip, port))
                if sock is not None:
                    bindings.append(self._binding(r.proto, sock, ep, r.container_port))
            mappings = self._mappings(net, ep, published)
            await asyncio.to_thread(self.driver.add_ports, mappings)
            try:
                if bindings:
                    await asyncio.to_thread(self.proxies.start, c.id, bindings, wait=False)
                    bindings = []  # (start has taken the sockets)
            except BaseException:
                await asyncio.to_thread(self.driver.remove_ports, mappings)
                raise
        except errdefs.DockyardError as e:
            self._give_back(published, bindings)
            raise errdefs.System(f"driver failed programming external connectivity on "
                                 f"endpoint {endpoint_name} ({ep['EndpointID']}): {e}") from e
        except BaseException:
            self._give_back(published, bindings)
            raise
        return published

    def _take(self, r: Request):
        """(the host port, its bound socket or None without a proxy)."""
        from dockyard.network.proxies import ProxyStartFailed, bind

        exact = r.host_port_start and r.host_port_start == r.host_port_end
        busy = []
        try:
            for _ in range(1 if exact else BIND_ATTEMPTS):
                port = self.allocator.request(r.proto, r.host_ip, r.host_port_start,
                                              r.host_port_end)
                if self.proxies is None:
                    return port, None
                try:
                    return port, bind(r.host_ip, port, r.proto)
                except ProxyStartFailed:
                    busy.append(port)  # in use outside the daemon: try the next one
                    if exact or len(busy) == BIND_ATTEMPTS:
                        raise
            raise portallocator.AllPortsAllocated()
        finally:
            for port in busy:
                self.allocator.release(r.proto, r.host_ip, port)

    @staticmethod
    def _binding(proto: str, sock, ep: dict, container_port: int):
        from dockyard.network.proxies import Binding
        return Binding(proto, sock, ep["IPAddress"], container_port)

    @staticmethod
    def _mappings(net, ep: dict, published: list[Published]) -> list[PortMapping]:
        return [PortMapping(p.proto, p.host_ip, p.host_port, ep["IPAddress"], p.container_port,
                            net.bridge) for p in published]

    def _give_back(self, published: list[Published], bindings) -> None:
        for b in bindings:
            b.sock.close()
        for p in published:
            self.allocator.release(p.proto, p.host_ip, p.host_port)

    async def unpublish(self, c, net, ep: dict | None, published: list[Published]) -> None:
        if self.proxies is not None:
            await asyncio.to_thread(self.proxies.stop, c.id)
        if published and net is not None and ep is not None and ep.get("IPAddress"):
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.driver.remove_ports,
                                        self._mappings(net, ep, published))
        for p in published:
            self.allocator.release(p.proto, p.host_ip, p.host_port)

    async def restore(self, c, net, ep: dict, published: list[Published],
                      endpoint_name: str) -> None:
        """A running container taken back by a new daemon: its ports are its
        own again, its rules are back (the chains were emptied at start), and
        its proxy, which kept serving, is found (or started again)."""
        for p in published:
            with contextlib.suppress(errdefs.DockyardError):
                self.allocator.request(p.proto, p.host_ip, p.host_port)
        await asyncio.to_thread(self.driver.add_ports, self._mappings(net, ep, published))
        if self.proxies is None or await asyncio.to_thread(self.proxies.find, c.id):
            return
        from dockyard.network.proxies import bind
        log.info("container %s: its userland proxy is gone; starting it again", c.short_id)
        bindings = []
        try:
            for p in published:
                bindings.append(self._binding(p.proto, bind(p.host_ip, p.host_port, p.proto), ep,
                                              p.container_port))
            await asyncio.to_thread(self.proxies.start, c.id, bindings, wait=False)
        except errdefs.DockyardError as e:
            for b in bindings:
                b.sock.close()
            log.warning("container %s (%s): its published ports are served by the packet "
                        "rules only: %s", c.short_id, endpoint_name, e)

    async def remove_stale(self, running: set[str]) -> None:
        if self.proxies is not None and os.path.isdir(self.proxies.pidfile_dir):
            await asyncio.to_thread(self.proxies.reap_stale, running)
