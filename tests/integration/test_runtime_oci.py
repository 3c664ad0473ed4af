"""dockyard-runtime against runc, side by side, on the same OCI bundles.

Each test builds a bundle (the busybox fixture's layer, unpacked into a plain
directory, plus a hand-written config.json as `runc spec` / dockerd write
them) and drives the runtime CLI the way our shim and containerd's shim do:
create (with a pid file), start, reap the init, delete. Parametrized tests run
the same steps through runc (the reference) and through ours; comparison
tests run a probe inside both and expect the same output.

The test process is the subreaper: after `create` exits, the container's init
is re-parented to us, and we reap it (as the shim does). Every container,
cgroup and state directory is removed even when a test fails.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from dockyard.linux import syscalls
from paths import FIXTURES

RUNC = shutil.which("runc")
OURS = str(Path(sys.executable).parent / "dockyard-runtime")
SESSION = "dyrt-" + uuid.uuid4().hex[:8]       # cgroup parent and id prefix
CGROUP_ROOT = "/sys/fs/cgroup"

DOCKER_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
               "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
               "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]

# `runc spec` (runc 1.1.5), made docker-like: no terminal, docker's default
# capabilities, docker's mounts (the same as runc's defaults).
BASE = {
    "ociVersion": "1.0.2",
    "process": {
        "terminal": False, "user": {"uid": 0, "gid": 0}, "args": ["true"],
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"],
        "cwd": "/",
        "capabilities": {k: DOCKER_CAPS for k in ("bounding", "effective", "permitted")},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": False},
    "hostname": "probe",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    ],
    "linux": {
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
        "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                        "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                        "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                          "/proc/sysrq-trigger"],
    },
}

PASSWD = "root:x:0:0:root:/root:/bin/sh\nu:x:1000:1000:u:/home/u:/bin/sh\n"
GROUP = "root:x:0:\ntty:x:5:\nwheel:x:10:root\nu:x:1000:\nextra:x:1001:u\n"


# -- fixtures ------------------------------------------------------------------------

@pytest.fixture(scope="module", autouse=True)
def subreaper():
    """Containers' inits are re-parented to this process once create exits."""
    syscalls.set_child_subreaper(True)
    try:
        yield
    finally:
        _reap_all()
        syscalls.set_child_subreaper(False)
        for d in _cgroup_dirs(SESSION):
            try:
                os.rmdir(d)
            except OSError:
                pass


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory) -> str:
    """The busybox fixture's only layer, unpacked, plus passwd and group files."""
    root = tmp_path_factory.mktemp("rootfs") / "rootfs"
    root.mkdir()
    with tarfile.open(FIXTURES / "busybox.docker-save.tar") as outer:
        manifest = json.load(outer.extractfile("manifest.json"))
        layer = outer.extractfile(manifest[0]["Layers"][0])
        with tarfile.open(fileobj=layer) as tar:
            tar.extractall(root, filter="tar")
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc/passwd").write_text(PASSWD)
    (root / "etc/group").write_text(GROUP)
    (root / "home/u").mkdir(parents=True)
    os.chown(root / "home/u", 1000, 1000)
    return str(root)


class Runtime:
    """One OCI runtime CLI, with its own --root and bookkeeping for cleanup."""

    def __init__(self, name: str, argv: list[str], base: Path):
        self.name = name
        self.root = str(base / f"state-{name}")
        self.argv = argv + ["--root", self.root]
        self.base = base
        self.ids: list[str] = []

    def __call__(self, *args, check=False, **kw) -> subprocess.CompletedProcess:
        # Files, not pipes: a container's init inherits create's stdio and
        # would hold a pipe open long after create has exited.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            kw.setdefault("stdout", out)
            kw.setdefault("stderr", err)
            p = subprocess.run(self.argv + list(args), timeout=60, **kw)
            out.seek(0)
            err.seek(0)
            p.stdout, p.stderr = out.read(), err.read()
        if check and p.returncode:
            raise AssertionError(f"{self.name} {' '.join(args)}: rc {p.returncode}\n"
                                 f"{p.stderr.decode() if p.stderr else ''}")
        return p

    def new_id(self) -> str:
        cid = f"{SESSION}-{self.name}-{len(self.ids)}"
        self.ids.append(cid)
        return cid

    def state(self, cid: str) -> dict:
        return json.loads(self("state", cid, check=True).stdout)

    def cleanup(self) -> None:
        for cid in self.ids:
            try:
                pid = json.load(open(os.path.join(self.root, cid, "state.json")))
                pid = pid.get("pid") or pid.get("init_process_pid")
            except (OSError, ValueError):
                pid = None
            self("delete", "--force", cid)
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            for d in _cgroup_dirs(f"{SESSION}/{cid}"):
                try:
                    os.rmdir(d)
                except OSError:
                    pass
        _reap_all()


