"""The docker CLI's config file ($DOCKER_CONFIG/config.json, else ~/.docker/config.json),
for the few settings of it that change what a command does: `psFormat` (the
default --format of ps) and `proxies` (variables run and create add to a
container's environment). Both clients read the same file, so a user's
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
