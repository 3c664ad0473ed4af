"""Images: references, the content store, manifests and configs, archives.

Owns: parsing image references, storing blobs by digest, reading and writing image
configs/manifests/indexes, docker-save and OCI archives, importing root filesystems.
Must not import: daemon, api, cli.
"""
