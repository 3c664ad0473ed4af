"""The embedded DNS server's latency: how long a container waits for the address
of another container, asked of 127.0.0.11 from inside a network namespace made
here, the server running on an event loop thread as in the daemon, with a fake
resolver (50 containers' names). No daemon is started.

    A, UDP              one query after another from one socket (pre-encoded
                        query, reply read raw): the kernel's round trip plus
                        the server's parse, lookup and render
    A, UDP, dnspython   the same through dns.query.udp: a client that also
                        encodes and parses, as a libc resolver would
    A, TCP              over one kept-open connection
    PTR, UDP            the reverse lookup of a container address
    forwarded, UDP      a name not ours, to a fake upstream on 127.0.0.77:53
                        (host namespace) that answers at once
    answer() alone      the server's CPU share, no sockets
    attach + detach     one container's listening pair made and closed

Each figure is median / p99 in ms of N queries (N bounded, each with a 2 s
timeout), after a warm-up, sent by a client process of its own (this script
under nsenter) so that client and server do not share an interpreter. Queries go only to 127.0.0.11 inside the namespace
and to 127.0.0.77. Needs root (network namespaces, port 53).

    .venv/bin/python bench/bench_dns.py [--queries N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import median, print_table, write_samples  # noqa: E402

import dns.message  # noqa: E402
import dns.query  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rrset  # noqa: E402

from dockyard.linux import netns  # noqa: E402
from dockyard.network import dns as embedded  # noqa: E402

UPSTREAM = "127.0.0.77"
WARMUP = 100
TARGET_MS = 1.0           # median of a container-name lookup


class Names:
    """50 containers on one network, each seen by every other."""

    def __init__(self):
        self.v4 = {f"svc{i}": f"10.250.0.{i + 2}" for i in range(50)}
        self.by_ip = {ip: f"{name}.benchnet" for name, ip in self.v4.items()}

    def lookup(self, container_id, name):
        name = name.removesuffix(".benchnet")
        return ([self.v4[name]], []) if name in self.v4 else None

    def reverse(self, container_id, ip):
        return self.by_ip.get(ip)

    def upstreams(self, container_id):
        return [UPSTREAM]


class Upstream:
    """A UDP nameserver on 127.0.0.77:53 answering every A query with 192.0.2.1."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((UPSTREAM, 53))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop.is_set():
            if select.select([self.sock], [], [], 0.05)[0]:
                query, _, peer = dns.query.receive_udp(self.sock, None, time.time() + 1)
                response = dns.message.make_response(query)
                response.answer.append(dns.rrset.from_text(
                    query.question[0].name, 60, "IN", "A", "192.0.2.1"))
                dns.query.send_udp(self.sock, response, peer)

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


def p99(samples: list[float]) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, max(0, round(0.99 * len(s)) - 1))]


def round_trips(wire: bytes, n: int, tcp: bool = False) -> list[float]:
    """n sequential queries from one socket (in the client process's namespace)."""
    kind = socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM
    out = []
    with socket.socket(socket.AF_INET, kind) as s:
        s.settimeout(2)
        s.connect((embedded.ADDRESS, 53))
        message = len(wire).to_bytes(2, "big") + wire if tcp else wire
        for _ in range(n):
            t0 = time.perf_counter()
            s.sendall(message)
            if tcp:
                reply, _ = dns.query.receive_tcp(s, time.time() + 2)
            else:
                reply = s.recv(65535)
            out.append(time.perf_counter() - t0)
        last = reply if tcp else dns.message.from_wire(reply)
        if last.rcode() != dns.rcode.NOERROR or not last.answer:
            raise RuntimeError(f"unexpected answer: {last}")
    return out


