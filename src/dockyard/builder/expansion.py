"""Variable substitution in instructions, where dockerd's classic builder does it.

Just before an instruction runs, dockerd substitutes `$VAR` in some of its
fields, with the stage's environment (ENV values, then the ARGs in scope);
elsewhere `$` is left for the shell, or taken literally:

    ENV, LABEL         names and values (not the labels of `build --label`)
    ARG                names and defaults
    ADD                --chown, --chmod, --checksum, sources, destination
    COPY               --chown, --chmod, sources, destination (not --from)
    WORKDIR, USER, STOPSIGNAL, VOLUME    their values
    EXPOSE             each port, which may become several: with P="80 443",
                       `EXPOSE $P` exposes 80 and 443 (the only such case)
    RUN                only its --mount values (which the classic builder
                       then refuses anyway, but after reading them)
    FROM               the image name and --platform, with the meta args only

CMD, ENTRYPOINT, RUN's command, SHELL, HEALTHCHECK, ONBUILD and MAINTAINER
are never substituted, nor are heredocs in the classic builder.

`expand` returns a new instruction; the lexer is shell.Lexer, made with the
Dockerfile's escape character, and env is what it takes (a mapping, or a
list of "KEY=value").
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from dockyard.builder.commands import (
    AddCommand, ArgCommand, CopyCommand, EnvCommand, ExposeCommand, Instruction, KeyValuePair,
    KeyValuePairOptional, LabelCommand, RunCommand, Stage, StopSignalCommand, UserCommand,
    VolumeCommand, WorkdirCommand)
from dockyard.builder.instructions import InstructionError
from dockyard.builder.runflags import RunFlagError, parse_mount
from dockyard.builder.shell import Lexer, ShellError

T = TypeVar("T", bound=Instruction | Stage)


def expand(instruction: T, lexer: Lexer, env: Any) -> T:
    """The instruction with its variables substituted, as dispatched."""
    try:
        return _expand(instruction, lexer, env)
    except (ShellError, RunFlagError) as err:
        raise InstructionError(str(err), instruction.start_line, instruction.end_line) from None


def _expand(instruction: T, lexer: Lexer, env: Any) -> T:
    def word(text: str) -> str:
        return lexer.process_word(text, env)

    replace = dataclasses.replace
    match instruction:
        case EnvCommand():
            return replace(instruction, env=[_pair(p, word) for p in instruction.env])
        case LabelCommand(no_expand=False):
            return replace(instruction, labels=[_pair(p, word) for p in instruction.labels])
        case ArgCommand():
            return replace(instruction, args=[_optional_pair(p, word) for p in instruction.args])
        case AddCommand():
            # Flags first, then the paths: the order in which errors show.
            return replace(instruction, chown=word(instruction.chown), chmod=word(instruction.chmod),
                           checksum=word(instruction.checksum), **_paths(instruction, word))
        case CopyCommand():
            return replace(instruction, chown=word(instruction.chown), chmod=word(instruction.chmod),
                           **_paths(instruction, word))
        case WorkdirCommand():
            return replace(instruction, path=word(instruction.path))
        case UserCommand():
            return replace(instruction, user=word(instruction.user))
        case StopSignalCommand():
            return replace(instruction, signal=word(instruction.signal))
        case VolumeCommand():
            return replace(instruction, volumes=[word(v) for v in instruction.volumes])
        case ExposeCommand():
            return replace(instruction, ports=[
                port for text in instruction.ports for port in lexer.process_words(text, env)])
        case RunCommand():
            return replace(instruction, mounts=[parse_mount(s, word) for s in instruction.mount_specs])
        case Stage():
            return _expand_stage(instruction, word)
    return instruction


def _pair(pair: KeyValuePair, word) -> KeyValuePair:
    return KeyValuePair(word(pair.key), word(pair.value), pair.no_delim)


def _optional_pair(pair: KeyValuePairOptional, word) -> KeyValuePairOptional:
    key = word(pair.key)
    return KeyValuePairOptional(key, None if pair.value is None else word(pair.value))


def _paths(instruction: AddCommand | CopyCommand, word) -> dict:
    sources = [word(p) for p in instruction.source_paths]
    return {"source_paths": sources, "dest_path": word(instruction.dest_path)}


def _expand_stage(stage: Stage, word) -> Stage:
    """FROM's --platform and image, with the meta args as environment."""
    platform = stage.platform
    if platform:
        try:
            platform = word(platform)
        except ShellError as err:
            # dockerd names the platform it failed to make, which is then empty
            raise InstructionError(f"failed to process arguments for platform : {err}",
                                   stage.start_line, stage.end_line) from None
    base_name = word(stage.base_name)
    if not base_name:
        # An empty name would mean scratch to the image store; refused instead.
        raise InstructionError(f"base name ({stage.base_name}) should not be blank",
                               stage.start_line, stage.end_line)
    return dataclasses.replace(stage, platform=platform, base_name=base_name)
