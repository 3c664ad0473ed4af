"""Shared helpers for the benchmarks: a throwaway dockyardd, a tiny HTTP client over
a UNIX socket, timing statistics and memory figures. Benchmarks, not tests: they
print numbers and never fail on them."""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent          # the venv's bin/ when run as .venv/bin/python
DOCKYARDD = BIN / "dockyardd"
DOCKYARD = BIN / "dockyard"
FIXTURES = Path(os.environ.get("DOCKYARD_FIXTURES", "/work/shared/fixtures/images"))


# --- HTTP over a UNIX socket -------------------------------------------------------

class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 60):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def request(conn: UnixConnection, method: str, url: str, body=None, headers=None):
    """One request on `conn`; returns (status, body bytes). Keeps the connection."""
    conn.request(method, url, body=body, headers=headers or {})
    resp = conn.getresponse()
    return resp.status, resp.read()


def call(sock: str, method: str, url: str, body=None, headers=None):
    conn = UnixConnection(sock)
    try:
        return request(conn, method, url, body, headers)
    finally:
        conn.close()


def socket_path(host: str) -> str:
    """`unix:///x/y.sock` or `/x/y.sock` -> `/x/y.sock`."""
    return host[len("unix://"):] if host.startswith("unix://") else host


def ref_socket() -> str | None:
    """The real dockerd to compare with, from DOCKER_REF_HOST, or None."""
    host = os.environ.get("DOCKER_REF_HOST")
    return socket_path(host) if host else None


