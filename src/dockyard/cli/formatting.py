"""docker's output conventions: sizes, durations, truncation, `--format`, tables.

The functions here follow github.com/docker/go-units (size.go, duration.go)
and docker/cli's cli/command/formatter (formatter.go, displayutils.go,
image.go) and cli/command/image/formatter_history.go, so that the same data
prints the same characters. Everything here is pure: no daemon, no I/O.

A listing is rendered as docker's formatter.Context does it:

- the format "table" means the command's default table; "table TEMPLATE" is a
  table with a header row made by running TEMPLATE over the header names;
  "json" means `{{json .}}`; anything else is a template run once per row;
- the leading "table" is cut, spaces around the rest trimmed, and the two-char
  sequences backslash-t and backslash-n become a tab and a newline;
- each row is the template's output plus "\\n"; tables go through the
  tabwriter with minwidth 10, tabwidth 1, padding 3.
"""

from __future__ import annotations

import re
import time

from dockyard.units import human_duration

TYPE_CHECKING = False  # typing costs ~10 ms at start-up; only type checkers need it
if TYPE_CHECKING:
    from typing import Any, Iterable, Mapping

# --- sizes (go-units size.go) --------------------------------------------------

_DECIMAL_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")


def _size_and_unit(size: float, base: float, units: tuple[str, ...]) -> tuple[float, str]:
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return size, units[i]


def human_size_with_precision(size: float, precision: int) -> str:
    """HumanSizeWithPrecision: decimal units, `precision` significant digits ("1.98MB")."""
    value, unit = _size_and_unit(float(size), 1000.0, _DECIMAL_UNITS)
    return "%.*g%s" % (precision, value, unit)


def human_size(size: float) -> str:
    """HumanSize: four significant digits ("1.982MB")."""
    return human_size_with_precision(size, 4)


def bytes_size(size: float) -> str:
    """BytesSize: binary units, four significant digits ("23.54GiB")."""
    value, unit = _size_and_unit(float(size), 1024.0, _BINARY_UNITS)
    return "%.4g%s" % (value, unit)


# --- durations (go-units duration.go, in dockyard.units) ---------------------


def since(created: float, now: float | None = None) -> str:
    """How long ago a Unix time was, as docker's CREATED column says it."""
    now = time.time() if now is None else now
    return human_duration(now - created) + " ago"


def go_time_string(ts: int) -> str:
    """Go's time.Unix(ts, 0).String() in the local zone: "2006-01-02 15:04:05 -0700 MST"."""
    t = time.localtime(ts)
    return time.strftime("%Y-%m-%d %H:%M:%S ", t) + _offset(t.tm_gmtoff, "") + " " + t.tm_zone


def rfc3339_time_string(rfc3339: str) -> str:
    """Go's Time.String() of a time decoded from RFC 3339 ("...Z" is UTC):
    "2026-11-28 10:02:38.337329017 +0000 UTC"."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", rfc3339)
    if not m:
        return rfc3339
    date, clock, frac, zone = m.groups()
    frac = (frac or "").rstrip("0").rstrip(".")
    if zone == "Z":
        return f"{date} {clock}{frac} +0000 UTC"
    offset = zone.replace(":", "")
    return f"{date} {clock}{frac} {offset} {offset}"


def rfc3339(ts: int) -> str:
    """Go's time.Unix(ts, 0).Format(time.RFC3339) in the local zone."""
    t = time.localtime(ts)
    offset = "Z" if t.tm_gmtoff == 0 else _offset(t.tm_gmtoff, ":")
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + offset


def _offset(seconds: int, sep: str) -> str:
    sign = "-" if seconds < 0 else "+"
    minutes = abs(seconds) // 60
    return f"{sign}{minutes // 60:02d}{sep}{minutes % 60:02d}"


# --- order ---------------------------------------------------------------------


def natural_key(text: str) -> list[tuple[int, int, Any]]:
    """A sort key for sortorder.NaturalLess, docker's order of names: runs of
    ASCII digits compare as numbers and sort before other characters; of two
    equal numbers, the one with fewer leading zeros comes first."""
    return [(0, int(part), len(part)) if part[0] in "0123456789" else (1, 0, part)
            for part in re.findall(r"[0-9]+|[^0-9]+", text)]


# --- prune reports ---------------------------------------------------------------


