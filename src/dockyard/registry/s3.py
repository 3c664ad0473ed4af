"""The S3 storage driver: driver paths are objects in one bucket, under a root prefix.

A driver path `/a/b` is the object key `<prefix>/a/b` (or `a/b` without a
prefix). S3 has no directories, only keys and listings by prefix, which is
what the driver contract already assumes: a "directory" exists while some key
lies below it, `list()` is a listing with `Delimiter="/"` (directories come
back as CommonPrefixes), and `delete()` of a directory deletes every key under
it, in batches of at most 1,000 (DeleteObjects' limit).

What the contract asks and how S3 gives it:

    put_content     PutObject: S3 replaces an object atomically (a reader gets
                    the old object or the new, never a mix) and has stored it
                    durably when the call returns.
    reader          GetObject with `Range: bytes=<offset>-`; S3 answers 416 for
                    an offset at or past the end, so the end itself (an empty
                    read) is told apart from beyond it by a HeadObject.
    writer          a multipart upload. Bytes are buffered until a part of
                    `part_size` (at least 5 MiB, S3's minimum for every part
                    but the last) is ready, then uploaded; nothing is visible
                    at the path while parts accumulate. commit() and close()
                    complete the upload (the last part may be smaller), which
                    makes the whole object appear at once; a writer that never
                    filled a part is one PutObject. cancel() aborts the upload
                    and deletes the object. S3 cannot append to an object, so
                    `writer(path, append=True)` starts a new multipart upload
                    whose first parts are server-side copies of the existing
                    object (UploadPartCopy), or, when it is smaller than a part,
                    its bytes read back into the buffer.
    move            CopyObject then DeleteObject: the copy appears whole, so
                    `dst` is absent, old or complete. CopyObject stops at 5 GiB;
                    a bigger object is copied as a multipart upload of ranged
                    UploadPartCopy parts (each ≤ 5 GiB), the same way.
    stat            HeadObject; a 404 is then a directory if a listing of
                    `<key>/` finds anything.

A multipart upload of a process that died is neither visible nor listed but
is billed: give the bucket a lifecycle rule `AbortIncompleteMultipartUpload`
(distribution's S3 driver docs say the same).

boto3 is imported when a driver is made, so that only registries that use
S3 need it. Credentials come from the configuration or, when it has none,
from boto3's usual chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
AWS_SESSION_TOKEN, the shared credentials file, an instance role). Requests
carry checksums only where S3 requires them (DeleteObjects): the registry
verifies every blob by its digest itself, and several S3-compatible stores
refuse the trailing checksums boto3 sends by default since 1.36.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import BinaryIO

from dockyard import errdefs
from dockyard.registry.driver import (FileInfo, FileWriter, InvalidOffset, PathNotFound,
                                      StorageDriver, check_dir_path, check_path)

MIN_PART = 5 << 20          # S3: every part of a multipart upload but the last
DEFAULT_PART = 10 << 20     # distribution's default chunksize
MAX_COPY = 5 << 30          # S3: the largest CopyObject, and the largest part
DELETE_BATCH = 1000         # S3: the most keys one DeleteObjects takes
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


class StorageUnavailable(errdefs.Unavailable):
    """S3 refused or failed a request (named in the message; `code` is S3's)."""

    def __init__(self, message: str, code: str = ""):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class S3Settings:
    bucket: str
    region: str = "us-east-1"
    endpoint: str | None = None     # an S3-compatible service, or S3 itself when None
    prefix: str = ""                # the root directory inside the bucket
    access_key: str | None = None   # None: boto3's credential chain
    secret_key: str | None = None
    part_size: int = DEFAULT_PART


class _Writer(FileWriter):
    """A multipart upload into one key; see the module docstring."""

    def __init__(self, driver: "S3Driver", key: str, append: bool):
        self._driver = driver
        self._key = key
        self._upload_id: str | None = None
        self._parts: list[dict] = []
        self._buffer = bytearray()
        self._size = 0
        self._done = False
        if append:
            self._resume()

    def _resume(self) -> None:
        """Start from the object at the key, as S3 cannot append to it."""
        try:
            size = self._driver._head(self._key)["ContentLength"]
        except PathNotFound:
            return
        if size < MIN_PART:
            self._buffer += self._driver._get(self._key)
        else:
            self._start()
            self._parts += self._driver._copy_parts(self._key, self._key, self._upload_id,
                                                    size, first_part=1)
        self._size = size

    @property
    def size(self) -> int:
        return self._size

    def _start(self) -> None:
        self._upload_id = self._driver._call("CreateMultipartUpload", Key=self._key)["UploadId"]

    def write(self, data: bytes) -> int:
        self._buffer += data
        self._size += len(data)
        while len(self._buffer) >= self._driver.part_size:
            self._upload_part(bytes(self._buffer[:self._driver.part_size]))
            del self._buffer[:self._driver.part_size]
        return len(data)

    def _upload_part(self, data: bytes) -> None:
        if self._upload_id is None:
            self._start()
        number = len(self._parts) + 1
        etag = self._driver._call("UploadPart", Key=self._key, UploadId=self._upload_id,
                                  PartNumber=number, Body=data)["ETag"]
        self._parts.append({"PartNumber": number, "ETag": etag})

    def close(self) -> None:
        """Complete the upload: the object appears whole at the key."""
        if self._done:
            return
        if self._upload_id is None:
            self._driver._call("PutObject", Key=self._key, Body=bytes(self._buffer))
        else:
            try:
                if self._buffer:
                    self._upload_part(bytes(self._buffer))  # the last part may be small
                self._driver._call("CompleteMultipartUpload", Key=self._key,
                                   UploadId=self._upload_id,
                                   MultipartUpload={"Parts": self._parts})
            except BaseException:
                self._done = True  # the parts are lost: don't leave them billed
                self._driver._call("AbortMultipartUpload", Key=self._key,
                                   UploadId=self._upload_id)
                raise
        self._buffer.clear()
        self._done = True

    commit = close  # S3 has the object durably once CompleteMultipartUpload returns

    def cancel(self) -> None:
        if self._upload_id is not None and not self._done:
            self._driver._call("AbortMultipartUpload", Key=self._key, UploadId=self._upload_id)
        self._buffer.clear()
        self._done = True
        self._driver._call("DeleteObject", Key=self._key)  # what an earlier close() made


class S3Driver(StorageDriver):
    name = "s3"

    def __init__(self, settings: S3Settings, client=None):
        if settings.part_size < MIN_PART:
            raise ValueError(f"S3 part size {settings.part_size} is below S3's minimum "
                             f"({MIN_PART} bytes)")
        self.bucket = settings.bucket
        self.part_size = settings.part_size
        self.root = settings.prefix.strip("/")
        self.delete_batch = DELETE_BATCH
        self.list_page = 1000  # S3's most keys a listing page holds (smaller in tests)
        self.client = client or _client(settings)
        self._methods = {api: method for method, api in
                         self.client.meta.method_to_api_mapping.items()}

    # --- keys and calls ----------------------------------------------------------

    def _key(self, path: str) -> str:
        return f"{self.root}{check_path(path)}" if self.root else check_path(path)[1:]

    def _dir_prefix(self, path: str) -> str:
        """The prefix of every key below the directory `path` ("/" for the root)."""
        if path == "/":
            return f"{self.root}/" if self.root else ""
        return self._key(path) + "/"

    def _path(self, key: str) -> str:
        return "/" + key[len(self.root) + 1:] if self.root else "/" + key

    def _call(self, operation: str, **kwargs):
        """One S3 request on our bucket; a missing key is PathNotFound, any other
        failure StorageUnavailable naming the request."""
        from botocore.exceptions import BotoCoreError, ClientError

        method = getattr(self.client, self._methods[operation])
        try:
            return method(Bucket=self.bucket, **kwargs)
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            where = kwargs.get("Key") or kwargs.get("Prefix") or ""
            if code in _MISSING:
                raise PathNotFound(f"{self._path(where)} not found") from e
            message = e.response.get("Error", {}).get("Message", "")
            raise StorageUnavailable(f"s3 {operation} {self.bucket}/{where}: {code} {message}",
                                     code) from e
        except BotoCoreError as e:
            raise StorageUnavailable(f"s3 {operation} {self.bucket}: {e}") from e

    def _head(self, key: str) -> dict:
        return self._call("HeadObject", Key=key)

    def _get(self, key: str) -> bytes:
        body = self._call("GetObject", Key=key)["Body"]
        with body:
            return body.read()

    def _keys_under(self, prefix: str):
        """Every key starting with `prefix`, page by page (1,000 a page)."""
        token = None
        while True:
            page = self._call("ListObjectsV2", Prefix=prefix, MaxKeys=self.list_page,
                              **({"ContinuationToken": token} if token else {}))
            yield from (o["Key"] for o in page.get("Contents", []))
            if not page.get("IsTruncated"):
                return
            token = page["NextContinuationToken"]

    def _copy_parts(self, src: str, dst: str, upload_id: str, size: int,
                    first_part: int) -> list[dict]:
        """`src` copied into the multipart upload of `dst` as ranged parts of at
        most 5 GiB, all but the last at least 5 MiB (equal shares do both)."""
        count = -(-size // MAX_COPY)
        share = -(-size // count)
        parts = []
        for i, start in enumerate(range(0, size, share)):
            end = min(start + share, size) - 1
            result = self._call("UploadPartCopy", Key=dst, UploadId=upload_id,
                                PartNumber=first_part + i,
                                CopySource={"Bucket": self.bucket, "Key": src},
                                CopySourceRange=f"bytes={start}-{end}")
            parts.append({"PartNumber": first_part + i, "ETag": result["CopyPartResult"]["ETag"]})
        return parts

    # --- the interface -----------------------------------------------------------

    def get_content(self, path: str) -> bytes:
        return self._get(self._key(path))

    def put_content(self, path: str, data: bytes) -> None:
        self._call("PutObject", Key=self._key(path), Body=bytes(data))

    def reader(self, path: str, offset: int = 0) -> BinaryIO:
        key = self._key(path)
        if offset < 0:
            raise InvalidOffset(f"offset {offset} outside {path}")
        if offset == 0:
            return self._call("GetObject", Key=key)["Body"]
        try:
            return self._call("GetObject", Key=key, Range=f"bytes={offset}-")["Body"]
        except StorageUnavailable as e:
            if e.code != "InvalidRange":
                raise
        size = self._head(key)["ContentLength"]  # 416: at the end, or beyond it
        if offset == size:
            return io.BytesIO(b"")
        raise InvalidOffset(f"offset {offset} outside {path} ({size} bytes)")

    def writer(self, path: str, append: bool = False) -> FileWriter:
        return _Writer(self, self._key(path), append)

    def stat(self, path: str) -> FileInfo:
        key = self._key(path)
        try:
            head = self._head(key)
            return FileInfo(path, head["ContentLength"], head["LastModified"].timestamp(), False)
        except PathNotFound:
            pass
        page = self._call("ListObjectsV2", Prefix=key + "/", MaxKeys=1)
        if not page.get("Contents"):
            raise PathNotFound(f"{path} not found")
        return FileInfo(path, 0, page["Contents"][0]["LastModified"].timestamp(), True)

    def list(self, path: str) -> list[str]:
        check_dir_path(path)
        prefix = self._dir_prefix(path)
        children: set[str] = set()
        token = None
        while True:
            page = self._call("ListObjectsV2", Prefix=prefix, Delimiter="/",
                              MaxKeys=self.list_page,
                              **({"ContinuationToken": token} if token else {}))
            names = [p["Prefix"][len(prefix):-1] for p in page.get("CommonPrefixes", [])]
            names += [o["Key"][len(prefix):] for o in page.get("Contents", [])]
            children.update(n for n in names if n and not n.startswith("."))
            if not page.get("IsTruncated"):
                break
            token = page["NextContinuationToken"]
        if not children and path != "/":
            raise PathNotFound(f"{path} not found")
        base = path.rstrip("/")
        return sorted(f"{base}/{n}" for n in children)

    def move(self, src: str, dst: str) -> None:
        src_key, dst_key = self._key(src), self._key(dst)
        size = self._head(src_key)["ContentLength"]
        if size <= MAX_COPY:
            self._call("CopyObject", Key=dst_key,
                       CopySource={"Bucket": self.bucket, "Key": src_key})
        else:
            upload_id = self._call("CreateMultipartUpload", Key=dst_key)["UploadId"]
            try:
                parts = self._copy_parts(src_key, dst_key, upload_id, size, first_part=1)
                self._call("CompleteMultipartUpload", Key=dst_key, UploadId=upload_id,
                           MultipartUpload={"Parts": parts})
            except BaseException:
                self._call("AbortMultipartUpload", Key=dst_key, UploadId=upload_id)
                raise
        self._call("DeleteObject", Key=src_key)

    def delete(self, path: str) -> None:
        key = self._key(path)
        doomed = list(self._keys_under(key + "/"))
        if self._has(key):
            doomed.append(key)
        if not doomed:
            raise PathNotFound(f"{path} not found")
        for i in range(0, len(doomed), self.delete_batch):
            batch = [{"Key": k} for k in doomed[i:i + self.delete_batch]]
            result = self._call("DeleteObjects", Delete={"Objects": batch, "Quiet": True})
            if result.get("Errors"):
                error = result["Errors"][0]
                raise StorageUnavailable(f"s3 DeleteObjects {self.bucket}/{error.get('Key')}: "
                                         f"{error.get('Code')} {error.get('Message', '')}")

    def _has(self, key: str) -> bool:
        try:
            self._head(key)
        except PathNotFound:
            return False
        return True


def _client(settings: S3Settings):
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(aws_access_key_id=settings.access_key,
                                    aws_secret_access_key=settings.secret_key,
                                    region_name=settings.region)
    config = Config(max_pool_connections=32,  # the HTTP layer's worker threads
                    retries={"mode": "standard"},
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required")
    return session.client("s3", endpoint_url=settings.endpoint, config=config)
