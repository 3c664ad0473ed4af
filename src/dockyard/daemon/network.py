"""One network: its record, its settings, and the address pools it hands out.

The record is what `networks/<id>/network.json` holds:

    {"Version": 1,
     "Network": {docker's NetworkResource without Containers: Name, Id, Created,
                 Scope, Driver, EnableIPv6, IPAM, Internal, Attachable, Ingress,
                 ConfigFrom, ConfigOnly, Options, Labels},
     "Bridge": "br-0123456789ab",   the Linux bridge (bridge driver only)
     "Pools": [{"Subnet", "Gateway", "IPRange"?, "AuxiliaryAddresses"?, "User"}],
     "Flags": {"Bridge", "Bip", "FixedCIDR"}   the default bridge only: the daemon
                                    flags it was made from
     "Pending": true}               only while the kernel side is being made

"Pools" are the subnets actually in use, with the gateway IPAM gave them
(IPAM.Config shows only what the user asked for, as dockerd shows it, so it
may lack a gateway); "User" says the user chose that subnet. The addresses
endpoints hold are not recorded here: they are in the containers' records.
"""

from __future__ import annotations

import copy
import ipaddress
import secrets
from typing import Any

from dockyard import errdefs
from dockyard.strconv import parse_bool
from dockyard.daemon.container import now_rfc3339
from dockyard.network import ipam

VERSION = 1

# Names no user network may take (runconfig.IsPreDefinedNetwork).
PREDEFINED = ("bridge", "host", "none", "default")

# The bridge driver's options (libnetwork drivers/bridge/labels.go, netlabel).
BRIDGE_NAME = "com.docker.network.bridge.name"
DEFAULT_BRIDGE = "com.docker.network.bridge.default_bridge"
ENABLE_ICC = "com.docker.network.bridge.enable_icc"
ENABLE_IP_MASQUERADE = "com.docker.network.bridge.enable_ip_masquerade"
HOST_BINDING_IPV4 = "com.docker.network.bridge.host_binding_ipv4"
INHIBIT_IPV4 = "com.docker.network.bridge.inhibit_ipv4"
DRIVER_MTU = "com.docker.network.driver.mtu"
ENABLE_IPV6 = "com.docker.network.enable_ipv6"

_BOOL_OPTIONS = (ENABLE_IPV6, ENABLE_IP_MASQUERADE, ENABLE_ICC, INHIBIT_IPV4, DEFAULT_BRIDGE)


def _parse_error(label: str, value: str, reason: str) -> errdefs.System:
    # libnetwork's BadRequest: dockerd answers it with 500.
    return errdefs.System(f"failed to parse {label} value: {value} ({reason})")


class BridgeSettings:
    """The bridge driver's reading of a network's Options (fromLabels)."""

    def __init__(self, options: dict[str, str]):
        self.name = ""
        self.mtu = 0
        self.icc = True
        self.ip_masquerade = True
        self.default_bridge = False
        flags: dict[str, bool] = {}
        for label, value in options.items():
            if label == BRIDGE_NAME:
                self.name = value
            elif label == DRIVER_MTU:
                try:
                    self.mtu = int(value, 10)
                except ValueError:
                    raise _parse_error(label, value,
                                       f'strconv.Atoi: parsing "{value}": invalid syntax') from None
            elif label in _BOOL_OPTIONS:
                try:
                    flags[label] = parse_bool(value)
                except ValueError as e:
                    raise _parse_error(label, value, str(e)) from None
            elif label == HOST_BINDING_IPV4:
                try:
                    ipaddress.ip_address(value)
                except ValueError:
                    raise _parse_error(label, value, "nil ip") from None
        self.icc = flags.get(ENABLE_ICC, True)
        self.ip_masquerade = flags.get(ENABLE_IP_MASQUERADE, True)
        self.default_bridge = flags.get(DEFAULT_BRIDGE, False)
        if self.mtu < 0:
            raise errdefs.System(f"invalid MTU number: {self.mtu}")


