"""The exec service's pure parts: the environment an exec gets, and dockerd's
inspect shape."""

from __future__ import annotations

import asyncio

from dockyard.daemon.container import Container, new_state
from dockyard.daemon.execs import ExecConfig, _exec_env


def container(**config) -> Container:
    return Container({"Id": "c" * 64, "Name": "/box", "State": new_state(),
                      "Config": {"Hostname": "c0ffee", **config}, "HostConfig": {}})


def test_environment_is_dockers():
    c = container(Env=["PATH=/custom", "A=1", "B=2"])
    assert _exec_env(c, False, []) == ["PATH=/custom", "HOSTNAME=c0ffee", "A=1", "B=2"]
    assert _exec_env(c, True, ["A=3", "B", "C=4"]) == \
        ["PATH=/custom", "HOSTNAME=c0ffee", "TERM=xterm", "A=3", "C=4"]


def test_inspect_shape_and_defaults_from_the_container():
    async def make():
        return ExecConfig(container(User="daemon", WorkingDir="/srv"),
                          {"Cmd": ["sh", "-c", "true"], "AttachStdout": True}, b"\x10\x11")

    ec = asyncio.run(make())
    assert (ec.user, ec.working_dir, ec.command) == ("daemon", "/srv", "sh -c true")
    assert ec.inspect() == {
        "ID": ec.id, "Running": False, "ExitCode": None,
        "ProcessConfig": {"tty": False, "entrypoint": "sh", "arguments": ["-c", "true"],
                          "privileged": False, "user": "daemon"},
        "OpenStdin": False, "OpenStderr": False, "OpenStdout": True, "CanRemove": False,
        "ContainerID": "c" * 64, "DetachKeys": "EBE=", "Pid": 0}


def test_event_text_has_dockers_trailing_space():
    async def make():
        return ExecConfig(container(), {"Cmd": ["true"]}, b"")

    assert asyncio.run(make()).command == "true "
