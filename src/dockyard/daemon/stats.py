"""Container stats: one collector per daemon, and dockerd's StatsJSON frames.

    GET /containers/{id}/stats?stream=1          a frame per second until the
                                                 client leaves or the container
                                                 is removed
    GET /containers/{id}/stats?stream=0          one frame whose precpu_stats is
                                                 the sample a second before it
    GET /containers/{id}/stats?stream=0&one-shot=1   one frame, precpu zeroed

The collector (moby's daemon/stats/collector.go) keeps the subscribers of each
watched container, and one task samples every watched container once per
interval and hands the sample to each of its subscribers: ten clients watching
ten containers cost ten samples a second, not a hundred. It runs only while
someone watches, and samples in one worker-thread hop per round (cgroupfs reads
never block for long, but a hundred containers' worth is better off the loop).

A sample is the container's cgroup read through `dockyard.linux.cgroups`,
located from the record alone (HostConfig.CgroupParent and the ID, the
cgroupsPath the spec gave the runtime), so containers the daemon took back
after a restart are sampled like any other. Each sample is turned into
dockerd 20.10's shape for the cgroup version (daemon_unix.go statsV1/statsV2):
the v1 memory.stat keys or the v2 ones, blkio counters or io.stat bytes, the
host's `system_cpu_usage` read from /proc/stat right after the container's
(the docker CLI divides one delta by the other), and a memory limit no higher
than the machine's memory. Keys are in Go's struct order and empty ones left
out where Go's `omitempty` leaves them out.

A container that is not running gets dockerd's empty frame: its name and ID,
zero times, zero counters. With stream=0 that frame comes at once; a stream
keeps sending it each second (the container may start again) and ends when the
container is removed, as dockerd's does. `networks` is left out: containers
have no interfaces of their own yet (dockerd omits it too for --network none).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any, AsyncIterator

from dockyard import errdefs
from dockyard.runtime import logfile

log = logging.getLogger(__name__)

INTERVAL = 1.0        # seconds between samples, as dockerd's collector
QUEUE_FRAMES = 64     # frames held for a slow client before new ones are dropped
ZERO_TIME = "0001-01-01T00:00:00Z"
NANOS_PER_TICK = 1_000_000_000 // 100   # /proc/stat counts USER_HZ ticks (100 on Linux)

BLKIO_KEYS = ("io_service_bytes_recursive", "io_serviced_recursive", "io_queue_recursive",
              "io_service_time_recursive", "io_wait_time_recursive", "io_merged_recursive",
              "io_time_recursive", "sectors_recursive")

# The memory.stat keys dockerd reports, per cgroup version (0 when the kernel
# doesn't list one: hierarchical_memsw_limit without swap accounting).
V1_MEMORY_KEYS = (
    "cache", "rss", "rss_huge", "mapped_file", "dirty", "writeback", "pgpgin", "pgpgout",
    "pgfault", "pgmajfault", "inactive_anon", "active_anon", "inactive_file", "active_file",
    "unevictable", "hierarchical_memory_limit", "hierarchical_memsw_limit", "total_cache",
    "total_rss", "total_rss_huge", "total_mapped_file", "total_dirty", "total_writeback",
    "total_pgpgin", "total_pgpgout", "total_pgfault", "total_pgmajfault",
    "total_inactive_anon", "total_active_anon", "total_inactive_file", "total_active_file",
    "total_unevictable")
V2_MEMORY_KEYS = (
    "anon", "file", "kernel_stack", "slab", "sock", "shmem", "file_mapped", "file_dirty",
    "file_writeback", "anon_thp", "inactive_anon", "active_anon", "inactive_file",
    "active_file", "unevictable", "slab_reclaimable", "slab_unreclaimable", "pgfault",
    "pgmajfault", "workingset_refault", "workingset_activate", "workingset_nodereclaim",
    "pgrefill", "pgscan", "pgsteal", "pgactivate", "pgdeactivate", "pglazyfree",
    "pglazyfreed", "thp_fault_alloc", "thp_collapse_alloc")


# --- the host ---------------------------------------------------------------------


def system_cpu_usage(proc_stat: str = "/proc/stat") -> int:
    """The host's CPU time in ns as dockerd counts it: the first seven fields of
    /proc/stat's "cpu" line (user..softirq), ticks turned into nanoseconds."""
    with open(proc_stat, "rb") as f:
        line = f.readline()
    fields = line.split()
    if fields[:1] != [b"cpu"] or len(fields) < 8:
        raise ValueError("invalid stat format. Error trying to parse the '/proc/stat' file")
    return sum(int(v) for v in fields[1:8]) * NANOS_PER_TICK


def online_cpus() -> int:
    """CPUs this process may run on (dockerd's sched_getaffinity count)."""
    return len(os.sched_getaffinity(0))


def machine_memory(meminfo: str = "/proc/meminfo") -> int:
    """MemTotal in bytes: the `limit` reported for a container without one."""
    try:
        with open(meminfo) as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


# --- dockerd's shapes -------------------------------------------------------------


