"""stats and top through the API, our CLI, the docker CLI and docker-py.

stats: dockerd 20.10's frame (the reference response's keys, types and order),
figures read from the container's cgroup that move when the container works
(memory it takes, CPU it burns), the limits it was given, a stream of one frame
a second whose precpu is the frame before, the stream's end when the client
leaves or the container is removed, and containers taken back after the
daemon was killed. top: the host's ps over the container's processes, and
dockerd's errors. Both CLIs print the same rows.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from dockyard.client.api import APIError, Client, json_messages
from harness import DOCKYARD, fd_targets, wait_for
from paths import REFERENCE
from test_containers_lifecycle import detached, dy  # noqa: F401

IMAGE = "busybox:local"
MiB = 1024 * 1024
SPIN = "while :; do :; done"
# waits for /etc/go (made from the host through the rootfs), then puts 24 MiB
# in /dev/shm (tmpfs: charged to the container's memory)
TAKE_MEMORY = ("while [ ! -e /etc/go ]; do sleep 0.05; done; "
               "dd if=/dev/zero of=/dev/shm/f bs=1048576 count=24 2>/dev/null; sleep 1000")


def shape(value):
    """A JSON value's keys and types, recursively; a list is "list"."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    return "list" if isinstance(value, list) else type(value).__name__


def one_shot(dy, ref: str) -> dict:
    return dy.api().get(f"/containers/{ref}/stats", query={"stream": "0", "one-shot": "1"})


def seconds(rfc3339: str) -> float:
    from dockyard.runtime.logfile import parse_time
    return parse_time(rfc3339) / 1e9


def test_frame_is_dockerds_and_its_figures_move(dy):
    mem = detached(dy, "--name", "mem", "-m", "64m", "--pids-limit", "50", IMAGE,
                   "sh", "-c", TAKE_MEMORY)
    detached(dy, "--name", "busy", IMAGE, "sh", "-c", SPIN)
    api = dy.api()

    frame = api.get("/containers/mem/stats", query={"stream": "0"})
    reference = json.loads((REFERENCE / "container-stats.json").read_text())
    del reference["networks"]      # no interfaces of their own yet (as --network none)
    assert list(frame) == list(reference)
    assert shape(frame) == shape(reference)
    assert (frame["name"], frame["id"]) == ("/mem", mem)
    assert frame["memory_stats"]["limit"] == 64 * MiB
    assert frame["pids_stats"]["limit"] == 50
    # stream=0 primes: precpu is the reading a second earlier
    assert 0.5 < seconds(frame["read"]) - seconds(frame["preread"]) < 1.8
    assert frame["cpu_stats"]["system_cpu_usage"] > frame["precpu_stats"]["system_cpu_usage"]
    assert frame["cpu_stats"]["online_cpus"] == len(os.sched_getaffinity(0))

    # one-shot: no priming, a zero precpu
    first = one_shot(dy, "busy")
    assert first["preread"] == "0001-01-01T00:00:00Z"
    assert first["precpu_stats"]["cpu_usage"]["total_usage"] == 0
    assert first["pids_stats"] == {"current": 1}       # no limit: left out
    assert first["memory_stats"]["limit"] >= 64 * MiB   # the machine's memory
    wait_for(lambda: one_shot(dy, "busy")["cpu_stats"]["cpu_usage"]["total_usage"]
             > first["cpu_stats"]["cpu_usage"]["total_usage"] + 100_000_000,
             what="the spinning container's CPU time to grow")

    before = one_shot(dy, "mem")["memory_stats"]["usage"]
    open(os.path.join(dy.exec_root, "containers", mem, "rootfs", "etc", "go"), "w").close()
    wait_for(lambda: one_shot(dy, "mem")["memory_stats"]["usage"] >= before + 20 * MiB,
             what="the container's memory usage to grow by 20 MiB or more")
    assert one_shot(dy, "mem")["memory_stats"]["max_usage"] >= before + 20 * MiB


