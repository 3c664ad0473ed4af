"""Asking for credentials when the daemon refuses a pull or push with 401
(cli/distribution.py): docker's RegistryAuthenticationPrivilegedFunc and
PromptUserForCredentials, with stdin a pty, a pipe or a string, and a fake
daemon client."""

from __future__ import annotations

import base64
import io
import json
import os
import termios

import pytest

from dockyard.cli import distribution as cli_dist
from dockyard.cli import prompt
from dockyard.cli.command import Cli, StatusError
from dockyard.client.api import APIError

REGISTRY = "127.0.0.1:5000"
HUB_HINTS = f"{prompt.REGISTER_SUGGEST}\n{prompt.PAT_SUGGEST}\n\n"
PAT_NOTE_PLAIN = ("\n Info -> A Personal Access Token (PAT) can be used instead.\n"
                  "         To create a PAT, visit \x1b[4mhttps://app.docker.com/settings\x1b[0m\n"
                  "         \n"
                  "         \n")


class Terminal:
    """A pty's secondary end as the CLI's stdin; what is typed goes in at the
    primary end. Each read records whether the terminal echoed."""

    def __init__(self):
        self.primary, self.secondary = os.openpty()
        self.file = open(self.secondary, "r", closefd=False)
        self.echoed: list[bool] = []

    def type(self, text: str) -> None:
        os.write(self.primary, text.encode())

    def fileno(self) -> int:
        return self.secondary

    def isatty(self) -> bool:
        return os.isatty(self.secondary)

    def readline(self) -> str:
        self.echoed.append(bool(termios.tcgetattr(self.secondary)[3] & termios.ECHO))
        return self.file.readline()

    def echoes(self) -> bool:
        return bool(termios.tcgetattr(self.secondary)[3] & termios.ECHO)

    def close(self) -> None:
        self.file.close()
        os.close(self.primary)
        os.close(self.secondary)


@pytest.fixture
def terminal():
    t = Terminal()
    yield t
    t.close()


@pytest.fixture
def docker_config(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "cfg"))
    monkeypatch.delenv("DOCKER_CLI_HINTS", raising=False)
    return tmp_path / "cfg"


def make_cli(stdin) -> Cli:
    return Cli(out=io.StringIO(), err=io.StringIO(), stdin=stdin)


def decode(header: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(header))


def store(docker_config, user: str, password: str) -> None:
    docker_config.mkdir(exist_ok=True)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    (docker_config / "config.json").write_text(json.dumps({"auths": {REGISTRY: {"auth": auth}}}))


# --- PromptUserForCredentials ------------------------------------------------------


def test_username_then_password_without_echo(terminal):
    cli = make_cli(terminal)
    terminal.type("  tester \n s3cret-pw \n")
    creds = prompt.prompt_for_credentials(cli, "", "", "", REGISTRY)
    assert creds == {"username": "tester", "password": "s3cret-pw", "serveraddress": REGISTRY}
    assert cli.out.getvalue() == "Username: Password: \n"
    assert cli.err.getvalue() == ""
    assert terminal.echoed == [True, False]
    assert terminal.echoes()  # restored


def test_an_empty_username_takes_the_default(terminal):
    cli = make_cli(terminal)
    terminal.type("\npw\n")
    creds = prompt.prompt_for_credentials(cli, "", "", " stored ", REGISTRY)
    assert creds["username"] == "stored"
    assert cli.out.getvalue() == "Username (stored): Password: \n"


def test_given_values_are_not_asked_for(terminal):
    cli = make_cli(terminal)
    terminal.type("typed\n")
    assert prompt.prompt_for_credentials(cli, "given", "", "", REGISTRY)["username"] == "given"
    assert cli.out.getvalue() == "Password: \n"
    cli = make_cli(io.StringIO())
    assert prompt.prompt_for_credentials(cli, " u ", " p ", "", REGISTRY) == {
        "username": "u", "password": "p", "serveraddress": REGISTRY}
    assert cli.out.getvalue() == ""


