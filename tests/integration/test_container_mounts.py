"""Container mounts, driven by the docker CLI (and docker-py and our CLI where
they add something): named and anonymous volumes through a container's life,
read-only mounts, copy-up, bind mounts, symlinks in the image that point out of
the rootfs, mount propagation, tmpfs mounts and tmpfs volumes, --volumes-from,
`Mounts` in inspect, the requests that are refused, and a daemon restart.

What docker does is dockerd 20.10.24's behaviour (docker CLI 28, API 1.41):
messages, exit codes, `Mounts` entries and modes were checked against it, and
every test here but the two daemon restarts (dockerd stops its containers with
it) passes on it, except where dockyard is asked for more: a refused create
leaves no volume at all (dockerd may keep one it made for an earlier bind).

Every test removes what it made (containers, volumes, images, host directories
and mounts), even when it fails; the host mounts a test makes are named
`dytm-…` so that a leftover is easy to find.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
import subprocess
import tempfile

import pytest

from harness import DOCKYARD, load_busybox, wait_for

IMAGE = "busybox:local"
TOKEN = secrets.token_hex(4)
# the image's symlinks point at these host paths, which must never appear
ESCAPE = f"/tmp/dytm-esc-{TOKEN}"
ESCAPE_REL = f"/tmp/dytm-escrel-{TOKEN}"
ESCAPE_PRE = f"/tmp/dytm-escpre-{TOKEN}"  # this one exists on the host, with a secret in it
ROFS = "Read-only file system"


# -- helpers --------------------------------------------------------------------------------

def mountinfo() -> list[list[str]]:
    with open("/proc/self/mountinfo") as f:
        return [line.split() for line in f]


def mounted_at(path: str) -> list[list[str]]:
    return [f for f in mountinfo() if f[4] == path]


def unmount_all_under(path: str) -> list[str]:
    """Unmount every mount at or under `path` (deepest first); the ones found."""
    found = [f[4] for f in mountinfo() if f[4] == path or f[4].startswith(path.rstrip("/") + "/")]
    for m in sorted(set(found), key=len, reverse=True):
        if subprocess.run(["umount", m], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", m], capture_output=True)
    return found


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


def by_destination(mounts: list[dict]) -> dict[str, dict]:
    return {m["Destination"]: m for m in mounts}


def lstat_line(path: str) -> tuple:
    st = os.lstat(path)
    return (oct(stat.S_IMODE(st.st_mode)), st.st_uid, st.st_gid, st.st_nlink)


class Docker:
    """The docker CLI on the module's daemon. Containers get --network none
    (faster, and nothing here needs a network)."""

    def __init__(self, d):
        self.d = d

    def __call__(self, *args: str, check: bool = True, input=None) -> str:
        r = self.d.docker(*args, check=check, input=input)
        return r.stdout.strip()

    def raw(self, *args: str, input=None) -> subprocess.CompletedProcess:
        return self.d.docker(*args, input=input)

    def run(self, *args: str) -> str:
        """`docker run` in the foreground; its output (and a failure is an error)."""
        return self("run", "--network", "none", *args)

    def detached(self, *args: str) -> str:
        return self("run", "-d", "--network", "none", *args)

    def inspect(self, ref: str) -> dict:
        return json.loads(self("inspect", ref))[0]

    def mounts(self, ref: str) -> dict[str, dict]:
        return by_destination(self.inspect(ref)["Mounts"])

    def volumes(self) -> set[str]:
        return set(self("volume", "ls", "-q").split())

    def containers(self) -> set[str]:
        return set(self("ps", "-aq", "--no-trunc").split())

    def mountpoint(self, volume: str) -> str:
        return self("volume", "inspect", "-f", "{{.Mountpoint}}", volume)

    def exists(self, ref: str) -> bool:
        return self.raw("inspect", "--type", "container", ref).returncode == 0


def clean_daemon(d) -> None:
    """Every container and volume of the daemon removed (the module's daemon is ours)."""
    ids = d.docker("ps", "-aq").stdout.split()
    if ids:
        d.docker("rm", "-f", "-v", *ids)
    vols = d.docker("volume", "ls", "-q").stdout.split()
    if vols:
        d.docker("volume", "rm", "-f", *vols)


@pytest.fixture(scope="module")
def images(module_daemon):
    """Images made the way a user makes them: a container that creates files, committed.

    dytm-files     /data (0750 1000:1000): f (0640 1000:1000 "hi"), hard (a hard link
                   to f), link -> f, sub/ (0700 1000:1000) with g (0644 "s");
                   /link -> /../../../../<ESCAPE>, /rlink -> ../../../../../<ESCAPE_REL>,
                   /plink -> /../../<ESCAPE_PRE>
    dytm-filesvol  the same with VOLUME /data
    dytm-other     /data holding only `other`
    """
    d = module_daemon
    script = (
        "busybox mkdir -p /data/sub && echo hi > /data/f && echo s > /data/sub/g && "
        "busybox ln /data/f /data/hard && busybox ln -s f /data/link && "
        "busybox chown -R 1000:1000 /data && busybox chown -h 1000:1000 /data/link && "
        "busybox chmod 750 /data && busybox chmod 700 /data/sub && busybox chmod 640 /data/f && "
        f"busybox ln -s /../../../..{ESCAPE} /link && "
        f"busybox ln -s ../../../../..{ESCAPE_REL} /rlink && "
        f"busybox ln -s /../..{ESCAPE_PRE} /plink")
    made = []
    try:
        d.docker("run", "--network", "none", "--name", "dytm-src", IMAGE, "sh", "-c", script,
                 check=True)
        d.docker("commit", "dytm-src", "dytm-files", check=True)
        made.append("dytm-files")
        d.docker("commit", "--change", "VOLUME /data", "dytm-src", "dytm-filesvol", check=True)
        made.append("dytm-filesvol")
        d.docker("run", "--network", "none", "--name", "dytm-src2", IMAGE, "sh", "-c",
                 "busybox mkdir /data && echo other > /data/other", check=True)
        d.docker("commit", "dytm-src2", "dytm-other", check=True)
        made.append("dytm-other")
        yield {"files": "dytm-files", "filesvol": "dytm-filesvol", "other": "dytm-other"}
    finally:
        d.docker("rm", "-f", "dytm-src", "dytm-src2")
        if made:
            d.docker("rmi", "-f", *made)


@pytest.fixture
def dk(module_daemon):
    """The docker CLI on the module's daemon; every container and volume is gone after."""
    try:
        yield Docker(module_daemon)
    finally:
        clean_daemon(module_daemon)


@pytest.fixture
def hostdir():
    """A fresh host directory (0755) for bind sources, removed after, mounts under it too."""
    path = tempfile.mkdtemp(prefix="dytm-host-", dir="/tmp")
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        left = unmount_all_under(path)
        shutil.rmtree(path, ignore_errors=True)
        assert not left, f"mounts left under {path}: {left}"


class HostMounts:
    """Mounts a test makes on the host, in a directory of its own: a tmpfs
    (named dytm-…) with the propagation asked for, and mounts below it."""

    def __init__(self):
        self.base = tempfile.mkdtemp(prefix="dytm-prop-", dir="/tmp")
        self.made: list[str] = []

    def mount_tmpfs(self, path: str, name: str, propagation: str | None = None) -> str:
        sh("mount", "-t", "tmpfs", "-o", "size=4m", name, path)
        self.made.append(path)
        if propagation:
            sh("mount", f"--make-{propagation}", path)
        return path

    def tmpfs(self, propagation: str) -> str:
        path = os.path.join(self.base, "m")
        os.mkdir(path)
        return self.mount_tmpfs(path, f"dytm-{propagation}", propagation)

    def unmount(self, path: str) -> None:
        sh("umount", path)
        self.made.remove(path)


@pytest.fixture
def host_mounts():
    """Everything under the directory is unmounted at the end, even on failure;
    a mount there that the test did not make is an error."""
    hm = HostMounts()
    try:
        yield hm
    finally:
        found = unmount_all_under(hm.base)
        shutil.rmtree(hm.base, ignore_errors=True)
        stray = sorted(set(found) - set(hm.made))
        assert not stray, f"mounts left under {hm.base} that the test did not make: {stray}"


def no_escape() -> None:
    for path in (ESCAPE, ESCAPE_REL):
        assert not os.path.lexists(path), f"{path} was created on the host"


# -- named volumes across containers ----------------------------------------------------------

def test_named_volume_data_is_shared_and_outlives_its_writer(dk):
    dk("create", "--network", "none", "--name", "dytm-w", "-v", "dytm-shared:/data", IMAGE,
       "sh", "-c", "echo written-by-w > /data/f")
    dk("start", "-a", "dytm-w")
    assert dk.run("--rm", "-v", "dytm-shared:/in", IMAGE, "cat", "/in/f") == "written-by-w"
    dk("rm", "dytm-w")
    assert "dytm-shared" in dk.volumes()
    assert dk.run("--rm", "-v", "dytm-shared:/other", IMAGE, "cat", "/other/f") == "written-by-w"
    # the file is in the volume's directory on the host
    with open(os.path.join(dk.mountpoint("dytm-shared"), "f")) as f:
        assert f.read() == "written-by-w\n"


def test_ps_filters_by_volume_name_bind_source_or_destination(dk, hostdir):
    dk("create", "--network", "none", "--name", "dytm-pv", "-v", "dytm-psvol:/data",
       "-v", f"{hostdir}:/h", IMAGE, "true")
    dk("create", "--network", "none", "--name", "dytm-pn", IMAGE, "true")

    def names(value: str) -> str:
        return dk("ps", "-a", "--filter", f"volume={value}", "--format", "{{.Names}}")

    assert names("dytm-psvol") == names("/data") == names(hostdir) == names("/h") == "dytm-pv"
    assert names("dytm-nosuch") == ""


def test_named_volumes_survive_rm_v_and_run_rm(dk):
    dk.run("--name", "dytm-n1", "-v", "dytm-keep1:/a",
           "--mount", "type=volume,src=dytm-keep2,dst=/b", IMAGE,
           "sh", "-c", "echo 1 > /a/f; echo 2 > /b/f")
    dk("rm", "-v", "dytm-n1")
    assert not dk.exists("dytm-n1")
    dk.run("--rm", "-v", "dytm-keep3:/c", "--mount", "type=volume,src=dytm-keep4,dst=/d", IMAGE,
           "sh", "-c", "echo 3 > /c/f; echo 4 > /d/f")
    assert {"dytm-keep1", "dytm-keep2", "dytm-keep3", "dytm-keep4"} <= dk.volumes()
    assert dk.run("--rm", "-v", "dytm-keep1:/a", "-v", "dytm-keep2:/b", "-v", "dytm-keep3:/c",
                  "-v", "dytm-keep4:/d", IMAGE, "cat", "/a/f", "/b/f", "/c/f", "/d/f"
                  ).split() == ["1", "2", "3", "4"]


def test_anonymous_volumes_go_with_rm_v_but_not_with_plain_rm(dk, images):
    dk.run("--name", "dytm-a1", "-v", "/anon", "--mount", "type=volume,dst=/anon2",
           images["filesvol"], "sh", "-c", "echo x > /anon/f")
    mounts = dk.mounts("dytm-a1")
    anon = {mounts[p]["Name"] for p in ("/anon", "/anon2", "/data")}
    assert len(anon) == 3 and all(len(n) == 64 for n in anon)
    assert anon <= dk.volumes()
    dk.run("--name", "dytm-a2", "-v", "/anon", images["filesvol"], "true")
    anon2 = {m["Name"] for m in dk.inspect("dytm-a2")["Mounts"]}
    assert len(anon2) == 2 and not anon2 & anon

    dk("rm", "dytm-a1")  # plain rm keeps them
    assert anon <= dk.volumes()
    dk("rm", "-v", "dytm-a2")
    assert not anon2 & dk.volumes()
    assert anon <= dk.volumes()


def test_run_rm_removes_anonymous_volumes_but_not_named_ones(dk, images):
    before = dk.volumes()
    cid = dk.detached("--rm", "-v", "/anon", "-v", "dytm-named:/n",
                      "--mount", "type=volume,dst=/anon2", images["filesvol"], "sleep", "300")
    mounts = dk.mounts(cid)
    anon = {mounts[p]["Name"] for p in ("/anon", "/anon2", "/data")}
    assert anon <= dk.volumes() and len(anon) == 3
    dk("stop", "-t", "0", cid)
    wait_for(lambda: not dk.exists(cid), what="the --rm container to be removed")
    assert dk.volumes() == before | {"dytm-named"}
    # the foreground form too
    dk.run("--rm", "-v", "/anon", images["filesvol"], "true")
    assert dk.volumes() == before | {"dytm-named"}


def test_anonymous_volume_shared_through_volumes_from_is_kept_while_used(dk):
    dk.run("--name", "dytm-owner", "-v", "/shared", IMAGE, "sh", "-c", "echo s > /shared/s")
    anon = dk.mounts("dytm-owner")["/shared"]["Name"]
    out = dk.run("--name", "dytm-user", "--volumes-from", "dytm-owner", IMAGE,
                 "sh", "-c", "cat /shared/s && echo u > /shared/u")
    assert out == "s"
    assert dk.mounts("dytm-user")["/shared"]["Name"] == anon
    r = dk.raw("rm", "-v", "dytm-owner")
    assert r.returncode == 0 and r.stderr == "", r.stderr  # no error: the volume just stays
    assert anon in dk.volumes()
    assert sorted(os.listdir(dk.mountpoint(anon))) == ["s", "u"]
    dk("rm", "-v", "dytm-user")
    assert anon not in dk.volumes()


def test_volumes_from_rm_run_rm_keeps_the_owner_volume(dk):
    dk.run("--name", "dytm-owner", "-v", "/shared", IMAGE, "true")
    anon = dk.mounts("dytm-owner")["/shared"]["Name"]
    dk.run("--rm", "--volumes-from", "dytm-owner", IMAGE, "true")
    assert anon in dk.volumes()


def test_docker_py_named_and_anonymous_volumes(dk, module_daemon):
    import docker

    client = module_daemon.client()
    try:
        out = client.containers.run(
            IMAGE, ["sh", "-c", "echo py > /d/f; cat /d/f"], network_mode="none", remove=True,
            volumes={"dytm-py": {"bind": "/d", "mode": "rw"}})
        assert out == b"py\n"
        with pytest.raises(docker.errors.ContainerError) as e:
            client.containers.run(IMAGE, ["busybox", "touch", "/r/x"], network_mode="none",
                                  remove=True, volumes=["dytm-py:/r:ro"])
        assert ROFS in (e.value.stderr or b"").decode()
        c = client.containers.create(IMAGE, ["true"], network_mode="none", volumes=["/anon"],
                                     mounts=[docker.types.Mount("/m", "dytm-py2")])
        c.reload()
        m = by_destination(c.attrs["Mounts"])
        assert m["/m"]["Name"] == "dytm-py2" and m["/m"]["Mode"] == "z"
        # (docker-py sends volumes as Binds: "/anon" there gets mode "z", as in dockerd)
        assert len(m["/anon"]["Name"]) == 64 and m["/anon"]["Mode"] == "z"
        anon = m["/anon"]["Name"]
        c.remove(v=True)
        assert anon not in dk.volumes() and "dytm-py2" in dk.volumes()
    finally:
        client.close()


# -- read-only --------------------------------------------------------------------------------

def test_ro_volume_and_readonly_mount_refuse_writes(dk, hostdir):
    dk.run("--rm", "-v", "dytm-ro:/data", IMAGE, "sh", "-c", "echo hi > /data/f")
    cases = [
        (["-v", "dytm-ro:/data:ro"], ["busybox", "touch", "/data/x"],
         f"touch: /data/x: {ROFS}"),
        (["-v", "dytm-ro:/data:ro"], ["sh", "-c", "echo no > /data/f"],
         f"sh: can't create /data/f: {ROFS}"),
        (["--mount", "type=volume,src=dytm-ro,dst=/data,readonly"],
         ["busybox", "mkdir", "/data/d"], f"mkdir: can't create directory '/data/d': {ROFS}"),
        (["-v", f"{hostdir}:/h:ro"], ["busybox", "touch", "/h/x"], f"touch: /h/x: {ROFS}"),
        (["--mount", f"type=bind,src={hostdir},dst=/h,readonly"], ["busybox", "mkdir", "/h/d"],
         f"mkdir: can't create directory '/h/d': {ROFS}"),
    ]
    for opts, cmd, message in cases:
        r = dk.raw("run", "--rm", "--network", "none", *opts, IMAGE, *cmd)
        assert (r.returncode, r.stderr.strip()) == (1, message), (opts, cmd, r.stderr)
    # reading works, and nothing was written
    assert dk.run("--rm", "-v", "dytm-ro:/data:ro", IMAGE, "cat", "/data/f") == "hi"
    assert sorted(os.listdir(dk.mountpoint("dytm-ro"))) == ["f"]
    assert os.listdir(hostdir) == []
    # inside, the mount is read-only
    line = dk.run("--rm", "-v", "dytm-ro:/data:ro", IMAGE,
                  "busybox", "awk", '$2 == "/data" {print $4}', "/proc/mounts")
    assert line.split(",")[0] == "ro"


def test_our_cli_ro_volume(dk, module_daemon):
    y = module_daemon.run_cli
    r = y("run", "--rm", "--network", "none", "-v", "dytm-yro:/d:ro", IMAGE,
          "busybox", "touch", "/d/x")
    assert (r.returncode, r.stderr.strip()) == (1, f"touch: /d/x: {ROFS}")
    r = y("run", "--rm", "--network", "none", "-v", "dytm-yro:/d", IMAGE,
          "sh", "-c", "echo ok > /d/x && cat /d/x")
    assert (r.returncode, r.stdout) == (0, "ok\n")


def test_read_only_rootfs_keeps_volumes_writable(dk):
    r = dk.raw("run", "--rm", "--network", "none", "--read-only", "-v", "dytm-rw:/data", IMAGE,
               "sh", "-c", "busybox touch /data/ok && echo data-ok; busybox touch /nope")
    assert (r.returncode, r.stdout, r.stderr) == (1, "data-ok\n", f"touch: /nope: {ROFS}\n")
    assert os.listdir(dk.mountpoint("dytm-rw")) == ["ok"]


# -- copy-up ----------------------------------------------------------------------------------

def assert_copied(data: str) -> None:
    """The image's /data, on the host: owners, modes, the link and the hard link."""
    assert lstat_line(data)[:3] == ("0o750", 1000, 1000)
    assert sorted(os.listdir(data)) == ["f", "hard", "link", "sub"]
    assert lstat_line(f"{data}/f") == ("0o640", 1000, 1000, 2)
    assert os.lstat(f"{data}/f").st_ino == os.lstat(f"{data}/hard").st_ino
    assert stat.S_ISLNK(os.lstat(f"{data}/link").st_mode)
    assert os.readlink(f"{data}/link") == "f"
    assert (os.lstat(f"{data}/link").st_uid, os.lstat(f"{data}/link").st_gid) == (1000, 1000)
    assert lstat_line(f"{data}/sub")[:3] == ("0o700", 1000, 1000)
    assert lstat_line(f"{data}/sub/g") == ("0o644", 1000, 1000, 1)
    with open(f"{data}/f") as f:
        assert f.read() == "hi\n"
    with open(f"{data}/sub/g") as f:
        assert f.read() == "s\n"


INSIDE = ("cd /data && busybox stat -c '%a %u:%g %h %F %n' . f hard link sub sub/g && "
          "busybox readlink link && "
          "[ \"$(busybox stat -c %i f)\" = \"$(busybox stat -c %i hard)\" ] && echo same-inode")
INSIDE_EXPECTED = ["750 1000:1000 3 directory .", "640 1000:1000 2 regular file f",
                   "640 1000:1000 2 regular file hard", "777 1000:1000 1 symbolic link link",
                   "700 1000:1000 2 directory sub", "644 1000:1000 1 regular file sub/g",
                   "f", "same-inode"]


def test_copy_up_into_a_new_named_volume_keeps_owners_modes_and_links(dk, images):
    out = dk.run("--rm", "-v", "dytm-cu:/data", images["files"], "sh", "-c", INSIDE)
    assert out.splitlines() == INSIDE_EXPECTED
    data = dk.mountpoint("dytm-cu")
    assert_copied(data)
    # and the files' times
    in_image = dk.run("--rm", images["files"], "busybox", "stat", "-c", "%Y", "/data/f",
                      "/data/sub/g")
    assert in_image.split() == [str(int(os.stat(f"{data}/{p}").st_mtime))
                                for p in ("f", "sub/g")]


def test_copy_up_into_a_pre_created_empty_volume_and_an_image_volume(dk, images):
    dk("volume", "create", "dytm-pre")
    out = dk.run("--rm", "--mount", "type=volume,src=dytm-pre,dst=/data", images["files"],
                 "sh", "-c", INSIDE)
    assert out.splitlines() == INSIDE_EXPECTED
    assert_copied(dk.mountpoint("dytm-pre"))
    # an image VOLUME: an anonymous volume, copied up the same way
    out = dk.run("--name", "dytm-iv", images["filesvol"], "sh", "-c", INSIDE)
    assert out.splitlines() == INSIDE_EXPECTED
    m = dk.mounts("dytm-iv")["/data"]
    assert (m["Type"], m["Mode"], len(m["Name"])) == ("volume", "", 64)
    assert_copied(m["Source"])


def test_copy_up_happens_at_create_as_in_docker(dk, images):
    """dockerd copies the image's files into the volume when the container is
    created (daemon/create_unix.go populateVolumes), not at its first start: a
    volume named by a created container already holds them."""
    dk("create", "--network", "none", "--name", "dytm-early", "-v", "dytm-early:/data",
       images["files"], "true")
    data = dk.mountpoint("dytm-early")
    assert sorted(os.listdir(data)) == ["f", "hard", "link", "sub"], \
        "the image's /data was not copied into the volume at create"
    assert dk.run("--rm", "-v", "dytm-early:/d", IMAGE, "cat", "/d/f") == "hi"


def test_no_copy_up_into_a_volume_that_has_files(dk, images):
    dk.run("--rm", "-v", "dytm-full:/data", IMAGE, "sh", "-c", "echo mine > /data/mine")
    data = dk.mountpoint("dytm-full")
    assert lstat_line(data)[:3] == ("0o755", 0, 0)
    assert dk.run("--rm", "-v", "dytm-full:/data", images["files"], "ls", "-A", "/data") == "mine"
    assert os.listdir(data) == ["mine"] and lstat_line(data)[:3] == ("0o755", 0, 0)
    # and a copied volume is not merged with another image's files
    dk.run("--rm", "-v", "dytm-cu2:/data", images["files"], "true")
    assert dk.run("--rm", "-v", "dytm-cu2:/data", images["other"], "ls", "-A", "/data"
                  ).split() == ["f", "hard", "link", "sub"]


@pytest.mark.parametrize("how", [["-v", "dytm-nc:/data:nocopy"],
                                 ["--mount", "type=volume,src=dytm-nc,dst=/data,volume-nocopy"]],
                         ids=["nocopy", "volume-nocopy"])
def test_nocopy_leaves_the_volume_empty(dk, images, how):
    assert dk.run("--rm", *how, images["files"], "ls", "-A", "/data") == ""
    data = dk.mountpoint("dytm-nc")
    assert os.listdir(data) == [] and lstat_line(data)[:3] == ("0o755", 0, 0)


def test_no_copy_up_into_a_bind_mount_or_tmpfs(dk, images, hostdir):
    assert dk.run("--rm", "-v", f"{hostdir}:/data", images["files"], "ls", "-A", "/data") == ""
    assert os.listdir(hostdir) == [] and lstat_line(hostdir)[:3] == ("0o755", 0, 0)
    assert dk.run("--rm", "--tmpfs", "/data", images["files"], "ls", "-A", "/data") == ""


# -- bind mounts ------------------------------------------------------------------------------

def test_bind_mount_both_ways_and_a_missing_source_is_made(dk, hostdir):
    with open(f"{hostdir}/from-host", "w") as f:
        f.write("host\n")
    out = dk.run("--rm", "-v", f"{hostdir}:/x", IMAGE,
                 "sh", "-c", "cat /x/from-host; echo ctr > /x/from-ctr")
    assert out == "host"
    with open(f"{hostdir}/from-ctr") as f:
        assert f.read() == "ctr\n"
    missing = f"{hostdir}/new/deeper/still"
    dk.run("--name", "dytm-mk", "-v", f"{missing}:/n", IMAGE, "true")
    for p in (f"{hostdir}/new", f"{hostdir}/new/deeper", missing):
        st = os.lstat(p)
        assert stat.S_ISDIR(st.st_mode) and (oct(stat.S_IMODE(st.st_mode)), st.st_uid) == \
            ("0o755", 0), p
    assert dk.mounts("dytm-mk")["/n"] == {"Type": "bind", "Source": missing, "Destination": "/n",
                                          "Mode": "", "RW": True, "Propagation": "rprivate"}


def test_mount_bind_with_a_missing_source_is_refused(dk, hostdir):
    before = dk.containers(), dk.volumes()
    r = dk.raw("run", "--network", "none", "--mount", f"type=bind,src={hostdir}/nope,dst=/x",
               IMAGE, "true")
    assert r.returncode == 125
    assert r.stderr.startswith(
        'docker: Error response from daemon: invalid mount config for type "bind": '
        f"bind source path does not exist: {hostdir}/nope\n"), r.stderr
    assert not os.path.exists(f"{hostdir}/nope")
    assert (dk.containers(), dk.volumes()) == before


def test_single_file_binds(dk, hostdir):
    with open(f"{hostdir}/file", "w") as f:
        f.write("content\n")
    assert dk.run("--rm", "--mount", f"type=bind,src={hostdir}/file,dst=/etc/hostfile", IMAGE,
                  "cat", "/etc/hostfile") == "content"
    out = dk.run("--rm", "-v", f"{hostdir}/file:/newdir/f", IMAGE,
                 "sh", "-c", "ls /newdir; echo more >> /newdir/f")
    assert out == "f"
    with open(f"{hostdir}/file") as f:
        assert f.read() == "content\nmore\n"
    assert os.listdir(hostdir) == ["file"]


NESTED = "cat /a/b/id; ls /a; busybox awk '$5 ~ \"^/a\" {print $5}' /proc/self/mountinfo"


def test_nested_mount_points_in_either_order(dk, module_daemon):
    dk.run("--rm", "-v", "dytm-inner:/x", IMAGE, "sh", "-c", "echo inner > /x/id")
    dk.run("--rm", "-v", "dytm-outer:/x", IMAGE, "sh", "-c", "echo outer > /x/id")
    want = ["inner", "b", "id", "/a", "/a/b"]
    orders = [
        ["-v", "dytm-outer:/a", "-v", "dytm-inner:/a/b"],
        ["-v", "dytm-inner:/a/b", "-v", "dytm-outer:/a"],
        ["--mount", "type=volume,src=dytm-inner,dst=/a/b", "-v", "dytm-outer:/a"],
        ["--mount", "type=volume,src=dytm-outer,dst=/a", "-v", "dytm-inner:/a/b"],
        ["--mount", "type=volume,src=dytm-inner,dst=/a/b/",
         "--mount", "type=volume,src=dytm-outer,dst=/a"],
    ]
    for opts in orders:
        assert dk.run("--rm", *opts, IMAGE, "sh", "-c", NESTED).split() == want, opts
    # the Engine API keeps the order of Binds as sent: both orders, through the API
    api = module_daemon.api()
    for binds in (["dytm-outer:/a", "dytm-inner:/a/b"], ["dytm-inner:/a/b", "dytm-outer:/a"]):
        cid = api.post("/containers/create", body={
            "Image": IMAGE, "Cmd": ["sh", "-c", NESTED],
            "HostConfig": {"Binds": binds, "NetworkMode": "none"}})["Id"]
        out = dk("start", "-a", cid)
        assert out.split() == want, binds
    # the outer volume holds only the mount point of the inner one
    data = dk.mountpoint("dytm-outer")
    assert sorted(os.listdir(data)) == ["b", "id"] and os.listdir(f"{data}/b") == []


def test_binds_are_recursive_unless_asked_not_to_be(dk, host_mounts):
    src = host_mounts.tmpfs("private")
    os.mkdir(f"{src}/sub")
    host_mounts.mount_tmpfs(f"{src}/sub", "dytm-sub")
    with open(f"{src}/sub/f", "w") as f:
        f.write("in-submount\n")
    assert dk.run("--rm", "-v", f"{src}:/x", IMAGE, "cat", "/x/sub/f") == "in-submount"
    assert dk.run("--rm", "--mount", f"type=bind,src={src},dst=/x", IMAGE,
                  "cat", "/x/sub/f") == "in-submount"
    assert dk.run("--rm", "--mount", f"type=bind,src={src},dst=/x,bind-nonrecursive", IMAGE,
                  "ls", "-A", "/x/sub") == ""


def test_host_symlink_as_bind_source_is_followed_but_shown_as_given(dk, hostdir):
    os.mkdir(f"{hostdir}/real")
    with open(f"{hostdir}/real/f", "w") as f:
        f.write("through-link\n")
    os.symlink(f"{hostdir}/real", f"{hostdir}/link")
    dk.run("--name", "dytm-l1", "-v", f"{hostdir}/link:/x", IMAGE, "cat", "/x/f")
    dk.run("--name", "dytm-l2", "--mount", f"type=bind,src={hostdir}/link,dst=/x", IMAGE,
           "cat", "/x/f")
    dk.run("--name", "dytm-l3", "-v", f"{hostdir}/link/:/x/",
           "-v", f"{hostdir}//real/../real:/y/../z", IMAGE, "cat", "/x/f", "/z/f")
    for name in ("dytm-l1", "dytm-l2"):
        assert dk.inspect(name)["Mounts"] == [
            {"Type": "bind", "Source": f"{hostdir}/link", "Destination": "/x", "Mode": "",
             "RW": True, "Propagation": "rprivate"}]
    c = dk.inspect("dytm-l3")
    assert by_destination(c["Mounts"]) == {
        "/x": {"Type": "bind", "Source": f"{hostdir}/link", "Destination": "/x", "Mode": "",
               "RW": True, "Propagation": "rprivate"},
        "/z": {"Type": "bind", "Source": f"{hostdir}/real", "Destination": "/z", "Mode": "",
               "RW": True, "Propagation": "rprivate"}}
    assert sorted(c["HostConfig"]["Binds"]) == sorted(
        [f"{hostdir}/link/:/x/", f"{hostdir}//real/../real:/y/../z"])
    assert dk("logs", "dytm-l3").split() == ["through-link", "through-link"]
    assert os.path.islink(f"{hostdir}/link")  # the link itself is not replaced


def test_relative_bind_sources(dk, module_daemon, hostdir):
    # the CLIs make ./x absolute (docker CLI 28 does) ...
    for i, argv in enumerate((["docker", "-H", module_daemon.host],
                              [DOCKYARD, "-H", module_daemon.host])):
        name = f"dytm-rel{i}"
        r = subprocess.run([*argv, "run", "--network", "none", "--name", name,
                            "-v", f"./rel{i}:/x", IMAGE, "true"],
                           cwd=hostdir, env=module_daemon.env(), capture_output=True, text=True)
        assert r.returncode == 0, (argv[0], r.stderr)
        c = dk.inspect(name)
        assert c["HostConfig"]["Binds"] == [f"{hostdir}/rel{i}:/x"], argv[0]
        assert c["Mounts"][0]["Source"] == f"{hostdir}/rel{i}"
        assert os.path.isdir(f"{hostdir}/rel{i}")
    # ... but a relative path without ./ is a volume name, and not a valid one
    before = dk.containers(), dk.volumes()
    message = ('create rel/path: "rel/path" includes invalid characters for a local volume '
               'name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a '
               'host directory, use absolute path')
    r = dk.raw("run", "--network", "none", "-v", "rel/path:/x", IMAGE, "true")
    assert r.returncode == 125
    assert r.stderr.startswith(f"docker: Error response from daemon: {message}\n"), r.stderr
    # and the daemon given ./rel itself refuses it the same way (400)
    from dockyard.client.api import APIError
    with pytest.raises(APIError) as e:
        module_daemon.api().post("/containers/create", body={
            "Image": IMAGE, "Cmd": ["true"], "HostConfig": {"Binds": ["./relative:/x"]}})
    assert (e.value.status, e.value.message) == (400, message.replace("rel/path", "./relative"))
    assert (dk.containers(), dk.volumes()) == before


def test_cp_goes_through_volumes_and_binds(dk, hostdir):
    """`docker cp` sees the container's filesystem as the container does: a
    path inside a volume or a bind mount is read from and written to it, for a
    running container and a stopped one; a read-only mount refuses the copy."""
    with open(f"{hostdir}/in-bind", "w") as f:
        f.write("in-bind\n")
    src = tempfile.mkdtemp(prefix="dytm-cpsrc-", dir="/tmp")
    try:
        with open(f"{src}/f", "w") as f:
            f.write("copied\n")
        cid = dk.detached("-v", "dytm-cpv:/data", "-v", f"{hostdir}:/b",
                          "-v", "dytm-cpro:/ro:ro", IMAGE,
                          "sh", "-c", "echo in-vol > /data/in; exec sleep 300")
        wait_for(lambda: dk.raw("exec", cid, "cat", "/data/in").stdout == "in-vol\n",
                 timeout=5, what="the container's file")
        vol = dk.mountpoint("dytm-cpv")
        problems = []

        def cp_out(path: str) -> str:
            r = subprocess.run(["docker", "-H", dk.d.host, "cp", f"{cid}:{path}", "-"],
                               env=dk.d.env(), capture_output=True)
            if r.returncode != 0:
                problems.append(f"cp {path} out: {r.stderr.decode().strip()}")
                return ""
            out = subprocess.run(["tar", "-xO"], input=r.stdout, capture_output=True)
            return out.stdout.decode()

        for state in ("running", "stopped"):
            r = dk.raw("cp", f"{src}/f", f"{cid}:/data/cp-{state}")
            if r.returncode != 0 or not os.path.exists(f"{vol}/cp-{state}"):
                problems.append(f"cp into the volume ({state}): {r.stderr.strip()}")
            r = dk.raw("cp", f"{src}/f", f"{cid}:/b/cp-{state}")
            if r.returncode != 0 or not os.path.exists(f"{hostdir}/cp-{state}"):
                problems.append(f"cp into the bind ({state}): {r.stderr.strip()}")
            if cp_out("/data/in") != "in-vol\n":
                problems.append(f"cp out of the volume ({state})")
            if cp_out("/b/in-bind") != "in-bind\n":
                problems.append(f"cp out of the bind ({state})")
            r = dk.raw("cp", f"{src}/f", f"{cid}:/ro/x")
            if (r.returncode, r.stderr.strip()) != (
                    1, "Error response from daemon: mounted volume is marked read-only"):
                problems.append(f"cp into a read-only volume ({state}): {r.returncode} "
                                f"{r.stderr.strip()}")
            if state == "running":
                dk("stop", "-t", "0", cid)
        assert os.listdir(dk.mountpoint("dytm-cpro")) == []
        assert not problems, "\n".join(problems)
    finally:
        shutil.rmtree(src, ignore_errors=True)


def test_diff_and_commit_leave_out_what_is_mounted(dk, hostdir):
    dk.run("--name", "dytm-df", "-v", "dytm-dv:/data", "-v", f"{hostdir}:/deep/b",
           "--tmpfs", "/t", IMAGE,
           "sh", "-c", "echo x > /data/f; echo y > /t/y; echo z > /deep/b/z")
    assert sorted(dk("diff", "dytm-df").splitlines()) == [
        "A /data", "A /deep", "A /deep/b", "A /t"]
    dk("commit", "dytm-df", "dytm-dfimg")
    try:
        assert dk.run("--rm", "dytm-dfimg", "ls", "-A", "/data", "/deep/b", "/t").split() == \
            ["/data:", "/deep/b:", "/t:"]
    finally:
        dk("rmi", "dytm-dfimg")


# -- symlinks in the image pointing out of the rootfs -------------------------------------------

@pytest.mark.parametrize("link,host", [("/link", ESCAPE), ("/rlink", ESCAPE_REL)],
                         ids=["absolute", "relative"])
def test_volume_under_an_escaping_symlink_stays_in_the_rootfs(dk, images, link, host):
    no_escape()
    inside = "/tmp/" + os.path.basename(host)  # where the link leads, resolved in the rootfs
    out = dk.run("--name", "dytm-esc", "-v", f"dytm-escv:{link}/sub", images["files"], "sh", "-c",
                 f"echo marker > {link}/sub/m; busybox awk '$5 ~ \"dytm-esc\" {{print $5}}' "
                 "/proc/self/mountinfo")
    assert out == f"{inside}/sub"
    assert os.listdir(dk.mountpoint("dytm-escv")) == ["m"]
    assert dk.mounts("dytm-esc")[f"{link}/sub"]["Destination"] == f"{link}/sub"
    no_escape()
    # the link itself as the destination
    out = dk.run("--rm", "-v", f"dytm-escw:{link}", images["files"], "sh", "-c",
                 f"echo marker > {link}/m; busybox awk '$5 ~ \"dytm-esc\" {{print $5}}' "
                 "/proc/self/mountinfo")
    assert out == inside
    assert os.listdir(dk.mountpoint("dytm-escw")) == ["m"]
    no_escape()


def test_bind_under_an_escaping_symlink_stays_in_the_rootfs(dk, images, hostdir):
    for link in ("/link", "/rlink"):
        dk.run("--rm", "-v", f"{hostdir}:{link}", images["files"], "sh", "-c",
               f"echo {link} >> {link}/seen")
        no_escape()
    with open(f"{hostdir}/seen") as f:
        assert f.read().split() == ["/link", "/rlink"]


def test_escaping_symlink_to_an_existing_host_dir_is_neither_read_nor_written(dk, images):
    os.mkdir(ESCAPE_PRE)
    try:
        with open(f"{ESCAPE_PRE}/secret", "w") as f:
            f.write("host secret\n")
        # copy-up follows the link inside the rootfs: nothing of the host's dir comes in
        out = dk.run("--rm", "-v", "dytm-pre-esc:/plink", images["files"], "ls", "-A", "/plink")
        assert out == ""
        assert os.listdir(dk.mountpoint("dytm-pre-esc")) == []
        dk.run("--rm", "-v", "dytm-pre-esc2:/plink/sub", images["files"], "true")
        dk.run("--rm", "-v", "dytm-pre-esc3:/plink", images["files"],
               "sh", "-c", "echo x > /plink/written")
        assert os.listdir(ESCAPE_PRE) == ["secret"]
        assert os.listdir(dk.mountpoint("dytm-pre-esc3")) == ["written"]
    finally:
        shutil.rmtree(ESCAPE_PRE, ignore_errors=True)


@pytest.mark.parametrize("target", [ESCAPE, f"../../../../../..{ESCAPE_REL}"],
                         ids=["absolute", "relative"])
def test_symlink_written_into_a_volume_does_not_lead_a_nested_mount_out(dk, target):
    """A container plants a symlink in a volume; a later container mounts another
    volume below that path: the mount is resolved inside its rootfs."""
    dk.run("--rm", "-v", "dytm-plant:/a", IMAGE, "busybox", "ln", "-s", target, "/a/sub")
    out = dk.run("--rm", "-v", "dytm-plant:/a", "-v", "dytm-below:/a/sub/deeper", IMAGE,
                 "sh", "-c", "echo m > /a/sub/deeper/m; ls /a")
    assert out == "sub"
    no_escape()
    assert os.listdir(dk.mountpoint("dytm-below")) == ["m"]
    assert os.listdir(dk.mountpoint("dytm-plant")) == ["sub"]


# -- propagation ------------------------------------------------------------------------------

def test_rslave_bind_sees_a_mount_made_on_the_host_later_and_rprivate_does_not(
        dk, host_mounts):
    src = host_mounts.tmpfs("shared")
    os.mkdir(f"{src}/sub")
    slave = dk.detached("--mount", f"type=bind,src={src},dst=/p,bind-propagation=rslave",
                        IMAGE, "sleep", "300")
    private = dk.detached("--mount", f"type=bind,src={src},dst=/p", IMAGE, "sleep", "300")
    assert dk.mounts(slave)["/p"] == {"Type": "bind", "Source": src, "Destination": "/p",
                                      "Mode": "", "RW": True, "Propagation": "rslave"}
    assert dk.mounts(private)["/p"]["Propagation"] == "rprivate"
    host_mounts.mount_tmpfs(f"{src}/sub", "dytm-late")
    with open(f"{src}/sub/late", "w") as f:
        f.write("late\n")

    def seen(cid):
        r = dk.raw("exec", cid, "cat", "/p/sub/late")
        return r.returncode == 0 and r.stdout == "late\n"
    wait_for(lambda: seen(slave), timeout=5, what="the host's new mount in the rslave bind")
    assert not seen(private)
    assert dk("exec", private, "ls", "-A", "/p/sub") == ""
    # the slave receives, it does not send: a mount made inside stays inside
    # (the container has no CAP_SYS_ADMIN; nothing to try there)
    dk("rm", "-f", slave, private)
    host_mounts.unmount(f"{src}/sub")


def test_rshared_and_rslave_need_a_propagating_source(dk, host_mounts):
    src = host_mounts.tmpfs("private")
    dk("create", "--network", "none", "--name", "dytm-rs",
       "--mount", f"type=bind,src={src},dst=/x,bind-propagation=rshared", IMAGE, "true")
    r = dk.raw("start", "dytm-rs")
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        f"Error response from daemon: path {src} is mounted on {src} but it is not a shared "
        "mount", "Error: failed to start containers: dytm-rs"]
    r = dk.raw("run", "--network", "none", "--name", "dytm-rsl", "-v", f"{src}:/x:rslave",
               IMAGE, "true")
    assert r.returncode == 125
    assert r.stderr.startswith(
        f"docker: Error response from daemon: path {src} is mounted on {src} but it is not a "
        "shared or slave mount\n"), r.stderr
    assert dk.mounts("dytm-rsl")["/x"]["Propagation"] == "rslave"
    assert dk.mounts("dytm-rsl")["/x"]["Mode"] == "rslave"
    # a slave source is enough for rslave
    sh("mount", "--make-shared", src)
    dk.run("--rm", "-v", f"{src}:/x:rshared", IMAGE, "true")
    dk.run("--rm", "-v", f"{src}:/x:rslave", IMAGE, "true")


