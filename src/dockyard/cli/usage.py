"""`system df` and `system prune`: what the engine's data takes, and taking it
back (docker/cli cli/command/system/df.go, prune.go and
formatter/disk_usage.go, volume.go, buildcache.go).

`system prune` asks each kind to prune itself in docker's order: containers,
networks, volumes (with --volumes), images, build cache. A daemon that does
not know a kind yet (404 "page not found" for /networks/prune, /volumes/prune,
/build/prune) has nothing of that kind to prune, and that part is skipped;
docker itself would stop there with the 404's message.
"""

from __future__ import annotations

import time

from dockyard.cli import formatting
from dockyard.cli.command import FORMAT_HELP, Cli, StatusError, write_listing
from dockyard.cli.pflag import FlagSet
from dockyard.cli.volume import HEADER as VOLUME_HEADER
from dockyard.cli.volume import volume_format, volume_row

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SUMMARY_TABLE = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
SUMMARY_RAW = ("type: {{.Type}}\ntotal: {{.TotalCount}}\nactive: {{.Active}}\n"
               "size: {{.Size}}\nreclaimable: {{.Reclaimable}}\n")
SUMMARY_HEADER = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
                  "Reclaimable": "RECLAIMABLE"}
IMAGES_TABLE = ("table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t"
                "{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}")
CONTAINERS_TABLE = ("table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t"
                    "{{.RunningFor}}\t{{.Status}}\t{{.Names}}")
VOLUMES_TABLE = "table {{.Name}}\t{{.Links}}\t{{.Size}}"
BUILD_CACHE_TABLE = ("table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t"
                     "{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}")
BUILD_CACHE_HEADER = {"ID": "CACHE ID", "CacheType": "CACHE TYPE", "Size": "SIZE",
                      "CreatedSince": "CREATED", "LastUsedSince": "LAST USED",
                      "UsageCount": "USAGE", "Shared": "SHARED", "InUse": "IN USE",
                      "Parent": "PARENT", "Description": "DESCRIPTION",
                      "CreatedAt": "CREATED AT", "LastUsedAt": "LAST USED AT"}
BUILD_CACHE_RAW = ("build_cache_id: {{.ID}}\nparent_id: {{.Parent}}\n"
                   "build_cache_type: {{.CacheType}}\ndescription: {{.Description}}\n"
                   "created_at: {{.CreatedAt}}\ncreated_since: {{.CreatedSince}}\n"
                   "last_used_at: {{.LastUsedAt}}\nlast_used_since: {{.LastUsedSince}}\n"
                   "usage_count: {{.UsageCount}}\nin_use: {{.InUse}}\nshared: {{.Shared}}\n")

UsageRow = formatting.struct_type("*formatter.diskUsageImagesContext", formatting.Row)
BuildCacheRow = formatting.struct_type("*formatter.buildCacheContext", formatting.Row)
_Verbose = formatting.struct_type("*formatter.diskUsageContext")


def _percent(part: int, total: int) -> str:
    if total > 0:
        percent = abs(part) * 100 // total   # Go's integer division: toward zero
        return f"{formatting.human_size(part)} ({-percent if part < 0 else percent}%)"
    return formatting.human_size(part)


_ACTIVE = {"running", "paused", "restarting"}


