"""`update`: resources and restart policy of a container, through our CLI, the
docker CLI and docker-py. A live container's cgroup files change at once (with
our runtime and with runc, each through its `update` verb); a stopped one gets
them at its next start; bad requests get dockerd's errors and change nothing.
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from harness import wait_for
from test_containers_lifecycle import dy  # noqa: F401
from test_containers_restore import IMAGE, detached

MIB = 1 << 20


def cgroup_file(cid: str, controller: str, name: str) -> str:
    with open(f"/sys/fs/cgroup/{controller}/dockyard/{cid}/{name}") as f:
        return f.read().strip()


def limits(cid: str) -> dict[str, str]:
    return {"memory": cgroup_file(cid, "memory", "memory.limit_in_bytes"),
            "memsw": cgroup_file(cid, "memory", "memory.memsw.limit_in_bytes"),
            "quota": cgroup_file(cid, "cpu", "cpu.cfs_quota_us"),
            "period": cgroup_file(cid, "cpu", "cpu.cfs_period_us"),
            "shares": cgroup_file(cid, "cpu", "cpu.shares"),
            "pids": cgroup_file(cid, "pids", "pids.max")}


def host_config(dy, ref: str) -> dict:
    return dy.api().get(f"/containers/{ref}/json")["HostConfig"]


def update_events(dy, cid: str) -> int:
    response = dy.api().request("GET", "/events", query={
        "since": "0", "until": f"{time.time():.9f}",
        "filters": json.dumps({"container": [cid], "event": ["update"]})})
    return len([line for line in response.read().splitlines() if line.strip()])


@pytest.mark.parametrize("runtime", ["dockyard", "runc"])
def test_a_live_containers_cgroup_changes(dy, runtime):
    cid = detached(dy, "--runtime", runtime, "--name", "live", "-m", "64m", IMAGE,
                   "sleep", "1000")
    assert limits(cid)["memory"] == str(64 * MIB)

    r = dy.run_cli("update", "-m", "96m", "--memory-swap", "192m", "--cpus", "0.5",
                   "--pids-limit", "40", "live")
    assert (r.returncode, r.stdout, r.stderr) == (0, "live\n", "")
    got = limits(cid)
    assert (got["memory"], got["memsw"], got["quota"], got["period"], got["pids"]) == \
        (str(96 * MIB), str(192 * MIB), "50000", "100000", "40")
    hc = host_config(dy, cid)
    assert (hc["Memory"], hc["MemorySwap"], hc["NanoCpus"], hc["PidsLimit"]) == \
        (96 * MIB, 192 * MIB, 500_000_000, 40)

    r = dy.docker("update", "--cpu-shares", "512", "--pids-limit", "-1", cid[:12])
    assert (r.returncode, r.stdout) == (0, cid[:12] + "\n"), r.stderr
    assert (limits(cid)["shares"], limits(cid)["pids"]) == ("512", "max")
    assert host_config(dy, cid)["PidsLimit"] == 0

    client = dy.client()
    try:
        c = client.containers.get("live")
        assert c.update(mem_limit="48m", memswap_limit="100m", mem_reservation="32m") == \
            {"Warnings": None}
        c.reload()
        assert (c.attrs["HostConfig"]["Memory"], c.attrs["HostConfig"]["MemoryReservation"]) \
            == (48 * MIB, 32 * MIB)
    finally:
        client.close()
    assert (limits(cid)["memory"], limits(cid)["memsw"]) == (str(48 * MIB), str(100 * MIB))
    assert cgroup_file(cid, "memory", "memory.soft_limit_in_bytes") == str(32 * MIB)
    assert update_events(dy, cid) == 3


def test_a_stopped_container_gets_its_update_at_the_next_start(dy):
    r = dy.docker("create", "--network", "none", "--name", "later", IMAGE, "sleep", "1000")
    cid = r.stdout.strip()
    dy.seen.add(cid)
    r = dy.docker("update", "-m", "32m", "--memory-swap", "64m", "--cpu-quota", "20000",
                  "--restart", "unless-stopped", "later")
    assert (r.returncode, r.stdout) == (0, "later\n"), r.stderr
    assert not os.path.exists(f"/sys/fs/cgroup/memory/dockyard/{cid}")
    dy.docker("start", "later", check=True)
    got = limits(cid)
    assert (got["memory"], got["memsw"], got["quota"]) == (str(32 * MIB), str(64 * MIB),
                                                          "20000")
    assert host_config(dy, cid)["RestartPolicy"] == {"Name": "unless-stopped",
                                                    "MaximumRetryCount": 0}
    # a live update is in the record too: the next start builds the cgroup from it
    dy.run_cli("container", "update", "--pids-limit", "30", "--cpu-shares", "256", "later",
               check=True)
    dy.docker("restart", "-t", "0", "later", check=True)
    got = limits(cid)
    assert (got["memory"], got["quota"], got["shares"], got["pids"]) == \
        (str(32 * MIB), "20000", "256", "30")


def test_a_new_restart_policy_applies_at_the_next_exit(dy):
    cid = detached(dy, "--name", "policy", IMAGE, "sleep", "1000")
    dy.docker("update", "--restart", "on-failure:1", "policy", check=True)
    pid = dy.api().get(f"/containers/{cid}/json")["State"]["Pid"]
    os.kill(pid, signal.SIGKILL)  # a failure: 137
    wait_for(lambda: dy.api().get(f"/containers/{cid}/json")["RestartCount"] == 1
             and dy.api().get(f"/containers/{cid}/json")["State"]["Status"] == "running",
             what="the restart on failure")
    assert dy.api().get(f"/containers/{cid}/json")["State"]["Pid"] != pid


@pytest.mark.parametrize("args,message", [
    (("-m", "1m"), "Minimum memory limit allowed is 6MB"),
    (("-m", "64m", "--memory-swap", "32m"),
     "Minimum memoryswap limit should be larger than memory limit, see usage"),
    (("-m", "200m"), "Cannot update container {id}: Memory limit should be smaller than "
                     "already set memoryswap limit, update the memoryswap at the same time"),
    (("--cpus", "1"), "Cannot update container {id}: Conflicting options: Nano CPUs cannot "
                      "be updated as CPU Quota has already been set"),
    (("--restart", "always"), "Cannot update container {id}: Restart policy cannot be "
                              "updated because AutoRemove is enabled for the container"),
    (("--restart", "bogus"), "invalid restart policy 'bogus'"),
])
def test_bad_updates_get_dockerds_errors_and_change_nothing(dy, args, message):
    cid = detached(dy, "--rm", "--name", "strict", "-m", "64m", "--cpu-quota", "30000",
                   IMAGE, "sleep", "1000")
    before, files = host_config(dy, cid), limits(cid)
    outputs = []
    for cli in (dy.docker, dy.run_cli):
        r = cli("update", *args, "strict")
        outputs.append((r.returncode, r.stdout, r.stderr))
    assert outputs[0] == outputs[1]
    assert outputs[0][0] == 1
    assert outputs[0][2] == f"Error response from daemon: {message.format(id=cid)}\n"
    assert host_config(dy, cid) == before and limits(cid) == files
    assert update_events(dy, cid) == 0
    dy.docker("rm", "-f", cid, check=True)


def test_update_of_what_is_not_there(dy):
    outputs = [cli("update", "-m", "64m", "nosuch") for cli in (dy.docker, dy.run_cli)]
    assert [(r.returncode, r.stderr) for r in outputs] == \
        [(1, "Error response from daemon: No such container: nosuch\n")] * 2
    outputs = [cli("update", "nosuch") for cli in (dy.docker, dy.run_cli)]
    assert [r.returncode for r in outputs] == [1, 1]
    assert outputs[0].stderr == outputs[1].stderr
    from dockyard.client.api import APIError
    with pytest.raises(APIError) as e:
        dy.api().post("/containers/nosuch/update", body={"Memory": 64 * MIB})
    assert e.value.status == 404


def test_update_of_a_restored_container(dy):
    cid = detached(dy, "--name", "kept", "-m", "64m", IMAGE, "sleep", "1000")
    dy.stop(signal.SIGKILL)
    dy.start()
    dy.docker("update", "--memory", "80m", "--memory-swap", "160m", "kept", check=True)
    assert limits(cid)["memory"] == str(80 * MIB)
