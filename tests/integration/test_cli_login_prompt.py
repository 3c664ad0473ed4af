"""A pull refused with 401 asks for credentials and is tried once more, in our
CLI as in the docker CLI (RegistryAuthenticationPrivilegedFunc): both run
through a pty against one dockyardd and a docker-registry behind htpasswd on
127.0.0.1 (test_distribution's), and must show the same prompt, take the
same answers and end alike. Without a terminal, and when the daemon's
answer is not 401 (no credentials at all: 500; a push: an error in the
stream), neither asks, or both fail alike.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal

import pytest

from dockyard.cli.prompt import PAT_SUGGEST, REGISTER_SUGGEST
from harness import DOCKYARD, load_busybox
from test_distribution import (BUSYBOX_ARCHIVE, PASSWORD, REGISTRY, SKOPEO, USER, dy,  # noqa: F401
                               registry)

pytestmark = pytest.mark.skipif(not (os.path.exists(REGISTRY) and os.path.exists(SKOPEO)),
                                reason="needs docker-registry and skopeo")

CLIS = ("dockyard", "docker")
HINTS = f"{REGISTER_SUGGEST}\r\n{PAT_SUGGEST}\r\n\r\n".encode()
NOTE = ("\r\n\x1b[1m\x1b[106m\x1b[30mi\x1b[0m\x1b[0m \x1b[96mInfo \u2192 \x1b[0m\x1b[0m"
        "\x1b[3mA Personal Access Token (PAT) can be used instead.\x1b[0m\r\n"
        "         \x1b[3mTo create a PAT, visit \x1b[4mhttps://app.docker.com/settings\x1b[0m"
        "\x1b[0m\r\n         \x1b[3m\x1b[0m\r\n         \x1b[3m\x1b[0m\r\n").encode()
UNAUTHORIZED = "unauthorized: authentication required"


@pytest.fixture(scope="module")
def auth_reg():
    with registry(auth=True) as r:
        r.seed(f"docker-archive:{BUSYBOX_ARCHIVE}", "test/busybox:1")
        yield r


@pytest.fixture
def d(dy, auth_reg):
    """The module's daemon with a wrong password stored for the registry;
    afterwards no images and no config file."""
    store(dy, auth_reg.addr, "wrong")
    yield dy
    client = dy.client()
    try:
        for image in client.images.list(all=True):
            client.images.remove(image.id, force=True)
    finally:
        client.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(config_file(dy))


def config_file(d) -> str:
    return os.path.join(d.docker_config, "config.json")


def store(d, server: str, password: str) -> None:
    auth = base64.b64encode(f"{USER}:{password}".encode()).decode()
    with open(config_file(d), "w") as f:
        json.dump({"auths": {server: {"auth": auth}}}, f)


def spawn(d, cli: str, *args: str, ignored: tuple[int, ...] = ()):
    """The CLI on a pty of its own; `ignored`: signals it starts with ignored,
    as a shell's background job or nohup starts it."""
    import pexpect

    def ignore() -> None:
        for sig in ignored:
            signal.signal(sig, signal.SIG_IGN)

    program = DOCKYARD if cli == "dockyard" else "docker"
    return pexpect.spawn(program, ["-H", d.host, *args], env=d.env(), dimensions=(30, 400),
                         timeout=60, preexec_fn=ignore)


def answer_prompt(d, cli: str, name: str, user: str, password: str) -> tuple[bytes, bytes, int]:
    """Pull `name` through a pty, typing `user` and `password` once asked:
    (what the terminal showed up to the password's newline, the rest, status)."""
    import pexpect
    child = spawn(d, cli, "pull", name)
    try:
        child.expect(r"Username \(tester\): ")
        shown = child.before + child.after
        child.sendline(user)
        child.expect("Password: ")   # shown once the echo is off
        shown += child.before + child.after
        child.sendline(password)
        child.expect("\r\n")
        shown += child.before + child.after
        child.expect(pexpect.EOF)
        rest = child.before
    finally:
        child.close()
    return shown, rest, child.exitstatus


def test_the_daemon_answers_a_refused_pull_with_401(d, auth_reg):
    """Wrong credentials: the registry's UNAUTHORIZED, as 401 (what lets the
    CLIs ask); no credentials: 500, and neither CLI asks."""
    from dockyard.client.api import APIError

    def status(auth: dict) -> tuple[int, str]:
        header = base64.urlsafe_b64encode(json.dumps(auth).encode()).decode()
        with pytest.raises(APIError) as e:
            d.api().request("POST", "/images/create", headers={"X-Registry-Auth": header},
                            query={"fromImage": f"{auth_reg.addr}/test/busybox", "tag": "1"})
        return e.value.status, e.value.message

    assert status({"username": USER, "password": "wrong"}) == (401, UNAUTHORIZED)
    assert status({}) == (500, f'Head "http://{auth_reg.addr}/v2/test/busybox/manifests/1": '
                               "no basic auth credentials")
    os.unlink(config_file(d))
    name = f"{auth_reg.addr}/test/busybox:1"
    ours, theirs = d.run_cli("pull", name, input=""), d.docker("pull", name, input="")
    assert (ours.returncode, ours.stdout, ours.stderr) == \
        (theirs.returncode, theirs.stdout, theirs.stderr)
    assert (ours.returncode, ours.stdout) == (1, "")


