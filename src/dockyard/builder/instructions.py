"""From the parser's tree to typed instructions (buildkit's
frontend/dockerfile/instructions, which dockerd's classic builder uses).

    result = parser.parse(dockerfile)
    stages, meta_args = parse_stages(result.ast)

Each FROM begins a `Stage`; the instructions after it are its `commands`,
one dataclass per instruction (commands.py: RunCommand, CopyCommand, ...).
ARGs before the first FROM are the meta args, which only FROM lines use.

Here each instruction's arguments and flags are checked, with docker's
messages; nothing is substituted yet. Variables are substituted when an
instruction is about to run, in the instructions and fields where docker
substitutes them: see expansion.py.

An error is an InstructionError that carries the instruction's lines.
`parse_stages` words it as dockerd does:
"dockerfile parse error on line 3: unknown instruction: FOO".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from dockyard import errdefs
from dockyard.builder.bflag import BFlags, FlagError, with_suggestion
from dockyard.builder.commands import (
    AddCommand, ArgCommand, CmdCommand, CopyCommand, EntrypointCommand, EnvCommand, ExposeCommand,
    HealthCheckCommand, HealthConfig, Instruction, KeyValuePair, KeyValuePairOptional,
    LabelCommand, MaintainerCommand, OnbuildCommand, RunCommand, ShellCommand, ShellInlineFile,
    SourceContent, Stage, StopSignalCommand, UserCommand, VolumeCommand, WorkdirCommand)
from dockyard.builder.gostrings import lower, quote, trim_space, upper
from dockyard.builder.heredoc import chomp_heredoc_content, must_parse_heredoc
from dockyard.builder.node import Node
from dockyard.builder.runflags import (
    RunFlagError, check_network, check_security, parse_device, parse_mount)
from dockyard.timefilter import DurationError, parse_duration

INSTRUCTION_NAMES = ("add", "arg", "cmd", "copy", "entrypoint", "env", "expose", "from",
                     "healthcheck", "label", "maintainer", "onbuild", "run", "shell",
                     "stopsignal", "user", "volume", "workdir")

PARSE_ERROR = "dockerfile parse error on line {line}: {message}"
MINIMUM_DURATION = 1_000_000  # ns: a healthcheck interval below 1ms is refused
_STAGE_NAME = re.compile(r"[a-z][a-z0-9_.-]*")
_ONBUILD_PREFIX = re.compile(r"^[\t\n\f\r ]*ONBUILD[\t\n\f\r ]*", re.IGNORECASE)


class _Invalid(ValueError):
    """Raised by the parsers below; parse_instruction adds the lines."""


class InstructionError(errdefs.InvalidParameter):
    """An instruction docker refuses. The message is docker's; start_line and
    end_line are the instruction's."""

    def __init__(self, message: str, start_line: int = 0, end_line: int = 0):
        super().__init__(message)
        self.start_line = start_line
        self.end_line = max(end_line, start_line)


class UnknownInstructionError(InstructionError):
    def __init__(self, instruction: str, message: str, start_line: int, end_line: int):
        super().__init__(message, start_line, end_line)
        self.instruction = instruction


class DockerfileError(InstructionError):
    """An instruction's error as `parse_stages` reports it, with the line in
    the message; `inner` is the instruction's own error."""

    def __init__(self, inner: InstructionError):
        super().__init__(PARSE_ERROR.format(line=inner.start_line, message=inner),
                         inner.start_line, inner.end_line)
        self.inner = inner


# --- from the tree to instructions ---------------------------------------------------

@dataclass
class _Request:
    """One instruction node, unpacked (buildkit's parseRequest)."""
    node: Node
    command: str
    args: list[str]
    flags: BFlags

    @property
    def base(self) -> dict:
        """The fields every instruction has."""
        return {"name": self.command, "code": trim_space(self.node.original),
                "start_line": self.node.start_line, "end_line": self.node.end_line,
                "comments": list(self.node.prev_comment)}


def node_args(node: Node) -> list[str]:
    """An instruction's arguments, ONBUILD's inner instruction spelled out."""
    args: list[str] = []
    arg = node.next
    while arg is not None:
        if not arg.children:
            args.append(arg.value)
        elif len(arg.children) == 1:
            args.append(arg.children[0].value)
            args.extend(node_args(arg.children[0]))
        arg = arg.next
    return args


