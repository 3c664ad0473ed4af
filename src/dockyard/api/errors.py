"""The one table that turns an error kind into an HTTP status (moby's httpstatus).

Anything that is not a DockyardError is a bug or a host failure: logged with
its traceback and answered with 500, never silently mapped.
"""

from __future__ import annotations

import json
import logging

from aiohttp import web

from dockyard import errdefs

log = logging.getLogger(__name__)

STATUS: list[tuple[type[errdefs.DockyardError], int]] = [
    (errdefs.NotFound, 404),
    (errdefs.InvalidParameter, 400),
    (errdefs.Conflict, 409),
    (errdefs.NotModified, 304),
    (errdefs.Forbidden, 403),
    (errdefs.Unauthorized, 401),
    (errdefs.Unavailable, 503),
    (errdefs.NotImplemented, 501),
    (errdefs.System, 500),
]


def status_of(err: BaseException) -> int:
    for kind, status in STATUS:
        if isinstance(err, kind):
            return status
    return 500


def error_response(status: int, message: str) -> web.Response:
    if status == 304:  # a 304 carries no body
        return web.Response(status=304)
    # Exactly "application/json", no charset: the docker CLI compares the header
    # verbatim before it decodes the message.
    body = (json.dumps({"message": message}) + "\n").encode()
    return web.Response(status=status, body=body, headers={"Content-Type": "application/json"})


def from_exception(err: BaseException) -> web.Response:
    status = status_of(err)
    if not isinstance(err, errdefs.DockyardError):
        log.exception("unexpected error", exc_info=err)
    return error_response(status, str(err) if str(err) else type(err).__name__)
