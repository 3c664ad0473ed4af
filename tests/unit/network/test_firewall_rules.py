"""The bridge driver's iptables rules as data, golden against dockerd 20.10.

The DOCKERD_* texts are iptables-save lines written by dockerd 20.10.24
(Debian's docker.io, started with `--bip 10.250.0.1/24`), except
DOCKERD_HAIRPIN_NAT: dockerd was not run with --userland-proxy=false, so that
one is composed from libnetwork's code for it (setupIPTablesInternal,
ChainInfo.Forward). Ours are the same rules with dockerd's chain names mapped
to the prefix's, and the per-bridge rules that dockerd puts in FORWARD and
POSTROUTING moved into P-FORWARD and P-POSTROUTING (see `ours`).

Batches are checked by replaying them on a model of iptables-restore
--noflush (`Restore`), so setup, teardown and removal are tested without root.
"""

from __future__ import annotations

import re

import pytest

from dockyard.linux import iptables
from dockyard.linux.iptables import Table
from dockyard.network import firewall
from dockyard.network.firewall import Chains, Firewall, PortMapping

P = Chains("DYT")

DOCKERD_START = {"filter": """\
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-ISOLATION-STAGE-1
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o docker0 -j DOCKER
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT
-A FORWARD -i docker0 -o docker0 -j ACCEPT
-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-1 -j RETURN
-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP
-A DOCKER-ISOLATION-STAGE-2 -j RETURN
-A DOCKER-USER -j RETURN
""", "nat": """\
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 10.250.0.0/24 ! -o docker0 -j MASQUERADE
-A DOCKER -i docker0 -j RETURN
"""}

# `docker network create --internal --subnet 10.241.0.0/24 nint2`: the lines it added.
DOCKERD_INTERNAL = {"filter": """\
-A FORWARD -i br-08146665cc18 -o br-08146665cc18 -j ACCEPT
-A DOCKER-ISOLATION-STAGE-1 ! -s 10.241.0.0/24 -o br-08146665cc18 -j DROP
-A DOCKER-ISOLATION-STAGE-1 ! -d 10.241.0.0/24 -i br-08146665cc18 -j DROP
""", "nat": ""}

# `docker network create --subnet 10.240.0.0/24 n7`: the lines it added.
DOCKERD_NETWORK = {"filter": """\
-A FORWARD -o br-de0d98c02afd -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o br-de0d98c02afd -j DOCKER
-A FORWARD -i br-de0d98c02afd ! -o br-de0d98c02afd -j ACCEPT
-A FORWARD -i br-de0d98c02afd -o br-de0d98c02afd -j ACCEPT
-A DOCKER-ISOLATION-STAGE-1 -i br-de0d98c02afd ! -o br-de0d98c02afd -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-2 -o br-de0d98c02afd -j DROP
""", "nat": """\
-A POSTROUTING -s 10.240.0.0/24 ! -o br-de0d98c02afd -j MASQUERADE
-A DOCKER -i br-de0d98c02afd -j RETURN
"""}

# `docker run -p 18080:80` (10.250.0.4), then `docker run -p 127.0.0.1:18083:80/udp`
# (10.250.0.8), both on docker0: the lines they added.
DOCKERD_PORTS = {"filter": """\
-A DOCKER -d 10.250.0.4/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT
-A DOCKER -d 10.250.0.8/32 ! -i docker0 -o docker0 -p udp -m udp --dport 80 -j ACCEPT
""", "nat": """\
-A POSTROUTING -s 10.250.0.4/32 -d 10.250.0.4/32 -p tcp -m tcp --dport 80 -j MASQUERADE
-A POSTROUTING -s 10.250.0.8/32 -d 10.250.0.8/32 -p udp -m udp --dport 80 -j MASQUERADE
-A DOCKER ! -i docker0 -p tcp -m tcp --dport 18080 -j DNAT --to-destination 10.250.0.4:80
-A DOCKER -d 127.0.0.1/32 ! -i docker0 -p udp -m udp --dport 18083 -j DNAT --to-destination 10.250.0.8:80
"""}

