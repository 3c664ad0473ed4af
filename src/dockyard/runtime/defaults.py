"""Docker's defaults for a Linux container, as data.

Transcribed from moby v24 (oci/defaults.go `DefaultLinuxSpec`, oci/caps/defaults.go,
daemon/config `DefaultShmSize`/`DefaultInitBinary`) and from containerd's
pkg/cap (the capability names by number). `spec.build` starts from these and
edits copies; nothing here is ever mutated.
"""

from __future__ import annotations

import copy
import functools

OCI_VERSION = "1.0.2"

# oci.DefaultPathEnv("linux"): the PATH every container starts with; the image's
# or user's PATH replaces it (ReplaceOrAppendEnvValues).
DEFAULT_PATH_ENV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# dockerd's default for HostConfig.ShmSize (64 MiB), the size of /dev/shm.
DEFAULT_SHM_SIZE = 64 * 1024 * 1024

# Where `--init` puts the init binary inside the container ("/sbin/" + docker-init).
INIT_BINARY = "docker-init"
INIT_PATH_IN_CONTAINER = "/sbin/docker-init"

# The parent of every container's cgroup (docker's is "/docker").
CGROUP_PARENT = "/dockyard"

# caps.DefaultCapabilities(), in docker's order (the order shows in config.json).
DEFAULT_CAPABILITIES = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

# Every capability the kernel knows (5.9 and later), indexed by its number:
# KNOWN_CAPABILITIES[21] == "CAP_SYS_ADMIN". containerd's pkg/cap `capsLatest`.
KNOWN_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
    "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
    "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)


def capabilities_from_mask(mask: int) -> list[str]:
    """The known capability names whose bits are set in `mask`, by number."""
    return [name for bit, name in enumerate(KNOWN_CAPABILITIES) if mask >> bit & 1]


@functools.lru_cache(maxsize=1)
def available_capabilities() -> tuple[str, ...]:
    """The capabilities this process holds (CapEff of /proc/self/status).

    Docker gives a privileged container, or `--cap-add ALL`, exactly these
    (caps.GetAllCapabilities), and refuses to add a known capability missing
    here ("capability not supported by your kernel or not available in the
    current environment"): a daemon whose bounding set lacks CAP_SYS_RESOURCE
    cannot hand it to a container. If the file can't be read, every known
    capability is assumed available, as docker does.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return tuple(capabilities_from_mask(int(line.split()[1], 16)))
    except (OSError, ValueError, IndexError):
        pass
    return KNOWN_CAPABILITIES


# DefaultLinuxSpec's mounts, in its order. /dev/shm gets "size=<ShmSize>" appended.
_DEFAULT_MOUNTS = (
    {"destination": "/proc", "type": "proc", "source": "proc",
     "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs",
     "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
     "options": ["ro", "nosuid", "noexec", "nodev"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
     "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
     "options": ["nosuid", "noexec", "nodev", "mode=1777"]},
)


def default_mounts() -> list[dict]:
    """A fresh copy of docker's default mounts."""
    return copy.deepcopy(list(_DEFAULT_MOUNTS))


# Paths the runtime hides (bind /dev/null over files, an empty ro tmpfs over
# directories) and paths it remounts read-only; dropped for --privileged.
DEFAULT_MASKED_PATHS = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)

DEFAULT_READONLY_PATHS = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)

# Namespaces a container gets by default, in docker's order; `cgroup` is added
# when the cgroup namespace mode is private.
DEFAULT_NAMESPACES = ("mount", "network", "uts", "pid", "ipc")

# linux.resources.devices: deny everything, then allow the basic character
# devices docker lists (zero 1:5, null 1:3, urandom 1:9, random 1:8, tty 5:0,
# console 5:1) and deny /dev/fuse (10:229) again. The runtime adds its own
# always-allowed devices on top (full, pts, ptmx, tun...), as runc does.
_DEFAULT_DEVICE_RULES = (
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
    {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
)


def default_device_rules() -> list[dict]:
    """A fresh copy of docker's default device cgroup rules."""
    return copy.deepcopy(list(_DEFAULT_DEVICE_RULES))
