"""Predicates the services share when they list or prune by `filters`."""

from __future__ import annotations

import re

from dockyard import errdefs


def labels_match(labels: dict[str, str], wanted: list[str]) -> bool:
    """`label=key` and `label=key=value` filters: every one must hold."""
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


def invalid_filter(key: str, values: list[str] | None = None) -> errdefs.InvalidParameter:
    """dockerd's invalidFilter: `Invalid filter 'key'` or `Invalid filter 'key=[v1 v2]'`."""
    shown = f"={'[' + ' '.join(values) + ']'}" if values is not None else ""
    return errdefs.InvalidParameter(f"Invalid filter '{key}{shown}'")


def bool_filter(filters: dict[str, list[str]], key: str, default: bool | None) -> bool | None:
    """dockerd's GetBoolOrDefault: true/1 or false/0; anything else, or both,
    is an invalid filter."""
    if key not in filters:
        return default
    values = filters[key]
    if not values:
        raise invalid_filter(key)
    is_true = "true" in values or "1" in values
    is_false = "false" in values or "0" in values
    if is_true == is_false:
        raise invalid_filter(key, values)
    return is_true


def matches(patterns: list[str], value: str) -> bool:
    """filters.Args.Match: an exact match, or a regular expression found in `value`."""
    for pattern in patterns:
        if pattern == value:
            return True
        try:
            if re.search(pattern, value):
                return True
        except re.error:
            continue
    return False
