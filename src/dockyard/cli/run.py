"""`create`, `run` and `start`: making containers and running them attached,
step for step as the docker CLI does (cli/command/container/create.go,
run.go, start.go, hijack.go, tty.go, signals.go).

`run` without -d:

1. `POST /containers/create`; on "No such image" say so, ask the daemon to
   pull (`POST /images/create?fromImage=`) and create again;
2. `POST /containers/{id}/attach` upgraded to a raw stream; a thread copies
   stdin to it (and half-closes at EOF), another copies its output to
   stdout/stderr (frames, or raw bytes with a TTY);
3. `POST /containers/{id}/wait?condition=next-exit` (`removed` with --rm):
   the daemon sends its headers at once, and the body when the container
   exits, so nothing can be missed by starting only now;
4. `POST /containers/{id}/start`; with a TTY, send the terminal's size;
5. when the output ends, read the exit status and exit with it.

Exit statuses are docker's: 125 when the daemon refuses to create or start,
126 when the command cannot be run ("permission denied"), 127 when it is
not there ("executable file not found", "no such file or directory"), and
otherwise the container's own.
"""

from __future__ import annotations

import os

from dockyard.cli import runopts
from dockyard.cli.attach import (
    SignalProxy,
    Streamer,
    Waiter,
    detach_keys,
    is_terminal,
    monitor_tty_size,
    streamed_status,
)
from dockyard.cli.command import PROG, Cli, StatusError
from dockyard.cli.pflag import FlagSet

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from dockyard.cli.pflag import Values

USE = "[OPTIONS] IMAGE [COMMAND] [ARG...]"
PULL_OPTIONS = ("always", "missing", "never", "")


def with_help(message: str, command: str) -> str:
    """withHelp: "docker: <error>" and where to find help."""
    return f"{PROG}: {message}\n\nRun '{PROG} {command} --help' for more information"


def to_status_error(message: str) -> StatusError:
    """toStatusError: 127 for a command that is not there, 126 for one that cannot
    be executed, 125 for every other failure to create or start."""
    status = 125
    if ("executable file not found" in message or "no such file or directory" in message
            or "system cannot find the file specified" in message):
        status = 127
    elif "permission denied" in message or "is a directory" in message:
        status = 126
    return StatusError(with_help(message, "run"), status)


def _error_text(e: Exception) -> str:
    from dockyard.client.api import APIError
    if isinstance(e, APIError):
        return f"Error response from daemon: {e.message}"
    return str(e)


# --- create ------------------------------------------------------------------------------


def _parse_platform(platform: str) -> str:
    """containerd's platforms.Parse, normalized and joined as the engine client sends it."""
    arches = {"x86_64": "amd64", "x86-64": "amd64", "amd64": "amd64", "aarch64": "arm64",
              "arm64": "arm64", "armhf": "arm", "armel": "arm", "arm": "arm", "i386": "386",
              "386": "386", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}
    oses = {"linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "solaris", "illumos",
            "android", "ios", "aix", "dragonfly", "plan9", "js", "wasip1"}
    import re
    parts = platform.split("/")
    for part in parts:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", part):
            raise ValueError(f'"{part}" is an invalid component of "{platform}": platform '
                             'specifier component must match "^[A-Za-z0-9_.-]+$": '
                             "invalid argument")
    if len(parts) > 3:
        raise ValueError(f'"{platform}": cannot parse platform specifier: invalid argument')
    os_name = parts[0].lower()
    if len(parts) == 1:
        if os_name in oses:   # with the client's own architecture
            machine = os.uname().machine
            return f"{os_name}/{arches.get(machine, machine)}"
        if os_name in arches:
            return f"linux/{arches[os_name]}"
        raise ValueError(f'"{platform}": unknown operating system or architecture: '
                         "invalid argument")
    arch = parts[1].lower()
    variant = parts[2].lower() if len(parts) == 3 else ""
    if arch in ("armhf",):
        variant = variant or "v7"
    elif arch == "armel":
        variant = variant or "v6"
    elif arch in ("aarch64", "arm64") and variant in ("8", "v8"):
        variant = ""
    arch = arches.get(arch, arch)
    return "/".join(p for p in (os_name, arch, variant) if p)


