"""Container benchmarks through the docker CLI: `docker run --rm true` end to end, 100
detached `sleep` containers (run, ps, rm -f, memory per container), `docker ps -a`
with 1000 containers, and `docker logs` of 100 MiB. Runs against a throwaway
dockyardd, and against a real dockerd too when DOCKER_REF_HOST=unix:///path.sock.

Every container made here carries the label `dybench=1` and `--network none` (the
same for both daemons: a scratch dockerd started with --bridge=none has no other
network). On the dockerd side only containers with that label are removed, and
busybox:local is loaded from the fixture if it is missing (and removed again at the
end). Nothing is pulled. Ctrl-C, SIGTERM or a failure still remove every container
and stop the temporary daemon."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (DOCKYARD, FIXTURES, Daemon, UnixConnection, call, median, ms, p95,  # noqa: E402
                    peer_pid, print_table, ref_socket, request, rss_mib, timed,
                    write_samples)

RUNS = 20            # docker run --rm true
WARMUP = 2
DETACHED = 100       # docker run -d sleep 300
PS_RUNS = 5          # docker ps with the 100 running
MANY = 1000          # containers created for docker ps -a
PSA_RUNS = 10
LOG_BYTES = 100 * 1024 * 1024
LOG_LINE = "0123456789abcdef" * 64   # 1024 bytes with the newline that `yes` adds
LOG_LINE = LOG_LINE[:1023]
LOG_READS = 3
IMAGE = "busybox:local"
BUSYBOX_ID = "sha256:e9242c1a8a93414f2150bda5836e3b7856e4eeb92e041669d1389393a3a73f9f"
LABEL = "dybench"
COMMON_ARGS = ["--network", "none", "--label", f"{LABEL}=1"]
JSON_HDR = {"Content-Type": "application/json"}
MIB = 1024 * 1024


class Failed(Exception):
    """A command or request the daemon refused: shown as `error: ...` in the table."""


# --- Running the docker CLI --------------------------------------------------------

class Target:
    """One daemon under test: its socket, its PID and the CLI pointed at it."""

    def __init__(self, name: str, sock: str, pid: int):
        self.name, self.sock, self.pid = name, sock, pid
        self.host = f"unix://{sock}"
        self.docker = shutil.which("docker")
        self.env = dict(os.environ, DOCKER_HOST=self.host)
        self.env.pop("DOCKER_CONTEXT", None)

    def cli(self, *args: str, timeout: float = 60, argv0: str | None = None) -> str:
        """Run `docker ARGS` (or argv0 ARGS); stdout, or Failed with its stderr."""
        argv0 = argv0 or self.docker
        cmd = [argv0, "-H", self.host, *args]
        shown = short([argv0, *args])
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                 env=self.env, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise Failed(f"timed out after {timeout:.0f} s [{shown}]") from None
        if out.returncode != 0:
            msg = " ".join((out.stderr.strip() or out.stdout.strip()).split())
            raise Failed(f"{msg} [{shown}, rc={out.returncode}]")
        return out.stdout

    def timed_cli(self, *args: str, timeout: float = 60, argv0: str | None = None):
        t0 = time.perf_counter()
        out = self.cli(*args, timeout=timeout, argv0=argv0)
        return time.perf_counter() - t0, out

    def api(self, method: str, url: str, body=None, ok=(200, 201, 204), timeout: float = 60):
        conn = UnixConnection(self.sock, timeout=timeout)
        try:
            status, data = request(conn, method, url,
                                   json.dumps(body).encode() if body is not None else None,
                                   JSON_HDR if body is not None else None)
        finally:
            conn.close()
        if status not in ok:
            raise Failed(f"{method} {url}: {status} {data[:300].decode(errors='replace').strip()}")
        return json.loads(data) if data.strip() else None

    def labelled(self) -> list[str]:
        filters = json.dumps({"label": [LABEL]})
        from urllib.parse import quote
        return [c["Id"] for c in self.api("GET", f"/containers/json?all=1&filters={quote(filters)}")]

    def remove(self, ids, timeout: float = 60) -> None:
        """Force-remove containers over the API, one kept-alive connection."""
        conn = UnixConnection(self.sock, timeout=timeout)
        try:
            for cid in ids:
                status, data = request(conn, "DELETE", f"/containers/{cid}?force=1&v=1")
                if status not in (204, 404):
                    raise Failed(f"DELETE /containers/{cid[:12]}: {status} "
                                 f"{data[:200].decode(errors='replace').strip()}")
        finally:
            conn.close()


def short(cmd: list[str]) -> str:
    words = [Path(cmd[0]).name] + [w if len(w) < 40 else w[:12] + "…" for w in cmd[1:]]
    s = " ".join(words)
    return s if len(s) < 160 else s[:157] + "…"


# --- Processes and memory ----------------------------------------------------------

def ppid_map() -> dict[int, int]:
    out = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                stat = (p / "stat").read_text()
            except OSError:
                continue
            out[int(p.name)] = int(stat[stat.rindex(")") + 2:].split()[1])
    return out


def descendants(pid: int, parents: dict[int, int]) -> list[int]:
    kids: dict[int, list[int]] = {}
    for child, parent in parents.items():
        kids.setdefault(parent, []).append(child)
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def pss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def safe_rss(pid: int) -> float:
    try:
        return rss_mib(pid)
    except OSError:
        return 0.0


def container_memory(t: Target, ids: list[str]) -> dict:
    """Sum of RSS (and PSS) of each container's shim (the parent of its process) and
    everything under the shim; the daemon's own RSS and its children's (containerd)."""
    parents = ppid_map()
    pids: set[int] = set()
    shims: set[int] = set()
    for cid in ids:
        pid = t.api("GET", f"/containers/{cid}/json")["State"]["Pid"]
        if not pid:
            raise Failed(f"container {cid[:12]} has no PID (not running?)")
        shim = parents.get(pid, 0)
        root = shim if shim not in (0, 1, t.pid) else pid
        shims.add(root)
        pids.update(descendants(root, parents))
    daemon_kids = [p for p in descendants(t.pid, parents) if p != t.pid and p not in pids]
    return {
        "per_container_rss": sum(safe_rss(p) for p in pids) / len(ids),
        "per_container_pss": sum(pss_mib(p) for p in pids) / len(ids),
        "shims": len(shims), "procs": len(pids),
        "daemon_rss": safe_rss(t.pid),
        "daemon_children_rss": sum(safe_rss(p) for p in daemon_kids),
    }


# --- The figures -------------------------------------------------------------------

def fig_cli_floor(t: Target) -> list[float]:
    return timed(lambda: t.cli("version"), RUNS)


def fig_run_rm(t: Target) -> list[float]:
    args = ["run", "--rm", *COMMON_ARGS, IMAGE, "true"]
    for _ in range(WARMUP):
        t.cli(*args)
    return [t.timed_cli(*args)[0] for _ in range(RUNS)]


def fig_detached(t: Target, r: dict) -> None:
    """DETACHED sequential `docker run -d`, memory, `docker ps`, one `docker rm -f`."""
    ids, times = [], []
    t0 = time.perf_counter()
    try:
        try:
            for _ in range(DETACHED):
                dt, out = t.timed_cli("run", "-d", *COMMON_ARGS, IMAGE, "sleep", "300")
                ids.append(out.strip())
                times.append(dt)
        except Failed as e:
            r["run_d_total"] = f"error: after {len(ids)} runs: {e}"
            print(f"  ! run_d_total: {r['run_d_total']}", flush=True)
            return
        r["run_d_total"] = time.perf_counter() - t0
        r["run_d_each"] = times
        print(f"  {DETACHED} x run -d: {r['run_d_total']:.2f} s", flush=True)
        record(r, "memory", lambda: container_memory(t, ids))

        def ps():
            out = t.cli("ps")
            if len(out.splitlines()) - 1 < DETACHED:
                raise Failed(f"`docker ps` listed {len(out.splitlines()) - 1} containers, "
                             f"not {DETACHED}")
        record(r, "ps_running", lambda: timed(ps, PS_RUNS))
    finally:
        if ids:
            def rm():
                dt, _ = t.timed_cli("rm", "-f", *ids, timeout=300)
                left = set(ids) & set(t.labelled())
                if left:
                    raise Failed(f"{len(left)} containers still there after `docker rm -f`")
                return dt
            record(r, "rm_f_total", rm)


def fig_many(t: Target, r: dict) -> None:
    """MANY containers created over the API (not started), then `ps -a`."""
    body = {"Image": IMAGE, "Cmd": ["true"], "Labels": {LABEL: "1"},
            "HostConfig": {"NetworkMode": "none"}}
    ids = []
    conn = UnixConnection(t.sock)
    try:
        t0 = time.perf_counter()
        try:
            for n in range(MANY):
                status, data = request(conn, "POST", "/containers/create",
                                       json.dumps(body).encode(), JSON_HDR)
                if status != 201:
                    raise Failed(f"POST /containers/create #{n}: {status} "
                                 f"{data[:200].decode(errors='replace').strip()}")
                ids.append(json.loads(data)["Id"])
        except (Failed, OSError) as e:
            r["create_many"] = f"error: {e}"
            print(f"  ! create_many: {r['create_many']}", flush=True)
            return
        finally:
            conn.close()
        r["create_many"] = time.perf_counter() - t0
        print(f"  {MANY} x POST /containers/create: {r['create_many']:.2f} s", flush=True)
        r["rss_many"] = safe_rss(t.pid)

        def ps_a(argv0=None):
            out = t.cli("ps", "-a", argv0=argv0)
            listed = len(out.splitlines()) - 1
            if listed < MANY:
                raise Failed(f"`ps -a` listed {listed} containers, not {MANY}+")
        record(r, "api_list_many",
               lambda: timed(lambda: t.api("GET", "/containers/json?all=1"), PSA_RUNS))
        record(r, "ps_a_docker", lambda: timed(ps_a, PSA_RUNS))
        if DOCKYARD.exists():
            try:
                ps_a(str(DOCKYARD))
            except Failed as e:
                r["ps_a_dockyard"] = f"skipped: {str(e).split(' Run ')[0]}"
                print(f"  dockyard ps -a: skipped ({str(e)[:150]})", flush=True)
            else:
                record(r, "ps_a_dockyard", lambda: timed(lambda: ps_a(str(DOCKYARD)), PSA_RUNS))
        else:
            r["ps_a_dockyard"] = "skipped: no .venv/bin/dockyard"
    finally:
        if ids:
            def rm():
                t0 = time.perf_counter()
                t.remove(ids, timeout=120)
                return time.perf_counter() - t0
            record(r, "remove_many", rm)


def read_logs(t: Target, cid: str, timeout: float = 120) -> tuple[float, int]:
    """`docker logs CID`, its stdout read through a pipe; (seconds, bytes)."""
    cmd = [t.docker, "-H", t.host, "logs", cid]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, env=t.env)
    n = 0
    try:
        while True:
            if time.perf_counter() - t0 > timeout:
                raise Failed(f"`docker logs` timed out after {timeout:.0f} s ({n} bytes read)")
            chunk = proc.stdout.read1(1 << 20)
            if not chunk:
                break
            n += len(chunk)
        err = proc.stderr.read()
        rc = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    dt = time.perf_counter() - t0
    if rc != 0:
        raise Failed(f"`docker logs` rc={rc}: {err.decode(errors='replace').strip()}")
    return dt, n


def api_logs(t: Target, cid: str, timeout: float = 120) -> float:
    """GET /containers/{cid}/logs?stdout=1 read to the end as fast as Python reads a
    socket, no CLI: the daemon's side of `docker logs`. Seconds; checks the size."""
    conn = UnixConnection(t.sock, timeout=timeout)
    try:
        t0 = time.perf_counter()
        conn.request("GET", f"/containers/{cid}/logs?stdout=1&stderr=1")
        resp = conn.getresponse()
        if resp.status != 200:
            raise Failed(f"GET /containers/{cid[:12]}/logs: {resp.status} "
                         f"{resp.read()[:200].decode(errors='replace').strip()}")
        n = 0
        while chunk := resp.read1(1 << 20) if hasattr(resp, "read1") else resp.read(1 << 20):
            n += len(chunk)
        dt = time.perf_counter() - t0
    finally:
        conn.close()
    # Without a TTY the body is framed (8-byte header per frame): at least the payload.
    if n < LOG_BYTES:
        raise Failed(f"GET /containers/{cid[:12]}/logs gave {n} bytes, under {LOG_BYTES}")
    return dt


