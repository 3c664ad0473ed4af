"""Blob upload sessions: bytes arrive, are hashed, and become a blob once verified.

A session lives in the uploads area, apart from the blobs:

    start(repository)        → /uploads/<uuid>/info (the repository, the start time)
    resume(repository, uuid) → an Upload positioned at the end of what arrived
    upload.write(chunk) ...  → appended to /uploads/<uuid>/data and hashed on the way
    upload.close()           → kept for the next request (a PATCH ends this way)
    upload.commit(digest)    → fsync; compare digests; only then moved to
                               /blobs/<alg>/<hh>/<hex>/data; the session is gone
    upload.cancel()          → everything of the session is deleted
    purge(older_than)        → sessions idle since before then are deleted

A digest that does not match deletes the session and stores nothing: a client
that sent wrong bytes starts over, as with distribution. The running hash is
kept in memory between requests (Python's hashes cannot be saved to disk); a
session resumed without one (the registry restarted) is hashed once from the
start of its data before it goes on.

Two clients pushing the same blob at once each have a session of their own; the
first to commit moves its data into place, and the second finds the blob
present and drops its own copy (a `move()` over it would be harmless too:
the bytes are the same). One session serves one request at a time: a request
for a session another request is using is refused, so two appends can never
interleave.

Clients give up on uploads and never cancel them, so sessions pile up; as
distribution's upload purger does, `purge()` deletes those older than an age
(the server runs it periodically, `gc` once). A session's age is measured from
its last activity, the newest mtime of its files (info at start, data at each
request's close), not from its start as distribution does: a slow push that
keeps sending is never cut off. A session a request of this process holds is
skipped, and held by the purge while it is deleted, so no request can resume
it half-deleted; one whose files cannot be found has no age and is kept
(distribution likewise keeps a session without a start time).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import uuid as uuidlib
from dataclasses import dataclass

from dockyard.registry import layout
from dockyard.registry.digest import CANONICAL, Digest
from dockyard.registry.driver import FileWriter, PathNotFound, StorageDriver
from dockyard.registry.errors import BlobUploadInvalid, BlobUploadUnknown, DigestInvalid

CHUNK = 1 << 20
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII)


@dataclass(frozen=True)
class UploadInfo:
    uuid: str
    repository: str
    started: float


class Upload:
    """One request's hold on a session; see the module docstring for its lifecycle."""

    def __init__(self, uploads: "Uploads", info: UploadInfo, writer: FileWriter, hasher):
        self._uploads = uploads
        self.info = info
        self._writer = writer
        self._hasher = hasher
        self._done = False

    @property
    def uuid(self) -> str:
        return self.info.uuid

    @property
    def size(self) -> int:
        return self._writer.size

    def write(self, data: bytes) -> None:
        self._writer.write(data)
        self._hasher.update(data)

    def close(self) -> None:
        """End this request's hold; the session stays, to be resumed."""
        if not self._done:
            self._done = True
            try:
                self._writer.close()
            finally:  # (a failed close must not leave the session held forever)
                self._uploads._release(self.uuid, self._hasher, self._writer.size)

    def commit(self, expected: Digest) -> Digest:
        """Verify the bytes against `expected` and make them the blob of that digest."""
        self._writer.commit()
        if expected.algorithm == CANONICAL:
            actual = Digest(CANONICAL, self._hasher.hexdigest())
        else:
            actual = Digest(expected.algorithm, self._uploads._hash_from_start(
                self.uuid, expected.hasher()).hexdigest())
        if actual != expected:
            self._discard()
            raise DigestInvalid(f"digest {expected} does not match the uploaded content "
                                f"({actual})", detail={"digest": str(expected)})
        driver = self._uploads.driver
        if driver.exists(layout.blob_data(expected)):
            pass  # someone committed the same bytes first; ours go with the session
        else:
            driver.move(layout.upload_data(self.uuid), layout.blob_data(expected))
        self._discard()
        return expected

    def cancel(self) -> None:
        self._writer.cancel()
        self._discard()

    def _discard(self) -> None:
        try:
            self._uploads.driver.delete(layout.upload_dir(self.uuid))
        except PathNotFound:
            pass
        self._uploads._release(self.uuid, None, 0)
        self._done = True


