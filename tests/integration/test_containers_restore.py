"""Live restore: containers outlive their daemon, and a killed shim or daemon
leaves nothing behind.

The shims are detached from dockyardd: a daemon stopped with SIGTERM or killed
with SIGKILL leaves its containers running; the next one reconnects to every
live shim, records the exit of the containers that ended meanwhile (removing
the --rm ones), and can then stop, kill, pause and read the logs of all of
them. A shim killed with SIGKILL takes its container with it (exit 137, as
containerd reports a dead shim's task); a daemon killed at any point of a
`docker run` leaves no mount, cgroup or process once it is back and the
containers are removed.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest

from harness import BIN, wait_for
from test_containers_lifecycle import assert_nothing_left, dy, remove_all  # noqa: F401

IMAGE = "busybox:local"
TICKER = 'trap "echo bye; exit 0" TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done'


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # (gone, or going as we read)
        return False


def state(dy, ref: str) -> dict:
    return dy.api().get(f"/containers/{ref}/json")["State"]


def shim_of(pid: int) -> int:
    """A container's init is the child of its shim."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def detached(dy, *args) -> str:
    r = dy.docker("run", "-d", "--network", "none", *args)
    assert r.returncode == 0, r.stderr
    dy.seen.add(r.stdout.strip())
    return r.stdout.strip()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_containers_outlive_the_daemon(dy, sig):
    detached(dy, "--name", "ticker", IMAGE, "sh", "-c", TICKER)
    detached(dy, "--rm", "--name", "gone", IMAGE, "sleep", "1000")
    detached(dy, "--name", "frozen", IMAGE, "sleep", "1000")
    dy.docker("pause", "frozen", check=True)
    pids = {name: state(dy, name)["Pid"] for name in ("ticker", "gone", "frozen")}
    log = dy.api().get("/containers/ticker/json")["LogPath"]
    wait_for(lambda: "tick 3" in dy.docker("logs", "ticker").stdout, what="ticks")

    dy.stop(sig)
    assert all(alive(pid) for pid in pids.values())
    ticks = len(open(log).read().splitlines())
    wait_for(lambda: len(open(log).read().splitlines()) > ticks + 3,
             what="the shim to go on logging without a daemon")
    dy.start()

    s = state(dy, "ticker")
    assert (s["Status"], s["Running"], s["Pid"]) == ("running", True, pids["ticker"])
    s = state(dy, "frozen")
    assert (s["Status"], s["Paused"], s["Pid"]) == ("paused", True, pids["frozen"])
    assert dy.docker("ps", "--format", "{{.Names}}").stdout.split() == ["frozen", "gone", "ticker"]
    # the logs, including what was written while no daemon ran; -f follows the live shim
    out = dy.docker("logs", "ticker").stdout.splitlines()
    assert out[:2] == ["tick 0", "tick 1"] and len(out) > ticks + 3
    results: list = []
    follower = threading.Thread(target=lambda: results.append(dy.docker("logs", "-f", "ticker")))
    follower.start()
    assert dy.docker("unpause", "frozen").returncode == 0
    assert dy.docker("kill", "frozen").returncode == 0
    assert state(dy, "frozen")["ExitCode"] == 137
    assert dy.docker("stop", "ticker").returncode == 0
    assert state(dy, "ticker")["ExitCode"] == 0  # its TERM trap ran
    follower.join(timeout=30)
    assert results[0].stdout.endswith("bye\n")  # -f ended with the container
    dy.docker("stop", "-t", "0", "gone", check=True)
    wait_for(lambda: dy.docker("ps", "-aq", "--filter", "name=gone").stdout == "",
             what="the --rm container to be removed")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_exits_while_the_daemon_is_away_are_recorded(dy, sig):
    short = detached(dy, "--name", "short", IMAGE, "sh", "-c", "sleep 1000; exit 3")
    rm = detached(dy, "--rm", "--name", "rm", IMAGE, "sh", "-c", "sleep 1000; exit 0")
    pids = {cid: state(dy, cid)["Pid"] for cid in (short, rm)}
    dy.stop(sig)
    # end the containers' processes: their shims record the exits without a daemon
    for cid, pid in pids.items():
        wait_for(lambda: open(f"/proc/{pid}/task/{pid}/children").read().split(),
                 what="the sleep to be forked")
        sleep_pid = int(open(f"/proc/{pid}/task/{pid}/children").read().split()[0])
        os.kill(sleep_pid, signal.SIGKILL)
    wait_for(lambda: not any(alive(p) for p in pids.values()), what="the containers to end")
    wait_for(lambda: os.path.exists(os.path.join(dy.root, "containers", short, "exit.json")),
             what="the exit file")
    dy.start()
    s = state(dy, "short")
    assert (s["Status"], s["Running"], s["ExitCode"]) == ("exited", False, 3)
    assert s["FinishedAt"] > s["StartedAt"]
    assert dy.docker("wait", "short").stdout == "3\n"
    assert dy.docker("ps", "-aq", "--no-trunc").stdout.split() == [short]  # --rm one removed
    assert dy.docker("start", "short").returncode == 0  # and it can run again
    assert state(dy, "short")["Running"] is True


