"""The embedded DNS server: the 127.0.0.11 that containers on user networks ask.

dockerd gives every container on a user-defined network a resolv.conf naming
127.0.0.11 and answers there itself: the names of the containers on the same
networks (their names, short IDs, aliases, `name.network`) from its own
records, everything else by asking the nameservers the container would
otherwise have used. This module is that server, with libnetwork's
resolver.go as the reference for what it answers.

One listening pair per container. A UDP and a TCP socket bound to
127.0.0.11:53 are made *inside* the container's network namespace (a socket
belongs for good to the namespace of the thread that made it, see
linux/netns.py), then served from the daemon's event loop like any other
socket. Since the pair belongs to one container, a query's arrival socket
says who asks, and each container sees only the names of its own networks.
(dockerd binds a random port and DNATs 53 to it with iptables rules in the
container, so that a program in the container may bind 0.0.0.0:53. Binding
53 directly needs no rules; such a program must then bind the container's
own addresses, which remain free.)

Forwarded queries leave from the daemon's own (host) namespace, which is
what makes a host-loopback nameserver such as systemd-resolved's 127.0.0.53
reachable, and which resolv.conf on the host was written for.

What is answered, as resolver.go does:

- A and AAAA for a name of ours: its addresses of that family, shuffled
  (round-robin between containers sharing an alias), TTL 600. A name of ours
  with no address of that family (AAAA of an IPv4-only container) is
  answered NOERROR with no records, never forwarded: the name exists, and
  asking the outside world would only leak it and make the client wait.
- PTR for in-addr.arpa / ip6.arpa names of our addresses: `name.network.`
- MX for a name of ours: NOERROR and no records, the "implicit MX" of
  RFC 5321 section 5.1 (the client falls back to A/AAAA).
- Anything else, and every name that is not ours: forwarded, over the
  protocol the client used, to at most 3 upstreams in order. A timeout,
  a failed connection, SERVFAIL or REFUSED moves on to the next; any other
  answer (NXDOMAIN included) is relayed. No upstream (an internal network),
  or none answering: SERVFAIL. Forwards in flight are bounded per container
  (1024, dockerd's maxConcurrent); a query that cannot get a slot within the
  timeout is answered REFUSED.
- Our own answers are truncated (TC set, as many records kept as fit) to
  512 bytes over UDP, or the client's EDNS payload size if larger; the
  client then asks again over TCP. Forwarded answers are relayed as they
  came, TC included, so a truncated upstream reply makes the client retry
  over TCP, which we forward over TCP.
- Malformed queries: too short for a header, or a response (QR set): no
  reply (a reply could be used to amplify); an opcode other than QUERY:
  NOTIMP (dockerd would forward a NOTIFY); no single question or an
  undecodable message: FORMERR.

dnspython does the wire format. Importing it costs 80-150 ms, so it is
loaded on the first `attach`, in a worker thread, not when the daemon starts.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple, Protocol

from dockyard.linux import netns

if TYPE_CHECKING:
    import dns.message

log = logging.getLogger(__name__)

ADDRESS = "127.0.0.11"
PORT = 53
TTL = 600                      # resolver.go's respTTL
MAX_UPSTREAMS = 3              # resolver.go's maxExtDNS: upstreams after the third are not asked
UPSTREAM_TIMEOUT = 4.0         # resolver.go's extIOTimeout, per upstream
MAX_CONCURRENT = 1024          # resolver.go's maxConcurrent forwards in flight, per container
UDP_SIZE = 512                 # RFC 1035's limit for a UDP answer without EDNS
TCP_SIZE = 65535
# A TCP client gets 2 s to send its first query and 8 s between later ones
# (miekg/dns's read and idle timeouts, which dockerd's server uses).
TCP_FIRST_READ_TIMEOUT = 2.0
TCP_IDLE_TIMEOUT = 8.0
LIMIT_LOG_INTERVAL = 2.0       # "too many queries" is logged at most this often


class Resolver(Protocol):
    """What the daemon knows about a container's names; consulted on every query.

    Names come lower-cased and without the trailing dot ("web", "web.mynet",
    "3f2a1b4c5d6e"); matching them to containers, aliases and networks is the
    daemon's business."""

    def lookup(self, container_id: str, name: str) -> tuple[list[str], list[str]] | None:
        """(IPv4 addresses, IPv6 addresses) of a name the container can see, or
        None if the name is not ours (then the query is forwarded). A name of
        ours with no address of a family answers that family with no records."""

    def reverse(self, container_id: str, ip: str) -> str | None:
        """The name for a PTR query of `ip` ("web.mynet"), or None to forward it."""

    def upstreams(self, container_id: str) -> list[str]:
        """The nameserver IPs to forward to, in order; [] never forwards
        (internal networks: the answer is SERVFAIL)."""


