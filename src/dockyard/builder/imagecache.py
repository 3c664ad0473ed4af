"""The classic builder's cache is the image store itself.

Every step commits an image whose parent is the previous step's and whose
ContainerConfig records the step (dispatchers.py). To find a step in the
cache, the builder looks at the children of the current image for one
built here (it has a parent: not pulled, not loaded) whose ContainerConfig
matches the one the step would record; of several, the newest. Nothing else
is stored, so `builder prune` has nothing of its own to remove, and deleting
an image deletes its cache.

`compare` is moby's image/cache compare: the fields a step can change,
which makes the record in Cmd (with COPY's content hash, RUN's build args)
the key, along with the config it runs with.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

_LISTS = ("Env", "Cmd", "Entrypoint", "Shell", "OnBuild")
_KEYS = ("ExposedPorts", "Volumes")
_SCALARS = ("AttachStdin", "AttachStdout", "AttachStderr", "NetworkDisabled", "Tty",
            "OpenStdin", "StdinOnce", "ArgsEscaped", "User", "WorkingDir", "StopSignal",
            "StopTimeout")
_HEALTH = ("Interval", "StartInterval", "StartPeriod", "Timeout", "Retries")


def compare(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    if a is None or b is None:
        return False
    for key in _LISTS:
        if list(a.get(key) or []) != list(b.get(key) or []):
            return False
    for key in _KEYS:
        if set(a.get(key) or {}) != set(b.get(key) or {}):
            return False
    if dict(a.get("Labels") or {}) != dict(b.get("Labels") or {}):
        return False
    for key in _SCALARS:
        if (a.get(key) or None) != (b.get(key) or None):
            return False
    ha, hb = a.get("Healthcheck"), b.get("Healthcheck")
    if (ha is None) != (hb is None):
        return False
    if ha is not None and hb is not None:
        if any(ha.get(k, 0) != hb.get(k, 0) for k in _HEALTH):
            return False
        if list(ha.get("Test") or []) != list(hb.get("Test") or []):
            return False
    return True


def newest_match(children: Iterable[Any], config: dict[str, Any]) -> Any | None:
    """Of `children` (image.store Images built on the current image), the
    newest whose ContainerConfig matches `config`."""
    match = None
    for image in children:
        if not image.config.get("os") and not image.config.get("architecture"):
            continue
        if compare(image.config.get("container_config"), config):
            if match is None or image.created_ns > match.created_ns:
                match = image
    return match
