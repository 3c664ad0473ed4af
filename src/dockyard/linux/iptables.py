"""Running iptables' own tools: iptables-restore, iptables-save and iptables -C.

The rules are written through the iptables programs, not through netlink,
because the host's firewall is shared: dockerd, firewalld, ufw and the
administrator all read and write it with these tools, and with the nf_tables
backend (iptables 1.8 "nf_tables") a rule stays readable by `iptables-save`
only if it was written in the form iptables-nft writes.

A change is one batch fed to `iptables-restore --noflush`. Starting iptables
costs milliseconds (it reads the whole table from the kernel before it can
change a rule), so one exec per batch instead of one per rule is most of the
cost of publishing ports. Each table of a batch (`*nat` … `COMMIT`) is also
all or nothing: its lines are committed together (one nf_tables transaction;
one table replace with the legacy backend), and a line that fails, such as
deleting a rule that is not there, makes iptables-restore report `line N
failed` and change nothing more. Tables committed before the failing one stay
changed.

In a batch with --noflush, `:CHAIN - [0:0]` creates a user chain, or empties
it if it exists; without --noflush the whole table would be replaced.

`-w` waits for the xtables lock that the legacy backend's tools share; the
nf_tables backend needs no lock (the kernel serialises transactions) and
accepts the flag. iptables-save takes no -w.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import dataclass, field

_TOOLS = {
    4: ("iptables", "iptables-restore", "iptables-save"),
    6: ("ip6tables", "ip6tables-restore", "ip6tables-save"),
}


class IptablesError(Exception):
    """An iptables tool failed; carries its command line, exit status and stderr.

    For a failed batch, `line` is the batch line iptables-restore named."""

    def __init__(self, argv: list[str], returncode: int, stderr: str, line: str = ""):
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr.strip()
        self.line = line
        where = f" (at {line!r})" if line else ""
        super().__init__(f"{' '.join(argv)}: exit status {returncode}: {self.stderr}{where}")


def restore(family: int, batch: str) -> None:
    """Apply a batch in iptables-restore's format, leaving all else as it is."""
    argv = [_TOOLS[family][1], "-w", "--noflush"]
    proc = subprocess.run(argv, input=batch, capture_output=True, text=True)
    if proc.returncode != 0:
        raise IptablesError(argv, proc.returncode, proc.stderr, _failed_line(proc.stderr, batch))


def save(family: int, table: str | None = None) -> str:
    """The ruleset as iptables-save prints it: every table, or only `table`."""
    argv = [_TOOLS[family][2]] + (["-t", table] if table else [])
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise IptablesError(argv, proc.returncode, proc.stderr)
    return proc.stdout


def check(family: int, table: str, chain: str, spec: str) -> bool:
    """Whether `chain` holds a rule like `spec` (iptables -C: matched by
    meaning, not text). A missing chain counts as no rule."""
    argv = [_TOOLS[family][0], "-w", "-t", table, "-C", chain, *shlex.split(spec)]
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode == 0:
        return True
    if proc.returncode == 1:  # "Bad rule (does a matching rule exist...)" or no such chain
        return False
    raise IptablesError(argv, proc.returncode, proc.stderr)


@dataclass
class Table:
    """One table of a saved ruleset: chain → policy ("-" for user chains),
    and the rules in order as (chain, spec) with spec as printed after
    `-A <chain> `."""
    chains: dict[str, str] = field(default_factory=dict)
    rules: list[tuple[str, str]] = field(default_factory=list)


def parse(saved: str) -> dict[str, Table]:
    """iptables-save's output → tables by name."""
    tables: dict[str, Table] = {}
    current = Table()
    for line in saved.splitlines():
        if line.startswith("*"):
            current = tables.setdefault(line[1:], Table())
        elif line.startswith(":"):
            name, policy, *_ = line[1:].split()
            current.chains[name] = policy
        elif line.startswith("-A "):
            chain, _, spec = line[3:].partition(" ")
            current.rules.append((chain, spec))
    return tables


def _failed_line(stderr: str, batch: str) -> str:
    m = re.search(r"line (\d+) failed", stderr)
    lines = batch.splitlines()
    if m and 0 < int(m.group(1)) <= len(lines):
        return lines[int(m.group(1)) - 1]
    return ""
