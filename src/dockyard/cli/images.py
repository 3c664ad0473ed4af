"""Image commands: images (image ls), history, tag, rmi, load, save, import,
image inspect, image prune — docker's flags, output and exit codes
(docker/cli cli/command/image/*.go).
"""

from __future__ import annotations

import json
import os
import sys

from dockyard.cli import formatting
from dockyard.cli.command import (
    FORMAT_HELP,
    INSPECT_FORMAT_HELP,
    PROG,
    Cli,
    Parser,
    StatusError,
    go_path_error,
    require_api,
    binary_stdin,
    stream_is_terminal,
    write_listing,
)

# `dockyard images ls` finds nothing and was probably meant as `image ls`.
_IMAGE_SUBCOMMANDS = {"build", "history", "import", "inspect", "list", "load", "ls", "prune",
                      "pull", "push", "rm", "save", "tag"}


def parse_filters(values: list[str] | None, parser: Parser | None = None,
                  flag: str = "-f, --filter") -> dict[str, list[str]]:
    """`-f key=value` flags as docker's FilterOpt reads them: the key lower-cased,
    both sides trimmed, a value given twice counted once."""
    filters: dict[str, list[str]] = {}
    for value in values or []:
        if value == "":
            continue
        if "=" not in value:
            message = (f'invalid argument "{value}" for "{flag}" flag: '
                       "bad format of filter (expected name=value)")
            raise parser.usage_error(message) if parser else StatusError(message, 125)
        key, _, val = value.partition("=")
        vals = filters.setdefault(key.strip().lower(), [])
        if val.strip() not in vals:
            vals.append(val.strip())
    return filters


def filters_param(filters: dict[str, list[str]]) -> str:
    """The `filters` query parameter: {"key": ["value", ...]}."""
    return json.dumps(filters, separators=(",", ":"))


# --- images / image ls ----------------------------------------------------------


def list_images(cli: Cli, argv: list[str], path: str) -> int:
    p = Parser(path, "[OPTIONS] [REPOSITORY[:TAG]]", "List images",
               aliases=f"{PROG} image ls, {PROG} image list, {PROG} images", args=(0, 1))
    p.flag("-a", "--all", help="Show all images (default hides intermediate images)")
    p.flag("--digests", help="Show digests")
    p.option("-f", "--filter", metavar="filter", action="append",
             help="Filter output based on conditions provided")
    p.option("--format", help=FORMAT_HELP, default="")
    p.flag("--no-trunc", help="Don't truncate output")
    p.flag("-q", "--quiet", help="Only show image IDs")
    p.flag("--tree", help="List multi-platform images as a tree (EXPERIMENTAL)", hidden=True)
    opts = p.parse(argv)
    if opts.tree:
        require_api(cli, "--tree", "1.47")
        raise StatusError(f"--tree is not supported by {PROG}")
    filters = parse_filters(opts.filter, p)
    match = opts.args[0] if opts.args else ""
    if match and match not in filters.setdefault("reference", []):
        filters["reference"].append(match)
    filters = {k: v for k, v in filters.items() if v}
    query = {}
    if opts.all:
        query["all"] = "1"
    if filters:
        query["filters"] = filters_param(filters)
    images = cli.client.get("/images/json", query=query)

    fmt = formatting.image_format(opts.format, opts.quiet, opts.digests)
    rows = formatting.image_rows(images, trunc=not opts.no_trunc, digests=opts.digests,
                                 need_digest="{{.Digest}}" in fmt)
    write_listing(cli, fmt, rows, formatting.IMAGE_HEADER)
    if match and not images and path == f"{PROG} images" and match in _IMAGE_SUBCOMMANDS:
        cli.err.write(f'\nNo images found matching "{match}": '
                      f'did you mean "{PROG} image {match}"?\n')
    return 0


# --- history ----------------------------------------------------------------------


