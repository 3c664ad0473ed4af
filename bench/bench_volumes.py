"""Volume benchmarks: copy-up, the cost of mounted volumes at start, write throughput.

1. Copy-up: an image whose /data holds 100 MiB (100 files of 1 MiB) and 1000
   small files in four subdirectories, imported offline (POST
   /images/create?fromSrc=- of a tarball made here from the host's static
   busybox). create + start + wait + remove of `true` over the API with
   `-v <empty volume>:/data` (the daemon copies /data into the volume first)
   against the same with a volume that is already full (nothing to copy): the
   difference is the copy-up, also given in MiB/s. Each copy is checked by
   summing the volume's files on the host.
2. `run --rm true` over the API (create, start, wait, remove) with 10 existing
   named volumes mounted and with none: the per-start cost of 10 volumes.
3. `busybox dd if=/dev/zero of=/data/f bs=1M count=512 conv=fsync` in a
   container with a volume at /data, against the same dd run on the host into
   the volume's directory (on the daemon's data root: same filesystem, same
   neighbourhood of the disk), alternated, each timed by two readings of the
   wall clock around dd (this busybox's dd prints no rate). The ratio should
   be 1: a volume is a bind mount, no FUSE, no copy. A VM's disk is uneven
   from one run to the next, so the best run is shown beside the median.

Runs against a throwaway dockyardd, and against a real dockerd too when
DOCKER_REF_HOST=unix:///path.sock. Every container (`--network none`, label
`dybench=1`), volume (`dybench-<pid>-…`), image (`dybench-volumes-<pid>:data`,
and busybox:local if it had to be loaded) and temporary directory made here is
removed at the end, Ctrl-C, SIGTERM and failures included. Nothing is pulled.

    .venv/bin/python bench/bench_volumes.py [--runs N] [--copyup-runs N] [--dd-runs N]
"""

from __future__ import annotations

import argparse
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
from urllib.parse import quote, urlencode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_containers import (BUSYBOX_ID, IMAGE, LABEL, Failed, Target,  # noqa: E402
                              ensure_image, kill_leftovers, record)
from common import (Daemon, UnixConnection, call, median, ms, p95, peer_pid,  # noqa: E402
                    print_table, ref_socket, request, write_samples)

RUN = f"dybench-{os.getpid()}"          # every volume's name starts with it
DATA_IMAGE = f"dybench-volumes-{os.getpid()}:data"
BIG_FILES = 100                         # of 1 MiB each
SMALL_DIRS = 4
SMALL_FILES = 250                       # per directory
VOLUMES = 10                            # mounted at once in figure 2
DD_COUNT = 512                          # MiB written per dd
WARMUP = 2
MIB = 1024 * 1024
HOST_BUSYBOX = "/bin/busybox"


# --- The image ---------------------------------------------------------------------

def build_image_tar(path: Path) -> dict:
    """A busybox rootfs (dockyard.image.busybox) with /data added; its size."""
    from dockyard.image.busybox import write_rootfs

    rootfs = io.BytesIO()
    write_rootfs(rootfs)
    rootfs.seek(0)
    mtime = int(time.time())
    size = files = 0
    with tarfile.open(fileobj=rootfs) as src, tarfile.open(path, "w",
                                                           format=tarfile.PAX_FORMAT) as tar:
        for m in src:
            tar.addfile(m, src.extractfile(m) if m.isreg() else None)

        def add(name: str, data: bytes | None = None, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(name)
            info.mtime, info.mode = mtime, mode
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            else:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)

        add("data")
        add("data/blobs")
        for n in range(BIG_FILES):
            data = os.urandom(MIB)
            add(f"data/blobs/{n:03}.bin", data)
            size, files = size + len(data), files + 1
        for d in range(SMALL_DIRS):
            add(f"data/small-{d}")
            for n in range(SMALL_FILES):
                data = (f"{d}/{n} " * 1000).encode()[:512 + (n * 37 % 3584)]
                add(f"data/small-{d}/{n:04}.txt", data)
                size, files = size + len(data), files + 1
    return {"bytes": size, "files": files}


