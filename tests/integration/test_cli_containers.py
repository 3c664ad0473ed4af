"""The container commands of our CLI against the docker CLI, on the same daemon.

Where both can run the same command on the same data (ps, logs, inspect, df,
events, every error) the test compares stdout, stderr and the exit status
character for character, with "dockyard" for "docker" in our usage texts.
Commands that make containers are compared on what they print and do; the
request bodies of `create` are compared through a proxy on the daemon's
socket. Every test removes the containers it made.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

from harness import load_busybox, running_daemon, wait_for

DOCKYARD = str(Path(sys.executable).parent / "dockyard")
ID = re.compile(r"^[0-9a-f]{64}$")


@pytest.fixture(autouse=True)
def remove_containers(request):
    """Every container a test made is removed at its end, by the daemon's own list
    (but for the module's shared, read-only `some_containers`)."""
    daemon = None
    if "some_containers" not in request.fixturenames:  # (asked for now: torn down after us)
        name = "module_daemon" if "module_daemon" in request.fixturenames else "daemon"
        daemon = request.getfixturevalue(name)
    yield
    if daemon is None:
        return
    remove_all(daemon)


def remove_all(daemon) -> None:
    api = daemon.api()
    for c in api.get("/containers/json", query={"all": "1"}) or []:
        api.request("DELETE", f"/containers/{c['Id']}", query={"force": "1"}).read()
    assert api.get("/containers/json", query={"all": "1"}) == []


def both(daemon, *args, input=None, same=None):
    """(ours, docker's) for one command line; run again while they differ in a way
    `same` forgives (a "2 seconds ago" that ticked over between the two runs)."""
    for _ in range(4):
        ours = daemon.run_cli(*args, input=input)
        theirs = daemon.docker(*args, input=input)
        if _equal(ours, theirs):
            break
    return ours, theirs


def as_docker(text: str) -> str:
    """Our program's name where docker's says "docker" (not the daemon's "dockyard-runtime")."""
    return re.sub(r"(?<![-\w\"])dockyard(?=[ :'])", "docker", text)


def _equal(ours, theirs) -> bool:
    return (as_docker(ours.stdout), as_docker(ours.stderr), ours.returncode) == \
        (theirs.stdout, theirs.stderr, theirs.returncode)


def assert_same(ours, theirs):
    assert as_docker(ours.stdout) == theirs.stdout
    assert as_docker(ours.stderr) == theirs.stderr
    assert ours.returncode == theirs.returncode


# --- create: the same request body as docker ----------------------------------------------------


class Recorder:
    """A proxy on a second socket that keeps the body of every POST /containers/create."""

    def __init__(self, daemon):
        self.target = daemon.socket
        self.path = os.path.join(daemon.base, "proxy.sock")
        self.bodies: list[tuple[str, dict]] = []
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(self.path)
        self.server.listen(16)
        self.host = "unix://" + self.path
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.target)
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False),
                             daemon=True).start()

    def _pipe(self, src, dst, record):
        seen = b""
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            if record:
                seen += data
                seen = self._take(seen)
            dst.sendall(data)

    def _take(self, seen: bytes) -> bytes:
        head, sep, rest = seen.partition(b"\r\n\r\n")
        if not sep:
            return seen
        lines = head.decode("latin-1").split("\r\n")
        length = next((int(v) for k, _, v in (line.partition(": ") for line in lines[1:])
                       if k.lower() == "content-length"), 0)
        if len(rest) < length:
            return seen
        method, target = lines[0].split(" ")[:2]
        if method == "POST" and re.search(r"/containers/create\b", target):
            target = re.sub(r"^/v[0-9.]+", "", target)
            self.bodies.append((target, json.loads(rest[:length])))
        return rest[length:]

    def close(self):
        self.server.close()


@pytest.fixture
def recorder(daemon):
    r = Recorder(daemon)
    yield r
    r.close()


