"""dockyard.linux.cgroups against the kernel: real cgroups, real processes.

Every test works under its own `/dockyard-test-<random>` cgroup and removes it
(in every hierarchy) in a finally, processes first. The host is hybrid: v1
controllers plus an empty cgroup2 at /sys/fs/cgroup/unified, where the v2
file protocol (procs, freeze, kill) is tested for real; the v2 controller
files (memory.max, cpu.max...) are tested against a fake tree at the end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from dockyard.linux.cgroups import (CgroupV1, CgroupV2, features, open_cgroup,
                                    shares_to_weight, swap_max)
from dockyard.linux.cgroups.v1 import v1_mountpoints
from dockyard.linux.cgroups.v2 import v2_mountpoint

UNIFIED = v2_mountpoint()
MiB = 1 << 20

requires_v1 = pytest.mark.skipif(not v1_mountpoints().get("memory"),
                                 reason="needs the cgroup v1 memory hierarchy")


def read(d: str, name: str) -> str:
    with open(os.path.join(d, name)) as f:
        return f.read().strip()


def cgroup_of(pid: int) -> str:
    with open(f"/proc/{pid}/cgroup") as f:
        return f.read()


@pytest.fixture
def prefix():
    """A unique top-level cgroup path; whatever is left under it is removed."""
    p = f"/dockyard-test-{uuid.uuid4().hex[:10]}"
    made: list = []
    yield p, made
    for cg in made:
        try:
            for pid in cg.pids():
                os.kill(pid, signal.SIGKILL)
            if cg.exists():
                if cg.state() == "frozen":
                    cg.thaw()
                cg.destroy()
        except OSError:
            pass
    # sweep: the prefix itself, in every hierarchy
    for top in {os.path.join(m, p.lstrip("/")) for m in v1_mountpoints().values()} | (
            {os.path.join(UNIFIED, p.lstrip("/"))} if UNIFIED else set()):
        for root, dirs, _ in os.walk(top, topdown=False):
            for d in dirs:
                os.rmdir(os.path.join(root, d))
        if os.path.isdir(top):
            os.rmdir(top)


@pytest.fixture
def procs():
    """Processes to kill and reap at the end."""
    started: list[subprocess.Popen] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)


def sleeper(procs) -> subprocess.Popen:
    p = subprocess.Popen(["sleep", "1000"])
    procs.append(p)
    return p


def test_open_cgroup_picks_the_hosts_version():
    cg = open_cgroup("/dockyard/x")
    f = features()
    assert isinstance(cg, CgroupV2 if f["version"] == 2 else CgroupV1)
    if isinstance(cg, CgroupV1):
        assert cg.dir("memory") == os.path.join(v1_mountpoints()["memory"], "dockyard/x")


# --- cgroup v1, the host's controllers ---------------------------------------

DEVICE_RULES = [
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
    {"allow": True, "type": "c", "major": 136, "minor": -1, "access": "rwm"},
]


@requires_v1
def test_v1_limits_read_back(prefix, procs):
    path, made = prefix
    cg = CgroupV1(path + "/c1")
    made.append(cg)
    cg.create({
        "memory": {"limit": 64 * MiB, "swap": 128 * MiB, "reservation": 32 * MiB,
                   "disableOOMKiller": False},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 20},
        "devices": DEVICE_RULES,
        "blockIO": {},
    })
    p = sleeper(procs)
    cg.add(p.pid)
    assert cg.pids() == [p.pid]
    assert f"memory:{path}/c1" in cgroup_of(p.pid)
    assert f"freezer:{path}/c1" in cgroup_of(p.pid)

    mem, cpu = cg.dir("memory"), cg.dir("cpu")
    assert read(mem, "memory.limit_in_bytes") == str(64 * MiB)
    if features()["swap_limit"]:
        assert read(mem, "memory.memsw.limit_in_bytes") == str(128 * MiB)
    assert read(mem, "memory.soft_limit_in_bytes") == str(32 * MiB)
    assert read(cpu, "cpu.shares") == "512"
    assert read(cpu, "cpu.cfs_quota_us") == "50000"
    assert read(cpu, "cpu.cfs_period_us") == "100000"
    assert read(cg.dir("cpuset"), "cpuset.cpus") == "0"
    assert read(cg.dir("pids"), "pids.max") == "20"
    allowed = read(cg.dir("devices"), "devices.list").splitlines()
    assert sorted(allowed) == sorted(["c 1:3 rwm", "c 1:5 rwm", "c 136:* rwm"])

    # grow, then shrink: memsw must stay >= memory at every write
    cg.update({"memory": {"limit": 256 * MiB, "swap": 512 * MiB}})
    assert read(mem, "memory.limit_in_bytes") == str(256 * MiB)
    cg.update({"memory": {"limit": 16 * MiB, "swap": 16 * MiB}, "pids": {"limit": -1},
               "cpu": {"quota": -1}})
    assert read(mem, "memory.limit_in_bytes") == str(16 * MiB)
    if features()["swap_limit"]:
        assert read(mem, "memory.memsw.limit_in_bytes") == str(16 * MiB)
    assert read(cg.dir("pids"), "pids.max") == "max"
    assert read(cpu, "cpu.cfs_quota_us") == "-1"

    stats = cg.stats()
    assert stats["pids"] == {"current": 1, "limit": None}
    assert stats["memory"]["limit"] == 16 * MiB
    # a process that just moved in brings no charge along (v1 doesn't migrate it)
    assert stats["memory"]["usage"] >= 0 and "rss" in stats["memory"]["stat"]
    assert stats["cpu"]["usage_total"] >= 0 and "throttling" in stats["cpu"]
    assert cg.oom_kill_count() == 0


@requires_v1
def test_v1_cpu_shares_clamped_by_the_kernel_is_an_error(prefix):
    path, made = prefix
    cg = CgroupV1(path + "/shares")
    made.append(cg)
    with pytest.raises(ValueError, match="the maximum allowed cpu-shares is 262144"):
        cg.create({"cpu": {"shares": 1_000_000}})


@requires_v1
def test_v1_cpuset_values_copied_into_new_parents(prefix, procs):
    path, made = prefix
    cg = CgroupV1(path + "/mid/leaf")
    made.append(cg)
    cg.create({})
    mnt = v1_mountpoints()["cpuset"]
    for d in (path, path + "/mid", path + "/mid/leaf"):
        full = os.path.join(mnt, d.lstrip("/"))
        assert read(full, "cpuset.cpus") == read(mnt, "cpuset.cpus")
        assert read(full, "cpuset.mems") == read(mnt, "cpuset.mems")
    p = sleeper(procs)
    cg.add(p.pid)        # ENOSPC if cpus/mems were empty
    assert f"cpuset:{path}/mid/leaf" in cgroup_of(p.pid)


@requires_v1
def test_v1_freeze_thaw(prefix, procs):
    path, made = prefix
    cg = CgroupV1(path + "/fz")
    made.append(cg)
    cg.create()
    p = sleeper(procs)
    cg.add(p.pid)
    assert cg.state() == "thawed"
    cg.freeze()
    assert cg.state() == "frozen"
    assert read(cg.dir("freezer"), "freezer.state") == "FROZEN"
    cg.thaw()
    assert cg.state() == "thawed"
    assert p.poll() is None


@requires_v1
def test_v1_kill_all_and_destroy(prefix, procs):
    path, made = prefix
    cg = CgroupV1(path + "/k")
    made.append(cg)
    cg.create()
    ps = [sleeper(procs) for _ in range(3)]
    for p in ps:
        cg.add(p.pid)
    assert sorted(cg.pids()) == sorted(p.pid for p in ps)

    # a paused container keeps a TERM pending and stays paused
    cg.freeze()
    cg.kill_all(signal.SIGTERM)
    assert cg.state() == "frozen"
    time.sleep(0.1)
    assert all(p.poll() is None for p in ps)
    cg.thaw()
    for p in ps:
        assert p.wait(timeout=10) == -signal.SIGTERM

    ps = [sleeper(procs) for _ in range(2)]
    for p in ps:
        cg.add(p.pid)
    cg.kill_all()
    for p in ps:
        assert p.wait(timeout=10) == -signal.SIGKILL
    cg.destroy()
    assert not cg.exists()
    assert all(not os.path.exists(d) for d in cg.dirs())


@requires_v1
def test_v1_destroy_waits_for_dying_tasks(prefix, procs):
    path, made = prefix
    cg = CgroupV1(path + "/busy")
    made.append(cg)
    cg.create()
    p = sleeper(procs)
    cg.add(p.pid)
    p.kill()             # not reaped yet: a zombie still holds the cgroup briefly
    cg.destroy()
    assert not cg.exists()


@requires_v1
def test_v1_oom_kill_is_counted(prefix, procs):
    path, made = prefix
    cg = CgroupV1(path + "/oom")
    made.append(cg)
    cg.create({"memory": {"limit": 32 * MiB, "swap": 32 * MiB}})
    # the process starts outside (python itself is charged elsewhere), joins,
    # then allocates and touches 256 MiB
    p = subprocess.Popen([sys.executable, "-c",
                          "import sys; sys.stdin.read(1); b = b'x' * (256 << 20)"],
                         stdin=subprocess.PIPE)
    procs.append(p)
    cg.add(p.pid)
    assert cg.oom_kill_count() == 0
    p.stdin.write(b"go")
    p.stdin.close()
    assert p.wait(timeout=60) == -signal.SIGKILL
    assert cg.oom_kill_count() >= 1
    assert cg.stats()["memory"]["max_usage"] > 16 * MiB


# --- cgroup v2 file protocol on the (controller-less) unified hierarchy -------

requires_unified = pytest.mark.skipif(UNIFIED is None, reason="no cgroup2 mount")


@requires_unified
def test_v2_procs_freeze_kill_on_unified(prefix, procs):
    path, made = prefix
    root_delegated = read(UNIFIED, "cgroup.subtree_control")
    cg = CgroupV2(path + "/c", mountpoint=UNIFIED)
    made.append(cg)
    cg.create({"memory": {"disableOOMKiller": False}, "blockIO": {}})
    # nothing to delegate here (v1 holds the controllers): the host is untouched
    assert read(UNIFIED, "cgroup.subtree_control") == root_delegated
    assert cg.exists()

    ps = [sleeper(procs) for _ in range(2)]
    for p in ps:
        cg.add(p.pid)
    assert sorted(cg.pids()) == sorted(p.pid for p in ps)
    assert f"0::{path}/c" in cgroup_of(ps[0].pid)

    cg.freeze()
    assert cg.state() == "frozen"
    assert "frozen 1" in read(cg.dir, "cgroup.events")
    cg.thaw()
    assert cg.state() == "thawed"

    cg.kill_all(signal.SIGTERM)       # freeze, signal each, thaw
    for p in ps:
        assert p.wait(timeout=10) == -signal.SIGTERM
    assert cg.state() == "thawed"

    p = sleeper(procs)
    cg.add(p.pid)
    cg.kill_all()                     # cgroup.kill when the kernel has it
    assert p.wait(timeout=10) == -signal.SIGKILL
    assert cg.oom_kill_count() == 0   # no memory controller here
    cg.destroy()
    assert not cg.exists()


@requires_unified
def test_v2_nested_and_destroy_removes_children(prefix, procs):
    path, made = prefix
    cg = CgroupV2(path + "/outer", mountpoint=UNIFIED)
    made.append(cg)
    cg.create()
    inner = CgroupV2(path + "/outer/inner", mountpoint=UNIFIED)
    inner.create()
    p = sleeper(procs)
    inner.add(p.pid)
    assert cg.pids() == [p.pid]           # pids() includes sub-cgroups
    cg.kill_all()
    p.wait(timeout=10)
    cg.destroy()
    assert not inner.exists() and not cg.exists()


# --- controller files against fake trees (no kernel involved) -----------------

def fake_v2(tmp_path, controllers="cpuset cpu io memory hugetlb pids"):
    root = tmp_path / "cg2"
    root.mkdir()
    (root / "cgroup.controllers").write_text(controllers + "\n")
    (root / "cgroup.subtree_control").write_text("")
    return root


def test_v2_create_delegates_and_writes_files(tmp_path):
    root = fake_v2(tmp_path)
    # the kernel would populate new dirs; here we pre-make them with their files
    for d in ("dockyard", "dockyard/abc"):
        (root / d).mkdir()
        (root / d / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
        (root / d / "cgroup.subtree_control").write_text("")
        for f in ("memory.max", "memory.swap.max", "memory.low", "cpu.weight", "cpu.max",
                  "cpuset.cpus", "pids.max", "io.weight"):
            (root / d / f).write_text("")
    cg = CgroupV2("/dockyard/abc", mountpoint=str(root))
    cg.create({"memory": {"limit": 64 * MiB, "swap": 128 * MiB, "reservation": 8 * MiB,
                          "swappiness": 10},
               "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1"},
               "pids": {"limit": 50}, "blockIO": {"weight": 500}})
    # hugetlb offered but not asked for: not delegated
    assert (root / "cgroup.subtree_control").read_text() == "+cpuset +cpu +io +memory +pids"
    assert (root / "dockyard/cgroup.subtree_control").read_text() == \
        "+cpuset +cpu +io +memory +pids"
    leaf = root / "dockyard/abc"
    assert (leaf / "cgroup.subtree_control").read_text() == ""
    assert (leaf / "memory.max").read_text() == str(64 * MiB)
    assert (leaf / "memory.swap.max").read_text() == str(64 * MiB)   # swap - memory
    assert (leaf / "memory.low").read_text() == str(8 * MiB)
    assert (leaf / "cpu.weight").read_text() == "39"
    assert (leaf / "cpu.max").read_text() == "50000 100000"
    assert (leaf / "cpuset.cpus").read_text() == "0-1"
    assert (leaf / "pids.max").read_text() == "50"
    assert (leaf / "io.weight").read_text() == str(1 + (500 - 10) * 9999 // 990)
    assert any("swappiness" in w for w in cg.warnings)


def test_v2_unlimited_values(tmp_path):
    root = fake_v2(tmp_path)
    (root / "c").mkdir()
    for f in ("memory.max", "memory.swap.max", "cpu.max", "pids.max"):
        (root / "c" / f).write_text("")
    cg = CgroupV2("/c", mountpoint=str(root))
    cg.update({"memory": {"limit": -1}, "cpu": {"quota": -1}, "pids": {"limit": -1}})
    assert (root / "c/memory.max").read_text() == "max"
    assert (root / "c/memory.swap.max").read_text() == "max"
    assert (root / "c/cpu.max").read_text() == "max 100000"
    assert (root / "c/pids.max").read_text() == "max"
    (root / "c/memory.swap.max").write_text("")
    cg.update({"memory": {"limit": 32 * MiB, "swap": 32 * MiB}})
    assert (root / "c/memory.swap.max").read_text() == "0"   # swap == memory: no swap


def test_v2_conversions():
    assert shares_to_weight(0) == 0
    assert shares_to_weight(2) == 1
    assert shares_to_weight(1024) == 39
    assert shares_to_weight(262144) == 10000
    assert swap_max(0, 64) == 0 and swap_max(-1, 64) == -1 and swap_max(0, -1) == -1
    assert swap_max(128, 64) == 64
    with pytest.raises(ValueError, match="memory\\+swap limit should be >= memory limit"):
        swap_max(32, 64)
    with pytest.raises(ValueError, match="without memory limit"):
        swap_max(64, 0)


def test_v2_stats_and_oom_from_files(tmp_path):
    root = fake_v2(tmp_path)
    c = root / "c"
    c.mkdir()
    (c / "cpu.stat").write_text("usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n"
                                "nr_periods 3\nnr_throttled 1\nthrottled_usec 7\n")
    (c / "memory.current").write_text("4096\n")
    (c / "memory.max").write_text("max\n")
    (c / "memory.stat").write_text("anon 1024\nfile 2048\n")
    (c / "memory.events").write_text("low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n")
    (c / "pids.current").write_text("3\n")
    (c / "pids.max").write_text("50\n")
    cg = CgroupV2("/c", mountpoint=str(root))
    s = cg.stats()
    assert s["cpu"]["usage_total"] == 1_500_000 and s["cpu"]["usage_kernel"] == 500_000
    assert s["cpu"]["throttling"] == {"periods": 3, "throttled_periods": 1,
                                      "throttled_time": 7000}
    assert s["memory"] == {"usage": 4096, "max_usage": None, "limit": None, "failcnt": 2,
                           "stat": {"anon": 1024, "file": 2048}}
    assert s["pids"] == {"current": 3, "limit": 50}
    assert cg.oom_kill_count() == 1


def fake_v1(tmp_path, memsw=True):
    mounts = {}
    for c in ("memory", "cpu", "cpuset", "pids", "devices", "freezer"):
        d = tmp_path / c / "x"
        d.mkdir(parents=True)
        mounts[c] = str(tmp_path / c)
    files = {"memory": ["memory.limit_in_bytes", "memory.soft_limit_in_bytes",
                        "memory.oom_control", "memory.swappiness"],
             "cpu": ["cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us"],
             "pids": ["pids.max"], "devices": ["devices.allow", "devices.deny"]}
    if memsw:
        files["memory"].append("memory.memsw.limit_in_bytes")
    for c, names in files.items():
        for n in names:
            (tmp_path / c / "x" / n).write_text("")
    (tmp_path / "memory/x/memory.limit_in_bytes").write_text("9223372036854771712\n")
    return mounts


def test_v1_files_on_a_fake_tree(tmp_path):
    mounts = fake_v1(tmp_path)
    cg = CgroupV1("/x", mountpoints=mounts)
    assert cg.dir("memory") == str(tmp_path / "memory/x")
    cg.update({"memory": {"limit": 64 * MiB, "swap": 128 * MiB, "reservation": MiB,
                          "disableOOMKiller": True, "swappiness": 0},
               "pids": {"limit": 10}})
    m = tmp_path / "memory/x"
    assert (m / "memory.limit_in_bytes").read_text().startswith(str(64 * MiB))
    assert (m / "memory.memsw.limit_in_bytes").read_text() == str(128 * MiB)
    assert (m / "memory.soft_limit_in_bytes").read_text() == str(MiB)
    assert (m / "memory.oom_control").read_text() == "1"
    assert (m / "memory.swappiness").read_text() == "0"
    assert (tmp_path / "pids/x/pids.max").read_text() == "10"


def test_v1_without_swap_accounting_warns_like_docker(tmp_path):
    cg = CgroupV1("/x", mountpoints=fake_v1(tmp_path, memsw=False))
    cg.update({"memory": {"limit": 64 * MiB, "swap": 128 * MiB}})
    assert cg.warnings == ["Your kernel does not support swap limit capabilities or the "
                           "cgroup is not mounted. Memory limited without swap."]
    assert not (tmp_path / "memory/x/memory.memsw.limit_in_bytes").exists()


def test_v1_device_rules_in_order(tmp_path):
    mounts = fake_v1(tmp_path)
    # record every write: the fake files only keep the last one
    written = []
    import dockyard.linux.cgroups.v1 as v1mod
    real = v1mod.write_file
    v1mod.write_file = lambda d, n, v: (written.append((n, str(v))), real(d, n, v))
    try:
        CgroupV1("/x", mountpoints=mounts).update({"devices": DEVICE_RULES})
    finally:
        v1mod.write_file = real
    assert written == [("devices.deny", "a *:* rwm"), ("devices.allow", "c 1:3 rwm"),
                       ("devices.allow", "c 1:5 rwm"), ("devices.allow", "c 136:* rwm")]
