"""`version` and `info` (`system info`), laid out as docker lays them out
(docker/cli cli/command/system/version.go and info.go).

Both print the client's side first and the daemon's after it; when the daemon
cannot be reached the client's side is still printed, then the error.
"""

from __future__ import annotations

import os
import re
import sys

from dockyard.cli import formatting
from dockyard.cli.command import (
    INSPECT_FORMAT_HELP,
    PROG,
    Cli,
    Parser,
    StatusError,
    api_tuple,
)

TYPE_CHECKING = False  # typing costs ~10 ms at start-up; only type checkers need it
if TYPE_CHECKING:
    from typing import Any

DEFAULT_API_VERSION = "1.41"
CONTEXT = "default"

_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armv6l": "arm",
           "i686": "386", "i386": "386", "ppc64le": "ppc64le", "s390x": "s390x",
           "riscv64": "riscv64"}


def _arch() -> str:
    machine = os.uname().machine
    return _GOARCH.get(machine, machine)


def client_version() -> dict[str, Any]:
    """The client's half of `version`, with docker's keys where they mean the same."""
    from dockyard import __version__
    v = sys.version_info
    return {
        "Version": __version__,
        "ApiVersion": DEFAULT_API_VERSION,
        "DefaultAPIVersion": DEFAULT_API_VERSION,
        "PythonVersion": f"{v.major}.{v.minor}.{v.micro}",
        "Os": sys.platform if sys.platform != "linux2" else "linux",
        "Arch": _arch(),
        "Context": CONTEXT,
    }


def _parse_template(fmt: str, name: str = ""):
    from dockyard.cli import gotemplate
    try:
        return gotemplate.parse("{{json .}}" if fmt == "json" else fmt)
    except gotemplate.TemplateError as e:
        raise StatusError(f"template parsing error: {_named(str(e), name)}", 64) from None


def _named(message: str, name: str) -> str:
    """docker names the version template "version"; its errors say so."""
    if not name:
        return message
    message = message.replace("template: :", f"template: {name}:", 1)
    return message.replace('executing "" at', f'executing "{name}" at', 1)


# The Go types docker runs these templates over, so that a field that is not
# there fails the way it fails in docker ("can't evaluate field X in type Y").
_VersionInfo = formatting.struct_type("system.versionInfo")
_ClientVersion = formatting.struct_type("system.clientVersion", fields={"APIVersion": "ApiVersion"})
_ServerVersion = formatting.struct_type("*types.Version", fields={"APIVersion": "ApiVersion"})
_DockerInfo = formatting.struct_type("system.dockerInfo", fields={
    "HTTPProxy": "HttpProxy", "HTTPSProxy": "HttpsProxy", "CPUCfsPeriod": "CpuCfsPeriod",
    "CPUCfsQuota": "CpuCfsQuota"})
_ClientInfo = formatting.struct_type("*system.clientInfo", fields={"APIVersion": "ApiVersion"})


def _execute(tmpl, data, name: str = "") -> str:
    from dockyard.cli import gotemplate
    try:
        return tmpl.execute(data)
    except gotemplate.TemplateError as e:
        raise StatusError(_named(str(e), name)) from None


# --- version --------------------------------------------------------------------------


def _reformat_date(build_time: str) -> str:
    """RFC 3339 build times as Go's time.ANSIC ("Mon Jan  2 15:04:05 2006"); others as is."""
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)",
                     build_time or "")
    if not m:
        return build_time
    import datetime
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    t = datetime.datetime(y, mo, d, h, mi, s)
    return t.strftime("%a %b ") + f"{t.day:>2}" + t.strftime(" %H:%M:%S %Y")


def _server_version(server: dict[str, Any]) -> dict[str, Any]:
    """The daemon's /version as docker's runVersion completes it."""
    components = server.setdefault("Components", []) or []
    server["Components"] = components
    engine = next((c for c in components if c.get("Name") == "Engine"), None)
    if engine is not None:
        details = engine.setdefault("Details", {}) or {}
        if "BuildTime" in details:
            details["BuildTime"] = _reformat_date(details["BuildTime"])
    else:
        components.append({"Name": "Engine", "Version": server.get("Version", ""), "Details": {
            "ApiVersion": server.get("ApiVersion", ""),
            "MinAPIVersion": server.get("MinAPIVersion", ""),
            "GitCommit": server.get("GitCommit", ""),
            "GoVersion": server.get("GoVersion", ""),
            "Os": server.get("Os", ""),
            "Arch": server.get("Arch", ""),
            "BuildTime": _reformat_date(server.get("BuildTime", "")),
            "Experimental": "true" if server.get("Experimental") else "false",
        }})
    # types.Version leaves these out when they are empty
    for key in ("KernelVersion", "Experimental", "BuildTime"):
        if key in server and not server[key]:
            del server[key]
    return server


