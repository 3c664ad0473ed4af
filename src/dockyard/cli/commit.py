"""`dockyard commit`: a new image from a container's changes
(docker/cli cli/command/container/commit.go)."""

from __future__ import annotations

from dockyard.cli.command import PROG, Cli, StatusError
from dockyard.cli.pflag import FlagSet


def commit(cli: Cli, argv: list[str], path: str) -> int:
    fs = FlagSet(path, "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
                 "Create a new image from a container's changes",
                 aliases=f"{PROG} container commit, {PROG} commit", args=(1, 2),
                 interspersed=False)
    fs.string("author", "a", help='Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")')
    fs.list("change", "c", help="Apply Dockerfile instruction to the created image")
    fs.string("message", "m", help="Commit message")
    fs.bool("pause", "p", default=True, help="Pause container during commit")
    o = fs.parse(argv)
    from dockyard.cli.containers import _trim_id
    container = _trim_id(o.args[0])
    query: list[tuple[str, str]] = [("container", container)]
    repo = tag = ""
    if len(o.args) > 1 and o.args[1]:
        from dockyard.image import reference
        try:
            ref = reference.parse_normalized(o.args[1])
        except reference.ReferenceError as e:
            raise StatusError(str(e)) from None
        if ref.digest:
            raise StatusError("refusing to create a tag with a digest reference")
        ref = ref.tagged_or_latest()
        repo, tag = ref.familiar_name, ref.tag or ""
    query += [("repo", repo), ("tag", tag), ("comment", o.message or ""),
              ("author", o.author or "")]
    query += [("changes", change) for change in o.change or []]
    if not o.pause:
        query.append(("pause", "0"))
    result = cli.client.post("/commit", query=query, body=b"null",
                             headers={"Content-Type": "application/json"}) or {}
    cli.out.write(f"{result.get('Id', '')}\n")
    return 0