def stop_process(proc: subprocess.Popen | None, timeout: float,
                 sig: int = signal.SIGTERM) -> None:
    """Stop a process the bench started, by its PID: `sig`, then SIGKILL if it
    is still there after `timeout` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def unmount_under(directory: Path, lazy: bool = False) -> None:
    """Everything mounted under `directory`, deepest first: never rmtree
    through a mount point."""
    with open("/proc/mounts") as f:
        mounts = [line.split()[1] for line in f if line.split()[1].startswith(str(directory))]
    for m in sorted(mounts, reverse=True):
        subprocess.run(["umount", *(["-l"] if lazy else []), m], check=False)


# --- A throwaway dockerd, to compare with ------------------------------------------

DOCKERD = "/usr/sbin/dockerd"


class ScratchDockerd:
    """`with ScratchDockerd() as sock:` a dockerd on temporary roots, without
    bridge or iptables and in a containerd namespace of its own; stopped by
    its PID (its containerd with it) and its directories removed at the end."""

    NAMESPACE = "dybench"

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="dybench-dockerd-"))
        self.sock = str(self.dir / "d.sock")
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> str:
        log = open(self.dir / "dockerd.log", "wb")
        self.proc = subprocess.Popen(
            [DOCKERD, "--data-root", str(self.dir / "root"), "--exec-root",
             str(self.dir / "exec"), "--pidfile", str(self.dir / "dockerd.pid"),
             "-H", f"unix://{self.sock}", "--bridge=none", "--iptables=false",
             "--ip6tables=false", "--ip-masq=false", "--ip-forward=false",
             "--containerd-namespace", self.NAMESPACE,
             "--containerd-plugins-namespace", self.NAMESPACE + "-p"],
            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(OSError):
                if call(self.sock, "GET", "/_ping")[0] == 200:
                    return self.sock
            time.sleep(0.1)
        self.__exit__(None, None, None)
        raise RuntimeError("dockerd did not start: "
                           f"{(self.dir / 'dockerd.log').read_text()[-2000:]}")

    def __exit__(self, *exc) -> None:
        containerd = self._containerd_pid()
        stop_process(self.proc, 30)
        if containerd:
            self._wait_gone(containerd)
        unmount_under(self.dir, lazy=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    def _containerd_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int((self.dir / "exec" / "containerd" / "containerd.pid").read_text())
        return None

    @staticmethod
    def _wait_gone(pid: int) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        return
            except OSError:
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def reference_dockerd():
    """The dockerd to compare with: DOCKER_REF_HOST's, else a scratch one when
    dockerd is installed, else None."""
    ref = ref_socket()
    if ref or not os.path.exists(DOCKERD):
        yield ref
        return
    with ScratchDockerd() as sock:
        yield sock


# --- A throwaway dockyardd ---------------------------------------------------------

# A bridge, subnet and iptables chains of the benchmarks' own (removed at the
# end), and a resolver on the loopback, so that no lookup leaves the host.
BENCH_BRIDGE = "dybench0"
BENCH_CHAINS = "DYBENCH"
NETWORK_FLAGS = ["--bridge", BENCH_BRIDGE, "--bip", "10.197.0.1/24",
                 "--iptables-chain-prefix", BENCH_CHAINS, "--dns", "127.0.0.77",
                 "--default-address-pool", "base=10.196.0.0/16,size=24"]


def remove_network_setup() -> None:
    """The bridge and chains a daemon keeps after it stops (as dockerd keeps docker0)."""
    subprocess.run(["ip", "link", "del", BENCH_BRIDGE], capture_output=True)
    from dockyard.network.firewall import Firewall
    try:
        Firewall(BENCH_CHAINS).teardown()
    except Exception as e:  # noqa: BLE001 - report, the figures are already printed
        print(f"removing the iptables chains {BENCH_CHAINS}: {e}", file=sys.stderr)


class Daemon:
    """`with Daemon() as d:` starts dockyardd on a temporary root and socket and stops
    it (SIGTERM to its own PID) on exit; `d.sock`, `d.host`, `d.pid`."""

    def __init__(self, start_timeout: float = 30):
        self.start_timeout = start_timeout
        self.dir = Path(tempfile.mkdtemp(prefix="dybench-"))
        self.sock = str(self.dir / "d.sock")
        self.host = f"unix://{self.sock}"
        self.proc: subprocess.Popen | None = None
        self.started_in = 0.0

    @property
    def pid(self) -> int:
        return self.proc.pid

    def __enter__(self) -> "Daemon":
        cmd = [str(DOCKYARDD), "--data-root", str(self.dir / "root"),
               "--exec-root", str(self.dir / "exec"), "-H", self.host,
               "-p", str(self.dir / "dockyardd.pid"), *NETWORK_FLAGS]
        log = open(self.dir / "dockyardd.log", "wb")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = t0 + self.start_timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockyardd exited: {(self.dir / 'dockyardd.log').read_text()}")
            try:
                if call(self.sock, "GET", "/_ping")[0] == 200:
                    self.started_in = time.perf_counter() - t0
                    return self
            except OSError:
                pass
            time.sleep(0.02)
        self.__exit__(None, None, None)
        raise RuntimeError("dockyardd did not answer /_ping in time")

    def __exit__(self, *exc):
        stop_process(self.proc, 20)
        remove_network_setup()
        unmount_under(self.dir)  # images need no mounts, but a container may have left one
        shutil.rmtree(self.dir, ignore_errors=True)


# --- Timing ------------------------------------------------------------------------

def timed(fn, n: int, setup=None) -> list[float]:
    """Run fn() n times (setup() before each, untimed); the durations in seconds."""
    out = []
    for _ in range(n):
        if setup:
            setup()
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def p95(samples: list[float]) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, max(0, round(0.95 * len(s)) - 1))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


# --- Processes and memory ----------------------------------------------------------

def peer_pid(sock: str) -> int:
    """The PID of the process serving a UNIX socket (SO_PEERCRED)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(sock)
        creds = s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[0]


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


# --- Test data ---------------------------------------------------------------------

def tiny_rootfs(n: int) -> bytes:
    """A one-file tarball whose content depends on n, so every import is a new image."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = f"bench image {n}\n".encode()
        info = tarfile.TarInfo(f"bench-{n}.txt")
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    print(f"\n{title}")
    for r in [header, ["-" * w for w in widths]] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())


def measure_each(subjects: list, measure) -> dict:
    """{subject.name: measure(subject)}, every subject cleaned up (its
    `cleanup()`) whatever happens."""
    results = {}
    try:
        for s in subjects:
            results[s.name] = measure(s)
    finally:
        for s in subjects:
            s.cleanup()
    return results


def write_samples(results, kind: str = "") -> None:
    """The raw samples as JSON, when BENCH_JSON names a file: that file for
    bench_api, `<stem>-<kind><suffix>` beside it for the others."""
    if not os.environ.get("BENCH_JSON"):
        return
    from pathlib import Path

    p = Path(os.environ["BENCH_JSON"])
    if kind:
        p = p.with_name(f"{p.stem}-{kind}{p.suffix}")
    p.write_text(json.dumps(results, indent=1))
