"""The daemon's side of distribution: a client of registries that speak the
OCI distribution API (docker's "v2" protocol).

It owns: where a reference's registry is and how to speak to it
(`endpoints.py`: Docker Hub naming, mirrors, insecure registries), the HTTP
beneath (`transport.py`), the auth dance (`challenge.py`, `auth.py`,
`authconfig.py`), one repository's manifests and blobs (`repository.py`),
which manifest of an index fits this host (`platforms.py`), dockerd's JSON
progress messages (`progress.py`), and the two operations built on all that:
`pull.py` and `push.py`. Registry errors become dockerd's messages in
`errors.py`.

It may import `image` (references, media types, the content and layer
stores), `storage` and `errdefs`; never `daemon` or `api`. The server side
of the same protocol is `dockyard.registry`, a separate program.
"""