def test_a_start_refused_for_propagation_is_recorded_in_the_state(dk, host_mounts):
    """dockerd: the container stays created with State.ExitCode 128 and
    State.Error the message (as for any start that fails)."""
    src = host_mounts.tmpfs("private")
    r = dk.raw("run", "--network", "none", "--name", "dytm-rs2",
               "--mount", f"type=bind,src={src},dst=/x,bind-propagation=rshared", IMAGE, "true")
    assert r.returncode == 125
    message = f"path {src} is mounted on {src} but it is not a shared mount"
    state = dk.inspect("dytm-rs2")["State"]
    assert (state["Status"], state["ExitCode"], state["Error"]) == ("created", 128, message)


# -- tmpfs ------------------------------------------------------------------------------------

TMPFS_PROBE = ("busybox awk '$2 == \"/t\" {print $1, $3, $4}' /proc/mounts; "
               "busybox stat -c '%a %u:%g' /t; echo x > /t/x && echo writable")


@pytest.mark.parametrize("how", [["--tmpfs", "/t:size=1m,mode=1770"],
                                 ["--mount", "type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770"]],
                         ids=["--tmpfs", "--mount"])
def test_tmpfs_mounts(dk, how):
    dk.run("--name", "dytm-t", *how, IMAGE, "sh", "-c", TMPFS_PROBE)
    assert dk("logs", "dytm-t").splitlines() == [
        "tmpfs tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k,mode=1770", "1770 0:0",
        "writable"]
    c = dk.inspect("dytm-t")
    if how[0] == "--tmpfs":  # not listed in Mounts, kept in HostConfig.Tmpfs
        assert c["Mounts"] == [] and c["HostConfig"]["Tmpfs"] == {"/t": "size=1m,mode=1770"}
    else:
        assert c["Mounts"] == [{"Type": "tmpfs", "Source": "", "Destination": "/t", "Mode": "",
                                "RW": True, "Propagation": ""}]
        assert c["HostConfig"]["Mounts"] == [{"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {
            "SizeBytes": 1048576, "Mode": 0o1770}}]
    # a restart gets a new, empty tmpfs
    dk("start", "-a", "dytm-t")
    assert dk("logs", "dytm-t").splitlines()[-1] == "writable"