def _cgroup_dirs(rel: str) -> list[str]:
    out = []
    for hierarchy in os.listdir(CGROUP_ROOT):
        d = os.path.join(CGROUP_ROOT, hierarchy, rel)
        if os.path.isdir(d):
            out.append(d)
    return out


def _reap_all() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.05)
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    return
            except ChildProcessError:
                return


def _make(name: str, base: Path) -> Runtime:
    if name == "runc":
        if not RUNC:
            pytest.skip("runc is not installed")
        return Runtime("runc", [RUNC], base)
    return Runtime("ours", [OURS], base)


@pytest.fixture(params=["ours", "runc"])
def rt(request, tmp_path):
    r = _make(request.param, tmp_path)
    try:
        yield r
    finally:
        r.cleanup()


@pytest.fixture
def both(tmp_path):
    pair = (_make("ours", tmp_path), _make("runc", tmp_path))
    try:
        yield pair
    finally:
        for r in pair:
            r.cleanup()


# -- helpers -------------------------------------------------------------------------

def bundle(rt: Runtime, cid: str, rootfs: str, args: list[str], **changes) -> str:
    """A bundle dir for container `cid`: BASE + `changes` (dotted keys)."""
    spec = copy.deepcopy(BASE)
    spec["process"]["args"] = args
    spec["root"]["path"] = rootfs
    spec["linux"]["cgroupsPath"] = f"/{SESSION}/{cid}"
    for key, value in changes.items():
        node = spec
        *path, last = key.split("__")
        for p in path:
            node = node[p]
        node[last] = value
    d = rt.base / f"bundle-{cid}"
    d.mkdir()
    (d / "config.json").write_text(json.dumps(spec, indent=1))
    return str(d)


def reap(pid: int, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.005)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError(f"container init {pid} did not exit in {timeout}s")


class Result:
    def __init__(self, create_rc: int, exit_code: int | None, out: str, err: str):
        self.create_rc, self.exit_code, self.out, self.err = create_rc, exit_code, out, err


def run(rt: Runtime, rootfs: str, args: list[str], preexec_fn=None, **changes) -> Result:
    """create, start, wait, delete; the container's stdout/stderr are files.
    `preexec_fn` runs in create's process before the runtime starts."""
    cid = rt.new_id()
    b = bundle(rt, cid, rootfs, args, **changes)
    out, err = rt.base / f"{cid}.out", rt.base / f"{cid}.err"
    pid_file = rt.base / f"{cid}.pid"
    with open(out, "wb") as o, open(err, "wb") as e:
        p = rt("create", "--bundle", b, "--pid-file", str(pid_file), cid, stdout=o, stderr=e,
               stdin=subprocess.DEVNULL, preexec_fn=preexec_fn)
    if p.returncode:
        return Result(p.returncode, None, out.read_text(), err.read_text())
    pid = int(pid_file.read_text())
    rt("start", cid, check=True)
    code = reap(pid)
    rt("delete", cid, check=True)
    return Result(0, code, out.read_text(), err.read_text())


def message(stderr: bytes | str) -> str:
    """The error of a runtime's stderr, runtime name replaced: runc's logrus
    line `time=... level=error msg="..."` -> the msg."""
    if isinstance(stderr, bytes):
        stderr = stderr.decode()
    line = stderr.strip().splitlines()[-1]
    m = re.search(r'level=error msg="((?:[^"\\]|\\.)*)"', line)
    text = json.loads(f'"{m.group(1)}"') if m else line
    return re.sub(r"(?<![\w-])(\S*/)?(runc|dockyard-runtime)(?= create failed|: \"| will)",
                  "RUNTIME", text)


