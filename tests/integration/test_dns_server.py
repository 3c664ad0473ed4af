"""The embedded DNS server on real sockets: 127.0.0.11 inside network namespaces
made here, asked from inside them (dnspython and busybox's nslookup), with a
fake resolver and fake upstream nameservers on 127.0.0.77-79 in the host's
namespace. No query goes anywhere else.

The server runs on an event loop in a thread of its own, as in the daemon,
while the test thread asks from inside the namespaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import select
import shutil
import socket
import subprocess
import threading
import time

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from dockyard.linux import netns
from dockyard.network.dns import ADDRESS, EmbeddedDNS

UPSTREAM = "127.0.0.77"      # answers
FAILING = "127.0.0.78"       # answers SERVFAIL to everything
SILENT = "127.0.0.79"        # a socket that never answers: queries time out
ABSENT = "127.0.0.80"        # nothing listens: refused at once
TIMEOUT = 0.5                # the server's per-upstream timeout in these tests


class FakeResolver:
    """Two containers: c1 (web, db; forwards to whatever `upstreams` says) and
    c2 (sees only `other`)."""

    def __init__(self):
        self.upstream_of = {"c1": [UPSTREAM], "c2": [UPSTREAM]}

    def lookup(self, container_id, name):
        names = {
            "c1": {"web": (["10.200.0.2"], []), "web.testnet": (["10.200.0.2"], []),
                   "db": (["10.200.0.3"], ["fd00:200::3"]),
                   "many": ([f"10.200.1.{i}" for i in range(1, 101)], [])},
            "c2": {"other": (["10.201.0.2"], [])},
        }
        return names.get(container_id, {}).get(name)

    def reverse(self, container_id, ip):
        return {"10.200.0.2": "web.testnet"}.get(ip) if container_id == "c1" else None

    def upstreams(self, container_id):
        return self.upstream_of.get(container_id, [])


class FakeUpstream:
    """A nameserver on `address`:53 (UDP and TCP) in the host's namespace.

    upstream.test A → 192.0.2.1; big.test → truncated (TC, no records) over
    UDP, 100 records over TCP; anything else NXDOMAIN with an SOA. With
    servfail=True every answer is SERVFAIL. `seen` records (proto, name, id)."""

    def __init__(self, address: str, servfail: bool = False):
        self.servfail = servfail
        self.seen: list[tuple[str, str, int]] = []
        self.stop = threading.Event()
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self.udp.bind((address, 53))
            self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.tcp.bind((address, 53))
            self.tcp.listen(16)
        except BaseException:
            self.close()
            raise
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            ready, _, _ = select.select([self.udp, self.tcp], [], [], 0.05)
            for sock in ready:
                if sock is self.udp:
                    query, _, peer = dns.query.receive_udp(self.udp, None, time.time() + 1)
                    dns.query.send_udp(self.udp, self._reply(query, "udp"), peer)
                else:
                    conn, _ = self.tcp.accept()
                    with conn:
                        query, _ = dns.query.receive_tcp(conn, time.time() + 1)
                        dns.query.send_tcp(conn, self._reply(query, "tcp"), time.time() + 1)

    def _reply(self, query: dns.message.Message, proto: str) -> dns.message.Message:
        name = query.question[0].name.to_text().lower()
        self.seen.append((proto, name, query.id))
        response = dns.message.make_response(query, recursion_available=True)
        if self.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
        elif name == "upstream.test.":
            response.answer.append(dns.rrset.from_text(name, 60, "IN", "A", "192.0.2.1"))
        elif name == "big.test." and proto == "udp":
            response.flags |= dns.flags.TC
        elif name == "big.test.":
            response.answer.append(dns.rrset.from_text(
                name, 60, "IN", "A", *(f"192.0.2.{i}" for i in range(1, 101))))
        else:
            response.set_rcode(dns.rcode.NXDOMAIN)
            response.authority.append(dns.rrset.from_text(
                "test.", 60, "IN", "SOA", "ns.test. admin.test. 1 1800 900 604800 86400"))
        return response

    def close(self) -> None:
        self.stop.set()
        if getattr(self, "thread", None):
            self.thread.join(5)
        self.udp.close()
        self.tcp.close()


# --- fixtures --------------------------------------------------------------------

@pytest.fixture
def run():
    """run(coro): run a coroutine on the server's loop, in its own thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="dns-loop", daemon=True)
    thread.start()
    try:
        yield lambda coro, timeout=10: asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


@pytest.fixture
def sandboxes(tmp_path):
    """sandbox(): a new netns pinned under tmp_path, its lo up; all deleted at the end."""
    made: list[str] = []
    counter = itertools.count()

    def make() -> str:
        path = str(tmp_path / f"netns-{next(counter)}")
        netns.create(path)
        made.append(path)
        # The daemon brings lo up; 127.0.0.11 is reachable only then.
        subprocess.run(["nsenter", f"--net={path}", "ip", "link", "set", "lo", "up"],
                       check=True)
        return path

    try:
        yield make
    finally:
        for path in made:
            netns.delete(path)


