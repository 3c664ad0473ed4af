"""Networks across a daemon's death: published ports keep answering while the
daemon is down and after it is back, names resolve again, and what belonged
to containers that ended meanwhile (namespaces, proxies, rules) is removed at
the next start. After everything is removed, nothing of ours is left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess

from harness import wait_for
from test_container_networks import IMAGE, WEB, free_port, http_get, veths_of


def proxies_running(d) -> list[str]:
    """PIDs of processes whose command line names this daemon's proxy pidfiles."""
    ours = os.path.join(d.exec_root, "proxies").encode()
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if ours in f.read():
                    found.append(pid)
        except OSError:
            pass
    return found


def port_rules(d) -> list[str]:
    saved = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True,
                           text=True).stdout
    return [line for line in saved.splitlines()
            if line.startswith(f"-A {d.chain_prefix} ") and "DNAT" in line]


def assert_nothing_left(d, veths_before: set[str]) -> None:
    assert os.listdir(os.path.join(d.exec_root, "netns")) == []
    # (a namespace's links go with it in the background, within milliseconds)
    wait_for(lambda: not veths_of(d) - veths_before, timeout=5,
             what=f"the veths of removed containers to go: {veths_of(d) - veths_before}")
    assert proxies_running(d) == []
    assert port_rules(d) == []


def test_ports_and_names_survive_a_daemon_kill(daemon, loaded_busybox):
    d = daemon
    veths = veths_of(d)
    port = free_port()
    d.docker("network", "create", "--subnet", "10.232.1.0/24", "dyt-rs", check=True)
    web = d.docker("run", "-d", "--name", "dyt-rweb", "--network", "dyt-rs", "-p",
                   f"127.0.0.1:{port}:80", IMAGE, *WEB, check=True).stdout.strip()
    client = d.docker("run", "-d", "--network", "dyt-rs", IMAGE, "sleep", "300",
                      check=True).stdout.strip()
    assert http_get(f"http://127.0.0.1:{port}/") == f"hello-{web[:12]}\n"
    d.stop(signal.SIGKILL)
    # the proxy is not the daemon's: the port answers while no daemon runs
    assert http_get(f"http://127.0.0.1:{port}/") == f"hello-{web[:12]}\n"
    d.start()
    assert http_get(f"http://127.0.0.1:{port}/") == f"hello-{web[:12]}\n"
    assert len(port_rules(d)) == 1
    out = d.docker("exec", client, "busybox", "nslookup", "dyt-rweb", check=True).stdout
    assert "10.232.1." in out
    # addresses held by running containers are not handed out again
    third = d.docker("run", "-d", "--network", "dyt-rs", IMAGE, "sleep", "300",
                     check=True).stdout.strip()
    addresses = {json.loads(d.docker("inspect", c, check=True).stdout)[0]["NetworkSettings"]
                 ["Networks"]["dyt-rs"]["IPAddress"] for c in (web, client, third)}
    assert len(addresses) == 3
    d.docker("rm", "-f", web, client, third, check=True)
    d.docker("network", "rm", "dyt-rs", check=True)
    assert_nothing_left(d, veths)


def test_what_ended_while_the_daemon_was_down_is_removed(daemon, loaded_busybox):
    from dockyard.linux import netns

    d = daemon
    veths = veths_of(d)
    port = free_port()
    web = d.docker("run", "-d", "-p", f"127.0.0.1:{port}:80", IMAGE, *WEB,
                   check=True).stdout.strip()
    pid = json.loads(d.docker("inspect", web, check=True).stdout)[0]["State"]["Pid"]
    http_get(f"http://127.0.0.1:{port}/")
    d.stop(signal.SIGKILL)
    os.kill(pid, signal.SIGKILL)  # the container ends with no daemon to see it
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), what="the container to end")
    # and a namespace a crash left with no container at all
    netns.create(os.path.join(d.exec_root, "netns", "0" * 64))
    d.start()
    wait_for(lambda: json.loads(d.docker("inspect", web, check=True).stdout)[0]["State"]
             ["Status"] == "exited", what="the exit to be recorded")
    assert_nothing_left(d, veths)
    d.docker("rm", web, check=True)


def test_iptables_false_adds_no_rules(tmp_path):
    from harness import Daemon, load_busybox

    d = Daemon(str(tmp_path))
    try:
        d.start("--iptables=false")
        load_busybox(d)
        d.docker("network", "create", "--subnet", "10.232.2.0/24", "dyt-noipt", check=True)
        out = d.docker("run", "--rm", "--network", "dyt-noipt", IMAGE, "ip", "addr",
                       check=True).stdout
        assert "10.232.2.2/24" in out
        for tool in ("iptables-save", "ip6tables-save"):
            saved = subprocess.run([tool], capture_output=True, text=True).stdout
            assert d.chain_prefix not in saved
        d.docker("network", "rm", "dyt-noipt", check=True)
    finally:
        d.stop()
        d.remove_network_setup()
