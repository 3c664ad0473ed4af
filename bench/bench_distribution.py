"""Pull and push through the daemon: dockyardd against dockerd, both talking
to Debian's docker-registry on loopback.

A 200 MiB image of 10 layers (incompressible, uncompressed tar layers, an
OCI layout made here) is put in the registry with skopeo; then, with the
docker CLI against each daemon:

1. `docker pull` of it (downloaded, verified, unpacked), the image removed
   between runs: MiB/s;
2. `docker push` of it under a new name each run (so nothing is mounted or
   skipped; both daemons gzip uncompressed layers as they send them): MiB/s.

Runs against a throwaway dockyardd, and against a real dockerd too when
DOCKER_REF_HOST=unix:///path.sock. The registry, its storage and every image
pulled or tagged here are removed at the end, Ctrl-C included.

    .venv/bin/python bench/bench_distribution.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_containers import Failed, Target, kill_leftovers  # noqa: E402
from bench_registry import LAYER_MIB, LAYERS, Registry, distribution, make_layout  # noqa: E402
from common import Daemon, median, peer_pid, print_table, ref_socket, write_samples  # noqa: E402

REPO = "bench/dist"


def measure(t: Target, reg: Registry, size: int, runs: int) -> dict:
    print(f"{t.name}: pid {t.pid}, socket {t.sock}", flush=True)
    image = f"{reg.addr}/{REPO}:1"
    mib = size / (1 << 20)
    r: dict = {"pull_mibs": [], "push_mibs": []}
    pushed: list[str] = []
    try:
        for _ in range(runs):
            t0 = time.perf_counter()
            t.cli("pull", "-q", image, timeout=600)
            r["pull_mibs"].append(mib / (time.perf_counter() - t0))
            t.cli("rmi", image, timeout=120)
        t.cli("pull", "-q", image, timeout=600)
        for n in range(runs):
            target = f"{reg.addr}/{REPO}-{t.name}-{os.getpid()}-{n}:1"
            t.cli("tag", image, target)
            pushed.append(target)
            t0 = time.perf_counter()
            t.cli("push", "-q", target, timeout=600)
            r["push_mibs"].append(mib / (time.perf_counter() - t0))
    except Failed as e:
        r["error"] = str(e)
        print(f"  ! {e}", flush=True)
    finally:
        for name in [image, *pushed]:
            try:
                t.cli("rmi", name, timeout=120)
            except Failed:
                pass
    if r["pull_mibs"] and r["push_mibs"]:
        print(f"  pull {median(r['pull_mibs']):.0f} MiB/s, push {median(r['push_mibs']):.0f} "
              "MiB/s", flush=True)
    return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    for tool in ("docker", "skopeo", "docker-registry"):
        if not shutil.which(tool):
            print(f"bench_distribution: {tool} is not on PATH; nothing measured")
            return 0
    work = Path(tempfile.mkdtemp(prefix="dybench-dist-"))
    results: dict = {}
    interrupted = False
    reg = None
    try:
        layout = work / "layout"
        size = make_layout(layout)
        reg = Registry("docker-registry", distribution, work)
        subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                        "--preserve-digests", f"oci:{layout}:1",
                        f"docker://{reg.addr}/{REPO}:1"], check=True, timeout=600)
        with Daemon() as d:
            try:
                results["dockyard"] = measure(Target("dockyard", d.sock, d.pid), reg, size,
                                              args.runs)
            finally:
                kill_leftovers(d)
        ref = ref_socket()
        if ref:
            results["dockerd"] = measure(Target("dockerd", ref, peer_pid(ref)), reg, size,
                                         args.runs)
        else:
            print("dockerd: not available (set DOCKER_REF_HOST=unix:///path/docker.sock)")
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: registry stopped, images removed", flush=True)
    finally:
        if reg is not None:
            reg.stop()
        shutil.rmtree(work, ignore_errors=True)
    if results:
        names = list(results)
        rows = [[f"pull {LAYERS}x{LAYER_MIB} MiB (MiB/s)",
                 *[f"{median(results[n]['pull_mibs'] or [0]):.0f}" for n in names]],
                [f"push {LAYERS}x{LAYER_MIB} MiB (MiB/s)",
                 *[f"{median(results[n]['push_mibs'] or [0]):.0f}" for n in names]]]
        print_table("Through the daemon, docker-registry on loopback (median)",
                    ["figure", *names], rows)
    write_samples(results, "distribution")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
