"""The packet filter of bridge networks: dockerd 20.10's iptables rules.

A container on a bridge network sits behind its host like a machine behind a
home router. Its private address is rewritten to the host's on the way out
(MASQUERADE), a published port is a destination rewrite on the way in (DNAT),
and the filter decides what may be forwarded between bridges and the world.
The rules are dockerd's, with dockerd's chains renamed from a prefix P
(DOCKER → P, default "DOCKYARD"), so that dockyard, dockerd and a test's
daemon can share a host. A packet meets them in this order:

nat PREROUTING / OUTPUT, `-m addrtype --dst-type LOCAL -j P`
    Only packets to one of the host's own addresses can be for a published
    port, so only those enter nat P, which holds one DNAT per published port
    (`--dport 8080 -j DNAT --to-destination 172.17.0.2:80`). OUTPUT (packets
    the host itself sends) skips 127.0.0.0/8: a packet to 127.0.0.1 that is
    rewritten to a container address would still carry source 127.0.0.1, which
    the kernel refuses to route off the loopback device. Those connections go
    to the userland proxy (docker-proxy) listening on the port instead. nat P
    starts with `-i <bridge> -j RETURN` per bridge, and each DNAT says
    `! -i <bridge>`: a container that dials a host address is served by the
    proxy too, not rewritten. Only the first packet of a connection goes
    through nat; conntrack rewrites the rest, replies included.

filter FORWARD, `-j P-USER`, `-j P-ISOLATION-STAGE-1`, `-j P-FORWARD`
    P-USER belongs to the administrator (dockerd's DOCKER-USER): it comes
    first, and it is never emptied by the daemon. The isolation chains keep
    bridge networks apart in two steps, so that N networks cost 2N rules, not
    N²: stage 1 sends a packet that leaves a bridge for another interface
    (`-i br ! -o br`) to stage 2, which drops it if that interface is another
    network's bridge (`-o br -j DROP`). Traffic to the outside falls through
    both. P-FORWARD holds, per bridge, what dockerd puts directly in FORWARD:
    replies to the bridge's own connections are let in (`-o br --ctstate
    RELATED,ESTABLISHED`); new connections into the bridge are only those
    filter P accepts (one ACCEPT per published port, `-o br -j P`); anything
    may leave for elsewhere (`-i br ! -o br -j ACCEPT`); and containers on one
    bridge may talk to each other (`-i br -o br -j ACCEPT`, or DROP with
    icc=false). Bridged frames only reach FORWARD when br_netfilter is loaded
    (net.bridge.bridge-nf-call-iptables=1); then the icc rule is what
    decides, which is why dockerd requires it when icc is off.

nat POSTROUTING, `-j P-POSTROUTING`
    Packets from a bridge's subnet that leave by another interface get the
    outgoing interface's address (`-s subnet ! -o br -j MASQUERADE`, or SNAT
    to a fixed address). Per published port, `-s cip -d cip --dport cport -j
    MASQUERADE` is for a container that reaches its own published port
    through a host address and is DNAT'd back to itself (hairpin NAT, with
    the userland proxy off, below): without the rewrite its reply would go
    from itself to itself directly, skipping the reverse DNAT, and the
    connection would never complete. (The frame also has to leave by the
    bridge port it came in on, which the bridge allows only for a port in
    hairpin mode; dockerd sets that on the veth when the proxy is off.)

Internal networks (`--internal`) get no masquerading, no published ports and
not the two-stage isolation: two DROPs in stage 1 discard anything entering
or leaving the bridge whose other end is not the network's own subnet.

FORWARD's policy is left alone. dockerd 20.10 sets it to DROP only when it
turns net.ipv4.ip_forward on itself; where forwarding was already on, a host
with a route to a bridge's subnet reaches its containers directly, under
dockerd as here.

With the userland proxy off (dockerd --userland-proxy=false; "hairpin mode"
in dockerd's code) DNAT serves every source: the OUTPUT jump keeps 127.0.0.0/8,
nat P has no RETURNs and the DNATs no `! -i br`, and `-o br -m addrtype
--src-type LOCAL -j MASQUERADE` gives connections the host makes to a
container, 127.0.0.1 ones included, the bridge's address as source. Routing
127.0.0.1-sourced packets onto the bridge also needs
net.ipv4.conf.<bridge>.route_localnet=1, a sysctl set with the bridge.

Where dockyard differs from dockerd 20.10, it is in where rules live, not
in what they match: every rule is in a chain of ours except the jumps into
them. dockerd appends its per-bridge rules to FORWARD and POSTROUTING
themselves; here they are in P-FORWARD and P-POSTROUTING (jumped to where
dockerd's rules would be: FORWARD right after the isolation chain, the top of
POSTROUTING), so that `setup()` can rebuild everything by emptying our chains,
leftovers of a crash included, without reading or editing anyone else's. Two
more: P-USER exists for IPv6 too (dockerd 20.10 has DOCKER-USER for IPv4
only), and SCTP ports get no `CHECKSUM --checksum-fill` rule in mangle, a
workaround for veth checksum offload in kernels up to 4.9.

IPv6 (dockerd --ip6tables) uses the same rules through ip6tables, masquerading
included, for networks with an IPv6 subnet; the isolation rules are in place
for every non-internal network, as dockerd does.

The functions below return rules as data (pure, testable without root);
`Firewall` applies them with one iptables-restore per address family.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass

from dockyard.linux import iptables
from dockyard.network.ports import PROTOCOLS

# iptables chain names hold at most 28 characters; the longest we derive is
# P + "-ISOLATION-STAGE-1" (18).
_MAX_PREFIX = 28 - len("-ISOLATION-STAGE-1")


@dataclass(frozen=True)
class Rule:
    """One rule: `spec` in `chain` of `table`, for IPv4 (family 4) or IPv6 (6).

    `spec` is written as iptables-save prints it (its order of matches, the
    implicit `-m tcp`, addresses with their prefix length), so that a rule can
    be found in saved output by comparing text. `top` marks rules that dockerd
    inserts at the top of their chain instead of appending: rules listed
    together for one chain end up in the order listed either way."""
    family: int
    table: str
    chain: str
    spec: str
    top: bool = False


@dataclass(frozen=True)
class Chains:
    """The names of our chains, derived from the prefix as dockerd's from "DOCKER"."""
    prefix: str = "DOCKYARD"

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", self.prefix) \
                or len(self.prefix) > _MAX_PREFIX:
            raise ValueError(f"invalid iptables chain prefix {self.prefix!r}: a letter, then "
                             f"letters, digits, _ and -, at most {_MAX_PREFIX} characters")

    @property
    def main(self) -> str:  # nat: one DNAT per port; filter: one ACCEPT per port
        return self.prefix

    @property
    def isolation1(self) -> str:
        return f"{self.prefix}-ISOLATION-STAGE-1"

    @property
    def isolation2(self) -> str:
        return f"{self.prefix}-ISOLATION-STAGE-2"

    @property
    def user(self) -> str:
        return f"{self.prefix}-USER"

    @property
    def forward(self) -> str:
        return f"{self.prefix}-FORWARD"

    @property
    def postrouting(self) -> str:
        return f"{self.prefix}-POSTROUTING"

    def of_table(self, table: str) -> tuple[str, ...]:
        if table == "nat":
            return (self.main, self.postrouting)
        return (self.main, self.isolation1, self.isolation2, self.forward, self.user)


