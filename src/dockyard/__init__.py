"""dockyard: a Docker-compatible container engine.

`dockyardd` serves the Docker Engine API on a UNIX socket; `dockyard` is its CLI.
The package map is in docs/architecture.md.
"""

__version__ = "0.1.0"

# The Engine API version we speak, and the oldest one we still answer.
API_VERSION = "1.42"
MIN_API_VERSION = "1.12"