def test_tmpfs_volume_is_shared_and_unmounted_after_its_last_user(dk):
    dk("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs",
       "--opt", "o=size=2m", "dytm-tv")
    data = dk.mountpoint("dytm-tv")
    assert mounted_at(data) == []
    a = dk.detached("-v", "dytm-tv:/v", IMAGE, "sh", "-c", "echo from-a > /v/a; exec sleep 300")
    b = dk.detached("-v", "dytm-tv:/v", IMAGE, "sleep", "300")
    wait_for(lambda: dk.raw("exec", b, "cat", "/v/a").stdout == "from-a\n", timeout=5,
             what="b to see what a wrote")
    dk("exec", b, "sh", "-c", "echo from-b > /v/b")
    assert dk("exec", a, "cat", "/v/b") == "from-b"
    line = dk("exec", a, "busybox", "awk", '$2 == "/v" {print $1, $3, $4}', "/proc/mounts")
    assert line.split()[:2] == ["tmpfs", "tmpfs"] and "size=2048k" in line.split()[2]
    infos = mounted_at(data)
    assert len(infos) == 1 and infos[0][infos[0].index("-") + 1] == "tmpfs"
    with open(f"{data}/a") as f:  # the host sees the volume's files while it is mounted
        assert f.read() == "from-a\n"
    dk("stop", "-t", "0", a)
    assert len(mounted_at(data)) == 1  # b still uses it
    assert dk("exec", b, "cat", "/v/a") == "from-a"
    dk("stop", "-t", "0", b)
    assert mounted_at(data) == [], "the tmpfs stayed mounted after its last user stopped"
    assert os.listdir(data) == []
    # a new user gets a new, empty tmpfs
    assert dk.run("--rm", "-v", "dytm-tv:/v", IMAGE, "ls", "-A", "/v") == ""
    assert mounted_at(data) == []