def version_text(client: dict[str, Any], server: dict[str, Any] | None) -> str:
    """docker's default version template, before the tabwriter."""
    api = client["ApiVersion"]
    downgraded = f" (downgraded from {client['DefaultAPIVersion']})" \
        if api != client["DefaultAPIVersion"] else ""
    lines = [
        "Client:",
        f" Version:\t{client['Version']}",
        f" API version:\t{api}{downgraded}",
        f" Python version:\t{client['PythonVersion']}",
        f" OS/Arch:\t{client['Os']}/{client['Arch']}",
        f" Context:\t{client['Context']}",
    ]
    if server is not None:
        platform = (server.get("Platform") or {}).get("Name", "")
        lines += ["", "Server:" + (f" {platform}" if platform else "")]
        for comp in server.get("Components") or []:
            details = comp.get("Details") or {}
            lines.append(f" {comp.get('Name', '')}:")
            if comp.get("Name") == "Engine":
                d = lambda k: details.get(k, "")  # noqa: E731
                lines += [
                    f"  Version:\t{comp.get('Version', '')}",
                    f"  API version:\t{d('ApiVersion')} (minimum version {d('MinAPIVersion')})",
                    f"  Go version:\t{d('GoVersion')}",
                    f"  Git commit:\t{d('GitCommit')}",
                    f"  Built:\t{d('BuildTime')}",
                    f"  OS/Arch:\t{d('Os')}/{d('Arch')}",
                    f"  Experimental:\t{d('Experimental')}",
                ]
            else:
                lines.append(f"  Version:\t{comp.get('Version', '')}")
                lines += [f"  {key}:\t{details[key]}" for key in sorted(details)]
    return "\n".join(lines)


def version(cli: Cli, argv: list[str], path: str) -> int:
    p = Parser(path, "[OPTIONS]", "Show the Docker version information", args=(0, 0))
    p.option("-f", "--format", help=INSPECT_FORMAT_HELP, default="")
    opts = p.parse(argv)
    from dockyard.client.api import APIError
    tmpl = _parse_template(opts.format, "version") if opts.format else None
    client = client_version()
    server = None
    failure: Exception | None = None
    try:
        server = _server_version(cli.client.get("/version") or {})
    except (APIError, ConnectionError) as e:
        failure = e
    if server is not None and api_tuple(server.get("ApiVersion", "")) < api_tuple(
            client["DefaultAPIVersion"]):
        client["ApiVersion"] = server.get("ApiVersion", "")
    from dockyard.cli.tabwriter import tabwrite
    if tmpl is None:
        text = version_text(client, server)
    else:
        try:
            data = _VersionInfo({"Client": _ClientVersion(client),
                                 "Server": _ServerVersion(server) if server is not None else None})
            text = _execute(tmpl, data, "version")
        except StatusError:
            cli.out.write("\n")  # docker ends the (partial) output with a newline anyway
            if failure is None:
                raise
            raise failure from None  # ...and reports the connection failure, not the template
    cli.out.write(tabwrite(text + "\n", minwidth=20, tabwidth=1, padding=1))
    if failure is not None:
        raise failure
    return 0


# --- info -----------------------------------------------------------------------------


