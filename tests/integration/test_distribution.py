"""Pull, push and login against Debian's docker-registry, driven by the docker
CLI, our CLI and docker-py.

Each registry is a `docker-registry serve` subprocess on 127.0.0.1 and a
free port, with a temporary config and storage root (one of them behind
htpasswd auth); it is stopped by its PID and its directory removed even when
a test fails. Images are put in the registries by skopeo from the fixture
archives. Only 127.0.0.1 is ever contacted: every name used here carries
the registry's address, so nothing can fall back to Docker Hub.

127.0.0.1 is an insecure registry by default (as in dockerd), so the daemon
needs no flag: it tries HTTPS, then speaks plain HTTP.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile

import bcrypt
import pytest

from harness import running_daemon, wait_for
from paths import FIXTURES

BUSYBOX_ARCHIVE = FIXTURES / "busybox.docker-save.tar"
LAYERS_OCI_ARCHIVE = FIXTURES / "layers.oci-archive.tar"
LAYERS_INSPECT = json.loads((FIXTURES / "layers.image-inspect.json").read_text())[0]
SKOPEO = "/usr/bin/skopeo"
REGISTRY = "/usr/bin/docker-registry"
USER, PASSWORD = "tester", "s3cret-pw"
MANIFEST_TYPES = ("application/vnd.docker.distribution.manifest.v2+json, "
                  "application/vnd.docker.distribution.manifest.list.v2+json, "
                  "application/vnd.oci.image.manifest.v1+json, "
                  "application/vnd.oci.image.index.v1+json")

pytestmark = pytest.mark.skipif(not (os.path.exists(REGISTRY) and os.path.exists(SKOPEO)),
                                reason="needs docker-registry and skopeo (apt-get install "
                                       "docker-registry skopeo)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    """One docker-registry process on 127.0.0.1, optionally behind htpasswd."""

    def __init__(self, base: str, auth: bool = False):
        self.base = base
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.auth = auth
        self.proc: subprocess.Popen | None = None
        self.authfile = os.path.join(base, "skopeo-auth.json")
        with open(self.authfile, "w") as f:
            f.write("{}")  # skopeo must not read the host's credentials

    def start(self) -> "Registry":
        config = [
            "version: 0.1",
            "log:", "  level: warn",
            "storage:", "  filesystem:", f"    rootdirectory: {self.base}/storage",
            "  delete:", "    enabled: true",
            "http:", f"  addr: {self.addr}",
        ]
        if self.auth:
            htpasswd = os.path.join(self.base, "htpasswd")
            with open(htpasswd, "w") as f:
                hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4, prefix=b"2a"))
                f.write(f"{USER}:{hashed.decode()}\n")
            config += ["auth:", "  htpasswd:", "    realm: dockyard-test", f"    path: {htpasswd}"]
        path = os.path.join(self.base, "config.yml")
        with open(path, "w") as f:
            f.write("\n".join(config) + "\n")
        with open(os.path.join(self.base, "registry.log"), "ab") as log:
            self.proc = subprocess.Popen([REGISTRY, "serve", path], stdout=log,
                                         stderr=subprocess.STDOUT)
        wait_for(self._answers, what=f"docker-registry on {self.addr}")
        return self

    def _answers(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {self.log()}")
        try:
            return self.get("/v2/")[0] in (200, 401)
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        with contextlib.suppress(OSError), open(os.path.join(self.base, "registry.log")) as f:
            return f.read()[-3000:]
        return ""

    def get(self, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            hdrs = dict(headers or {})
            if self.auth:
                import base64
                hdrs["Authorization"] = "Basic " + base64.b64encode(
                    f"{USER}:{PASSWORD}".encode()).decode()
            conn.request("GET", path, headers=hdrs)
            r = conn.getresponse()
            return r.status, dict(r.headers), r.read()
        finally:
            conn.close()

    def manifest_digest(self, repo: str, tag: str) -> str:
        status, headers, body = self.get(f"/v2/{repo}/manifests/{tag}", {"Accept": MANIFEST_TYPES})
        assert status == 200, body
        return "sha256:" + hashlib.sha256(body).hexdigest()

    def skopeo(self, *args: str) -> subprocess.CompletedProcess:
        creds = ["--creds", f"{USER}:{PASSWORD}"] if self.auth else []
        argv = [SKOPEO, args[0], "--authfile", self.authfile]
        if args[0] == "copy":
            creds = [f"--dest-{c[2:]}" if c.startswith("--") else c for c in creds]
            argv += ["--dest-tls-verify=false", *creds]
        else:
            argv += ["--tls-verify=false", *creds]
        return subprocess.run([*argv, *args[1:]], capture_output=True, text=True, timeout=120,
                              check=True)

    def seed(self, source: str, repo_tag: str) -> None:
        self.skopeo("copy", source, f"docker://{self.addr}/{repo_tag}")


@contextlib.contextmanager
def registry(auth: bool = False):
    base = tempfile.mkdtemp(prefix="dyreg-", dir="/tmp")
    reg = Registry(base, auth)
    try:
        yield reg.start()
    finally:
        reg.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def reg():
    with registry() as r:
        r.seed(f"docker-archive:{BUSYBOX_ARCHIVE}", "test/busybox:1")
        r.seed(f"docker-archive:{BUSYBOX_ARCHIVE}", "test/busybox:2")
        r.seed(f"oci-archive:{LAYERS_OCI_ARCHIVE}", "test/layers:oci")
        yield r


@pytest.fixture(scope="module")
def auth_reg():
    with registry(auth=True) as r:
        r.seed(f"docker-archive:{BUSYBOX_ARCHIVE}", "test/busybox:1")
        yield r


@pytest.fixture(scope="module")
def dy():
    """One daemon for the module, without images of its own."""
    with running_daemon() as d:
        yield d


@pytest.fixture
def d(dy):
    """The module's daemon, left as found: no images, no stored credentials."""
    yield dy
    client = dy.client()
    try:
        for c in client.containers.list(all=True):
            c.remove(force=True)
        for image in client.images.list(all=True):
            client.images.remove(image.id, force=True)
    finally:
        client.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(dy.docker_config, "config.json"))
    assert dy.docker("images", "-q").stdout == ""