CREATE_CASES = [
    ["busybox:local", "echo", "hi"],
    ["--name", "full", "-e", "A=1", "-e", "FROM_ENV", "-e", "A=2", "-e", "no_proxy=x", "-w", "/tmp", "-u", "1000:1000", "-h", "box",
     "--entrypoint", "/bin/sh", "-l", "a=b", "-l", "c", "--stop-signal", "SIGUSR1",
     "--stop-timeout", "5", "--network", "none", "-i", "-t", "-a", "stdout", "--init",
     "--privileged", "--read-only", "--cap-add", "net_admin", "--cap-drop", "ALL",
     "--security-opt", "no-new-privileges", "--device", "/dev/null:/dev/xnull:r", "--ulimit",
     "nofile=100:200", "--group-add", "10", "--shm-size", "64m", "-m", "1g", "--memory-swap",
     "2g", "--memory-reservation", "512m", "--cpus", "1.5", "-c", "512", "--cpuset-cpus", "0",
     "--pids-limit", "100", "--oom-kill-disable", "--restart", "on-failure:3", "--log-driver",
     "json-file", "--log-opt", "max-size=1m", "--runtime", "runc", "--add-host", "foo:1.2.3.4",
     "--dns", "8.8.8.8", "--dns-search", "example.com", "--dns-option", "ndots:2", "--tmpfs",
     "/run:size=1m", "-v", "/data", "-v", "./rel:/rel", "--mount",
     "type=tmpfs,target=/x,tmpfs-size=1m", "-p", "8080:80", "-p", "53/udp", "-P", "--expose",
     "9000-9001", "--platform", "linux/amd64", "--health-cmd", "true", "--health-interval",
     "1m30s", "busybox:local", "-c", "echo hi"],
    ["--network", "host", "--entrypoint=", "-i", "-a", "stdin", "--rm", "--ulimit", "nproc=10",
     "busybox:local"],
    ["-p", "published=8080,target=80", "-p", "[::1]:53:53/udp", "--expose", "7000/udp",
     "--security-opt", "systempaths=unconfined", "--mount",
     "type=volume,source=v,target=/v,volume-nocopy", "--no-healthcheck", "busybox:local"],
]


@pytest.mark.parametrize("args", CREATE_CASES)
def test_create_sends_dockers_body(daemon, loaded_busybox, recorder, args, monkeypatch):
    monkeypatch.setenv("FROM_ENV", "from the environment")
    env = {**daemon.env(), "FROM_ENV": "from the environment"}
    with open(os.path.join(daemon.docker_config, "config.json"), "w") as f:
        json.dump({"proxies": {"default": {"httpProxy": "http://proxy:3128",
                                           "noProxy": "localhost"}}}, f)
    results = []
    for argv in ([DOCKYARD, "-H", recorder.host, "create", *args],
                 ["docker", "-H", recorder.host, "create", *args]):
        result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60,
                                cwd=daemon.base)
        results.append(result)
        if ID.match(result.stdout.strip()):   # the same name can be used again by docker
            daemon.api().request("DELETE", f"/containers/{result.stdout.strip()}").read()
    ours, theirs = results
    assert (as_docker(ours.stderr), ours.returncode) == (theirs.stderr, theirs.returncode)
    assert len(recorder.bodies) == 2
    (our_url, our_body), (their_url, their_body) = recorder.bodies
    assert our_url == their_url
    # docker passes -e and the proxies through a Go map: their order is random there
    assert sorted(our_body.pop("Env") or []) == sorted(their_body.pop("Env") or [])
    assert our_body == their_body
    assert list(our_body) == list(their_body)
    assert list(our_body["HostConfig"]) == list(their_body["HostConfig"])


