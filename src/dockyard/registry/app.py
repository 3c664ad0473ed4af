"""The registry's HTTP API (OCI distribution spec v1.1) as an aiohttp application.

    GET    /v2/                                      API version check (and auth challenge)
    GET    /v2/_catalog?n=&last=                     repositories, paginated
    GET    /v2/<name>/tags/list?n=&last=             tags, paginated
    GET    /v2/<name>/referrers/<digest>?artifactType=
    HEAD   /v2/<name>/manifests/<reference>          reference: a tag or a digest
    GET    /v2/<name>/manifests/<reference>
    PUT    /v2/<name>/manifests/<reference>
    DELETE /v2/<name>/manifests/<reference>          a tag: untag; a digest: the manifest
    HEAD   /v2/<name>/blobs/<digest>
    GET    /v2/<name>/blobs/<digest>                 with Range → 206
    DELETE /v2/<name>/blobs/<digest>
    POST   /v2/<name>/blobs/uploads/                 a session; ?digest= monolithic;
                                                     ?mount=&from= cross-repository mount
    GET    /v2/<name>/blobs/uploads/<uuid>           where the session is (Range: 0-N)
    PATCH  /v2/<name>/blobs/uploads/<uuid>           a chunk (Content-Range: start-end)
    PUT    /v2/<name>/blobs/uploads/<uuid>?digest=   last chunk, verify, commit
    DELETE /v2/<name>/blobs/uploads/<uuid>           cancel
    GET    /token                                    the token endpoint (token auth only)

Routes are matched in the order above (uploads before blobs, so that
"uploads" is never read as a digest); `<name>` may hold "/".

One middleware does, in order: authorize the request's scopes (auth.py), refuse
writes in read-only and pull-through cache modes, check the repository name,
run the handler, and turn errors into the spec's bodies through the one table
below (`STATUS`). Storage
calls run on a thread pool of the app's own: they touch the disk (or, for
another driver, the network), and the event loop must keep serving while a big
blob is hashed or fsync'd. Blob bytes are never held whole in memory: uploads
are streamed to the driver a megabyte at a time, and downloads are sent with
sendfile(2) (aiohttp's FileResponse, which also answers Range) when the driver
has a local file, or streamed from its reader otherwise. As a pull-through
cache (proxy.py), manifest and blob reads first give the proxy its chance to
fetch from the upstream what storage lacks, and tags and referrers are the
upstream's when it can say (the catalog stays the cache's own).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Awaitable, Callable
from urllib.parse import urlencode

from aiohttp import web

from dockyard import errdefs
from dockyard.registry import errors as e
from dockyard.registry.auth import Access, AccessController, AllowAll, TokenServer
from dockyard.registry.digest import parse_digest
from dockyard.registry.manifest import MAX_SIZE, OCI_INDEX
from dockyard.registry.names import validate_name
from dockyard.registry.proxy import Proxy
from dockyard.registry.storage import Registry
from dockyard.registry.uploads import CHUNK, Upload

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

API_VERSION_HEADER = ("Docker-Distribution-API-Version", "registry/2.0")
READS = frozenset({"GET", "HEAD"})

STATUS: dict[type, int] = {
    e.RangeInvalid: 416,
    e.TooLarge: 413,
    e.BlobUnknown: 404,
    e.BlobUploadInvalid: 400,
    e.BlobUploadUnknown: 404,
    e.DigestInvalid: 400,
    e.ManifestBlobUnknown: 400,
    e.ManifestInvalid: 400,
    e.ManifestUnknown: 404,
    e.NameInvalid: 400,
    e.NameUnknown: 404,
    e.PaginationNumberInvalid: 400,
    e.SizeInvalid: 400,
    e.TagInvalid: 400,
    e.Unauthorized: 401,
    e.Denied: 403,
    e.Unsupported: 405,
}

REGISTRY = web.AppKey("registry", Registry)
ACCESS = web.AppKey("access", AccessController)
TOKENS = web.AppKey("tokens", object)
READ_ONLY = web.AppKey("read_only", bool)
EXECUTOR = web.AppKey("executor", ThreadPoolExecutor)
PROXY = web.AppKey("proxy", object)  # a Proxy, or None


def status_of(error: e.RegistryError) -> int:
    return next(STATUS[k] for k in type(error).__mro__ if k in STATUS)


def error_response(error: e.RegistryError) -> web.Response:
    response = web.Response(status=status_of(error), content_type="application/json",
                            text=json.dumps({"errors": [error.body()]}))
    if isinstance(error, e.Unauthorized) and error.challenge:
        response.headers["WWW-Authenticate"] = error.challenge
    if isinstance(error, e.RangeInvalid):
        response.headers["Range"] = _range(error.size)
    return response


def _range(size: int) -> str:
    """The Range header of an upload: distribution's "0-<last byte>" ("0-0" when empty)."""
    return f"0-{max(size - 1, 0)}"