def busybox_id() -> str:
    """The ID docker gave the fixture's image: the digest of its config."""
    import tarfile
    with tarfile.open(BUSYBOX_ARCHIVE) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        config = tar.extractfile(manifest[0]["Config"]).read()
    return "sha256:" + hashlib.sha256(config).hexdigest()


def layers_oci_id() -> str:
    """The ID of the OCI fixture: skopeo rewrote the config as OCI's, so
    it is not docker's ID; its diff_ids are the same."""
    import tarfile
    with tarfile.open(LAYERS_OCI_ARCHIVE) as tar:
        index = json.load(tar.extractfile("index.json"))
        digest = index["manifests"][0]["digest"]
        manifest = json.load(tar.extractfile(f"blobs/sha256/{digest[7:]}"))
    return manifest["config"]["digest"]


def layer_lines(out: str, status: str) -> list[str]:
    return [line.split(":")[0] for line in out.splitlines() if line.endswith(f": {status}")]


# --- pull ----------------------------------------------------------------------------


def test_docker_cli_pulls_runs_and_records_the_digest(d, reg):
    name = f"{reg.addr}/test/busybox:1"
    digest = reg.manifest_digest("test/busybox", "1")
    r = d.docker("pull", name, check=True)
    lines = r.stdout.splitlines()
    assert lines[0] == "1: Pulling from test/busybox"
    assert lines[1].endswith(": Pulling fs layer")
    layer = lines[1].split(":")[0]
    assert f"{layer}: Download complete" in lines
    assert f"{layer}: Pull complete" in lines
    assert lines[-3:] == [f"Digest: {digest}", f"Status: Downloaded newer image for {name}",
                          name]
    inspect = json.loads(d.docker("image", "inspect", name, check=True).stdout)[0]
    assert inspect["Id"] == busybox_id()
    assert inspect["RepoTags"] == [name]
    assert inspect["RepoDigests"] == [f"{reg.addr}/test/busybox@{digest}"]
    run = d.docker("run", "--rm", name, "echo", "pulled and running", check=True)
    assert run.stdout == "pulled and running\n"

    again = d.docker("pull", name, check=True)
    assert again.stdout == (f"1: Pulling from test/busybox\nDigest: {digest}\n"
                            f"Status: Image is up to date for {name}\n{name}\n")


