"""`stats` (`container stats`): containers' resource use, live or once (docker/cli
cli/command/container/stats.go, stats_helpers.go, formatter_stats.go, 28.x).

    dockyard stats [OPTIONS] [CONTAINER...]

Each container gets its own stats request (stream=1, or stream=0 with
--no-stream, when the daemon primes the CPU figures with a second reading)
read by its own thread, which keeps the latest StatsEntry: CPU % from the
deltas between a frame and its precpu_stats, memory without the inactive file
cache (the daemon reports the whole usage; v1's total_inactive_file, v2's
inactive_file is subtracted here, as docker 20.10+ does), block I/O summed from
io_service_bytes_recursive. A container whose next frame is two seconds late
shows "--" until one comes.

Without names, the command follows the events: a started container joins the
table (a created one too with --all) and, without --all, one that dies leaves
it. The table is redrawn every half second; when streaming, each redraw moves
the cursor home, ends every line with erase-to-end-of-line and the screen with
erase-below - written as docker 28's CLI writes them, whether or not the output
is a terminal.
"""

from __future__ import annotations

import threading
import time

from dockyard.cli import formatting
from dockyard.cli.command import FORMAT_HELP, PROG, Cli, StatusError
from dockyard.cli.pflag import FlagSet

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Mapping

DEFAULT_TABLE = ("table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t"
                 "{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}")
HEADER = {
    "Container": "CONTAINER", "Name": "NAME", "ID": "CONTAINER ID", "CPUPerc": "CPU %",
    "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O",
    "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
}
NO_VALUE = "--"
TIMEOUT = 2.0          # seconds without a frame before a row shows "--"
REFRESH = 0.5          # seconds between redraws


# --- the figures (stats_helpers.go) -------------------------------------------------


def cpu_percent_unix(previous_cpu: int, previous_system: int, v: Mapping[str, Any]) -> float:
    """calculateCPUPercentUnix: the container's share of the host's CPU time
    between two readings, times the CPUs (100% = one CPU busy)."""
    cpu = v.get("cpu_stats") or {}
    usage = cpu.get("cpu_usage") or {}
    cpu_delta = float(usage.get("total_usage") or 0) - float(previous_cpu)
    system_delta = float(cpu.get("system_cpu_usage") or 0) - float(previous_system)
    online = float(cpu.get("online_cpus") or 0) or float(len(usage.get("percpu_usage") or []))
    if system_delta > 0.0 and cpu_delta > 0.0:
        return cpu_delta / system_delta * online * 100.0
    return 0.0


def block_io(blkio: Mapping[str, Any] | None) -> tuple[int, int]:
    """calculateBlockIO: bytes read and written, by the op's first letter."""
    read = write = 0
    for entry in (blkio or {}).get("io_service_bytes_recursive") or []:
        op = entry.get("op") or ""
        if op[:1] in ("r", "R"):
            read += entry.get("value") or 0
        elif op[:1] in ("w", "W"):
            write += entry.get("value") or 0
    return read, write


def network(networks: Mapping[str, Any] | None) -> tuple[float, float]:
    rx = tx = 0.0
    for n in (networks or {}).values():
        rx += n.get("rx_bytes") or 0
        tx += n.get("tx_bytes") or 0
    return rx, tx


def mem_usage_no_cache(mem: Mapping[str, Any]) -> float:
    """calculateMemUsageUnixNoCache: usage minus the inactive file cache
    (v1: total_inactive_file, v2: inactive_file), when that is smaller."""
    usage = mem.get("usage") or 0
    stats = mem.get("stats") or {}
    if "total_inactive_file" in stats and stats["total_inactive_file"] < usage:
        return float(usage - stats["total_inactive_file"])
    inactive = stats.get("inactive_file") or 0
    if inactive < usage:
        return float(usage - inactive)
    return float(usage)


def mem_percent(limit: float, used: float) -> float:
    return used / limit * 100.0 if limit else 0.0


def format_percentage(value: float) -> str:
    return "%.2f%%" % value


