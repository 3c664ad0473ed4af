"""Userland proxies, the daemon's side: bind the host ports, start one proxy
process per container (dockyard.network.proxy) with those sockets, find it
again after a daemon restart, and stop it.

Life cycle, for one container:

    proxies = Proxies(<exec-root>/proxies)          # one per daemon
    socks = [bind("0.0.0.0", 8080, "tcp"), ...]     # "address already in use" here
    pid = proxies.start(cid, [Binding("tcp", socks[0], "172.17.0.2", 80), ...])
    ...                                             # the daemon may exit and restart
    proxies.find(cid)                               # -> pid, or None
    proxies.stop(cid)                               # SIGTERM, then SIGKILL; pidfile gone
    proxies.reap_stale(keep={ids of running containers})   # after a restart

The daemon binds, not the proxy, so that a port in use is reported by the
start that asked for it, in dockerd's words, and the port is held from that
moment; connections that come before the proxy serves wait in the backlog.
start() hands the sockets over: they are closed in the daemon whatever
happens, so only the proxy holds the port and stopping it frees the port.

Each proxy writes its PID to `<pidfile_dir>/<container-id>.pid` itself
(crash-safe) before it reports ready, so a daemon that dies right after the
spawn still finds it. A PID read back is trusted only if /proc/<pid>/cmdline
is our proxy program for that container, and signals go through a pidfd
opened before that check, so a PID the kernel gave to another process since
is never signalled.

Not async: spawning takes ~1 ms, stop ~1 ms for a proxy that exits at once;
an asyncio caller runs the waits (start with wait=True, stop) in a thread.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Collection

from dockyard import errdefs

# How the proxy is started, for the shortest time to serving (bench/bench_ports.py):
# -I -S: no site (no venv .pth files to read: the proxy needs only the stdlib),
# no user site, no PYTHON* variables, no script directory on sys.path; and the
# module imported from its directory (appended to sys.path, so nothing there
# can shadow the stdlib), because an import uses the cached bytecode while a
# script named on the command line is compiled anew each time (~4 ms).
# Spawn to ready on a 2-CPU machine: 16 ms, against 22 ms for the script with
# -I -S and 28 ms for `python -m dockyard.network.proxy`.
PROGRAM_DIR = os.path.dirname(os.path.abspath(__file__))
_BOOT = "import sys; sys.path.append(sys.argv.pop(1)); import proxy; sys.exit(proxy.main())"

READY_TIMEOUT = 16.0  # dockerd's wait for its proxy's status
STOP_TIMEOUT = 2.0    # SIGTERM ends a proxy at once; SIGKILL after this
LISTEN_BACKLOG = 4096  # the kernel caps it at net.core.somaxconn, which Go passes


class ProxyStartFailed(errdefs.System):
    """dockerd's "Error starting userland proxy: ...". The caller puts
    "driver failed programming external connectivity on endpoint NAME (ID): "
    before it; dockerd answers 500 for both."""


@dataclass(frozen=True)
class Binding:
    """One published port: the host socket from bind() and where its traffic goes."""
    proto: str
    sock: socket.socket
    container_ip: str
    container_port: int


def bind(host_ip: str, host_port: int, proto: str) -> socket.socket:
    """A socket bound to host_ip:host_port (listening, for TCP), as Go's
    net.Listen makes it for docker-proxy: SO_REUSEADDR for TCP (a port whose
    last connections linger in TIME_WAIT can be published again) and
    IPV6_V6ONLY for IPv6 (:: does not take IPv4's port too). host_port 0
    lets the kernel pick one (getsockname() tells which).

    Fails with dockerd 20.10's message, e.g. "Error starting userland proxy:
    listen tcp4 0.0.0.0:8080: bind: address already in use"."""
    if proto not in ("tcp", "udp"):
        raise errdefs.NotImplemented(f"publishing {proto} ports is not supported")
    host_ip = host_ip or "0.0.0.0"
    v6 = ":" in host_ip
    network = f"{proto}{6 if v6 else 4}"
    where = f"[{host_ip}]:{host_port}" if v6 else f"{host_ip}:{host_port}"
    sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET,
                         socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    step = "socket"
    try:
        if v6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if proto == "tcp":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        step = "bind"
        sock.bind((host_ip, host_port))
        if proto == "tcp":
            step = "listen"
            sock.listen(LISTEN_BACKLOG)
    except OSError as e:
        sock.close()
        raise ProxyStartFailed(f"Error starting userland proxy: listen {network} {where}: "
                               f"{step}: {_go_strerror(e)}") from e
    return sock


def _go_strerror(e: OSError) -> str:
    """Go spells errno as glibc does, but lower-case: "address already in use"."""
    text = os.strerror(e.errno) if e.errno else str(e)
    return text[:1].lower() + text[1:]


class Proxies:
    """The proxies of one daemon, their pidfiles under `pidfile_dir` (in the
    exec root: they must not outlive a reboot, and neither do proxies)."""

    def __init__(self, pidfile_dir: str, python: str | None = None):
        self.pidfile_dir = pidfile_dir
        self.python = python or sys.executable
        # Proxies started by this daemon process are our children: kept to reap them.
        self._children: dict[str, subprocess.Popen] = {}

    def pidfile(self, container_id: str) -> str:
        return os.path.join(self.pidfile_dir, f"{container_id}.pid")

    def command(self, container_id: str, bindings: list[Binding],
                ready_fd: int | None = None) -> list[str]:
        argv = [self.python, "-I", "-S", "-c", _BOOT, PROGRAM_DIR, "--container-id", container_id,
                "--pidfile", self.pidfile(container_id)]
        if ready_fd is not None:
            argv += ["--ready-fd", str(ready_fd)]
        for b in bindings:
            argv += ["--binding",
                     f"{b.proto},{b.sock.fileno()},{b.container_ip},{b.container_port}"]
        return argv

    def start(self, container_id: str, bindings: list[Binding], *, wait: bool = True,
              timeout: float = READY_TIMEOUT, log_path: str | None = None) -> int:
        """Start the proxy serving `bindings` for `container_id`; its PID.

        The sockets are handed over: closed here whatever happens. With
        wait, return once the proxy serves (its pidfile written), or raise
        ProxyStartFailed (the proxy is gone then); without, return at once:
        the sockets already accept, and connections wait for the proxy in the
        backlog. The proxy's stderr goes to `log_path` (appended), or nowhere,
        as dockerd's."""
        ready_r = None
        try:
            if not bindings:
                raise errdefs.InvalidParameter("a proxy needs at least one binding")
            if self.find(container_id) is not None:
                raise errdefs.Conflict(f"a userland proxy already runs for {container_id}")
            os.makedirs(self.pidfile_dir, exist_ok=True)
            ready_r, ready_w = os.pipe2(os.O_CLOEXEC) if wait else (None, None)
            try:
                proc = self._spawn(container_id, bindings, ready_w, log_path)
            finally:
                if ready_w is not None:
                    os.close(ready_w)
        except BaseException:
            if ready_r is not None:
                os.close(ready_r)
            raise
        finally:
            for b in bindings:
                b.sock.close()
        self._children[container_id] = proc
        if ready_r is None:
            return proc.pid
        try:
            status = _read_status(ready_r, timeout)
        finally:
            os.close(ready_r)
        if status != "0\n":
            self.stop(container_id)
            if status is None:
                raise ProxyStartFailed("Timed out proxy starting the userland proxy")
            detail = status[2:] if status.startswith("1\n") else "exited without a status"
            raise ProxyStartFailed(f"Error starting userland proxy: {detail}")
        return proc.pid

    def _spawn(self, container_id: str, bindings: list[Binding], ready_w: int | None,
               log_path: str | None) -> subprocess.Popen:
        fds = [b.sock.fileno() for b in bindings] + ([ready_w] if ready_w is not None else [])
        log = os.open(log_path or os.devnull,
                      os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        try:
            # Its own session from the start: a ^C for the daemon's terminal is
            # not for it. pass_fds keeps the fd numbers the --binding flags name.
            return subprocess.Popen(self.command(container_id, bindings, ready_w),
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=log, pass_fds=fds, start_new_session=True)
        finally:
            os.close(log)

    def find(self, container_id: str) -> int | None:
        """The PID of the live proxy of `container_id`, or None."""
        proc = self._children.get(container_id)
        if proc is not None:
            # Our child, not yet reaped: its PID cannot have been reused.
            if proc.poll() is None:
                return proc.pid
            del self._children[container_id]
        pid = _read_pid(self.pidfile(container_id))
        if pid is not None and is_proxy(pid, container_id):
            return pid
        return None

    def stop(self, container_id: str, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the proxy of `container_id`, if it runs (SIGTERM, SIGKILL after
        `timeout`), and remove its pidfile. Never signals a process that is
        not that proxy."""
        proc = self._children.pop(container_id, None)
        if proc is not None and proc.poll() is None:
            # Our unreaped child: the PID is still its own, whatever its cmdline.
            _terminate(proc.pid, None, timeout)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout)  # reap it; it is gone unless even SIGKILL failed
        else:
            pid = self.find(container_id)
            if pid is not None:
                _terminate(pid, container_id, timeout)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.pidfile(container_id))

    def reap_stale(self, keep: Collection[str]) -> list[str]:
        """After a daemon restart (or a crash): stop the proxies of containers
        not in `keep` (the running ones), and remove pidfiles whose proxy is
        gone and temp files of pidfiles never finished. The IDs whose
        proxies were stopped."""
        stopped = []
        ids = set(self._children)
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(self.pidfile_dir):
                if name.endswith(".pid"):
                    ids.add(name[:-len(".pid")])
                elif name.startswith(".tmp-proxy-"):
                    self._remove_orphan_temp(name)
        for cid in sorted(ids):
            if cid not in keep:
                if self.find(cid) is not None:
                    stopped.append(cid)
                self.stop(cid)
            elif self.find(cid) is None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.pidfile(cid))
        return stopped

    def _remove_orphan_temp(self, name: str) -> None:
        """.tmp-proxy-<pid>: a pidfile being written by that proxy, or left by
        one that died while writing it."""
        pid = name[len(".tmp-proxy-"):]
        if pid.isdigit() and os.path.exists(f"/proc/{pid}"):
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.pidfile_dir, name))


def is_proxy(pid: int, container_id: str) -> bool:
    """Whether process `pid` is our proxy program serving `container_id`."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().decode(errors="replace").split("\0")
    except OSError:
        return False  # gone (a zombie's cmdline is empty: no match either)
    # Started by command() (its directory), as a script, or with -m.
    if not any(a.endswith(("dockyard/network", "dockyard/network/proxy.py"))
               or a == "dockyard.network.proxy" for a in argv):
        return False
    return any(a == "--container-id" and nxt == container_id for a, nxt in zip(argv, argv[1:]))


def _terminate(pid: int, container_id: str | None, timeout: float) -> None:
    """SIGTERM, wait, SIGKILL, wait, through a pidfd. With a container_id the
    process is first checked to be that container's proxy; the pidfd is opened
    before the check, so the signals reach the process checked or none (a
    pidfd never refers to a later process with the same PID)."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        if container_id is not None and not is_proxy(pid, container_id):
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                signal.pidfd_send_signal(pidfd, sig)
            except ProcessLookupError:
                return
            if select.select([pidfd], [], [], wait)[0]:  # readable once it has exited
                return
    finally:
        os.close(pidfd)


def _read_pid(path: str) -> int | None:
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def _read_status(fd: int, timeout: float) -> str | None:
    """docker-proxy's status protocol: "0\\n", or "1\\n<error>", then the
    proxy closes its end; "" if it ended without a word, None on timeout."""
    deadline = time.monotonic() + timeout
    data = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        if select.select([fd], [], [], remaining)[0]:
            chunk = os.read(fd, 4096)
            if not chunk:
                return data.decode(errors="replace")
            data += chunk
