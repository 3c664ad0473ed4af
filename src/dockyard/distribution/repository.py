"""One repository of a registry: its manifests, blobs, uploads and tags.

The distribution spec's routes, under `/v2/<name>/`:

    GET  manifests/<tag|digest>        Accept: every manifest type we read
    PUT  manifests/<tag>               the manifest's own bytes and media type
    GET  blobs/<digest>                often a redirect to storage (transport.py)
    HEAD blobs/<digest>                exists? (and its size)
    POST blobs/uploads/?mount=D&from=R a cross-repository mount: 201 if done,
                                       else 202 and an upload to use instead
    POST blobs/uploads/                an upload session: 202, Location
    PATCH <location>                   a chunk (here: the whole stream)
    PUT  <location>?digest=D           close it; with a body: a monolithic upload
    GET  tags/list                     paginated with Link headers

Every non-success answer becomes an exception through auth.error_of, so the
callers see the registry's own error codes.
"""

from __future__ import annotations

import hashlib
import json
from typing import BinaryIO, Iterable
from urllib.parse import urlencode, urljoin

from dockyard.distribution.auth import Session, error_of, repository_scope
from dockyard.distribution.errors import BlobUnknown, RegistryFailure
from dockyard.distribution.transport import Response
from dockyard.image import mediatypes as mt

MANIFEST_ACCEPT = ", ".join([mt.DOCKER_MANIFEST, mt.DOCKER_MANIFEST_LIST, mt.OCI_MANIFEST,
                             mt.OCI_INDEX])
MAX_MANIFEST_SIZE = 4 << 20  # the distribution spec's recommended limit


class Manifest:
    """A manifest or index as fetched: the exact bytes (its digest covers them)."""

    def __init__(self, raw: bytes, media_type: str, digest: str):
        self.raw = raw
        self.digest = digest
        self.doc = json.loads(raw)
        if not isinstance(self.doc, dict):
            raise RegistryFailure("invalid manifest: not a JSON object")
        # The body's own mediaType wins over a generic Content-Type.
        self.media_type = self.doc.get("mediaType") or media_type
        if self.media_type not in mt.INDEXES | mt.MANIFESTS:
            if "manifests" in self.doc:
                self.media_type = mt.OCI_INDEX
            elif "config" in self.doc and "layers" in self.doc:
                self.media_type = mt.OCI_MANIFEST

    @property
    def is_index(self) -> bool:
        return self.media_type in mt.INDEXES


