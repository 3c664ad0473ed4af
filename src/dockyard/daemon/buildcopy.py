"""COPY and ADD: files from the build context (or an earlier stage, or an
image) into the step's new layer, as the classic builder copies them.

- A source names a path in the context, or a pattern (Go's filepath.Match)
  tried against every path; a symlink named as a source is followed inside
  the context, symlinks met inside a copied directory stay links.
- A directory source copies its contents (not itself) into the destination.
- A file goes to `dest/<its name>` when the destination ends in "/" or is an
  existing directory, else to `dest` itself; several sources need a "/".
- ADD unpacks a local tar (plain or compressed) into the destination, with
  the owners in the archive; COPY never does.
- Owners become root, or the `--chown` user and group (names looked up in
  the image's own /etc/passwd and /etc/group); `COPY --from` without
  `--chown` keeps the owners of the source. Modes and mtimes are kept.
- Directories made on the way get mode 0755 and the same owner.

Writing goes through a tar stream into storage.archive's extractor, which
resolves every path inside the new root, so a symlink in the image cannot
send a file outside it, as dockerd's chrooted untar.
"""

from __future__ import annotations

import os
import posixpath
import stat
import tarfile
import threading
from dataclasses import dataclass
from typing import BinaryIO, Callable

from dockyard import errdefs
from dockyard.builder import context
from dockyard.builder.sourcehash import SourceHasher, combined_hash
from dockyard.linux import inroot
from dockyard.storage import archive, compression

Identity = tuple[int, int]


@dataclass
class CopyInfo:
    root: str      # the directory the source lives in (context, or a stage's rootfs)
    rel: str       # the source as matched, relative to root (symlinks unresolved)
    hash: str
    unpack: bool = True  # ADD may unpack it (not a download)


class CopyError(errdefs.InvalidParameter):
    pass


def copy_infos(command: str, root: str, sources: list[str], hasher: SourceHasher,
               downloaded: dict[str, str] | None = None) -> list[CopyInfo]:
    """Each source resolved in `root`, with its hash; errors in dockerd's
    words ("COPY failed: ..."). `downloaded` maps ADD's URL sources to the
    files fetched for them."""
    infos: list[CopyInfo] = []
    try:
        for source in sources:
            if downloaded and source in downloaded:
                # dockerd hashes a download as a file of its own temporary
                # directory, and names it by that hash alone (no "file:")
                folder, name = os.path.split(downloaded[source])
                infos.append(CopyInfo(folder, name,
                                      SourceHasher(folder, image=True).entry_hash(name),
                                      unpack=False))
                continue
            for rel in context.resolve_source(root, source):
                infos.append(CopyInfo(root, rel, hasher.source_hash(rel)))
    except errdefs.DockyardError as e:
        raise type(e)(f"{command} failed: {e}") from e
    if not infos:
        raise CopyError(f"{command} failed: no source files were specified")
    return infos


def source_hash(infos: list[CopyInfo]) -> str:
    return combined_hash([i.hash for i in infos])


def check_dest(command: str, infos: list[CopyInfo], dest: str) -> None:
    if len(infos) > 1 and not dest.endswith("/"):
        raise CopyError(f"When using {command} with more than one source file, the "
                        "destination must be a directory and end with a /")


def parse_chown(chown: str, root: str) -> Identity:
    """`--chown=user[:group]`: numbers as they are, names from the image's files."""
    from dockyard.runtime.user import parse_group, parse_passwd, read_file_in_root

    parts = chown.split(":")
    if len(parts) > 2:
        raise CopyError(f"invalid chown string format: {chown}")
    user_name, group_name = parts[0], parts[-1]

    def find(name: str, path: str, what: str, parse, id_of) -> int:
        if name.lstrip("-").isdigit():
            return int(name)
        text = read_file_in_root(root, path)
        if text is None:
            raise CopyError(f"unable to convert uid/gid chown string to host mapping: "
                            f"can't find {what} for {'user' if what == 'uid' else 'group'} "
                            f"{name}: open {root}{path}: no such file or directory")
        for entry in parse(text):
            if entry.name == name:
                return id_of(entry)
        raise CopyError(f"unable to convert uid/gid chown string to host mapping: "
                        f"can't find {what} for {'user' if what == 'uid' else 'group'} "
                        f"{name}: no such {'user' if what == 'uid' else 'group'}: {name}")

    uid = find(user_name, "/etc/passwd", "uid", parse_passwd, lambda e: e.uid)
    gid = find(group_name, "/etc/group", "gid", parse_group, lambda e: e.gid)
    return uid, gid


