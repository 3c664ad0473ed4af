"""Registry server benchmarks: dockyard's registry against Debian's docker-registry.

1. Push and pull of a 200 MiB image of 10 layers (incompressible data, one
   20 MiB file per layer, an OCI layout made here, a new one per run) with
   skopeo over loopback, layers sent as they are (`--preserve-digests`, no
   recompression): MiB/s each way (median of N). skopeo itself is much of
   the cost, the same for both registries.
2. Manifest HEADs by tag from 50 concurrent clients, each on a kept-alive
   connection: requests per second, and the 95th percentile latency.

Both registries run here on 127.0.0.1, on free ports and temporary roots,
and are stopped (by PID) and removed at the end, Ctrl-C included. The
docker-registry figures appear when /usr/bin/docker-registry is installed.

    .venv/bin/python bench/bench_registry.py [--runs N] [--heads N]
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (DOCKYARD, median, ms, p95, print_table, stop_process,  # noqa: E402
                    write_samples)

LAYERS = 10
LAYER_MIB = 20
CLIENTS = 50
REPO = "bench/big"
MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json, "
                  "application/vnd.docker.distribution.manifest.v2+json")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    """One registry process on 127.0.0.1; `stop()` by its PID."""

    def __init__(self, name: str, argv_for, work: Path):
        self.name = name
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.root = work / f"{name}-root"
        self.root.mkdir()
        self.log = open(work / f"{name}.log", "wb")
        self.proc = subprocess.Popen(argv_for(self, work), stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{name} did not start: {(work / f'{name}.log').read_text()}")
            time.sleep(0.05)

    def _answers(self) -> bool:
        try:
            conn = http.client.HTTPConnection(self.addr, timeout=2)
            conn.request("GET", "/v2/")
            return conn.getresponse().status in (200, 401)
        except OSError:
            return False

    def stop(self) -> None:
        stop_process(self.proc, 20)
        self.log.close()


def ours(reg: Registry, work: Path) -> list[str]:
    return [str(DOCKYARD), "registry", "serve", "--addr", reg.addr, "--root", str(reg.root),
            "--log-level", "warning"]


def distribution(reg: Registry, work: Path) -> list[str]:
    config = work / f"{reg.name}.yml"
    config.write_text(f"""version: 0.1
log: {{level: error}}
storage:
  filesystem: {{rootdirectory: {reg.root}}}
  delete: {{enabled: true}}
http: {{addr: "{reg.addr}"}}
""")
    return ["docker-registry", "serve", str(config)]


def make_layout(path: Path) -> int:
    """An OCI layout of LAYERS uncompressed layers; its total size."""
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    layers, diff_ids, total = [], [], 0
    for n in range(LAYERS):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(f"data/{n:02}.bin")
            info.size = LAYER_MIB << 20
            tar.addfile(info, io.BytesIO(os.urandom(info.size)))
        data = buf.getvalue()
        total += len(data)
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", **put(data)})
        diff_ids.append(layers[-1]["digest"])
    config = put(json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                             "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode())
    manifest = put(json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
        "layers": layers}).encode())
    (path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest,
        "annotations": {"org.opencontainers.image.ref.name": "1"}}]}))
    return total


def skopeo(*args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(["skopeo", "copy", "--quiet", *args], check=True, capture_output=True,
                   timeout=600)
    return time.perf_counter() - t0


def fig_push_pull(reg: Registry, work: Path, runs: int, r: dict):
    """Each run pushes an image of its own (new random layers): skopeo
    remembers where it pushed a blob and would mount it instead."""
    push, pull = [], []
    for n in range(runs):
        tag = f"{REPO}{n}:1"
        layout = work / f"layout-{reg.name}-{n}"
        size = make_layout(layout)
        push.append(skopeo("--dest-tls-verify=false", "--preserve-digests", f"oci:{layout}:1",
                           f"docker://{reg.addr}/{tag}"))
        shutil.rmtree(layout)
        out = work / f"pulled-{reg.name}-{n}"
        pull.append(skopeo("--src-tls-verify=false", "--dest-oci-accept-uncompressed-layers",
                           f"docker://{reg.addr}/{tag}", f"oci:{out}:1"))
        shutil.rmtree(out)
    mib = size / (1 << 20)
    r["push_mibs"] = [mib / t for t in push]
    r["pull_mibs"] = [mib / t for t in pull]
    print(f"  {reg.name}: push {median(r['push_mibs']):.0f} MiB/s, "
          f"pull {median(r['pull_mibs']):.0f} MiB/s", flush=True)


def fig_heads(reg: Registry, total: int, r: dict) -> None:
    per_client = max(1, total // CLIENTS)
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS + 1)

    def client() -> None:
        conn = http.client.HTTPConnection(reg.addr, timeout=30)
        mine = []
        start.wait()
        for _ in range(per_client):
            t0 = time.perf_counter()
            conn.request("HEAD", f"/v2/{REPO}0/manifests/1", headers={"Accept": MANIFEST_TYPES})
            resp = conn.getresponse()
            resp.read()
            mine.append(time.perf_counter() - t0)
            if resp.status != 200:
                with lock:
                    failures.append(str(resp.status))
                break
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if failures:
        raise RuntimeError(f"HEAD answered {failures[0]}")
    r["head_rps"] = len(latencies) / elapsed
    r["head_p95"] = p95(latencies)
    print(f"  {reg.name}: {r['head_rps']:.0f} HEAD/s, p95 {ms(r['head_p95'])} ms", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--heads", type=int, default=10000)
    args = ap.parse_args()

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    if not shutil.which("skopeo"):
        print("bench_registry: skopeo is not on PATH; nothing measured")
        return 0
    work = Path(tempfile.mkdtemp(prefix="dybench-registry-"))
    results: dict = {}
    interrupted = False
    try:
        subjects = [("dockyard", ours)]
        if shutil.which("docker-registry"):
            subjects.append(("docker-registry", distribution))
        else:
            print("docker-registry: not installed (apt-get install docker-registry)")
        for name, argv_for in subjects:
            reg = Registry(name, argv_for, work)
            try:
                r = results[name] = {}
                fig_push_pull(reg, work, args.runs, r)
                fig_heads(reg, args.heads, r)
            finally:
                reg.stop()
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: registries stopped", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if results:
        names = list(results)
        rows = [
            [f"push {LAYERS}x{LAYER_MIB} MiB (MiB/s)",
             *[f"{median(results[n].get('push_mibs') or [0]):.0f}" for n in names]],
            [f"pull {LAYERS}x{LAYER_MIB} MiB (MiB/s)",
             *[f"{median(results[n].get('pull_mibs') or [0]):.0f}" for n in names]],
            [f"manifest HEAD, {CLIENTS} clients (req/s)",
             *[f"{results[n].get('head_rps', 0):.0f}" for n in names]],
            ["manifest HEAD p95 (ms)", *[ms(results[n].get("head_p95", 0)) for n in names]],
        ]
        print_table("Registry (skopeo over loopback; median)", ["figure", *names], rows)
    write_samples(results, "registry")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
