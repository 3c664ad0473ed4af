"""The OCI distribution registry: a server that stores and serves images.

This package owns the registry *server* (the OCI distribution spec v1.1 HTTP
API, its storage, authentication and garbage collection). It is a program of
its own (`python -m dockyard.registry serve|gc`, or `dockyard registry ...`):
it never talks to the daemon and imports nothing of ours above `errdefs`,
`store.atomic` and the pure constants of `image.mediatypes`.

Modules, bottom up:

    digest.py      digests: parsing, the hashes that verify them
    names.py       repository names and tags, by the distribution spec's grammar
    errors.py      the spec's error codes, as error kinds
    driver.py      the storage driver interface (paths, readers, writers)
    filesystem.py  the filesystem driver; memory.py, an in-memory one for tests
    s3.py          the S3 driver (boto3, imported only when S3 is configured)
    layout.py      the tree the registry keeps in a driver (drawn once, there)
    manifest.py    reading manifests: media types, descriptors, subject
    uploads.py     blob upload sessions: append, verify, commit
    storage.py     repositories: blobs, manifests, tags, referrers, catalog
    auth.py        htpasswd basic auth and the bearer token flow
    proxy.py       the pull-through cache: fetch from an upstream on a miss, store, serve
    app.py         the aiohttp routes and the one error code → status table
    server.py      configuration, create_app() and serve()
    gc.py          offline mark-and-sweep of unreferenced blobs (and, asked,
                   of untagged manifests and stale upload sessions)
    image.py       the registry as a container image, from this host's Python
"""
