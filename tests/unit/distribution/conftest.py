"""What the pull tests share: an image service on a data root of the test's own."""

from __future__ import annotations

import pytest

from dockyard.daemon.images import ImageService
from dockyard.store.layout import Layout


@pytest.fixture
def images(tmp_path) -> ImageService:
    layout = Layout(str(tmp_path / "root"))
    layout.create()
    return ImageService(layout)
