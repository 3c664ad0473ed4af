"""What streaming stats costs the daemon: CPU time while 10 clients each stream
the stats of one of 10 running containers (`GET /containers/{id}/stats`, one
frame a second each), over a WINDOW-second window after a warm-up.

    daemon       the daemon process alone (utime + stime), in % of one CPU
    with helpers dockerd: plus its containerd and the containers' shims, which
                 read the cgroups for it; dockyardd reads them itself (its shims
                 take no part), so the figure is the daemon's again
    idle         the same daemon with the 10 containers and no client

`BENCH_DOCKERD=1` measures a real dockerd (started here on a temporary root with
bench_restore's settings: no bridge, no iptables; its own containerd namespace)
the same way; it is stopped by PID (and its containerd with it) at the end.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_restore import Dockerd, Subject, load_busybox  # noqa: E402
from common import UnixConnection, measure_each, print_table  # noqa: E402

COUNT = 10
WINDOW = float(os.environ.get("BENCH_STATS_WINDOW", "20"))
WARMUP = 3.0
IMAGE = "busybox:local"
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


NAMESPACE = "dybench-stats"


class StatsDockerd(Dockerd):
    """bench_restore's dockerd, in a containerd namespace of its own."""

    def argv(self) -> list[str]:
        return [NAMESPACE if a == "dybench-restore" else
                f"{NAMESPACE}-p" if a == "dybench-restore-p" else a for a in super().argv()]


def helpers(s: Subject) -> list[int]:
    """dockerd's containerd and shims (the shims found by their namespace)."""
    if s.name != "dockerd":
        return []
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if (b"containerd-shim" in cmdline and f"-namespace {NAMESPACE} ".encode() in cmdline) or \
                (cmdline.startswith(b"containerd ") and str(s.dir).encode() in cmdline):
            found.append(int(pid))
    return found


def usage(pids: list[int], seconds: float) -> float:
    before = sum(cpu_seconds(p) for p in pids)
    time.sleep(seconds)
    return (sum(cpu_seconds(p) for p in pids) - before) / seconds * 100


def stream(sock: str, cid: str, stop: threading.Event, frames: list) -> None:
    conn = UnixConnection(sock, timeout=30)
    try:
        conn.request("GET", f"/containers/{cid}/stats?stream=1")
        resp = conn.getresponse()
        while not stop.is_set():
            line = resp.readline()
            if not line:
                break
            frames.append(1)
    finally:
        conn.close()


def measure(s: Subject) -> dict[str, float]:
    s.start()
    load_busybox(s)
    ids = []
    body = {"Image": IMAGE, "Cmd": ["sleep", "3000"], "HostConfig": {"NetworkMode": "none"}}
    for _ in range(COUNT):
        cid = s.api("POST", "/containers/create", body)["Id"]
        s.api("POST", f"/containers/{cid}/start")
        ids.append(cid)
    daemon = [s.proc.pid]
    time.sleep(WARMUP)
    idle = usage(daemon, WINDOW / 2)
    stop = threading.Event()
    frames: list = []
    threads = [threading.Thread(target=stream, args=(s.sock, cid, stop, frames), daemon=True)
               for cid in ids]
    for t in threads:
        t.start()
    time.sleep(WARMUP)
    every = daemon + helpers(s)
    before = {p: cpu_seconds(p) for p in every}
    n0 = len(frames)
    time.sleep(WINDOW)
    after = {p: cpu_seconds(p) for p in every}
    got = len(frames) - n0
    stop.set()
    return {"daemon": (after[daemon[0]] - before[daemon[0]]) / WINDOW * 100,
            "with helpers": sum(after[p] - before[p] for p in every) / WINDOW * 100,
            "idle": idle, "frames/s": got / WINDOW}


def main() -> int:
    subjects = [Subject()]
    if os.environ.get("BENCH_DOCKERD") and shutil.which("dockerd"):
        subjects.append(StatsDockerd())
    results = measure_each(subjects, measure)
    rows = [[key] + [f"{results[s.name][key]:.1f}" for s in subjects]
            for key in ("daemon", "with helpers", "idle", "frames/s")]
    if len(subjects) == 1:
        print("\ndockerd: not measured (BENCH_DOCKERD=1 with dockerd on PATH)")
    print_table(f"CPU (% of one CPU) while streaming the stats of {COUNT} containers to "
                f"{COUNT} clients, {WINDOW:.0f} s", ["figure", *[s.name for s in subjects]],
                rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
