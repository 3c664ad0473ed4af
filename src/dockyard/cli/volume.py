"""`volume` commands: create, ls, inspect, rm, prune, update — docker's flags,
output and exit codes (docker/cli cli/command/volume/*.go and
formatter/volume.go, as of docker 28).

Rows are formatter.volumeContext (also the volumes of `system df -v`): LINKS
and SIZE come from the daemon's UsageData, "N/A" without it; GROUP,
AVAILABILITY and STATUS describe cluster volumes, "N/A" for local ones.
`volume ls` sorts by name in natural order.

`volume inspect` prints what docker decodes the daemon's answer into, a
volume.Volume: its fields in declaration order, the empty ones tagged
`omitempty` left out, maps with sorted keys; templates see that struct, so
`{{.Labels}}` of a volume without labels is `map[]` and `{{.Nope}}` an error.

The cluster-volume flags of `create` and `update` are sent as docker sends
them; only a swarm manager accepts them.
"""

from __future__ import annotations

from dockyard.cli import formatting
from dockyard.cli.command import (FORMAT_HELP, INSPECT_FORMAT_HELP, PROG, Cli, StatusError,
                                  write_listing)
from dockyard.cli.pflag import FlagSet

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Mapping

DEFAULT_TABLE = "table {{.Driver}}\t{{.Name}}"
CLUSTER_TABLE = "table {{.Name}}\t{{.Group}}\t{{.Driver}}\t{{.Availability}}\t{{.Status}}"
QUIET_FORMAT = "{{.Name}}"
HEADER = {
    "ID": "ID", "Name": "VOLUME NAME", "Group": "GROUP", "Driver": "DRIVER", "Scope": "SCOPE",
    "Availability": "AVAILABILITY", "Mountpoint": "MOUNTPOINT", "Labels": "LABELS",
    "Links": "LINKS", "Size": "SIZE", "Status": "STATUS",
}
PRUNE_WARNING = ("WARNING! This will remove anonymous local volumes not used by at least one "
                 "container.\nAre you sure you want to continue?")
PRUNE_ALL_WARNING = ("WARNING! This will remove all local volumes not used by at least one "
                     "container.\nAre you sure you want to continue?")
CLUSTER_API = "1.42"   # cluster volumes, `prune --all`, `ls --cluster`, `update`


# --- rows (formatter/volume.go) -------------------------------------------------------

VolumeRow = formatting.struct_type("*formatter.volumeContext", formatting.LabeledRow)


def _cluster_status(cluster: Mapping[str, Any]) -> str:
    if not (cluster.get("Info") or {}).get("VolumeID"):
        return "pending creation"
    nodes = len(cluster.get("PublishStatus") or [])
    if nodes == 0:
        return "created"
    return "in use (1 node)" if nodes == 1 else f"in use ({nodes} nodes)"


def volume_row(v: Mapping[str, Any]):
    """The fields of formatter.volumeContext for one volume of the API."""
    usage = v.get("UsageData")
    cluster = v.get("ClusterVolume")
    spec = (cluster or {}).get("Spec") or {}
    labels = v.get("Labels") or {}
    row = VolumeRow({
        "Availability": "N/A" if cluster is None else spec.get("Availability", ""),
        "Driver": v.get("Driver", ""),
        "Group": "N/A" if cluster is None else spec.get("Group", ""),
        # Go joins them in map order, which varies; sorted, ours does not
        "Labels": ",".join(f"{k}={x}" for k, x in sorted(labels.items())),
        "Links": "N/A" if usage is None else str(usage.get("RefCount", 0)),
        "Mountpoint": v.get("Mountpoint", ""),
        "Name": v.get("Name", ""),
        "Scope": v.get("Scope", ""),
        "Size": "N/A" if usage is None else formatting.human_size(usage.get("Size", 0)),
        "Status": "N/A" if cluster is None else _cluster_status(cluster),
    })
    row.__dict__["_labels"] = dict(labels)
    return row


def volume_format(fmt: str, quiet: bool) -> str:
    """formatter.NewVolumeFormat."""
    if fmt == "table":
        return QUIET_FORMAT if quiet else DEFAULT_TABLE
    if fmt == "raw":
        return "name: {{.Name}}" if quiet else "name: {{.Name}}\\ndriver: {{.Driver}}\\n"
    return fmt