def normalize(text: str, rt: Runtime, cid_hint: str = "") -> str:
    """Remove what differs between any two runs: dates, mount ids, devices,
    the container's own name in cgroup paths."""
    text = re.sub(rf"{SESSION}-(ours|runc)-\d+", "CID", text)
    lines = []
    for line in text.splitlines():
        f = line.split()
        if len(f) > 6 and " - " in line and f[2].count(":") == 1 and f[0].isdigit():
            line = " ".join(f[3:]).replace(f[2], "DEV")    # mountinfo: drop ids, dev
            line = re.sub(r"\b\d+:\d+\b", "DEV", line)
        line = re.sub(r"\b[A-Z][a-z]{2} +\d+ +\d\d:\d\d\b", "DATE", line)  # ls -l dates
        line = re.sub(r"(pipe|socket):\[\d+\]", r"\1:[INODE]", line)
        lines.append(line)
    return "\n".join(lines)


PROBE = r"""
echo "pid=$$ ppid=$PPID"
hostname
id
echo "home=$HOME"
grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status
grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status
echo "nofile=$(ulimit -n) $(ulimit -Hn)"
echo "pwd=$(pwd) umask=$(umask)"
ls -la /dev /dev/pts
echo x > /sys/probe 2>&1 || echo "sys write failed"
echo "keys=[$(cat /proc/keys)]"
ls -ld /proc/acpi /proc/kcore 2>&1
echo > /proc/sys/kernel/hostname 2>&1 || echo "proc/sys write failed"
ls /sys/fs/cgroup
cat /proc/self/mountinfo
ls -l /proc/self/fd/ | grep -v total
env | sort
"""


# -- lifecycle, both runtimes ------------------------------------------------------------

def test_lifecycle_states(rt, rootfs):
    cid = rt.new_id()
    b = bundle(rt, cid, rootfs, ["sleep", "30"])
    pid_file = rt.base / "pid"
    rt("create", "--bundle", b, "--pid-file", str(pid_file), cid, check=True,
       stdin=subprocess.DEVNULL)
    pid = int(pid_file.read_text())
    s = rt.state(cid)
    assert s["status"] == "created" and s["pid"] == pid and s["id"] == cid
    assert s["bundle"] == b and s["rootfs"] == rootfs and s["owner"] == ""
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", s["created"])
    assert os.readlink(f"/proc/{pid}/ns/pid") != os.readlink("/proc/self/ns/pid")

    rt("start", cid, check=True)
    assert rt.state(cid)["status"] == "running"
    p = rt("start", cid)
    assert p.returncode == 1
    assert message(p.stderr) == "cannot start an already running container"

    rt("pause", cid, check=True)
    assert rt.state(cid)["status"] == "paused"
    p = rt("pause", cid)
    assert (p.returncode, message(p.stderr)) == (1, "container not running")
    rt("resume", cid, check=True)
    assert rt.state(cid)["status"] == "running"
    p = rt("resume", cid)
    assert (p.returncode, message(p.stderr)) == (1, "container not paused")

    p = rt("delete", cid)
    assert p.returncode == 1
    assert message(p.stderr) == f"cannot delete container {cid} that is not stopped: running"

    # PID 1 ignores SIGTERM without a handler: sleep lives on.
    rt("kill", cid, check=True)
    time.sleep(0.2)
    assert rt.state(cid)["status"] == "running"
    rt("kill", cid, "KILL", check=True)
    assert reap(pid) == -signal.SIGKILL
    s = rt.state(cid)
    assert s["status"] == "stopped" and s["pid"] == 0
    p = rt("kill", cid, "KILL")
    assert (p.returncode, message(p.stderr)) == (1, "container not running")
    p = rt("start", cid)
    assert message(p.stderr) == "cannot start a container that has stopped"

    rt("delete", cid, check=True)
    p = rt("state", cid)
    assert (p.returncode, message(p.stderr)) == (1, "container does not exist")
    assert not _cgroup_dirs(f"{SESSION}/{cid}")
    assert not os.path.exists(os.path.join(rt.root, cid))


