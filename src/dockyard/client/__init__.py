"""Engine API client: HTTP/1.1 over a UNIX socket or TCP, with the standard library
only, so that the CLI starts fast.

Owns: finding the daemon (-H, DOCKYARD_HOST, DOCKER_HOST), requests, JSON and
JSON-stream bodies, API errors as exceptions.
Must not import: api, daemon or anything below them — it speaks only HTTP, so it
works against any Docker-compatible engine.
"""

from dockyard.client.api import APIError, Client, default_host

__all__ = ["APIError", "Client", "default_host"]
