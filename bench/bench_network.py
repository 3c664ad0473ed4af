"""Network benchmarks: what a network costs a container start, and published ports.

1. `run --rm true` over the API (create, start, wait, remove) with
   `--network none`, the default bridge and a user-defined network: the
   difference to `none` is the network's set-up and tear-down (aim: under
   15 ms per start).
2. A published port on 127.0.0.1 (served by the userland proxy) and on the
   bridge's gateway address (served by the packet rules alone): TCP
   throughput of a bounded transfer and the connection rate, each against a
   container running `busybox nc`/`httpd`.
3. A lookup of a container's name through the embedded DNS, from inside a
   container (`busybox nslookup`, process start included).

Runs against a throwaway dockyardd, and against a real dockerd too when
DOCKER_REF_HOST=unix:///path.sock (its default bridge, docker-proxy and
iptables). Traffic stays on the loopback and the daemons' own bridges.

    .venv/bin/python bench/bench_network.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_containers import IMAGE, LABEL, Failed, Target, ensure_image  # noqa: E402
from common import Daemon, median, ms, p95, peer_pid, print_table, ref_socket  # noqa: E402

NETWORK = "dybench-net"
SUBNET = "10.195.0.0/24"
TRANSFER = 256 * 1024 * 1024   # bytes per throughput sample
CONNECTIONS = 300              # per connection-rate sample


def run_rm(t: Target, network: str) -> float:
    """create + start + wait + remove of `true` on `network`, over the API."""
    t0 = time.perf_counter()
    cid = t.api("POST", "/containers/create", {
        "Image": IMAGE, "Cmd": ["true"], "Labels": {LABEL: "1"},
        "HostConfig": {"NetworkMode": network}})["Id"]
    t.api("POST", f"/containers/{cid}/start")
    t.api("POST", f"/containers/{cid}/wait")
    t.api("DELETE", f"/containers/{cid}")
    return time.perf_counter() - t0


def start_costs(t: Target, runs: int) -> dict[str, list[float]]:
    out = {}
    for mode in ("none", "bridge", NETWORK):
        for _ in range(2):
            run_rm(t, mode)
        out[mode] = [run_rm(t, mode) for _ in range(runs)]
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(t: Target, cid: str, port: int) -> None:
    """Wait until the container's server listens (asked at its own address:
    the host port accepts before the container does, through the proxy)."""
    ip = t.api("GET", f"/containers/{cid}/json")["NetworkSettings"]["IPAddress"]
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection((ip, port), timeout=2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def throughput(host: str, port: int) -> float:
    """MiB/s of TRANSFER bytes sent to a container's `nc -l` (which discards them)."""
    chunk = b"\0" * (1 << 20)
    time.sleep(0.05)  # (the server listens again after the previous connection)
    s = socket.create_connection((host, port), timeout=5)
    with s:
        t0 = time.perf_counter()
        sent = 0
        while sent < TRANSFER:
            s.sendall(chunk)
            sent += len(chunk)
        s.shutdown(socket.SHUT_WR)
        s.recv(1)  # the container closes once it has read everything
        return TRANSFER / (1 << 20) / (time.perf_counter() - t0)


def connection_rate(url: str) -> float:
    """Connections per second, each one HTTP GET of a small page."""
    t0 = time.perf_counter()
    for _ in range(CONNECTIONS):
        with urllib.request.urlopen(url, timeout=5) as r:
            r.read()
    return CONNECTIONS / (time.perf_counter() - t0)


