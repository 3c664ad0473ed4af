"""The files docker writes for each container and bind-mounts into it:
/etc/hostname, /etc/hosts and /etc/resolv.conf.

They live in the container's directory under the data root, so they survive a
daemon restart and can be rewritten in place when the network changes.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field


HOSTS_DEFAULT = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)

# What dockerd falls back to when the host only lists loopback resolvers,
# which a container in its own network namespace cannot reach.
DEFAULT_NAMESERVERS = ["8.8.8.8", "8.8.4.4"]


def hosts(extra: list[tuple[str, str]]) -> str:
    """`extra` is (address, names) lines: the container's own address and --add-host entries."""
    return HOSTS_DEFAULT + "".join(f"{addr}\t{names}\n" for addr, names in extra)


def resolv_conf(host_text: str, dns: list[str] | None = None, search: list[str] | None = None,
                options: list[str] | None = None) -> str:
    """The host's resolv.conf, with loopback nameservers removed (they mean
    nothing inside another network namespace) and the user's overrides applied."""
    nameservers, searches, opts, other = [], [], [], []
    for line in host_text.splitlines():
        words = line.split()
        if not words or words[0].startswith(("#", ";")):
            continue
        if words[0] == "nameserver" and len(words) > 1:
            if not re.match(r"^(127\.|::1$|0\.0\.0\.0$)", words[1]):
                nameservers.append(words[1])
        elif words[0] in ("search", "domain"):
            searches = words[1:]
        elif words[0] == "options":
            opts.extend(words[1:])
        else:
            other.append(line)
    nameservers = list(dns or []) or nameservers or DEFAULT_NAMESERVERS
    searches = list(search or []) or searches
    opts = list(options or []) or opts
    out = [f"nameserver {ns}" for ns in nameservers]
    if searches:
        out.append("search " + " ".join(searches))
    if opts:
        out.append("options " + " ".join(opts))
    return "\n".join(out) + "\n"


@dataclass
class NetworkView:
    """What the files need to know of the container's network."""
    addresses: list[str] = field(default_factory=list)  # its own, one hosts line each
    embedded_dns: bool = False       # on a user-defined network: 127.0.0.11 answers
    host_gateway: str = ""           # what --add-host NAME:host-gateway stands for
    default_dns: list[str] = field(default_factory=list)      # the daemon's --dns ...
    default_search: list[str] = field(default_factory=list)
    default_options: list[str] = field(default_factory=list)


def for_container(c, directory: str, view: NetworkView | None = None,
                  in_place: bool = False) -> dict[str, str]:
    """Write a container's three files into `directory` (its data dir), as
    dockerd makes them: with --network host the host's /etc/hosts and
    resolv.conf; else docker's hosts with --add-host entries and a line for
    each address of the container, and a resolv.conf that is either the
    embedded DNS server's (user-defined networks) or the host's without its
    loopback nameservers; --dns, --dns-search and --dns-option (or the
    daemon's defaults) override what they name.

    `in_place` rewrites the files of a running container: they are bind
    mounts, which follow the inode, not the name."""
    view = view or NetworkView()
    hc = c.host_config
    hostname = c.config.get("Hostname") or c.short_id
    mode = hc.get("NetworkMode") or "default"
    if mode == "host":
        with open("/etc/hosts") as f:
            hosts_text = f.read()
    else:
        extra = []
        for entry in hc.get("ExtraHosts") or []:
            name, _, address = entry.partition(":")
            extra.append((view.host_gateway if address == "host-gateway" else address, name))
        names = hostname
        if c.config.get("Domainname"):
            names = f"{hostname}.{c.config['Domainname']} {hostname}"
        hosts_text = hosts(extra + [(address, names) for address in view.addresses])
    try:
        with open("/etc/resolv.conf") as f:
            host_resolv = f.read()
    except OSError:
        host_resolv = ""
    dns = hc.get("Dns") or view.default_dns
    search = hc.get("DnsSearch") or view.default_search
    options = hc.get("DnsOptions") or view.default_options
    if mode == "host":
        resolv = host_resolv
    elif view.embedded_dns:
        # The embedded server forwards what it does not know to the servers
        # the container would otherwise have had.
        resolv = embedded_resolv_conf(host_resolv, search, options)
    else:
        resolv = resolv_conf(host_resolv, dns, search, options)
    return write(directory, hostname, hosts_text, resolv, in_place)


def embedded_resolv_conf(host_text: str, search: list[str] | None,
                         options: list[str] | None) -> str:
    """resolv.conf on a user-defined network: only the embedded server, and
    ndots:0 unless the user set ndots (as libnetwork's sandbox does)."""
    template = resolv_conf(host_text, ["127.0.0.11"], search, options)
    if "ndots:" not in template:
        lines = template.splitlines()
        opts = [i for i, line in enumerate(lines) if line.startswith("options ")]
        if opts:
            lines[opts[0]] += " ndots:0"
        else:
            lines.append("options ndots:0")
        template = "\n".join(lines) + "\n"
    return template


def upstream_nameservers(c, default_dns: list[str]) -> list[str]:
    """The servers the embedded DNS forwards to for this container."""
    dns = c.host_config.get("Dns") or default_dns
    return list(dns) if dns else host_nameservers()


def host_nameservers() -> list[str]:
    """Every nameserver the host's /etc/resolv.conf lists, loopback ones too."""
    try:
        with open("/etc/resolv.conf") as f:
            host_text = f.read()
    except OSError:
        return []
    return [words[1] for words in map(str.split, host_text.splitlines())
            if len(words) > 1 and words[0] == "nameserver"]


def write(directory: str, hostname: str, hosts_text: str, resolv_text: str,
          in_place: bool = False) -> dict[str, str]:
    """Write the three files into `directory` (each only if its content changed).

    They are derived anew at every start, so they are replaced atomically (a
    container never sees half a file) but not fsynced: after a crash they are
    simply written again."""
    paths = {"hostname": os.path.join(directory, "hostname"),
             "hosts": os.path.join(directory, "hosts"),
             "resolv.conf": os.path.join(directory, "resolv.conf")}
    for key, text in (("hostname", hostname + "\n"), ("hosts", hosts_text),
                      ("resolv.conf", resolv_text)):
        (_overwrite if in_place else _replace)(paths[key], text.encode())
    return paths


def _overwrite(path: str, data: bytes) -> None:
    with open(path, "r+b") as f:
        if f.read() == data:
            return
        f.seek(0)
        f.write(data)
        f.truncate()


def _replace(path: str, data: bytes) -> None:
    try:
        with open(path, "rb") as f:
            if f.read() == data:
                return
    except FileNotFoundError:
        pass
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f".tmp-{name}")  # (repair removes `.tmp-*` left by a crash)
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
