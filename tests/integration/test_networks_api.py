"""Network objects through our CLI, the docker CLI and docker-py, compared with
what dockerd 20.10 answered to the same requests.

Every network a test makes has a subnet in 10.2xx.0.0/16 of its own, and the
`cleanup` fixture removes whatever a test made, even when it fails. Containers
on networks are tested elsewhere (test_container_networks.py).
"""

from __future__ import annotations

import json
import time

import pytest

from harness import assert_same, both, wait_for


@pytest.fixture
def dy(module_daemon):
    return module_daemon


@pytest.fixture
def cleanup(dy):
    """Remove every network the test made (it may have failed half-way)."""
    before = {n["Id"] for n in dy.api().get("/networks")}
    yield
    for n in dy.api().get("/networks"):
        if n["Id"] not in before:
            dy.api().request("DELETE", f"/networks/{n['Id']}").read()


def test_predefined_networks(dy):
    ls = dy.docker("network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}", check=True)
    assert ls.stdout == "bridge bridge local\nhost host local\nnone null local\n"
    bridge, host, none = json.loads(dy.docker("network", "inspect", "bridge", "host", "none",
                                              check=True).stdout)
    with open("/work/shared/reference/engine-api-1.41/networks-list.json") as f:
        reference = {n["Name"]: n for n in json.load(f)}
    for ours in (bridge, host, none):
        assert list(ours) == list(reference[ours["Name"]]), "keys and their order"
    assert host["IPAM"] == none["IPAM"] == {"Driver": "default", "Options": None, "Config": []}
    subnet = dy.bip.rsplit(".", 1)[0] + ".0/24"
    assert bridge["IPAM"] == {"Driver": "default", "Options": None, "Config": [
        {"Subnet": subnet, "Gateway": dy.bip.split("/")[0]}]}
    assert bridge["Options"] == {
        "com.docker.network.bridge.default_bridge": "true",
        "com.docker.network.bridge.enable_icc": "true",
        "com.docker.network.bridge.enable_ip_masquerade": "true",
        "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
        "com.docker.network.bridge.name": dy.bridge,
        "com.docker.network.driver.mtu": "1500"}
    for name in ("bridge", "host", "none"):
        ours, theirs = both(dy, "network", "rm", name)
        assert_same(ours, theirs, 1, "", f"Error response from daemon: {name} is a pre-defined "
                                         "network and cannot be removed\nexit status 1\n")


def test_create_inspect_ls_rm(dy, cleanup):
    created = dy.run_cli("network", "create", "--subnet", "10.210.0.0/24", "--label", "a=b",
                         "--internal", "dytn-a", check=True).stdout.strip()
    assert len(created) == 64
    dy.docker("network", "create", "--subnet", "10.210.1.0/24", "--gateway", "10.210.1.254",
              "--ip-range", "10.210.1.128/25", "--aux-address", "r=10.210.1.2", "--attachable",
              "-o", "com.docker.network.bridge.name=dytnb0", "dytn-b", check=True)
    ours, theirs = both(dy, "network", "inspect", "dytn-a", "dytn-b")
    assert_same(ours, theirs, 0)
    a, b = json.loads(ours.stdout)
    with open("/work/shared/reference/engine-api-1.41/network-inspect.json") as f:
        assert list(a) == list(json.load(f))
    assert (a["Id"], a["Internal"], a["Labels"], a["Containers"]) == \
        (created, True, {"a": "b"}, {})
    assert a["IPAM"] == {"Driver": "default", "Options": {},
                         "Config": [{"Subnet": "10.210.0.0/24"}]}
    assert b["IPAM"]["Config"] == [{"Subnet": "10.210.1.0/24", "IPRange": "10.210.1.128/25",
                                    "Gateway": "10.210.1.254",
                                    "AuxiliaryAddresses": {"r": "10.210.1.2"}}]
    assert (b["Attachable"], b["Options"]) == \
        (True, {"com.docker.network.bridge.name": "dytnb0"})
    for args in (("network", "ls"), ("network", "ls", "--no-trunc"), ("network", "ls", "-q"),
                 ("network", "ls", "--format", "{{json .}}"),
                 ("network", "ls", "-f", "type=custom"), ("network", "ls", "-f", "label=a"),
                 ("network", "ls", "--filter", "driver=null"),
                 ("network", "ls", "--format", "table {{.Name}}\t{{.Internal}}\t{{.Labels}}"),
                 ("network", "inspect", "-f", "{{json .IPAM}}", created[:12]),
                 ("network", "inspect", "-v", "dytn-a")):
        assert_same(*both(dy, *args), 0)
    custom = dy.run_cli("network", "ls", "-f", "type=custom", check=True).stdout
    assert custom == ("NETWORK ID     NAME      DRIVER    SCOPE\n"
                      f"{created[:12]}   dytn-a    bridge    local\n"
                      f"{b['Id'][:12]}   dytn-b    bridge    local\n")
    ours = dy.run_cli("network", "rm", "dytn-a", "nosuch", b["Id"][:12])
    assert (ours.returncode, ours.stdout, ours.stderr) == (
        1, f"dytn-a\n{b['Id'][:12]}\n",
        "Error response from daemon: network nosuch not found\nexit status 1\n")
    assert_same(*both(dy, "network", "rm", "-f", "nosuch"), 0, "", "")


