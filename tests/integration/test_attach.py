"""attach and TTYs as dockerd and the docker CLI do them: detach keys (watched by
the daemon for clients that leave it to the daemon, by both CLIs on their
side), `attach` and its errors, `run -it` and `start -ai` through a real pty
(/dev/pts/0, /dev/console, the size, SIGWINCH), attaches to containers that
exit (one or several at once, TTY or not), docker-py's attach_socket and
logs=1, a client that goes away, and `port`. Our CLI and the docker CLI are
run side by side and must behave alike. Every test removes its containers.
"""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import wait_for
from test_cli_containers import assert_same
from test_containers_lifecycle import detached, dy  # noqa: F401

IMAGE = "busybox:local"
DOCKYARD = str(Path(sys.executable).parent / "dockyard")
TICKER = "trap 'echo bye; exit 3' TERM; while :; do echo tick; sleep 0.1; done"


def cli_argv(dy, cli: str, *args: str) -> list[str]:
    return [DOCKYARD if cli == "dockyard" else "docker", "-H", dy.host, *args]


def spawn(dy, cli: str, *args: str):
    import pexpect
    argv = cli_argv(dy, cli, *args)
    return pexpect.spawn(argv[0], argv[1:], env=dy.env(), dimensions=(30, 100), timeout=20)


def running(dy, name: str) -> bool:
    return dy.api().get(f"/containers/{name}/json")["State"]["Running"]


def events(dy, name: str) -> list[str]:
    out = dy.docker("events", "--since", "0", "--until", f"{time.time():.9f}", "--filter",
                    f"container={name}", "--format", "{{.Action}}", check=True).stdout
    return out.split()


def wait_raw(child) -> None:
    """Until the CLI has put its terminal in raw mode: keys typed before would be
    the host terminal's (its echo, ^Q taken for flow control)."""
    import termios
    wait_for(lambda: not termios.tcgetattr(child.child_fd)[3] & termios.ICANON,
             what="the terminal in raw mode")


def stty_size(child) -> str:
    child.sendline("stty size")
    child.expect(r"(\d+ \d+)\r\n")
    return child.match.group(1).decode()


# -- detach keys --------------------------------------------------------------------------

@pytest.mark.parametrize("cli", ["dockyard", "docker"])
def test_attach_detach_and_attach_again(dy, cli):
    import pexpect
    detached(dy, "-it", "--name", "box", IMAGE, "cat")
    child = spawn(dy, cli, "attach", "--detach-keys", "ctrl-x,x", "box")
    try:
        wait_raw(child)
        # a partial sequence followed by another key reaches the container
        child.send("a\x18b\r")
        child.expect("a\x18b\r\n")
        child.send("\x18x")
        child.expect("read escape sequence\r\n")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 1
    assert running(dy, "box")
    child = spawn(dy, cli, "attach", "box")  # default keys: ctrl-p,ctrl-q
    try:
        wait_raw(child)
        child.send("again\r")
        child.expect("again\r\n")
        child.send("\x10\x11")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 1 and b"read escape sequence" in child.before
    assert running(dy, "box")
    # the CLIs catch the keys themselves: the daemon only saw each client go
    assert "detach" not in events(dy, "box")
    assert events(dy, "box").count("attach") == 2


@pytest.mark.parametrize("cli", ["dockyard", "docker"])
def test_run_it_and_start_ai_through_a_pty(dy, cli):
    import pexpect
    child = spawn(dy, cli, "run", "-it", "--name", "shell", "--network", "none", IMAGE, "sh")
    try:
        child.expect("# ")
        child.sendline("tty; ls -l /dev/console")
        child.expect(r"/dev/pts/0\r\ncrw--w----\s+1 0\s+5\s+136,\s+0 .*/dev/console\r\n")
        assert stty_size(child) == "30 100"   # the client's size from the start
        child.expect("# ")
        child.setwinsize(40, 120)              # SIGWINCH: the CLI resizes the container's pty,
        child.expect("\r/ # \x1b\\[J")         # the shell gets SIGWINCH: its line editor redraws
        assert stty_size(child) == "40 120"
        child.send("\x10\x11")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert (child.exitstatus, child.before.count(b"read escape sequence")) == (0, 0)
    assert running(dy, "shell")
    dy.docker("stop", "-t", "0", "shell", check=True)
    child = spawn(dy, cli, "start", "-ai", "--detach-keys", "ctrl-a,a", "shell")
    try:
        child.expect("# ")
        child.sendline("exit 4")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 4 and not running(dy, "shell")


def test_bad_detach_keys_are_refused_alike(dy):
    detached(dy, "-it", "--name", "box", IMAGE, "cat")
    ours = subprocess.run(cli_argv(dy, "dockyard", "attach", "--detach-keys", "ctrl-P", "box"),
                          capture_output=True, text=True, env=dy.env(), stdin=subprocess.DEVNULL)
    theirs = dy.docker("run", "--rm", "--detach-keys", "foo", IMAGE, "true")
    assert (theirs.returncode, theirs.stderr) == (1, "unable to upgrade to tcp, received 400\n")
    # (ours is refused by its own TTY check first: stdin is not a terminal, as docker's is)
    assert ours.returncode == 1 and ours.stderr == "the input device is not a TTY\n"
    mine = dy.run_cli("run", "--rm", "--detach-keys", "foo", IMAGE, "true")
    assert (mine.returncode, mine.stderr) == (1, "unable to upgrade to tcp, received 400\n")
    s = raw_attach(dy, "box", "stream=1&stdin=1&detachKeys=ctrl-P")
    with s:
        assert read_all(s).endswith(b"\r\n\r\nInvalid detach keys (ctrl-P) provided\r\n")


