"""`dockyard registry serve|gc`: the OCI registry server of dockyard.registry,
run in the foreground by the CLI (its flags are the server's own)."""

from __future__ import annotations

from dockyard.cli.command import Cli


def serve(cli: Cli, argv: list[str], path: str) -> int:
    from dockyard.registry.__main__ import main
    return main(["serve", *argv])


def gc(cli: Cli, argv: list[str], path: str) -> int:
    from dockyard.registry.__main__ import main
    return main(["gc", *argv])
