"""The classic builder's hash of COPY/ADD sources: the text it puts in the
step's Cmd (`#(nop) COPY file:<hex> in /dest `), which is also how it finds
the step in its cache.

dockerd computes, while the context tar arrives, one tarsum (version 1) per
entry: sha256 of the header fields below, concatenated as text, followed by
the file's contents:

    "name" <name> "mode" <mode> "uid" <uid> "gid" <gid> "size" <size>
    "typeflag" <flag> "linkname" <target> "uname" "gname"
    "devmajor" <major> "devminor" <minor>

Numbers are decimal. The mtime is left out (touching a file keeps the cache),
and so are the user and group names: what remains is what the CLI sends,
names relative without "./" (a directory's ending in "/"), the mode's
permission bits, the numeric owner, and a hard link for the second name of a
file with several.

We compute the same sums from the unpacked context, where receiving kept
every owner, mode and link: an entry's header is rebuilt from its lstat the
way the CLI built it from the files on the client.

From the sums, per source (builder/dockerfile/copy.go):
- a file, or a symlink leading to one, is `file:<sum of the file>`;
- a directory is `dir:<sha256 of the sorted sums of it and everything under
  it, joined by ",">` (the context's root itself left out, as dockerd's walk
  skips it); an entry whose symlink leads nowhere in the context counts as
  its path instead;
- several sources (a pattern matching several paths counts as several) are
  `multi:<sha256 of their hashes in instruction order, joined by ",">`.
"""

from __future__ import annotations

import functools
import grp
import hashlib
import os
import pwd
import stat
from collections.abc import Sequence

from dockyard.linux import inroot
from dockyard.storage import archive

_CHUNK = 1 << 20


class SourceHasher:
    """Source hashes of one build context `directory`, once it is received.

    With `image=True` the directory is an image's root (`COPY --from`), which
    dockerd hashes from the files themselves rather than from a received tar
    (its "lazy" source): the mode then carries the file type bits as Go's
    tar headers do (0o100644), the owner names are the daemon host's names
    for the numeric ids, a file's security.capability counts, and hard links
    are not told apart.
    """

    def __init__(self, directory: str, image: bool = False):
        self.directory = directory
        self.image = image
        self._sums: dict[str, str] = {}
        self._first_names: dict[tuple[int, int], str] | None = None

    def source_hash(self, rel: str) -> str:
        """"file:<hex>" or "dir:<hex>" for a source path as resolve_source
        gives it (symlinks not yet followed)."""
        path = inroot.secure_join(self.directory, rel)
        if not os.path.isdir(path):
            return "file:" + self.entry_hash(rel)
        return "dir:" + _sha256_text(",".join(sorted(self._tree_hashes(path))))

    def entry_hash(self, rel: str) -> str:
        """The tarsum of what `rel` leads to, its symlinks followed inside
        the context; `rel` itself where that is no entry of the tar
        (archiveContext.Hash's fallback)."""
        path = inroot.secure_join(self.directory, rel)
        resolved = os.path.relpath(path, self.directory)
        if resolved == "." or resolved.startswith("../"):
            return rel
        if resolved not in self._sums:
            try:
                st = os.lstat(path)
            except OSError:
                return rel
            if stat.S_ISSOCK(st.st_mode):
                return rel  # the CLI leaves sockets out of the tar
            self._sums[resolved] = self._tarsum(resolved, path, st)
        return self._sums[resolved]

    def _tree_hashes(self, path: str) -> list[str]:
        """The entry hashes of the directory `path` and all under it, links
        not entered (filepath.Walk), each followed when hashed."""
        rel = os.path.relpath(path, self.directory)
        # (the context's root is not an entry of its own: a walk skips it)
        hashes = [self.entry_hash(rel)] if rel != "." else []
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for entry in archive.walk_children(fd, ".", ""):
                hashes.append(self.entry_hash(entry.path if rel == "." else
                                              f"{rel}/{entry.path}"))
        finally:
            os.close(fd)
        return hashes

    def _tarsum(self, rel: str, path: str, st: os.stat_result) -> str:
        mode = st.st_mode
        name, size, linkname, major, minor = rel, 0, "", 0, 0
        if stat.S_ISDIR(mode):
            flag, name = "5", rel + "/"
        elif stat.S_ISLNK(mode):
            flag, linkname = "2", os.readlink(path)
        elif stat.S_ISREG(mode):
            flag, size = "0", st.st_size
            first = rel if self.image else self._first_name(rel, st)
            if first != rel:
                flag, size, linkname = "1", 0, first
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            flag = "3" if stat.S_ISCHR(mode) else "4"
            major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
        else:
            flag = "6"
        uname = gname = ""
        tar_mode = stat.S_IMODE(mode)
        extra = ""
        if self.image:
            tar_mode |= stat.S_IFMT(mode)
            uname, gname = _user_name(st.st_uid), _group_name(st.st_gid)
            try:
                cap = os.getxattr(path, "security.capability", follow_symlinks=False)
                extra = "security.capability" + cap.decode("utf-8", "surrogateescape")
            except OSError:
                pass
        header = "".join((
            "name", name, "mode", str(tar_mode), "uid", str(st.st_uid),
            "gid", str(st.st_gid), "size", str(size), "typeflag", flag,
            "linkname", linkname, "uname", uname, "gname", gname,
            "devmajor", str(major), "devminor", str(minor), extra))
        h = hashlib.sha256(header.encode("utf-8", "surrogateescape"))
        if flag == "0":
            with open(path, "rb") as f:
                while chunk := f.read(_CHUNK):
                    h.update(chunk)
        return h.hexdigest()

    def _first_name(self, rel: str, st: os.stat_result) -> str:
        """For a file with several names, the one the CLI met first walking
        the context (the others went as hard links to it)."""
        if st.st_nlink < 2:
            return rel
        if self._first_names is None:
            self._first_names = {}
            fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                for entry in archive.walk_children(fd, ".", ""):
                    if stat.S_ISREG(entry.st.st_mode) and entry.st.st_nlink > 1:
                        self._first_names.setdefault((entry.st.st_dev, entry.st.st_ino),
                                                     entry.path)
            finally:
                os.close(fd)
        return self._first_names.get((st.st_dev, st.st_ino), rel)


@functools.cache
def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return ""


@functools.cache
def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return ""


def combined_hash(hashes: Sequence[str]) -> str:
    """The hash of a COPY/ADD with these per-source hashes, in order: the
    one hash itself, or "multi:" of all of them."""
    if len(hashes) == 1:
        return hashes[0]
    return "multi:" + _sha256_text(",".join(hashes))


def copy_comment(command: str, source_hash: str, dest: str, chown: str = "") -> str:
    """The step's text after "#(nop) ": `COPY file:<hex> in /dest ` (the
    trailing space is dockerd's). A --chown value is glued to the hash, as
    dockerd writes it: `ADD --chown=1000:1000file:<hex> in /d `."""
    flag = f"--chown={chown}" if chown else ""
    return f"{command.upper()} {flag}{source_hash} in {dest} "


def _sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()
