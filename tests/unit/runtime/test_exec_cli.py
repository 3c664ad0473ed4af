"""`dockyard-runtime exec`'s pure parts: its flags, the process it builds from
the container's spec, and the plan it checks (runc's words)."""

from __future__ import annotations

import json

import pytest

from dockyard.runtime import oci
from dockyard.runtime.ocicli import exec as ex

STATE = {
    "pid": 4242,
    "config": {
        "process": {"args": ["sleep", "1000"], "cwd": "/", "env": ["PATH=/bin", "A=1"],
                    "user": {"uid": 0, "gid": 0},
                    "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"],
                                     "permitted": ["CAP_KILL"]}},
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"},
                                 {"type": "network", "path": "/run/netns/x"}]},
    },
}


def parse(argv):
    return oci.parse(argv, oci._FLAGS["exec"], oci._CMD_ALIASES["exec"], True, oci._REPEATED)


def test_flags_end_at_the_container_id():
    opts, args = parse(["-d", "--pid-file", "p", "-e", "A=1", "--env=B=2", "-t", "ID",
                        "sh", "-c", "echo -e x"])
    assert opts == {"detach": True, "pid-file": "p", "env": ["A=1", "B=2"], "tty": True}
    assert args == ["ID", "sh", "-c", "echo -e x"]


def test_unknown_flag_is_refused():
    with pytest.raises(oci.UsageError, match="flag provided but not defined: -bogus"):
        parse(["--bogus", "ID"])


def test_process_from_the_container_with_overrides():
    p = ex.load_process({"cwd": "/tmp", "env": ["B=2"], "user": "1:2", "tty": True,
                         "additional-gids": ["5"], "cap": ["CAP_CHOWN"],
                         "no-new-privs": True}, ["id", "-u"], STATE["config"])
    assert p["args"] == ["id", "-u"] and p["cwd"] == "/tmp" and p["terminal"] is True
    assert p["env"] == ["PATH=/bin", "A=1", "B=2"]
    assert p["user"] == {"uid": 1, "gid": 2, "additionalGids": [5]}
    assert p["capabilities"]["bounding"] == ["CAP_KILL", "CAP_CHOWN"]
    assert p["capabilities"]["ambient"] == ["CAP_CHOWN"]
    assert p["noNewPrivileges"] is True
    assert STATE["config"]["process"]["args"] == ["sleep", "1000"]  # the spec is left alone


def test_process_file(tmp_path):
    path = tmp_path / "process.json"
    path.write_text(json.dumps({"args": ["true"], "cwd": "/"}))
    assert ex.load_process({"process": str(path)}, [], {}) == {"args": ["true"], "cwd": "/"}
    with pytest.raises(ex.ExecError, match="no such file|No such file"):
        ex.load_process({"process": str(tmp_path / "nope")}, [], {})
    with pytest.raises(ex.ExecError, match="args must not be empty"):
        ex.load_process({}, [], {})


def test_plan_joins_every_namespace_of_the_init():
    cfg = ex.plan("c1", STATE, dict(STATE["config"]["process"], args=["true"]))
    assert cfg.ns.join == {"pid": "/proc/4242/ns/pid", "mount": "/proc/4242/ns/mnt",
                           "network": "/proc/4242/ns/net"}
    assert not cfg.ns.new
    assert cfg.args == ["true"] and cfg.env == ["PATH=/bin", "A=1"]


@pytest.mark.parametrize("process, message", [
    ({"args": ["true"], "cwd": ""}, "Cwd property must not be empty"),
    ({"args": ["true"], "cwd": "tmp"}, "Cwd must be an absolute path"),
    ({"args": [], "cwd": "/"}, "args must not be empty"),
    ({"args": ["true"], "cwd": "/", "env": ["NOEQUALS"]},
     'invalid environment variable: "NOEQUALS"'),
])
def test_plan_refuses_a_bad_process(process, message):
    with pytest.raises(ex.ExecError) as e:
        ex.plan("c1", STATE, process)
    assert str(e.value) == message