def history(cli: Cli, argv: list[str], path: str) -> int:
    p = Parser(path, "[OPTIONS] IMAGE", "Show the history of an image",
               aliases=f"{PROG} image history, {PROG} history", args=(1, 1))
    p.option("--format", help=FORMAT_HELP, default="")
    p.flag("-H", "--human", default=True, help="Print sizes and dates in human readable format")
    p.flag("--no-trunc", help="Don't truncate output")
    p.option("--platform", help='Show history for the given platform. Formatted as '
             '"os[/arch[/variant]]" (e.g., "linux/amd64")', hidden=True)
    p.flag("-q", "--quiet", help="Only show image IDs")
    opts = p.parse(argv)
    if opts.platform:
        require_api(cli, "--platform", "1.48")
    query = {"platform": _platform_json(opts.platform)} if opts.platform else None
    items = cli.client.get(f"/images/{opts.args[0]}/history", query=query)
    fmt = formatting.history_format(opts.format, opts.quiet, opts.human)
    rows = formatting.history_rows(items, trunc=not opts.no_trunc, human=opts.human)
    write_listing(cli, fmt, rows, formatting.HISTORY_HEADER)
    return 0


def _platform_json(platform: str) -> str:
    parts = platform.lower().split("/")
    doc = {"os": parts[0], "architecture": parts[1] if len(parts) > 1 else ""}
    if len(parts) > 2:
        doc["variant"] = parts[2]
    return json.dumps(doc, separators=(",", ":"))


# --- image inspect ----------------------------------------------------------------


def inspect_images(cli: Cli, argv: list[str], path: str) -> int:
    p = Parser(path, "[OPTIONS] IMAGE [IMAGE...]",
               "Display detailed information on one or more images", args=(1, None))
    p.option("-f", "--format", help=INSPECT_FORMAT_HELP, default="")
    p.option("--platform", help="Inspect a specific platform of the multi-platform image.",
             hidden=True)
    opts = p.parse(argv)
    if opts.platform:
        require_api(cli, "--platform", "1.49")
    from dockyard.cli import inspect
    return inspect.run_inspect(cli, opts.args, opts.format, [inspect.TYPES["image"]])


# --- tag ----------------------------------------------------------------------------


def tag(cli: Cli, argv: list[str], path: str) -> int:
    p = Parser(path, "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
               "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
               aliases=f"{PROG} image tag, {PROG} tag", args=(2, 2), interspersed=False)
    opts = p.parse(argv)
    source, target = opts.args
    # The reference grammar is shared with the daemon, and pure; it is imported
    # only here, where a command needs docker's client-side checks and messages.
    from dockyard.image import reference
    try:
        reference.parse_any(source)
    except reference.ReferenceError as e:
        raise StatusError(f"Error parsing reference: {formatting.go_quote(source)} "
                          f"is not a valid repository/tag: {e}") from None
    try:
        ref = reference.parse_normalized(target)
    except reference.ReferenceError as e:
        raise StatusError(f"Error parsing reference: {formatting.go_quote(target)} "
                          f"is not a valid repository/tag: {e}") from None
    if ref.digest is not None:
        raise StatusError("refusing to create a tag with a digest reference")
    ref = ref.tagged_or_latest()
    cli.client.request("POST", f"/images/{source}/tag",
                       query={"repo": ref.name, "tag": ref.tag}).read()
    return 0


# --- rmi / image rm -------------------------------------------------------------------


def remove(cli: Cli, argv: list[str], path: str) -> int:
    p = Parser(path, "[OPTIONS] IMAGE [IMAGE...]", "Remove one or more images",
               aliases=f"{PROG} image rm, {PROG} image remove, {PROG} rmi", args=(1, None))
    p.flag("-f", "--force", help="Force removal of the image")
    p.flag("--no-prune", help="Do not delete untagged parents")
    opts = p.parse(argv)
    from dockyard.client.api import APIError
    query = {}
    if opts.force:
        query["force"] = "1"
    if opts.no_prune:
        query["noprune"] = "1"
    errors: list[str] = []
    fatal = False
    for name in opts.args:
        try:
            deleted = cli.client.json("DELETE", f"/images/{name}", query=query) or []
        except APIError as e:
            fatal = fatal or e.status != 404
            errors.append(f"Error response from daemon: {e.message}")
            continue
        for item in deleted:
            if item.get("Deleted"):
                cli.out.write(f"Deleted: {item['Deleted']}\n")
            else:
                cli.out.write(f"Untagged: {item.get('Untagged', '')}\n")
    if errors:
        if not opts.force or fatal:
            raise StatusError("\n".join(errors))
        cli.err.write("\n".join(errors) + "\n")
    return 0


# --- image prune ------------------------------------------------------------------------

