"""cgroup v1: one hierarchy per controller, one directory per hierarchy.

A container's cgroup is the directory `<mountpoint><path>` in every mounted
hierarchy (cpu, cpuacct, cpuset, memory, devices, freezer, blkio, pids,
name=systemd...); co-mounted controllers (cpu,cpuacct) share a directory.
Settings go to their controller's file, as runc's cgroupfs driver writes them:

    memory.limit / swap        memory.limit_in_bytes, memory.memsw.limit_in_bytes
                               (memsw = memory + swap; written in whichever order
                               keeps memsw >= memory at every step; ignored with a
                               warning when swap accounting is off, as docker does)
    memory.reservation         memory.soft_limit_in_bytes
    memory.disableOOMKiller    memory.oom_control <- 1
    memory.swappiness          memory.swappiness
    cpu.shares                 cpu.shares (read back: the kernel clamps to 2..262144)
    cpu.quota / period         cpu.cfs_quota_us, cpu.cfs_period_us
    cpu.cpus / mems            cpuset.cpus, cpuset.mems
    pids.limit                 pids.max ("max" for -1)
    devices                    devices.allow / devices.deny, rule by rule, in order
    blockIO                    blkio.weight (or blkio.bfq.weight), blkio.throttle.*
    hugepageLimits             hugetlb.<size>.limit_in_bytes

A new cpuset cgroup starts with empty cpuset.cpus/mems, and no task can join
it until both are set (ENOSPC), so every directory create() makes in the
cpuset hierarchy gets its parent's values first.
"""

from __future__ import annotations

import errno
import os
import signal
import time

from dockyard.linux.cgroups._base import (Cgroup, clean_path, device_rule_line, kill_pids,
                                          mountinfo, own_cgroup, read_file, read_int,
                                          read_keyed, read_procs, rmdir_tree, write_file)

# memory.limit_in_bytes reads as PAGE_COUNTER_MAX rounded to pages when unlimited
_UNLIMITED = 1 << 62


def _known_controllers() -> set[str]:
    try:
        with open("/proc/cgroups") as f:
            return {line.split()[0] for line in f if line.strip() and not line.startswith("#")}
    except OSError:
        return {"cpuset", "cpu", "cpuacct", "blkio", "memory", "devices", "freezer", "net_cls",
                "perf_event", "net_prio", "hugetlb", "pids", "rdma", "misc"}


# blkio's per-device counters, by the key the stats give them. The CFQ/BFQ
# scheduler's recursive files come first; a cgroup whose devices use neither
# (or a kernel without CFQ) has only the throttle layer's two counters - the
# order containerd's cgroups package reads them in, which dockerd reports.
_BLKIO_SCHEDULER_FILES = (
    ("sectors_recursive", "blkio.sectors_recursive"),
    ("io_service_bytes_recursive", "blkio.io_service_bytes_recursive"),
    ("io_serviced_recursive", "blkio.io_serviced_recursive"),
    ("io_queue_recursive", "blkio.io_queued_recursive"),
    ("io_service_time_recursive", "blkio.io_service_time_recursive"),
    ("io_wait_time_recursive", "blkio.io_wait_time_recursive"),
    ("io_merged_recursive", "blkio.io_merged_recursive"),
    ("io_time_recursive", "blkio.time_recursive"),
)
_BLKIO_THROTTLE_FILES = (
    ("io_serviced_recursive", "blkio.throttle.io_serviced"),
    ("io_service_bytes_recursive", "blkio.throttle.io_service_bytes"),
)


def _blkio_entries(d: str, name: str) -> list[dict]:
    """"8:0 Read 4096" lines (or "8:0 4096" ones) as {"major", "minor", "op", "value"};
    the "Total N" summary line is left out."""
    try:
        text = read_file(d, name)
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        fields = line.replace(":", " ").split()
        if len(fields) < 3:
            continue
        op, value = (fields[2], fields[3]) if len(fields) >= 4 else ("", fields[2])
        out.append({"major": int(fields[0]), "minor": int(fields[1]), "op": op,
                    "value": int(value)})
    return out


