"""cgroup limits from `docker run` flags, read back from inside the container.

Each flag is set with the docker CLI, then the container itself prints its
cgroup's files (docker's cgroup namespace on v1 shows the container's own
cgroups at /sys/fs/cgroup/<controller>; on v2 the unified files). The values
are the ones dockerd and runc write for the same flags. OOM kills are noticed
(`State.OOMKilled`, the `oom` event before `die`).
"""

from __future__ import annotations

import json
import os
import threading

import pytest

from harness import wait_for
from test_containers_lifecycle import dy  # noqa: F401 - the fixture, shared

IMAGE = "busybox:local"
V2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")


def read_back(dy, flags: list[str], files: list[str]) -> tuple[list[str], dict]:
    """The files' first lines as the container sees them, and its HostConfig."""
    script = "; ".join(f"cat {f}" for f in files)
    r = dy.docker("run", "--name", "limits", "--network", "none", *flags, IMAGE, "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    hc = dy.api().get("/containers/limits/json")["HostConfig"]
    dy.docker("rm", "limits", check=True)
    return r.stdout.splitlines(), hc


@pytest.mark.skipif(V2, reason="cgroup v1 file names")
def test_memory_limits_v1(dy):
    out, hc = read_back(dy, ["--memory", "64m", "--memory-reservation", "32m",
                             "--oom-kill-disable"],
                        ["/sys/fs/cgroup/memory/memory.limit_in_bytes",
                         "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes",
                         "/sys/fs/cgroup/memory/memory.soft_limit_in_bytes",
                         "/sys/fs/cgroup/memory/memory.oom_control"])
    assert out[:4] == [str(64 << 20), str(128 << 20), str(32 << 20), "oom_kill_disable 1"]
    assert (hc["Memory"], hc["MemorySwap"], hc["MemoryReservation"], hc["OomKillDisable"]) == \
        (64 << 20, 128 << 20, 32 << 20, True)  # swap: twice the memory, as dockerd stores it
    out, hc = read_back(dy, ["--memory", "64m", "--memory-swap", "96m"],
                        ["/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes",
                         "/sys/fs/cgroup/memory/memory.oom_control"])
    assert out[:2] == [str(96 << 20), "oom_kill_disable 0"] and hc["MemorySwap"] == 96 << 20
    out, hc = read_back(dy, ["--memory", "64m", "--memory-swap", "-1"],
                        ["/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"])
    assert int(out[0]) > 1 << 60 and hc["MemorySwap"] == -1  # unlimited


@pytest.mark.skipif(V2, reason="cgroup v1 file names")
def test_cpu_and_pids_limits_v1(dy):
    out, hc = read_back(dy, ["--cpus", "1.5", "--cpu-shares", "512", "--cpuset-cpus", "0",
                             "--pids-limit", "50"],
                        ["/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us",
                         "/sys/fs/cgroup/cpu/cpu.shares", "/sys/fs/cgroup/cpuset/cpuset.cpus",
                         "/sys/fs/cgroup/pids/pids.max"])
    assert out == ["150000", "100000", "512", "0", "50"]
    assert (hc["NanoCpus"], hc["CpuShares"], hc["CpusetCpus"], hc["PidsLimit"]) == \
        (1500000000, 512, "0", 50)
    out, hc = read_back(dy, ["--cpu-quota", "25000", "--cpu-period", "50000"],
                        ["/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us",
                         "/sys/fs/cgroup/pids/pids.max"])
    assert out == ["25000", "50000", "max"]
    assert (hc["CpuQuota"], hc["CpuPeriod"], hc["PidsLimit"]) == (25000, 50000, None)


@pytest.mark.skipif(not V2, reason="cgroup v2 file names")
def test_limits_v2(dy):
    out, hc = read_back(dy, ["--memory", "64m", "--memory-reservation", "32m", "--cpus", "1.5",
                             "--cpu-shares", "512", "--cpuset-cpus", "0", "--pids-limit", "50"],
                        ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.swap.max",
                         "/sys/fs/cgroup/memory.low", "/sys/fs/cgroup/cpu.max",
                         "/sys/fs/cgroup/cpuset.cpus", "/sys/fs/cgroup/pids.max"])
    assert out == [str(64 << 20), str(64 << 20), str(32 << 20), "150000 100000", "0", "50"]
    assert hc["MemorySwap"] == 128 << 20


def test_pids_limit_is_enforced(dy):
    r = dy.docker("run", "--rm", "--network", "none", "--pids-limit", "4", IMAGE, "sh", "-c",
                  "for i in 1 2 3 4 5 6 7 8; do sleep 10 & done 2>&1; echo started")
    assert "can't fork" in r.stdout + r.stderr, (r.stdout, r.stderr)


def test_oom_kill_is_reported(dy):
    events = []
    api = dy.api()
    stream = api.request("GET", "/events", query={"filters": json.dumps(
        {"type": ["container"], "event": ["oom", "die"]})})

    def collect():
        buf = b""
        while len(events) < 2 and (chunk := stream.read1(65536)):
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                events.append(json.loads(line))

    reader = threading.Thread(target=collect, daemon=True)
    reader.start()
    # doubling a shell variable until the 16 MiB (no swap) are used up
    r = dy.docker("run", "--name", "hog", "--network", "none", "--memory", "16m",
                  "--memory-swap", "16m", IMAGE, "sh", "-c", "x=0123456789; while true; do x=$x$x; done",
                  timeout=120)
    assert r.returncode == 137, r.stderr
    state = api.get("/containers/hog/json")["State"]
    assert (state["OOMKilled"], state["ExitCode"], state["Status"]) == (True, 137, "exited")
    reader.join(timeout=10)
    assert [e["Action"] for e in events] == ["oom", "die"]
    assert events[1]["Actor"]["Attributes"]["exitCode"] == "137"
    # within its limit a container is not OOM killed
    r = dy.docker("run", "--name", "small", "--network", "none", "--memory", "16m", IMAGE, "true")
    assert r.returncode == 0
    assert api.get("/containers/small/json")["State"]["OOMKilled"] is False


def test_limits_are_checked_before_anything_is_made(dy):
    for flags, message in [
            (["--memory", "1m"], "Minimum memory limit allowed is 6MB"),
            (["--memory-reservation", "1m"], "Minimum memory reservation allowed is 6MB"),
            (["--memory-swap", "64m"], "You should always set the Memory limit when using "
                                       "Memoryswap limit, see usage"),
            (["--cpu-quota", "500"], "CPU cfs quota can not be less than 1ms (i.e. 1000)"),
            (["--cpus", "1", "--cpu-quota", "50000"],
             "Conflicting options: Nano CPUs and CPU Quota cannot both be set")]:
        r = dy.docker("run", "--rm", "--network", "none", *flags, IMAGE, "true")
        assert r.returncode == 125
        assert f"Error response from daemon: {message}\n" in r.stderr, r.stderr
    assert dy.docker("ps", "-aq").stdout == ""
