"""`--change` / `changes=`: Dockerfile instructions applied to an image config.

`docker import -c` and `docker commit -c` accept the instructions that only touch
the config: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER,
VOLUME, WORKDIR. Each is one Dockerfile line.
"""

from __future__ import annotations

import json
import posixpath
import shlex
from typing import Any

from dockyard import errdefs

ALLOWED = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "STOPSIGNAL",
           "USER", "VOLUME", "WORKDIR")


def _json_or_shell(args: str) -> list[str]:
    """Exec form (a JSON array of strings) or shell form, as a Dockerfile reads them."""
    stripped = args.strip()
    if stripped.startswith("["):
        try:
            value = json.loads(stripped)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return ["/bin/sh", "-c", stripped]


def _key_values(instruction: str, args: str) -> list[tuple[str, str]]:
    """`KEY=VALUE ...` pairs, or the legacy `KEY VALUE` form."""
    words = shlex.split(args, posix=True)
    if not words:
        raise errdefs.InvalidParameter(f"{instruction} requires at least one argument")
    if "=" not in words[0]:
        key, _, value = args.strip().partition(" ")
        return [(key, value.strip())]
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise errdefs.InvalidParameter(
                f"{instruction} names can not be blank" if not key else
                f"Syntax error - can't find = in {word!r}. Must be of the form: name=value")
        pairs.append((key, value))
    return pairs


def _set_env(env: list[str], key: str, value: str) -> list[str]:
    kept = [e for e in env if e.partition("=")[0] != key]
    return kept + [f"{key}={value}"]


def apply(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """Return a copy of the container config with every change applied."""
    config = dict(config)
    for line in changes:
        line = line.strip()
        if not line:
            continue
        instruction, _, args = line.partition(" ")
        instruction = instruction.upper()
        args = args.strip()
        if instruction not in ALLOWED:
            raise errdefs.InvalidParameter(f"{instruction} is not a valid change command")
        if instruction in ("CMD", "ENTRYPOINT"):
            config["Cmd" if instruction == "CMD" else "Entrypoint"] = _json_or_shell(args)
        elif instruction == "ENV":
            env = list(config.get("Env") or [])
            for key, value in _key_values("ENV", args):
                env = _set_env(env, key, value)
            config["Env"] = env
        elif instruction == "LABEL":
            labels = dict(config.get("Labels") or {})
            labels.update(_key_values("LABEL", args))
            config["Labels"] = labels
        elif instruction == "EXPOSE":
            ports = dict(config.get("ExposedPorts") or {})
            for port in args.split():
                ports[port if "/" in port else f"{port}/tcp"] = {}
            config["ExposedPorts"] = ports
        elif instruction == "VOLUME":
            volumes = dict(config.get("Volumes") or {})
            for path in _json_or_words(args):
                volumes[path] = {}
            config["Volumes"] = volumes
        elif instruction == "WORKDIR":
            config["WorkingDir"] = posixpath.join(config.get("WorkingDir") or "/", args)
        elif instruction == "USER":
            config["User"] = args
        elif instruction == "STOPSIGNAL":
            config["StopSignal"] = args
        elif instruction == "ONBUILD":
            config["OnBuild"] = list(config.get("OnBuild") or []) + [args]
    return config


def _json_or_words(args: str) -> list[str]:
    if args.startswith("["):
        try:
            return [str(v) for v in json.loads(args)]
        except json.JSONDecodeError:
            pass
    return args.split()