def _blkio_stats(d: str) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {key: [] for key, _ in _BLKIO_SCHEDULER_FILES}
    if os.path.exists(os.path.join(d, "blkio.io_serviced_recursive")):
        for key, name in _BLKIO_SCHEDULER_FILES:
            out[key] = _blkio_entries(d, name)
        if any(out.values()):
            return out
    for key, name in _BLKIO_THROTTLE_FILES:
        out[key] = _blkio_entries(d, name)
    return out


def v1_mountpoints() -> dict[str, str]:
    """{controller or "name=x": mountpoint} of the mounted v1 hierarchies.

    A v1 mount's super options mix controller names ("cpu,cpuacct"), a
    "name=systemd" for named hierarchies, and flags (clone_children, xattr,
    release_agent=...); /proc/cgroups says which are controllers.
    """
    known = _known_controllers()
    out: dict[str, str] = {}
    for mnt, fstype, opts in mountinfo():
        if fstype != "cgroup":
            continue
        for opt in opts:
            if opt in known or opt.startswith("name="):
                out.setdefault(opt, mnt)
    return out


class CgroupV1(Cgroup):
    """`path` in every v1 hierarchy in `mountpoints` (default: the mounted ones)."""

    def __init__(self, path: str, mountpoints: dict[str, str] | None = None) -> None:
        super().__init__()
        self.path = path
        self.mountpoints = dict(mountpoints if mountpoints is not None else v1_mountpoints())
        self._dirs: dict[str, str] = {}
        for controller, mnt in self.mountpoints.items():
            rel = path
            if not path.startswith("/"):
                rel = os.path.join(own_cgroup(controller) or "/", path)
            self._dirs[controller] = os.path.normpath(os.path.join(mnt, clean_path(rel)))

    def dir(self, controller: str) -> str | None:
        """This cgroup's directory in `controller`'s hierarchy (None: not mounted)."""
        return self._dirs.get(controller)

    def dirs(self) -> list[str]:
        """One directory per hierarchy."""
        return list(dict.fromkeys(self._dirs.values()))

    # -- lifecycle ----------------------------------------------------------

    def create(self, resources: dict | None = None) -> None:
        cpuset = self.dir("cpuset")
        for d in self.dirs():
            if d == cpuset:
                self._make_cpuset_dirs(self.mountpoints["cpuset"], d)
            else:
                os.makedirs(d, exist_ok=True)
        if resources:
            self.update(resources)

    def _make_cpuset_dirs(self, mnt: str, target: str) -> None:
        parent = os.path.normpath(mnt)
        rel = os.path.relpath(target, parent)
        for part in ([] if rel == "." else rel.split("/")):
            d = os.path.join(parent, part)
            try:
                os.mkdir(d)
            except FileExistsError:
                pass
            for name in ("cpuset.cpus", "cpuset.mems"):
                if not read_file(d, name).strip():
                    write_file(d, name, read_file(parent, name).strip())
            parent = d

    def exists(self) -> bool:
        return any(os.path.isdir(d) for d in self.dirs())

    def add(self, pid: int) -> None:
        for d in self.dirs():
            write_file(d, "cgroup.procs", pid)

    def pids(self) -> list[int]:
        for controller in ("freezer", "pids", "memory", "devices", "cpu"):
            d = self.dir(controller)
            if d and os.path.isdir(d):
                return read_procs(d)
        for d in self.dirs():
            if os.path.isdir(d):
                return read_procs(d)
        return []

    def destroy(self) -> None:
        errors = []
        for d in self.dirs():
            try:
                rmdir_tree(d)
            except OSError as e:
                errors.append(e)
        if errors:
            raise errors[0]

    # -- freezer ------------------------------------------------------------

    def _freezer(self) -> str:
        d = self.dir("freezer")
        if d is None:
            raise OSError(errno.ENOTSUP, "freezer cgroup is not mounted")
        return d

    def freeze(self) -> None:
        d = self._freezer()
        # A v1 freeze can stay in FREEZING while tasks keep forking: re-ask,
        # and now and then thaw and start over (runc's empirical recipe).
        for i in range(1000):
            if i % 50 == 49:
                write_file(d, "freezer.state", "THAWED")
            write_file(d, "freezer.state", "FROZEN")
            state = read_file(d, "freezer.state").strip()
            if state == "FROZEN":
                return
            if state != "FREEZING":
                raise OSError(errno.EIO, f"unexpected state {state} while freezing")
            if i % 10 == 9:
                time.sleep(0.01)
        write_file(d, "freezer.state", "THAWED")
        raise OSError(errno.ETIMEDOUT, f"cgroup {self.path}: unable to freeze")

    def thaw(self) -> None:
        d = self._freezer()
        write_file(d, "freezer.state", "THAWED")
        self._wait(lambda: read_file(d, "freezer.state").strip() == "THAWED", "thaw")

    def state(self) -> str:
        d = self._freezer()
        return "frozen" if read_file(d, "freezer.state").strip() == "FROZEN" else "thawed"

    def kill_all(self, sig: int = signal.SIGKILL) -> None:
        if self.dir("freezer") is None:
            kill_pids(self.pids(), sig)    # best effort without a freezer
            return
        super().kill_all(sig)

    # -- accounting ---------------------------------------------------------

    def oom_kill_count(self) -> int:
        d = self.dir("memory")
        if d is None:
            return 0
        return read_keyed(d, "memory.oom_control").get("oom_kill", 0)

    def stats(self) -> dict:
        out: dict = {}
        d = self.dir("cpuacct")
        if d and os.path.isdir(d):
            tick = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
            st = read_keyed(d, "cpuacct.stat")
            try:
                percpu = [int(x) for x in read_file(d, "cpuacct.usage_percpu").split()]
            except FileNotFoundError:
                percpu = []
            out["cpu"] = {"usage_total": read_int(d, "cpuacct.usage"),
                          "usage_user": st.get("user", 0) * tick,
                          "usage_kernel": st.get("system", 0) * tick,
                          "percpu": percpu}
        d = self.dir("cpu")
        if d and os.path.isdir(d):
            st = read_keyed(d, "cpu.stat")
            out.setdefault("cpu", {})["throttling"] = {
                "periods": st.get("nr_periods", 0),
                "throttled_periods": st.get("nr_throttled", 0),
                "throttled_time": st.get("throttled_time", 0)}
        d = self.dir("memory")
        if d and os.path.isdir(d):
            limit = read_int(d, "memory.limit_in_bytes")
            out["memory"] = {"usage": read_int(d, "memory.usage_in_bytes"),
                             "max_usage": read_int(d, "memory.max_usage_in_bytes"),
                             "limit": None if limit is None or limit >= _UNLIMITED else limit,
                             "failcnt": read_int(d, "memory.failcnt"),
                             "stat": read_keyed(d, "memory.stat")}
        d = self.dir("pids")
        if d and os.path.isdir(d):
            out["pids"] = {"current": read_int(d, "pids.current"),
                           "limit": read_int(d, "pids.max")}
        d = self.dir("blkio")
        if d and os.path.isdir(d):
            out["blkio"] = _blkio_stats(d)
        return out

    # -- resources ----------------------------------------------------------

    def update(self, resources: dict) -> None:
        r = resources or {}
        if r.get("memory"):
            self._set_memory(r["memory"])
        if r.get("cpu"):
            self._set_cpu(r["cpu"])
        if r.get("pids") and r["pids"].get("limit"):
            limit = r["pids"]["limit"]
            self._write("pids", "pids.max", "max" if limit < 0 else limit)
        if r.get("devices"):
            d = self._need("devices")
            for rule in r["devices"]:
                write_file(d, "devices.allow" if rule.get("allow") else "devices.deny",
                           device_rule_line(rule))
        if r.get("blockIO"):
            self._set_blkio(r["blockIO"])
        for h in r.get("hugepageLimits") or []:
            self._write("hugetlb", f"hugetlb.{h['pageSize']}.limit_in_bytes", h["limit"])

    def _need(self, controller: str) -> str:
        d = self.dir(controller)
        if d is None:
            raise OSError(errno.ENOTSUP, f"cgroup controller {controller!r} is not mounted")
        return d

    def _write(self, controller: str, name: str, value) -> None:
        write_file(self._need(controller), name, value)

    def _set_memory(self, m: dict) -> None:
        d = self._need("memory")
        limit, swap = m.get("limit") or 0, m.get("swap") or 0
        has_memsw = os.path.exists(os.path.join(d, "memory.memsw.limit_in_bytes"))
        if limit == -1 and swap == 0 and has_memsw:
            swap = -1         # unlimited memory: unlimited memory+swap too
        if swap and not has_memsw:
            if swap != -1:
                self.warn("Your kernel does not support swap limit capabilities or the "
                          "cgroup is not mounted. Memory limited without swap.")
            swap = 0

        def set_limit():
            if not limit:
                return
            try:
                write_file(d, "memory.limit_in_bytes", limit)
            except OSError as e:
                if e.errno != errno.EBUSY:
                    raise
                raise OSError(errno.EBUSY, f"unable to set memory limit to {limit} (current "
                              f"usage: {read_int(d, 'memory.usage_in_bytes')}, peak usage: "
                              f"{read_int(d, 'memory.max_usage_in_bytes')})") from None

        def set_swap():
            if swap:
                write_file(d, "memory.memsw.limit_in_bytes", swap)

        # the kernel keeps memsw >= memory at every write: raise memsw first when
        # growing, lower memory first when shrinking
        current = read_int(d, "memory.limit_in_bytes") or 0
        if limit and swap and (swap == -1 or current < swap):
            set_swap()
            set_limit()
        else:
            set_limit()
            set_swap()
        if m.get("reservation"):
            write_file(d, "memory.soft_limit_in_bytes", m["reservation"])
        if m.get("disableOOMKiller"):
            write_file(d, "memory.oom_control", 1)
        sw = m.get("swappiness")
        if sw is not None and sw != -1:
            if not 0 <= sw <= 100:
                raise ValueError(f"invalid memory swappiness value: {sw} (valid range is 0-100)")
            write_file(d, "memory.swappiness", sw)

    def _set_cpu(self, c: dict) -> None:
        if c.get("shares"):
            d = self._need("cpu")
            write_file(d, "cpu.shares", c["shares"])
            got = read_int(d, "cpu.shares")
            if got is not None and c["shares"] > got:
                raise ValueError(f"the maximum allowed cpu-shares is {got}")
            if got is not None and c["shares"] < got:
                raise ValueError(f"the minimum allowed cpu-shares is {got}")
        period, quota = c.get("period") or 0, c.get("quota") or 0
        if period or quota:
            d = self._need("cpu")
            pending = None
            if period:
                try:
                    write_file(d, "cpu.cfs_period_us", period)
                except OSError as e:
                    # a shorter period can be refused until the quota fits it
                    if e.errno != errno.EINVAL or not quota:
                        raise
                    pending = period
            if quota:
                write_file(d, "cpu.cfs_quota_us", quota)
                if pending:
                    write_file(d, "cpu.cfs_period_us", pending)
        if c.get("realtimePeriod"):
            self._write("cpu", "cpu.rt_period_us", c["realtimePeriod"])
        if c.get("realtimeRuntime"):
            self._write("cpu", "cpu.rt_runtime_us", c["realtimeRuntime"])
        if c.get("cpus"):
            self._write("cpuset", "cpuset.cpus", c["cpus"])
        if c.get("mems"):
            self._write("cpuset", "cpuset.mems", c["mems"])

    def _set_blkio(self, b: dict) -> None:
        d = self.dir("blkio")
        if d is None:
            if any(b.values()):
                self.warn("blkio cgroup is not mounted: block I/O settings ignored")
            return
        weight_file = next((f for f in ("blkio.weight", "blkio.bfq.weight")
                            if os.path.exists(os.path.join(d, f))), None)
        if b.get("weight") or b.get("weightDevice"):
            if weight_file is None:
                self.warn("Your kernel does not support Block I/O weight or the cgroup is "
                          "not mounted. Weight discarded.")
            else:
                if b.get("weight"):
                    write_file(d, weight_file, b["weight"])
                for wd in b.get("weightDevice") or []:
                    write_file(d, weight_file.replace("weight", "weight_device"),
                               f"{wd['major']}:{wd['minor']} {wd['weight']}")
        if b.get("leafWeight"):
            write_file(d, "blkio.leaf_weight", b["leafWeight"])
        for key, name in (("throttleReadBpsDevice", "read_bps_device"),
                          ("throttleWriteBpsDevice", "write_bps_device"),
                          ("throttleReadIOPSDevice", "read_iops_device"),
                          ("throttleWriteIOPSDevice", "write_iops_device")):
            for t in b.get(key) or []:
                write_file(d, f"blkio.throttle.{name}", f"{t['major']}:{t['minor']} {t['rate']}")
