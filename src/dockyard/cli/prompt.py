"""Asking the user at the terminal, as the docker CLI's prompt package and
PromptUserForCredentials do: a username (with a default), a password with
the terminal's echo off, Docker Hub's sign-up hints, and tui's notes."""

from __future__ import annotations

import contextlib
import os

from dockyard.cli.command import Cli, StatusError, stream_is_terminal

INDEX_SERVER = "https://index.docker.io/v1/"

REGISTER_SUGGEST = ("Log in with your Docker ID or email address to push and pull images from "
                    "Docker Hub. If you don't have a Docker ID, head over to "
                    "https://hub.docker.com/ to create one.")
PAT_SUGGEST = ("You can log in with your password or a Personal Access Token (PAT). Using a "
               "limited-scope PAT grants better security and is required for organizations "
               "using SSO. Learn more at https://docs.docker.com/go/access-tokens/")
UNDERLINE, RESET, ITALIC = "\x1b[4m", "\x1b[0m", "\x1b[3m"
PAT_NOTE = ("A Personal Access Token (PAT) can be used instead.\n"
            f"To create a PAT, visit {UNDERLINE}https://app.docker.com/settings{RESET}\n\n")
NOTE_HEADER_PLAIN = " Info -> "
NOTE_HEADER_FANCY = ("\x1b[1m\x1b[106m\x1b[30mi\x1b[0m\x1b[0m \x1b[96mInfo \u2192 \x1b[0m"
                     "\x1b[0m")
NOTE_INDENT = " " * len(NOTE_HEADER_PLAIN)  # both headers are 9 columns wide


def prompt_for_credentials(cli: Cli, user: str, password: str, default_user: str,
                           server: str) -> dict:
    """PromptUserForCredentials: ask for what was not given. The username is
    read from stdin (an empty answer takes `default_user`), the password
    from stdin with its echo turned off, which needs stdin to be a terminal:
    it is an error ("inappropriate ioctl for device") when it is not, as in
    docker. Docker Hub's address adds its sign-up hints."""
    user = user.strip()
    if not user:
        user = _ask_username(cli, default_user.strip(), server)
    password = password.strip()
    if not password:
        password = _ask_password(cli, server)
    return {"username": user, "password": password, "serveraddress": server}


def _ask_username(cli: Cli, default_user: str, server: str) -> str:
    if server == INDEX_SERVER:
        cli.out.write(f"{REGISTER_SUGGEST}\n")
        if hints_enabled():
            cli.out.write(f"{PAT_SUGGEST}\n\n")
    message = f"Username ({default_user}): " if default_user else "Username: "
    user = _read_input(cli, message) or default_user
    if not user:
        raise StatusError("Error: Non-null Username Required")
    return user


def _ask_password(cli: Cli, server: str) -> str:
    with _echo_off(cli):
        if server == INDEX_SERVER:
            print_note(cli.err, PAT_NOTE)
        password = _read_input(cli, "Password: ")
        cli.out.write("\n")
    if not password:
        raise StatusError("Error: Password Required")
    return password


def hints_enabled() -> bool:
    """hints.Enabled: on unless DOCKER_CLI_HINTS says a false boolean."""
    from dockyard.strconv import parse_bool
    try:
        return parse_bool(os.environ.get("DOCKER_CLI_HINTS") or "true")
    except ValueError:
        return True


def print_note(stream, text: str) -> None:
    """tui's PrintNote: an "Info" header and the text's lines under it,
    coloured and in italics on a terminal."""
    terminal = stream_is_terminal(stream)
    lines = text.split("\n")
    if terminal:
        lines = [f"{ITALIC}{line}{RESET}" for line in lines]
    header = NOTE_HEADER_FANCY if terminal else NOTE_HEADER_PLAIN
    stream.write(f"\n{header}" + f"\n{NOTE_INDENT}".join(lines) + "\n")


def _read_input(cli: Cli, message: str) -> str:
    """prompt.ReadInput: show `message`, read one line, without its spaces.

    Interrupted (^C), the prompt ends with a newline and the command ends
    without a word and with status 0, as docker's does (its "prompt
    terminated" is a cancellation, which it does not report). At the end of
    stdin docker keeps waiting for ever; we end the prompt the same way but
    say so and fail, so that a script is not left hanging or misled."""
    try:
        with _interruptible():
            cli.out.write(message)
            cli.out.flush()
            line = cli.stdin.readline()
    except KeyboardInterrupt:
        cli.out.write("\n")
        raise StatusError("", 0) from None
    if isinstance(line, bytes):
        line = line.decode()
    if not line:
        cli.out.write("\n")
        raise StatusError("prompt terminated")
    return line.strip()


@contextlib.contextmanager
def _interruptible():
    """SIGINT and SIGTERM end the prompt (docker's ReadInput waits on
    signal.NotifyContext for both), even when the CLI was started with them
    ignored, as a shell's background job or under nohup is: an ignored
    SIGINT would leave ^C unanswered and the prompt waiting for ever."""
    import signal

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    saved = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _echo_off(cli: Cli):
    """prompt.DisableInputEcho: stdin's terminal stops echoing until the
    block ends. stdin must be a terminal."""
    import termios
    try:
        fd = cli.stdin.fileno()
        saved = termios.tcgetattr(fd)
    except (OSError, ValueError):           # no file descriptor at all
        raise StatusError("inappropriate ioctl for device") from None
    except termios.error as e:              # not a terminal: ENOTTY
        raise StatusError(_go_errno(e)) from None
    quiet = list(saved)
    quiet[3] &= ~termios.ECHO
    termios.tcsetattr(fd, termios.TCSANOW, quiet)
    try:
        yield
    finally:
        try:
            termios.tcsetattr(fd, termios.TCSANOW, saved)
        except termios.error as e:
            cli.err.write("Error: failed to restore terminal state to echo input: "
                          f"{_go_errno(e)}\n")


def _go_errno(e: Exception) -> str:
    """An errno's text as Go's syscall.Errno says it (lower case)."""
    text = str(e.args[-1]) if e.args else str(e)
    return text[:1].lower() + text[1:]