def test_our_cli_prints_what_the_docker_cli_prints(d, reg):
    name = f"{reg.addr}/test/busybox:1"
    ours = d.run_cli("pull", name)
    assert ours.returncode == 0, ours.stderr
    d.docker("rmi", busybox_id(), check=True)
    theirs = d.docker("pull", name, check=True)
    assert ours.stdout == theirs.stdout
    assert d.run_cli("pull", "-q", name).stdout == f"{name}\n"
    untagged = d.run_cli("pull", f"{reg.addr}/test/busybox")
    assert untagged.returncode == 1
    assert untagged.stdout.startswith("Using default tag: latest\n")
    assert untagged.stderr == (f"Error response from daemon: manifest for {reg.addr}/test/"
                               "busybox:latest not found: manifest unknown: manifest unknown\n")


def test_rmi_of_the_last_tag_drops_the_digest_references(d, reg):
    """dockerd's ImageDelete: a pulled image has `name:tag` and `name@digest`;
    removing the tag leaves no tag of that repository, so the digest goes
    too, and with it the image."""
    name = f"{reg.addr}/test/busybox:1"
    d.docker("pull", name, check=True)
    digest = reg.manifest_digest("test/busybox", "1")
    r = d.docker("rmi", name, check=True)
    assert r.stdout.splitlines()[:2] == [f"Untagged: {name}",
                                         f"Untagged: {reg.addr}/test/busybox@{digest}"]
    assert d.docker("images", "-q").stdout == ""


def test_docker_py_pull_progress_stream_and_image(d, reg):
    client = d.client()
    try:
        stream = list(client.api.pull(f"{reg.addr}/test/busybox", tag="2", stream=True,
                                      decode=True))
        statuses = [m.get("status", "") for m in stream]
        assert statuses[0] == "Pulling from test/busybox" and stream[0]["id"] == "2"
        downloading = [m for m in stream if m.get("status") == "Downloading"]
        assert downloading, stream
        last = downloading[-1]
        assert last["progressDetail"]["current"] == last["progressDetail"]["total"] > 0
        assert last["progress"].startswith("[" + "=" * 50 + ">]")
        assert statuses[-1] == f"Status: Downloaded newer image for {reg.addr}/test/busybox:2"
        image = client.images.get(f"{reg.addr}/test/busybox:2")
        assert image.id == busybox_id()
        pulled = client.images.pull(f"{reg.addr}/test/layers", tag="oci")
        assert pulled.id == layers_oci_id()
        assert pulled.attrs["RootFS"]["Layers"] == LAYERS_INSPECT["RootFS"]["Layers"]
    finally:
        client.close()


def test_layers_below_are_already_there_and_whiteouts_apply(d, reg):
    d.docker("pull", f"{reg.addr}/test/busybox:1", check=True)
    r = d.docker("pull", f"{reg.addr}/test/layers:oci", check=True)
    already = layer_lines(r.stdout, "Already exists")
    complete = layer_lines(r.stdout, "Pull complete")
    assert len(already) == 1 and len(complete) == 3, r.stdout
    assert not set(already) & set(complete)
    # its entrypoint is ["/bin/sh", "-c"]
    out = d.docker("run", "--rm", f"{reg.addr}/test/layers:oci",
                   "ls /etc/app; ls /opaque; test -e /bin/wget || echo no-wget", check=True)
    assert out.stdout.split() == ["keep", "y", "no-wget"]


def test_pull_by_digest_and_all_tags(d, reg):
    digest = reg.manifest_digest("test/busybox", "1")
    by_digest = f"{reg.addr}/test/busybox@{digest}"
    r = d.docker("pull", by_digest, check=True)
    assert r.stdout.splitlines()[0] == f"{by_digest}: Pulling from test/busybox"
    assert r.stdout.splitlines()[-2:] == [f"Status: Downloaded newer image for {by_digest}",
                                          by_digest]
    listed = d.docker("images", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}",
                      check=True).stdout
    assert listed == f"{reg.addr}/test/busybox <none> {digest}\n"
    again = d.docker("pull", by_digest, check=True)
    assert f"Status: Image is up to date for {by_digest}" in again.stdout

    every = d.docker("pull", "--all-tags", f"{reg.addr}/test/busybox", check=True)
    assert "1: Pulling from test/busybox" in every.stdout
    assert "2: Pulling from test/busybox" in every.stdout
    assert every.stdout.splitlines()[-2] == \
        f"Status: Downloaded newer image for {reg.addr}/test/busybox"
    tags = d.docker("images", "--format", "{{.Tag}}", f"{reg.addr}/test/busybox").stdout
    assert sorted(tags.split()) == ["1", "2"]