def port_figures(t: Target, gateway: str) -> dict[str, float]:
    out = {}
    for where, host in (("loopback", "127.0.0.1"), ("gateway", gateway)):
        port = free_port()
        cid = t.api("POST", "/containers/create", {
            "Image": IMAGE, "Labels": {LABEL: "1"},
            "Cmd": ["sh", "-c", "while true; do nc -l -p 9000 -e sh -c 'cat > /dev/null'; done"],
            "ExposedPorts": {"9000/tcp": {}},
            "HostConfig": {"PortBindings": {"9000/tcp": [{"HostIp": host,
                                                          "HostPort": str(port)}]}}})["Id"]
        t.api("POST", f"/containers/{cid}/start")
        try:
            listening(t, cid, 9000)
            out[f"tcp_{where}"] = median([throughput(host, port) for _ in range(3)])
        finally:
            t.remove([cid])
        port = free_port()
        cid = t.api("POST", "/containers/create", {
            "Image": IMAGE, "Labels": {LABEL: "1"},
            "Cmd": ["sh", "-c", "busybox mkdir -p /w && echo ok > /w/i && "
                    "exec busybox httpd -f -p 80 -h /w"],
            "ExposedPorts": {"80/tcp": {}},
            "HostConfig": {"PortBindings": {"80/tcp": [{"HostIp": host,
                                                        "HostPort": str(port)}]}}})["Id"]
        t.api("POST", f"/containers/{cid}/start")
        try:
            url = f"http://{host}:{port}/i"
            deadline = time.monotonic() + 10
            while True:
                try:
                    urllib.request.urlopen(url, timeout=2).read()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            out[f"conn_{where}"] = connection_rate(url)
        finally:
            t.remove([cid])
    return out


def dns_figure(t: Target, runs: int) -> list[float]:
    web = t.api("POST", "/containers/create", {
        "Image": IMAGE, "Cmd": ["sleep", "300"], "Labels": {LABEL: "1"},
        "HostConfig": {"NetworkMode": NETWORK}}, ok=(201,))["Id"]
    t.api("POST", f"/containers/{web}/start")
    name = t.api("GET", f"/containers/{web}/json")["Name"].lstrip("/")
    try:
        t.cli("exec", web, "busybox", "nslookup", name)
        return [t.timed_cli("exec", web, "busybox", "nslookup", name)[0] for _ in range(runs)]
    finally:
        t.remove([web])


def figures(t: Target, runs: int) -> dict:
    ensure_image(t)
    t.cli("network", "create", "--subnet", SUBNET, NETWORK)
    try:
        r: dict = {"start": start_costs(t, runs)}
        bridge = t.api("GET", "/networks/bridge")
        gateway = bridge["IPAM"]["Config"][0].get("Gateway") or \
            bridge["IPAM"]["Config"][0]["Subnet"].rsplit(".", 1)[0] + ".1"
        r["ports"] = port_figures(t, gateway)
        try:
            r["dns"] = dns_figure(t, runs)
        except Failed as e:  # (the others still count)
            print(f"{t.name}: name lookup: {e}", file=sys.stderr)
        return r
    finally:
        t.remove(t.labelled())
        t.cli("network", "rm", NETWORK)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    results = {}
    with Daemon() as d:
        results["dockyard"] = figures(Target("dockyard", d.sock, d.pid), args.runs)
    ref = ref_socket()
    if ref:
        try:
            results["dockerd"] = figures(Target("dockerd", ref, peer_pid(ref)), args.runs)
        except Failed as e:
            print(f"dockerd: {e}", file=sys.stderr)
    names = list(results)
    rows = []
    for mode, label in (("none", "--network none"), ("bridge", "default bridge"),
                        (NETWORK, "user-defined network")):
        rows.append([label] + [f"{ms(median(results[n]['start'][mode]))} / "
                               f"{ms(p95(results[n]['start'][mode]))}" for n in names])
    rows.append(["network cost (bridge - none)"] + [
        ms(median(results[n]["start"]["bridge"]) - median(results[n]["start"]["none"]))
        for n in names])
    print_table(f"run --rm true over the API, ms (median / p95 of {args.runs})",
                ["figure", *names], rows)
    rows = []
    for key, label in (("tcp_loopback", "TCP MiB/s, 127.0.0.1 (userland proxy)"),
                       ("tcp_gateway", "TCP MiB/s, bridge address (packet rules)"),
                       ("conn_loopback", "HTTP connections/s, 127.0.0.1"),
                       ("conn_gateway", "HTTP connections/s, bridge address")):
        rows.append([label] + [f"{results[n]['ports'][key]:.0f}" for n in names])
    print_table("published ports", ["figure", *names], rows)
    print_table("name lookup from a container (docker exec + nslookup), ms, median / p95",
                ["figure", *names],
                [["nslookup NAME"] + [f"{ms(median(results[n]['dns']))} / "
                                      f"{ms(p95(results[n]['dns']))}" if "dns" in results[n]
                                      else "failed" for n in names]])


if __name__ == "__main__":
    main()
