"""The userland proxy on loopback: echo servers in this process stand in for a
container; the proxy is started through dockyard.network.proxies on a free
127.0.0.1 port. Every proxy and helper process is stopped by its PID, even when
a test fails; traffic goes to 127.0.0.1 (and ::1) only."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from dockyard.network import proxies
from dockyard.network.proxies import Binding, ProxyStartFailed, bind, is_proxy
from paths import REPO

LOOPBACK = "127.0.0.1"
TIMEOUT = 10


# --- stand-ins for the container ----------------------------------------------------

class TCPEcho:
    """Echoes each connection until its EOF, then half-closes. `greet`: send
    that first and half-close at once, then record what arrives (the other
    half-close direction)."""

    def __init__(self, host: str = LOOPBACK, greet: bytes | None = None):
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.bind((host, 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.greet = greet
        self.received: queue.Queue = queue.Queue()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(TIMEOUT)
            try:
                if self.greet is not None:
                    conn.sendall(self.greet)
                    conn.shutdown(socket.SHUT_WR)
                    self.received.put(read_all(conn))
                    return
                while data := conn.recv(1 << 16):
                    conn.sendall(data)
                conn.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def close(self) -> None:
        self.sock.close()


class UDPEcho:
    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.port = self.sock.getsockname()[1]
        self.peers: list = []  # where each datagram came from: the proxy's flows
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(65535)
                self.peers.append(peer)
                self.sock.sendto(b"echo:" + data, peer)
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()


def read_all(conn: socket.socket) -> bytes:
    chunks = []
    while chunk := conn.recv(1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture
def tcp_echo():
    server = TCPEcho()
    yield server
    server.close()


@pytest.fixture
def udp_echo():
    server = UDPEcho()
    yield server
    server.close()


@pytest.fixture
def manager(tmp_path):
    """A Proxies on a temporary pidfile directory; every proxy it knows of is
    stopped at the end."""
    m = proxies.Proxies(str(tmp_path / "proxies"))
    yield m
    m.reap_stale(keep=set())


def start_tcp(manager, target_port: int, container_id: str = "c1", host: str = LOOPBACK,
              **kw) -> tuple[int, int]:
    sock = bind(host, 0, "tcp")
    port = sock.getsockname()[1]
    pid = manager.start(container_id, [Binding("tcp", sock, host, target_port)], **kw)
    return pid, port


# --- TCP ------------------------------------------------------------------------------

def test_tcp_round_trip_and_half_close(manager, tcp_echo):
    pid, port = start_tcp(manager, tcp_echo.port)
    payload = os.urandom(8 << 20)
    with socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as c:
        threading.Thread(target=lambda: (c.sendall(payload), c.shutdown(socket.SHUT_WR)),
                         daemon=True).start()
        # The echo answers only until our EOF reaches it, then half-closes: our
        # shutdown went through the proxy, and its reply's end came back.
        assert read_all(c) == payload
    assert is_proxy(pid, "c1")


def test_half_close_from_the_container_side(manager):
    server = TCPEcho(greet=b"hello")
    try:
        _, port = start_tcp(manager, server.port)
        with socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as c:
            assert read_all(c) == b"hello"           # the container's EOF reached us...
            c.sendall(b"still talking")              # ...and our direction stays open
            c.shutdown(socket.SHUT_WR)
            assert server.received.get(timeout=TIMEOUT) == b"still talking"
    finally:
        server.close()


def test_many_concurrent_connections(manager, tcp_echo):
    _, port = start_tcp(manager, tcp_echo.port)
    count, size = 200, 64 << 10
    conns = [socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) for _ in range(count)]
    results: list = [None] * count

    def talk(i: int, c: socket.socket) -> None:
        data = bytes([i % 256]) * size
        c.sendall(data)
        c.shutdown(socket.SHUT_WR)
        results[i] = read_all(c) == data

    try:
        threads = [threading.Thread(target=talk, args=(i, c)) for i, c in enumerate(conns)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT * 3)
    finally:
        for c in conns:
            c.close()
    assert results == [True] * count


def test_ipv6_loopback(manager):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        server = TCPEcho("::1")
    except OSError:
        pytest.skip("no ::1")
    try:
        _, port = start_tcp(manager, server.port, host="::1")
        with socket.create_connection(("::1", port), timeout=TIMEOUT) as c:
            c.sendall(b"six")
            c.shutdown(socket.SHUT_WR)
            assert read_all(c) == b"six"
    finally:
        server.close()


def test_nothing_listening_in_the_container_closes_the_client(manager, tcp_echo):
    closed = socket.socket()
    closed.bind((LOOPBACK, 0))
    dead_port = closed.getsockname()[1]  # bound, never listening: connect is refused
    try:
        sock = bind(LOOPBACK, 0, "tcp")
        port = sock.getsockname()[1]
        pid = manager.start("c1", [Binding("tcp", sock, LOOPBACK, dead_port)])
        with socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as c:
            assert c.recv(10) == b""
        assert is_proxy(pid, "c1")
    finally:
        closed.close()


def test_address_already_in_use_on_a_second_bind(manager, tcp_echo):
    _, port = start_tcp(manager, tcp_echo.port)
    with pytest.raises(ProxyStartFailed) as e:
        bind(LOOPBACK, port, "tcp")
    assert str(e.value) == (f"Error starting userland proxy: listen tcp4 127.0.0.1:{port}: "
                            f"bind: address already in use")
    udp = bind(LOOPBACK, 0, "udp")
    try:
        with pytest.raises(ProxyStartFailed, match=r"^Error starting userland proxy: "
                           r"listen udp4 127\.0\.0\.1:\d+: bind: address already in use$"):
            bind(LOOPBACK, udp.getsockname()[1], "udp")
    finally:
        udp.close()


def test_a_proxy_that_cannot_serve_reports_it(manager):
    udp = bind(LOOPBACK, 0, "udp")
    fd = udp.fileno()
    with pytest.raises(ProxyStartFailed,
                       match=rf"^Error starting userland proxy: fd {fd} is not a tcp socket$"):
        manager.start("c1", [Binding("tcp", udp, LOOPBACK, 80)])
    assert udp.fileno() == -1  # handed over, so closed here even on failure
    assert manager.find("c1") is None
    assert not os.path.exists(manager.pidfile("c1"))


# --- UDP ------------------------------------------------------------------------------

def test_udp_round_trip_per_client(manager, udp_echo):
    sock = bind(LOOPBACK, 0, "udp")
    addr = sock.getsockname()
    manager.start("c1", [Binding("udp", sock, LOOPBACK, udp_echo.port)])
    clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
    try:
        for i, c in enumerate(clients):
            c.settimeout(TIMEOUT)
            c.connect(addr)  # replies must come from the address we wrote to
            for n in range(3):
                c.send(f"{i}-{n}".encode())
                assert c.recv(100) == f"echo:{i}-{n}".encode()
    finally:
        for c in clients:
            c.close()


def test_udp_on_the_wildcard_replies_from_the_address_written_to(manager, udp_echo):
    # Only 127.0.0.1 gets traffic; the wildcard bind makes the proxy pick the
    # reply's source (IP_PKTINFO) instead of the socket's own address.
    sock = bind("0.0.0.0", 0, "udp")
    port = sock.getsockname()[1]
    manager.start("c1", [Binding("udp", sock, LOOPBACK, udp_echo.port)])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.settimeout(TIMEOUT)
        c.sendto(b"x", (LOOPBACK, port))
        data, source = c.recvfrom(100)
    assert data == b"echo:x"
    assert source == (LOOPBACK, port)


def test_tcp_and_udp_in_one_proxy(manager, tcp_echo, udp_echo):
    t, u = bind(LOOPBACK, 0, "tcp"), bind(LOOPBACK, 0, "udp")
    tport, uaddr = t.getsockname()[1], u.getsockname()
    pid = manager.start("c1", [Binding("tcp", t, LOOPBACK, tcp_echo.port),
                               Binding("udp", u, LOOPBACK, udp_echo.port)])
    assert manager.find("c1") == pid
    with socket.create_connection((LOOPBACK, tport), timeout=TIMEOUT) as c:
        c.sendall(b"t")
        c.shutdown(socket.SHUT_WR)
        assert read_all(c) == b"t"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.settimeout(TIMEOUT)
        c.sendto(b"u", uaddr)
        assert c.recvfrom(100)[0] == b"echo:u"


def test_udp_clients_are_forgotten_after_the_timeout(udp_echo):
    """Started by hand (as `python -m`), with a short --udp-timeout: a client's
    flow to the container is kept while used and replaced once idle."""
    sock = bind(LOOPBACK, 0, "udp")
    addr = sock.getsockname()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dockyard.network.proxy", "--container-id", "c1",
         "--udp-timeout", "0.4", "--binding", f"udp,{sock.fileno()},{LOOPBACK},{udp_echo.port}"],
        pass_fds=(sock.fileno(),), env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    sock.close()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            c.settimeout(TIMEOUT)
            c.connect(addr)
            for n in range(4):  # busy: one flow
                c.send(b"%d" % n)
                assert c.recv(100) == b"echo:%d" % n
                time.sleep(0.1)
            time.sleep(1.0)     # idle longer than the timeout
            c.send(b"again")
            assert c.recv(100) == b"echo:again"
        assert len(set(udp_echo.peers[:4])) == 1
        assert udp_echo.peers[4] != udp_echo.peers[0]
    finally:
        proc.terminate()
        proc.wait()


# --- the process ----------------------------------------------------------------------

def test_stop_leaves_no_process_and_frees_the_port(manager, tcp_echo):
    pid, port = start_tcp(manager, tcp_echo.port)
    with open(manager.pidfile("c1")) as f:
        assert int(f.read()) == pid
    t0 = time.monotonic()
    manager.stop("c1")
    assert time.monotonic() - t0 < 1.0  # SIGTERM ends it at once
    assert not os.path.exists(f"/proc/{pid}")  # gone and reaped
    assert not os.path.exists(manager.pidfile("c1"))
    assert manager.find("c1") is None
    bind(LOOPBACK, port, "tcp").close()  # nobody holds the port now
    manager.stop("c1")  # stopping again is fine


def test_sighup_is_ignored(manager, tcp_echo):
    pid, port = start_tcp(manager, tcp_echo.port)
    os.kill(pid, signal.SIGHUP)
    with socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as c:
        c.sendall(b"x")
        c.shutdown(socket.SHUT_WR)
        assert read_all(c) == b"x"
    assert is_proxy(pid, "c1")


def test_start_without_waiting_queues_connections_in_the_backlog(manager, tcp_echo):
    _, port = start_tcp(manager, tcp_echo.port, wait=False)
    with socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as c:
        c.sendall(b"early")
        c.shutdown(socket.SHUT_WR)
        assert read_all(c) == b"early"
    deadline = time.monotonic() + TIMEOUT
    while not os.path.exists(manager.pidfile("c1")) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert manager.find("c1") is not None


SPAWN_AND_EXIT = """
import sys
from dockyard.network.proxies import Binding, Proxies, bind
sock = bind("127.0.0.1", 0, "tcp")
port = sock.getsockname()[1]
pid = Proxies(sys.argv[1]).start(sys.argv[2], [Binding("tcp", sock, "127.0.0.1", int(sys.argv[3]))])
print(pid, port)
"""


def spawn_elsewhere(pidfile_dir: str, container_id: str, target: int) -> tuple[int, int]:
    """Start a proxy from another process that exits: a daemon that went away."""
    out = subprocess.run([sys.executable, "-c", SPAWN_AND_EXIT, pidfile_dir, container_id,
                          str(target)], capture_output=True, text=True, timeout=60,
                         check=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    pid, port = out.stdout.split()
    return int(pid), int(port)


def test_keeps_serving_after_its_parent_is_gone(manager, tcp_echo):
    pid, port = spawn_elsewhere(manager.pidfile_dir, "c1", tcp_echo.port)
    try:
        assert is_proxy(pid, "c1")
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        assert int(fields[3]) == pid  # its own session (session ID = its PID)
        with socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as c:
            c.sendall(b"orphan")
            c.shutdown(socket.SHUT_WR)
            assert read_all(c) == b"orphan"
        # A new daemon finds it by its pidfile and stops it (not its child).
        assert manager.find("c1") == pid
        manager.stop("c1")
        deadline = time.monotonic() + TIMEOUT
        while is_proxy(pid, "c1") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not is_proxy(pid, "c1")  # gone (or a zombie until init reaps it)
    finally:
        with contextlib.suppress(ProcessLookupError):
            if is_proxy(pid, "c1"):
                os.kill(pid, signal.SIGKILL)


def test_find_and_reap_stale_after_a_restart(manager, tcp_echo):
    stranger = subprocess.Popen(["sleep", "60"])
    started = []
    try:
        for cid in ("gone", "running"):
            started.append(spawn_elsewhere(manager.pidfile_dir, cid, tcp_echo.port)[0])
        # A pidfile pointing at a live process that is not a proxy of ours:
        # a PID the kernel reused. It must not be found, nor signalled.
        with open(manager.pidfile("reused"), "w") as f:
            f.write(f"{stranger.pid}\n")
        # A pidfile of a proxy that died, and a temp file of a write cut short.
        with open(manager.pidfile("dead"), "w") as f:
            f.write("999999999\n")
        with open(os.path.join(manager.pidfile_dir, ".tmp-proxy-999999999"), "w") as f:
            f.write("1")
        fresh = proxies.Proxies(manager.pidfile_dir)  # a restarted daemon
        assert fresh.find("reused") is None
        assert fresh.find("dead") is None
        assert fresh.find("gone") == started[0]
        assert fresh.find("running") == started[1]

        assert fresh.reap_stale(keep={"running"}) == ["gone"]
        assert stranger.poll() is None  # untouched
        assert not is_proxy(started[0], "gone")
        assert fresh.find("running") == started[1]
        assert sorted(os.listdir(manager.pidfile_dir)) == ["running.pid"]
    finally:
        stranger.kill()
        stranger.wait()
        for pid, cid in zip(started, ("gone", "running")):
            with contextlib.suppress(ProcessLookupError):
                if is_proxy(pid, cid):
                    os.kill(pid, signal.SIGKILL)
