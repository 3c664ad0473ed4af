"""The data root, drawn once. Every path the daemon writes is computed here.

    <data-root>/                          default /var/lib/dockyard
      dockyard.lock                       flock(2)ed by the one daemon that owns this root
      tmp/                                scratch on the same filesystem (so rename works)
      content/
        blobs/sha256/<hex>                manifests, configs, layers exactly as they arrived;
                                          written read-only once their digest is verified
        ingest/<id>/data                  partial writes, hashed while streaming
      images/
        repositories.json                 references (tags, digests) -> image ID
        meta/<hex>.json                   per-image facts the config does not carry
                                          (when it was loaded, the parent of a build step)
        distribution/v2metadata-by-diffid/sha256/<hex>
                                          the blobs a layer was pushed or pulled as, and
                                          the repositories holding them (distribution/
                                          metadata.py)
      layers/<chain-hex>.json             one record per layer chain: diff_id, parent chain
                                          ID, the blob it came from, unpacked size
      snapshots/<n>/                      overlay snapshots, short names keep mount options
        info.json                         under the kernel's one-page limit; key, parent
        fs/                               the layer's files (an overlay lower or upper dir)
        work/                             overlay's workdir (only for active snapshots)
      containers/<id>/                    a container's record, bundle, logs
      networks/<id>/network.json          a network's record: docker's fields, its Linux
                                          bridge, its subnets and gateways (the addresses
                                          endpoints hold are in the containers' records)
      volumes/<name>/volume.json          a volume's record (volume/local.py)
      volumes/<name>/_data/               its files, bind-mounted into containers

    <exec-root>/                          default /run/dockyard (tmpfs: gone at reboot)
      dockyardd.pid                       default pidfile
      dockyard.sock                       default API socket
      netns/<container-id>                a container's network namespace (sandbox), pinned
                                          by a bind mount while the container runs
      proxies/<container-id>.pid          the userland proxy serving its published ports

A chain ID (OCI image spec) names a stack of layers: chain_id(L0) = diff_id(L0),
chain_id(L0..n) = sha256(chain_id(L0..n-1) + " " + diff_id(Ln)). Two images that
share their first layers share those snapshots.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


def _hex(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64:
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return hexpart


@dataclass(frozen=True)
class Layout:
    root: str

    # -- the root itself ------------------------------------------------------
    @property
    def lock(self) -> str:
        return os.path.join(self.root, "dockyard.lock")

    @property
    def tmp(self) -> str:
        return os.path.join(self.root, "tmp")

    # -- content store --------------------------------------------------------
    @property
    def blobs(self) -> str:
        return os.path.join(self.root, "content", "blobs", "sha256")

    def blob(self, digest: str) -> str:
        return os.path.join(self.blobs, _hex(digest))

    @property
    def ingest(self) -> str:
        return os.path.join(self.root, "content", "ingest")

    # -- images ---------------------------------------------------------------
    @property
    def repositories(self) -> str:
        return os.path.join(self.root, "images", "repositories.json")

    @property
    def image_meta_dir(self) -> str:
        return os.path.join(self.root, "images", "meta")

    def image_meta(self, image_id: str) -> str:
        return os.path.join(self.image_meta_dir, _hex(image_id) + ".json")

    @property
    def distribution_metadata(self) -> str:
        return os.path.join(self.root, "images", "distribution")

    # -- layers and snapshots -------------------------------------------------
    @property
    def layers(self) -> str:
        return os.path.join(self.root, "layers")

    def layer(self, chain_id: str) -> str:
        return os.path.join(self.layers, _hex(chain_id) + ".json")

    @property
    def snapshots(self) -> str:
        return os.path.join(self.root, "snapshots")

    def snapshot(self, n: int) -> str:
        return os.path.join(self.snapshots, str(n))

    # -- containers -----------------------------------------------------------
    @property
    def containers(self) -> str:
        return os.path.join(self.root, "containers")

    def container(self, container_id: str) -> str:
        return os.path.join(self.containers, container_id)

    # -- networks -------------------------------------------------------------
    @property
    def networks(self) -> str:
        return os.path.join(self.root, "networks")

    @property
    def volumes(self) -> str:
        return os.path.join(self.root, "volumes")

    def create(self) -> None:
        """Make the directories of the tree (idempotent)."""
        for d in (self.tmp, self.blobs, self.ingest, self.image_meta_dir, self.layers,
                  self.snapshots, self.containers, self.networks):
            os.makedirs(d, mode=0o700, exist_ok=True)
