"""A container's record, in the Engine API's own shapes.

The record on disk is the inspect document minus what is computed on demand
(sizes, GraphDriver paths): `Config` and `HostConfig` exactly as docker holds
them, `State` with docker's fields. Keeping docker's shapes means inspect is a
copy, not a translation, and nothing is lost between what a client sent and
what it reads back.
"""

from __future__ import annotations

import copy
import functools
import time
from typing import Any

from dockyard.runtime import logfile

ZERO_TIME = "0001-01-01T00:00:00Z"

# Every HostConfig field dockerd reports, with the value it reports when unset.
HOST_CONFIG_DEFAULTS: dict[str, Any] = {
    "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "json-file", "Config": {}},
    "NetworkMode": "default", "PortBindings": {}, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
    "AutoRemove": False, "VolumeDriver": "", "VolumesFrom": None, "CapAdd": None, "CapDrop": None,
    "CgroupnsMode": "host", "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": None,
    "GroupAdd": None, "IpcMode": "private", "Cgroup": "", "Links": None, "OomScoreAdj": 0,
    "PidMode": "", "Privileged": False, "PublishAllPorts": False, "ReadonlyRootfs": False,
    "SecurityOpt": None, "UTSMode": "", "UsernsMode": "", "ShmSize": 67108864,
    "Runtime": "", "ConsoleSize": [0, 0], "Isolation": "", "CpuShares": 0, "Memory": 0,
    "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [],
    "BlkioDeviceReadBps": [], "BlkioDeviceWriteBps": [], "BlkioDeviceReadIOps": [],
    "BlkioDeviceWriteIOps": [], "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0,
    "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "", "Devices": [],
    "DeviceCgroupRules": None, "DeviceRequests": None, "KernelMemory": 0, "KernelMemoryTCP": 0,
    "MemoryReservation": 0, "MemorySwap": 0, "MemorySwappiness": None, "OomKillDisable": False,
    "PidsLimit": None, "Ulimits": None, "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0,
    "IOMaximumBandwidth": 0,
    "MaskedPaths": ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys",
                    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                    "/proc/sched_debug", "/proc/scsi", "/sys/firmware"],
    "ReadonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
}

CONFIG_DEFAULTS: dict[str, Any] = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
    "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None,
    "Cmd": None, "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None,
    "OnBuild": None, "Labels": {},
}


def now_rfc3339() -> str:
    """Now, as Go prints a time.Time in JSON (RFC 3339, nanoseconds, UTC)."""
    return logfile.format_time(time.time_ns())


