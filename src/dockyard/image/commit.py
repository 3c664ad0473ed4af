"""`docker commit`: a container's changes become an image on top of its image.

As dockerd's CreateImageFromContainer and image.NewChildImage:

- config: the request's container Config (the container's own when the
  request has none) with the `changes` applied (image/changes.py), then
  completed from the container's config (`merge`, daemon/commit.go);
- `container` and `container_config`: the container's ID and its Config;
- history: the parent image's, plus one entry whose `created_by` is the
  container's Cmd joined by spaces, with the author and comment, marked
  `empty_layer` when the container changed nothing;
- rootfs: the parent's diff_ids, plus the new layer's unless it is empty;
- architecture, variant and os of the parent (the host's without one);
- top-level keys sorted, as moby's Image.MarshalJSON writes them.

Storage goes the way of `load` and `import` (crash safe in the same order):
the layer tar into the content store, the blob unpacked and committed as a
layer snapshot on the parent's chain, then the image config, its meta last.
"""

from __future__ import annotations

import copy
import json
from typing import Any, BinaryIO, Callable

from dockyard import __version__
from dockyard.image import mediatypes as mt
from dockyard.image.config import container_config
from dockyard.image.content import ContentStore
from dockyard.image.importer import register_blob
from dockyard.image.layers import LayerStore
from dockyard.image.store import Image, ImageStore, now_rfc3339

# The diff_id of a tar with no entries (the two end blocks alone): docker's
# layer.EmptyLayer, which a commit does not add to rootfs.
EMPTY_LAYER = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"


def merge(user: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """daemon/commit.go merge: fill what the committed config leaves empty from
    the container's config. Returns a new dict."""
    out = copy.deepcopy(user)
    if not out.get("User"):
        out["User"] = base.get("User", "")
    if not out.get("ExposedPorts"):
        out["ExposedPorts"] = base.get("ExposedPorts")
    elif base.get("ExposedPorts"):
        for port in base["ExposedPorts"]:
            out["ExposedPorts"].setdefault(port, {})
    if not out.get("Env"):
        out["Env"] = base.get("Env")
    else:
        keys = {e.split("=", 1)[0] for e in out["Env"]}
        out["Env"] = out["Env"] + [e for e in base.get("Env") or []
                                   if e.split("=", 1)[0] not in keys]
    labels = dict(out.get("Labels") or {})
    for key, value in (base.get("Labels") or {}).items():
        labels.setdefault(key, value)
    out["Labels"] = labels
    if not out.get("Entrypoint"):
        if not out.get("Cmd"):
            out["Cmd"] = base.get("Cmd")
            out["Shell"] = base.get("Shell")
        if out.get("Entrypoint") is None:
            out["Entrypoint"] = base.get("Entrypoint")
    if base.get("Healthcheck"):
        if not out.get("Healthcheck"):
            out["Healthcheck"] = base["Healthcheck"]
        else:
            check = dict(out["Healthcheck"])
            for key in ("Test", "Interval", "Timeout", "StartPeriod", "Retries"):
                if not check.get(key):
                    check[key] = base["Healthcheck"].get(key)
            out["Healthcheck"] = {k: v for k, v in check.items() if v is not None}
    if not out.get("WorkingDir"):
        out["WorkingDir"] = base.get("WorkingDir", "")
    if not out.get("Volumes"):
        out["Volumes"] = base.get("Volumes")
    else:
        out["Volumes"] = {**out["Volumes"], **(base.get("Volumes") or {})}
    if not out.get("StopSignal"):
        out["StopSignal"] = base.get("StopSignal")
    return out


def child_config(parent: dict[str, Any] | None, diff_id: str, config: dict[str, Any],
                 container_id: str, container_cfg: dict[str, Any], author: str,
                 comment: str, created: str | None = None) -> dict[str, Any]:
    """image.NewChildImage: the config of the image a commit makes."""
    parent = parent or {}
    created = created or now_rfc3339()
    empty = diff_id == EMPTY_LAYER
    diff_ids = list((parent.get("rootfs") or {}).get("diff_ids") or [])
    if not empty:
        diff_ids.append(diff_id)
    entry: dict[str, Any] = {"created": created}
    if author:
        entry["author"] = author
    created_by = " ".join(container_cfg.get("Cmd") or [])
    if created_by:
        entry["created_by"] = created_by
    if comment:
        entry["comment"] = comment
    if empty:
        entry["empty_layer"] = True
    out: dict[str, Any] = {
        "architecture": parent.get("architecture") or mt.host_arch(),
        "config": container_config(config),
        "container_config": container_config(container_cfg),
        "created": created,
        "docker_version": __version__,
        "history": list(parent.get("history") or []) + [entry],
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    if container_id:  # (omitted when empty, as moby's omitempty: a COPY step's)
        out["container"] = container_id
    if author:
        out["author"] = author
    if comment:
        out["comment"] = comment
    if parent.get("variant"):
        out["variant"] = parent["variant"]
    return dict(sorted(out.items()))


def store(content: ContentStore, layers: LayerStore, images: ImageStore, parent: Image | None,
          write_layer: Callable[[BinaryIO], int],
          build: Callable[[str], dict[str, Any]]) -> Image:
    """Write the layer with `write_layer(out)` (it returns how many entries it
    wrote), store it on the parent's chain, and add the image `build(diff_id)`
    describes."""
    parent_chain = parent.top_chain if parent is not None else None
    diff_id = EMPTY_LAYER
    with content.writer() as w:
        entries = write_layer(w)
        blob = w.commit() if entries else None
    if blob is not None:
        diff_id = register_blob(content, layers, blob, parent_chain).diff_id
    config = build(diff_id)
    meta = {"parent": parent.id} if parent is not None else {}
    return images.add(json.dumps(config, separators=(",", ":")).encode(), meta)
