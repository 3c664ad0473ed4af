"""The event log behind /events: what happened to which object, in order.

Services call `emit`; subscribers (open /events requests) get every event after
they subscribe; a bounded backlog answers `since`.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from typing import Any


class Events:
    def __init__(self, backlog: int = 1024):
        self._backlog: collections.deque[dict[str, Any]] = collections.deque(maxlen=backlog)
        self._subscribers: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = set()
        self._lock = threading.Lock()

    def emit(self, type_: str, action: str, actor_id: str, attributes: dict[str, str] | None = None) -> None:
        now = time.time_ns()
        event = {
            "status": action, "id": actor_id, "from": (attributes or {}).get("image", ""),
            "Type": type_, "Action": action,
            "Actor": {"ID": actor_id, "Attributes": dict(attributes or {})},
            "scope": "local", "time": now // 1_000_000_000, "timeNano": now,
        }
        if type_ != "container":
            del event["status"], event["id"], event["from"]
        with self._lock:
            self._backlog.append(event)
            subscribers = list(self._subscribers)
        for loop, queue in subscribers:
            loop.call_soon_threadsafe(queue.put_nowait, event)

    def backlog(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._backlog)

    def subscribe(self) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue()
        with self._lock:
            self._subscribers.add((asyncio.get_running_loop(), queue))
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        with self._lock:
            self._subscribers = {s for s in self._subscribers if s[1] is not queue}
