"""The pull-through cache: a registry that answers pulls from an upstream registry.

`serve --proxy URL` makes the registry a cache of the registry at URL, as
distribution's `proxy.remoteurl` does. It serves what it has stored; on a
miss it fetches from the upstream, stores, and serves:

    manifest by digest   stored? served. Else fetched by that digest, its bytes
                         checked against it, stored, served.
    manifest by tag      the upstream is asked first (HEAD, which costs no pull
                         on registries that count them) for the digest the tag
                         names now; the tag is pointed there, fetching the
                         manifest by digest when it is not stored yet. When the
                         upstream cannot be reached, fails, or no longer knows
                         the tag, the cache answers with what the tag named
                         when it was last seen (distribution does the same).
    blob                 stored and linked? served. Else streamed from the
                         upstream to the client and into an upload session at
                         once, hashed on the way; the last chunk is held back
                         until the digest is verified and the blob committed,
                         so a client never receives a complete body that does
                         not match (the connection is cut instead, and nothing
                         is stored). A Range request on a miss is served once
                         the whole blob is stored.

Manifests are stored without the push-time check that their blobs are in the
repository: a cache has a manifest before the blobs it names, and fetches
each when it is first asked for. Everything that changes the registry (blob
uploads, manifest puts, deletes) is refused with 405 UNSUPPORTED, as in
distribution's proxy mode. Listings:

    tags list            the upstream's, every page of it (then paginated
                         here as any tags list), as distribution's proxy tag
                         service does; the cache's own when the upstream
                         cannot be reached, fails, or does not know the name.
    referrers            the upstream's, when it serves the referrers API
                         (filtered here by artifactType if it did not);
                         otherwise, or when it cannot be reached, the cache's.
                         (distribution has no referrers API to follow.)
    catalog              the cache's only: distribution's proxy answers
                         `_catalog` from its local storage too; an upstream's
                         catalog is often refused (Docker Hub) and would list
                         what the cache cannot serve offline.

Pages of an upstream listing are followed through its `Link: <...>;
rel="next"` headers, but only to the same listing on the upstream (a Link
elsewhere ends the listing), and at most `MAX_PAGES` of them.

The upstream's authentication is found out as docker does it: a request goes
without credentials; a 401 names the scheme in `WWW-Authenticate`. `Basic`:
the configured username and password go with every request from then on.
`Bearer realm=...,service=...,scope=...`: a token is fetched from the realm
(with the credentials as basic auth, if any), remembered per repository until
shortly before it expires, and the request is repeated with it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from typing import Awaitable, Callable
from urllib.parse import urlencode, urlsplit

import aiohttp
from aiohttp import web

from dockyard import errdefs
from dockyard.registry.digest import Digest, digest_of, is_digest, parse_digest
from dockyard.registry.errors import BlobUnknown, DigestInvalid, RegistryError
from dockyard.registry.manifest import KNOWN, MAX_SIZE, OCI_INDEX
from dockyard.registry.names import validate_tag
from dockyard.registry.storage import Registry
from dockyard.registry.uploads import CHUNK

log = logging.getLogger(__name__)

Run = Callable[..., Awaitable]  # runs a storage call off the event loop (app._run)
ACCEPT = ", ".join(sorted(KNOWN))
TIMEOUT = aiohttp.ClientTimeout(total=None, connect=10, sock_connect=10, sock_read=60)
TOKEN_MARGIN = 10  # seconds before a token's expiry that it is no longer used
MAX_PAGES = 100   # of one upstream listing (a registry that links in a circle stops here)
_NEXT = re.compile(r'<([^>]*)>\s*;\s*rel="?next"?', re.IGNORECASE)


@dataclass(frozen=True)
class ProxySettings:
    remoteurl: str                  # distribution's word for the upstream's URL
    username: str | None = None
    password: str | None = None


class UpstreamError(errdefs.Unavailable):
    """The upstream could not be reached, refused us, or sent what it should not."""


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="r",service="s"` → ("bearer", {"realm": "r", "service": "s"})."""
    scheme, _, params = header.strip().partition(" ")
    return scheme.lower(), dict(re.findall(r'(\w+)="([^"]*)"', params))


