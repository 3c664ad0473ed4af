"""`dockyard cp`: files between a container and the local filesystem, as
`docker cp` copies them (docker/cli cli/command/container/cp.go with moby's
go-archive copy.go, whose rules decide where things land):

    cp CONTAINER:SRC DEST      GET the archive of SRC, unpack it at DEST
    cp SRC CONTAINER:DEST      HEAD the destination, tar SRC, PUT it there
    cp CONTAINER:SRC -         the archive as it comes, to stdout
    cp - CONTAINER:DEST        a tar from stdin, into the directory DEST

Where the copy lands (PrepareArchiveCopy), for a source named `src`:

    DEST is a directory                  DEST/src (the tar unpacked into DEST)
    DEST exists as a file, src a file    DEST, overwritten
    DEST exists as a file, src a dir     "cannot copy directory"
    DEST missing, src a dir              DEST, made from src (renamed)
    DEST missing, ends in "/", src file  "no such directory"
    DEST missing, src a file             DEST (renamed)

A source ending in "/." copies the directory's contents rather than the
directory. Symlinks are copied as links, except with -L, where a source that
is a link is replaced by its target (named as the link). A destination that
is a link is followed. -a keeps the source's owners: the daemon then makes
the files the container user's (copyUIDGID).

The tar work here is the client's: the standard library's tarfile reads and
writes the streams, and unpacking keeps every entry inside the destination
directory (no `..`, no writing through a symlink that leads out).
"""

from __future__ import annotations

import os
import stat
import sys

from dockyard.cli.command import PROG, Cli, StatusError, go_path_error
from dockyard.cli.pflag import FlagSet

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# Go's os.FileMode bits, as the daemon's path-stat header carries them.
MODE_DIR = 1 << 31
MODE_SYMLINK = 1 << 27
MODE_DEVICE = 1 << 26
MODE_IRREGULAR = 1 << 19
_CHUNK = 1 << 20

SHORT = ("Copy files/folders between a container and the local filesystem\n\n"
         "Use '-' as the source to read a tar archive from stdin\n"
         "and extract it to a directory destination in a container.\n"
         "Use '-' as the destination to stream a tar archive of a\n"
         "container source to stdout.")


class CopyError(Exception):
    """A failure docker's CLI reports with its bare message."""


# --- Go path rules (path/filepath, go-archive) -----------------------------------------------

def clean(path: str) -> str:
    """filepath.Clean."""
    if not path:
        return "."
    out = os.path.normpath(path)
    return "/" + out.lstrip("/") if out.startswith("//") else out


def base(path: str) -> str:
    """filepath.Base."""
    stripped = path.rstrip("/")
    if not stripped:
        return "/" if path else "."
    return stripped.rsplit("/", 1)[-1]


def has_trailing_separator(path: str) -> bool:
    return path.endswith("/")


def specifies_current_dir(path: str) -> bool:
    return base(path) == "."


def asserts_directory(path: str) -> bool:
    return has_trailing_separator(path) or specifies_current_dir(path)


def preserve_trailing_dot_or_separator(cleaned: str, original: str) -> str:
    if not specifies_current_dir(cleaned) and specifies_current_dir(original):
        if not has_trailing_separator(cleaned):
            cleaned += "/"
        cleaned += "."
    if not has_trailing_separator(cleaned) and has_trailing_separator(original):
        cleaned += "/"
    return cleaned


def split_path_dir_entry(path: str) -> tuple[str, str]:
    """go-archive's SplitPathDirEntry: (dir, base), a trailing "." kept."""
    cleaned = clean(path)
    if specifies_current_dir(path):
        cleaned += "/."
    return os.path.dirname(cleaned) or ".", base(cleaned)


def get_rebase_name(path: str, resolved: str) -> tuple[str, str]:
    rebase = ""
    if specifies_current_dir(path) and not specifies_current_dir(resolved):
        resolved += "/."
    if has_trailing_separator(path) and not has_trailing_separator(resolved):
        resolved += "/"
    if base(path) != base(resolved):
        rebase = base(path)
    return resolved, rebase


