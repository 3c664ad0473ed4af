"""Container logs and events, as the docker CLI and the raw API see them.

Logs: stdout and stderr kept apart, docker's multiplexed framing (raw bytes
with a TTY), --tail, --since/--until, -t, -f, and the errors. Events: the
order dockerd emits them in (create → attach → start → die → destroy for
`docker run --rm`), their attributes, filters, and since/until replay.
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
import threading
import time

import pytest

from dockyard.client.api import APIError
from harness import wait_for
from test_containers_lifecycle import dy  # noqa: F401 - the fixture, shared

IMAGE = "busybox:local"
TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z"


def frames(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    while data:
        stream, size = struct.unpack(">BxxxI", data[:8])
        out.append((stream, data[8:8 + size]))
        data = data[8 + size:]
    return out


def raw_logs(dy, ref: str, **query) -> bytes:
    query = {"stdout": "1", "stderr": "1", **{k: str(v) for k, v in query.items()}}
    return dy.api().request("GET", f"/containers/{ref}/logs", query=query).read()


# -- logs --------------------------------------------------------------------------------

def test_stdout_and_stderr_are_kept_apart_and_framed(dy):
    dy.docker("run", "--name", "out", "--network", "none", IMAGE, "sh", "-c",
              "echo o1; echo e1 >&2; echo o2; printf partial", check=True)
    r = dy.docker("logs", "out")
    assert (r.stdout, r.stderr) == ("o1\no2\npartial", "e1\n")
    got = frames(raw_logs(dy, "out"))
    assert sorted(got) == sorted([(1, b"o1\n"), (2, b"e1\n"), (1, b"o2\n"), (1, b"partial")])
    assert [f for f in got if f[0] == 1] == [(1, b"o1\n"), (1, b"o2\n"), (1, b"partial")]
    assert frames(raw_logs(dy, "out", stderr="0")) == [(1, b"o1\n"), (1, b"o2\n"), (1, b"partial")]
    assert frames(raw_logs(dy, "out", stdout="0")) == [(2, b"e1\n")]
    # with a TTY, one stream of raw bytes (the pty turns \n into \r\n)
    dy.docker("run", "-t", "--name", "tty", "--network", "none", IMAGE, "sh", "-c",
              "echo a; echo b >&2", check=True)
    assert raw_logs(dy, "tty") == b"a\r\nb\r\n"


def test_tail_timestamps_since_until(dy):
    dy.docker("run", "--name", "lines", "--network", "none", IMAGE, "sh", "-c",
              "for i in 1 2 3 4 5; do echo line$i; done", check=True)
    assert dy.docker("logs", "--tail", "2", "lines").stdout == "line4\nline5\n"
    assert dy.docker("logs", "--tail", "0", "lines").stdout == ""
    assert dy.docker("logs", "--tail", "all", "lines").stdout.count("\n") == 5
    assert dy.docker("logs", "--tail", "x", "lines").stdout.count("\n") == 5  # as dockerd: all
    stamped = dy.docker("logs", "-t", "lines").stdout.splitlines()
    assert len(stamped) == 5 and all(re.fullmatch(TS + r" line\d", s) for s in stamped)
    assert dy.docker("logs", "--since", "2099-01-01", "lines").stdout == ""
    assert dy.docker("logs", "--until", "2000-01-01", "lines").stdout == ""
    assert dy.docker("logs", "--since", "10m", "lines").stdout.count("\n") == 5
    third = stamped[2].split()[0]
    assert dy.docker("logs", "--since", third, "lines").stdout.startswith("line3\n")
    assert dy.docker("logs", "--until", third, "lines").stdout.endswith("line3\n")
    r = dy.docker("logs", "--since", "bogus", "lines")
    assert r.returncode == 1 and 'failed to parse value as time or duration: "bogus"' in r.stderr


def test_logs_follow_until_the_container_stops(dy):
    dy.docker("run", "-d", "--name", "slow", "--network", "none", IMAGE, "sh", "-c",
              "for i in 1 2 3; do echo tick$i; sleep 0.3; done", check=True)
    r = dy.docker("logs", "-f", "slow", timeout=30)  # returns when the container has stopped
    assert (r.returncode, r.stdout) == (0, "tick1\ntick2\ntick3\n")
    # following a stopped container prints what there is and returns
    r = dy.docker("logs", "-f", "slow", timeout=30)
    assert r.stdout == "tick1\ntick2\ntick3\n"


def test_logs_of_many_lines_and_errors(dy):
    dy.docker("run", "--name", "many", "--network", "none", IMAGE, "sh", "-c",
              "i=0; while [ $i -lt 20000 ]; do echo line $i; i=$((i+1)); done", check=True)
    out = dy.docker("logs", "many").stdout.splitlines()
    assert len(out) == 20000 and out[0] == "line 0" and out[-1] == "line 19999"
    dy.docker("run", "--name", "quiet", "--log-driver", "none", "--network", "none", IMAGE,
              "echo", "hi", check=True)
    r = dy.docker("logs", "quiet")
    assert r.returncode == 1
    assert r.stderr == ("Error response from daemon: configured logging driver does not "
                        "support reading\n")
    r = dy.docker("logs", "nosuch")
    assert r.stderr == "Error response from daemon: No such container: nosuch\n"
    dy.docker("create", "--name", "never", IMAGE, "true", check=True)
    assert dy.docker("logs", "never").stdout == ""  # never started: nothing, no error
    with pytest.raises(APIError) as e:
        dy.api().request("GET", "/containers/many/logs")
    assert (e.value.status, e.value.message) == (
        400, "Bad parameters: you must choose at least one stream")


# -- events -------------------------------------------------------------------------------

class Events:
    """`docker events` running in the background, collecting what arrives."""

    def __init__(self, dy, *args: str):
        self.items: list[dict] = []
        # --since now: what happens from here on, even before the stream is
        # connected (the daemon replays it from its backlog)
        self.proc = subprocess.Popen(["docker", "-H", dy.host, "events", "--since",
                                      f"{time.time():.6f}", "--format", "{{json .}}", *args],
                                     stdout=subprocess.PIPE, text=True, env=dy.env())
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            self.items.append(json.loads(line))

    def actions(self, type_: str = "container") -> list[str]:
        return [e["Action"] for e in self.of(type_)]

    def of(self, type_: str = "container") -> list[dict]:
        """The events of one type (a container's start and exit also bring
        `network` connect and disconnect events, as with dockerd)."""
        return [e for e in list(self.items) if e["Type"] == type_]

    def wait_for(self, *actions: str) -> list[str]:
        wait_for(lambda: self.actions()[-len(actions):] == list(actions), timeout=20,
                 what=f"events {actions}, got {self.actions()}")
        return self.actions()

    def close(self):
        self.proc.kill()
        self.proc.wait()


def test_event_order_for_run_rm(dy):
    events = Events(dy)
    try:
        dy.docker("run", "--rm", "--network", "none", "-l", "k=v", IMAGE, "sh", "-c", "exit 3")
        assert events.wait_for("create", "attach", "start", "die", "destroy") == \
            ["create", "attach", "start", "die", "destroy"]
        cid = events.of()[0]["id"]
        for e in events.of():
            assert e["id"] == e["Actor"]["ID"] == cid and e["status"] == e["Action"]
            assert e["from"] == IMAGE and e["scope"] == "local"
            assert e["Actor"]["Attributes"]["image"] == IMAGE
            assert e["Actor"]["Attributes"]["k"] == "v"
            assert e["time"] == e["timeNano"] // 10**9
        assert events.of()[3]["Actor"]["Attributes"]["exitCode"] == "3"
        network = events.of("network")
        assert [e["Action"] for e in network] == ["connect", "disconnect"]
        assert all(e["Actor"]["Attributes"] == {"container": cid, "name": "none", "type": "null"}
                   and "id" not in e for e in network)
    finally:
        events.close()


def test_events_of_the_whole_lifecycle(dy):
    events = Events(dy)
    try:
        cid = dy.docker("run", "-d", "--name", "ev", "--network", "none", IMAGE, "sleep",
                        "1000", check=True).stdout.strip()
        for args in (("pause", "ev"), ("unpause", "ev"), ("kill", "-s", "USR1", "ev"),
                     ("rename", "ev", "ev2"), ("stop", "-t", "1", "ev2"),
                     ("restart", "-t", "0", "ev2"), ("rm", "-f", "ev2")):
            dy.docker(*args, check=True)
        expected = ["create", "start", "pause", "unpause", "kill", "rename", "kill", "kill", "die",
                    "stop", "start", "restart", "kill", "die", "destroy"]
        assert events.wait_for(*expected[-3:]) == expected
        by_action = [(e["Action"], e["Actor"]["Attributes"]) for e in events.of()]
        assert by_action[4][1]["signal"] == "10"
        assert by_action[5][1]["oldName"] == "/ev" and by_action[5][1]["name"] == "ev2"
        assert [a["signal"] for act, a in by_action[6:8]] == ["15", "9"]
        assert by_action[8][1]["exitCode"] == "137"
        assert all(e["id"] == cid for e in events.of())
    finally:
        events.close()


def test_event_filters_and_since_until(dy):
    start = time.time()
    dy.docker("run", "--name", "e1", "-l", "k=v", "--network", "none", IMAGE, "true", check=True)
    dy.docker("run", "--name", "e2", "--network", "none", IMAGE, "true", check=True)
    # `until` is in whole seconds: the first one after the last event, once it is past
    until = int(time.time()) + 1
    wait_for(lambda: time.time() > until, what="a second to pass")
    until = str(until)
    since = f"{start:.6f}"

    def past(*filters: str) -> list[str]:
        r = dy.docker("events", "--since", since, "--until", until,
                      "--format", "{{.Action}} {{.Actor.Attributes.name}}", *filters, timeout=30)
        assert r.returncode == 0, r.stderr
        return r.stdout.splitlines()

    assert past("--filter", "event=die") == ["die e1", "die e2"]
    assert past("--filter", "container=e1", "--filter", "event=start") == ["start e1"]
    assert past("--filter", "container=e", "--filter", "event=start") == ["start e1", "start e2"]
    assert past("--filter", "label=k=v", "--filter", "event=create") == ["create e1"]
    assert past("--filter", f"image={IMAGE}", "--filter", "event=create") == ["create e1",
                                                                              "create e2"]
    assert past("--filter", "image=busybox", "--filter", "event=create") == ["create e1",
                                                                             "create e2"]
    assert past("--filter", "type=image") == []
    assert past("--filter", "event=bogus") == []
    # an unknown filter is ignored, as dockerd: 4 container events, 2 network ones each
    assert len(past("--filter", "bogus=1")) == 2 * 6
    r = dy.docker("events", "--since", until, "--until", since)
    assert r.returncode == 1 and "cannot be after `until` time" in r.stderr
    # a stream with only `until` in the future gets the backlog and what comes, then ends
    until = str(int(time.time()) + 2)
    proc = subprocess.Popen(["docker", "-H", dy.host, "events", "--until", until, "--filter",
                             "event=create", "--format", "{{.Actor.Attributes.name}}"],
                            stdout=subprocess.PIPE, text=True, env=dy.env())
    try:
        dy.docker("create", "--name", "e3", IMAGE, "true", check=True)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert out.split() == ["e1", "e2", "e3"]