@pytest.fixture
def resolver():
    return FakeResolver()


@pytest.fixture
def server(run, resolver):
    s = EmbeddedDNS(resolver, timeout=TIMEOUT)
    try:
        yield s
    finally:
        run(s.close())


@pytest.fixture
def upstreams():
    made = []
    try:
        made.append(FakeUpstream(UPSTREAM))
        made.append(FakeUpstream(FAILING, servfail=True))
        yield made[0], made[1]
    finally:
        for u in made:
            u.close()


@pytest.fixture
def c1(run, server, sandboxes) -> str:
    path = sandboxes()
    run(server.attach("c1", path))
    return path


# --- asking from inside a namespace -----------------------------------------------

def udp(path: str, name: str, rdtype: str = "A", timeout: float = 3.0, **kw):
    query = dns.message.make_query(name, rdtype, **kw)
    response = netns.run_inside(path, lambda: dns.query.udp(query, ADDRESS, timeout=timeout))
    assert response.id == query.id
    return response


def tcp(path: str, name: str, rdtype: str = "A", timeout: float = 3.0):
    query = dns.message.make_query(name, rdtype)
    response = netns.run_inside(path, lambda: dns.query.tcp(query, ADDRESS, timeout=timeout))
    assert response.id == query.id
    return response


def addresses(msg: dns.message.Message) -> list[str]:
    return sorted(rd.to_text() for rrset in msg.answer for rd in rrset)


# --- tests -----------------------------------------------------------------------

def test_container_names_over_udp_and_tcp(c1, upstreams):
    upstream, _ = upstreams
    for ask in (udp, tcp):
        msg = ask(c1, "web")
        assert msg.rcode() == dns.rcode.NOERROR and addresses(msg) == ["10.200.0.2"]
        assert msg.answer[0].ttl == 600 and msg.flags & dns.flags.RA
        assert addresses(ask(c1, "WEB.TestNet.")) == ["10.200.0.2"]
        empty = ask(c1, "web", "AAAA")
        assert empty.rcode() == dns.rcode.NOERROR and empty.answer == []
        assert addresses(ask(c1, "db", "AAAA")) == ["fd00:200::3"]
    assert upstream.seen == []          # our names never leave


def test_truncation_and_tcp_retry(c1):
    short = udp(c1, "many")
    assert short.flags & dns.flags.TC and 20 < len(addresses(short)) < 100
    full = tcp(c1, "many")
    assert not full.flags & dns.flags.TC and len(addresses(full)) == 100
    assert len(addresses(udp(c1, "many", use_edns=0, payload=4096))) == 100


def test_ptr(c1, upstreams):
    upstream, _ = upstreams
    msg = udp(c1, "2.0.200.10.in-addr.arpa.", "PTR")
    assert [rd.target.to_text() for rd in msg.answer[0]] == ["web.testnet."]
    msg = udp(c1, "7.7.200.10.in-addr.arpa.", "PTR")       # not ours: the upstream's say
    assert msg.rcode() == dns.rcode.NXDOMAIN
    assert [s[1] for s in upstream.seen] == ["7.7.200.10.in-addr.arpa."]


def test_forwarding_relays_answers_and_nxdomain(c1, upstreams):
    upstream, _ = upstreams
    client_ids = []
    for _ in range(2):
        query = dns.message.make_query("upstream.test", "A")
        msg = netns.run_inside(c1, lambda: dns.query.udp(query, ADDRESS, timeout=3))
        assert msg.id == query.id and addresses(msg) == ["192.0.2.1"]
        client_ids.append(query.id)
    assert [s[:2] for s in upstream.seen] == [("udp", "upstream.test.")] * 2
    # Upstream, the queries went out under IDs of the server's choosing.
    assert [s[2] for s in upstream.seen] != client_ids
    upstream.seen.clear()
    nx = udp(c1, "nowhere.test")
    assert nx.rcode() == dns.rcode.NXDOMAIN and nx.authority[0].rdtype == dns.rdatatype.SOA
    assert tcp(c1, "nowhere.test").rcode() == dns.rcode.NXDOMAIN
    assert [s[0] for s in upstream.seen] == ["udp", "tcp"]
    # A type we do not serve, for our own name, is the upstream's to answer.
    assert udp(c1, "web", "TXT").rcode() == dns.rcode.NXDOMAIN


def test_truncated_upstream_answer_is_relayed_then_asked_over_tcp(c1, upstreams):
    upstream, _ = upstreams
    short = udp(c1, "big.test")
    assert short.flags & dns.flags.TC and short.answer == []
    full = tcp(c1, "big.test")
    assert len(addresses(full)) == 100
    assert [s[0] for s in upstream.seen] == ["udp", "tcp"]


