"""The daemon object: opens the data root, repairs it, and wires the services.

Each service gets the few collaborators it needs; none of them sees this object
except the system service, which reports on all of them.
"""

from __future__ import annotations

import asyncio
import logging
import os

from dockyard.daemon.config import Config
from dockyard.daemon.containerfs import ContainerFS
from dockyard.daemon.containermounts import ContainerMounts
from dockyard.daemon.containernetwork import ContainerNetworking
from dockyard.daemon.containers import ContainerService
from dockyard.daemon.distribution import DistributionService
from dockyard.daemon.events import Events
from dockyard.daemon.execs import ExecService
from dockyard.daemon.images import ImageService
from dockyard.daemon.netnames import ContainerNames
from dockyard.daemon.networks import NetworkService
from dockyard.daemon.portpublisher import PortPublisher
from dockyard.daemon.runtimes import Runtimes
from dockyard.daemon.stats import StatsCollector
from dockyard.daemon.system import SystemService
from dockyard.daemon.volumes import VolumeService
from dockyard.network.driver import BridgeDriver
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
        self.distribution = DistributionService.from_config(self.images, config, self.events.emit)
        self.runtimes = Runtimes(os.path.join(config.exec_root, "runtime"), config.default_runtime,
                                 {name: r["path"] for name, r in config.runtimes.items()})
        self.network_driver = BridgeDriver(
            chain_prefix=config.iptables_chain_prefix, iptables=config.iptables,
            ip_forward=config.ip_forward, ip_masq=config.ip_masq,
            userland_proxy=config.userland_proxy, mtu=config.mtu)
        self.networks = NetworkService(self.layout, config, self.events.emit,
                                       driver=self.network_driver)
        self.containers = ContainerService(self.layout, config.exec_root, self.images,
                                           self.runtimes, self.events.emit)
        self.containers.networking = self._container_networking(config)
        self.execs = ExecService(self.containers)
        self.containerfs = ContainerFS(self.containers)
        self.volumes = VolumeService(self.layout.volumes, self.events.emit)
        self.containers.mounts = ContainerMounts(self.volumes, self.containers, self.containerfs)
        self.containers.mounts.restore()
        self.stats = StatsCollector(self.containers)
        self.system = SystemService(self)

    def _container_networking(self, config: Config) -> ContainerNetworking:
        from dockyard.network.dns import EmbeddedDNS
        from dockyard.network.proxies import Proxies

        proxies = Proxies(os.path.join(config.exec_root, "proxies")) \
            if config.userland_proxy else None
        names = ContainerNames(self.containers, self.networks, config.dns)
        return ContainerNetworking(config, config.exec_root, self.containers, self.networks,
                                   self.network_driver,
                                   PortPublisher(self.network_driver, proxies),
                                   EmbeddedDNS(names), self.events.emit)

    def repair(self) -> None:
        """Finish or undo what a crash left half-done (see store/layout.py)."""
        for name in _listdir(self.layout.tmp):
            _remove(f"{self.layout.tmp}/{name}")
        remove_stale_temps(self.layout.root)
        self.images.repair()

    def container_counts(self) -> dict[str, int]:
        return self.containers.counts()

    async def start(self) -> None:
        """What needs the event loop: the networks (creates cut short undone,
        the predefined ones made, the kernel side restored), then taking back
        the containers that kept running (their addresses are reserved again)."""
        await asyncio.to_thread(self.network_driver.setup)
        await self.networks.start()
        await self.containers.restore()

    async def stop(self) -> None:
        self.stats.close()
        self.distribution.close()
        await self.containers.networking.dns.close()
        await self.execs.shutdown()
        await self.containers.shutdown()


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


def _remove(path: str) -> None:
    import shutil
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