def cpu_stats(cpu: dict | None, system_usage: int, cpus: int) -> dict[str, Any]:
    """types.CPUStats: percpu_usage, system_cpu_usage and online_cpus are omitempty."""
    cpu = cpu or {}
    usage: dict[str, Any] = {"total_usage": cpu.get("usage_total") or 0}
    if cpu.get("percpu"):
        usage["percpu_usage"] = list(cpu["percpu"])
    usage["usage_in_kernelmode"] = cpu.get("usage_kernel") or 0
    usage["usage_in_usermode"] = cpu.get("usage_user") or 0
    out: dict[str, Any] = {"cpu_usage": usage}
    if system_usage:
        out["system_cpu_usage"] = system_usage
    if cpus:
        out["online_cpus"] = cpus
    t = cpu.get("throttling") or {}
    out["throttling_data"] = {"periods": t.get("periods", 0),
                              "throttled_periods": t.get("throttled_periods", 0),
                              "throttled_time": t.get("throttled_time", 0)}
    return out


def zero_cpu_stats() -> dict[str, Any]:
    """types.CPUStats{} as Go encodes it."""
    return cpu_stats(None, 0, 0)


def memory_stats(memory: dict | None, events: dict | None, v2: bool,
                 machine: int) -> dict[str, Any]:
    if not memory:
        return {}
    stat = memory.get("stat") or {}
    keys = V2_MEMORY_KEYS if v2 else V1_MEMORY_KEYS
    out: dict[str, Any] = {}
    if memory.get("usage"):
        out["usage"] = memory["usage"]
    if memory.get("max_usage") and not v2:     # dockerd has no peak on v2
        out["max_usage"] = memory["max_usage"]
    out["stats"] = {k: stat.get(k, 0) for k in sorted(keys)}   # a Go map: sorted keys
    failcnt = (events or {}).get("oom", 0) if v2 else memory.get("failcnt") or 0
    if failcnt:
        out["failcnt"] = failcnt
    limit = memory.get("limit")
    if machine and (limit is None or limit > machine):
        limit = machine     # unlimited: the machine's memory is the limit
    if limit:
        out["limit"] = limit
    return out


def blkio_stats(blkio: dict | None, v2: bool) -> dict[str, Any]:
    """v1: every counter a list (empty ones too); v2: only the bytes, the rest
    null - what dockerd's copies of containerd's metrics give."""
    out: dict[str, Any] = {key: None for key in BLKIO_KEYS}
    if blkio is None:
        return out
    for key in BLKIO_KEYS:
        entries = blkio.get(key)
        if v2:
            out[key] = entries or None
        else:
            out[key] = list(entries or [])
    return out