@pytest.mark.parametrize("args", [
    ["-c", "x", "busybox:local"], ["--cpus", "0.0000000001", "busybox:local"],
    ["-a", "foo", "busybox:local"], ["-m", "64x", "busybox:local"], ["--xyz", "busybox:local"],
    ["--name"], ["-e"], ["--rm=maybe", "busybox:local"], ["--ulimit", "nofile=2:1", "busybox"],
    ["--restart", "bad:x", "busybox:local"], ["--device", "/dev/null:rel", "busybox:local"],
    ["-p", "99999", "busybox:local"], ["--expose", "1:2", "busybox:local"],
    ["--env-file", "/nonexistent", "busybox:local"], ["--security-opt", "foo", "busybox:local"],
    ["--network-alias", "x", "busybox:local"], ["--platform", "a/b/c/d", "busybox:local"],
    ["--pull", "sometimes", "busybox:local"], ["--annotation", "a=b", "busybox:local"],
    ["--mac-address", "92:d0:c6:0a:29:33", "busybox:local"], ["BAD::x"], [],
    ["--pull", "never", "nosuch:1"], ["nosuch:1"], ["-q", "nosuch:1"],
])
@pytest.mark.parametrize("command", ["create", "run"])
def test_bad_create_and_run_like_docker(module_daemon, command, args):
    ours, theirs = both(module_daemon, command, *args)
    assert_same(ours, theirs)
    assert ours.returncode in (1, 125)


# --- run ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("args, stdin", [
    (["echo", "hi"], None),
    (["sh", "-c", "echo out; echo err >&2; echo out2; exit 4"], None),
    (["nosuchcmd"], None),
    (["/etc"], None),
    (["/etc/passwd"], None),
    (["-t", "sh", "-c", "echo tty; tty; echo err >&2"], None),
    (["-i", "sh", "-c", "cat; echo done >&2; exit 2"], "piped\nlines\n"),
    (["cat"], "not attached\n"),
    (["-a", "stdout", "sh", "-c", "echo out; echo err >&2"], None),
    (["-a", "stderr", "sh", "-c", "echo out; echo err >&2"], None),
    (["-i", "-a", "stdin", "sh", "-c", "cat >/dev/null; exit 7"], "in\n"),
    (["-it", "true"], "not a terminal\n"),
    (["-d", "-a", "stdout", "true"], None),
    (["--restart", "always", "true"], None),
    (["--init", "-e", "X=1", "-w", "/tmp", "-u", "1:2", "-h", "box", "sh", "-c",
      "echo $X $(pwd) $(id -u):$(id -g) $(hostname)"], None),
])
def test_run_like_docker(module_daemon, args, stdin):
    ours = module_daemon.run_cli("run", "--rm", *_split(args), input=stdin)
    theirs = module_daemon.docker("run", "--rm", *_split(args), input=stdin)
    assert_same(ours, theirs)
    assert module_daemon.api().get("/containers/json", query={"all": "1"}) == []


def _split(args):
    """The flags, then busybox:local, then the command."""
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] in ("-a", "--restart", "-e", "-w", "-u", "-h") else 1
    return [*args[:i], "busybox:local", *args[i:]]


def test_run_exit_statuses(daemon, loaded_busybox):
    statuses = [daemon.run_cli("run", "--rm", "busybox:local", *cmd).returncode
                for cmd in (["true"], ["sh", "-c", "exit 9"], ["nosuchcmd"], ["/etc"])]
    assert statuses == [0, 9, 127, 126]
    assert daemon.run_cli("run", "--rm", "nosuch").returncode == 125


def test_run_missing_image_asks_for_a_pull(daemon):
    ours, theirs = both(daemon, "run", "--rm", "nosuch")
    assert_same(ours, theirs)
    assert ours.stderr.startswith("Unable to find image 'nosuch:latest' locally\n"
                                  "dockyard: Error response from daemon: ")
    assert ours.returncode == 125


