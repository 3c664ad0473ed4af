"""`dockyard build`: send a build context to the daemon's classic builder
and show its progress (docker/cli cli/command/image/build.go, legacy path).

The context is archived here, as the docker CLI does it: the files under
PATH that .dockerignore does not exclude (the Dockerfile and .dockerignore
always go, the daemon needs them), names relative without "./", owners 0:0.
The archive is written into a pipe by a thread while the request streams
it, so a large context is never held in memory. A Dockerfile outside the
context, or given as `-f -`, is added to the archive under a name of its
own that a generated .dockerignore entry keeps out of COPY. `PATH` "-"
reads the context from stdin: a tar (possibly compressed), or a lone
Dockerfile.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import stat
import sys
import tarfile
import threading
import time
from typing import IO, BinaryIO, Callable

from dockyard.cli.command import PROG, Cli, StatusError, binary_stdin
from dockyard.cli.pflag import FlagSet

_TAR_MAGIC_OFFSET = 257


def build(cli: Cli, argv: list[str], path: str) -> int:
    fs = FlagSet(path, "[OPTIONS] PATH | URL | -", "Build an image from a Dockerfile",
                 aliases=f"{PROG} image build, {PROG} build, {PROG} builder build",
                 args=(1, 1))
    fs.list("add-host", help="Add a custom host-to-IP mapping (\"host:ip\")")
    fs.list("build-arg", help="Set build-time variables")
    fs.list("cache-from", help="Images to consider as cache sources")
    fs.string("file", "f", help="Name of the Dockerfile (Default is \"PATH/Dockerfile\")")
    fs.bool("force-rm", help="Always remove intermediate containers")
    fs.string("iidfile", help="Write the image ID to the file")
    fs.list("label", help="Set metadata for an image")
    fs.string("network", default="default",
              help="Set the networking mode for the RUN instructions during build")
    fs.bool("no-cache", help="Do not use cache when building the image")
    fs.bool("pull", help="Always attempt to pull a newer version of the image")
    fs.bool("quiet", "q", help="Suppress the build output and print image ID on success")
    fs.bool("rm", default=True, help="Remove intermediate containers after a successful build")
    fs.string("shm-size", help="Size of \"/dev/shm\"")
    fs.list("tag", "t", help="Name and optionally a tag in the \"name:tag\" format")
    fs.string("target", help="Set the target build stage to build.")
    fs.string("cgroup-parent", help="Set the parent cgroup for the \"RUN\" instructions "
              "during build")
    fs.string("cpu-period", help="Limit the CPU CFS (Completely Fair Scheduler) period")
    fs.string("cpu-quota", help="Limit the CPU CFS (Completely Fair Scheduler) quota")
    fs.string("cpu-shares", "c", help="CPU shares (relative weight)")
    fs.string("cpuset-cpus", help="CPUs in which to allow execution (0-3, 0,1)")
    fs.string("cpuset-mems", help="MEMs in which to allow execution (0-3, 0,1)")
    fs.string("memory", "m", help="Memory limit")
    fs.string("memory-swap", help="Swap limit equal to memory plus swap: -1 to enable "
              "unlimited swap")
    fs.list("ulimit", help="Ulimit options")
    o = fs.parse(argv)

    context = o.args[0]
    dockerfile = o.file or ""
    if dockerfile == "-" and context == "-":
        raise StatusError("invalid argument: can't use stdin for both build context and "
                          "dockerfile")
    remote = ""
    if context == "-":
        body = _stdin_context(cli, dockerfile)
        dockerfile = dockerfile or "Dockerfile"
    elif _is_remote(context):
        # (the daemon fetches it: a tarball, a Dockerfile, or a git repository)
        body, remote = None, context
    else:
        if not os.path.isdir(context):
            raise StatusError(f'unable to prepare context: path "{context}" not found')
        body, dockerfile = _dir_context(cli, context, dockerfile)

    query: list[tuple[str, str]] = [("dockerfile", dockerfile)]
    if remote:
        query.append(("remote", remote))
    query += [("t", t) for t in o.tag or []]
    if o.quiet:
        query.append(("q", "1"))
    if o.no_cache:
        query.append(("nocache", "1"))
    if not o.rm:
        query.append(("rm", "0"))
    if o.force_rm:
        query.append(("forcerm", "1"))
    if o.pull:
        query.append(("pull", "1"))
    if o.network and o.network != "default":
        query.append(("networkmode", o.network))
    if o.target:
        query.append(("target", o.target))
    if o.shm_size:
        from dockyard.cli.govalues import ram_in_bytes
        query.append(("shmsize", str(ram_in_bytes(o.shm_size))))
    query += [("extrahosts", h) for h in o.add_host or []]
    query += _resources(o)
    if o.build_arg:
        query.append(("buildargs", json.dumps(_build_args(o.build_arg))))
    if o.label:
        labels = dict(item.split("=", 1) if "=" in item else (item, "") for item in o.label)
        query.append(("labels", json.dumps(labels)))
    if o.cache_from:
        query.append(("cachefrom", json.dumps(o.cache_from)))
    query.append(("version", "1"))

    from dockyard.client.api import json_messages

    counted = _Counted(body) if body is not None else None
    response = cli.client.request("POST", "/build", query=query, body=counted,
                                  headers={"Content-Type": "application/x-tar"})
    if not o.quiet and counted is not None:
        from dockyard.cli.formatting import human_size
        cli.out.write(f"Sending build context to Docker daemon  {human_size(counted.total)}"
                      "\r\r\n")
    image_id = _show(json_messages(response), cli.out, bool(o.quiet))
    if o.quiet:
        cli.out.write(image_id + "\n")
    if o.iidfile:
        with open(o.iidfile, "w") as f:
            f.write(image_id)
    return 0


def _resources(o) -> list[tuple[str, str]]:
    """The RUN containers' limits, in the units the API takes."""
    from dockyard.cli.govalues import ram_in_bytes

    out = []
    for flag, name in (("cpu_period", "cpuperiod"), ("cpu_quota", "cpuquota"),
                       ("cpu_shares", "cpushares")):
        if getattr(o, flag):
            out.append((name, str(int(getattr(o, flag)))))
    if o.memory:
        out.append(("memory", str(ram_in_bytes(o.memory))))
    if o.memory_swap:
        out.append(("memswap", "-1" if o.memory_swap == "-1" else
                    str(ram_in_bytes(o.memory_swap))))
    for flag, name in (("cpuset_cpus", "cpusetcpus"), ("cpuset_mems", "cpusetmems"),
                       ("cgroup_parent", "cgroupparent")):
        if getattr(o, flag):
            out.append((name, getattr(o, flag)))
    if o.ulimit:
        limits = []
        for item in o.ulimit:
            name, _, values = item.partition("=")
            soft, _, hard = values.partition(":")
            limits.append({"Name": name, "Soft": int(soft), "Hard": int(hard or soft)})
        out.append(("ulimits", json.dumps(limits)))
    return out


