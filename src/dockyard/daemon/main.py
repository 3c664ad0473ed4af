"""`dockyardd`: the process. Flags, the data-root lock, the pidfile, the listeners,
and a clean shutdown on SIGTERM/SIGINT.

One daemon owns a data root at a time: it holds an exclusive flock(2) on
`<data-root>/dockyard.lock` for its whole life. The kernel drops the lock when
the process dies, however it dies, so a crash never leaves a stale lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import signal
import socket
import stat
import sys

from dockyard import __version__
from dockyard.daemon.config import Config, ConfigError, load

log = logging.getLogger("dockyardd")


class StartupError(Exception):
    pass


def _lock_data_root(path: str) -> int:
    os.makedirs(path, mode=0o711, exist_ok=True)
    fd = os.open(os.path.join(path, "dockyard.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise StartupError(f"data root {path} is in use by another daemon (pid {holder})") from e
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _alive(pid: int) -> bool:
    """A process that exists and is not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _write_pidfile(path: str) -> None:
    """As dockerd: refuse to start when the pidfile names a live process."""
    try:
        with open(path) as f:
            pid = int(f.read().strip() or 0)
    except (OSError, ValueError):
        pid = 0
    if pid and pid != os.getpid() and _alive(pid):
        raise StartupError(f"pid file found, ensure dockyardd is not running or delete {path}")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(f"{os.getpid()}")


def _unix_listener(path: str) -> socket.socket:
    os.makedirs(os.path.dirname(path) or ".", mode=0o755, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        # Only reached while we hold the data-root lock; a socket left here
        # belongs to a dead daemon. A live daemon on another root using the same
        # path would still answer, so check before taking it over.
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(path)
                raise StartupError(f"socket {path} is in use by another daemon")
            except (ConnectionRefusedError, FileNotFoundError):
                os.unlink(path)
            finally:
                probe.close()
        else:
            raise StartupError(f"{path} exists and is not a socket")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    os.chmod(path, 0o660)
    sock.listen(128)
    return sock


async def _serve(config: Config) -> None:
    from aiohttp import web

    from dockyard.api.app import create_app
    from dockyard.daemon.daemon import Daemon

    daemon = Daemon(config)
    daemon.repair()
    await daemon.start()
    app = create_app(daemon)
    # Long-lived requests (wait, events, attach, logs -f) would hold a shutdown
    # for a minute; their clients see the connection close, as with dockerd.
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    sockets = []
    try:
        for host in config.hosts:
            if host.startswith("unix://"):
                path = host[len("unix://"):]
                sock = _unix_listener(path)
                sockets.append(path)
                await web.SockSite(runner, sock).start()
            elif host.startswith("tcp://"):
                hostport = host[len("tcp://"):]
                addr, _, port = hostport.rpartition(":")
                await web.TCPSite(runner, addr or "127.0.0.1", int(port or 2375)).start()
            else:
                raise StartupError(f"invalid host {host!r}: use unix:///path or tcp://addr:port")
        log.info("API listen on %s", ", ".join(config.hosts))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("processing signal, shutting down")
    finally:
        await daemon.stop()
        await runner.cleanup()
        for path in sockets:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def main(argv: list[str] | None = None) -> int:
    try:
        config, args = load(argv)
    except ConfigError as e:
        print(f"dockyardd: {e}", file=sys.stderr)
        return 1
    if args.version:
        print(f"Dockyard version {__version__}")
        return 0
    logging.basicConfig(
        level={"warn": "WARNING", "fatal": "CRITICAL"}.get(config.log_level, config.log_level.upper()),
        format="time=%(asctime)s level=%(levelname)s msg=%(message)s", stream=sys.stderr)
    if os.geteuid() != 0:
        print("dockyardd: needs to be started with root privileges", file=sys.stderr)
        return 1
    lock_fd = None
    try:
        lock_fd = _lock_data_root(config.data_root)
        os.makedirs(config.exec_root, mode=0o700, exist_ok=True)
        _write_pidfile(config.pidfile_path)
        asyncio.run(_serve(config))
    except StartupError as e:
        print(f"dockyardd: {e}", file=sys.stderr)
        return 1
    finally:
        if lock_fd is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(config.pidfile_path)
            os.close(lock_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
