"""Typed instructions and stages from the parser's tree, their errors in
dockerd's words, and substitution where the classic builder does it.

Expected messages and lines were checked against buildkit's instructions
package, which dockerd uses.
"""

from pathlib import Path

import pytest

from dockyard import errdefs
from dockyard.builder.commands import (
    AddCommand, ArgCommand, CmdCommand, CopyCommand, EntrypointCommand, EnvCommand,
    ExposeCommand, HealthCheckCommand, HealthConfig, KeyValuePair, KeyValuePairOptional,
    LabelCommand, MaintainerCommand, OnbuildCommand, RunCommand, ShellCommand, ShellInlineFile,
    SourceContent, StopSignalCommand, UserCommand, VolumeCommand, WorkdirCommand,
    new_label_command)
from dockyard.builder.expansion import expand
from dockyard.builder.instructions import (
    DockerfileError, InstructionError, UnknownInstructionError, check_classic_builder_support,
    find_stage, parse_command, parse_stages, stage_index)
from dockyard.builder.parser import parse
from dockyard.builder.shell import Lexer

LAYERS = Path("/work/shared/fixtures/images/layers.Dockerfile")


def stages_of(text):
    return parse_stages(parse(text).ast)


def commands(text):
    stages, _ = stages_of("FROM busybox\n" + text)
    return stages[0].commands


def command(text):
    (only,) = commands(text)
    return only


# --- each instruction --------------------------------------------------------------

def test_common_fields():
    run = command("# why\nrun  echo hi  \\\n  there\n")
    assert (run.name, run.code, run.start_line, run.end_line, run.comments) == (
        "run", "run  echo hi    there", 3, 4, ["why"])
    assert str(run) == run.code


def test_env_both_forms_and_several_pairs():
    assert isinstance(command("ENV A 1"), EnvCommand)
    assert command("ENV A 1 2").env == [KeyValuePair("A", "1 2", no_delim=True)]
    assert command('ENV A=1 B="two words" C=').env == [
        KeyValuePair("A", "1"), KeyValuePair("B", '"two words"'), KeyValuePair("C", "")]
    assert str(KeyValuePair("A", "1")) == "A=1"


def test_label():
    assert command('LABEL a=b "c d"=e').labels == [KeyValuePair("a", "b"), KeyValuePair('"c d"', "e")]
    assert command("LABEL maintainer me").labels == [KeyValuePair("maintainer", "me", True)]


def test_arg_before_and_after_from():
    stages, meta = stages_of("ARG BASE=busybox\nARG TAG\nFROM $BASE:$TAG\nARG A=1 B C=\n")
    assert [a.args for a in meta] == [[KeyValuePairOptional("BASE", "busybox")],
                                      [KeyValuePairOptional("TAG", None)]]
    (arg,) = stages[0].commands
    assert isinstance(arg, ArgCommand)
    assert arg.args == [KeyValuePairOptional("A", "1"), KeyValuePairOptional("B", None),
                        KeyValuePairOptional("C", "")]


def test_run_shell_and_exec_forms():
    shell, exec_form = commands('RUN echo  "a b"\nRUN ["echo", "a b"]\n')
    assert (shell.cmd_line, shell.prepend_shell) == (['echo  "a b"'], True)
    assert (exec_form.cmd_line, exec_form.prepend_shell) == (["echo", "a b"], False)
    assert isinstance(shell, RunCommand) and shell.flags_used == []


def test_run_heredocs_become_files():
    run = command("RUN <<EOF python3 <<-PY\nls\nEOF\n\tprint(1)\nPY\n")
    assert run.cmd_line == ["<<EOF python3 <<-PY"]
    assert run.files == [ShellInlineFile("EOF", "ls\n", False), ShellInlineFile("PY", "\tprint(1)\n", True)]


def test_run_buildkit_flags_parse_then_are_refused_by_the_classic_builder():
    run = command("RUN --network=none --mount=type=cache,target=/c --security=insecure true")
    assert (run.flags_used, run.network, run.security) == (["network", "mount", "security"], "none", "insecure")
    assert run.mount_specs == ["type=cache,target=/c"]
    with pytest.raises(InstructionError, match="^the --network option requires BuildKit. Refer to "
                       "https://docs.docker.com/go/buildkit/ to learn how to build images with "
                       "BuildKit enabled$"):
        check_classic_builder_support(run)
    check_classic_builder_support(command("RUN true"))