def _is_remote(context: str) -> bool:
    """A URL or a git repository, as the docker CLI tells them from a path."""
    return context.startswith(("http://", "https://", "git://", "git@", "github.com/"))


def _build_args(items: list[str]) -> dict[str, str | None]:
    """KEY=value; a bare KEY takes the client's environment, else stays unset (null)."""
    out: dict[str, str | None] = {}
    for item in items:
        key, sep, value = item.partition("=")
        out[key] = value if sep else os.environ.get(key)
    return out


def _show(messages, out: IO[str], quiet: bool) -> str:
    """Print the daemon's messages as they come; the image ID built."""
    image_id = ""
    for msg in messages:
        detail = msg.get("errorDetail")
        if detail or msg.get("error"):
            raise StatusError((detail or {}).get("message") or msg.get("error") or "",
                              (detail or {}).get("code") or 1)
        aux = msg.get("aux")
        if isinstance(aux, dict) and aux.get("ID"):
            image_id = aux["ID"]
            continue
        text = msg.get("stream") or ""
        if quiet:
            if text.startswith("sha256:"):
                image_id = text.strip()
            continue
        out.write(text)
        out.flush()
    return image_id


# --- the context archive -----------------------------------------------------------

def _dir_context(cli: Cli, root: str, dockerfile: str) -> tuple[BinaryIO, str]:
    from dockyard.builder import dockerignore

    excludes = dockerignore.read_dockerignore(root)
    extra: dict[str, bytes] = {}
    name = dockerfile or "Dockerfile"
    outside = dockerfile == "-" or (
        dockerfile and not _inside(root, dockerfile if os.path.isabs(dockerfile)
                                   else os.path.join(os.getcwd(), dockerfile)))
    if outside:
        data = binary_stdin(cli).read() if dockerfile == "-" else open(dockerfile, "rb").read()
        name = ".dockerfile." + secrets.token_hex(10)
        extra[name] = data
        try:  # the context's own .dockerignore, with the Dockerfile's name added
            with open(os.path.join(root, ".dockerignore"), "rb") as f:
                ignore = f.read()
        except FileNotFoundError:
            ignore = b".dockerignore"
        extra[".dockerignore"] = ignore + b"\n" + name.encode() + b"\n"
    elif dockerfile:
        name = os.path.relpath(os.path.abspath(dockerfile), os.path.abspath(root))
    elif not os.path.exists(os.path.join(root, name)) and \
            os.path.exists(os.path.join(root, "dockerfile")):
        name = "dockerfile"
    excludes = dockerignore.trim_build_files_from_excludes(excludes, name, dockerfile == "-")
    paths = list(dockerignore.walk_context(root, excludes))

    def write(out: BinaryIO) -> None:
        tar = _TarStream(out)
        seen: dict[tuple[int, int], str] = {}
        for rel in paths:
            if rel not in extra:
                _add(tar, os.path.join(root, rel), rel, seen)
        for rel, data in extra.items():
            info = tarfile.TarInfo(rel)
            info.size, info.mode, info.mtime = len(data), 0o600, int(time.time())
            tar.add(info, io.BytesIO(data))
        tar.close()

    return _piped(write), name