class Entry:
    """StatsEntry plus its error: one container's latest figures."""

    def __init__(self, container: str):
        self.container = container
        self.lock = threading.Lock()
        self.first = threading.Event()       # a first frame came, or its time ran out
        self.err: str | None = None
        self.invalid = False
        self._zero()
        self.name = self.id = ""

    def _zero(self) -> None:
        self.cpu_percentage = self.memory = self.memory_limit = self.memory_percentage = 0.0
        self.network_rx = self.network_tx = self.block_read = self.block_write = 0.0
        self.pids_current = 0

    def set_statistics(self, v: Mapping[str, Any]) -> None:
        """SetStatistics: every figure from one frame (and the row valid again)."""
        pre = v.get("precpu_stats") or {}
        mem_stats = v.get("memory_stats") or {}
        memory = mem_usage_no_cache(mem_stats)
        limit = float(mem_stats.get("limit") or 0)
        read, write = block_io(v.get("blkio_stats"))
        rx, tx = network(v.get("networks"))
        with self.lock:
            self.name, self.id = v.get("name") or "", v.get("id") or ""
            self.cpu_percentage = cpu_percent_unix(
                (pre.get("cpu_usage") or {}).get("total_usage") or 0,
                pre.get("system_cpu_usage") or 0, v)
            self.memory, self.memory_limit = memory, limit
            self.memory_percentage = mem_percent(limit, memory)
            self.network_rx, self.network_tx = rx, tx
            self.block_read, self.block_write = float(read), float(write)
            self.pids_current = (v.get("pids_stats") or {}).get("current") or 0
            self.invalid = False

    def set_error(self, err: str | None, reset: bool = False) -> None:
        with self.lock:
            self.err = err
            if reset:
                self._zero()
            if err is not None:
                self.invalid = True

    def row(self, trunc: bool) -> Any:
        with self.lock:
            return stats_row(self, trunc)


StatsRow = formatting.struct_type("*container.statsContext", formatting.Row)


def stats_row(e: Entry, trunc: bool) -> Any:
    """The fields of formatter_stats.go's statsContext for one entry."""
    invalid = e.invalid
    return StatsRow({
        "Container": e.container,
        "Name": e.name[1:] if len(e.name) > 1 else NO_VALUE,
        "ID": formatting.truncate_id(e.id) if trunc else e.id,
        "CPUPerc": NO_VALUE if invalid else format_percentage(e.cpu_percentage),
        "MemUsage": "-- / --" if invalid else
        f"{formatting.bytes_size(e.memory)} / {formatting.bytes_size(e.memory_limit)}",
        "MemPerc": NO_VALUE if invalid else format_percentage(e.memory_percentage),
        "NetIO": NO_VALUE if invalid else
        f"{formatting.human_size_with_precision(e.network_rx, 3)} / "
        f"{formatting.human_size_with_precision(e.network_tx, 3)}",
        "BlockIO": NO_VALUE if invalid else
        f"{formatting.human_size_with_precision(e.block_read, 3)} / "
        f"{formatting.human_size_with_precision(e.block_write, 3)}",
        "PIDs": NO_VALUE if invalid else str(e.pids_current),
    })


def stats_format(fmt: str) -> str:
    """NewStatsFormat: "table" is the default table; anything else as given."""
    return DEFAULT_TABLE if fmt == "table" else fmt


def redraw(text: str) -> str:
    """What docker 28 writes for one refresh of a live table: the cursor home,
    the table, then the same text again line by line with erase-to-end-of-line
    (it appends to the buffer it is splitting), and erase-below."""
    buf = "\033[H" + text
    buf += "".join(line + " \033[K\n" for line in buf.split("\n"))
    return buf + "\033[J"


# --- collecting -----------------------------------------------------------------------


_EOF = object()


def _api_error(e: BaseException) -> str:
    from dockyard.client.api import APIError
    if isinstance(e, APIError):
        return f"Error response from daemon: {e.message}"
    return str(e) or type(e).__name__


def collect(client, entry: Entry, stream: bool) -> None:
    """collect(): one container's stats request, its frames into `entry`. A
    frame that is TIMEOUT late zeroes the row and marks it "--" until the next."""
    import queue as queues

    from dockyard.client.api import json_messages
    try:
        response = client.request("GET", f"/containers/{entry.container}/stats",
                                  query={"stream": "1" if stream else "0"})
    except Exception as e:  # noqa: BLE001 - the error is the row's, shown at the end
        entry.set_error(_api_error(e))
        entry.first.set()
        return
    frames: queues.Queue = queues.Queue()

    def read() -> None:
        try:
            for frame in json_messages(response):
                frames.put(frame)
        except Exception as e:  # noqa: BLE001 - a broken stream ends like EOF
            frames.put(e)
        frames.put(_EOF)

    threading.Thread(target=read, daemon=True).start()
    while True:
        try:
            item = frames.get(timeout=TIMEOUT)
        except queues.Empty:
            entry.set_error("timeout waiting for stats", reset=True)
            entry.first.set()
            if not stream:
                return
            continue
        if item is _EOF:           # no more frames (the container is gone):
            time.sleep(TIMEOUT)    # the row goes to "--" when the next is late
            entry.set_error("timeout waiting for stats", reset=True)
            entry.first.set()
            return
        if isinstance(item, Exception):
            entry.set_error(str(item))
            continue
        entry.set_statistics(item)
        entry.first.set()
        if not stream:
            return