def test_unknown_tag_and_repository(d, reg):
    r = d.docker("pull", f"{reg.addr}/test/busybox:nope")
    assert (r.returncode, r.stderr) == (1, (
        f"Error response from daemon: manifest for {reg.addr}/test/busybox:nope not found: "
        "manifest unknown: manifest unknown\n"))
    from dockyard.client.api import APIError
    with pytest.raises(APIError) as e:
        d.api().post("/images/create", query={"fromImage": f"{reg.addr}/no/such", "tag": "1"})
    assert e.value.status == 404
    assert e.value.message.startswith(f"manifest for {reg.addr}/no/such:1 not found: ")
    with pytest.raises(APIError) as e:
        d.api().post("/images/create", query={"fromImage": "127.0.0.1:5000/UPPER", "tag": "1"})
    assert e.value.status == 400


def test_a_blob_the_registry_does_not_have(d, reg):
    """The registry answers 404 for a layer, then for a config: dockerd 20.10
    printed exactly this (checked by hand), quickly, as neither is retried."""
    for repo in ("test/no-layer", "test/no-config"):
        reg.seed(f"docker-archive:{BUSYBOX_ARCHIVE}", f"{repo}:1")
    status, _, raw = reg.get("/v2/test/no-layer/manifests/1", {"Accept": MANIFEST_TYPES})
    manifest = json.loads(raw)
    layer_id = manifest["layers"][0]["digest"][7:19]
    links = os.path.join(reg.base, "storage/docker/registry/v2/repositories/test/{}/_layers/sha256")
    shutil.rmtree(os.path.join(links.format("no-layer"), manifest["layers"][0]["digest"][7:]))
    shutil.rmtree(os.path.join(links.format("no-config"), manifest["config"]["digest"][7:]))
    for cli in (d.docker, d.run_cli):
        r = cli("pull", f"{reg.addr}/test/no-layer:1")
        assert (r.returncode, r.stderr) == (1, "unknown blob\n")
        assert r.stdout == (f"1: Pulling from test/no-layer\n{layer_id}: Pulling fs layer\n"
                            f"{layer_id}: Downloading\n")
        r = cli("pull", f"{reg.addr}/test/no-config:1")
        assert (r.returncode, r.stderr) == (1, "error pulling image configuration: download "
                                               "failed after attempts=1: unknown blob\n")
        assert r.stdout == f"1: Pulling from test/no-config\n{layer_id}: Pulling fs layer\n"
    assert d.docker("images", "-q").stdout == ""


def test_unreachable_registry(d):
    port = free_port()  # nothing listens there
    r = d.docker("pull", f"127.0.0.1:{port}/test/busybox:1")
    assert r.returncode == 1
    assert r.stderr == (f'Error response from daemon: Get "http://127.0.0.1:{port}/v2/": '
                        f"dial tcp 127.0.0.1:{port}: connect: connection refused\n")


