"""The names and MACs the bridge driver makes up, as dockerd makes them."""

import ipaddress
import re

import pytest

from dockyard import errdefs
from dockyard.network.bridge import _missing, mac_for, veth_name


def test_mac_from_ipv4_as_dockerd():
    assert mac_for("172.17.0.2") == "02:42:ac:11:00:02"
    assert mac_for(ipaddress.IPv4Address("10.250.3.255")) == "02:42:0a:fa:03:ff"


def test_host_veth_names():
    names = {veth_name() for _ in range(50)}
    assert all(re.fullmatch(r"veth[0-9a-f]{7}", n) for n in names)
    assert len(names) > 45  # random, not a counter
    assert all(len(n) <= 15 for n in names)  # IFNAMSIZ - 1


def test_existing_bridge_addresses():
    held = ["172.17.0.1/16", "fe80::1/64"]
    assert _missing("dockyard0", held, ["172.17.0.1/16"]) == []
    assert _missing("dockyard0", held, ["172.17.0.1/16", "fd00:1::1/64"]) == ["fd00:1::1/64"]
    with pytest.raises(errdefs.Conflict, match=r"bridge IPv4 \(172.17.0.1/16\) does not match "
                                               r"requested configuration 172.17.0.1/24"):
        _missing("dockyard0", held, ["172.17.0.1/24"])