def import_image(t: Target, tar: Path) -> None:
    from dockyard.image.busybox import CHANGES

    repo, tag = DATA_IMAGE.split(":")
    query = urlencode([("fromSrc", "-"), ("repo", repo), ("tag", tag)] +
                      [("changes", c) for c in CHANGES])
    conn = UnixConnection(t.sock, timeout=600)
    try:
        with open(tar, "rb") as f:
            status, body = request(conn, "POST", f"/images/create?{query}", f,
                                   {"Content-Type": "application/x-tar",
                                    "Content-Length": str(tar.stat().st_size)})
    finally:
        conn.close()
    if status != 200 or b'"error' in body:
        raise Failed(f"importing {DATA_IMAGE}: {status} {body[:300].decode(errors='replace')}")
    t.api("GET", f"/images/{DATA_IMAGE}/json")


# --- Helpers -----------------------------------------------------------------------

class Volumes:
    """The volumes one daemon's figures make, all removed by `cleanup()`."""

    def __init__(self, t: Target):
        self.t = t
        self.names: list[str] = []
        self.n = 0

    def create(self, what: str) -> dict:
        self.n += 1
        name = f"{RUN}-{what}-{self.n}"
        self.names.append(name)
        return self.t.api("POST", "/volumes/create", {"Name": name, "Labels": {LABEL: "1"}},
                          ok=(201,))

    def remove(self, name: str) -> None:
        self.t.api("DELETE", f"/volumes/{name}?force=1", ok=(204, 404), timeout=120)
        if name in self.names:
            self.names.remove(name)

    def cleanup(self) -> None:
        filters = quote(json.dumps({"name": [RUN]}))
        try:
            listed = self.t.api("GET", f"/volumes?filters={filters}")["Volumes"] or []
            names = self.names + [v["Name"] for v in listed if v["Name"].startswith(RUN)]
        except (Failed, OSError) as e:
            print(f"  ! listing volumes on {self.t.name}: {e}", flush=True)
            names = list(self.names)
        for name in dict.fromkeys(names):
            try:
                self.remove(name)
            except (Failed, OSError) as e:
                print(f"  ! removing volume {name} on {self.t.name}: {e}", flush=True)


def run_rm(t: Target, image: str, binds: list[str]) -> float:
    """create + start + wait + remove of `true` with `binds`, over the API."""
    t0 = time.perf_counter()
    cid = t.api("POST", "/containers/create", {
        "Image": image, "Cmd": ["true"], "Labels": {LABEL: "1"},
        "HostConfig": {"NetworkMode": "none", "Binds": binds}}, ok=(201,))["Id"]
    t.api("POST", f"/containers/{cid}/start", timeout=300)
    code = t.api("POST", f"/containers/{cid}/wait", timeout=300)["StatusCode"]
    t.api("DELETE", f"/containers/{cid}")
    if code != 0:
        raise Failed(f"`true` exited {code} (binds {binds})")
    return time.perf_counter() - t0


def tree_size(path: str) -> tuple[int, int]:
    """(bytes, regular files) under `path`."""
    size = files = 0
    for root, _, names in os.walk(path):
        for n in names:
            st = os.lstat(os.path.join(root, n))
            if st.st_mode & 0o170000 == 0o100000:
                size, files = size + st.st_size, files + 1
    return size, files


def filesystem(path: str) -> tuple[str, str]:
    """(mount point, type) of the filesystem holding `path`."""
    path = os.path.realpath(path)
    best = ("/", "?")
    with open("/proc/self/mounts") as f:
        for line in f:
            _, mnt, fstype = line.split()[:3]
            mnt = mnt.replace("\\040", " ")
            if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and \
                    len(mnt) >= len(best[0]):
                best = (mnt, fstype)
    return best


