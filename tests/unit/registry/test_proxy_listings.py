"""The pull-through cache's listings: tags and referrers from the upstream while
it answers, from the cache when it does not; the catalog from the cache only.

Upstream and cache are aiohttp applications in this process, on 127.0.0.1:
the upstream is either a registry of ours over memory or a small fake that
pages its answers (or has no referrers API).
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from registry_fill import OCI_MANIFEST, descriptor, image_manifest
from dockyard.registry.app import build_app
from dockyard.registry.digest import digest_of
from dockyard.registry.memory import MemoryDriver
from dockyard.registry.proxy import Proxy, ProxySettings, Upstream
from dockyard.registry.storage import Registry

SIGNATURE = "application/vnd.example.signature"
SBOM = "application/vnd.example.sbom"


def _upstream_registry() -> tuple[Registry, str]:
    """A registry with lib/app tagged a, b, c and two referrers of the image; its subject."""
    registry = Registry(MemoryDriver())
    image = image_manifest(registry, "lib/app", [b"layer"])
    for tag in ("b", "a", "c"):
        registry.put_manifest("lib/app", tag, image, OCI_MANIFEST)
    for kind in (SIGNATURE, SBOM):
        referrer = image_manifest(registry, "lib/app", [kind.encode()], artifactType=kind,
                                  subject=descriptor(OCI_MANIFEST, image))
        registry.put_manifest("lib/app", str(digest_of(referrer)), referrer, OCI_MANIFEST)
    return registry, str(digest_of(image))


async def _serve(app: web.Application) -> TestServer:
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


async def _cache_of(upstream: TestServer) -> tuple[TestClient, Registry]:
    registry = Registry(MemoryDriver())
    settings = ProxySettings(f"http://127.0.0.1:{upstream.port}")
    app = build_app(registry, proxy=Proxy(registry, Upstream(settings)), workers=4)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return client, registry


async def _get(client: TestClient, path: str) -> tuple[int, dict, dict]:
    response = await client.get(path)
    return response.status, dict(response.headers), json.loads(await response.read())


def test_tags_come_from_the_upstream_then_from_the_cache():
    async def scenario():
        upstream_registry, subject = _upstream_registry()
        upstream = await _serve(build_app(upstream_registry, workers=4))
        cache, cache_registry = await _cache_of(upstream)
        try:
            status, _, body = await _get(cache, "/v2/lib/app/tags/list")
            assert (status, body) == (200, {"name": "lib/app", "tags": ["a", "b", "c"]})
            assert not cache_registry.repository_exists("lib/app")  # nothing stored

            # paginated here like any tags list; bad input answered as ever
            status, headers, body = await _get(cache, "/v2/lib/app/tags/list?n=2")
            assert body["tags"] == ["a", "b"]
            assert headers["Link"] == '</v2/lib/app/tags/list?n=2&last=b>; rel="next"'
            status, _, body = await _get(cache, "/v2/lib/app/tags/list?n=x")
            assert status == 400 and body["errors"][0]["code"] == "PAGINATION_NUMBER_INVALID"

            # a tag the upstream drops is gone here too; one it adds appears
            upstream_registry.delete_manifest("lib/app", "c")
            upstream_registry.put_manifest("lib/app", "d", upstream_registry.get_manifest(
                "lib/app", "a")[2], OCI_MANIFEST)
            assert (await _get(cache, "/v2/lib/app/tags/list"))[2]["tags"] == ["a", "b", "d"]

            # unknown upstream: the cache's answer (it knows nothing either)
            status, _, body = await _get(cache, "/v2/lib/nothing/tags/list")
            assert status == 404 and body["errors"][0]["code"] == "NAME_UNKNOWN"

            # the catalog is the cache's own, as in distribution's proxy
            assert (await _get(cache, "/v2/_catalog"))[2] == {"repositories": []}
            assert (await cache.get("/v2/lib/app/manifests/a")).status == 200
            assert (await _get(cache, "/v2/_catalog"))[2] == {"repositories": ["lib/app"]}

            # the upstream goes away: what the cache has seen
            await upstream.close()
            status, _, body = await _get(cache, "/v2/lib/app/tags/list")
            assert (status, body["tags"]) == (200, ["a"])
        finally:
            await cache.close()
            await upstream.close()

    asyncio.run(scenario())


def test_referrers_come_from_the_upstream_filtered_then_from_the_cache():
    async def scenario():
        upstream_registry, subject = _upstream_registry()
        upstream = await _serve(build_app(upstream_registry, workers=4))
        cache, cache_registry = await _cache_of(upstream)
        path = f"/v2/lib/app/referrers/{subject}"
        try:
            status, headers, body = await _get(cache, path)
            assert status == 200 and headers["Content-Type"] == body["mediaType"]
            assert sorted(d["artifactType"] for d in body["manifests"]) == [SBOM, SIGNATURE]
            status, headers, body = await _get(cache, f"{path}?artifactType={SBOM}")
            assert [d["artifactType"] for d in body["manifests"]] == [SBOM]
            assert headers["OCI-Filters-Applied"] == "artifactType"
            status, _, body = await _get(cache, "/v2/lib/app/referrers/sha256:nothex")
            assert status == 400 and body["errors"][0]["code"] == "DIGEST_INVALID"

            # offline, the cache lists the referrers it has stored (none pulled yet)
            await upstream.close()
            assert (await _get(cache, path))[2]["manifests"] == []
        finally:
            await cache.close()
            await upstream.close()

    asyncio.run(scenario())


def _paging_upstream(pages: dict[str, tuple[dict, str | None]]) -> web.Application:
    """Answers GET path?query from `pages` (body, Link); 404 for anything else,
    as a registry without the referrers API does."""

    async def handle(request: web.Request) -> web.Response:
        body, link = pages.get(request.path_qs, (None, None))
        if body is None:
            return web.json_response({"errors": [{"code": "NOT_FOUND"}]}, status=404)
        return web.json_response(body, headers={"Link": link} if link else {})

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    return app


def test_upstream_pages_are_followed_only_on_the_upstream():
    async def scenario():
        pages: dict = {}
        upstream = await _serve(_paging_upstream(pages))
        base = f"http://127.0.0.1:{upstream.port}"
        pages.update({
            "/v2/lib/app/tags/list": ({"name": "lib/app", "tags": ["z", "y"]},
                                      '</v2/lib/app/tags/list?n=2&last=y>; rel="next"'),
            "/v2/lib/app/tags/list?n=2&last=y": ({"name": "lib/app", "tags": ["x"]},
                                                 f'<{base}/v2/lib/app/tags/list?last=x>; '
                                                 'rel="next"'),
            "/v2/lib/app/tags/list?last=x": ({"name": "lib/app", "tags": ["w"]},
                                             '<http://elsewhere.invalid/v2/lib/app/tags/list'
                                             '?last=w>; rel="next"'),
            "/v2/lib/other/tags/list": ({"name": "lib/other", "tags": ["1"]},
                                        '</v2/lib/app/tags/list>; rel="next"'),
        })
        cache, _ = await _cache_of(upstream)
        try:
            assert (await _get(cache, "/v2/lib/app/tags/list"))[2]["tags"] == ["w", "x", "y", "z"]
            assert (await _get(cache, "/v2/lib/other/tags/list"))[2]["tags"] == ["1"]
            # no referrers API upstream (404): the cache's answer
            subject = str(digest_of(b"anything"))
            status, _, body = await _get(cache, f"/v2/lib/app/referrers/{subject}")
            assert (status, body["manifests"]) == (200, [])
        finally:
            await cache.close()
            await upstream.close()

    asyncio.run(scenario())
