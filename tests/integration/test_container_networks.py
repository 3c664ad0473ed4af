"""Containers on networks, driven by the docker CLI: addresses, names, isolation,
published ports, connect/disconnect, and what is left once they are gone.

Traffic goes only to the containers of these tests, to the bridges the test
daemon made, or to 127.0.0.1. The daemon runs with --dns 127.0.0.77, so a name
the embedded DNS does not know is asked of nothing but the host's loopback.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import urllib.request

import pytest

from harness import wait_for

IMAGE = "busybox:local"


@pytest.fixture
def dk(module_daemon):
    """The docker CLI on the module's daemon; everything made through it is removed after."""
    made = {"containers": [], "networks": []}

    class Docker:
        d = module_daemon
        made_containers = made["containers"]

        def __call__(self, *args: str, check: bool = True, input=None) -> str:
            r = module_daemon.docker(*args, check=check, input=input)
            return r.stdout.strip() if check else r

        def run(self, *args: str) -> str:
            cid = self("run", "-d", *args)
            made["containers"].append(cid)
            return cid

        def network(self, name: str, *args: str) -> str:
            nid = self("network", "create", *args, name)
            made["networks"].append(nid)
            return nid

        def inspect(self, ref: str) -> dict:
            return json.loads(self("inspect", ref))[0]

    yield Docker()
    if made["containers"]:
        module_daemon.docker("rm", "-f", *made["containers"])
    for nid in made["networks"]:
        module_daemon.docker("network", "rm", nid)


def ns_links(pid: int) -> str:
    return subprocess.run(["nsenter", "-t", str(pid), "-n", "ip", "-br", "addr"],
                          capture_output=True, text=True, check=True).stdout


def pid_of(dk, ref: str) -> int:
    return dk.inspect(ref)["State"]["Pid"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str) -> str:
    def answer():
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read().decode()
        except OSError:
            return None
    return wait_for(answer, timeout=10, what=f"an answer from {url}")


WEB = ["sh", "-c", "busybox mkdir -p /www && echo hello-$HOSTNAME > /www/index.html && "
       "exec busybox httpd -f -p 80 -h /www"]


def test_default_bridge_gives_an_address_routes_and_etc_files(dk):
    cid = dk.run(IMAGE, "sleep", "300")
    ns = dk.inspect(cid)["NetworkSettings"]
    bridge = ns["Networks"]["bridge"]
    subnet = ipaddress.ip_network(dk.d.bip, strict=False)
    assert ipaddress.ip_address(bridge["IPAddress"]) in subnet
    assert bridge["Gateway"] == dk.d.bip.split("/")[0]
    assert ns["IPAddress"] == bridge["IPAddress"] and ns["MacAddress"] == bridge["MacAddress"]
    assert bridge["MacAddress"] == "02:42:" + ":".join(
        f"{int(b):02x}" for b in bridge["IPAddress"].split("."))
    assert ns["SandboxKey"].endswith(cid) and os.path.exists(ns["SandboxKey"])
    links = ns_links(pid_of(dk, cid))
    assert f"{bridge['IPAddress']}/24" in links and "lo" in links
    route = dk("exec", cid, "ip", "route")
    assert f"default via {bridge['Gateway']} dev eth0" in route
    hosts = dk("exec", cid, "cat", "/etc/hosts")
    assert f"{bridge['IPAddress']}\t{cid[:12]}" in hosts
    # the default bridge has no embedded DNS: the daemon's --dns is used
    assert dk("exec", cid, "cat", "/etc/resolv.conf").splitlines()[0] == "nameserver 127.0.0.77"
    # the container reaches the gateway (the daemon's bridge) ...
    dk("exec", cid, "busybox", "ping", "-c1", "-W2", bridge["Gateway"])
    # ... and the host reaches the container
    dk.d  # (traffic to our own bridge's container)
    subprocess.run(["busybox", "ping", "-c1", "-W2", bridge["IPAddress"]], check=True,
                   capture_output=True)


def test_names_resolve_on_a_user_network_and_only_there(dk):
    dk.network("dyt-na", "--subnet", "10.231.1.0/24")
    dk.network("dyt-nb", "--subnet", "10.231.2.0/24")
    web = dk.run("--name", "dyt-web", "--network", "dyt-na", "--network-alias", "site",
                 IMAGE, "sleep", "300")
    client = dk.run("--name", "dyt-client", "--network", "dyt-na", IMAGE, "sleep", "300")
    other = dk.run("--name", "dyt-other", "--network", "dyt-nb", IMAGE, "sleep", "300")
    web_ip = dk.inspect(web)["NetworkSettings"]["Networks"]["dyt-na"]["IPAddress"]
    assert web_ip.startswith("10.231.1.")
    assert dk("exec", client, "cat", "/etc/resolv.conf").startswith("nameserver 127.0.0.11")
    for name in ("dyt-web", "site", web[:12], "DYT-WEB", "dyt-web.dyt-na"):
        out = dk("exec", client, "busybox", "nslookup", name)
        assert web_ip in out, (name, out)
    dk("exec", client, "busybox", "ping", "-c1", "-W2", "dyt-web")
    # from another network: no name, no route
    r = dk("exec", other, "busybox", "nslookup", "dyt-web", check=False)
    assert r.returncode != 0 and web_ip not in r.stdout
    r = dk("exec", other, "busybox", "ping", "-c1", "-W1", web_ip, check=False)
    assert r.returncode != 0
    # the default bridge resolves no names
    plain = dk.run(IMAGE, "sleep", "300")
    r = dk("exec", plain, "busybox", "nslookup", "dyt-web", check=False)
    assert r.returncode != 0


