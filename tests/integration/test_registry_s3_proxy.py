"""The registry server over S3, and as a pull-through cache, driven by skopeo.

S3 is moto's standalone server, in this process on 127.0.0.1 and a free port,
stopped at the end of the module; the registry subprocess reaches it with
test credentials from its environment (and boto3 is told to look nowhere
else). The upstream of a cache is a second registry of ours on 127.0.0.1,
seeded with skopeo. Every process is stopped by its PID and every directory
removed, even when a test fails.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import json
import logging
import os
import shutil
import subprocess
import tempfile

import pytest

from harness import DOCKYARD
from test_registry_server import (DOCKER_ARCHIVE, OCI_ARCHIVE, Registry, errors_of, no_uploads,
                                  running_registry, sha256)

S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
          "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/dev/null",
          "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
PREFIX = "reg/root"


@pytest.fixture(scope="module")
def s3():
    """(endpoint, boto3 client) of a moto server that lives for the module."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per S3 request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        yield endpoint, client
    finally:
        server.stop()


@contextlib.contextmanager
def s3_registry(endpoint: str, bucket: str, *flags: str):
    base = tempfile.mkdtemp(prefix="dyreg-", dir="/tmp")
    registry = Registry(base, *flags)
    registry.storage = s3_flags(endpoint, bucket)
    registry.env = {**os.environ, **S3_ENV}
    try:
        yield registry.start()
    finally:
        registry.stop()
        shutil.rmtree(base, ignore_errors=True)


def s3_flags(endpoint: str, bucket: str) -> list[str]:
    return ["--s3-bucket", bucket, "--s3-endpoint", endpoint, "--s3-region", "us-east-1",
            "--s3-prefix", PREFIX]


def keys(client, bucket: str, under: str) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                            Prefix=f"{PREFIX}/{under}")
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def pulled(reg: Registry, ref: str, dest) -> tuple[str, dict]:
    """skopeo copies `ref` out of `reg` into the directory `dest`: the manifest's
    digest, and the manifest, each blob checked against its descriptor."""
    reg.skopeo("copy", "--src-tls-verify=false", f"docker://{reg.addr}/{ref}", f"dir:{dest}")
    data = (dest / "manifest.json").read_bytes()
    manifest = json.loads(data)
    for d in [manifest["config"]] + manifest["layers"]:
        blob = (dest / d["digest"].split(":")[1]).read_bytes()
        assert sha256(blob) == d["digest"] and len(blob) == d["size"]
    return sha256(data), manifest


def pushed(reg: Registry, source: str, ref: str, tmp_path, *creds: str) -> str:
    """skopeo copies `source` into `reg` as `ref`; the manifest's digest."""
    digest_file = tmp_path / f"digest-{ref.replace('/', '_').replace(':', '_')}"
    reg.skopeo("copy", "--dest-tls-verify=false", *creds, "--digestfile", str(digest_file),
               source, f"docker://{reg.addr}/{ref}")
    return digest_file.read_text().strip()


# --- S3 storage -------------------------------------------------------------------