def test_delete_force_and_created(rt, rootfs):
    cid = rt.new_id()
    rt("create", "--bundle", bundle(rt, cid, rootfs, ["sleep", "30"]), cid, check=True,
       stdin=subprocess.DEVNULL)
    pid = rt.state(cid)["pid"]
    rt("delete", cid, check=True)           # a created container needs no --force
    assert reap(pid) == -signal.SIGKILL
    assert not _cgroup_dirs(f"{SESSION}/{cid}")

    cid = rt.new_id()
    rt("create", "--bundle", bundle(rt, cid, rootfs, ["sleep", "30"]), cid, check=True,
       stdin=subprocess.DEVNULL)
    pid = rt.state(cid)["pid"]
    rt("start", cid, check=True)
    rt("pause", cid, check=True)
    rt("delete", "--force", cid, check=True)  # thaws to deliver the SIGKILL
    assert reap(pid) == -signal.SIGKILL
    assert not _cgroup_dirs(f"{SESSION}/{cid}")
    assert rt("delete", "--force", "never-was").returncode == 0


def test_kill_all(rt, rootfs):
    cid = rt.new_id()
    rt("create", "--bundle", bundle(rt, cid, rootfs, ["sh", "-c", "sleep 30 & sleep 30"]), cid,
       check=True, stdin=subprocess.DEVNULL)
    pid = rt.state(cid)["pid"]
    rt("start", cid, check=True)
    rt("kill", "--all", cid, "9", check=True)
    assert reap(pid) == -signal.SIGKILL
    rt("delete", cid, check=True)