class Outcome(NamedTuple):
    """What to do with one datagram or TCP message: send `reply` now, or
    forward `query` upstream; neither means stay silent."""
    reply: bytes | None = None
    query: dns.message.Message | None = None


def answer(resolver: Resolver, container_id: str, wire: bytes, over_tcp: bool) -> Outcome:
    """Decide on one query from the container, answering it if it is ours."""
    import dns.flags
    import dns.message
    import dns.opcode
    import dns.rcode

    if len(wire) < 12:
        return Outcome()                                   # not even a header
    qid, flags = int.from_bytes(wire[0:2], "big"), int.from_bytes(wire[2:4], "big")
    if flags & dns.flags.QR:
        return Outcome()                                   # a response: never answer those
    if dns.opcode.from_flags(flags) != dns.opcode.QUERY:
        return Outcome(reply=_header_only(qid, flags, dns.rcode.NOTIMP))
    try:
        query = dns.message.from_wire(wire)
    except Exception:                                      # dnspython's or struct's errors
        return Outcome(reply=_header_only(qid, flags, dns.rcode.FORMERR))
    if len(query.question) != 1:
        return Outcome(reply=_header_only(qid, flags, dns.rcode.FORMERR))
    try:
        response = _local(resolver, container_id, query)
    except Exception:
        # A name too long for a PTR record (resolver.go's test case), or a
        # resolver bug: the client gets an answer instead of a timeout.
        log.exception("embedded DNS: cannot answer %s", query.question[0])
        return Outcome(reply=_error(query, dns.rcode.SERVFAIL).to_wire())
    if response is None:
        return Outcome(query=query)
    # Ours to answer, so ours to truncate to what the client can take.
    size = TCP_SIZE if over_tcp else max(UDP_SIZE, query.payload if query.edns >= 0 else 0)
    return Outcome(reply=response.to_wire(max_size=size, prefer_truncation=True))


def _local(resolver: Resolver, container_id: str, query: dns.message.Message
           ) -> dns.message.Message | None:
    """Our answer to a query, or None if it is not ours to answer."""
    import dns.exception
    import dns.name
    import dns.rdataclass
    import dns.rdatatype
    import dns.reversename

    question = query.question[0]
    qname, qtype = question.name, question.rdtype
    # Only the Internet class holds our names; a CHAOS "version.bind" goes out.
    if question.rdclass != dns.rdataclass.IN or qname == dns.name.root:
        return None
    if qtype in (dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.MX):
        found = resolver.lookup(container_id, qname.to_text(omit_final_dot=True).lower())
        if found is None:
            return None
        v4, v6 = found
        if qtype == dns.rdatatype.MX:
            return _response(query, []) if v4 or v6 else None
        addresses = list(v4 if qtype == dns.rdatatype.A else v6)
        random.shuffle(addresses)
        return _response(query, addresses)
    if qtype == dns.rdatatype.PTR:
        try:
            ip = dns.reversename.to_address(qname)
        except dns.exception.SyntaxError:
            return None                  # not a whole address: the upstreams may know it
        host = resolver.reverse(container_id, ip)
        if host is None:
            return None
        return _response(query, [dns.name.from_text(host)])
    return None


def _response(query: dns.message.Message, values: list) -> dns.message.Message:
    """A NOERROR answer to the query's question with one record per value
    (an address, or a dns.name.Name for PTR).

    One RRset per record, so that truncation (which drops whole RRsets) keeps
    as many records as fit, as miekg/dns's Truncate does: resolvers that do
    not retry over TCP (older musl) still get some addresses."""
    import dns.message
    import dns.rdata
    import dns.rrset

    response = dns.message.make_response(query, recursion_available=True)
    question = query.question[0]
    # The record class's constructor checks the value; from_text would also
    # tokenize it, a fifth of the cost of an answer.
    make = dns.rdata.get_rdata_class(question.rdclass, question.rdtype)
    for value in values:
        rdata = make(question.rdclass, question.rdtype, value)
        response.answer.append(dns.rrset.from_rdata(question.name, TTL, rdata))
    return response