def prune_report(report: Mapping[str, Any], key: str, title: str) -> tuple[int, str]:
    """A prune's answer as docker's runPrune words it: the space reclaimed and
    "Title:" over one line per item deleted; nothing (0, "") when nothing went,
    whatever space the daemon says it took back."""
    deleted = report.get(key) or []
    if not deleted:
        return 0, ""
    return report.get("SpaceReclaimed") or 0, title + "\n" + "".join(f"{d}\n" for d in deleted)


# --- truncation ----------------------------------------------------------------


def truncate_id(id: str) -> str:
    """stringid.TruncateID: drop the algorithm, keep 12 characters."""
    if ":" in id:
        id = id.partition(":")[2]
    return id[:12]


def _char_width(ch: str) -> int:
    import unicodedata
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def ellipsis(s: str, max_width: int) -> str:
    """formatter.Ellipsis: cut to `max_width` display columns, ending in "…"."""
    if max_width <= 0:
        return ""
    if max_width == 1:
        return s[:1]
    if s.isascii():
        return s if len(s) <= max_width else s[: max_width - 1] + "…"
    widths = []
    total = 0
    for ch in s:
        total += _char_width(ch)
        widths.append(total)
    if total <= max_width:
        return s
    for i in range(len(widths) - 1):
        if widths[i] <= max_width - 1 < widths[i + 1]:
            return s[: i + 1] + "…"
    return s


# --- JSON as Go prints it ------------------------------------------------------

