"""What each instruction does to the build's state, before anything runs.

The classic builder keeps one `run_config` per stage: a container Config
(docker's JSON shape) that starts as the FROM image's and that every
instruction edits. After each instruction it commits an image whose Config is
the run_config and whose ContainerConfig is the run_config with `Cmd`
replaced by a record of the step:

    metadata steps    [shell..., "#(nop) ", "ENV A=1"]       (two words)
    WORKDIR, COPY     [shell..., "#(nop) WORKDIR /app"]       (one word)
    RUN               [shell..., "make"], after "|N", "K=v"... when build
                      args are in effect

History's `created_by` is that Cmd joined by spaces, and the cache finds a
step by comparing it (imagecache.py), so these texts are docker's to the
byte: `HEALTHCHECK &{["CMD" "true"] "30s" "5s" "0s" '\\x03'}` is Go's `%q`
of the health config.

`apply_metadata` performs the instructions that only change the run_config
and returns their commit text; RUN, WORKDIR, COPY and ADD need the daemon
(daemon/build.py), and use the helpers below.
"""

from __future__ import annotations

import copy
import posixpath
from dataclasses import dataclass, field
from typing import Any

from dockyard.builder.buildargs import BuildArgs
from dockyard.builder.commands import (
    ArgCommand, CmdCommand, EntrypointCommand, EnvCommand, ExposeCommand, HealthCheckCommand,
    Instruction, LabelCommand, MaintainerCommand, OnbuildCommand, ShellCommand,
    ShellDependantCmdLine, StopSignalCommand, UserCommand, VolumeCommand)
from dockyard.builder.gostrings import format_duration, quote_list, quote_rune
from dockyard.builder.instructions import InstructionError

DEFAULT_SHELL = ["/bin/sh", "-c"]
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NOP = "#(nop) "


@dataclass
class DispatchState:
    """One stage's progress: the image built so far and its run_config."""
    build_args: BuildArgs
    run_config: dict[str, Any] = field(default_factory=dict)
    image_id: str = ""          # "" while on `FROM scratch` with nothing committed
    stage_name: str = ""
    maintainer: str = ""
    cmd_set: bool = False       # a CMD of this stage: a later ENTRYPOINT keeps it

    def begin_stage(self, name: str, image_id: str, config: dict[str, Any] | None) -> None:
        self.stage_name = name
        self.image_id = image_id
        self.run_config = copy.deepcopy(config) if config else {}
        env = self.run_config.get("Env") or []
        if not any(e.split("=", 1)[0] == "PATH" for e in env):
            self.run_config["Env"] = [*env, "PATH=" + DEFAULT_PATH]
        self.run_config["OpenStdin"] = False
        self.run_config["StdinOnce"] = False

    def environment(self) -> list[str]:
        """What `$VAR` means in an instruction: ENV values, then the allowed
        build args that no ENV shadows."""
        env = list(self.run_config.get("Env") or [])
        return env + self.build_args.filter_allowed(env)


def shell_of(config: dict[str, Any]) -> list[str]:
    return list(config.get("Shell") or DEFAULT_SHELL)


def with_cmd_comment(config: dict[str, Any], comment: str) -> dict[str, Any]:
    """The run_config with the two-word step record as Cmd (metadata steps)."""
    return {**copy.deepcopy(config), "Cmd": shell_of(config) + [NOP, comment]}


def with_cmd_comment_string(config: dict[str, Any], comment: str) -> dict[str, Any]:
    """The one-word record, which WORKDIR, COPY and ADD have kept from older
    dockers (the cache of old images still matches)."""
    return {**copy.deepcopy(config), "Cmd": shell_of(config) + [NOP + comment]}


def resolve_cmd_line(command: ShellDependantCmdLine, config: dict[str, Any]) -> list[str] | None:
    """The argv of RUN, CMD or ENTRYPOINT: the shell form run by the SHELL."""
    line = command.cmd_line
    if command.prepend_shell and line is not None:
        return shell_of(config) + list(line)
    return None if line is None else list(line)


def prepend_env_on_cmd(build_args: BuildArgs, build_arg_vars: list[str],
                       cmd: list[str]) -> list[str]:
    """RUN's record when build args are in effect: "|N", the N args sorted,
    then the command; a RUN cannot start with "|", so no record is mistaken
    for another. Proxy args no ARG named are left out: they never change
    what a step makes."""
    kept = sorted(v for v in build_arg_vars
                  if build_args.is_referenced_or_not_builtin(v.split("=", 1)[0]))
    return [f"|{len(kept)}", *kept, *cmd]


def normalize_workdir(current: str, requested: str) -> str:
    """WORKDIR: relative paths are joined to the current one (and cleaned);
    an absolute one is taken as written."""
    if not requested:
        raise InstructionError("cannot normalize nothing")
    if not requested.startswith("/"):
        return posixpath.normpath(posixpath.join("/", current or "/", requested))
    return requested


def normalize_dest(workdir: str, requested: str) -> str:
    """A COPY/ADD destination, relative to the WORKDIR; a trailing "/" (a
    directory is meant) is kept."""
    if requested.startswith("/"):
        return requested
    dest = posixpath.normpath(posixpath.join("/", workdir or "/", requested))
    return dest + "/" if requested.endswith("/") and dest != "/" else dest