def test_published_port_reaches_the_container_from_loopback_and_the_bridge(dk):
    port = free_port()
    cid = dk.run("-p", f"127.0.0.1:{port}:80", IMAGE, *WEB)
    assert http_get(f"http://127.0.0.1:{port}/") == f"hello-{cid[:12]}\n"
    ports = dk.inspect(cid)["NetworkSettings"]["Ports"]
    assert ports == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    assert dk("port", cid) == f"80/tcp -> 127.0.0.1:{port}"
    assert f"127.0.0.1:{port}->80/tcp" in dk("ps", "--format", "{{.Ports}}", "-f", f"id={cid}")
    # on all addresses: reached through the packet rules at the bridge's address
    port2 = free_port()
    cid2 = dk.run("-p", f"{port2}:80", IMAGE, *WEB)
    gateway = dk.d.bip.split("/")[0]
    assert http_get(f"http://{gateway}:{port2}/") == f"hello-{cid2[:12]}\n"
    assert http_get(f"http://127.0.0.1:{port2}/") == f"hello-{cid2[:12]}\n"


def test_publish_all_picks_free_ports_for_exposed_ones(dk):
    cid = dk.run("-P", "--expose", "80", "--expose", "81/udp", IMAGE, *WEB)
    ports = dk.inspect(cid)["NetworkSettings"]["Ports"]
    assert set(ports) == {"80/tcp", "81/udp"}
    host_port = int(ports["80/tcp"][0]["HostPort"])
    assert host_port > 1024
    assert http_get(f"http://127.0.0.1:{host_port}/") == f"hello-{cid[:12]}\n"


def test_a_host_port_in_use_fails_the_start_and_leaves_nothing(dk):
    port = free_port()
    dk.run("-p", f"127.0.0.1:{port}:80", IMAGE, *WEB)
    netns_dir = os.path.join(dk.d.exec_root, "netns")
    before = set(os.listdir(netns_dir)), veths_of(dk.d)
    r = dk("run", "-d", "--name", "dyt-second", "-p", f"127.0.0.1:{port}:80", IMAGE, *WEB,
           check=False)
    try:
        assert r.returncode == 125
        assert "address already in use" in r.stderr or "port is already allocated" in r.stderr
        # (nothing new; links of containers removed earlier may still be going)
        assert set(os.listdir(netns_dir)) == before[0] and veths_of(dk.d) <= before[1]
        state = dk.inspect("dyt-second")["State"]
        assert not state["Running"]
    finally:
        dk("rm", "-f", "dyt-second", check=False)


def veths_of(d) -> set[str]:
    """Host ends of veth pairs on this daemon's default bridge or on no bridge
    (those of a removed network): others belong to other daemons."""
    out = subprocess.run(["ip", "-o", "link", "show", "type", "veth"], capture_output=True,
                         text=True).stdout
    found = set()
    for line in out.splitlines():
        words = line.split()
        master = words[words.index("master") + 1] if "master" in words else None
        if master in (None, d.bridge):
            found.add(words[1].rstrip(":").split("@")[0])
    return found



def test_connect_and_disconnect_a_running_container(dk):
    dk.network("dyt-nc", "--subnet", "10.231.3.0/24")
    cid = dk.run(IMAGE, "sleep", "300")
    dk("network", "connect", "--alias", "extra", "--ip", "10.231.3.77", "dyt-nc", cid)
    ns = dk.inspect(cid)["NetworkSettings"]["Networks"]
    assert ns["dyt-nc"]["IPAddress"] == "10.231.3.77"
    assert set(ns) == {"bridge", "dyt-nc"}
    assert "10.231.3.77/24" in ns_links(pid_of(dk, cid))
    assert "10.231.3.77" in dk("exec", cid, "cat", "/etc/hosts")
    r = dk("network", "connect", "dyt-nc", cid, check=False)
    assert f"endpoint with name {dk.inspect(cid)['Name'][1:]} already exists in network dyt-nc" \
        in r.stderr
    inspect = json.loads(dk("network", "inspect", "dyt-nc"))[0]
    assert inspect["Containers"][cid]["IPv4Address"] == "10.231.3.77/24"
    r = dk("network", "rm", "dyt-nc", check=False)
    assert "has active endpoints" in r.stderr
    dk("network", "disconnect", "dyt-nc", cid)
    assert "10.231.3.77" not in ns_links(pid_of(dk, cid))
    assert "10.231.3.77" not in dk("exec", cid, "cat", "/etc/hosts")
    # the address is free again
    other = dk.run("--network", "dyt-nc", "--ip", "10.231.3.77", IMAGE, "sleep", "300")
    assert dk.inspect(other)["NetworkSettings"]["Networks"]["dyt-nc"]["IPAddress"] == \
        "10.231.3.77"