async def _run(request: web.Request, fn, *args):
    return await asyncio.get_running_loop().run_in_executor(
        request.app[EXECUTOR], partial(fn, *args))


# --- the middleware: auth, read-only, names, errors -----------------------------


def wanted_access(request: web.Request) -> list[Access]:
    """The scopes a request needs, in the token spec's words."""
    name = request.match_info.get("name")
    if name is None:
        if request.path.rstrip("/") == "/v2/_catalog":
            return [Access("registry", "catalog", ("*",))]
        return []
    if request.method in READS:
        actions: tuple[str, ...] = ("pull",)
    elif request.method == "DELETE" and "uuid" not in request.match_info:
        actions = ("delete",)
    else:
        actions = ("pull", "push")
    return [Access("repository", name, actions)]


@web.middleware
async def _middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        if request.path != "/token":
            authorization = request.headers.get("Authorization")
            await _run(request, request.app[ACCESS].authorize, authorization,
                       wanted_access(request))
            if request.app[READ_ONLY] and request.method not in READS:
                raise e.Unsupported("registry is in read-only mode")
            if request.app[PROXY] is not None and request.method not in READS:
                raise e.Unsupported("registry is a pull-through cache: it does not take pushes")
        if "name" in request.match_info:
            validate_name(request.match_info["name"])
        return await handler(request)
    except e.RegistryError as error:
        return error_response(error)
    except web.HTTPMethodNotAllowed:
        return error_response(e.Unsupported(f"{request.method} is not supported here"))
    except web.HTTPException:
        raise
    except errdefs.DockyardError as error:  # a kind without a spec code: a bug here
        log.exception("registry: %s %s", request.method, request.path)
        return web.json_response({"errors": [{"code": "UNKNOWN", "message": str(error),
                                               "detail": None}]}, status=500)


async def _add_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers[API_VERSION_HEADER[0]] = API_VERSION_HEADER[1]


# --- base, catalog, tags --------------------------------------------------------


async def base(request: web.Request) -> web.Response:
    return web.json_response({})


def _page_args(request: web.Request) -> tuple[int | None, str]:
    n = request.query.get("n")
    if n is not None:
        if not n.isdigit():
            raise e.PaginationNumberInvalid(detail={"n": n})
        return int(n), request.query.get("last", "")
    return None, request.query.get("last", "")


def _paginate(request: web.Request, items: list[str], key: str, body: dict) -> web.Response:
    """`items` (sorted) after `last`, at most `n`, with a `Link` to the next page."""
    n, last = _page_args(request)
    rest = [i for i in items if i > last] if last else items
    page = rest if n is None else rest[:n]
    response = web.json_response({**body, key: page})
    if n is not None and n > 0 and len(rest) > n:
        query = urlencode({"n": n, "last": page[-1]})
        response.headers["Link"] = f'<{request.path}?{query}>; rel="next"'
    return response


async def catalog(request: web.Request) -> web.Response:
    names = await _run(request, request.app[REGISTRY].repositories)
    return _paginate(request, names, "repositories", {})