def parse_instruction(node: Node) -> Instruction | Stage:
    """The instruction (or, for FROM, the stage) a node of the tree stands for."""
    request = _Request(node, node.value, node_args(node), BFlags(node.flags))
    parse = _PARSERS.get(lower(node.value))
    if parse is None:
        message = with_suggestion(f"unknown instruction: {node.value}", node.value,
                                  [n.upper() for n in INSTRUCTION_NAMES], case_sensitive=False)
        raise UnknownInstructionError(node.value, message, node.start_line, node.end_line)
    try:
        return parse(request)
    except (_Invalid, FlagError, RunFlagError) as err:
        raise InstructionError(str(err), node.start_line, node.end_line) from None


def parse_command(node: Node) -> Instruction:
    """An instruction that is not FROM: an ONBUILD trigger, or a `--change`."""
    instruction = parse_instruction(node)
    if isinstance(instruction, Stage):
        # dockerd names the Go type it got
        raise InstructionError("*instructions.Stage is not a command type",
                               node.start_line, node.end_line)
    return instruction


def parse_stages(ast: Node, check_names: bool = True) -> tuple[list[Stage], list[ArgCommand]]:
    """The stages of a parsed Dockerfile, and the ARGs before its first FROM.

    An instruction docker refuses raises DockerfileError, whose message
    names the line; an instruction before any FROM (other than ARG), or a
    stage name used twice, raises a plain InstructionError, as in dockerd.
    """
    stages: list[Stage] = []
    meta_args: list[ArgCommand] = []
    for node in ast.children:
        try:
            instruction = parse_instruction(node)
        except InstructionError as err:
            raise DockerfileError(err) from None
        if isinstance(instruction, Stage):
            stages.append(instruction)
        elif not stages and isinstance(instruction, ArgCommand):
            meta_args.append(instruction)
        elif not stages:
            raise InstructionError("no build stage in current context",
                                   node.start_line, node.end_line)
        else:
            stages[-1].commands.append(instruction)
    if check_names:  # (a build checks each name when it gets to its stage, as dockerd)
        _check_stage_names(stages)
    return stages, meta_args


def _check_stage_names(stages: list[Stage]) -> None:
    """Refuse a stage name used twice. dockerd finds out only when it is about
    to build the second stage, after the ones before it; the message is the
    same, but here no build starts."""
    seen: set[str] = set()
    for stage in stages:
        if stage.name in seen:
            raise InstructionError(f"{stage.name} stage name already used",
                                   stage.start_line, stage.end_line)
        if stage.name:
            seen.add(stage.name)


def stage_index(stages: list[Stage], name: str) -> int | None:
    """The index of the stage of that name (any case), as `--target` finds it."""
    lowered = lower(name)
    return next((i for i, s in enumerate(stages) if s.name and s.name == lowered), None)


def find_stage(stages: list[Stage], name_or_index: str, current: int) -> int | None:
    """The stage `COPY --from` names, while stage `current` is built: an
    earlier stage by name, or by index; None for an image."""
    index = stage_index(stages[:current], name_or_index)
    if index is not None:
        return index
    if not re.fullmatch(r"[+-]?[0-9]+", name_or_index) or not -2**63 <= int(name_or_index) < 2**63:
        return None  # strconv.ParseInt fails: the name is taken for an image
    index = int(name_or_index)
    if index == current:
        raise InstructionError("refers to current build stage")
    if index < 0 or index > current:
        raise InstructionError("index out of bounds")
    return index


def check_classic_builder_support(instruction: Instruction) -> None:
    """Refuse what only BuildKit does, as dockerd's classic builder does when
    it dispatches the instruction (after substitution: `--chmod=$UNSET` is
    accepted)."""
    flag = ""
    if isinstance(instruction, RunCommand) and instruction.flags_used:
        flag = instruction.flags_used[0]
    elif isinstance(instruction, (AddCommand, CopyCommand)):
        # Flags whose effect this builder would otherwise silently skip (--link
        # only changes how BuildKit reuses layers: without it the result is the same)
        used = [("chmod", bool(instruction.chmod)),
                ("exclude", bool(instruction.exclude_patterns)),
                ("parents", isinstance(instruction, CopyCommand) and instruction.parents),
                ("checksum", isinstance(instruction, AddCommand) and bool(instruction.checksum)),
                ("keep-git-dir", isinstance(instruction, AddCommand)
                 and instruction.keep_git_dir is not None),
                ("unpack", isinstance(instruction, AddCommand) and instruction.unpack is not None)]
        flag = next((name for name, is_used in used if is_used), "")
    what = f"the --{flag} option" if flag else ""
    if not flag and (isinstance(instruction, RunCommand) and instruction.files or
                     isinstance(instruction, (AddCommand, CopyCommand))
                     and instruction.source_contents):
        what = "a heredoc"  # (its lines would be dropped, not run or copied)
    if what:
        raise InstructionError(
            f"{what} requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ "
            "to learn how to build images with BuildKit enabled",
            instruction.start_line, instruction.end_line)


