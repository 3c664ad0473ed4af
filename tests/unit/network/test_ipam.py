"""IPAM as dockerd's default driver counts: pools, subnets picked, addresses handed out."""

from __future__ import annotations

import ipaddress

import pytest

from dockyard import errdefs
from dockyard.network import ipam

net = ipaddress.ip_network
ip = ipaddress.ip_address


# -- pools and picking ---------------------------------------------------------------

def test_default_pools_are_dockerds():
    pools = ipam.split_pools(ipam.DEFAULT_POOLS)
    assert pools[:2] == [net("172.17.0.0/16"), net("172.18.0.0/16")]
    assert pools[14] == net("172.31.0.0/16")
    assert pools[15:17] == [net("192.168.0.0/20"), net("192.168.16.0/20")]
    assert pools[-1] == net("192.168.240.0/20")
    assert len(pools) == 15 + 16


def test_default_address_pool_flags_split_their_base():
    pools = ipam.split_pools([{"base": "10.10.0.0/16", "size": 24}])
    assert len(pools) == 256 and pools[3] == net("10.10.3.0/24")
    with pytest.raises(ipam.InvalidPool, match=r"invalid pools size: 8"):
        ipam.split_pools([{"base": "10.10.0.0/16", "size": 8}])
    with pytest.raises(ipam.InvalidPool, match=r'invalid base pool "nope"'):
        ipam.split_pools([{"base": "nope", "size": 24}])


def test_pick_skips_what_overlaps_and_resumes_after_the_last_pick():
    pools = ipam.split_pools(ipam.DEFAULT_POOLS)
    in_use = [net("172.17.0.0/16"), net("172.18.5.0/24"), net("10.0.0.0/8")]
    assert ipam.pick_subnet(pools, in_use) == net("172.19.0.0/16")
    # a route wider than a pool hides it too
    assert ipam.pick_subnet(pools, [net("172.16.0.0/12")]) == net("192.168.0.0/20")
    # libnetwork looks from the pool after the one it gave last, wrapping round
    assert ipam.pick_subnet(pools, [], start=5) == net("172.22.0.0/16")
    assert ipam.pick_subnet(pools, [], start=len(pools)) == net("172.17.0.0/16")


def test_pick_with_nothing_free_says_what_dockerd_says():
    with pytest.raises(ipam.NoAvailablePool) as e:
        ipam.pick_subnet([net("10.1.0.0/24")], [net("10.1.0.0/16")])
    assert str(e.value) == ("could not find an available, non-overlapping IPv4 address pool "
                            "among the defaults to assign to the network")
    assert isinstance(e.value, errdefs.NotFound)


def test_overlap_is_containment_either_way():
    assert ipam.overlaps(net("10.0.0.0/24"), net("10.0.0.128/25"))
    assert ipam.overlaps(net("10.0.0.128/25"), net("10.0.0.0/16"))
    assert not ipam.overlaps(net("10.0.0.0/25"), net("10.0.0.128/25"))
    assert not ipam.overlaps(net("10.0.0.0/8"), net("fd00::/64"))


# -- one subnet ------------------------------------------------------------------------

def test_gateway_is_the_first_host_and_addresses_follow():
    pool = ipam.Pool("10.251.0.0/24")
    assert pool.gateway == ip("10.251.0.1")
    assert pool.allocate() == ip("10.251.0.2")
    assert pool.allocate() == ip("10.251.0.3")
    assert pool.interface(ip("10.251.0.3")) == ipaddress.ip_interface("10.251.0.3/24")


def test_an_ip_range_moves_the_gateway_and_the_addresses_into_it():
    pool = ipam.Pool("10.253.0.0/24", ip_range="10.253.0.128/25")
    assert pool.gateway == ip("10.253.0.128")  # as dockerd: the range's first address
    assert pool.allocate() == ip("10.253.0.129")
    # a requested address need only be in the subnet
    assert pool.allocate("10.253.0.5") == ip("10.253.0.5")
    assert pool.in_range("10.253.0.200") and not pool.in_range("10.253.0.5")


def test_an_ip_range_outside_the_subnet_counts_by_its_host_part():
    pool = ipam.Pool("10.252.0.0/24", ip_range="10.253.0.0/25")
    assert pool.gateway == ip("10.252.0.1")
    assert pool.allocate() == ip("10.252.0.2")


