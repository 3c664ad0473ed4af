"""JSON message streams (load, import, pull, push), shown as docker shows them.

The daemon answers these requests with one JSON object per message:
`{"stream": "Loaded image: busybox:local\\n"}`, `{"status": "sha256:..."}`,
`{"id": "...", "status": "Downloading", "progressDetail": {...}, "progress": "[=>  ]"}`,
or `{"errorDetail": {"message": "..."}, "error": "..."}`. This follows moby's
pkg/jsonmessage: a "stream" is printed as is, a "status" gets a newline, an
"id" is a prefix; progress bars only go to a terminal, where each id keeps
its own line and is redrawn in place; an error ends the stream and the
command with its message.
"""

from __future__ import annotations

from dockyard.cli.command import StatusError

TYPE_CHECKING = False  # typing costs ~10 ms at start-up; only type checkers need it
if TYPE_CHECKING:
    from typing import IO, Any, Iterator


def iter_messages(response: Any, chunk_size: int = 65536) -> Iterator[dict]:
    """The messages of a JSON-stream body, as they arrive."""
    from dockyard.client.api import json_messages
    try:
        yield from json_messages(response, chunk_size)
    except ValueError as e:
        raise StatusError(str(e)) from None


def _has_progress(msg: dict) -> bool:
    detail = msg.get("progressDetail")
    return bool(detail) and (detail.get("current", 0) > 0 or detail.get("total", 0) > 0)


def display(messages: Iterator[dict], out: IO[str], is_terminal: bool = False) -> None:
    """DisplayJSONMessagesStream: print each message; raise on an error message."""
    ids: dict[str, int] = {}
    for msg in messages:
        if msg.get("aux") is not None:
            continue
        diff = 0
        msg_id = msg.get("id") or ""
        if msg_id and ("progressDetail" in msg or msg.get("progress")):
            line = ids.get(msg_id)
            if line is None:
                line = len(ids)
                ids[msg_id] = line
                if is_terminal:
                    out.write("\n")
            diff = len(ids) - line
            if is_terminal and diff:
                out.write(f"\x1b[{diff}A")
        else:
            ids = {}
        _display_one(msg, out, is_terminal)
        if msg_id and is_terminal and diff:
            out.write(f"\x1b[{diff}B")
        out.flush()


def _display_one(msg: dict, out: IO[str], is_terminal: bool) -> None:
    detail = msg.get("errorDetail")
    if detail or msg.get("error"):
        message = (detail or {}).get("message") or msg.get("error") or ""
        raise StatusError(message, 1)
    endl = ""
    progress = msg.get("progressDetail") if "progressDetail" in msg else None
    if is_terminal and not msg.get("stream") and progress is not None:
        out.write("\x1b[2K\r")
        endl = "\r"
    elif progress is not None and _has_progress(msg):
        return  # no progress bars off a terminal
    if msg.get("id"):
        out.write(f"{msg['id']}: ")
    if msg.get("from"):
        out.write(f"(from {msg['from']}) ")
    status = msg.get("status") or ""
    if progress is not None and is_terminal:
        out.write(f"{status} {msg.get('progress') or ''}{endl}")
    elif msg.get("progress"):
        out.write(f"{status} {msg['progress']}{endl}")
    elif msg.get("stream"):
        out.write(f"{msg['stream']}{endl}")
    else:
        out.write(f"{status}{endl}\n")
