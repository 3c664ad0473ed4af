"""rtnetlink: links, addresses and routes, in the kernel's words.

Everything `ip link`, `ip addr` and `ip route` do is a message on a
NETLINK_ROUTE socket: RTM_NEWLINK creates or changes a link, RTM_NEWADDR adds
an address, RTM_NEWROUTE a route, and the RTM_GET* messages read them back.
The kernel answers each request with an acknowledgement that carries an errno
(and, with NETLINK_EXT_ACK, often a sentence saying what it disliked), so a
failure here is raised as OSError naming the message and the link.

A netlink socket belongs for good to the network namespace of the thread that
opened it. To configure a container's sandbox, open an `Rtnl` in a thread
that has entered it: `inside(path, fn)` does that (see linux/netns.py).

The messages are encoded and decoded with pyroute2's message classes (the
nested attributes of a veth peer or a bridge are tedious and easy to get
wrong by hand), but they travel over a plain blocking socket, one request at a
time. pyroute2's own IPRoute runs each request through an asyncio event loop:
about 0.5 ms per request against 0.07 ms here, and a container start needs a
dozen of them. `import pyroute2` costs ~300 ms, so its classes are imported
on first use; `preload()` lets the daemon pay that in the background at start.

Not thread-safe: one `Rtnl` per thread (opening one costs ~20 µs, so there is
nothing to gain by caching it).
"""

from __future__ import annotations

import errno
import functools
import ipaddress
import os
import socket
import struct

from dockyard.linux import netns

TYPE_CHECKING = False  # typing costs ~4 ms to import
if TYPE_CHECKING:
    from typing import Callable, TypeVar

    T = TypeVar("T")

# From <linux/netlink.h> and <linux/rtnetlink.h>: kernel ABI, so they are
# spelled out here rather than imported from pyroute2 (see preload()).
NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_EXT_ACK = 11

NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_DUMP_INTR = 0x10
NLM_F_DUMP = 0x300
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_CAPPED = 0x100      # in an error: the request was not copied back
NLM_F_ACK_TLVS = 0x200    # in an error: extended-ack attributes follow
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLMSGERR_ATTR_MSG = 1

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_GETROUTE = 24, 26
RTEXT_FILTER_SKIP_STATS = 1 << 3  # link replies without their ~1 KiB of counters
IFF_UP = 0x1
IFA_F_NODAD = 0x02
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3                   # "configured by an admin tool", as `ip route add`
RTN_UNICAST = 1

_HEADER = struct.Struct("=IHHII")  # struct nlmsghdr: len, type, flags, seq, pid
_RECV_SIZE = 1 << 16  # the kernel builds dump replies of at most 32 KiB


@functools.cache
def _messages():
    """pyroute2's classes for the three kinds of messages used here."""
    _skip_package_init()
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
    from pyroute2.netlink.rtnl.rtmsg import rtmsg
    return ifinfmsg, ifaddrmsg, rtmsg


def _skip_package_init() -> None:
    """pyroute2's package __init__ imports all of pyroute2 (NDB, IPDB,
    conntrack, ...: ~440 ms) where the message classes we use need ~50 ms.
    Unless someone imported it already, the package is registered without
    running its __init__, so that only the modules we import are loaded."""
    import importlib.util
    import sys
    import types

    if "pyroute2" in sys.modules:
        return
    spec = importlib.util.find_spec("pyroute2")
    package = types.ModuleType("pyroute2")
    package.__spec__ = spec
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["pyroute2"] = package


def preload() -> None:
    """Import pyroute2's message classes now (~50 ms), so the first container
    start does not."""
    _messages()


class Link:
    """What RTM_GETLINK says about one link."""

    __slots__ = ("index", "ifname", "kind", "address", "mtu", "master", "up")

    def __init__(self, index: int, ifname: str, kind: str | None, address: str | None,
                 mtu: int, master: int | None, up: bool):
        self.index, self.ifname, self.kind, self.address = index, ifname, kind, address
        self.mtu, self.master, self.up = mtu, master, up

    def __repr__(self) -> str:
        return (f"Link({self.ifname!r}, index={self.index}, kind={self.kind!r}, "
                f"address={self.address!r}, mtu={self.mtu}, master={self.master}, up={self.up})")