def _pull(cli: Cli, image: str, platform: str, quiet: bool) -> None:
    """pullImage: POST /images/create?fromImage=NAME&tag=TAG, progress on stderr."""
    from dockyard.image import reference
    ref = reference.parse_normalized(image)
    tag = ref.digest or (ref.tag or "latest")
    query = [("fromImage", ref.name), ("tag", tag)]
    if platform:
        query.insert(1, ("platform", platform.lower()))
    response = cli.client.request("POST", "/images/create", query=query,
                                  headers={"X-Registry-Auth": ""})
    from dockyard.cli import jsonstream
    from dockyard.cli.command import stream_is_terminal
    messages = jsonstream.iter_messages(response)
    if quiet:
        for msg in messages:
            if msg.get("error") or msg.get("errorDetail"):
                raise StatusError((msg.get("errorDetail") or {}).get("message") or msg["error"])
        return
    jsonstream.display(messages, cli.err, stream_is_terminal(cli.err))


class _CidFile:
    """--cidfile: refused if it exists; removed again unless an ID was written."""

    def __init__(self, path: str):
        self.path = path
        self.file = None
        self.written = False
        if not path:
            return
        if os.path.exists(path):
            raise StatusError("container ID file found, make sure the other container isn't "
                              f"running or delete {path}")
        try:
            self.file = open(path, "w")
        except OSError as e:
            from dockyard.cli.command import go_path_error
            raise StatusError(f"failed to create the container ID file: {go_path_error(e)}") \
                from None

    def write(self, container_id: str) -> None:
        if self.file is not None:
            self.file.write(container_id)
            self.file.flush()
            self.written = True

    def close(self) -> None:
        if self.file is None:
            return
        self.file.close()
        if not self.written:
            try:
                os.remove(self.path)
            except OSError:
                pass


def create_container(cli: Cli, body: dict[str, Any], o: Values) -> str:
    """createContainer: create, pulling first if asked or if the image is missing;
    warnings to stderr; the new container's ID."""
    from dockyard.client.api import APIError
    from dockyard.image import reference
    cidfile = _CidFile(body["HostConfig"].get("ContainerIDFile", ""))
    try:
        image = body["Image"]
        try:
            parsed = reference.parse_any(image)
        except reference.ReferenceError as e:
            raise StatusError(str(e)) from None
        named = parsed.tagged_or_latest() if isinstance(parsed, reference.Reference) else None
        platform = ""
        if o.platform:
            try:
                platform = _parse_platform(o.platform)
            except ValueError as e:
                raise StatusError(f"error parsing specified platform: {e}") from None
        endpoints = body["NetworkingConfig"]["EndpointsConfig"]
        if any(ep.get("MacAddress") for ep in endpoints.values()):
            # The engine client refuses this below API 1.44, before asking.
            from dockyard.cli.command import require_api
            require_api(cli, "specify mac-address per network", "1.44")
        if o.use_api_socket:
            _mount_api_socket(cli, body)
        if o.pull == "always":
            _pull(cli, image, o.platform, o.quiet)
        query = []   # url.Values.Encode: sorted by key
        if o.name:
            query.append(("name", o.name))
        if platform:
            query.append(("platform", platform))
        try:
            response = cli.client.post("/containers/create", query=query or None, body=body)
        except APIError as e:
            if not (e.status == 404 and named is not None and o.pull in ("missing", "")):
                raise
            if not o.quiet:
                cli.err.write(f"Unable to find image '{named.familiar()}' locally\n")
                cli.err.flush()
            _pull(cli, image, o.platform, o.quiet)
            response = cli.client.post("/containers/create", query=query or None, body=body)
        warnings = list(response.get("Warnings") or [])
        for dns in body["HostConfig"].get("Dns") or []:
            import ipaddress
            try:
                if ipaddress.ip_address(dns).is_loopback:
                    warnings.append(f"Localhost DNS ({dns}) may fail in containers.")
                    break
            except ValueError:
                continue
        for w in warnings:
            cli.err.write(f"WARNING: {w}\n")
        container_id = response["Id"]
        cidfile.write(container_id)
        return container_id
    finally:
        cidfile.close()


def _mount_api_socket(cli: Cli, body: dict[str, Any]) -> None:
    host = cli.host_url
    if not host.startswith("unix://"):
        raise StatusError("flag --use-api-socket can only be used with unix sockets: docker "
                          f"endpoint {host} incompatible")
    mounts = body["HostConfig"].setdefault("Mounts", [])
    mounts.append({"Type": "bind", "Source": host[len("unix://"):],
                   "Target": "/var/run/docker.sock", "BindOptions": {}})


def _console_size(cli: Cli) -> tuple[int, int]:
    try:
        fd = cli.out.fileno()
        if os.isatty(fd):
            size = os.get_terminal_size(fd)
            return size.lines, size.columns
    except (AttributeError, OSError, ValueError):
        pass
    return 0, 0