class Upstream:
    """HTTP to the upstream registry, authenticated as its challenge asks."""

    def __init__(self, settings: ProxySettings):
        self.url = settings.remoteurl.rstrip("/")
        self._credentials = (aiohttp.BasicAuth(settings.username, settings.password or "")
                             if settings.username else None)
        self._scheme: str | None = None  # "basic" or "bearer", once a challenge said
        self._tokens: dict[str, tuple[str, float]] = {}  # scope → (token, expiry)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:  # made in the loop that serves
            # blobs are stored byte for byte: never decoded on the way
            self._session = aiohttp.ClientSession(timeout=TIMEOUT, auto_decompress=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _authorization(self, scope: str) -> dict[str, str]:
        if self._scheme == "basic" and self._credentials is not None:
            return {"Authorization": self._credentials.encode()}
        token, expiry = self._tokens.get(scope, ("", 0.0))
        if self._scheme == "bearer" and token and time.monotonic() < expiry:
            return {"Authorization": f"Bearer {token}"}
        return {}

    async def request(self, method: str, path: str, name: str,
                      headers: dict[str, str] | None = None) -> aiohttp.ClientResponse:
        """The upstream's response to `method path` (the caller releases it),
        authenticated for pulling `name`; UpstreamError if there is none."""
        scope = f"repository:{name}:pull"
        for attempt in (1, 2):
            try:
                response = await self._client().request(
                    method, self.url + path, headers={**(headers or {}),
                                                      **self._authorization(scope)})
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
                raise UpstreamError(f"upstream {self.url} unreachable: {e!r}") from e
            if response.status != 401 or attempt == 2:
                return response
            challenge = response.headers.get("WWW-Authenticate", "")
            response.release()
            await self._authenticate(challenge, scope)
        raise AssertionError("unreachable")

    async def _authenticate(self, challenge: str, scope: str) -> None:
        scheme, params = parse_challenge(challenge)
        if scheme == "basic":
            if self._credentials is None:
                raise UpstreamError(f"upstream {self.url} wants credentials "
                                    "(--proxy-username, --proxy-password)")
            self._scheme = "basic"
        elif scheme == "bearer" and params.get("realm"):
            self._tokens[scope] = await self._token(params, scope)
            self._scheme = "bearer"
        else:
            raise UpstreamError(f"upstream {self.url}: unsupported challenge {challenge!r}")

    async def _token(self, params: dict[str, str], scope: str) -> tuple[str, float]:
        query = {"scope": params.get("scope") or scope}
        if params.get("service"):
            query["service"] = params["service"]
        try:
            async with self._client().get(params["realm"], params=query,
                                          auth=self._credentials) as response:
                if response.status != 200:
                    raise UpstreamError(f"token endpoint {params['realm']} answered "
                                        f"{response.status}")
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as e:
            raise UpstreamError(f"token endpoint {params['realm']}: {e!r}") from e
        token = body.get("token") or body.get("access_token")
        if not token:
            raise UpstreamError(f"token endpoint {params['realm']} sent no token")
        lifetime = int(body.get("expires_in") or 60)  # the token spec's default
        return token, time.monotonic() + max(lifetime - TOKEN_MARGIN, 0)


class Proxy:
    """The cache's side of each pull; see the module docstring."""

    def __init__(self, registry: Registry, upstream: Upstream):
        self.registry = registry
        self.upstream = upstream

    async def close(self) -> None:
        await self.upstream.close()

    # --- manifests ---------------------------------------------------------------

    async def pull_manifest(self, name: str, reference: str, run: Run) -> None:
        """Bring the cache's manifest `reference` of `name` up to date with the
        upstream, when the upstream can say; the caller then serves from storage."""
        try:
            if is_digest(reference):
                d = parse_digest(reference)
                if not await run(self.registry.has_manifest, name, d):
                    await self._fetch_manifest(name, d, None, run)
                return
            validate_tag(reference)
            d = await self._tag_digest(name, reference, run)
            if d is None:
                return
            if await run(self.registry.has_manifest, name, d):
                await run(self.registry.tag_manifest, name, reference, d)
            else:
                await self._fetch_manifest(name, d, reference, run)
        except UpstreamError as e:
            log.warning("proxy: %s; %s:%s answered from the cache", e, name, reference)

    async def _tag_digest(self, name: str, tag: str, run: Run) -> Digest | None:
        """The digest `tag` names upstream now; None if the upstream does not know it."""
        path = f"/v2/{name}/manifests/{tag}"
        response = await self.upstream.request("HEAD", path, name, {"Accept": ACCEPT})
        response.release()
        if response.status == 404:
            return None
        if response.status != 200:
            raise UpstreamError(f"upstream answered {response.status} to HEAD {path}")
        header = response.headers.get("Docker-Content-Digest")
        if header:
            try:
                return parse_digest(header)
            except DigestInvalid as e:
                raise UpstreamError(f"upstream sent digest {header!r} for {path}") from e
        # No digest in the HEAD answer: the manifest itself says (stored and tagged here).
        return await self._fetch_manifest(name, None, tag, run)

    async def _fetch_manifest(self, name: str, d: Digest | None, tag: str | None,
                              run: Run) -> Digest:
        """Fetch the manifest `d` (or, without a digest, the one `tag` names),
        check its bytes, store it (tagged with `tag`, if any); its digest."""
        path = f"/v2/{name}/manifests/{d or tag}"
        response = await self.upstream.request("GET", path, name, {"Accept": ACCEPT})
        try:
            if response.status != 200:
                raise UpstreamError(f"upstream answered {response.status} to GET {path}")
            data = await response.content.read(MAX_SIZE + 1)
            content_type = response.headers.get("Content-Type")
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            raise UpstreamError(f"upstream {self.upstream.url}: GET {path}: {e!r}") from e
        finally:
            response.release()
        if len(data) > MAX_SIZE:
            raise UpstreamError(f"upstream manifest {path} is larger than {MAX_SIZE} bytes")
        actual = digest_of(data, d.algorithm) if d else digest_of(data)
        if d is not None and actual != d:
            raise UpstreamError(f"upstream sent manifest {actual} for {path}")
        try:
            await run(self.registry.cache_manifest, name, actual, data, content_type, tag)
        except RegistryError as e:
            raise UpstreamError(f"upstream manifest {path}: {e.message}") from e
        log.info("proxy: cached manifest %s of %s", actual, name)
        return actual

    # --- listings ----------------------------------------------------------------

    async def tags(self, name: str) -> list[str] | None:
        """The upstream's tags of `name`, sorted; None when the upstream cannot
        say (the caller answers from the cache)."""
        try:
            tags = await self._listing(f"/v2/{name}/tags/list", name, "tags", {})
        except UpstreamError as e:
            log.warning("proxy: %s; tags of %s answered from the cache", e, name)
            return None
        if not all(isinstance(t, str) for t in tags):
            log.warning("proxy: upstream sent tags of %s that are not strings; "
                        "answered from the cache", name)
            return None
        return sorted(set(tags))

    async def referrers(self, name: str, subject: Digest,
                        artifact_type: str | None) -> list[dict] | None:
        """The descriptors of the upstream's referrers of `subject` (of
        `artifact_type` only, if given); None when the upstream does not serve
        the referrers API or cannot be reached (the caller answers from the cache)."""
        path = f"/v2/{name}/referrers/{subject}"
        if artifact_type is not None:
            path += "?" + urlencode({"artifactType": artifact_type})
        try:
            found = await self._listing(path, name, "manifests", {"Accept": OCI_INDEX})
        except UpstreamError as e:
            log.warning("proxy: %s; referrers of %s@%s answered from the cache",
                        e, name, subject)
            return None
        found = [d for d in found if isinstance(d, dict)]
        if artifact_type is not None:  # harmless if the upstream filtered already
            found = [d for d in found if d.get("artifactType") == artifact_type]
        return found

    async def _listing(self, path: str, name: str, key: str,
                       headers: dict[str, str]) -> list:
        """The list under `key` in the upstream's answers to `GET path`, every page."""
        found: list = []
        listing = urlsplit(path).path
        for _ in range(MAX_PAGES):
            body, link = await self._get_json(path, name, headers)
            found += body.get(key) or []
            path = self._next_page(link, listing)
            if path is None:
                return found
        log.warning("proxy: upstream listing %s has more than %d pages; the rest is left out",
                    listing, MAX_PAGES)
        return found

    async def _get_json(self, path: str, name: str,
                        headers: dict[str, str]) -> tuple[dict, str | None]:
        response = await self.upstream.request("GET", path, name, headers)
        try:
            if response.status != 200:
                raise UpstreamError(f"upstream answered {response.status} to GET {path}")
            body = await response.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as e:
            raise UpstreamError(f"upstream {self.upstream.url}: GET {path}: {e!r}") from e
        finally:
            response.release()
        if not isinstance(body, dict):
            raise UpstreamError(f"upstream sent no JSON object for GET {path}")
        return body, response.headers.get("Link")

    def _next_page(self, link: str | None, listing: str) -> str | None:
        """The path and query of the next page, when `link` names one of `listing`
        on the upstream (credentials go nowhere else)."""
        match = _NEXT.search(link or "")
        if match is None:
            return None
        target = urlsplit(match[1])
        if target.netloc and f"{target.scheme}://{target.netloc}" != self.upstream.url:
            return None
        if target.path != listing:
            return None
        return f"{target.path}?{target.query}" if target.query else target.path

    # --- blobs -------------------------------------------------------------------

    async def serve_blob(self, request: web.Request, name: str, d: Digest,
                         headers: dict[str, str], run: Run) -> web.StreamResponse | None:
        """A blob the cache has not got: its response, streamed from the upstream
        while it is stored; or None once it is stored, for the caller to serve
        (a Range request). BlobUnknown if the upstream has not got it either."""
        path = f"/v2/{name}/blobs/{d}"
        try:
            upstream = await self.upstream.request(request.method, path, name)
        except UpstreamError as e:
            log.warning("proxy: %s", e)
            raise BlobUnknown(detail={"digest": str(d)}) from e
        try:
            if upstream.status != 200:
                log.warning("proxy: upstream answered %s to %s %s", upstream.status,
                            request.method, path)
                raise BlobUnknown(detail={"digest": str(d)})
            if request.method == "HEAD":
                length = upstream.headers.get("Content-Length", "0")
                return web.Response(headers={**headers, "Content-Length": length})
            if "Range" in request.headers:
                await self._store(name, d, upstream, run)
                return None
            return await self._stream(request, name, d, upstream, headers, run)
        finally:
            upstream.release()

    async def _store(self, name: str, d: Digest, upstream: aiohttp.ClientResponse,
                     run: Run) -> None:
        upload = await run(self.registry.uploads.start, name)
        try:
            async for chunk in upstream.content.iter_chunked(CHUNK):
                await run(upload.write, chunk)
        except BaseException:
            await run(upload.cancel)
            raise
        await run(self.registry.finish_upload, name, upload, d)  # discards on a mismatch
        log.info("proxy: cached blob %s of %s", d, name)

    async def _stream(self, request: web.Request, name: str, d: Digest,
                      upstream: aiohttp.ClientResponse, headers: dict[str, str],
                      run: Run) -> web.StreamResponse:
        """To the client and into storage at once, the last chunk held back until
        the digest is verified and the blob committed."""
        response = web.StreamResponse(headers=headers)
        if upstream.content_length is not None:
            response.content_length = upstream.content_length
        upload = await run(self.registry.uploads.start, name)
        held = b""
        try:
            await response.prepare(request)
            async for chunk in upstream.content.iter_chunked(CHUNK):
                await run(upload.write, chunk)
                if held:
                    await response.write(held)
                held = chunk
        except BaseException:
            await run(upload.cancel)
            raise
        try:
            await run(self.registry.finish_upload, name, upload, d)
        except DigestInvalid as e:
            log.error("proxy: upstream sent blob %s of %s that does not match: %s; "
                      "the client's connection is cut", d, name, e.message)
            # Part of the body is out: no error response can follow, only a cut.
            raise ConnectionAbortedError(f"blob {d} from the upstream does not match") from e
        log.info("proxy: cached blob %s of %s", d, name)
        await response.write(held)
        await response.write_eof()
        return response