def split_cp_arg(arg: str) -> tuple[str, str]:
    """CONTAINER:PATH, or a local path (absolute, or starting with "." when it has a ":")."""
    if arg.startswith("/"):
        return "", arg
    container, sep, path = arg.partition(":")
    if not sep or container.startswith("."):
        return "", arg
    return container, path


def resolve_local_path(path: str) -> str:
    return preserve_trailing_dot_or_separator(os.path.abspath(path), path)


# --- the command ---------------------------------------------------------------------------

def cp(cli: Cli, argv: list[str], path: str) -> int:
    fs = FlagSet(path, f"[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\t{PROG} cp [OPTIONS] "
                 "SRC_PATH|- CONTAINER:DEST_PATH", SHORT,
                 aliases=f"{PROG} container cp, {PROG} cp", args=(2, 2))
    fs.bool("archive", "a", help="Archive mode (copy all uid/gid information)")
    fs.bool("follow-link", "L", help="Always follow symbol link in SRC_PATH")
    fs.bool("quiet", "q", help="Suppress progress output during copy. Progress output is "
            "automatically suppressed if no terminal is attached")
    o = fs.parse(argv)
    source, destination = o.args
    if not source:
        raise StatusError("source can not be empty")
    if not destination:
        raise StatusError("destination can not be empty")
    quiet = o.quiet if "quiet" in o.changed else not _is_terminal(cli.out)
    src_container, src_path = split_cp_arg(source)
    dst_container, dst_path = split_cp_arg(destination)
    try:
        if src_container and dst_container:
            raise CopyError("copying between containers is not supported")
        if src_container:
            return _from_container(cli, src_container, src_path, dst_path, o.follow_link, quiet)
        if dst_container:
            return _to_container(cli, dst_container, src_path, dst_path, o.follow_link,
                                 o.archive, quiet)
        raise CopyError("must specify at least one container source")
    except CopyError as e:
        raise StatusError(str(e)) from None
    except OSError as e:
        if e.filename is None:
            raise
        raise StatusError(go_path_error(e, "lstat")) from None


def _is_terminal(stream: Any) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _stat(cli: Cli, container: str, path: str) -> dict[str, Any]:
    """HEAD /containers/{id}/archive: the path's stat (APIError if missing)."""
    response = cli.client.request("HEAD", f"/containers/{container}/archive",
                                  query={"path": path})
    response.close()
    return _decode_stat(response.getheader("X-Docker-Container-Path-Stat") or "")


def _decode_stat(header: str) -> dict[str, Any]:
    import base64
    import json

    try:
        return json.loads(base64.b64decode(header)) if header else {}
    except ValueError:
        raise CopyError("unable to decode container path stat header") from None


def _summary(cli: Cli, size: int, dest: str) -> None:
    from dockyard.cli.formatting import human_size_with_precision
    cli.err.write(f"Successfully copied {human_size_with_precision(size, 3)} to {dest}\n")


# --- from a container -------------------------------------------------------------------------

def _from_container(cli: Cli, container: str, src: str, dst: str, follow: bool,
                    quiet: bool) -> int:
    from dockyard.client.api import APIError

    if dst != "-":
        dst = resolve_local_path(dst)
    _validate_output_path(dst)
    rebase = ""
    if follow:
        try:
            st = _stat(cli, container, src)
        except APIError:
            st = {}
        if st.get("mode", 0) & MODE_SYMLINK:
            target = st.get("linkTarget", "")
            if not target.startswith("/"):
                target = os.path.join(split_path_dir_entry(src)[0], target)
            src, rebase = get_rebase_name(src, target)
    response = cli.client.request("GET", f"/containers/{container}/archive", query={"path": src})
    try:
        if dst == "-":
            cli.out.flush()
            out = getattr(cli.out, "buffer", None) or sys.stdout.buffer
            while chunk := response.read1(_CHUNK):
                out.write(chunk)
            out.flush()
            return 0
        st = _decode_stat(response.getheader("X-Docker-Container-Path-Stat") or "")
        is_dir = bool(st.get("mode", 0) & MODE_DIR)
        counter = _Counting(response)
        rename = None
        if rebase:
            rename = (split_path_dir_entry(src)[1], rebase)
        _copy_to(counter, src, is_dir, rebase, dst, rename)
    finally:
        response.close()
    if not quiet:
        _summary(cli, counter.count, dst)
    return 0