def _go_list(items: list[str]) -> str:
    """`%v` of a []string."""
    return "[" + " ".join(items) + "]"


def health_text(health: dict[str, Any]) -> str:
    """`%q` of a *HealthConfig, as dockerd 20.10 records the step."""
    return "&{%s %s %s %s %s}" % (
        quote_list(health.get("Test") or []),
        '"' + format_duration(health.get("Interval", 0)) + '"',
        '"' + format_duration(health.get("Timeout", 0)) + '"',
        '"' + format_duration(health.get("StartPeriod", 0)) + '"',
        quote_rune(health.get("Retries", 0)))


def expose_ports(specs: list[str]) -> list[str]:
    """nat.ParsePortSpecs (20.10's messages): each EXPOSE word as ExposedPorts keys ("80/tcp");
    a range names each port in it; a host part ("8080:80") is dropped."""
    out: list[str] = []
    for spec in specs:
        container = spec.rsplit(":", 1)[-1]
        port, _, proto = container.partition("/")
        proto = (proto.split("/")[0] or "tcp").lower()  # ("80/tcp/udp" is 80/tcp to docker)
        if not port:
            raise InstructionError(f"no port specified: {spec}<empty>")
        if proto not in ("tcp", "udp", "sctp"):
            raise InstructionError(f"invalid proto: {proto}")
        start, _, end = port.partition("-")
        try:
            first, last = int(start), int(end or start)
            if not (0 <= first <= 65535 and 0 <= last <= 65535) or last < first:
                raise ValueError
        except ValueError:
            raise InstructionError(f"Invalid containerPort: {port}") from None
        out.extend(f"{p}/{proto}" for p in range(first, last + 1))
    return out


def apply_metadata(state: DispatchState, instruction: Instruction,
                   notes: list[str] | None = None) -> str:
    """Apply an instruction that only changes the run_config (instruction
    already substituted); the commit text. `notes` collects the lines docker
    prints on the way ("Note: overriding previous HEALTHCHECK")."""
    config = state.run_config
    match instruction:
        case EnvCommand():
            env = list(config.get("Env") or [])
            for pair in instruction.env:
                keys = [e.split("=", 1)[0] for e in env]
                if pair.key in keys:
                    env[keys.index(pair.key)] = str(pair)
                else:
                    env.append(str(pair))
            config["Env"] = env
            return "ENV" + "".join(" " + str(p) for p in instruction.env)
        case MaintainerCommand():
            state.maintainer = instruction.maintainer
            return "MAINTAINER " + instruction.maintainer
        case LabelCommand():
            labels = dict(config.get("Labels") or {})
            for pair in instruction.labels:
                labels[pair.key] = pair.value
            config["Labels"] = labels
            return "LABEL" + "".join(" " + str(p) for p in instruction.labels)
        case OnbuildCommand():
            config["OnBuild"] = [*(config.get("OnBuild") or []), instruction.expression]
            return "ONBUILD " + instruction.expression
        case CmdCommand():
            cmd = resolve_cmd_line(instruction, config)
            config["Cmd"] = cmd
            config["ArgsEscaped"] = False
            if instruction.cmd_line:
                state.cmd_set = True
            return "CMD " + quote_list(cmd or [])
        case HealthCheckCommand():
            old = (config.get("Healthcheck") or {}).get("Test") or []
            if old and old[0] != "NONE" and notes is not None:
                notes.append(f"Note: overriding previous HEALTHCHECK: {_go_list(old)}\n")
            config["Healthcheck"] = instruction.health.as_config()
            return "HEALTHCHECK " + health_text(config["Healthcheck"])
        case EntrypointCommand():
            config["Entrypoint"] = resolve_cmd_line(instruction, config)
            config["ArgsEscaped"] = False
            if not state.cmd_set:
                config["Cmd"] = None
            return "ENTRYPOINT " + quote_list(config["Entrypoint"] or [])
        case ExposeCommand():
            exposed = dict(config.get("ExposedPorts") or {})
            for port in expose_ports(instruction.ports):
                exposed[port] = {}
            config["ExposedPorts"] = exposed
            return "EXPOSE " + " ".join(instruction.ports)
        case UserCommand():
            config["User"] = instruction.user
            return "USER " + instruction.user
        case VolumeCommand():
            volumes = dict(config.get("Volumes") or {})
            for path in instruction.volumes:
                if not path:
                    raise InstructionError("VOLUME specified can not be an empty string")
                volumes[path] = {}
            config["Volumes"] = volumes
            return "VOLUME " + _go_list(instruction.volumes)
        case StopSignalCommand():
            config["StopSignal"] = instruction.signal
            return "STOPSIGNAL " + instruction.signal
        case ArgCommand():
            words = []
            for arg in instruction.args:
                words.append(arg.key if arg.value is None else f"{arg.key}={arg.value}")
                state.build_args.add_arg(arg.key, arg.value)
            return "ARG " + " ".join(words)
        case ShellCommand():
            config["Shell"] = list(instruction.shell)
            return "SHELL " + _go_list(instruction.shell)
    raise InstructionError(f"unsupported command type: {type(instruction).__name__}")