@dataclass(frozen=True)
class PortMapping:
    """A published port: host_ip:host_port on the host forwarded to
    container_ip:container_port on `bridge`. host_ip 0.0.0.0 (or ::) means
    every address of the host."""
    proto: str
    host_ip: str
    host_port: int
    container_ip: str
    container_port: int
    bridge: str


def jump_rules(chains: Chains, family: int, userland_proxy: bool = True) -> list[Rule]:
    """The jumps from the built-in chains into ours; everything else hangs off them."""
    local = "-m addrtype --dst-type LOCAL"
    output = local if not userland_proxy else f"! -d {_loopback(family)} {local}"
    return [
        Rule(family, "nat", "PREROUTING", f"{local} -j {chains.main}"),
        Rule(family, "nat", "OUTPUT", f"{output} -j {chains.main}"),
        Rule(family, "nat", "POSTROUTING", f"-j {chains.postrouting}", top=True),
        Rule(family, "filter", "FORWARD", f"-j {chains.user}", top=True),
        Rule(family, "filter", "FORWARD", f"-j {chains.isolation1}", top=True),
        Rule(family, "filter", "FORWARD", f"-j {chains.forward}", top=True),
    ]


def return_rules(chains: Chains, family: int) -> list[Rule]:
    """The explicit `-j RETURN` closing the isolation and user chains. A user
    chain returns at its end anyway; dockerd writes the rule all the same, and
    per-network rules are inserted above it."""
    return [Rule(family, "filter", c, "-j RETURN")
            for c in (chains.isolation1, chains.isolation2, chains.user)]


