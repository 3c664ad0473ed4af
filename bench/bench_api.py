"""API and image benchmarks: /_ping round trips, `images` with 200 images, load of
the busybox fixture, daemon memory. Runs against a throwaway dockyardd, and against
a real dockerd too: DOCKER_REF_HOST=unix:///path/to/docker.sock's, else a scratch
one when dockerd is installed.

The dockerd run adds 200 images tagged dybench/img:N and removes them at the end;
the load runs remove busybox:local's image by ID (forced, so all its tags go) before
each load. Point DOCKER_REF_HOST at a scratch dockerd only."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (DOCKERD, DOCKYARD, FIXTURES, Daemon, UnixConnection, call,  # noqa: E402
                    children, median, ms, p95, peer_pid, print_table, reference_dockerd,
                    request, rss_mib, timed, tiny_rootfs, write_samples)

PINGS = 1000
IMAGES = 200
CLI_RUNS = 20
LOADS = 10
TAR = {"Content-Type": "application/x-tar"}
BUSYBOX_ID = "sha256:e9242c1a8a93414f2150bda5836e3b7856e4eeb92e041669d1389393a3a73f9f"


def ping_keepalive(sock: str) -> list[float]:
    conn = UnixConnection(sock)
    try:
        return timed(lambda: request(conn, "GET", "/_ping"), PINGS)
    finally:
        conn.close()


def ping_new_connection(sock: str) -> list[float]:
    return timed(lambda: call(sock, "GET", "/_ping"), PINGS)


def make_images(sock: str) -> float:
    """IMAGES tiny distinct images via POST /images/create?fromSrc=-; seconds taken."""
    conn = UnixConnection(sock)
    t0 = time.perf_counter()
    for n in range(IMAGES):
        status, body = request(conn, "POST", f"/images/create?fromSrc=-&repo=dybench/img&tag={n}",
                               tiny_rootfs(n), TAR)
        if status != 200 or b"error" in body:
            raise RuntimeError(f"import {n}: {status} {body[:200]!r}")
    conn.close()
    return time.perf_counter() - t0


def remove_images(sock: str) -> None:
    conn = UnixConnection(sock)
    for n in range(IMAGES):
        request(conn, "DELETE", f"/images/dybench/img:{n}")
    conn.close()


def cli_images(argv0: str, sock: str) -> list[float] | None:
    cmd = [argv0, "-H", f"unix://{sock}", "images"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0 or out.stdout.count("dybench/img") < IMAGES:
        print(f"  ! {' '.join(cmd)} failed: rc={out.returncode} {out.stderr.strip()[:200]}")
        return None
    return timed(lambda: subprocess.run(cmd, capture_output=True, check=True), CLI_RUNS)


def loads(sock: str) -> list[float]:
    data = (FIXTURES / "busybox.docker-save.tar").read_bytes()

    def rmi():
        call(sock, "DELETE", f"/images/{BUSYBOX_ID}?force=1")

    def load():
        status, body = call(sock, "POST", "/images/load?quiet=1", data, TAR)
        if status != 200 or b"Loaded image" not in body:
            raise RuntimeError(f"load: {status} {body[:200]!r}")
    return timed(load, LOADS, setup=rmi)


def measure(name: str, sock: str, pid: int) -> dict:
    print(f"{name}: pid {pid}, socket {sock}", flush=True)
    r = {"rss_start": rss_mib(pid),
         "rss_children": sum(rss_mib(c) for c in children(pid))}
    r["ping_keep"] = ping_keepalive(sock)
    r["ping_new"] = ping_new_connection(sock)
    had_busybox = call(sock, "GET", f"/images/{BUSYBOX_ID}/json")[0] == 200
    r["make_images"] = make_images(sock)
    try:
        r["rss_images"] = rss_mib(pid)
        r["api_images"] = timed(lambda: call(sock, "GET", "/images/json"), CLI_RUNS)
        r["cli_dockyard"] = cli_images(str(DOCKYARD), sock)
        docker = shutil.which("docker")
        r["cli_docker"] = cli_images(docker, sock) if docker else None
        r["loads"] = loads(sock)
        r["rss_end"] = rss_mib(pid)
    finally:
        remove_images(sock)
        if not had_busybox and name != "dockyard":
            call(sock, "DELETE", f"/images/{BUSYBOX_ID}?force=1")
    return r


def cell(samples) -> str:
    return "n/a" if samples is None else f"{ms(median(samples))} / {ms(p95(samples))}"


def main() -> int:
    results = {}
    with Daemon() as d:
        print(f"dockyardd started in {d.started_in * 1000:.0f} ms")
        results["dockyard"] = measure("dockyard", d.sock, d.pid)
    with reference_dockerd() as ref:
        if ref:
            results["dockerd"] = measure("dockerd", ref, peer_pid(ref))
        else:
            print("dockerd: not available (set DOCKER_REF_HOST=unix:///path/docker.sock, "
                  f"or install {DOCKERD})")

    names = list(results)
    rows = []

    def row(label, key, fmt, target=""):
        rows.append([label] + [fmt(results[n].get(key)) for n in names] + [target])

    row(f"/_ping keep-alive, ms median / p95 ({PINGS})", "ping_keep", cell, "< 2 ms")
    row(f"/_ping new connection, ms median / p95 ({PINGS})", "ping_new", cell, "< 2 ms")
    row(f"create {IMAGES} images (fromSrc=-), s total", "make_images", lambda v: f"{v:.2f}")
    row(f"GET /images/json ({IMAGES}+ images), ms median / p95 ({CLI_RUNS})", "api_images", cell)
    row(f"`dockyard images` ({IMAGES}+ images), ms median / p95 ({CLI_RUNS})",
        "cli_dockyard", cell, "< 100 ms")
    row(f"`docker images` ({IMAGES}+ images), ms median / p95 ({CLI_RUNS})", "cli_docker", cell)
    row(f"load busybox fixture (2 MB) after rmi, ms median / p95 ({LOADS})", "loads", cell)
    row("RSS at start, MiB", "rss_start", lambda v: f"{v:.1f}", "< 40 MiB")
    row(f"RSS after {IMAGES} images, MiB", "rss_images", lambda v: f"{v:.1f}", "< 40 MiB")
    row("RSS at end, MiB", "rss_end", lambda v: f"{v:.1f}")
    row("RSS of child processes, MiB", "rss_children", lambda v: f"{v:.1f}")
    print_table("bench_api", ["metric"] + names + ["target"], rows)
    write_samples(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
