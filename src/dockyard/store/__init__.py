"""Object records on disk and the layout of the data root.

Owns: where every file under the data root lives (`layout`), crash-safe writes
(`atomic`), and JSON record collections with in-memory indexes (`records`).
Must not import: anything above it (image, storage, runtime, daemon, api).
"""
