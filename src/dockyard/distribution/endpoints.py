"""Where a repository lives, and how to reach it (dockerd's registry service config).

A reference's domain names its registry ("index"). Docker Hub is special:
it is written `docker.io` (or `index.docker.io`), served by
`registry-1.docker.io`, its credentials are filed under
`https://index.docker.io/v1/`, and only it may have mirrors
(`--registry-mirror`), tried in order before it for pulls, never for
pushes or logins (a mirror must not see the upstream's credentials).

Every other registry is spoken to over HTTPS with verified certificates,
unless it is *insecure*: listed by `--insecure-registry` (host[:port], or
a CIDR that contains its address), or on the loopback network
(127.0.0.0/8 and ::1 are insecure by default, as in dockerd). An insecure
registry is tried over HTTPS without verification first, then over plain
HTTP, as dockerd does. dockerd also resolves names to find whether they
fall in an insecure CIDR; we do not resolve anything here (no DNS
traffic behind the user's back): only `localhost` and literal addresses
are matched against CIDRs.

Where Docker Hub itself is can be changed (`hub`, from the daemon's
environment `DOCKYARD_HUB_ENDPOINT`): tests point it at a dead port on
127.0.0.1, so that a mirror test that falls through can never reach the
Internet; an air-gapped site can point it at its own registry.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from dockyard import errdefs
from dockyard.image import reference

INDEX_NAME = "docker.io"
INDEX_HOSTNAME = "index.docker.io"
INDEX_SERVER = "https://index.docker.io/v1/"  # where Docker Hub credentials are filed
DEFAULT_V2_REGISTRY = "https://registry-1.docker.io"
LOOPBACK_CIDRS = ("127.0.0.0/8", "::1/128")


@dataclass(frozen=True)
class Endpoint:
    url: str              # scheme://host[:port], no trailing slash
    verify_tls: bool = True
    mirror: bool = False

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc


def index_name(domain: str) -> str:
    """ValidateIndexName: Docker Hub's old name is its new name."""
    return INDEX_NAME if domain in (INDEX_HOSTNAME, INDEX_NAME) else domain


def auth_key(domain: str) -> str:
    """Where config.json files a registry's credentials (GetAuthConfigKey)."""
    return INDEX_SERVER if index_name(domain) == INDEX_NAME else domain


def _host_only(hostport: str) -> str:
    if hostport.startswith("["):
        return hostport[1:].split("]", 1)[0]
    host, sep, port = hostport.rpartition(":")
    return host if sep and port.isdigit() and ":" not in host else hostport


def validate_mirror(value: str) -> str:
    """ValidateMirror: an http(s) URL with nothing but a host (and "/"), in
    dockerd's words when it is not."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise errdefs.InvalidParameter(
            f'invalid mirror: unsupported scheme "{parts.scheme}" in "{value}"')
    if (parts.path and parts.path != "/") or parts.query or parts.fragment:
        raise errdefs.InvalidParameter(
            f'invalid mirror: path, query, or fragment at end of the URI "{value}"')
    if parts.username is not None:
        shown = value.replace(parts.netloc, f"{parts.username}:xxxxx@{parts.hostname}"
                              + (f":{parts.port}" if parts.port else ""))
        raise errdefs.InvalidParameter(
            f'invalid mirror: username/password not allowed in URI "{shown}"')
    if not parts.netloc:
        raise errdefs.InvalidParameter(f'invalid mirror: "{value}" is not a valid URI')
    return value.rstrip("/") + "/"


@dataclass
class ServiceConfig:
    """The registry settings of the daemon: insecure registries and mirrors."""

    insecure_registries: list[str] = field(default_factory=list)
    mirrors: list[str] = field(default_factory=list)
    hub: str = DEFAULT_V2_REGISTRY  # the endpoint that serves docker.io
    _cidrs: list = field(default_factory=list, init=False, repr=False)
    _hosts: set[str] = field(default_factory=set, init=False, repr=False)

    def __post_init__(self) -> None:
        self.mirrors = [validate_mirror(m) for m in self.mirrors]
        for entry in [*LOOPBACK_CIDRS, *self.insecure_registries]:
            entry = entry.strip()
            if "://" in entry:
                raise errdefs.InvalidParameter(
                    f"insecure registry {entry} should not contain '://'")
            try:
                self._cidrs.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self._hosts.add(index_name(entry))

    def is_secure(self, domain: str) -> bool:
        """isSecureIndex, without name resolution (see the module's docstring)."""
        domain = index_name(domain)
        if domain == INDEX_NAME:
            return True
        if domain in self._hosts:
            return False
        host = _host_only(domain)
        if host in self._hosts:
            return False
        if host == "localhost":
            host = "127.0.0.1"
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return True
        return not any(address in net for net in self._cidrs)

    def _endpoints(self, domain: str) -> list[Endpoint]:
        domain = index_name(domain)
        if domain == INDEX_NAME:
            hub = self.hub.rstrip("/")
            return [Endpoint(hub, verify_tls=self.is_secure(urlsplit(hub).netloc)
                             if hub != DEFAULT_V2_REGISTRY else True)]
        if self.is_secure(domain):
            return [Endpoint(f"https://{domain}")]
        return [Endpoint(f"https://{domain}", verify_tls=False),
                Endpoint(f"http://{domain}", verify_tls=False)]

    def pull_endpoints(self, domain: str) -> list[Endpoint]:
        """Mirrors first (Docker Hub only), then the registry itself."""
        mirrors = []
        if index_name(domain) == INDEX_NAME:
            for m in self.mirrors:
                url = m.rstrip("/")
                mirrors.append(Endpoint(url, verify_tls=self.is_secure(urlsplit(url).netloc),
                                        mirror=True))
        return mirrors + self._endpoints(domain)

    def push_endpoints(self, domain: str) -> list[Endpoint]:
        return self._endpoints(domain)

    def info(self) -> dict:
        """RegistryConfig as /info shows it."""
        cidrs = [str(n) for n in self._cidrs if str(n) != "::1/128"]
        indexes = {INDEX_NAME: {"Name": INDEX_NAME, "Mirrors": list(self.mirrors),
                                "Secure": True, "Official": True}}
        for host in sorted(self._hosts):
            indexes[host] = {"Name": host, "Mirrors": [], "Secure": False, "Official": False}
        return {"AllowNondistributableArtifactsCIDRs": [],
                "AllowNondistributableArtifactsHostnames": [],
                "InsecureRegistryCIDRs": cidrs, "IndexConfigs": indexes,
                "Mirrors": list(self.mirrors)}


def repository_path(ref: reference.Reference) -> str:
    """The repository's name on its registry: the path, "library/x" for
    official images (the normalized reference already has it)."""
    return ref.path


def server_domain(server_address: str) -> str:
    """The registry a `docker login SERVER` means: a URL or a host[:port];
    empty or Docker Hub's index URL mean Docker Hub."""
    if not server_address:
        return INDEX_NAME
    address = server_address
    if "://" not in address:
        address = "https://" + address
    return index_name(urlsplit(address).netloc or INDEX_NAME)
