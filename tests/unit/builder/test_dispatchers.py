"""The run_config edits and step records of the classic builder (pure)."""

from __future__ import annotations

import pytest

from dockyard.builder import parser
from dockyard.builder.buildargs import BuildArgs
from dockyard.builder.dispatchers import (
    DEFAULT_PATH, DispatchState, apply_metadata, expose_ports, health_text, normalize_dest,
    normalize_workdir, prepend_env_on_cmd, resolve_cmd_line, with_cmd_comment,
    with_cmd_comment_string)
from dockyard.builder.expansion import expand
from dockyard.builder.gostrings import format_duration, quote_rune
from dockyard.builder.instructions import InstructionError, parse_command
from dockyard.builder.shell import Lexer


def command(line: str):
    return parse_command(parser.parse(line).ast.children[0])


def state(config=None) -> DispatchState:
    s = DispatchState(BuildArgs({}))
    s.begin_stage("", "sha256:parent", config)
    return s


def apply(s: DispatchState, line: str) -> str:
    return apply_metadata(s, expand(command(line), Lexer(), s.environment()))


def test_begin_stage_adds_path_and_clears_stdin():
    s = state({"Env": None, "OpenStdin": True, "Cmd": ["sh"]})
    assert s.run_config["Env"] == ["PATH=" + DEFAULT_PATH]
    assert s.run_config["OpenStdin"] is False and s.run_config["Cmd"] == ["sh"]
    assert state({"Env": ["PATH=/x"]}).run_config["Env"] == ["PATH=/x"]


@pytest.mark.parametrize("line,text", [
    ("ENV A=1 B=two", "ENV A=1 B=two"),
    ('LABEL org.example.name="dockyard test" version=1.0',
     "LABEL org.example.name=dockyard test version=1.0"),
    ("EXPOSE 8080 9090/udp", "EXPOSE 8080 9090/udp"),
    ('VOLUME ["/data/vol"]', "VOLUME [/data/vol]"),
    ("STOPSIGNAL SIGTERM", "STOPSIGNAL SIGTERM"),
    ('SHELL ["/bin/sh", "-ec"]', "SHELL [/bin/sh -ec]"),
    ("USER 1000:1000", "USER 1000:1000"),
    ("ONBUILD RUN echo onbuild trigger", "ONBUILD RUN echo onbuild trigger"),
    ('ENTRYPOINT ["/bin/sh", "-c"]', 'ENTRYPOINT ["/bin/sh" "-c"]'),
    ('CMD ["echo hello"]', 'CMD ["echo hello"]'),
    ("CMD echo hi", 'CMD ["/bin/sh" "-c" "echo hi"]'),
    ("ARG VERSION=1.0", "ARG VERSION=1.0"),
    ("ARG NAME", "ARG NAME"),
    ("MAINTAINER Jane Doe <jane@example.com>", "MAINTAINER Jane Doe <jane@example.com>"),
    ('HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD ["true"]',
     'HEALTHCHECK &{["CMD" "true"] "30s" "5s" "0s" \'\\x03\'}'),
    ("HEALTHCHECK NONE", 'HEALTHCHECK &{["NONE"] "0s" "0s" "0s" \'\\x00\'}'),
    ("HEALTHCHECK --start-period=2s CMD echo ok || exit 1",
     'HEALTHCHECK &{["CMD-SHELL" "echo ok || exit 1"] "0s" "0s" "2s" \'\\x00\'}'),
])
def test_commit_texts_are_dockerds(line, text):
    assert apply(state(), line) == text


def test_metadata_edits_the_run_config():
    s = state({"Env": ["PATH=/bin", "A=old"], "Cmd": ["sh"]})
    apply(s, "ENV A=new B=2")
    assert s.run_config["Env"] == ["PATH=/bin", "A=new", "B=2"]
    apply(s, "EXPOSE 7000-7002/tcp 53/udp")
    assert set(s.run_config["ExposedPorts"]) == {"7000/tcp", "7001/tcp", "7002/tcp", "53/udp"}
    apply(s, 'ENTRYPOINT ["top"]')
    assert s.run_config["Cmd"] is None  # no CMD in this stage: the image's is dropped
    apply(s, 'CMD ["-b"]')
    apply(s, 'ENTRYPOINT ["top2"]')
    assert s.run_config["Cmd"] == ["-b"]  # a CMD of the stage stays
    apply(s, "ARG V=1")
    assert s.build_args.all_allowed()["V"] == "1"
    assert apply(s, "ENV X=$V") == "ENV X=1"


