"""Port keys, the bindings a container asks for, and the API's two views of them."""

import pytest

from dockyard.network import ports
from dockyard.network.ports import Published, Request


def test_keys_default_to_tcp_and_are_checked():
    assert ports.parse_key("80") == (80, "tcp")
    assert ports.parse_key("53/UDP") == (53, "udp")
    for bad in ("0/tcp", "65536", "80/icmp", "x/tcp", ""):
        with pytest.raises(ports.PortError, match="invalid port specification"):
            ports.parse_key(bad)


def test_host_ports_any_one_or_a_range():
    assert ports.parse_host_port("") == (0, 0)
    assert ports.parse_host_port("8080") == (8080, 8080)
    assert ports.parse_host_port("8000-8010") == (8000, 8010)
    for bad in ("8010-8000", "x", "70000"):
        with pytest.raises(ports.PortError):
            ports.parse_host_port(bad)


def test_requests_take_the_default_ip_and_publish_all_exposed():
    wanted = ports.requests({"80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                             "53/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}]},
                            ["80/tcp", "53/udp", "90/tcp"], publish_all=True,
                            default_ip="0.0.0.0")
    assert wanted == [Request("udp", 53, "127.0.0.1", 0, 0),
                      Request("tcp", 80, "0.0.0.0", 8080, 8080),
                      Request("tcp", 90, "0.0.0.0", 0, 0)]
    assert ports.requests(None, ["90/tcp"], publish_all=False, default_ip="0.0.0.0") == []


def test_inspect_view_lists_exposed_ports_with_null_and_published_ones():
    view = ports.inspect_view(["90/tcp", "80/tcp"],
                              [Published("tcp", 80, "127.0.0.1", 18080)])
    assert view == {"90/tcp": None, "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18080"}]}


def test_list_view_and_back():
    view = {"90/tcp": None, "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}
    assert ports.list_view(view) == [
        {"PrivatePort": 90, "Type": "tcp"},
        {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}]
    assert ports.from_view(view) == [Published("tcp", 80, "0.0.0.0", 8080)]
