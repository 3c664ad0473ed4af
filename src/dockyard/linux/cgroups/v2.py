"""cgroup v2: one unified hierarchy, controllers delegated top-down.

A controller's files (memory.max, cpu.max, pids.max...) exist in a cgroup only
when its parent lists the controller in cgroup.subtree_control, and a parent
can list only what it has in cgroup.controllers. So create() walks from the
mount point down to the new cgroup's parent writing "+memory +pids ..." into
each subtree_control - only the controllers we set and only where missing, so
an already delegated tree is left untouched. (A cgroup with processes of its
own can't delegate: "no internal processes".)

OCI resources map to files as runc's fs2 driver does:

    memory.limit        memory.max ("max" for -1)
    memory.swap         memory.swap.max = swap - limit (OCI swap is memory+swap)
    memory.reservation  memory.low
    cpu.shares          cpu.weight = 1 + ((shares - 2) * 9999) // 262142
    cpu.quota, period   cpu.max = "<quota|max> <period|100000>"
    cpu.cpus, mems      cpuset.cpus, cpuset.mems
    pids.limit          pids.max
    blockIO.weight      io.bfq.weight or io.weight (10..1000 scaled to 1..10000)
    throttle*Device     io.max "maj:min rbps=N" (wbps, riops, wiops)
    hugepageLimits      hugetlb.<size>.max
    unified             written verbatim: {"memory.high": "1G"}

Freezing is cgroup.freeze + waiting for "frozen 1" in cgroup.events; killing
everything is one write to cgroup.kill (Linux 5.14+). The OOM kill count is
memory.events' oom_kill. v2 has no devices controller: device rules need an
eBPF program (not done yet; rules other than allow-all are logged as ignored),
and no memory.swappiness / oom_control (ignored with a warning, as runc).
"""

from __future__ import annotations

import os
import signal

from dockyard.linux.cgroups._base import (Cgroup, clean_path, kill_pids, mountinfo,
                                          own_cgroup, read_file, read_int, read_keyed,
                                          read_procs, rmdir_tree, write_file)

# Controllers create() delegates when the host offers them; others (hugetlb,
# misc, rdma) only when the resources ask for them.
_CORE = ("cpuset", "cpu", "io", "memory", "pids")


def v2_mountpoint() -> str | None:
    """Where the unified hierarchy is mounted: /sys/fs/cgroup on a v2 host,
    /sys/fs/cgroup/unified on a hybrid one; None if nowhere."""
    found = [mnt for mnt, fstype, _ in mountinfo() if fstype == "cgroup2"]
    if "/sys/fs/cgroup" in found:
        return "/sys/fs/cgroup"
    return found[0] if found else None


def shares_to_weight(shares: int) -> int:
    """cpu.shares (2..262144) -> cpu.weight (1..10000), runc's conversion."""
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_weight_to_io_weight(weight: int) -> int:
    """blkio.weight (10..1000) -> io.weight (1..10000), runc's conversion."""
    if weight == 0:
        return 0
    return 1 + (weight - 10) * 9999 // 990


def swap_max(swap: int, limit: int) -> int:
    """OCI memory+swap -> memory.swap.max (runc's ConvertMemorySwapToCgroupV2Value).

    0 = leave alone, -1 = "max".
    """
    if limit == -1 and swap == 0:
        return -1            # unlimited memory: unlimited swap too
    if swap in (-1, 0):
        return swap
    if limit in (0, -1):
        raise ValueError("unable to set swap limit without memory limit")
    if limit < 0:
        raise ValueError(f"invalid memory value: {limit}")
    if swap < limit:
        raise ValueError("memory+swap limit should be >= memory limit")
    return swap - limit


def _io_service_bytes(d: str) -> list[dict]:
    """io.stat ("8:0 rbytes=N wbytes=N rios=N ...") as blkio's byte counters:
    a "read" and a "write" entry per device, as dockerd reports v2's I/O."""
    out = []
    for line in read_file(d, "io.stat").splitlines():
        device, *pairs = line.split()
        major, _, minor = device.partition(":")
        counters = dict(p.split("=", 1) for p in pairs if "=" in p)
        for op, key in (("read", "rbytes"), ("write", "wbytes")):
            out.append({"major": int(major), "minor": int(minor), "op": op,
                        "value": int(counters.get(key, 0))})
    return out


def _num(v: int) -> str:
    return "max" if v == -1 else str(v)