def test_mount_volume_opts_make_a_tmpfs_volume_on_the_fly(dk):
    out = dk.run("--name", "dytm-vo", "--mount", "type=volume,src=dytm-vo,dst=/y,"
                 "volume-opt=type=tmpfs,volume-opt=device=tmpfs,volume-opt=o=size=3m",
                 IMAGE, "busybox", "awk", '$2 == "/y" {print $1, $3, $4}', "/proc/mounts")
    assert out.split()[:2] == ["tmpfs", "tmpfs"] and "size=3072k" in out.split()[2]
    assert json.loads(dk("volume", "inspect", "-f", "{{json .Options}}", "dytm-vo")) == {
        "device": "tmpfs", "o": "size=3m", "type": "tmpfs"}
    assert mounted_at(dk.mountpoint("dytm-vo")) == []


def unmount_volume_leftovers(d) -> list[str]:
    """Whatever is still mounted under the daemon's volumes directory (a leak
    of the daemon's): unmounted, so that the tests after this one start clean."""
    return unmount_all_under(os.path.join(d.root, "volumes"))


def bind_volume(dk, name: str, device: str) -> str:
    dk("volume", "create", "--opt", "type=none", "--opt", "o=bind", "--opt", f"device={device}",
       name)
    return dk.mountpoint(name)