# --userland-proxy=false (dockerd's "hairpin mode"), docker0 and -p 8080:80: its nat table.
DOCKERD_HAIRPIN_NAT = """\
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -o docker0 -m addrtype --src-type LOCAL -j MASQUERADE
-A POSTROUTING -s 10.250.0.0/24 ! -o docker0 -j MASQUERADE
-A POSTROUTING -s 10.250.0.2/32 -d 10.250.0.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE
-A DOCKER -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.250.0.2:80
"""

BUILTIN = {"filter": ("INPUT", "FORWARD", "OUTPUT"),
           "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING")}


def ours(dockerd: str, jumps: bool = False, chains: Chains = P) -> dict[str, list[str]]:
    """dockerd's lines in our chains: DOCKER* → prefix; per-bridge FORWARD and
    POSTROUTING rules into P-FORWARD and P-POSTROUTING; with `jumps`, a table's
    whole text, the jumps to those two chains added where dockerd's rules were."""
    out = []
    for line in dockerd.splitlines():
        line = re.sub(r"DOCKER(?=[ -]|$)", chains.prefix, line)
        if line.startswith("-A FORWARD -") and not line.startswith("-A FORWARD -j "):
            line = line.replace("-A FORWARD", f"-A {chains.forward}", 1)
        if line.startswith("-A POSTROUTING -") and "-j MASQUERADE" in line:
            line = line.replace("-A POSTROUTING", f"-A {chains.postrouting}", 1)
        out.append(line)
        if jumps and line == f"-A FORWARD -j {chains.isolation1}":
            out.append(f"-A FORWARD -j {chains.forward}")
        if jumps and line.startswith("-A PREROUTING "):
            out.append(f"-A POSTROUTING -j {chains.postrouting}")
    return by_chain(out)


def by_chain(lines: list[str]) -> dict[str, list[str]]:
    """Each chain's rules in order: what iptables-save shows, up to the order of chains."""
    out: dict[str, list[str]] = {}
    for line in lines:
        _, chain, spec = line.split(" ", 2)
        out.setdefault(chain, []).append(spec)
    return out


class Restore:
    """A model of iptables-restore --noflush over saved tables, all or nothing."""

    def __init__(self, tables: dict[str, Table] | None = None):
        self.tables = tables or {t: Table({c: "ACCEPT" for c in cs}) for t, cs in BUILTIN.items()}

    def __call__(self, batch: str) -> None:
        new = {t: Table(dict(v.chains), list(v.rules)) for t, v in self.tables.items()}
        table = None
        for line in batch.splitlines():
            if line.startswith("*"):
                table = new.setdefault(line[1:], Table())
            elif line.startswith(":"):
                name = line[1:].split()[0]
                table.chains[name] = "-"
                table.rules = [(c, s) for c, s in table.rules if c != name]
            elif line != "COMMIT":
                op, chain, spec = (line.split(" ", 2) + [""])[:3]
                assert chain in table.chains, line
                if op == "-A":
                    table.rules.append((chain, spec))
                elif op == "-I":
                    first = next((i for i, (c, _) in enumerate(table.rules) if c == chain),
                                 len(table.rules))
                    table.rules.insert(first, (chain, spec))
                elif op == "-D":
                    if (chain, spec) not in table.rules:
                        raise iptables.IptablesError(["restore"], 1, "line failed", line)
                    table.rules.remove((chain, spec))
                elif op == "-F":
                    table.rules = [(c, s) for c, s in table.rules if c != chain]
                elif op == "-X":
                    assert not any(c == chain for c, _ in table.rules)
                    del table.chains[chain]
        self.tables = new

    def lines(self, table: str) -> list[str]:
        return [f"-A {c} {s}" for c, s in self.tables[table].rules]

    def chains(self, table: str) -> dict[str, list[str]]:
        return by_chain(self.lines(table))

    def both(self) -> dict[str, dict[str, list[str]]]:
        return {t: self.chains(t) for t in ("filter", "nat")}