def test_exit_code_and_output(rt, rootfs):
    r = run(rt, rootfs, ["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (r.create_rc, r.exit_code, r.out, r.err) == (0, 3, "out\n", "err\n")


def test_missing_command_fails_create(both, rootfs):
    for rt in both:
        for cmd, tail in (("nosuch", 'exec: "nosuch": executable file not found in $PATH'),
                          ("/bin/nosuch", 'exec: "/bin/nosuch": stat /bin/nosuch: no such file '
                                          "or directory")):
            r = run(rt, rootfs, [cmd])
            assert r.create_rc == 1, rt.name
            assert message(r.err) == ("RUNTIME create failed: unable to start container "
                                      f"process: {tail}"), rt.name
        assert not os.listdir(rt.root), rt.name            # nothing left behind
        assert not [d for d in _cgroup_dirs(SESSION) if rt.name in os.listdir(d)]


def test_errors_before_the_init_match_runc(both, rootfs):
    got = {}
    for rt in both:
        cid = rt.new_id()
        b = bundle(rt, cid, rootfs, ["true"])
        rt("create", "--bundle", b, cid, check=True, stdin=subprocess.DEVNULL)
        got[rt.name] = [message(rt("create", "--bundle", b, cid).stderr),
                        message(rt("create", "--bundle", b, "bad/id").stderr),
                        message(rt("create", "--bundle", str(rt.base), "x").stderr),
                        message(rt("state").stderr).split("\n")[0],
                        message(rt("kill", cid, "NOSIG").stderr),
                        message(rt("delete", "nope").stderr)]
        rt("delete", "--force", cid, check=True)
    assert got["ours"] == got["runc"]


def test_exec_failure_after_start(both, rootfs):
    """The file exists and is executable, but execve refuses it: create and
    start succeed, the init exits 1 saying why on the container's stderr."""
    with open(os.path.join(rootfs, "notbin"), "w") as f:
        f.write("garbage\n")
    os.chmod(os.path.join(rootfs, "notbin"), 0o755)
    for rt in both:
        r = run(rt, rootfs, ["/notbin"])
        assert (r.create_rc, r.exit_code, r.err) == (0, 1, "exec /notbin: exec format error\n")


def test_failing_mount_leaves_nothing(both, rootfs):
    mounts = BASE["mounts"] + [{"destination": "/x", "type": "nosuchfs", "source": "none"}]
    for rt in both:
        r = run(rt, rootfs, ["true"], mounts=mounts)
        assert r.create_rc == 1
        assert message(r.err).startswith(
            "RUNTIME create failed: unable to start container process: error during container "
            'init: error mounting "none" to rootfs at "/x": '), r.err
        assert message(r.err).lower().endswith("no such device"), r.err
        assert os.listdir(rt.root) == []
        assert not [d for d in _cgroup_dirs(SESSION) if rt.name in " ".join(os.listdir(d))]


def test_cgroup_limits_are_in_place(both, rootfs):
    probe = ("cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max "
             "/sys/fs/cgroup/cpu/cpu.shares; grep -c . /sys/fs/cgroup/devices/devices.list")
    resources = {"memory": {"limit": 64 * 1024 * 1024}, "pids": {"limit": 50},
                 "cpu": {"shares": 512}, "devices": [{"allow": False, "access": "rwm"}]}
    outs = [run(rt, rootfs, ["sh", "-c", probe], linux__resources=resources).out for rt in both]
    assert outs[0] == outs[1]
    assert outs[0].startswith(f"{64 * 1024 * 1024}\n50\n512\n")


# -- what the container sees: ours == runc -------------------------------------------------

def _probe_both(both, rootfs, **changes) -> tuple[Result, Result]:
    results = [run(rt, rootfs, ["sh", "-c", PROBE], **changes) for rt in both]
    for rt, r in zip(both, results):
        assert r.create_rc == 0, f"{rt.name}: {r.err}"
    return results[0], results[1]


def test_probe_matches_runc_as_root(both, rootfs):
    ours, runc = _probe_both(both, rootfs)
    assert normalize(ours.out, both[0]) == normalize(runc.out, both[1])
    assert ours.err == runc.err
    assert ours.exit_code == runc.exit_code == 0
    out = ours.out
    assert "pid=1 ppid=0" in out
    assert "\nprobe\n" in out
    assert "\nuid=0(root) gid=0(root)\n" in out   # no additionalGids: no groups at all
    assert "CapEff:\t00000000a80425fb" in out                # docker's default set
    assert "NoNewPrivs:\t1" in out
    assert "nofile=1024 1024" in out
    assert "sys write failed" in out and "proc/sys write failed" in out
    assert "keys=[]" in out
    assert " / ro," not in out and " /sys ro," in out


def test_probe_matches_runc_for_a_user_with_groups_and_ambient_caps(both, rootfs):
    caps = {"bounding": DOCKER_CAPS, "effective": ["CAP_NET_BIND_SERVICE"],
            "permitted": ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
            "inheritable": ["CAP_NET_BIND_SERVICE"], "ambient": ["CAP_NET_BIND_SERVICE"]}
    ours, runc = _probe_both(both, rootfs, process__user={"uid": 1000, "gid": 1000,
                                                          "additionalGids": [10, 1001]},
                             process__capabilities=caps, process__noNewPrivileges=False,
                             process__cwd="/home/u")
    assert normalize(ours.out, both[0]) == normalize(runc.out, both[1])
    assert "uid=1000(u) gid=1000(u) groups=10(wheel),1001(extra)" in ours.out
    assert "home=/home/u" in ours.out and "pwd=/home/u" in ours.out
    assert "CapAmb:\t0000000000000400" in ours.out      # NET_BIND_SERVICE survived setuid
    assert "CapEff:\t0000000000000400" in ours.out


def test_probe_matches_runc_with_readonly_root_and_cgroupns(both, rootfs):
    ours, runc = _probe_both(both, rootfs, root__readonly=True,
                             linux__namespaces=BASE["linux"]["namespaces"] + [{"type": "cgroup"}],
                             process__rlimits=[{"type": "RLIMIT_NOFILE", "soft": 64, "hard": 128},
                                               {"type": "RLIMIT_NPROC", "soft": 99, "hard": 99}],
                             process__user={"uid": 0, "gid": 0, "umask": 0o027})
    assert normalize(ours.out, both[0]) == normalize(runc.out, both[1])
    assert "nofile=64 128" in ours.out and "umask=0027" in ours.out
    assert re.search(r"\S+ / ro,", normalize(ours.out, both[0]))


def test_the_process_starts_with_default_signal_dispositions(both, rootfs):
    """Whatever the runtime was started with (here: SIGHUP, SIGINT and SIGQUIT
    ignored, as nohup or a shell's background job leaves them, 32 ignored,
    which only the kernel's call can set, and SIGUSR1 blocked), the
    container's process ignores, catches and blocks nothing. runc's ignores
    none of the three either, but leaves 32 ignored and SIGUSR1 blocked."""
    def as_a_background_job() -> None:
        for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT):
            signal.signal(sig, signal.SIG_IGN)
        syscalls.sigaction(32, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})

    masks = {}
    for rt in both:
        r = run(rt, rootfs, ["sh", "-c", "exec cat /proc/self/status"],
                preexec_fn=as_a_background_job)
        assert (r.create_rc, r.exit_code) == (0, 0), f"{rt.name}: {r.err}"
        masks[rt.name] = dict(line.split(":\t") for line in r.out.splitlines()
                              if line.startswith(("SigIgn", "SigCgt", "SigBlk")))
    zero = "0000000000000000"
    assert masks["ours"] == {"SigBlk": zero, "SigIgn": zero, "SigCgt": zero}
    assert int(masks["runc"]["SigIgn"], 16) == 1 << (32 - 1)
    assert int(masks["runc"]["SigBlk"], 16) == 1 << (signal.SIGUSR1 - 1)
    assert masks["runc"]["SigCgt"] == zero