def network_rules(chains: Chains, bridge: str, subnets: Iterable[str], *,
                  internal: bool = False, icc: bool = True, masquerade: bool = True,
                  snat_ip: str | None = None, userland_proxy: bool = True,
                  families: Iterable[int] = (4, 6)) -> list[Rule]:
    """A bridge network's rules for each of `families` (those with iptables on).

    `subnets` holds at most one IPv4 and one IPv6 subnet, as dockerd's bridge
    driver allows. `snat_ip` (the network option com.docker.network.host_ipv4)
    makes outgoing traffic use that source address instead of the outgoing
    interface's."""
    by_family = _one_per_family([subnets] if isinstance(subnets, str) else subnets)
    rules: list[Rule] = []
    for family in families:
        subnet = by_family.get(family)
        if internal:
            if subnet:
                rules += _internal_rules(chains, family, bridge, subnet, icc)
            continue
        if subnet:
            snat = snat_ip if snat_ip and _family(snat_ip) == family else None
            rules += _external_rules(chains, family, bridge, subnet, icc, masquerade,
                                     snat, userland_proxy)
        rules += isolation_rules(chains, family, bridge)
    return rules


def _external_rules(chains: Chains, family: int, bridge: str, subnet: str, icc: bool,
                    masquerade: bool, snat_ip: str | None, userland_proxy: bool) -> list[Rule]:
    to = f"SNAT --to-source {snat_ip}" if snat_ip else "MASQUERADE"
    nat: list[Rule] = []
    if not userland_proxy:
        # Connections the host makes to a container (127.0.0.1 DNAT'd included)
        # leave with the bridge's address, so that replies come back to it.
        nat.append(Rule(family, "nat", chains.postrouting,
                        f"-o {bridge} -m addrtype --src-type LOCAL -j {to}", top=True))
    if masquerade:
        # Containers reach the outside with the address of the interface used.
        nat.append(Rule(family, "nat", chains.postrouting, f"-s {subnet} ! -o {bridge} -j {to}",
                        top=True))
        if userland_proxy:
            # A container dialing a host address:port reaches the proxy, not a DNAT.
            nat.append(Rule(family, "nat", chains.main, f"-i {bridge} -j RETURN", top=True))
    return nat + [
        # Replies to connections made from the bridge come back in.
        Rule(family, "filter", chains.forward,
             f"-o {bridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", top=True),
        # New connections into the bridge: only to published ports (filter P).
        Rule(family, "filter", chains.forward, f"-o {bridge} -j {chains.main}", top=True),
        # Containers may connect anywhere but other bridges (isolation ran before).
        Rule(family, "filter", chains.forward, f"-i {bridge} ! -o {bridge} -j ACCEPT", top=True),
        _icc_rule(chains, family, bridge, icc),
    ]


