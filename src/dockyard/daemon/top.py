"""GET /containers/{id}/top: the host's `ps`, cut down to the container's processes
(moby's daemon/top_unix.go).

The processes are the ones in the container's cgroup (found from the record,
so a container taken back after a daemon restart is no different), execs
included. `ps` runs with the client's arguments (default `-ef`) plus `-q PIDS`;
options that refuse -q (`f`, a forest) get a second run without it. Of its
output the header is kept, and each row whose PID column is one of those
processes, with the thread rows ("-" as PID, from `-m`) that follow such a row.
The last column takes the rest of the line, spaces and all (the command).

Errors are dockerd's: 409 for a container not running or restarting, 500 with
ps's own first line of complaint ("ps: error: unsupported SysV option"), 500
for output without a PID column or a `-o x=PID` that would rename it.
"""

from __future__ import annotations

import asyncio
import re

from dockyard import errdefs

# ` o=PID...` with any name but "pid" would let a column of another meaning be
# taken for the PID one (dockerd's check, same expression).
_PID_RENAME = re.compile(r"\s+([^\s]*)=\s*(PID[^\s]*)")


def validate_ps_args(ps_args: str) -> None:
    for key, value in _PID_RENAME.findall(ps_args):
        if key != "pid":
            raise errdefs.System(f'specifying "{key}={value}" is not allowed')


def _fields(line: str) -> list[str]:
    """strings.FieldsFunc on ASCII whitespace only: a command's unicode spaces stay."""
    return [f for f in re.split(r"[\t\n\f\r ]+", line) if f]


def parse_ps_output(output: str, pids: set[int]) -> dict:
    """{"Titles": [...], "Processes": [[...], ...]}: the rows of `pids` (and their
    thread rows) out of ps's output."""
    lines = output.split("\n")
    titles = _fields(lines[0])
    if "PID" not in titles:
        raise errdefs.System("Couldn't find PID field in ps output")
    pid_index = titles.index("PID")
    processes: list[list[str]] = []
    in_container = False      # whether the last process row was one of ours
    for line in lines[1:]:
        if not line:
            continue
        fields = _fields(line)
        if len(fields) <= pid_index:
            continue
        value = fields[pid_index]
        if value == "-":                # a thread of the process above (ps -m)
            if in_container:
                processes.append(_row(fields, len(titles)))
            continue
        try:
            pid = int(value)
        except ValueError:
            raise errdefs.System(f"Unexpected pid '{value}': strconv.Atoi: parsing "
                                 f"\"{value}\": invalid syntax") from None
        in_container = pid in pids
        if in_container:
            processes.append(_row(fields, len(titles)))
    return {"Titles": titles, "Processes": processes}


def _row(fields: list[str], columns: int) -> list[str]:
    return fields[:columns - 1] + [" ".join(fields[columns - 1:])]


async def _ps(args: list[str]) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        "ps", *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode, out, err


async def top(containers, ref: str, ps_args: str) -> dict:
    """ContainerTop: ps over the container's processes; emits the "top" event."""
    from dockyard.daemon.stats import cgroup_path
    from dockyard.linux.cgroups import open_cgroup

    ps_args = ps_args or "-ef"
    validate_ps_args(ps_args)
    c = containers.get(ref)
    if not c.running:
        raise errdefs.Conflict(f"Container {c.id} is not running")
    if c.state.get("Restarting"):
        raise errdefs.Conflict(f"Container {c.id} is restarting, wait until the container "
                               "is running")
    path = cgroup_path(c)
    pids = await asyncio.to_thread(lambda: sorted(open_cgroup(path).pids()))
    args = ps_args.split(" ")       # as dockerd: a plain split, not shell words
    code, out, err = await _ps(args + ["-q" + ",".join(map(str, pids))])
    if code != 0:
        # some options (such as f) can't go with -q: run again without it
        code, out, err = await _ps(args)
        if code != 0:
            first = err.split(b"\n", 1)[0].decode(errors="replace")
            raise errdefs.System(f"ps: {first or f'exit status {code}'}")
    result = parse_ps_output(out.decode(errors="replace"), set(pids))
    containers.emit(c, "top")
    return result
