"""A plan: named steps, each with the step that takes it back.

Setting up a container's network is a chain of kernel changes (a veth pair,
its move into the sandbox, addresses, routes, packet rules), and any of them
can fail: a name taken, a gateway unreachable, a module missing. Moby's
bridge driver writes this as an ordered list of named, conditional steps;
moby's containerStart defers an undo for every step it has taken. A Plan is
both: it runs its steps in order and, when one fails, undoes the ones already
done, newest first, so a failed start leaves nothing behind (the leaked veths
and namespaces of bocker and mocker are what happens without it).

The same plan undoes everything later on request (`undo_all`): what was set
up in one place is torn down by the same list.

An undo that fails is logged and the others still run: the first error is the
one worth reporting, and giving up half-way would leave more behind.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Iterable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Step:
    """One change to make: `do` makes it, `undo` (if it needs one) reverts it.

    The name reads as the action ("create veth pair veth1a2b3c4") and
    prefixes the error when the step fails."""

    name: str
    do: Callable[[], object]
    undo: Callable[[], object] | None = None


class PlanFailed(Exception):
    """A step failed; the steps before it were undone. `error` is the step's own."""

    def __init__(self, step: str, error: BaseException):
        super().__init__(step, error)
        self.step = step
        self.error = error

    def __str__(self) -> str:
        return f"{self.step}: {self.error}"


class Plan:
    def __init__(self, steps: Iterable[Step] = ()):
        self.steps: list[Step] = list(steps)
        self.done: list[Step] = []

    def add(self, name: str, do: Callable[[], object],
            undo: Callable[[], object] | None = None) -> None:
        self.steps.append(Step(name, do, undo))

    def run(self) -> None:
        """Take every step in order; on a failure, undo those taken and raise PlanFailed."""
        for step in self.steps:
            try:
                step.do()
            except BaseException as e:
                # Undo on interrupts too (a KeyboardInterrupt, a cancelled
                # thread), but let those go on as themselves.
                self.undo_all()
                if isinstance(e, Exception):
                    raise PlanFailed(step.name, e) from e
                raise
            self.done.append(step)

    def undo_all(self) -> None:
        """Undo the steps taken, newest first; failures are logged, not raised."""
        while self.done:
            step = self.done.pop()
            if step.undo is None:
                continue
            try:
                step.undo()
            except Exception:
                log.warning("undo of %r failed", step.name, exc_info=True)