class _Counting:
    """A reader that counts what passes (the summary's size)."""

    def __init__(self, f: Any):
        self.f, self.count = f, 0

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.count += len(data)
        return data


def _validate_output_path(path: str) -> None:
    """command.ValidateOutputPath."""
    directory = os.path.dirname(clean(path))
    if directory not in ("", "."):
        if not os.path.exists(directory):
            raise CopyError(f'invalid output path: directory "{directory}" does not exist')
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode):
        return
    problem = "got a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) \
        else "got an irregular file"
    raise CopyError(f'invalid output path: "{path}" must be a directory or a regular file: '
                    f"{problem}")


def _copy_to(content: Any, src_path: str, src_is_dir: bool, src_rebase: str, dst: str,
             pre_rename: tuple[str, str] | None) -> None:
    """go-archive's CopyTo: where to unpack, then unpack with no chown."""
    dst_exists, dst_is_dir, dst = _destination_info(dst)
    dst_dir, rename = prepare_archive_copy(src_path, src_is_dir, src_rebase, dst, dst_exists,
                                           dst_is_dir)
    renames = [r for r in (pre_rename, rename) if r is not None]
    unpack(content, dst_dir, renames)


def _destination_info(path: str) -> tuple[bool, bool, str]:
    """CopyInfoDestinationPath: (exists, is a dir, the path with links followed)."""
    original = path
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    n = 0
    while st is not None and stat.S_ISLNK(st.st_mode):
        if n > 10:
            raise CopyError("too many symlinks in " + original)
        n += 1
        target = os.readlink(path)
        if not target.startswith("/"):
            target = os.path.join(split_path_dir_entry(path)[0], target)
        path = target
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            st = None
    if st is None:
        parent = split_path_dir_entry(path)[0]
        try:
            parent_st = os.stat(parent)
        except OSError as e:
            raise CopyError(go_path_error(e, "stat")) from None
        if not stat.S_ISDIR(parent_st.st_mode):
            raise CopyError("not a directory")
        return False, False, path
    return True, stat.S_ISDIR(st.st_mode), path


def prepare_archive_copy(src_path: str, src_is_dir: bool, src_rebase: str, dst_path: str,
                         dst_exists: bool, dst_is_dir: bool
                         ) -> tuple[str, tuple[str, str] | None]:
    """go-archive's PrepareArchiveCopy: the directory to unpack in, and the
    (old, new) rename of the archive's first path element, if any."""
    dst_dir, dst_base = split_path_dir_entry(dst_path)
    src_base = src_rebase or split_path_dir_entry(src_path)[1]
    if dst_exists and dst_is_dir:
        return dst_path, None
    if dst_exists and src_is_dir:
        raise CopyError("cannot copy directory")
    if not dst_exists and not src_is_dir and asserts_directory(dst_path):
        raise CopyError("no such directory")
    return dst_dir, (src_base, dst_base)


def rebase_name(name: str, old: str, new: str) -> str:
    """RebaseArchiveEntries: the first `old` in the name becomes `new`."""
    return name.replace("" if old == "/" else old, new, 1)


# --- unpacking locally ---------------------------------------------------------------------------