def summary_rows(du: dict[str, Any]) -> list:
    """The four rows of `system df`: images, containers, local volumes, build cache."""
    images = du.get("Images") or []
    containers = du.get("Containers") or []
    volumes = du.get("Volumes") or []
    cache = du.get("BuildCache") or []
    layers = du.get("LayersSize") or 0
    used = sum(i.get("Size", 0) - i.get("SharedSize", 0) for i in images
               if i.get("Containers") and i.get("Size", 0) != -1 and i.get("SharedSize", 0) != -1)
    rw_total = sum(c.get("SizeRw") or 0 for c in containers)
    rw_free = sum(c.get("SizeRw") or 0 for c in containers if c.get("State") not in _ACTIVE)
    vol_sizes = [((v.get("UsageData") or {}).get("Size", -1),
                  (v.get("UsageData") or {}).get("RefCount", 0)) for v in volumes]
    vol_total = sum(s for s, _ in vol_sizes if s != -1)
    vol_free = sum(s for s, refs in vol_sizes if s != -1 and refs == 0)
    builder = sum(b.get("Size", 0) for b in cache if not b.get("Shared"))
    in_use = sum(b.get("Size", 0) for b in cache if b.get("InUse") and not b.get("Shared"))
    return [
        UsageRow({"Type": "Images", "TotalCount": str(len(images)),
                  "Active": str(sum(1 for i in images if (i.get("Containers") or 0) > 0)),
                  "Size": formatting.human_size(layers),
                  "Reclaimable": _percent(layers - used, layers)}),
        UsageRow({"Type": "Containers", "TotalCount": str(len(containers)),
                  "Active": str(sum(1 for c in containers if c.get("State") in _ACTIVE)),
                  "Size": formatting.human_size(rw_total),
                  "Reclaimable": _percent(rw_free, rw_total)}),
        UsageRow({"Type": "Local Volumes", "TotalCount": str(len(volumes)),
                  "Active": str(sum(1 for _, refs in vol_sizes if refs > 0)),
                  "Size": formatting.human_size(vol_total),
                  "Reclaimable": _percent(vol_free, vol_total)}),
        UsageRow({"Type": "Build Cache", "TotalCount": str(len(cache)),
                  "Active": str(sum(1 for b in cache if b.get("InUse"))),
                  "Size": formatting.human_size(builder),
                  "Reclaimable": formatting.human_size(builder - in_use)}),
    ]


def _image_rows(images: list[dict[str, Any]], trunc: bool) -> list:
    """The verbose images section: one row per image, its first tag only."""
    rows = []
    for img in images:
        repo = tag = "<none>"
        tags = img.get("RepoTags") or []
        if tags and not formatting._is_dangling(img):
            parsed = formatting.split_reference(tags[0])
            if parsed is None:
                continue
            if parsed[1] is not None:
                repo, tag = parsed[0], parsed[1]
        rows.append(formatting.image_row(img, repo, tag, "", trunc))
    return rows


def _parse_rfc3339(text: str) -> float:
    import datetime
    if not text:
        return 0.0
    text = text.replace("Z", "+00:00")
    if "." in text:
        head, _, rest = text.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        text = head + "." + digits[:6] + rest[len(digits):]
    try:
        return datetime.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return 0.0


def _build_cache_row(b: dict[str, Any], trunc: bool, now: float):
    cache_id = formatting.truncate_id(b.get("ID", "")) if trunc else b.get("ID", "")
    # docker 28 decodes Parents from the key " Parents" (a stray space in the
    # tag of build.CacheRecord), so what it shows is in effect Parent alone
    parents = b.get(" Parents") or ([b["Parent"]] if b.get("Parent") else [])
    created = _parse_rfc3339(b.get("CreatedAt", ""))
    last = b.get("LastUsedAt")
    return BuildCacheRow({
        "CacheType": b.get("Type", ""),
        "CreatedAt": formatting.rfc3339_time_string(b.get("CreatedAt", "")),
        "CreatedSince": formatting.since(created, now),
        "Description": b.get("Description", ""),
        "ID": cache_id + ("*" if b.get("InUse") else ""),
        "InUse": "true" if b.get("InUse") else "false",
        "LastUsedAt": formatting.rfc3339_time_string(last) if last else "",
        "LastUsedSince": formatting.since(_parse_rfc3339(last), now) if last else "",
        "Parent": formatting.truncate_id(", ".join(parents)) if trunc else ", ".join(parents),
        "Shared": "true" if b.get("Shared") else "false",
        "Size": formatting.human_size_with_precision(b.get("Size", 0), 3),
        "UsageCount": str(b.get("UsageCount", 0)),
    })