class Network:
    """A network as the daemon holds it: record, settings, and live pools."""

    def __init__(self, record: dict[str, Any]):
        self.record = record
        n = record["Network"]
        self.id: str = n["Id"]
        self.name: str = n["Name"]
        self.driver: str = n["Driver"]
        self.created: str = n["Created"]
        self.bridge: str | None = record.get("Bridge")
        self.settings = BridgeSettings(n.get("Options") or {}) if self.driver == "bridge" \
            else None
        self.pools: list[ipam.Pool] = [
            ipam.Pool(p["Subnet"], p.get("Gateway") or None, p.get("IPRange") or None,
                      p.get("AuxiliaryAddresses") or None, self.name)
            for p in record.get("Pools") or []]

    # -- what docker shows --------------------------------------------------------

    def resource(self, containers: dict[str, Any] | None = None) -> dict[str, Any]:
        """docker's NetworkResource, its maps in Go's (sorted) key order."""
        n = copy.deepcopy(self.record["Network"])
        ipam_conf = n["IPAM"]
        if ipam_conf.get("Options") is not None:
            ipam_conf["Options"] = _sorted(ipam_conf["Options"])
        for conf in ipam_conf.get("Config") or []:
            if conf.get("AuxiliaryAddresses"):
                conf["AuxiliaryAddresses"] = _sorted(conf["AuxiliaryAddresses"])
        out: dict[str, Any] = {}
        for key in ("Name", "Id", "Created", "Scope", "Driver", "EnableIPv6", "IPAM",
                    "Internal", "Attachable", "Ingress", "ConfigFrom", "ConfigOnly"):
            out[key] = n[key]
        out["Containers"] = dict(sorted((containers or {}).items()))
        out["Options"] = _sorted(n.get("Options") or {})
        out["Labels"] = _sorted(n.get("Labels") or {})
        return out

    @property
    def labels(self) -> dict[str, str]:
        return self.record["Network"].get("Labels") or {}

    @property
    def options(self) -> dict[str, str]:
        return self.record["Network"].get("Options") or {}

    @property
    def scope(self) -> str:
        return self.record["Network"]["Scope"]

    @property
    def internal(self) -> bool:
        return bool(self.record["Network"]["Internal"])

    @property
    def enable_ipv6(self) -> bool:
        return bool(self.record["Network"]["EnableIPv6"])

    @property
    def config_only(self) -> bool:
        return bool(self.record["Network"].get("ConfigOnly"))

    @property
    def pending(self) -> bool:
        return bool(self.record.get("Pending"))

    # -- kinds --------------------------------------------------------------------

    @property
    def predefined(self) -> bool:
        return self.name in PREDEFINED

    @property
    def user_defined(self) -> bool:
        """A network the user made (not bridge, host or none): it has the
        embedded DNS, aliases, and addresses the user may choose."""
        return not self.predefined

    @property
    def is_default_bridge(self) -> bool:
        return self.settings is not None and self.settings.default_bridge

    @property
    def user_subnets(self) -> bool:
        """Whether the user configured its subnets (only then may containers
        ask for an address of their own)."""
        return any(p.get("User") for p in self.record.get("Pools") or [])

    # -- addresses ----------------------------------------------------------------

    @property
    def pool4(self) -> ipam.Pool | None:
        return next((p for p in self.pools if p.version == 4), None)

    @property
    def pool6(self) -> ipam.Pool | None:
        return next((p for p in self.pools if p.version == 6), None) if self.enable_ipv6 \
            else None

    @property
    def ipv6(self) -> bool:
        """Whether endpoints get an IPv6 address too."""
        return self.pool6 is not None

    @property
    def gateway(self) -> ipaddress.IPv4Address | None:
        return self.pool4.gateway if self.pool4 else None

    @property
    def gateway6(self) -> ipaddress.IPv6Address | None:
        return self.pool6.gateway if self.pool6 else None

    @property
    def mtu(self) -> int:
        return self.settings.mtu if self.settings and self.settings.mtu else 0

    def owns(self, address: str) -> bool:
        """Whether a container may ask for `address` here: it lies in one of the
        user's subnets, inside its ip-range when there is one (dockerd's
        isUserDefinedIP check at create and connect)."""
        pools = self.record.get("Pools") or []
        return any(p.get("User") and pool.in_range(address) for p, pool in zip(pools, self.pools))

    def allocate(self, preferred: str | None = None) -> ipaddress.IPv4Interface:
        """An IPv4 address for an endpoint, with the subnet's prefix."""
        return self._allocate(self.pool4, preferred, 4)

    def allocate6(self, preferred: str | None = None) -> ipaddress.IPv6Interface:
        return self._allocate(self.pool6, preferred, 6)

    def _allocate(self, pool: ipam.Pool | None, preferred: str | None, version: int):
        if pool is None:
            raise errdefs.InvalidParameter(
                f"network {self.name} has no IPv{version} address pool")
        return pool.interface(pool.allocate(preferred or None))

    def reserve(self, address) -> None:
        """Mark an address an endpoint already holds (after a daemon restart)."""
        self._pool_of(address).reserve(_ip(address))

    def release(self, address) -> None:
        with_pool = self._pool_of(address, strict=False)
        if with_pool is not None:
            with_pool.release(_ip(address))

    def _pool_of(self, address, strict: bool = True) -> ipam.Pool | None:
        ip = _ip(address)
        for pool in self.pools:
            if ip in pool:
                return pool
        if strict:
            raise ipam.OutOfRange()
        return None


def new_record(network_id: str, name: str, driver: str) -> dict[str, Any]:
    """A network's record with docker's defaults, made now."""
    return {"Version": VERSION, "Network": {
        "Name": name, "Id": network_id, "Created": now_rfc3339(), "Scope": "local",
        "Driver": driver, "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": None, "Config": []},
        "Internal": False, "Attachable": False, "Ingress": False,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Options": {}, "Labels": {},
    }}


def pool_record(pool: ipam.Pool, user: bool) -> dict[str, Any]:
    """A pool as the record keeps it; `user`: the user chose its subnet."""
    out: dict[str, Any] = {"Subnet": str(pool.subnet), "Gateway": str(pool.gateway)}
    if pool.ip_range is not None:
        out["IPRange"] = str(pool.ip_range)
    if pool.aux:
        out["AuxiliaryAddresses"] = {k: str(v) for k, v in pool.aux.items()}
    out["User"] = user
    return out


def shown_config(conf: dict) -> dict[str, Any]:
    """An IPAMConfig as the user gave it, with Go's omitempty."""
    out: dict[str, Any] = {"Subnet": conf["Subnet"]}
    for key in ("IPRange", "Gateway", "AuxiliaryAddresses"):
        if conf.get(key):
            out[key] = conf[key]
    return out


def new_id(taken) -> str:
    """stringid.GenerateRandomID: 64 hex digits whose short form is not a number."""
    while True:
        new = secrets.token_hex(32)
        if new not in taken and not new[:12].isdigit():
            return new


def _ip(address) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address given as text ("10.0.0.2" or "10.0.0.2/24"), interface or address."""
    if isinstance(address, (ipaddress.IPv4Interface, ipaddress.IPv6Interface)):
        return address.ip
    if isinstance(address, str):
        return ipaddress.ip_address(address.split("/")[0])
    return address


def _sorted(mapping: dict[str, Any]) -> dict[str, Any]:
    return dict(sorted(mapping.items()))