def test_a_killed_shim_takes_its_container_with_it(dy):
    cid = detached(dy, "--name", "victim", IMAGE, "sh", "-c", TICKER)
    pid = state(dy, "victim")["Pid"]
    os.kill(shim_of(pid), signal.SIGKILL)
    wait_for(lambda: not state(dy, "victim")["Running"], what="the daemon to notice")
    s = state(dy, "victim")
    assert (s["Status"], s["ExitCode"]) == ("exited", 137)
    wait_for(lambda: not alive(pid), what="the container's processes to be killed")
    assert_nothing_left(dy, [cid])  # (stopped: no bundle, no mount, no cgroup)
    assert dy.docker("start", "victim").returncode == 0  # it can run again
    assert state(dy, "victim")["Running"] is True


def test_a_shim_killed_while_the_daemon_is_away(dy):
    cid = detached(dy, "--name", "victim", IMAGE, "sleep", "1000")
    pid = state(dy, "victim")["Pid"]
    dy.stop(signal.SIGKILL)
    os.kill(shim_of(pid), signal.SIGKILL)
    dy.start()
    s = state(dy, "victim")
    assert (s["Status"], s["ExitCode"]) == ("exited", 137)
    wait_for(lambda: not alive(pid), what="the container's processes to be killed")
    assert_nothing_left(dy, [cid])


@pytest.mark.parametrize("delay", [0.0, 0.03, 0.06, 0.1, 0.15, 0.2, 0.3, 0.5])
def test_daemon_killed_during_run(dy, delay):
    """SIGKILL at some point of `docker run -d`: once the daemon is back, each
    container either runs (and can be stopped) or does not, with nothing of it
    mounted or running; removing them all leaves nothing."""
    results = []
    runner = threading.Thread(target=lambda: results.append(dy.docker(
        "run", "-d", "--network", "none", IMAGE, "sleep", "1000", timeout=60)))
    runner.start()
    time.sleep(delay)  # (the point to kill at: a delay is what is being varied)
    dy.stop(signal.SIGKILL)
    runner.join(timeout=60)
    dy.start()
    for c in dy.api().get("/containers/json", query={"all": "1"}):
        dy.seen.add(c["Id"])
        s = state(dy, c["Id"])
        bundle = os.path.join(dy.exec_root, "containers", c["Id"])
        if s["Running"]:
            assert alive(s["Pid"])
            assert dy.docker("stop", "-t", "0", c["Id"]).returncode == 0
        else:
            assert not os.path.exists(bundle)  # nothing mounted for a stopped container
    ids = remove_all(dy) | dy.seen
    assert_nothing_left(dy, ids)


def test_daemon_killed_during_remove(dy):
    cids = [detached(dy, IMAGE, "sleep", "1000") for _ in range(3)]
    remover = threading.Thread(target=lambda: dy.docker("rm", "-f", *cids, timeout=60))
    remover.start()
    wait_for(lambda: dy.docker("ps", "-q").stdout.count("\n") < 3, timeout=30,
             what="the removal to begin")
    dy.stop(signal.SIGKILL)
    remover.join(timeout=60)
    dy.start()
    left = [c["Id"] for c in dy.api().get("/containers/json", query={"all": "1"})]
    assert set(left) <= set(cids)
    assert_nothing_left(dy, [c for c in cids if c not in left] + [])