def test_next_upstream_after_timeout_and_servfail(c1, resolver, upstreams):
    upstream, failing = upstreams
    resolver.upstream_of["c1"] = [SILENT, FAILING, UPSTREAM]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind((SILENT, 53))
        t0 = time.monotonic()
        msg = udp(c1, "upstream.test")
    assert addresses(msg) == ["192.0.2.1"]
    assert TIMEOUT <= time.monotonic() - t0 < TIMEOUT + 1.5
    assert len(failing.seen) == 1 and len(upstream.seen) == 1


def test_an_absent_upstream_fails_at_once(c1, resolver, upstreams):
    upstream, _ = upstreams
    resolver.upstream_of["c1"] = [ABSENT, UPSTREAM]
    t0 = time.monotonic()
    assert addresses(udp(c1, "upstream.test")) == ["192.0.2.1"]
    assert time.monotonic() - t0 < TIMEOUT


def test_servfail_when_no_upstream_answers(c1, resolver, upstreams):
    upstream, failing = upstreams
    resolver.upstream_of["c1"] = []              # an internal network: never forward
    msg = udp(c1, "upstream.test")
    assert msg.rcode() == dns.rcode.SERVFAIL
    assert addresses(udp(c1, "web")) == ["10.200.0.2"]
    resolver.upstream_of["c1"] = [FAILING, ADDRESS]     # ourselves is never asked
    assert udp(c1, "upstream.test").rcode() == dns.rcode.SERVFAIL
    assert tcp(c1, "upstream.test").rcode() == dns.rcode.SERVFAIL
    assert upstream.seen == [] and len(failing.seen) == 2


def test_each_container_sees_its_own_names(run, server, sandboxes, c1):
    c2 = sandboxes()
    run(server.attach("c2", c2))
    assert addresses(udp(c2, "other")) == ["10.201.0.2"]
    assert udp(c2, "web", timeout=3).rcode() == dns.rcode.SERVFAIL   # c2's upstreams: none up
    assert addresses(udp(c1, "web")) == ["10.200.0.2"]
    assert sorted(server.attached()) == ["c1", "c2"]


def test_detach_closes_the_sockets(run, server, c1):
    assert addresses(udp(c1, "web")) == ["10.200.0.2"]
    run(server.detach("c1"))
    with pytest.raises(dns.exception.Timeout):
        udp(c1, "web", timeout=0.3)
    with pytest.raises(ConnectionRefusedError):
        tcp(c1, "web", timeout=1)
    run(server.detach("c1"))                     # again: nothing to do
    run(server.attach("c1", c1))                 # and the port is free again
    assert addresses(tcp(c1, "web")) == ["10.200.0.2"]
    run(server.attach("c1", c1))                 # attaching again replaces the pair
    assert addresses(udp(c1, "web")) == ["10.200.0.2"]
    assert server.attached() == ["c1"]


def test_attach_to_no_namespace_fails_cleanly(run, server, tmp_path):
    with pytest.raises(OSError):
        run(server.attach("c3", str(tmp_path / "missing")))
    assert server.attached() == []


def test_idle_tcp_connection_is_closed_by_detach(run, server, c1):
    conn = netns.run_inside(c1, lambda: socket.create_connection((ADDRESS, 53), timeout=2))
    with conn:
        run(server.detach("c1"))
        conn.settimeout(2)
        assert conn.recv(1) == b""               # the server's end is closed


@pytest.mark.skipif(not os.access("/bin/busybox", os.X_OK) or not shutil.which("nsenter"),
                    reason="needs /bin/busybox (busybox-static) and nsenter")
def test_busybox_nslookup(c1, upstreams):
    def nslookup(name: str) -> subprocess.CompletedProcess:
        return subprocess.run(["nsenter", f"--net={c1}", "/bin/busybox", "nslookup", name,
                               ADDRESS], capture_output=True, text=True, timeout=20)

    found = nslookup("web")
    assert found.returncode == 0, found.stdout + found.stderr
    assert "10.200.0.2" in found.stdout
    out = nslookup("upstream.test")
    assert "192.0.2.1" in out.stdout, out.stdout + out.stderr
    missing = nslookup("nowhere.test")
    assert missing.returncode != 0 and "NXDOMAIN" in missing.stdout + missing.stderr


def test_concurrent_queries_are_all_answered(c1, upstreams):
    """100 queries in flight at once from one socket, local and forwarded mixed."""
    def burst():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            ids = {}
            for i in range(100):
                q = dns.message.make_query("web" if i % 2 else "upstream.test", "A")
                q.id = i
                ids[q.id] = q
                s.sendto(q.to_wire(), (ADDRESS, 53))
            got = {}
            with contextlib.suppress(socket.timeout):
                while len(got) < len(ids):
                    msg = dns.message.from_wire(s.recv(65535))
                    got[msg.id] = addresses(msg)
            return ids, got

    ids, got = netns.run_inside(c1, burst)
    assert set(got) == set(ids)
    assert {tuple(v) for v in got.values()} == {("10.200.0.2",), ("192.0.2.1",)}