def test_cmd_and_entrypoint():
    cmd, entrypoint, empty_cmd, empty_entrypoint = commands(
        'CMD ["a"]\nENTRYPOINT /init\nCMD []\nENTRYPOINT []\n')
    assert isinstance(cmd, CmdCommand) and cmd.cmd_line == ["a"] and not cmd.prepend_shell
    assert isinstance(entrypoint, EntrypointCommand) and entrypoint.cmd_line == ["/init"]
    # dockerd clears Cmd with CMD [], and Entrypoint with ENTRYPOINT []
    assert empty_cmd.cmd_line == [] and empty_entrypoint.cmd_line is None


def test_copy_and_add_flags():
    copy = command("COPY --from=build --chown=1:2 --chmod=644 --link --exclude=*.md --parents a b /dst/")
    assert isinstance(copy, CopyCommand)
    assert (copy.from_, copy.chown, copy.chmod, copy.link, copy.exclude_patterns, copy.parents) == (
        "build", "1:2", "644", True, ["*.md"], True)
    assert (copy.source_paths, copy.dest_path, copy.source_contents) == (["a", "b"], "/dst/", [])
    add = command("ADD --keep-git-dir=false --checksum=sha256:ab --unpack https://x/y.tgz /y")
    assert isinstance(add, AddCommand)
    assert (add.keep_git_dir, add.checksum, add.unpack, add.link) == (False, "sha256:ab", True, False)
    assert command("ADD a b").keep_git_dir is None  # not given, not false


def test_copy_json_form_and_flag_terminator():
    assert command('COPY ["a b", "/c d/"]').source_paths == ["a b"]
    copy = command("COPY -- --file /dst")
    assert (copy.source_paths, copy.dest_path) == (["--file"], "/dst")


def test_copy_heredoc_sources():
    copy = command("COPY <<a.txt <<-'b.sh' plain /dst/\nhello $X\na.txt\n\tsecond\n\tb.sh\n")
    assert copy.source_paths == ["plain"]
    assert copy.source_contents == [SourceContent("a.txt", "hello $X\n", expand=True),
                                    SourceContent("b.sh", "second\n", expand=False)]


def test_chmod_is_refused_by_the_classic_builder_once_substituted():
    copy = command("COPY --chmod=$MODE a /b")
    check_classic_builder_support(expand(copy, Lexer(), {}))  # empty: accepted
    with pytest.raises(InstructionError, match="^the --chmod option requires BuildKit"):
        check_classic_builder_support(expand(copy, Lexer(), {"MODE": "755"}))


def test_simple_value_instructions():
    workdir, user, stopsignal, maintainer = commands(
        "WORKDIR /a b\nUSER me:us\nSTOPSIGNAL SIGKILL\nMAINTAINER Jane <j@x>\n")
    assert isinstance(workdir, WorkdirCommand) and workdir.path == "/a b"
    assert isinstance(user, UserCommand) and user.user == "me:us"
    assert isinstance(stopsignal, StopSignalCommand) and stopsignal.signal == "SIGKILL"
    assert isinstance(maintainer, MaintainerCommand) and maintainer.maintainer == "Jane <j@x>"


def test_expose_ports_are_sorted_and_volumes_trimmed():
    expose, volume = commands('EXPOSE 8080 53/udp 443\nVOLUME ["/a ", "/b"]\n')
    assert isinstance(expose, ExposeCommand) and expose.ports == ["443", "53/udp", "8080"]
    assert isinstance(volume, VolumeCommand) and volume.volumes == ["/a", "/b"]


def test_shell():
    shell = command('SHELL ["powershell", "-Command"]')
    assert isinstance(shell, ShellCommand) and shell.shell == ["powershell", "-Command"]


