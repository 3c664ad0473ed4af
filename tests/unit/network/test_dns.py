"""The embedded DNS server's decisions, without sockets: what it answers itself,
what it forwards, how it truncates, how it rejects, and the order and limits of
forwarding (upstreams replaced by a fake exchange)."""

from __future__ import annotations

import asyncio

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype
import pytest

from dockyard.network import dns as embedded


class FakeResolver:
    def __init__(self, upstreams=()):
        self.names = {
            "web": (["10.200.0.2"], []),
            "web.testnet": (["10.200.0.2"], []),
            "db": (["10.200.0.3"], ["fd00:200::3"]),
            "v6only": ([], ["fd00:200::4"]),
            "many": ([f"10.200.1.{i}" for i in range(1, 101)], []),
        }
        self.ptr = {"10.200.0.2": "web.testnet", "fd00:200::3": "db.testnet",
                    "10.200.0.9": "x" * 64}
        self._upstreams = list(upstreams)
        self.asked: list[str] = []

    def lookup(self, container_id, name):
        self.asked.append(name)
        return self.names.get(name)

    def reverse(self, container_id, ip):
        return self.ptr.get(ip)

    def upstreams(self, container_id):
        return self._upstreams


def ask(resolver, name, rdtype="A", over_tcp=False, **kw):
    query = dns.message.make_query(name, rdtype, **kw)
    return query, embedded.answer(resolver, "c1", query.to_wire(), over_tcp)


def reply_of(outcome) -> dns.message.Message:
    assert outcome.query is None and outcome.reply is not None
    return dns.message.from_wire(outcome.reply)


def addresses(msg: dns.message.Message) -> list[str]:
    return sorted(rd.to_text() for rrset in msg.answer for rd in rrset)


def test_container_name_answered_with_ttl_600():
    query, outcome = ask(FakeResolver(), "web")
    msg = reply_of(outcome)
    assert msg.id == query.id and msg.rcode() == dns.rcode.NOERROR
    assert msg.flags & dns.flags.QR and msg.flags & dns.flags.RA and msg.flags & dns.flags.RD
    assert not msg.flags & dns.flags.AA
    assert addresses(msg) == ["10.200.0.2"]
    assert {rrset.ttl for rrset in msg.answer} == {600}


def test_names_are_matched_lower_case_without_the_dot():
    r = FakeResolver()
    _, outcome = ask(r, "WeB.TestNet.")
    msg = reply_of(outcome)
    assert addresses(msg) == ["10.200.0.2"]
    assert r.asked == ["web.testnet"]
    # The answer repeats the name as the client spelled it.
    assert msg.answer[0].name.to_text() == "WeB.TestNet."


def test_aaaa_of_a_name_without_ipv6_is_empty_not_forwarded():
    msg = reply_of(ask(FakeResolver(), "web", "AAAA")[1])
    assert msg.rcode() == dns.rcode.NOERROR and msg.answer == []
    assert addresses(reply_of(ask(FakeResolver(), "db", "AAAA")[1])) == ["fd00:200::3"]
    assert reply_of(ask(FakeResolver(), "v6only", "A")[1]).answer == []


def test_mx_of_our_name_is_an_empty_answer():
    msg = reply_of(ask(FakeResolver(), "web", "MX")[1])
    assert msg.rcode() == dns.rcode.NOERROR and msg.answer == []
    assert ask(FakeResolver(), "example.org", "MX")[1].query is not None


def test_unknown_names_and_other_types_are_forwarded():
    for name, rdtype in [("example.org", "A"), ("web", "TXT"), ("web", "SRV"),
                         ("web", "ANY"), (".", "NS")]:
        query, outcome = ask(FakeResolver(), name, rdtype)
        assert outcome.reply is None and outcome.query.id == query.id, (name, rdtype)


def test_only_the_internet_class_is_ours():
    _, outcome = ask(FakeResolver(), "web", "A", rdclass="CH")
    assert outcome.query is not None


def test_ptr_of_container_addresses():
    msg = reply_of(ask(FakeResolver(), "2.0.200.10.in-addr.arpa.", "PTR")[1])
    assert [rd.target.to_text() for rd in msg.answer[0]] == ["web.testnet."]
    assert msg.answer[0].ttl == 600
    v6 = dns.name.from_text("3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.0.d.f.ip6.arpa.")
    msg = reply_of(ask(FakeResolver(), v6, "PTR")[1])
    assert [rd.target.to_text() for rd in msg.answer[0]] == ["db.testnet."]


def test_ptr_not_ours_is_forwarded():
    for name in ["7.7.200.10.in-addr.arpa.", "0.200.10.in-addr.arpa.", "example.org."]:
        assert ask(FakeResolver(), name, "PTR")[1].query is not None, name


def test_ptr_name_too_long_for_a_label_is_servfail():
    # resolver.go's TestInvalidReverseDNS: a 64-character label cannot be sent.
    msg = reply_of(ask(FakeResolver(), "9.0.200.10.in-addr.arpa.", "PTR")[1])
    assert msg.rcode() == dns.rcode.SERVFAIL


def test_resolver_failure_is_servfail():
    class Broken(FakeResolver):
        def lookup(self, container_id, name):
            raise RuntimeError("boom")
    msg = reply_of(ask(Broken(), "web")[1])
    assert msg.rcode() == dns.rcode.SERVFAIL and msg.question[0].name.to_text() == "web."


def test_udp_answer_truncated_to_512_keeping_what_fits():
    _, outcome = ask(FakeResolver(), "many")
    assert len(outcome.reply) <= 512
    msg = reply_of(outcome)
    assert msg.flags & dns.flags.TC
    assert 20 < len(addresses(msg)) < 100