def test_bind_option_volume_is_unmounted_after_use_and_rm_keeps_the_host_files(dk, hostdir):
    """A local volume with `-o type=none,o=bind,device=DIR` (the usual way to
    name a host directory as a volume) is bind-mounted on its _data while a
    container uses it, and unmounted after; removing the volume never touches
    DIR's files (dockerd: the mount is gone, DIR is as it was)."""
    dev = f"{hostdir}/dev"
    os.mkdir(dev)
    with open(f"{dev}/precious", "w") as f:
        f.write("keep me\n")
    problems = []
    try:
        data = bind_volume(dk, "dytm-bindvol", dev)
        for i in range(2):
            out = dk.run("--rm", "-v", "dytm-bindvol:/v", IMAGE,
                         "sh", "-c", f"echo {i} > /v/run{i}; ls /v")
            assert out.split() == ["precious"] + [f"run{j}" for j in range(i + 1)]
            if mounted_at(data):
                problems.append(f"after run {i}: {len(mounted_at(data))} mount(s) left on {data}")
        dk("volume", "rm", "dytm-bindvol")
        left = sorted(os.listdir(dev))
        if left != ["precious", "run0", "run1"]:
            problems.append(f"`volume rm` deleted the host directory's files: left {left}")
        assert not problems, "\n".join(problems)
    finally:
        unmount_volume_leftovers(dk.d)


