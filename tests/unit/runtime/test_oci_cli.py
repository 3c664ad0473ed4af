"""dockyard-runtime's pure parts: bundle checks, CLI parsing, state, logs, LookPath.

Messages are runc 1.1.5's, checked against the real runc on the same input
(see tests/integration/test_runtime_oci.py for the side-by-side runs).
"""

from __future__ import annotations

import json
import os
import re
import signal

import pytest

from dockyard.runtime import oci
from dockyard.runtime.init import InitError, lookpath
from dockyard.runtime.ocicli import bundle as b
from dockyard.runtime.ocicli import state as st
from dockyard.runtime.ocicli.log import Logger


def spec(**over):
    s = {
        "ociVersion": "1.0.2",
        "process": {"args": ["sh"], "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}},
        "root": {"path": "rootfs"},
        "hostname": "h",
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
        "linux": {"namespaces": [{"type": t} for t in ("pid", "mount", "uts", "ipc")]},
    }
    for k, v in over.items():
        s[k] = v
    return s


@pytest.fixture
def bundle_dir(tmp_path):
    (tmp_path / "rootfs").mkdir()
    return str(tmp_path)


def test_plan_of_a_small_spec(bundle_dir):
    cfg = b.plan("c1", bundle_dir, spec())
    assert cfg.rootfs == os.path.realpath(os.path.join(bundle_dir, "rootfs"))
    assert cfg.args == ["sh"] and cfg.cwd == "/" and cfg.uid == 0
    assert cfg.hostname == "h" and cfg.setup_dev
    assert cfg.cgroups_path == "c1"     # runc: relative to the runtime's own cgroup
    assert cfg.mounts[0].type == "proc"


@pytest.mark.parametrize("process, message", [
    (None, "process property must not be empty"),
    ({"args": ["sh"], "cwd": ""}, "Cwd property must not be empty"),
    ({"args": ["sh"], "cwd": "x"}, "Cwd must be an absolute path"),
    ({"args": [], "cwd": "/"}, "args must not be empty"),
    ({"args": ["sh"], "cwd": "/", "env": ["NOEQUALS"]}, 'invalid environment variable: "NOEQUALS"'),
    ({"args": ["sh"], "cwd": "/", "env": ["=x"]}, "environment variable name can't be empty"),
    ({"args": ["sh"], "cwd": "/", "rlimits": [{"type": "RLIMIT_X"}]}, "wrong rlimit value"),
])
def test_process_checks(bundle_dir, process, message):
    with pytest.raises(b.BundleError, match=re.escape(message)):
        b.plan("c1", bundle_dir, spec(process=process))


def test_runc_config_checks(bundle_dir):
    with pytest.raises(b.BundleError, match="invalid rootfs: stat .*/nope: no such file"):
        b.plan("c1", bundle_dir, spec(root={"path": "nope"}))
    no_uts = {"namespaces": [{"type": "mount"}]}
    with pytest.raises(b.BundleError, match="without a private UTS namespace"):
        b.plan("c1", bundle_dir, spec(linux=no_uts))
    masked = {"namespaces": [{"type": "uts"}], "maskedPaths": ["/proc/kcore"]}
    with pytest.raises(b.BundleError, match="without a private MNT namespace"):
        b.plan("c1", bundle_dir, spec(linux=masked))
    with pytest.raises(b.BundleError, match="user namespaces are not supported"):
        b.plan("c1", bundle_dir, spec(linux={"namespaces": [{"type": "user"}, {"type": "uts"}]}))


def test_missing_config_json(tmp_path):
    with pytest.raises(b.BundleError, match="^JSON specification file config.json not found$"):
        b.load_spec(str(tmp_path))


def test_env_keeps_first_place_last_value(bundle_dir):
    p = {"args": ["sh"], "cwd": "/", "env": ["A=1", "B=2", "A=3"]}
    assert b.plan("c1", bundle_dir, spec(process=p)).env == ["A=3", "B=2"]


def test_default_device_rules_follow_the_spec_rules(bundle_dir):
    linux = {"namespaces": [{"type": "uts"}],
             "resources": {"devices": [{"allow": False, "access": "rwm"}]},
             "devices": [{"path": "/dev/null", "type": "c", "major": 1, "minor": 3}]}
    rules = b.plan("c1", bundle_dir, spec(linux=linux)).resources["devices"]
    assert rules[0] == {"allow": False, "access": "rwm"}
    assert rules[1:3] == [{"allow": True, "type": "c", "access": "m"},
                          {"allow": True, "type": "b", "access": "m"}]
    majmin = [(r.get("major"), r.get("minor")) for r in rules[3:]]
    assert (1, 3) not in majmin     # the spec brings its own /dev/null
    assert majmin == [(1, 8), (1, 7), (5, 0), (1, 5), (1, 9), (136, None), (5, 2), (10, 200)]


def test_capability_messages(bundle_dir, monkeypatch):
    from dockyard.linux import capabilities
    monkeypatch.setattr(capabilities, "current", lambda kind="bounding": set(range(41)) - {24})
    p = {"args": ["sh"], "cwd": "/",
         "capabilities": {"bounding": ["CAP_KILL", "CAP_SYS_RESOURCE", "CAP_NOSUCH"]}}
    cfg = b.plan("c1", bundle_dir, spec(process=p))
    assert cfg.caps.sets["bounding"] == {5}
    assert cfg.warnings == ["ignoring unknown or unavailable capabilities: [CAP_NOSUCH]"]
    assert any("CAP_SYS_RESOURCE" in m for m in cfg.debug)


# -- CLI ---------------------------------------------------------------------------

def test_parse_flags_like_urfave_cli():
    g, rest = oci.parse(["--root", "/r", "--log-format=json", "--debug", "create", "-b", "x"],
                        oci._GLOBAL)
    assert g == {"root": "/r", "log-format": "json", "debug": True}
    assert rest == ["create", "-b", "x"]
    o, args = oci.parse(["-b", "x", "--pid-file=/p", "id1"], oci._FLAGS["create"])
    assert o == {"bundle": "x", "pid-file": "/p"} and args == ["id1"]
    o, args = oci.parse(["id1", "--force"], oci._FLAGS["delete"])
    assert o == {"force": True} and args == ["id1"]
    with pytest.raises(oci.UsageError, match="flag provided but not defined: -nope"):
        oci.parse(["--nope"], oci._FLAGS["kill"])


@pytest.mark.parametrize("raw, num", [("KILL", 9), ("SIGKILL", 9), ("kill", 9), ("9", 9),
                                      ("TERM", 15), ("SIGUSR1", int(signal.SIGUSR1))])
def test_parse_signal(raw, num):
    assert oci.parse_signal(raw) == num


def test_unknown_signal():
    with pytest.raises(oci.Failure, match='^unknown signal "FOO"$'):
        oci.parse_signal("FOO")


def test_usage_errors_and_missing_container(tmp_path, capfd):
    assert oci.main(["--root", str(tmp_path), "state"]) == 1
    assert '\\"state\\" requires exactly 1 argument(s)' in capfd.readouterr().err
    assert oci.main(["--root", str(tmp_path), "state", "nope"]) == 1
    assert capfd.readouterr().err.endswith('level=error msg="container does not exist"\n')
    assert oci.main(["--root", str(tmp_path), "create", "bad/id"]) == 1
    assert "dockyard-runtime create failed: invalid container ID format" in capfd.readouterr().err


def test_log_file_gets_json_and_stderr_the_bare_message(tmp_path, capfd):
    log = tmp_path / "log.json"
    assert oci.main(["--root", str(tmp_path), "--log", str(log), "--log-format", "json",
                     "kill", "nope"]) == 1
    assert capfd.readouterr().err == "container does not exist\n"
    entry = json.loads(log.read_text())
    assert list(entry) == ["level", "msg", "time"]
    assert entry["level"] == "error" and entry["msg"] == "container does not exist"


def test_text_log_quoting():
    line = Logger()._format("error", 'exec: "x": not found')
    assert re.fullmatch(r'time="[0-9T:\-]+Z" level=error msg="exec: \\"x\\": not found"\n', line)
    assert Logger()._format("info", "plain")[-16:] == "level=info msg=plain\n"[-16:]


# -- state --------------------------------------------------------------------------

def test_rfc3339nano_trims_like_go():
    assert st.rfc3339nano(1_000_000_000_583_612_000) == "2001-09-09T01:46:40.583612Z"
    assert st.rfc3339nano(1_000_000_000_000_000_000) == "2001-09-09T01:46:40Z"
    assert st.rfc3339nano(1_000_000_000_000_000_001) == "2001-09-09T01:46:40.000000001Z"


def test_container_ids():
    assert st.valid_id("abc-1.2_3+x")
    for bad in ("", "a/b", "..", "a b"):
        assert not st.valid_id(bad)


def test_oci_state_document_order_and_stopped_pid():
    s = {"id": "c", "pid": 42, "bundle": "/b", "rootfs": "/b/rootfs", "created": "t",
         "owner": "", "annotations": {}}
    doc = st.oci_state(s, "running")
    assert list(doc) == ["ociVersion", "id", "pid", "status", "bundle", "rootfs", "created",
                         "owner"]
    assert doc["pid"] == 42
    assert st.oci_state(s, "stopped")["pid"] == 0
    s["annotations"] = {"a": "b"}
    assert st.oci_state(s, "running")["annotations"] == {"a": "b"}


def test_status_from_the_kernel(tmp_path):
    cdir = st.ContainerDir(str(tmp_path), "c")
    cdir.reserve()
    me = st.proc_stat(os.getpid())
    freezer = tmp_path / "freezer.state"
    freezer.write_text("THAWED\n")
    state = {"pid": os.getpid(), "start_time": me[1], "freezer": str(freezer)}
    assert st.status(cdir, state) == "running"
    open(cdir.fifo, "w").close()
    assert st.status(cdir, state) == "created"
    freezer.write_text("FROZEN\n")
    assert st.status(cdir, state) == "paused"
    freezer.write_text("THAWED\n")
    assert st.status(cdir, dict(state, start_time=me[1] + 1)) == "stopped"  # a recycled pid
    assert st.status(cdir, dict(state, pid=0)) == "stopped"
    with pytest.raises(st.StateError, match="container with given ID already exists"):
        cdir.reserve()


# -- LookPath -----------------------------------------------------------------------

def test_lookpath_like_go(tmp_path):
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "tool").write_text("#!/bin/sh\n")
    (bin_ / "tool").chmod(0o755)
    (bin_ / "data").write_text("")
    (bin_ / "data").chmod(0o644)
    path = f"/nonexistent:{bin_}"
    assert lookpath("tool", path) == f"{bin_}/tool"
    assert lookpath(f"{bin_}/tool", None) == f"{bin_}/tool"
    with pytest.raises(InitError, match=re.escape('exec: "nosuch": executable file not found '
                                                  'in $PATH')):
        lookpath("nosuch", path)
    with pytest.raises(InitError, match=re.escape('exec: "data": executable file not found')):
        lookpath("data", path)
    with pytest.raises(InitError, match=re.escape('exec: "/x/nosuch": stat /x/nosuch: no such '
                                                  'file or directory')):
        lookpath("/x/nosuch", path)
    with pytest.raises(InitError, match=re.escape(f'exec: "{bin_}": permission denied')):
        lookpath(str(bin_), path)
    with pytest.raises(InitError, match="executable file not found"):
        lookpath("tool", None)     # no PATH in process.env