def test_restore_reattaches_events_and_wait(dy):
    cid = detached(dy, "--name", "later", IMAGE, "sh", "-c", "sleep 1000")
    dy.stop(signal.SIGKILL)
    dy.start()
    response = dy.api().request("POST", "/containers/later/wait")
    dy.docker("kill", "-s", "TERM", "later")  # PID 1 without a handler: ignored
    dy.docker("stop", "-t", "1", "later", check=True)
    assert json.loads(response.read())["StatusCode"] == 137
    assert cid


@pytest.mark.parametrize("verb", ["create", "start"])
def test_daemon_killed_while_the_runtime_creates_or_starts(dy, tmp_path, verb):
    """The windows a delay cannot reliably hit, held open by a runtime that is
    slow at `create` (the shim has no socket yet) or at `start` (the container
    is created, not started): the restarted daemon undoes the start."""
    ours = BIN / "dockyard-runtime"
    wrapper = tmp_path / "slow-runtime"
    wrapper.write_text(f'#!/bin/sh\nfor a; do [ "$a" = {verb} ] && sleep 2 && break; done\n'
                       f'exec {ours} "$@"\n')
    wrapper.chmod(0o755)
    flags = ("--add-runtime", f"slow={wrapper}")
    dy.stop()
    dy.start(*flags)
    results = []
    runner = threading.Thread(target=lambda: results.append(dy.docker(
        "run", "-d", "--name", "slow", "--runtime", "slow", "--network", "none", IMAGE,
        "sleep", "1000", timeout=60)))
    runner.start()
    wait_for(lambda: _sleeping_wrapper(str(wrapper), verb), what=f"the runtime's slow {verb}")
    dy.stop(signal.SIGKILL)
    runner.join(timeout=60)
    dy.start(*flags)
    s = state(dy, "slow")
    assert (s["Running"], s["Pid"]) == (False, 0)
    cid = dy.api().get("/containers/slow/json")["Id"]
    assert_nothing_left(dy, [cid])
    # (The old shim exits without waiting for its `runtime start`, still asleep in the
    # wrapper, which would then start the next container of that ID: wait it out.)
    wait_for(lambda: not _sleeping_wrapper(str(wrapper), verb), what="the old runtime start")
    assert dy.docker("start", "slow", timeout=60).returncode == 0  # it can start again
    assert state(dy, "slow")["Running"] is True


def _sleeping_wrapper(wrapper: str, verb: str) -> bool:
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().decode().split("\0")
        except OSError:
            continue
        if wrapper in argv and verb in argv:
            return True
    return False


COUNTED_FAILURES = ('n=$(cat /n 2>/dev/null || echo 0); echo $((n+1)) > /n; '
                    '[ "$n" -ge 5 ] && exec sleep 1000; exit 1')


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_a_restart_pending_when_the_daemon_stops_is_made_by_the_next(dy, sig):
    """The record says `restarting`: the next daemon starts the container (which
    fails five times, counting in its own rootfs, then stays up)."""
    cid = detached(dy, "--restart", "always", IMAGE, "sh", "-c", COUNTED_FAILURES)
    wait_for(lambda: dy.api().get(f"/containers/{cid}/json")["RestartCount"] >= 5
             and state(dy, cid)["Restarting"], timeout=20, what="the fifth restart to wait")
    dy.stop(sig)
    dy.start()
    s = state(dy, cid)
    assert (s["Status"], s["Running"], s["Restarting"]) == ("running", True, False)
    assert alive(s["Pid"])
    assert dy.api().get(f"/containers/{cid}/json")["RestartCount"] == 0  # a fresh start


def test_restarts_at_daemon_start_are_done_before_it_serves(dy):
    """Containers with `always` whose shims died with the daemon (as in a reboot)
    are all running again once the daemon answers."""
    cids = [detached(dy, "--restart", "always", IMAGE, "sleep", "1000") for _ in range(6)]
    pids = [state(dy, cid)["Pid"] for cid in cids]
    dy.stop(signal.SIGKILL)
    for pid in pids:
        os.kill(shim_of(pid), signal.SIGKILL)
    dy.start()
    for cid, pid in zip(cids, pids):
        s = state(dy, cid)
        assert (s["Status"], s["Running"]) == ("running", True)
        assert s["Pid"] != pid and alive(s["Pid"]) and not alive(pid)
    assert dy.docker("stop", "-t", "0", *cids).returncode == 0
