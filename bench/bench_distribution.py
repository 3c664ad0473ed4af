"""Pull and push through the daemon: dockyardd against dockerd, both talking
to Debian's docker-registry on loopback.

A 200 MiB image of 10 layers (incompressible, uncompressed tar layers, an
OCI layout made here) is put in the registry with skopeo; then, with the
docker CLI against each daemon:

1. `docker pull` of it (downloaded, verified, unpacked), the image removed
   between runs: MiB/s;
2. `docker push` of it under a new name each run (its layers came from this
   registry, so both daemons mount them: the cost of a push that sends
   little): MiB/s;
3. `docker push` of new layers: each run `docker load`s (untimed) a fresh
   200 MiB, 10-layer docker-save archive whose layers no registry has seen:
   uncompressed locally, so both daemons gzip them as they send them. Their
   bytes are files of this host (/usr), as compressible as a real image's,
   plus a random nonce so that each run, and each daemon, has layers of its
   own: MiB/s of uncompressed layer.

Runs against a throwaway dockyardd, and against a dockerd: the one at
DOCKER_REF_HOST=unix:///path.sock, else, when /usr/sbin/dockerd is
installed, one started here on temporary roots (no bridge, no iptables, its
own containerd namespace) and stopped by its PID at the end. The registry,
its storage and every image pulled, loaded or tagged here are removed at the
end, Ctrl-C included. The load average is printed with the figures: the
machine's other work moves them.

    .venv/bin/python bench/bench_distribution.py [--runs N]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_containers import Failed, Target, kill_leftovers  # noqa: E402
from bench_registry import LAYER_MIB, LAYERS, Registry, distribution, make_layout  # noqa: E402
from common import (DOCKERD, Daemon, median, peer_pid, print_table, reference_dockerd,  # noqa: E402
                    write_samples)

REPO = "bench/dist"
NEW_REPO = "bench/new"
# Where the new layers' bytes come from: binaries, libraries and Python
# sources compress about as a real image's files do (to ~35% with gzip -6).
CORPUS_DIRS = ("/usr/bin", "/usr/lib/python3", "/usr/lib/x86_64-linux-gnu", "/usr/share")


def host_corpus(size: int) -> bytes:
    """`size` bytes of this host's files, in a fixed order (the same for
    both daemons)."""
    out = bytearray()
    for top in CORPUS_DIRS:
        for root, dirs, files in os.walk(top):
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(root, name)
                if not os.path.isfile(path) or os.path.islink(path):
                    continue
                with contextlib.suppress(OSError), open(path, "rb") as f:
                    out += f.read(size - len(out))
                if len(out) >= size:
                    return bytes(out)
    while len(out) < size:  # a small host: repeat what there is
        out += out[:size - len(out)]
    return bytes(out)


def new_layers_archive(path: Path, tag: str, corpus: bytes) -> None:
    """A docker-save archive of LAYERS uncompressed layers of LAYER_MIB from
    `corpus`, each with a nonce of its own: layers nobody has seen."""
    layer_size = LAYER_MIB << 20
    diff_ids, names = [], []
    with tarfile.open(path, "w") as archive:
        for n in range(LAYERS):
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as layer:
                add_file(layer, "nonce", os.urandom(32).hex().encode())
                add_file(layer, f"data/{n:02}.bin",
                         corpus[n * layer_size:(n + 1) * layer_size])
            data = buf.getvalue()
            diff_ids.append("sha256:" + hashlib.sha256(data).hexdigest())
            names.append(f"{n:02}/layer.tar")
            add_file(archive, names[-1], data)
        config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                             "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
        add_file(archive, "config.json", config)
        add_file(archive, "manifest.json", json.dumps(
            [{"Config": "config.json", "RepoTags": [tag], "Layers": names}]).encode())


def add_file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))


def measure_new_layers(t: Target, reg: Registry, corpus: bytes, work: Path, runs: int,
                       r: dict) -> None:
    """Push of layers never seen: load a fresh archive (untimed), push it (timed)."""
    mib = len(corpus) / (1 << 20)
    r["push_new_mibs"] = []
    for n in range(runs):
        tag = f"{reg.addr}/{NEW_REPO}-{t.name}-{os.getpid()}-{n}:1"
        archive = work / f"new-{t.name}-{n}.tar"
        new_layers_archive(archive, tag, corpus)
        try:
            t.cli("load", "-q", "-i", str(archive), timeout=600)
        finally:
            archive.unlink()
        try:
            t0 = time.perf_counter()
            t.cli("push", "-q", tag, timeout=600)
            r["push_new_mibs"].append(mib / (time.perf_counter() - t0))
        finally:
            t.cli("rmi", tag, timeout=120)
    print(f"  push of new layers {median(r['push_new_mibs']):.0f} MiB/s "
          f"(load average {load_average()})", flush=True)


def load_average() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def measure(t: Target, reg: Registry, size: int, runs: int, corpus: bytes,
            work: Path) -> dict:
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
        measure_new_layers(t, reg, corpus, work, runs, r)
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
    r["load_average"] = load_average()
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
        corpus = host_corpus(size)
        with Daemon() as d:
            try:
                results["dockyard"] = measure(Target("dockyard", d.sock, d.pid), reg, size,
                                              args.runs, corpus, work)
            finally:
                kill_leftovers(d)
        with reference_dockerd() as ref:
            if ref:
                results["dockerd"] = measure(Target("dockerd", ref, peer_pid(ref)), reg, size,
                                             args.runs, corpus, work)
            else:
                print("dockerd: not available (set DOCKER_REF_HOST=unix:///path/docker.sock, "
                      f"or install {DOCKERD})")
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
                [f"push {LAYERS}x{LAYER_MIB} MiB, mounted (MiB/s)",
                 *[f"{median(results[n]['push_mibs'] or [0]):.0f}" for n in names]],
                [f"push of new layers {LAYERS}x{LAYER_MIB} MiB (MiB/s)",
                 *[f"{median(results[n].get('push_new_mibs') or [0]):.0f}" for n in names]],
                ["load average after", *[results[n].get("load_average", "") for n in names]]]
        print_table("Through the daemon, docker-registry on loopback (median)",
                    ["figure", *names], rows)
    write_samples(results, "distribution")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
