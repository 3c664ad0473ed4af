"""A container's network: its sandbox, its endpoints, its published ports.

Docker's model, as libnetwork has it:

- the *sandbox* is the container's network namespace. The daemon makes it
  before the container exists (pinned to a file under the exec root) and hands
  its path to the runtime, which joins it instead of making a new one;
- an *endpoint* joins the sandbox to one network: an address from the
  network's IPAM, and for a bridge network a veth pair, one end in the
  sandbox (eth0, eth1, ...) and the other on the network's Linux bridge. The
  first network that is not internal gives the sandbox its default route;
- published ports are forwarded from the host to the container's address on
  that gateway network (packet rules, and a userland proxy);
- containers on user-defined networks get the embedded DNS server
  (127.0.0.11 inside their sandbox) that resolves the names of the others.

Endpoints are made when the container starts and undone when it exits, so an
address is only held while a container runs (and is kept in its record
meanwhile, which is how a restarted daemon knows what is in use). Connect and
disconnect do the same on a running container, or only change the record of
a stopped one.

Every attach is a plan of named steps with undo (network/plan.py): a start
that fails half-way leaves no namespace, link, address, rule or proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
from typing import Any, Iterator

from dockyard import errdefs
from dockyard.daemon import etcfiles
from dockyard.daemon.container import Container
from dockyard.network import ports as portspec
from dockyard.network.bridge import mac_for

log = logging.getLogger(__name__)

# Labels of letters, digits, '-' and '_' (compose's service names have them),
# 63 bytes at most, not starting with '-'; 253 bytes in all (RFC 1035, 2181).
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})"
_DNS_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


def check_alias(alias: str) -> None:
    """A network alias is a name others look up: it must be one DNS can carry."""
    if len(alias) > 253 or not _DNS_NAME.fullmatch(alias):
        raise errdefs.InvalidParameter(f"invalid network alias {alias!r}: "
                                       "not a valid DNS name")


def empty_endpoint() -> dict[str, Any]:
    """docker's EndpointSettings with nothing allocated."""
    return {"IPAMConfig": None, "Links": None, "Aliases": None, "NetworkID": "",
            "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
            "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "MacAddress": "", "DriverOpts": None}


ALLOCATED = ("EndpointID", "Gateway", "IPAddress", "IPPrefixLen", "IPv6Gateway",
             "GlobalIPv6Address", "GlobalIPv6PrefixLen", "MacAddress")


def network_mode(c: Container) -> str:
    return c.host_config.get("NetworkMode") or "default"


def settings(c: Container) -> dict[str, Any]:
    """The record's NetworkSettings (made at create)."""
    return c.record.setdefault("NetworkSettings", {"Networks": {}})


def endpoints(networks, c: Container) -> Iterator[tuple[Any, dict[str, Any]]]:
    """(network, endpoint settings) for each network of the container that exists."""
    for name, ep in list(settings(c)["Networks"].items()):
        try:
            net = networks.get(ep.get("NetworkID") or name)
        except errdefs.NotFound:
            continue
        yield net, ep


class ContainerNetworking:
    def __init__(self, config, exec_root: str, containers, networks, driver, publisher, dns,
                 emit):
        self.config = config
        self.sandbox_dir = os.path.join(exec_root, "netns")
        os.makedirs(self.sandbox_dir, exist_ok=True)
        self.containers = containers
        self.networks = networks
        self.driver = driver
        self.publisher = publisher
        self.dns = dns
        self._emit = emit
        networks.endpoints_of = self.endpoints_of
        networks.attacher = self

    # -- create -----------------------------------------------------------------
    def on_create(self, c: Container, networking_config: dict | None) -> None:
        """The networks a new container is to join, checked as dockerd checks
        them at create (the addresses come at start)."""
        mode = network_mode(c)
        endpoints = dict((networking_config or {}).get("EndpointsConfig") or {})
        if len(endpoints) > 1:
            raise errdefs.InvalidParameter(
                "Container cannot be connected to network endpoints: " + ", ".join(endpoints))
        networks: dict[str, Any] = {}
        if mode.startswith("container:"):
            self.containers.get(mode.partition(":")[2])  # (No such container)
        else:
            name = "bridge" if mode == "default" else mode
            try:
                net = self.networks.get(name)
            except errdefs.NotFound:
                # as dockerd: a network that does not exist fails the start, not the
                # create (a 404 at create would read as a missing image to the CLI)
                settings(c)["Networks"] = {name: empty_endpoint()}
                return
            requested = next(iter(endpoints.values()), None) or {}
            ep = self._endpoint_config(net, requested)
            if c.config.get("MacAddress") and not ep.get("MacAddress"):
                ep["MacAddress"] = c.config["MacAddress"]
            networks[net.name] = ep
        settings(c)["Networks"] = networks

    def _endpoint_config(self, net, requested: dict) -> dict[str, Any]:
        """An endpoint's settings from a request, with dockerd's checks
        (daemon/container_operations.go validateNetworkingConfig, updateNetworkConfig)."""
        ep = empty_endpoint()
        ipam = requested.get("IPAMConfig") or None
        if ipam and not any(ipam.get(k) for k in ("IPv4Address", "IPv6Address",
                                                   "LinkLocalIPs")):
            ipam = None
        if ipam:
            if not net.user_defined:
                raise errdefs.InvalidParameter(
                    "user specified IP address is supported on user defined networks only")
            if not net.user_subnets:
                raise errdefs.InvalidParameter(
                    "user specified IP address is supported only when connecting to networks "
                    "with user configured subnets")
            for key in ("IPv4Address", "IPv6Address"):
                if ipam.get(key) and not net.owns(ipam[key]):
                    raise errdefs.InvalidParameter(
                        f"no configured subnet or ip-range contain the IP address {ipam[key]}")
        aliases = list(requested.get("Aliases") or [])
        for alias in aliases:
            check_alias(alias)
        if aliases and not net.user_defined:
            raise errdefs.InvalidParameter(
                "network-scoped alias is supported only for containers in user defined networks")
        ep.update(IPAMConfig=ipam, Aliases=aliases or None, NetworkID=net.id,
                  Links=requested.get("Links") or None,
                  MacAddress=requested.get("MacAddress") or "",
                  DriverOpts=requested.get("DriverOpts") or None)
        return ep

    # -- start and exit ---------------------------------------------------------
    def sandbox_path(self, c: Container) -> str:
        return os.path.join(self.sandbox_dir, c.id)

    async def attach(self, c: Container) -> str | None:
        """Everything a container's network needs before its process starts;
        returns the namespace it is to join (None: the host's own)."""
        if "NetworkSettings" not in c.record:  # made before containers had networks
            self.on_create(c, None)
        mode = network_mode(c)
        if mode == "host":
            ns = settings(c)
            ns.update(SandboxID=secrets.token_hex(32), SandboxKey="/var/run/netns/default")
            return None
        if mode.startswith("container:"):
            other = self.containers.get(mode.partition(":")[2])
            if not other.running:
                raise errdefs.Conflict(
                    f"cannot join network of a non running container: {other.id}")
            return settings(other).get("SandboxKey") or None
        path = self.sandbox_path(c)
        async with contextlib.AsyncExitStack() as undo:
            await asyncio.to_thread(self.driver.create_sandbox, path)
            undo.push_async_callback(asyncio.to_thread, self.driver.delete_sandbox, path)
            ns = settings(c)
            ns.update(SandboxID=secrets.token_hex(32), SandboxKey=path)
            gateway_set = False
            for name in list(ns["Networks"]):
                if name == "bridge" and self.config.bridge == "none":
                    # as dockerd with --bridge=none: the default network is
                    # no network; the container has its loopback alone
                    del ns["Networks"][name]
                    continue
                net = self.networks.get(ns["Networks"][name].get("NetworkID") or name)
                ep = ns["Networks"].pop(name)
                ns["Networks"][net.name] = ep
                gives_gateway = not gateway_set and net.driver == "bridge" and not net.internal
                await self._join(c, net, ep, gives_gateway)
                undo.push_async_callback(self._leave, c, net, ep)
                gateway_set = gateway_set or gives_gateway
            self._set_legacy_fields(c)
            await self._publish(c)
            undo.push_async_callback(self._unpublish, c)
            if self._uses_dns(c):
                await self.dns.attach(c.id, path)
            undo.pop_all()
        return path

    async def _join(self, c: Container, net, ep: dict, gateway: bool) -> None:
        if net.driver != "bridge":
            ep.update(NetworkID=net.id, EndpointID=secrets.token_hex(32))
            self._emit_endpoint(c, net, "connect")
            return
        ipam = ep.get("IPAMConfig") or {}
        address = net.allocate(ipam.get("IPv4Address") or None)
        try:
            address6 = net.allocate6(ipam.get("IPv6Address") or None) if net.ipv6 else None
            try:
                mac = ep.get("MacAddress") or mac_for(address.ip)
                ifname = f"eth{self._interface_index(c, net)}"
                host_veth = await asyncio.to_thread(
                    self.driver.join, self.sandbox_path(c), net, ifname, str(address), mac,
                    str(net.gateway) if gateway else None,
                    str(address6) if address6 else None,
                    str(net.gateway6) if gateway and address6 else None)
            except BaseException:
                if address6:
                    net.release(address6.ip)
                raise
        except BaseException:
            net.release(address.ip)
            raise
        ep.update(NetworkID=net.id, EndpointID=secrets.token_hex(32), MacAddress=mac,
                  IPAddress=str(address.ip), IPPrefixLen=address.network.prefixlen,
                  Gateway=str(net.gateway) if net.gateway else "")
        if address6:
            ep.update(GlobalIPv6Address=str(address6.ip),
                      GlobalIPv6PrefixLen=address6.network.prefixlen,
                      IPv6Gateway=str(net.gateway6) if net.gateway6 else "")
        c.record.setdefault("Interfaces", {})[net.id] = [ifname, host_veth]
        if net.user_defined:
            aliases = list(ep.get("Aliases") or [])
            if c.short_id not in aliases:
                ep["Aliases"] = aliases + [c.short_id]
        self._emit_endpoint(c, net, "connect")

    def _emit_endpoint(self, c: Container, net, action: str) -> None:
        self._emit("network", action, net.id,
                   {"container": c.id, "name": net.name, "type": net.driver})

    def _interface_index(self, c: Container, net) -> int:
        taken = {names[0] for names in (c.record.get("Interfaces") or {}).values()}
        n = 0
        while f"eth{n}" in taken:
            n += 1
        return n

    async def _leave(self, c: Container, net, ep: dict, unplug: bool = True) -> None:
        """Undo _join. `unplug` deletes the veth now; without it, it goes with
        the sandbox (deleting a namespace removes its links in the background,
        where deleting a veth waits ~20 ms for the kernel)."""
        names = (c.record.get("Interfaces") or {}).pop(net.id, None)
        if net.driver == "bridge" and names and unplug:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(self.driver.leave, names[1])
        for key in ("IPAddress", "GlobalIPv6Address"):
            if ep.get(key):
                net.release(ep[key])
        had_endpoint = bool(ep.get("EndpointID"))
        for key in ALLOCATED:
            ep[key] = empty_endpoint()[key]
        if had_endpoint:
            self._emit_endpoint(c, net, "disconnect")

    async def release(self, c: Container) -> bool:
        """Undo attach: the container has exited (or its start failed). False
        when there was nothing to undo."""
        ns = settings(c)
        if not ns.get("SandboxKey") and not ns.get("SandboxID"):
            return False
        with contextlib.suppress(Exception):
            await self.dns.detach(c.id)
        await self._unpublish(c)
        # Containers that joined this one's namespace keep it alive: its links
        # must go now, or their addresses would be on the bridge twice.
        joined = (f"container:{c.id}", f"container:{c.name.lstrip('/')}")
        shared = any(o.running and network_mode(o) in joined
                     for o in self.containers.containers.values())
        for net, ep in endpoints(self.networks, c):
            await self._leave(c, net, ep, unplug=shared)
        c.record.pop("Interfaces", None)
        if ns.get("SandboxKey", "").startswith(self.sandbox_dir):
            await asyncio.to_thread(self.driver.delete_sandbox, ns["SandboxKey"])
        ns.update(SandboxID="", SandboxKey="", Ports={})
        self._set_legacy_fields(c)
        return True

    def _set_legacy_fields(self, c: Container) -> None:
        """The top-level fields of NetworkSettings: the default bridge's endpoint."""
        ns = settings(c)
        ep = ns["Networks"].get("bridge") if network_mode(c) in ("default", "bridge") else None
        ep = ep or empty_endpoint()
        for key in ALLOCATED:
            ns[key] = ep[key]
        ns["Bridge"] = ""

    # -- published ports --------------------------------------------------------
    def _gateway_endpoint(self, c: Container):
        """(network, endpoint) that published ports forward to: the first bridge
        network the container is on (dockerd's gateway endpoint)."""
        for net, ep in endpoints(self.networks, c):
            if ep.get("IPAddress") and net.driver == "bridge":
                return net, ep
        return None, None

    async def _publish(self, c: Container) -> None:
        hc = c.host_config
        exposed = list((c.config.get("ExposedPorts") or {}).keys())
        try:
            wanted = portspec.requests(hc.get("PortBindings"), exposed,
                                       bool(hc.get("PublishAllPorts")), self.config.ip)
        except portspec.PortError as e:
            raise errdefs.InvalidParameter(str(e)) from e
        net, ep = self._gateway_endpoint(c)
        published: list[portspec.Published] = []
        if wanted and net is not None:
            published = await self.publisher.publish(
                c, net, ep, wanted, endpoint_name=c.name.lstrip("/"))
        settings(c)["Ports"] = portspec.inspect_view(exposed, published) if net is not None else {}

    async def _unpublish(self, c: Container) -> None:
        published = portspec.from_view(settings(c).get("Ports") or {})
        net, ep = self._gateway_endpoint(c)
        await self.publisher.unpublish(c, net, ep, published)

    # -- names ------------------------------------------------------------------
    def _uses_dns(self, c: Container) -> bool:
        return any(net.user_defined for net, ep in endpoints(self.networks, c)
                   if ep.get("EndpointID"))

    def etc_endpoints(self, c: Container) -> tuple[list[str], bool]:
        """(the container's addresses, whether it resolves through the embedded DNS)."""
        addresses = []
        for ep in settings(c)["Networks"].values():
            addresses += [ep[k] for k in ("IPAddress", "GlobalIPv6Address") if ep.get(k)]
        return addresses, self._uses_dns(c)

    def endpoints_of(self, network_id: str) -> dict[str, dict[str, Any]]:
        """The containers with an endpoint on a network (network inspect's Containers)."""
        out = {}
        for c in list(self.containers.containers.values()):
            for ep in settings(c)["Networks"].values():
                if ep.get("NetworkID") == network_id and ep.get("EndpointID"):
                    v4 = f"{ep['IPAddress']}/{ep['IPPrefixLen']}" if ep.get("IPAddress") else ""
                    v6 = (f"{ep['GlobalIPv6Address']}/{ep['GlobalIPv6PrefixLen']}"
                          if ep.get("GlobalIPv6Address") else "")
                    out[c.id] = {"Name": c.name.lstrip("/"), "EndpointID": ep["EndpointID"],
                                 "MacAddress": ep.get("MacAddress", ""), "IPv4Address": v4,
                                 "IPv6Address": v6}
        return out

    # -- connect, disconnect ----------------------------------------------------
    async def connect(self, net, ref: str, endpoint_config: dict | None) -> None:
        c = self.containers.get(ref)
        async with self.containers.lock(c):
            mode = network_mode(c)
            if mode == "host" or net.driver == "host":
                raise errdefs.Forbidden("container cannot be disconnected from host network or "
                                        "connected to host network")
            if mode.startswith("container:"):
                raise errdefs.Forbidden("container sharing network namespace with another "
                                        "container or host cannot be connected to any other "
                                        "network")
            if mode == "none" or net.driver == "null":
                raise errdefs.Forbidden("container cannot be connected to multiple networks "
                                        "with one of the networks in private (none) mode")
            ns = settings(c)
            if net.name in ns["Networks"]:
                raise errdefs.Forbidden(
                    f"endpoint with name {c.name.lstrip('/')} already exists in network "
                    f"{net.name}")
            ep = self._endpoint_config(net, endpoint_config or {})
            if c.running:
                ns["Networks"][net.name] = ep
                try:
                    await self._join(c, net, ep, gateway=False)
                except BaseException:
                    ns["Networks"].pop(net.name, None)
                    raise
                if self._uses_dns(c):
                    await self.dns.attach(c.id, self.sandbox_path(c))
                await self.rewrite_etc(c)
            else:
                ns["Networks"][net.name] = ep
            self.containers.checkpoint(c)

    async def disconnect(self, net, ref: str, force: bool) -> None:
        c = self.containers.get(ref)
        async with self.containers.lock(c):
            if net.driver == "host" or network_mode(c) == "host":
                raise errdefs.Forbidden("container cannot be disconnected from host network or "
                                        "connected to host network")
            ns = settings(c)
            ep = ns["Networks"].get(net.name)
            if ep is None:
                raise errdefs.System(
                    f"container {c.id} is not connected to network {net.name}")
            if c.running:
                await self._leave(c, net, ep)
                if not self._uses_dns(c):
                    await self.dns.detach(c.id)
            del ns["Networks"][net.name]
            if c.running:
                await self.rewrite_etc(c)
            self.containers.checkpoint(c)

    async def rewrite_etc(self, c: Container) -> None:
        """/etc/hosts and resolv.conf of a running container, rewritten in place
        (they are bind-mounted: a new file would not be seen inside)."""
        await asyncio.to_thread(etcfiles.for_container, c, self.containers.data_dir(c),
                                self.etc_view(c), True)

    def etc_view(self, c: Container) -> etcfiles.NetworkView:
        addresses, dns = self.etc_endpoints(c)
        return etcfiles.NetworkView(addresses=addresses, embedded_dns=dns,
                                    host_gateway=self._host_gateway(),
                                    default_dns=self.config.dns,
                                    default_search=self.config.dns_search,
                                    default_options=self.config.dns_opts)

    def _host_gateway(self) -> str:
        """What --add-host NAME:host-gateway means: the default bridge's gateway."""
        with contextlib.suppress(errdefs.NotFound):
            gw = self.networks.get("bridge").gateway
            return str(gw) if gw else ""
        return ""

    # -- daemon restart ---------------------------------------------------------
    async def restore(self, c: Container) -> None:
        """A running container taken back: its addresses, ports and DNS are ours again."""
        ns = settings(c)
        for net, ep in endpoints(self.networks, c):
            for key in ("IPAddress", "GlobalIPv6Address"):
                if ep.get(key):
                    net.reserve(ep[key])
        published = portspec.from_view(ns.get("Ports") or {})
        net, ep = self._gateway_endpoint(c)
        if published and net is not None:
            await self.publisher.restore(c, net, ep, published,
                                         endpoint_name=c.name.lstrip("/"))
        if ns.get("SandboxKey", "").startswith(self.sandbox_dir) and self._uses_dns(c):
            with contextlib.suppress(OSError):
                await self.dns.attach(c.id, ns["SandboxKey"])

    async def remove_stale(self) -> None:
        """After the containers are restored: sandboxes and proxies of
        containers that no longer run (a crash left them) are removed."""
        running = {c.id for c in self.containers.containers.values() if c.running}
        for name in os.listdir(self.sandbox_dir):
            if name not in running:
                log.info("removing the network namespace left by %s", name[:12])
                await asyncio.to_thread(self.driver.delete_sandbox,
                                        os.path.join(self.sandbox_dir, name))
        await self.publisher.remove_stale(running)