# --- one parser per instruction, in docker's order of checks -------------------------

def _at_least_one_argument(command: str) -> _Invalid:
    return _Invalid(f"{command} requires at least one argument")


def _exactly_one_argument(command: str) -> _Invalid:
    return _Invalid(f"{command} requires exactly one argument")


def _key_value_pairs(args: list[str], command: str) -> list[KeyValuePair]:
    """The (name, value, separator) triples the parser made of ENV and LABEL."""
    if not args:
        raise _at_least_one_argument(command)
    if len(args) % 3:
        raise _Invalid(f"Bad input to {command}, too many arguments")
    pairs = []
    for i in range(0, len(args), 3):
        if not args[i]:
            raise _Invalid(f"{command} names can not be blank")
        pairs.append(KeyValuePair(args[i], args[i + 1], no_delim=args[i + 2] == ""))
    return pairs


def _parse_env(req: _Request) -> EnvCommand:
    req.flags.parse()
    return EnvCommand(**req.base, env=_key_value_pairs(req.args, "ENV"))


def _parse_maintainer(req: _Request) -> MaintainerCommand:
    if len(req.args) != 1:
        raise _exactly_one_argument("MAINTAINER")
    req.flags.parse()
    return MaintainerCommand(**req.base, maintainer=req.args[0])


def _parse_label(req: _Request) -> LabelCommand:
    req.flags.parse()
    return LabelCommand(**req.base, labels=_key_value_pairs(req.args, "LABEL"))


def _sources_and_dest(req: _Request, command: str) -> dict:
    """The sources and destination of COPY and ADD; a source that opens a
    heredoc is the heredoc's content."""
    *sources, dest = req.args
    if must_parse_heredoc(dest):
        raise _Invalid(f"{command} cannot accept a heredoc as a destination")
    contents = {heredoc.name: heredoc.content for heredoc in req.node.heredocs}
    paths, inline = [], []
    for source in sources:
        heredoc = must_parse_heredoc(source)
        if heredoc is None:
            paths.append(source)
            continue
        data = contents.get(heredoc.name, "")
        if heredoc.chomp:
            data = chomp_heredoc_content(data)
        inline.append(SourceContent(path=heredoc.name, data=data, expand=heredoc.expand))
    return {"dest_path": dest, "source_paths": paths, "source_contents": inline}


def _no_destination(command: str) -> _Invalid:
    return _Invalid(f"{command} requires at least two arguments, but only one was provided. "
                    "Destination could not be determined")


def _parse_add(req: _Request) -> AddCommand:
    if len(req.args) < 2:
        raise _no_destination("ADD")
    flags = req.flags
    chown, chmod, link = flags.add_string("chown"), flags.add_string("chmod"), flags.add_bool("link")
    keep_git_dir, checksum = flags.add_bool("keep-git-dir"), flags.add_string("checksum")
    unpack, exclude = flags.add_bool("unpack"), flags.add_strings("exclude")
    flags.parse()
    return AddCommand(**req.base, **_sources_and_dest(req, "ADD"), chown=chown.value,
                      chmod=chmod.value, link=link.is_true, exclude_patterns=exclude.values,
                      keep_git_dir=keep_git_dir.is_true if keep_git_dir.used else None,
                      checksum=checksum.value, unpack=unpack.is_true if unpack.used else None)