def test_multi_platform_index(d, reg):
    """An OCI index with busybox for this host and the layers image for
    s390x: the host's entry by default, another with --platform."""
    from dockyard.distribution.platforms import host
    reg.seed(f"docker-archive:{BUSYBOX_ARCHIVE}", "test/multi:busybox")
    reg.seed(f"oci-archive:{LAYERS_OCI_ARCHIVE}", "test/multi:layers")
    entries = []
    for tag, platform in (("busybox", host()), ("layers", None)):
        status, headers, body = reg.get(f"/v2/test/multi/manifests/{tag}",
                                        {"Accept": MANIFEST_TYPES})
        p = {"architecture": platform.architecture, "os": "linux"} if platform else \
            {"architecture": "s390x", "os": "linux"}
        if platform and platform.variant:
            p["variant"] = platform.variant
        entries.append({"mediaType": headers["Content-Type"], "size": len(body),
                        "digest": "sha256:" + hashlib.sha256(body).hexdigest(), "platform": p})
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": entries}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", reg.port, timeout=10)
    conn.request("PUT", "/v2/test/multi/manifests/index", body=index,
                 headers={"Content-Type": "application/vnd.oci.image.index.v1+json"})
    assert conn.getresponse().status == 201
    conn.close()
    index_digest = "sha256:" + hashlib.sha256(index).hexdigest()

    name = f"{reg.addr}/test/multi:index"
    r = d.docker("pull", name, check=True)
    assert f"Digest: {index_digest}" in r.stdout
    assert json.loads(d.docker("image", "inspect", name).stdout)[0]["Id"] == busybox_id()
    d.docker("rmi", name, check=True)
    d.docker("pull", "--platform", "linux/s390x", name, check=True)
    assert json.loads(d.docker("image", "inspect", name).stdout)[0]["Id"] == layers_oci_id()
    r = d.docker("pull", "--platform", "linux/mips64le", name)
    # after "Pulling from": an error of the stream, printed bare
    assert r.stdout == "index: Pulling from test/multi\n"
    assert (r.returncode, r.stderr) == (
        1, "no matching manifest for linux/mips64le in the manifest list entries\n")


# --- push ---------------------------------------------------------------------------------


def test_push_a_new_tag_then_again(d, reg):
    d.docker("pull", f"{reg.addr}/test/busybox:1", check=True)
    name = f"{reg.addr}/test/pushed:v1"
    d.docker("tag", f"{reg.addr}/test/busybox:1", name, check=True)
    r = d.docker("push", name, check=True)
    lines = r.stdout.splitlines()
    assert lines[0] == f"The push refers to repository [{reg.addr}/test/pushed]"
    layer_id = busybox_layer_id()
    assert lines[1] == f"{layer_id}: Preparing"
    assert lines[2] == f"{layer_id}: Mounted from test/busybox"
    tag, _, digest, _, size = lines[3].split()
    assert (tag, lines[3].split()[1]) == ("v1:", "digest:")
    remote = json.loads(reg.skopeo("inspect", f"docker://{name}").stdout)
    assert remote["Digest"] == digest
    assert remote["Tag"] if "Tag" in remote else True
    assert reg.manifest_digest("test/pushed", "v1") == digest
    inspect = json.loads(d.docker("image", "inspect", name).stdout)[0]
    assert f"{reg.addr}/test/pushed@{digest}" in inspect["RepoDigests"]

    again = d.docker("push", name, check=True)
    assert f"{layer_id}: Layer already exists" in again.stdout
    assert f"v1: digest: {digest} size: {size}" in again.stdout


def busybox_layer_id() -> str:
    import tarfile
    with tarfile.open(BUSYBOX_ARCHIVE) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        config = json.load(tar.extractfile(manifest[0]["Config"]))
    return config["rootfs"]["diff_ids"][0][7:19]


def test_push_a_committed_image_and_pull_it_back(d, reg):
    base = f"{reg.addr}/test/busybox:1"
    d.docker("pull", base, check=True)
    d.docker("run", "--name", "committer", base, "sh", "-c", "echo made-here > /hello",
             check=True)
    name = f"{reg.addr}/test/committed:1"
    d.docker("commit", "committer", name, check=True)
    d.docker("rm", "committer", check=True)
    client = d.client()
    try:
        messages = list(client.api.push(name, stream=True, decode=True))
    finally:
        client.close()
    assert not [m for m in messages if "error" in m], messages
    statuses = [m.get("status") for m in messages]
    assert "Pushed" in statuses and "Mounted from test/busybox" in statuses
    aux = [m["aux"] for m in messages if "aux" in m]
    assert len(aux) == 1 and aux[0]["Tag"] == "1"
    digest = aux[0]["Digest"]

    remote = json.loads(reg.skopeo("inspect", f"docker://{name}").stdout)
    assert remote["Digest"] == digest
    assert len(remote["Layers"]) == 2
    status, _, raw = reg.get(f"/v2/test/committed/manifests/{digest}",
                             {"Accept": MANIFEST_TYPES})
    manifest = json.loads(raw)
    assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert {l["mediaType"] for l in manifest["layers"]} == {
        "application/vnd.docker.image.rootfs.diff.tar.gzip"}

    d.docker("rmi", name, check=True)
    pulled = d.run_cli("pull", name)
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout.splitlines()[-3] == f"Digest: {digest}"
    out = d.docker("run", "--rm", name, "cat", "/hello", check=True)
    assert out.stdout == "made-here\n"