def _error(query: dns.message.Message, rcode: int) -> dns.message.Message:
    """An answer with no records and the given rcode (as miekg's SetRcode: no RA)."""
    import dns.message

    response = dns.message.make_response(query)
    response.set_rcode(rcode)
    return response


def _header_only(qid: int, flags: int, rcode: int) -> bytes:
    """A reply to a query that could not be read: just its ID, opcode and rcode
    (and RD/CD for a QUERY), as miekg/dns rejects a message."""
    import dns.flags
    import dns.message
    import dns.opcode

    reply = dns.message.Message(id=qid)
    opcode = dns.opcode.from_flags(flags)
    reply.flags = dns.flags.QR | dns.opcode.to_flags(opcode)
    if opcode == dns.opcode.QUERY:
        reply.flags |= flags & (dns.flags.RD | dns.flags.CD)
    reply.set_rcode(rcode)
    return reply.to_wire()


@dataclass(eq=False)
class _Listener:
    """One container's listening pair and the work in flight on it.

    TCP is served with the loop's sock_accept/sock_recv on plain non-blocking
    sockets rather than asyncio.Server: closing a Server while a connection
    is being accepted leaves that connection open and unserved (Python 3.11),
    and its handler tasks log an error when cancelled. Here every piece of
    work is a task of ours, and cancelling it closes its socket."""
    container_id: str
    slots: asyncio.Semaphore                 # bounds the forwards in flight
    tcp: socket.socket
    udp_closed: asyncio.Future               # set once the UDP socket is closed
    udp: asyncio.DatagramTransport | None = None
    tasks: set[asyncio.Task] = field(default_factory=set)

    async def close(self) -> None:
        """Stop listening, drop connections and cancel queries in flight; the
        port is free again when this returns."""
        if self.udp is not None:
            self.udp.close()                       # the socket closes on the next loop turn
        for task in self.tasks:
            task.cancel()                          # the accept loop and each connection
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tcp.close()
        await self.udp_closed


class _DatagramServer(asyncio.DatagramProtocol):
    def __init__(self, dns_server: EmbeddedDNS, listener: _Listener):
        self.dns_server, self.listener = dns_server, listener
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        # Our own answers are made here and now, with no task: the common case
        # (a container looking up a container) costs one parse and one render.
        outcome = answer(self.dns_server.resolver, self.listener.container_id, data,
                         over_tcp=False)
        if outcome.reply is not None:
            self.transport.sendto(outcome.reply, addr)
        elif outcome.query is not None:
            self.dns_server._spawn(self.listener, self._forward(outcome.query, addr))

    async def _forward(self, query: dns.message.Message, addr) -> None:
        try:
            reply = await self.dns_server.forward(self.listener.container_id,
                                                 self.listener.slots, query, over_tcp=False)
        except Exception:
            log.exception("embedded DNS: forwarding %s", query.question[0])
            return
        if not self.transport.is_closing():
            self.transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        # An ICMP error for an earlier reply (the client went away): nothing to do.
        log.debug("embedded DNS for %s: %s", self.listener.container_id, exc)

    def connection_lost(self, exc) -> None:
        if not self.listener.udp_closed.done():
            self.listener.udp_closed.set_result(None)