def test_cwd_is_created(both, rootfs):
    for rt in both:
        r = run(rt, rootfs, ["sh", "-c", "pwd"], process__cwd=f"/made/by/{rt.name}")
        assert (r.exit_code, r.out) == (0, f"/made/by/{rt.name}\n")
        assert os.path.isdir(os.path.join(rootfs, "made/by", rt.name))


def test_bind_mounts_devices_sysctl_and_oom_score(both, rootfs, tmp_path):
    src = tmp_path / "data"
    src.mkdir()
    (src / "f").write_text("hello\n")
    probe = ("cat /data/f; echo new > /data/g 2>/dev/null || echo ro; ls -l /dev/fuse; "
             "cat /proc/self/oom_score_adj; cat /proc/sys/net/ipv4/ip_forward; "
             "grep ' /data ' /proc/self/mountinfo | cut -d' ' -f5-6")
    mounts = BASE["mounts"] + [{"destination": "/data", "type": "bind", "source": str(src),
                                "options": ["rbind", "ro", "rprivate"]}]
    outs = []
    for rt in both:
        r = run(rt, rootfs, ["sh", "-c", probe], mounts=mounts, process__oomScoreAdj=500,
                linux__sysctl={"net.ipv4.ip_forward": "1"},
                linux__devices=[{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
                                 "fileMode": 0o640, "uid": 0, "gid": 5}])
        assert r.create_rc == 0, r.err
        outs.append(normalize(r.out, rt))
    assert outs[0] == outs[1]
    assert outs[0].startswith("hello\nro\ncrw-r-----    1 root     tty        10, 229 DATE")
    assert "\n500\n1\n/data ro," in outs[0]


