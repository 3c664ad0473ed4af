"""IP address management, as dockerd's built-in `default` IPAM driver does it.

Pure: no kernel, no disk. Two jobs:

* choosing a subnet for a network that names none (`pick_subnet`): the
  daemon's address pools are split into equal subnets (dockerd's defaults:
  172.17.0.0/16 … 172.31.0.0/16, then 192.168.0.0/16 cut into /20s; or the
  `--default-address-pool base=CIDR,size=N` pools), and the first one that
  overlaps nothing in use (host routes, the host's nameservers, other
  networks' subnets) is taken;
* handing out the addresses of one subnet (`Pool`): the gateway, auxiliary
  addresses, and one address per endpoint.

How libnetwork's allocator counts, and so how we count: an address is its
*ordinal*, its host part within the subnet. Ordinal 0 (the network address) is
never handed out, nor, in IPv4, the last one (broadcast); the rest are free
until allocated. A new address is the lowest free ordinal — within the ip-range
when the subnet has one — so the gateway is the first host of the subnet (or of
the range: `--subnet 10.0.0.0/24 --ip-range 10.0.0.128/25` puts the bridge on
10.0.0.128). A requested address need only lie in the subnet, not the range.
An ip-range is taken, as libnetwork takes it, by its host part under the
subnet's mask, so a range outside the subnet still names addresses inside it.

Allocation state lives in memory only: after a daemon restart the daemon
rebuilds it by calling `reserve` for every address its records hold.

Errors carry libnetwork's texts (ipamapi/contract.go) and the kinds that give
dockerd's HTTP statuses: its Forbidden errors are 403, its BadRequest and
NoService errors reach the client as 500.
"""

from __future__ import annotations

import ipaddress
from typing import Iterable

from dockyard import errdefs

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Subnet = ipaddress.IPv4Network | ipaddress.IPv6Network

# dockerd 20.10's local-scope defaults (libnetwork/ipamutils): 172.17-31.x.x/16,
# then 192.168.x.x/20.
DEFAULT_POOLS: list[dict] = (
    [{"base": f"172.{n}.0.0/16", "size": 16} for n in range(17, 32)]
    + [{"base": "192.168.0.0/16", "size": 20}]
)


# -- errors -------------------------------------------------------------------------

# Each takes its message as its one argument too, like every error kind, so
# that code re-raising an error as its own kind (`type(e)(text)`) can.

class AddressInUse(errdefs.Forbidden):
    def __init__(self, message: str = "Address already in use") -> None:
        super().__init__(message)


class OutOfRange(errdefs.System):
    """libnetwork's BadRequest, which dockerd answers with 500."""

    def __init__(self, message: str = "Requested address is out of range") -> None:
        super().__init__(message)


class NoAvailableAddresses(errdefs.System):
    def __init__(self, message: str = "No available addresses on this pool") -> None:
        super().__init__(message)


class PoolOverlap(errdefs.Forbidden):
    def __init__(self, message: str = "Pool overlaps with other one on this address "
                                      "space") -> None:
        super().__init__(message)


class NoAvailablePool(errdefs.NotFound):
    def __init__(self, version: int | str = 4) -> None:
        super().__init__(version if isinstance(version, str) else
                         f"could not find an available, non-overlapping IPv{version} address "
                         "pool among the defaults to assign to the network")


class InvalidPool(errdefs.InvalidParameter):
    """A --default-address-pool dockerd refuses at start."""


# -- choosing a subnet --------------------------------------------------------------

def split_pools(pools: Iterable[dict]) -> list[Subnet]:
    """[{"base": CIDR, "size": N}] → every /N subnet of every base, in order
    (ipamutils.splitNetworks)."""
    out: list[Subnet] = []
    for pool in pools:
        try:
            base = ipaddress.ip_network(pool["base"], strict=False)
        except ValueError:
            raise InvalidPool(f'invalid base pool "{pool["base"]}": '
                              f'invalid CIDR address: {pool["base"]}') from None
        size = int(pool["size"])
        if size <= 0 or size < base.prefixlen or size > base.max_prefixlen:
            raise InvalidPool(f"invalid pools size: {size}")
        out.extend(base.subnets(new_prefix=size))
    return out


def overlaps(a: Subnet, b: Subnet) -> bool:
    """netutils.NetworkOverlaps: one contains the other's first address."""
    return a.version == b.version and (a.network_address in b or b.network_address in a)


def pick_subnet(pools: list[Subnet], in_use: Iterable[Subnet], start: int = 0) -> Subnet:
    """The first of `pools` (looked at from index `start`, wrapping round, as
    libnetwork's allocator resumes after the pool it gave last) that
    overlaps nothing in `in_use`."""
    in_use = list(in_use)
    version = pools[0].version if pools else 4
    if pools:
        start = start if 0 <= start < len(pools) else 0
        for subnet in pools[start:] + pools[:start]:
            if not any(overlaps(subnet, other) for other in in_use):
                return subnet
    raise NoAvailablePool(version)


def parse_subnet(text: str) -> Subnet:
    """A subnet as net.ParseCIDR reads it: host bits allowed, then dropped."""
    return ipaddress.ip_network(text, strict=False)