def _go(value: Any) -> str:
    """A value as Go's fmt.Println prints it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "<nil>"
    return str(value)


class _Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def ln(self, *parts: Any) -> None:
        """fmt.Fprintln: operands joined by spaces."""
        self.lines.append(" ".join(_go(p) for p in parts))

    def nonempty(self, label: str, value: Any) -> None:
        """fprintlnNonEmpty."""
        if value:
            self.ln(label, value)


def _security_options(options: list[str]) -> list[tuple[str, list[tuple[str, str]]]]:
    """system.DecodeSecurityOptions: "name=seccomp,profile=default" -> (seccomp, [(profile, default)])."""
    decoded = []
    for opt in options:
        if "=" not in opt:  # the pre-1.33 form: just a name
            decoded.append((opt, []))
            continue
        name, kvs = "", []
        for field in opt.split(","):
            key, sep, value = field.partition("=")
            if not sep:
                raise ValueError(f"invalid security option {field!r}")
            if key == "name":
                name = value
            else:
                kvs.append((key, value))
        if not name:
            raise ValueError("invalid empty security option")
        decoded.append((name, kvs))
    return decoded


def info_text(client: dict[str, Any], info: dict[str, Any] | None, debug: bool,
              errors: list[str]) -> str:
    """docker's prettyPrintInfo: the stdout part; problems go to `errors`."""
    out = _Lines()
    out.ln("Client:")
    out.nonempty(" Version:   ", client.get("Version"))
    out.ln(" Context:   ", client.get("Context"))
    out.ln(" Debug Mode:", client.get("Debug"))
    out.ln()
    out.ln("Server:")
    if info is None:
        return "\n".join(out.lines) + "\n"
    i = info.get
    out.ln(" Containers:", i("Containers", 0))
    out.ln("  Running:", i("ContainersRunning", 0))
    out.ln("  Paused:", i("ContainersPaused", 0))
    out.ln("  Stopped:", i("ContainersStopped", 0))
    out.ln(" Images:", i("Images", 0))
    out.nonempty(" Server Version:", i("ServerVersion"))
    out.nonempty(" Storage Driver:", i("Driver"))
    for pair in i("DriverStatus") or []:
        out.lines.append(f"  {pair[0]}: {pair[1]}")
    for pair in i("SystemStatus") or []:
        out.lines.append(f" {pair[0]}: {pair[1]}")
    out.nonempty(" Logging Driver:", i("LoggingDriver"))
    out.nonempty(" Cgroup Driver:", i("CgroupDriver"))
    out.nonempty(" Cgroup Version:", i("CgroupVersion"))
    plugins = i("Plugins") or {}
    out.ln(" Plugins:")
    out.ln("  Volume:", " ".join(plugins.get("Volume") or []))
    out.ln("  Network:", " ".join(plugins.get("Network") or []))
    if plugins.get("Authorization"):
        out.ln("  Authorization:", " ".join(plugins["Authorization"]))
    out.ln("  Log:", " ".join(plugins.get("Log") or []))
    if i("CDISpecDirs"):
        out.ln(" CDI spec directories:")
        out.lines += [f"  {d}" for d in i("CDISpecDirs")]
    if i("DiscoveredDevices"):
        out.ln(" Discovered Devices:")
        out.lines += [f"  {d.get('Source', '')}: {d.get('ID', '')}"
                      for d in i("DiscoveredDevices")]
    swarm = i("Swarm") or {}
    out.ln(" Swarm:", swarm.get("LocalNodeState", ""))
    if swarm.get("LocalNodeState", "") not in ("inactive", "locked"):
        out.ln("  NodeID:", swarm.get("NodeID", ""))
        if swarm.get("Error"):
            out.ln("  Error:", swarm["Error"])
        out.ln("  Is Manager:", bool(swarm.get("ControlAvailable")))
        out.ln("  Node Address:", swarm.get("NodeAddr", ""))
    runtimes = i("Runtimes") or {}
    if runtimes:
        out.ln(" Runtimes:", " ".join(runtimes))
        out.ln(" Default Runtime:", i("DefaultRuntime", ""))
    if i("OSType") == "linux":
        out.ln(" Init Binary:", i("InitBinary", ""))
        out.ln(" containerd version:", (i("ContainerdCommit") or {}).get("ID", ""))
        out.ln(" runc version:", (i("RuncCommit") or {}).get("ID", ""))
        out.ln(" init version:", (i("InitCommit") or {}).get("ID", ""))
        if i("SecurityOptions"):
            try:
                decoded = _security_options(i("SecurityOptions"))
            except ValueError as e:
                errors.append(str(e))
            else:
                out.ln(" Security Options:")
                for name, kvs in decoded:
                    out.ln("  " + name)
                    for key, value in kvs:
                        if key == "profile":
                            out.ln("   Profile:", value)
    if i("OSType") == "windows":
        out.ln(" Default Isolation:", i("Isolation", ""))
    out.nonempty(" Kernel Version:", i("KernelVersion"))
    out.nonempty(" Operating System:", i("OperatingSystem"))
    out.nonempty(" OSType:", i("OSType"))
    out.nonempty(" Architecture:", i("Architecture"))
    out.ln(" CPUs:", i("NCPU", 0))
    out.ln(" Total Memory:", formatting.bytes_size(i("MemTotal", 0)))
    out.nonempty(" Name:", i("Name"))
    out.nonempty(" ID:", i("ID"))
    out.ln(" Docker Root Dir:", i("DockerRootDir", ""))
    out.ln(" Debug Mode:", bool(i("Debug")))
    if i("Debug") or debug:
        out.ln("  File Descriptors:", i("NFd", 0))
        out.ln("  Goroutines:", i("NGoroutines", 0))
        out.ln("  System Time:", i("SystemTime", ""))
        out.ln("  EventsListeners:", i("NEventsListener", 0))
    out.nonempty(" HTTP Proxy:", i("HttpProxy"))
    out.nonempty(" HTTPS Proxy:", i("HttpsProxy"))
    out.nonempty(" No Proxy:", i("NoProxy"))
    if i("Labels"):
        out.ln(" Labels:")
        out.lines += ["  " + label for label in i("Labels")]
    out.ln(" Experimental:", bool(i("ExperimentalBuild")))
    registry = i("RegistryConfig") or {}
    cidrs = registry.get("InsecureRegistryCIDRs") or []
    index_configs = registry.get("IndexConfigs") or {}
    if cidrs or index_configs:
        out.ln(" Insecure Registries:")
        out.lines += ["  " + c.get("Name", "") for c in index_configs.values()
                      if not c.get("Secure")]
        out.lines += ["  " + c for c in cidrs]
    if registry.get("Mirrors"):
        out.ln(" Registry Mirrors:")
        out.lines += ["  " + m for m in registry["Mirrors"]]
    out.ln(" Live Restore Enabled:", bool(i("LiveRestoreEnabled")))
    if i("ProductLicense"):
        out.ln(" Product License:", i("ProductLicense"))
    if i("DefaultAddressPools"):
        out.ln(" Default Address Pools:")
        out.lines += [f"   Base: {p.get('Base', '')}, Size: {p.get('Size', 0)}"
                      for p in i("DefaultAddressPools")]
    out.ln()
    return "\n".join(out.lines) + "\n"


