"""The container's terminal: a pty from the container's own devpts, whose
master goes to whoever listens on --console-socket (our shim, containerd).

Protocol (runc's, so shims written for runc work with us): the runtime
connects to the UNIX socket and sends one message whose payload is the
master's name ("/dev/ptmx") and whose SCM_RIGHTS ancillary data carries the
master fd. The receiver owns the master from then on; the init keeps only the
slave, as its stdin, stdout, stderr and controlling terminal.

Order inside the init (see init.py): after pivot_root, so /dev/ptmx is the
container's devpts instance (the slave then exists inside the container, as
/dev/pts/N); before /dev may be remounted read-only, because /dev/console
(a bind mount of the slave) must be created.
"""

from __future__ import annotations

import fcntl
import os
import struct
import termios

# <asm-generic/ioctls.h>: _IOR('T', 0x30, unsigned int), _IOW('T', 0x31, int)
TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431


def open_pty(size: tuple[int, int] | None = None) -> tuple[int, str]:
    """(master fd, slave path) of a new pty from /dev/ptmx."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))  # unlockpt
        n = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0" * 4))[0]
        if size and size[0] and size[1]:
            fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))
    except OSError as e:
        os.close(master)
        raise OSError(e.errno, f"open pty: {os.strerror(e.errno)}") from None
    return master, f"/dev/pts/{n}"


def send_master(sock_fd: int, master: int, name: str = "/dev/ptmx") -> None:
    import socket
    sock = socket.socket(fileno=sock_fd)
    try:
        socket.send_fds(sock, [name.encode()], [master])
    finally:
        sock.detach()


def connect(path: str) -> int:
    """Connect to --console-socket; the fd is inherited by the init. OSError
    in runc's words: `dial unix PATH: connect: <strerror>`."""
    import socket
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        raise OSError(e.errno, f"dial unix {path}: connect: {e.strerror}") from None
    return sock.detach()


def become_stdio(slave: str) -> None:
    """The slave becomes fds 0-2 and our controlling terminal.

    We are a session leader without a terminal (the init called setsid), so
    TIOCSCTTY makes this one ours.
    """
    fd = os.open(slave, os.O_RDWR)
    for i in (0, 1, 2):
        os.dup2(fd, i, inheritable=True)
    if fd > 2:
        os.close(fd)
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def recv_master(sock) -> tuple[int, str]:
    """The receiving side (for shims and tests): (master fd, name)."""
    import socket
    msg, fds, _flags, _addr = socket.recv_fds(sock, 4096, 1)
    if not fds:
        raise OSError("no file descriptor received on the console socket")
    return fds[0], msg.decode(errors="replace")
