"""The daemon object: opens the data root, repairs it, and wires the services.

Each service gets the few collaborators it needs; none of them sees this object
except the system service, which reports on all of them.
"""

from __future__ import annotations

import logging

from dockyard.daemon.config import Config
from dockyard.daemon.events import Events
from dockyard.daemon.images import ImageService
from dockyard.daemon.system import SystemService
from dockyard.store.atomic import remove_stale_temps
from dockyard.store.layout import Layout

log = logging.getLogger(__name__)


class Daemon:
    def __init__(self, config: Config):
        self.config = config
        self.layout = Layout(config.data_root)
        self.layout.create()
        self.events = Events()
        self.images = ImageService(self.layout, self.events.emit)
        self.system = SystemService(self)

    def repair(self) -> None:
        """Finish or undo what a crash left half-done (see store/layout.py)."""
        for name in _listdir(self.layout.tmp):
            _remove(f"{self.layout.tmp}/{name}")
        remove_stale_temps(self.layout.root)
        self.images.repair()

    def container_counts(self) -> dict[str, int]:
        return {}


def _listdir(path: str) -> list[str]:
    import os
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


def _remove(path: str) -> None:
    import os
    import shutil
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