def test_stream_sends_a_frame_a_second_and_ends_with_the_client_or_the_container(dy):
    detached(dy, "--name", "busy", IMAGE, "sh", "-c", SPIN)
    # fds come and go while they are listed: fd_targets skips the ones gone
    daemon_sockets = lambda: sum(  # noqa: E731
        1 for target in fd_targets(dy.proc.pid).values() if target.startswith("socket:"))
    idle = daemon_sockets()
    response = dy.api().request("GET", "/containers/busy/stats")   # stream=1 by default
    assert response.getheader("Content-Type") == "text/plain; charset=utf-8"
    frames = json_messages(response)
    got = [next(frames) for _ in range(3)]
    times = [seconds(f["read"]) for f in got]
    assert all(0.7 < b - a < 1.5 for a, b in zip(times, times[1:])), times
    for a, b in zip(got, got[1:]):
        assert b["precpu_stats"] == a["cpu_stats"] and b["preread"] == a["read"]
    assert got[2]["cpu_stats"]["cpu_usage"]["total_usage"] > \
        got[1]["cpu_stats"]["cpu_usage"]["total_usage"]
    response.close()
    # the daemon notices at its next write and closes its side
    wait_for(lambda: daemon_sockets() <= idle, timeout=5, what="the stream to be closed")

    # a stopped container's stream goes on with empty frames; removal ends it
    response = Client(dy.host, timeout=10).request("GET", "/containers/busy/stats")
    frames = json_messages(response)
    assert next(frames)["memory_stats"]
    dy.docker("kill", "busy", check=True)
    frame = next(frames)
    while frame["read"] != "0001-01-01T00:00:00Z":
        frame = next(frames)
    assert frame["memory_stats"] == {} and frame["pids_stats"] == {} and frame["name"] == "/busy"
    # stream=0 on a stopped container answers at once
    t0 = time.monotonic()
    assert dy.api().get("/containers/busy/stats", query={"stream": "0"})["read"] == \
        "0001-01-01T00:00:00Z"
    assert time.monotonic() - t0 < 0.5
    dy.docker("rm", "busy", check=True)
    for frame in frames:       # the stream ends (a hang would time the socket out)
        assert frame["read"] == "0001-01-01T00:00:00Z"
    response.close()

    with pytest.raises(APIError) as e:
        dy.api().request("GET", "/containers/nope/stats", query={"stream": "0"})
    assert (e.value.status, e.value.message) == (404, "No such container: nope")
    detached(dy, "--name", "again", IMAGE, "sleep", "100")
    with pytest.raises(APIError) as e:
        dy.api().request("GET", "/containers/again/stats", query={"stream": "1", "one-shot": "1"})
    assert (e.value.status, e.value.message) == (400, "cannot have stream=true and one-shot=true")


def test_stats_and_top_of_containers_taken_back_after_a_daemon_kill(dy):
    cid = detached(dy, "--name", "busy", "-m", "32m", IMAGE, "sh", "-c", SPIN)
    pid = dy.api().get("/containers/busy/json")["State"]["Pid"]
    dy.stop(signal.SIGKILL)
    dy.start()
    frame = dy.api().get("/containers/busy/stats", query={"stream": "0"})
    assert frame["id"] == cid and frame["memory_stats"]["limit"] == 32 * MiB
    assert frame["pids_stats"]["current"] == 1
    assert frame["cpu_stats"]["cpu_usage"]["total_usage"] > \
        frame["precpu_stats"]["cpu_usage"]["total_usage"] > 0
    top = dy.api().get("/containers/busy/top")
    assert [p[1] for p in top["Processes"]] == [str(pid)]


def test_docker_cli_and_ours_print_the_same_stats(dy):
    detached(dy, "--name", "small", "-m", "16m", "--pids-limit", "9", IMAGE, "sleep", "1000")
    detached(dy, "--name", "big", "-m", "1g", IMAGE, "sh", "-c", "sleep 1000 & sleep 1000")
    dy.docker("create", "--name", "idle", IMAGE, "true", check=True)
    fixed = "table {{.Name}}\t{{.PIDs}}\t{{.Container}}\t{{.ID}}"
    variants = (["--format", fixed], ["-a", "--format", fixed],
                ["-a", "--no-trunc", "--format", "{{.ID}} {{.Name}}"], ["small", "big"], ["nope"])
    # every command line through both CLIs at once: each waits about 2 s for its figures
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(12) as pool:
        runs = [(pool.submit(dy.run_cli, "stats", "--no-stream", *args),
                 pool.submit(dy.docker, "stats", "--no-stream", *args)) for args in variants]
        ours_container = pool.submit(dy.run_cli, "container", "stats", "--no-stream", "-a",
                                     "--format", "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}")
    for args, (ours, theirs) in zip(variants, runs):
        ours, theirs = ours.result(), theirs.result()
        if args == ["nope"]:       # errors: the same text and status
            assert (ours.stderr, ours.returncode) == (theirs.stderr, theirs.returncode) == \
                ("Error response from daemon: No such container: nope\n", 1)
            continue
        assert ours.returncode == theirs.returncode == 0, (ours.stderr, theirs.stderr)
        if args == ["small", "big"]:   # the default table: all but the moving figures
            def columns(text):
                rows = [line.split("   ") for line in text.splitlines()]
                return [[c.strip() for c in r if c.strip()] for r in rows]
            ours_rows, their_rows = columns(ours.stdout), columns(theirs.stdout)
            assert ours_rows[0] == their_rows[0] == [
                "CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O",
                "BLOCK I/O", "PIDS"]
            assert [(r[1], r[3].split(" / ")[1], r[-1]) for r in ours_rows[1:]] == \
                [(r[1], r[3].split(" / ")[1], r[-1]) for r in their_rows[1:]] == \
                [("small", "16MiB", "1"), ("big", "1GiB", "2")]
        else:
            assert sorted(ours.stdout.splitlines()) == sorted(theirs.stdout.splitlines())
    assert "idle 0.00% 0B / 0B 0" in ours_container.result().stdout.splitlines()


