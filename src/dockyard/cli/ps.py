"""`ps` (`container ls`): containers as docker's table shows them
(docker/cli cli/command/container/list.go and formatter/container.go).

A row is formatter.ContainerContext: its fields are methods in Go, values
here, computed from the API's container summary the way docker computes
them — the ID cut to 12, the COMMAND cut to 20 columns and then quoted, the
IMAGE familiar and without a digest, the PORTS grouped into ranges. `{{json .}}`
prints every field, with Platform null when the daemon does not say, and
`{{.Label "key"}}` is a method, as in Go.
"""

from __future__ import annotations

import time

from dockyard.cli import formatting
from dockyard.cli.command import FORMAT_HELP, PROG, Cli, StatusError, write_listing
from dockyard.cli.pflag import FlagSet

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Mapping

DEFAULT_TABLE = ("table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t"
                 "{{.Ports}}\t{{.Names}}")
RAW_FORMAT = ("container_id: {{.ID}}\nimage: {{.Image}}\ncommand: {{.Command}}\n"
              "created_at: {{.CreatedAt}}\nstate: {{- pad .State 1 0}}\n"
              "status: {{- pad .Status 1 0}}\nnames: {{.Names}}\n"
              "labels: {{- pad .Labels 1 0}}\nports: {{- pad .Ports 1 0}}\n")
HEADER = {
    "ID": "CONTAINER ID", "Names": "NAMES", "Image": "IMAGE", "Command": "COMMAND",
    "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE",
    "Status": "STATUS", "Size": "SIZE", "Labels": "LABELS", "Mounts": "MOUNTS",
    "LocalVolumes": "LOCAL VOLUMES", "Networks": "NETWORKS", "Platform": "PLATFORM",
}


# formatter.ContainerContext: the fields, and Label, its one method with an argument.
ContainerRow = formatting.struct_type("*formatter.ContainerContext", formatting.LabeledRow)


def container_format(fmt: str, quiet: bool, size: bool) -> str:
    """formatter.NewContainerFormat."""
    if fmt in ("table", ""):
        if quiet:
            return formatting.QUIET_FORMAT
        return DEFAULT_TABLE + ("\t{{.Size}}" if size else "")
    if fmt == "raw":
        if quiet:
            return "container_id: {{.ID}}"
        return RAW_FORMAT + ("size: {{.Size}}\n" if size else "")
    return formatting.QUIET_FORMAT if quiet else fmt


def _image(summary: Mapping[str, Any], trunc: bool) -> str:
    """ContainerContext.Image: "<no image>", a short ID for an image given by ID,
    else the familiar name with its tag and without a digest."""
    image = summary.get("Image") or ""
    if not image:
        return "<no image>"
    if not trunc:
        return image
    if formatting.truncate_id(summary.get("ImageID") or "") == formatting.truncate_id(image):
        return formatting.truncate_id(image)
    parsed = formatting.split_reference(image)
    if parsed is None:
        return image
    repo, tag, _ = parsed
    return f"{repo}:{tag}" if tag is not None else repo


def _names(names: list[str], trunc: bool) -> str:
    stripped = [n[1:] for n in names]
    if trunc:
        for name in stripped:
            if "/" not in name:
                stripped = [name]
                break
    return ",".join(stripped)