def _sorted_cache(cache: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """buildCacheSort: never used first, then least recently used; ties by ID."""
    return sorted(cache, key=lambda b: (
        b.get("LastUsedAt") is not None,
        _parse_rfc3339(b["LastUsedAt"]) if b.get("LastUsedAt") is not None else 0.0,
        b.get("ID", "")))


def _verbose_table(du: dict[str, Any]) -> str:
    from dockyard.cli import ps
    now = time.time()
    cache = _sorted_cache(du.get("BuildCache") or [])
    builder = sum(b.get("Size", 0) for b in cache if not b.get("Shared"))
    parts = [
        "Images space usage:\n\n",
        formatting.render(IMAGES_TABLE, _image_rows(du.get("Images") or [], True),
                          formatting.IMAGE_HEADER),
        "\nContainers space usage:\n\n",
        formatting.render(CONTAINERS_TABLE, [ps.container_row(c, True, now, hide_virtual=True)
                                             for c in du.get("Containers") or []], ps.HEADER),
        "\nLocal Volumes space usage:\n\n",
        formatting.render(VOLUMES_TABLE, [volume_row(v) for v in du.get("Volumes") or []],
                          VOLUME_HEADER),
        f"\nBuild cache usage: {formatting.human_size(builder)}\n\n",
        formatting.render(BUILD_CACHE_TABLE, [_build_cache_row(b, True, now) for b in cache],
                          BUILD_CACHE_HEADER),
    ]
    return "".join(parts)


_MARSHALLING: dict[type, type] = {}


def _marshalling(row):
    """The row with its MarshalJSON, so `{{json .}}` over the lists prints each
    row as docker's formatter contexts marshal themselves."""
    cls = type(row)
    if cls not in _MARSHALLING:
        _MARSHALLING[cls] = type(cls.__name__, (cls,), {
            "__slots__": (), "MarshalJSON": lambda self: self._go_json()})
    new = object.__new__(_MARSHALLING[cls])
    new.__dict__.update(vars(row))
    return new


def verbose_raw_format() -> str:
    """NewDiskUsageFormat("raw", verbose): each list, each item with its kind."""
    from dockyard.cli.ps import container_format
    parts = [("Images", "Image", formatting.image_format("raw", False, True)),
             ("Containers", "Container", container_format("raw", False, True)),
             ("Volumes", "Volume", volume_format("raw", False)),
             ("BuildCache", "Build Cache", BUILD_CACHE_RAW)]
    return "\n".join(f"{{{{range .{key}}}}}type: {kind}\n{fmt}\n{{{{end -}}}}"
                     for key, kind, fmt in parts)


def _verbose_template(fmt: str, du: dict[str, Any], out: list[str]) -> None:
    """A --format with -v runs once over all four lists, into `out`; an error
    in running it comes after what it printed, without "template parsing error"."""
    from dockyard.cli import gotemplate, ps
    body = formatting.template_body(fmt)
    trunc = formatting.is_table(fmt)
    data = _Verbose({
        "Images": _image_rows(du.get("Images") or [], trunc),
        "Containers": [ps.container_row(c, trunc, hide_virtual=True)
                       for c in du.get("Containers") or []],
        "Volumes": [volume_row(v) for v in du.get("Volumes") or []],
        "BuildCache": [_build_cache_row(b, trunc, time.time())
                       for b in _sorted_cache(du.get("BuildCache") or [])],
    })
    for key, rows in vars(data).items():
        setattr(data, key, [_marshalling(row) for row in rows])
    try:
        tmpl = gotemplate.parse(body)
    except gotemplate.TemplateError as e:
        raise StatusError(f"template parsing error: {e}") from None
    try:
        tmpl.write(data, out)
    except gotemplate.TemplateError as e:
        raise StatusError(str(e)) from None


def df(cli: Cli, argv: list[str], path: str) -> int:
    fs = FlagSet(path, "[OPTIONS]", "Show docker disk usage", args=(0, 0))
    fs.bool("verbose", "v", help="Show detailed information on space usage")
    fs.string("format", help=FORMAT_HELP)
    o = fs.parse(argv)
    du = cli.client.get("/system/df") or {}
    fmt = o.format or "table"
    if o.verbose and fmt == "table":
        cli.out.write(_verbose_table(du))
    elif o.verbose:
        out: list[str] = []
        try:
            _verbose_template(verbose_raw_format() if fmt == "raw" else fmt, du, out)
        finally:
            cli.out.write("".join(out))
    else:
        fmt = SUMMARY_TABLE if fmt == "table" else SUMMARY_RAW if fmt == "raw" else fmt
        write_listing(cli, fmt, summary_rows(du), SUMMARY_HEADER)
    return 0


# --- system prune -------------------------------------------------------------------------------


def confirmation_message(all_images: bool, volumes: bool, filters: list[str]) -> str:
    warnings = ["all stopped containers", "all networks not used by at least one container"]
    if volumes:
        warnings.append("all anonymous volumes not used by at least one container")
    warnings.append("all images without at least one container associated to them"
                    if all_images else "all dangling images")
    warnings.append("all build cache" if all_images else "unused build cache")
    text = "WARNING! This will remove:" + "".join(f"\n  - {w}" for w in warnings) + "\n"
    if filters:
        text += "\n  Items to be pruned will be filtered with:" + \
            "".join(f"\n  - {f}" for f in filters) + "\n"
    return text + "\nAre you sure you want to continue?"


def _prune_other(cli: Cli, path: str, query: dict[str, str], key: str,
                 title: str) -> tuple[int, str]:
    from dockyard.client.api import APIError
    try:
        report = cli.client.post(path, query=query or None) or {}
    except APIError as e:
        if e.status == 404 and e.message == "page not found":
            return 0, ""   # the daemon has none of these (see the module's docstring)
        raise
    return formatting.prune_report(report, key, title)


def _prune_images(cli: Cli, pairs: list[tuple[str, str]], all_images: bool) -> tuple[int, str]:
    from dockyard.cli.ps import filters_json
    query = {"filters": filters_json(
        [*pairs, ("dangling", "false" if all_images else "true")])}
    report = cli.client.post("/images/prune", query=query) or {}
    deleted = report.get("ImagesDeleted") or []
    if not deleted:
        return 0, ""
    lines = "".join(f"untagged: {d['Untagged']}\n" if d.get("Untagged") else
                    f"deleted: {d.get('Deleted', '')}\n" for d in deleted)
    return report.get("SpaceReclaimed") or 0, "Deleted Images:\n" + lines


def prune(cli: Cli, argv: list[str], path: str) -> int:
    fs = FlagSet(path, "[OPTIONS]", "Remove unused data", args=(0, 0))
    fs.bool("force", "f", help="Do not prompt for confirmation")
    fs.bool("all", "a", help="Remove all unused images not just dangling ones")
    fs.bool("volumes", help="Prune anonymous volumes")
    from dockyard.cli.ps import add_filter_flag, filters_json
    add_filter_flag(fs, short="", help='Provide filter values (e.g. "label=<key>=<value>")')
    o = fs.parse(argv)
    pairs = [p for p in o.filter or [] if p is not None]
    if o.volumes and any(k == "until" for k, _ in pairs):
        raise StatusError('ERROR: The "until" filter is not supported with "--volumes"')
    if not o.force:
        shown = sorted({f"{k}={v}" for k, v in pairs if k in ("label", "label!", "until")},
                       key=formatting.natural_key)
        from dockyard.cli.images import confirm
        if not confirm(cli, confirmation_message(o.all, o.volumes, shown)):
            return 0
    from dockyard.cli.containers import prune_containers
    filters = filters_json(pairs)
    base = {"filters": filters} if filters else {}
    steps = [lambda: prune_containers(cli, filters),
             lambda: _prune_other(cli, "/networks/prune", base, "NetworksDeleted",
                                  "Deleted Networks:")]
    if o.volumes:
        steps.append(lambda: _prune_other(cli, "/volumes/prune", base, "VolumesDeleted",
                                          "Deleted Volumes:"))
    steps.append(lambda: _prune_images(cli, pairs, o.all))
    cache_query = dict(base)
    if o.all:
        cache_query["all"] = "1"
    steps.append(lambda: _prune_other(cli, "/build/prune", cache_query, "CachesDeleted",
                                      "Deleted build cache objects:"))
    total = 0
    for step in steps:
        reclaimed, output = step()
        total += reclaimed
        if output:
            cli.out.write(output + "\n")
            cli.out.flush()
    cli.out.write(f"Total reclaimed space: {formatting.human_size(total)}\n")
    return 0
