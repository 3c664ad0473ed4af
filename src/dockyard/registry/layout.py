"""The tree the registry keeps in its storage driver, and every path in it.

    /blobs/<alg>/<hh>/<hex>/data            the bytes of every blob, once, shared by
                                            all repositories: layers, configs, and
                                            manifests too (<hh>: the first two hex
                                            digits, so no directory grows too big)
    /repositories/<name>/                   one per repository (<name> may hold "/")
        _layers/<alg>/<hex>/link            "<alg>:<hex>": this blob was pushed to
                                            (or mounted into) this repository; a
                                            blob is served only through such a link
        _manifests/revisions/<alg>/<hex>/link
                                            "<alg>:<hex>": this manifest belongs to
                                            the repository (its bytes: the blob)
        _manifests/tags/<tag>/current/link  the digest the tag points to
        _referrers/<alg>/<subject-hex>/<alg>/<hex>/link
                                            a manifest of this repository whose
                                            `subject` is <alg>:<subject-hex>
    /uploads/<uuid>/data                    an upload in progress: the bytes so far
    /uploads/<uuid>/info                    JSON: repository, start time

A blob appears only by a rename of a verified upload (or, for a manifest, an
atomic put of bytes already hashed), so whatever exists under /blobs matches
its name. Links are written after what they point to, and removed before it:
a crash leaves at most an unreferenced blob, which garbage collection removes.
Repository names never contain a component starting with "_" (the name
grammar starts every component with [a-z0-9]), so `_layers`, `_manifests`
and `_referrers` cannot clash with a nested repository's name.

This is distribution's layout (registry/storage/paths.go), less its
`docker/registry/v2` prefix and tag index, with referrers added.
"""

from __future__ import annotations

from dockyard.registry.digest import Digest

BLOBS = "/blobs"
REPOSITORIES = "/repositories"
UPLOADS = "/uploads"
REPOSITORY_MARKERS = ("_layers", "_manifests")


def blob_dir(d: Digest) -> str:
    return f"{BLOBS}/{d.algorithm}/{d.encoded[:2]}/{d.encoded}"


def blob_data(d: Digest) -> str:
    return blob_dir(d) + "/data"


def repository(name: str) -> str:
    return f"{REPOSITORIES}/{name}"


def layer_link(name: str, d: Digest) -> str:
    return f"{REPOSITORIES}/{name}/_layers/{d.algorithm}/{d.encoded}/link"


def layers(name: str) -> str:
    return f"{REPOSITORIES}/{name}/_layers"


def revisions(name: str) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/revisions"


def revision_dir(name: str, d: Digest) -> str:
    return f"{revisions(name)}/{d.algorithm}/{d.encoded}"


def revision_link(name: str, d: Digest) -> str:
    return revision_dir(name, d) + "/link"


def tags(name: str) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/tags"


def tag_dir(name: str, tag: str) -> str:
    return f"{tags(name)}/{tag}"


def tag_link(name: str, tag: str) -> str:
    return tag_dir(name, tag) + "/current/link"


def referrers(name: str, subject: Digest) -> str:
    return f"{REPOSITORIES}/{name}/_referrers/{subject.algorithm}/{subject.encoded}"


def referrer_link(name: str, subject: Digest, d: Digest) -> str:
    return f"{referrers(name, subject)}/{d.algorithm}/{d.encoded}/link"


def upload_dir(uuid: str) -> str:
    return f"{UPLOADS}/{uuid}"


def upload_data(uuid: str) -> str:
    return upload_dir(uuid) + "/data"


def upload_info(uuid: str) -> str:
    return upload_dir(uuid) + "/info"