# -- the daemon's side: raw clients, docker-py --------------------------------------------

def raw_attach(dy, name: str, query: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(dy.socket)
    s.sendall(f"POST /v1.41/containers/{name}/attach?{query} HTTP/1.1\r\nHost: d\r\n"
              "Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n".encode())
    return s


def read_all(s: socket.socket) -> bytes:
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return data


def test_daemon_watches_detach_keys_for_raw_clients(dy):
    detached(dy, "-it", "--name", "box", IMAGE, "cat")
    s = raw_attach(dy, "box", "stream=1&stdin=1&stdout=1&detachKeys=ctrl-x,x")
    with s:
        wait_for(lambda: "attach" in events(dy, "box"), what="the attach")
        s.sendall(b"one\x18")
        s.sendall(b"two\r")                     # ^X then not x: passes on
        out = b""
        while out.count(b"two") < 2:            # the pty's echo, then cat's line
            out += s.recv(65536)
        s.sendall(b"\x18x")
        out += read_all(s)                      # the daemon ends the stream
    assert b"one\x18two\r\n" in out
    assert running(dy, "box")
    wait_for(lambda: "detach" in events(dy, "box"), what="the detach event")


def test_docker_py_attach_socket_and_logs(dy):
    client = dy.client()
    c = client.containers.run(IMAGE, ["sh", "-c", "echo one; echo two >&2; cat"], detach=True,
                              stdin_open=True, network_mode="none")
    wait_for(lambda: b"two" in c.logs(), what="the output in the log")
    # logs=1 without stream: the log replayed, stdout and stderr in their frames
    assert c.attach(stdout=True, stderr=True, logs=True, stream=False) == b"one\ntwo\n"
    assert c.attach(stdout=False, stderr=True, logs=True, stream=False) == b"two\n"
    sock = client.api.attach_socket(c.id, params={"stdin": 1, "stdout": 1, "stream": 1})
    try:
        sock._sock.sendall(b"hello\n")
        frame = b""
        while len(frame) < 14:
            frame += sock._sock.recv(64)
        assert frame[:14] == struct.pack(">BxxxI", 1, 6) + b"hello\n"
    finally:
        sock._sock.close()
        sock.close()
    c.kill()
    c.remove()


def test_client_going_away_does_not_block_the_container(dy):
    detached(dy, "--name", "chatty", IMAGE, "sh", "-c",
             "i=0; while :; do echo line-$i-padding-padding-padding; i=$((i+1)); done")
    s = raw_attach(dy, "chatty", "stream=1&stdout=1")
    s.recv(65536)
    s.close()   # gone, without reading the rest: the container writes on, into its log

    def last():
        return dy.docker("logs", "--tail", "1", "chatty", check=True).stdout
    first = last()
    wait_for(lambda: last() != first, what="the log to grow")
    before = int(last().split("-")[1])
    wait_for(lambda: int(last().split("-")[1]) > before + 100000, timeout=30,
             what="a lot more output")


# -- containers that exit under their attachers -------------------------------------------

@pytest.mark.parametrize("tty", [False, True])
def test_attachers_of_an_exiting_container_all_end(dy, tty):
    detached(dy, *(["-t"] if tty else []), "--name", "ticker", IMAGE, "sh", "-c", TICKER)
    procs = [subprocess.Popen(cli_argv(dy, cli, "attach", "--no-stdin", "ticker"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dy.env())
             for cli in ("dockyard", "docker", "dockyard")]
    try:
        for p in procs:
            assert b"tick" in p.stdout.readline()
        dy.docker("kill", "-s", "TERM", "ticker", check=True)
        for p in procs:
            out, err = p.communicate(timeout=20)
            assert (p.returncode, err) == (3, b"")
            assert out.rstrip().endswith(b"bye")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_attach_errors_as_docker(dy):
    dy.docker("create", "--name", "made", IMAGE, "true", check=True)
    detached(dy, "--name", "held", IMAGE, "sleep", "1000")
    dy.docker("pause", "held", check=True)
    for args in (["attach", "made"], ["container", "attach", "held"], ["attach", "nosuch"],
                 ["attach"]):
        assert_same(dy.run_cli(*args), dy.docker(*args))
    assert dy.docker("attach", "made").stderr == \
        "You cannot attach to a stopped container, start it first\n"
    assert dy.docker("attach", "held").stderr == \
        "You cannot attach to a paused container, unpause it first\n"
    s = raw_attach(dy, "held", "stream=1&stdout=1")
    with s:
        assert read_all(s).endswith(
            b"\r\n\r\ncontainer held is paused, unpause the container before attach\r\n")
    dy.docker("unpause", "held", check=True)


def test_port_as_docker(dy):
    detached(dy, "--name", "web", IMAGE, "sleep", "1000")
    for args in (["port", "web"], ["port", "web", "80/tcp"], ["container", "port", "web", "80"],
                 ["port", "web", "abc"], ["port", "web", "70000"], ["port", "nosuch"],
                 ["port"]):
        assert_same(dy.run_cli(*args), dy.docker(*args))
    assert dy.docker("port", "web", "80/tcp").stderr == \
        "Error: No public port '80/tcp' published for web\n"
    assert dy.docker("port", "web").stdout == ""
