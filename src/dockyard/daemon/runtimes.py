"""OCI runtimes the daemon can run containers with: ours, runc, crun, and any the
user adds (`--add-runtime name=path`). Each is driven through the same CLI verbs."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys

from dockyard import errdefs

OURS = "dockyard"


def _ours() -> str:
    # The runtime is installed next to the interpreter running the daemon.
    return os.path.join(os.path.dirname(sys.executable), "dockyard-runtime")


class Runtimes:
    def __init__(self, root: str, default: str = OURS, extra: dict[str, str] | None = None):
        self.root = root  # passed as --root: where runtimes keep container state
        self.paths: dict[str, str] = {OURS: _ours()}
        for name in ("runc", "crun"):
            found = shutil.which(name)
            if found:
                self.paths[name] = found
        self.paths.update(extra or {})
        if default not in self.paths:
            raise ValueError(f"default runtime {default!r} is not configured")
        self.default = default

    def path(self, name: str) -> str:
        try:
            return self.paths[name or self.default]
        except KeyError:
            raise errdefs.InvalidParameter(f"unknown or invalid runtime name: {name}") from None

    async def run(self, name: str, *args: str) -> str:
        """Run one runtime verb; its stderr becomes the error message."""
        proc = await asyncio.create_subprocess_exec(
            self.path(name), "--root", self.root, *args,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        if proc.returncode != 0:
            message = err.decode(errors="replace").strip().splitlines()
            raise errdefs.System(message[-1] if message else f"runtime {name} {args[0]} failed")
        return out.decode(errors="replace")
