"""Platforms (`os/arch[/variant]`), and the manifest of an index that fits one.

As containerd's platforms package, which dockerd uses: a specifier is
normalized (x86_64 → amd64, aarch64 → arm64, armhf → arm/v7, ...), a
one-part specifier names an OS if it is one and an architecture otherwise,
and the host is `linux/<arch>` with arm's variant. Matching an index picks
the best entry: an exact variant first, then the older variants the host
can also run (an arm/v7 host runs v6 and v5 images); for arm64 no variant
and "v8" are the same.
"""

from __future__ import annotations

import platform as _platform
from dataclasses import dataclass

from dockyard import errdefs
from dockyard.image import mediatypes as mt

_KNOWN_OS = {"aix", "android", "darwin", "dragonfly", "freebsd", "illumos", "ios", "js",
             "linux", "netbsd", "openbsd", "plan9", "solaris", "windows"}


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


def _normalize_arch(arch: str, variant: str) -> tuple[str, str]:
    arch, variant = arch.lower(), variant.lower()
    if arch in ("i386", "i686", "x86"):
        return "386", ""
    if arch in ("x86_64", "x86-64", "amd64"):
        return "amd64", "" if variant in ("", "v1") else variant
    if arch in ("aarch64", "arm64"):
        return "arm64", "" if variant in ("8", "v8") else variant
    if arch == "armhf":
        return "arm", "v7"
    if arch == "armel":
        return "arm", "v6"
    if arch == "arm":
        if variant in ("", "7"):
            return "arm", "v7"
        if variant in ("5", "6", "8"):
            return "arm", "v" + variant
    return arch, variant


def normalize(p: Platform) -> Platform:
    os_name = "darwin" if p.os.lower() == "macos" else p.os.lower()
    arch, variant = _normalize_arch(p.architecture, p.variant)
    return Platform(os_name, arch, variant)


def host() -> Platform:
    arch = mt.host_arch()
    variant = ""
    if arch == "arm":
        machine = _platform.machine()
        variant = "v6" if machine.startswith("armv6") else "v5" if machine.startswith("armv5") \
            else "v7"
    return Platform("linux", arch, variant)


def parse(spec: str) -> Platform:
    """platforms.Parse, with its error messages."""
    parts = spec.split("/")
    if not spec or any(not p for p in parts) or len(parts) > 3:
        raise errdefs.InvalidParameter(f'"{spec}": unknown operating system or architecture: '
                                       "invalid argument")
    first = parts[0].lower()
    if len(parts) == 1:
        if first in _KNOWN_OS:
            return normalize(Platform(first, host().architecture, host().variant))
        arch, variant = _normalize_arch(first, "")
        if arch == "arm" and variant == "v7" and first == "arm":
            variant = host().variant if host().architecture == "arm" else "v7"
        return Platform("linux", arch, variant)
    if len(parts) == 2:
        return normalize(Platform(first, parts[1]))
    return normalize(Platform(first, parts[1], parts[2]))


def _compatible_variants(wanted: Platform) -> list[str]:
    """The variants an image may have to run on `wanted`, best first."""
    if wanted.architecture == "arm64":
        return ["", "v8"] if wanted.variant in ("", "v8") else [wanted.variant]
    if wanted.architecture == "arm":
        order = ["v8", "v7", "v6", "v5"]
        start = order.index(wanted.variant) if wanted.variant in order else 1
        return order[start:]
    return [wanted.variant, ""] if wanted.variant else [""]


def rank(candidate: Platform, wanted: Platform) -> int | None:
    """How well an image for `candidate` fits `wanted`: 0 is best, None is not at all."""
    c, w = normalize(candidate), normalize(wanted)
    if c.os != w.os or c.architecture != w.architecture:
        return None
    variants = _compatible_variants(w)
    if c.variant in variants:
        return variants.index(c.variant)
    return None


def of_descriptor(desc: dict) -> Platform | None:
    p = desc.get("platform")
    if not isinstance(p, dict):
        return None
    return Platform(str(p.get("os", "")), str(p.get("architecture", "")),
                    str(p.get("variant", "")))


def choose(manifests: list[dict], wanted: Platform) -> dict | None:
    """The index entry for `wanted`: the best rank, the first among equals."""
    best: tuple[int, int] | None = None
    chosen = None
    for i, desc in enumerate(manifests):
        p = of_descriptor(desc)
        if p is None:
            continue
        r = rank(p, wanted)
        if r is not None and (best is None or (r, i) < best):
            best, chosen = (r, i), desc
    return chosen