def test_a_pull_refused_with_401_asks_then_pulls_alike(d, auth_reg):
    name = f"{auth_reg.addr}/test/busybox:1"
    runs = {}
    for cli in CLIS:
        runs[cli] = answer_prompt(d, cli, name, "", PASSWORD)   # "": the stored username
        d.docker("rmi", name, check=True)
    shown, rest, status = runs["dockyard"]
    assert shown == runs["docker"][0]
    assert shown == (b"\r\nLogin prior to pull:\r\n" + HINTS + b"Username (tester): \r\n" + NOTE
                     + b"Password: \r\n")
    for cli in CLIS:
        assert runs[cli][2] == 0, runs[cli]
        assert f"Status: Downloaded newer image for {name}\r\n{name}\r\n".encode() in runs[cli][1]
    # what was typed is not stored
    with open(config_file(d)) as f:
        assert json.load(f)["auths"][auth_reg.addr]["auth"] == \
            base64.b64encode(f"{USER}:wrong".encode()).decode()


def test_a_second_refusal_is_the_error(d, auth_reg):
    name = f"{auth_reg.addr}/test/busybox:1"
    runs = {cli: answer_prompt(d, cli, name, "someone", "wrong-again")[1:] for cli in CLIS}
    assert runs["dockyard"] == runs["docker"] == (
        f"Error response from daemon: {UNAUTHORIZED}\r\n".encode(), 1)


@pytest.mark.parametrize("ignored", [(), (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)],
                         ids=["default", "started-ignoring-sigint"])
def test_an_interrupted_prompt_ends_quietly(d, auth_reg, ignored):
    import pexpect
    for cli in CLIS:
        child = spawn(d, cli, "pull", f"{auth_reg.addr}/test/busybox:1", ignored=ignored)
        try:
            child.expect(r"Username \(tester\): ")
            child.sendintr()
            child.expect(pexpect.EOF)
        finally:
            child.close()
        assert (child.before, child.exitstatus) == (b"^C\r\n", 0), cli


def test_a_terminated_prompt_ends_alike(d, auth_reg):
    import pexpect
    ends = {}
    for cli in CLIS:
        child = spawn(d, cli, "pull", f"{auth_reg.addr}/test/busybox:1")
        try:
            child.expect(r"Username \(tester\): ")
            child.kill(signal.SIGTERM)
            child.expect(pexpect.EOF)
        finally:
            child.close()
        ends[cli] = (child.before, child.exitstatus, child.signalstatus)
    assert ends["dockyard"] == ends["docker"]


def test_without_a_terminal_the_password_cannot_be_asked(d, auth_reg):
    name = f"{auth_reg.addr}/test/busybox:1"
    ours = d.run_cli("pull", name, input=f"{USER}\n{PASSWORD}\n")
    theirs = d.docker("pull", name, input=f"{USER}\n{PASSWORD}\n")
    assert (ours.returncode, ours.stdout, ours.stderr) == \
        (theirs.returncode, theirs.stdout, theirs.stderr)
    assert ours.returncode == 1
    assert ours.stdout == ("\nLogin prior to pull:\n" + HINTS.decode().replace("\r\n", "\n")
                           + "Username (tester): ")
    assert ours.stderr == "inappropriate ioctl for device\n"
    # at the end of its input docker would wait for ever; we stop
    empty = d.run_cli("pull", name, input="")
    assert (empty.returncode, empty.stderr) == (1, "prompt terminated\n")
    assert empty.stdout.endswith("Username (tester): \n")


def test_a_refused_push_is_an_error_in_the_stream_and_asks_nothing(d, auth_reg):
    load_busybox(d)
    name = f"{auth_reg.addr}/test/mine:1"
    d.docker("tag", "busybox:local", name, check=True)
    ours, theirs = d.run_cli("push", name, input=""), d.docker("push", name, input="")
    assert (ours.returncode, ours.stdout, ours.stderr) == \
        (theirs.returncode, theirs.stdout, theirs.stderr)
    assert ours.returncode == 1
    assert ours.stdout.startswith(f"The push refers to repository [{auth_reg.addr}/test/mine]\n")
    assert ours.stderr == f"{UNAUTHORIZED}\n"
