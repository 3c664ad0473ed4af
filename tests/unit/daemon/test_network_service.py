"""The network service without a kernel: records, names, lookups, filters, and
dockerd's answers (the dockerd 20.10 reference in its words)."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os

import pytest

from dockyard import errdefs
from dockyard.daemon.config import Config
from dockyard.daemon.networks import NetworkService, filter_networks
from dockyard.store.layout import Layout

HOST = [ipaddress.ip_network("192.0.2.0/24"), ipaddress.ip_network("172.17.0.0/16")]


class Driver:
    """Records what the service asks of the kernel side; can be told to fail."""

    def __init__(self, fail: BaseException | None = None):
        self.calls: list[tuple[str, str]] = []
        self.fail = fail

    async def create_network(self, net):
        self.calls.append(("create", net.name))
        if self.fail:
            raise self.fail

    async def delete_network(self, net):
        self.calls.append(("delete", net.name))

    async def restore_network(self, net):
        self.calls.append(("restore", net.name))


def service(root, driver=None, events=None, **flags) -> NetworkService:
    config = Config(data_root=str(root), bridge=flags.pop("bridge", "dyt0"), **flags)
    layout = Layout(str(root))
    layout.create()
    svc = NetworkService(layout, config, lambda *e: (events if events is not None else [])
                         .append(e), driver=driver, host_networks=lambda: list(HOST))
    asyncio.run(svc.start())
    return svc


def create(svc, **body):
    return asyncio.run(svc.create(body))


# -- predefined networks ------------------------------------------------------------------

def test_predefined_networks_and_the_default_bridge(tmp_path):
    svc = service(tmp_path, bip="10.250.0.1/24", fixed_cidr="10.250.0.128/25", mtu=1400)
    by_name = {n["Name"]: n for n in svc.list({})}
    assert set(by_name) == {"bridge", "host", "none"}
    bridge = by_name["bridge"]
    assert bridge["IPAM"] == {"Driver": "default", "Options": None, "Config": [
        {"Subnet": "10.250.0.0/24", "Gateway": "10.250.0.1", "IPRange": "10.250.0.128/25"}]}
    assert bridge["Options"] == {
        "com.docker.network.bridge.default_bridge": "true",
        "com.docker.network.bridge.enable_icc": "true",
        "com.docker.network.bridge.enable_ip_masquerade": "true",
        "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
        "com.docker.network.bridge.name": "dyt0",
        "com.docker.network.driver.mtu": "1400"}
    assert by_name["host"]["Driver"] == "host" and by_name["none"]["Driver"] == "null"
    assert by_name["none"]["IPAM"] == {"Driver": "default", "Options": None, "Config": []}
    net = svc.get("bridge")
    assert (net.bridge, str(net.gateway), net.is_default_bridge, net.user_defined) == \
        ("dyt0", "10.250.0.1", True, False)
    # from --fixed-cidr, its first address included (libnetwork counts host parts)
    assert str(net.allocate()) == "10.250.0.128/24"


def test_without_bip_the_default_bridge_takes_a_free_pool_and_keeps_it(tmp_path):
    svc = service(tmp_path)
    first = svc.get("bridge")
    assert first.resource()["IPAM"]["Config"] == [{"Subnet": "172.18.0.0/16"}]
    assert str(first.gateway) == "172.18.0.1"
    again = service(tmp_path)  # a restart with the same flags changes nothing
    assert again.get("bridge").resource() == first.resource()
    moved = service(tmp_path, bip="10.250.0.1/24")  # the default bridge follows the flags
    assert moved.get("bridge").id == first.id
    assert str(moved.get("bridge").gateway) == "10.250.0.1"
    assert service(tmp_path, bridge="none").list({"name": ["^bridge$"]}) == []


def test_the_default_bridge_stays_while_containers_are_on_it(tmp_path):
    svc = service(tmp_path, bip="10.250.0.1/24")
    layout = Layout(str(tmp_path))
    later = NetworkService(layout, Config(data_root=str(tmp_path), bridge="dyt0",
                                          bip="10.240.0.1/24"), lambda *e: None)
    later.endpoints_of = lambda nid: {"c" * 64: {}} if nid == svc.get("bridge").id else {}
    asyncio.run(later.start())
    assert str(later.get("bridge").gateway) == "10.250.0.1"


# -- create ---------------------------------------------------------------------------------

def test_create_as_dockerd(tmp_path):
    events = []
    svc = service(tmp_path, events=events, bip="10.250.0.1/24")
    n1 = create(svc, Name="n1", CheckDuplicate=True,
                IPAM={"Driver": "default", "Config": [], "Options": {}}, Options={}, Labels={})
    assert n1["Warning"] == ""
    r = svc.inspect("n1")
    assert r["IPAM"] == {"Driver": "default", "Options": {},
                         "Config": [{"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"}]}
    assert list(r) == ["Name", "Id", "Created", "Scope", "Driver", "EnableIPv6", "IPAM",
                       "Internal", "Attachable", "Ingress", "ConfigFrom", "ConfigOnly",
                       "Containers", "Options", "Labels"]
    assert (r["Scope"], r["Driver"], r["Containers"], r["ConfigFrom"]) == \
        ("local", "bridge", {}, {"Network": ""})
    assert svc.get("n1").bridge == "br-" + n1["Id"][:12]
    assert events[-1] == ("network", "create", n1["Id"], {"name": "n1", "type": "bridge"})
    # a subnet without a gateway is shown as given
    create(svc, Name="n2", IPAM={"Config": [{"Subnet": "10.251.0.0/24"}]})
    assert svc.inspect("n2")["IPAM"] == {"Driver": "default", "Options": None,
                                         "Config": [{"Subnet": "10.251.0.0/24"}]}
    assert str(svc.get("n2").gateway) == "10.251.0.1" and svc.get("n2").user_subnets
    # the next pick resumes after the last one
    create(svc, Name="n3")
    assert svc.inspect("n3")["IPAM"]["Config"][0]["Subnet"] == "172.19.0.0/16"


def test_create_errors_as_dockerd(tmp_path):
    svc = service(tmp_path, bip="10.250.0.1/24")
    create(svc, Name="n2", IPAM={"Config": [{"Subnet": "10.251.0.0/24"}]})
    cases = [
        ({"Name": "x", "IPAM": {"Config": [{"Subnet": "10.251.0.128/25"}]}},
         errdefs.Forbidden, "Pool overlaps with other one on this address space"),
        ({"Name": "x", "IPAM": {"Config": [{"Subnet": "10.250.0.0/24"}]}},
         errdefs.Forbidden, "Pool overlaps with other one on this address space"),
        ({"Name": "x", "IPAM": {"Config": [{"Subnet": "10.252.0.0/24",
                                            "Gateway": "10.9.9.1"}]}},
         errdefs.System, "failed to allocate gateway (10.9.9.1): Requested address is out of "
                         "range"),
        ({"Name": "x", "IPAM": {"Config": [{"Subnet": "nope"}]}},
         errdefs.System, "Invalid subnet nope : invalid CIDR address: nope"),
        ({"Name": "n2", "CheckDuplicate": True}, errdefs.Conflict,
         "network with name n2 already exists"),
        ({}, errdefs.System, "invalid name: "),
        ({"Name": "bridge"}, errdefs.Forbidden,
         "operation is not permitted on predefined bridge network "),
        ({"Name": "x", "Driver": "nosuchdriver"}, errdefs.NotFound,
         'plugin "nosuchdriver" not found'),
        ({"Name": "x", "Driver": "host"}, errdefs.Forbidden,
         'only one instance of "host" network is allowed'),
        ({"Name": "x", "EnableIPv6": True}, errdefs.NotFound,
         "could not find an available, non-overlapping IPv6 address pool among the defaults "
         "to assign to the network"),
        ({"Name": "x", "Options": {"com.docker.network.driver.mtu": "big"}}, errdefs.System,
         'failed to parse com.docker.network.driver.mtu value: big (strconv.Atoi: parsing '
         '"big": invalid syntax)'),
    ]
    for body, kind, message in cases:
        with pytest.raises(kind) as e:
            create(svc, **body)
        assert str(e.value) == message, body
    # nothing was left behind by the refusals
    assert sorted(n["Name"] for n in svc.list({})) == ["bridge", "host", "n2", "none"]
    assert len(os.listdir(Layout(str(tmp_path)).networks)) == 4


def test_same_names_are_a_warning_without_check_duplicate(tmp_path):
    svc = service(tmp_path)
    first = create(svc, Name="x")
    second = create(svc, Name="x")
    assert second["Warning"] == f"Network with name x (id : {first['Id']}) already exists"
    with pytest.raises(errdefs.InvalidParameter) as e:
        svc.get("x")
    assert str(e.value) == "network x is ambiguous (2 matches found on name)"
    with pytest.raises(errdefs.InvalidParameter) as e:
        svc.inspect("x")
    assert str(e.value) == "2 matches found based on name: network x is ambiguous"
    with pytest.raises(errdefs.InvalidParameter) as e:
        asyncio.run(svc.remove("x"))
    assert str(e.value) == "network x is ambiguous (2 matches found based on name)"
    assert svc.get(first["Id"]).id == first["Id"]
    assert svc.get(first["Id"][:20]).id == first["Id"]


def test_same_bridge_name_is_refused(tmp_path):
    svc = service(tmp_path)
    a = create(svc, Name="a", Options={"com.docker.network.bridge.name": "dytref0"})
    with pytest.raises(errdefs.Forbidden) as e:
        create(svc, Name="b", Options={"com.docker.network.bridge.name": "dytref0"})
    assert str(e.value).endswith(f"conflicts with network {a['Id']} (dytref0): "
                                 "networks have same bridge name")


def test_ipv6_network(tmp_path):
    svc = service(tmp_path, bip="10.250.0.1/24")
    create(svc, Name="n6", EnableIPv6=True, IPAM={"Config": [{"Subnet": "fd00:dead::/64"}]})
    r = svc.inspect("n6")
    assert r["IPAM"]["Config"] == [{"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"},
                                   {"Subnet": "fd00:dead::/64"}]
    net = svc.get("n6")
    assert (net.ipv6, str(net.gateway6)) == (True, "fd00:dead::1")
    assert str(net.allocate6()) == "fd00:dead::2/64"
    net.release("fd00:dead::2")
    assert str(net.allocate6("fd00:dead::2")) == "fd00:dead::2/64"


def test_addresses_for_the_container_side(tmp_path):
    svc = service(tmp_path)
    create(svc, Name="n", IPAM={"Config": [{"Subnet": "10.253.0.0/24",
                                            "IPRange": "10.253.0.128/25"}]})
    net = svc.get("n")
    assert net.owns("10.253.0.200") and not net.owns("10.253.0.5")
    assert not net.owns("10.99.0.5")
    assert str(net.allocate()) == "10.253.0.129/24"
    net.reserve("10.253.0.130")
    assert str(net.allocate()) == "10.253.0.131/24"
    net.release(ipaddress.ip_address("10.253.0.129"))
    assert str(net.allocate()) == "10.253.0.129/24"
    with pytest.raises(errdefs.Forbidden, match="Address already in use"):
        net.allocate("10.253.0.130")
    assert not svc.get("bridge").user_subnets


# -- crash safety and the kernel side ----------------------------------------------------

def test_the_driver_is_asked_in_order_and_a_failure_leaves_nothing(tmp_path):
    driver = Driver(fail=errdefs.System("no bridge for you"))
    svc = service(tmp_path, driver=driver)
    assert driver.calls == [("restore", "bridge")]
    with pytest.raises(errdefs.System, match="no bridge for you"):
        create(svc, Name="n1")
    assert [n["Name"] for n in svc.list({"name": ["n1"]})] == []
    assert len(os.listdir(Layout(str(tmp_path)).networks)) == 3
    driver.fail = None
    created = create(svc, Name="n1")
    asyncio.run(svc.remove("n1"))
    assert driver.calls[-2:] == [("create", "n1"), ("delete", "n1")]
    assert created["Id"] not in os.listdir(Layout(str(tmp_path)).networks)


def test_a_pending_record_is_undone_at_start(tmp_path):
    svc = service(tmp_path)
    created = create(svc, Name="half")
    path = svc.records.path(created["Id"])
    with open(path) as f:
        record = json.load(f)
    record["Pending"] = True  # as if the daemon died while the driver worked
    with open(path, "w") as f:
        json.dump(record, f)
    driver = Driver()
    again = service(tmp_path, driver=driver)
    assert ("delete", "half") in driver.calls
    assert ("restore", "half") not in driver.calls
    assert not os.path.exists(path)
    with pytest.raises(errdefs.NotFound, match="network half not found"):
        again.get("half")


def test_records_survive_a_restart(tmp_path):
    svc = service(tmp_path)
    created = create(svc, Name="keep", Labels={"a": "b"}, Internal=True,
                     IPAM={"Config": [{"Subnet": "10.231.0.0/24", "Gateway": "10.231.0.254",
                                       "AuxiliaryAddresses": {"r": "10.231.0.2"}}]})
    before = svc.inspect("keep")
    driver = Driver()
    again = service(tmp_path, driver=driver)
    assert again.inspect(created["Id"]) == before
    assert ("restore", "keep") in driver.calls
    assert str(again.get("keep").allocate()) == "10.231.0.1/24"
    assert str(again.get("keep").allocate()) == "10.231.0.3/24"  # .2 is an aux address


# -- remove, prune, inspect's Containers ---------------------------------------------------

def test_remove_refuses_predefined_and_busy_networks(tmp_path):
    events = []
    svc = service(tmp_path, events=events)
    n = create(svc, Name="busy")
    svc.endpoints_of = lambda nid: {"c" * 64: {"Name": "c1", "EndpointID": "e" * 64,
                                               "MacAddress": "02:42:ac:12:00:02",
                                               "IPv4Address": "172.18.0.2/16",
                                               "IPv6Address": ""}} if nid == n["Id"] else {}
    for name in ("bridge", "host", "none"):
        with pytest.raises(errdefs.Forbidden) as e:
            asyncio.run(svc.remove(name))
        assert str(e.value) == f"{name} is a pre-defined network and cannot be removed"
    with pytest.raises(errdefs.Forbidden) as e:
        asyncio.run(svc.remove("busy"))
    assert str(e.value) == (f"error while removing network: network busy id {n['Id']} "
                            "has active endpoints")
    assert svc.inspect("busy")["Containers"]["c" * 64]["Name"] == "c1"
    assert svc.list({"name": ["busy"]})[0]["Containers"] == {}  # as dockerd's list
    with pytest.raises(errdefs.NotFound, match="^network nosuch not found$"):
        asyncio.run(svc.remove("nosuch"))


def test_prune(tmp_path):
    events = []
    svc = service(tmp_path, events=events)
    create(svc, Name="a", Labels={"keep": "1"})
    create(svc, Name="b")
    busy = create(svc, Name="c")
    svc.endpoints_of = lambda nid: {"x": {}} if nid == busy["Id"] else {}
    with pytest.raises(errdefs.InvalidParameter, match="Invalid filter 'name'"):
        asyncio.run(svc.prune({"name": ["a"]}))
    assert asyncio.run(svc.prune({"label!": ["keep"]})) == {"NetworksDeleted": ["b"]}
    assert asyncio.run(svc.prune({"until": ["1h"]})) == {"NetworksDeleted": None}
    assert asyncio.run(svc.prune({})) == {"NetworksDeleted": ["a"]}
    assert events[-1] == ("network", "prune", "", {"reclaimed": "0"})
    assert sorted(n["Name"] for n in svc.list({})) == ["bridge", "c", "host", "none"]


def test_list_filters(tmp_path):
    svc = service(tmp_path)
    a = create(svc, Name="web-a", Labels={"tier": "front"})
    create(svc, Name="web-b")
    names = lambda f: sorted(n["Name"] for n in svc.list(f))  # noqa: E731
    assert names({"driver": ["bridge"]}) == ["bridge", "web-a", "web-b"]
    assert names({"name": ["web"]}) == ["web-a", "web-b"]  # a regular expression
    assert names({"name": ["^web-a$"]}) == ["web-a"]
    assert names({"id": [a["Id"][:6]]}) == ["web-a"]
    assert names({"label": ["tier=front"]}) == ["web-a"]
    assert names({"label": ["tier=back"]}) == []
    assert names({"type": ["builtin"]}) == ["bridge", "host", "none"]
    assert names({"type": ["custom"]}) == ["web-a", "web-b"]
    assert names({"dangling": ["true"]}) == ["web-a", "web-b"]
    assert names({"dangling": ["0"]}) == ["bridge", "host", "none"]
    assert names({"scope": ["swarm"]}) == []
    for f, kind, message in [
        ({"nope": ["x"]}, errdefs.InvalidParameter, "Invalid filter 'nope'"),
        ({"type": ["odd"]}, errdefs.System, "invalid filter: 'type'='odd'"),
        ({"dangling": ["maybe"]}, errdefs.InvalidParameter,
         "invalid value for filter 'dangling', must be \"true\" (or \"1\"), or \"false\" "
         "(or \"0\")"),
        ({"dangling": ["1", "0"]}, errdefs.InvalidParameter,
         'got more than one value for filter key "dangling"'),
    ]:
        with pytest.raises(kind) as e:
            svc.list(f)
        assert str(e.value) == message
    assert filter_networks([], {"name": ["("]}, lambda n: False) == []


def test_inspect_scope_and_not_found(tmp_path):
    svc = service(tmp_path)
    assert svc.inspect("bridge", scope="local")["Name"] == "bridge"
    with pytest.raises(errdefs.NotFound, match="network bridge not found"):
        svc.inspect("bridge", scope="swarm")


def test_connect_waits_for_the_container_side(tmp_path):
    svc = service(tmp_path)
    with pytest.raises(errdefs.NotImplemented):
        asyncio.run(svc.connect("bridge", "c1", {}))
    seen = []

    class Attacher:
        async def connect(self, net, container, config):
            seen.append(("connect", net.name, container, config))

        async def disconnect(self, net, container, force):
            seen.append(("disconnect", net.name, container, force))

    svc.attacher = Attacher()
    asyncio.run(svc.connect("bridge", "c1", {"Aliases": ["a"]}))
    asyncio.run(svc.disconnect("bridge", "c1", True))
    assert seen == [("connect", "bridge", "c1", {"Aliases": ["a"]}),
                    ("disconnect", "bridge", "c1", True)]
    with pytest.raises(errdefs.NotFound, match="network nosuch not found"):
        asyncio.run(svc.disconnect("nosuch", "c1"))
