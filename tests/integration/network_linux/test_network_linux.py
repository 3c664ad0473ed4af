"""The bridge driver against the real kernel: a bridge, sandboxes, veth pairs.

Each test gets its own link-name prefix (dytnl + 3 hex digits), subnets in
10.241-243.0.0/24, and sandboxes pinned under its tmp_path; the fixture
deletes every link with its prefix and every sandbox, even when the test
fails. What is inside a sandbox is read with `nsenter --net=PATH ip -j ...`,
an observer independent of the code under test. Traffic goes only between
the test's own sandboxes.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import socket
import subprocess
import threading

import pytest

from dockyard.linux import netlink, netns, sysctl
from dockyard.network import bridge
from dockyard.network.plan import PlanFailed


class Lab:
    def __init__(self, tag: str, root: str):
        self.prefix = f"dytnl{tag}"
        self.bridge = f"{self.prefix}br"
        self.root = root
        self.sandboxes: list[str] = []
        self._veths = 0

    def sandbox(self, name: str) -> str:
        path = os.path.join(self.root, name)
        netns.create(path)
        self.sandboxes.append(path)
        return path

    def veth_name(self) -> str:
        """Stands in for bridge.veth_name: host ends named with our prefix."""
        self._veths += 1
        return f"{self.prefix}v{self._veths}"

    def ours(self) -> list[str]:
        return [name for name in netlink.links() if name.startswith(self.prefix)]


@pytest.fixture
def lab(tmp_path, monkeypatch):
    lab = Lab(os.urandom(2).hex()[:3], str(tmp_path))
    monkeypatch.setattr(bridge, "veth_name", lab.veth_name)
    try:
        yield lab
    finally:
        for path in lab.sandboxes:
            netns.delete(path)
        for name in lab.ours():
            netlink.link_delete(name)
    assert lab.ours() == []


def ip_json(sandbox: str | None, *args: str):
    """`ip -j ARGS`, inside the sandbox when given."""
    command = ["ip", "-j", *args]
    if sandbox:
        command = ["nsenter", f"--net={sandbox}", *command]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout
                      or "[]")


def addresses(sandbox: str, ifname: str) -> set[str]:
    [link] = ip_json(sandbox, "addr", "show", "dev", ifname)
    return {f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"]}


def reaches(client: str, server: str, address: str) -> bool:
    """A TCP connection from sandbox `client` to `address` in sandbox `server`.

    The listening socket is made in a thread inside the server's namespace
    and stays there; the connecting one likewise in the client's."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET

    def listen() -> socket.socket:
        s = socket.socket(family, socket.SOCK_STREAM)
        s.bind((address, 0))
        s.listen(1)
        return s

    def connect() -> bytes:
        with socket.create_connection((address, port), timeout=5) as c:
            c.sendall(b"ping")
            return c.recv(4)

    listener = netns.run_inside(server, listen)
    listener.settimeout(5)
    port = listener.getsockname()[1]
    try:
        replies: list[bytes] = []
        t = threading.Thread(target=lambda: replies.append(netns.run_inside(client, connect)))
        t.start()
        conn, _ = listener.accept()
        with conn:
            conn.sendall(conn.recv(4))
        t.join(10)
        return replies == [b"ping"]
    finally:
        listener.close()


