"""Plans run their steps in order and, on a failure, undo what they did."""

from __future__ import annotations

import logging

import pytest

from dockyard.network.plan import Plan, PlanFailed, Step


def recording(log: list[str]) -> Plan:
    """A plan of three steps that write what they do into `log`."""
    return Plan([
        Step("create link", lambda: log.append("create"), lambda: log.append("delete")),
        Step("set MTU", lambda: log.append("mtu")),  # nothing to undo
        Step("add address", lambda: log.append("addr"), lambda: log.append("del addr")),
    ])


def test_steps_run_in_order():
    log: list[str] = []
    plan = recording(log)
    plan.run()
    assert log == ["create", "mtu", "addr"]
    assert [s.name for s in plan.done] == ["create link", "set MTU", "add address"]


def test_failure_undoes_the_steps_taken_newest_first():
    log: list[str] = []
    plan = recording(log)

    def refuse():
        raise OSError(101, "RTM_NEWROUTE default via 10.0.0.1: Network is unreachable")

    plan.add("add default route", refuse, lambda: log.append("never: it was not taken"))
    with pytest.raises(PlanFailed) as failed:
        plan.run()
    assert log == ["create", "mtu", "addr", "del addr", "delete"]
    assert failed.value.step == "add default route"
    assert isinstance(failed.value.error, OSError)
    assert failed.value.__cause__ is failed.value.error
    assert str(failed.value) == ("add default route: [Errno 101] RTM_NEWROUTE default via "
                                 "10.0.0.1: Network is unreachable")
    assert plan.done == []


def test_a_failing_undo_is_logged_and_the_rest_still_run(caplog):
    log: list[str] = []

    def broken_undo():
        raise OSError(16, "busy")

    plan = Plan([
        Step("first", lambda: log.append("first"), lambda: log.append("undo first")),
        Step("second", lambda: log.append("second"), broken_undo),
        Step("third", lambda: 1 / 0),
    ])
    with caplog.at_level(logging.WARNING), pytest.raises(PlanFailed) as failed:
        plan.run()
    assert isinstance(failed.value.error, ZeroDivisionError)  # the first error, not the undo's
    assert log == ["first", "second", "undo first"]
    assert "undo of 'second' failed" in caplog.text


def test_undo_all_tears_down_a_plan_that_succeeded():
    log: list[str] = []
    plan = recording(log)
    plan.run()
    plan.undo_all()
    assert log == ["create", "mtu", "addr", "del addr", "delete"]
    plan.undo_all()  # nothing left to undo
    assert log[-1] == "delete" and len(log) == 5


def test_an_interrupt_undoes_and_goes_on_as_itself():
    log: list[str] = []
    plan = recording(log)

    def interrupted():
        raise KeyboardInterrupt

    plan.add("wait", interrupted)
    with pytest.raises(KeyboardInterrupt):
        plan.run()
    assert log[-2:] == ["del addr", "delete"]
