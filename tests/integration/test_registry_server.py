"""The registry server (python -m dockyard.registry) driven by raw HTTP and by skopeo.

Each registry runs as a subprocess on 127.0.0.1 and a free port, over a fresh
temporary root; it is stopped by its PID and its root removed even when a test
fails. skopeo gets an empty auth file of its own, so no credentials of the
host are used and no other registry is ever contacted.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import bcrypt
import pytest

from harness import DOCKYARD, wait_for
from paths import FIXTURES

OCI_ARCHIVE = FIXTURES / "layers.oci-archive.tar"
DOCKER_ARCHIVE = FIXTURES / "busybox.docker-save.tar"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
SKOPEO = "/usr/bin/skopeo"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    """One `python -m dockyard.registry serve` process and raw HTTP to it."""

    def __init__(self, base: str, *flags: str):
        self.base = base
        self.root = os.path.join(base, "root")
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.flags = flags
        self.auth_file = os.path.join(base, "auth.json")
        with open(self.auth_file, "w") as f:
            f.write("{}")
        self.log_path = os.path.join(base, "registry.log")
        self.proc: subprocess.Popen | None = None
        self.storage = ["--root", self.root]  # or S3's flags
        self.env: dict | None = None          # the server's environment, when not ours

    def start(self) -> "Registry":
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [DOCKYARD, "registry", "serve", "--addr", self.addr, *self.storage,
                 *self.flags], stdout=log, stderr=subprocess.STDOUT, env=self.env)
        wait_for(self._answers, what=f"registry on {self.addr}")
        return self

    def _answers(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"registry exited with {self.proc.returncode}: {self.log()}")
        try:
            self.request("GET", "/v2/")
            return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()[-3000:]

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.headers, response.read()
        finally:
            conn.close()

    def skopeo(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([SKOPEO, *args], capture_output=True, text=True, timeout=120,
                                env={**os.environ, "REGISTRY_AUTH_FILE": self.auth_file})
        if check and result.returncode != 0:
            raise AssertionError(f"skopeo {args} failed: {result.stderr}\n{self.log()}")
        return result

    # --- the protocol, step by step ----------------------------------------

    def push_blob(self, name: str, data: bytes, headers: dict | None = None) -> str:
        digest = sha256(data)
        status, h, body = self.request("POST", f"/v2/{name}/blobs/uploads/?digest={digest}",
                                       data, headers)
        assert status == 201, body
        return digest

    def put_manifest(self, name: str, reference: str, manifest: dict | bytes,
                     media_type: str = OCI_MANIFEST, headers: dict | None = None):
        data = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
        return self.request("PUT", f"/v2/{name}/manifests/{reference}", data,
                            {"Content-Type": media_type, **(headers or {})})

    def image(self, name: str, layers: list[bytes], config: bytes = b"{}", **extra) -> dict:
        """An OCI image manifest whose blobs are pushed to `name`."""
        self.push_blob(name, config)
        for layer in layers:
            self.push_blob(name, layer)
        return {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": sha256(config), "size": len(config)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                            "digest": sha256(x), "size": len(x)} for x in layers], **extra}


@contextlib.contextmanager
def running_registry(*flags: str):
    base = tempfile.mkdtemp(prefix="dyreg-", dir="/tmp")
    registry = Registry(base, *flags)
    try:
        yield registry.start()
    finally:
        registry.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def reg():
    with running_registry() as r:
        yield r


def no_uploads(root: str) -> bool:
    """No upload session is left (the driver prunes the emptied uploads area)."""
    uploads = os.path.join(root, "uploads")
    return not os.path.exists(uploads) or not os.listdir(uploads)


def errors_of(body: bytes) -> list[str]:
    return [e["code"] for e in json.loads(body)["errors"]]


# --- base, blobs, uploads ---------------------------------------------------------


def test_base_endpoint_and_version_header(reg):
    status, headers, body = reg.request("GET", "/v2/")
    assert status == 200 and json.loads(body) == {}
    assert headers["Docker-Distribution-API-Version"] == "registry/2.0"
    status, headers, _ = reg.request("GET", "/v2/nothing/here/at/all")
    assert status == 404
    assert headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_monolithic_upload_then_head_get_range_and_delete(reg):
    data = os.urandom(300_000)
    digest = sha256(data)
    status, headers, _ = reg.request("POST", f"/v2/blobs/mono/blobs/uploads/?digest={digest}",
                                     data)
    assert status == 201
    assert headers["Location"] == f"/v2/blobs/mono/blobs/{digest}"
    assert headers["Docker-Content-Digest"] == digest
    status, headers, body = reg.request("HEAD", f"/v2/blobs/mono/blobs/{digest}")
    assert (status, body) == (200, b"")
    assert int(headers["Content-Length"]) == len(data)
    assert headers["Docker-Content-Digest"] == digest
    status, _, body = reg.request("GET", f"/v2/blobs/mono/blobs/{digest}")
    assert status == 200 and body == data
    status, headers, body = reg.request("GET", f"/v2/blobs/mono/blobs/{digest}",
                                        headers={"Range": "bytes=1000-1999"})
    assert status == 206 and body == data[1000:2000]
    assert headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
    status, _, body = reg.request("GET", f"/v2/blobs/mono/blobs/{digest}",
                                  headers={"Range": "bytes=-10"})
    assert status == 206 and body == data[-10:]
    # another repository has not got it
    status, _, body = reg.request("GET", f"/v2/blobs/other/blobs/{digest}")
    assert status == 404 and errors_of(body) == ["BLOB_UNKNOWN"]
    status, _, _ = reg.request("DELETE", f"/v2/blobs/mono/blobs/{digest}")
    assert status == 202
    status, _, body = reg.request("HEAD", f"/v2/blobs/mono/blobs/{digest}")
    assert status == 404
    status, _, body = reg.request("GET", "/v2/blobs/mono/blobs/sha256:abc")
    assert status == 400 and errors_of(body) == ["DIGEST_INVALID"]


def test_chunked_upload_with_status_and_out_of_order_chunk(reg):
    data = os.urandom(200_000)
    status, headers, _ = reg.request("POST", "/v2/blobs/chunked/blobs/uploads/")
    assert status == 202
    location, uuid = headers["Location"], headers["Docker-Upload-UUID"]
    assert location == f"/v2/blobs/chunked/blobs/uploads/{uuid}"
    assert headers["Range"] == "0-0"
    status, headers, _ = reg.request("PATCH", location, data[:100_000], {
        "Content-Range": "0-99999", "Content-Type": "application/octet-stream"})
    assert status == 202 and headers["Range"] == "0-99999"
    status, headers, _ = reg.request("GET", location)
    assert status == 204 and headers["Range"] == "0-99999"
    assert headers["Docker-Upload-UUID"] == uuid
    # a chunk that does not continue where the upload ends
    status, headers, body = reg.request("PATCH", location, data[150_000:],
                                        {"Content-Range": "150000-199999"})
    assert status == 416 and headers["Range"] == "0-99999"
    assert errors_of(body) == ["BLOB_UPLOAD_INVALID"]
    status, headers, _ = reg.request("PATCH", location, data[100_000:150_000],
                                     {"Content-Range": "100000-149999"})
    assert status == 202 and headers["Range"] == "0-149999"
    # the last chunk comes with the PUT
    digest = sha256(data)
    status, headers, _ = reg.request("PUT", f"{location}?digest={digest}", data[150_000:])
    assert status == 201 and headers["Docker-Content-Digest"] == digest
    assert reg.request("GET", f"/v2/blobs/chunked/blobs/{digest}")[2] == data
    status, _, body = reg.request("GET", location)
    assert status == 404 and errors_of(body) == ["BLOB_UPLOAD_UNKNOWN"]


def test_wrong_digest_stores_nothing(reg):
    data, claimed = b"the real bytes", sha256(b"something else")
    status, headers, _ = reg.request("POST", "/v2/blobs/wrong/blobs/uploads/")
    location = headers["Location"]
    status, _, body = reg.request("PUT", f"{location}?digest={claimed}", data)
    assert status == 400 and errors_of(body) == ["DIGEST_INVALID"]
    for digest in (claimed, sha256(data)):
        assert reg.request("HEAD", f"/v2/blobs/wrong/blobs/{digest}")[0] == 404
    assert reg.request("GET", location)[0] == 404
    assert no_uploads(reg.root)
    status, _, body = reg.request("POST", f"/v2/blobs/wrong/blobs/uploads/?digest={claimed}",
                                  data)
    assert status == 400 and errors_of(body) == ["DIGEST_INVALID"]
    assert reg.request("HEAD", f"/v2/blobs/wrong/blobs/{sha256(data)}")[0] == 404


def test_put_without_digest_and_cancel(reg):
    status, headers, _ = reg.request("POST", "/v2/blobs/cancel/blobs/uploads/")
    location = headers["Location"]
    status, _, body = reg.request("PUT", location, b"x")
    assert status == 400 and errors_of(body) == ["DIGEST_INVALID"]
    assert reg.request("DELETE", location)[0] == 204
    status, _, body = reg.request("DELETE", location)
    assert status == 404 and errors_of(body) == ["BLOB_UPLOAD_UNKNOWN"]
    # a session is only found through its own repository
    status, headers, _ = reg.request("POST", "/v2/blobs/cancel/blobs/uploads/")
    other = headers["Location"].replace("/blobs/cancel/", "/blobs/elsewhere/")
    assert reg.request("GET", other)[0] == 404
    assert reg.request("DELETE", other)[0] == 404
    assert reg.request("DELETE", headers["Location"])[0] == 204


def test_cross_repository_mount(reg):
    digest = reg.push_blob("mount/source", b"a shared layer")
    status, headers, _ = reg.request(
        "POST", f"/v2/mount/target/blobs/uploads/?mount={digest}&from=mount/source")
    assert status == 201 and headers["Location"] == f"/v2/mount/target/blobs/{digest}"
    assert reg.request("GET", f"/v2/mount/target/blobs/{digest}")[2] == b"a shared layer"
    missing = sha256(b"not anywhere")
    status, headers, _ = reg.request(
        "POST", f"/v2/mount/target/blobs/uploads/?mount={missing}&from=mount/source")
    assert status == 202 and "Docker-Upload-UUID" in headers  # a session to upload into
    reg.request("DELETE", headers["Location"])


def test_concurrent_uploads_of_the_same_blob(reg):
    data = os.urandom(2_000_000)
    digest = sha256(data)

    def push(i: int) -> int:
        status, headers, _ = reg.request("POST", "/v2/blobs/race/blobs/uploads/")
        location = headers["Location"]
        half = len(data) // 2
        reg.request("PATCH", location, data[:half], {"Content-Range": f"0-{half - 1}"})
        return reg.request("PUT", f"{location}?digest={digest}", data[half:])[0]

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(push, range(8)))
    assert statuses == [201] * 8
    assert reg.request("GET", f"/v2/blobs/race/blobs/{digest}")[2] == data
    assert no_uploads(reg.root), list(os.walk(os.path.join(reg.root, "uploads")))


# --- manifests, tags, catalog, referrers --------------------------------------------


def test_manifest_put_get_head_delete(reg):
    manifest = reg.image("man/a", [b"layer one", b"layer two"])
    data = json.dumps(manifest).encode()
    digest = sha256(data)
    status, headers, _ = reg.put_manifest("man/a", "v1", data)
    assert status == 201
    assert headers["Docker-Content-Digest"] == digest
    assert headers["Location"] == f"/v2/man/a/manifests/{digest}"
    for reference in ("v1", digest):
        status, headers, body = reg.request("GET", f"/v2/man/a/manifests/{reference}",
                                            headers={"Accept": OCI_MANIFEST})
        assert (status, body) == (200, data)
        assert headers["Content-Type"] == OCI_MANIFEST
        assert headers["Docker-Content-Digest"] == digest
        status, headers, body = reg.request("HEAD", f"/v2/man/a/manifests/{reference}")
        assert (status, body, int(headers["Content-Length"])) == (200, b"", len(data))
    status, _, body = reg.request("GET", "/v2/man/a/manifests/v2")
    assert status == 404 and errors_of(body) == ["MANIFEST_UNKNOWN"]
    assert reg.request("DELETE", "/v2/man/a/manifests/v1")[0] == 202   # untag
    assert reg.request("GET", "/v2/man/a/manifests/v1")[0] == 404
    assert reg.request("GET", f"/v2/man/a/manifests/{digest}")[0] == 200
    assert reg.request("DELETE", f"/v2/man/a/manifests/{digest}")[0] == 202
    assert reg.request("GET", f"/v2/man/a/manifests/{digest}")[0] == 404


def test_manifest_errors(reg):
    manifest = reg.image("man/err", [b"present"])
    manifest["layers"].append({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                               "digest": sha256(b"absent"), "size": 6})
    status, _, body = reg.put_manifest("man/err", "t", manifest)
    assert status == 400 and errors_of(body) == ["MANIFEST_BLOB_UNKNOWN"]
    assert json.loads(body)["errors"][0]["detail"] == {"digest": sha256(b"absent")}
    child = reg.image("man/err", [b"present"], config=b'{"c":1}')
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": sha256(json.dumps(child).encode()),
         "size": len(json.dumps(child))}]}
    status, _, body = reg.put_manifest("man/err", "idx", index, OCI_INDEX)
    assert status == 400 and errors_of(body) == ["MANIFEST_BLOB_UNKNOWN"]
    assert reg.put_manifest("man/err", "child", child)[0] == 201
    assert reg.put_manifest("man/err", "idx", index, OCI_INDEX)[0] == 201
    status, headers, _ = reg.request("GET", "/v2/man/err/manifests/idx")
    assert headers["Content-Type"] == OCI_INDEX
    status, _, body = reg.put_manifest("man/err", "t", b"{not json")
    assert status == 400 and errors_of(body) == ["MANIFEST_INVALID"]
    status, _, body = reg.put_manifest("man/err", sha256(b"other"), child)
    assert status == 400 and errors_of(body) == ["DIGEST_INVALID"]
    status, _, body = reg.put_manifest("man/err", "-bad-tag", child)
    assert status == 400 and errors_of(body) == ["TAG_INVALID"]
    status, _, body = reg.put_manifest("Man/Upper", "t", child)
    assert status == 400 and errors_of(body) == ["NAME_INVALID"]
    status, _, body = reg.request("GET", "/v2/man/never/tags/list")
    assert status == 404 and errors_of(body) == ["NAME_UNKNOWN"]
    status, _, body = reg.request("PUT", "/v2/man/err/manifests/big", b" " * (5 << 20),
                                  {"Content-Type": OCI_MANIFEST})
    assert status == 413


def test_tags_list_and_catalog_paginate_with_link_headers(reg):
    manifest = reg.image("page/x", [])
    for tag in ("c", "a", "b", "d"):
        assert reg.put_manifest("page/x", tag, manifest)[0] == 201
    status, headers, body = reg.request("GET", "/v2/page/x/tags/list")
    assert json.loads(body) == {"name": "page/x", "tags": ["a", "b", "c", "d"]}
    assert "Link" not in headers
    status, headers, body = reg.request("GET", "/v2/page/x/tags/list?n=2")
    assert json.loads(body)["tags"] == ["a", "b"]
    assert headers["Link"] == '</v2/page/x/tags/list?n=2&last=b>; rel="next"'
    status, headers, body = reg.request("GET", "/v2/page/x/tags/list?n=2&last=b")
    assert json.loads(body)["tags"] == ["c", "d"] and "Link" not in headers
    status, _, body = reg.request("GET", "/v2/page/x/tags/list?n=-1")
    assert status == 400 and errors_of(body) == ["PAGINATION_NUMBER_INVALID"]
    reg.image("page/y", [])
    assert reg.put_manifest("page/y", "t", manifest)[0] == 201
    status, _, body = reg.request("GET", "/v2/_catalog")
    names = json.loads(body)["repositories"]
    assert names == sorted(names) and {"page/x", "page/y"} <= set(names)
    first = names.index("page/x")
    status, headers, body = reg.request("GET", f"/v2/_catalog?n=1&last={names[first - 1]}"
                                        if first else "/v2/_catalog?n=1")
    assert json.loads(body)["repositories"] == ["page/x"]
    assert headers["Link"] == '</v2/_catalog?n=1&last=page%2Fx>; rel="next"'


def test_referrers_api(reg):
    subject = reg.image("ref/app", [b"app layer"])
    subject_data = json.dumps(subject).encode()
    assert reg.put_manifest("ref/app", "v1", subject_data)[0] == 201
    subject_descriptor = {"mediaType": OCI_MANIFEST, "digest": sha256(subject_data),
                          "size": len(subject_data)}
    empty = b"{}"
    sbom = reg.image("ref/app", [b"sbom"], config=empty, artifactType="application/spdx+json",
                     subject=subject_descriptor, annotations={"org.example": "yes"})
    sbom_data = json.dumps(sbom).encode()
    status, headers, _ = reg.put_manifest("ref/app", sha256(sbom_data), sbom_data)
    assert status == 201 and headers["OCI-Subject"] == sha256(subject_data)
    sig = reg.image("ref/app", [b"sig"], config=empty, artifactType="application/x-sig",
                    subject=subject_descriptor)
    assert reg.put_manifest("ref/app", sha256(json.dumps(sig).encode()), sig)[0] == 201
    status, headers, body = reg.request("GET", f"/v2/ref/app/referrers/{sha256(subject_data)}")
    assert status == 200 and headers["Content-Type"] == OCI_INDEX
    index = json.loads(body)
    assert index["mediaType"] == OCI_INDEX and index["schemaVersion"] == 2
    by_type = {d["artifactType"]: d for d in index["manifests"]}
    assert set(by_type) == {"application/spdx+json", "application/x-sig"}
    assert by_type["application/spdx+json"] == {
        "mediaType": OCI_MANIFEST, "digest": sha256(sbom_data), "size": len(sbom_data),
        "artifactType": "application/spdx+json", "annotations": {"org.example": "yes"}}
    assert "OCI-Filters-Applied" not in headers
    status, headers, body = reg.request(
        "GET", f"/v2/ref/app/referrers/{sha256(subject_data)}?artifactType=application/x-sig")
    assert headers["OCI-Filters-Applied"] == "artifactType"
    assert [d["artifactType"] for d in json.loads(body)["manifests"]] == ["application/x-sig"]
    status, _, body = reg.request("GET", f"/v2/ref/app/referrers/{sha256(b'none')}")
    assert status == 200 and json.loads(body)["manifests"] == []
    status, _, body = reg.request("GET", "/v2/ref/app/referrers/sha256:nope")
    assert status == 400 and errors_of(body) == ["DIGEST_INVALID"]


# --- skopeo as the peer ---------------------------------------------------------------


def _oci_layout_manifest(layout: str) -> str:
    with open(os.path.join(layout, "index.json")) as f:
        return json.load(f)["manifests"][0]["digest"]


def test_skopeo_round_trip_of_an_oci_archive(reg, tmp_path):
    dest = f"docker://{reg.addr}/test/busybox:1"
    reg.skopeo("copy", "--dest-tls-verify=false", f"oci-archive:{OCI_ARCHIVE}", dest)
    source_layout = tmp_path / "source"
    source_layout.mkdir()
    subprocess.run(["tar", "-xf", str(OCI_ARCHIVE), "-C", str(source_layout)], check=True)
    source_digest = _oci_layout_manifest(str(source_layout))

    inspect = json.loads(reg.skopeo("inspect", "--tls-verify=false", dest).stdout)
    assert inspect["Digest"] == source_digest
    assert inspect["RepoTags"] == ["1"]
    raw = reg.skopeo("inspect", "--raw", "--tls-verify=false", dest).stdout.encode()
    assert sha256(raw) == source_digest

    reg.skopeo("copy", "--src-tls-verify=false", dest, f"oci:{tmp_path / 'out'}:1")
    assert _oci_layout_manifest(str(tmp_path / "out")) == source_digest
    reg.skopeo("copy", "--src-tls-verify=false", dest, f"dir:{tmp_path / 'dir'}")
    manifest = json.loads((tmp_path / "dir" / "manifest.json").read_bytes())
    for d in [manifest["config"]] + manifest["layers"]:
        blob = (tmp_path / "dir" / d["digest"].split(":")[1]).read_bytes()
        original = (source_layout / "blobs" / "sha256" / d["digest"].split(":")[1]).read_bytes()
        assert sha256(blob) == d["digest"] and blob == original

    reg.skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false", dest,
               f"docker://{reg.addr}/test/busybox:2")
    tags = json.loads(reg.skopeo("list-tags", "--tls-verify=false",
                                 f"docker://{reg.addr}/test/busybox").stdout)
    assert tags["Tags"] == ["1", "2"]
    reg.skopeo("delete", "--tls-verify=false", dest)  # by digest: both tags go
    assert reg.request("GET", f"/v2/test/busybox/manifests/{source_digest}")[0] == 404
    assert json.loads(reg.request("GET", "/v2/test/busybox/tags/list")[2])["tags"] == []
    assert reg.skopeo("inspect", "--tls-verify=false", dest, check=False).returncode != 0


def test_skopeo_pushes_docker_schema2_from_a_docker_archive(reg, tmp_path):
    dest = f"docker://{reg.addr}/test/schema2:latest"
    reg.skopeo("copy", "--dest-tls-verify=false", f"docker-archive:{DOCKER_ARCHIVE}", dest)
    status, headers, body = reg.request("GET", "/v2/test/schema2/manifests/latest",
                                        headers={"Accept": DOCKER_MANIFEST})
    assert status == 200 and headers["Content-Type"] == DOCKER_MANIFEST
    manifest = json.loads(body)
    assert manifest["mediaType"] == DOCKER_MANIFEST
    assert headers["Docker-Content-Digest"] == sha256(body)
    for d in [manifest["config"]] + manifest["layers"]:
        status, _, blob = reg.request("GET", f"/v2/test/schema2/blobs/{d['digest']}")
        assert status == 200 and sha256(blob) == d["digest"] and len(blob) == d["size"]
    reg.skopeo("copy", "--src-tls-verify=false", dest, f"dir:{tmp_path / 'dir'}")
    assert sha256((tmp_path / "dir" / "manifest.json").read_bytes()) == sha256(body)


# --- auth, read-only, gc -----------------------------------------------------------------


def _basic(user: str, password: str) -> dict:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
def htpasswd(tmp_path) -> str:
    path = tmp_path / "htpasswd"
    hashed = bcrypt.hashpw(b"right", bcrypt.gensalt(rounds=5)).decode().replace("$2b$", "$2y$")
    sha = "{SHA}" + base64.b64encode(hashlib.sha1(b"other").digest()).decode()
    path.write_text(f"alice:{hashed}\nbob:{sha}\n")
    return str(path)


def test_basic_auth_refuses_and_challenges(htpasswd):
    with running_registry("--htpasswd", htpasswd, "--realm", "test-realm") as reg:
        for headers in ({}, _basic("alice", "wrong"), _basic("mallory", "right")):
            status, h, body = reg.request("GET", "/v2/", headers=headers)
            assert status == 401
            assert h["WWW-Authenticate"] == 'Basic realm="test-realm"'
            assert errors_of(body) == ["UNAUTHORIZED"]
        assert reg.request("GET", "/v2/", headers=_basic("alice", "right"))[0] == 200
        assert reg.request("GET", "/v2/_catalog", headers=_basic("bob", "other"))[0] == 200
        assert reg.request("POST", "/v2/a/blobs/uploads/")[0] == 401
        dest = f"docker://{reg.addr}/auth/busybox:1"
        refused = reg.skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "alice:wrong",
                             f"oci-archive:{OCI_ARCHIVE}", dest, check=False)
        assert refused.returncode != 0
        assert "unauthorized" in (refused.stderr + refused.stdout).lower()
        reg.skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "alice:right",
                   f"oci-archive:{OCI_ARCHIVE}", dest)
        status, _, body = reg.request("GET", "/v2/auth/busybox/tags/list",
                                      headers=_basic("bob", "other"))
        assert json.loads(body)["tags"] == ["1"]


def test_token_flow(htpasswd, tmp_path):
    key = tmp_path / "token.key"
    key.write_bytes(os.urandom(32).hex().encode())
    with running_registry("--htpasswd", htpasswd, "--token-key-file", str(key)) as reg:
        status, headers, body = reg.request("GET", "/v2/token/app/tags/list")
        assert status == 401 and errors_of(body) == ["UNAUTHORIZED"]
        assert headers["WWW-Authenticate"] == (
            f'Bearer realm="http://{reg.addr}/token",service="dockyard-registry",'
            'scope="repository:token/app:pull"')
        assert reg.request("GET", "/token?service=dockyard-registry")[0] == 401
        status, _, body = reg.request(
            "GET", "/token?service=dockyard-registry&scope=repository:token/app:pull",
            headers=_basic("alice", "right"))
        token = json.loads(body)["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        assert reg.request("GET", "/v2/token/app/tags/list", headers=bearer)[0] == 404
        status, headers, _ = reg.request("POST", "/v2/token/app/blobs/uploads/", headers=bearer)
        assert status == 401 and 'error="insufficient_scope"' in headers["WWW-Authenticate"]
        assert reg.request("GET", "/v2/token/other/tags/list", headers=bearer)[0] == 401
        reg.skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "alice:right",
                   f"oci-archive:{OCI_ARCHIVE}", f"docker://{reg.addr}/token/app:1")
        tags = reg.skopeo("list-tags", "--tls-verify=false", "--creds", "bob:other",
                          f"docker://{reg.addr}/token/app").stdout
        assert json.loads(tags)["Tags"] == ["1"]


def test_read_only_mode_refuses_writes(reg, tmp_path):
    manifest = reg.image("ro/app", [b"ro layer"])
    assert reg.put_manifest("ro/app", "v1", manifest)[0] == 201
    shutil.copytree(reg.root, tmp_path / "root")
    ro = Registry(str(tmp_path), "--read-only")
    ro.root = str(tmp_path / "root")
    try:
        ro.start()
        assert reg.request("GET", "/v2/ro/app/manifests/v1")[0] == 200
        assert ro.request("GET", "/v2/ro/app/manifests/v1")[0] == 200
        for method, path in (("POST", "/v2/ro/app/blobs/uploads/"),
                             ("PUT", "/v2/ro/app/manifests/v2"),
                             ("DELETE", "/v2/ro/app/manifests/v1")):
            status, _, body = ro.request(method, path, b"{}")
            assert status == 405 and errors_of(body) == ["UNSUPPORTED"]
        assert ro.request("GET", "/v2/ro/app/tags/list")[0] == 200
    finally:
        ro.stop()


def test_gc_removes_only_unreferenced_blobs(tmp_path):
    with running_registry() as reg:
        kept = reg.image("gc/app", [b"kept layer"], config=b'{"kept":1}')
        assert reg.put_manifest("gc/app", "v1", kept)[0] == 201
        dropped = reg.image("gc/app", [b"dropped layer"], config=b'{"dropped":1}')
        _, headers, _ = reg.put_manifest("gc/app", "old", dropped)
        assert reg.request("DELETE", f"/v2/gc/app/manifests/{headers['Docker-Content-Digest']}"
                           )[0] == 202
        reg.push_blob("gc/app", b"never referenced")
        reg.stop()   # offline collection
        gc = [DOCKYARD, "registry", "gc", "--root", reg.root]
        env = dict(os.environ)
        gone = {sha256(b"dropped layer"), sha256(b'{"dropped":1}'),
                sha256(json.dumps(dropped).encode()), sha256(b"never referenced")}
        dry = subprocess.run([*gc, "--dry-run"], capture_output=True, text=True, env=env,
                             check=True).stdout
        assert {line.split()[2] for line in dry.splitlines()
                if line.startswith("would remove ")} == gone
        real = subprocess.run(gc, capture_output=True, text=True, env=env, check=True).stdout
        assert {line.split()[1] for line in real.splitlines()
                if line.startswith("removed ")} == gone
        reg.start()
        for blob in (b"kept layer", b'{"kept":1}'):
            assert reg.request("GET", f"/v2/gc/app/blobs/{sha256(blob)}")[2] == blob
        assert reg.request("GET", "/v2/gc/app/manifests/v1")[0] == 200
        for digest in gone:
            assert reg.request("HEAD", f"/v2/gc/app/blobs/{digest}")[0] == 404


def test_gc_delete_untagged_and_stale_uploads(tmp_path):
    with running_registry() as reg:
        tagged = reg.image("gc/app", [b"tagged layer"])
        assert reg.put_manifest("gc/app", "v1", tagged)[0] == 201
        signature = reg.image("gc/app", [b"signature"], config=b'{"sig":1}', subject={
            "mediaType": OCI_MANIFEST, "digest": sha256(json.dumps(tagged).encode()),
            "size": len(json.dumps(tagged))})
        _, headers, _ = reg.put_manifest("gc/app", sha256(json.dumps(signature).encode()),
                                         signature)
        kept_signature = headers["Docker-Content-Digest"]
        untagged = reg.image("gc/app", [b"untagged layer"], config=b'{"untagged":1}')
        _, headers, _ = reg.put_manifest("gc/app", sha256(json.dumps(untagged).encode()),
                                         untagged)
        untagged_digest = headers["Docker-Content-Digest"]
        status, headers, _ = reg.request("POST", "/v2/gc/app/blobs/uploads/")
        abandoned = headers["Docker-Upload-UUID"]
        reg.stop()   # offline collection
        gc = [DOCKYARD, "registry", "gc", "--root", reg.root, "-m"]
        gone = {untagged_digest, sha256(b"untagged layer"), sha256(b'{"untagged":1}')}
        dry = subprocess.run([*gc, "--dry-run", "--upload-purge-age", "1ms"],
                             capture_output=True, text=True, check=True).stdout
        assert f"would remove manifest gc/app@{untagged_digest}" in dry
        assert f"would remove upload {abandoned} of gc/app" in dry
        assert {line.split()[2] for line in dry.splitlines()
                if line.startswith("would remove sha256:")} == gone
        assert os.listdir(os.path.join(reg.root, "uploads")) == [abandoned]
        real = subprocess.run(gc, capture_output=True, text=True, check=True).stdout
        assert {line.split()[1] for line in real.splitlines()
                if line.startswith("removed sha256:")} == gone
        assert "stale uploads: 0 removed" in real   # younger than 168h: kept
        real = subprocess.run([*gc, "--upload-purge-age", "1ms"], capture_output=True,
                              text=True, check=True).stdout
        assert f"removed upload {abandoned} of gc/app" in real and no_uploads(reg.root)
        reg.start()
        assert reg.request("GET", "/v2/gc/app/manifests/v1")[0] == 200
        assert reg.request("GET", f"/v2/gc/app/manifests/{kept_signature}")[0] == 200
        status, _, body = reg.request("GET", f"/v2/gc/app/manifests/{untagged_digest}")
        assert status == 404 and errors_of(body) == ["MANIFEST_UNKNOWN"]
        for digest in gone - {untagged_digest}:
            assert reg.request("HEAD", f"/v2/gc/app/blobs/{digest}")[0] == 404


def test_the_server_purges_stale_uploads_but_not_a_running_one():
    with running_registry("--upload-purge-age", "1500ms",
                          "--upload-purge-interval", "200ms") as reg:
        status, headers, _ = reg.request("POST", "/v2/purge/app/blobs/uploads/")
        abandoned = headers["Location"]
        status, headers, _ = reg.request("POST", "/v2/purge/app/blobs/uploads/")
        running = headers["Location"]
        sent = b""
        # the running push sends a chunk every 0.3 s, for longer than the age
        for i in range(12):
            chunk = f"chunk {i};".encode()
            status, _, body = reg.request("PATCH", running, chunk, {
                "Content-Range": f"{len(sent)}-{len(sent) + len(chunk) - 1}"})
            assert status == 202, body
            sent += chunk
            time.sleep(0.3)
        status, _, body = reg.request("GET", abandoned)
        assert status == 404 and errors_of(body) == ["BLOB_UPLOAD_UNKNOWN"]
        status, _, _ = reg.request("PUT", f"{running}?digest={sha256(sent)}")
        assert status == 201
        assert reg.request("GET", f"/v2/purge/app/blobs/{sha256(sent)}")[2] == sent
        assert "purged upload" in reg.log()
        assert no_uploads(reg.root)


# --- a driver without local files: blobs streamed, Range answered by us ------------------


def test_streamed_blobs_from_the_in_memory_driver():
    from dockyard.registry.memory import MemoryDriver
    from dockyard.registry.server import Config, start

    port = free_port()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    base = tempfile.mkdtemp(prefix="dyreg-", dir="/tmp")
    runner = None
    try:
        config = Config(root=base, addr=f"127.0.0.1:{port}")
        runner = asyncio.run_coroutine_threadsafe(start(config, MemoryDriver()), loop).result(10)
        reg = Registry(base)
        reg.port = port
        data = os.urandom(3_000_000)
        digest = reg.push_blob("mem/app", data)
        assert reg.request("GET", f"/v2/mem/app/blobs/{digest}")[2] == data
        status, headers, body = reg.request("GET", f"/v2/mem/app/blobs/{digest}",
                                            headers={"Range": "bytes=2999990-"})
        assert (status, body) == (206, data[-10:])
        assert headers["Content-Range"] == f"bytes 2999990-2999999/{len(data)}"
        status, headers, _ = reg.request("GET", f"/v2/mem/app/blobs/{digest}",
                                         headers={"Range": "bytes=3000000-"})
        assert status == 416 and headers["Content-Range"] == f"bytes */{len(data)}"
        assert os.listdir(base) == ["auth.json"]  # nothing written to disk by the driver
    finally:
        if runner is not None:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        shutil.rmtree(base, ignore_errors=True)