def _parse_copy(req: _Request) -> CopyCommand:
    if len(req.args) < 2:
        raise _no_destination("COPY")
    flags = req.flags
    chown, from_, chmod = flags.add_string("chown"), flags.add_string("from"), flags.add_string("chmod")
    link, exclude, parents = flags.add_bool("link"), flags.add_strings("exclude"), flags.add_bool("parents")
    flags.parse()
    return CopyCommand(**req.base, **_sources_and_dest(req, "COPY"), from_=from_.value,
                       chown=chown.value, chmod=chmod.value, link=link.is_true,
                       exclude_patterns=exclude.values, parents=parents.is_true)


def _parse_from(req: _Request) -> Stage:
    args = req.args
    name = ""
    if len(args) == 3 and lower(args[1]) == "as":
        name = lower(args[2])
        if not _STAGE_NAME.fullmatch(name):
            raise _Invalid(f"invalid name for build stage: {quote(args[2])}, "
                           "name can't start with a number or contain symbols")
    elif len(args) != 1:
        raise _Invalid("FROM requires either one or three arguments")
    platform = req.flags.add_string("platform")
    req.flags.parse()
    base = req.base
    return Stage(name=name, base_name=args[0], platform=platform.value, orig_cmd=req.command,
                 code=base["code"], start_line=base["start_line"], end_line=base["end_line"],
                 comments=base["comments"])


