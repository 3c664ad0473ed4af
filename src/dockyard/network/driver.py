"""The bridge driver: what a bridge network and its endpoints are on the host.

A network is a Linux bridge holding the gateway address of each of its
subnets, plus its packet-filter rules (network/firewall.py). An endpoint is a
veth pair from a sandbox to that bridge (network/bridge.py). Sandboxes are
network namespaces pinned to files (linux/netns.py), with `lo` up.

This object only carries out; the daemon decides (which network, which
address) and remembers.
"""

from __future__ import annotations

import asyncio
import logging

from dockyard.linux import netlink, netns, sysctl
from dockyard.network import bridge
from dockyard.network.firewall import Firewall, PortMapping

log = logging.getLogger(__name__)


class BridgeDriver:
    def __init__(self, *, chain_prefix: str, iptables: bool, ip_forward: bool, ip_masq: bool,
                 userland_proxy: bool, mtu: int):
        self.firewall = Firewall(chain_prefix, enabled=iptables, userland_proxy=userland_proxy)
        self.ip_forward = ip_forward
        self.ip_masq = ip_masq
        self.userland_proxy = userland_proxy
        self.mtu = mtu

    # -- the daemon's start -----------------------------------------------------
    def setup(self) -> None:
        """Our chains, emptied of what a previous run left (every network and
        running container adds its rules again), and forwarding on."""
        if self.ip_forward:
            sysctl.write("net.ipv4.ip_forward", "1")
        self.firewall.setup()

    # -- networks (the network service calls these from the event loop) --------
    async def create_network(self, net) -> None:
        await asyncio.to_thread(self._create_network, net)

    async def restore_network(self, net) -> None:
        """At the daemon's start, after setup(): the same as creating it again."""
        await asyncio.to_thread(self._create_network, net)

    async def delete_network(self, net) -> None:
        await asyncio.to_thread(self._delete_network, net)

    def _create_network(self, net) -> None:
        """The bridge (kept if it exists: a restarted daemon finds it) and its rules."""
        if net.driver != "bridge":
            return
        gateways = [f"{p.gateway}/{p.prefixlen}" for p in net.pools if p.gateway is not None]
        bridge.ensure_bridge(net.bridge, gateways, net.mtu or self.mtu, ipv6=net.ipv6)
        if not self.userland_proxy:
            # so that a DNAT of 127.0.0.1 to a container may leave the loopback
            sysctl.write(f"net.ipv4.conf.{net.bridge}.route_localnet", "1")
        self.firewall.add_network(**self._rules_of(net))

    def _delete_network(self, net) -> None:
        if net.driver != "bridge":
            return
        self.firewall.remove_network(**self._rules_of(net))
        bridge.remove_bridge(net.bridge)

    def _rules_of(self, net) -> dict:
        """(The default bridge's options carry the daemon's --icc and --ip-masq.)"""
        icc = net.settings.icc
        masquerade = self.ip_masq and net.settings.ip_masquerade
        subnets = [str(p.subnet) for p in net.pools if p.version == 4 or net.ipv6]
        return {"bridge": net.bridge, "subnets": subnets, "internal": net.internal,
                "icc": icc, "masquerade": masquerade}

    # -- sandboxes and endpoints ------------------------------------------------
    def create_sandbox(self, path: str) -> None:
        netns.create(path)
        try:
            netlink.inside(path, lambda rtnl: rtnl.link_up("lo"))
        except BaseException:
            netns.delete(path)
            raise

    def delete_sandbox(self, path: str) -> None:
        """The namespace goes, and the veth pairs in it with it (in the
        background: the kernel's cleanup of a namespace does not wait)."""
        netns.delete(path)

    def join(self, sandbox: str, net, ifname: str, address: str, mac: str,
             gateway: str | None, address6: str | None, gateway6: str | None) -> str:
        return bridge.join(sandbox, net.bridge, ifname, address, mac, gateway=gateway,
                           address6=address6, gateway6=gateway6, mtu=net.mtu or self.mtu)

    def leave(self, host_veth: str) -> None:
        bridge.leave(host_veth)

    # -- published ports --------------------------------------------------------
    def add_ports(self, mappings: list[PortMapping]) -> None:
        self.firewall.add_ports(mappings)

    def remove_ports(self, mappings: list[PortMapping]) -> None:
        self.firewall.remove_ports(mappings)
