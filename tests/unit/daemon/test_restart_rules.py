"""Restart policy decisions (daemon/restartmanager.py), the restore-time
decision (daemon/restarts.py), and the update rules (daemon/containerupdate.py)."""

import pytest

from dockyard.daemon.container import Container, host_config, new_state
from dockyard.daemon.containerupdate import CannotUpdate, live_resources, merge
from dockyard.daemon.restartmanager import DEFAULT_DELAY, MAX_DELAY, RestartManager
from dockyard.daemon.restarts import Restarts
from dockyard.runtime.ocicli.update import ram_in_bytes, resources_from_flags


def policy(name, count=0):
    return {"Name": name, "MaximumRetryCount": count}


@pytest.mark.parametrize("name,code,manual,expected", [
    ("no", 1, False, False),
    ("always", 0, False, True),
    ("always", 0, True, True),          # a stop cancels the manager instead
    ("unless-stopped", 0, False, True),
    ("unless-stopped", 1, True, False),
    ("on-failure", 1, False, True),
    ("on-failure", 0, False, False),
    ("on-failure", 1, True, True),
])
def test_the_policy_decides(name, code, manual, expected):
    assert (RestartManager(policy(name)).should_restart(code, manual, 0.5) is not None) \
        is expected


def test_backoff_doubles_from_100ms_up_to_a_minute():
    m = RestartManager(policy("always"))
    delays = [m.should_restart(0, False, 0.1) for _ in range(12)]
    assert delays[:4] == [DEFAULT_DELAY, 0.2, 0.4, 0.8]
    assert all(b == min(2 * a, MAX_DELAY) for a, b in zip(delays, delays[1:]))
    assert delays[-1] == MAX_DELAY
    assert m.restart_count == 12


def test_backoff_resets_after_10s_up():
    m = RestartManager(policy("always"))
    for _ in range(5):
        m.should_restart(1, False, 1.0)
    assert m.should_restart(1, False, 9.9) == DEFAULT_DELAY * 2 ** 5
    assert m.should_restart(1, False, 10.0) == DEFAULT_DELAY
    assert m.should_restart(1, False, 0.0) == DEFAULT_DELAY * 2


def test_on_failure_counts_its_retries():
    m = RestartManager(policy("on-failure", 2))
    assert [m.should_restart(1, False, 0) is not None for _ in range(4)] == \
        [True, True, False, False]
    assert m.restart_count == 2
    # the count a container already has counts (a daemon restart keeps it)
    assert RestartManager(policy("on-failure", 2), 2).should_restart(1, False, 0) is None
    assert RestartManager(policy("on-failure"), 50).should_restart(1, False, 0) is not None


def test_a_refused_restart_still_grows_the_delay():
    m = RestartManager(policy("on-failure"))
    assert m.should_restart(0, False, 0) is None
    assert m.should_restart(1, False, 0) == 0.2


def test_cancel_is_for_good_and_a_new_policy_applies_next():
    m = RestartManager(policy("always"))
    m.cancel()
    assert m.should_restart(1, False, 0) is None
    m = RestartManager(policy("no"))
    m.set_policy(policy("always"))
    assert m.should_restart(0, False, 0) == DEFAULT_DELAY


def _container(name, exit_code=0, manual=False, started=True, running=False, count=0,
               retries=0):
    state = new_state()
    if started:
        state.update(Status="exited", StartedAt="2024-01-01T00:00:00Z",
                     FinishedAt="2024-01-01T00:00:05Z", ExitCode=exit_code)
    if running:
        state.update(Status="running", Running=True)
    if manual:
        state["StoppedByUser"] = True
    return Container({"Id": "x" * 64, "Name": "/c", "State": state, "RestartCount": count,
                      "Config": {}, "HostConfig": host_config({"RestartPolicy": policy(name, retries)})})


@pytest.mark.parametrize("container,expected", [
    (_container("always", manual=True), True),        # dockerd starts `always` ones anyway
    (_container("unless-stopped"), True),
    (_container("unless-stopped", manual=True), False),
    (_container("on-failure", 1), True),
    (_container("on-failure", 0), False),
    (_container("on-failure", 1, count=1, retries=1), False),
    (_container("always", started=False), False),      # created, never started
    (_container("always", running=True), False),
    (_container("no", 1), False),
])
def test_restart_at_restore(container, expected):
    assert Restarts(object()).restart_at_restore(container) is expected


def test_update_merges_what_is_set():
    hc = host_config({"Memory": 64 << 20, "CpuShares": 512})
    merge(hc, {"Memory": 0, "CpuShares": 0, "PidsLimit": 20, "NanoCpus": 500_000_000,
               "RestartPolicy": {"Name": "", "MaximumRetryCount": 0}})
    assert (hc["Memory"], hc["MemorySwap"], hc["CpuShares"], hc["PidsLimit"], hc["NanoCpus"]) \
        == (64 << 20, 128 << 20, 512, 20, 500_000_000)
    assert hc["RestartPolicy"] == policy("no")
    merge(hc, {"RestartPolicy": policy("on-failure", 3)})
    assert hc["RestartPolicy"] == policy("on-failure", 3)


@pytest.mark.parametrize("before,body,message", [
    ({}, {"Memory": 64 << 20}, "Memory limit should be smaller than already set memoryswap"),
    ({"CpuQuota": 50000}, {"NanoCpus": 10**9}, "Nano CPUs cannot be updated as CPU Quota"),
    ({"NanoCpus": 10**9}, {"CpuPeriod": 50000}, "CPU Period cannot be updated as NanoCPUs"),
    ({"AutoRemove": True}, {"RestartPolicy": policy("always")},
     "Restart policy cannot be updated because AutoRemove is enabled"),
])
def test_update_conflicts(before, body, message):
    with pytest.raises(CannotUpdate, match=message):
        merge(host_config(before), body)


def test_live_resources_are_those_of_the_request():
    assert live_resources({"Memory": 0, "PidsLimit": None}) == {}
    assert live_resources({"Memory": 64 << 20, "MemorySwap": -1, "PidsLimit": 0,
                           "NanoCpus": 1_500_000_000, "CpuShares": 0}) == {
        "memory": {"limit": 64 << 20}, "pids": {"limit": -1},
        "cpu": {"period": 100000, "quota": 150000}}


def test_runtime_update_flags():
    assert ram_in_bytes("64m") == 64 << 20 and ram_in_bytes("1.5GiB") == 3 << 29
    with pytest.raises(ValueError):
        ram_in_bytes("lots")
    assert resources_from_flags({"memory": "64m", "memory-swap": "-1", "cpu-quota": "2000",
                                 "cpuset-cpus": "0", "pids-limit": "10"}) == {
        "memory": {"limit": 64 << 20, "swap": -1}, "cpu": {"quota": 2000, "cpus": "0"},
        "pids": {"limit": 10}}