def test_push_errors(d, reg):
    r = d.docker("push", f"{reg.addr}/test/notlocal:1")
    assert r.returncode == 1
    assert r.stdout == f"The push refers to repository [{reg.addr}/test/notlocal]\n"
    assert r.stderr == f"An image does not exist locally with the tag: {reg.addr}/test/notlocal\n"
    d.docker("pull", f"{reg.addr}/test/busybox:1", check=True)
    ours = d.run_cli("push", f"{reg.addr}/test/busybox:9")
    assert (ours.returncode, ours.stderr) == (1, f"tag does not exist: {reg.addr}/test/busybox:9\n")


# --- auth ----------------------------------------------------------------------------------


def test_pull_from_auth_registry_without_credentials(d, auth_reg):
    name = f"{auth_reg.addr}/test/busybox:1"
    r = d.docker("pull", name)
    assert (r.returncode, r.stderr) == (1, (
        f'Error response from daemon: Head "http://{auth_reg.addr}/v2/test/busybox/manifests/1": '
        "no basic auth credentials\n"))
    ours = d.run_cli("pull", name)
    assert (ours.returncode, ours.stderr) == (r.returncode, r.stderr)


def test_login_failure_then_success_pull_and_push(d, auth_reg):
    bad = d.run_cli("login", "-u", USER, "--password-stdin", auth_reg.addr, input="wrong\n")
    assert (bad.returncode, bad.stderr) == (1, (
        f"Error response from daemon: login attempt to http://{auth_reg.addr}/v2/ failed with "
        "status: 401 Unauthorized\n"))
    theirs = d.docker("login", "-u", USER, "--password-stdin", auth_reg.addr, input="wrong\n")
    assert (theirs.returncode, theirs.stderr) == (bad.returncode, bad.stderr)
    assert not os.path.exists(os.path.join(d.docker_config, "config.json"))

    good = d.run_cli("login", "-u", USER, "--password-stdin", auth_reg.addr,
                     input=PASSWORD + "\n")
    assert (good.returncode, good.stdout) == (0, "Login Succeeded\n"), good.stderr
    with open(os.path.join(d.docker_config, "config.json")) as f:
        assert json.load(f)["auths"][auth_reg.addr] == {
            "auth": base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}

    # the docker CLI sends what our login stored
    name = f"{auth_reg.addr}/test/busybox:1"
    pulled = d.docker("pull", name, check=True)
    assert f"Status: Downloaded newer image for {name}" in pulled.stdout
    d.docker("tag", name, f"{auth_reg.addr}/test/mine:1", check=True)
    pushed = d.run_cli("push", f"{auth_reg.addr}/test/mine:1")
    assert pushed.returncode == 0, pushed.stderr
    assert "Mounted from test/busybox" in pushed.stdout

    out = d.run_cli("logout", auth_reg.addr)
    assert out.stdout == f"Removing login credentials for {auth_reg.addr}\n"
    denied = d.run_cli("push", f"{auth_reg.addr}/test/mine:1")
    assert denied.returncode == 1
    assert denied.stderr == "no basic auth credentials\n"


