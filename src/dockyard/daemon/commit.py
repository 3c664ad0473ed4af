"""POST /commit: a container's changes as a new image (dockerd's
CreateImageFromContainer).

The order, each step checked before the next changes anything:

1. the container, the target reference and the changes are validated
   (a bad `repo` or `-c` leaves no image behind);
2. a running container is paused (`pause=true`, the default since API
   1.13) through the container service, so its files hold still while the
   layer is written, and resumed at the end whatever happened;
3. the upper dir becomes a layer tar (storage/changes.py), stored with the
   image config through the image service (image/commit.py);
4. the tag, then the container's `commit` event (comment, imageID,
   imageRef), as dockerd sends them.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, BinaryIO

from dockyard import errdefs
from dockyard.daemon.containerfs import INIT_DIRS, INIT_PATHS
from dockyard.image import changes as image_changes
from dockyard.image import commit as image_commit
from dockyard.storage import changes

if TYPE_CHECKING:
    from dockyard.daemon.containerfs import ContainerFS


async def commit(fs: ContainerFS, ref: str, repo: str, tag: str, author: str, comment: str,
                 pause: bool, change_lines: list[str], config: dict[str, Any] | None) -> str:
    import asyncio

    from dockyard.daemon.images import tag_reference

    svc = fs.containers
    c = svc.get(ref)
    if c.state.get("Status") == "removing":
        raise errdefs.Conflict(f"You cannot commit container {c.id} which is being removed")
    if c.state.get("Dead"):
        raise errdefs.Conflict(f"You cannot commit container {c.id} which is Dead")
    target = tag_reference(repo, tag) if repo else None
    new_config = image_changes.apply(config if config is not None else c.config, change_lines)
    new_config = image_commit.merge(new_config, c.config)

    paused_here = False
    if pause and c.running and not c.paused:
        await svc.pause(c.id)
        paused_here = True
    try:
        upper, _ = fs.upper_and_lowers(c)

        def write_layer(out: BinaryIO) -> int:
            return changes.layer_tar(upper, out, INIT_PATHS, INIT_DIRS)

        def build(diff_id: str) -> dict[str, Any]:
            parent = svc.images.images.get(c.image_id).config
            return image_commit.child_config(parent, diff_id, new_config, c.id, c.config,
                                             author, comment)

        async with _held(svc, c):
            image = await asyncio.to_thread(svc.images.commit, c.image_id, write_layer, build,
                                            target)
    finally:
        if paused_here:
            with contextlib.suppress(errdefs.DockyardError):
                await svc.unpause(c.id)
    svc.emit(c, "commit", comment=comment, imageID=image.id,
             imageRef=target.familiar() if target is not None else "")
    return image.id


@contextlib.asynccontextmanager
async def _held(svc, c):
    """A stopped container stays as it is (not started, not removed) while its
    upper dir is read; a running one is paused or left to run, as asked."""
    if c.running:
        yield
        return
    async with svc.lock(c):
        if c.id not in svc.containers:
            raise errdefs.NotFound(f"No such container: {c.id}")
        yield