def test_skopeo_round_trip_chunked_upload_and_gc_on_s3(s3, tmp_path):
    endpoint, client = s3
    client.create_bucket(Bucket="roundtrip")
    with s3_registry(endpoint, "roundtrip") as reg:
        digest = pushed(reg, f"docker-archive:{DOCKER_ARCHIVE}", "s3/busybox:1", tmp_path)
        out_digest, manifest = pulled(reg, "s3/busybox:1", tmp_path / "out")
        assert out_digest == digest
        # the image is the archive's: its config (the image ID), and layers that
        # decompress to the config's diff_ids
        source = json.loads(subprocess.run(
            ["/usr/bin/skopeo", "inspect", "--raw", f"docker-archive:{DOCKER_ARCHIVE}"],
            check=True, capture_output=True).stdout)
        assert manifest["config"]["digest"] == source["config"]["digest"]
        config = json.loads((tmp_path / "out" / manifest["config"]["digest"][7:]).read_bytes())
        assert [sha256(gzip.decompress((tmp_path / "out" / d["digest"][7:]).read_bytes()))
                for d in manifest["layers"]] == config["rootfs"]["diff_ids"]
        stored = keys(client, "roundtrip", "blobs/")
        assert f"{PREFIX}/blobs/sha256/{digest[7:9]}/{digest[7:]}/data" in stored
        assert len(stored) >= 3 and keys(client, "roundtrip", "uploads/") == []

        # A blob of several S3 parts, pushed in chunks: each PATCH ends its
        # multipart upload, the next resumes it by copying the object.
        data = os.urandom(13 << 20)
        status, headers, _ = reg.request("POST", "/v2/s3/big/blobs/uploads/")
        location = headers["Location"]
        for start in range(0, 9 << 20, 3 << 20):
            end = start + (3 << 20)
            status, headers, _ = reg.request("PATCH", location, data[start:end],
                                             {"Content-Range": f"{start}-{end - 1}"})
            assert status == 202 and headers["Range"] == f"0-{end - 1}"
        status, _, _ = reg.request("PUT", f"{location}?digest={sha256(data)}", data[9 << 20:])
        assert status == 201
        assert reg.request("GET", f"/v2/s3/big/blobs/{sha256(data)}")[2] == data
        status, _, body = reg.request("GET", f"/v2/s3/big/blobs/{sha256(data)}",
                                      headers={"Range": "bytes=7340000-7340099"})
        assert (status, body) == (206, data[7340000:7340100])
        assert client.list_multipart_uploads(Bucket="roundtrip").get("Uploads", []) == []

        # garbage: a blob nothing references, and an image whose manifest went
        orphan = reg.push_blob("s3/busybox", b"never referenced")
        dropped = reg.image("s3/gone", [b"dropped layer"], config=b'{"dropped":1}')
        _, headers, _ = reg.put_manifest("s3/gone", "old", dropped)
        dropped_digest = headers["Docker-Content-Digest"]
        assert reg.request("DELETE", f"/v2/s3/gone/manifests/{dropped_digest}")[0] == 202
        reg.stop()   # offline collection
        gone = {orphan: "s3/busybox", sha256(b"dropped layer"): "s3/gone",
                sha256(b'{"dropped":1}'): "s3/gone", sha256(data): "s3/big"}
        gc = subprocess.run([DOCKYARD, "registry", "gc", *s3_flags(endpoint, "roundtrip")],
                            capture_output=True, text=True, env={**os.environ, **S3_ENV})
        assert gc.returncode == 0, gc.stderr
        assert {line.split()[1] for line in gc.stdout.splitlines()
                if line.startswith("removed ")} == set(gone) | {dropped_digest}
        assert not any(d[7:] in k for d in gone for k in keys(client, "roundtrip", "blobs/"))
        reg.start()
        assert pulled(reg, "s3/busybox:1", tmp_path / "after-gc")[0] == digest
        for d, name in gone.items():
            assert reg.request("HEAD", f"/v2/{name}/blobs/{d}")[0] == 404


# --- the pull-through cache ------------------------------------------------------


@pytest.fixture
def htpasswd(tmp_path) -> str:
    import bcrypt

    path = tmp_path / "htpasswd"
    hashed = bcrypt.hashpw(b"right", bcrypt.gensalt(rounds=5)).decode()
    path.write_text(f"alice:{hashed}\n")
    return str(path)


CREDS = ("--dest-creds", "alice:right")


def test_cache_of_a_basic_auth_upstream_serves_after_the_upstream_stops(htpasswd, tmp_path):
    with running_registry("--htpasswd", htpasswd) as upstream, \
            running_registry("--proxy", f"http://{upstream.addr}", "--proxy-username", "alice",
                             "--proxy-password", "right") as cache:
        first = pushed(upstream, f"docker-archive:{DOCKER_ARCHIVE}", "lib/app:1", tmp_path,
                       *CREDS)
        assert pulled(cache, "lib/app:1", tmp_path / "a")[0] == first
        assert os.path.exists(os.path.join(
            cache.root, "blobs", "sha256", first[7:9], first[7:], "data"))

        # pushes are refused, as by distribution's proxy
        for method, path in (("POST", "/v2/lib/app/blobs/uploads/"),
                             ("PUT", "/v2/lib/app/manifests/2"),
                             ("DELETE", f"/v2/lib/app/manifests/{first}")):
            status, _, body = cache.request(method, path, b"{}")
            assert status == 405 and errors_of(body) == ["UNSUPPORTED"]

        # the tag moves upstream: the cache follows it
        second = pushed(upstream, f"oci-archive:{OCI_ARCHIVE}", "lib/app:1", tmp_path, *CREDS)
        assert second != first
        status, headers, _ = cache.request("HEAD", "/v2/lib/app/manifests/1")
        assert status == 200 and headers["Docker-Content-Digest"] == second
        assert pulled(cache, "lib/app:1", tmp_path / "b")[0] == second

        # a blob the cache never fetched: HEAD is the upstream's answer
        unfetched = sha256(b"never pulled through")
        status, _, _ = upstream.request("POST", f"/v2/lib/app/blobs/uploads/?digest={unfetched}",
                                        b"never pulled through",
                                        {"Authorization": "Basic YWxpY2U6cmlnaHQ="})
        assert status == 201
        status, headers, _ = cache.request("HEAD", f"/v2/lib/app/blobs/{unfetched}")
        assert status == 200 and headers["Content-Length"] == str(len(b"never pulled through"))

        upstream.stop()
        assert pulled(cache, "lib/app:1", tmp_path / "c")[0] == second
        raw = cache.skopeo("inspect", "--raw", "--tls-verify=false",
                           f"docker://{cache.addr}/lib/app@{first}").stdout.encode()
        assert sha256(raw) == first
        status, _, body = cache.request("GET", f"/v2/lib/app/blobs/{unfetched}")
        assert status == 404 and errors_of(body) == ["BLOB_UNKNOWN"]
        status, _, body = cache.request("GET", "/v2/lib/other/manifests/1")
        assert status == 404 and errors_of(body) == ["MANIFEST_UNKNOWN"]
        assert "lib/app:1 answered from the cache" in cache.log()