class CgroupV2(Cgroup):
    """`path` in the unified hierarchy mounted at `mountpoint` (default: found)."""

    def __init__(self, path: str, mountpoint: str | None = None) -> None:
        super().__init__()
        self.path = path
        mnt = mountpoint or v2_mountpoint()
        if mnt is None:
            raise FileNotFoundError("no cgroup2 filesystem is mounted")
        self.mountpoint = os.path.normpath(mnt)
        rel = path if path.startswith("/") else os.path.join(own_cgroup("") or "/", path)
        self.dir = os.path.normpath(os.path.join(self.mountpoint, clean_path(rel)))

    # -- lifecycle ----------------------------------------------------------

    def create(self, resources: dict | None = None) -> None:
        wanted = set(_CORE)
        r = resources or {}
        if r.get("hugepageLimits"):
            wanted.add("hugetlb")
        wanted |= {key.split(".", 1)[0] for key in r.get("unified") or {}}
        rel = os.path.relpath(self.dir, self.mountpoint)
        parts = [] if rel == "." else rel.split("/")
        d = self.mountpoint
        for part in parts:
            self._delegate(d, wanted)
            d = os.path.join(d, part)
            try:
                os.mkdir(d)
            except FileExistsError:
                pass
        if r:
            self.update(r)

    def _delegate(self, d: str, wanted: set[str]) -> None:
        available = read_file(d, "cgroup.controllers").split()
        enabled = set(read_file(d, "cgroup.subtree_control").split())
        todo = [c for c in available if c in wanted and c not in enabled]
        if not todo:
            return
        try:
            write_file(d, "cgroup.subtree_control", " ".join("+" + c for c in todo))
        except OSError:
            # one at a time, so that one refusal doesn't cost the others
            for c in todo:
                try:
                    write_file(d, "cgroup.subtree_control", "+" + c)
                except OSError as e:
                    self.warn(f"cannot enable controller {c} in {d}: {e.strerror}")

    def controllers(self) -> list[str]:
        """The controllers enabled for this cgroup (its cgroup.controllers)."""
        return read_file(self.dir, "cgroup.controllers").split()

    def exists(self) -> bool:
        return os.path.isdir(self.dir)

    def add(self, pid: int) -> None:
        write_file(self.dir, "cgroup.procs", pid)

    def pids(self) -> list[int]:
        return read_procs(self.dir) if os.path.isdir(self.dir) else []

    def destroy(self) -> None:
        rmdir_tree(self.dir)

    # -- freezer ------------------------------------------------------------

    def _frozen(self) -> bool:
        return read_keyed(self.dir, "cgroup.events").get("frozen") == 1

    def freeze(self) -> None:
        write_file(self.dir, "cgroup.freeze", 1)
        try:
            self._wait(self._frozen, "the cgroup to freeze")
        except OSError:
            write_file(self.dir, "cgroup.freeze", 0)   # never leave it half-frozen
            raise

    def thaw(self) -> None:
        write_file(self.dir, "cgroup.freeze", 0)
        self._wait(lambda: not self._frozen(), "the cgroup to thaw")

    def state(self) -> str:
        try:
            wanted = read_file(self.dir, "cgroup.freeze").strip()
        except FileNotFoundError:
            return "thawed"       # kernel < 5.2 has no v2 freezer
        return "frozen" if wanted == "1" and self._frozen() else "thawed"

    def kill_all(self, sig: int = signal.SIGKILL) -> None:
        if sig == signal.SIGKILL and os.path.exists(os.path.join(self.dir, "cgroup.kill")):
            # the kernel kills the whole subtree, racing no fork (Linux 5.14+)
            write_file(self.dir, "cgroup.kill", 1)
            return
        if not os.path.exists(os.path.join(self.dir, "cgroup.freeze")):
            kill_pids(self.pids(), sig)       # kernel < 5.2: best effort, unfrozen
            return
        super().kill_all(sig)

    # -- accounting ---------------------------------------------------------

    def oom_kill_count(self) -> int:
        return read_keyed(self.dir, "memory.events").get("oom_kill", 0)

    def stats(self) -> dict:
        out: dict = {}
        st = read_keyed(self.dir, "cpu.stat")
        if st:
            out["cpu"] = {"usage_total": st.get("usage_usec", 0) * 1000,
                          "usage_user": st.get("user_usec", 0) * 1000,
                          "usage_kernel": st.get("system_usec", 0) * 1000,
                          "percpu": [],
                          "throttling": {"periods": st.get("nr_periods", 0),
                                         "throttled_periods": st.get("nr_throttled", 0),
                                         "throttled_time": st.get("throttled_usec", 0) * 1000}}
        if os.path.exists(os.path.join(self.dir, "memory.current")):
            events = read_keyed(self.dir, "memory.events")
            out["memory"] = {"usage": read_int(self.dir, "memory.current"),
                             "max_usage": read_int(self.dir, "memory.peak"),
                             "limit": read_int(self.dir, "memory.max"),
                             "failcnt": events.get("max"),
                             "stat": read_keyed(self.dir, "memory.stat")}
            out["memory_events"] = events
        if os.path.exists(os.path.join(self.dir, "pids.current")):
            out["pids"] = {"current": read_int(self.dir, "pids.current"),
                           "limit": read_int(self.dir, "pids.max")}
        if os.path.exists(os.path.join(self.dir, "io.stat")):
            out["blkio"] = {"io_service_bytes_recursive": _io_service_bytes(self.dir)}
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
            write_file(self.dir, "pids.max", limit if limit > 0 else "max")
        if r.get("blockIO"):
            self._set_io(r["blockIO"])
        for h in r.get("hugepageLimits") or []:
            write_file(self.dir, f"hugetlb.{h['pageSize']}.max", h["limit"])
        rules = r.get("devices") or []
        if rules and not (len(rules) == 1 and rules[0].get("allow")
                          and (rules[0].get("type") or "a") == "a"):
            self.warn("device cgroup rules are not enforced on cgroup v2 yet "
                      "(they need an eBPF program)")
        for name, value in (r.get("unified") or {}).items():
            if "/" in name or name.startswith("."):
                raise ValueError(f"invalid unified resource key {name!r}")
            write_file(self.dir, name, value)

    def _set_memory(self, m: dict) -> None:
        limit, swap = m.get("limit") or 0, m.get("swap") or 0
        reservation = m.get("reservation") or 0
        if limit or swap or reservation:
            s = swap_max(swap, limit)
            if s:
                write_file(self.dir, "memory.swap.max", _num(s))
            elif swap > 0:
                write_file(self.dir, "memory.swap.max", 0)   # swap == limit: no swap
            if limit:
                write_file(self.dir, "memory.max", _num(limit))
            if reservation:
                write_file(self.dir, "memory.low", _num(reservation))
        if m.get("disableOOMKiller"):
            self.warn("cgroup v2 cannot disable the OOM killer: OomKillDisable ignored")
        if m.get("swappiness") not in (None, -1):
            self.warn("cgroup v2 has no memory swappiness: MemorySwappiness ignored")

    def _set_cpu(self, c: dict) -> None:
        if c.get("realtimePeriod") or c.get("realtimeRuntime"):
            raise ValueError("realtime scheduling is not supported with cgroup v2")
        if c.get("shares"):
            write_file(self.dir, "cpu.weight", shares_to_weight(c["shares"]))
        if "idle" in c and c["idle"] is not None:
            write_file(self.dir, "cpu.idle", c["idle"])
        quota, period = c.get("quota") or 0, c.get("period") or 0
        if quota or period:
            write_file(self.dir, "cpu.max",
                       f"{quota if quota > 0 else 'max'} {period or 100000}")
        if c.get("cpus"):
            write_file(self.dir, "cpuset.cpus", c["cpus"])
        if c.get("mems"):
            write_file(self.dir, "cpuset.mems", c["mems"])

    def _set_io(self, b: dict) -> None:
        if b.get("weight"):
            if os.path.exists(os.path.join(self.dir, "io.bfq.weight")):
                write_file(self.dir, "io.bfq.weight", b["weight"])
            else:
                write_file(self.dir, "io.weight", blkio_weight_to_io_weight(b["weight"]))
        for wd in b.get("weightDevice") or []:
            write_file(self.dir, "io.weight",
                       f"{wd['major']}:{wd['minor']} {blkio_weight_to_io_weight(wd['weight'])}")
        for key, word in (("throttleReadBpsDevice", "rbps"), ("throttleWriteBpsDevice", "wbps"),
                          ("throttleReadIOPSDevice", "riops"),
                          ("throttleWriteIOPSDevice", "wiops")):
            for t in b.get(key) or []:
                write_file(self.dir, "io.max", f"{t['major']}:{t['minor']} {word}={t['rate']}")
