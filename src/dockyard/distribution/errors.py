"""Registry errors, read and worded as docker's distribution client and dockerd word them.

A registry answers a failed request with `{"errors": [{"code", "message",
"detail"}]}` (the distribution spec's error codes). docker prints such an
error as the code in lower case with spaces, a colon, the message:
`manifest unknown: manifest unknown`. dockerd then wraps the ones that mean
"not there" with the reference (`manifest for x:y not found: ...`) and
returns them as NotFound; UNAUTHORIZED becomes Unauthorized; everything else
is an error without a kind, which the API answers with 500.

Failures below HTTP (connection refused, TLS spoken to a plain HTTP server)
are reported as Go's net/http reports them, `Get "<url>": <reason>`, because
that is what users of dockerd see and search for.

`should_retry` is dockerd's rule (retryOnError) for which layer download
failures are worth another attempt.
"""

from __future__ import annotations

import json

from dockyard import errdefs
from dockyard.image import reference

# The codes docker knows and the message each has by default
# (distribution/registry/api/errcode and api/v2/errors.go).
DEFAULT_MESSAGES = {
    "UNKNOWN": "unknown error",
    "UNSUPPORTED": "The operation is unsupported.",
    "UNAUTHORIZED": "authentication required",
    "DENIED": "requested access to the resource is denied",
    "UNAVAILABLE": "service unavailable",
    "TOOMANYREQUESTS": "too many requests",
    "DIGEST_INVALID": "provided digest did not match uploaded content",
    "SIZE_INVALID": "provided length did not match content length",
    "NAME_INVALID": "invalid repository name",
    "TAG_INVALID": "manifest tag did not match URI",
    "NAME_UNKNOWN": "repository name not known to registry",
    "MANIFEST_UNKNOWN": "manifest unknown",
    "MANIFEST_INVALID": "manifest invalid",
    "MANIFEST_UNVERIFIED": "manifest failed signature verification",
    "MANIFEST_BLOB_UNKNOWN": "blob unknown to registry",
    "BLOB_UNKNOWN": "blob unknown to registry",
    "BLOB_UPLOAD_UNKNOWN": "blob upload unknown to registry",
    "BLOB_UPLOAD_INVALID": "blob upload invalid",
    "PAGINATION_NUMBER_INVALID": "invalid number of results requested",
    "RANGE_INVALID": "invalid content range",
}

NO_BASIC_AUTH_CREDENTIALS = "no basic auth credentials"


class RegistryError(Exception):
    """One error of a registry's error body (errcode.Error)."""

    def __init__(self, code: str, message: str = "", detail: object = None):
        # An unregistered code reads as UNKNOWN, as errcode.ParseErrorCode has it.
        self.code = code if code in DEFAULT_MESSAGES else "UNKNOWN"
        self.message = message or DEFAULT_MESSAGES[self.code]
        self.detail = detail
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.code.lower().replace('_', ' ')}: {self.message}"


class RegistryErrors(Exception):
    """Every error of one body (errcode.Errors); the first one is the one that counts."""

    def __init__(self, errors: list[Exception]):
        self.errors = errors
        super().__init__(str(self))

    def __str__(self) -> str:
        if len(self.errors) == 1:
            return str(self.errors[0])
        return "errors:\n" + "".join(f"{e}\n" for e in self.errors)

    @property
    def first(self) -> Exception:
        return self.errors[0]


class BlobUnknown(Exception):
    """distribution.ErrBlobUnknown: the registry answered a blob's GET with
    404, whatever its body said."""

    def __init__(self):
        super().__init__("unknown blob")


class UnexpectedResponse(Exception):
    """A 4xx whose body is not a registry error (UnexpectedHTTPResponseError)."""

    def __init__(self, status: int, body: bytes, reason: str):
        self.status = status
        super().__init__(f"error parsing HTTP {status} response body: {reason}: "
                         f"{_go_quote(body.decode(errors='replace'))}")


class UnexpectedStatus(Exception):
    """Neither success nor 4xx (UnexpectedHTTPStatusError)."""

    def __init__(self, status_line: str):
        super().__init__(f"received unexpected HTTP status: {status_line}")


class RequestFailed(Exception):
    """Go's url.Error: the method, the URL and what went wrong below HTTP (or
    in the auth handler, e.g. no credentials for a Basic challenge)."""

    def __init__(self, method: str, url: str, reason: str | BaseException):
        self.method = method
        self.url = url
        self.reason = reason
        super().__init__(f'{method.capitalize()} "{url}": {reason}')


class TransportError(RequestFailed):
    """No HTTP exchange happened (refused, reset, TLS failure): another
    endpoint of the same registry may be tried."""


def _go_quote(s: str) -> str:
    """Go's %q of a string: JSON's escaping is close enough for a message."""
    return json.dumps(s, ensure_ascii=False)