def applied(*rule_lists, proxy=True) -> Restore:
    """setup(), then each list of rules added, on empty IPv4 tables."""
    r = Restore()
    r(firewall.setup_batch(P, 4, r.tables, proxy))
    for rules in rule_lists:
        r(firewall.batch(rules))
    return r


def added(r: Restore, *rule_lists) -> dict[str, dict[str, list[str]]]:
    """What adding the rules puts in each chain, beyond what was there."""
    before = r.both()
    for rules in rule_lists:
        r(firewall.batch(rules))
    return {t: {c: [x for x in specs if x not in before[t].get(c, [])]
                for c, specs in chains.items() if specs != before[t].get(c)}
            for t, chains in r.both().items()}


def docker0(**kw):
    return firewall.network_rules(P, "docker0", ["10.250.0.1/24"], families=(4,), **kw)


def port(proto="tcp", host_ip="0.0.0.0", host_port=8080, cport=80, **kw):
    return firewall.port_rules(P, PortMapping(proto, host_ip, host_port, "10.250.0.2", cport,
                                              "docker0"), **kw)


def test_default_bridge_matches_dockerd_at_start():
    expected = {t: ours(text, jumps=True) for t, text in DOCKERD_START.items()}
    assert applied(docker0()).both() == expected


def test_user_network_matches_dockerd():
    rules = firewall.network_rules(P, "br-de0d98c02afd", ["10.240.0.1/24"], families=(4,))
    assert added(applied(docker0()), rules) == \
        {t: ours(text) for t, text in DOCKERD_NETWORK.items()}


def test_internal_network_drops_what_is_not_its_subnet():
    rules = firewall.network_rules(P, "br-08146665cc18", ["10.241.0.1/24"], internal=True,
                                   families=(4,))
    assert added(applied(docker0()), rules) == \
        {t: ours(text) for t, text in DOCKERD_INTERNAL.items()}


def test_newest_network_first_as_dockerd_inserts():
    n1 = firewall.network_rules(P, "br-1", ["172.17.0.0/16"], families=(4,))
    n2 = firewall.network_rules(P, "br-2", ["172.18.0.0/16"], families=(4,))
    assert applied(n1, n2).chains("filter")[P.isolation1] == [
        f"-i br-2 ! -o br-2 -j {P.isolation2}", f"-i br-1 ! -o br-1 -j {P.isolation2}",
        "-j RETURN"]


def test_ports_match_dockerd():
    ports = [PortMapping("tcp", "0.0.0.0", 18080, "10.250.0.4", 80, "docker0"),
             PortMapping("udp", "127.0.0.1", 18083, "10.250.0.8", 80, "docker0")]
    rules = [r for p in ports for r in firewall.port_rules(P, p)]
    assert added(applied(docker0()), rules) == \
        {t: ours(text) for t, text in DOCKERD_PORTS.items()}


def test_published_ports_come_after_the_networks_returns():
    # A packet from another bridge must meet that bridge's RETURN before any DNAT.
    nat = applied(port(), docker0()).chains("nat")[P.main]
    assert nat[0] == "-i docker0 -j RETURN" and "DNAT" in nat[1]


def test_without_userland_proxy_dnat_serves_every_source():
    r = applied(docker0(userland_proxy=False), port(userland_proxy=False), proxy=False)
    assert r.chains("nat") == ours(DOCKERD_HAIRPIN_NAT, jumps=True)


def test_icc_off_appends_a_drop_after_the_bridges_other_rules():
    fwd = applied(docker0(icc=False)).chains("filter")[P.forward]
    assert fwd == ["-o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
                   f"-o docker0 -j {P.main}", "-i docker0 ! -o docker0 -j ACCEPT",
                   "-i docker0 -o docker0 -j DROP"]


def test_no_masquerade_no_return():
    nat = applied(docker0(masquerade=False)).chains("nat")
    assert P.postrouting not in nat and P.main not in nat


def test_snat_to_a_fixed_host_address():
    nat = applied(docker0(snat_ip="192.0.2.10")).chains("nat")
    assert nat[P.postrouting] == ["-s 10.250.0.0/24 ! -o docker0 -j SNAT --to-source 192.0.2.10"]