def test_docker_hub_shows_its_hints_and_note(terminal, monkeypatch):
    monkeypatch.delenv("DOCKER_CLI_HINTS", raising=False)
    cli = make_cli(terminal)
    terminal.type("me\npw\n")
    prompt.prompt_for_credentials(cli, "", "", "", cli_dist.INDEX_SERVER)
    assert cli.out.getvalue() == f"{HUB_HINTS}Username: Password: \n"
    assert cli.err.getvalue() == PAT_NOTE_PLAIN
    monkeypatch.setenv("DOCKER_CLI_HINTS", "false")
    cli = make_cli(terminal)
    terminal.type("me\npw\n")
    prompt.prompt_for_credentials(cli, "", "", "", cli_dist.INDEX_SERVER)
    assert cli.out.getvalue() == f"{prompt.REGISTER_SUGGEST}\nUsername: Password: \n"
    monkeypatch.setenv("DOCKER_CLI_HINTS", "not-a-bool")  # read as on
    assert prompt.hints_enabled()


def test_the_note_on_a_terminal_is_coloured(terminal):
    err = open(terminal.secondary, "w", closefd=False)
    try:
        prompt.print_note(err, "one\ntwo")
    finally:
        err.close()
    written = os.read(terminal.primary, 4096)
    assert written == (b"\r\n\x1b[1m\x1b[106m\x1b[30mi\x1b[0m\x1b[0m \x1b[96mInfo \xe2\x86\x92 "
                       b"\x1b[0m\x1b[0m\x1b[3mone\x1b[0m\r\n         \x1b[3mtwo\x1b[0m\r\n")


@pytest.mark.parametrize("answers, error", [
    ("\n", "Error: Non-null Username Required"),
    ("me\n\n", "Error: Password Required"),
    ("", "prompt terminated"),
    ("me\n", "prompt terminated"),
])
def test_missing_answers(terminal, answers, error):
    cli = make_cli(terminal)
    terminal.type(answers)
    if not answers.endswith("\n\n") and answers != "\n":
        terminal.type("\x04")  # ^D: the end of input
    with pytest.raises(StatusError) as e:
        prompt.prompt_for_credentials(cli, "", "", "", REGISTRY)
    assert e.value.message == error
    assert terminal.echoes()


def test_a_pipe_gives_the_username_but_not_the_password():
    """docker reads the username from any stdin, then cannot turn the echo off."""
    r, w = os.pipe()
    os.write(w, b"tester\ns3cret\n")
    os.close(w)
    with open(r) as stdin:
        cli = make_cli(stdin)
        with pytest.raises(StatusError) as e:
            prompt.prompt_for_credentials(cli, "", "", "", REGISTRY)
    assert e.value.message == "inappropriate ioctl for device"
    assert cli.out.getvalue() == "Username: "
    with pytest.raises(StatusError) as e:
        prompt.prompt_for_credentials(make_cli(io.StringIO("x\n")), "", "", "", REGISTRY)
    assert e.value.message == "inappropriate ioctl for device"


# --- the retry of pull and push ------------------------------------------------------


class FakeDaemon:
    """Answers 401 to every request until it is sent `accept` as X-Registry-Auth."""

    def __init__(self, accept: dict | None, status: int = 401):
        self.accept = accept
        self.status = status
        self.sent: list[tuple[str, dict]] = []

    def request(self, method, path, query=None, headers=None, **_):
        auth = decode(headers["X-Registry-Auth"])
        self.sent.append((path, auth))
        if auth != self.accept:
            raise APIError(self.status, "unauthorized: authentication required")
        return io.BytesIO(json.dumps({"status": "Pulled"}).encode())


def run(cli: Cli, daemon: FakeDaemon, *argv: str) -> int:
    cli._client = daemon
    command = cli_dist.pull if argv[0] == "pull" else cli_dist.push
    return command(cli, list(argv[1:]), f"dockyard {argv[0]}")


def test_pull_asks_after_a_401_and_sends_the_answer(docker_config, terminal):
    store(docker_config, "tester", "wrong")
    typed = {"username": "tester", "password": "right", "serveraddress": cli_dist.INDEX_SERVER}
    daemon = FakeDaemon(accept=typed)
    cli = make_cli(terminal)
    terminal.type("\nright\n")
    assert run(cli, daemon, "pull", f"{REGISTRY}/test/busybox:1") == 0
    assert [auth for _, auth in daemon.sent] == [
        {"username": "tester", "password": "wrong", "serveraddress": REGISTRY}, typed]
    assert cli.out.getvalue() == (f"\nLogin prior to pull:\n{HUB_HINTS}Username (tester): "
                                  f"Password: \nPulled\n{REGISTRY}/test/busybox:1\n")
    assert cli.err.getvalue() == PAT_NOTE_PLAIN
    # nothing typed is stored
    assert cli_dist.get_credentials(cli_dist.load_config(), REGISTRY)["password"] == "wrong"


