"""Restart policies: whether a container that exited starts again, and when.

The decision, as dockerd's restartmanager makes it, for one container:

    no              never
    always          always (even after `docker stop`: that cancels only the
                    restart of the exit it causes, see `cancel`)
    unless-stopped  unless a user stopped or killed it (HasBeenManuallyStopped)
    on-failure[:N]  when the exit code is not 0, and fewer than N restarts were
                    made (N = 0: no limit)

and the delay before the restart: 100 ms, doubled at every exit, at most a
minute, and back to 100 ms when the container had been up 10 s or more. The
delay grows at every decision, a refused one included, as dockerd's does.

A manager lives as long as the container is not started by hand: `docker start`
and `docker restart` throw it away (and with it the backoff and the restart
count), policy restarts keep it. `cancel` is for good: a manager canceled by a
stop or kill restarts nothing more; the next manual start makes a new one.

Pure logic, no I/O and no clock: the caller says how long the container ran and
waits the delay itself.
"""

from __future__ import annotations

from typing import Any

DEFAULT_DELAY = 0.1        # seconds before the first restart
MAX_DELAY = 60.0
BACKOFF = 2
RESET_AFTER = 10.0         # up this long: the next delay is DEFAULT_DELAY again


def policy_name(policy: dict[str, Any] | None) -> str:
    """The policy's name, "no" for an unset one."""
    return (policy or {}).get("Name") or "no"


class RestartManager:
    def __init__(self, policy: dict[str, Any] | None, restart_count: int = 0):
        self.policy = dict(policy or {})
        self.restart_count = restart_count
        self.delay = 0.0      # 0: no exit seen yet
        self.canceled = False

    def set_policy(self, policy: dict[str, Any] | None) -> None:
        """`docker update --restart`: takes effect at the next exit."""
        self.policy = dict(policy or {})

    def should_restart(self, exit_code: int, manually_stopped: bool,
                       ran_for: float) -> float | None:
        """The delay before restarting the container that just exited, or None
        when it stays stopped. A restart counts at once (`restart_count`)."""
        name = policy_name(self.policy)
        if name == "no" or self.canceled:
            return None
        if ran_for >= RESET_AFTER:
            self.delay = 0.0
        if self.delay == 0.0:
            self.delay = DEFAULT_DELAY
        elif self.delay < MAX_DELAY:
            self.delay *= BACKOFF
        self.delay = min(self.delay, MAX_DELAY)

        if name == "always":
            restart = True
        elif name == "unless-stopped":
            restart = not manually_stopped
        elif name == "on-failure":
            limit = self.policy.get("MaximumRetryCount") or 0
            restart = exit_code != 0 and (limit == 0 or self.restart_count < limit)
        else:
            restart = False
        if not restart:
            return None
        self.restart_count += 1
        return self.delay

    def cancel(self) -> None:
        """No restart from this manager any more (a user stopped or killed the
        container: dockerd's ExitOnNext)."""
        self.canceled = True