def test_ipv6_network_uses_ip6tables_forms():
    rules = firewall.network_rules(P, "br6", ["172.21.0.1/16", "fd00:dead::1/64"])
    v6 = [r for r in rules if r.family == 6]
    assert firewall.Rule(6, "nat", P.postrouting, "-s fd00:dead::/64 ! -o br6 -j MASQUERADE",
                         top=True) in v6
    assert {r.spec for r in v6 if r.chain == P.isolation2} == {"-o br6 -j DROP"}
    rules = firewall.port_rules(P, PortMapping("tcp", "::", 8080, "fd00:dead::2", 80, "br6"))
    assert [r.spec for r in rules] == [
        "! -i br6 -p tcp -m tcp --dport 8080 -j DNAT --to-destination [fd00:dead::2]:80",
        "-d fd00:dead::2/128 ! -i br6 -o br6 -p tcp -m tcp --dport 80 -j ACCEPT",
        "-s fd00:dead::2/128 -d fd00:dead::2/128 -p tcp -m tcp --dport 80 -j MASQUERADE"]
    assert firewall.jump_rules(P, 6)[1].spec == \
        f"! -d ::1/128 -m addrtype --dst-type LOCAL -j {P.main}"


def test_ipv4_only_network_is_still_isolated_in_ip6tables():
    v6 = [r for r in firewall.network_rules(P, "br4", ["10.210.0.0/24"]) if r.family == 6]
    assert [r.chain for r in v6] == [P.isolation1, P.isolation2]


def test_port_across_families_is_left_to_the_proxy():
    assert firewall.port_rules(P, PortMapping("tcp", "::", 80, "10.0.0.2", 80, "br")) == []


def test_bad_inputs():
    with pytest.raises(ValueError, match="one IPv4 subnet"):
        firewall.network_rules(P, "br", ["10.0.0.0/24", "10.1.0.0/24"])
    with pytest.raises(ValueError, match="protocol"):
        port("icmp")
    for bad in ("", "1DYT", "DY T", "A" * 11):
        with pytest.raises(ValueError, match="chain prefix"):
            Chains(bad)
    assert Chains("A" * 10).isolation1 == "A" * 10 + "-ISOLATION-STAGE-1"


def test_setup_again_empties_our_chains_but_keeps_user_rules():
    r = applied(docker0(), port())
    r.tables["filter"].rules.insert(0, (P.user, "-s 192.0.2.0/24 -j DROP"))
    r(firewall.setup_batch(P, 4, r.tables))
    fresh = applied().both()
    fresh["filter"][P.user].insert(0, "-s 192.0.2.0/24 -j DROP")
    assert r.both() == fresh
    # nothing but the chain declarations and RETURNs a second time: no jump twice
    again = firewall.setup_batch(P, 4, r.tables).splitlines()
    assert [l for l in again if l.startswith("-") and not l.endswith("-j RETURN")] == []


def test_setup_repairs_jumps_without_touching_others():
    r = Restore()
    r.tables["filter"].chains["OTHER"] = "-"
    r.tables["filter"].rules += [("FORWARD", "-j OTHER"), ("FORWARD", f"-j {P.forward}")]
    r.tables["filter"].chains[P.forward] = "-"
    r.tables["nat"].chains[P.main] = "-"
    r.tables["nat"].rules += [("OUTPUT", f"-m addrtype --dst-type LOCAL -j {P.main}")] * 2
    r(firewall.setup_batch(P, 4, r.tables))
    assert r.chains("filter")["FORWARD"] == [
        f"-j {P.user}", f"-j {P.isolation1}", f"-j {P.forward}", "-j OTHER"]
    assert r.chains("nat")["OUTPUT"] == [
        f"! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j {P.main}"]


