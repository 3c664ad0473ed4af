"""What /version and /info report: this engine and this host, in dockerd's shapes."""

from __future__ import annotations

import hashlib
import os
import platform
import socket
from datetime import datetime, timezone
from typing import Any

from dockyard import API_VERSION, MIN_API_VERSION, __version__
from dockyard.image.mediatypes import host_arch


def _os_release() -> tuple[str, str]:
    fields = {}
    try:
        with open("/etc/os-release") as f:
            for line in f:
                key, _, value = line.strip().partition("=")
                fields[key] = value.strip('"')
    except OSError:
        pass
    return fields.get("PRETTY_NAME", "Linux"), fields.get("VERSION_ID", "")


def _mem_total() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def cgroup_version() -> str:
    return "2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1"


class SystemService:
    def __init__(self, daemon):
        self.daemon = daemon

    def version(self) -> dict[str, Any]:
        kernel = platform.release()
        details = {"ApiVersion": API_VERSION, "Arch": host_arch(), "BuildTime": "",
                   "Experimental": "false", "GitCommit": "", "GoVersion": "",
                   "KernelVersion": kernel, "MinAPIVersion": MIN_API_VERSION, "Os": "linux"}
        return {
            "Platform": {"Name": "Dockyard Engine"},
            "Components": [{"Name": "Engine", "Version": __version__, "Details": details}],
            "Version": __version__,
            "ApiVersion": API_VERSION,
            "MinAPIVersion": MIN_API_VERSION,
            "GitCommit": "",
            "GoVersion": "",
            "Os": "linux",
            "Arch": host_arch(),
            "KernelVersion": kernel,
            "BuildTime": "",
        }

    def engine_id(self) -> str:
        """A stable ID per data root, in dockerd's 12 groups of 4 base32 characters."""
        import base64
        raw = hashlib.sha256(os.path.realpath(self.daemon.layout.root).encode()).digest()
        text = base64.b32encode(raw).decode()[:48]
        return ":".join(text[i:i + 4] for i in range(0, 48, 4))

    def info(self) -> dict[str, Any]:
        d = self.daemon
        os_name, os_version = _os_release()
        counts = d.container_counts()
        return {
            "ID": self.engine_id(),
            "Containers": sum(counts.values()),
            "ContainersRunning": counts.get("running", 0),
            "ContainersPaused": counts.get("paused", 0),
            "ContainersStopped": counts.get("stopped", 0),
            "Images": len(d.images.images),
            "Driver": "overlay2",
            "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"],
                             ["Native Overlay Diff", "true"], ["userxattr", "false"]],
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"],
                        "Authorization": None, "Log": ["json-file", "local", "none"]},
            "MemoryLimit": True, "SwapLimit": True, "KernelMemory": False,
            "KernelMemoryTCP": False, "CpuCfsPeriod": True, "CpuCfsQuota": True,
            "CPUShares": True, "CPUSet": True, "PidsLimit": True,
            "IPv4Forwarding": True, "BridgeNfIptables": True, "BridgeNfIp6tables": True,
            "Debug": d.config.debug,
            "NFd": len(os.listdir("/proc/self/fd")),
            "OomKillDisable": True,
            "NGoroutines": 0,
            "SystemTime": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": cgroup_version(),
            "NEventsListener": 0,
            "KernelVersion": platform.release(),
            "OperatingSystem": os_name,
            "OSVersion": os_version,
            "OSType": "linux",
            "Architecture": platform.machine(),
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": d.distribution.registries.info(),
            "NCPU": os.cpu_count() or 1,
            "MemTotal": _mem_total(),
            "GenericResources": None,
            "DockerRootDir": d.layout.root,
            "HttpProxy": os.environ.get("HTTP_PROXY", ""),
            "HttpsProxy": os.environ.get("HTTPS_PROXY", ""),
            "NoProxy": os.environ.get("NO_PROXY", ""),
            "Name": socket.gethostname(),
            "Labels": list(d.config.labels),
            "ExperimentalBuild": False,
            "ServerVersion": __version__,
            "Runtimes": {name: {"path": path} for name, path in sorted(d.runtimes.paths.items())},
            "DefaultRuntime": d.runtimes.default,
            "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                      "ControlAvailable": False, "Error": "", "RemoteManagers": None},
            "LiveRestoreEnabled": True,
            "Isolation": "",
            "InitBinary": "",
            "ContainerdCommit": {"ID": "", "Expected": ""},
            "RuncCommit": {"ID": "", "Expected": ""},
            "InitCommit": {"ID": "", "Expected": ""},
            "SecurityOptions": ["name=seccomp,profile=default"],
            "Warnings": None,
        }


def disk_usage(daemon) -> dict[str, Any]:
    """`/system/df`: what images, containers, volumes and build cache take."""
    from dockyard.daemon import containerviews
    from dockyard.storage.layer import chain_ids

    images_svc = daemon.images
    users: dict[str, int] = {}
    for c in daemon.containers.containers.values():
        users[c.image_id] = users.get(c.image_id, 0) + 1
    chain_users: dict[str, int] = {}
    for image in images_svc.images:
        for chain in chain_ids(image.diff_ids):
            chain_users[chain] = chain_users.get(chain, 0) + 1
    images = []
    for image in images_svc.images:
        entry = images_svc.summary(image)
        entry["Containers"] = users.get(image.id, 0)
        entry["SharedSize"] = sum(l.size for l in images_svc.layers.chain(image.diff_ids)
                                  if chain_users.get(l.chain_id, 0) > 1)
        images.append(entry)
    containers = [containerviews.summary(daemon.containers, c, size=True)
                  for c in daemon.containers.containers.values()]
    return {
        "LayersSize": sum(l.size for l in images_svc.layers),
        "Images": images,
        "Containers": containers,
        "Volumes": daemon.volumes.usage(),
        "BuildCache": [],
        "BuilderSize": 0,
    }
