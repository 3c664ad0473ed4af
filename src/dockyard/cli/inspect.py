"""`inspect`: low-level information on any object, as docker shows it
(docker/cli cli/command/system/inspect.go and cli/command/inspect/inspector.go).

Each object type is one row of TYPES: where its inspect endpoint is, and
whether it only exists on a swarm manager. `inspect NAME` tries the types in
docker's order (container, image, network, volume, then the swarm types on a
swarm manager, then plugins) and takes the first that knows the name;
`--type` asks only that one. Commands of one kind (`image inspect`, and later
`container inspect`, `network inspect`, `volume inspect`) call run_inspect
with their single type, and get its error messages unchanged.

Output, as docker's inspector prints it:
- no format: the daemon's raw JSON objects in one array, re-indented with four
  spaces by Go's json.Indent rules (so the daemon's escapes and key order
  stay), "[]" when nothing was found;
- `json`: the same array, compacted;
- a template: its output once per object, each followed by a newline.
Objects that were not found are reported after the output, one line each, and
the status is 1; a template that does not parse is status 64.

Some of docker's commands print what they decoded rather than the daemon's
bytes (`volume inspect` decodes into volume.Volume): run_inspect's `typed`
turns the JSON into that value, whose marshalled JSON is then the output and
which templates run over, with no fallback to the raw map.
"""

from __future__ import annotations

import json

from dockyard.cli import formatting
from dockyard.cli.command import INSPECT_FORMAT_HELP, Cli, Parser, StatusError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable


class RefError(Exception):
    """A reference that gets no object; the message is docker's."""


class InspectType:
    """An object kind: its inspect endpoint ({} is the name), whether only a
    swarm manager has it, whether it takes ?size=1, and whether the client
    trims the name first (the engine client's trimID: "invalid volume name or
    ID: value is empty" for a blank one)."""

    def __init__(self, name: str, path: str, swarm: bool = False, sized: bool = False,
                 trim: bool = False):
        self.name = name
        self.path = path
        self.swarm = swarm
        self.sized = sized
        self.trim = trim

    def url(self, ref: str, size: bool = False) -> tuple[str, dict | None]:
        query = {"size": "1"} if size and self.sized else None
        if self.name == "service":
            query = {"insertDefaults": "true"}
        if self.trim:
            ref = ref.strip()
            if not ref:
                raise RefError(f"invalid {self.name} name or ID: value is empty")
        return self.path.format(ref), query


# docker's lookup order (inspectAll in cli/command/system/inspect.go).
TYPES: dict[str, InspectType] = {t.name: t for t in (
    InspectType("container", "/containers/{}/json", sized=True),
    InspectType("image", "/images/{}/json"),
    InspectType("network", "/networks/{}"),
    InspectType("volume", "/volumes/{}", trim=True),
    InspectType("service", "/services/{}", swarm=True),
    InspectType("task", "/tasks/{}", swarm=True),
    InspectType("node", "/nodes/{}", swarm=True),
    InspectType("plugin", "/plugins/{}/json"),
    InspectType("secret", "/secrets/{}", swarm=True),
    InspectType("config", "/configs/{}", swarm=True),
)}
ALL_TYPES = sorted(TYPES)


class NotFoundAnywhere(RefError):
    pass


def _skippable(e) -> bool:
    """isErrSkippable: try the next type after these."""
    return (e.status == 404 or "not supported" in e.message
            or "invalid reference format" in e.message)


def fetch(cli: Cli, ref: str, types: list[InspectType], size: bool = False) -> bytes:
    """The raw JSON of the first of `types` that knows `ref`.

    With one type its error is the answer; when guessing, "not found" moves on
    and the end is docker's "Error: No such object: ref".
    """
    from dockyard.client.api import APIError
    guessing = len(types) > 1
    swarm_manager: bool | None = None
    for t in types:
        if guessing and t.swarm:
            if swarm_manager is None:
                swarm_manager = _is_swarm_manager(cli)
            if not swarm_manager:
                continue
        path, query = t.url(ref, size)
        try:
            raw = cli.client.request("GET", path, query=query).read()
        except APIError as e:
            if guessing and _skippable(e):
                continue
            raise
        if size and not t.sized:
            cli.err.write(f"WARNING: --size ignored for {t.name}\n")
        return raw
    raise NotFoundAnywhere(f"Error: No such object: {ref}")


def _is_swarm_manager(cli: Cli) -> bool:
    from dockyard.client.api import APIError
    try:
        info = cli.client.get("/info")
    except APIError as e:
        cli.err.write(f"Error response from daemon: {e.message}\n")
        return False
    return bool(((info or {}).get("Swarm") or {}).get("ControlAvailable"))


def go_json_compact(src: str) -> str:
    """encoding/json.Compact: drop the whitespace between tokens."""
    return "".join(m.group() for m in formatting._JSON_TOKEN.finditer(src))


def run_inspect(cli: Cli, refs: list[str], fmt: str, types: list[InspectType],
                size: bool = False, typed: Callable[[Any], Any] | None = None) -> int:
    """inspect.Inspect: fetch each ref, print them all, then report what failed.

    `typed`, when given, makes the decoded JSON into the value docker's
    command inspects (see the module's docstring)."""
    from dockyard.client.api import APIError
    tmpl = None
    if fmt and fmt != "json":
        from dockyard.cli import gotemplate
        try:
            tmpl = gotemplate.parse(fmt)
        except gotemplate.TemplateError as e:
            raise StatusError(f"template parsing error: {e}", 64) from None
    raws: list[str] = []
    outputs: list[str] = []
    errors: list[str] = []
    for ref in refs:
        try:
            raw = fetch(cli, ref, types, size).decode()
        except APIError as e:
            errors.append(f"Error response from daemon: {e.message}")
            continue
        except RefError as e:
            errors.append(str(e))
            continue
        value = None
        if typed is not None:
            from dockyard.cli.gojson import json_marshal
            value = typed(json.loads(raw))
            raw = json_marshal(value, escape_html=True)   # json.Marshal: HTML escaped
        if tmpl is None:
            raws.append(raw.strip())
            continue
        try:
            outputs.append(tmpl.execute(json.loads(raw) if typed is None else value) + "\n")
        except gotemplate.TemplateError as e:
            errors.append(f"template parsing error: {e}")
    if tmpl is not None:
        cli.out.write("".join(outputs) or "\n")
    elif not raws:
        cli.out.write("[]\n")
    else:
        joined = "[" + ",".join(raws) + "]"
        text = go_json_compact(joined) if fmt == "json" else formatting.go_json_indent(joined)
        cli.out.write(text + "\n")
    if errors:
        raise StatusError("\n".join(errors))
    return 0


def inspect(cli: Cli, argv: list[str], path: str) -> int:
    p = Parser(path, "[OPTIONS] NAME|ID [NAME|ID...]",
               "Return low-level information on Docker objects", args=(1, None))
    p.option("-f", "--format", help=INSPECT_FORMAT_HELP, default="")
    p.flag("-s", "--size", help="Display total file sizes if the type is container")
    p.option("--type", help="Only inspect objects of the given type", default=None)
    opts = p.parse(argv)
    quoted = '", "'.join(ALL_TYPES)
    if opts.type is None:
        types = list(TYPES.values())
    elif opts.type == "":
        raise StatusError(f'type is empty: must be one of "{quoted}"')
    elif opts.type in TYPES:
        types = [TYPES[opts.type]]
    else:
        raise StatusError(f'unknown type: "{opts.type}": must be one of "{quoted}"')
    return run_inspect(cli, opts.args, opts.format, types, size=opts.size)