def perform_copy(dest_root: str, dest: str, info: CopyInfo, identity: Identity | None,
                 decompress: bool) -> None:
    """Copy one source into the root at `dest` (absolute, WORKDIR applied);
    `identity` None keeps the source's owners."""
    src = context.follow(info.root, info.rel)
    rootfd = inroot.open_root(dest_root)
    try:
        dir_owner = identity or (0, 0)
        if os.path.isdir(src):
            # the directories above the destination are root's, as dockerd
            # makes them; the destination itself, when new, the identity's
            os.close(inroot.make_dirs(rootfd, posixpath.dirname(dest.rstrip("/")) or "/",
                                      0o755, (0, 0)))
            destfd = inroot.make_dirs(rootfd, dest, 0o755, dir_owner)
            try:
                _pipe(lambda out: _tar_tree(src, out, identity), destfd, dest)
            finally:
                os.close(destfd)
            return
        if decompress and info.unpack and is_archive(src):
            # (an archive keeps its own owners, --chown or not; dockerd makes
            # the destination root's too)
            destfd = inroot.make_dirs(rootfd, dest, 0o755, (0, 0))
            try:
                with open(src, "rb") as f:
                    _extract(compression.open_decompressed(f), destfd, dest)
            finally:
                os.close(destfd)
            return
        target = dest
        if dest.endswith("/") or _is_dir_in_root(rootfd, dest):
            target = posixpath.join(dest, posixpath.basename(info.rel.rstrip("/")))
        # A symlink at the target is followed (inside the root), even a dangling
        # one: the file goes where it points, as dockerd copies.
        target = "/" + os.path.relpath(inroot.secure_join(dest_root, target), dest_root)
        parent, name = posixpath.split(target.rstrip("/") or "/")
        parentfd = inroot.make_dirs(rootfd, parent, 0o755, dir_owner)
        try:
            _pipe(lambda out: _tar_file(src, name, out, identity), parentfd, parent)
        finally:
            os.close(parentfd)
    finally:
        os.close(rootfd)


def _is_dir_in_root(rootfd: int, path: str) -> bool:
    try:
        fd = inroot.openat2(rootfd, path.lstrip("/") or ".", os.O_PATH)
    except OSError:
        return False
    try:
        return stat.S_ISDIR(os.fstat(fd).st_mode)
    finally:
        os.close(fd)


def is_archive(path: str) -> bool:
    """ADD's test: the file, decompressed, starts with a valid tar header."""
    try:
        with open(path, "rb") as f, compression.open_decompressed(f) as data:
            block = data.read(tarfile.BLOCKSIZE)
    except (OSError, EOFError, errdefs.DockyardError):
        return False
    if len(block) < tarfile.BLOCKSIZE:
        return False
    try:
        tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        return True
    except tarfile.HeaderError:
        return False


def _tar_tree(src: str, out: BinaryIO, identity: Identity | None) -> None:
    """The contents of the directory `src` (not itself), links kept as links."""
    writer = archive.TarWriter(out)
    fd = os.open(src, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for entry in archive.walk_children(fd, ".", ""):
            writer.add(entry, entry.path, with_xattrs=False, owner=identity)
    finally:
        os.close(fd)
    writer.close()


def _tar_file(src: str, name: str, out: BinaryIO, identity: Identity | None) -> None:
    """One file (a symlink named as the source already followed) as `name`."""
    writer = archive.TarWriter(out)
    parent, base = os.path.split(src)
    fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        st = os.lstat(base, dir_fd=fd)
        writer.add(archive.Entry(name, base, fd, st), name, with_xattrs=False, owner=identity)
    finally:
        os.close(fd)
    writer.close()


def _pipe(produce: Callable[[BinaryIO], None], destfd: int, dest: str) -> None:
    """Run `produce(writer)` in a thread, and extract what it writes into `destfd`."""
    rfd, wfd = os.pipe()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with os.fdopen(wfd, "wb", buffering=1 << 20) as out:
                produce(out)
        except BaseException as e:  # noqa: BLE001 - given to the reading side
            failure.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        with os.fdopen(rfd, "rb", buffering=1 << 20) as reader:
            _extract(reader, destfd, dest)
    finally:
        thread.join()
    if failure:
        raise failure[0]


def _extract(stream: BinaryIO, destfd: int, dest: str) -> None:
    archive.Extractor(destfd, dest).extract(stream)