def test_cache_of_a_token_upstream_verifies_what_it_stores(htpasswd, tmp_path):
    key = tmp_path / "token.key"
    key.write_text(os.urandom(32).hex())
    with running_registry("--htpasswd", htpasswd, "--token-key-file", str(key)) as upstream, \
            running_registry("--proxy", f"http://{upstream.addr}", "--proxy-username", "alice",
                             "--proxy-password", "right") as cache, \
            running_registry("--proxy", f"http://{upstream.addr}", "--proxy-username", "alice",
                             "--proxy-password", "wrong") as refused:
        digest = pushed(upstream, f"docker-archive:{DOCKER_ARCHIVE}", "lib/app:1", tmp_path,
                        *CREDS)
        status, _, body = refused.request("GET", "/v2/lib/app/manifests/1")
        assert status == 404 and errors_of(body) == ["MANIFEST_UNKNOWN"]

        # the upstream's copy of the config goes bad (same size, other bytes)
        manifest = json.loads(cache.request("GET", "/v2/lib/app/manifests/1")[2])
        config = manifest["config"]["digest"]
        data_path = os.path.join(upstream.root, "blobs", "sha256", config[7:9], config[7:], "data")
        with open(data_path, "r+b") as f:
            good = f.read()
            f.seek(0)
            f.write(bytes(b ^ 0xFF for b in good))
        with pytest.raises(http.client.IncompleteRead):
            cache.request("GET", f"/v2/lib/app/blobs/{config}")
        assert not os.path.exists(os.path.join(cache.root, "blobs", "sha256", config[7:9],
                                               config[7:]))
        assert no_uploads(cache.root)

        with open(data_path, "wb") as f:
            f.write(good)
        assert pulled(cache, "lib/app:1", tmp_path / "out")[0] == digest
        stored = os.path.join(cache.root, "blobs", "sha256", config[7:9], config[7:], "data")
        with open(stored, "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == config[7:]


def test_cache_lists_the_upstreams_tags_and_referrers_while_it_answers(htpasswd, tmp_path):
    auth = {"Authorization": "Basic YWxpY2U6cmlnaHQ="}  # alice:right
    with running_registry("--htpasswd", htpasswd) as upstream, \
            running_registry("--proxy", f"http://{upstream.addr}", "--proxy-username", "alice",
                             "--proxy-password", "right") as cache:
        digest = pushed(upstream, f"docker-archive:{DOCKER_ARCHIVE}", "lib/app:1", tmp_path,
                        *CREDS)
        _, headers, manifest = upstream.request("GET", "/v2/lib/app/manifests/1", headers=auth)
        assert upstream.put_manifest("lib/app", "2", manifest, headers["Content-Type"],
                                     auth)[0] == 201
        tags = cache.skopeo("list-tags", "--tls-verify=false", f"docker://{cache.addr}/lib/app")
        assert json.loads(tags.stdout)["Tags"] == ["1", "2"]
        assert not os.path.exists(os.path.join(cache.root, "repositories", "lib"))
        status, _, body = cache.request("GET", "/v2/_catalog")   # the cache's own
        assert (status, json.loads(body)) == (200, {"repositories": []})

        # a signature pushed upstream is listed by the cache, never having been pulled
        config = b'{"signature":1}'
        for blob in (config, b"signature bytes"):
            upstream.push_blob("lib/app", blob, auth)
        signature = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                     "artifactType": "application/vnd.example.sig",
                     "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                                "digest": sha256(config), "size": len(config)},
                     "layers": [{"mediaType": "application/octet-stream",
                                 "digest": sha256(b"signature bytes"), "size": 15}],
                     "subject": {"mediaType": headers["Content-Type"], "digest": digest,
                                 "size": len(manifest)}}
        _, sig_headers, _ = upstream.put_manifest("lib/app", "sig", signature, headers=auth)
        status, _, body = cache.request("GET", f"/v2/lib/app/referrers/{digest}")
        assert status == 200
        assert [d["digest"] for d in json.loads(body)["manifests"]] == [
            sig_headers["Docker-Content-Digest"]]

        assert pulled(cache, "lib/app:1", tmp_path / "a")[0] == digest
        upstream.stop()
        status, _, body = cache.request("GET", "/v2/lib/app/tags/list")
        assert (status, json.loads(body)["tags"]) == (200, ["1"])   # what the cache saw
        status, _, body = cache.request("GET", f"/v2/lib/app/referrers/{digest}")
        assert (status, json.loads(body)["manifests"]) == (200, [])
        assert "tags of lib/app answered from the cache" in cache.log()