_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},:]|[^\s\[\]{},:"]+', re.S)


def go_json_indent(src: str, indent: str = "    ") -> str:
    """encoding/json.Indent: re-indent JSON text, keeping every token as written.

    docker prints `inspect` output this way, from the daemon's raw bytes, so
    escapes and key order are the daemon's; empty arrays and objects stay "[]"
    and "{}".
    """
    out: list[str] = []
    depth = 0
    pending_open = False  # just saw "[" or "{": indent unless it closes at once
    for m in _JSON_TOKEN.finditer(src):
        tok = m.group()
        if pending_open:
            pending_open = False
            if tok in ("]", "}"):
                out.append(tok)
                continue
            depth += 1
            out.append("\n" + indent * depth)
        if tok in ("[", "{"):
            out.append(tok)
            pending_open = True
        elif tok == ",":
            out.append(",\n" + indent * depth)
        elif tok == ":":
            out.append(": ")
        elif tok in ("]", "}"):
            depth -= 1
            out.append("\n" + indent * depth + tok)
        else:
            out.append(tok)
    return "".join(out)


def go_quote(s: str) -> str:
    """strconv.Quote for the strings users type (what docker's %q prints)."""
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


# --- --format --------------------------------------------------------------------


def is_table(fmt: str) -> bool:
    return fmt.startswith("table")


def template_body(fmt: str) -> str:
    """formatter.Context.preFormat: the template text a format stands for."""
    if is_table(fmt):
        body = fmt[len("table"):]
    elif fmt == "json":
        body = "{{json .}}"
    else:
        body = fmt
    return body.strip(" ").replace("\\t", "\t").replace("\\n", "\n")


class FormatError(Exception):
    """A template did not parse or run; the message is docker's."""


class Struct:
    """A Go struct as templates see it: fields are attributes, in declaration
    order, and a field that is not there is an error, not "<no value>"."""

    def __init__(self, fields: Mapping[str, Any]):
        self.__dict__.update(fields)


def struct_type(go_name: str, base: type = Struct, fields: Mapping[str, str] | None = None) -> type:
    """A Struct class whose type name in template errors is docker's Go type.

    `fields` maps Go field names to the JSON keys they are stored under where
    the two differ (APIVersion is "ApiVersion" in JSON): templates reach the
    value by either name, and `{{json .}}` still prints the JSON key.
    """
    namespace: dict[str, Any] = {"__slots__": ()}
    for go_field, key in (fields or {}).items():
        namespace[go_field] = property(lambda self, key=key: self.__dict__.get(key))
    return type(go_name, (base,), namespace)


class Row(Struct):
    """One row of a listing, as templates see docker's formatter contexts.

    A struct, not a map: its fields are attributes, so `{{.Nope}}` fails
    ("can't evaluate field Nope in type *formatter.imageContext") instead of
    printing "<no value>". Subclasses carry docker's Go type name for that
    message. go_json() is the context's MarshalJSON: the fields as a Go map
    through json.Marshal, so keys sorted and <, >, & escaped ("\u003cnone\u003e").
    """

    def __init__(self, fields: Mapping[str, str]):
        super().__init__(dict(sorted(fields.items())))

    def _go_json(self) -> str:
        import json
        text = json.dumps(vars(self), ensure_ascii=False, separators=(",", ":"))
        return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
                .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


class LabeledRow(Row):
    """A row whose context has docker's Label method (containers, networks,
    volumes): `{{.Label "key"}}` is the value of one label, "" without it.
    The labels are kept out of the fields, as Go keeps them in the context."""

    def Label(self, name: str) -> str:  # noqa: N802 - the Go method's name
        return self.__dict__["_labels"].get(name, "")

    def _go_json(self) -> str:
        fields = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        return Row(fields)._go_json()


ImageRow = struct_type("*formatter.imageContext", Row)
HistoryRow = struct_type("*image.historyContext", Row)


class SubHeader:
    """formatter.SubHeaderContext: the column titles, and its Label method, which
    titles `{{.Label "com.example.my-label"}}` "my label"."""

    def __init__(self, titles: Mapping[str, str]):
        self.__dict__.update(titles)

    def __getattr__(self, name: str) -> Any:
        from dockyard.cli.gotemplate import MISSING
        return MISSING   # a map's missing key: "<no value>"

    def Label(self, name: str) -> str:  # noqa: N802 - the Go method's name
        return name.split(".")[-1].replace("-", " ").replace("_", " ")


def render(fmt: str, rows: Iterable[Any], header: Mapping[str, str]) -> str:
    """formatter.Context.Write: every row through the format, a table if asked."""
    from dockyard.cli import gotemplate
    body = template_body(fmt)
    rows = list(rows)
    if body == "{{json .}}" and not is_table(fmt) and all(isinstance(r, Row) for r in rows):
        # The whole row as JSON: docker's MarshalJSON, which escapes <, > and &
        # (gotemplate's json cannot know a row's own marshaller).
        return "".join(r._go_json() + "\n" for r in rows)
    try:
        if is_table(fmt):
            # The header is a map with one method, Label; a plain dict unless it is used.
            titles = SubHeader(header) if "Label" in body else dict(header)
            return gotemplate.render_table(body, rows, titles)
        tmpl = gotemplate.parse(body)
        return "".join(tmpl.execute(row) + "\n" for row in rows)
    except gotemplate.TemplateError as e:
        raise FormatError(f"template parsing error: {e}") from None


# --- images (formatter/image.go) -------------------------------------------------

DEFAULT_IMAGE_TABLE = ("table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t"
                       "{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}")
DEFAULT_IMAGE_TABLE_DIGEST = ("table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t"
                              "{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t"
                              "{{.Size}}")
QUIET_FORMAT = "{{.ID}}"

IMAGE_HEADER = {
    "ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
    "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
    "Containers": "CONTAINERS", "VirtualSize": "SIZE", "SharedSize": "SHARED SIZE",
    "UniqueSize": "UNIQUE SIZE",
}


def image_format(fmt: str, quiet: bool, digests: bool) -> str:
    """formatter.NewImageFormat: the format `images` renders with."""
    if fmt in ("", "table"):
        if quiet:
            return QUIET_FORMAT
        return DEFAULT_IMAGE_TABLE_DIGEST if digests else DEFAULT_IMAGE_TABLE
    if fmt == "raw":
        if quiet:
            return "image_id: {{.ID}}"
        return ("repository: {{ .Repository }}\ntag: {{.Tag}}\n"
                + ("digest: {{.Digest}}\n" if digests else "")
                + "image_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n")
    if is_table(fmt) and digests and "{{.Digest}}" not in fmt:
        fmt += "\t{{.Digest}}"
    return fmt


def familiar_name(name: str) -> str:
    """reference.FamiliarName of a normalized repository name."""
    for domain in ("docker.io/", "index.docker.io/"):
        if name.startswith(domain):
            rest = name[len(domain):]
            if rest.startswith("library/") and "/" not in rest[len("library/"):]:
                rest = rest[len("library/"):]
            return rest
    return name


_REPO_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._:/\[\]-]*")


def split_reference(ref: str) -> tuple[str, str | None, str | None] | None:
    """(familiar repository, tag, digest) of a RepoTags/RepoDigests entry, or None
    for what docker cannot parse (such as "<none>:<none>")."""
    name, _, digest = ref.partition("@")
    tag = None
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        name, tag = name[:colon], name[colon + 1:]
    if not _REPO_NAME.fullmatch(name) or name.lower() != name:
        return None
    return familiar_name(name), tag, digest or None