def _flags(path: str, short: str, aliases: str, verb: str) -> FlagSet:
    fs = FlagSet(path, USE, short, aliases=aliases, args=(1, None), interspersed=False,
                 help_shorthand=False)
    if verb == "running":
        fs.bool("detach", "d", help="Run container in background and print container ID")
        fs.bool("sig-proxy", default=True, help="Proxy received signals to the process")
        fs.string("detach-keys", help="Override the key sequence for detaching a container")
    runopts.add_create_flags(fs, verb)
    runopts.add_container_flags(fs)
    return fs


def _body(cli: Cli, fs: FlagSet, argv: list[str], command: str) -> tuple[Values, dict]:
    o = fs.parse(argv)
    for flag, version in (("annotation", "1.43"), ("health-start-interval", "1.44")):
        if flag in o.changed:   # flags newer than API 1.41, checked as docker checks them
            from dockyard.cli.command import require_api
            require_api(cli, f"--{flag}", version)
    o.env = _env_with_proxies(cli, o.env or [])
    if o.pull not in PULL_OPTIONS:
        raise StatusError(with_help(f"invalid pull option: '{o.pull}': must be one of "
                                    '"always", "missing" or "never"', command), 125)
    try:
        body = runopts.build(o, o.args[0], o.args[1:], _console_size(cli))
    except runopts.OptionsError as e:
        raise StatusError(with_help(str(e), command), 125) from None
    return o, body


PROXY_VARIABLES = (("HTTP_PROXY", "httpProxy"), ("HTTPS_PROXY", "httpsProxy"),
                   ("NO_PROXY", "noProxy"), ("FTP_PROXY", "ftpProxy"), ("ALL_PROXY", "allProxy"))


def _env_with_proxies(cli: Cli, env: list[str]) -> list[str]:
    """As docker's ParseProxyConfig: the -e variables by name (the last value of a
    name wins), and the proxies of the client's config file ("proxies" in
    $DOCKER_CONFIG/config.json, for this daemon or "default") for those not set,
    in both upper and lower case."""
    variables: dict[str, str | None] = {}
    for item in env:
        key, eq, value = item.partition("=")
        variables[key] = value if eq else None
    from dockyard.cli import clientconfig
    proxies = clientconfig.load().get("proxies") or {}
    config = proxies.get(cli.host_url) if cli.host_url in proxies else proxies.get("default")
    for key, field in PROXY_VARIABLES:
        value = (config or {}).get(field) or ""
        if value:
            variables.setdefault(key, value)
            variables.setdefault(key.lower(), value)
    return [k if v is None else f"{k}={v}" for k, v in variables.items()]


def create(cli: Cli, argv: list[str], path: str) -> int:
    fs = _flags(path, "Create a new container",
                f"{PROG} container create, {PROG} create", "creating")
    o, body = _body(cli, fs, argv, "create")
    cli.out.write(create_container(cli, body, o) + "\n")
    return 0


# --- run -------------------------------------------------------------------------------------


def run(cli: Cli, argv: list[str], path: str) -> int:
    fs = _flags(path, "Create and run a new container from an image",
                f"{PROG} container run, {PROG} run", "running")
    o, body = _body(cli, fs, argv, "run")
    if not o.detach:
        if body["Tty"] and body["AttachStdin"] and not is_terminal(cli.stdin):
            raise StatusError("the input device is not a TTY")
    else:
        if o.attach:
            raise StatusError("conflicting options: cannot specify both --attach and --detach")
        body.update(AttachStdin=False, AttachStdout=False, AttachStderr=False, StdinOnce=False)
    from dockyard.client.api import APIError
    try:
        container_id = create_container(cli, body, o)
    except APIError as e:
        raise to_status_error(_error_text(e)) from None
    except StatusError as e:
        raise to_status_error(e.message) from None
    attach = body["AttachStdin"] or body["AttachStdout"] or body["AttachStderr"]
    proxy = SignalProxy(cli, container_id) if o.sig_proxy else None
    try:
        if not attach:
            cli.out.write(container_id + "\n")
            cli.out.flush()
        return _run_attached(cli, container_id, body, o, attach)
    finally:
        if proxy is not None:
            proxy.stop()


