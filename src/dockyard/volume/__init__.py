"""Volumes and mounts: the `local` volume driver (local.py), parsing and
checking what a container asks to have mounted (mountpoint.py), and filling a
new volume with the image's files (copyup.py). The daemon's rules about them
(references, events, filters) are daemon/volumes.py and daemon/containermounts.py."""