def displayable_ports(ports: list[Mapping[str, Any]]) -> str:
    """formatter.DisplayablePorts: "0.0.0.0:80->80/tcp, 9000-9001/tcp"."""
    def key(p):
        return (p.get("PrivatePort", 0), p.get("IP", ""), p.get("PublicPort", 0),
                p.get("Type", ""))

    groups: dict[str, list[int]] = {}
    order: list[str] = []
    result: list[str] = []
    host_mappings: list[str] = []
    for port in sorted(ports or [], key=key):
        current = port.get("PrivatePort", 0)
        port_key = port.get("Type", "")
        ip = port.get("IP", "")
        if ip:
            if port.get("PublicPort", 0) != current:
                host = f"[{ip}]" if ":" in ip else ip
                host_mappings.append(f"{host}:{port.get('PublicPort', 0)}->{current}/"
                                     f"{port.get('Type', '')}")
                continue
            port_key = f"{ip}/{port_key}"
        group = groups.get(port_key)
        if group is None:
            groups[port_key] = [current, current]
            order.append(port_key)
            continue
        if current == group[1] + 1:
            group[1] = current
            continue
        result.append(_form_group(port_key, group[0], group[1]))
        groups[port_key] = [current, current]
    result += [_form_group(k, *groups[k]) for k in order]
    return ", ".join(result + host_mappings)


def _form_group(key: str, start: int, last: int) -> str:
    parts = key.split("/")
    kind, ip = parts[0], ""
    if len(parts) > 1:
        ip, kind = parts[0], parts[1]
    group = str(start) if start == last else f"{start}-{last}"
    if ip:
        host = f"[{ip}]" if ":" in ip else ip
        group = f"{host}:{group}->{group}"
    return f"{group}/{kind}"


def _platform(summary: Mapping[str, Any]) -> str | None:
    descriptor = summary.get("ImageManifestDescriptor") or {}
    p = descriptor.get("platform")
    if not p:
        return None
    out = "/".join(x for x in (p.get("os", ""), p.get("architecture", ""), p.get("variant", ""))
                   if x)
    return out


def container_row(c: Mapping[str, Any], trunc: bool = True, now: float | None = None,
                  hide_virtual: bool = False) -> ContainerRow:
    """The fields of formatter.ContainerContext for one /containers/json entry."""
    now = time.time() if now is None else now
    command = c.get("Command") or ""
    labels = c.get("Labels") or {}
    mounts = c.get("Mounts") or []
    size_rw = c.get("SizeRw") or 0
    size_root = 0 if hide_virtual else (c.get("SizeRootFs") or 0)
    size = formatting.human_size_with_precision(size_rw, 3)
    if size_root > 0:
        size += f" (virtual {formatting.human_size_with_precision(size_root, 3)})"
    mount_names = []
    for m in mounts:
        name = m.get("Name") or m.get("Source") or ""
        mount_names.append(formatting.ellipsis(name, 15) if trunc else name)
    networks = sorted(((c.get("NetworkSettings") or {}).get("Networks") or {}).keys())
    created = c.get("Created") or 0
    row = ContainerRow({
        "Command": formatting.go_quote(formatting.ellipsis(command, 20) if trunc else command),
        "CreatedAt": formatting.go_time_string(created),
        "ID": formatting.truncate_id(c.get("Id", "")) if trunc else c.get("Id", ""),
        "Image": _image(c, trunc),
        "Labels": ",".join(sorted(f"{k}={v}" for k, v in labels.items())),
        "LocalVolumes": str(sum(1 for m in mounts if m.get("Driver") == "local")),
        "Mounts": ",".join(mount_names),
        "Names": _names(c.get("Names") or [], trunc),
        "Networks": ",".join(networks),
        "Platform": _platform(c),
        "Ports": displayable_ports(c.get("Ports") or []),
        "RunningFor": formatting.since(created, now),
        "Size": size,
        "State": c.get("State") or "",
        "Status": c.get("Status") or "",
    })
    row.__dict__["_labels"] = dict(labels)
    return row


class _SizeProbe:
    """Runs a --format over an empty container to see whether it shows .Size,
    as docker does before asking the daemon for sizes (they are costly)."""

    def __init__(self) -> None:
        self.used = False

    def row(self):
        probe = self
        base = container_row({})

        def size(self) -> str:
            probe.used = True
            return "0B"

        # The same Go type name as the rows, for the same error messages.
        cls = type(type(base).__name__, (type(base),), {"__slots__": (), "Size": property(size)})
        obj = cls.__new__(cls)
        obj.__dict__.update({k: v for k, v in vars(base).items() if k != "Size"})
        return obj