# -- one subnet's addresses -----------------------------------------------------------

class Pool:
    """The addresses of one subnet: its gateway, auxiliary addresses, endpoints.

    `gateway` None means "allocate one" (the lowest free address);
    `aux` maps names to addresses kept out of allocation (--aux-address);
    `network` names the network in error messages.
    """

    def __init__(self, subnet: Subnet | str, gateway: Address | str | None = None,
                 ip_range: Subnet | str | None = None, aux: dict[str, str] | None = None,
                 network: str = ""):
        self.subnet: Subnet = parse_subnet(subnet) if isinstance(subnet, str) else subnet
        self.ip_range: Subnet | None = (parse_subnet(ip_range) if isinstance(ip_range, str)
                                        else ip_range)
        self._size = self.subnet.num_addresses
        self._used: set[int] = {0}               # the network address
        if self.subnet.version == 4 and self._size > 1:
            self._used.add(self._size - 1)       # broadcast
        self._reserved = set(self._used)         # never released
        self._lo, self._hi = 1, self._size - 1
        if self.ip_range is not None:
            self._lo = self._ordinal_of_any(self.ip_range.network_address)
            self._hi = self._ordinal_of_any(self.ip_range.broadcast_address)
        try:
            self.gateway: Address = self.allocate(gateway)
        except errdefs.DockyardError as e:
            raise errdefs.System(f"failed to allocate gateway ({gateway or ''}): {e}") from None
        self._reserved.add(self._ordinal(self.gateway))
        self.aux: dict[str, Address] = {}
        for key in sorted(aux or {}):
            self._reserve_aux(key, aux[key], network)

    @property
    def version(self) -> int:
        return self.subnet.version

    @property
    def prefixlen(self) -> int:
        return self.subnet.prefixlen

    def interface(self, addr: Address) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
        """`addr` with the subnet's prefix, as an endpoint shows it (10.0.0.2/24)."""
        return ipaddress.ip_interface(f"{addr}/{self.prefixlen}")

    def __contains__(self, addr: Address | str) -> bool:
        try:
            return _address(addr) in self.subnet
        except ValueError:
            return False

    def in_range(self, addr: Address | str) -> bool:
        """Whether `addr` is one a container may ask for: inside the ip-range
        when there is one, else inside the subnet."""
        if addr not in self:
            return False
        return self._lo <= self._ordinal(_address(addr)) <= self._hi

    # -- allocation --

    def allocate(self, preferred: Address | str | None = None) -> Address:
        """`preferred` if it is free, else the lowest free address (in the
        ip-range when there is one)."""
        if preferred is not None and preferred != "":
            ordinal = self._ordinal(_address(preferred))
            if ordinal in self._used:
                raise AddressInUse()
            self._used.add(ordinal)
            return self._address(ordinal)
        for ordinal in range(max(self._lo, 0), min(self._hi, self._size - 1) + 1):
            if ordinal not in self._used:
                self._used.add(ordinal)
                return self._address(ordinal)
        raise NoAvailableAddresses()

    def reserve(self, addr: Address | str) -> None:
        """Mark `addr` taken without asking (rebuilding after a restart)."""
        self._used.add(self._ordinal(_address(addr)))

    def release(self, addr: Address | str) -> None:
        """Give `addr` back; the network, broadcast, gateway and auxiliary
        addresses stay taken."""
        ordinal = self._ordinal(_address(addr))
        if ordinal not in self._reserved:
            self._used.discard(ordinal)

    def in_use(self) -> list[Address]:
        """The addresses endpoints hold (not the gateway or reserved ones)."""
        return [self._address(o) for o in sorted(self._used - self._reserved)]

    # -- ordinals --

    def _ordinal(self, addr: Address) -> int:
        if addr.version != self.subnet.version or addr not in self.subnet:
            raise OutOfRange()
        return int(addr) - int(self.subnet.network_address)

    def _ordinal_of_any(self, addr: Address) -> int:
        """The host part under the subnet's mask, wherever `addr` is."""
        return int(addr) & int(self.subnet.hostmask)

    def _address(self, ordinal: int) -> Address:
        return ipaddress.ip_address(int(self.subnet.network_address) + ordinal)

    def _reserve_aux(self, key: str, value: str, network: str) -> None:
        """ipamAllocateVersion's auxiliary addresses: in the subnet, and held."""
        try:
            addr = ipaddress.ip_address(value)
        except ValueError:
            raise errdefs.System(f"non parsable secondary ip address ({key}:{value}) passed "
                                f"for network {network}") from None
        if addr.version != self.version or addr not in self.subnet:
            raise errdefs.Forbidden(f"auxiliary address: ({key}:{value}) must belong to the "
                                    f"master pool: {self.subnet}")
        try:
            self.allocate(addr)
        except errdefs.DockyardError as e:
            raise errdefs.System(
                f"failed to allocate secondary ip address ({key}:{value}): {e}") from None
        self._reserved.add(self._ordinal(addr))
        self.aux[key] = addr


def _address(addr: Address | str) -> Address:
    if isinstance(addr, str):
        try:
            return ipaddress.ip_address(addr.split("/")[0])
        except ValueError:
            raise OutOfRange() from None
    return addr
