"""The files docker writes for each container and bind-mounts into it:
/etc/hostname, /etc/hosts and /etc/resolv.conf.

They live in the container's directory under the data root, so they survive a
daemon restart and can be rewritten in place when the network changes.
"""

from __future__ import annotations

import os
import re


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


def for_container(c, directory: str) -> dict[str, str]:
    """Write a container's three files into `directory` (its data dir), as
    dockerd makes them: with --network host the host's /etc/hosts and
    resolv.conf, else docker's hosts and the host's resolv.conf without its
    loopback nameservers, with --add-host, --dns, --dns-search, --dns-option."""
    hc = c.host_config
    hostname = c.config.get("Hostname") or c.short_id
    mode = hc.get("NetworkMode") or "default"
    if mode == "host":
        with open("/etc/hosts") as f:
            hosts_text = f.read()
    else:
        hosts_text = hosts([tuple(h.split(":", 1)[::-1]) for h in hc.get("ExtraHosts") or []])
    try:
        with open("/etc/resolv.conf") as f:
            host_resolv = f.read()
    except OSError:
        host_resolv = ""
    resolv = host_resolv if mode == "host" else resolv_conf(
        host_resolv, hc.get("Dns"), hc.get("DnsSearch"), hc.get("DnsOptions"))
    return write(directory, hostname, hosts_text, resolv)


def write(directory: str, hostname: str, hosts_text: str, resolv_text: str) -> dict[str, str]:
    """Write the three files into `directory` (each only if its content changed).

    They are derived anew at every start, so they are replaced atomically (a
    container never sees half a file) but not fsynced: after a crash they are
    simply written again."""
    paths = {"hostname": os.path.join(directory, "hostname"),
             "hosts": os.path.join(directory, "hosts"),
             "resolv.conf": os.path.join(directory, "resolv.conf")}
    for key, text in (("hostname", hostname + "\n"), ("hosts", hosts_text),
                      ("resolv.conf", resolv_text)):
        _replace(paths[key], text.encode())
    return paths


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