def parse_filter(value: str) -> tuple[str, str] | None:
    """opts.FilterOpt.Set: "name=value", the name lower-cased, both trimmed."""
    if value == "":
        return None
    if "=" not in value:
        raise ValueError("bad format of filter (expected name=value)")
    name, _, val = value.partition("=")
    return name.strip().lower(), val.strip()


def filters_json(pairs: list[tuple[str, str] | None]) -> str | None:
    """filters.ToJSON: {"name": {"value": true}}, or nothing when there are none."""
    import json
    out: dict[str, dict[str, bool]] = {}
    for pair in pairs:
        if pair is not None:
            out.setdefault(pair[0], {})[pair[1]] = True
    if not out:
        return None
    return json.dumps({k: dict(sorted(v.items())) for k, v in sorted(out.items())},
                      separators=(",", ":"))


def add_filter_flag(fs: FlagSet, short: str = "f", long: str = "filter",
                    help: str = "Filter output based on conditions provided") -> None:
    fs.list(long, short, help, parse_filter, metavar="filter")


def ps(cli: Cli, argv: list[str], path: str) -> int:
    if path != f"{PROG} ps":   # cobra names the command, not the alias it was called by
        path = f"{PROG} container ls"
    fs = FlagSet(path, "[OPTIONS]", "List containers",
                 aliases=f"{PROG} container ls, {PROG} container list, {PROG} container ps, "
                 f"{PROG} ps", args=(0, 0))
    fs.bool("quiet", "q", help="Only display container IDs")
    fs.bool("size", "s", help="Display total file sizes")
    fs.bool("all", "a", help="Show all containers (default shows just running)")
    fs.bool("no-trunc", help="Don't truncate output")
    fs.bool("latest", "l", help="Show the latest created container (includes all states)")
    from dockyard.cli.govalues import parse_int
    fs.add("last", "n", metavar="int", default=-1, convert=parse_int, show_default="-1",
           help="Show n last created containers (includes all states)")
    fs.string("format", help=FORMAT_HELP)
    add_filter_flag(fs)
    o = fs.parse(argv)
    fmt = o.format
    if not fmt:
        from dockyard.cli import clientconfig
        fmt = clientconfig.load().get("psFormat") or ""
    elif o.quiet:
        cli.err.write("WARNING: Ignoring custom format, because both --format and --quiet "
                      "are set.\n")
    size = o.size
    limit = 1 if o.latest and o.last == -1 else o.last
    if fmt:
        size = _template_wants_size(fmt, size, o.quiet, "size" in o.changed)
    query: dict[str, str] = {}
    if o.all:
        query["all"] = "1"
    if limit > 0:
        query["limit"] = str(limit)
    if size:
        query["size"] = "1"
    filters = filters_json(o.filter or [])
    if filters:
        query["filters"] = filters
    containers = cli.client.get("/containers/json", query=query or None) or []
    rows = [container_row(c, trunc=not o.no_trunc) for c in containers]
    write_listing(cli, container_format(fmt, o.quiet, size), rows, HEADER)
    return 0


def _template_wants_size(fmt: str, size: bool, quiet: bool, size_given: bool) -> bool:
    """buildContainerListOptions: the template must parse and run over an empty
    container; if it shows .Size, sizes are asked for unless -s=false was given."""
    from dockyard.cli import gotemplate
    try:
        tmpl = gotemplate.parse(fmt)
    except gotemplate.TemplateError as e:
        raise StatusError(f"failed to parse template: {e}") from None
    probe = _SizeProbe()
    try:
        tmpl.execute(probe.row())
    except gotemplate.TemplateError as e:
        raise StatusError(f"failed to execute template: {e}") from None
    if not quiet and not size and not size_given and probe.used:
        return True
    return size