def test_two_sandboxes_on_a_bridge_reach_each_other(lab):
    assert bridge.ensure_bridge(lab.bridge, ["10.241.0.1/24", "fd41:dead:241::1/64"],
                                mtu=1400, ipv6=True) is True
    assert bridge.ensure_bridge(lab.bridge, ["10.241.0.1/24", "fd41:dead:241::1/64"],
                                mtu=1400, ipv6=True) is False  # already there: kept
    [br] = ip_json(None, "-d", "link", "show", "dev", lab.bridge)
    assert br["linkinfo"]["info_kind"] == "bridge" and "UP" in br["flags"] and br["mtu"] == 1400
    assert ipaddress.ip_network("10.241.0.0/24") in netlink.routes(socket.AF_INET)
    assert ipaddress.ip_network("fd41:dead:241::/64") in netlink.routes(socket.AF_INET6)

    a, b = lab.sandbox("a"), lab.sandbox("b")
    veth_a = bridge.join(a, lab.bridge, "eth0", "10.241.0.2/24", bridge.mac_for("10.241.0.2"),
                         gateway="10.241.0.1", address6="fd41:dead:241::2/64",
                         gateway6="fd41:dead:241::1", mtu=1400)
    veth_b = bridge.join(b, lab.bridge, "eth0", "10.241.0.3/24", bridge.mac_for("10.241.0.3"),
                         gateway="10.241.0.1", address6="fd41:dead:241::3/64",
                         gateway6="fd41:dead:241::1", mtu=1400)

    # The bridge kept the MAC it was given: it did not take a port's.
    [br_after] = ip_json(None, "link", "show", "dev", lab.bridge)
    assert br_after["address"] == br["address"]

    # The host ends: ports of the bridge, up, same MTU.
    ports = {link["ifname"]: link for link in ip_json(None, "link", "show", "master", lab.bridge)}
    assert set(ports) == {veth_a, veth_b}
    assert all("UP" in link["flags"] and link["mtu"] == 1400 for link in ports.values())

    # The sandbox ends: name, MAC, MTU, addresses, routes, loopback.
    [eth0] = ip_json(a, "link", "show", "dev", "eth0")
    assert eth0["address"] == "02:42:0a:f1:00:02" and eth0["mtu"] == 1400
    assert "UP" in eth0["flags"]
    assert {"10.241.0.2/24", "fd41:dead:241::2/64"} <= addresses(a, "eth0")
    [lo] = ip_json(a, "link", "show", "dev", "lo")
    assert "UP" in lo["flags"]
    [default4] = ip_json(a, "route", "show", "default")
    assert default4["gateway"] == "10.241.0.1" and default4["dev"] == "eth0"
    [default6] = ip_json(a, "-6", "route", "show", "default")
    assert default6["gateway"] == "fd41:dead:241::1" and default6["dev"] == "eth0"
    [v4] = [x for x in ip_json(a, "addr", "show", "dev", "eth0")[0]["addr_info"]
            if x["family"] == "inet"]
    assert v4["broadcast"] == "10.241.0.255"

    assert reaches(a, b, "10.241.0.3")
    assert reaches(b, a, "10.241.0.2")
    assert reaches(a, b, "fd41:dead:241::3")

    bridge.leave(veth_a)
    assert not netlink.link_exists(veth_a)
    assert [link["ifname"] for link in ip_json(a, "link", "show")] == ["lo"]  # the pair is gone
    bridge.leave(veth_a)  # gone already: nothing to do

    bridge.remove_bridge(lab.bridge)
    assert not netlink.link_exists(lab.bridge)
    bridge.remove_bridge(lab.bridge)
    bridge.leave(veth_b)
    assert lab.ours() == []


def test_an_ipv4_only_endpoint_has_ipv6_off(lab):
    bridge.ensure_bridge(lab.bridge, ["10.242.0.1/24"])
    sandbox = lab.sandbox("v4only")
    bridge.join(sandbox, lab.bridge, "eth0", "10.242.0.2/24", bridge.mac_for("10.242.0.2"),
                gateway="10.242.0.1")
    # No link-local address, no IPv6 at all on eth0; loopback keeps ::1.
    assert addresses(sandbox, "eth0") == {"10.242.0.2/24"}
    assert netns.run_inside(sandbox, lambda: sysctl.read("net.ipv6.conf.eth0.disable_ipv6")) == "1"
    assert ip_json(sandbox, "-6", "route", "show", "default") == []


def test_sysctl_follows_the_thread_namespace(lab):
    sandbox = lab.sandbox("sysctl")
    key = "net.ipv4.conf.lo.route_localnet"
    host_value = sysctl.read(key)
    inside_value = "0" if host_value == "1" else "1"
    netns.run_inside(sandbox, lambda: sysctl.write(key, inside_value))
    assert netns.run_inside(sandbox, lambda: sysctl.read(key)) == inside_value
    assert sysctl.read(key) == host_value
    # A link that exists only in the sandbox has keys only there.
    assert not sysctl.exists("net.ipv4.conf.nosuchlink0.forwarding")


