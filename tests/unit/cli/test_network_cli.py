"""`network` commands' client-side rules and output (docker/cli cli/command/network)."""

from __future__ import annotations

import pytest

from dockyard.cli import formatting
from dockyard.cli.formatting import rfc3339_time_string as go_time_string
from dockyard.cli.network import DEFAULT_TABLE, HEADER, ipam_configs, network_format, network_row


def test_ipam_configs_group_by_subnet():
    assert ipam_configs(["10.0.0.0/24", "fd00::/64"], ["10.0.0.128/25"], ["10.0.0.254"],
                        {"r": "10.0.0.2"}) == [
        {"Subnet": "10.0.0.0/24", "AuxiliaryAddresses": {"r": "10.0.0.2"},
         "IPRange": "10.0.0.128/25", "Gateway": "10.0.0.254"},
        {"Subnet": "fd00::/64"}]
    assert ipam_configs([], [], [], {}) == []


@pytest.mark.parametrize("args, message", [
    ((["10.252.0.0/24"], [], ["10.9.9.1"], {}), "no matching subnet for gateway 10.9.9.1"),
    ((["10.252.0.0/24"], ["10.253.0.0/25"], [], {}),
     "no matching subnet for range 10.253.0.0/25"),
    (([], [], ["10.0.0.1"], {}), "every ip-range or gateway must have a corresponding subnet"),
    ((["10.0.0.0/16", "10.0.1.0/24"], [], [], {}),
     "multiple overlapping subnet configuration is not supported"),
    ((["10.0.0.0/24"], [], ["10.0.0.1", "10.0.0.2"], {}),
     "every ip-range or gateway must have a corresponding subnet"),
    ((["10.0.0.0/24"], [], [], {"x": "10.1.0.1"}), "no matching subnet for aux-address 10.1.0.1"),
    ((["nope"], ["10.0.0.0/25"], [], {}), "invalid subnet: invalid CIDR address: nope"),
])
def test_ipam_configs_refuse_as_docker(args, message):
    with pytest.raises(ValueError) as e:
        ipam_configs(*args)
    assert str(e.value) == message


def test_created_at_is_gos_time_string():
    assert go_time_string("2026-11-28T10:02:38.337329017Z") == \
        "2026-11-28 10:02:38.337329017 +0000 UTC"
    assert go_time_string("2026-11-28T10:02:38.300Z") == "2026-11-28 10:02:38.3 +0000 UTC"
    assert go_time_string("2026-11-28T10:02:38Z") == "2026-11-28 10:02:38 +0000 UTC"


NETWORK = {"Name": "nlab", "Id": "ea20f3cc0a01dac8c8a29457961f8febfb2916946779b2a21abddcc63fe273b8",
           "Created": "2026-11-28T10:03:01.174792232Z", "Scope": "local", "Driver": "bridge",
           "EnableIPv6": False, "Internal": False, "Labels": {"a": "b"}}


def test_rows_render_as_dockers():
    rows = [network_row(NETWORK)]
    # the reference line of `docker network ls --format '{{json .}}'` (dockerd 20.10)
    assert formatting.render("{{json .}}", rows, HEADER) == (
        '{"CreatedAt":"2026-11-28 10:03:01.174792232 +0000 UTC","Driver":"bridge",'
        '"ID":"ea20f3cc0a01","IPv4":"false","IPv6":"false","Internal":"false",'
        '"Labels":"a=b","Name":"nlab","Scope":"local"}\n')
    assert formatting.render(network_format("table", False), rows, HEADER) == (
        "NETWORK ID     NAME      DRIVER    SCOPE\n"
        "ea20f3cc0a01   nlab      bridge    local\n")
    assert formatting.render(network_format("table", True), rows, HEADER) == "ea20f3cc0a01\n"
    assert formatting.render('{{.Label "a"}} {{.Label "b"}}|', rows, HEADER) == "b |\n"
    assert formatting.render(network_format("raw", False), rows, HEADER) == (
        "network_id: ea20f3cc0a01\nname: nlab\ndriver: bridge\nscope: local\n\n")
    assert network_format("", False) == "" and DEFAULT_TABLE.startswith("table")
