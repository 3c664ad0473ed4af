"""The distribution spec's error codes, as error kinds.

The spec names a code for every failure a client must tell apart
(`{"errors": [{"code": "BLOB_UNKNOWN", "message": "...", "detail": ...}]}`).
Each code here is a class that is also one of our error kinds (`errdefs`), so
code below the HTTP layer raises a meaning, never a status; `app.py` holds the
only table from these classes to HTTP statuses.
"""

from __future__ import annotations

from typing import Any

from dockyard import errdefs


class RegistryError(errdefs.DockyardError):
    """An error the registry reports with one of the spec's codes."""

    code = "UNKNOWN"
    default_message = "unknown error"

    def __init__(self, message: str | None = None, detail: Any = None):
        super().__init__(message or self.default_message)
        self.detail = detail

    def body(self) -> dict:
        return {"code": self.code, "message": self.message, "detail": self.detail}


class BlobUnknown(RegistryError, errdefs.NotFound):
    code = "BLOB_UNKNOWN"
    default_message = "blob unknown to registry"


class BlobUploadInvalid(RegistryError, errdefs.InvalidParameter):
    code = "BLOB_UPLOAD_INVALID"
    default_message = "blob upload invalid"


class RangeInvalid(BlobUploadInvalid):
    """A chunk that does not start where the upload ends (HTTP 416).

    The spec gives no code of its own for this; distribution answers with
    BLOB_UPLOAD_INVALID and a `Range` header saying where the upload ends, so
    the client can resume from there."""

    default_message = "content range does not continue the upload"

    def __init__(self, message: str | None = None, detail: Any = None, size: int = 0):
        super().__init__(message, detail)
        self.size = size


class BlobUploadUnknown(RegistryError, errdefs.NotFound):
    code = "BLOB_UPLOAD_UNKNOWN"
    default_message = "blob upload unknown to registry"


class DigestInvalid(RegistryError, errdefs.InvalidParameter):
    code = "DIGEST_INVALID"
    default_message = "provided digest did not match uploaded content"


class ManifestBlobUnknown(RegistryError, errdefs.InvalidParameter):
    code = "MANIFEST_BLOB_UNKNOWN"
    default_message = "manifest references a manifest or blob unknown to registry"


class ManifestInvalid(RegistryError, errdefs.InvalidParameter):
    code = "MANIFEST_INVALID"
    default_message = "manifest invalid"


class ManifestUnknown(RegistryError, errdefs.NotFound):
    code = "MANIFEST_UNKNOWN"
    default_message = "manifest unknown to registry"


class NameInvalid(RegistryError, errdefs.InvalidParameter):
    code = "NAME_INVALID"
    default_message = "invalid repository name"


class NameUnknown(RegistryError, errdefs.NotFound):
    code = "NAME_UNKNOWN"
    default_message = "repository name not known to registry"


class SizeInvalid(RegistryError, errdefs.InvalidParameter):
    code = "SIZE_INVALID"
    default_message = "provided length did not match content length"


class TooLarge(SizeInvalid):
    """A manifest bigger than the registry accepts (HTTP 413, as the spec allows)."""

    default_message = "manifest too large"


class TagInvalid(RegistryError, errdefs.InvalidParameter):
    code = "TAG_INVALID"
    default_message = "manifest tag did not match URI"


class Unauthorized(RegistryError, errdefs.Unauthorized):
    """Credentials missing or wrong; `challenge` is the WWW-Authenticate value."""

    code = "UNAUTHORIZED"
    default_message = "authentication required"

    def __init__(self, message: str | None = None, detail: Any = None, challenge: str = ""):
        super().__init__(message, detail)
        self.challenge = challenge


class Denied(RegistryError, errdefs.Forbidden):
    code = "DENIED"
    default_message = "requested access to the resource is denied"


class Unsupported(RegistryError, errdefs.NotImplemented):
    """An operation this registry does not offer: writes in read-only mode.

    distribution answers its read-only (maintenance) mode with UNSUPPORTED and
    405 Method Not Allowed, which the spec also names for refused deletes."""

    code = "UNSUPPORTED"
    default_message = "the operation is unsupported"


class PaginationNumberInvalid(RegistryError, errdefs.InvalidParameter):
    """`n` of a tags or catalog listing is not a non-negative integer (distribution's code)."""

    code = "PAGINATION_NUMBER_INVALID"
    default_message = "invalid number of results requested"