_PRUNE_ALL_WARNING = ("WARNING! This will remove all images without at least one container "
                      "associated to them.\nAre you sure you want to continue?")
_PRUNE_DANGLING_WARNING = ("WARNING! This will remove all dangling images.\n"
                           "Are you sure you want to continue?")


def confirm(cli: Cli, message: str) -> bool:
    """prompt.Confirm: ask on stdout, read one line from stdin, "y" means yes."""
    cli.out.write(message + " [y/N] ")
    cli.out.flush()
    line = cli.stdin.readline()
    return line.strip().lower() == "y"


def prune(cli: Cli, argv: list[str], path: str) -> int:
    p = Parser(path, "[OPTIONS]", "Remove unused images", args=(0, 0))
    p.flag("-a", "--all", help="Remove all unused images, not just dangling ones")
    p.option("--filter", metavar="filter", action="append",
             help='Provide filter values (e.g. "until=<timestamp>")')
    p.flag("-f", "--force", help="Do not prompt for confirmation")
    opts = p.parse(argv)
    filters = parse_filters(opts.filter, p, "--filter")
    filters.setdefault("dangling", []).append("false" if opts.all else "true")
    if not opts.force:
        if not confirm(cli, _PRUNE_ALL_WARNING if opts.all else _PRUNE_DANGLING_WARNING):
            return 0  # docker treats "no" as a cancellation: no message, status 0
    report = cli.client.post("/images/prune", query={"filters": filters_param(filters)})
    report = report or {}
    deleted = report.get("ImagesDeleted") or []
    reclaimed = 0
    if deleted:
        lines = ["Deleted Images:"]
        for item in deleted:
            if item.get("Untagged"):
                lines.append(f"untagged: {item['Untagged']}")
            else:
                lines.append(f"deleted: {item.get('Deleted', '')}")
        cli.out.write("\n".join(lines) + "\n\n")
        reclaimed = report.get("SpaceReclaimed") or 0
    cli.out.write(f"Total reclaimed space: {formatting.human_size(reclaimed)}\n")
    return 0


# --- load / save / import ------------------------------------------------------------------


def _open_input(filename: str):
    try:
        return open(filename, "rb")
    except OSError as e:
        raise StatusError(go_path_error(e)) from None


def _display_stream(cli: Cli, response) -> None:
    from dockyard.cli import jsonstream
    if response.getheader("Content-Type", "").startswith("application/json"):
        jsonstream.display(jsonstream.iter_messages(response), cli.out,
                           stream_is_terminal(cli.out))
    else:
        while chunk := response.read(65536):
            cli.out.write(chunk.decode(errors="replace"))


def load(cli: Cli, argv: list[str], path: str) -> int:
    p = Parser(path, "[OPTIONS]", "Load an image from a tar archive or STDIN",
               aliases=f"{PROG} image load, {PROG} load", args=(0, 0))
    p.option("-i", "--input", help="Read from tar archive file, instead of STDIN", default="")
    p.option("--platform", help='Load only the given platform variant. Formatted as '
             '"os[/arch[/variant]]" (e.g., "linux/amd64")', hidden=True)
    p.flag("-q", "--quiet", help="Suppress the load output")
    opts = p.parse(argv)
    if opts.platform:
        require_api(cli, "--platform", "1.48")
    if opts.input:
        source = _open_input(opts.input)
    else:
        if stream_is_terminal(cli.stdin):
            raise StatusError("requested load from stdin, but stdin is empty")
        source = binary_stdin(cli)
    quiet = opts.quiet or not stream_is_terminal(cli.out)
    query = {"quiet": "1" if quiet else "0"}
    if opts.platform:
        query["platform"] = _platform_json(opts.platform)
    try:
        response = cli.client.request("POST", "/images/load", query=query, body=source,
                                      headers={"Content-Type": "application/x-tar"})
        _display_stream(cli, response)
    finally:
        if opts.input:
            source.close()
    return 0


