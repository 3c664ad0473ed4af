"""A process's signal dispositions and mask, as a container's process must
start: every signal at its default action, none blocked.

Whatever the daemon was started with must not reach the container. Python
handles SIGINT and ignores SIGPIPE and SIGXFSZ; a daemon started by nohup,
or as a shell's background job, ignores SIGHUP, SIGINT and SIGQUIT. An
ignored signal stays ignored across execve, and a shell may not trap a
signal ignored when it started: `trap ... HUP` in the container would do
nothing. Only stdlib and our syscalls: the container init calls this in a
forked, single-threaded process.
"""

from __future__ import annotations

import signal

from dockyard.linux import syscalls


def reset() -> None:
    """Every signal but SIGKILL and SIGSTOP to SIG_DFL, and an empty mask."""
    # Every number, not valid_signals(): that leaves out 32 and 33.
    for sig in range(1, signal.NSIG):
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            signal.signal(sig, signal.SIG_DFL)
        except OSError:  # one the C library keeps for itself (32, 33)
            syscalls.sigaction(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
