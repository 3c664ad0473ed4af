"""Pure rules of the container service: names, files, validation, status texts."""

import time

import pytest

from dockyard import errdefs
from dockyard.daemon import etcfiles, names
from dockyard.daemon.container import Container, host_config, new_state, parse_time
from dockyard.daemon.containers import _signal_number
from dockyard.units import human_duration as duration
from dockyard.daemon.validate import validate_create


class FakeRuntimes:
    def path(self, name):
        if name not in ("dockyard", "runc"):
            raise errdefs.InvalidParameter(f"unknown or invalid runtime name: {name}")
        return "/bin/true"


@pytest.mark.parametrize("name", ["web", "a1", "my.app_2-x", "/web"])
def test_valid_names_are_stored_with_a_slash(name):
    assert names.validate(name) == "/" + name.lstrip("/")


@pytest.mark.parametrize("name", ["a", "-web", "we b", "_x", "x/y", ""])
def test_invalid_names(name):
    with pytest.raises(errdefs.InvalidParameter) as e:
        names.validate(name)
    assert str(e.value) == (f"Invalid container name ({name}), only "
                            "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")


def test_generated_names_are_fresh():
    taken = {"/" + a + "_" + s for a in names.ADJECTIVES[:-1] for s in names.SURNAMES}
    name = names.generate(taken)
    assert name.startswith("/") and name not in taken and "_" in name


def test_hosts_and_resolv_conf():
    text = etcfiles.hosts([("10.0.0.2", "abc123")])
    assert text.startswith("127.0.0.1\tlocalhost\n") and text.endswith("10.0.0.2\tabc123\n")
    host = "# comment\nnameserver 127.0.0.53\nnameserver 10.1.1.1\nsearch example.com\noptions ndots:2\n"
    assert etcfiles.resolv_conf(host) == ("nameserver 10.1.1.1\nsearch example.com\n"
                                          "options ndots:2\n")
    assert etcfiles.resolv_conf("nameserver 127.0.0.1\n") == (
        "nameserver 8.8.8.8\nnameserver 8.8.4.4\n")
    assert etcfiles.resolv_conf(host, dns=["1.1.1.1"], search=["a.b"], options=["rotate"]) == (
        "nameserver 1.1.1.1\nsearch a.b\noptions rotate\n")


@pytest.mark.parametrize("hc, message", [
    ({"Memory": 1024}, "Minimum memory limit allowed is 6MB"),
    ({"Memory": 10 << 20, "MemorySwap": 8 << 20},
     "Minimum memoryswap limit should be larger than memory limit, see usage"),
    ({"MemorySwap": 8 << 20}, "You should always set the Memory limit when using Memoryswap limit, see usage"),
    ({"NanoCpus": 1, "CpuPeriod": 100000}, "Conflicting options: Nano CPUs and CPU Period cannot both be set"),
    ({"RestartPolicy": {"Name": "sometimes"}}, "invalid restart policy 'sometimes'"),
    ({"AutoRemove": True, "RestartPolicy": {"Name": "always"}},
     "can't create 'AutoRemove' container with restart policy"),
    ({"LogConfig": {"Type": "syslogx"}},
     'failed to create container: logger: no log driver named "syslogx" is registered'),
    ({"Runtime": "nope"}, "unknown or invalid runtime name: nope"),
    ({"Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 5}]},
     "ulimit soft limit must be less than or equal to hard limit: 10 > 5"),
])
def test_create_validation(hc, message):
    with pytest.raises(errdefs.DockyardError) as e:
        validate_create({}, host_config(hc), FakeRuntimes())
    assert str(e.value) == message


def test_host_config_defaults_are_dockers():
    hc = host_config({"Memory": 64 << 20})
    assert hc["Memory"] == 64 << 20
    assert hc["LogConfig"] == {"Type": "json-file", "Config": {}}
    assert hc["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    assert hc["NetworkMode"] == "default" and hc["ShmSize"] == 64 << 20
    assert "/proc/kcore" in hc["MaskedPaths"]
    assert host_config({"Privileged": True})["MaskedPaths"] is None


def _container(**state):
    record = {"Id": "a" * 64, "Name": "/x", "Path": "sh", "Args": ["-c", "exit 3"],
              "State": {**new_state(), **state}, "Config": {}, "HostConfig": host_config({})}
    return Container(record)


def test_status_texts():
    now = time.time()
    assert _container().status_text(now) == "Created"
    c = _container()
    c.set_running(42)
    assert c.status_text(parse_time(c.state["StartedAt"]) + 5) == "Up 5 seconds"
    c.set_paused(True)
    assert c.status_text(parse_time(c.state["StartedAt"]) + 120) == "Up 2 minutes (Paused)"
    c.set_stopped(3)
    assert c.status_text(parse_time(c.state["FinishedAt"]) + 3600) == "Exited (3) About an hour ago"
    assert c.command_line() == "sh -c 'exit 3'"


@pytest.mark.parametrize("seconds, text", [
    (0.5, "Less than a second"), (1, "1 second"), (59, "59 seconds"), (60, "About a minute"),
    (3599, "59 minutes"), (3600, "About an hour"), (5400, "2 hours"), (47 * 3600, "47 hours"),
    (3 * 86400, "3 days"), (15 * 86400, "2 weeks"), (70 * 86400, "2 months"),
    (800 * 86400, "2 years"),
])
def test_durations_match_go_units(seconds, text):
    assert duration(seconds) == text


@pytest.mark.parametrize("given, number", [("SIGTERM", 15), ("term", 15), ("KILL", 9), ("9", 9),
                                           ("SIGRTMIN+1", 35), (2, 2)])
def test_signal_names(given, number):
    assert _signal_number(given) == number


def test_bad_signal():
    with pytest.raises(errdefs.InvalidParameter) as e:
        _signal_number("SIGNOPE")
    assert str(e.value) == "Invalid signal: SIGNOPE"
