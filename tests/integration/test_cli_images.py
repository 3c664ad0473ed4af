"""Our CLI against the docker CLI, on the same daemon and the same data.

Each test runs a `dockyard` command and the same `docker` command against one
dockyardd and compares what the user sees: stdout, stderr and the exit status,
character for character (with "dockyard" for "docker" in usage messages).
Where docker's own output is not deterministic (it prints the repositories of
a multi-tag image in Go's random map order) the rows are compared as sets,
the header and the column widths still exactly.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from paths import FIXTURES

DOCKYARD = str(Path(sys.executable).parent / "dockyard")
BUSYBOX_ID = "sha256:e9242c1a8a93414f2150bda5836e3b7856e4eeb92e041669d1389393a3a73f9f"
LAYERS_ID = "sha256:a3a902cba36cfccf9d3df60d5100865aed25e06a3a264f2ca477faf21da45577"


def _rows(out, sort_rows):
    if not sort_rows:
        return out
    head, *rows = out.split("\n")
    return head, sorted(rows)


def both(daemon, *args, input=None, sort_rows=False):
    """(ours, docker's) for the same command; retried if they differ, which
    happens when a "3 seconds ago" ticks over between the two runs."""
    for _ in range(4):
        ours = daemon.run_cli(*args, input=input)
        theirs = daemon.docker(*args, input=input)
        if (_rows(ours.stdout, sort_rows), ours.returncode) == \
                (_rows(theirs.stdout, sort_rows), theirs.returncode):
            break
    return ours, theirs


def assert_same(ours, theirs, sort_rows=False):
    assert _rows(ours.stdout, sort_rows) == _rows(theirs.stdout, sort_rows)
    # docker 28.2's "requires at most" message has a typo ("SRun") we do not copy
    assert ours.stderr.replace("dockyard", "docker") == theirs.stderr.replace("\nSRun ", "\nRun ")
    assert ours.returncode == theirs.returncode


@pytest.fixture
def loaded_both(daemon, loaded_busybox):
    with open(FIXTURES / "layers.docker-save.tar", "rb") as f:
        daemon.run_cli("load", input=f.read(), check=True)
    return daemon


# --- images --------------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    (), ("-q",), ("--no-trunc",), ("--digests",), ("-a",), ("busybox",), ("busybox:local",),
    ("--format", "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}"),
    ("--format", "table {{.ID}}\\t{{.Repository}}\\t{{.CreatedSince}}"),
    ("--format", "table"), ("--format", "json"),
    ("-f", "reference=fixture/*"), ("-f", "dangling=false"), ("-f", "label=org.example.fixture"),
    ("--filter", "before=fixture/layers:1.0"), ("-f", "since=busybox:local", "-q"),
    ("nothere",),
])
def test_images_like_docker(loaded_both, args):
    ours, theirs = both(loaded_both, "images", *args)
    assert ours.returncode == 0
    assert_same(ours, theirs)


def test_image_ls_aliases_and_empty_listing(daemon):
    for argv in (("images",), ("image", "ls"), ("image", "list")):
        ours, theirs = both(daemon, *argv)
        assert ours.stdout == "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n"
        assert_same(ours, theirs)


def test_images_with_tags_untagged_and_mistaken_subcommand(loaded_both, busybox_rootfs):
    d = loaded_both
    d.run_cli("tag", "busybox:local", "mine/one:v1", check=True)
    d.run_cli("tag", "busybox:local", "two", check=True)
    d.run_cli("import", str(busybox_rootfs), check=True)   # <none>:<none>
    for args in ((), ("-q",), ("--format", "json"), ("-f", "dangling=true")):
        ours, theirs = both(d, "images", *args, sort_rows=True)
        assert_same(ours, theirs, sort_rows=True)
    # `dockyard images ls` finds nothing, and says what was probably meant
    ours, theirs = both(d, "images", "ls")
    assert 'did you mean "dockyard image ls"?' in ours.stderr
    assert_same(ours, theirs)


def test_images_bad_flags_and_filters(loaded_both):
    for args in (("--bogus",), ("-z",), ("--format",), ("a", "b"), ("-f", "nofilter"),
                 ("-f", "bogus=x"), ("--format", "{{.Nope}}"), ("--format", "{{.ID")):
        ours, theirs = both(loaded_both, "images", *args)
        assert ours.returncode != 0, args
        assert_same(ours, theirs)


# --- history -------------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    (), ("--no-trunc",), ("-H=false",), ("--human=false", "--no-trunc"), ("-q",),
    ("--format", "{{.ID}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}"),
    ("--format", "table {{.ID}}\\t{{.Size}}"), ("--format", "json"),
])
def test_history_like_docker(loaded_both, args):
    for image in ("fixture/layers:1.0", "busybox:local"):
        ours, theirs = both(loaded_both, "history", *args, image)
        assert ours.returncode == 0
        assert_same(ours, theirs)


def test_history_errors(loaded_both):
    for args in (("nothere",), (), ("a", "b")):
        ours, theirs = both(loaded_both, "history", *args)
        assert ours.returncode == 1
        assert_same(ours, theirs)


# --- inspect -------------------------------------------------------------------------


@pytest.mark.parametrize("cmd", [("inspect",), ("image", "inspect")])
def test_inspect_json_like_docker(loaded_both, cmd):
    ours, theirs = both(loaded_both, *cmd, "busybox:local", "fixture/layers:1.0")
    assert_same(ours, theirs)
    assert [i["Id"] for i in json.loads(ours.stdout)] == [BUSYBOX_ID, LAYERS_ID]
    assert ours.stdout.startswith('[\n    {\n        "Id": ')
    ours, theirs = both(loaded_both, *cmd, "--format", "json", "busybox:local")
    assert_same(ours, theirs)


@pytest.mark.parametrize("fmt", [
    "{{.Id}}", "{{.Config.WorkingDir}} {{len .RepoTags}}", "{{json .Config.Labels}}",
    "{{.RepoTags}} {{.Os}}/{{.Architecture}} {{.Size}}", "{{index .RepoTags 0}}",
    "{{range .RootFS.Layers}}{{.}} {{end}}", "{{json .RootFS}}",
])
def test_inspect_format_like_docker(loaded_both, fmt):
    for cmd in (("inspect", "-f"), ("image", "inspect", "--format")):
        ours, theirs = both(loaded_both, *cmd, fmt, "fixture/layers:1.0", "busybox:local")
        assert ours.returncode == 0
        assert_same(ours, theirs)


def test_inspect_format_lists_and_maps(loaded_both):
    fmt = "{{.Config.Cmd}} {{.Config.Env}} {{.Config.Labels}} {{.RootFS.Type}}"
    ours, theirs = both(loaded_both, "inspect", "-f", fmt, "fixture/layers:1.0")
    assert ours.stdout == ("[cat /data/a] [PATH=/usr/local/bin:/usr/bin:/bin GREETING=hello] "
                           "map[org.example.fixture:layers] layers\n")
    assert_same(ours, theirs)


def test_inspect_missing_objects(loaded_both):
    for args in (("inspect", "nothere"), ("image", "inspect", "nothere"),
                 ("inspect", "--type", "image", "nothere"), ("inspect", "nothere", "busybox:local"),
                 ("inspect", "-f", "{{.Id}}", "nothere"), ("inspect", "--type", "bogus", "x"),
                 ("inspect", "--type=", "x"), ("inspect",), ("inspect", "-f", "{{.Id", "x")):
        ours, theirs = both(loaded_both, *args)
        assert ours.returncode != 0, args
        assert_same(ours, theirs)
    ours = loaded_both.run_cli("inspect", "nothere")
    assert (ours.stdout, ours.stderr, ours.returncode) == \
        ("[]\n", "Error: No such object: nothere\n", 1)
    ours = loaded_both.run_cli("image", "inspect", "nothere")
    assert ours.stderr == "Error response from daemon: No such image: nothere:latest\n"


# --- tag and rmi ---------------------------------------------------------------------------


def test_tag_and_rmi_print_what_docker_prints(loaded_both):
    d = loaded_both
    for cli, prefix in ((d.run_cli, "ours"), (d.docker, "theirs")):
        assert cli("tag", "busybox:local", f"{prefix}/a:1").returncode == 0
        assert cli("image", "tag", BUSYBOX_ID[7:19], f"{prefix}/b").returncode == 0
    ours = d.run_cli("rmi", "ours/a:1", "nothere", "ours/b")
    theirs = d.docker("rmi", "theirs/a:1", "nothere", "theirs/b")
    assert ours.stdout == "Untagged: ours/a:1\nUntagged: ours/b:latest\n"
    assert ours.stdout.replace("ours", "theirs") == theirs.stdout
    assert ours.stderr == theirs.stderr == \
        "Error response from daemon: No such image: nothere:latest\n"
    assert ours.returncode == theirs.returncode == 1
    # -f forgives what is not there: status 0, the error still shown
    ours, theirs = both(d, "rmi", "-f", "nothere")
    assert ours.returncode == 0
    assert_same(ours, theirs)


def test_rmi_deletes_the_last_tag_and_the_image(loaded_both):
    ours = loaded_both.run_cli("image", "rm", "busybox:local")
    assert ours.returncode == 0
    assert ours.stdout == f"Untagged: busybox:local\nDeleted: {BUSYBOX_ID}\n"
    assert loaded_both.docker("images", "-q", "busybox").stdout == ""


def test_tag_errors_like_docker(loaded_both):
    for args in (("busybox:local", "Foo"), ("nothere", "x"), ("busybox:local",),
                 ("busybox:local", "x@sha256:" + "a" * 64), ("bad::", "x"),
                 ("busybox:local", "a" * 64)):
        ours, theirs = both(loaded_both, "tag", *args)
        assert ours.returncode == 1, args
        assert_same(ours, theirs)


# --- load and save ------------------------------------------------------------------------


def test_save_load_round_trip(loaded_both, tmp_path):
    d = loaded_both
    ours = d.run_cli("save", "busybox:local", "fixture/layers:1.0", input=b"")
    theirs = d.docker("save", "busybox:local", "fixture/layers:1.0", input=b"")
    assert ours.returncode == 0 and ours.stdout == theirs.stdout
    target = tmp_path / "both.tar"
    assert d.run_cli("save", "-o", str(target), "busybox:local", "fixture/layers:1.0").returncode == 0
    assert target.read_bytes() == ours.stdout
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    with tarfile.open(target) as tar:
        assert "manifest.json" in tar.getnames()

    assert d.run_cli("rmi", "busybox:local", "fixture/layers:1.0").returncode == 0
    loaded = d.run_cli("load", "-i", str(target))
    assert (loaded.returncode, loaded.stdout) == \
        (0, "Loaded image: busybox:local\nLoaded image: fixture/layers:1.0\n")
    assert d.docker("inspect", "-f", "{{.Id}}", "busybox:local").stdout == BUSYBOX_ID + "\n"
    # and from stdin, quietly, as docker prints it
    d.run_cli("rmi", "fixture/layers:1.0", check=True)
    ours = d.run_cli("load", "-q", input=(FIXTURES / "layers.docker-save.tar").read_bytes())
    theirs = d.docker("load", "-q", input=(FIXTURES / "layers.docker-save.tar").read_bytes())
    assert (ours.stdout, ours.returncode) == (theirs.stdout, theirs.returncode)


def test_load_and_save_errors(loaded_both, tmp_path):
    for args in (("load", "-i", str(tmp_path / "missing.tar")), ("save", "nothere"),
                 ("save", "-o", str(tmp_path / "no" / "dir.tar"), "busybox:local"),
                 ("save", "-o", str(tmp_path), "busybox:local"), ("save",), ("load", "x")):
        ours, theirs = both(loaded_both, *args, input=b"")
        assert ours.returncode == 1, args
        assert ours.stdout == theirs.stdout
        assert ours.stderr.replace(b"dockyard", b"docker") == theirs.stderr
    ours, theirs = both(loaded_both, "load", input=b"not a tar archive")
    assert (ours.stderr, ours.returncode) == (theirs.stderr, theirs.returncode)
    assert ours.stderr == b"Error processing tar file(exit status 1): unexpected EOF\n"
    assert not os.listdir(tmp_path)


def _on_a_terminal(daemon, *args, stdin_tty=False):
    """Run our CLI with stdout (or stdin) on a pseudo-terminal."""
    primary, secondary = pty.openpty()
    try:
        argv = [DOCKYARD, "-H", daemon.host, *args]
        result = subprocess.run(argv, env=daemon.env(), timeout=30, stderr=subprocess.PIPE,
                                stdin=secondary if stdin_tty else subprocess.DEVNULL,
                                stdout=subprocess.PIPE if stdin_tty else secondary)
    finally:
        os.close(secondary)
        os.close(primary)
    return result


def test_save_and_load_refuse_a_terminal(loaded_both):
    result = _on_a_terminal(loaded_both, "save", "busybox:local")
    assert (result.returncode, result.stderr) == \
        (1, b"cowardly refusing to save to a terminal. Use the -o flag or redirect\n")
    result = _on_a_terminal(loaded_both, "load", stdin_tty=True)
    assert (result.returncode, result.stderr) == \
        (1, b"requested load from stdin, but stdin is empty\n")


# --- import --------------------------------------------------------------------------------


def test_import_with_changes_and_message(daemon, busybox_rootfs):
    changes = ["-c", "ENV FOO=bar", "-c", 'CMD ["/bin/sh", "-c", "echo hi"]', "-c", "WORKDIR /tmp",
               "-m", "made by a test"]
    ours = daemon.run_cli("import", *changes, str(busybox_rootfs), "imported/ours:1")
    theirs = daemon.docker("import", *changes, str(busybox_rootfs), "imported/theirs:1")
    assert ours.returncode == theirs.returncode == 0
    image_id = ours.stdout.strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71
    fmt = "{{.Config.Env}}|{{.Config.Cmd}}|{{.Config.WorkingDir}}|{{.Comment}}|{{.RepoTags}}"
    got = daemon.docker("inspect", "-f", "{{.Id}}|" + fmt, "imported/ours:1").stdout
    want = daemon.docker("inspect", "-f", fmt, "imported/theirs:1").stdout
    assert got == f"{image_id}|" + want.replace("theirs", "ours")
    assert "FOO=bar" in got and "[/bin/sh -c echo hi]" in got and "made by a test" in got
    # from stdin, untagged
    ours = daemon.run_cli("import", "-", input=busybox_rootfs.read_bytes())
    assert ours.returncode == 0
    assert daemon.docker("images", "-q", "--no-trunc", "-f", "dangling=true").stdout == \
        ours.stdout.decode()


def test_import_errors_like_docker(daemon, busybox_rootfs):
    for args in (("/nothere.tar",), (str(busybox_rootfs), "Bad/Name"),
                 ("-c", "RUN rm -rf /", str(busybox_rootfs)), ()):
        ours, theirs = both(daemon, "import", *args)
        assert ours.returncode == 1, args
        assert_same(ours, theirs)


# --- prune -----------------------------------------------------------------------------------


def test_image_prune_like_docker(daemon, busybox_rootfs):
    d = daemon
    # "n" cancels, quietly, with status 0
    d.run_cli("import", str(busybox_rootfs), check=True)
    ours, theirs = both(d, "image", "prune", input="n\n")
    assert ours.stdout == ("WARNING! This will remove all dangling images.\n"
                           "Are you sure you want to continue? [y/N] ")
    assert_same(ours, theirs)
    # the same dangling image pruned by each CLI prints the same report
    dangling = d.run_cli("images", "-q", "--no-trunc", "-f", "dangling=true").stdout.strip()
    ours = d.run_cli("image", "prune", input="y\n")
    assert ours.returncode == 0
    d.run_cli("import", str(busybox_rootfs), check=True)
    dangling2 = d.run_cli("images", "-q", "--no-trunc", "-f", "dangling=true").stdout.strip()
    theirs = d.docker("image", "prune", "-f")
    assert ours.stdout.endswith(theirs.stdout.replace(dangling2, dangling))
    assert f"Deleted Images:\ndeleted: {dangling}\ndeleted: sha256:" in ours.stdout
    assert "\n\nTotal reclaimed space: " in ours.stdout
    # nothing left to prune
    ours, theirs = both(d, "image", "prune", "-f")
    assert ours.stdout == "Total reclaimed space: 0B\n"
    assert_same(ours, theirs)


def test_image_prune_all(loaded_both):
    ours = loaded_both.run_cli("image", "prune", "-a", "-f")
    assert ours.returncode == 0
    assert ours.stdout.startswith("Deleted Images:\n")
    assert f"untagged: busybox:local\ndeleted: {BUSYBOX_ID}\n" in ours.stdout
    assert loaded_both.docker("images", "-q").stdout == ""


# --- version and info ----------------------------------------------------------------------


def test_version_and_info_formats_like_docker(loaded_both):
    for args in (("version", "--format", "{{.Server.Version}} {{.Server.APIVersion}}"),
                 ("version", "-f", "{{json .Server}}"),
                 ("info", "--format", "{{.Images}} {{.Driver}} {{.ServerVersion}} {{.NCPU}}"),
                 ("info", "-f", "{{json .Plugins}}"), ("system", "info", "-f", "{{.ID}}")):
        ours, theirs = both(loaded_both, *args)
        assert ours.returncode == 0
        assert_same(ours, theirs)
    # fields that are not there fail as on docker's Go structs
    for args in (("version", "--format", "{{.Nope}}"), ("info", "-f", "{{.Nope}}"),
                 ("version", "-f", "{{.Foo"), ("info", "-f", "{{.ClientInfo.Context}}")):
        ours, theirs = both(loaded_both, *args)
        assert_same(ours, theirs)


def _section(text: str, name: str) -> str:
    """From `name` on; the docker CLI lists runtimes in Go's random map order."""
    lines = text[text.index(name):].split("\n")
    return "\n".join(" Runtimes: " + " ".join(sorted(l.split()[1:])) if l.startswith(" Runtimes:")
                     else l for l in lines)


def test_version_and_info_text_like_docker(loaded_both):
    ours, theirs = both(loaded_both, "version")
    assert ours.returncode == 0 and ours.stdout.startswith("Client:\n Version:")
    assert _section(ours.stdout, "\nServer:") == _section(theirs.stdout, "\nServer:")
    ours, theirs = both(loaded_both, "info")
    assert ours.returncode == 0
    assert _section(ours.stdout, "\nServer:") == _section(theirs.stdout, "\nServer:")
    for line in (" Images: 2\n", " Storage Driver: overlay2\n", " Debug Mode: false\n",
                 " Docker Root Dir: " + loaded_both.root + "\n"):
        assert line in ours.stdout


def test_no_daemon(tmp_path):
    host = f"unix://{tmp_path}/none.sock"
    for args in (("images",), ("version",), ("info",), ("inspect", "x")):
        ours = subprocess.run([DOCKYARD, "-H", host, *args], capture_output=True, text=True)
        theirs = subprocess.run(["docker", "-H", host, *args], capture_output=True, text=True,
                                env={**os.environ, "DOCKER_CONFIG": str(tmp_path)})
        assert ours.returncode == theirs.returncode == 1
        assert ours.stderr.endswith(f"Cannot connect to the Docker daemon at {host}. "
                                    "Is the docker daemon running?\n")
        assert ours.stderr == theirs.stderr