def test_run_detached_prints_the_id_and_keeps_running(daemon, loaded_busybox):
    ours = daemon.run_cli("run", "-d", "--name", "bg", "busybox:local", "sleep", "100")
    assert ours.returncode == 0 and ours.stderr == ""
    container_id = ours.stdout.strip()
    assert ID.match(container_id)
    state = daemon.api().get(f"/containers/{container_id}/json")["State"]
    assert state["Running"] is True
    ours = daemon.run_cli("run", "-d", "--rm", "busybox:local", "nosuchcmd")
    theirs = daemon.docker("run", "-d", "--rm", "busybox:local", "nosuchcmd")
    assert ID.match(ours.stdout.strip()) and ID.match(theirs.stdout.strip())
    assert (as_docker(ours.stderr), ours.returncode) == (theirs.stderr, theirs.returncode)
    assert ours.returncode == 127
    assert [c["Names"] for c in daemon.api().get("/containers/json", query={"all": "1"})] == \
        [["/bg"]]


def test_run_cidfile(daemon, loaded_busybox, tmp_path):
    cidfile = tmp_path / "cid"
    result = daemon.run_cli("run", "--rm", "--cidfile", str(cidfile), "busybox:local", "true")
    assert result.returncode == 0
    assert ID.match(cidfile.read_text())
    again = daemon.run_cli("run", "--rm", "--cidfile", str(cidfile), "busybox:local", "true")
    assert again.returncode == 125
    assert again.stderr.startswith("dockyard: container ID file found, make sure the other "
                                   f"container isn't running or delete {cidfile}\n")


def _on_a_terminal(daemon, argv, keys=b"", rows=33, cols=101, ready=b"READY"):
    """Run a command on a pseudo-terminal of the given size; type `keys` once
    `ready` was printed. Returns (output, status, the terminal's mode after)."""
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    before = termios.tcgetattr(secondary)
    proc = subprocess.Popen(argv, stdin=secondary, stdout=secondary, stderr=secondary,
                            env=daemon.env(), start_new_session=True)
    out, sent, deadline = b"", False, time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            readable, _, _ = select.select([primary], [], [], 0.1)
            if readable:
                try:
                    chunk = os.read(primary, 4096)
                except OSError:
                    break
                out += chunk
                if ready in out and not sent:
                    os.write(primary, keys)
                    sent = True
            elif proc.poll() is not None:
                break
        status = proc.wait(timeout=10)
        after = termios.tcgetattr(secondary)
    finally:
        os.close(primary)
        os.close(secondary)
    return out, status, before == after


def test_run_interactive_tty_like_docker(daemon, loaded_busybox):
    results = []
    for cli in ([DOCKYARD, "-H", daemon.host], ["docker", "-H", daemon.host]):
        results.append(_on_a_terminal(daemon, [*cli, "run", "-it", "--rm", "busybox:local", "sh",
                                               "-c", "stty size; tty; echo READY; sh"],
                                      keys=b"echo typed-$((6*7))\rexit 3\r"))
    # Where the echo of the typed keys lands depends on when the shell starts
    # reading, so each transcript is checked, not the two compared byte for byte.
    for output, status, restored in results:
        assert output.startswith(b"33 101\r\n/dev/pts/0\r\nREADY\r\n")
        assert b"typed-42\r\n" in output
        assert status == 3 and restored