def _is_dangling(img: Mapping[str, Any]) -> bool:
    tags = img.get("RepoTags") or []
    digests = img.get("RepoDigests") or []
    if not tags and not digests:
        return True
    return tags == ["<none>:<none>"] and digests == ["<none>@<none>"]


def image_rows(images: Iterable[Mapping[str, Any]], trunc: bool = True, digests: bool = False,
               need_digest: bool = False, now: float | None = None) -> list[Row]:
    """One row per repository:tag, as formatter.imageFormat makes them.

    `digests` is --digests; `need_digest` is true when the format shows
    {{.Digest}} even without it. A tag shows once per digest of its repository
    when digests are wanted, with "<none>" when it has none.
    """
    rows = []
    for img in images:
        if _is_dangling(img):
            rows.append(image_row(img, "<none>", "<none>", "<none>", trunc, now))
            continue
        repo_tags: dict[str, list[str]] = {}
        repo_digests: dict[str, list[str]] = {}
        for ref in img.get("RepoTags") or []:
            parsed = split_reference(ref)
            if parsed and parsed[1] is not None:
                repo_tags.setdefault(parsed[0], []).append(parsed[1])
        for ref in img.get("RepoDigests") or []:
            parsed = split_reference(ref)
            if parsed and parsed[2] is not None:
                repo_digests.setdefault(parsed[0], []).append(parsed[2])
        for repo, tags in repo_tags.items():
            dgsts = repo_digests.pop(repo, [])
            if not (digests or need_digest):
                dgsts = []
            for tag in tags:
                for dgst in dgsts or ["<none>"]:
                    rows.append(image_row(img, repo, tag, dgst, trunc, now))
        for repo, dgsts in repo_digests.items():
            if digests:
                rows.extend(image_row(img, repo, "<none>", d, trunc, now) for d in dgsts)
            else:
                rows.append(image_row(img, repo, "<none>", "", trunc, now))
    return rows


def image_row(img: Mapping[str, Any], repo: str, tag: str, digest: str, trunc: bool,
              now: float | None = None) -> Row:
    """The fields of formatter.imageContext."""
    size = img.get("Size", 0)
    shared = img.get("SharedSize", -1)
    containers = img.get("Containers", -1)
    created = img.get("Created", 0)
    image_id = img.get("Id", "")
    return ImageRow({
        "Containers": "N/A" if containers == -1 else str(containers),
        "CreatedAt": go_time_string(created),
        "CreatedSince": since(created, now),
        "Digest": digest,
        "ID": truncate_id(image_id) if trunc else image_id,
        "Repository": repo,
        "SharedSize": "N/A" if shared == -1 else human_size(shared),
        "Size": human_size_with_precision(size, 3),
        "Tag": tag,
        "UniqueSize": "N/A" if size == -1 or shared == -1 else human_size(size - shared),
        "VirtualSize": human_size(size),
    })


# --- history (image/formatter_history.go) -------------------------------------------

DEFAULT_HISTORY_TABLE = ("table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t"
                         "{{.Comment}}")
NON_HUMAN_HISTORY_TABLE = "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
HISTORY_HEADER = {
    "ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
    "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT",
}
_EPOCH_2000 = 946684800  # history shows "N/A" for anything created before 2000


def history_format(fmt: str, quiet: bool, human: bool) -> str:
    if fmt in ("", "table"):
        if quiet:
            return QUIET_FORMAT
        return DEFAULT_HISTORY_TABLE if human else NON_HUMAN_HISTORY_TABLE
    return fmt


def history_rows(history: Iterable[Mapping[str, Any]], trunc: bool = True, human: bool = True,
                 now: float | None = None) -> list[Row]:
    rows = []
    for h in history:
        created = h.get("Created", 0)
        created_at = rfc3339(created)
        if not human:
            created_since = created_at
        elif created <= _EPOCH_2000:
            created_since = "N/A"
        else:
            created_since = since(created, now)
        created_by = (h.get("CreatedBy") or "").replace("\t", " ")
        size = h.get("Size", 0)
        image_id = h.get("Id", "")
        rows.append(HistoryRow({
            "Comment": h.get("Comment") or "",
            "CreatedAt": created_at,
            "CreatedBy": ellipsis(created_by, 45) if trunc else created_by,
            "CreatedSince": created_since,
            "ID": truncate_id(image_id) if trunc else image_id,
            "Size": human_size_with_precision(size, 3) if human else str(size),
        }))
    return rows
