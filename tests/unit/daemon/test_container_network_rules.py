"""Pure rules of a container's network: alias names, and the /etc files it gets."""

import pytest

from dockyard import errdefs
from dockyard.daemon import etcfiles
from dockyard.daemon.container import Container
from dockyard.daemon.containernetwork import check_alias


@pytest.mark.parametrize("alias", ["web", "my_service", "a.b-c", "x" * 63, "db1.example"])
def test_aliases_that_dns_can_carry(alias):
    check_alias(alias)


@pytest.mark.parametrize("alias", ["bad name", "-x", "a..b", "x" * 64, "é", "", "a/b"])
def test_aliases_that_it_cannot(alias):
    with pytest.raises(errdefs.InvalidParameter, match="not a valid DNS name"):
        check_alias(alias)


def container(**host_config) -> Container:
    return Container({"Id": "c" * 64, "Name": "/x", "Config": {"Hostname": "h1"},
                      "HostConfig": {"NetworkMode": "default", **host_config},
                      "State": {}})


def read(files: dict, name: str) -> str:
    with open(files[name]) as f:
        return f.read()


def test_hosts_lists_extra_hosts_then_the_containers_addresses(tmp_path):
    c = container(ExtraHosts=["foo:10.9.8.7", "gw:host-gateway"])
    files = etcfiles.for_container(c, str(tmp_path), etcfiles.NetworkView(
        addresses=["172.18.0.2"], host_gateway="172.17.0.1"))
    lines = read(files, "hosts").splitlines()
    assert lines[-3:] == ["10.9.8.7\tfoo", "172.17.0.1\tgw", "172.18.0.2\th1"]


def test_user_networks_resolve_through_the_embedded_server(tmp_path):
    c = container(DnsSearch=["example.com"])
    files = etcfiles.for_container(c, str(tmp_path), etcfiles.NetworkView(
        addresses=["10.0.0.2"], embedded_dns=True, default_dns=["127.0.0.77"]))
    assert read(files, "resolv.conf") == ("nameserver 127.0.0.11\nsearch example.com\n"
                                          "options ndots:0\n")
    # the user's ndots wins
    c = container(DnsOptions=["ndots:3"])
    files = etcfiles.for_container(c, str(tmp_path), etcfiles.NetworkView(embedded_dns=True))
    assert read(files, "resolv.conf").splitlines()[-1] == "options ndots:3"


def test_the_daemons_dns_is_the_default_and_the_containers_wins(tmp_path):
    view = etcfiles.NetworkView(default_dns=["127.0.0.77"], default_search=["corp"])
    files = etcfiles.for_container(container(), str(tmp_path), view)
    assert read(files, "resolv.conf") == "nameserver 127.0.0.77\nsearch corp\n"
    files = etcfiles.for_container(container(Dns=["10.1.1.1"]), str(tmp_path), view)
    assert read(files, "resolv.conf").splitlines()[0] == "nameserver 10.1.1.1"


def test_running_containers_files_are_rewritten_in_place(tmp_path):
    import os
    files = etcfiles.for_container(container(), str(tmp_path), etcfiles.NetworkView(
        addresses=["10.0.0.2"]))
    inode = os.stat(files["hosts"]).st_ino
    etcfiles.for_container(container(), str(tmp_path), etcfiles.NetworkView(
        addresses=["10.0.0.2", "10.0.1.2"]), in_place=True)
    assert os.stat(files["hosts"]).st_ino == inode  # (a bind mount follows the inode)
    assert read(files, "hosts").endswith("10.0.0.2\th1\n10.0.1.2\th1\n")