def save(cli: Cli, argv: list[str], path: str) -> int:
    p = Parser(path, "[OPTIONS] IMAGE [IMAGE...]",
               "Save one or more images to a tar archive (streamed to STDOUT by default)",
               aliases=f"{PROG} image save, {PROG} save", args=(1, None))
    p.option("-o", "--output", help="Write to a file, instead of STDOUT", default="")
    p.option("--platform", help='Save only the given platform variant. Formatted as '
             '"os[/arch[/variant]]" (e.g., "linux/amd64")', hidden=True)
    opts = p.parse(argv)
    if opts.platform:
        require_api(cli, "--platform", "1.48")
    if not opts.output and stream_is_terminal(cli.out):
        raise StatusError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    query: list[tuple[str, str]] = [("names", name) for name in opts.args]
    if opts.platform:
        query.append(("platform", _platform_json(opts.platform)))
    if not opts.output:
        response = cli.client.request("GET", "/images/get", query=query)
        cli.out.flush()
        out = getattr(cli.out, "buffer", None) or sys.stdout.buffer
        while chunk := response.read(1 << 20):
            out.write(chunk)
        out.flush()
        return 0
    check_destination(opts.output, "failed to save image")
    write_atomically(opts.output, lambda: cli.client.request("GET", "/images/get", query=query),
                     "failed to save image")
    return 0


def check_destination(output: str, what: str) -> None:
    problem = _destination_problem(output)
    if problem:
        raise StatusError(f"{what}: {problem}")


def write_atomically(output: str, open_response, what: str) -> None:
    """Like docker's atomic writer: a temporary file next to the target, renamed
    into place (mode 0600) only when the whole body of `open_response()` has arrived."""
    import tempfile
    directory = os.path.dirname(os.path.abspath(output))
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-" + os.path.basename(output))
    except OSError as e:
        raise StatusError(f"{what}: {go_path_error(e)}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            response = open_response()
            while chunk := response.read(1 << 20):
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, output)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _destination_problem(filename: str) -> str:
    """atomicwriter's validateDestination: why `filename` cannot be written, or ""."""
    import stat
    directory = os.path.dirname(filename)
    if directory not in ("", ".", ".."):
        try:
            st = os.stat(directory)
        except OSError as e:
            return f"invalid output path: {go_path_error(e, 'stat')}"
        if not stat.S_ISDIR(st.st_mode):
            return f"invalid output path: stat {directory}: not a directory"
    try:
        mode = os.lstat(filename).st_mode
    except FileNotFoundError:
        return ""
    except OSError as e:
        return f"failed to stat output path: {go_path_error(e, 'lstat')}"
    kinds = [(stat.S_ISREG, ""), (stat.S_ISDIR, "cannot write to a directory"),
             (stat.S_ISLNK, "cannot write to a symbolic link directly"),
             (stat.S_ISFIFO, "cannot write to a named pipe (FIFO)"),
             (stat.S_ISSOCK, "cannot write to a socket"),
             (stat.S_ISCHR, "cannot write to a character device file"),
             (stat.S_ISBLK, "cannot write to a block device file")]
    for test, problem in kinds:
        if test(mode):
            return problem
    return "unknown file mode"


def import_image(cli: Cli, argv: list[str], path: str) -> int:
    p = Parser(path, "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
               "Import the contents from a tarball to create a filesystem image",
               aliases=f"{PROG} image import, {PROG} import", args=(1, None))
    p.option("-c", "--change", metavar="list", action="append",
             help="Apply Dockerfile instruction to the created image")
    p.option("-m", "--message", help="Set commit message for imported image", default="")
    p.option("--platform", help="Set platform if server is multi-platform capable", default="")
    opts = p.parse(argv)
    source_name = opts.args[0]
    ref = opts.args[1] if len(opts.args) > 1 else ""
    if ref:
        from dockyard.image import reference
        try:
            reference.parse_normalized(ref)
        except reference.ReferenceError as e:
            raise StatusError(str(e)) from None
    body = None
    if source_name == "-":
        body = binary_stdin(cli)
        from_src = "-"
    elif source_name.startswith(("http://", "https://")):
        from_src = source_name
    else:
        body = _open_input(source_name)
        from_src = "-"
    query: list[tuple[str, str]] = [("fromSrc", from_src)]
    if ref:
        query.append(("repo", ref))
    if opts.message:
        query.append(("message", opts.message))
    if opts.platform:
        query.append(("platform", opts.platform.lower()))
    query += [("changes", change) for change in opts.change or []]
    try:
        response = cli.client.request("POST", "/images/create", query=query, body=body)
        _display_stream(cli, response)
    finally:
        if body is not None and source_name != "-":
            body.close()
    return 0
