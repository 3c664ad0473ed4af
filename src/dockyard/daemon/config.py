"""dockyardd's configuration: flags, and the JSON file in daemon.json's shape.

As dockerd, a setting may come from a flag or from the file but not from both:
that is refused at start, so nobody wonders which one won.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field

DEFAULT_HOST = "unix:///run/dockyard/dockyard.sock"
DEFAULT_DATA_ROOT = "/var/lib/dockyard"
DEFAULT_EXEC_ROOT = "/run/dockyard"

# flag dest -> key in the config file
FILE_KEYS = {
    "hosts": "hosts", "data_root": "data-root", "exec_root": "exec-root",
    "pidfile": "pidfile", "debug": "debug", "log_level": "log-level", "labels": "labels",
    "default_runtime": "default-runtime", "runtimes": "runtimes",
}


class ConfigError(Exception):
    pass


@dataclass
class Config:
    hosts: list[str] = field(default_factory=lambda: [DEFAULT_HOST])
    data_root: str = DEFAULT_DATA_ROOT
    exec_root: str = DEFAULT_EXEC_ROOT
    pidfile: str | None = None
    debug: bool = False
    log_level: str = "info"
    labels: list[str] = field(default_factory=list)
    default_runtime: str = "dockyard"
    runtimes: dict = field(default_factory=dict)  # name -> {"path": ...}, as daemon.json

    @property
    def pidfile_path(self) -> str:
        return self.pidfile or f"{self.exec_root}/dockyardd.pid"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dockyardd", description="A self-sufficient runtime for containers")
    # Defaults are None so that we can tell a flag that was given from one that was not.
    p.add_argument("-H", "--host", dest="hosts", action="append", metavar="HOST",
                   help=f"daemon socket(s) to connect to (default {DEFAULT_HOST})")
    p.add_argument("--data-root", dest="data_root", help=f"root of persistent state (default {DEFAULT_DATA_ROOT})")
    p.add_argument("--exec-root", dest="exec_root", help=f"root of execution state (default {DEFAULT_EXEC_ROOT})")
    p.add_argument("-p", "--pidfile", dest="pidfile", help="path to use for the daemon PID file")
    p.add_argument("--config-file", dest="config_file", help="daemon configuration file (JSON)")
    p.add_argument("-D", "--debug", dest="debug", action="store_true", default=None, help="enable debug mode")
    p.add_argument("-l", "--log-level", dest="log_level",
                   choices=["debug", "info", "warn", "error", "fatal"], help="logging level (default info)")
    p.add_argument("--label", dest="labels", action="append", help="set key=value labels on the daemon")
    p.add_argument("--default-runtime", dest="default_runtime",
                   help="default OCI runtime for containers (default dockyard)")
    p.add_argument("--add-runtime", dest="runtimes", action="append", metavar="NAME=PATH",
                   help="register an additional OCI runtime")
    p.add_argument("-v", "--version", action="store_true", help="print version information and quit")
    return p


def load(argv: list[str] | None = None) -> tuple[Config, argparse.Namespace]:
    args = parser().parse_args(argv)
    from_file: dict = {}
    if args.config_file:
        try:
            with open(args.config_file) as f:
                from_file = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"unable to configure the daemon with file {args.config_file}: {e}") from e
        unknown = set(from_file) - set(FILE_KEYS.values())
        if unknown:
            raise ConfigError("the following directives don't match any configuration option: "
                              + ", ".join(sorted(unknown)))
    config = Config()
    both = []
    for dest, key in FILE_KEYS.items():
        flag_value = getattr(args, dest)
        if flag_value is not None and key in from_file:
            both.append(f"{key}: (from flag: {flag_value}, from file: {from_file[key]})")
        value = flag_value if flag_value is not None else from_file.get(key)
        if value is not None:
            setattr(config, dest, value)
    if both:
        raise ConfigError("the following directives are specified both as a flag and in the "
                          "configuration file: " + ", ".join(both))
    if isinstance(config.runtimes, list):  # from --add-runtime name=path
        pairs = [r.partition("=") for r in config.runtimes]
        bad = [n for n, sep, path in pairs if not sep or not n or not path]
        if bad:
            raise ConfigError("invalid --add-runtime: use name=path")
        config.runtimes = {n: {"path": path} for n, _, path in pairs}
    if config.debug:
        config.log_level = "debug"
    return config, args
