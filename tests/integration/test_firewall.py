"""The bridge firewall on the real kernel: the rules iptables-save shows, and
the traffic they let through or drop.

Each test uses its own chain prefix (DYTF<hex>), links and namespaces named
dyt…<hex>, and a 10.2xx.0.0/16 no route uses yet; all of it is removed even
when a test fails. Other daemons may be changing the firewall at the same
time (dockerd's DOCKER chains, other tests' DYT… prefixes), so before/after
comparisons leave their lines out.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import re
import socket
import subprocess
import threading
import time

import pytest

from dockyard.linux import iptables, netns
from dockyard.network.firewall import Firewall, PortMapping

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def tag() -> str:
    return os.urandom(3).hex()


@pytest.fixture
def net16() -> str:
    """A 10.2xx.0.0/16 that no route on the host touches."""
    used = [ipaddress.ip_network(line.split()[0]) for line in ip("-4", "route").splitlines()
            if line[0].isdigit()]
    free = [n for n in (ipaddress.ip_network(f"10.{b}.0.0/16") for b in range(200, 240))
            if not any(n.overlaps(u) for u in used)]
    return str(random.choice(free).network_address).rsplit(".", 2)[0]  # "10.2xx"


def snapshot(tag: str) -> dict[str, object]:
    """Links, namespaces and both rulesets, leaving out what other daemons own."""
    def mine_or_nobodys(line: str) -> bool:
        if tag in line:
            return True
        return not re.search(r"DOCKER|docker0|\bbr-[0-9a-f]{12}\b|DYT|dyt|veth", line)

    links = {l.split()[0].split("@")[0] for l in ip("-br", "link").splitlines()}
    spaces = {l.split()[0] for l in ip("netns").splitlines()}
    out: dict[str, object] = {"links": {l for l in links if mine_or_nobodys(l)},
                              "netns": {n for n in spaces if mine_or_nobodys(n)}}
    for family in (4, 6):
        lines = []
        for table, t in sorted(iptables.parse(iptables.save(family)).items()):
            if not t.rules and all(p != "-" for p in t.chains.values()):
                continue  # an empty table, as if never loaded
            lines += [f"{table} :{c} {p}" for c, p in t.chains.items()]
            lines += [f"{table} -A {c} {s}" for c, s in t.rules]
        out[f"ip{family}"] = [l for l in lines if mine_or_nobodys(l)]
    return out


@pytest.fixture
def untouched(tag):
    """Fails the test if it leaves anything of its own behind."""
    before = snapshot(tag)
    yield
    after = snapshot(tag)
    assert after == before
    assert not any(tag in str(v) for v in after.values())


@pytest.fixture
def firewall(tag, untouched):
    fw = Firewall(f"DYTF{tag}")
    yield fw
    fw.teardown()


def our_rules(family: int, prefix: str) -> list[str]:
    """Every rule in our chains and every jump into them, as `table -A chain spec`."""
    out = []
    for table, t in sorted(iptables.parse(iptables.save(family)).items()):
        out += [f"{table} -A {c} {s}" for c, s in t.rules if prefix in f"{c} {s}"]
    return out


def test_rules_as_iptables_save_shows_them(firewall, tag):
    P, br = firewall.chains.prefix, f"dytfr{tag}"
    firewall.setup()
    firewall.add_network(br, ["10.231.0.1/24", "fd00:231::1/64"])
    ports = [PortMapping("tcp", "0.0.0.0", 8080, "10.231.0.2", 80, br),
             PortMapping("udp", "127.0.0.1", 5353, "10.231.0.2", 53, br),
             PortMapping("tcp", "::", 8080, "fd00:231::2", 80, br)]
    firewall.add_ports(ports)

    def base(lo):
        """What setup() alone leaves: the jumps into our chains and the RETURNs."""
        return [f"filter -A FORWARD -j {P}-USER", f"filter -A FORWARD -j {P}-ISOLATION-STAGE-1",
                f"filter -A FORWARD -j {P}-FORWARD",
                f"filter -A {P}-ISOLATION-STAGE-1 -j RETURN",
                f"filter -A {P}-ISOLATION-STAGE-2 -j RETURN",
                f"filter -A {P}-USER -j RETURN",
                f"nat -A PREROUTING -m addrtype --dst-type LOCAL -j {P}",
                f"nat -A OUTPUT ! -d {lo} -m addrtype --dst-type LOCAL -j {P}",
                f"nat -A POSTROUTING -j {P}-POSTROUTING"]

    def network(subnet):
        return [
            f"filter -A {P}-FORWARD -o {br} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            f"filter -A {P}-FORWARD -o {br} -j {P}",
            f"filter -A {P}-FORWARD -i {br} ! -o {br} -j ACCEPT",
            f"filter -A {P}-FORWARD -i {br} -o {br} -j ACCEPT",
            f"filter -A {P}-ISOLATION-STAGE-1 -i {br} ! -o {br} -j {P}-ISOLATION-STAGE-2",
            f"filter -A {P}-ISOLATION-STAGE-2 -o {br} -j DROP",
            f"nat -A {P} -i {br} -j RETURN",
            f"nat -A {P}-POSTROUTING -s {subnet} ! -o {br} -j MASQUERADE"]

    def port(proto, host, host_port, cip, dest, cport):
        return [
            f"nat -A {P} {host}! -i {br} -p {proto} -m {proto} --dport {host_port} "
            f"-j DNAT --to-destination {dest}:{cport}",
            f"filter -A {P} -d {cip} ! -i {br} -o {br} -p {proto} -m {proto} --dport {cport} "
            f"-j ACCEPT",
            f"nat -A {P}-POSTROUTING -s {cip} -d {cip} -p {proto} -m {proto} --dport {cport} "
            f"-j MASQUERADE"]

    base4, base6 = sorted(base("127.0.0.0/8")), sorted(base("::1/128"))
    v4 = sorted(base4 + network("10.231.0.0/24")
                + port("tcp", "", 8080, "10.231.0.2/32", "10.231.0.2", 80)
                + port("udp", "-d 127.0.0.1/32 ", 5353, "10.231.0.2/32", "10.231.0.2", 53))
    v6 = sorted(base6 + network("fd00:231::/64")
                + port("tcp", "", 8080, "fd00:231::2/128", "[fd00:231::2]", 80))
    assert sorted(our_rules(4, P)) == v4
    assert sorted(our_rules(6, P)) == v6
    assert iptables.check(4, "nat", P, f"! -i {br} -p tcp --dport 8080 -j DNAT "
                                       f"--to-destination 10.231.0.2:80")

    # At a restart the daemon sets up again (our chains emptied, the jumps
    # kept once) and adds everything back: the same rules, nothing twice.
    firewall.setup()
    assert sorted(our_rules(4, P)) == base4 and sorted(our_rules(6, P)) == base6
    firewall.add_network(br, ["10.231.0.1/24", "fd00:231::1/64"])
    firewall.add_ports(ports)
    assert sorted(our_rules(4, P)) == v4 and sorted(our_rules(6, P)) == v6
    firewall.setup()
    firewall.setup()
    assert sorted(our_rules(4, P)) == base4 and sorted(our_rules(6, P)) == base6

    # Removing is undoing, also of what is already gone.
    firewall.add_network(br, ["10.231.0.1/24", "fd00:231::1/64"])
    firewall.add_port("tcp", "0.0.0.0", 8080, "10.231.0.2", 80, br)
    firewall.remove_port("tcp", "0.0.0.0", 8080, "10.231.0.2", 80, br)
    firewall.remove_port("tcp", "0.0.0.0", 8080, "10.231.0.2", 80, br)
    firewall.remove_network(br, ["10.231.0.1/24", "fd00:231::1/64"])
    assert sorted(our_rules(4, P)) == base4 and sorted(our_rules(6, P)) == base6
    firewall.teardown()
    assert our_rules(4, P) == [] and our_rules(6, P) == []


def test_errors_carry_iptables_stderr(firewall):
    with pytest.raises(iptables.IptablesError, match="line") as e:
        firewall.add_network("dytnochain", ["10.232.0.1/24"])  # setup() never ran
    assert e.value.stderr and e.value.line


def test_batches_are_fast(firewall, tag):
    firewall.setup()
    br = f"dytft{tag}"
    firewall.add_network(br, ["10.233.0.1/24"])
    for n in (1, 10):
        ports = [PortMapping("tcp", "0.0.0.0", 20000 + i, "10.233.0.2", 80 + i, br)
                 for i in range(n)]
        t0 = time.perf_counter()
        firewall.add_ports(ports)
        t1 = time.perf_counter()
        firewall.remove_ports(ports)
        t2 = time.perf_counter()
        print(f"{n} ports: add_ports {1000 * (t1 - t0):.1f} ms, "
              f"remove_ports {1000 * (t2 - t1):.1f} ms")
        assert t2 - t0 < 2.0


# --- real traffic -----------------------------------------------------------


class Topology:
    """Bridges with one namespace each, and one namespace on a plain veth (a
    "remote client" that reaches the host through no bridge of ours)."""

    def __init__(self, tag: str, net: str):
        self.tag, self.net = tag, net
        self.undo = contextlib.ExitStack()

    def bridge(self, name: str, n: int) -> str:
        br = f"dytb{name}{self.tag}"
        ip("link", "add", br, "type", "bridge")
        self.undo.callback(ip, "link", "del", br)
        ip("addr", "add", f"{self.net}.{n}.1/24", "dev", br)
        ip("link", "set", br, "up")
        return br

    def namespace(self, name: str, n: int, bridge: str | None = None) -> str:
        """netns dytn<name><tag> with eth0 = {net}.{n}.2/24, gateway {net}.{n}.1."""
        ns, host_end = f"dytn{name}{self.tag}", f"dytv{name}{self.tag}"
        ip("netns", "add", ns)
        self.undo.callback(ip, "netns", "del", ns)
        ip("link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", ns)
        # Deleting the namespace would take its veth pair along only once the
        # kernel gets round to freeing it; deleting one end removes both now.
        self.undo.callback(ip, "link", "del", host_end)
        if bridge:
            ip("link", "set", host_end, "master", bridge)
        else:
            ip("addr", "add", f"{self.net}.{n}.1/24", "dev", host_end)
        ip("link", "set", host_end, "up")
        for args in (["addr", "add", f"{self.net}.{n}.2/24", "dev", "eth0"],
                     ["link", "set", "eth0", "up"], ["link", "set", "lo", "up"],
                     ["route", "add", "default", "via", f"{self.net}.{n}.1"]):
            ip("-n", ns, *args)
        return ns


@pytest.fixture
def topology(tag, net16, untouched):
    topo = Topology(tag, net16)
    with topo.undo:
        yield topo


def listen(ns: str, address: str, port: int) -> socket.socket:
    """A TCP server inside `ns` that answers each client with the client's
    address as it saw it, until the caller closes it."""
    server = netns.run_inside(f"/run/netns/{ns}",
                              lambda: socket.create_server((address, port)))
    server.settimeout(0.2)

    def serve() -> None:
        while server.fileno() != -1:
            try:
                conn, (peer, _) = server.accept()
            except OSError:  # a timeout, or closed
                continue
            with conn:
                conn.sendall(peer.encode())

    threading.Thread(target=serve, daemon=True).start()
    return server


def dial(ns: str, address: str, port: int, timeout: float = 1.0) -> str | None:
    """What the server answers to a connection from inside `ns`; None if the
    connection is refused or gets no answer within `timeout`."""
    def connect() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(timeout)
        return s
    s = netns.run_inside(f"/run/netns/{ns}", connect)
    try:
        s.connect((address, port))
        return s.recv(64).decode()
    except OSError:
        return None
    finally:
        s.close()


def drops(chain: str, spec_part: str) -> int:
    """Packets counted by the rule of `chain` whose text contains spec_part."""
    out = subprocess.run(["iptables", "-w", "-t", "filter", "-L", chain, "-v", "-x", "-n"],
                         check=True, capture_output=True, text=True).stdout
    return sum(int(l.split()[0]) for l in out.splitlines()[2:] if spec_part in l)


def free_port_or_skip(port: int) -> None:
    """Skip unless nothing on the host listens on `port`: a connection that
    our rules do not rewrite must not reach some other program."""
    with socket.socket() as probe:
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            pytest.skip(f"port {port} is in use on this host")


def forwarding_is_on() -> bool:
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        return f.read().strip() == "1"


@pytest.mark.skipif(not forwarding_is_on(), reason="net.ipv4.ip_forward is off on this host")
def test_isolation_drops_between_bridges_and_dnat_publishes(firewall, topology):
    net = topology.net
    a, b = topology.bridge("a", 1), topology.bridge("b", 2)
    ns_a, ns_b = topology.namespace("a", 1, a), topology.namespace("b", 2, b)
    ns_c = topology.namespace("c", 3)
    server = listen(ns_a, f"{net}.1.2", 8080)
    topology.undo.callback(server.close)
    free_port_or_skip(18080)

    firewall.setup()
    if "policy ACCEPT" in subprocess.run(["iptables", "-w", "-L", "FORWARD", "-n"],
                                         capture_output=True, text=True).stdout:
        # Without the networks' rules the host routes between the bridges
        # (FORWARD's policy accepts), so what follows is the rules' doing.
        assert dial(ns_b, f"{net}.1.2", 8080) == f"{net}.2.2"

    firewall.add_network(a, [f"{net}.1.1/24"])
    firewall.add_network(b, [f"{net}.2.1/24"])
    topology.undo.callback(firewall.remove_network, b, [f"{net}.2.1/24"])
    topology.undo.callback(firewall.remove_network, a, [f"{net}.1.1/24"])
    P = firewall.chains

    # Isolation: b → a enters stage 2 and is dropped on its way into a.
    dropped = drops(P.isolation2, a)
    assert dial(ns_b, f"{net}.1.2", 8080) is None
    assert drops(P.isolation2, a) > dropped

    # Published on the host's port 18080: a client reaches it through the
    # host's own address, rewritten to a's (DNAT); it sees the client's address.
    firewall.add_port("tcp", "0.0.0.0", 18080, f"{net}.1.2", 8080, a)
    try:
        assert dial(ns_c, f"{net}.3.1", 18080) == f"{net}.3.2"
        # the container's outgoing connections are masqueraded: a → c is seen
        # as coming from the host's address on c's link
        with listen(ns_c, f"{net}.3.2", 9090):
            assert dial(ns_a, f"{net}.3.2", 9090) == f"{net}.3.1"
    finally:
        firewall.remove_port("tcp", "0.0.0.0", 18080, f"{net}.1.2", 8080, a)
    assert dial(ns_c, f"{net}.3.1", 18080, timeout=0.5) is None
    # the isolation held throughout
    assert dial(ns_b, f"{net}.1.2", 8080, timeout=0.5) is None


@pytest.mark.skipif(not forwarding_is_on(), reason="net.ipv4.ip_forward is off on this host")
def test_loopback_dnat_without_userland_proxy(tag, topology, untouched):
    """dockerd --userland-proxy=false: 127.0.0.1:port is DNAT'd to the
    container, and masqueraded to the bridge's address so that the reply
    comes back (route_localnet lets 127.0.0.1-sourced packets be routed)."""
    fw = Firewall(f"DYTL{tag}", userland_proxy=False)
    topology.undo.callback(fw.teardown)
    net = topology.net
    a = topology.bridge("a", 1)
    ns_a = topology.namespace("a", 1, a)
    server = listen(ns_a, f"{net}.1.2", 8080)
    topology.undo.callback(server.close)
    with open(f"/proc/sys/net/ipv4/conf/{a}/route_localnet", "w") as f:
        f.write("1")
    free_port_or_skip(18081)
    fw.setup()
    fw.add_network(a, [f"{net}.1.1/24"])
    fw.add_port("tcp", "0.0.0.0", 18081, f"{net}.1.2", 8080, a)
    with socket.create_connection(("127.0.0.1", 18081), timeout=2) as s:
        assert s.recv(64).decode() == f"{net}.1.1"