# --- the typed volume of `inspect` (api/types/volume.Volume) ---------------------------


class _Volume(formatting.Struct):
    """volume.Volume; MarshalJSON leaves out the empty `omitempty` fields."""

    OMITEMPTY = ("ClusterVolume", "CreatedAt", "Status", "UsageData")

    def MarshalJSON(self) -> str:  # noqa: N802 - Go's json.Marshaler
        from dockyard.cli.gofmt import truth
        from dockyard.cli.gojson import json_marshal
        return json_marshal({k: v for k, v in vars(self).items()
                             if k not in self.OMITEMPTY or truth(v)})


_Volume = formatting.struct_type("volume.Volume", _Volume)
_UsageData = formatting.struct_type("*volume.UsageData")


def _sorted_map(value: Any) -> Any:
    """A decoded map[string]... as Go marshals it: keys sorted, at every depth."""
    if isinstance(value, dict):
        return {k: _sorted_map(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_map(x) for x in value]
    return value


def typed_volume(v: Mapping[str, Any]):
    """The daemon's volume JSON decoded into volume.Volume."""
    from dockyard.cli.gofmt import GoZero

    def string_map(key: str, go_type: str) -> Any:
        value = v.get(key)
        return GoZero(go_type) if value is None else _sorted_map(value)

    usage = v.get("UsageData")
    cluster = v.get("ClusterVolume")
    return _Volume({
        "ClusterVolume": GoZero("*volume.ClusterVolume") if cluster is None else cluster,
        "CreatedAt": v.get("CreatedAt") or "",
        "Driver": v.get("Driver") or "",
        "Labels": string_map("Labels", "map[string]string"),
        "Mountpoint": v.get("Mountpoint") or "",
        "Name": v.get("Name") or "",
        "Options": string_map("Options", "map[string]string"),
        "Scope": v.get("Scope") or "",
        "Status": string_map("Status", "map[string]interface {}"),
        "UsageData": GoZero("*volume.UsageData") if usage is None else _UsageData({
            "RefCount": usage.get("RefCount", 0), "Size": usage.get("Size", 0)}),
    })


# --- create, update -------------------------------------------------------------------


def _cluster_spec(o) -> dict[str, Any]:
    """runCreate's ClusterVolumeSpec, with the `omitempty` fields left out."""
    access: dict[str, Any] = {"Scope": o.scope, "Sharing": o.sharing}
    if o.type == "mount":
        access["MountVolume"] = {}
    elif o.type == "block":
        access["BlockVolume"] = {}
    topology: dict[str, Any] = {}
    for key, values in (("Requisite", o.topology_required), ("Preferred", o.topology_preferred)):
        if values:
            # each is "segment=value,segment=value"
            topology[key] = [{"Segments": {k: x for k, _, x in
                                           (s.partition("=") for s in top.split(","))}}
                             for top in values]
    spec: dict[str, Any] = {
        "Group": o.group, "AccessMode": {k: x for k, x in access.items() if x != ""},
        "AccessibilityRequirements": topology,
        "CapacityRange": {"RequiredBytes": max(o.required_bytes, 0),
                          "LimitBytes": max(o.limit_bytes, 0)},
        "Secrets": [{"Key": k, "Secret": o.secret[k]} for k in sorted(o.secret)],
        "Availability": o.availability,
    }
    return {k: x for k, x in spec.items() if x != "" and x != []}


# Flags that make `create` send a cluster spec: docker's list, which names
# "secrets" (no such flag) and leaves out the topologies.
_CLUSTER_TRIGGERS = ("group", "scope", "sharing", "availability", "type", "secrets",
                     "limit-bytes", "required-bytes")
_CLUSTER_FLAGS = ("availability", "group", "limit-bytes", "required-bytes", "scope", "secret",
                  "sharing", "topology-preferred", "topology-required", "type")


def create(cli: Cli, argv: list[str], path: str) -> int:
    fs = FlagSet(path, "[OPTIONS] [VOLUME]", "Create a volume", args=(0, 1))
    from dockyard.cli.optvalues import mem_bytes, validate_label
    fs.string("driver", "d", help="Specify volume driver name", default="local")
    fs.string("name", help="Specify volume name", hidden=True)
    fs.map("opt", "o", help="Set driver specific options")
    fs.list("label", help="Set metadata for a volume", validate=validate_label)
    fs.string("group", help="Cluster Volume group (cluster volumes)")
    fs.string("scope", help='Cluster Volume access scope ("single", "multi")', default="single")
    fs.string("sharing", default="none",
              help='Cluster Volume access sharing ("none", "readonly", "onewriter", "all")')
    fs.string("availability", default="active",
              help='Cluster Volume availability ("active", "pause", "drain")')
    fs.string("type", help='Cluster Volume access type ("mount", "block")', default="block")
    fs.map("secret", help="Cluster Volume secrets")
    for long, help in (("limit-bytes", "Minimum size of the Cluster Volume in bytes"),
                       ("required-bytes", "Maximum size of the Cluster Volume in bytes")):
        fs.add(long, metavar="bytes", help=help, default=0, convert=mem_bytes)
    fs.list("topology-required", help="A topology that the Cluster Volume must be accessible from")
    fs.list("topology-preferred", help="A topology that the Cluster Volume would be preferred in")
    o = fs.parse(argv)
    from dockyard.cli.command import require_api
    require_api(cli, [f"--{f}" for f in _CLUSTER_FLAGS if f in o.changed], CLUSTER_API)
    name = o.name
    if o.args:
        if name:
            raise StatusError("conflicting options: cannot specify a volume-name through both "
                              "--name and as a positional arg")
        name = o.args[0]
    body: dict[str, Any] = {}
    if any(f in o.changed for f in _CLUSTER_TRIGGERS):
        body["ClusterVolumeSpec"] = _cluster_spec(o)
    labels = {k: v for k, _, v in (label.partition("=") for label in o.label or [])}
    for key, value in (("Driver", o.driver), ("DriverOpts", o.opt), ("Labels", labels),
                       ("Name", name)):
        if value:   # all `omitempty`
            body[key] = value
    reply = cli.client.post("/volumes/create", body=body) or {}
    cli.out.write(f"{reply.get('Name', '')}\n")
    return 0


def _trim(name: str) -> str:
    """The engine client's trimID."""
    if not name.strip():
        raise StatusError("invalid volume name or ID: value is empty")
    return name.strip()


def update(cli: Cli, argv: list[str], path: str) -> int:
    fs = FlagSet(path, "[OPTIONS] [VOLUME]", "Update a volume (cluster volumes only)",
                 args=(1, 1))
    fs.string("availability", default="active",
              help='Cluster Volume availability ("active", "pause", "drain")')
    o = fs.parse(argv)
    from dockyard.cli.command import require_command_api
    require_command_api(cli, f"{PROG} volume update", CLUSTER_API)
    vol = cli.client.get(f"/volumes/{_trim(o.args[0])}") or {}
    cluster = vol.get("ClusterVolume")
    if cluster is None:
        raise StatusError("can only update cluster volumes")
    spec = dict(cluster.get("Spec") or {})
    if "availability" in o.changed:
        spec["Availability"] = o.availability
    version = (cluster.get("Version") or {}).get("Index", 0)
    cli.client.request("PUT", f"/volumes/{_trim(cluster.get('ID', ''))}",
                       query={"version": str(version)}, body={"Spec": spec}).read()
    return 0


# --- ls, inspect ----------------------------------------------------------------------------


def list_volumes(cli: Cli, argv: list[str], path: str) -> int:
    fs = FlagSet(f"{PROG} volume ls", "[OPTIONS]", "List volumes",
                 aliases=f"{PROG} volume ls, {PROG} volume list", args=(0, 0))
    from dockyard.cli.ps import add_filter_flag, filters_json
    fs.bool("quiet", "q", help="Only display volume names")
    fs.string("format", help=FORMAT_HELP)
    add_filter_flag(fs, help='Provide filter values (e.g. "dangling=true")')
    fs.bool("cluster", help="Display only cluster volumes, and use cluster volume list formatting")
    o = fs.parse(argv)
    if "cluster" in o.changed:
        from dockyard.cli.command import require_api
        require_api(cli, "--cluster", CLUSTER_API)
    filters = filters_json(o.filter or [])
    reply = cli.client.get("/volumes", query={"filters": filters} if filters else None) or {}
    volumes = reply.get("Volumes") or []
    if o.cluster:   # even over --format, as docker
        volumes = [v for v in volumes if v.get("ClusterVolume") is not None]
        fmt = "table" if o.quiet else CLUSTER_TABLE
    else:
        from dockyard.cli.clientconfig import listing_format
        fmt = listing_format(o.format, o.quiet, "volumesFormat")
    volumes = sorted(volumes, key=lambda v: formatting.natural_key(v.get("Name", "")))
    write_listing(cli, volume_format(fmt, o.quiet), [volume_row(v) for v in volumes], HEADER)
    return 0


def inspect(cli: Cli, argv: list[str], path: str) -> int:
    fs = FlagSet(path, "[OPTIONS] VOLUME [VOLUME...]",
                 "Display detailed information on one or more volumes", args=(1, None))
    fs.string("format", "f", help=INSPECT_FORMAT_HELP)
    o = fs.parse(argv)
    from dockyard.cli import inspect as inspector
    return inspector.run_inspect(cli, o.args, o.format, [inspector.TYPES["volume"]],
                                 typed=typed_volume)


# --- rm, prune -------------------------------------------------------------------------------


def remove(cli: Cli, argv: list[str], path: str) -> int:
    fs = FlagSet(f"{PROG} volume rm", "[OPTIONS] VOLUME [VOLUME...]",
                 "Remove one or more volumes. You cannot remove a volume that is in use by a "
                 "container.", aliases=f"{PROG} volume rm, {PROG} volume remove", args=(1, None))
    fs.bool("force", "f", help="Force the removal of one or more volumes")
    o = fs.parse(argv)
    from dockyard.client.api import APIError
    errors = []
    for name in o.args:
        try:
            cli.client.request("DELETE", f"/volumes/{_trim(name)}",
                               query={"force": "1"} if o.force else None).read()
        except APIError as e:
            errors.append(f"Error response from daemon: {e.message}")
            continue
        except StatusError as e:
            errors.append(e.message)
            continue
        cli.out.write(f"{name}\n")
    if errors:   # errors.Join: after the names of those removed
        raise StatusError("\n".join(errors))
    return 0


def prune(cli: Cli, argv: list[str], path: str) -> int:
    fs = FlagSet(path, "[OPTIONS]", "Remove unused local volumes", args=(0, 0))
    from dockyard.cli.ps import add_filter_flag, filters_json
    fs.bool("all", "a", help="Remove all unused volumes, not just anonymous ones")
    add_filter_flag(fs, short="", help='Provide filter values (e.g. "label=<label>")')
    fs.bool("force", "f", help="Do not prompt for confirmation")
    o = fs.parse(argv)
    from dockyard.cli.command import api_older_than, api_version, require_api
    if "all" in o.changed:
        require_api(cli, "--all", CLUSTER_API)
    from dockyard.cli.clientconfig import prune_filters
    pairs = prune_filters([p for p in o.filter or [] if p is not None])
    warning = PRUNE_WARNING
    if o.all:
        if any(k == "all" for k, _ in pairs):
            raise StatusError("conflicting options: cannot specify both --all and --filter all=1")
        pairs.append(("all", "true"))
        warning = PRUNE_ALL_WARNING
    elif not o.force and api_older_than(api_version(cli), CLUSTER_API):
        warning = PRUNE_ALL_WARNING   # before 1.42 the daemon prunes named volumes too
    if not o.force:
        from dockyard.cli.images import confirm
        if not confirm(cli, warning):
            return 0   # a cancellation: no message, status 0
    filters = filters_json(pairs)
    report = cli.client.post("/volumes/prune",
                             query={"filters": filters} if filters else None) or {}
    reclaimed, output = formatting.prune_report(report, "VolumesDeleted", "Deleted Volumes:")
    if output:
        cli.out.write(output + "\n")
    cli.out.write(f"Total reclaimed space: {formatting.human_size(reclaimed)}\n")
    return 0