def test_a_taken_ip_is_refused(dk):
    dk.network("dyt-nip", "--subnet", "10.231.4.0/24")
    dk.run("--network", "dyt-nip", "--ip", "10.231.4.9", IMAGE, "sleep", "300")
    r = dk("run", "-d", "--name", "dyt-taken", "--network", "dyt-nip", "--ip", "10.231.4.9",
           IMAGE, "sleep", "300", check=False)
    try:
        assert r.returncode == 125 and "Address already in use" in r.stderr
    finally:
        dk("rm", "-f", "dyt-taken", check=False)
    r = dk("run", "--rm", "--ip", "10.231.4.10", IMAGE, "true", check=False)
    assert "user specified IP address is supported on user defined networks only" in r.stderr


def test_none_host_and_container_modes(dk):
    none = dk.run("--network", "none", IMAGE, "sleep", "300")
    assert [line.split()[0] for line in ns_links(pid_of(dk, none)).splitlines()] == ["lo"]
    host = dk.run("--network", "host", IMAGE, "sleep", "300")
    assert os.readlink(f"/proc/{pid_of(dk, host)}/ns/net") == os.readlink("/proc/self/ns/net")
    web = dk.run(IMAGE, "sleep", "300")
    joined = dk.run("--network", f"container:{web}", IMAGE, "sleep", "300")
    assert os.readlink(f"/proc/{pid_of(dk, joined)}/ns/net") == \
        os.readlink(f"/proc/{pid_of(dk, web)}/ns/net")


def test_extra_hosts_and_dns_options(dk):
    cid = dk.run("--add-host", "foo:10.9.8.7", "--add-host", "gw:host-gateway",
                 "--dns", "127.0.0.99", "--dns-search", "example.com",
                 "--dns-option", "ndots:2", "--hostname", "myhost", IMAGE, "sleep", "300")
    hosts = dk("exec", cid, "cat", "/etc/hosts")
    assert "10.9.8.7\tfoo" in hosts
    assert f"{dk.d.bip.split('/')[0]}\tgw" in hosts
    assert "\tmyhost" in hosts
    assert dk("exec", cid, "cat", "/etc/resolv.conf").splitlines() == [
        "nameserver 127.0.0.99", "search example.com", "options ndots:2"]


def test_docker_py_networks_and_container_attributes(dk):
    client = dk.d.client()
    import docker
    net = client.networks.create("dyt-py", driver="bridge", ipam=docker.types.IPAMConfig(
        pool_configs=[docker.types.IPAMPool(subnet="10.231.5.0/24")]))
    try:
        c = client.containers.run(IMAGE, "sleep 300", detach=True, network="dyt-py")
        try:
            c.reload()
            ip = c.attrs["NetworkSettings"]["Networks"]["dyt-py"]["IPAddress"]
            assert ip.startswith("10.231.5.")
            net.reload()
            assert [x.id for x in net.containers] == [c.id]
            net.disconnect(c)
            net.reload()
            assert net.containers == []
        finally:
            c.remove(force=True)
    finally:
        net.remove()


def test_internal_network_has_no_way_out_but_its_members_meet(dk):
    dk.network("dyt-ni", "--internal", "--subnet", "10.231.6.0/24")
    a = dk.run("--name", "dyt-ia", "--network", "dyt-ni", IMAGE, "sleep", "300")
    b = dk.run("--network", "dyt-ni", IMAGE, "sleep", "300")
    assert "default" not in dk("exec", a, "ip", "route")
    dk("exec", b, "busybox", "ping", "-c1", "-W2", "dyt-ia")
    # the packet filter drops what leaves the subnet
    rules = subprocess.run(["iptables-save", "-t", "filter"], capture_output=True,
                           text=True).stdout
    bridge = "br-" + json.loads(dk("network", "inspect", "dyt-ni"))[0]["Id"][:12]
    assert f"! -d 10.231.6.0/24 -i {bridge} -j DROP" in rules


