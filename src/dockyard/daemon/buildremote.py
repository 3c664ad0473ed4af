"""What a build fetches by URL: a remote context (`remote=`) and ADD's URL
sources, as dockerd's remotecontext fetches them.

- `remote=https://host/ctx.tar.gz`: a tar (plain or compressed) is the
  context; any other body is taken for the Dockerfile itself, alone in the
  context, under the name the `dockerfile` parameter gives.
- `remote=git://...`, `git@...`, `https://....git` (with `#ref:subdir`): a
  shallow clone of that ref, then the subdirectory as the context.
- `ADD https://host/path/file /dest/`: the file is downloaded as
  `<dest>/file` (the last part of the path, or the Content-Disposition
  filename), mode 0600, with the Last-Modified time (else the epoch); it is
  hashed like a file of an image, so an unchanged download hits the cache.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import posixpath
import re
import shutil
import tempfile
import urllib.parse

from dockyard import errdefs

_CHUNK = 1 << 20
_GIT_URL = re.compile(r"^(git://|git@|github\.com/)|^https?://.*\.git(#.*)?$")


def is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def is_git_url(text: str) -> bool:
    return bool(_GIT_URL.search(text))


async def download(url: str, directory: str, name: str = "") -> str:
    """GET `url` into `directory`; the path written. The file is named
    `name`, or after the URL as dockerd names it."""
    import aiohttp

    try:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            if response.status >= 400:
                raise errdefs.System(f"failed to GET {url} with status {response.status} "
                                     f"{response.reason}: {(await response.text())[:200]}")
            name = name or _filename(url, response.headers.get("Content-Disposition", ""))
            path = os.path.join(directory, name)
            with open(path, "wb") as f:
                async for chunk in response.content.iter_chunked(_CHUNK):
                    f.write(chunk)
            modified = response.headers.get("Last-Modified")
    except aiohttp.ClientError as e:
        raise errdefs.System(f"error downloading remote context {url}: {e}") from e
    os.chmod(path, 0o600)
    when = 0.0  # no Last-Modified: the epoch, as dockerd dates it
    if modified:
        try:
            when = email.utils.parsedate_to_datetime(modified).timestamp()
        except (TypeError, ValueError):
            pass
    os.utime(path, (when, when))
    return path


def _filename(url: str, disposition: str) -> str:
    match = re.search(r'filename="?([^";]+)"?', disposition)
    if match and posixpath.basename(match.group(1)):
        return posixpath.basename(match.group(1))
    path = urllib.parse.urlparse(url).path.rstrip("/")
    name = posixpath.basename(path)
    if not name:
        raise errdefs.InvalidParameter(f"cannot determine filename for source {url}")
    return name


async def fetch_context(remote: str, context_dir: str, dockerfile_name: str) -> None:
    """Fill `context_dir` from a remote context."""
    from dockyard.builder import context

    if is_git_url(remote):
        await _clone(remote, context_dir)
        return
    if not is_url(remote):
        raise errdefs.InvalidParameter(
            f"remoteURL ({remote}) could not be recognized as URL")
    scratch = tempfile.mkdtemp(dir=os.path.dirname(context_dir), prefix="remote-")
    try:
        path = await download(remote, scratch, "context")
        if await asyncio.to_thread(_is_archive, path):
            def unpack() -> None:
                with open(path, "rb") as f:
                    context.receive(f, context_dir)
            await asyncio.to_thread(unpack)
        else:
            name = dockerfile_name or "Dockerfile"
            if "/" in name.strip("/"):
                os.makedirs(os.path.join(context_dir, posixpath.dirname(name)), exist_ok=True)
            shutil.move(path, os.path.join(context_dir, name))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _is_archive(path: str) -> bool:
    from dockyard.daemon.buildcopy import is_archive
    return is_archive(path)


async def _clone(remote: str, context_dir: str) -> None:
    url, _, fragment = remote.partition("#")
    ref, _, subdir = fragment.partition(":")
    if url.startswith("github.com/"):
        url = "https://" + url
    checkout = os.path.join(context_dir, ".git-checkout")
    argv = ["git", "clone", "--quiet", "--recurse-submodules", "--depth", "1"]
    if ref:
        argv += ["--branch", ref]
    proc = await asyncio.create_subprocess_exec(
        *argv, "--", url, checkout, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    output, _ = await proc.communicate()
    if proc.returncode != 0:
        raise errdefs.System(f"unable to prepare context: unable to 'git clone' to temporary "
                             f"context directory: error fetching: {output.decode().strip()}")
    source = os.path.normpath(os.path.join(checkout, subdir)) if subdir else checkout
    if source != checkout and not source.startswith(checkout + "/"):
        raise errdefs.InvalidParameter(f"subdirectory {subdir} is outside the repository")
    if not os.path.isdir(source):
        raise errdefs.InvalidParameter(f"subdirectory {subdir} does not exist")
    shutil.rmtree(os.path.join(checkout, ".git"), ignore_errors=True)
    for name in os.listdir(source):
        if os.path.join(source, name) != os.path.join(checkout, ".git"):
            os.rename(os.path.join(source, name), os.path.join(context_dir, name))
    shutil.rmtree(checkout, ignore_errors=True)