def unpack(stream: Any, dest: str, renames: list[tuple[str, str]]) -> None:
    """go-archive's Untar with NoLchown and NoOverwriteDirNonDir, every entry
    kept inside `dest`."""
    import posixpath
    import tarfile

    real_dest = os.path.realpath(dest)
    dirs: list[tuple[str, tarfile.TarInfo]] = []
    try:
        with tarfile.open(fileobj=stream, mode="r|", bufsize=_CHUNK) as tar:
            for m in tar:
                name, linkname = m.name, m.linkname
                for old, new in renames:
                    name = rebase_name(name, old, new)
                    if m.islnk():
                        linkname = rebase_name(linkname, old, new)
                name = posixpath.normpath(name.lstrip("/") or ".")
                if name == ".":
                    continue
                if name == ".." or name.startswith("../"):
                    raise CopyError(f'invalid entry name "{m.name}"')
                target = os.path.join(dest, name)
                _inside(real_dest, os.path.dirname(target), m.name)
                _make_parents(dest, name)
                _replace(target, m, name, dest)
                _create(tar, m, target, linkname, real_dest, dest)
                if m.isdir():
                    dirs.append((target, m))
    except (tarfile.TarError, EOFError) as e:
        raise CopyError(str(e)) from None
    for target, m in dirs:
        os.utime(target, (m.mtime, m.mtime), follow_symlinks=False)


def _inside(real_dest: str, path: str, name: str) -> None:
    real = os.path.realpath(path)
    if real != real_dest and not real.startswith(real_dest.rstrip("/") + "/"):
        raise CopyError(f'invalid entry name "{name}": it would be written outside the '
                        "destination")


def _make_parents(dest: str, name: str) -> None:
    parent = os.path.dirname(os.path.join(dest, name))
    if not os.path.isdir(parent):
        os.makedirs(parent, 0o755, exist_ok=True)


def _replace(target: str, m: Any, name: str, dest: str) -> None:
    """Unpack's rule for what is already there: directories merge, anything
    else is replaced, but never a directory by a non-directory or the reverse."""
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return
    is_dir = stat.S_ISDIR(st.st_mode)
    if is_dir and not m.isdir():
        raise CopyError(f'cannot overwrite directory "{name}" with non-directory "{dest}"')
    if not is_dir and m.isdir():
        raise CopyError(f'cannot overwrite non-directory "{name}" with directory "{dest}"')
    if not is_dir:
        os.unlink(target)


def _create(tar: Any, m: Any, target: str, linkname: str, real_dest: str, dest: str) -> None:
    perm = m.mode & 0o7777
    if m.isdir():
        if not os.path.isdir(target):
            os.mkdir(target, 0o700)
    elif m.isreg():
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            src = tar.extractfile(m)
            while chunk := src.read(_CHUNK):
                out.write(chunk)
    elif m.issym():
        os.symlink(m.linkname, target)
    elif m.islnk():
        source = os.path.join(dest, os.path.normpath(linkname.lstrip("/")))
        _inside(real_dest, os.path.dirname(source), linkname)
        os.link(source, target, follow_symlinks=False)
        return
    elif m.ischr() or m.isblk() or m.isfifo():
        kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
        os.mknod(target, kind | 0o600, os.makedev(m.devmajor, m.devminor))
    else:
        return
    if not m.issym():
        _chmod(target, perm)
    if not m.isdir():
        os.utime(target, (m.mtime, m.mtime), follow_symlinks=False)


def _chmod(target: str, perm: int) -> None:
    fd = os.open(target, os.O_PATH | os.O_NOFOLLOW)
    try:
        os.chmod(f"/proc/self/fd/{fd}", perm)
    finally:
        os.close(fd)


# --- to a container ----------------------------------------------------------------------------