def _inside(root: str, path: str) -> bool:
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
    return rel != ".." and not rel.startswith("../")


class _TarStream:
    """Tar entries written as Go's archive/tar writes them: no padding to a
    10 KiB record after the two end blocks (tarfile pads)."""

    def __init__(self, out: BinaryIO):
        self.out = out

    def add(self, info: tarfile.TarInfo, data: BinaryIO | None = None) -> None:
        self.out.write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        if data is not None and info.isreg() and info.size:
            left = info.size
            while left:
                chunk = data.read(min(left, 1 << 20)) or b"\0" * left  # (it shrank)
                self.out.write(chunk)
                left -= len(chunk)
            if info.size % tarfile.BLOCKSIZE:
                self.out.write(b"\0" * (tarfile.BLOCKSIZE - info.size % tarfile.BLOCKSIZE))

    def close(self) -> None:
        self.out.write(b"\0" * (2 * tarfile.BLOCKSIZE))


def _header(path: str, rel: str, st: os.stat_result) -> tarfile.TarInfo | None:
    """archive.FileInfoHeader as the docker CLI fills it: owners 0:0, no names."""
    info = tarfile.TarInfo(rel)
    info.mode, info.mtime = stat.S_IMODE(st.st_mode), int(st.st_mtime)
    if stat.S_ISREG(st.st_mode):
        info.size = st.st_size
    elif stat.S_ISDIR(st.st_mode):
        info.type, info.name = tarfile.DIRTYPE, rel + "/"
    elif stat.S_ISLNK(st.st_mode):
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    elif stat.S_ISFIFO(st.st_mode):
        info.type = tarfile.FIFOTYPE
    else:
        return None  # sockets are left out
    return info


