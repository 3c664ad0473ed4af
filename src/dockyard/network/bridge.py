"""The bridge driver's kernel steps: a switch on the host, a cable per container.

A bridge network is a Linux bridge in the host's namespace, a virtual
switch. Its own address (172.17.0.1/16 for the default network) is the
containers' gateway: the host routes and NATs their traffic from there
(packet rules live elsewhere). Each container that joins gets a veth pair, a
virtual cable: one end is a port of the bridge, the other end sits in the
container's network namespace (its sandbox) as eth0, eth1, ..., with the
container's address, its MAC and a default route via the gateway.

    host namespace                         sandbox (container's namespace)
    ┌──────────────────────────────┐       ┌────────────────────────────┐
    │ dockyard0  172.17.0.1/16     │       │ eth0  172.17.0.2/16        │
    │   ├─ veth1a2b3c4 ────────────┼─veth──┼─      02:42:ac:11:00:02    │
    │   └─ veth5d6e7f8 ── ...      │       │ default via 172.17.0.1     │
    └──────────────────────────────┘       │ lo    127.0.0.1 (up)       │
                                           └────────────────────────────┘

Each operation is a Plan (network/plan.py): if a step fails, the steps
already taken are undone, so a failed join leaves no link behind. The plans
are cheap: a join is two netlink sockets (one per namespace) and about ten
requests, no subprocess; see linux/netlink.py for why not pyroute2's IPRoute.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os

from dockyard import errdefs
from dockyard.linux import netlink, netns, sysctl
from dockyard.network.plan import Plan


def mac_for(ipv4) -> str:
    """dockerd's MAC for an IPv4 address: 02:42 then the address's 4 bytes.

    02 marks a locally administered unicast address, so it cannot clash
    with a vendor's; deriving the rest from the IP gives an address a stable
    MAC, so neighbours' ARP caches stay right when an IP is handed out again."""
    packed = ipaddress.IPv4Address(str(ipv4)).packed
    return "02:42:" + ":".join(f"{b:02x}" for b in packed)


def veth_name() -> str:
    """The host end of a veth pair, as dockerd names them: "veth" + 7 random hex digits."""
    return "veth" + os.urandom(4).hex()[:7]


def _random_mac() -> str:
    """A random, locally administered, unicast MAC (bit 1 set, bit 0 clear)."""
    octets = bytearray(os.urandom(6))
    octets[0] = (octets[0] & 0xFE) | 0x02
    return ":".join(f"{b:02x}" for b in octets)


def ensure_bridge(name: str, addresses: list[str], mtu: int | None = None,
                  ipv6: bool = False) -> bool:
    """Make sure bridge `name` exists, is up and holds `addresses` (gateway
    CIDRs, "172.17.0.1/16"). Returns whether it was created.

    An existing bridge is kept (the daemon may restart with its containers
    running, or the admin made it for `--bridge`); missing addresses are
    added. An address it holds with another prefix length is refused, as
    dockerd refuses a bridge whose address does not match its --bip."""
    with netlink.Rtnl() as rtnl:
        plan = Plan()
        if not rtnl.link_exists(name):
            created = True
            plan.add(f"create bridge {name}",
                     lambda: rtnl.bridge_add(name, mtu=mtu, mac=_random_mac()),
                     undo=lambda: rtnl.link_delete(name))
            missing = list(addresses)
        else:
            created = False
            kind = rtnl.link(name).kind
            if kind != "bridge":
                raise errdefs.InvalidParameter(f"interface {name} is not a bridge ({kind or 'no kind'})")
            missing = _missing(name, rtnl.addrs(name), addresses)
        if ipv6:
            # New links inherit net.ipv6.conf.default.disable_ipv6, which
            # hardened hosts set to 1; the kernel then refuses IPv6 addresses
            # on the bridge, and the IPv6 gateway with them.
            plan.add(f"enable IPv6 on {name}",
                     lambda: sysctl.write(f"net/ipv6/conf/{name}/disable_ipv6", 0))
        for cidr in missing:
            plan.add(f"add address {cidr} to {name}", _bind(rtnl.addr_add, name, cidr),
                     undo=None if created else _bind(rtnl.addr_del, name, cidr))
        plan.add(f"set {name} up", lambda: rtnl.link_up(name))
        plan.run()
    return created


