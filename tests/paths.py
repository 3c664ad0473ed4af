"""Shared test helpers: where the repository and the shared fixtures are."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DOCKYARD_SHARED", REPO.parent / "shared"))
FIXTURES = SHARED / "fixtures" / "images"
REFERENCE = SHARED / "reference" / "engine-api-1.41"
