"""A real dockyardd per test, on its own temporary data root and socket.

Every daemon is stopped and its directories removed even when the test fails,
and the test fails if the daemon left a mount behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import load_busybox, running_daemon
from paths import REPO

if os.geteuid() != 0:
    raise RuntimeError("integration tests need root (they run a real daemon)")


@pytest.fixture
def daemon():
    with running_daemon() as d:
        yield d


@pytest.fixture(scope="module")
def module_daemon():
    """One daemon for a module's tests that each leave it as they found it."""
    with running_daemon() as d:
        load_busybox(d)
        yield d


@pytest.fixture
def loaded_busybox(daemon) -> str:
    return load_busybox(daemon)


@pytest.fixture
def busybox_rootfs(tmp_path) -> Path:
    """A rootfs tarball of the host's static busybox (what `make demo` imports)."""
    path = tmp_path / "busybox-rootfs.tar"
    with open(path, "wb") as f:
        subprocess.run([sys.executable, "-m", "dockyard.image.busybox"], stdout=f, check=True,
                       cwd=REPO)
    return path