def test_run_forwards_signals(daemon, loaded_busybox):
    proc = subprocess.Popen(
        [DOCKYARD, "-H", daemon.host, "run", "--rm", "busybox:local", "sh", "-c",
         'trap "echo got TERM; exit 5" TERM; echo ready; while :; do sleep 0.1; done'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=daemon.env())
    assert proc.stdout.readline() == b"ready\n"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert (out, err, proc.returncode) == (b"got TERM\n", b"", 5)


# --- start, stop, kill, restart, pause, rm, wait, rename ---------------------------------------


def test_start_attached_like_docker(daemon, loaded_busybox):
    daemon.docker("create", "--name", "s1", "busybox:local", "sh", "-c",
                  "echo started; echo e >&2; exit 3", check=True)
    daemon.docker("create", "--name", "s2", "-i", "busybox:local", "sh", "-c", "cat; exit 5",
                  check=True)
    daemon.docker("create", "--name", "s3", "busybox:local", "nosuchcmd", check=True)
    for args, stdin in ((["-a", "s1"], None), (["s1"], None), (["nosuch", "s1"], None),
                        (["-a", "nosuch"], None), (["-a", "s1", "s1"], None),
                        (["-ai", "s2"], "line\n"), (["-a", "s3"], None), (["s3"], None)):
        ours = daemon.run_cli("start", *args, input=stdin)
        theirs = daemon.docker("start", *args, input=stdin)
        assert_same(ours, theirs)
    assert daemon.run_cli("start", "-a", "s1").returncode == 3


def test_start_attached_removes_an_auto_remove_container(daemon, loaded_busybox):
    daemon.docker("create", "--name", "gone", "--rm", "busybox:local", "echo", "bye", check=True)
    result = daemon.run_cli("start", "-a", "gone")
    assert (result.stdout, result.returncode) == ("bye\n", 0)
    assert daemon.api().get("/containers/json", query={"all": "1"}) == []


def test_lifecycle_commands_print_what_docker_prints(daemon, loaded_busybox):
    for name in ("aa", "bb"):
        daemon.docker("run", "-d", "--name", name, "busybox:local", "sleep", "100", check=True)
    daemon.docker("create", "--name", "cc", "busybox:local", "true", check=True)
    for command in (["pause", "cc"], ["unpause", "aa"], ["kill", "cc"], ["kill", "-s", "FOO", "aa"],
                    ["stop", "nosuch", "xx"], ["rm", "aa"], ["rm", "-f", "nosuch"], ["rm", ""],
                    ["rename", "cc", "cc"], ["rename", "nosuch", "xx"], ["rename", " ", "xx"],
                    ["rename", "cc", "a"], ["wait", "nosuch"], ["stop"],
                    ["stop", "--time", "1", "--timeout", "2", "aa"], ["restart", "nosuch"],
                    ["container", "remove", "-x"], ["container", "prune", "-h"]):
        ours, theirs = both(daemon, *command)
        assert_same(ours, theirs)
    # The same commands on containers that can take them
    assert daemon.run_cli("pause", "aa", "bb").stdout == "aa\nbb\n"
    assert daemon.api().get("/containers/aa/json")["State"]["Status"] == "paused"
    assert daemon.run_cli("unpause", "aa", "bb").stdout == "aa\nbb\n"
    assert daemon.run_cli("kill", "-s", "KILL", "aa").stdout == "aa\n"
    assert daemon.run_cli("wait", "aa").stdout == "137\n"
    assert daemon.run_cli("stop", "-t", "1", "bb", "nosuch").stdout == "bb\n"
    assert daemon.run_cli("restart", "-t", "0", "bb").stdout == "bb\n"
    assert daemon.api().get("/containers/bb/json")["State"]["Running"] is True
    assert daemon.run_cli("rename", "cc", "dd").returncode == 0
    assert daemon.run_cli("rm", "dd", "aa").stdout == "dd\naa\n"
    result = daemon.run_cli("rm", "bb")
    assert result.returncode == 1 and "You cannot remove a running container" in result.stderr
    assert daemon.run_cli("rm", "-f", "bb", "nosuch").stdout == "bb\n"
    assert daemon.api().get("/containers/json", query={"all": "1"}) == []


# --- logs, ps, inspect ----------------------------------------------------------------------------


def make_some_containers(daemon):
    daemon.docker("run", "--name", "lg", "-l", "com.example.my-label=1", "-l", "b=2",
                  "busybox:local", "sh", "-c",
                  "echo out1; echo err1 >&2; echo out2; sleep 1; echo out3", check=True)
    daemon.docker("run", "--name", "lgt", "-t", "busybox:local", "sh", "-c",
                  "echo tty1; echo tty2 >&2", check=True)
    daemon.docker("run", "-d", "--name", "up", "busybox:local", "sleep", "100", check=True)
    daemon.docker("create", "--name", "made", "busybox:local", "echo",
                  "hello world this is a long command", check=True)
    daemon.made_at = time.time()
    return daemon


@pytest.fixture(scope="module")
def some_containers():
    """Containers in every state, on a daemon of their own shared by the tests
    that only look at them (ps, logs, inspect, df, events)."""
    with running_daemon() as d:
        load_busybox(d)
        try:
            yield make_some_containers(d)
        finally:
            remove_all(d)


@pytest.fixture
def own_containers(daemon, loaded_busybox):
    """The same containers for a test that changes them (prune)."""
    return make_some_containers(daemon)


@pytest.mark.parametrize("args", [
    ["lg"], ["-t", "lg"], ["--tail", "1", "lg"], ["-n", "2", "lg"], ["--since", "10m", "lg"],
    ["--until", "1s", "lg"], ["--since", "2020-01-01", "lg"], ["--since", "1700000000", "lg"],
    ["--until", "2020-01-01T00:00:00Z", "lg"], ["--details", "lg"], ["lgt"], ["-t", "lgt"],
    ["--since", "bogus", "lg"], ["--until", "2026-13-01", "lg"], ["nosuch"], [], ["-f", "lg"],
])
def test_logs_like_docker(some_containers, args):
    ours, theirs = both(some_containers, "logs", *args)
    assert_same(ours, theirs)


@pytest.mark.parametrize("args", [
    [], ["-a"], ["-a", "--no-trunc"], ["-q"], ["-aq"], ["-l"], ["-n", "2"], ["-a", "-s"],
    ["-a", "--format", "json"], ["-a", "--format", "{{.Names}} {{.Label \"b\"}} {{.Labels}}"],
    ["-a", "--format", "table {{.ID}}\\t{{.Size}}"],
    ["-a", "--format", "table {{.Names}}\\t{{.Label \"com.example.my-label\"}}\\t{{.State}}"],
    ["-a", "--format", "raw"], ["-a", "-f", "name=lg"], ["-a", "-f", "status=created", "-q"],
    ["-a", "-f", "label=b=2"], ["-f", "bad"], ["--format", "{{.Nope}}"], ["--format", "{{"],
    ["-q", "--format", "{{.Names}}"], ["extra"], ["-n", "x"],
])
def test_ps_like_docker(some_containers, args):
    for command in (["ps"], ["container", "ls"], ["container", "list"]):
        ours, theirs = both(some_containers, *command, *args)
        assert_same(ours, theirs)


def test_ps_table_shows_dockers_columns(some_containers):
    out = some_containers.run_cli("ps", "-a").stdout.splitlines()
    assert re.split(r"\s{2,}", out[0]) == ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED",
                                          "STATUS", "PORTS", "NAMES"]
    made = next(line for line in out if line.endswith(" made"))
    assert '"echo \'hello world t…"' in made