def test_login_words_as_docker(d, auth_reg):
    """A first login warns that the password is in the file; a login with
    the stored credentials says so and how to change account; the same
    credentials again write nothing and warn of nothing; stored credentials
    the registry refuses are said to be, and new ones asked for, which needs
    a terminal. Byte for byte what docker 28 says, against the same daemon."""
    config = os.path.join(d.docker_config, "config.json")
    runs = {}
    for name, cli in (("docker", d.docker), ("dockyard", d.run_cli)):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(config)
        steps = [cli("login", "-u", USER, "--password-stdin", auth_reg.addr, input=PASSWORD),
                 cli("login", auth_reg.addr, input=""),
                 cli("login", "-u", USER, "-p", PASSWORD, auth_reg.addr, input="")]
        with open(config) as f:
            doc = json.load(f)
        doc["auths"][auth_reg.addr]["auth"] = base64.b64encode(f"{USER}:stale".encode()).decode()
        with open(config, "w") as f:
            json.dump(doc, f)
        steps.append(cli("login", auth_reg.addr, input=""))
        runs[name] = [(r.returncode, r.stdout, r.stderr) for r in steps]
    assert runs["dockyard"] == runs["docker"]
    first, stored, again, refused = runs["dockyard"]
    assert first == (0, "Login Succeeded\n", f"\nWARNING! Your credentials are stored unencrypted "
                     f"in '{config}'.\nConfigure a credential helper to remove this warning. "
                     "See\nhttps://docs.docker.com/go/credential-store/\n\n")
    note = (f"Authenticating with existing credentials... [Username: {USER}]\n\n Info -> To "
            "login with a different account, run 'docker logout' followed by 'docker login'\n\n\n")
    assert stored == (0, "Login Succeeded\n", note)
    assert again == (0, "Login Succeeded\n", "WARNING! Using --password via the CLI is insecure. "
                     "Use --password-stdin.\n")
    # the daemon's answer is a 500 (as moby's /auth), which docker words so
    assert refused == (1, "", note + "Login did not succeed, error: Error response from daemon: "
                       f"login attempt to http://{auth_reg.addr}/v2/ failed with status: 401 "
                       "Unauthorized\nError: Cannot perform an interactive login from a non TTY "
                       "device\n")


def test_docker_py_login(d, auth_reg):
    client = d.client()
    try:
        answer = client.login(USER, PASSWORD, registry=f"http://{auth_reg.addr}", reauth=True)
        assert answer == {"IdentityToken": "", "Status": "Login Succeeded"}
        import docker
        with pytest.raises(docker.errors.APIError) as e:
            client.login(USER, "wrong", registry=f"http://{auth_reg.addr}", reauth=True)
        assert "failed with status: 401 Unauthorized" in str(e.value)
        image = client.images.pull(f"{auth_reg.addr}/test/busybox", tag="1",
                                   auth_config={"username": USER, "password": PASSWORD})
        assert image.id == busybox_id()
    finally:
        client.close()


def test_pull_and_push_events(d, reg):
    import time
    since = int(time.time()) - 1
    d.docker("pull", f"{reg.addr}/test/busybox:1", check=True)
    d.docker("tag", f"{reg.addr}/test/busybox:1", f"{reg.addr}/test/evented:1", check=True)
    d.docker("push", f"{reg.addr}/test/evented:1", check=True)
    out = d.docker("events", "--since", str(since), "--until", str(int(time.time()) + 1),
                   "--filter", "type=image", "--format", "{{.Action}} {{.Actor.ID}}", check=True)
    lines = out.stdout.splitlines()
    assert f"pull {reg.addr}/test/busybox:1" in lines
    assert f"push {reg.addr}/test/evented:1" in lines


# --- mirrors ---------------------------------------------------------------------------


@contextlib.contextmanager
def daemon_with_flags(*flags: str):
    """running_daemon, with flags of our own."""
    from harness import Daemon, mounts_under
    base = tempfile.mkdtemp(prefix="dyt-", dir="/tmp")
    d = Daemon(base)
    try:
        d.start(*flags)
        yield d
    finally:
        d.stop()
        d.remove_network_setup()
        leaked = mounts_under(base)
        for m in reversed(leaked):
            subprocess.run(["umount", "-l", m], check=False)
        shutil.rmtree(base, ignore_errors=True)
        assert not leaked, f"daemon left mounts behind: {leaked}"