@pytest.mark.parametrize("line, health", [
    ("HEALTHCHECK NONE", HealthConfig(["NONE"])),
    ("HEALTHCHECK --retries=5 none", HealthConfig(["NONE"])),  # NONE reads no flags
    ("HEALTHCHECK CMD curl -f http://x/ || exit 1", HealthConfig(["CMD-SHELL", "curl -f http://x/ || exit 1"])),
    ('HEALTHCHECK CMD ["curl", "-f"]', HealthConfig(["CMD", "curl", "-f"])),
    ("HEALTHCHECK --interval=1m30s --timeout=5s --start-period=1.5s --start-interval=2ms "
     "--retries=3 cmd true",
     HealthConfig(["CMD-SHELL", "true"], 90_000_000_000, 5_000_000_000, 1_500_000_000, 2_000_000, 3)),
    ("HEALTHCHECK --interval=0s --retries=0 CMD true", HealthConfig(["CMD-SHELL", "true"])),
])
def test_healthcheck(line, health):
    healthcheck = command(line)
    assert isinstance(healthcheck, HealthCheckCommand) and healthcheck.health == health


def test_health_config_as_image_config_leaves_zeros_out():
    assert HealthConfig(["CMD-SHELL", "x"], interval=5, retries=0).as_config() == {
        "Test": ["CMD-SHELL", "x"], "Interval": 5}


def test_onbuild_keeps_the_trigger_as_text():
    plain, with_heredoc = commands("onbuild  RUN make  \nONBUILD COPY <<EOF /f\ndata\nEOF\n")
    assert isinstance(plain, OnbuildCommand) and plain.expression == "RUN make  "
    assert with_heredoc.expression == "COPY <<EOF /f\ndata\nEOF"
    (trigger,) = parse(with_heredoc.expression).ast.children  # as the child build reads it
    assert parse_command(trigger).source_contents == [SourceContent("EOF", "data\n", True)]


def test_parse_command_refuses_from():
    (node,) = parse("FROM x\n").ast.children
    with pytest.raises(InstructionError, match=r"^\*instructions.Stage is not a command type$"):
        parse_command(node)


def test_label_option_of_docker_build():
    label = new_label_command("a", "$b")
    assert (label.code, label.labels, label.no_expand) == ("LABEL a=$b", [KeyValuePair("a", "$b")], True)
    assert expand(label, Lexer(), {"b": "x"}).labels == [KeyValuePair("a", "$b")]


# --- stages ------------------------------------------------------------------------

def test_stages_by_name_and_index():
    stages, meta = stages_of(
        "ARG V=1\nFROM --platform=linux/arm64 golang AS Build\nRUN make\nFROM scratch\n"
        "COPY --from=build /out /\n")
    assert [(s.name, s.base_name, s.platform, s.orig_cmd, s.code) for s in stages] == [
        ("build", "golang", "linux/arm64", "FROM", "FROM --platform=linux/arm64 golang AS Build"),
        ("", "scratch", "", "FROM", "FROM scratch")]
    assert [type(c) for c in stages[0].commands] == [RunCommand]
    assert len(meta) == 1
    assert stage_index(stages, "BUILD") == 0 and stage_index(stages, "nope") is None
    assert find_stage(stages, "build", current=1) == 0
    assert find_stage(stages, "0", current=1) == 0
    assert find_stage(stages, "busybox:latest", current=1) is None
    with pytest.raises(InstructionError, match="^refers to current build stage$"):
        find_stage(stages, "1", current=1)
    with pytest.raises(InstructionError, match="^index out of bounds$"):
        find_stage(stages, "5", current=1)
    # a stage is known by name only once it is built
    assert find_stage(stages, "build", current=0) is None


def test_duplicate_stage_names_are_refused():
    with pytest.raises(InstructionError) as caught:
        stages_of("FROM a AS x\nRUN true\nFROM b AS X\n")
    assert (str(caught.value), caught.value.start_line) == ("x stage name already used", 3)


def test_meta_args_alone_make_no_stage():
    stages, meta = stages_of("ARG A\n")
    assert stages == [] and [a.args for a in meta] == [[KeyValuePairOptional("A")]]


# --- errors ------------------------------------------------------------------------

