"""The `filters` query parameter: JSON, in either of the two shapes docker sends.

Current clients send `{"key": ["v1", "v2"]}`; older ones (and docker-py for some
calls) send `{"key": {"v1": true}}`. Both become `{"key": ["v1", ...]}`.
"""

from __future__ import annotations

import json

from dockyard import errdefs


def parse(text: str | None) -> dict[str, list[str]]:
    if not text:
        return {}
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise errdefs.InvalidParameter(f"invalid filter: {e}") from e
    if not isinstance(raw, dict):
        raise errdefs.InvalidParameter("invalid filter: expected a JSON object")
    out: dict[str, list[str]] = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            out[key] = [k for k, on in value.items() if on]
        elif isinstance(value, list):
            out[key] = [str(v) for v in value]
        elif isinstance(value, str):
            out[key] = [value]
        else:
            raise errdefs.InvalidParameter(f"invalid filter: bad value for {key!r}")
    return out
