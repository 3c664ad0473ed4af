"""The distribution service: pull, push and login, wired into the image store.

`dockyard.distribution` speaks to registries and knows the content and
layer stores; this service decides what a request means (which reference,
which endpoints, which local images), gives the puller and pusher the few
store operations they need, sets the references a pull or push leaves
(the tag, and `name@<manifest digest>`, which inspect shows as
RepoDigests), and emits the `pull`/`push` events.

Each operation runs in a worker thread (the route's); `emit` hands the
JSON progress messages back to the event loop as they happen, and
`cancelled` is set when the client goes away.
"""

from __future__ import annotations

import os
import threading
from typing import Callable

from dockyard import __version__, errdefs
from dockyard.daemon.config import Config
from dockyard.daemon.images import ImageService
from dockyard.distribution import platforms, progress
from dockyard.distribution.authconfig import AuthConfig
from dockyard.distribution.client import connect, login
from dockyard.distribution.endpoints import DEFAULT_V2_REGISTRY, ServiceConfig, server_domain
from dockyard.distribution.errors import (RegistryFailure, translate_pull_error,
                                          translate_push_error)
from dockyard.distribution.metadata import V2Metadata, V2MetadataStore, source_repository
from dockyard.distribution.pull import Cancelled as PullCancelled
from dockyard.distribution.pull import MAX_DOWNLOAD_RETRIES, MAX_DOWNLOADS, ImageTarget, Puller
from dockyard.distribution.push import Cancelled as PushCancelled
from dockyard.distribution.push import MAX_UPLOADS, PushSource, Pusher
from dockyard.distribution.transport import Transport
from dockyard.image import mediatypes as mt
from dockyard.image import reference
from dockyard.image.reference import Reference

USER_AGENT = f"dockyard/{__version__} os/linux arch/{mt.host_arch()}"

Emit = Callable[[dict], None]