def test_edns_payload_and_tcp_lift_the_limit():
    for kw in ({"use_edns": 0, "payload": 4096}, {"over_tcp": True}):
        msg = reply_of(ask(FakeResolver(), "many", **kw)[1])
        assert not msg.flags & dns.flags.TC
        assert len(addresses(msg)) == 100


def test_small_edns_payload_still_gets_512():
    _, outcome = ask(FakeResolver(), "many", use_edns=0, payload=100)
    assert 400 < len(outcome.reply) <= 512


def test_answers_are_shuffled():
    r = FakeResolver()
    r.names["pair"] = (["10.200.0.5", "10.200.0.6"], [])
    firsts = {reply_of(ask(r, "pair")[1]).answer[0][0].to_text() for _ in range(60)}
    assert firsts == {"10.200.0.5", "10.200.0.6"}


def test_malformed_queries():
    r = FakeResolver()
    query = dns.message.make_query("web", "A")
    wire = query.to_wire()
    assert embedded.answer(r, "c1", wire[:11], False) == embedded.Outcome()     # no header
    response = dns.message.make_response(query).to_wire()
    assert embedded.answer(r, "c1", response, False) == embedded.Outcome()      # QR set

    update = dns.message.make_query("web", "A")
    update.set_opcode(dns.opcode.UPDATE)
    msg = reply_of(embedded.answer(r, "c1", update.to_wire(), False))
    assert (msg.id, msg.rcode(), msg.opcode()) == (update.id, dns.rcode.NOTIMP, dns.opcode.UPDATE)

    two = dns.message.make_query("web", "A")
    two.question.append(dns.message.make_query("db", "A").question[0])
    msg = reply_of(embedded.answer(r, "c1", two.to_wire(), False))
    assert (msg.id, msg.rcode()) == (two.id, dns.rcode.FORMERR)
    assert msg.flags & dns.flags.RD

    msg = reply_of(embedded.answer(r, "c1", wire[:-3], False))                 # cut short
    assert (msg.id, msg.rcode()) == (query.id, dns.rcode.FORMERR)


# --- forwarding, with the upstreams replaced --------------------------------------

def forward(server, query):
    async def run():
        slots = asyncio.Semaphore(server.max_concurrent)
        return dns.message.from_wire(await server.forward("c1", slots, query, over_tcp=False))
    return asyncio.run(run())


@pytest.fixture
def upstreams(monkeypatch):
    """Every upstream address → what it answers: an rcode, or None for silence."""
    behaviour: dict[str, int | None] = {}
    asked: list[tuple[str, int]] = []

    async def exchange(query, server, over_tcp, timeout):
        asked.append((server, query.id))
        rcode = behaviour.get(server)
        if rcode is None:
            return None
        response = dns.message.make_response(query)
        response.set_rcode(rcode)
        return response

    monkeypatch.setattr(embedded, "_exchange", exchange)
    return behaviour, asked


def test_forward_relays_the_first_real_answer_with_the_client_id(upstreams):
    behaviour, asked = upstreams
    behaviour.update({"127.0.0.81": None, "127.0.0.82": dns.rcode.SERVFAIL,
                      "127.0.0.83": dns.rcode.NXDOMAIN})
    server = embedded.EmbeddedDNS(FakeResolver(["127.0.0.81", "127.0.0.82", "127.0.0.83"]))
    query = dns.message.make_query("example.org", "A")
    msg = forward(server, query)
    assert (msg.id, msg.rcode()) == (query.id, dns.rcode.NXDOMAIN)
    assert [s for s, _ in asked] == ["127.0.0.81", "127.0.0.82", "127.0.0.83"]


def test_forward_asks_three_upstreams_at_most_never_itself(upstreams):
    behaviour, asked = upstreams
    behaviour.update({s: dns.rcode.REFUSED for s in ("127.0.0.81", "127.0.0.82", "127.0.0.83")})
    behaviour["127.0.0.84"] = dns.rcode.NOERROR
    resolver = FakeResolver(["127.0.0.11", "127.0.0.81", "127.0.0.82", "127.0.0.83",
                             "127.0.0.84"])
    msg = forward(embedded.EmbeddedDNS(resolver), dns.message.make_query("example.org", "A"))
    assert msg.rcode() == dns.rcode.SERVFAIL
    assert [s for s, _ in asked] == ["127.0.0.81", "127.0.0.82", "127.0.0.83"]


def test_no_upstream_is_servfail(upstreams):
    _, asked = upstreams
    query = dns.message.make_query("example.org", "A")
    msg = forward(embedded.EmbeddedDNS(FakeResolver([])), query)
    assert (msg.id, msg.rcode()) == (query.id, dns.rcode.SERVFAIL)
    assert asked == []


def test_forward_slots_exhausted_is_refused(upstreams):
    behaviour, asked = upstreams
    behaviour["127.0.0.81"] = dns.rcode.NOERROR
    server = embedded.EmbeddedDNS(FakeResolver(["127.0.0.81"]), timeout=0.05, max_concurrent=1)

    async def run():
        slots = asyncio.Semaphore(1)
        await slots.acquire()                      # the one slot is taken
        query = dns.message.make_query("example.org", "A")
        return query, dns.message.from_wire(await server.forward("c1", slots, query, False))

    query, msg = asyncio.run(run())
    assert (msg.id, msg.rcode()) == (query.id, dns.rcode.REFUSED)
    assert asked == []
