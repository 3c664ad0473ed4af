"""Build arguments: what `--build-arg` gives, and which of it a stage may see.

A `--build-arg NAME=value` reaches a step only once the Dockerfile has
declared `ARG NAME` in that stage (each FROM starts with none allowed again);
an ARG before the first FROM is a meta arg, seen by FROM lines, and by a
stage that declares it again without a value. The proxy variables
(HTTP_PROXY, NO_PROXY, ... in both cases) are allowed without an ARG: they
reach RUN's environment, but no commit records them, so setting a proxy
never spoils the cache.

A value of None is an ARG without a default, or a `--build-arg NAME` the
client sent as null: the name is known, the variable unset.
"""

from __future__ import annotations

BUILTIN_ARGS = frozenset((
    "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
    "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"))


class BuildArgs:
    def __init__(self, from_options: dict[str, str | None]):
        self.from_options = from_options
        self.allowed: dict[str, str | None] = {}
        self.meta: dict[str, str | None] = {}
        self.referenced: set[str] = set()

    def for_stage(self) -> BuildArgs:
        """A copy for a new stage: the meta args kept, no ARG declared yet."""
        out = BuildArgs(self.from_options)
        out.meta = dict(self.meta)
        out.referenced = set(self.referenced)
        return out

    def merge_referenced(self, other: BuildArgs) -> None:
        self.referenced |= other.referenced

    def add_arg(self, key: str, value: str | None) -> None:
        self.allowed[key] = value
        self.referenced.add(key)

    def add_meta_arg(self, key: str, value: str | None) -> None:
        self.meta[key] = value

    def unused(self) -> list[str]:
        """The `--build-arg` names no ARG declared, sorted, for the warning."""
        return sorted(k for k in self.from_options
                      if k not in BUILTIN_ARGS and k not in self.referenced)

    def is_referenced_or_not_builtin(self, key: str) -> bool:
        return key in self.allowed or key not in BUILTIN_ARGS

    def all_allowed(self) -> dict[str, str]:
        return self._values(self.allowed)

    def all_meta(self) -> dict[str, str]:
        return self._values(self.meta)

    def _values(self, source: dict[str, str | None]) -> dict[str, str]:
        out = {}
        for key in [*source, *BUILTIN_ARGS]:
            found = self._value(key, source)
            if found is not None:
                out[key] = found
        return out

    def _value(self, key: str, source: dict[str, str | None]) -> str | None:
        option = self.from_options.get(key)
        if option is not None:
            return option
        default = source.get(key)
        if default is None:  # not declared here, or declared without a default
            return self.meta.get(key)
        return default

    def filter_allowed(self, env: list[str]) -> list[str]:
        """The allowed args not shadowed by an ENV, as KEY=value."""
        set_keys = {e.split("=", 1)[0] for e in env}
        return [f"{k}={v}" for k, v in self.all_allowed().items() if k not in set_keys]
