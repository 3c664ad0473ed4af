"""A real dockyardd on a temporary data root and socket, and the ways to drive it:
our CLI, the docker CLI, docker-py, and raw API calls."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from paths import FIXTURES


BIN = Path(sys.executable).parent
DOCKYARDD = str(BIN / "dockyardd")
DOCKYARD = str(BIN / "dockyard")


def wait_for(condition, timeout: float = 10.0, interval: float = 0.02, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


_serial = itertools.count(int.from_bytes(os.urandom(1), "big"))


class Daemon:
    """One dockyardd process and the ways to talk to it.

    Each daemon gets network resources of its own, so that daemons running at
    the same time (or left over from a crashed run) never share them: a default
    bridge `dyt<n>`, its subnet 10.199.<n>.0/24, iptables chains named DY<n>…,
    and --dns 127.0.0.77, so no container ever asks the host's resolver."""

    def __init__(self, base: str):
        n = next(_serial) % 250
        self.bridge = f"dyt{os.getpid() % 10000}x{n}"
        self.bip = f"10.199.{n}.1/24"
        self.chain_prefix = f"DY{os.getpid() % 10000:04d}X{n:03d}"
        self.base = base
        self.root = os.path.join(base, "root")
        self.exec_root = os.path.join(base, "exec")
        self.socket = os.path.join(base, "d.sock")
        self.host = "unix://" + self.socket
        self.log_path = os.path.join(base, "daemon.log")
        self.proc: subprocess.Popen | None = None
        self.docker_config = os.path.join(base, "docker-config")
        os.makedirs(self.docker_config)

    def start(self, *extra: str) -> "Daemon":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [DOCKYARDD, "--data-root", self.root, "--exec-root", self.exec_root,
             "-H", self.host, *self.network_flags(extra), *extra],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_for(self._answers, what=f"dockyardd on {self.socket} (log: {self.log()})")
        return self

    def network_flags(self, extra: tuple[str, ...]) -> list[str]:
        flags = {"--bridge": self.bridge, "--bip": self.bip,
                 "--iptables-chain-prefix": self.chain_prefix, "--dns": "127.0.0.77",
                 "--default-address-pool": "base=10.198.0.0/16,size=24"}
        given = {a.split("=")[0] for a in extra}
        return [x for k, v in flags.items() if k not in given for x in (k, v)]

    def remove_network_setup(self) -> None:
        """What a daemon keeps on the host after it stops (as dockerd keeps
        docker0 and its chains): the default bridge and our iptables chains."""
        from dockyard.network.firewall import Firewall

        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        Firewall(self.chain_prefix).teardown()

    def _answers(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"dockyardd exited with {self.proc.returncode}:\n{self.log()}")
        if not os.path.exists(self.socket):
            return False
        try:
            self.api().request("GET", "/_ping").read()
            return True
        except (ConnectionError, OSError):
            return False

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("DOCKER_HOST", None)
        env.pop("DOCKYARD_HOST", None)
        env["DOCKER_CONFIG"] = self.docker_config
        env["DOCKER_BUILDKIT"] = "0"
        return env

    def run_cli(self, *args: str, input: bytes | str | None = None, timeout: float = 60,
                check: bool = False) -> subprocess.CompletedProcess:
        return self._run([DOCKYARD, "-H", self.host, *args], input, timeout, check)

    def docker(self, *args: str, input: bytes | str | None = None, timeout: float = 60,
               check: bool = False) -> subprocess.CompletedProcess:
        return self._run(["docker", "-H", self.host, *args], input, timeout, check)

    def _run(self, argv, input, timeout, check) -> subprocess.CompletedProcess:
        text = not isinstance(input, bytes)
        result = subprocess.run(argv, input=input, capture_output=True, timeout=timeout,
                                env=self.env(), text=text)
        if check and result.returncode != 0:
            raise AssertionError(f"{argv} failed ({result.returncode}):\n"
                                 f"stdout: {result.stdout}\nstderr: {result.stderr}")
        return result

    def client(self):
        import docker
        return docker.DockerClient(base_url=self.host, version="auto", timeout=60)

    def api(self):
        from dockyard.client import Client
        return Client(self.host)


def fd_targets(pid: int, low: int = 0) -> dict[int, str]:
    """fd -> what it points at (a path, "pipe:[N]", "socket:[N]"...)."""
    out = {}
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except (FileNotFoundError, PermissionError):
        return out
    for name in names:
        if int(name) >= low:
            try:
                out[int(name)] = os.readlink(f"/proc/{pid}/fd/{name}")
            except (FileNotFoundError, PermissionError):
                pass
    return out


def mounts_under(path: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(path)]


@contextlib.contextmanager
def running_daemon():
    """A daemon on a fresh base directory, stopped and removed at the end; an
    error if it left a mount behind."""
    base = tempfile.mkdtemp(prefix="dyt-", dir="/tmp")
    d = Daemon(base)
    try:
        d.start()
        yield d
    finally:
        d.stop()
        d.remove_network_setup()
        leaked = mounts_under(base)
        for m in reversed(leaked):
            subprocess.run(["umount", "-l", m], check=False)
        shutil.rmtree(base, ignore_errors=True)
        assert not leaked, f"daemon left mounts behind: {leaked}"


def load_busybox(d: Daemon) -> str:
    """busybox:local from the fixture archive made by real docker."""
    with open(FIXTURES / "busybox.docker-save.tar", "rb") as f:
        d.run_cli("load", input=f.read(), check=True)
    return "busybox:local"


def both(dy: Daemon, *args: str, input: str | None = None):
    """The same command through our CLI and the docker CLI: (ours, docker's)."""
    return dy.run_cli(*args, input=input), dy.docker(*args, input=input)


def assert_same(ours, theirs, status: int | None = None, stdout=None, stderr=None):
    """Both CLIs answered alike (status, stdout, stderr), and as given."""
    assert (ours.returncode, ours.stdout, ours.stderr) == \
        (theirs.returncode, theirs.stdout, theirs.stderr)
    if status is not None:
        assert ours.returncode == status, ours.stderr
    if stdout is not None:
        assert ours.stdout == stdout
    if stderr is not None:
        assert ours.stderr == stderr