@pytest.mark.parametrize("args", [
    ["inspect", "lg"], ["inspect", "--type", "container", "-f", "{{.Name}} {{.State.ExitCode}}",
                        "lg", "up"],
    ["container", "inspect", "-f", "{{json .Config.Labels}}", "lg"],
    ["container", "inspect", "nosuch"], ["container", "inspect", "-s", "-f", "{{.SizeRw}}", "lg"],
])
def test_inspect_containers_like_docker(some_containers, args):
    ours, theirs = both(some_containers, *args)
    assert_same(ours, theirs)


# --- prune, df, events ------------------------------------------------------------------------------


def test_container_prune(own_containers):
    d = own_containers
    ours, theirs = both(d, "container", "prune", input="n\n")
    assert_same(ours, theirs)
    assert ours.stdout == ("WARNING! This will remove all stopped containers.\n"
                           "Are you sure you want to continue? [y/N] ")
    stopped = sorted(c["Id"] for c in d.api().get("/containers/json", query={"all": "1"})
                     if c["State"] != "running")
    result = d.run_cli("container", "prune", "-f")
    lines = result.stdout.split("\n")
    assert lines[0] == "Deleted Containers:"
    assert sorted(lines[1:1 + len(stopped)]) == stopped
    assert lines[1 + len(stopped):] == ["", f"Total reclaimed space: {lines[-2].split(': ')[1]}",
                                        ""]
    assert [c["Names"] for c in d.api().get("/containers/json", query={"all": "1"})] == [["/up"]]
    ours, theirs = both(d, "container", "prune", "-f")
    assert_same(ours, theirs)
    assert ours.stdout == "Total reclaimed space: 0B\n"


