"""Daemon restart with 100 running containers: how long until the daemon is back
and serving (`/_ping` answers, `GET /containers/json` lists all 100 running), and
whether every container kept running. Target: under 2 s.

Both ways a daemon goes away are measured: SIGTERM (a clean stop) and SIGKILL
(a crash); each ROUNDS times, the 100 containers kept running throughout. The
figures, per restart:

    no containers: ping   the floor: the same restart before any container runs
    ping      from the new daemon's exec to its first `/_ping` answer
    listed    to the first `GET /containers/json` naming all 100 as running
    running   how many of the 100 processes (State.Pid before the stop) are alive

`BENCH_DOCKERD=1` measures a real dockerd (`dockerd` on PATH, started here with
`--live-restore` on a temporary root, no bridge and no iptables) the same way, in
a second column; it is stopped by PID (and its containerd with it) at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (DOCKYARDD, FIXTURES, UnixConnection, call, measure_each, median, ms,  # noqa: E402
                    print_table, request, stop_process)

COUNT = int(os.environ.get("BENCH_RESTORE_COUNT", "100"))
ROUNDS = 3
IMAGE = "busybox:local"
JSON_HDR = {"Content-Type": "application/json"}


class Subject:
    """A daemon this script starts, stops and starts again on the same roots."""

    name = "dockyardd"

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="dybench-restore-"))
        self.sock = str(self.dir / "d.sock")
        self.proc: subprocess.Popen | None = None

    def argv(self) -> list[str]:
        return [str(DOCKYARDD), "--data-root", str(self.dir / "root"),
                "--exec-root", str(self.dir / "exec"), "-H", f"unix://{self.sock}",
                "-p", str(self.dir / "d.pid")]

    def start(self) -> float:
        """Start the daemon; seconds to its first /_ping answer."""
        log = open(self.dir / "daemon.log", "ab")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {(self.dir / 'daemon.log').read_text()}")
            try:
                if call(self.sock, "GET", "/_ping", None)[0] == 200:
                    return time.perf_counter() - t0
            except OSError:
                pass
            if time.perf_counter() - t0 > 60:
                raise RuntimeError(f"{self.name} did not answer /_ping in 60 s")
            time.sleep(0.005)

    def stop(self, sig: int) -> None:
        stop_process(self.proc, 60, sig)

    def api(self, method: str, url: str, body=None):
        conn = UnixConnection(self.sock, timeout=120)
        try:
            status, data = request(conn, method, url,
                                   json.dumps(body).encode() if body is not None else None,
                                   JSON_HDR if body is not None else None)
        finally:
            conn.close()
        if status >= 300:
            raise RuntimeError(f"{method} {url}: {status} {data[:300]!r}")
        return json.loads(data) if data.strip() else None

    def cleanup(self) -> None:
        """Every container removed, the daemon stopped, the directory gone."""
        with_errors = []
        if self.proc is not None and self.proc.poll() is not None:
            with contextlib.suppress(RuntimeError):
                self.start()  # (a daemon that died is brought back to remove what it ran)
        if self.proc is not None and self.proc.poll() is None:
            try:
                for c in self.api("GET", "/containers/json?all=1"):
                    call(self.sock, "DELETE", f"/containers/{c['Id']}?force=1")
            except (OSError, RuntimeError) as e:
                with_errors.append(e)
        self.stop(signal.SIGTERM)
        with open("/proc/mounts") as f:
            mounts = [line.split()[1] for line in f if line.split()[1].startswith(str(self.dir))]
        for m in sorted(mounts, reverse=True):
            subprocess.run(["umount", "-l", m], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
        if with_errors:
            print(f"{self.name}: cleanup: {with_errors[0]}")


class Dockerd(Subject):
    name = "dockerd"

    def stop(self, sig: int) -> None:
        """Also wait (a while) for its containerd to exit: a dockerd started while
        the old containerd is still shutting down finds its pidfile, tries to
        reuse it and gives up ("timeout waiting for containerd to start")."""
        super().stop(sig)
        try:
            pid = int((self.dir / "exec" / "containerd" / "containerd.pid").read_text())
        except (OSError, ValueError):
            return
        deadline = time.monotonic() + 10
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        if not alive(pid):
            # A containerd orphaned by a killed dockerd may stay a zombie where
            # PID 1 does not reap; dockerd would take it for alive and wait on it.
            with contextlib.suppress(FileNotFoundError):
                (self.dir / "exec" / "containerd" / "containerd.pid").unlink()

    def argv(self) -> list[str]:
        return ["dockerd", "--data-root", str(self.dir / "root"),
                "--exec-root", str(self.dir / "exec"), "-H", f"unix://{self.sock}",
                "--pidfile", str(self.dir / "d.pid"), "--live-restore",
                "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
                "--userland-proxy=false",
                "--containerd-namespace", "dybench-restore",
                "--containerd-plugins-namespace", "dybench-restore-p"]


def load_busybox(s: Subject) -> None:
    with open(FIXTURES / "busybox.docker-save.tar", "rb") as f:
        conn = UnixConnection(s.sock, timeout=120)
        try:
            status, data = request(conn, "POST", "/images/load?quiet=1", f.read(),
                                   {"Content-Type": "application/x-tar"})
        finally:
            conn.close()
    if status != 200:
        raise RuntimeError(f"load: {status} {data[:300]!r}")


def run_many(s: Subject) -> dict[str, int]:
    """COUNT detached `sleep` containers; {id: pid}."""
    pids = {}
    body = {"Image": IMAGE, "Cmd": ["sleep", "3000"],
            "HostConfig": {"NetworkMode": "none"}, "Labels": {"dybench": "1"}}
    for _ in range(COUNT):
        cid = s.api("POST", "/containers/create", body)["Id"]
        s.api("POST", f"/containers/{cid}/start")
        pids[cid] = s.api("GET", f"/containers/{cid}/json")["State"]["Pid"]
    return pids


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def restart(s: Subject, sig: int, pids: dict[str, int]) -> dict:
    s.stop(sig)
    ping = s.start()
    t0 = time.perf_counter() - ping
    while True:
        listed = s.api("GET", "/containers/json")
        running = {c["Id"] for c in listed if c["State"] == "running"}
        if set(pids) <= running:
            break
        if time.perf_counter() - t0 > 60:
            raise RuntimeError(f"{s.name}: only {len(running)} listed running after 60 s")
        time.sleep(0.005)
    return {"ping": ping, "listed": time.perf_counter() - t0,
            "running": sum(alive(p) for p in pids.values())}


def measure(s: Subject) -> dict[str, list]:
    out: dict[str, list] = {"empty ping": []}
    s.start()
    for _ in range(ROUNDS):  # the floor: a restart with no container to take back
        s.stop(signal.SIGTERM)
        out["empty ping"].append(s.start())
    load_busybox(s)
    pids = run_many(s)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for _ in range(ROUNDS):
            r = restart(s, sig, pids)
            for key, value in r.items():
                out.setdefault(f"{sig.name} {key}", []).append(value)
    return out


def main() -> int:
    subjects = [Subject()]
    if os.environ.get("BENCH_DOCKERD") and shutil.which("dockerd"):
        subjects.append(Dockerd())
    results = measure_each(subjects, measure)
    rows = [["no containers: ping", *[f"{ms(median(results[s.name]['empty ping']))} (max "
                                      f"{ms(max(results[s.name]['empty ping']))})"
                                      for s in subjects], "—"]]
    for sig in ("SIGTERM", "SIGKILL"):
        for key, target in (("ping", "—"), ("listed", "< 2000"), ("running", f"{COUNT}")):
            row = [f"{sig}: {key}"]
            for s in subjects:
                values = results[s.name][f"{sig} {key}"]
                row.append(f"{min(values)}/{COUNT}" if key == "running" else
                           f"{ms(median(values))} (max {ms(max(values))})")
            rows.append(row + [target])
    if len(subjects) == 1:
        print("\ndockerd: not measured (BENCH_DOCKERD=1 with dockerd on PATH)")
    print_table(f"Daemon restart with {COUNT} running containers, {ROUNDS} rounds each "
                "(ms: median (max); running: fewest alive)",
                ["figure", *[s.name for s in subjects], "target"], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