def _add(tar: _TarStream, path: str, rel: str, seen: dict[tuple[int, int], str]) -> None:
    st = os.lstat(path)
    info = _header(path, rel, st)
    if info is None:
        return
    if info.isreg() and st.st_nlink > 1:
        first = seen.setdefault((st.st_dev, st.st_ino), rel)
        if first != rel:
            info.type, info.linkname, info.size = tarfile.LNKTYPE, first, 0
    if info.isreg():
        with open(path, "rb") as f:
            tar.add(info, f)
    else:
        tar.add(info)


def _piped(write: Callable[[BinaryIO], None]) -> BinaryIO:
    """A reader of what `write(out)` writes, from a thread."""
    rfd, wfd = os.pipe()

    def run() -> None:
        with os.fdopen(wfd, "wb", buffering=1 << 20) as out:
            try:
                write(out)
            except OSError as e:
                print(f"error archiving the build context: {e}", file=sys.stderr)

    threading.Thread(target=run, daemon=True).start()
    return os.fdopen(rfd, "rb", buffering=1 << 20)


def _stdin_context(cli: Cli, dockerfile: str) -> BinaryIO:
    """The context from stdin: a tar as it is; anything else is a Dockerfile,
    sent as a one-file context."""
    source = binary_stdin(cli)
    head = source.read(_TAR_MAGIC_OFFSET + 5)
    if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00" or \
            head[:4] == b"\x28\xb5\x2f\xfd" or head[_TAR_MAGIC_OFFSET:] == b"ustar":
        return _Prefixed(head, source)
    data = head + source.read()

    def write(out: BinaryIO) -> None:
        tar = _TarStream(out)
        info = tarfile.TarInfo(dockerfile or "Dockerfile")
        info.size, info.mode, info.mtime = len(data), 0o600, int(time.time())
        tar.add(info, io.BytesIO(data))
        tar.close()

    return _piped(write)


class _Counted(io.RawIOBase):
    """Counts what is read through it: the size of the context sent."""

    def __init__(self, source: BinaryIO):
        self._source, self.total = source, 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self._source.read(n)
        self.total += len(data)
        return data


class _Prefixed(io.RawIOBase):
    def __init__(self, head: bytes, rest: BinaryIO):
        self._head, self._rest = head, rest

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self._head:
            out, self._head = (self._head, b"") if n < 0 or n >= len(self._head) else \
                (self._head[:n], self._head[n:])
            return out
        return self._rest.read(n)


def prune(cli: Cli, argv: list[str], path: str) -> int:
    """The classic builder keeps no cache apart from its images, so there is
    never anything to reclaim here; the command answers as docker's does."""
    fs = FlagSet(path, "[OPTIONS]", "Remove build cache", args=(0, 0))
    fs.bool("all", "a", help="Remove all unused build cache, not just dangling ones")
    fs.list("filter", help="Provide filter values (e.g. \"until=24h\")")
    fs.bool("force", "f", help="Do not prompt for confirmation")
    fs.string("keep-storage", help="Amount of disk space to keep for cache")
    o = fs.parse(argv)
    if not o.force:
        from dockyard.cli.images import confirm
        what = "all build cache" if o.all else "all dangling build cache"
        if not confirm(cli, f"WARNING! This will remove {what}.\n"
                            "Are you sure you want to continue?"):
            return 0
    from dockyard.cli.formatting import human_size
    result = cli.client.post("/build/prune", query={"all": "1" if o.all else None}) or {}
    cli.out.write(f"Total reclaimed space: {human_size(result.get('SpaceReclaimed') or 0)}\n")
    return 0