class Repository:
    def __init__(self, session: Session, path: str, actions: list[str]):
        self.session = session
        self.path = path
        self.scopes = [repository_scope(path, actions)]

    def _request(self, method: str, route: str, scopes: list[str] | None = None,
                 **kw) -> Response:
        return self.session.request(method, f"/v2/{self.path}/{route}", scopes or self.scopes,
                                    **kw)

    # -- manifests -------------------------------------------------------------------
    def resolve_tag(self, tag: str) -> str | None:
        """HEAD a tag's manifest for its digest, as docker's tag service does
        before fetching by digest. None when the answer does not say (the
        GET that follows then brings the error's details, or the manifest)."""
        response = self._request("HEAD", f"manifests/{tag}", headers={"Accept": MANIFEST_ACCEPT})
        response.close()
        digest = response.header("Docker-Content-Digest")
        if 200 <= response.status < 400 and digest:
            return digest
        return None

    def get_manifest(self, tag_or_digest: str) -> Manifest:
        response = self._request("GET", f"manifests/{tag_or_digest}",
                                 headers={"Accept": MANIFEST_ACCEPT})
        if response.status != 200:
            raise error_of(response)
        raw = response.read(MAX_MANIFEST_SIZE + 1)
        response.read()
        response.close()
        if len(raw) > MAX_MANIFEST_SIZE:
            raise RegistryFailure(f"manifest too big: more than {MAX_MANIFEST_SIZE} bytes")
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        if tag_or_digest.startswith("sha256:") and digest != tag_or_digest:
            raise RegistryFailure(f"manifest verification failed for digest {tag_or_digest}")
        content_type = response.header("Content-Type").split(";")[0].strip()
        try:
            return Manifest(raw, content_type, digest)
        except ValueError as e:
            raise RegistryFailure(f"invalid manifest: {e}") from e

    def put_manifest(self, tag: str, raw: bytes, media_type: str) -> str:
        response = self._request("PUT", f"manifests/{tag}",
                                 headers={"Content-Type": media_type,
                                          "Content-Length": str(len(raw))}, body=raw)
        if response.status not in (200, 201, 202):
            raise error_of(response)
        response.read()
        response.close()
        return response.header("Docker-Content-Digest") or \
            "sha256:" + hashlib.sha256(raw).hexdigest()

    def tags(self) -> list[str]:
        """Every tag, following the Link headers of a paginated list."""
        out: list[str] = []
        route = "tags/list"
        while route:
            response = self._request("GET", route)
            if response.status != 200:
                raise error_of(response)
            doc = json.loads(response.read() or b"{}")
            response.close()
            out.extend(doc.get("tags") or [])
            link = response.header("Link")
            route = ""
            if link.startswith("<") and 'rel="next"' in link:
                target = link[1:link.index(">")]
                prefix = f"/v2/{self.path}/"
                route = target[len(prefix):] if target.startswith(prefix) else ""
        return out

    # -- blobs -------------------------------------------------------------------------
    def open_blob(self, digest: str, headers: dict[str, str] | None = None) -> Response:
        response = self._request("GET", f"blobs/{digest}", headers=headers)
        if response.status == 404:  # whatever the body says, as distribution's client
            response.read()
            response.close()
            raise BlobUnknown()
        if response.status not in (200, 206):
            raise error_of(response)
        return response

    def read_blob(self, digest: str, limit: int = MAX_MANIFEST_SIZE) -> bytes:
        """A small blob (a config), unverified: at most `limit` + 1 bytes, so
        that the caller can tell one that is too big."""
        response = self.open_blob(digest)
        raw = response.read(limit + 1)
        response.read()
        response.close()
        return raw

    def blob_size(self, digest: str) -> int | None:
        """HEAD: the size of the blob in this repository, None if it is not there."""
        response = self._request("HEAD", f"blobs/{digest}")
        response.close()
        if response.status == 200:
            return int(response.header("Content-Length") or 0)
        if response.status == 404:
            return None
        raise error_of(response)

    def mount_blob(self, digest: str, source_path: str) -> tuple[bool, str]:
        """Ask for a blob of another repository of the same registry: (True,
        "") when mounted, else (False, location of an upload to use instead)."""
        scopes = self.scopes + [repository_scope(source_path, ["pull"])]
        query = urlencode({"mount": digest, "from": source_path})
        response = self._request("POST", f"blobs/uploads/?{query}", scopes=scopes,
                                 headers={"Content-Length": "0"}, body=b"")
        response.read()
        response.close()
        if response.status == 201:
            return True, ""
        if response.status == 202:
            return False, self._location(response)
        raise error_of(response)

    def start_upload(self) -> str:
        response = self._request("POST", "blobs/uploads/", headers={"Content-Length": "0"},
                                 body=b"")
        if response.status != 202:
            raise error_of(response)
        response.read()
        response.close()
        return self._location(response)

    def cancel_upload(self, location: str) -> None:
        """DELETE an upload session we will not use (a failed mount opened it)."""
        response = self.session.request("DELETE", location, self.scopes)
        response.read()
        response.close()

    def _location(self, response: Response) -> str:
        location = response.header("Location")
        if not location:
            raise RegistryFailure("registry did not return a location for the upload")
        return urljoin(self.session.url(f"/v2/{self.path}/blobs/uploads/"), location)

    @staticmethod
    def _with_query(location: str, **params: str) -> str:
        return location + ("&" if "?" in location else "?") + urlencode(params)

    def put_blob(self, location: str, body: BinaryIO | Iterable[bytes], digest: str,
                 size: int) -> None:
        """A monolithic upload: the whole blob in the closing PUT."""
        response = self.session.request(
            "PUT", self._with_query(location, digest=digest), self.scopes,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            body=body)
        if response.status not in (201, 204):
            raise error_of(response)
        response.read()
        response.close()

    def stream_blob(self, location: str, body: Iterable[bytes], digest_of) -> str:
        """A streamed upload (the digest is known only at the end): PATCH the
        stream chunked, then close with PUT ?digest=. `digest_of()` is called
        after the stream is spent."""
        response = self.session.request(
            "PATCH", location, self.scopes,
            headers={"Content-Type": "application/octet-stream"}, body=body)
        if response.status != 202:
            raise error_of(response)
        response.read()
        response.close()
        location = self._location(response)
        digest = digest_of()
        response = self.session.request("PUT", self._with_query(location, digest=digest),
                                        self.scopes, headers={"Content-Length": "0"}, body=b"")
        if response.status not in (201, 204):
            raise error_of(response)
        response.read()
        response.close()
        return digest