@pytest.mark.parametrize("text, message, lines", [
    ("FROM x\nRUN a\nFOO bar\n", "unknown instruction: FOO (did you mean FROM?)", (3, 3)),
    ("FROM x\nCOPPY a b\n", "unknown instruction: COPPY (did you mean COPY?)", (2, 2)),
    ("FROM x\nrum a\n", "unknown instruction: rum (did you mean run?)", (2, 2)),
    ("FROM x AS 1st\n",
     'invalid name for build stage: "1st", name can\'t start with a number or contain symbols', (1, 1)),
    ("FROM x AS My_Stage!\n",
     'invalid name for build stage: "My_Stage!", name can\'t start with a number or contain symbols', (1, 1)),
    ("FROM x y\n", "FROM requires either one or three arguments", (1, 1)),
    ("FROM --plaform=linux x\n", "unknown flag: --plaform (did you mean platform?)", (1, 1)),
    ("FROM x\nENV\n", "ENV requires at least one argument", (2, 2)),
    ("FROM x\nENV =1\n", "ENV names can not be blank", (2, 2)),
    ("FROM x\nENV --a=1 B=2\n", "unknown flag: --a", (2, 2)),
    ("FROM x\nLABEL\n", "LABEL requires at least one argument", (2, 2)),
    ('FROM x\nLABEL ="x"\n', "LABEL names can not be blank", (2, 2)),
    ("FROM x\nARG\n", "ARG requires at least one argument", (2, 2)),
    ("FROM x\nARG =v\n", "ARG names can not be blank", (2, 2)),
    ("FROM x\nMAINTAINER\n", "MAINTAINER requires exactly one argument", (2, 2)),
    ("FROM x\nCOPY a\n", "COPY requires at least two arguments, but only one was provided. "
                         "Destination could not be determined", (2, 2)),
    ("FROM x\nRUN ok\nADD \\\n  a\n", "ADD requires at least two arguments, but only one was "
                                     "provided. Destination could not be determined", (3, 4)),
    ("FROM x\nCOPY a <<EOF\nx\nEOF\n", "COPY cannot accept a heredoc as a destination", (2, 4)),
    ("FROM x\nCOPY --chwon=1 a b\n", "unknown flag: --chwon (did you mean chown?)", (2, 2)),
    ("FROM x\nCOPY --from=a --from=b a b\n", "duplicate flag specified: --from", (2, 2)),
    ("FROM x\nCOPY --from a b\n", "missing a value on flag: --from", (2, 2)),
    ("FROM x\nCOPY --link= a b\n", "missing a value on flag: --link", (2, 2)),
    ("FROM x\nCOPY --link=yes a b\n", "expecting boolean value for flag --link, not: yes", (2, 2)),
    ("FROM x\nONBUILD\n", "ONBUILD requires at least one argument", (2, 2)),
    ("FROM x\nONBUILD ONBUILD RUN x\n", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed", (2, 2)),
    ("FROM x\nONBUILD FROM y\n", "FROM isn't allowed as an ONBUILD trigger", (2, 2)),
    ("FROM x\nONBUILD maintainer y\n", "MAINTAINER isn't allowed as an ONBUILD trigger", (2, 2)),
    ("FROM x\nWORKDIR\n", "WORKDIR requires exactly one argument", (2, 2)),
    ("FROM x\nUSER\n", "USER requires exactly one argument", (2, 2)),
    ("FROM x\nEXPOSE\n", "EXPOSE requires at least one argument", (2, 2)),
    ("FROM x\nVOLUME\n", "VOLUME requires at least one argument", (2, 2)),
    ('FROM x\nVOLUME ["/a", " "]\n', "VOLUME specified can not be an empty string", (2, 2)),
    ("FROM x\nSTOPSIGNAL\n", "STOPSIGNAL requires exactly one argument", (2, 2)),
    ("FROM x\nSHELL []\n", "SHELL requires at least one argument", (2, 2)),
    ("FROM x\nSHELL /bin/bash -c\n", "SHELL requires the arguments to be in JSON form", (2, 2)),
    ("FROM x\nCMD --x=1 true\n", "unknown flag: --x", (2, 2)),
    ("FROM x\nHEALTHCHECK\n", "HEALTHCHECK requires at least one argument", (2, 2)),
    ("FROM x\nHEALTHCHECK NONE x\n", "HEALTHCHECK NONE takes no arguments", (2, 2)),
    ("FROM x\nHEALTHCHECK CMD\n", "Missing command after HEALTHCHECK CMD", (2, 2)),
    ("FROM x\nHEALTHCHECK WGET x\n", 'Unknown type "WGET" in HEALTHCHECK (try CMD)', (2, 2)),
    ("FROM x\nHEALTHCHECK --interval=500us CMD x\n", 'Interval "interval" cannot be less than 1ms', (2, 2)),
    ("FROM x\nHEALTHCHECK --timeout=-1s CMD x\n", 'Interval "timeout" cannot be less than 1ms', (2, 2)),
    ("FROM x\nHEALTHCHECK --start-period=10 CMD x\n", 'time: missing unit in duration "10"', (2, 2)),
    ("FROM x\nHEALTHCHECK --start-interval=1y CMD x\n", 'time: unknown unit "y" in duration "1y"', (2, 2)),
    ("FROM x\nHEALTHCHECK --interval=abc CMD x\n", 'time: invalid duration "abc"', (2, 2)),
    ("FROM x\nHEALTHCHECK --retries=-1 CMD x\n", "--retries cannot be negative (-1)", (2, 2)),
    ("FROM x\nHEALTHCHECK --retries=three CMD x\n",
     'strconv.ParseInt: parsing "three": invalid syntax', (2, 2)),
    ("FROM x\nHEALTHCHECK --retries=99999999999 CMD x\n",
     'strconv.ParseInt: parsing "99999999999": value out of range', (2, 2)),
    ("FROM x\nHEALTHCHECK --intervall=1s CMD x\n", "unknown flag: --intervall (did you mean interval?)", (2, 2)),
    ("FROM x\nRUN --mont=type=cache x\n", "unknown flag: --mont (did you mean mount?)", (2, 2)),
    ("FROM x\nRUN --network=bridge x\n", 'invalid network mode "bridge"', (2, 2)),
    ("FROM x\nRUN --security=privileged x\n", 'security "privileged" is not valid', (2, 2)),
    ("FROM x\nRUN --mount=from=$IMG,target=/x true\n",
     "'from' doesn't support variable expansion, define alias stage instead", (2, 2)),
    ("FROM x\nRUN --device=a,b true\n", "invalid field 'b' must be a key=value pair", (2, 2)),
])
def test_errors_name_the_line(text, message, lines):
    with pytest.raises(DockerfileError) as caught:
        stages_of(text)
    assert str(caught.value) == f"dockerfile parse error on line {lines[0]}: {message}"
    assert str(caught.value.inner) == message
    assert (caught.value.start_line, caught.value.end_line) == lines
    assert isinstance(caught.value, errdefs.InvalidParameter)


def test_unknown_instruction_error_names_the_instruction():
    with pytest.raises(DockerfileError) as caught:
        stages_of("FROM x\nfoo bar\n")
    assert isinstance(caught.value.inner, UnknownInstructionError)
    assert caught.value.inner.instruction == "foo"


@pytest.mark.parametrize("text, line", [("ENV A=1\nFROM x\n", 1), ("ARG A\nRUN x\n", 2)])
def test_instructions_before_the_first_from(text, line):
    with pytest.raises(InstructionError) as caught:
        stages_of(text)
    assert (str(caught.value), caught.value.start_line) == ("no build stage in current context", line)


def test_flags_docker_never_reads_are_ignored():
    # STOPSIGNAL, ARG and HEALTHCHECK NONE do not parse their flags in docker
    stopsignal, arg, health = commands("STOPSIGNAL --x=1 SIGINT\nARG --y A\nHEALTHCHECK --z NONE\n")
    assert (stopsignal.signal, arg.args[0].key, health.health.test) == ("SIGINT", "A", ["NONE"])


# --- substitution ------------------------------------------------------------------

ENV = {"X": "ex", "P": "80 443", "D": "/dst", "EMPTY": ""}


def expanded(line, env=ENV):
    return expand(command(line), Lexer(), env)


def test_expand_substitutes_where_dockerd_does():
    assert expanded('ENV $X=${X}1 B="$P"').env == [KeyValuePair("ex", "ex1"), KeyValuePair("B", "80 443")]
    assert expanded("LABEL a=$X").labels == [KeyValuePair("a", "ex")]
    assert expanded("ARG A=$X B").args == [KeyValuePairOptional("A", "ex"), KeyValuePairOptional("B", None)]
    assert expanded("WORKDIR $D/$X").path == "/dst/ex"
    assert expanded("USER $X").user == "ex"
    assert expanded("STOPSIGNAL SIG$X").signal == "SIGex"
    assert expanded("VOLUME $D /v").volumes == ["/dst", "/v"]
    assert expanded("EXPOSE 22 $P").ports == ["80", "443", "22"]  # sorted ("$P" first), then split


def test_expand_copy_and_add_but_not_copy_from():
    # (COPY's words are split at white space, quotes or not)
    copy = expanded('COPY --from=$X --chown=$X "$X" $D/')
    assert (copy.from_, copy.chown, copy.source_paths, copy.dest_path) == ("$X", "ex", ["ex"], "/dst/")
    add = expanded("ADD --checksum=$X $X $D")
    assert (add.checksum, add.source_paths, add.dest_path) == ("ex", ["ex"], "/dst")


def test_expand_leaves_commands_alone():
    for line in ("RUN echo $X", "CMD echo $X", "ENTRYPOINT $X", 'SHELL ["$X"]',
                 "HEALTHCHECK CMD $X", "ONBUILD RUN $X", "MAINTAINER $X"):
        assert expanded(line) == command(line)


def test_expand_reads_run_mounts():
    # only now are a mount's values checked; dockerd then refuses --mount anyway
    (mount,) = expanded("RUN --mount=type=cache,target=$D,sharing=locked true").mounts
    assert (mount.type, mount.target, mount.cache_sharing, mount.read_only) == ("cache", "/dst", "locked", False)
    with pytest.raises(InstructionError, match='^unsupported mount type "ex"$'):
        expanded("RUN --mount=type=$X,target=/c true")


def test_expand_from_with_meta_args():
    (stage,), meta = stages_of("ARG IMG\nFROM --platform=$ARCH ${IMG}:1\n")
    stage = expand(stage, Lexer(), {"IMG": "busybox", "ARCH": "linux/amd64"})
    assert (stage.base_name, stage.platform) == ("busybox:1", "linux/amd64")
    (stage,), _ = stages_of("FROM $NOTHING\n")
    with pytest.raises(InstructionError, match=r"^base name \(\$NOTHING\) should not be blank$"):
        expand(stage, Lexer(), {})


def test_expand_errors_are_instruction_errors_on_the_line():
    with pytest.raises(InstructionError) as caught:
        expand(command("WORKDIR ${X:-a"), Lexer(), ENV)
    assert str(caught.value) == "failed to process \"${X:-a\": syntax error: missing '}'"
    assert caught.value.start_line == 2


def test_expand_with_the_backtick_escape():
    result = parse("# escape=`\nFROM x\nWORKDIR C:\\$X`$X\n")
    (stage,), _ = parse_stages(result.ast)
    (workdir,) = stage.commands
    assert expand(workdir, Lexer(result.escape_token), ENV).path == "C:\\ex$X"


# --- a real Dockerfile -------------------------------------------------------------

def test_the_layers_fixture():
    result = parse(LAYERS.read_bytes())
    (stage,), meta = parse_stages(result.ast)
    assert (meta, stage.base_name, stage.name) == ([], "busybox:local", "")
    assert [type(c).__name__ for c in stage.commands] == [
        "LabelCommand", "EnvCommand", "RunCommand", "RunCommand", "RunCommand", "WorkdirCommand",
        "ExposeCommand", "VolumeCommand", "HealthCheckCommand", "StopSignalCommand",
        "EntrypointCommand", "CmdCommand"]
    label, env, run, *_ = stage.commands
    assert label.labels == [KeyValuePair("org.example.fixture", '"layers"')]
    assert env.env == [KeyValuePair("GREETING", "hello"), KeyValuePair("PATH", "/usr/local/bin:/usr/bin:/bin")]
    assert run.cmd_line[0].startswith('mkdir -p /data /etc/app && echo "$GREETING"')
    health = stage.commands[8].health
    assert health == HealthConfig(["CMD-SHELL", "test -f /data/a"], interval=5_000_000_000,
                                  timeout=2_000_000_000)
    entrypoint, cmd = stage.commands[-2:]
    assert (entrypoint.cmd_line, cmd.cmd_line) == (["/bin/sh", "-c"], ["cat /data/a"])
    assert isinstance(label, LabelCommand)
    assert [c.start_line for c in stage.commands] == list(range(2, 14))