def test_push_asks_too_and_a_second_401_is_the_error(docker_config, terminal):
    daemon = FakeDaemon(accept=None)
    cli = make_cli(terminal)
    terminal.type("someone\npw\n")
    with pytest.raises(APIError) as e:
        run(cli, daemon, "push", f"{REGISTRY}/test/mine:1")
    assert e.value.status == 401
    assert [path for path, _ in daemon.sent] == ["/images/127.0.0.1:5000/test/mine/push"] * 2
    assert daemon.sent[0][1] == {}
    assert cli.out.getvalue().startswith("\nLogin prior to push:\n")


@pytest.mark.parametrize("status", [403, 404, 500])
def test_other_refusals_do_not_ask(docker_config, status):
    daemon = FakeDaemon(accept=None, status=status)
    cli = make_cli(io.StringIO())
    with pytest.raises(APIError):
        run(cli, daemon, "pull", f"{REGISTRY}/test/busybox:1")
    assert len(daemon.sent) == 1
    assert cli.out.getvalue() == ""


def test_a_pipe_ends_the_retry_with_dockers_error(docker_config):
    daemon = FakeDaemon(accept=None)
    cli = make_cli(io.StringIO("tester\npw\n"))
    with pytest.raises(StatusError) as e:
        run(cli, daemon, "pull", "-q", f"{REGISTRY}/test/busybox:1")
    assert e.value.message == "inappropriate ioctl for device"
    assert cli.out.getvalue() == f"\nLogin prior to pull:\n{HUB_HINTS}Username: "
    assert len(daemon.sent) == 1


def test_an_interrupted_prompt_ends_quietly_with_status_0(terminal, monkeypatch):
    """docker prints a newline and exits 0 when ^C ends its prompt."""
    cli = make_cli(terminal)
    terminal.type("me\n")

    def interrupted():
        raise KeyboardInterrupt
    monkeypatch.setattr(terminal.file, "readline", interrupted, raising=False)
    with pytest.raises(StatusError) as e:
        prompt.prompt_for_credentials(cli, "", "", "", REGISTRY)
    assert (e.value.message, e.value.status) == ("", 0)
    assert cli.out.getvalue() == "Username: \n"


# --- login with stored credentials ---------------------------------------------------


class FakeAuth:
    """POST /auth: "Login Succeeded" for `accept`, else an error of `status`."""

    def __init__(self, accept: dict, status: int):
        self.accept = accept
        self.status = status
        self.sent: list[dict] = []

    def post(self, path, body=None, **_):
        assert path == "/auth"
        self.sent.append(body)
        if body != self.accept:
            raise APIError(self.status, "login attempt failed")
        return {"IdentityToken": "", "Status": "Login Succeeded"}


@pytest.mark.parametrize("status, said", [
    (401, "Stored credentials invalid or expired\n"),
    (500, "Login did not succeed, error: Error response from daemon: login attempt failed\n")])
def test_refused_stored_credentials_are_said_then_asked_for(docker_config, terminal, status,
                                                            said):
    store(docker_config, "tester", "stale")
    typed = {"username": "tester", "password": "fresh", "serveraddress": REGISTRY}
    daemon = FakeAuth(accept=typed, status=status)
    cli = make_cli(terminal)
    cli._client = daemon
    terminal.type("\nfresh\n")
    assert cli_dist.login(cli, [REGISTRY], "dockyard login") == 0
    assert daemon.sent == [{"username": "tester", "password": "stale",
                            "serveraddress": REGISTRY}, typed]
    config = docker_config / "config.json"
    assert cli.err.getvalue() == (
        "Authenticating with existing credentials... [Username: tester]\n\n Info -> To login "
        "with a different account, run 'docker logout' followed by 'docker login'\n\n\n" + said
        + f"\nWARNING! Your credentials are stored unencrypted in '{config}'.\nConfigure a "
        "credential helper to remove this warning. See\nhttps://docs.docker.com/go/"
        "credential-store/\n\n")
    assert cli.out.getvalue() == "Username (tester): Password: \nLogin Succeeded\n"
    assert cli_dist.get_credentials(cli_dist.load_config(), REGISTRY)["password"] == "fresh"