async def tags_list(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    tags = None
    if request.app[PROXY] is not None:
        tags = await request.app[PROXY].tags(name)
    if tags is None:
        tags = await _run(request, request.app[REGISTRY].tags, name)
    return _paginate(request, tags, "tags", {"name": name})


async def referrers(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    subject = parse_digest(request.match_info["digest"])
    artifact_type = request.query.get("artifactType") or None
    found = None
    if request.app[PROXY] is not None:
        found = await request.app[PROXY].referrers(name, subject, artifact_type)
    if found is None:
        found = await _run(request, request.app[REGISTRY].referrers, name, subject,
                           artifact_type)
    response = web.Response(
        body=json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": found}),
        content_type=OCI_INDEX)
    if artifact_type is not None:
        response.headers["OCI-Filters-Applied"] = "artifactType"
    return response


# --- manifests ------------------------------------------------------------------


async def get_manifest(request: web.Request) -> web.Response:
    name, reference = request.match_info["name"], request.match_info["reference"]
    if request.app[PROXY] is not None:
        await request.app[PROXY].pull_manifest(name, reference, partial(_run, request))
    digest, media_type, data = await _run(request, request.app[REGISTRY].get_manifest,
                                          name, reference)
    headers = {"Content-Type": media_type, "Docker-Content-Digest": str(digest),
               "ETag": f'"{digest}"'}
    if request.method == "HEAD":
        return web.Response(headers={**headers, "Content-Length": str(len(data))})
    return web.Response(body=data, headers=headers)


async def _read_limited(request: web.Request, limit: int) -> bytes:
    data = bytearray()
    async for chunk in request.content.iter_chunked(CHUNK):
        data += chunk
        if len(data) > limit:
            raise e.TooLarge(f"manifest larger than {limit} bytes")
    return bytes(data)


async def put_manifest(request: web.Request) -> web.Response:
    name, reference = request.match_info["name"], request.match_info["reference"]
    data = await _read_limited(request, MAX_SIZE)
    digest, manifest = await _run(request, request.app[REGISTRY].put_manifest, name,
                                  reference, data, request.headers.get("Content-Type"))
    headers = {"Location": f"/v2/{name}/manifests/{digest}",
               "Docker-Content-Digest": str(digest)}
    if manifest.subject is not None:
        headers["OCI-Subject"] = str(manifest.subject.digest)
    return web.Response(status=201, headers=headers)


async def delete_manifest(request: web.Request) -> web.Response:
    name, reference = request.match_info["name"], request.match_info["reference"]
    await _run(request, request.app[REGISTRY].delete_manifest, name, reference)
    return web.Response(status=202)


# --- blobs ----------------------------------------------------------------------

_RANGE = re.compile(r"bytes=(\d*)-(\d*)", re.ASCII)


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single `Range: bytes=` request, None when it is
    not satisfiable; ValueError when it is not a single byte range."""
    match = _RANGE.fullmatch(header.strip())
    if match is None or match.groups() == ("", ""):
        raise ValueError(header)
    first, last = match.groups()
    if first == "":  # a suffix: the last N bytes
        start, end = max(size - int(last), 0), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        return None
    return start, end


async def get_blob(request: web.Request) -> web.StreamResponse:
    name, digest = request.match_info["name"], parse_digest(request.match_info["digest"])
    registry = request.app[REGISTRY]
    headers = {"Docker-Content-Digest": str(digest), "Content-Type": "application/octet-stream",
               "Accept-Ranges": "bytes", "ETag": f'"{digest}"'}
    try:
        info = await _run(request, registry.stat_blob, name, digest)
    except e.BlobUnknown:
        if request.app[PROXY] is None:
            raise
        served = await request.app[PROXY].serve_blob(request, name, digest, dict(headers),
                                                      partial(_run, request))
        if served is not None:
            return served
        info = await _run(request, registry.stat_blob, name, digest)  # stored just now
    if request.method == "HEAD":
        return web.Response(headers={**headers, "Content-Length": str(info.size)})
    if info.local_path is not None:
        return web.FileResponse(info.local_path, chunk_size=CHUNK, headers=headers)
    return await _stream_blob(request, registry, info, headers)


async def _stream_blob(request, registry, info, headers) -> web.StreamResponse:
    """A blob from a driver without local files, honouring a single Range."""
    start, end, status = 0, info.size - 1, 200
    if "Range" in request.headers:
        try:
            wanted = parse_range(request.headers["Range"], info.size)
        except ValueError:
            wanted = (0, info.size - 1)  # not a range we serve: the whole blob, as HTTP allows
        else:
            if wanted is None:
                return web.Response(status=416,
                                    headers={"Content-Range": f"bytes */{info.size}"})
            status = 206
            headers["Content-Range"] = f"bytes {wanted[0]}-{wanted[1]}/{info.size}"
        start, end = wanted
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = end - start + 1
    await response.prepare(request)
    reader = await _run(request, registry.open_blob, info.digest, start)
    try:
        remaining = end - start + 1
        while remaining > 0:
            chunk = await _run(request, reader.read, min(CHUNK, remaining))
            if not chunk:
                break
            await response.write(chunk)
            remaining -= len(chunk)
    finally:
        reader.close()
    await response.write_eof()
    return response


async def delete_blob(request: web.Request) -> web.Response:
    name, digest = request.match_info["name"], parse_digest(request.match_info["digest"])
    await _run(request, request.app[REGISTRY].delete_blob, name, digest)
    return web.Response(status=202)


# --- uploads --------------------------------------------------------------------


def _upload_headers(name: str, upload_uuid: str, size: int) -> dict[str, str]:
    return {"Location": f"/v2/{name}/blobs/uploads/{upload_uuid}", "Range": _range(size),
            "Docker-Upload-UUID": upload_uuid}


def _blob_created(name: str, digest) -> web.Response:
    return web.Response(status=201, headers={"Location": f"/v2/{name}/blobs/{digest}",
                                             "Docker-Content-Digest": str(digest)})


async def _receive(request: web.Request, upload: Upload) -> None:
    """Stream the request body into `upload`, a megabyte per thread hop."""
    buffer = bytearray()
    async for chunk in request.content.iter_chunked(CHUNK):
        buffer += chunk
        if len(buffer) >= CHUNK:
            await _run(request, upload.write, bytes(buffer))
            buffer.clear()
    if buffer:
        await _run(request, upload.write, bytes(buffer))


def _check_content_range(request: web.Request, upload: Upload) -> None:
    """A chunk must start where the upload ends (416 with the upload's Range if not)."""
    header = request.headers.get("Content-Range")
    if header is None:
        return
    match = re.fullmatch(r"(?:bytes )?(\d+)-(\d+)", header.strip())
    if match is None:
        raise e.RangeInvalid(f"invalid Content-Range {header!r}", size=upload.size)
    start, end = int(match[1]), int(match[2])
    if start != upload.size or end < start:
        raise e.RangeInvalid(f"Content-Range {header} does not continue the upload, which "
                             f"has {upload.size} bytes", size=upload.size)
    length = request.headers.get("Content-Length")
    if length is not None and int(length) != end - start + 1:
        raise e.RangeInvalid(f"Content-Range {header} does not match Content-Length "
                             f"{length}", size=upload.size)


async def start_upload(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    registry = request.app[REGISTRY]
    query = request.query
    if "mount" in query:
        mounted = await _mount(request, name, query["mount"], query.get("from", ""))
        if mounted is not None:
            return mounted
    upload = await _run(request, registry.uploads.start, name)
    if "digest" not in query:
        await _run(request, upload.close)
        return web.Response(status=202, headers=_upload_headers(name, upload.uuid, 0))
    try:
        digest = parse_digest(query["digest"])
        await _receive(request, upload)
        await _run(request, registry.finish_upload, name, upload, digest)
    except BaseException:
        await _run(request, upload.cancel)
        raise
    return _blob_created(name, digest)


async def _mount(request: web.Request, name: str, mount: str, source: str):
    """201 if `mount` could be linked from `source` (which the client may pull),
    else None: the client gets a new session and uploads."""
    digest = parse_digest(mount)
    try:
        validate_name(source)
        await _run(request, request.app[ACCESS].authorize,
                   request.headers.get("Authorization"),
                   [Access("repository", source, ("pull",))])
    except (e.NameInvalid, e.Unauthorized, e.Denied):
        return None
    if await _run(request, request.app[REGISTRY].mount_blob, name, digest, source):
        return _blob_created(name, digest)
    return None


async def upload_status(request: web.Request) -> web.Response:
    name, upload_uuid = request.match_info["name"], request.match_info["uuid"]
    size = await _run(request, request.app[REGISTRY].uploads.size, name, upload_uuid)
    return web.Response(status=204, headers=_upload_headers(name, upload_uuid, size))


async def patch_upload(request: web.Request) -> web.Response:
    name, upload_uuid = request.match_info["name"], request.match_info["uuid"]
    upload = await _run(request, request.app[REGISTRY].uploads.resume, name, upload_uuid)
    try:
        _check_content_range(request, upload)
        await _receive(request, upload)
    finally:
        await _run(request, upload.close)
    return web.Response(status=202, headers=_upload_headers(name, upload_uuid, upload.size))


async def finish_upload(request: web.Request) -> web.Response:
    name, upload_uuid = request.match_info["name"], request.match_info["uuid"]
    registry = request.app[REGISTRY]
    if "digest" not in request.query:
        raise e.DigestInvalid("the digest parameter is required to finish an upload")
    digest = parse_digest(request.query["digest"])
    upload = await _run(request, registry.uploads.resume, name, upload_uuid)
    try:
        _check_content_range(request, upload)
        await _receive(request, upload)
        await _run(request, registry.finish_upload, name, upload, digest)
    finally:
        await _run(request, upload.close)  # a no-op once committed or discarded
    return _blob_created(name, digest)


async def cancel_upload(request: web.Request) -> web.Response:
    name, upload_uuid = request.match_info["name"], request.match_info["uuid"]
    await _run(request, request.app[REGISTRY].uploads.cancel, name, upload_uuid)
    return web.Response(status=204)


# --- token endpoint -------------------------------------------------------------


async def token(request: web.Request) -> web.Response:
    server = request.app[TOKENS]
    if not isinstance(server, TokenServer):
        raise web.HTTPNotFound()
    issued = await _run(request, server.issue, request.headers.get("Authorization"),
                        request.query.get("service", ""), request.query.getall("scope", []))
    return web.json_response(issued)


# --- the application ------------------------------------------------------------


def build_app(registry: Registry, access: AccessController | None = None,
              read_only: bool = False, tokens: TokenServer | None = None,
              workers: int = 32, proxy: Proxy | None = None) -> web.Application:
    """The HTTP API over `registry`; see server.create_app for the configured one."""
    app = web.Application(middlewares=[_middleware], client_max_size=MAX_SIZE)
    app.on_response_prepare.append(_add_headers)
    app[REGISTRY] = registry
    app[ACCESS] = access or AllowAll()
    app[READ_ONLY] = read_only
    app[TOKENS] = tokens
    app[EXECUTOR] = ThreadPoolExecutor(workers, thread_name_prefix="registry")
    app[PROXY] = proxy

    async def shutdown(app: web.Application) -> None:
        if proxy is not None:
            await proxy.close()
        app[EXECUTOR].shutdown(wait=False, cancel_futures=True)

    app.on_cleanup.append(shutdown)
    # A name is checked by the middleware (NAME_INVALID), not by the route, so a
    # bad one gets the spec's error rather than a 404; "_catalog" is no name.
    name = "/v2/{name:[^_/].*}"
    r = app.router
    r.add_get("/v2/", base)
    r.add_get("/v2/_catalog", catalog)
    r.add_get(name + "/tags/list", tags_list)
    r.add_get(name + "/referrers/{digest}", referrers)
    for method, handler in (("POST", start_upload),):
        r.add_route(method, name + "/blobs/uploads/", handler)
        r.add_route(method, name + "/blobs/uploads", handler)
    for method, handler in (("GET", upload_status), ("PATCH", patch_upload),
                            ("PUT", finish_upload), ("DELETE", cancel_upload)):
        r.add_route(method, name + "/blobs/uploads/{uuid}", handler)
    r.add_get(name + "/blobs/{digest}", get_blob)  # GET also answers HEAD
    r.add_delete(name + "/blobs/{digest}", delete_blob)
    r.add_get(name + "/manifests/{reference}", get_manifest)
    r.add_put(name + "/manifests/{reference}", put_manifest)
    r.add_delete(name + "/manifests/{reference}", delete_manifest)
    r.add_get("/token", token)
    return app
