"""Who may find whom, by which name: the embedded DNS server's view of the containers.

On a user-defined network a container is found by its name, by its network
aliases (which hold its short ID, and the service name compose gives it) and
as `name.network`, by the containers on that same network and by no others.
The default bridge resolves no names, as with dockerd. Names are matched
without regard to case.
"""

from __future__ import annotations

from dockyard.daemon import etcfiles
from dockyard.daemon.containernetwork import endpoints, settings


class ContainerNames:
    def __init__(self, containers, networks, default_dns: list[str]):
        self.containers = containers
        self.networks = networks
        self.default_dns = default_dns

    def _shared_networks(self, container_id: str):
        """Each user-defined network the asker is attached to."""
        c = self.containers.containers.get(container_id)
        if c is None:
            return
        for net, ep in endpoints(self.networks, c):
            if ep.get("EndpointID") and net.user_defined:
                yield net

    def _peers(self, net):
        """(container, its endpoint) for every running container on `net`."""
        for c in list(self.containers.containers.values()):
            if not c.running:
                continue
            ep = settings(c)["Networks"].get(net.name)
            if ep and ep.get("EndpointID") and ep.get("NetworkID") == net.id:
                yield c, ep

    def lookup(self, container_id: str, name: str) -> tuple[list[str], list[str]] | None:
        wanted = name.rstrip(".").lower()
        v4: list[str] = []
        v6: list[str] = []
        for net in self._shared_networks(container_id):
            for c, ep in self._peers(net):
                names = {c.name.lstrip("/").lower(), *(a.lower() for a in ep.get("Aliases") or [])}
                names |= {f"{n}.{net.name.lower()}" for n in list(names)}
                if wanted in names:
                    if ep.get("IPAddress"):
                        v4.append(ep["IPAddress"])
                    if ep.get("GlobalIPv6Address"):
                        v6.append(ep["GlobalIPv6Address"])
        return (v4, v6) if v4 or v6 else None

    def reverse(self, container_id: str, ip: str) -> str | None:
        for net in self._shared_networks(container_id):
            for c, ep in self._peers(net):
                if ip in (ep.get("IPAddress"), ep.get("GlobalIPv6Address")):
                    return f"{c.name.lstrip('/')}.{net.name}"
        return None

    def upstreams(self, container_id: str) -> list[str]:
        """Where unknown names go: nowhere from internal networks only (they have
        no way out), else the servers the container would have had itself."""
        nets = list(self._shared_networks(container_id))
        c = self.containers.containers.get(container_id)
        if c is None or (nets and all(n.internal for n in nets)):
            return []
        return etcfiles.upstream_nameservers(c, self.default_dns)
