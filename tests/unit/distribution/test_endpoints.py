"""Where a reference's registry is, and how it is spoken to (endpoints.py)."""

import pytest

from dockyard import errdefs
from dockyard.distribution.endpoints import (INDEX_SERVER, Endpoint, ServiceConfig, auth_key,
                                             repository_path, server_domain, validate_mirror)
from dockyard.image.reference import parse_normalized


@pytest.mark.parametrize("name, domain, path", [
    ("busybox", "docker.io", "library/busybox"),
    ("busybox:1.36", "docker.io", "library/busybox"),
    ("user/app", "docker.io", "user/app"),
    ("index.docker.io/library/busybox", "docker.io", "library/busybox"),
    ("docker.io/busybox", "docker.io", "library/busybox"),
    ("localhost/app", "localhost", "app"),
    ("localhost:5000/team/app:v1", "localhost:5000", "team/app"),
    ("127.0.0.1:5000/test/busybox", "127.0.0.1:5000", "test/busybox"),
    ("registry.example.com/a/b/c@sha256:" + "a" * 64, "registry.example.com", "a/b/c"),
])
def test_reference_names_registry_and_repository(name, domain, path):
    ref = parse_normalized(name)
    assert (ref.domain, repository_path(ref)) == (domain, path)


def test_docker_hub_is_served_by_registry_1_over_verified_https():
    config = ServiceConfig()
    assert config.pull_endpoints("docker.io") == [Endpoint("https://registry-1.docker.io")]
    assert config.push_endpoints("index.docker.io") == [Endpoint("https://registry-1.docker.io")]


def test_other_registries_are_https_with_verification():
    assert ServiceConfig().pull_endpoints("registry.example.com:443") == [
        Endpoint("https://registry.example.com:443", verify_tls=True)]


@pytest.mark.parametrize("domain", ["127.0.0.1:5000", "127.1.2.3", "localhost:5000",
                                    "localhost", "[::1]:5000"])
def test_loopback_registries_are_insecure_by_default(domain):
    config = ServiceConfig()
    assert not config.is_secure(domain)
    assert config.pull_endpoints(domain) == [
        Endpoint(f"https://{domain}", verify_tls=False), Endpoint(f"http://{domain}", verify_tls=False)]


def test_insecure_registry_by_host_port_host_and_cidr():
    config = ServiceConfig(insecure_registries=["myreg:5000", "other.lan", "10.1.0.0/16"])
    assert not config.is_secure("myreg:5000")
    assert config.is_secure("myreg:5001")
    assert not config.is_secure("other.lan:8080")
    assert not config.is_secure("10.1.2.3:5000")
    assert config.is_secure("10.2.0.1:5000")
    # names are never resolved to be matched against a CIDR
    assert config.is_secure("registry.example.com")


def test_insecure_registry_with_a_scheme_is_refused():
    with pytest.raises(errdefs.InvalidParameter, match="should not contain '://'"):
        ServiceConfig(insecure_registries=["http://myreg:5000"])


def test_mirrors_only_for_docker_hub_pulls():
    config = ServiceConfig(mirrors=["http://127.0.0.1:5001", "https://mirror.example.com/"])
    assert config.mirrors == ["http://127.0.0.1:5001/", "https://mirror.example.com/"]
    pull = config.pull_endpoints("docker.io")
    assert pull == [Endpoint("http://127.0.0.1:5001", verify_tls=False, mirror=True),
                    Endpoint("https://mirror.example.com", verify_tls=True, mirror=True),
                    Endpoint("https://registry-1.docker.io")]
    assert not any(e.mirror for e in config.push_endpoints("docker.io"))
    assert not any(e.mirror for e in config.pull_endpoints("127.0.0.1:5000"))


@pytest.mark.parametrize("value, message", [
    ("ftp://m.example.com", "unsupported scheme"),
    ("m.example.com", "unsupported scheme"),
    ("https://m.example.com/path", "path, query, or fragment"),
    ("https://m.example.com/?q=1", "path, query, or fragment"),
])
def test_bad_mirrors_are_refused(value, message):
    with pytest.raises(errdefs.InvalidParameter, match=message):
        validate_mirror(value)


def test_credentials_are_filed_under_the_index_server_for_docker_hub():
    assert auth_key("docker.io") == INDEX_SERVER
    assert auth_key("index.docker.io") == INDEX_SERVER
    assert auth_key("127.0.0.1:5000") == "127.0.0.1:5000"


@pytest.mark.parametrize("address, domain", [
    ("", "docker.io"), (INDEX_SERVER, "docker.io"), ("docker.io", "docker.io"),
    ("127.0.0.1:5000", "127.0.0.1:5000"), ("http://127.0.0.1:5000/v2/", "127.0.0.1:5000"),
    ("https://registry.example.com", "registry.example.com"),
])
def test_login_server_address(address, domain):
    assert server_domain(address) == domain


def test_info_shape_matches_dockerd():
    info = ServiceConfig(insecure_registries=["myreg:5000"]).info()
    assert info["InsecureRegistryCIDRs"] == ["127.0.0.0/8"]
    assert info["IndexConfigs"]["docker.io"] == {"Name": "docker.io", "Mirrors": [],
                                                 "Secure": True, "Official": True}
    assert info["IndexConfigs"]["myreg:5000"]["Secure"] is False


def test_hub_endpoint_can_be_moved():
    """Tests point Docker Hub at a dead local port: nothing leaves the machine."""
    config = ServiceConfig(mirrors=["http://127.0.0.1:5001"], hub="http://127.0.0.1:1")
    assert config.pull_endpoints("docker.io") == [
        Endpoint("http://127.0.0.1:5001", verify_tls=False, mirror=True),
        Endpoint("http://127.0.0.1:1", verify_tls=False)]
    assert config.push_endpoints("docker.io") == [Endpoint("http://127.0.0.1:1", verify_tls=False)]


def test_mirror_messages_are_dockerds():
    with pytest.raises(errdefs.InvalidParameter) as e:
        validate_mirror("ftp://m.example.com")
    assert str(e.value) == 'invalid mirror: unsupported scheme "ftp" in "ftp://m.example.com"'
    with pytest.raises(errdefs.InvalidParameter) as e:
        validate_mirror("https://user:pw@m.example.com")
    assert str(e.value) == ('invalid mirror: username/password not allowed in URI '
                            '"https://user:xxxxx@m.example.com"')
