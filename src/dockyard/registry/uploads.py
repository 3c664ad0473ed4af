"""Blob upload sessions: bytes arrive, are hashed, and become a blob once verified.

A session lives in the uploads area, apart from the blobs:

    start(repository)        → /uploads/<uuid>/info (the repository, the start time)
    resume(repository, uuid) → an Upload positioned at the end of what arrived
    upload.write(chunk) ...  → appended to /uploads/<uuid>/data and hashed on the way
    upload.close()           → kept for the next request (a PATCH ends this way)
    upload.commit(digest)    → fsync; compare digests; only then moved to
                               /blobs/<alg>/<hh>/<hex>/data; the session is gone
    upload.cancel()          → everything of the session is deleted

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
        self.driver.put_content(layout.upload_info(info.uuid), json.dumps(
            {"repository": info.repository, "started": info.started}).encode())
        with self._lock:
            self._busy.add(info.uuid)
        writer = self.driver.writer(layout.upload_data(info.uuid))
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
