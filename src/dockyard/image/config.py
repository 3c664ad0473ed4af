"""Image configs in the shapes docker writes and returns.

Docker unmarshals every image config into Go structs before it answers, so a
field an image does not carry still appears, with its zero value. These helpers
give our JSON the same fields in the same order.
"""

from __future__ import annotations

from typing import Any

# Go's container.Config; the fields marked omitempty there are added only when set.
_CONTAINER_CONFIG_FIELDS: list[tuple[str, Any]] = [
    ("Hostname", ""), ("Domainname", ""), ("User", ""),
    ("AttachStdin", False), ("AttachStdout", False), ("AttachStderr", False),
    ("ExposedPorts", None), ("Tty", False), ("OpenStdin", False), ("StdinOnce", False),
    ("Env", None), ("Cmd", None), ("Healthcheck", None), ("ArgsEscaped", None),
    ("Image", ""), ("Volumes", None), ("WorkingDir", ""), ("Entrypoint", None),
    ("NetworkDisabled", None), ("MacAddress", None), ("OnBuild", None), ("Labels", None),
    ("StopSignal", None), ("StopTimeout", None), ("Shell", None),
]
_OMITEMPTY = {"ExposedPorts", "Healthcheck", "ArgsEscaped", "NetworkDisabled",
              "MacAddress", "StopSignal", "StopTimeout", "Shell"}


def container_config(config: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """`config` completed to the full container.Config shape."""
    src = {**(config or {}), **overrides}
    out: dict[str, Any] = {}
    for name, zero in _CONTAINER_CONFIG_FIELDS:
        value = src.get(name, zero)
        if name in _OMITEMPTY and not value:
            continue
        out[name] = value
    return out


def history_layers(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The history entries, each marked with whether it made a layer."""
    return list(config.get("history") or [])