def test_create_errors_as_dockerd(dy, cleanup):
    dy.docker("network", "create", "--subnet", "10.211.0.0/24", "dytn-e", check=True)
    cases = [
        (("--subnet", "10.211.0.128/25", "dytn-x"), 1,
         "Error response from daemon: Pool overlaps with other one on this address space\n"),
        (("--subnet", "10.212.0.0/24", "--gateway", "10.9.9.1", "dytn-x"), 1,
         "no matching subnet for gateway 10.9.9.1\n"),
        (("--subnet", "10.212.0.0/24", "--ip-range", "10.213.0.0/25", "dytn-x"), 1,
         "no matching subnet for range 10.213.0.0/25\n"),
        (("--subnet", "10.211.0.0/24", "dytn-e"), 1,
         "Error response from daemon: network with name dytn-e already exists\n"),
        (("-d", "nosuchdriver", "dytn-x"), 1,
         'Error response from daemon: plugin "nosuchdriver" not found\n'),
        # (the daemon's message ends in a space; docker's client trims it)
        (("bridge",), 1, "Error response from daemon: operation is not permitted on "
                         "predefined bridge network\n"),
        (("-x",), 125, "unknown shorthand flag: 'x' in -x\n\nUsage:  {} network create "
                       "[OPTIONS] NETWORK\n\nRun '{} network create --help' for more "
                       "information\n"),
    ]
    for args, status, stderr in cases:
        ours, theirs = both(dy, "network", "create", *args)
        assert (ours.returncode, ours.stdout) == (status, "")
        assert ours.stderr == stderr.format("dockyard", "dockyard"), args
        assert theirs.stderr == stderr.format("docker", "docker"), args
    # names are not checked: these are all fine
    for name, subnet in (("dytn bad name", "10.214.0.0/24"), ("dytn/a", "10.214.1.0/24"),
                         ("-dytn", "10.214.2.0/24")):
        dy.run_cli("network", "create", "--subnet", subnet, "--", name, check=True)
    names = dy.docker("network", "ls", "--format", "{{.Name}}", check=True).stdout.split("\n")
    assert {"dytn bad name", "dytn/a", "-dytn"} <= set(names)
    got = json.loads(dy.docker("network", "inspect", "dytn/a", "--", "-dytn",
                               check=True).stdout)
    assert [n["Name"] for n in got] == ["dytn/a", "-dytn"]


def test_raw_api_answers(dy, cleanup):
    from dockyard.client.api import APIError
    api = dy.api()

    def status_of(method, path, body=None):
        try:
            reply = api.request(method, path, body=body)
            return reply.status, json.loads(reply.read() or b"null")
        except APIError as e:
            return e.status, e.message

    first = api.post("/v1.41/networks/create", body={"Name": "dytn-x", "IPAM": {
        "Config": [{"Subnet": "10.215.0.0/24", "IPRange": "10.216.0.0/25"}]}})
    assert first["Warning"] == ""
    x = api.get("/networks/dytn-x")
    assert x["IPAM"] == {"Driver": "default", "Options": None, "Config": [
        {"Subnet": "10.215.0.0/24", "IPRange": "10.216.0.0/25"}]}
    status, second = status_of("POST", "/v1.41/networks/create", {
        "Name": "dytn-x", "IPAM": {"Config": [{"Subnet": "10.215.1.0/24"}]}})
    assert (status, second["Warning"]) == (
        201, f"Network with name dytn-x (id : {first['Id']}) already exists")
    assert status_of("POST", "/networks/create", {"Name": "dytn-x", "CheckDuplicate": True}) \
        == (409, "network with name dytn-x already exists")
    assert status_of("POST", "/networks/create", {}) == (500, "invalid name: ")
    assert status_of("POST", "/networks/create", {"Name": "dytn-g", "IPAM": {"Config": [
        {"Subnet": "10.217.0.0/24", "Gateway": "10.9.9.1"}]}}) == (
        500, "failed to allocate gateway (10.9.9.1): Requested address is out of range")
    assert status_of("POST", "/networks/create", {"Name": "dytn-o", "IPAM": {"Config": [
        {"Subnet": "10.215.0.128/25"}]}}) == (
        403, "Pool overlaps with other one on this address space")
    assert status_of("POST", "/networks/create", {"Name": "host"}) == (
        403, "operation is not permitted on predefined host network ")
    assert status_of("GET", "/networks/dytn-x") == (
        400, "2 matches found based on name: network dytn-x is ambiguous")
    assert status_of("DELETE", "/networks/dytn-x") == (
        400, "network dytn-x is ambiguous (2 matches found based on name)")
    assert status_of("DELETE", "/networks/nosuchnet") == (404, "network nosuchnet not found")
    assert status_of("DELETE", "/networks/bridge") == (
        403, "bridge is a pre-defined network and cannot be removed")
    assert status_of("GET", "/networks/bridge?verbose=maybe") == (
        400, 'invalid value for verbose: maybe: strconv.ParseBool: parsing "maybe": '
             'invalid syntax')
    assert status_of("GET", "/networks?filters=" + json.dumps({"nope": ["x"]})) == (
        400, "Invalid filter 'nope'")
    listed = api.get("/networks", query={"filters": json.dumps({"name": {"dytn-x": True}})})
    assert sorted(n["Id"] for n in listed) == sorted([first["Id"], second["Id"]])
    assert api.request("DELETE", f"/networks/{second['Id']}").status == 204