def pids_stats(pids: dict | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if pids and pids.get("current"):
        out["current"] = pids["current"]
    if pids and pids.get("limit"):
        out["limit"] = pids["limit"]
    return out


def sample_frame(raw: dict, v2: bool, read_ns: int, system_usage: int, cpus: int,
                 machine: int) -> dict[str, Any]:
    """One cgroup reading (Cgroup.stats()) as dockerd's types.Stats, without the
    fields a request fills in (preread, precpu_stats, name, id)."""
    return {
        "read": logfile.format_time(read_ns),
        "preread": ZERO_TIME,
        "pids_stats": pids_stats(raw.get("pids")),
        "blkio_stats": blkio_stats(raw.get("blkio"), v2),
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu_stats(raw.get("cpu"), system_usage, cpus),
        "precpu_stats": zero_cpu_stats(),
        "memory_stats": memory_stats(raw.get("memory"), raw.get("memory_events"), v2, machine),
    }


def empty_frame() -> dict[str, Any]:
    """types.StatsJSON{} (name and ID to be filled in): what a container that is
    not running reports."""
    return {"read": ZERO_TIME, "preread": ZERO_TIME, "pids_stats": {},
            "blkio_stats": blkio_stats(None, False), "num_procs": 0, "storage_stats": {},
            "cpu_stats": zero_cpu_stats(), "precpu_stats": zero_cpu_stats(),
            "memory_stats": {}}


def stats_json(frame: dict[str, Any], preread: str, precpu: dict[str, Any], name: str,
               cid: str) -> dict[str, Any]:
    """A frame as one client gets it: its previous reading and the container's
    name and ID added, in types.StatsJSON's field order."""
    out = dict(frame)
    out["preread"] = preread
    out["precpu_stats"] = precpu
    out["name"] = name
    out["id"] = cid
    return out


# --- the collector ----------------------------------------------------------------


def cgroup_path(c) -> str:
    """The container's OCI cgroupsPath, from its record as the spec computed it:
    the same after a daemon restart, with nothing kept in memory."""
    from dockyard.runtime.spec import _cgroups_path
    return _cgroups_path(c.host_config, c.id)



class StatsCollector:
    """Samples the watched containers once per interval for all their subscribers."""

    def __init__(self, containers, interval: float = INTERVAL):
        self.containers = containers       # the ContainerService: records and state
        self.interval = interval
        self._subscribers: dict[str, set[asyncio.Queue]] = {}
        self._cgroups: dict[str, tuple[str, Any]] = {}   # id -> (cgroupsPath, Cgroup)
        self._task: asyncio.Task | None = None
        self._host: tuple[bool, dict] | None = None      # (unified, v1 mount points)
        self._machine_memory = machine_memory()

    # -- subscribers --

    def subscribe(self, cid: str) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(QUEUE_FRAMES)
        self._subscribers.setdefault(cid, set()).add(queue)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        return queue

    def unsubscribe(self, cid: str, queue: asyncio.Queue) -> None:
        queues = self._subscribers.get(cid)
        if queues is None:
            return
        queues.discard(queue)
        if not queues:
            del self._subscribers[cid]

    def close(self) -> None:
        """End every stream (the daemon is stopping)."""
        for cid in list(self._subscribers):
            self._end(cid)
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def _end(self, cid: str) -> None:
        for queue in self._subscribers.pop(cid, ()):
            _offer(queue, None)     # None: the stream is over
        self._cgroups.pop(cid, None)

    # -- the loop --

    async def _run(self) -> None:
        try:
            while self._subscribers:
                work = []
                for cid in list(self._subscribers):
                    c = self.containers.containers.get(cid)
                    if c is None:                 # removed: its streams end
                        self._end(cid)
                        continue
                    running = c.running and not c.state.get("Restarting")
                    work.append((cid, self._cgroup(c) if running else None))
                for cid in [k for k in self._cgroups if k not in self._subscribers]:
                    del self._cgroups[cid]
                if work:
                    frames = await asyncio.to_thread(self._sample_all, work)
                    for cid, frame in frames:
                        for queue in list(self._subscribers.get(cid, ())):
                            _offer(queue, frame)
                await asyncio.sleep(self.interval)
        except Exception:  # noqa: BLE001 - a failed round must not leave streams hanging
            log.exception("stats collector")
            for cid in list(self._subscribers):
                self._end(cid)
        finally:
            self._task = None

    def _cgroup(self, c) -> Any:
        path = cgroup_path(c)
        known = self._cgroups.get(c.id)
        if known is None or known[0] != path:
            known = (path, self.open_cgroup(path))
            self._cgroups[c.id] = known
        return known[1]

    def open_cgroup(self, path: str) -> Any:
        """The container's cgroup; the host's hierarchies are found once, not per
        container (finding them reads /proc/self/mountinfo)."""
        from dockyard.linux import cgroups
        if self._host is None:
            unified = cgroups.unified_host()
            self._host = (unified, {} if unified else cgroups.v1_mountpoints())
        unified, mounts = self._host
        if unified:
            return cgroups.CgroupV2(path, "/sys/fs/cgroup")
        return cgroups.CgroupV1(path, mountpoints=mounts)

    def _sample_all(self, work: list[tuple[str, Any]]) -> list[tuple[str, dict]]:
        """(worker thread) One frame per container: its cgroup, then the host's CPU
        time right after it, so that both deltas span the same interval."""
        from dockyard.linux.cgroups import CgroupV2
        cpus = online_cpus()
        out = []
        for cid, cg in work:
            frame = None
            if cg is not None:
                try:
                    raw = cg.stats()
                    read_ns = time.time_ns()
                    if raw.get("cpu") or raw.get("memory"):
                        frame = sample_frame(raw, isinstance(cg, CgroupV2), read_ns,
                                             system_cpu_usage(), cpus, self._machine_memory)
                except (OSError, ValueError) as e:   # exited between the check and the read
                    log.debug("stats of %s: %s", cid, e)
            out.append((cid, frame or empty_frame()))
        return out

    # -- a request --

    def container(self, ref: str, stream: bool, one_shot: bool):
        """The container a stats request is for, or dockerd's error for the request."""
        c = self.containers.get(ref)
        if stream and one_shot:
            raise errdefs.InvalidParameter("cannot have stream=true and one-shot=true")
        return c

    async def frames(self, c, stream: bool, one_shot: bool) -> AsyncIterator[dict[str, Any]]:
        """The frames of one stats request (moby's daemon.ContainerStats)."""
        if not stream and (not c.running or c.state.get("Restarting")):
            yield stats_json(empty_frame(), ZERO_TIME, zero_cpu_stats(), c.name, c.id)
            return
        queue = self.subscribe(c.id)
        try:
            preread, precpu = ZERO_TIME, zero_cpu_stats()
            prime = not stream and not one_shot
            while True:
                frame = await queue.get()
                if frame is None:
                    return
                out = stats_json(frame, preread, precpu, c.name, c.id)
                preread, precpu = frame["read"], frame["cpu_stats"]
                if prime:       # the first reading only gives the second its precpu
                    prime = False
                    continue
                yield out
                if not stream:
                    return
        finally:
            self.unsubscribe(c.id, queue)


def _offer(queue: asyncio.Queue, item: Any) -> None:
    try:
        queue.put_nowait(item)
    except asyncio.QueueFull:
        if item is None:          # the end must get through: make room for it
            queue.get_nowait()
            queue.put_nowait(None)