def test_copy_up_into_a_bind_option_volume(dk, images, hostdir):
    dev = f"{hostdir}/dev"
    os.mkdir(dev)
    try:
        data = bind_volume(dk, "dytm-bindcu", dev)
        r = dk.raw("run", "--rm", "--network", "none", "-v", "dytm-bindcu:/data", images["files"],
                   "ls", "/data")
        assert (r.returncode, r.stderr) == (0, ""), r.stderr
        assert r.stdout.split() == ["f", "hard", "link", "sub"]
        assert_copied(dev)
        assert mounted_at(data) == []
    finally:
        unmount_volume_leftovers(dk.d)


def test_a_volume_that_cannot_be_mounted_fails_the_start_as_in_docker(dk, hostdir):
    data = bind_volume(dk, "dytm-nodev", f"{hostdir}/missing")
    r = dk.raw("run", "--network", "none", "--name", "dytm-nodev", "-v", "dytm-nodev:/v", IMAGE,
               "true")
    message = (f"error while mounting volume '{data}': failed to mount local volume: mount "
               f"{hostdir}/missing:{data}, flags: 0x1000: no such file or directory")
    # (the CLI exits 127 for a start error that says "no such file or directory")
    assert (r.returncode, r.stderr.splitlines()[0]) == (
        127, f"docker: Error response from daemon: {message}"), r.stderr
    assert mounted_at(data) == []
    assert not os.path.exists(f"{hostdir}/missing")


