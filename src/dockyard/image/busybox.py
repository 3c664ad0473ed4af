"""A busybox root filesystem made from the host's static busybox, with no network.

`python -m dockyard.image.busybox > rootfs.tar` writes a tarball that
`dockyard import` turns into `busybox:latest`: /bin/busybox with a symlink per
applet, the usual top-level directories, and /etc/passwd and /etc/group with
root and nobody, like the official image.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import time
from typing import BinaryIO

BUSYBOX = "/bin/busybox"
# What `docker import` needs to make it behave like the official busybox image.
CHANGES = ['CMD ["sh"]',
           "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]

PASSWD = b"""root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
"""
GROUP = b"""root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
mail:x:12:
www-data:x:33:
operator:x:37:
users:x:100:
nogroup:x:65533:
nobody:x:65534:
"""
DIRS = {"bin": 0o755, "dev": 0o755, "etc": 0o755, "home": 0o755, "proc": 0o755,
        "root": 0o700, "sbin": 0o755, "sys": 0o755, "tmp": 0o1777, "usr": 0o755, "usr/bin": 0o755, "usr/sbin": 0o755,
        "var": 0o755, "var/spool": 0o755, "var/spool/mail": 0o755, "var/www": 0o755}


def applets(busybox: str = BUSYBOX) -> list[str]:
    out = subprocess.run([busybox, "--list-full"], check=True, capture_output=True, text=True)
    return sorted(line.strip() for line in out.stdout.splitlines() if line.strip())


def write_rootfs(out: BinaryIO, busybox: str = BUSYBOX) -> None:
    mtime = int(time.time())
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        def add(name: str, kind: bytes, mode: int, data: bytes = b"", target: str = "") -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = kind, mode, mtime
            info.linkname = target
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)

        for d, mode in sorted(DIRS.items()):
            add(d, tarfile.DIRTYPE, mode)
        with open(busybox, "rb") as f:
            add("bin/busybox", tarfile.REGTYPE, 0o755, f.read())
        links = set()
        for path in applets(busybox):
            path = path.lstrip("/")
            if path == "bin/busybox" or path in links:
                continue
            # A relative target keeps the link right wherever the root is mounted.
            depth = path.count("/")
            target = "busybox" if depth == 1 and path.startswith("bin/") \
                else "../" * depth + "bin/busybox"
            add(path, tarfile.SYMTYPE, 0o777, target=target)
            links.add(path)
        add("etc/passwd", tarfile.REGTYPE, 0o644, PASSWD)
        add("etc/group", tarfile.REGTYPE, 0o644, GROUP)


if __name__ == "__main__":
    write_rootfs(sys.stdout.buffer)