def _parse_onbuild(req: _Request) -> OnbuildCommand:
    if not req.args:
        raise _at_least_one_argument("ONBUILD")
    req.flags.parse()
    trigger = upper(trim_space(req.args[0]))
    if trigger == "ONBUILD":
        raise _Invalid("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger in ("MAINTAINER", "FROM"):
        raise _Invalid(f"{trigger} isn't allowed as an ONBUILD trigger")
    expression = _ONBUILD_PREFIX.sub("", req.node.original, count=1)
    # The trigger is kept as text and parsed again in the child image's
    # build, so a heredoc goes with it, delimiter and all.
    for heredoc in req.node.heredocs:
        expression += "\n" + heredoc.content + heredoc.name
    return OnbuildCommand(**req.base, expression=expression)


def _parse_workdir(req: _Request) -> WorkdirCommand:
    if len(req.args) != 1:
        raise _exactly_one_argument("WORKDIR")
    req.flags.parse()
    return WorkdirCommand(**req.base, path=req.args[0])


def _json_args(args: list[str], is_json: bool) -> list[str]:
    """The exec form's arguments, or the shell form's one string."""
    if is_json or not args:
        return list(args)
    return [" ".join(args)]


def _command_line(req: _Request, empty_as_none: bool = False) -> dict:
    cmd_line = _json_args(req.args, req.node.is_json)
    files = [ShellInlineFile(name=h.name, data=h.content, chomp=h.chomp) for h in req.node.heredocs]
    return {"cmd_line": None if empty_as_none and not cmd_line else cmd_line,
            "files": files, "prepend_shell": not req.node.is_json}


def _parse_run(req: _Request) -> RunCommand:
    flags = req.flags
    # Declared in the order buildkit's hooks declare them: device, mount, network, security.
    device, mount = flags.add_strings("device"), flags.add_strings("mount")
    network, security = flags.add_string("network", "default"), flags.add_string("security", "sandbox")
    flags.parse()
    devices = [parse_device(value) for value in device.values]
    for spec in mount.values:
        parse_mount(spec)  # what can be checked before substitution
    return RunCommand(**req.base, **_command_line(req), flags_used=list(flags.used),
                      mount_specs=list(mount.values), devices=devices,
                      network=check_network(network.value), security=check_security(security.value))


def _parse_cmd(req: _Request) -> CmdCommand:
    req.flags.parse()
    return CmdCommand(**req.base, **_command_line(req))


def _parse_entrypoint(req: _Request) -> EntrypointCommand:
    req.flags.parse()
    return EntrypointCommand(**req.base, **_command_line(req, empty_as_none=True))


def _parse_healthcheck(req: _Request) -> HealthCheckCommand:
    if not req.args:
        raise _at_least_one_argument("HEALTHCHECK")
    kind, args = upper(req.args[0]), req.args[1:]
    if kind == "NONE":
        if args:  # NONE reads no flags: `HEALTHCHECK --retries=1 NONE` is fine
            raise _Invalid("HEALTHCHECK NONE takes no arguments")
        return HealthCheckCommand(**req.base, health=HealthConfig(test=["NONE"]))
    flags = req.flags
    durations = [flags.add_string(name) for name in
                 ("interval", "timeout", "start-period", "start-interval")]
    retries = flags.add_string("retries")
    flags.parse()
    if kind != "CMD":
        raise _Invalid(f"Unknown type {quote(kind)} in HEALTHCHECK (try CMD)")
    command = _json_args(args, req.node.is_json)
    if not command:
        raise _Invalid("Missing command after HEALTHCHECK CMD")
    test = ["CMD" if req.node.is_json else "CMD-SHELL", *command]
    interval, timeout, start_period, start_interval = (_interval(f.name, f.value) for f in durations)
    return HealthCheckCommand(**req.base, health=HealthConfig(
        test=test, interval=interval, timeout=timeout, start_period=start_period,
        start_interval=start_interval, retries=_retries(retries.value)))


def _interval(name: str, value: str) -> int:
    """A healthcheck duration flag, in nanoseconds; 0 when not given."""
    if not value:
        return 0
    try:
        duration = parse_duration(value)
    except DurationError as err:
        raise _Invalid(str(err)) from None
    if duration != 0 and duration < MINIMUM_DURATION:
        raise _Invalid(f"Interval {quote(name)} cannot be less than 1ms")
    return duration


def _retries(value: str) -> int:
    if not value:
        return 0
    # strconv.ParseInt(value, 10, 32)
    if not re.fullmatch(r"[+-]?[0-9]+", value):
        raise _Invalid(f"strconv.ParseInt: parsing {quote(value)}: invalid syntax")
    retries = int(value)
    if not -2**31 <= retries < 2**31:
        raise _Invalid(f"strconv.ParseInt: parsing {quote(value)}: value out of range")
    if retries < 0:
        raise _Invalid(f"--retries cannot be negative ({retries})")
    return retries


def _parse_expose(req: _Request) -> ExposeCommand:
    if not req.args:
        raise _at_least_one_argument("EXPOSE")
    req.flags.parse()
    return ExposeCommand(**req.base, ports=sorted(req.args))


def _parse_user(req: _Request) -> UserCommand:
    if len(req.args) != 1:
        raise _exactly_one_argument("USER")
    req.flags.parse()
    return UserCommand(**req.base, user=req.args[0])


def _parse_volume(req: _Request) -> VolumeCommand:
    if not req.args:
        raise _at_least_one_argument("VOLUME")
    req.flags.parse()
    volumes = [trim_space(v) for v in req.args]
    if "" in volumes:
        raise _Invalid("VOLUME specified can not be an empty string")
    return VolumeCommand(**req.base, volumes=volumes)


def _parse_stopsignal(req: _Request) -> StopSignalCommand:
    if len(req.args) != 1:  # and docker reads no flags: they are ignored
        raise _exactly_one_argument("STOPSIGNAL")
    return StopSignalCommand(**req.base, signal=req.args[0])


def _parse_arg(req: _Request) -> ArgCommand:
    if not req.args:  # docker reads no flags here either
        raise _at_least_one_argument("ARG")
    pairs = []
    for arg in req.args:
        # Unlike ENV, the parser leaves `name=value` whole: a name alone is allowed.
        key, has_value, value = arg.partition("=")
        if has_value and not key:
            raise _Invalid("ARG names can not be blank")
        pairs.append(KeyValuePairOptional(key, value if has_value else None))
    return ArgCommand(**req.base, args=pairs)


def _parse_shell(req: _Request) -> ShellCommand:
    req.flags.parse()
    shell = _json_args(req.args, req.node.is_json)
    if not shell:
        raise _at_least_one_argument("SHELL")
    if not req.node.is_json:
        raise _Invalid("SHELL requires the arguments to be in JSON form")
    return ShellCommand(**req.base, shell=shell)


_PARSERS: dict[str, Callable[[_Request], Instruction | Stage]] = {
    "add": _parse_add,
    "arg": _parse_arg,
    "cmd": _parse_cmd,
    "copy": _parse_copy,
    "entrypoint": _parse_entrypoint,
    "env": _parse_env,
    "expose": _parse_expose,
    "from": _parse_from,
    "healthcheck": _parse_healthcheck,
    "label": _parse_label,
    "maintainer": _parse_maintainer,
    "onbuild": _parse_onbuild,
    "run": _parse_run,
    "shell": _parse_shell,
    "stopsignal": _parse_stopsignal,
    "user": _parse_user,
    "volume": _parse_volume,
    "workdir": _parse_workdir,
}
