"""Build benchmarks: the classic builder (`DOCKER_BUILDKIT=0 docker build`).

1. A 10-step Dockerfile (ENV, WORKDIR, COPY, three RUNs, LABEL, EXPOSE, CMD
   on busybox:local; RUNs with `--network none`):
   - cold: every step run (`--no-cache`), median of N;
   - cached: nothing changed, every step found in the cache;
   - changed: one copied source file changed, so its COPY and the steps
     after it run again and those before come from the cache.
2. Context upload: 200 MiB of incompressible files under big/ and a few
   small sources, with a .dockerignore that excludes big/ (the CLI leaves it
   out: the figure is what is left, the walk and the cache lookups), and
   the same context with no .dockerignore, where all 200 MiB go to the
   daemon (unpacked to disk as they arrive: the daemon's peak RSS is shown
   to stay flat).

Times are wall clock around the docker CLI, which every daemon is driven by,
so both pay the same client costs. Runs against a throwaway dockyardd, and
against a real dockerd too when DOCKER_REF_HOST=unix:///path.sock. Every
image built here (and busybox:local, if it had to be loaded into dockerd) and
the temporary directories are removed at the end, Ctrl-C included. Nothing
is pulled and RUN steps have no network.

    .venv/bin/python bench/bench_build.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_containers import (BUSYBOX_ID, Failed, Target, ensure_image,  # noqa: E402
                              kill_leftovers, record, safe_rss)
from common import (Daemon, call, median, ms, peer_pid, print_table, ref_socket,  # noqa: E402
                    write_samples)

TAG = f"dybench-build-{os.getpid()}"
BIG_MIB = 200
MIB = 1024 * 1024

DOCKERFILE = """FROM busybox:local
ENV APP=/app MODE=bench
WORKDIR /app
COPY src/ ./src/
RUN cat src/*.txt > all.txt && wc -c all.txt
RUN mkdir -p /data && cp all.txt /data/copy.txt
LABEL org.example.bench=build
RUN ls -l /data > /data/listing.txt
EXPOSE 8080
CMD ["cat", "/app/all.txt"]
"""


def make_context(root: Path, big: bool) -> None:
    (root / "src").mkdir(parents=True)
    (root / "Dockerfile").write_text(DOCKERFILE)
    for n in range(20):
        (root / "src" / f"{n:02}.txt").write_text(f"source {n}\n" * 50)
    if big:
        (root / "big").mkdir()
        for n in range(BIG_MIB):
            (root / "big" / f"{n:03}.bin").write_bytes(os.urandom(MIB))


class Builds:
    """The images one daemon's figures make; `cleanup()` removes them."""

    def __init__(self, t: Target):
        self.t = t
        self.before = {i["Id"] for i in t.api("GET", "/images/json?all=1")}

    def build(self, context: Path, *flags: str) -> float:
        t0 = time.perf_counter()
        self.t.cli("build", "--network", "none", "-q", "-t", TAG, *flags, str(context),
                   timeout=600)
        return time.perf_counter() - t0

    def cleanup(self) -> None:
        try:
            images = self.t.api("GET", "/images/json?all=1")
        except (Failed, OSError) as e:
            print(f"  ! listing images on {self.t.name}: {e}", flush=True)
            return
        new = [i for i in images if i["Id"] not in self.before]
        while new:  # children first; a tagged leaf takes its untagged parents along
            parents = {i["ParentId"] for i in new}
            leaves = [i for i in new if i["Id"] not in parents]
            for i in leaves:
                try:
                    self.t.api("DELETE", f"/images/{i['Id']}?force=1", ok=(200, 404))
                except (Failed, OSError) as e:
                    print(f"  ! removing {i['Id'][:19]} on {self.t.name}: {e}", flush=True)
            new = [i for i in new if i not in leaves]


def fig_steps(t: Target, b: Builds, ctx: Path, runs: int, r: dict) -> None:
    b.build(ctx)  # warm: the base image's layers, the daemon's code paths
    r["cold"] = [b.build(ctx, "--no-cache") for _ in range(runs)]
    b.build(ctx)
    r["cached"] = [b.build(ctx) for _ in range(runs)]
    changed = []
    for n in range(runs):
        (ctx / "src" / "05.txt").write_text(f"changed {n} {time.time()}\n")
        changed.append(b.build(ctx))
    r["changed"] = changed
    print(f"  10 steps: cold {ms(median(r['cold']))} ms, cached {ms(median(r['cached']))} ms, "
          f"changed {ms(median(r['changed']))} ms", flush=True)


def fig_context(t: Target, b: Builds, ctx: Path, runs: int, r: dict) -> None:
    (ctx / ".dockerignore").write_text("big/\n")
    b.build(ctx)
    r["ignored"] = [b.build(ctx) for _ in range(runs)]
    (ctx / ".dockerignore").unlink()
    peak = [safe_rss(t.pid)]
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.05):
            peak.append(safe_rss(t.pid))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        r["full"] = [b.build(ctx) for _ in range(runs)]
    finally:
        done.set()
        watcher.join()
    r["rss_before"], r["rss_peak"] = peak[0], max(peak)
    print(f"  context: {BIG_MIB} MiB ignored {ms(median(r['ignored']))} ms, sent "
          f"{ms(median(r['full']))} ms, daemon RSS {peak[0]:.0f} -> {max(peak):.0f} MiB",
          flush=True)


def measure(t: Target, runs: int, small: Path, big: Path) -> dict:
    print(f"{t.name}: pid {t.pid}, socket {t.sock}", flush=True)
    r: dict = {}
    loaded = ensure_image(t)
    b = Builds(t)
    try:
        record(r, "steps", lambda: fig_steps(t, b, small, runs, r))
        record(r, "context", lambda: fig_context(t, b, big, max(1, runs // 2), r))
    finally:
        b.cleanup()
        if loaded and t.name != "dockyard":
            call(t.sock, "DELETE", f"/images/{BUSYBOX_ID}?force=1")
    return r


def table(results: dict) -> None:
    names = list(results)

    def cell(name: str, key: str) -> str:
        v = results[name].get(key)
        return ms(median(v)) if isinstance(v, list) and v else "-"

    rows = [[label, *[cell(n, key) for n in names]] for label, key in (
        ("10 steps, cold (ms)", "cold"), ("10 steps, cached (ms)", "cached"),
        ("10 steps, one source changed (ms)", "changed"),
        (f"{BIG_MIB} MiB context, .dockerignore'd (ms)", "ignored"),
        (f"{BIG_MIB} MiB context, sent (ms)", "full"))]
    rows.append(["daemon RSS while receiving it (MiB)", *[
        f"{results[n].get('rss_before', 0):.0f} -> {results[n].get('rss_peak', 0):.0f}"
        for n in names]])
    print_table("Builds (median)", ["figure", *names], rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    if not shutil.which("docker"):
        print("bench_build: the docker CLI is not on PATH; nothing measured")
        return 0
    os.environ["DOCKER_BUILDKIT"] = "0"
    work = Path(tempfile.mkdtemp(prefix="dybench-build-"))
    results: dict = {}
    interrupted = False
    try:
        small, big = work / "small", work / "big"
        make_context(small, big=False)
        make_context(big, big=True)
        with Daemon() as d:
            t = Target("dockyard", d.sock, d.pid)
            try:
                results["dockyard"] = measure(t, args.runs, small, big)
            finally:
                kill_leftovers(d)
        ref = ref_socket()
        if ref:
            results["dockerd"] = measure(Target("dockerd", ref, peer_pid(ref)), args.runs,
                                         small, big)
        else:
            print("dockerd: not available (set DOCKER_REF_HOST=unix:///path/docker.sock)")
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: images removed, temporary daemon stopped", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if results:
        table(results)
    write_samples(results, "build")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