class Rtnl:
    """A NETLINK_ROUTE socket in the network namespace of the thread that opens it.

    Links are named, never numbered, in the arguments: callers hold no
    ifindex that a rename or a move to another namespace would make stale.
    The socket looks indexes up itself where the kernel wants one."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                   NETLINK_ROUTE)
        try:
            # Ask the kernel to explain refusals ("Invalid MTU specified", ...).
            self._sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
        except OSError:  # kernels before 4.12: errno alone
            pass
        self._seq = 0
        self._indexes: dict[str, int] = {}

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- links ---------------------------------------------------------------

    def link(self, name: str) -> Link:
        """The link called `name` (OSError ENODEV if there is none)."""
        reply = self._get_link(name)[0]
        ifinfmsg = _messages()[0]
        msg = ifinfmsg(reply)
        msg.decode()
        master = msg.get_attr("IFLA_MASTER")
        return Link(index=msg["index"], ifname=msg.get_attr("IFLA_IFNAME"),
                    kind=msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND"),
                    address=msg.get_attr("IFLA_ADDRESS"), mtu=msg.get_attr("IFLA_MTU"),
                    master=master or None, up=bool(msg["flags"] & IFF_UP))

    def link_index(self, name: str) -> int:
        """The ifindex of `name`, read straight from the reply's fixed header
        (struct ifinfomsg) without decoding its attributes.

        Remembered for the life of this socket, which is one batch of work
        (each lookup costs a round trip in which the kernel writes out the
        link's whole description); forgotten when this socket renames,
        moves or deletes the link."""
        index = self._indexes.get(name)
        if index is None:
            reply = self._get_link(name)[0]
            index = self._indexes[name] = struct.unpack_from("=i", reply, _HEADER.size + 4)[0]
        return index

    def link_exists(self, name: str) -> bool:
        try:
            self._get_link(name)
        except OSError as e:
            if e.errno == errno.ENODEV:
                return False
            raise
        return True

    def links(self) -> list[str]:
        """The names of every link in this namespace."""
        ifinfmsg = _messages()[0]
        msg = ifinfmsg()
        msg["attrs"] = [("IFLA_EXT_MASK", RTEXT_FILTER_SKIP_STATS)]
        names = []
        for reply in self._request("RTM_GETLINK (dump)", msg, RTM_GETLINK, NLM_F_DUMP):
            link = ifinfmsg(reply)
            link.decode()
            names.append(link.get_attr("IFLA_IFNAME"))
        return names

    def bridge_add(self, name: str, mtu: int | None = None, mac: str | None = None) -> None:
        """A new Linux bridge, down and without addresses.

        Give it a MAC address: a bridge that has none of its own takes the
        lowest MAC of its ports, so it would change each time a container
        joins or leaves, and every neighbour's ARP entry for the gateway
        would go stale. One set explicitly is kept (the kernel marks it
        NET_ADDR_SET and stops recalculating)."""
        attrs = self._link_attrs(name, mac=mac, mtu=mtu)
        attrs.append(("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "bridge")]}))
        self._new_link(f"RTM_NEWLINK {name} (bridge)", attrs, create=True)

    def veth_add(self, name: str, peer: str, *, peer_netns_fd: int | None = None,
                 peer_mac: str | None = None, mtu: int | None = None,
                 master: str | None = None, up: bool = False) -> None:
        """A veth pair: `name` here, `peer` here too or, given `peer_netns_fd`,
        made directly in that namespace.

        One message makes the whole pair: the kernel creates the peer in its
        namespace under its final name (so it never clashes with a link of
        ours, and never exists on the host where a crash could strand it),
        gives it its MAC and MTU, and attaches our end to `master` and sets
        it up (rtnl_newlink applies IFLA_MASTER and the IFF_UP flag to a link
        it has just created). The peer stays down: its addresses come first."""
        peer_attrs = self._link_attrs(peer, netns_fd=peer_netns_fd, mac=peer_mac, mtu=mtu)
        attrs = self._link_attrs(name, mtu=mtu, master=master)
        attrs.append(("IFLA_LINKINFO", {"attrs": [
            ("IFLA_INFO_KIND", "veth"),
            ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", {"attrs": peer_attrs})]}),
        ]}))
        where = f" in netns fd {peer_netns_fd}" if peer_netns_fd is not None else ""
        self._new_link(f"RTM_NEWLINK {name} (veth, peer {peer}{where})", attrs, create=True,
                       up=up)

    def link_delete(self, name: str) -> None:
        """Delete `name`; nothing to do if it is gone. Deleting either end of
        a veth pair deletes both, wherever the other end is."""
        self._indexes.pop(name, None)
        ifinfmsg = _messages()[0]
        msg = ifinfmsg()
        msg["attrs"] = [("IFLA_IFNAME", name)]
        try:
            self._request(f"RTM_DELLINK {name}", msg, RTM_DELLINK)
        except OSError as e:
            if e.errno != errno.ENODEV:
                raise

    def link_set(self, name: str, *, ifname: str | None = None, mac: str | None = None,
                 mtu: int | None = None, master: str | None = None,
                 netns_fd: int | None = None, up: bool | None = None) -> None:
        """Change `name` in one RTM_NEWLINK: rename it (`ifname`), set its MAC,
        MTU, bridge (`master`), move it to another namespace, set it up/down.

        The kernel applies a move first, then the rest in the new namespace
        (do_setlink), so a move and a rename together land as the new name."""
        # A rename finds the link by index: the name attribute carries the new name.
        index = self.link_index(name) if ifname is not None else 0
        attrs = self._link_attrs(ifname or name, netns_fd=netns_fd, mac=mac, mtu=mtu,
                                 master=master)
        if ifname is not None or netns_fd is not None:
            self._indexes.pop(name, None)
        self._new_link(f"RTM_NEWLINK {name} (set)", attrs, index=index, up=up)

    def link_up(self, name: str) -> None:
        self.link_set(name, up=True)

    def link_set_netns(self, name: str, netns_fd: int) -> None:
        self.link_set(name, netns_fd=netns_fd)

    # -- addresses -----------------------------------------------------------

    def addr_add(self, ifname: str, cidr: str) -> None:
        """Add an address ("10.0.0.2/24", "fd00::2/64") to `ifname`.

        IPv4 gets the subnet's broadcast address, as `ip addr add ... brd +`
        and docker do. IPv6 is added with IFA_F_NODAD: the address comes from
        our own allocator, unique by construction, and duplicate address
        detection would keep it "tentative" (unusable) for about a second."""
        self._addr(RTM_NEWADDR, "RTM_NEWADDR", ifname, cidr)

    def addr_del(self, ifname: str, cidr: str) -> None:
        self._addr(RTM_DELADDR, "RTM_DELADDR", ifname, cidr)

    def addrs(self, ifname: str) -> list[str]:
        """The addresses of `ifname` as CIDRs ("172.17.0.1/16"), IPv6 link-local ones included."""
        index = self.link_index(ifname)
        ifaddrmsg = _messages()[1]
        found = []
        for reply in self._request("RTM_GETADDR (dump)", ifaddrmsg(), RTM_GETADDR, NLM_F_DUMP):
            msg = ifaddrmsg(reply)
            msg.decode()
            if msg["index"] == index:
                # IPv4 puts the link's own address in IFA_LOCAL (IFA_ADDRESS is the
                # peer's on point-to-point links); IPv6 only sends IFA_ADDRESS.
                address = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
                found.append(f"{address}/{msg['prefixlen']}")
        return found

    # -- routes --------------------------------------------------------------

    def route_add(self, dst: str, *, gateway: str | None = None, ifname: str | None = None) -> None:
        """Add a route to the main table: `dst` a CIDR or "default" (of the
        gateway's family), via `gateway`, out of `ifname`.

        A gateway must be reachable through a route that already exists (the
        subnet route an address on an up link brings), or the kernel answers
        ENETUNREACH: add addresses and set the link up first."""
        if dst == "default":
            if gateway is None:
                raise ValueError("a default route needs a gateway")
            network = ipaddress.ip_network("::/0" if ":" in gateway else "0.0.0.0/0")
        else:
            network = ipaddress.ip_network(dst)
        rtmsg = _messages()[2]
        msg = rtmsg()
        msg["family"] = socket.AF_INET6 if network.version == 6 else socket.AF_INET
        msg["dst_len"] = network.prefixlen
        msg["table"] = RT_TABLE_MAIN
        msg["proto"] = RTPROT_BOOT
        msg["type"] = RTN_UNICAST
        # Scope: "universe" for a route via a gateway, "link" for an on-link subnet.
        msg["scope"] = 0 if gateway is not None else 253
        attrs: list = []
        if network.prefixlen:
            attrs.append(("RTA_DST", str(network.network_address)))
        if gateway is not None:
            attrs.append(("RTA_GATEWAY", gateway))
        if ifname is not None:
            attrs.append(("RTA_OIF", self.link_index(ifname)))
        msg["attrs"] = attrs
        via = f" via {gateway}" if gateway else ""
        dev = f" dev {ifname}" if ifname else ""
        self._request(f"RTM_NEWROUTE {dst}{via}{dev}", msg, RTM_NEWROUTE,
                      NLM_F_CREATE | NLM_F_EXCL)

    def routes(self, family: int = socket.AF_UNSPEC) -> list:
        """The destinations of the main table's routes (ipaddress networks).

        Default routes are left out: they "overlap" every subnet and say
        nothing about which ones are in use, which is what this is for
        (choosing subnets for bridges that clash with nothing on the host)."""
        rtmsg = _messages()[2]
        query = rtmsg()
        query["family"] = family
        found = []
        for reply in self._request("RTM_GETROUTE (dump)", query, RTM_GETROUTE, NLM_F_DUMP):
            msg = rtmsg(reply)
            msg.decode()
            table = msg.get_attr("RTA_TABLE") or msg["table"]  # ids > 255 are only in RTA_TABLE
            if table != RT_TABLE_MAIN or not msg["dst_len"]:
                continue
            network = ipaddress.ip_network(f"{msg.get_attr('RTA_DST')}/{msg['dst_len']}",
                                           strict=False)
            if network not in found:
                found.append(network)
        return found

    # -- the exchange --------------------------------------------------------

    def _get_link(self, name: str) -> list[bytes]:
        ifinfmsg = _messages()[0]
        msg = ifinfmsg()
        msg["attrs"] = [("IFLA_IFNAME", name), ("IFLA_EXT_MASK", RTEXT_FILTER_SKIP_STATS)]
        return self._request(f"RTM_GETLINK {name}", msg, RTM_GETLINK)

    def _link_attrs(self, ifname: str, *, netns_fd: int | None = None, mac: str | None = None,
                    mtu: int | None = None, master: str | None = None) -> list:
        """The IFLA_* attributes of a link: its name, and those of the rest given."""
        attrs: list = [("IFLA_IFNAME", ifname)]
        if netns_fd is not None:
            attrs.append(("IFLA_NET_NS_FD", netns_fd))
        if mac is not None:
            attrs.append(("IFLA_ADDRESS", mac))
        if mtu is not None:
            attrs.append(("IFLA_MTU", mtu))
        if master is not None:
            attrs.append(("IFLA_MASTER", self.link_index(master)))
        return attrs

    def _new_link(self, what: str, attrs: list, *, index: int = 0, create: bool = False,
                  up: bool | None = None) -> None:
        ifinfmsg = _messages()[0]
        msg = ifinfmsg()
        msg["index"] = index
        if up is not None:  # `change` says which flags to touch, `flags` their values
            msg["change"] = IFF_UP
            msg["flags"] = IFF_UP if up else 0
        msg["attrs"] = attrs
        self._request(what, msg, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL if create else 0)

    def _addr(self, mtype: int, call: str, ifname: str, cidr: str) -> None:
        interface = ipaddress.ip_interface(cidr)
        ifaddrmsg = _messages()[1]
        msg = ifaddrmsg()
        msg["index"] = self.link_index(ifname)
        msg["prefixlen"] = interface.network.prefixlen
        address = str(interface.ip)
        attrs: list = [("IFA_LOCAL", address), ("IFA_ADDRESS", address)]
        if interface.version == 4:
            msg["family"] = socket.AF_INET
            if interface.network.prefixlen < 31:  # /31 and /32 have no broadcast
                attrs.append(("IFA_BROADCAST", str(interface.network.broadcast_address)))
        else:
            msg["family"] = socket.AF_INET6
            msg["flags"] = IFA_F_NODAD
        msg["attrs"] = attrs
        flags = NLM_F_CREATE | NLM_F_EXCL if mtype == RTM_NEWADDR else 0
        self._request(f"{call} {cidr} dev {ifname}", msg, mtype, flags)

    def _request(self, what: str, msg, mtype: int, flags: int = 0) -> list[bytes]:
        """Send one request and collect its replies until the kernel's ack
        (or, for a dump, NLMSG_DONE). Raises OSError naming `what`."""
        msg["header"]["type"] = mtype
        msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK | flags
        msg.encode()
        request = bytearray(msg.data)
        for _ in range(3):  # a dump the kernel marks interrupted is asked again
            self._seq += 1
            struct.pack_into("=I", request, 8, self._seq)  # nlmsghdr.nlmsg_seq
            self._sock.send(request)
            replies, interrupted = self._replies(what)
            if not interrupted:
                return replies
        raise OSError(errno.EINTR, f"{what}: the dump kept changing under us")

    def _replies(self, what: str) -> tuple[list[bytes], bool]:
        replies: list[bytes] = []
        interrupted = False
        while True:
            data = self._sock.recv(_RECV_SIZE)
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, mtype, mflags, seq, _ = _HEADER.unpack_from(data, offset)
                if length < _HEADER.size:
                    raise OSError(errno.EPROTO, f"{what}: malformed netlink reply")
                body = data[offset:offset + length]
                offset += (length + 3) & ~3
                if seq != self._seq:
                    continue  # a late reply to an earlier request
                if mtype == NLMSG_ERROR:  # an ack is an "error" whose errno is 0
                    code = struct.unpack_from("=i", body, _HEADER.size)[0]
                    if code:
                        raise _error(what, -code, body, mflags)
                    return replies, interrupted
                if mtype == NLMSG_DONE:
                    code = struct.unpack_from("=i", body, _HEADER.size)[0] if length >= 20 else 0
                    if code:
                        raise _error(what, -code, body, mflags)
                    return replies, interrupted
                interrupted |= bool(mflags & NLM_F_DUMP_INTR)
                replies.append(body)


def _error(what: str, code: int, body: bytes, mflags: int) -> OSError:
    """OSError for a refused request, with the kernel's own explanation when
    it sent one (an NLMSGERR_ATTR_MSG attribute after the echoed request)."""
    text = os.strerror(code)
    offset = _HEADER.size + 4  # the errno, then the request's header (and body)
    if mflags & NLM_F_ACK_TLVS and len(body) >= offset + _HEADER.size:
        echoed_len = _HEADER.unpack_from(body, offset)[0]
        offset += _HEADER.size if mflags & NLM_F_CAPPED else (echoed_len + 3) & ~3
        while offset + 4 <= len(body):
            nla_len, nla_type = struct.unpack_from("=HH", body, offset)
            if nla_len < 4:
                break
            if nla_type & 0x3FFF == NLMSGERR_ATTR_MSG:
                message = body[offset + 4:offset + nla_len].split(b"\0", 1)[0].decode(errors="replace")
                text += f" ({message})"
                break
            offset += (nla_len + 3) & ~3
    return OSError(code, f"{what}: {text}")


def inside(path: str, fn: Callable[[Rtnl], T]) -> T:
    """fn(rtnl) with a socket in the namespace pinned at `path`."""
    def opened() -> T:
        with Rtnl() as rtnl:
            return fn(rtnl)
    return netns.run_inside(path, opened)


# -- one request each, on the daemon's (host) side ---------------------------

def link_exists(name: str) -> bool:
    with Rtnl() as rtnl:
        return rtnl.link_exists(name)


def link_delete(name: str) -> None:
    with Rtnl() as rtnl:
        rtnl.link_delete(name)


def link_set_netns(name: str, netns_fd: int) -> None:
    with Rtnl() as rtnl:
        rtnl.link_set_netns(name, netns_fd)


def veth_add(name: str, peer: str, **options) -> None:
    """See Rtnl.veth_add for the options."""
    with Rtnl() as rtnl:
        rtnl.veth_add(name, peer, **options)


def addrs(ifname: str) -> list[str]:
    with Rtnl() as rtnl:
        return rtnl.addrs(ifname)


def routes(family: int = socket.AF_UNSPEC) -> list:
    with Rtnl() as rtnl:
        return rtnl.routes(family)


def links() -> list[str]:
    with Rtnl() as rtnl:
        return rtnl.links()