class DistributionService:
    def __init__(self, images: ImageService, registries: ServiceConfig,
                 events: Callable[..., None] | None = None, max_downloads: int = MAX_DOWNLOADS,
                 max_uploads: int = MAX_UPLOADS, max_download_retries: int = MAX_DOWNLOAD_RETRIES):
        self.images = images
        self.registries = registries
        self._events = events or (lambda *a, **k: None)
        self.max_downloads = max_downloads
        self.max_uploads = max_uploads
        self.max_download_retries = max_download_retries
        self.transport = Transport(USER_AGENT)
        # diff_id -> the blobs it was pushed or pulled as, kept beside the image store
        self.v2metadata = V2MetadataStore(
            images.layout.distribution_metadata if images is not None else None)

    @classmethod
    def from_config(cls, images: ImageService, config: Config,
                    events: Callable[..., None] | None = None) -> "DistributionService":
        """From the daemon's Config (`--insecure-registry`, `--registry-mirror`,
        `--max-concurrent-downloads`, `--max-concurrent-uploads`, `--max-download-attempts`)."""
        registries = ServiceConfig(list(config.insecure_registries), list(config.registry_mirrors),
                                   os.environ.get("DOCKYARD_HUB_ENDPOINT") or DEFAULT_V2_REGISTRY)
        return cls(images, registries, events, config.max_concurrent_downloads,
                   config.max_concurrent_uploads, config.max_download_attempts)

    # -- pull --------------------------------------------------------------------------
    def pull_reference(self, image: str, tag: str) -> Reference:
        """The reference `fromImage` and `tag` name, as dockerd's PullImage reads them."""
        image = image.removesuffix(":")  # "pull -a" may send "name:"
        try:
            ref = reference.parse_normalized(image)
            if tag:
                # The "tag" may be a digest.
                if tag.startswith("sha256:"):
                    ref = Reference(ref.domain, ref.path, None, None).with_digest(tag)
                else:
                    ref = ref.with_tag(tag)
        except reference.ReferenceError as e:
            raise errdefs.InvalidParameter(str(e)) from e
        return ref

    def pull(self, image: str, tag: str, platform: str, creds: AuthConfig, emit: Emit,
             cancelled: threading.Event) -> None:
        ref = self.pull_reference(image, tag)
        wanted = platforms.parse(platform) if platform else None
        endpoints = self.registries.pull_endpoints(ref.domain)
        # Each mirror on its own, then the registry's own endpoints together.
        groups = [[e] for e in endpoints if e.mirror] + [[e for e in endpoints if not e.mirror]]
        for n, group in enumerate(groups):
            try:
                updated = self._pull_from(group, ref, wanted, creds, emit, cancelled)
                break
            except PullCancelled:
                raise
            except Exception as e:  # noqa: BLE001 - a mirror's failure is not the user's
                if group[0].mirror and n < len(groups) - 1:
                    continue
                raise translate_pull_error(e, ref) from e
        status = "Downloaded newer image for" if updated else "Image is up to date for"
        emit(progress.message(f"Status: {status} {ref.familiar()}"))
        self._events("image", "pull", ref.familiar(), {"name": ref.familiar_name})

    def _pull_from(self, endpoints, ref: Reference, wanted, creds: AuthConfig, emit: Emit,
                   cancelled: threading.Event) -> bool:
        repo = connect(self.transport, endpoints, creds, ref.path, ["pull"])
        # A mirror is not where a push could find the blobs: only the
        # registry's own endpoints are recorded as their source.
        source = None if endpoints[0].mirror else source_repository(ref.domain, ref.path)
        puller = Puller(repo, self._image_target(source), emit, cancelled, wanted,
                        self.max_downloads, self.max_download_retries)
        if ref.tag or ref.digest:
            try:
                manifest = puller.fetch_manifest(ref)
            except Exception as e:  # noqa: BLE001 - worded for the reference
                raise translate_pull_error(e, ref) from e
            return puller.pull(ref, manifest)
        updated = False
        for tag in repo.tags():
            updated = puller.pull(ref.with_tag(tag)) or updated
        return updated

    def _image_target(self, source: str | None = None) -> ImageTarget:
        svc = self.images

        def learned(diff_id: str, digest: str, size: int, media_type: str) -> None:
            if source is not None:
                self.v2metadata.add(diff_id, V2Metadata(digest, source, size, media_type))

        return ImageTarget(content=svc.content, layers=svc.layers,
                           has_image=lambda image_id: image_id in svc.images,
                           add_image=lambda raw: svc.add_pulled(raw).id,
                           set_references=self._set_references, learned=learned)

    def _set_references(self, ref: Reference, manifest_digest: str, image_id: str) -> bool:
        """The tag (or digest) and name@<manifest digest> name the image; True
        if the reference named another image (or none) before."""
        store = self.images.images
        by_digest = Reference(ref.domain, ref.path, None, manifest_digest)
        previous = store.resolve(ref)
        store.tag(image_id, by_digest)
        if previous == image_id:
            return False
        if not ref.digest:
            store.tag(image_id, ref)
        return True

    # -- push ----------------------------------------------------------------------------
    def push(self, name: str, tag: str, creds: AuthConfig, emit: Emit,
             cancelled: threading.Event) -> None:
        try:
            ref = reference.parse_normalized(name)
            if tag:
                ref = ref.with_tag(tag)  # push by digest is not a thing
        except reference.ReferenceError as e:
            raise errdefs.InvalidParameter(str(e)) from e
        endpoints = self.registries.push_endpoints(ref.domain)
        emit(progress.message(f"The push refers to repository [{ref.name}]"))
        store = self.images.images
        associations = store.by_name(ref.name)
        if not associations:
            raise RegistryFailure(
                f"An image does not exist locally with the tag: {ref.familiar_name}")
        if ref.tag:
            image_id = store.resolve(Reference(ref.domain, ref.path, ref.tag))
            if image_id is None:
                raise RegistryFailure(f"tag does not exist: {ref.familiar()}")
            pairs = [(ref.tag, image_id)]
        elif ref.digest:
            raise RegistryFailure("cannot push a digest reference")
        else:
            pairs = [(r.tag, i) for r, i in associations if r.tag and not r.digest]
            if not pairs:
                raise RegistryFailure(f"no tags to push for {ref.familiar_name}")
        try:
            repo = connect(self.transport, endpoints, creds, ref.path, ["pull", "push"])
            pusher = Pusher(repo, self._push_source(ref.domain), emit, cancelled, self.max_uploads)
            for tag_name, image_id in pairs:
                digest, _ = pusher.push(tag_name, image_id)
                store.tag(image_id, Reference(ref.domain, ref.path, None, digest))
        except PushCancelled:
            raise
        except Exception as e:  # noqa: BLE001 - worded as dockerd words it
            raise translate_push_error(e) from e
        self._events("image", "push", ref.familiar(), {"name": ref.familiar_name})

    def _push_source(self, domain: str) -> PushSource:
        svc = self.images

        def layers_of(image_id: str):
            return svc.layers.chain(svc.images.get(image_id).diff_ids)

        sources: dict[str, list[str]] | None = None

        def mount_sources(blob_digest: str) -> list[str]:
            """Repositories of the same registry an image with this blob was
            pulled from or pushed to (its RepoDigests say which). The images
            are walked once per push, at the first layer that asks."""
            nonlocal sources
            if sources is None:
                # Layers upload in parallel: the map is shown to the others
                # only once it is whole (two that both build it agree).
                built: dict[str, list[str]] = {}
                for image in svc.images:
                    paths = [r.path for r in svc.images.refs_of(image.id)
                             if r.digest and r.domain == domain]
                    for layer in layers_of(image.id) if paths else ():
                        found = built.setdefault(layer.blob_digest, [])
                        found.extend(p for p in paths if p not in found)
                sources = built
            return sources.get(blob_digest, [])

        return PushSource(svc.content, layers_of, mount_sources, self.v2metadata, domain)

    # -- login ----------------------------------------------------------------------------
    def login(self, creds: AuthConfig) -> dict:
        """POST /auth: check the credentials against the registry's /v2/. Mirrors
        are never asked: they must not see the upstream's credentials."""
        endpoints = self.registries.push_endpoints(server_domain(creds.serveraddress))
        status, token = login(self.transport, endpoints, creds)
        return {"Status": status, "IdentityToken": token}

    def close(self) -> None:
        self.transport.close()