def _bind(fn, *args):
    """fn(*args) later (a lambda in a loop would see only the loop's last value)."""
    return lambda: fn(*args)


def _missing(name: str, present: list[str], wanted: list[str]) -> list[str]:
    """The addresses of `wanted` that the bridge lacks; a clash is an error."""
    held = {ipaddress.ip_interface(cidr).ip: cidr for cidr in present}
    missing = []
    for cidr in wanted:
        want = ipaddress.ip_interface(cidr)
        have = held.get(want.ip)
        if have is None:
            missing.append(cidr)
        elif ipaddress.ip_interface(have) != want:
            family = "IPv4" if want.version == 4 else "IPv6"
            raise errdefs.Conflict(
                f"bridge {family} ({have}) does not match requested configuration {cidr}")
    return missing


def remove_bridge(name: str) -> None:
    """Delete the bridge; nothing to do if it is gone. Its ports (the host
    ends of veth pairs) are detached by the kernel, not deleted."""
    netlink.link_delete(name)


def join(sandbox: str, bridge: str, ifname: str, address: str, mac: str,
         gateway: str | None = None, address6: str | None = None,
         gateway6: str | None = None, mtu: int | None = None) -> str:
    """Connect the sandbox (a namespace pinned at `sandbox`) to `bridge`:
    a veth pair whose sandbox end is `ifname` with `address` (CIDR), `mac`,
    and a default route via `gateway` when given (the same for IPv6).
    Returns the name of the host end, which `leave` takes.

    Two steps, two sockets:
    1. on the host, one RTM_NEWLINK makes the pair, with the peer created
       straight in the sandbox under its final name, MAC and MTU, and our end
       attached to the bridge and up;
    2. in the sandbox, its end is configured in the order the kernel needs:
       addresses, then up (which brings the subnet's route), then the default
       route (a gateway must be reachable through an existing route).
    If step 2 fails, step 1 is undone: deleting our end deletes the pair."""
    host = veth_name()
    plan = Plan()
    fd = netns.open_fd(sandbox)
    try:
        with netlink.Rtnl() as rtnl:
            plan.add(f"create veth pair {host} ({ifname} in the sandbox) on {bridge}",
                     lambda: rtnl.veth_add(host, ifname, peer_netns_fd=fd, peer_mac=mac,
                                           mtu=mtu, master=bridge, up=True),
                     undo=lambda: rtnl.link_delete(host))
            plan.add(f"configure {ifname} in sandbox {sandbox}",
                     lambda: netlink.inside(sandbox, lambda inner: _configure(
                         inner, ifname, address, gateway, address6, gateway6)))
            plan.run()
    finally:
        os.close(fd)
    return host


def _configure(rtnl: netlink.Rtnl, ifname: str, address: str, gateway: str | None,
               address6: str | None, gateway6: str | None) -> None:
    """The sandbox's side of a join; runs in a thread inside the sandbox."""
    key = f"net/ipv6/conf/{ifname}/disable_ipv6"
    # IPv6 is on for an interface if and only if its network has IPv6
    # (as dockerd does): otherwise the kernel would still give it a
    # link-local address and join it to IPv6 multicast groups, open to
    # router advertisements and neighbour-discovery spoofing from the
    # bridge. Set before the link is up, so none of that ever starts.
    with contextlib.suppress(FileNotFoundError):  # (no key: IPv6 is off in the kernel)
        sysctl.write(key, 0 if address6 else 1)
    rtnl.addr_add(ifname, address)
    if address6:
        rtnl.addr_add(ifname, address6)
    rtnl.link_up(ifname)
    rtnl.link_up("lo")  # a new namespace's loopback starts down: 127.0.0.1 would not answer
    if gateway:
        rtnl.route_add("default", gateway=gateway, ifname=ifname)
    if gateway6:
        rtnl.route_add("default", gateway=gateway6, ifname=ifname)


def leave(host_veth: str) -> None:
    """Disconnect an endpoint: delete the pair by its host end (nothing to do if gone).

    The kernel takes ~20 ms to delete a veth (it waits for RCU grace periods
    so no packet is still in flight on it). When the sandbox itself is being
    deleted, there is no need to wait: a namespace that dies takes its
    links with it, and the kernel deletes the pair in the background."""
    netlink.link_delete(host_veth)