def test_live_table_follows_containers_starting_and_dying(dy):
    detached(dy, "--name", "first", IMAGE, "sleep", "1000")
    cli = subprocess.Popen([DOCKYARD, "-H", dy.host, "stats", "--format", "{{.Name}}"],
                           stdout=subprocess.PIPE, env=dy.env())
    seen = []
    try:
        os.set_blocking(cli.stdout.fileno(), False)

        def screen() -> str:
            """The last complete redraw (each ends with erase-below)."""
            seen.append(cli.stdout.read() or b"")
            text = b"".join(seen).decode()
            draws = text.split("\033[J")
            return draws[-2] if len(draws) > 1 else ""

        wait_for(lambda: "first" in screen(), what="the table")
        assert screen().startswith("\033[H")
        detached(dy, "--name", "second", IMAGE, "sleep", "1000")
        wait_for(lambda: "second" in screen(), what="a started container to join")
        dy.docker("kill", "second", check=True)
        wait_for(lambda: "second" not in screen() and "first" in screen(),
                 what="a dead container to leave")
    finally:
        cli.kill()
        cli.wait()
        cli.stdout.close()


def test_docker_py_stats_and_top(dy):
    client = dy.client()
    try:
        c = client.containers.run(IMAGE, ["sh", "-c", "sleep 1000 & " + SPIN], detach=True,
                                  mem_limit="48m", network_mode="none", name="py")
        dy.seen.add(c.id)
        s = c.stats(stream=False)
        assert s["name"] == "/py" and s["memory_stats"]["limit"] == 48 * MiB
        assert s["cpu_stats"]["cpu_usage"]["total_usage"] > 0
        stream = c.stats(stream=True, decode=True)
        assert next(stream)["id"] == c.id and next(stream)["pids_stats"]["current"] == 2
        stream.close()
        top = c.top()
        assert top["Titles"][:2] == ["UID", "PID"]
        # (ps may cut a command to 80 columns: its width with a large environment)
        commands = sorted(p[-1] for p in top["Processes"])
        assert commands[0].startswith("sh -c sleep 1000 &") and commands[1] == "sleep 1000"
        assert c.top(ps_args="-o pid,comm")["Titles"] == ["PID", "COMMAND"]
    finally:
        client.close()


def test_top_through_both_clis_and_its_errors(dy):
    cid = detached(dy, "--name", "tree", IMAGE, "sh", "-c", "sleep 1000 & sleep 999 & wait")
    pid = dy.api().get("/containers/tree/json")["State"]["Pid"]
    for args in ([], ["-o", "pid,ppid,comm"], ["aux"], ["-eLf"]):
        ours, theirs = dy.run_cli("top", "tree", *args), dy.docker("top", "tree", *args)
        if args in ([], ["-eLf"], ["aux"]):   # C, %CPU and TIME may tick between the two
            ours_rows = [line.split()[:2] for line in ours.stdout.splitlines()]
            assert ours_rows == [line.split()[:2] for line in theirs.stdout.splitlines()]
        else:
            assert ours.stdout == theirs.stdout
        assert ours.returncode == theirs.returncode == 0, (ours.stderr, theirs.stderr)
    out = dy.run_cli("container", "top", "tree", "-o", "pid,ppid,args").stdout.splitlines()
    assert out[0].split() == ["PID", "PPID", "COMMAND"]
    assert len(out[0]) - len(out[0].rstrip()) == 0 and out[0].index("PPID") == 20  # minwidth 20
    procs = {line.split(None, 2)[2]: line.split()[:2] for line in out[1:]}
    assert set(procs) == {"sh -c sleep 1000 & sleep 999 & wait", "sleep 1000", "sleep 999"}
    assert procs["sleep 1000"][1] == procs["sleep 999"][1] == str(pid)
    events = dy.api().request("GET", "/events", query={
        "since": "0", "until": f"{time.time():.9f}",
        "filters": json.dumps({"event": ["top"]})}).read().decode().splitlines()
    assert json.loads(events[0])["id"] == cid

    # a paused container still has its processes listed
    dy.docker("pause", "tree", check=True)
    assert len(dy.api().get("/containers/tree/top")["Processes"]) == 3
    dy.docker("unpause", "tree", check=True)

    def same_error(*args, message=None):
        ours, theirs = dy.run_cli(*args), dy.docker(*args)
        assert (ours.stderr, ours.returncode) == (theirs.stderr, theirs.returncode)
        assert theirs.returncode == 1
        if message:
            assert theirs.stderr == f"Error response from daemon: {message}\n"

    same_error("top", "tree", "--bogus", message="ps: error: unknown gnu long option")
    same_error("top", "tree", "-o", "pid,comm=PID",
               message='specifying "pid,comm=PID" is not allowed')
    same_error("top", "nope", message="No such container: nope")
    dy.docker("kill", "tree", check=True)
    same_error("top", "tree", message=f"Container {cid} is not running")
    with pytest.raises(APIError) as e:
        dy.api().get("/containers/tree/top")
    assert e.value.status == 409