_TOP_LEVEL_FIELD = re.compile(r"(?<![\w)\].$])\.([A-Za-z]\w*)")


def _needs_server(fmt: str) -> bool:
    """needsServerInfo: only a template that reads nothing but ClientInfo/ClientErrors
    can do without the daemon."""
    if fmt in ("", "json", "{{json .}}"):
        return True
    fields = _TOP_LEVEL_FIELD.findall(fmt)
    return not fields or any(f not in ("ClientInfo", "ClientErrors") for f in fields)


def info(cli: Cli, argv: list[str], path: str) -> int:
    p = Parser(path, "[OPTIONS]", "Display system-wide information",
               aliases=f"{PROG} system info, {PROG} info", args=(0, 0))
    p.option("-f", "--format", help=INSPECT_FORMAT_HELP, default="")
    opts = p.parse(argv)
    from dockyard.client.api import APIError
    tmpl = _parse_template(opts.format) if opts.format else None
    client = client_version()
    client_info = {"Debug": cli.debug, **{k: v for k, v in client.items() if k != "ApiVersion"},
                   "Plugins": [], "Warnings": None}
    server_info: dict[str, Any] | None = {}
    server_errors: list[str] = []
    connection_failure: Exception | None = None
    if _needs_server(opts.format):
        try:
            server_info = cli.client.get("/info") or {}
        except ConnectionError as e:
            connection_failure = e
            server_info = None if tmpl is None else {}
        except APIError as e:
            server_errors.append(f"Error response from daemon: {e.message}")
            server_info = None if tmpl is None else {}
            if tmpl is not None:
                cli.err.write(server_errors[-1] + "\n")

    if tmpl is None:
        client_info["ApiVersion"] = client["ApiVersion"]
        text = info_text(client_info, server_info, cli.debug, server_errors)
        cli.out.write(text)
        for warning in (server_info or {}).get("Warnings") or []:
            cli.err.write(warning + "\n")
        for e in server_errors:
            cli.err.write(f"ERROR: {e}\n")
        problems = [str(connection_failure)] if connection_failure else []
        if server_errors:
            problems.insert(0, "errors pretty printing info")
        if problems:
            raise StatusError("\n".join(problems))
        return 0

    data = dict(server_info or {})
    if server_errors:
        data["ServerErrors"] = server_errors
    data["ClientInfo"] = _ClientInfo(client_info)
    try:
        text = _execute(tmpl, _DockerInfo(data))
    except StatusError:
        cli.out.write("\n")
        if connection_failure is None:
            raise
        text = None  # docker runs it over zero values; what matters is the failure below
    if text is not None:
        cli.out.write(text + "\n")
    if connection_failure:
        raise StatusError(str(connection_failure))
    return 0
