"""The network service: docker's network objects, their names, subnets and lifecycle.

What it owns: the records under `networks/`, the predefined networks (`none`,
`host`, and `bridge` unless the daemon runs with `-b none`), the subnets and
gateways of every network (network/ipam.py), and the rules of dockerd's
network API (daemon/network.go, api/server/router/network): names may repeat
unless CheckDuplicate is set, predefined networks cannot be made or removed,
a network with endpoints cannot be removed.

What it does not own:
- the kernel side (Linux bridges, addresses, packet rules): an injected
  driver object does it — `await driver.create_network(net)` once the request
  is valid, `await driver.delete_network(net)` on removal, and
  `await driver.restore_network(net)` for every bridge network at daemon
  start. Without a driver (None) there is no kernel side;
- endpoints: the container side sets `endpoints_of(network_id)` (who is on a
  network, for inspect and for "in use") and `attacher` (which carries out
  connect and disconnect).

Crash safety. A new network's record is written with "Pending" before the
driver makes anything, and again without it once the driver is done; a
pending record found at start is a create cut short, and is undone (driver
first, then the record). A removal asks the driver first and deletes the
record last, so a crash in between leaves a network that is restored whole.
Bad input is refused before anything is written.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import Any, Callable

from dockyard import errdefs, timefilter
from dockyard.daemon import etcfiles
from dockyard.daemon.filtering import labels_match, matches
from dockyard.daemon.network import (BRIDGE_NAME, DEFAULT_BRIDGE, DRIVER_MTU, ENABLE_ICC,
                                     ENABLE_IP_MASQUERADE, HOST_BINDING_IPV4, PREDEFINED,
                                     BridgeSettings, Network, new_id, new_record, pool_record,
                                     shown_config)
from dockyard.network import ipam
from dockyard.store.layout import Layout
from dockyard.store.records import RecordStore

log = logging.getLogger(__name__)

LIST_FILTERS = ("dangling", "driver", "id", "label", "name", "scope", "type")
PRUNE_FILTERS = ("label", "label!", "until")
# Drivers dockerd has built in, and what it says when asked for another one
# of those we do not have here.
SINGLETON_DRIVERS = {"host": "host", "null": "none"}


class NoSuchNetwork(errdefs.NotFound):
    def __init__(self, ref: str):
        super().__init__(f"network {ref} not found")


class NetworkService:
    def __init__(self, layout: Layout, config, emit: Callable[..., None], driver=None,
                 host_networks: Callable[[], list] | None = None):
        self.config = config
        self.driver = driver
        self._emit = emit
        self._host_networks = host_networks or host_networks_in_use
        self.records = RecordStore(layout.networks, "network.json")
        self.networks: dict[str, Network] = {}
        self._pending: list[Network] = []
        # Set by the container side; until then no network has endpoints.
        self.endpoints_of: Callable[[str], dict[str, dict]] = lambda network_id: {}
        self.attacher = None
        self._pools = ipam.split_pools(config.default_address_pools or ipam.DEFAULT_POOLS)
        self._next_pool = 0  # libnetwork looks for a free pool after the last one it picked
        self._lock: asyncio.Lock | None = None
        for record_id, record in self.records.load_all():
            if record is None:
                self.records.delete(record_id)  # a mkdir without a record: nothing to undo
                continue
            try:
                net = Network(record)
            except (errdefs.DockyardError, KeyError, ValueError) as e:
                log.error("ignoring the unreadable network record %s: %s", record_id, e)
                continue
            if net.pending:
                self._pending.append(net)
            else:
                self.networks[net.id] = net

    # -- start ------------------------------------------------------------------------

    async def start(self) -> None:
        """Undo creates cut short, make the predefined networks (the default
        bridge following --bridge/--bip/--fixed-cidr), and have the driver
        restore the kernel side of every bridge network."""
        for net in self._pending:
            log.info("undoing the creation of network %s cut short", net.name)
            if self.driver is not None:
                try:
                    await self.driver.delete_network(net)
                except Exception as e:  # noqa: BLE001 - it may be half-made; try our best
                    log.warning("cleaning up network %s: %s", net.name, e)
            self.records.delete(net.id)
        self._pending.clear()
        self._ensure_predefined()
        if self.driver is not None:
            for net in list(self.networks.values()):
                if net.driver == "bridge":
                    await self.driver.restore_network(net)

    def _ensure_predefined(self) -> None:
        for name, driver in (("none", "null"), ("host", "host")):
            if not any(n.name == name and n.driver == driver for n in self.networks.values()):
                self._save(Network(new_record(new_id(self.networks), name, driver)))
        self._reconcile_default_bridge()

    def _reconcile_default_bridge(self) -> None:
        """The `bridge` network as the daemon's flags describe it. A restart
        with other flags changes it (dockerd makes it afresh at every start),
        unless containers are on it: then it stays as it is until they are gone."""
        current = next((n for n in self.networks.values() if n.name == "bridge"), None)
        flags = {"Bridge": self.config.bridge, "Bip": self.config.bip,
                 "FixedCIDR": self.config.fixed_cidr}
        if current is not None and current.record.get("Flags") == flags \
                and current.options == self._default_bridge_options():
            return
        if current is not None and self.endpoints_of(current.id):
            log.warning("containers are on the default bridge: its new settings "
                        "take effect once they are gone")
            return
        if self.config.bridge == "none":
            if current is not None:
                self.records.delete(current.id)
                del self.networks[current.id]
            return
        record = self._default_bridge_record(current, flags)
        self._save(Network(record))

    def _default_bridge_options(self) -> dict[str, str]:
        """initBridgeDriver's options."""
        return {
            DEFAULT_BRIDGE: "true",
            ENABLE_ICC: _go_bool(self.config.icc),
            ENABLE_IP_MASQUERADE: _go_bool(self.config.ip_masq),
            HOST_BINDING_IPV4: self.config.ip,
            BRIDGE_NAME: self.config.bridge,
            DRIVER_MTU: str(self.config.mtu),
        }

    def _default_bridge_record(self, current: Network | None, flags: dict) -> dict[str, Any]:
        """Its subnet: --bip's, else the one its Linux bridge already has (the
        record's, when the bridge keeps its name), else the first free pool;
        its ip-range: --fixed-cidr. As dockerd, IPAM.Config shows a gateway
        only when --bip names it (or the bridge already had its address)."""
        conf: dict[str, Any] = {}
        gateway = None
        if self.config.bip:
            bip = _flag_cidr(self.config.bip, ipaddress.ip_interface)
            subnet, gateway = bip.network, str(bip.ip)
            conf = {"Subnet": str(subnet), "Gateway": gateway}
        elif current is not None and current.bridge == self.config.bridge and current.pool4:
            subnet, gateway = current.pool4.subnet, str(current.pool4.gateway)
            conf = {"Subnet": str(subnet), "Gateway": gateway}
        else:
            others = [p.subnet for n in self.networks.values() if n is not current
                      for p in n.pools]
            subnet = ipam.pick_subnet(self._pools, self._host_networks() + others)
            conf = {"Subnet": str(subnet)}
        ip_range = None
        if self.config.fixed_cidr:
            ip_range = _flag_cidr(self.config.fixed_cidr, ipam.parse_subnet)
            conf["IPRange"] = str(ip_range)
        pool = ipam.Pool(subnet, gateway, ip_range, network="bridge")
        record = new_record(current.id if current else new_id(self.networks), "bridge", "bridge")
        n = record["Network"]
        n["IPAM"]["Config"] = [conf]
        n["Options"] = self._default_bridge_options()
        record.update(Bridge=self.config.bridge, Flags=flags,
                      Pools=[pool_record(pool, user=False)])
        return record

    # -- lookups ------------------------------------------------------------------------

    def _lookup(self, ref: str, ambiguous: Callable[[int, str], str],
                hows: tuple[str, str] = ("name", "ID prefix"),
                keep: Callable[[Network], bool] = lambda net: True) -> Network:
        """Full ID, then exact name, then unique ID prefix. dockerd has this
        lookup three times over, worded three ways: `ambiguous(count, how)`."""
        by_name, by_prefix = [], []
        for net in filter(keep, self.networks.values()):
            if net.id == ref:
                return net
            if net.name == ref:
                by_name.append(net)
            if net.id.startswith(ref):
                by_prefix.append(net)
        for found, how in zip((by_name, by_prefix), hows):
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise errdefs.InvalidParameter(ambiguous(len(found), how))
        raise NoSuchNetwork(ref)

    def get(self, ref: str) -> Network:
        """dockerd's FindNetwork (containers, connect, disconnect)."""
        return self._lookup(ref, lambda n, how: f"network {ref} is ambiguous ({n} matches "
                                                f"found {how})",
                            hows=("on name", "based on ID prefix"))

    def find_unique(self, ref: str) -> Network:
        """The API router's findUniqueNetwork (remove)."""
        return self._lookup(ref, lambda n, how: f"network {ref} is ambiguous ({n} matches "
                                                f"found based on {how})")

    def inspect(self, ref: str, scope: str = "") -> dict[str, Any]:
        """GET /networks/{id}: the router's getNetwork."""
        net = self._lookup(ref, lambda n, how: f"{n} matches found based on {how}: "
                                               f"network {ref} is ambiguous",
                           keep=lambda net: not scope or net.scope == scope)
        return net.resource(self.endpoints_of(net.id))

    def bridges(self) -> list[Network]:
        return [n for n in self.networks.values() if n.driver == "bridge"]

    # -- list ---------------------------------------------------------------------------

    def list(self, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        """GET /networks. As dockerd's API since 1.28, the list leaves
        Containers empty; `dangling` still looks at the endpoints."""
        for key in filters:
            if key not in LIST_FILTERS:
                raise errdefs.InvalidParameter(f"Invalid filter '{key}'")
        nets = sorted(self.networks.values(), key=lambda n: n.created)
        return [n.resource() for n in filter_networks(nets, filters, self._in_use)]

    def _in_use(self, net: Network) -> bool:
        return bool(self.endpoints_of(net.id))

    # -- create -------------------------------------------------------------------------

    async def create(self, body: dict[str, Any]) -> dict[str, str]:
        """POST /networks/create (dockerd's createNetwork and libnetwork's NewNetwork)."""
        async with self._serial():  # names and subnets are checked and taken as one step
            name = body.get("Name") or ""
            if name in PREDEFINED:
                raise errdefs.Forbidden(
                    f"operation is not permitted on predefined {name} network ")
            warning = ""
            # GetNetworkByName: no name means the default network.
            same = next((n for n in self.networks.values() if n.name == (name or "bridge")),
                        None)
            if same is not None:
                if body.get("CheckDuplicate"):
                    raise errdefs.Conflict(f"network with name {name} already exists")
                warning = f"Network with name {same.name} (id : {same.id}) already exists"
            net = self._new_network(body)
            net.record["Pending"] = True
            self._save_record(net)
            if self.driver is not None:
                try:
                    await self.driver.create_network(net)
                except BaseException:
                    self.records.delete(net.id)
                    raise
            del net.record["Pending"]
            self._save(net)
        self.emit(net, "create")
        return {"Id": net.id, "Warning": warning}

    def _new_network(self, body: dict[str, Any]) -> Network:
        """The network a create body asks for, checked in dockerd's order;
        nothing is stored or held if a check fails."""
        name = body.get("Name") or ""
        if not name.strip():
            raise errdefs.System(f"invalid name: {name}")  # libnetwork's BadRequest: 500
        driver = body.get("Driver") or "bridge"
        if driver in SINGLETON_DRIVERS:
            raise errdefs.Forbidden(f'only one instance of "{driver}" network is allowed')
        if driver != "bridge":
            raise errdefs.NotFound(f'plugin "{driver}" not found')
        if body.get("ConfigOnly") or (body.get("ConfigFrom") or {}).get("Network"):
            raise errdefs.NotImplemented("config-only networks are not supported")
        scope = body.get("Scope") or "local"
        if scope == "swarm":
            raise errdefs.Forbidden("Cannot create a multi-host network from a worker node. "
                                    "Please create the network from a manager node.")
        if body.get("Ingress"):
            raise errdefs.Forbidden("Ingress network can only be global scope network")
        ipam_body = body.get("IPAM") or {}
        ipam_driver = ipam_body.get("Driver") or "default"
        if ipam_driver != "default":
            raise errdefs.NotFound(f'plugin "{ipam_driver}" not found')
        configs = [dict(c) for c in ipam_body.get("Config") or []]
        v4, v6 = split_ipam_config(configs)
        record = new_record(new_id(self.networks), name, driver)
        n = record["Network"]
        n.update(Scope=scope, EnableIPv6=bool(body.get("EnableIPv6")),
                 Internal=bool(body.get("Internal")), Attachable=bool(body.get("Attachable")),
                 Options=dict(body.get("Options") or {}), Labels=dict(body.get("Labels") or {}))
        n["IPAM"].update(Driver=ipam_driver, Options=ipam_body.get("Options"))
        settings = BridgeSettings(n["Options"])  # bad options are refused before IPAM
        pools, shown = self._allocate_pools(name, v4, 4)
        if n["EnableIPv6"]:
            pools6, shown6 = self._allocate_pools(name, v6, 6, pools)
            pools += pools6
        else:
            shown6 = [c for c in v6 if c.get("Subnet")]
        if sum(p.version == 4 for p in pools) > 1 or sum(p.version == 6 for p in pools) > 1:
            raise errdefs.Forbidden("bridge driver doesn't support multiple subnets")
        n["IPAM"]["Config"] = shown + shown6
        bridge = settings.name or f"br-{n['Id'][:12]}"
        for other in self.bridges():
            if other.bridge == bridge:
                raise errdefs.Forbidden(
                    f"cannot create network {n['Id']} ({bridge}): conflicts with network "
                    f"{other.id} ({other.bridge}): networks have same bridge name")
        record.update(Bridge=bridge,
                      Pools=[pool_record(p, user=bool(c)) for p, c in pools_with_config(
                          pools, v4 + v6)])
        return Network(record)

    def _allocate_pools(self, name: str, configs: list[dict], version: int,
                        also: list[ipam.Pool] = ()) -> tuple[list[ipam.Pool], list[dict]]:
        """libnetwork's ipamAllocateVersion: a pool for each config (a picked
        one when there is none), its gateway, its auxiliary addresses.
        Returns the pools and what IPAM.Config is to show for them."""
        taken = [p.subnet for net in self.networks.values() for p in net.pools]
        taken += [p.subnet for p in also]
        pools: list[ipam.Pool] = []
        shown: list[dict] = []
        for conf in configs or [{}]:
            gateway = conf.get("Gateway") or None
            if gateway is not None:
                try:
                    ipaddress.ip_address(gateway)
                except ValueError:
                    raise errdefs.System(
                        f"invalid gateway address {gateway} in Ipam configuration") from None
            if conf.get("Subnet"):
                subnet = ipam.parse_subnet(conf["Subnet"])
                if any(ipam.overlaps(subnet, t) for t in taken):
                    raise ipam.PoolOverlap()
                ip_range = _parse_range(conf)
            else:
                if version == 6:
                    raise ipam.NoAvailablePool(6)
                subnet = ipam.pick_subnet(self._pools, self._host_networks() + taken,
                                          self._next_pool)
                self._next_pool = self._pools.index(subnet) + 1
                ip_range = None
            pool = ipam.Pool(subnet, gateway, ip_range, conf.get("AuxiliaryAddresses"), name)
            taken.append(subnet)
            pools.append(pool)
            if conf.get("Subnet"):
                shown.append(shown_config(conf))
            else:
                shown.append({"Subnet": str(subnet), "Gateway": str(pool.gateway)})
        return pools, shown

    # -- remove, prune ------------------------------------------------------------------

    def _serial(self) -> asyncio.Lock:
        """Creates and removals, one at a time (libnetwork's networkLocker)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def remove(self, ref: str) -> None:
        """DELETE /networks/{id}."""
        async with self._serial():
            await self._delete(self.find_unique(ref))

    async def _delete(self, net: Network) -> None:
        if net.predefined:
            raise errdefs.Forbidden(f"{net.name} is a pre-defined network and cannot be removed")
        if self.endpoints_of(net.id):
            raise errdefs.Forbidden(f"error while removing network: network {net.name} "
                                    f"id {net.id} has active endpoints")
        if self.driver is not None:
            await self.driver.delete_network(net)
        self.records.delete(net.id)
        self.networks.pop(net.id, None)
        self.emit(net, "destroy")

    async def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        """POST /networks/prune: user networks without endpoints that the filters keep."""
        for key in filters:
            if key not in PRUNE_FILTERS:
                raise errdefs.InvalidParameter(f"Invalid filter '{key}'")
        until = None
        if "until" in filters:
            if len(filters["until"]) > 1:
                raise timefilter.TimeError("more than one until filter specified")
            until = timefilter.until_ns(filters["until"][0])
        deleted = []
        async with self._serial():
            for net in sorted(self.networks.values(), key=lambda n: n.created):
                if self._prunable(net, filters, until):
                    try:
                        await self._delete(net)
                    except errdefs.DockyardError as e:
                        log.warning("could not remove local network %s: %s", net.name, e)
                        continue
                    deleted.append(net.name)
        self._emit("network", "prune", "", {"reclaimed": "0"})
        return {"NetworksDeleted": deleted or None}

    @staticmethod
    def _prunable(net: Network, filters: dict[str, list[str]], until: int | None) -> bool:
        if net.predefined or net.config_only:
            return False
        if until is not None and timefilter.rfc3339_ns(net.created) > until:
            return False
        if "label" in filters and not labels_match(net.labels, filters["label"]):
            return False
        return not ("label!" in filters and labels_match(net.labels, filters["label!"]))

    # -- connect, disconnect ----------------------------------------------------------

    async def connect(self, ref: str, container: str, endpoint_config: dict | None) -> None:
        net = self.get(ref)
        await self._attacher().connect(net, container, endpoint_config or {})

    async def disconnect(self, ref: str, container: str, force: bool = False) -> None:
        net = self.get(ref)
        await self._attacher().disconnect(net, container, force)

    def _attacher(self):
        if self.attacher is None:
            raise errdefs.NotImplemented("connecting containers to networks is not supported")
        return self.attacher

    # -- records and events -----------------------------------------------------------

    def emit(self, net: Network, action: str) -> None:
        self._emit("network", action, net.id, {"name": net.name, "type": net.driver})

    def _save_record(self, net: Network) -> None:
        self.records.save(net.id, net.record)

    def _save(self, net: Network) -> None:
        self._save_record(net)
        self.networks[net.id] = net


# -- pure helpers (unit-tested) -----------------------------------------------------------

def filter_networks(nets: list[Network], filters: dict[str, list[str]],
                    in_use: Callable[[Network], bool]) -> list[Network]:
    """daemon/network/filter.go FilterNetworks: driver and scope match exactly,
    name and id as unanchored regular expressions, label as key or key=value,
    then dangling, then type (builtin, custom)."""
    out = []
    for net in nets:
        if "driver" in filters and net.driver not in filters["driver"]:
            continue
        if "name" in filters and not matches(filters["name"], net.name):
            continue
        if "id" in filters and not matches(filters["id"], net.id):
            continue
        if "label" in filters and not labels_match(net.labels, filters["label"]):
            continue
        if "scope" in filters and net.scope not in filters["scope"]:
            continue
        out.append(net)
    if filters.get("dangling"):
        values = filters["dangling"]
        if len(values) > 1:
            raise errdefs.InvalidParameter('got more than one value for filter key "dangling"')
        if values[0] not in ("0", "false", "1", "true"):
            raise errdefs.InvalidParameter(
                "invalid value for filter 'dangling', must be \"true\" (or \"1\"), "
                "or \"false\" (or \"0\")")
        dangling = values[0] in ("1", "true")
        out = [n for n in out if (not n.predefined and not in_use(n)) == dangling]
    if "type" in filters:
        typed = []
        for value in filters["type"]:
            if value not in ("builtin", "custom"):
                raise errdefs.System(f"invalid filter: 'type'='{value}'")
            typed += [n for n in out if n.predefined == (value == "builtin")]
        out = typed
    return out


def split_ipam_config(configs: list[dict]) -> tuple[list[dict], list[dict]]:
    """daemon/network.go getIpamConfig: configs by their subnet's family."""
    v4, v6 = [], []
    for conf in configs:
        subnet = conf.get("Subnet") or ""
        try:
            parsed = ipam.parse_subnet(subnet)
        except ValueError:
            raise errdefs.System(
                f"Invalid subnet {subnet} : invalid CIDR address: {subnet}") from None
        (v4 if parsed.version == 4 else v6).append(conf)
    return v4, v6


def pools_with_config(pools: list[ipam.Pool], configs: list[dict]):
    """Each pool with the config it came from (None for a picked one)."""
    by_subnet = {str(ipam.parse_subnet(c["Subnet"])): c for c in configs if c.get("Subnet")}
    return [(p, by_subnet.get(str(p.subnet))) for p in pools]


def _parse_range(conf: dict) -> ipam.Subnet | None:
    text = conf.get("IPRange") or ""
    if not text:
        return None
    try:
        ip_range = ipam.parse_subnet(text)
    except ValueError:
        ip_range = None
    if ip_range is None or ip_range.version != ipam.parse_subnet(conf["Subnet"]).version:
        raise errdefs.System(
            f'failed to parse pool request for address space "LocalDefault" pool '
            f'"{conf["Subnet"]}" subpool "{text}": Invalid Address SubPool')
    return ip_range


def _flag_cidr(text: str, parse: Callable[[str], Any]):
    """--bip or --fixed-cidr, read as net.ParseCIDR reads it."""
    try:
        return parse(text)
    except ValueError:
        raise errdefs.InvalidParameter(f"invalid CIDR address: {text}") from None


def _go_bool(value: bool) -> str:
    return "true" if value else "false"


def host_networks_in_use() -> list:
    """What a picked subnet must not overlap on the host (netutils.FindAvailableNetwork):
    the main table's IPv4 routes, and the nameservers of /etc/resolv.conf."""
    import socket

    from dockyard.linux import netlink
    found = list(netlink.routes(socket.AF_INET))
    for server in etcfiles.host_nameservers():
        try:
            found.append(ipaddress.ip_network(server.split("%")[0]))
        except ValueError:
            pass
    return found