def test_teardown_leaves_what_was_there():
    r = Restore()
    r.tables["filter"].chains["OTHER"] = "-"
    r.tables["filter"].rules += [("FORWARD", "-j OTHER"), ("OTHER", "-j RETURN")]
    before = r.both()
    r(firewall.setup_batch(P, 4, r.tables))
    r(firewall.batch(docker0() + port()))
    r(firewall.teardown_batch(P, r.tables))
    assert r.both() == before
    assert set(r.tables["filter"].chains) == {"INPUT", "FORWARD", "OUTPUT", "OTHER"}
    assert set(r.tables["nat"].chains) == set(BUILTIN["nat"])
    assert firewall.teardown_batch(P, r.tables) == ""


class FakeTools:
    """linux.iptables with a Restore model per family behind it."""

    def __init__(self):
        self.models = {4: Restore(), 6: Restore()}
        self.calls: list[tuple[str, int]] = []

    def restore(self, family, batch):
        self.calls.append(("restore", family))
        self.models[family](batch)

    def save(self, family, table=None):
        self.calls.append(("save", family))
        m = self.models[family]
        return "".join(f"*{t}\n" + "".join(f":{c} {p} [0:0]\n" for c, p in tab.chains.items())
                       + "".join(f"-A {c} {s}\n" for c, s in tab.rules) + "COMMIT\n"
                       for t, tab in m.tables.items())


@pytest.fixture
def tools(monkeypatch):
    fake = FakeTools()
    monkeypatch.setattr(iptables, "restore", fake.restore)
    monkeypatch.setattr(iptables, "save", fake.save)
    return fake


def test_firewall_one_restore_per_family_and_operation(tools):
    fw = Firewall("DYT")
    fw.setup()
    tools.calls.clear()
    fw.add_network("br0", ["10.220.0.1/24", "fd00:220::1/64"])
    assert tools.calls == [("restore", 4), ("restore", 6)]
    tools.calls.clear()
    fw.add_ports([PortMapping("tcp", "0.0.0.0", 8000 + i, "10.220.0.2", 80 + i, "br0")
                  for i in range(10)])
    assert tools.calls == [("restore", 4)]
    fw.remove_ports([PortMapping("tcp", "0.0.0.0", 8000 + i, "10.220.0.2", 80 + i, "br0")
                     for i in range(10)])
    fw.remove_network("br0", ["10.220.0.1/24", "fd00:220::1/64"])
    assert tools.models[4].both() == applied().both()


def test_removing_what_is_gone_is_not_an_error(tools):
    fw = Firewall("DYT", ip6tables=False)
    fw.setup()
    fw.add_network("br0", ["10.220.0.1/24"])
    fw.add_port("tcp", "0.0.0.0", 8080, "10.220.0.2", 80, "br0")
    tools.models[4].tables["nat"].rules.remove((P.main, "-i br0 -j RETURN"))
    fw.remove_network("br0", ["10.220.0.1/24"])
    fw.remove_port("tcp", "0.0.0.0", 8080, "10.220.0.2", 80, "br0")
    fw.remove_port("tcp", "0.0.0.0", 8080, "10.220.0.2", 80, "br0")
    assert tools.models[4].both() == applied().both()


def test_disabled_does_nothing(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("iptables must not run")
    monkeypatch.setattr(iptables, "restore", boom)
    monkeypatch.setattr(iptables, "save", boom)
    fw = Firewall("DYT", enabled=False)
    fw.setup()
    fw.add_network("br0", ["10.220.0.1/24"])
    fw.add_port("tcp", "0.0.0.0", 8080, "10.220.0.2", 80, "br0")
    fw.remove_port("tcp", "0.0.0.0", 8080, "10.220.0.2", 80, "br0")
    fw.remove_network("br0", ["10.220.0.1/24"])
    fw.teardown()


def test_parse_saved_output():
    saved = iptables.parse("# Generated\n*nat\n:PREROUTING ACCEPT [0:0]\n:DYT - [0:0]\n"
                           "-A PREROUTING -m addrtype --dst-type LOCAL -j DYT\nCOMMIT\n")
    assert saved["nat"].chains == {"PREROUTING": "ACCEPT", "DYT": "-"}
    assert saved["nat"].rules == [("PREROUTING", "-m addrtype --dst-type LOCAL -j DYT")]