def fig_logs(t: Target, r: dict) -> None:
    script = f"busybox yes {LOG_LINE} | busybox head -c {LOG_BYTES}"

    def run_and_read():
        t0 = time.perf_counter()
        cid = t.cli("run", "-d", *COMMON_ARGS, IMAGE, "sh", "-c", script).strip()
        code = t.cli("wait", cid, timeout=300).strip()
        r["log_run"] = time.perf_counter() - t0
        if code != "0":
            raise Failed(f"the writer exited {code}")
        rates = []
        for _ in range(LOG_READS):
            dt, n = read_logs(t, cid)
            if n != LOG_BYTES:
                raise Failed(f"`docker logs` gave {n} bytes, not {LOG_BYTES}")
            rates.append(n / MIB / dt)
        r["log_cid"] = cid
        return rates
    record(r, "log_read", run_and_read)
    if "log_cid" in r:
        cid = r.pop("log_cid")
        record(r, "log_read_api", lambda: [LOG_BYTES / MIB / api_logs(t, cid)
                                           for _ in range(LOG_READS)])
        t.remove([cid])

    def attached():
        """`docker run` attached, the 100 MiB streamed to the CLI's stdout (a pipe)."""
        cmd = [t.docker, "-H", t.host, "run", "--rm", *COMMON_ARGS, IMAGE, "sh", "-c", script]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, env=t.env)
        n = 0
        try:
            while chunk := proc.stdout.read1(1 << 20):
                n += len(chunk)
                if time.perf_counter() - t0 > 300:
                    raise Failed("attached run timed out after 300 s")
            err = proc.stderr.read()
            rc = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        dt = time.perf_counter() - t0
        if rc != 0 or n != LOG_BYTES:
            raise Failed(f"attached run rc={rc}, {n} bytes: {err.decode(errors='replace').strip()}")
        return dt
    record(r, "log_attached", attached)