def test_healthcheck_override_note():
    s = state({"Healthcheck": {"Test": ["CMD", "a"]}})
    notes: list[str] = []
    apply_metadata(s, command("HEALTHCHECK CMD b"), notes)
    assert notes == ["Note: overriding previous HEALTHCHECK: [CMD a]\n"]


def test_step_records():
    config = {"Shell": ["/bin/bash", "-c"], "Cmd": ["x"]}
    assert with_cmd_comment(config, "ENV A=1")["Cmd"] == ["/bin/bash", "-c", "#(nop) ", "ENV A=1"]
    assert with_cmd_comment_string({}, "WORKDIR /a")["Cmd"] == ["/bin/sh", "-c",
                                                               "#(nop) WORKDIR /a"]
    assert config["Cmd"] == ["x"]  # the run_config itself is left alone


def test_run_records_build_args_sorted_without_unreferenced_proxies():
    args = BuildArgs({"HTTP_PROXY": "http://p", "B": "2"})
    args.add_arg("B", None)
    args.add_arg("A", "1")
    cmd = resolve_cmd_line(command("RUN make"), {})
    assert cmd == ["/bin/sh", "-c", "make"]
    record = prepend_env_on_cmd(args, args.filter_allowed([]), cmd)
    assert record == ["|2", "A=1", "B=2", "/bin/sh", "-c", "make"]
    assert resolve_cmd_line(command('RUN ["echo", "x"]'), {}) == ["echo", "x"]


def test_build_args_scoping():
    args = BuildArgs({"X": "from-cli", "UNUSED": "1", "NO_PROXY": "n", "NULL": None})
    args.add_meta_arg("M", "meta")
    stage = args.for_stage()
    assert stage.all_allowed() == {"NO_PROXY": "n"}  # proxies need no ARG
    stage.add_arg("X", "default")
    stage.add_arg("M", None)  # redeclared without a value: the meta arg's
    stage.add_arg("NULL", None)
    assert stage.all_allowed() == {"X": "from-cli", "M": "meta", "NO_PROXY": "n"}
    assert stage.filter_allowed(["X=env"]) == ["M=meta", "NO_PROXY=n"]
    args.merge_referenced(stage)
    assert args.unused() == ["UNUSED"]


@pytest.mark.parametrize("current,requested,expected", [
    ("", "/app", "/app"), ("/app", "b/c", "/app/b/c"), ("/a", "../x", "/x"), ("/a", "/b/", "/b/"),
])
def test_normalize_workdir(current, requested, expected):
    assert normalize_workdir(current, requested) == expected


def test_normalize_dest_keeps_a_trailing_slash():
    assert normalize_dest("/app", "./") == "/app/"
    assert normalize_dest("/app", "files/") == "/app/files/"
    assert normalize_dest("", "x") == "/x"
    assert normalize_dest("/app", "/abs") == "/abs"


def test_expose_errors():
    with pytest.raises(InstructionError, match="Invalid containerPort: 99999999"):
        expose_ports(["99999999"])
    with pytest.raises(InstructionError, match="invalid proto: bogus"):
        expose_ports(["80/bogus"])
    assert expose_ports(["127.0.0.1:8080:80/UDP"]) == ["80/udp"]


def test_go_formatting():
    assert [format_duration(n) for n in (0, 1_500_000_000, 90 * 10**9, 7200 * 10**9, 10**6)] == \
        ["0s", "1.5s", "1m30s", "2h0m0s", "1ms"]
    assert quote_rune(3) == "'\\x03'" and quote_rune(65) == "'A'"
    assert health_text({"Test": ["NONE"]}) == '&{["NONE"] "0s" "0s" "0s" \'\\x00\'}'
