"""Unpacked layers on disk: overlay snapshots and layer tars.

Owns:
  - `snapshots`: the overlay snapshotter (containerd's vocabulary: prepare,
    view, commit, mounts, remove) over `snapshots/<n>/{info.json,fs,work}`.
    It plans mounts as data (`Mount` objects) and never calls mount(2): the
    plan is carried out by `dockyard.linux.mount`.
  - `layer`: applying a layer tar (OCI/docker, whiteouts included) into an
    empty directory that becomes an overlay lower dir; chain IDs.
  - `compression`: sniffing and streaming decompression of layer blobs.

Must not import: image, runtime, daemon, api, cli (they build on this), nor
call the kernel beyond ordinary file operations (mounts live in dockyard.linux).
"""
