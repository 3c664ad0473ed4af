"""Restart policies as dockerd applies them: `always`, `on-failure[:N]`,
`unless-stopped`; the backoff between restarts (100 ms, doubling), the
`restarting` state and RestartCount, stop/kill/rm winning over a pending
restart, a manual start or restart starting the count over, and what a
daemon restart starts again.

The timings are read from the daemon's own events (`die`, then `start` after
the backoff; no `restart` event for a policy restart), with wide bounds.
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from harness import wait_for
from test_containers_lifecycle import assert_nothing_left, dy  # noqa: F401
from test_containers_restore import IMAGE, alive, detached, shim_of, state


def restart_count(dy, ref: str) -> int:
    return dy.api().get(f"/containers/{ref}/json")["RestartCount"]


def events(dy, cid: str) -> list[tuple[str, float]]:
    """(action, seconds) of the container's events so far."""
    response = dy.api().request("GET", "/events", query={
        "since": "0", "until": f"{time.time():.9f}",
        "filters": json.dumps({"container": [cid]})})
    return [(e["Action"], e["timeNano"] / 1e9)
            for e in map(json.loads, response.read().splitlines())]


def test_backoff_doubles_and_restart_count_counts(dy):
    cid = detached(dy, "--restart", "always", "--name", "flappy", IMAGE, "sh", "-c", "exit 1")
    # RestartCount 5: four restarts made, the fifth waits 1.6 s (the state shows it meanwhile)
    wait_for(lambda: restart_count(dy, cid) >= 5 and state(dy, cid)["Restarting"], timeout=20,
             what="four restarts")
    s = state(dy, cid)
    assert (s["Status"], s["Running"], s["Restarting"], s["Pid"], s["ExitCode"]) == \
        ("restarting", True, True, 0, 1)
    for cli in (dy.docker, dy.run_cli):
        out = cli("ps", "--filter", "name=flappy", "--format", "{{.Status}}").stdout
        assert out.startswith("Restarting (1) ") and out.endswith(" ago\n"), out
    assert dy.docker("ps", "-q", "--filter", "status=restarting").stdout.strip() == cid[:12]
    dy.docker("stop", cid, check=True)

    seen = events(dy, cid)
    actions = [a for a, _ in seen]
    assert "restart" not in actions
    starts = [t for a, t in seen if a == "start"]
    dies = [t for a, t in seen if a == "die"]
    assert len(starts) >= 5 and len(dies) >= len(starts)
    # the gap between an exit and the next start: 0.1, 0.2, 0.4, 0.8 s (+ the start's own time)
    gaps = [start - die for die, start in zip(dies, starts[1:])][:4]
    for gap, backoff in zip(gaps, (0.1, 0.2, 0.4, 0.8)):
        assert backoff * 0.9 <= gap < backoff + 2.5, gaps
    assert gaps[3] > gaps[0] + 0.3, gaps
    s = state(dy, cid)
    assert (s["Status"], s["Running"], s["Restarting"]) == ("exited", False, False)


def test_on_failure_stops_after_its_retries(dy):
    client = dy.client()
    try:
        c = client.containers.run(IMAGE, ["sh", "-c", "exit 3"], detach=True,
                                  network_mode="none",
                                  restart_policy={"Name": "on-failure", "MaximumRetryCount": 2})
        dy.seen.add(c.id)
        wait_for(lambda: restart_count(dy, c.id) == 2 and not state(dy, c.id)["Running"],
                 timeout=20, what="two retries")
        s = state(dy, c.id)
        assert (s["Status"], s["ExitCode"], s["Restarting"]) == ("exited", 3, False)
        assert [a for a, _ in events(dy, c.id)].count("start") == 3  # the run and 2 retries
        # a success is not a failure: no restart
        ok = client.containers.run(IMAGE, ["true"], detach=True, network_mode="none",
                                   restart_policy={"Name": "on-failure"})
        dy.seen.add(ok.id)
        assert ok.wait()["StatusCode"] == 0
        assert restart_count(dy, ok.id) == 0 and state(dy, ok.id)["Status"] == "exited"
    finally:
        client.close()