def _internal_rules(chains: Chains, family: int, bridge: str, subnet: str,
                    icc: bool) -> list[Rule]:
    return [
        # Nothing from elsewhere gets in, nothing gets out to elsewhere.
        Rule(family, "filter", chains.isolation1, f"! -s {subnet} -o {bridge} -j DROP", top=True),
        Rule(family, "filter", chains.isolation1, f"! -d {subnet} -i {bridge} -j DROP", top=True),
        _icc_rule(chains, family, bridge, icc),
    ]


def _icc_rule(chains: Chains, family: int, bridge: str, icc: bool) -> Rule:
    # Inter-container communication on one bridge. dockerd appends the DROP
    # (after the rules letting published ports and replies in) but inserts
    # the ACCEPT.
    if icc:
        return Rule(family, "filter", chains.forward, f"-i {bridge} -o {bridge} -j ACCEPT",
                    top=True)
    return Rule(family, "filter", chains.forward, f"-i {bridge} -o {bridge} -j DROP")


def isolation_rules(chains: Chains, family: int, bridge: str) -> list[Rule]:
    """Stage 1: leaving this bridge for another interface → stage 2.
    Stage 2: entering this bridge from stage 1 (so from another bridge) → DROP."""
    return [
        Rule(family, "filter", chains.isolation1,
             f"-i {bridge} ! -o {bridge} -j {chains.isolation2}", top=True),
        Rule(family, "filter", chains.isolation2, f"-o {bridge} -j DROP", top=True),
    ]


def port_rules(chains: Chains, port: PortMapping, userland_proxy: bool = True) -> list[Rule]:
    """A published port's rules (none if the host and container addresses are of
    different families: only the userland proxy can bridge v6 to v4)."""
    proto = port.proto.lower()
    if proto not in PROTOCOLS:
        raise ValueError(f"unsupported protocol {port.proto!r}")
    family = _family(port.container_ip)
    host = ipaddress.ip_address(port.host_ip)
    if host.version != family:
        return []
    cip, bridge = _host_prefix(port.container_ip), port.bridge
    dest = f"{port.container_ip}:{port.container_port}" if family == 4 else \
        f"[{port.container_ip}]:{port.container_port}"
    match = f"-p {proto} -m {proto} --dport"
    dnat = f"-d {_host_prefix(port.host_ip)} " if not host.is_unspecified else ""
    if userland_proxy:
        dnat += f"! -i {bridge} "
    return [
        # To the host (address), port host_port: rewrite to the container.
        Rule(family, "nat", chains.main,
             f"{dnat}{match} {port.host_port} -j DNAT --to-destination {dest}"),
        # Let the rewritten packet be forwarded into the bridge (from elsewhere).
        Rule(family, "filter", chains.main,
             f"-d {cip} ! -i {bridge} -o {bridge} {match} {port.container_port} -j ACCEPT"),
        # Hairpin: the container dialing its own published port.
        Rule(family, "nat", chains.postrouting,
             f"-s {cip} -d {cip} {match} {port.container_port} -j MASQUERADE"),
    ]


def batch(rules: Iterable[Rule], delete: bool = False) -> str:
    """iptables-restore input adding (or deleting) the rules of one family.

    Rules marked `top` are inserted at position 1, so those of one chain are
    written in reverse to keep their listed order."""
    by_table: dict[str, list[str]] = {}
    rules = list(rules)
    for table in dict.fromkeys(r.table for r in rules):
        mine = [r for r in rules if r.table == table]
        if delete:
            lines = [f"-D {r.chain} {r.spec}" for r in mine]
        else:
            lines = [f"-I {r.chain} {r.spec}" for r in reversed(mine) if r.top]
            lines += [f"-A {r.chain} {r.spec}" for r in mine if not r.top]
        by_table[table] = lines
    return _format(by_table)