def record(r: dict, key: str, fn) -> None:
    """r[key] = fn(), or the error as a string `error: ...` (and go on)."""
    try:
        r[key] = fn()
    except (Failed, OSError, ValueError, KeyError) as e:
        r[key] = f"error: {e}"
        print(f"  ! {key}: error: {e}", flush=True)


# --- Set-up and clean-up -----------------------------------------------------------

def ensure_image(t: Target) -> bool:
    """Load the busybox fixture if busybox:local is not there; True if we loaded it."""
    status, _ = call(t.sock, "GET", f"/images/{IMAGE}/json")
    if status == 200:
        return False
    t.cli("load", "-i", str(FIXTURES / "busybox.docker-save.tar"), timeout=120)
    return True


def cleanup(t: Target) -> None:
    try:
        left = t.labelled()
        if left:
            print(f"  cleaning up {len(left)} containers", flush=True)
            t.remove(left, timeout=120)
    except (Failed, OSError) as e:
        print(f"  ! clean-up on {t.name}: {e}", flush=True)


def kill_leftovers(d: Daemon) -> None:
    """Last resort before the temporary daemon goes: shims (detached from the daemon)
    still running under its directory, and what runs under them, killed by PID."""
    parents = ppid_map()
    victims = []
    for pid in parents:
        if pid in (d.pid, os.getpid()):
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"dockyard.runtime.shim" in cmd and str(d.dir).encode() in cmd:
            victims += reversed(descendants(pid, parents))
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    if victims:
        print(f"  killed {len(victims)} leftover shim/container processes", flush=True)
        time.sleep(0.5)


