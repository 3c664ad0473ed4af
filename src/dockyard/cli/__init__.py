"""The `dockyard` command line: docker's commands, flags, output and exit codes.

Owns: parsing the command line (argparse, with pflag's conventions layered on
top), one module per command group (images, system, inspect), and the output:
tables, `--format` templates, human sizes and durations, JSON streams.
Must not import: api, daemon, or anything that only the daemon needs. The CLI
is a client: it talks to the engine only through `dockyard.client`, so it
works against any Docker-compatible engine. It also has to start fast, so
`main` imports a command's module only when that command runs, and nothing
here imports aiohttp or other heavy modules at import time.
"""