# --- The figures -------------------------------------------------------------------

def fig_copyup(t: Target, vols: Volumes, runs: int, expect: dict) -> dict:
    """Fresh (empty) volume over /data against a full one, same container."""
    fresh, full = [], []
    for n in range(runs + 1):                  # the first pair is a warm-up
        vol = vols.create("copyup")
        os.sync()                              # the previous volume's removal on disk
        dt = run_rm(t, DATA_IMAGE, [f"{vol['Name']}:/data"])
        got = tree_size(vol["Mountpoint"])
        if got != (expect["bytes"], expect["files"]):
            raise Failed(f"volume {vol['Name']} holds {got[1]} files, {got[0]} bytes after "
                         f"copy-up, not {expect['files']}, {expect['bytes']}")
        os.sync()
        dt_full = run_rm(t, DATA_IMAGE, [f"{vol['Name']}:/data"])
        if n:
            fresh.append(dt)
            full.append(dt_full)
        vols.remove(vol["Name"])
    print(f"  copy-up: {ms(median(fresh))} ms with, {ms(median(full))} ms without", flush=True)
    return {"fresh": fresh, "full": full}


def fig_start(t: Target, vols: Volumes, runs: int) -> dict:
    """`run --rm true` with VOLUMES named volumes and with none, interleaved."""
    binds = [f"{vols.create('start')['Name']}:/v{i}" for i in range(VOLUMES)]
    for _ in range(WARMUP):
        run_rm(t, IMAGE, [])
        run_rm(t, IMAGE, binds)
    none, many = [], []
    for _ in range(runs):
        none.append(run_rm(t, IMAGE, []))
        many.append(run_rm(t, IMAGE, binds))
    print(f"  start: {ms(median(none))} ms with no volume, {ms(median(many))} ms with "
          f"{VOLUMES}", flush=True)
    return {"none": none, "volumes": many}


def dd_script(directory: str) -> str:
    """dd between two readings of the wall clock in microseconds (`adjtimex`, which
    reads it with no privilege), with `time -f %e` (10 ms) as a fallback; the file
    removed after."""
    return (f"busybox adjtimex 2>&1; busybox time -f 'elapsed %e' busybox dd if=/dev/zero "
            f"of={directory}/f bs=1M count={DD_COUNT} conv=fsync 2>&1; rc=$?; "
            f"busybox adjtimex 2>&1; busybox rm -f {directory}/f; exit $rc")


def seconds_of(out: str, where: str, clocks: set[str]) -> float:
    """The time dd took, from the output of dd_script; the clock used goes in `clocks`."""
    clock = [int(line.split(":")[1]) for line in out.splitlines()
             if line.strip().startswith(("time.tv_sec:", "time.tv_usec:"))]
    if len(clock) == 4:
        clocks.add(f"{where}: adjtimex (µs)")
        return (clock[2] - clock[0]) + (clock[3] - clock[1]) / 1e6
    for line in out.splitlines():
        if line.startswith("elapsed "):
            clocks.add(f"{where}: time -f %e (10 ms)")
            return float(line.split()[1])
    raise Failed(f"dd {where}: no time in its output: {out.strip()[-300:]!r}")