def test_a_gateway_outside_the_subnet_is_refused_in_dockerds_words():
    with pytest.raises(errdefs.System) as e:
        ipam.Pool("10.252.0.0/24", "10.9.9.1")
    assert str(e.value) == ("failed to allocate gateway (10.9.9.1): "
                            "Requested address is out of range")


def test_network_broadcast_gateway_and_aux_addresses_are_never_handed_out():
    pool = ipam.Pool("10.0.0.0/29", "10.0.0.6", aux={"router": "10.0.0.1"})
    got = [pool.allocate() for _ in range(4)]
    assert got == [ip(f"10.0.0.{n}") for n in (2, 3, 4, 5)]
    with pytest.raises(ipam.NoAvailableAddresses, match="No available addresses on this pool"):
        pool.allocate()
    for taken in ("10.0.0.0", "10.0.0.7", "10.0.0.6", "10.0.0.1", "10.0.0.3"):
        with pytest.raises(ipam.AddressInUse, match="Address already in use"):
            pool.allocate(taken)
    pool.release("10.0.0.6")  # the gateway stays taken
    pool.release("10.0.0.1")  # so does an aux address
    pool.release("10.0.0.3")
    assert pool.allocate() == ip("10.0.0.3")
    assert pool.aux == {"router": ip("10.0.0.1")}


def test_preferred_addresses_and_their_errors():
    pool = ipam.Pool("10.0.0.0/24")
    assert pool.allocate("10.0.0.50") == ip("10.0.0.50")
    with pytest.raises(ipam.AddressInUse) as e:
        pool.allocate("10.0.0.50")
    assert isinstance(e.value, errdefs.Forbidden)
    with pytest.raises(ipam.OutOfRange, match="Requested address is out of range"):
        pool.allocate("10.0.1.1")
    with pytest.raises(ipam.OutOfRange):
        pool.allocate("fd00::1")


def test_reserve_rebuilds_state_after_a_restart():
    pool = ipam.Pool("10.0.0.0/24")
    pool.reserve("10.0.0.2")
    pool.reserve("10.0.0.2")  # idempotent
    pool.reserve(ip("10.0.0.4"))
    assert pool.allocate() == ip("10.0.0.3")
    assert pool.allocate() == ip("10.0.0.5")
    assert pool.in_use() == [ip(f"10.0.0.{n}") for n in (2, 3, 4, 5)]
    with pytest.raises(ipam.OutOfRange):
        pool.reserve("10.9.0.1")


def test_aux_addresses_must_be_in_the_subnet_and_free():
    with pytest.raises(errdefs.Forbidden) as e:
        ipam.Pool("10.0.0.0/24", aux={"x": "10.1.0.1"})
    assert str(e.value) == ("auxiliary address: (x:10.1.0.1) must belong to the master pool: "
                            "10.0.0.0/24")
    with pytest.raises(errdefs.System) as e:
        ipam.Pool("10.0.0.0/24", aux={"x": "10.0.0.1"})
    assert str(e.value) == ("failed to allocate secondary ip address (x:10.0.0.1): "
                            "Address already in use")
    with pytest.raises(errdefs.System, match=r"non parsable secondary ip address \(x:nope\) "
                                             r"passed for network n1"):
        ipam.Pool("10.0.0.0/24", aux={"x": "nope"}, network="n1")


def test_ipv6_pools_start_at_one_and_have_no_broadcast():
    pool = ipam.Pool("fd00:dead::/64")
    assert pool.gateway == ip("fd00:dead::1")
    assert pool.allocate() == ip("fd00:dead::2")
    small = ipam.Pool("fd00::/126")
    assert [small.allocate() for _ in range(2)] == [ip("fd00::2"), ip("fd00::3")]


def test_errors_can_be_remade_from_their_message():
    for error in (ipam.AddressInUse(), ipam.OutOfRange(), ipam.NoAvailableAddresses(),
                  ipam.PoolOverlap(), ipam.NoAvailablePool(6)):
        again = type(error)(f"start failed: {error}")
        assert str(again) == f"start failed: {error}"