def test_terminal_through_console_socket(both, rootfs, tmp_path):
    outs = []
    for rt in both:
        cid = rt.new_id()
        b = bundle(rt, cid, rootfs, ["sh", "-c", "stat -c '%A %t:%T %n' /dev/console; "
                                     "echo \"/proc/self/fd/0 -> $(readlink /proc/self/fd/0)\"; "
                                     "echo sid=$(cut -d' ' -f6 /proc/self/stat)"],
                   process__terminal=True, process__consoleSize={"height": 30, "width": 100})
        path = str(tmp_path / f"console-{rt.name}.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(1)
        listener.settimeout(30)
        got = {}

        def accept():
            conn, _ = listener.accept()
            msg, fds, _, _ = socket.recv_fds(conn, 4096, 1)
            got["master"], got["name"] = fds[0], msg
            conn.close()

        t = threading.Thread(target=accept)
        t.start()
        pid_file = tmp_path / f"{cid}.pid"
        p = rt("create", "--bundle", b, "--console-socket", path, "--pid-file", str(pid_file),
               cid, stdin=subprocess.DEVNULL)
        t.join()
        listener.close()
        assert p.returncode == 0, p.stderr
        assert got["name"] == b"/dev/ptmx"
        rt("start", cid, check=True)
        code = reap(int(pid_file.read_text()))
        data = b""
        while True:
            try:
                chunk = os.read(got["master"], 4096)
            except OSError:          # EIO: the slave side is closed
                break
            if not chunk:
                break
            data += chunk
        os.close(got["master"])
        rt("delete", cid, check=True)
        assert code == 0
        outs.append(data.decode())
    assert outs[0] == outs[1]
    assert "/proc/self/fd/0 -> /dev/pts/0" in outs[0]
    assert outs[0].startswith("crw--w----") and "\r\n" in outs[0]  # a tty: CRLF
    assert "sid=1" in outs[0]


def test_joining_another_containers_network_namespace(rt, rootfs):
    """docker run --net=container:<id>: a namespace given by path is joined."""
    first = rt.new_id()
    rt("create", "--bundle", bundle(rt, first, rootfs, ["sleep", "30"]), first, check=True,
       stdin=subprocess.DEVNULL)
    pid = rt.state(first)["pid"]
    netns = f"/proc/{pid}/ns/net"
    namespaces = [n for n in BASE["linux"]["namespaces"] if n["type"] != "network"]
    r = run(rt, rootfs, ["sh", "-c", "ls -l /proc/self/ns/net /proc/self/ns/uts | cut -d'>' -f2"],
            linux__namespaces=namespaces + [{"type": "network", "path": netns}])
    first_net, first_uts = os.readlink(netns), os.readlink(f"/proc/{pid}/ns/uts")
    rt("delete", "--force", first, check=True)
    reap(pid)
    assert r.exit_code == 0, r.err
    net, uts = r.out.split()
    assert net == first_net and uts != first_uts


def test_no_pivot_and_preserve_fds(rt, rootfs):
    cid = rt.new_id()
    b = bundle(rt, cid, rootfs, ["sh", "-c", "cat <&3; cut -d' ' -f5 /proc/self/mountinfo | "
                                 "grep -c '^/$'"])
    out = rt.base / "out"
    r, w = os.pipe()
    os.write(w, b"fd 3 is kept\n")
    os.close(w)
    with open(out, "wb") as o:
        p = subprocess.run(rt.argv + ["create", "--no-pivot", "--preserve-fds", "1",
                                      "--bundle", b, cid], stdout=o, stderr=o,
                           stdin=subprocess.DEVNULL, close_fds=False,
                           preexec_fn=lambda: os.dup2(r, 3))
    os.close(r)
    assert p.returncode == 0, out.read_text()
    pid = rt.state(cid)["pid"]
    rt("start", cid, check=True)
    assert reap(pid) == 0
    rt("delete", cid, check=True)
    assert out.read_text() == "fd 3 is kept\n1\n"


# -- where we differ from runc on purpose -------------------------------------------------

def test_privileged_without_sys_resource_in_the_host_bounding_set(both, rootfs):
    from dockyard.linux import capabilities
    host = capabilities.current("bounding")
    every = list(capabilities.NAMES[:capabilities.last_cap() + 1])
    caps = {k: every for k in ("bounding", "effective", "permitted")}
    ours, runc = (run(rt, rootfs, ["sh", "-c", "grep -E '^Cap(Eff|Bnd)' /proc/self/status"],
                      process__capabilities=caps) for rt in both)
    assert ours.create_rc == 0, ours.err
    mask = f"{capabilities.to_mask(host):016x}"
    assert ours.out == f"CapEff:\t{mask}\nCapBnd:\t{mask}\n"
    if host != set(range(capabilities.last_cap() + 1)):
        # runc (and so dockerd) cannot run --privileged on this host.
        assert runc.create_rc == 1
        assert "unable to apply caps: operation not permitted" in message(runc.err)


def test_rlimit_above_the_host_hard_limit_is_a_clear_error(both, rootfs):
    import resource
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        pytest.skip("no hard limit on this host")
    limits = [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": hard + 1}]
    ours, runc = (run(rt, rootfs, ["true"], process__rlimits=limits) for rt in both)
    want = ("RUNTIME create failed: unable to start container process: error during container "
            "init: error setting rlimits for ready process: error setting rlimit type 7: "
            "operation not permitted")
    assert ours.create_rc == runc.create_rc == 1
    assert message(runc.err) == want
    assert message(ours.err) == f"{want} (hard limit {hard + 1} is above the host's {hard})"


def test_no_host_mounts_or_state_left(rootfs, tmp_path):
    rt = _make("ours", tmp_path)
    try:
        r = run(rt, rootfs, ["true"])
        assert r.exit_code == 0
        with open("/proc/self/mountinfo") as f:
            assert rootfs not in f.read()
        assert os.listdir(rt.root) == []
    finally:
        rt.cleanup()