def measure(t: Target) -> dict:
    print(f"{t.name}: pid {t.pid}, socket {t.sock}", flush=True)
    r: dict = {"rss_start": safe_rss(t.pid)}
    try:
        loaded = ensure_image(t)
    except (Failed, OSError) as e:
        r["run_rm"] = f"error: loading {IMAGE}: {e}"
        print(f"  ! {r['run_rm']}", flush=True)
        return r
    try:
        record(r, "cli_floor", lambda: fig_cli_floor(t))
        record(r, "run_rm", lambda: fig_run_rm(t))
        print(f"  run --rm true: {cell(r['run_rm'])} ms", flush=True)
        fig_detached(t, r)
        fig_many(t, r)
        fig_logs(t, r)
        r["rss_end"] = safe_rss(t.pid)
    finally:
        cleanup(t)
        if loaded and t.name != "dockyard":
            call(t.sock, "DELETE", f"/images/{BUSYBOX_ID}?force=1")
    return r


# --- Output ------------------------------------------------------------------------

def cell(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v if len(v) <= 70 else v[:67] + "…"
    return f"{ms(median(v))} / {ms(p95(v))}"


def fmt(f):
    """A formatter that passes `error: ...` strings and missing values through."""
    def g(v):
        if v is None:
            return "n/a"
        if isinstance(v, str):
            return cell(v)
        return f(v)
    return g


def mem(key):
    def g(v):
        if v is None or isinstance(v, str):
            return cell(v)
        return f"{v[key]:.1f}"
    return g


def table(results: dict) -> None:
    names = list(results)
    rows = []

    def row(label, key, f, target=""):
        rows.append([label] + [f(results[n].get(key)) for n in names] + [target])

    sec = fmt(lambda v: f"{v:.2f}")
    row(f"`docker version` (CLI floor), ms median / p95 ({RUNS})", "cli_floor", cell)
    row(f"`docker run --rm busybox true`, ms median / p95 ({RUNS})", "run_rm", cell,
        "< 60 ms (dockerd ~250, podman ~480)")
    row(f"{DETACHED} x `docker run -d sleep 300`, s total", "run_d_total", sec)
    row("  one `docker run -d`, ms median / p95", "run_d_each", cell)
    row(f"`docker ps` ({DETACHED} running), ms median / p95 ({PS_RUNS})", "ps_running", cell)
    row(f"`docker rm -f` of the {DETACHED}, s total", "rm_f_total", sec)
    row(f"memory per container ({DETACHED} running): RSS of shim + container, MiB",
        "memory", mem("per_container_rss"), "< 8 MiB")
    row("  the same as PSS (shared pages split), MiB", "memory", mem("per_container_pss"))
    row(f"daemon RSS with {DETACHED} running, MiB", "memory", mem("daemon_rss"), "< 60 MiB")
    row("  its child processes (containerd), RSS MiB", "memory", mem("daemon_children_rss"))
    row(f"create {MANY} containers (POST /containers/create), s total", "create_many", sec)
    row(f"GET /containers/json?all=1 ({MANY}), ms median / p95 ({PSA_RUNS})",
        "api_list_many", cell)
    row(f"`docker ps -a` ({MANY}), ms median / p95 ({PSA_RUNS})", "ps_a_docker", cell,
        "< 150 ms")
    row(f"`dockyard ps -a` ({MANY}), ms median / p95 ({PSA_RUNS})", "ps_a_dockyard", cell)
    row(f"remove the {MANY} (DELETE ?force=1), s total", "remove_many", sec)
    row(f"daemon RSS with {MANY} containers, MiB", "rss_many", fmt(lambda v: f"{v:.1f}"))
    row("run -d + wait: 100 MiB to stdout, into the log, s", "log_run", sec)
    row(f"`docker logs` of 100 MiB, MiB/s median ({LOG_READS})", "log_read",
        fmt(lambda v: f"{median(v):.1f}"), "> 100 MiB/s")
    row(f"  GET /containers/{{id}}/logs, no CLI, MiB/s median ({LOG_READS})", "log_read_api",
        fmt(lambda v: f"{median(v):.1f}"))
    row("attached `docker run --rm`, 100 MiB to the CLI, s", "log_attached", sec)
    row("daemon RSS at start, MiB", "rss_start", fmt(lambda v: f"{v:.1f}"))
    row("daemon RSS at end, MiB", "rss_end", fmt(lambda v: f"{v:.1f}"))
    print_table("bench_containers", ["metric"] + names + ["target"], rows)


def main() -> int:
    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    if not shutil.which("docker"):
        print("bench_containers: the docker CLI is not on PATH; nothing measured")
        return 0
    results: dict = {}
    interrupted = False
    try:
        with Daemon() as d:
            t = Target("dockyard", d.sock, d.pid)
            try:
                print(f"dockyardd started in {d.started_in * 1000:.0f} ms", flush=True)
                results["dockyard"] = measure(t)
            finally:
                signal.signal(signal.SIGINT, signal.SIG_IGN)   # let the clean-up finish
                cleanup(t)
                kill_leftovers(d)
                signal.signal(signal.SIGINT, signal.default_int_handler)
        ref = ref_socket()
        if ref:
            t = Target("dockerd", ref, peer_pid(ref))
            try:
                results["dockerd"] = measure(t)
            finally:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                cleanup(t)
                signal.signal(signal.SIGINT, signal.default_int_handler)
        else:
            print("dockerd: not available (set DOCKER_REF_HOST=unix:///path/docker.sock)")
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: containers removed, temporary daemon stopped", flush=True)
    if results:
        table(results)
    write_samples(results, "containers")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