class EmbeddedDNS:
    """The per-container DNS servers of one daemon, on the daemon's event loop.

    attach() when a container's sandbox (its network namespace, with `lo` up)
    is ready, detach() when it goes; close() at daemon shutdown. The
    resolver's methods are called on the loop for every query and must not
    block."""

    def __init__(self, resolver: Resolver, *, timeout: float = UPSTREAM_TIMEOUT,
                 max_concurrent: int = MAX_CONCURRENT):
        self.resolver = resolver
        self.timeout = timeout
        self.max_concurrent = max_concurrent
        self._listeners: dict[str, _Listener] = {}
        self._limit_logged = 0.0

    async def attach(self, container_id: str, sandbox_path: str) -> None:
        """Serve 127.0.0.11:53 (UDP and TCP) in the netns pinned at sandbox_path.

        Attaching again replaces the earlier pair (a daemon that restarted
        re-attaches its running containers). Raises OSError naming the failed
        call. The namespace's `lo` must be up for queries to arrive (bind
        succeeds without it, so this cannot tell)."""
        await self.detach(container_id)
        await asyncio.to_thread(_load_dnspython)
        udp_sock, tcp_sock = await asyncio.to_thread(netns.run_inside, sandbox_path,
                                                     functools.partial(_open, sandbox_path))
        loop = asyncio.get_running_loop()
        tcp_sock.setblocking(False)
        listener = _Listener(container_id, asyncio.Semaphore(self.max_concurrent), tcp_sock,
                             loop.create_future())
        try:
            listener.udp, _ = await loop.create_datagram_endpoint(
                lambda: _DatagramServer(self, listener), sock=udp_sock)
        except BaseException:
            udp_sock.close()
            tcp_sock.close()
            raise
        self._spawn(listener, self._accept(listener))
        self._listeners[container_id] = listener

    async def detach(self, container_id: str) -> None:
        """Stop serving a container; nothing happens if it is not attached."""
        listener = self._listeners.pop(container_id, None)
        if listener is not None:
            await listener.close()

    async def close(self) -> None:
        """Stop serving every container."""
        while self._listeners:
            await self.detach(next(iter(self._listeners)))

    def attached(self) -> list[str]:
        """The IDs of the containers being served."""
        return list(self._listeners)

    def _spawn(self, listener: _Listener, coro) -> None:
        """Run coro as part of the listener's work, cancelled when it closes."""
        task = asyncio.get_running_loop().create_task(coro)
        listener.tasks.add(task)
        task.add_done_callback(listener.tasks.discard)

    async def forward(self, container_id: str, slots: asyncio.Semaphore,
                      query: dns.message.Message, over_tcp: bool) -> bytes:
        """The upstreams' answer to a query that is not ours, with the client's ID.

        `slots` bounds the container's forwards in flight."""
        import dns.rcode

        try:
            servers = [s for s in self.resolver.upstreams(container_id)
                       if s != ADDRESS][:MAX_UPSTREAMS]      # never ask ourselves
        except Exception:
            log.exception("embedded DNS: upstreams of %s", container_id)
            servers = []
        for server in servers:
            try:
                async with asyncio.timeout(self.timeout):
                    await slots.acquire()
            except TimeoutError:
                self._log_limit()
                return _error(query, dns.rcode.REFUSED).to_wire()
            try:
                response = await _exchange(query, server, over_tcp, self.timeout)
            finally:
                slots.release()
            if response is None:
                continue
            if response.rcode() in (dns.rcode.SERVFAIL, dns.rcode.REFUSED):
                # REFUSED can be passing (a server starting up): the next may answer.
                log.debug("embedded DNS: %s answered %s to %s", server,
                          dns.rcode.to_text(response.rcode()), query.question[0])
                continue
            response.id = query.id
            # Relayed whole, as dockerd does, even past the client's UDP size:
            # some servers send big answers to queries without EDNS.
            return response.to_wire(max_size=TCP_SIZE, prefer_truncation=True)
        return _error(query, dns.rcode.SERVFAIL).to_wire()

    async def _accept(self, listener: _Listener) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(listener.tcp)
            except OSError as e:                   # EMFILE and the like: try again soon
                log.warning("embedded DNS for %s: accept: %s", listener.container_id, e)
                await asyncio.sleep(0.1)
                continue
            conn.setblocking(False)
            self._spawn(listener, self._serve_connection(listener, conn))

    async def _serve_connection(self, listener: _Listener, conn: socket.socket) -> None:
        """Queries over one TCP connection, answered in turn (RFC 7766 framing:
        each message preceded by its length in two bytes)."""
        loop = asyncio.get_running_loop()
        timeout = TCP_FIRST_READ_TIMEOUT
        try:
            while True:
                async with asyncio.timeout(timeout):
                    size = int.from_bytes(await _recv_exactly(loop, conn, 2), "big")
                    wire = await _recv_exactly(loop, conn, size)
                outcome = answer(self.resolver, listener.container_id, wire, over_tcp=True)
                reply = outcome.reply
                if outcome.query is not None:
                    reply = await self.forward(listener.container_id, listener.slots,
                                               outcome.query, over_tcp=True)
                if reply is not None:
                    await loop.sock_sendall(conn, len(reply).to_bytes(2, "big") + reply)
                timeout = TCP_IDLE_TIMEOUT
        except (EOFError, TimeoutError, OSError):
            pass                                   # the client is gone, or idle too long
        finally:
            conn.close()

    def _log_limit(self) -> None:
        now = time.monotonic()
        if now - self._limit_logged >= LIMIT_LOG_INTERVAL:
            self._limit_logged = now
            log.error("embedded DNS: more than %d concurrent queries", self.max_concurrent)