def fig_dd(t: Target, vols: Volumes, runs: int) -> dict:
    """dd into a volume in a container, and on the host into the same directory
    (the volume's, on the data root's filesystem: the same disk blocks' neighbourhood,
    which matters on a disk as uneven as a VM's); alternated, after a warm-up pair."""
    vol = vols.create("dd")
    source = vol["Mountpoint"]
    fs = filesystem(source)
    host, inside = [], []
    clocks: set[str] = set()
    for _ in range(runs + 1):
        os.sync()
        out = subprocess.run([HOST_BUSYBOX, "sh", "-c", dd_script(source)],
                             capture_output=True, text=True, timeout=600,
                             env=dict(os.environ, PATH=f"/bin:{os.environ.get('PATH', '')}"))
        if out.returncode != 0:
            raise Failed(f"dd on the host rc={out.returncode}: {out.stdout.strip()[-300:]}")
        host.append(DD_COUNT / seconds_of(out.stdout, "host", clocks))
        os.sync()
        out = t.cli("run", "--rm", "--network", "none", "--label", f"{LABEL}=1",
                    "-v", f"{vol['Name']}:/data", IMAGE, "sh", "-c", dd_script("/data"),
                    timeout=600)
        inside.append(DD_COUNT / seconds_of(out, "container", clocks))
    host, inside = host[1:], inside[1:]
    left = tree_size(source)[1]
    if left:
        raise Failed(f"{left} files left in the volume after dd")
    print(f"  dd: {median(host):.0f} MiB/s on the host, {median(inside):.0f} MiB/s in the "
          f"volume (medians)", flush=True)
    return {"host": host, "volume": inside, "fs": f"{fs[1]} on {fs[0]}",
            "clock": ", ".join(sorted(clocks))}


def figures(t: Target, tar: Path, expect: dict, args) -> dict:
    print(f"{t.name}: pid {t.pid}, socket {t.sock}", flush=True)
    r: dict = {}
    vols = Volumes(t)
    loaded = False
    try:
        loaded = ensure_image(t)
        t0 = time.perf_counter()
        import_image(t, tar)
        r["import"] = time.perf_counter() - t0
        print(f"  import of {DATA_IMAGE} ({tar.stat().st_size / MIB:.0f} MiB): "
              f"{r['import']:.2f} s", flush=True)
        record(r, "copyup", lambda: fig_copyup(t, vols, args.copyup_runs, expect))
        record(r, "start", lambda: fig_start(t, vols, args.runs))
        record(r, "dd", lambda: fig_dd(t, vols, args.dd_runs))
    except (Failed, OSError, ValueError, KeyError) as e:
        r["error"] = f"error: {e}"
        print(f"  ! {t.name}: {e}", flush=True)
    finally:
        handlers = (signal.signal(signal.SIGINT, signal.SIG_IGN),   # let the clean-up finish
                    signal.signal(signal.SIGTERM, signal.SIG_IGN))
        try:
            left = t.labelled()
            if left:
                t.remove(left, timeout=120)
        except (Failed, OSError) as e:
            print(f"  ! removing containers on {t.name}: {e}", flush=True)
        vols.cleanup()
        for ref in [DATA_IMAGE] + ([BUSYBOX_ID] if loaded else []):
            try:
                status, body = call(t.sock, "DELETE", f"/images/{ref}?force=1")
                if status not in (200, 404):
                    print(f"  ! removing image {ref} on {t.name}: {status} {body[:200]!r}",
                          flush=True)
            except OSError as e:
                print(f"  ! removing image {ref} on {t.name}: {e}", flush=True)
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
    return r


def on_term(signum, frame):
    raise KeyboardInterrupt


# --- Output ------------------------------------------------------------------------

def get(r: dict, key: str, sub: str | None = None):
    """The samples, or the error string of the figure (or of the whole daemon)."""
    v = r.get(key, r.get("error", "n/a"))
    if isinstance(v, dict) and sub is not None:
        return v.get(sub, "n/a")
    return v


def cell(v) -> str:
    if isinstance(v, str):
        return v if len(v) <= 60 else v[:57] + "…"
    return f"{ms(median(v))} / {ms(p95(v))}"


def derived(f, *vs) -> str:
    """f(*vs) unless one is an error string (then that string)."""
    for v in vs:
        if isinstance(v, str):
            return cell(v)
    return f(*vs)