def with_dnspython(name: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        query = dns.message.make_query(name, "A")
        t0 = time.perf_counter()
        dns.query.udp(query, embedded.ADDRESS, timeout=2)
        out.append(time.perf_counter() - t0)
    return out


QUERIES = {
    "A, UDP": ("svc7", "A", False),
    "A, TCP": ("svc7", "A", True),
    "PTR, UDP": ("9.0.250.10.in-addr.arpa.", "PTR", False),
    "forwarded, UDP": ("elsewhere.test", "A", False),
}


def client(figure: str, n: int) -> None:
    """The container's side, in a process of its own (run under nsenter), so
    that the client does not share the server's interpreter and GIL."""
    if figure == "A, UDP, dnspython":
        with_dnspython("svc7.benchnet", WARMUP)
        samples = with_dnspython("svc7.benchnet", n)
    else:
        name, rdtype, tcp = QUERIES[figure]
        wire = dns.message.make_query(name, rdtype).to_wire()
        round_trips(wire, WARMUP, tcp)
        samples = round_trips(wire, n, tcp)
    json.dump(samples, sys.stdout)


def from_inside(path: str, figure: str, n: int) -> list[float]:
    out = subprocess.run(["nsenter", f"--net={path}", sys.executable, os.path.abspath(__file__),
                          "--client", figure, "--queries", str(n)],
                         capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"client {figure!r} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout)


def measure(path: str, n: int) -> dict[str, list[float]]:
    r: dict[str, list[float]] = {}
    for figure in ("A, UDP", "A, UDP, dnspython", "A, TCP", "PTR, UDP"):
        r[figure] = from_inside(path, figure, n)
    upstream = Upstream()
    try:
        r["forwarded, UDP"] = from_inside(path, "forwarded, UDP", n)
    finally:
        upstream.close()

    names = Names()
    web = dns.message.make_query("svc7", "A").to_wire()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        embedded.answer(names, "bench", web, over_tcp=False)
        out.append(time.perf_counter() - t0)
    r["answer() alone"] = out
    return r


def import_costs() -> tuple[float, float]:
    """Seconds to import the module (what daemon start pays, asyncio being there
    already), then dnspython (what the first attach pays, in a worker thread),
    in a fresh interpreter."""
    code = ("import asyncio, logging, time; t0 = time.perf_counter(); "
            "import dockyard.network.dns as d; "
            "t1 = time.perf_counter(); d._load_dnspython(); "
            "print(t1 - t0, time.perf_counter() - t1)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    module, dnspython = out.stdout.split()
    return float(module), float(dnspython)


def attach_detach(server, path: str, run, n: int = 20) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        run(server.attach("other", path))
        run(server.detach("other"))
        out.append(time.perf_counter() - t0)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client(args.client, args.queries)
        return 0
    if os.geteuid() != 0:
        print("bench_dns: skipped (needs root for network namespaces)")
        return 0

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="dns-loop", daemon=True)
    thread.start()

    def run(coro):
        return asyncio.run_coroutine_threadsafe(coro, loop).result(30)

    tmp = tempfile.mkdtemp(prefix="dybench-dns-")
    paths = [os.path.join(tmp, "c1"), os.path.join(tmp, "c2")]
    server = embedded.EmbeddedDNS(Names(), timeout=2.0)
    made = []
    try:
        for path in paths:
            netns.create(path)
            made.append(path)
            subprocess.run(["nsenter", f"--net={path}", "ip", "link", "set", "lo", "up"],
                           check=True)
        run(server.attach("bench", paths[0]))
        results = measure(paths[0], args.queries)
        results["attach + detach"] = attach_detach(server, paths[1], run)
    finally:
        run(server.close())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        for path in made:
            netns.delete(path)
        os.rmdir(tmp)

    rows = [[name, f"{median(s) * 1000:.3f}", f"{p99(s) * 1000:.3f}", str(len(s)),
             f"< {TARGET_MS:g}" if name == "A, UDP" else "—"]
            for name, s in results.items()]
    print_table("embedded DNS (127.0.0.11 in a netns, fake resolver)",
                ["figure", "median ms", "p99 ms", "n", "target ms"], rows)
    module, dnspython = import_costs()
    print(f"\nimport dockyard.network.dns: {module * 1000:.1f} ms (daemon start); "
          f"dnspython on first attach: {dnspython * 1000:.1f} ms (in a worker thread)")
    print("dockerd: not measured (its resolver needs a dockerd container on a user network)")
    write_samples(results, "dns")
    return 0


if __name__ == "__main__":
    sys.exit(main())
