"""Published ports through the userland proxy, on loopback only: dockyard's
proxy (dockyard.network.proxy, started through dockyard.network.proxies)
against a direct connection and, when it is installed, dockerd's
`docker-proxy` (/usr/sbin/docker-proxy or on PATH), started by hand with its
flags (-proto tcp -host-ip 127.0.0.1 -host-port P -container-ip 127.0.0.1
-container-port Q) and its status pipe on fd 3.

    throughput    1 GiB (BENCH_PORTS_BYTES) sent one way: sendfile(2) from a
                  tmpfs file, into a sink that splices it to /dev/null, so
                  that the figure is the path's, not the client's; GiB/s and
                  the proxy's CPU seconds per GiB (utime + stime)
    conn rate     2000 sequential connections, each: connect, 1 byte there and
                  back, close (connections per second)
    held conns    RSS of the proxy with 500 idle connections open through it
    spawn         start to serving: `Proxies.start(wait=True)` (the proxy has
                  reported ready) and start(wait=False) until a first echo
                  round trip through it; docker-proxy: exec until "0\\n" on
                  its fd 3, and until a first round trip; 20 runs each

Throughput and connection rate are measured in 3 rounds (BENCH_PORTS_ROUNDS),
each path in turn in each round, and the medians printed. The servers standing
in for the container run in child processes of this script (`--serve
sink|echo`); every process started here is stopped by its PID. Traffic goes to
127.0.0.1 only.

    .venv/bin/python bench/bench_ports.py
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_stats import cpu_seconds  # noqa: E402
from common import REPO, median, ms, p95, print_table, rss_mib  # noqa: E402

sys.path.insert(0, str(REPO / "src"))
from dockyard.network import proxies  # noqa: E402

TOTAL = int(os.environ.get("BENCH_PORTS_BYTES", str(1 << 30)))
CHUNK_FILE = 64 << 20
CONNECTIONS = 2000
ROUNDS = int(os.environ.get("BENCH_PORTS_ROUNDS", "3"))
HELD = 500
SPAWNS = 20
LOOPBACK = "127.0.0.1"


# --- the servers standing in for the container (child processes) -------------------

def serve_sink(sock: socket.socket) -> None:
    """Per connection: splice everything to /dev/null, then answer the byte count."""
    null = os.open(os.devnull, os.O_WRONLY)

    def drain(conn: socket.socket) -> None:
        r, w = os.pipe()
        total = 0
        try:
            while True:
                n = os.splice(conn.fileno(), w, 1 << 20)
                if not n:
                    break
                total += n
                while n:
                    n -= os.splice(r, null, n)
            conn.sendall(total.to_bytes(8, "big"))
        finally:
            os.close(r)
            os.close(w)
            conn.close()

    while True:
        conn, _ = sock.accept()
        threading.Thread(target=drain, args=(conn,), daemon=True).start()


def serve_echo(sock: socket.socket) -> None:
    """One thread, epoll: echo what comes, close on EOF."""
    sock.setblocking(False)
    ep = select.epoll()
    ep.register(sock.fileno(), select.EPOLLIN)
    conns: dict[int, socket.socket] = {}
    while True:
        for fd, _ in ep.poll():
            if fd == sock.fileno():
                while True:
                    try:
                        c, _ = sock.accept()
                    except BlockingIOError:
                        break
                    c.setblocking(False)
                    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    conns[c.fileno()] = c
                    ep.register(c.fileno(), select.EPOLLIN)
                continue
            c = conns[fd]
            try:
                data = c.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data:
                try:
                    c.send(data)
                except OSError:
                    pass
            else:
                ep.unregister(fd)
                del conns[fd]
                c.close()


class Server:
    """`--serve KIND` in a child process on 127.0.0.1; .port, stop() by PID."""

    def __init__(self, kind: str):
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", kind],
                                     stdout=subprocess.PIPE)
        self.port = int(self.proc.stdout.readline())

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait()


def run_server(kind: str) -> None:
    sock = socket.socket()
    sock.bind((LOOPBACK, 0))
    sock.listen(4096)
    print(sock.getsockname()[1], flush=True)
    (serve_sink if kind == "sink" else serve_echo)(sock)


# --- the paths: direct, dockyard's proxy, docker-proxy --------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def docker_proxy_binary() -> str | None:
    if os.access("/usr/sbin/docker-proxy", os.X_OK):
        return "/usr/sbin/docker-proxy"
    return shutil.which("docker-proxy")


class Route:
    """A way to reach a server: .port to connect to, .pid of the proxy (0 if none)."""
    name = ""
    port = 0
    pid = 0

    def stop(self) -> None:
        pass


class Direct(Route):
    name = "direct"

    def __init__(self, target: int):
        self.port = target


class Dockyard(Route):
    name = "dockyard proxy"
    counter = 0

    def __init__(self, target: int, wait: bool = True):
        Dockyard.counter += 1
        self.dir = tempfile.mkdtemp(prefix="dybench-ports-")
        self.proxies = proxies.Proxies(self.dir)
        self.cid = f"bench{Dockyard.counter}"
        sock = proxies.bind(LOOPBACK, 0, "tcp")
        self.port = sock.getsockname()[1]
        self.pid = self.proxies.start(self.cid, [proxies.Binding("tcp", sock, LOOPBACK, target)],
                                      wait=wait)

    def stop(self) -> None:
        self.proxies.stop(self.cid)
        shutil.rmtree(self.dir, ignore_errors=True)


class DockerProxy(Route):
    name = "docker-proxy"

    def __init__(self, binary: str, target: int):
        self.port = free_port()
        r, w = os.pipe()
        # docker-proxy reports "0\n" or "1\n<error>" on its fd 3.
        null = os.open(os.devnull, os.O_RDWR)
        try:
            self.pid = os.posix_spawn(
                binary, [binary, "-proto", "tcp", "-host-ip", LOOPBACK, "-host-port",
                         str(self.port), "-container-ip", LOOPBACK,
                         "-container-port", str(target)], os.environ,
                file_actions=[(os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, null, 1),
                              (os.POSIX_SPAWN_DUP2, null, 2), (os.POSIX_SPAWN_DUP2, w, 3)],
                setsid=True)
        finally:
            os.close(null)
            os.close(w)
        with os.fdopen(r, "rb") as f:
            self.status = f.read()
        if self.status != b"0\n":
            self.stop()
            raise RuntimeError(f"docker-proxy: {self.status!r}")

    def stop(self) -> None:
        if self.pid:
            os.kill(self.pid, signal.SIGTERM)
            os.waitpid(self.pid, 0)
            self.pid = 0


# --- measurements ------------------------------------------------------------------

def throughput(port: int, pid: int, source: int) -> tuple[float, float]:
    """(GiB/s, proxy CPU s per GiB) for TOTAL bytes sent to the sink via `port`."""
    cpu0 = cpu_seconds(pid)
    t0 = time.perf_counter()
    with socket.create_connection((LOOPBACK, port)) as s:
        sent = 0
        while sent < TOTAL:
            count = min(CHUNK_FILE, TOTAL - sent)
            offset = 0
            while offset < count:
                offset += os.sendfile(s.fileno(), source, offset, count - offset)
            sent += count
        s.shutdown(socket.SHUT_WR)
        got = int.from_bytes(recv_exactly(s, 8), "big")
    elapsed = time.perf_counter() - t0
    if got != TOTAL:
        raise RuntimeError(f"sink got {got} bytes of {TOTAL}")
    gib = TOTAL / (1 << 30)
    return gib / elapsed, (cpu_seconds(pid) - cpu0) / gib


def recv_exactly(s: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise RuntimeError("connection closed early")
        data += chunk
    return data


def round_trip(port: int) -> None:
    with socket.create_connection((LOOPBACK, port), timeout=10) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(b"x")
        if s.recv(1) != b"x":
            raise RuntimeError("no echo")


def connection_rate(port: int) -> float:
    for _ in range(50):
        round_trip(port)
    t0 = time.perf_counter()
    for _ in range(CONNECTIONS):
        round_trip(port)
    return CONNECTIONS / (time.perf_counter() - t0)


def held_rss(port: int, pid: int) -> tuple[float, float]:
    """(RSS idle, RSS with HELD connections open and used once), MiB."""
    idle = rss_mib(pid)
    socks = []
    try:
        for _ in range(HELD):
            s = socket.create_connection((LOOPBACK, port), timeout=10)
            socks.append(s)
            s.sendall(b"x")
            recv_exactly(s, 1)
        return idle, rss_mib(pid)
    finally:
        for s in socks:
            s.close()


def spawn_times(make, port_of) -> tuple[list[float], list[float]]:
    """(start-returned, start-to-first-round-trip) seconds, SPAWNS runs each."""
    started, serving = [], []
    for _ in range(SPAWNS):
        t0 = time.perf_counter()
        p = make()
        t1 = time.perf_counter()
        try:
            deadline = t1 + 10
            while True:
                try:
                    round_trip(port_of(p))
                    break
                except ConnectionRefusedError:
                    if time.perf_counter() > deadline:
                        raise
                    time.sleep(0.0005)
            t2 = time.perf_counter()
        finally:
            p.stop()
        started.append(t1 - t0)
        serving.append(t2 - t0)
    return started, serving


class ModuleProxy(Route):
    """dockyard's proxy as `python -m dockyard.network.proxy` (site and all):
    what proxies.command's start-up choices save."""

    def __init__(self, target: int):
        sock = proxies.bind(LOOPBACK, 0, "tcp")
        self.port = sock.getsockname()[1]
        r, w = os.pipe()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dockyard.network.proxy", "--container-id", "bench-m",
             "--ready-fd", str(w), "--binding", f"tcp,{sock.fileno()},{LOOPBACK},{target}"],
            pass_fds=(sock.fileno(), w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            start_new_session=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
        sock.close()
        os.close(w)
        with os.fdopen(r, "rb") as f:
            f.read()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait()


def measure_routes(makers: list, sink: Server, echo: Server, source: int) -> dict:
    """ROUNDS rounds, each route in turn in each round, so that load from
    elsewhere on the machine spreads over all of them alike.
    {name: {"tp": [(GiB/s, CPU s/GiB)], "conn": [conn/s], "rss": (idle, held)}}"""
    out: dict = {name: {"tp": [], "conn": [], "rss": None} for name, _ in makers}
    for _ in range(ROUNDS):
        for name, make in makers:
            p = make(sink.port)
            try:
                out[name]["tp"].append(throughput(p.port, p.pid, source))
            finally:
                p.stop()
            p = make(echo.port)
            try:
                out[name]["conn"].append(connection_rate(p.port))
                if p.pid and out[name]["rss"] is None:
                    out[name]["rss"] = held_rss(p.port, p.pid)
            finally:
                p.stop()
    return out


def main() -> None:
    binary = docker_proxy_binary()
    print(f"docker-proxy: {binary or 'not available'}; {os.cpu_count()} CPUs; "
          f"{TOTAL / (1 << 30):g} GiB per throughput run; {ROUNDS} rounds")
    sink, echo = Server("sink"), Server("echo")
    source_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
    source_file = tempfile.NamedTemporaryFile(dir=source_dir, prefix="dybench-ports-")
    source_file.write(os.urandom(1 << 20) * (CHUNK_FILE >> 20))
    source_file.flush()
    makers = [("direct", lambda t: Direct(t)), ("dockyard proxy", lambda t: Dockyard(t))]
    if binary:
        makers.append(("docker-proxy", lambda t: DockerProxy(binary, t)))
    variants = [("dockyard start(wait=True)", lambda: Dockyard(echo.port, wait=True)),
                ("dockyard start(wait=False)", lambda: Dockyard(echo.port, wait=False)),
                ("dockyard as python -m", lambda: ModuleProxy(echo.port))]
    if binary:
        variants.append(("docker-proxy", lambda: DockerProxy(binary, echo.port)))
    try:
        routes = measure_routes(makers, sink, echo, source_file.fileno())
        spawns = {name: spawn_times(make, lambda p: p.port) for name, make in variants}
    finally:
        sink.stop()
        echo.stop()
        source_file.close()
    rows_tp, rows_conn = [], []
    for name, r in routes.items():
        rates = sorted(x[0] for x in r["tp"])
        rows_tp.append([name, f"{median(rates):.2f}", f"{rates[0]:.2f}-{rates[-1]:.2f}",
                        f"{median([x[1] for x in r['tp']]):.2f}" if r["rss"] else "-"])
        conns = sorted(r["conn"])
        idle, held = r["rss"] or ("-", "-")
        rows_conn.append([name, f"{median(conns):.0f}", f"{conns[0]:.0f}-{conns[-1]:.0f}",
                          f"{idle:.1f}" if r["rss"] else "-", f"{held:.1f}" if r["rss"] else "-"])
    print_table("TCP throughput, one way (127.0.0.1)",
                ["path", "GiB/s (median)", "range", "proxy CPU s/GiB"], rows_tp)
    print_table(f"Connection rate ({CONNECTIONS} sequential connect/1 byte echo/close) and "
                f"proxy RSS", ["path", "conn/s (median)", "range", "RSS idle MiB",
                               f"RSS {HELD} conns MiB"], rows_conn)
    print_table(f"Spawn to serving, ms ({SPAWNS} runs)",
                ["how", "start returned median", "p95", "first round trip median", "p95"],
                [[name, ms(median(started)), ms(p95(started)), ms(median(serving)),
                  ms(p95(serving))] for name, (started, serving) in spawns.items()])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
        run_server(sys.argv[2])
    else:
        main()