def table(results: dict, expect: dict, args) -> None:
    names = list(results)
    mib = expect["bytes"] / MIB

    def rows_of(spec):
        return [[label] + [f(results[n]) for n in names] + [target]
                for label, f, target in spec]

    copy_diff = lambda r: derived(lambda a, b: ms(median(a) - median(b)),  # noqa: E731
                                  get(r, "copyup", "fresh"), get(r, "copyup", "full"))
    rate = lambda r: derived(lambda a, b: f"{mib / max(median(a) - median(b), 1e-9):.0f}",  # noqa: E731
                             get(r, "copyup", "fresh"), get(r, "copyup", "full"))
    print_table(
        f"copy-up of /data ({mib:.1f} MiB, {expect['files']} files) into a new volume: "
        f"create + start + wait + remove of `true`, ms (median / p95 of {args.copyup_runs})",
        ["figure", *names, "target"], rows_of([
            ("-v <empty volume>:/data (copy-up)", lambda r: cell(get(r, "copyup", "fresh")), ""),
            ("-v <full volume>:/data (nothing to copy)",
             lambda r: cell(get(r, "copyup", "full")), ""),
            ("copy-up (difference of medians), ms", copy_diff, ""),
            ("copy-up, MiB/s", rate, "≥ dockerd"),
        ]))

    def start_diff(per: int):
        return lambda r: derived(lambda a, b: ms((median(b) - median(a)) / per),
                                 get(r, "start", "none"), get(r, "start", "volumes"))
    print_table(
        f"run --rm true over the API, ms (median / p95 of {args.runs})",
        ["figure", *names, "target"], rows_of([
            ("no volume", lambda r: cell(get(r, "start", "none")), ""),
            (f"{VOLUMES} named volumes", lambda r: cell(get(r, "start", "volumes")), ""),
            (f"cost of the {VOLUMES} ({VOLUMES} volumes - none)", start_diff(1), ""),
            ("  per volume", start_diff(VOLUMES), ""),
        ]))

    def rate_of(key):
        return lambda r: derived(lambda v: f"{median(v):.0f} / {max(v):.0f}", get(r, "dd", key))

    def ratio(pick):
        return lambda r: derived(lambda h, v: f"{pick(v) / pick(h):.2f}",
                                 get(r, "dd", "host"), get(r, "dd", "volume"))
    print_table(
        f"busybox dd bs=1M count={DD_COUNT} conv=fsync, MiB/s (median / best of {args.dd_runs})",
        ["figure", *names, "target"], rows_of([
            ("filesystem of the volume", lambda r: cell(get(r, "dd", "fs")), ""),
            ("timed by", lambda r: cell(get(r, "dd", "clock")), ""),
            ("host, into the volume's directory", rate_of("host"), ""),
            ("container, into the volume at /data", rate_of("volume"), ""),
            ("ratio container / host, medians", ratio(median), "1.00 (no FUSE, no copy)"),
            ("ratio container / host, best runs", ratio(max), "1.00"),
        ]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="starts with and without volumes")
    parser.add_argument("--copyup-runs", type=int, default=7)
    parser.add_argument("--dd-runs", type=int, default=7)
    args = parser.parse_args()

    signal.signal(signal.SIGTERM, on_term)
    if not shutil.which("docker"):
        print("bench_volumes: the docker CLI is not on PATH; nothing measured")
        return 0
    results: dict = {}
    interrupted = False
    work = Path(tempfile.mkdtemp(prefix="dybench-volumes-"))
    try:
        tar = work / "data-image.tar"
        expect = build_image_tar(tar)
        with Daemon() as d:
            try:
                results["dockyard"] = figures(Target("dockyard", d.sock, d.pid), tar,
                                              expect, args)
            finally:
                handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
                kill_leftovers(d)
                signal.signal(signal.SIGINT, handler)
        ref = ref_socket()
        if ref:
            results["dockerd"] = figures(Target("dockerd", ref, peer_pid(ref)), tar, expect,
                                         args)
        else:
            print("dockerd: not available (set DOCKER_REF_HOST=unix:///path/docker.sock)",
                  flush=True)
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: containers, volumes and images removed, temporary daemon "
              "stopped", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if results:
        table(results, expect, args)
    write_samples(results, "volumes")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