def setup_batch(chains: Chains, family: int, saved: dict[str, iptables.Table],
                userland_proxy: bool = True) -> str:
    """iptables-restore input that (re)builds our chains over `saved` state:
    our chains created or emptied (P-USER only created: its rules are the
    administrator's), the RETURNs, and each jump present exactly once."""
    jumps = jump_rules(chains, family, userland_proxy)
    lines: dict[str, list[str]] = {"filter": [], "nat": []}
    for table in lines:
        have = saved.get(table, iptables.Table())
        for chain in chains.of_table(table):
            if chain != chains.user or chain not in have.chains:
                lines[table].append(f":{chain} - [0:0]")  # creates, or empties
        ours = set(chains.of_table(table))
        wanted = [j for j in jumps if j.table == table]
        lines[table] += _jump_fixes(have, ours, wanted)
    filter_rules = saved.get("filter", iptables.Table()).rules
    for r in return_rules(chains, family):
        if r.chain != chains.user or (r.chain, r.spec) not in filter_rules:
            lines["filter"].append(f"-A {r.chain} {r.spec}")
    return _format(lines)


def _jump_fixes(have: iptables.Table, ours: set[str], wanted: list[Rule]) -> list[str]:
    """Delete stale or duplicate jumps into our chains; add the missing ones.

    The FORWARD jumps must be in the order user, isolation, forward; if they
    are not all there once in that order, all three are put back at the top."""
    out = [f"-D {c} {s}" for c, s in have.rules
           if c not in ours and _target(s) in ours
           and not any((c, s) == (w.chain, w.spec) for w in wanted)]
    for chain in dict.fromkeys(w.chain for w in wanted):
        group = [w for w in wanted if w.chain == chain]
        present = [s for c, s in have.rules if c == chain and s in {w.spec for w in group}]
        if present == [w.spec for w in group]:
            continue
        out += [f"-D {chain} {s}" for s in present]
        out += [f"-I {chain} {w.spec}" for w in reversed(group) if w.top]
        out += [f"-A {chain} {w.spec}" for w in group if not w.top]
    return out


def teardown_batch(chains: Chains, saved: dict[str, iptables.Table]) -> str:
    """iptables-restore input removing every jump into our chains, then the chains."""
    lines: dict[str, list[str]] = {}
    for table, have in saved.items():
        ours = [c for c in chains.of_table(table) if c in have.chains]
        if table not in ("filter", "nat") or not ours:
            continue
        lines[table] = [f"-D {c} {s}" for c, s in have.rules
                        if c not in ours and _target(s) in ours]
        lines[table] += [f"-F {c}" for c in ours] + [f"-X {c}" for c in ours]
    return _format(lines)


