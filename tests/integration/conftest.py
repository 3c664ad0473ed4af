"""A real dockyardd per test, on its own temporary data root and socket.

Every daemon is stopped and its directories removed even when the test fails,
and the test fails if the daemon left a mount behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from harness import Daemon, mounts_under
from paths import FIXTURES, REPO

if os.geteuid() != 0:
    raise RuntimeError("integration tests need root (they run a real daemon)")


@pytest.fixture
def daemon():
    base = tempfile.mkdtemp(prefix="dyt-", dir="/tmp")
    d = Daemon(base)
    try:
        d.start()
        yield d
    finally:
        d.stop()
        leaked = mounts_under(base)
        for m in reversed(leaked):
            subprocess.run(["umount", "-l", m], check=False)
        shutil.rmtree(base, ignore_errors=True)
        assert not leaked, f"daemon left mounts behind: {leaked}"


@pytest.fixture
def loaded_busybox(daemon) -> str:
    """busybox:local from the fixture archive made by real docker."""
    with open(FIXTURES / "busybox.docker-save.tar", "rb") as f:
        daemon.run_cli("load", input=f.read(), check=True)
    return "busybox:local"


@pytest.fixture
def busybox_rootfs(tmp_path) -> Path:
    """A rootfs tarball of the host's static busybox (what `make demo` imports)."""
    path = tmp_path / "busybox-rootfs.tar"
    with open(path, "wb") as f:
        subprocess.run([sys.executable, "-m", "dockyard.image.busybox"], stdout=f, check=True,
                       cwd=REPO)
    return path