def _to_container(cli: Cli, container: str, src: str, dst: str, follow: bool, copy_uid_gid: bool,
                  quiet: bool) -> int:
    from dockyard.client.api import APIError

    if src != "-":
        src = resolve_local_path(src)
    dst_path, dst_exists, dst_is_dir = dst, False, False
    try:
        st = _stat(cli, container, dst)
        if st.get("mode", 0) & MODE_SYMLINK:
            target = st.get("linkTarget", "")
            if not target.startswith("/"):
                target = os.path.join(split_path_dir_entry(dst)[0], target)
            dst_path = target
            st = _stat(cli, container, target)
        mode = st.get("mode", 0)
        problem = "got a device" if mode & MODE_DEVICE else \
            "got an irregular file" if mode & MODE_IRREGULAR else ""
        if problem:
            raise CopyError(f'destination "{container}:{dst}" must be a directory or a '
                            f"regular file: {problem}")
        dst_exists, dst_is_dir = True, bool(mode & MODE_DIR)
    except APIError:
        pass  # the copy may still work: the parent may exist
    query = {"path": dst_path}
    counter = None
    if src == "-":
        if not dst_is_dir:
            raise CopyError(f'destination "{container}:{dst}" must be a directory')
        body: Any = getattr(cli.stdin, "buffer", None) or sys.stdin.buffer
    else:
        resolved, src_rebase = _resolve_source(src, follow)
        src_is_dir = stat.S_ISDIR(os.lstat(resolved).st_mode)
        dst_dir, rename = prepare_archive_copy(resolved, src_is_dir, src_rebase, dst_path,
                                               dst_exists, dst_is_dir)
        query["path"] = dst_dir
        top = split_path_dir_entry(resolved)[1]
        name = src_rebase or top
        if rename is not None:
            name = rebase_name(name, rename[0], rename[1])
        body = counter = _tar_reader(resolved, name)
    if copy_uid_gid:
        query["copyUIDGID"] = "true"
    query["noOverwriteDirNonDir"] = "true"
    cli.client.request("PUT", f"/containers/{container}/archive", query=query, body=body,
                       headers={"Content-Type": "application/x-tar"}).read()
    if not quiet:
        size = counter.count if counter is not None else 0
        _summary(cli, size, f"{container}:{dst_path}")
    return 0


def _resolve_source(path: str, follow: bool) -> tuple[str, str]:
    """ResolveHostSourcePath: the path with its directory's links resolved
    (and its own, with -L), and the name it should have in the archive."""
    if follow:
        resolved = os.path.realpath(path)
        if not os.path.lexists(resolved):
            os.lstat(resolved)  # the error, named as Go names it
        return get_rebase_name(path, resolved)
    directory, name = os.path.split(path)
    resolved_dir = os.path.realpath(directory or ".")
    os.lstat(resolved_dir)
    resolved = resolved_dir.rstrip("/") + "/" + name
    rebase = ""
    if has_trailing_separator(path) and base(path) != base(resolved):
        rebase = base(path)
    os.lstat(resolved)
    return resolved, rebase


class _tar_reader:
    """A tar of a local file or directory, read as it is written (a thread
    writes it into a pipe): entries named from `name`, links as links, owners
    as they are (the daemon decides), whole-second times as go-archive writes."""

    def __init__(self, path: str, name: str):
        import threading

        self.count = 0
        rfd, wfd = os.pipe()
        try:
            import fcntl
            fcntl.fcntl(wfd, fcntl.F_SETPIPE_SZ, _CHUNK)  # fewer, larger reads
        except OSError:
            pass
        self._r = os.fdopen(rfd, "rb")
        self._error: list[BaseException] = []
        self._thread = threading.Thread(target=self._write, args=(path, name, wfd), daemon=True)
        self._thread.start()

    def _write(self, path: str, name: str, wfd: int) -> None:
        import tarfile

        try:
            with os.fdopen(wfd, "wb") as out, tarfile.open(
                    fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, bufsize=_CHUNK) as tar:
                _add(tar, path, name)
        except BrokenPipeError:
            pass
        except BaseException as e:  # noqa: BLE001 - raised to the reader
            self._error.append(e)

    def read(self, n: int = -1) -> bytes:
        data = self._r.read(n)
        if not data:
            self._thread.join()
            if self._error:
                raise self._error[0]
        self.count += len(data)
        return data


def _add(tar: Any, path: str, name: str) -> None:
    info = tar.gettarinfo(path, arcname=name)
    if info is None:  # a socket
        return
    info.uname = info.gname = ""
    info.mtime = int(info.mtime)
    if info.isreg():
        with open(path, "rb") as f:
            tar.addfile(info, f)
    else:
        tar.addfile(info)
    if info.isdir():
        prefix = name.rstrip("/")
        for child in sorted(os.listdir(path), key=os.fsencode):
            _add(tar, os.path.join(path, child), f"{prefix}/{child}" if prefix else child)