class Firewall:
    """Applies the rules above, one iptables-restore per address family and operation.

    `enabled=False` (dockerd --iptables=false) makes every operation a no-op.
    `ip6tables=False` leaves ip6tables alone, as dockerd 20.10 does unless
    given --ip6tables (then experimental). `userland_proxy` is dockerd's
    --userland-proxy (see the module docstring). The daemon calls setup() at
    start, then adds the rules of every network and running container again."""

    def __init__(self, prefix: str = "DOCKYARD", *, enabled: bool = True,
                 ip6tables: bool = True, userland_proxy: bool = True):
        self.chains = Chains(prefix)
        self.enabled = enabled
        self.families = (4, 6) if ip6tables else (4,)
        self.userland_proxy = userland_proxy

    def setup(self) -> None:
        """Create our chains or empty them, and make each jump into them exist once."""
        if not self.enabled:
            return
        for family in self.families:
            saved = iptables.parse(iptables.save(family))
            iptables.restore(family, setup_batch(self.chains, family, saved, self.userland_proxy))

    def teardown(self) -> None:
        """Remove our jumps and chains (P-USER included) wherever they are."""
        if not self.enabled:
            return
        for family in self.families:
            text = teardown_batch(self.chains, iptables.parse(iptables.save(family)))
            if text:
                iptables.restore(family, text)

    def add_network(self, bridge: str, subnets: Iterable[str], internal: bool = False,
                    icc: bool = True, masquerade: bool = True,
                    snat_ip: str | None = None) -> None:
        """Add a bridge network's rules (see network_rules). Nothing checks for
        them first: after setup(), add each network once."""
        self._add(self._network(bridge, subnets, internal, icc, masquerade, snat_ip))

    def remove_network(self, bridge: str, subnets: Iterable[str], internal: bool = False,
                       icc: bool = True, masquerade: bool = True,
                       snat_ip: str | None = None) -> None:
        """Remove a network's rules; those already gone are not an error."""
        self._remove(self._network(bridge, subnets, internal, icc, masquerade, snat_ip))

    def add_port(self, proto: str, host_ip: str, host_port: int, container_ip: str,
                 container_port: int, bridge: str) -> None:
        self.add_ports([PortMapping(proto, host_ip, host_port, container_ip, container_port,
                                    bridge)])

    def remove_port(self, proto: str, host_ip: str, host_port: int, container_ip: str,
                    container_port: int, bridge: str) -> None:
        self.remove_ports([PortMapping(proto, host_ip, host_port, container_ip,
                                       container_port, bridge)])

    def add_ports(self, ports: Iterable[PortMapping]) -> None:
        """Publish a container's ports in one batch per family. Ports on an
        internal network are not published (dockerd ignores -p there)."""
        self._add(self._ports(ports))

    def remove_ports(self, ports: Iterable[PortMapping]) -> None:
        """Unpublish ports; those already gone are not an error."""
        self._remove(self._ports(ports))

    def _network(self, bridge, subnets, internal, icc, masquerade, snat_ip) -> list[Rule]:
        return network_rules(self.chains, bridge, subnets, internal=internal, icc=icc,
                             masquerade=masquerade, snat_ip=snat_ip,
                             userland_proxy=self.userland_proxy, families=self.families)

    def _ports(self, ports: Iterable[PortMapping]) -> list[Rule]:
        return [r for p in ports for r in port_rules(self.chains, p, self.userland_proxy)
                if r.family in self.families]

    def _add(self, rules: list[Rule]) -> None:
        if not self.enabled:
            return
        for family in self.families:
            mine = [r for r in rules if r.family == family]
            if mine:
                iptables.restore(family, batch(mine))

    def _remove(self, rules: list[Rule]) -> None:
        """Delete in one batch. If that fails (a rule is missing, so its table
        was left as it was), delete what the saved ruleset still holds: this
        also undoes an add that failed half-way, after its first table."""
        if not self.enabled:
            return
        for family in self.families:
            mine = [r for r in rules if r.family == family]
            if not mine:
                continue
            try:
                iptables.restore(family, batch(mine, delete=True))
            except iptables.IptablesError:
                saved = iptables.parse(iptables.save(family))
                present = [r for r in mine if (r.chain, r.spec) in
                           saved.get(r.table, iptables.Table()).rules]
                if present:
                    iptables.restore(family, batch(present, delete=True))


def _format(lines_by_table: dict[str, list[str]]) -> str:
    return "".join(f"*{table}\n" + "".join(f"{line}\n" for line in lines) + "COMMIT\n"
                   for table, lines in lines_by_table.items() if lines)


def _target(spec: str) -> str:
    """The chain a rule jumps (-j) or goes (-g) to, or ""."""
    words = shlex.split(spec)
    for flag in ("-j", "-g"):
        if flag in words and words.index(flag) + 1 < len(words):
            return words[words.index(flag) + 1]
    return ""


def _family(address: str) -> int:
    return ipaddress.ip_address(address).version


def _host_prefix(address: str) -> str:
    ip = ipaddress.ip_address(address)
    return f"{ip}/{ip.max_prefixlen}"


def _loopback(family: int) -> str:
    return "127.0.0.0/8" if family == 4 else "::1/128"


def _one_per_family(subnets: Iterable[str]) -> dict[int, str]:
    out: dict[int, str] = {}
    for s in subnets:
        net = ipaddress.ip_network(s, strict=False)  # the bridge address's subnet
        if net.version in out:
            raise ValueError(f"bridge networks take one IPv{net.version} subnet, got "
                             f"{out[net.version]} and {net}")
        out[net.version] = str(net)
    return out