@functools.lru_cache(maxsize=8192)
def parse_time(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 time; 0 for Go's zero time.
    (Cached: `ps` reads every container's times each time it lists them.)"""
    if not text or text.startswith("0001-"):
        return 0.0
    return logfile.parse_time(text) / 1e9


def new_state() -> dict[str, Any]:
    return {"Status": "created", "Running": False, "Paused": False, "Restarting": False,
            "OOMKilled": False, "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "",
            "StartedAt": ZERO_TIME, "FinishedAt": ZERO_TIME}


def host_config(given: dict[str, Any] | None, cgroup_v2: bool = False) -> dict[str, Any]:
    """The HostConfig dockerd stores for what a client sent: its defaults filled in
    and its normalisations applied (the create route, `adaptContainerSettings`,
    `createContainerOSSpecificSettings`), so that inspect reads as dockerd's."""
    given = given or {}
    out = copy.deepcopy(HOST_CONFIG_DEFAULTS)
    for key, value in given.items():
        if value is not None or key in out:
            out[key] = value
    if out.get("LogConfig") is None or not out["LogConfig"].get("Type"):
        out["LogConfig"] = {"Type": "json-file", "Config": (out.get("LogConfig") or {}).get("Config") or {}}
    if out["LogConfig"].get("Config") is None:
        out["LogConfig"]["Config"] = {}
    if not out.get("RestartPolicy") or not out["RestartPolicy"].get("Name"):
        out["RestartPolicy"] = {"Name": "no", "MaximumRetryCount": 0}
    if not out.get("NetworkMode"):
        out["NetworkMode"] = "default"
    if not out.get("ShmSize"):
        out["ShmSize"] = 67108864
    if not out.get("IpcMode"):
        out["IpcMode"] = "private"
    if not out.get("CgroupnsMode"):
        # private on cgroup v2 hosts, host on v1 (and for privileged ones on v1)
        out["CgroupnsMode"] = "private" if cgroup_v2 else "host"
    if out.get("MemorySwappiness") == -1:  # the CLI's "unset"
        out["MemorySwappiness"] = None
    if out.get("PidsLimit") is not None and out["PidsLimit"] <= 0:  # 0 and -1: unlimited
        out["PidsLimit"] = None
    if (out.get("Memory") or 0) > 0 and not out.get("MemorySwap"):
        out["MemorySwap"] = out["Memory"] * 2  # docker's default: swap as much as memory
    if out.get("OomKillDisable") is None:
        out["OomKillDisable"] = False
    # Docker's masked and read-only paths unless privileged; a list given (even
    # an empty one: `--security-opt systempaths=unconfined`) is kept as given.
    for key in ("MaskedPaths", "ReadonlyPaths"):
        if given.get(key) is None:
            out[key] = None if out.get("Privileged") else list(HOST_CONFIG_DEFAULTS[key])
    return out


class Container:
    """The record plus what the daemon holds while it runs."""

    def __init__(self, record: dict[str, Any]):
        self.record = record

    # -- identity ---------------------------------------------------------------
    @property
    def id(self) -> str:
        return self.record["Id"]

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def name(self) -> str:
        return self.record["Name"]

    @property
    def config(self) -> dict[str, Any]:
        return self.record["Config"]

    @property
    def host_config(self) -> dict[str, Any]:
        return self.record["HostConfig"]

    @property
    def state(self) -> dict[str, Any]:
        return self.record["State"]

    @property
    def image_id(self) -> str:
        return self.record["Image"]

    # -- state ------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return bool(self.state["Running"])

    @property
    def paused(self) -> bool:
        return bool(self.state["Paused"])

    def set_running(self, pid: int) -> None:
        self.state.update(Status="running", Running=True, Paused=False, Restarting=False,
                          OOMKilled=False, Dead=False, Pid=pid, ExitCode=0, Error="",
                          StartedAt=now_rfc3339())

    def set_stopped(self, exit_code: int, finished_at: str | None = None,
                    oom_killed: bool = False, error: str = "") -> None:
        self.state.update(Status="exited", Running=False, Paused=False, Restarting=False,
                          Pid=0, ExitCode=exit_code, OOMKilled=oom_killed, Error=error,
                          FinishedAt=finished_at or now_rfc3339())

    def set_start_failed(self, error: str, exit_code: int) -> None:
        """A start that failed leaves the container as it was (created, or exited),
        with the error and the exit code docker gives (127 for a missing command,
        126 when not executable)."""
        self.state.update(Running=False, Paused=False, Pid=0, ExitCode=exit_code, Error=error)

    def set_paused(self, paused: bool) -> None:
        self.state.update(Paused=paused, Status="paused" if paused else "running")

    def status_text(self, now: float | None = None) -> str:
        """The `STATUS` column of `docker ps`."""
        from dockyard.units import human_duration as duration
        now = now or time.time()
        s = self.state
        if s.get("Restarting"):  # (Running too, as dockerd keeps it while restarting)
            return f"Restarting ({s['ExitCode']}) {duration(now - parse_time(s['FinishedAt']))} ago"
        if s["Running"]:
            since = duration(now - parse_time(s["StartedAt"]))
            return f"Up {since} (Paused)" if s["Paused"] else f"Up {since}" + self._health_suffix()
        if s.get("Status") == "removing":
            return "Removal In Progress"
        if s.get("Dead"):
            return "Dead"
        if s["FinishedAt"] == ZERO_TIME or s.get("Status") == "created":
            return "Created"
        return f"Exited ({s['ExitCode']}) {duration(now - parse_time(s['FinishedAt']))} ago"

    def _health_suffix(self) -> str:
        health = self.state.get("Health")
        if not health:
            return ""
        status = health.get("Status")
        return " (health: starting)" if status == "starting" else f" ({status})"

    def command_line(self) -> str:
        """`Path` and `Args` joined as dockerd lists them: an argument with a
        space in it is put in single quotes."""
        args = [f"'{a}'" if " " in a else a for a in self.record["Args"]]
        return " ".join([self.record["Path"], *args]) if args else self.record["Path"]