def test_ipv6_user_network(dk):
    dk.network("dyt-n6", "--ipv6", "--subnet", "fd00:dd:1::/64", "--subnet", "10.231.7.0/24")
    a = dk.run("--name", "dyt-six", "--network", "dyt-n6", IMAGE, "sleep", "300")
    b = dk.run("--network", "dyt-n6", IMAGE, "sleep", "300")
    ep = dk.inspect(a)["NetworkSettings"]["Networks"]["dyt-n6"]
    assert ep["GlobalIPv6Address"].startswith("fd00:dd:1::") and ep["GlobalIPv6PrefixLen"] == 64
    assert ep["IPv6Gateway"] == "fd00:dd:1::1"
    out = dk("exec", b, "busybox", "nslookup", "-type=AAAA", "dyt-six")
    assert ep["GlobalIPv6Address"] in out
    dk("exec", b, "busybox", "ping", "-6", "-c1", "-W2", ep["GlobalIPv6Address"])


def test_rename_and_mac_address_and_events(dk):
    dk.network("dyt-nr", "--subnet", "10.231.8.0/24")
    since = dk("version", "-f", "{{.Server.Os}}") and str(int(__import__("time").time()) - 1)
    # (docker's CLI 28 sends a MAC per network, which API 1.41 does not have: the
    # container's MacAddress is what a 1.41 client sends)
    api = dk.d.api()
    a = api.post("/containers/create?name=dyt-before", body={
        "Image": IMAGE, "Cmd": ["sleep", "300"], "MacAddress": "02:42:de:ad:be:ef",
        "HostConfig": {"NetworkMode": "dyt-nr"}})["Id"]
    dk.made_containers.append(a)
    api.post(f"/containers/{a}/start")
    b = dk.run("--network", "dyt-nr", IMAGE, "sleep", "300")
    assert dk.inspect(a)["NetworkSettings"]["Networks"]["dyt-nr"]["MacAddress"] == \
        "02:42:de:ad:be:ef"
    assert "02:42:de:ad:be:ef" in dk("exec", a, "cat", "/sys/class/net/eth0/address")
    dk("rename", "dyt-before", "dyt-after")
    out = dk("exec", b, "busybox", "nslookup", "dyt-after")
    assert dk.inspect(a)["NetworkSettings"]["Networks"]["dyt-nr"]["IPAddress"] in out
    until = str(int(__import__("time").time()) + 1)
    events = [json.loads(line) for line in dk(
        "events", "--since", since, "--until", until, "--filter", "type=network",
        "--format", "{{json .}}").splitlines()]
    connects = [e for e in events if e["Action"] == "connect"
                and e["Actor"]["Attributes"]["container"] == a]
    assert connects and connects[0]["Actor"]["Attributes"]["name"] == "dyt-nr"
    assert connects[0]["Actor"]["Attributes"]["type"] == "bridge"


def test_connect_a_stopped_container_takes_effect_at_start(dk):
    dk.network("dyt-nst", "--subnet", "10.231.10.0/24")
    cid = dk("create", IMAGE, "sleep", "300")
    dk.made_containers.append(cid)
    dk("network", "connect", "--alias", "later", "dyt-nst", cid)
    nets = dk.inspect(cid)["NetworkSettings"]["Networks"]
    assert set(nets) == {"bridge", "dyt-nst"} and nets["dyt-nst"]["IPAddress"] == ""
    dk("start", cid)
    nets = dk.inspect(cid)["NetworkSettings"]["Networks"]
    assert nets["dyt-nst"]["IPAddress"].startswith("10.231.10.")
    assert nets["dyt-nst"]["Aliases"] == ["later", cid[:12]]
    links = ns_links(pid_of(dk, cid))
    assert "eth0" in links and "eth1" in links
    dk("stop", "-t", "0", cid)
    stopped = dk.inspect(cid)["NetworkSettings"]
    assert stopped["Networks"]["dyt-nst"]["IPAddress"] == "" and stopped["Ports"] == {}
    dk("network", "disconnect", "dyt-nst", cid)
    assert set(dk.inspect(cid)["NetworkSettings"]["Networks"]) == {"bridge"}


def test_bridge_none_gives_default_containers_no_network(tmp_path):
    """`dockyardd --bridge=none`: no default network; a container that asks
    for the default one has its loopback alone, as with dockerd (and RUN
    steps of a build work the same way)."""
    from harness import Daemon, load_busybox

    d = Daemon(str(tmp_path))
    try:
        d.start("--bridge", "none")
        load_busybox(d)
        links = d.docker("run", "--rm", "busybox:local", "ip", "-o", "link", check=True).stdout
        assert [line.split(": ")[1] for line in links.splitlines()] == ["lo"]
        assert d.docker("network", "ls", "--format", "{{.Name}}", check=True).stdout.split() \
            == ["host", "none"]
    finally:
        d.stop()
        d.remove_network_setup()