class Uploads:
    """The sessions in one storage driver."""

    def __init__(self, driver: StorageDriver):
        self.driver = driver
        self._lock = threading.Lock()
        self._busy: set[str] = set()
        self._hashes: dict[str, tuple[int, object]] = {}  # uuid → (size, running hash)

    def start(self, repository: str) -> Upload:
        info = UploadInfo(str(uuidlib.uuid4()), repository, time.time())
        with self._lock:  # held before any file exists: a purge never sees it idle
            self._busy.add(info.uuid)
        try:
            self.driver.put_content(layout.upload_info(info.uuid), json.dumps(
                {"repository": info.repository, "started": info.started}).encode())
            writer = self.driver.writer(layout.upload_data(info.uuid))
        except BaseException:
            self._release(info.uuid, None, 0)
            raise
        return Upload(self, info, writer, hashlib.new(CANONICAL))

    def info(self, repository: str, uuid: str) -> UploadInfo:
        """The session `uuid` of `repository`, or BlobUploadUnknown."""
        if not _UUID.fullmatch(uuid):
            raise BlobUploadUnknown(detail={"uuid": uuid})
        try:
            raw = json.loads(self.driver.get_content(layout.upload_info(uuid)))
        except PathNotFound as e:
            raise BlobUploadUnknown(detail={"uuid": uuid}) from e
        if raw.get("repository") != repository:
            raise BlobUploadUnknown(detail={"uuid": uuid})
        return UploadInfo(uuid, raw["repository"], raw.get("started", 0.0))

    def size(self, repository: str, uuid: str) -> int:
        self.info(repository, uuid)
        try:
            return self.driver.stat(layout.upload_data(uuid)).size
        except PathNotFound:
            return 0

    def resume(self, repository: str, uuid: str) -> Upload:
        info = self.info(repository, uuid)
        with self._lock:
            if uuid in self._busy:
                raise BlobUploadInvalid("the upload is in use by another request",
                                        detail={"uuid": uuid})
            self._busy.add(uuid)
            saved = self._hashes.pop(uuid, None)
        try:
            writer = self.driver.writer(layout.upload_data(uuid), append=True)
            if saved is not None and saved[0] == writer.size:
                hasher = saved[1]
            else:
                hasher = self._hash_from_start(uuid, hashlib.new(CANONICAL))
        except BaseException:
            self._release(uuid, None, 0)
            raise
        return Upload(self, info, writer, hasher)

    def cancel(self, repository: str, uuid: str) -> None:
        self.resume(repository, uuid).cancel()

    def list(self) -> list[UploadInfo]:
        found = []
        try:
            paths = self.driver.list(layout.UPLOADS)
        except PathNotFound:
            return []
        for path in paths:
            uuid = path.rsplit("/", 1)[1]
            try:
                raw = json.loads(self.driver.get_content(layout.upload_info(uuid)))
            except (PathNotFound, ValueError):
                raw = {"repository": "", "started": 0.0}
            found.append(UploadInfo(uuid, raw.get("repository", ""), raw.get("started", 0.0)))
        return found

    def purge(self, older_than: float, dry_run: bool = False) -> list[UploadInfo]:
        """Delete the sessions last active before `older_than` (a time.time()),
        or with `dry_run` only name them; the sessions purged (or that would be)."""
        purged = []
        for info in self.list():
            if not self._hold_idle(info.uuid):
                continue  # a request is using it: it is not stale
            gone = False
            try:
                active = self.last_active(info.uuid)
                if active is not None and active < older_than:
                    if not dry_run:
                        self._delete_session(info.uuid)
                        gone = True
                    purged.append(info)
            finally:
                self._unhold(info.uuid, gone)
        return purged

    def last_active(self, uuid: str) -> float | None:
        """When the session last changed: its newest file's mtime; None if it has none."""
        times = []
        for path in (layout.upload_info(uuid), layout.upload_data(uuid)):
            try:
                times.append(self.driver.stat(path).mtime)
            except PathNotFound:
                pass
        return max(times, default=None)

    def _delete_session(self, uuid: str) -> None:
        try:
            self.driver.delete(layout.upload_dir(uuid))
        except PathNotFound:
            pass

    def _hold_idle(self, uuid: str) -> bool:
        """Hold the session as a request would, unless a request holds it."""
        with self._lock:
            if uuid in self._busy:
                return False
            self._busy.add(uuid)
            return True

    def _unhold(self, uuid: str, gone: bool) -> None:
        with self._lock:
            self._busy.discard(uuid)
            if gone:
                self._hashes.pop(uuid, None)

    def _hash_from_start(self, uuid: str, hasher):
        try:
            f = self.driver.reader(layout.upload_data(uuid))
        except PathNotFound:
            return hasher
        with f:
            while chunk := f.read(CHUNK):
                hasher.update(chunk)
        return hasher

    def _release(self, uuid: str, hasher, size: int) -> None:
        with self._lock:
            self._busy.discard(uuid)
            if hasher is not None:
                self._hashes[uuid] = (size, hasher)
            else:
                self._hashes.pop(uuid, None)