def test_prune(dy, cleanup):
    dy.run_cli("network", "create", "--subnet", "10.218.0.0/24", "--label", "keep=1",
               "dytn-p1", check=True)
    dy.run_cli("network", "create", "--subnet", "10.218.1.0/24", "dytn-p2", check=True)
    warning = ("WARNING! This will remove all custom networks not used by at least one "
               "container.\nAre you sure you want to continue? [y/N] ")
    ours, theirs = both(dy, "network", "prune", input="n\n")
    assert_same(ours, theirs, 0, warning, "")
    ours = dy.run_cli("network", "prune", "-f", "--filter", "label!=keep", check=True)
    assert ours.stdout == "Deleted Networks:\ndytn-p2\n\n"
    theirs = dy.docker("network", "prune", "--filter", "label=keep", input="y\n", check=True)
    assert theirs.stdout == warning + "Deleted Networks:\ndytn-p1\n\n"
    assert_same(*both(dy, "network", "prune", "-f"), 0, "", "")


def test_docker_py(dy, cleanup):
    import docker
    from docker.types import IPAMConfig, IPAMPool
    client = dy.client()
    net = client.networks.create("dytn-py", ipam=IPAMConfig(
        pool_configs=[IPAMPool(subnet="10.219.0.0/24")]), labels={"k": "v"})
    assert net.attrs["IPAM"] == {"Driver": "default", "Options": None,
                                 "Config": [{"Subnet": "10.219.0.0/24"}]}
    assert [n.id for n in client.networks.list(names=["dytn-py"])] == [net.id]
    assert client.networks.get(net.id[:12]).name == "dytn-py"
    assert {n.name for n in client.networks.list()} >= {"bridge", "host", "none", "dytn-py"}
    with pytest.raises(docker.errors.APIError) as e:
        client.networks.create("dytn-py", check_duplicate=True)
    assert e.value.status_code == 409
    with pytest.raises(docker.errors.NotFound):
        client.networks.get("nosuchnet")
    net.reload()
    assert net.containers == []
    net.remove()
    with pytest.raises(docker.errors.NotFound):
        client.networks.get(net.id)


def test_events(dy, cleanup):
    start = time.time_ns()
    since = str(int(time.time()) - 1)
    created = dy.run_cli("network", "create", "--subnet", "10.220.0.0/24", "dytn-ev",
                         check=True).stdout.strip()
    dy.run_cli("network", "rm", "dytn-ev", check=True)
    dy.run_cli("network", "prune", "-f", check=True)

    def events():
        out = dy.docker("events", "--since", since, "--until", str(int(time.time()) + 1),
                        "--filter", "type=network", "--format", "{{json .}}", check=True)
        return [json.loads(line) for line in out.stdout.splitlines()]

    got = wait_for(lambda: [e for e in events() if e["timeNano"] >= start] or None,
                   what="network events")
    assert [(e["Action"], e["Actor"]["Attributes"]) for e in got] == [
        ("create", {"name": "dytn-ev", "type": "bridge"}),
        ("destroy", {"name": "dytn-ev", "type": "bridge"}),
        ("prune", {"reclaimed": "0"})]
    assert [e["Actor"]["ID"] for e in got] == [created, created, ""]
    assert all(set(e) == {"Type", "Action", "Actor", "scope", "time", "timeNano"} for e in got)


def test_networks_survive_a_restart_and_the_default_bridge_follows_the_flags(daemon):
    created = daemon.run_cli("network", "create", "--subnet", "10.221.0.0/24", "dytn-r",
                             check=True).stdout.strip()
    try:
        before = json.loads(daemon.docker("network", "inspect", "bridge", "host", "none",
                                          "dytn-r", check=True).stdout)
        daemon.stop()
        daemon.start()
        after = json.loads(daemon.docker("network", "inspect", "bridge", "host", "none",
                                         "dytn-r", check=True).stdout)
        assert after == before
        daemon.stop()
        daemon.start("--bip", "10.222.0.1/24")
        bridge = json.loads(daemon.docker("network", "inspect", "bridge", check=True).stdout)[0]
        assert bridge["Id"] == before[0]["Id"]
        assert bridge["IPAM"]["Config"] == [{"Subnet": "10.222.0.0/24", "Gateway": "10.222.0.1"}]
    finally:
        daemon.run_cli("network", "rm", created)
