"""dockerd's port allocator: exact ports, ranges, the ephemeral range, and the
wildcard address overlapping the specific ones."""

import pytest

from dockyard import errdefs
from dockyard.network.portallocator import (DEFAULT_EPHEMERAL_RANGE, AllPortsAllocated,
                                            PortAllocator, PortAlreadyAllocated,
                                            ephemeral_range)


def test_exact_port_once_per_address_and_protocol():
    a = PortAllocator()
    assert a.request("tcp", "0.0.0.0", 8080) == 8080
    with pytest.raises(PortAlreadyAllocated) as e:
        a.request("tcp", "0.0.0.0", 8080)
    assert str(e.value) == "Bind for 0.0.0.0:8080 failed: port is already allocated"
    assert isinstance(e.value, errdefs.System)  # dockerd answers 500
    assert a.request("udp", "0.0.0.0", 8080) == 8080
    assert a.request("tcp", "0.0.0.0", 8081) == 8081


def test_empty_host_ip_is_the_ipv4_wildcard():
    a = PortAllocator()
    a.request("tcp", "", 8080)
    with pytest.raises(PortAlreadyAllocated, match="Bind for 0.0.0.0:8080 failed"):
        a.request("tcp", "0.0.0.0", 8080)


def test_specific_addresses_do_not_overlap_each_other():
    a = PortAllocator()
    a.request("tcp", "127.0.0.1", 8080)
    assert a.request("tcp", "192.0.2.1", 8080) == 8080


def test_wildcard_overlaps_specific_addresses_both_ways():
    a = PortAllocator()
    a.request("tcp", "127.0.0.1", 8080)
    with pytest.raises(PortAlreadyAllocated, match=r"^Bind for 0\.0\.0\.0:8080 failed"):
        a.request("tcp", "0.0.0.0", 8080)
    a.request("tcp", "0.0.0.0", 9090)
    with pytest.raises(PortAlreadyAllocated,
                       match=r"^Bind for 127\.0\.0\.1:9090 failed: port is already allocated$"):
        a.request("tcp", "127.0.0.1", 9090)


def test_ipv4_and_ipv6_do_not_overlap():
    a = PortAllocator()
    a.request("tcp", "0.0.0.0", 8080)
    assert a.request("tcp", "::", 8080) == 8080
    with pytest.raises(PortAlreadyAllocated) as e:
        a.request("tcp", "::1", 8080)
    assert str(e.value) == "Bind for ::1:8080 failed: port is already allocated"
    # dockerd's spelling of an IPv6 wildcard conflict
    with pytest.raises(PortAlreadyAllocated, match=r"^Bind for :::8080 failed"):
        a.request("tcp", "::", 8080)


def test_addresses_are_compared_in_one_spelling():
    a = PortAllocator()
    a.request("tcp", "::0001", 8080)
    with pytest.raises(PortAlreadyAllocated):
        a.request("tcp", "::1", 8080)
    assert a.in_use("tcp", "0:0:0:0:0:0:0:1") == {8080}


def test_release_gives_the_port_back():
    a = PortAllocator()
    a.request("tcp", "0.0.0.0", 8080)
    a.release("tcp", "0.0.0.0", 8080)
    assert a.request("tcp", "0.0.0.0", 8080) == 8080
    a.release("tcp", "192.0.2.9", 1234)  # never given out: no error
    a.release("udp", "0.0.0.0", 8080)    # other protocol: the tcp port stays taken
    assert a.in_use("tcp", "0.0.0.0") == {8080}


def test_range_gives_out_in_order_and_wraps_after_the_last_given():
    a = PortAllocator()
    assert a.request("tcp", "0.0.0.0", 8000, 8002) == 8000
    assert a.request("tcp", "0.0.0.0", 8000, 8002) == 8001
    a.release("tcp", "0.0.0.0", 8000)
    # dockerd searches on from the last port given, not from the start
    assert a.request("tcp", "0.0.0.0", 8000, 8002) == 8002
    assert a.request("tcp", "0.0.0.0", 8000, 8002) == 8000
    with pytest.raises(AllPortsAllocated, match="^all ports are allocated$"):
        a.request("tcp", "0.0.0.0", 8000, 8002)


def test_range_skips_ports_taken_exactly_or_through_the_wildcard():
    a = PortAllocator()
    a.request("tcp", "0.0.0.0", 8000)
    a.request("tcp", "127.0.0.1", 8001)
    assert a.request("tcp", "127.0.0.1", 8000, 8002) == 8002
    assert a.request("tcp", "0.0.0.0", 8000, 8003) == 8003


def test_any_port_comes_from_the_ephemeral_range():
    a = PortAllocator(ephemeral=(40000, 40002))
    a.request("tcp", "0.0.0.0", 40001)
    assert a.request("tcp", "0.0.0.0") == 40000
    assert a.request("tcp", "0.0.0.0", 0) == 40002
    with pytest.raises(AllPortsAllocated):
        a.request("tcp", "0.0.0.0", 0, 0)
    assert a.request("udp", "0.0.0.0") == 40000  # each protocol has its own ports


def test_one_port_for_several_addresses():
    a = PortAllocator(ephemeral=(40000, 40009))
    a.request("tcp", "::", 40000)
    port = a.request("tcp", ["0.0.0.0", "::"])
    assert port == 40001
    assert a.in_use("tcp", "0.0.0.0") == {40001}
    assert a.in_use("tcp", "::") == {40000, 40001}
    with pytest.raises(PortAlreadyAllocated, match="Bind for :::40000 failed"):
        a.request("tcp", ["0.0.0.0", "::"], 40000)
    assert a.in_use("tcp", "0.0.0.0") == {40001}  # nothing taken by the failed request


def test_release_all():
    a = PortAllocator(ephemeral=(40000, 40009))
    a.request("tcp", "0.0.0.0")
    a.release_all()
    assert a.in_use("tcp", "0.0.0.0") == frozenset()
    assert a.request("tcp", "0.0.0.0") == 40000


@pytest.mark.parametrize("args", [("tcp", "0.0.0.0", 8010, 8000), ("tcp", "0.0.0.0", 0, 8000),
                                  ("tcp", "0.0.0.0", 8000, 70000)])
def test_bad_ranges(args):
    with pytest.raises(errdefs.InvalidParameter, match="invalid port range"):
        PortAllocator().request(*args)


def test_bad_protocol_and_address():
    with pytest.raises(errdefs.InvalidParameter, match="^unknown protocol$"):
        PortAllocator().request("icmp", "0.0.0.0", 80)
    with pytest.raises(errdefs.InvalidParameter, match="invalid host IP address: 300.1.1.1"):
        PortAllocator().request("tcp", "300.1.1.1", 80)
    with pytest.raises(errdefs.InvalidParameter):
        PortAllocator().request("tcp", [], 80)


def test_ephemeral_range_from_proc():
    assert ephemeral_range("32768\t60999\n") == (32768, 60999)
    assert ephemeral_range("1024 65535") == (1024, 65535)
    for text in (None, "", "32768", "x y", "60999 32768", "0 100", "1 2 3"):
        assert ephemeral_range(text) == DEFAULT_EPHEMERAL_RANGE == (49153, 60999)
