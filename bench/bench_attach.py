"""Attach stream throughput: 100 MiB through a container's stdin and back out of
its stdout (`docker run -i busybox cat` fed from a pipe), timed from the start of
the container to the end of its output. Against a throwaway dockyardd, and a real
dockerd too when DOCKER_REF_HOST=unix:///path.sock.

The data is text, 1 KiB lines (as bench_containers' log figure): every line
also goes to the container's json-file log, as it does under dockerd.

The ways in, to tell the daemon's share from the clients' and the log's:

- `api`: our own hijacked connection over the Engine API (create, attach,
  start), a thread sending stdin and half-closing it, the main thread counting the
  multiplexed frames' payloads: the daemon's and shim's path alone;
- `api, log none`: the same with `--log-driver none`: the stream without the log;
- `docker CLI`: `docker run -i --rm busybox:local cat` with stdin from a file and
  stdout into a pipe we count;
- `dockyard CLI`: the same with our CLI.

Every container carries `--network none --label dybench=1` and is removed (--rm, or
by the script). busybox:local is loaded from the fixture on dockerd if missing and
removed again at the end. Figures are MiB/s (median of RUNS); the target is
100 MiB/s."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (DOCKYARD, FIXTURES, Daemon, call, median, print_table,  # noqa: E402
                    ref_socket, write_samples)

SIZE = 100 * 1024 * 1024
RUNS = 3
CHUNK = 1 << 16
IMAGE = "busybox:local"
LABEL = "dybench"
MIB = 1024 * 1024
TARGET = 100.0


class Failed(Exception):
    """A step the daemon refused: shown as `error: ...` in the table."""


def api(sock: str, method: str, url: str, body=None, ok=(200, 201, 204)):
    data = json.dumps(body).encode() if body is not None else None
    status, out = call(sock, method, url, data,
                       {"Content-Type": "application/json"} if data is not None else None)
    if status not in ok:
        raise Failed(f"{method} {url}: {status} {out[:200].decode(errors='replace').strip()}")
    return json.loads(out) if out.strip() else None


def hijack(sock: str, url: str) -> tuple[socket.socket, bytes]:
    """POST url upgraded; the socket and the bytes read past the 101's headers."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock)
    s.sendall(f"POST {url} HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\n"
              "Upgrade: tcp\r\nContent-Length: 0\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            raise Failed(f"attach: connection closed: {head[:200]!r}")
        head += chunk
    head, _, rest = head.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise Failed(f"attach: {head.splitlines()[0].decode(errors='replace')}")
    return s, rest


def send_stdin(s: socket.socket, path: Path) -> None:
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(CHUNK * 4):
            s.sendall(chunk)
    s.shutdown(socket.SHUT_WR)


def count_frames(s: socket.socket, buffered: bytes) -> int:
    """The payload bytes of the multiplexed frames until the stream ends."""
    total, buf = 0, bytearray(buffered)
    while True:
        while len(buf) >= 8:
            size = int.from_bytes(buf[4:8], "big")
            if len(buf) < 8 + size:
                break
            total += size
            del buf[:8 + size]
        chunk = s.recv(1 << 18)
        if not chunk:
            return total
        buf += chunk


def through_api(sock: str, data: Path, log: str = "json-file") -> float:
    body = {"Image": IMAGE, "Cmd": ["cat"], "OpenStdin": True, "StdinOnce": True,
            "AttachStdin": True, "AttachStdout": True, "AttachStderr": True,
            "Labels": {LABEL: "1"},
            "HostConfig": {"NetworkMode": "none", "LogConfig": {"Type": log, "Config": {}}}}
    cid = api(sock, "POST", "/containers/create", body)["Id"]
    try:
        s, rest = hijack(sock, f"/containers/{cid}/attach?stream=1&stdin=1&stdout=1&stderr=1")
        with s:
            t0 = time.perf_counter()
            api(sock, "POST", f"/containers/{cid}/start")
            sender = threading.Thread(target=send_stdin, args=(s, data), daemon=True)
            sender.start()
            got = count_frames(s, rest)
            elapsed = time.perf_counter() - t0
            sender.join(10)
        if got != SIZE:
            raise Failed(f"{got} bytes came back of {SIZE}")
        return SIZE / MIB / elapsed
    finally:
        api(sock, "DELETE", f"/containers/{cid}?force=1", ok=(204, 404))


def through_cli(argv0: str, sock: str, data: Path) -> float:
    cmd = [argv0, "-H", f"unix://{sock}", "run", "-i", "--rm", "--network", "none",
           "--label", f"{LABEL}=1", IMAGE, "cat"]
    with open(data, "rb") as stdin:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        got = 0
        while chunk := proc.stdout.read1(1 << 18):
            got += len(chunk)
        err = proc.stderr.read()
        proc.wait()
        elapsed = time.perf_counter() - t0
    if proc.returncode != 0 or got != SIZE:
        raise Failed(f"{Path(argv0).name} exited {proc.returncode} after {got} bytes: "
                     f"{err.decode(errors='replace').strip()[:200]}")
    return SIZE / MIB / elapsed


def measure(sock: str, data: Path) -> dict[str, str]:
    ways = {"api": lambda: through_api(sock, data),
            "api, log none": lambda: through_api(sock, data, "none")}
    docker = shutil.which("docker")
    if docker:
        ways["docker CLI"] = lambda: through_cli(docker, sock, data)
    ways["dockyard CLI"] = lambda: through_cli(str(DOCKYARD), sock, data)
    out = {}
    for name, fn in ways.items():
        try:
            rates = [fn() for _ in range(RUNS)]
            out[name] = f"{median(rates):.0f} (min {min(rates):.0f}, max {max(rates):.0f})"
        except (Failed, OSError) as e:
            out[name] = f"error: {e}"
        print(f"  {name}: {out[name]}", flush=True)
    return out


def ensure_busybox(sock: str) -> bool:
    """Load busybox:local if it is missing; True if it was loaded (to remove later)."""
    status, _ = call(sock, "GET", f"/images/{IMAGE}/json")
    if status == 200:
        return False
    with open(FIXTURES / "busybox.docker-save.tar", "rb") as f:
        status, out = call(sock, "POST", "/images/load?quiet=1", f.read(),
                           {"Content-Type": "application/x-tar"})
    if status != 200:
        raise Failed(f"load: {status} {out[:200]!r}")
    return True


def remove_labelled(sock: str) -> None:
    from urllib.parse import quote
    filters = quote(json.dumps({"label": [LABEL]}))
    for c in api(sock, "GET", f"/containers/json?all=1&filters={filters}") or []:
        api(sock, "DELETE", f"/containers/{c['Id']}?force=1", ok=(204, 404))


def run_against(name: str, sock: str, data: Path) -> dict[str, str]:
    print(f"{name}:", flush=True)
    loaded = ensure_busybox(sock)
    try:
        return measure(sock, data)
    finally:
        remove_labelled(sock)
        if loaded and name != "dockyard":
            call(sock, "DELETE", f"/images/{IMAGE}")


def main() -> int:
    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    results: dict[str, dict[str, str]] = {}
    with Daemon() as d:
        data = d.dir / "stdin.bin"
        line = (b"0123456789abcdef" * 64)[:1023] + b"\n"
        with open(data, "wb") as f:
            f.write(line * (SIZE // len(line)))
        try:
            results["dockyard"] = run_against("dockyard", d.sock, data)
            ref = ref_socket()
            if ref:
                results["dockerd"] = run_against("dockerd", ref, data)
        except KeyboardInterrupt:
            print("interrupted")
            return 130
    ways = list(results["dockyard"])
    rows = [[w, results["dockyard"][w], results.get("dockerd", {}).get(w, "not available"),
             f"> {TARGET:.0f}"] for w in ways]
    print_table(f"Attach throughput, cat of {SIZE // MIB} MiB through stdin and stdout (MiB/s)",
                ["way", "dockyard", "dockerd", "target"], rows)
    write_samples(results, "attach")
    return 0


if __name__ == "__main__":
    sys.exit(main())
