"""Registries over each storage driver."""

from __future__ import annotations

import pytest

from dockyard.registry.filesystem import FilesystemDriver
from dockyard.registry.memory import MemoryDriver
from dockyard.registry.storage import Registry


@pytest.fixture(params=["filesystem", "inmemory"])
def registry(request, tmp_path) -> Registry:
    if request.param == "filesystem":
        return Registry(FilesystemDriver(str(tmp_path / "root")))
    return Registry(MemoryDriver())