@pytest.mark.parametrize("verb", ["stop", "kill", "rm"])
def test_a_stop_kill_or_rm_wins_over_a_pending_restart(dy, verb):
    cid = detached(dy, "--restart", "always", IMAGE, "sh", "-c", "exit 2")
    # RestartCount 6: the pending restart is 3.2 s away
    wait_for(lambda: restart_count(dy, cid) >= 6 and state(dy, cid)["Restarting"], timeout=30,
             what="a long backoff")
    count = restart_count(dy, cid)
    t0 = time.monotonic()
    args = {"stop": ("stop", cid), "kill": ("kill", cid), "rm": ("rm", "-f", cid)}[verb]
    r = dy.docker(*args)
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < 2  # not after the backoff
    if verb == "rm":
        assert dy.docker("ps", "-aq").stdout == ""
        assert_nothing_left(dy, [cid])
        return
    s = state(dy, cid)
    assert (s["Status"], s["Running"], s["Restarting"], s["ExitCode"]) == \
        ("exited", False, False, 2)
    time.sleep(3.5)  # (what is asserted is that nothing happens when the backoff ends)
    assert restart_count(dy, cid) == count and state(dy, cid)["Status"] == "exited"
    assert [a for a, _ in events(dy, cid)][-1] in ("stop", "die", "kill")


def test_a_user_stop_is_final_for_unless_stopped_and_a_start_resets(dy):
    cid = detached(dy, "--restart", "unless-stopped", IMAGE, "sleep", "1000")
    dy.docker("stop", "-t", "1", cid, check=True)
    assert state(dy, cid)["Status"] == "exited"
    assert "start" not in [a for a, _ in events(dy, cid)][-2:]
    # a crash of a started one restarts it
    flappy = detached(dy, "--restart", "unless-stopped", IMAGE, "sh", "-c", "sleep 0.3; exit 4")
    wait_for(lambda: restart_count(dy, flappy) >= 2, timeout=20, what="restarts")
    dy.docker("stop", "-t", "1", flappy, check=True)
    assert restart_count(dy, flappy) >= 2
    # `docker start` and `docker restart` start the count over, as dockerd
    dy.docker("start", flappy, check=True)
    assert restart_count(dy, flappy) <= 1
    wait_for(lambda: restart_count(dy, flappy) >= 1, timeout=20, what="a restart")
    dy.docker("restart", "-t", "1", flappy, check=True)
    assert restart_count(dy, flappy) == 0
    assert state(dy, flappy)["Running"] is True
    dy.docker("rm", "-f", flappy, check=True)


def test_pause_and_rm_of_a_restarting_container_are_refused(dy):
    cid = detached(dy, "--restart", "always", IMAGE, "sh", "-c", "exit 1")
    wait_for(lambda: restart_count(dy, cid) >= 6 and state(dy, cid)["Restarting"], timeout=30,
             what="a long backoff")
    r = dy.docker("pause", cid)
    assert r.returncode == 1
    assert f"Container {cid} is restarting, wait until the container is running" in r.stderr
    r = dy.docker("rm", cid)
    assert r.returncode == 1 and "You cannot remove a restarting container" in r.stderr
    assert dy.docker("start", cid).returncode == 0  # already "running": nothing to do
    dy.docker("rm", "-f", cid, check=True)


def test_policies_across_a_daemon_restart(dy):
    always = detached(dy, "--restart", "always", IMAGE, "sleep", "1000")
    unless = detached(dy, "--restart", "unless-stopped", IMAGE, "sleep", "1000")
    stopped = detached(dy, "--restart", "unless-stopped", IMAGE, "sleep", "1000")
    stopped_always = detached(dy, "--restart", "always", IMAGE, "sleep", "1000")
    failing = detached(dy, "--restart", "on-failure", IMAGE, "sleep", "1000")
    plain = detached(dy, IMAGE, "sleep", "1000")
    kept = detached(dy, "--restart", "always", IMAGE, "sleep", "1000")
    dy.docker("stop", "-t", "0", stopped, stopped_always, check=True)
    pids = {cid: state(dy, cid)["Pid"] for cid in (always, unless, failing, plain, kept)}
    dy.stop(signal.SIGKILL)
    # while no daemon runs: shims killed (as by a reboot), or the container killed
    for cid in (always, plain):
        os.kill(shim_of(pids[cid]), signal.SIGKILL)
    for cid in (unless, failing):
        os.kill(pids[cid], signal.SIGKILL)
    # (a container outlives its killed shim until the daemon is back and kills it)
    wait_for(lambda: not any(alive(pids[c]) for c in (unless, failing)),
             what="the containers to end")
    dy.start()
    for cid in (always, unless, stopped_always):
        s = state(dy, cid)
        assert (s["Status"], s["Running"]) == ("running", True), cid
        assert restart_count(dy, cid) == 0
        assert alive(s["Pid"])
    assert state(dy, kept)["Pid"] == pids[kept]  # still the same process
    assert state(dy, stopped)["Status"] == "exited"  # stopped by the user
    assert (state(dy, plain)["Status"], state(dy, plain)["ExitCode"]) == ("exited", 137)
    s = state(dy, failing)
    assert (s["Status"], s["Running"]) == ("running", True)  # exit 137 is a failure
