"""Exec benchmarks: the round trip of `docker exec c true` through the docker CLI
(and `dockyard exec`), the same three requests over the API without a CLI
(create, hijacked start until the stream ends, inspect for the exit code), and
the CLI's own floor (`docker version`) to tell the CLI's share from the
daemon's. Runs against a throwaway dockyardd, and against a real dockerd too
when DOCKER_REF_HOST=unix:///path.sock.

One `sleep` container per daemon, labelled `dybench=1` with `--network none`,
removed at the end (Ctrl-C and failures included). Nothing is pulled.

    .venv/bin/python bench/bench_exec.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_containers import (COMMON_ARGS, IMAGE, JSON_HDR, Failed, Target,  # noqa: E402
                              ensure_image)
from common import (DOCKYARD, Daemon, UnixConnection, median, ms, p95, peer_pid,  # noqa: E402
                    print_table, ref_socket, request)

WARMUP = 3


def api_exec(t: Target, container: str) -> float:
    """create, start (hijacked, read to the end), inspect: one exec over the API."""
    t0 = time.perf_counter()
    conn = UnixConnection(t.sock)
    try:
        status, data = request(conn, "POST", f"/containers/{container}/exec",
                               json.dumps({"Cmd": ["true"], "AttachStdout": True,
                                           "AttachStderr": True}).encode(), JSON_HDR)
        if status != 201:
            raise Failed(f"exec create: {status} {data[:200]!r}")
        exec_id = json.loads(data)["Id"]
    finally:
        conn.close()
    body = json.dumps({"Detach": False, "Tty": False}).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(t.sock)
        s.sendall(f"POST /exec/{exec_id}/start HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\n"
                  f"Upgrade: tcp\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        while s.recv(65536):
            pass
    conn = UnixConnection(t.sock)
    try:
        status, data = request(conn, "GET", f"/exec/{exec_id}/json")
    finally:
        conn.close()
    if status != 200 or json.loads(data)["ExitCode"] != 0:
        raise Failed(f"exec inspect: {status} {data[:200]!r}")
    return time.perf_counter() - t0


def figures(t: Target, runs: int) -> dict:
    r: dict = {}
    cid = t.cli("run", "-d", *COMMON_ARGS, IMAGE, "sleep", "600").strip()
    try:
        for _ in range(WARMUP):
            t.cli("exec", cid, "true")
            api_exec(t, cid)
        r["cli_floor"] = [t.timed_cli("version")[0] for _ in range(runs)]
        r["docker_exec"] = [t.timed_cli("exec", cid, "true")[0] for _ in range(runs)]
        r["api_exec"] = [api_exec(t, cid) for _ in range(runs)]
        if t.name == "dockyard":
            try:
                r["dockyard_exec"] = [t.timed_cli("exec", cid, "true", argv0=str(DOCKYARD))[0]
                                      for _ in range(runs)]
            except Failed as e:
                print(f"  ! dockyard exec: {e}", flush=True)
    finally:
        t.remove([cid])
    return r


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    results = {}
    with Daemon() as d:
        t = Target("dockyard", d.sock, d.pid)
        ensure_image(t)
        results["dockyard"] = figures(t, args.runs)
    ref = ref_socket()
    if ref:
        t = Target("dockerd", ref, peer_pid(ref))
        loaded = ensure_image(t)
        try:
            results["dockerd"] = figures(t, args.runs)
        finally:
            if loaded:
                t.cli("rmi", IMAGE)
    rows = []
    for name, label, target in (
            ("docker_exec", "docker exec c true (CLI round trip)", "< 25"),
            ("dockyard_exec", "dockyard exec c true", "-"),
            ("api_exec", "API: create + start (hijacked) + inspect", "-"),
            ("cli_floor", "docker version (the CLI's own floor)", "-")):
        row = [label]
        for daemon in ("dockyard", "dockerd"):
            samples = results.get(daemon, {}).get(name)
            row.append(f"{ms(median(samples))} / {ms(p95(samples))}" if samples else
                       "-" if daemon in results else "dockerd: not available")
        rows.append(row + [target])
    print_table(f"exec round trip, ms (median / p95 of {args.runs})",
                ["figure", "dockyard", "dockerd", "target"], rows)


if __name__ == "__main__":
    main()