def _run_attached(cli: Cli, container_id: str, body: dict, o: Values, attach: bool) -> int:
    """runContainer after the create: attach, wait, start, and the exit status."""
    from dockyard.client.api import APIError
    streamer = None
    if attach:
        keys = detach_keys(o.detach_keys)
        streamer = Streamer.attach(cli, container_id, bool(body["Tty"]),
                                   stdin=body["AttachStdin"], stdout=body["AttachStdout"],
                                   stderr=body["AttachStderr"], err_to_out=bool(body["Tty"]),
                                   detach_keys=keys)
    try:   # whatever happens, the terminal is given back as it was
        if streamer is not None:
            streamer.start()
        try:
            waiter = Waiter(cli, container_id, removed=bool(o.rm))
        except APIError as e:
            raise to_status_error(_error_text(e)) from None
        try:
            cli.client.request("POST", f"/containers/{container_id}/start").read()
        except APIError as e:
            if streamer is not None:
                streamer.close()
            if o.rm:
                waiter.status()   # the daemon removes a --rm container that failed to start
            waiter.close()
            raise to_status_error(_error_text(e)) from None
        if streamer is None:
            waiter.close()
            return 0
        if body["Tty"] and is_terminal(cli.out):
            monitor_tty_size(cli, container_id)
        if body["AttachStdout"] or body["AttachStderr"]:
            streamer.wait_output()   # the output may still be coming when the exit is known
        if streamer.detached:
            waiter.close()
            return 0   # the user detached: the container runs on
        status = waiter.status()
    finally:
        if streamer is not None:
            streamer.close()
    if streamer.error is not None:
        raise StatusError(str(streamer.error))
    if status != 0:
        raise StatusError("", status)
    return 0


# --- start -----------------------------------------------------------------------------------


def start(cli: Cli, argv: list[str], path: str) -> int:
    fs = FlagSet(path, "[OPTIONS] CONTAINER [CONTAINER...]",
                 "Start one or more stopped containers",
                 aliases=f"{PROG} container start, {PROG} start", args=(1, None))
    fs.bool("attach", "a", help="Attach STDOUT/STDERR and forward signals")
    fs.bool("interactive", "i", help="Attach container's STDIN")
    fs.string("detach-keys", help="Override the key sequence for detaching a container")
    fs.string("checkpoint", help="Restore from this checkpoint")
    fs.string("checkpoint-dir", help="Use a custom checkpoint storage directory")
    o = fs.parse(argv)
    from dockyard.client.api import APIError
    if o.attach or o.interactive:
        if len(o.args) > 1:
            raise StatusError("you cannot start and attach multiple containers at once")
        return _start_attached(cli, o)
    if o.checkpoint:
        if len(o.args) > 1:
            raise StatusError("you cannot restore multiple containers at once")
        cli.client.request("POST", f"/containers/{o.args[0]}/start",
                           query={"checkpoint": o.checkpoint,
                                  "checkpoint-dir": o.checkpoint_dir or None}).read()
        return 0
    failed = []
    for name in o.args:
        try:
            cli.client.request("POST", f"/containers/{name}/start").read()
        except APIError as e:
            cli.err.write(_error_text(e) + "\n")
            failed.append(name)
            continue
        cli.out.write(name + "\n")
    if failed:
        raise StatusError(f"Error: failed to start containers: {', '.join(failed)}")
    return 0


def _start_attached(cli: Cli, o: Values) -> int:
    """RunStart with -a or -i: attach, wait, start, and the exit status."""
    from dockyard.client.api import APIError
    c = cli.client.get(f"/containers/{o.args[0]}/json")
    container_id = c["Id"]
    config = c.get("Config") or {}
    tty = bool(config.get("Tty"))
    with_stdin = bool(o.interactive and config.get("OpenStdin"))
    auto_remove = bool((c.get("HostConfig") or {}).get("AutoRemove"))
    proxy = SignalProxy(cli, container_id) if not tty else None
    streamer = None
    keys = detach_keys(o.detach_keys)
    try:
        streamer = Streamer.attach(cli, container_id, tty, stdin=with_stdin, detach_keys=keys)
        streamer.start()
        waiter = Waiter(cli, container_id, removed=auto_remove)
        try:
            cli.client.request("POST", f"/containers/{container_id}/start").read()
        except APIError:
            streamer.close()
            if auto_remove:
                waiter.status()   # the daemon removes it; docker waits for that
            waiter.close()
            raise
        if tty and is_terminal(cli.out):
            monitor_tty_size(cli, container_id)
        status = streamed_status(streamer, waiter)
        if status is None:
            return 0   # the user detached: the container runs on
    finally:
        if streamer is not None:
            streamer.close()
        if proxy is not None:
            proxy.stop()
    if status != 0:
        raise StatusError("", status)
    return 0