class Table:
    """The watched containers, in the order they joined."""

    def __init__(self, client, stream: bool):
        self.client = client
        self.stream = stream
        self.lock = threading.Lock()
        self.entries: list[Entry] = []

    def add(self, container: str) -> Entry | None:
        with self.lock:
            if any(e.container == container for e in self.entries):
                return None
            entry = Entry(container)
            self.entries.append(entry)
        threading.Thread(target=collect, args=(self.client, entry, self.stream),
                         daemon=True).start()
        return entry

    def remove(self, container: str) -> None:
        with self.lock:
            self.entries = [e for e in self.entries if e.container != container]

    def snapshot(self) -> list[Entry]:
        with self.lock:
            return list(self.entries)


class EventWatch:
    """monitorContainerEvents: containers joining and leaving the table."""

    def __init__(self, client, table: Table, all_: bool):
        self.client, self.table, self.all = client, table, all_
        self.started = threading.Event()
        self.error: str | None = None
        self.ended = threading.Event()

    def run(self) -> None:
        from dockyard.client.api import json_messages
        try:
            response = self.client.request(
                "GET", "/events", query={"filters": '{"type":{"container":true}}'})
        except Exception as e:  # noqa: BLE001 - reported by the command
            self.error = _api_error(e)
            self.started.set()
            self.ended.set()
            return
        self.started.set()
        try:
            for event in json_messages(response):
                action = event.get("Action") or event.get("status") or ""
                cid = ((event.get("Actor") or {}).get("ID") or event.get("id") or "")[:12]
                if action == "start" or (action == "create" and self.all):
                    self.table.add(cid)
                elif action == "die" and not self.all:
                    self.table.remove(cid)
        except Exception as e:  # noqa: BLE001 - the daemon went away mid-stream
            self.error = str(e)
        self.ended.set()


# --- the command ------------------------------------------------------------------------


def stats(cli: Cli, argv: list[str], path: str) -> int:
    fs = FlagSet(path, "[OPTIONS] [CONTAINER...]",
                 "Display a live stream of container(s) resource usage statistics",
                 aliases=f"{PROG} container stats, {PROG} stats")
    fs.bool("all", "a", help="Show all containers (default shows just running)")
    fs.bool("no-stream", help="Disable streaming stats and only pull the first result")
    fs.bool("no-trunc", help="Do not truncate output")
    fs.string("format", help=FORMAT_HELP)
    o = fs.parse(argv)
    stream = not o.no_stream
    table = Table(cli.client, stream)
    show_all = not o.args
    watch = None
    if show_all:
        watch = EventWatch(cli.client, table, o.all)
        threading.Thread(target=watch.run, daemon=True).start()
        watch.started.wait()
        query = {"all": "1"} if o.all else None
        for c in cli.client.get("/containers/json", query=query) or []:
            table.add(c["Id"][:12])
        for entry in table.snapshot():
            entry.first.wait()
    else:
        for name in o.args:
            table.add(name)
        entries = table.snapshot()
        for entry in entries:
            entry.first.wait()
        errors = [e.err for e in entries if e.err]
        if errors:
            raise StatusError("\n".join(errors))
    fmt = o.format
    if not fmt:
        from dockyard.cli import clientconfig
        fmt = clientconfig.load().get("statsFormat") or "table"
    fmt = stats_format(fmt)
    while True:
        time.sleep(REFRESH)
        rows = [e.row(not o.no_trunc) for e in table.snapshot()]
        try:
            text = formatting.render(fmt, rows, HEADER)
        except formatting.FormatError as e:
            raise StatusError(str(e)) from None
        cli.out.write(redraw(text) if stream else text)
        cli.out.flush()
        if not stream or (not table.snapshot() and not show_all):
            return 0
        if watch is not None and watch.ended.is_set():   # the daemon went away
            if watch.error:
                raise StatusError(watch.error)
            return 0