def test_a_failed_join_leaves_no_link(lab):
    bridge.ensure_bridge(lab.bridge, ["10.243.0.1/24"])
    sandbox = lab.sandbox("failing")
    before = set(netlink.links())

    # The kernel refuses the default route (the gateway is on no subnet of
    # the sandbox) after the pair was made: the pair must be deleted.
    with pytest.raises(PlanFailed) as failed:
        bridge.join(sandbox, lab.bridge, "eth0", "10.243.0.2/24", bridge.mac_for("10.243.0.2"),
                    gateway="10.243.9.1")
    assert failed.value.step.startswith("configure eth0 in sandbox")
    assert failed.value.error.errno == errno.ENETUNREACH
    assert "RTM_NEWROUTE default via 10.243.9.1 dev eth0" in str(failed.value)
    assert set(netlink.links()) - before == set()
    assert [link["ifname"] for link in ip_json(sandbox, "link", "show")] == ["lo"]

    # A second eth0 in the same sandbox: refused at creation, nothing made.
    first = bridge.join(sandbox, lab.bridge, "eth0", "10.243.0.2/24",
                        bridge.mac_for("10.243.0.2"), gateway="10.243.0.1")
    with pytest.raises(PlanFailed) as failed:
        bridge.join(sandbox, lab.bridge, "eth0", "10.243.0.3/24",
                    bridge.mac_for("10.243.0.3"))
    assert failed.value.step.startswith("create veth pair")
    assert failed.value.error.errno == errno.EEXIST
    assert set(netlink.links()) - before == {first}


def test_a_failed_bridge_creation_leaves_no_bridge(lab):
    with pytest.raises(PlanFailed, match=r"add address 10.241.200.1/33 to dytnl"):
        bridge.ensure_bridge(lab.bridge, ["10.241.199.1/24", "10.241.200.1/33"])
    assert not netlink.link_exists(lab.bridge)


def test_existing_bridge_gets_missing_addresses_and_a_non_bridge_is_refused(lab):
    from dockyard import errdefs

    assert bridge.ensure_bridge(lab.bridge, ["10.241.128.1/24"]) is True
    assert bridge.ensure_bridge(lab.bridge, ["10.241.128.1/24", "10.241.129.1/24"]) is False
    assert {"10.241.128.1/24", "10.241.129.1/24"} <= set(netlink.addrs(lab.bridge))
    with pytest.raises(errdefs.Conflict):
        bridge.ensure_bridge(lab.bridge, ["10.241.128.1/16"])

    other = f"{lab.prefix}x"  # a link that is no bridge: one end of a veth pair
    netlink.veth_add(other, f"{lab.prefix}y")
    with pytest.raises(errdefs.InvalidParameter, match="is not a bridge"):
        bridge.ensure_bridge(other, ["10.241.130.1/24"])
    assert netlink.addrs(other) == []


def test_errors_name_the_link():
    with pytest.raises(OSError) as e:
        with netlink.Rtnl() as rtnl:
            rtnl.link_up("dytnlnosuch0")
    assert e.value.errno == errno.ENODEV
    assert "dytnlnosuch0" in str(e.value)
    netlink.link_delete("dytnlnosuch0")  # gone: nothing to do


def test_link_moved_renamed_and_configured_inside_a_sandbox(lab):
    """The long way round, one change at a time, as `ip` would do it."""
    sandbox = lab.sandbox("manual")
    host, temp = f"{lab.prefix}h", f"{lab.prefix}t"
    netlink.veth_add(host, temp)
    fd = netns.open_fd(sandbox)
    try:
        netlink.link_set_netns(temp, fd)
    finally:
        os.close(fd)
    assert not netlink.link_exists(temp)

    def configure(rtnl: netlink.Rtnl) -> netlink.Link:
        rtnl.link_set(temp, ifname="eth1")
        rtnl.link_set("eth1", mac="02:42:0a:f1:40:02", mtu=1280)
        rtnl.addr_add("eth1", "10.241.64.2/24")
        rtnl.link_up("eth1")
        rtnl.link_up("lo")
        return rtnl.link("eth1")

    eth1 = netlink.inside(sandbox, configure)
    assert (eth1.ifname, eth1.address, eth1.mtu, eth1.up) == ("eth1", "02:42:0a:f1:40:02", 1280,
                                                              True)
    assert eth1.kind == "veth"
    assert addresses(sandbox, "eth1") >= {"10.241.64.2/24"}
    assert netlink.inside(sandbox, lambda rtnl: rtnl.routes(socket.AF_INET)) == [
        ipaddress.ip_network("10.241.64.0/24")]
    netlink.link_delete(host)
    assert [link["ifname"] for link in ip_json(sandbox, "link", "show")] == ["lo"]