def parse_error_body(status: int, body: bytes) -> Exception:
    """parseHTTPErrorResponse: the errors of a 4xx body."""
    try:
        doc = json.loads(body)
    except ValueError as e:
        return UnexpectedResponse(status, body, _json_reason(e, body))
    if isinstance(doc, dict) and isinstance(doc.get("details"), str) and doc["details"]:
        code = {401: "UNAUTHORIZED", 403: "DENIED", 429: "TOOMANYREQUESTS"}.get(status, "UNKNOWN")
        return RegistryError(code, doc["details"])
    entries = doc.get("errors") if isinstance(doc, dict) else None
    if not entries:
        return UnexpectedResponse(status, body, "no error details found in HTTP response body")
    errors: list[Exception] = []
    for entry in entries:
        if isinstance(entry, dict):
            errors.append(RegistryError(str(entry.get("code", "UNKNOWN")),
                                        str(entry.get("message") or ""), entry.get("detail")))
    return RegistryErrors(errors) if errors else \
        UnexpectedResponse(status, body, "no error details found in HTTP response body")


def _json_reason(e: ValueError, body: bytes) -> str:
    if not body.strip():
        return "unexpected end of JSON input"
    first = body.lstrip()[:1].decode(errors="replace")
    return f"invalid character {first!r} looking for beginning of value"


def first_error(err: BaseException) -> BaseException:
    return err.first if isinstance(err, RegistryErrors) and err.errors else err


# --- what dockerd makes of them -------------------------------------------------


class PullNotFound(errdefs.NotFound):
    """dockerd's notFoundError: the registry said the thing is not there."""


class PullUnauthorized(errdefs.Unauthorized):
    pass


class RegistryFailure(errdefs.System):
    """An error dockerd passes on without a kind (errdefs.Unknown): 500."""


class ConfigPullFailed(RegistryFailure):
    """imageConfigPullError: the image's config could not be had."""

    def __init__(self, err: BaseException | str):
        super().__init__(f"error pulling image configuration: {err}")


class LayerVerificationFailed(RegistryFailure):
    """A layer's bytes do not hash to its digest. `resumed`: they came in
    pieces (range requests), so a fresh download may well succeed."""

    def __init__(self, digest: str, resumed: bool):
        self.resumed = resumed
        super().__init__(f"filesystem layer verification failed for digest {digest}")


# Registry error codes no second attempt can cure (retryOnError's list). A
# blob's 404 is BlobUnknown, whatever code its body has, and final too.
_FINAL_CODES = {"UNAUTHORIZED", "UNSUPPORTED", "DENIED", "TOOMANYREQUESTS", "NAME_UNKNOWN"}
_NO_SPACE = "no space left on device"


def should_retry(err: BaseException) -> bool:
    """retryOnError and the verifier of pull_v2's Download: whether a failed
    layer download is tried again. Missing credentials, refusals, a blob the
    registry does not have, a 4xx it could not explain, a full disk and bytes
    that do not verify (unless resumed) are final; anything else (the
    network, a 5xx) may pass."""
    err = first_error(err)
    if isinstance(err, LayerVerificationFailed):
        return err.resumed
    if isinstance(err, BlobUnknown):
        return False
    if isinstance(err, RegistryError):
        return err.code not in _FINAL_CODES
    if isinstance(err, UnexpectedResponse):
        return False
    if isinstance(err, RequestFailed) and str(err.reason) == NO_BASIC_AUTH_CREDENTIALS:
        return False
    return _NO_SPACE not in str(err).lower()


def translate_pull_error(err: BaseException, ref: reference.Reference) -> Exception:
    """translatePullError: name the reference in "not found" errors, keep the
    kind of unauthorized ones, pass the rest on as they read."""
    if isinstance(err, errdefs.DockyardError):
        return err
    err = first_error(err)
    if isinstance(err, RegistryError):
        if err.code == "DENIED":
            return PullNotFound(f"pull access denied for {ref.familiar_name}, repository does "
                                f"not exist or may require 'docker login': {err}")
        if err.code == "MANIFEST_UNKNOWN":
            return PullNotFound(f"manifest for {ref.familiar()} not found: {err}")
        if err.code == "NAME_UNKNOWN":
            return PullNotFound(f"repository {ref.familiar_name} not found: {err}")
        if err.code == "UNAUTHORIZED":
            return PullUnauthorized(str(err))
    return RegistryFailure(str(err))


def translate_push_error(err: BaseException) -> Exception:
    """A push error as dockerd reports it: the upload path unwraps a missing
    credentials error to its bare message (retryOnError's DoNotRetry)."""
    if isinstance(err, errdefs.DockyardError):
        return err
    if isinstance(err, RequestFailed) and str(err.reason) == NO_BASIC_AUTH_CREDENTIALS:
        return PullUnauthorized(NO_BASIC_AUTH_CREDENTIALS)
    err = first_error(err)
    if isinstance(err, RegistryError) and err.code == "UNAUTHORIZED":
        return PullUnauthorized(str(err))
    return RegistryFailure(str(err))