def test_a_failed_start_leaves_no_volume_mounted(dk, host_mounts):
    src = host_mounts.tmpfs("private")
    dk("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "dytm-tvf")
    r = dk.raw("run", "--network", "none", "--name", "dytm-f1", "-v", "dytm-tvf:/v",
               "--mount", f"type=bind,src={src},dst=/x,bind-propagation=rshared", IMAGE, "true")
    assert r.returncode == 125
    assert mounted_at(dk.mountpoint("dytm-tvf")) == []
    with open(f"{src}/file", "w"):
        pass
    r = dk.raw("run", "--network", "none", "--name", "dytm-f2", "-v", "dytm-tvf:/v",
               "-v", f"{src}/file:/bin", IMAGE, "true")
    assert r.returncode == 125 and "Are you trying to mount a directory onto a file" in r.stderr
    assert mounted_at(dk.mountpoint("dytm-tvf")) == []
    dk("rm", "dytm-f1", "dytm-f2")
    dk("volume", "rm", "dytm-tvf")


# -- --volumes-from and Mounts in inspect -------------------------------------------------------

def test_volumes_from_rw_and_ro(dk, hostdir):
    dk.run("--name", "dytm-src", "-v", "dytm-vf:/data", "-v", f"{hostdir}:/h:ro",
           "-v", "dytm-vf2:/rw:rw", IMAGE, "sh", "-c", "echo src > /data/f")
    out = dk.run("--name", "dytm-rw", "--volumes-from", "dytm-src", IMAGE,
                 "sh", "-c", "cat /data/f; echo rw > /data/g")
    assert out == "src"
    assert sorted(os.listdir(dk.mountpoint("dytm-vf"))) == ["f", "g"]
    # :ro makes every copy read-only
    r = dk.raw("run", "--network", "none", "--name", "dytm-ro", "--volumes-from", "dytm-src:ro",
               IMAGE, "busybox", "touch", "/data/x")
    assert (r.returncode, r.stderr.strip()) == (1, f"touch: /data/x: {ROFS}")
    # :rw cannot make a read-only mount writable
    r = dk.raw("run", "--rm", "--network", "none", "--volumes-from", "dytm-src:rw", IMAGE,
               "busybox", "touch", "/h/x")
    assert (r.returncode, r.stderr.strip()) == (1, f"touch: /h/x: {ROFS}")
    vf = dk.mountpoint("dytm-vf")
    vf2 = dk.mountpoint("dytm-vf2")
    src = {"Type": "bind", "Source": hostdir, "Destination": "/h", "Mode": "", "RW": False,
           "Propagation": "rprivate"}
    assert dk.mounts("dytm-rw") == {
        "/data": {"Type": "volume", "Name": "dytm-vf", "Source": vf, "Destination": "/data",
                  "Driver": "local", "Mode": "", "RW": True, "Propagation": ""},
        "/h": src,
        "/rw": {"Type": "volume", "Name": "dytm-vf2", "Source": vf2, "Destination": "/rw",
                "Driver": "local", "Mode": "", "RW": True, "Propagation": ""}}
    ro = dk.mounts("dytm-ro")
    assert [ro[p]["RW"] for p in ("/data", "/h", "/rw")] == [False, False, False]
    assert [ro[p]["Mode"] for p in ("/data", "/h", "/rw")] == ["", "", ""]
    c = dk.inspect("dytm-ro")
    assert c["HostConfig"]["Binds"] is None and c["HostConfig"]["VolumesFrom"] == ["dytm-src:ro"]
    # an explicit -v wins over an inherited destination
    dk.run("--name", "dytm-over", "--volumes-from", "dytm-src", "-v", "dytm-vf3:/data", IMAGE,
           "true")
    m = dk.mounts("dytm-over")
    assert (m["/data"]["Name"], m["/data"]["Mode"]) == ("dytm-vf3", "z")
    # errors
    r = dk.raw("run", "--network", "none", "--volumes-from", "dytm-nosuch", IMAGE, "true")
    assert r.returncode == 125
    assert r.stderr.startswith("docker: Error response from daemon: No such container: "
                               "dytm-nosuch\n"), r.stderr
    r = dk.raw("run", "--network", "none", "--volumes-from", "dytm-src:bogus", IMAGE, "true")
    assert r.returncode == 125
    assert r.stderr.startswith("docker: Error response from daemon: invalid mode: bogus\n")


def test_mounts_in_inspect_as_docker_shows_them(dk, hostdir):
    cid = dk("create", "--network", "none", "--name", "dytm-insp",
             "-v", "dytm-iv1:/named", "-v", "/anon", "-v", f"{hostdir}:/bind-ro:ro",
             "-v", "dytm-iv1:/named-ro:ro,nocopy", "-v", f"{hostdir}:/bind-rw:rw,rprivate",
             "--mount", "type=volume,src=dytm-iv2,dst=/mvol",
             "--mount", "type=volume,src=dytm-iv2,dst=/mvol-ro,readonly",
             "--mount", f"type=bind,src={hostdir},dst=/mbind",
             "--mount", f"type=bind,src={hostdir},dst=/mbind-ro,readonly",
             "--mount", "type=tmpfs,dst=/mtmp",
             "--mount", "type=volume,dst=/manon",
             "--tmpfs", "/ttmp", IMAGE, "true")
    c = dk.inspect(cid)
    m = by_destination(c["Mounts"])
    iv1, iv2 = dk.mountpoint("dytm-iv1"), dk.mountpoint("dytm-iv2")
    anon, manon = m["/anon"]["Name"], m["/manon"]["Name"]

    def vol(name, source, dest, mode, rw=True):
        return {"Type": "volume", "Name": name, "Source": source, "Destination": dest,
                "Driver": "local", "Mode": mode, "RW": rw, "Propagation": ""}

    def bind(dest, mode, rw=True, propagation="rprivate"):
        return {"Type": "bind", "Source": hostdir, "Destination": dest, "Mode": mode, "RW": rw,
                "Propagation": propagation}

    assert m == {
        "/named": vol("dytm-iv1", iv1, "/named", "z"),
        "/anon": vol(anon, dk.mountpoint(anon), "/anon", ""),
        "/bind-ro": bind("/bind-ro", "ro", rw=False),
        "/named-ro": vol("dytm-iv1", iv1, "/named-ro", "ro,nocopy", rw=False),
        "/bind-rw": bind("/bind-rw", "rw,rprivate"),
        "/mvol": vol("dytm-iv2", iv2, "/mvol", "z"),
        "/mvol-ro": vol("dytm-iv2", iv2, "/mvol-ro", "z", rw=False),
        "/mbind": bind("/mbind", ""),
        "/mbind-ro": bind("/mbind-ro", "", rw=False),
        "/mtmp": {"Type": "tmpfs", "Source": "", "Destination": "/mtmp", "Mode": "", "RW": True,
                  "Propagation": ""},
        "/manon": vol(manon, dk.mountpoint(manon), "/manon", "z"),
    }
    assert len(anon) == 64 and len(manon) == 64 and anon != manon
    assert c["Config"]["Volumes"] == {"/anon": {}}
    assert c["HostConfig"]["Tmpfs"] == {"/ttmp": ""}
    assert sorted(c["HostConfig"]["Binds"]) == sorted([
        "dytm-iv1:/named", f"{hostdir}:/bind-ro:ro", "dytm-iv1:/named-ro:ro,nocopy",
        f"{hostdir}:/bind-rw:rw,rprivate"])
    assert {x["Target"]: x for x in c["HostConfig"]["Mounts"]}["/mvol-ro"] == {
        "Type": "volume", "Source": "dytm-iv2", "Target": "/mvol-ro", "ReadOnly": True}
    # the container list shows the same (dockerd 20.10 lists an anonymous volume
    # that came from Config.Volumes with Source "": that quirk is not asked for)
    [summary] = dk.d.api().get("/containers/json", query={
        "all": "1", "filters": json.dumps({"id": [cid]})})
    listed = by_destination(summary["Mounts"])
    assert listed["/anon"]["Source"] in ("", m["/anon"]["Source"])
    listed["/anon"]["Source"] = m["/anon"]["Source"]
    assert listed == m


# -- refused requests -------------------------------------------------------------------------

BAD_NAME = ('create ba$d: "ba$d" includes invalid characters for a local volume name, only '
            '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, '
            'use absolute path')


@pytest.mark.parametrize("opts,message", [
    (["-v", "ba$d:/x"], BAD_NAME),
    (["-v", "dytm-b1:/x", "-v", "dytm-b2:/x"], "Duplicate mount point: /x"),
    (["-v", "dytm-b1:/x", "--mount", "type=volume,src=dytm-b2,dst=/x"],
     "Duplicate mount point: /x"),
    (["-v", "dytm-b1:/x", "--tmpfs", "/x"], "Duplicate mount point: /x"),
    (["-v", "dytm-b1:/x/", "-v", "dytm-b2:/x"], "Duplicate mount point: /x"),
    (["-v", "dytm-b1:/"], "invalid volume specification: 'dytm-b1:/': invalid mount config for "
                          "type \"volume\": invalid specification: destination can't be '/'"),
    (["--mount", "type=volume,src=dytm-b1,dst=/"],
     "invalid mount config for type \"volume\": invalid specification: destination can't be '/'"),
    (["--mount", "type=volume,dst=/x,readonly"], 'invalid mount config for type "volume": '
     "must not set ReadOnly mode when using anonymous volumes"),
    (["-v", "dytm-b1:/x:ro,rw"], "invalid mode: ro,rw"),
    (["-v", "dytm-b1:/x:bogus"], "invalid mode: bogus"),
    (["-v", "dytm-b1:x"], "invalid volume specification: 'dytm-b1:x': invalid mount config for "
                          "type \"volume\": invalid mount path: 'x' mount path must be absolute"),
], ids=["bad-name", "dup-v", "dup-v-mount", "dup-v-tmpfs", "dup-cleaned", "v-root",
        "mount-root", "anon-readonly", "ro-rw", "bogus-mode", "relative-target"])
def test_refused_mounts_leave_nothing(dk, opts, message):
    """(dockerd 20.10 may keep a volume it made for a bind before it found the
    duplicate; dockyard makes nothing before the whole request is checked.)"""
    before = dk.containers(), dk.volumes()
    r = dk.raw("run", "--network", "none", "--name", "dytm-bad", *opts, IMAGE, "true")
    assert r.returncode == 125, r.stderr
    assert r.stderr.startswith(f"docker: Error response from daemon: {message}\n"), r.stderr
    assert (dk.containers(), dk.volumes()) == before
    assert not dk.exists("dytm-bad")


def test_refused_mounts_through_the_api_statuses_and_cleanup(dk, module_daemon, hostdir):
    from dockyard.client.api import APIError
    api = module_daemon.api()
    before = dk.containers(), dk.volumes()
    cases = [
        ({"Binds": ["dytm-b1:/x:ro,rw"]}, 500, "invalid mode: ro,rw"),
        ({"Binds": [f"{hostdir}:/"]}, 500, f"invalid volume specification: '{hostdir}:/': invalid "
         "mount config for type \"bind\": invalid specification: destination can't be '/'"),
        ({"Binds": ["dytm-b1:/x", "dytm-b2:/x"]}, 400, "Duplicate mount point: /x"),
        ({"Binds": ["ba$d:/x"]}, 400, BAD_NAME),
        # an anonymous volume made for the first bind goes when the second is refused
        ({"Binds": ["/anon", "ba$d:/x"]}, 400, BAD_NAME),
        ({"Mounts": [{"Type": "volume", "Target": "/anon"}], "Binds": ["dytm-b1:/x:bogus"]},
         500, "invalid mode: bogus"),
        ({"Mounts": [{"Type": "bind", "Source": f"{hostdir}/nope", "Target": "/x"}]}, 400,
         f'invalid mount config for type "bind": bind source path does not exist: {hostdir}/nope'),
        ({"Mounts": [{"Type": "tmpfs", "Source": "x", "Target": "/t"}]}, 400,
         'invalid mount config for type "tmpfs": field Source must not be specified'),
        ({"VolumesFrom": ["dytm-nosuch"]}, 400, "No such container: dytm-nosuch"),
    ]
    for host_config, status, message in cases:
        with pytest.raises(APIError) as e:
            api.post("/containers/create", query={"name": "dytm-bad"}, body={
                "Image": IMAGE, "Cmd": ["true"], "HostConfig": host_config})
        assert (e.value.status, e.value.message) == (status, message), host_config
        assert (dk.containers(), dk.volumes()) == before, host_config
    # a volume-config image VOLUME on top of a refused bind: nothing either
    r = dk.raw("create", "--network", "none", "-v", "ba$d:/x", "-v", "/anon", IMAGE, "true")
    assert r.returncode == 1 and BAD_NAME in r.stderr
    assert (dk.containers(), dk.volumes()) == before


# -- a daemon restart -------------------------------------------------------------------------

def test_daemon_restart_keeps_volume_data_and_references(daemon):
    d = daemon
    load_busybox(d)
    dk = Docker(d)
    try:
        dk("volume", "create", "dytm-keep")
        dk.run("--name", "dytm-w", "-v", "dytm-keep:/d", IMAGE, "sh", "-c", "echo kept > /d/f")
        w = dk.inspect("dytm-w")["Id"]
        dk.run("--name", "dytm-anon", "-v", "/anon", IMAGE, "sh", "-c", "echo a > /anon/f")
        anon = dk.mounts("dytm-anon")["/anon"]["Name"]
        dk("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "dytm-tv")
        live = dk.detached("--name", "dytm-live", "-v", "dytm-tv:/v", IMAGE,
                           "sh", "-c", "echo live > /v/f; exec sleep 300")
        wait_for(lambda: dk.raw("exec", live, "cat", "/v/f").stdout == "live\n", timeout=5,
                 what="the live container's file")
        tv = dk.mountpoint("dytm-tv")

        d.stop()
        d.start()

        assert {"dytm-keep", anon, "dytm-tv"} <= dk.volumes()
        # a volume used by a stopped container is still in use
        r = dk.raw("volume", "rm", "dytm-keep")
        assert r.returncode == 1
        assert r.stderr.strip() == ("Error response from daemon: remove dytm-keep: volume is in "
                                    f"use - [{w}]")
        r = d.run_cli("volume", "rm", "-f", "dytm-keep")
        assert r.returncode == 1 and f"volume is in use - [{w}]" in r.stderr
        assert dk.run("--rm", "-v", "dytm-keep:/d", IMAGE, "cat", "/d/f") == "kept"
        # the anonymous volume is still the container's: rm -v takes it
        dk("rm", "-v", "dytm-anon")
        assert anon not in dk.volumes()
        # the live container's tmpfs volume: still mounted, still counted
        assert dk("exec", live, "cat", "/v/f") == "live"
        assert len(mounted_at(tv)) == 1
        assert dk.run("--rm", "-v", "dytm-tv:/v", IMAGE, "cat", "/v/f") == "live"
        assert len(mounted_at(tv)) == 1, "a second user's exit unmounted the live one's volume"
        dk("stop", "-t", "0", live)
        assert mounted_at(tv) == []
        r = dk.raw("volume", "rm", "dytm-tv")
        assert r.returncode == 1 and f"volume is in use - [{live}]" in r.stderr
        dk("rm", "dytm-w", "dytm-live")
        dk("volume", "rm", "dytm-keep", "dytm-tv")
        assert dk.volumes() == set()
    finally:
        if d.proc is not None and d.proc.poll() is None:
            clean_daemon(d)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


WAIT_FOR_FLAG = "while [ ! -e /v/{0} ]; do sleep 0.05; done"


def test_exits_while_the_daemon_is_away_release_their_volumes(daemon):
    """Containers that end while no daemon runs: at the next start their exits
    are handled as live ones, the tmpfs volume stays mounted while a running
    container still uses it, and a --rm container takes its anonymous volume."""
    d = daemon
    load_busybox(d)
    dk = Docker(d)
    try:
        dk("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "dytm-tv2")
        tv = dk.mountpoint("dytm-tv2")
        a = dk.detached("-v", "dytm-tv2:/v", IMAGE, "sh", "-c", WAIT_FOR_FLAG.format("stop-a"))
        b = dk.detached("--rm", "-v", "dytm-tv2:/v", "-v", "/anon", IMAGE,
                        "sh", "-c", WAIT_FOR_FLAG.format("stop-b"))
        anon = dk.mounts(b)["/anon"]["Name"]
        pid_b = dk.inspect(b)["State"]["Pid"]
        assert len(mounted_at(tv)) == 1

        d.stop()
        open(os.path.join(tv, "stop-b"), "w").close()  # b ends while no daemon runs
        wait_for(lambda: not alive(pid_b), timeout=10, what="b to end")
        d.start()

        wait_for(lambda: not dk.exists(b), timeout=10, what="the --rm container to go")
        assert anon not in dk.volumes()
        assert len(mounted_at(tv)) == 1, "a's volume was unmounted when b's exit was handled"
        assert dk.inspect(a)["State"]["Running"]
        assert dk("exec", a, "ls", "/v") == "stop-b"
        open(os.path.join(tv, "stop-a"), "w").close()
        wait_for(lambda: not dk.inspect(a)["State"]["Running"], timeout=10, what="a to end")
        wait_for(lambda: mounted_at(tv) == [], timeout=5,
                 what="the tmpfs volume to be unmounted after its last user")
    finally:
        if d.proc is not None and d.proc.poll() is None:
            clean_daemon(d)
