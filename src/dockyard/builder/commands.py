"""What each Dockerfile instruction holds, once parsed (buildkit's
instructions/commands.go): one dataclass per instruction, and Stage.

Values are as written in the Dockerfile: variables are substituted only when
an instruction is dispatched (expansion.py), and flags are kept even where
dockerd's classic builder ignores or refuses them (COPY --link, RUN --mount).
Docker's Go names are kept where they are clear: `cmd_line`, `prepend_shell`,
`source_paths`; `from_` is COPY's --from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dockyard.builder.runflags import Device, Mount


@dataclass(kw_only=True)
class Instruction:
    name: str                # the instruction word as written: "RUN", "run"
    code: str = ""           # its whole line, trimmed; what a build prints for the step
    start_line: int = 0
    end_line: int = 0
    comments: list[str] = field(default_factory=list)   # the comment lines just above

    def __str__(self) -> str:
        return self.code


@dataclass
class KeyValuePair:
    key: str
    value: str
    no_delim: bool = False  # written `ENV key value`, without "="

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


@dataclass
class KeyValuePairOptional:
    key: str
    value: str | None = None  # None: `ARG name` gave no default

    def __str__(self) -> str:
        return f"{self.key}={self.value or ''}"


@dataclass(kw_only=True)
class EnvCommand(Instruction):
    env: list[KeyValuePair]


@dataclass(kw_only=True)
class MaintainerCommand(Instruction):
    maintainer: str


@dataclass(kw_only=True)
class LabelCommand(Instruction):
    labels: list[KeyValuePair]
    no_expand: bool = False  # the labels of `docker build --label`, taken literally


@dataclass
class SourceContent:
    """A heredoc given as a COPY or ADD source: a file made from text."""
    path: str     # the heredoc's name
    data: str
    expand: bool  # whether variables in data are to be substituted


@dataclass(kw_only=True)
class SourcesAndDest(Instruction):
    """COPY and ADD. dockerd's classic builder copies only source_paths: it
    parses heredoc sources but does nothing with them."""
    dest_path: str
    source_paths: list[str]
    source_contents: list[SourceContent] = field(default_factory=list)


@dataclass(kw_only=True)
class AddCommand(SourcesAndDest):
    chown: str = ""
    chmod: str = ""
    link: bool = False
    exclude_patterns: list[str] = field(default_factory=list)
    keep_git_dir: bool | None = None  # None when the flag is not given
    checksum: str = ""
    unpack: bool | None = None


@dataclass(kw_only=True)
class CopyCommand(SourcesAndDest):
    from_: str = ""  # --from: a stage's name or index, or an image
    chown: str = ""
    chmod: str = ""
    link: bool = False
    exclude_patterns: list[str] = field(default_factory=list)
    parents: bool = False


@dataclass(kw_only=True)
class OnbuildCommand(Instruction):
    expression: str  # the trigger, as the image's OnBuild keeps it: "RUN make"


@dataclass(kw_only=True)
class WorkdirCommand(Instruction):
    path: str


@dataclass
class ShellInlineFile:
    """A heredoc given to RUN."""
    name: str
    data: str
    chomp: bool


@dataclass(kw_only=True)
class ShellDependantCmdLine(Instruction):
    """RUN, CMD and ENTRYPOINT: the exec form (`["a", "b"]`, prepend_shell
    False) or the shell form (one string, to run with the SHELL). dockerd's
    classic builder runs cmd_line only; it ignores RUN's heredoc files."""
    cmd_line: list[str] | None
    files: list[ShellInlineFile] = field(default_factory=list)
    prepend_shell: bool = True


@dataclass(kw_only=True)
class RunCommand(ShellDependantCmdLine):
    flags_used: list[str] = field(default_factory=list)   # in the order given
    mount_specs: list[str] = field(default_factory=list)  # each --mount as written
    mounts: list[Mount] = field(default_factory=list)     # read at dispatch, substituted
    network: str = "default"
    security: str = "sandbox"
    devices: list[Device] = field(default_factory=list)


@dataclass(kw_only=True)
class CmdCommand(ShellDependantCmdLine):
    pass


@dataclass(kw_only=True)
class EntrypointCommand(ShellDependantCmdLine):
    pass


@dataclass
class HealthConfig:
    """An image's Healthcheck; durations in nanoseconds, 0 for "inherit"."""
    test: list[str]
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0

    def as_config(self) -> dict:
        """The image config's JSON, where zero fields are left out."""
        config = {"Test": self.test, "Interval": self.interval, "Timeout": self.timeout,
                  "StartPeriod": self.start_period, "StartInterval": self.start_interval,
                  "Retries": self.retries}
        return {k: v for k, v in config.items() if v}


@dataclass(kw_only=True)
class HealthCheckCommand(Instruction):
    health: HealthConfig


@dataclass(kw_only=True)
class ExposeCommand(Instruction):
    ports: list[str]


@dataclass(kw_only=True)
class UserCommand(Instruction):
    user: str


@dataclass(kw_only=True)
class VolumeCommand(Instruction):
    volumes: list[str]


@dataclass(kw_only=True)
class StopSignalCommand(Instruction):
    signal: str


@dataclass(kw_only=True)
class ArgCommand(Instruction):
    args: list[KeyValuePairOptional]


@dataclass(kw_only=True)
class ShellCommand(Instruction):
    shell: list[str]


@dataclass(kw_only=True)
class Stage:
    """A FROM and the instructions after it, up to the next FROM."""
    name: str                # lower case; "" when the stage has no AS name
    base_name: str           # the image or earlier stage it starts from, unsubstituted
    platform: str = ""       # --platform, unsubstituted
    orig_cmd: str = "FROM"   # the FROM word as written
    code: str = ""           # the FROM line, trimmed
    start_line: int = 0
    end_line: int = 0
    comments: list[str] = field(default_factory=list)
    commands: list[Instruction] = field(default_factory=list)


def new_label_command(key: str, value: str) -> LabelCommand:
    """A `docker build --label key=value`, which dockerd adds to the last stage."""
    return LabelCommand(name="label", code=f"LABEL {key}={value}",
                        labels=[KeyValuePair(key, value)], no_expand=True)
