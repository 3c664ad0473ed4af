"""The registry as a container image, made from this host's Python, with no network.

    python -m dockyard.registry.image [-t TAG] [--s3] [-o FILE] | dockyard load

writes a `docker save` archive (default tag `dockyard/registry:latest`) that
`dockyard load` and `docker load` read. Run it as the registry image is run:

    docker run -d -p 5000:5000 -v registry:/var/lib/registry dockyard/registry

Its entrypoint is `python3 -m dockyard.registry` and its command `serve
--config /etc/dockyard/registry.json` (listen on 0.0.0.0:5000, store under
the volume /var/lib/registry); give other arguments to run `gc`, or `serve`
with `--htpasswd`, `--tls-cert`, `--proxy` and the rest.

What goes in, one layer:
- the Python interpreter that runs this module, its standard library (less
  the parts a server never imports: tests, IDLE, tkinter, the static
  libpython, ...) and compiled bytecode, at the paths they have here, so the
  interpreter finds its prefix as it does on the host;
- every shared library the interpreter and its extension modules load, as
  `ldd` resolves them, with the symbolic links on the way (merged-/usr hosts
  link /lib to usr/lib);
- the dockyard package and the installed distributions the registry imports
  (aiohttp and its own, bcrypt; boto3 with `--s3`), under
  /usr/local/lib/dockyard, which is PYTHONPATH;
- /etc/passwd and /etc/group, /tmp, the CA bundle for a proxied upstream
  over TLS, and the default configuration file.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import io
import json
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from importlib import metadata
from typing import BinaryIO, Iterator

import dockyard
from dockyard.image import mediatypes as mt

DEFAULT_TAG = "dockyard/registry:latest"
PACKAGES = "/usr/local/lib/dockyard"
CONFIG_PATH = "/etc/dockyard/registry.json"
STORAGE = "/var/lib/registry"
PORT = "5000/tcp"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"

# Standard library directories a registry never imports, and the static
# libpython (config-*): together most of the library's size.
STDLIB_SKIP = re.compile(r"^(test|idlelib|tkinter|turtledemo|ensurepip|lib2to3|site-packages"
                         r"|unittest|distutils|pydoc_data|config-[^/]*|__phello__"
                         r"|lib-dynload/(_tkinter|_curses|_test|xx)[^/]*)(/|$)")
# Bytecode other than the plain .pyc of this interpreter (-O, -OO) is never read.
PYC = f".{sys.implementation.cache_tag}.pyc"

PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = b"root:x:0:\nnogroup:x:65534:\n"


class RootfsWriter:
    """A tar of host files at their own paths (parents first, links kept),
    owned by root, each path once."""

    def __init__(self, tar: tarfile.TarFile):
        self.tar = tar
        self.written: set[str] = set()

    def host_path(self, path: str) -> None:
        """`path` as it is on the host: a file, a directory (alone), or a
        symbolic link and what it points to."""
        path = os.path.normpath(path)
        if path == "/" or path in self.written:
            return
        self.written.add(path)
        parent = os.path.dirname(path)
        self.host_path(parent)
        # The entry goes where the host keeps it: under the parent's real path.
        real = os.path.join(os.path.realpath(parent), os.path.basename(path))
        if real != path:
            self.host_path(real)
            return
        self._add_host_file(path, path)
        if os.path.islink(path):
            self.host_path(os.path.join(parent, os.readlink(path)))

    def tree(self, top: str, skip: re.Pattern | None = None, dest: str | None = None) -> None:
        """Every file under `top`, at `dest` (default: where it is)."""
        for rel in _walk(top, skip):
            if dest is None:
                self.host_path(os.path.join(top, rel))
            else:
                self.copy(os.path.join(top, rel), os.path.join(dest, rel))

    def copy(self, src: str, dest: str) -> None:
        """The host file `src` at `dest` in the image (its parents made as
        plain directories)."""
        self.directory(os.path.dirname(dest))
        self.written.add(dest)
        self._add_host_file(src, dest)

    def directory(self, path: str, mode: int = 0o755) -> None:
        path = os.path.normpath(path)
        if path == "/" or path in self.written:
            return
        self.directory(os.path.dirname(path))
        self._add_new(path, tarfile.DIRTYPE, mode)

    def file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self.directory(os.path.dirname(path))
        self._add_new(path, tarfile.REGTYPE, mode, data)

    def symlink(self, path: str, target: str) -> None:
        self.directory(os.path.dirname(path))
        self._add_new(path, tarfile.SYMTYPE, 0o777, target=target)

    def _add_host_file(self, src: str, dest: str) -> None:
        info = self.tar.gettarinfo(src, arcname=dest.lstrip("/"))
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        if info.isreg():
            with open(src, "rb") as f:
                self.tar.addfile(info, f)
        else:
            self.tar.addfile(info)

    def _add_new(self, path: str, kind: bytes, mode: int, data: bytes = b"",
                 target: str = "") -> None:
        self.written.add(path)
        info = tarfile.TarInfo(path.lstrip("/"))
        info.type, info.mode, info.mtime = kind, mode, int(time.time())
        info.linkname, info.size = target, len(data)
        self.tar.addfile(info, io.BytesIO(data) if data else None)


def _walk(top: str, skip: re.Pattern | None) -> Iterator[str]:
    """Paths under `top` (relative, sorted) less those `skip` matches and
    bytecode this interpreter never reads."""
    for dirpath, dirnames, filenames in os.walk(top):
        rel_dir = os.path.relpath(dirpath, top)
        rel_dir = "" if rel_dir == "." else rel_dir
        dirnames[:] = sorted(d for d in dirnames
                             if not (skip and skip.match(os.path.join(rel_dir, d))))
        for name in sorted(filenames):
            rel = os.path.join(rel_dir, name)
            if name.endswith(".pyc") and not name.endswith(PYC):
                continue
            if skip and skip.match(rel):
                continue
            yield rel


def shared_libraries(binaries: list[str]) -> list[str]:
    """The shared libraries `binaries` load, as the dynamic loader resolves them."""
    found: set[str] = set()
    for start in range(0, len(binaries), 200):
        out = subprocess.run(["ldd", *binaries[start:start + 200]], capture_output=True,
                             text=True).stdout
        for line in out.splitlines():
            # "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or
            # "\t/lib64/ld-linux-x86-64.so.2 (0x...)"
            m = re.match(r"\s+(?:\S+ => )?(/\S+) \(0x", line)
            if m:
                found.add(m.group(1))
    return sorted(found)


def distributions(modules: list[str]) -> list[metadata.Distribution]:
    """The installed distributions that importing `modules` loads code from."""
    for name in modules:
        importlib.import_module(name)
    site = {os.path.realpath(p) for p in sys.path if p.endswith("site-packages")}
    top_levels = set()
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None) or ""
        if any(os.path.realpath(file).startswith(s + os.sep) for s in site):
            top_levels.add(module.__name__.partition(".")[0])
    owners = metadata.packages_distributions()
    names = sorted({d for top in top_levels for d in owners.get(top, [])})
    return [metadata.distribution(n) for n in names if n != "dockyard"]


def registry_modules(s3: bool) -> list[str]:
    modules = ["dockyard.registry.__main__", "dockyard.registry.server", "bcrypt"]
    return modules + ["boto3"] if s3 else modules


def write_rootfs(out: BinaryIO, s3: bool = False) -> None:
    stdlib = sysconfig.get_path("stdlib", vars={"installed_base": sys.base_prefix})
    interpreter = os.path.realpath(sys._base_executable)
    dists = distributions(registry_modules(s3))
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        rootfs = RootfsWriter(tar)
        for d, mode in (("/tmp", 0o1777), ("/root", 0o700), ("/usr/local/bin", 0o755),
                        (STORAGE, 0o755)):
            rootfs.directory(d, mode)
        rootfs.host_path(interpreter)
        rootfs.symlink("/usr/local/bin/python3", interpreter)
        rootfs.tree(stdlib, STDLIB_SKIP)
        package = os.path.dirname(dockyard.__file__)
        rootfs.tree(package, dest=os.path.join(PACKAGES, "dockyard"))
        dynload = os.path.join(stdlib, "lib-dynload")
        extensions = [os.path.join(dynload, rel) for rel in _walk(dynload, None)
                      if not STDLIB_SKIP.match(os.path.join("lib-dynload", rel))]
        for dist in dists:
            for rel in dist.files or ():
                src = str(dist.locate_file(rel))
                if ".." in rel.parts or not os.path.isfile(src):
                    continue  # scripts and data installed outside site-packages
                if src.endswith(".pyc") and not src.endswith(PYC):
                    continue
                rootfs.copy(src, os.path.join(PACKAGES, str(rel)))
                if ".so" in rel.suffixes or rel.suffix == ".so":
                    extensions.append(src)
        for lib in shared_libraries([interpreter, *extensions]):
            rootfs.host_path(lib)
        if os.path.exists(CA_BUNDLE):
            rootfs.host_path(CA_BUNDLE)
        rootfs.file("/etc/passwd", PASSWD)
        rootfs.file("/etc/group", GROUP)
        rootfs.file(CONFIG_PATH, json.dumps({"addr": "0.0.0.0:5000", "root": STORAGE},
                                            indent=2).encode() + b"\n")


def image_config(diff_id: str, s3: bool) -> dict:
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           f"PYTHONPATH={PACKAGES}", "PYTHONDONTWRITEBYTECODE=1"]
    if os.path.exists(CA_BUNDLE):
        env.append(f"SSL_CERT_FILE={CA_BUNDLE}")
    python = ".".join(map(str, sys.version_info[:3]))
    return {
        "architecture": mt.host_arch(), "os": "linux",
        "created": created,
        "config": {
            "Env": env,
            "Entrypoint": ["python3", "-m", "dockyard.registry"],
            "Cmd": ["serve", "--config", CONFIG_PATH],
            "ExposedPorts": {PORT: {}},
            "Volumes": {STORAGE: {}},
            "Labels": {"org.opencontainers.image.title": "dockyard registry",
                       "org.opencontainers.image.version": dockyard.__version__},
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created,
                     "created_by": f"python -m dockyard.registry.image{' --s3' if s3 else ''}"
                                   f" (Python {python}, dockyard {dockyard.__version__})"}],
    }


class _Sha256Writer:
    """A file that hashes what is written to it."""

    def __init__(self, f: BinaryIO):
        self.f, self.hash, self.size = f, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        return self.f.write(data)


def write_archive(out: BinaryIO, tag: str = DEFAULT_TAG, s3: bool = False) -> None:
    """The image as a `docker save` archive: manifest.json, the config, one layer."""
    with tempfile.TemporaryFile() as layer:
        hashing = _Sha256Writer(layer)
        write_rootfs(hashing, s3)  # type: ignore[arg-type]
        layer_size = hashing.size
        diff_id = "sha256:" + hashing.hash.hexdigest()
        config = json.dumps(image_config(diff_id, s3), separators=(",", ":")).encode()
        config_hex = hashlib.sha256(config).hexdigest()
        layer_name = f"{diff_id[7:]}/layer.tar"
        manifest = json.dumps([{"Config": f"{config_hex}.json", "RepoTags": [tag],
                                "Layers": [layer_name]}]).encode()
        layer.seek(0)
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            def member(name: str, data: BinaryIO, size: int) -> None:
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = size, 0o644, int(time.time())
                tar.addfile(info, data)

            member(f"{config_hex}.json", io.BytesIO(config), len(config))
            member(layer_name, layer, layer_size)  # type: ignore[arg-type]
            member("manifest.json", io.BytesIO(manifest), len(manifest))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dockyard.registry.image",
                                     description="Write the registry's image as a "
                                                 "`docker save` archive.")
    parser.add_argument("-t", "--tag", default=DEFAULT_TAG)
    parser.add_argument("--s3", action="store_true", help="include boto3 for S3 storage")
    parser.add_argument("-o", "--output", help="write to this file (default: stdout)")
    args = parser.parse_args(argv)
    if args.output is None and sys.stdout.isatty():
        parser.error("refusing to write an archive to a terminal: redirect it or use -o")
    if args.output:
        with open(args.output + ".tmp", "wb") as f:
            write_archive(f, args.tag, args.s3)
            f.flush()
            os.fsync(f.fileno())
        os.replace(args.output + ".tmp", args.output)
    else:
        write_archive(sys.stdout.buffer, args.tag, args.s3)
    return 0


if __name__ == "__main__":
    sys.exit(main())