def test_registry_mirror_serves_docker_hub_names(reg, monkeypatch):
    """`--registry-mirror` answers for docker.io names; when it cannot, the pull
    falls through to Docker Hub, which the daemon's environment has moved to a
    dead port on 127.0.0.1 (checked first, in the daemon's own code path)."""
    from dockyard.daemon.config import Config
    from dockyard.daemon.distribution import DistributionService
    dead = free_port()
    monkeypatch.setenv("DOCKYARD_HUB_ENDPOINT", f"http://127.0.0.1:{dead}")
    mirror = f"http://{reg.addr}"
    planned = DistributionService.from_config(None, Config(registry_mirrors=[mirror]))
    assert [e.url for e in planned.registries.pull_endpoints("docker.io")] == [
        mirror, f"http://127.0.0.1:{dead}"]
    with daemon_with_flags("--registry-mirror", mirror) as d:
        digest = reg.manifest_digest("test/busybox", "1")
        r = d.docker("pull", "test/busybox:1", check=True)
        assert r.stdout.splitlines()[0] == "1: Pulling from test/busybox"
        assert r.stdout.splitlines()[-2:] == ["Status: Downloaded newer image for test/busybox:1",
                                              "docker.io/test/busybox:1"]
        inspect = json.loads(d.docker("image", "inspect", "test/busybox:1").stdout)[0]
        assert inspect["RepoDigests"] == [f"test/busybox@{digest}"]
        # the mirror has no such tag: on to "Docker Hub", which is not there
        r = d.docker("pull", "test/busybox:nope")
        assert (r.returncode, r.stderr) == (1, (
            f'Error response from daemon: Get "http://127.0.0.1:{dead}/v2/": '
            f"dial tcp 127.0.0.1:{dead}: connect: connection refused\n"))


def test_transfer_limits_from_the_daemons_flags(reg):
    """--max-concurrent-downloads/-uploads 1: one layer moves at a time, and
    every other one says "Waiting" first, as dockerd's transfer manager."""
    with daemon_with_flags("--max-concurrent-downloads", "1",
                           "--max-concurrent-uploads", "1") as d:
        pulled = d.docker("pull", f"{reg.addr}/test/layers:oci", check=True)
        complete = layer_lines(pulled.stdout, "Pull complete")
        assert len(complete) == 4, pulled.stdout
        assert sorted(layer_lines(pulled.stdout, "Waiting")) == sorted(complete[1:])
        name = f"{reg.addr}/test/limited:1"
        d.docker("tag", f"{reg.addr}/test/layers:oci", name, check=True)
        pushed = d.docker("push", name, check=True)
        assert len(layer_lines(pushed.stdout, "Preparing")) == 4, pushed.stdout
        assert len(layer_lines(pushed.stdout, "Waiting")) == 3, pushed.stdout


def test_search_answers_501(d):
    r = d.docker("search", "busybox")
    assert r.returncode == 1
    assert r.stderr.strip() == (
        "Error response from daemon: search is not supported by this engine: registries are "
        "reached through the distribution API, which has no search (a registry lists its "
        "repositories at GET /v2/_catalog)")
    from dockyard.client.api import APIError
    with pytest.raises(APIError) as e:
        d.api().request("GET", "/images/search", query={"term": "x"})
    assert e.value.status == 501


def test_push_of_uncompressed_pulled_layers_mounts_them(d, reg, tmp_path):
    """Layers that arrived uncompressed go back as they are: the registry
    has them, so they are mounted, not gzipped and uploaded again."""
    import io
    import tarfile

    blobs = tmp_path / "layout" / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("plain.txt")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"plain\n"))
    layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar", **put(buf.getvalue())}
    config = put(json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                             "rootfs": {"type": "layers",
                                        "diff_ids": [layer["digest"]]}}).encode())
    manifest = put(json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
        "layers": [layer]}).encode())
    (tmp_path / "layout" / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (tmp_path / "layout" / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest,
         "annotations": {"org.opencontainers.image.ref.name": "1"}}]}))
    reg.skopeo("copy", "--preserve-digests", f"oci:{tmp_path / 'layout'}:1",
               f"docker://{reg.addr}/test/plain:1")

    d.docker("pull", f"{reg.addr}/test/plain:1", check=True)
    name = f"{reg.addr}/test/plain-again:1"
    d.docker("tag", f"{reg.addr}/test/plain:1", name, check=True)
    try:
        pushed = d.docker("push", name, check=True).stdout
        assert f"{layer['digest'][7:19]}: Mounted from test/plain" in pushed
        raw = json.loads(reg.skopeo("inspect", "--raw", f"docker://{name}").stdout)
        assert [(l["digest"], l["mediaType"]) for l in raw["layers"]] == \
            [(layer["digest"], "application/vnd.docker.image.rootfs.diff.tar")]
    finally:
        d.docker("rmi", name, f"{reg.addr}/test/plain:1")