async def _exchange(query: dns.message.Message, server: str, over_tcp: bool,
                    timeout: float) -> dns.message.Message | None:
    """Ask one upstream from the daemon's namespace; None if it did not answer.

    The query goes out under a fresh random ID, so that a container cannot
    pick the ID that an off-path forger would have to guess; dnspython checks
    that the reply matches it and the question."""
    import dns.asyncbackend
    import dns.asyncquery
    import dns.entropy
    import dns.exception

    client_id, query.id = query.id, dns.entropy.random_16()
    backend = dns.asyncbackend.get_backend("asyncio")
    try:
        if over_tcp:
            return await dns.asyncquery.tcp(query, server, timeout=timeout, backend=backend)
        return await _exchange_udp(query, server, timeout)
    except (dns.exception.DNSException, OSError, ValueError, EOFError) as e:
        # Timeout, refused connection, a reply we cannot read, an address
        # that is not an IP: the next upstream is asked.
        log.warning("embedded DNS: forwarding %s to %s over %s: %s", query.question[0],
                    server, "tcp" if over_tcp else "udp", e or type(e).__name__)
        return None
    finally:
        query.id = client_id


class _Upstream(asyncio.DatagramProtocol):
    """One query's connected UDP socket: a reply that matches it, or the
    error the kernel reports (ICMP port unreachable reads as ECONNREFUSED on a
    connected socket, so a server that is not there fails at once rather than
    after the timeout, as with dockerd's connected sockets)."""

    def __init__(self, query: dns.message.Message):
        self.query = query
        self.done: asyncio.Future = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr) -> None:
        import dns.exception

        try:
            response = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return  # a stray or forged datagram: the real answer is still awaited
        if self.query.is_response(response) and not self.done.done():
            self.done.set_result(response)

    def error_received(self, exc: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(exc)


async def _exchange_udp(query: dns.message.Message, server: str,
                        timeout: float) -> dns.message.Message:
    loop = asyncio.get_running_loop()
    transport, upstream = await loop.create_datagram_endpoint(
        lambda: _Upstream(query), remote_addr=(server, PORT))
    try:
        transport.sendto(query.to_wire())
        try:
            async with asyncio.timeout(timeout):
                return await upstream.done
        except TimeoutError:
            import dns.exception
            raise dns.exception.Timeout(timeout=timeout) from None
    finally:
        transport.close()


async def _recv_exactly(loop: asyncio.AbstractEventLoop, conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = await loop.sock_recv(conn, n - len(data))
        if not chunk:
            raise EOFError("connection closed")
        data += chunk
    return data


def _open(sandbox_path: str) -> tuple[socket.socket, socket.socket]:
    """The UDP and TCP sockets on 127.0.0.11:53 of the calling thread's netns."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        _bind(udp, sandbox_path, "udp")
        # A re-attach must not wait out the TIME_WAIT of the last pair's connections.
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        _bind(tcp, sandbox_path, "tcp")
        tcp.listen(socket.SOMAXCONN)
    except BaseException:
        udp.close()
        tcp.close()
        raise
    return udp, tcp


def _bind(sock: socket.socket, sandbox_path: str, proto: str) -> None:
    try:
        sock.bind((ADDRESS, PORT))
    except OSError as e:
        raise OSError(e.errno, f"bind({ADDRESS}:{PORT}/{proto}) in {sandbox_path}: "
                               f"{e.strerror}") from e


def _load_dnspython() -> None:
    """Import what queries need, off the event loop (the first time 80-150 ms)."""
    import dns.asyncbackend
    import dns.asyncquery  # noqa: F401
    import dns.entropy  # noqa: F401
    import dns.message  # noqa: F401
    import dns.rdata  # noqa: F401
    import dns.rdtypes.ANY.PTR  # noqa: F401
    import dns.rdtypes.IN.A  # noqa: F401
    import dns.rdtypes.IN.AAAA  # noqa: F401
    import dns.reversename  # noqa: F401
    import dns.rrset  # noqa: F401

    dns.asyncbackend.get_backend("asyncio")
