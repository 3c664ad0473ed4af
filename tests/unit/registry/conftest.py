"""Registries over each storage driver, and the S3 service the S3 driver talks to.

The S3 service is moto's standalone server, started once per session on
127.0.0.1 and a free port (only when a test asks for it), and stopped at the
end; each test gets a bucket of its own. Credentials are given explicitly, so
boto3 never looks for the host's (nor asks an instance metadata service).
"""

from __future__ import annotations

import itertools
import logging

import pytest

from dockyard.registry.filesystem import FilesystemDriver
from dockyard.registry.memory import MemoryDriver
from dockyard.registry.storage import Registry

CREDENTIALS = {"access_key": "testing", "secret_key": "testing"}


class S3Service:
    """moto's server, a client of it, and a bucket per driver."""

    def __init__(self, endpoint: str):
        from dockyard.registry.s3 import _client, S3Settings

        self.endpoint = endpoint
        self.client = _client(S3Settings(bucket="", endpoint=endpoint, **CREDENTIALS))
        self._buckets = itertools.count()

    def new_bucket(self) -> str:
        bucket = f"registry-{next(self._buckets)}"
        self.client.create_bucket(Bucket=bucket)
        return bucket

    def driver(self, prefix: str = "registry/root", bucket: str | None = None, **settings):
        from dockyard.registry.s3 import S3Driver, S3Settings

        return S3Driver(S3Settings(bucket=bucket or self.new_bucket(), endpoint=self.endpoint,
                                   prefix=prefix, **CREDENTIALS, **settings),
                        client=self.client)  # one client: making one takes ~0.4 s


@pytest.fixture(scope="session")
def s3_service():
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per S3 request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield S3Service(f"http://{host}:{port}")
    finally:
        server.stop()


@pytest.fixture(params=["filesystem", "inmemory"])
def registry(request, tmp_path) -> Registry:
    """Not over S3: at ~10 ms a request to moto these tests would take 20 s more;
    the driver suite and tests/integration/test_registry_s3_proxy.py cover S3."""
    if request.param == "filesystem":
        return Registry(FilesystemDriver(str(tmp_path / "root")))
    return Registry(MemoryDriver())
