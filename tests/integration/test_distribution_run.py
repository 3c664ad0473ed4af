"""`run` of an image that is not here: the CLI pulls it (by tag or by digest)
and creates the container again, as the docker CLI does."""

from __future__ import annotations

from test_distribution import d, dy, reg  # noqa: F401 - fixtures

import pytest


@pytest.mark.parametrize("cli", ["docker", "run_cli"])
def test_run_by_digest_pulls_then_runs(d, reg, cli):  # noqa: F811
    digest = reg.manifest_digest("test/busybox", "1")
    by_digest = f"{reg.addr}/test/busybox@{digest}"
    run = getattr(d, cli)
    ran = run("run", "--rm", by_digest, "echo", "ran by digest", check=True, timeout=120)
    assert ran.stdout == "ran by digest\n"
    assert f"Unable to find image '{by_digest}' locally" in ran.stderr
    assert f"Status: Downloaded newer image for {by_digest}" in ran.stderr
    digests = d.docker("images", "--digests", "--format", "{{.Digest}}", check=True).stdout
    assert digests == f"{digest}\n"
    # Here now: no second pull.
    again = run("run", "--rm", by_digest, "true", check=True)
    assert again.stderr == ""


def test_run_by_tag_of_a_missing_repository_says_what_the_registry_said(d, reg):  # noqa: F811
    ours = d.run_cli("run", "--rm", f"{reg.addr}/test/absent:1", "true", timeout=60)
    theirs = d.docker("run", "--rm", f"{reg.addr}/test/absent:1", "true", timeout=60)
    assert ours.returncode == theirs.returncode == 125
    assert ours.stderr == theirs.stderr.replace("docker", "dockyard")
    assert "Error response from daemon: " in ours.stderr
