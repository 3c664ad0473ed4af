"""The docker CLI's config file ($DOCKER_CONFIG/config.json, else ~/.docker/config.json),
for the few settings of it that change what a command does: `psFormat` (the
default --format of ps; likewise `volumesFormat`, ...), `proxies` (variables
run and create add to a container's environment) and `pruneFilters` (filters
a prune adds to its own). Both clients read the same file, so a user's
settings apply to either. A missing or unreadable file is an empty one.
"""

from __future__ import annotations

import json
import os


def load() -> dict:
    directory = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"),
                                                                 ".docker")
    try:
        with open(os.path.join(directory, "config.json"), "rb") as f:
            config = json.load(f)
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def listing_format(given: str, quiet: bool, key: str) -> str:
    """The format of a listing (`network ls`, `volume ls`): --format, else the
    file's `key` (networksFormat, volumesFormat) unless -q was given, else
    "table"."""
    if given:
        return given
    configured = load().get(key) or ""
    return configured if configured and not quiet else "table"


def prune_filters(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """command.PruneFilters: a prune's `--filter` pairs, then the config file's
    `pruneFilters` ("key=value").

    A configured `label=v` is meant to be left out when the filters have
    `label!=v` (and the other way round), but docker asks filters.ExactMatch,
    which also says yes when there is no `label!` filter at all: so a
    configured label filter is only added next to `label!` filters of other
    values. We do as docker does.
    """
    pairs = list(pairs)
    opposite = {"label": "label!", "label!": "label"}
    for entry in load().get("pruneFilters") or []:
        if not isinstance(entry, str) or "=" not in entry:
            continue
        key, _, value = entry.partition("=")
        if key in opposite:
            others = {v for k, v in pairs if k == opposite[key]}
            if not others or value in others:   # ExactMatch(opposite, value)
                continue
        pairs.append((key, value))
    return pairs