@pytest.mark.parametrize("args", [
    [], ["-v"], ["--format", "json"], ["--format", "{{.Type}}: {{.Size}} {{.Reclaimable}}"],
    ["-v", "--format", "json"], ["--format", "raw"], ["--format", "{{.Nope}}"],
])
def test_system_df_like_docker(some_containers, args):
    ours, theirs = both(some_containers, "system", "df", *args)
    assert_same(ours, theirs)


def test_system_prune(own_containers):
    d = own_containers
    for args in ([], ["-a", "--volumes", "--filter", "label=a"]):
        ours, theirs = both(d, "system", "prune", *args, input="n\n")
        assert_same(ours, theirs)
    ours, theirs = both(d, "system", "prune", "--volumes", "--filter", "until=1h", "-f")
    assert_same(ours, theirs)
    result = d.run_cli("system", "prune", "-f")
    assert result.returncode == 0
    assert result.stdout.startswith("Deleted Containers:\n")
    assert result.stdout.endswith("\nTotal reclaimed space: " +
                                  result.stdout.rsplit(": ", 1)[1])
    assert [c["Names"] for c in d.api().get("/containers/json", query={"all": "1"})] == [["/up"]]


@pytest.mark.parametrize("args", [
    [], ["--format", "{{json .}}"], ["--format", "json"],
    ["--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Status}}|{{.ID}}"],
    ["-f", "event=die"], ["-f", "container=lg"], ["-f", "type=image"],
])
def test_events_like_docker(some_containers, args):
    # --until is in whole seconds: the fixture's events must be in the past
    time.sleep(max(0.0, some_containers.made_at + 1.1 - time.time()))
    ours, theirs = both(some_containers, "events", "--since", "1h", "--until", "0s", *args)
    assert_same(ours, theirs)
    assert ours.stdout or args[:2] == ["-f", "type=image"]


@pytest.mark.parametrize("args", [
    ["--format", "{{.Nope}}"], ["--format", "{{"], ["--since", "bogus"], ["-f", "bad"], ["x"],
])
def test_events_errors_like_docker(daemon, args):
    ours, theirs = both(daemon, "events", *args)
    assert_same(ours, theirs)
    assert ours.returncode != 0


def test_events_follow_until_a_time_to_come(daemon, loaded_busybox):
    until = str(int(time.time()) + 4)
    proc = subprocess.Popen([DOCKYARD, "-H", daemon.host, "events", "--until", until,
                             "-f", "event=start"], stdout=subprocess.PIPE, env=daemon.env())
    time.sleep(0.5)
    daemon.run_cli("run", "--rm", "--name", "ev", "busybox:local", "true", check=True)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert re.fullmatch(rb"\S+Z container start [0-9a-f]{64} \(image=busybox:local, name=ev\)\n",
                        out)
    wait_for(lambda: daemon.api().get("/containers/json", query={"all": "1"}) == [],
             what="the --rm container to go")
