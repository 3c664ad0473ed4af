"""`events` (`system events`): the daemon's events as they happen, or between
--since and --until (docker/cli cli/command/system/events.go).

Each event is a line: its time in the local zone with nanoseconds
(2006-01-02T15:04:05.000000000Z07:00), type, action, actor ID, and the
actor's attributes sorted by name in parentheses. A --format runs over
events.Message, whose Go fields (Type, Action, Actor.ID, Actor.Attributes,
Scope, Time, TimeNano, and the old Status, ID, From) templates can reach;
`{{json .}}` prints the message as Go marshals it.
"""

from __future__ import annotations

import time

from dockyard.cli import formatting
from dockyard.cli.command import INSPECT_FORMAT_HELP, PROG, Cli, StatusError
from dockyard.cli.pflag import FlagSet

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

def _field(key: str, zero: Any):
    return property(lambda self: self.__dict__.get(key, zero))


# events.Message: JSON keys as the daemon sends them, Go field names for templates.
Message = type("*events.Message", (formatting.Struct,), {
    "__slots__": (), "Status": _field("status", ""), "ID": _field("id", ""),
    "From": _field("from", ""), "Scope": _field("scope", ""), "Time": _field("time", 0),
    "TimeNano": _field("timeNano", 0)})
Actor = formatting.struct_type("events.Actor")


def message(event: dict[str, Any]) -> Any:
    """events.Message as Go holds it: fields in struct order, the deprecated
    status/id/from left out when empty (omitempty)."""
    fields: dict[str, Any] = {}
    for key in ("status", "id", "from"):
        if event.get(key):
            fields[key] = event[key]
    actor = event.get("Actor") or {}
    attributes = actor.get("Attributes")
    fields.update({
        "Type": event.get("Type", ""), "Action": event.get("Action", ""),
        "Actor": Actor({"ID": actor.get("ID", ""),
                        "Attributes": dict(sorted(attributes.items()))
                        if attributes is not None else None}),
        "scope": event.get("scope", ""), "time": event.get("time", 0),
        "timeNano": event.get("timeNano", 0),
    })
    return Message(fields)


def _empty_message() -> Any:
    """&events.Message{}, which docker runs a --format over to check it; its nil
    Attributes map reads as empty, as in Go."""
    return message({"Actor": {"Attributes": {}}})


def timestamp(time_nano: int) -> str:
    """time.Unix(0, ns).Format("2006-01-02T15:04:05.000000000Z07:00"), local zone."""
    seconds, nanos = divmod(time_nano, 1_000_000_000)
    t = time.localtime(seconds)
    offset = t.tm_gmtoff
    zone = "Z" if offset == 0 else "%s%02d:%02d" % ("-" if offset < 0 else "+",
                                                       abs(offset) // 3600,
                                                       abs(offset) % 3600 // 60)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{nanos:09d}" + zone


def pretty(event: dict[str, Any]) -> str:
    """prettyPrintEvent."""
    out = ""
    if event.get("timeNano"):
        out = timestamp(event["timeNano"]) + " "
    elif event.get("time"):
        out = timestamp(event["time"] * 1_000_000_000) + " "
    actor = event.get("Actor") or {}
    out += f"{event.get('Type', '')} {event.get('Action', '')} {actor.get('ID', '')}"
    attributes = actor.get("Attributes") or {}
    if attributes:
        out += " (" + ", ".join(f"{k}={v}" for k, v in sorted(attributes.items())) + ")"
    return out + "\n"


def events(cli: Cli, argv: list[str], path: str) -> int:
    fs = FlagSet(path, "[OPTIONS]", "Get real time events from the server",
                 aliases=f"{PROG} system events, {PROG} events", args=(0, 0))
    fs.string("since", help="Show all events created since timestamp")
    fs.string("until", help="Stream events until this timestamp")
    from dockyard.cli.ps import add_filter_flag, filters_json
    add_filter_flag(fs)
    fs.string("format", help=INSPECT_FORMAT_HELP)
    o = fs.parse(argv)
    tmpl = None
    if o.format:
        from dockyard.cli import gotemplate
        text = "{{json .}}" if o.format == "json" else o.format
        try:
            tmpl = gotemplate.parse(text)
            tmpl.execute(_empty_message())
        except gotemplate.TemplateError as e:
            raise StatusError(f"Error parsing format: {e}", 64) from None
    from dockyard.cli import govalues
    query: dict[str, str] = {}
    for name in ("since", "until"):
        value = getattr(o, name)
        if value:
            try:
                query[name] = govalues.get_timestamp(value)
            except ValueError as e:
                raise StatusError(str(e)) from None
    filters = filters_json(o.filter or [])
    if filters:
        query["filters"] = filters
    from dockyard.cli import gotemplate
    for event in cli.client.stream_json("GET", "/events", query=query or None):
        if tmpl is None:
            cli.out.write(pretty(event))
        else:
            try:
                cli.out.write(tmpl.execute(message(event)))
            except gotemplate.TemplateError as e:
                cli.out.write("\n")
                raise StatusError(str(e)) from None
            cli.out.write("\n")
        cli.out.flush()
    return 0
