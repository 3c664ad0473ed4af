"""The container lifecycle through the docker CLI and docker-py, as dockerd answers.

created → running ⇄ paused → exited → removed: run, create, start, stop, kill,
restart, pause, unpause, wait, rm, rename, ps, inspect, prune, and the errors
dockerd gives for each wrong step (texts and exit codes taken from dockerd
20.10 and the docker 28 CLI on this machine). After every test all its
containers are removed, and none of them may leave a cgroup, a shim process or
a mount behind.
"""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import time

import pytest

from dockyard.client.api import APIError
from harness import wait_for
from paths import REFERENCE

IMAGE = "busybox:local"
ID = re.compile(r"^[0-9a-f]{64}$")


# -- what a container may leave behind (shared by the test_containers_* files) ----------

def cgroup_dirs(cid: str) -> list[str]:
    return glob.glob(f"/sys/fs/cgroup/*/dockyard/{cid}") + glob.glob(f"/sys/fs/cgroup/dockyard/{cid}")


def created_ids(daemon) -> set[str]:
    """Every container this daemon process has created (from its event backlog)."""
    response = daemon.api().request("GET", "/events", query={
        "since": "0", "until": f"{time.time():.9f}",
        "filters": json.dumps({"type": ["container"], "event": ["create"]})})
    return {json.loads(line)["id"] for line in response.read().splitlines() if line.strip()}


def holders(daemon) -> list[int]:
    """Processes other than the daemon (and its fork server) with a file, a cwd or
    a root under the daemon's data or exec root: a shim holds its container's
    log, a container's processes have their root in its rootfs. (The fork
    server's spare shim holds only the daemon's log until it is used.)"""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) in (daemon.proc.pid, os.getpid()):
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == daemon.proc.pid:
                    continue  # the fork server
            links = [f"/proc/{pid}/cwd", f"/proc/{pid}/root",
                     *glob.glob(f"/proc/{pid}/fd/*")]
        except (OSError, ValueError, IndexError):
            continue
        for link in links:
            try:
                if os.readlink(link).startswith((daemon.root, daemon.exec_root)):
                    found.append(int(pid))
                    break
            except OSError:
                continue
    return found


def assert_nothing_left(daemon, ids) -> None:
    """No process, cgroup or bundle of these containers remains (the fixture
    `daemon` checks the mounts once the daemon has stopped)."""
    try:
        wait_for(lambda: not holders(daemon), timeout=30, what="the shims and containers to exit")
    except TimeoutError:
        left = {pid: open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ")[:200]
                for pid in holders(daemon)}
        raise AssertionError(f"processes left behind: {left}") from None
    wait_for(lambda: not [d for c in ids for d in cgroup_dirs(c)], timeout=10,
             what="the containers' cgroups to be removed")
    bundles = os.path.join(daemon.exec_root, "containers")
    # (a bundle goes once its shim has closed its socket: just after the exit)
    wait_for(lambda: not os.path.isdir(bundles) or not os.listdir(bundles), timeout=10,
             what="the containers' bundles to be removed")
    assert not [m for m in open("/proc/self/mountinfo") if daemon.exec_root in m]


def remove_all(daemon) -> set[str]:
    api = daemon.api()
    ids = set()
    for c in api.get("/containers/json", query={"all": "1"}) or []:
        ids.add(c["Id"])
        api.request("DELETE", f"/containers/{c['Id']}", query={"force": "1"}).read()
    assert api.get("/containers/json", query={"all": "1"}) == []
    return ids


@pytest.fixture
def dy(daemon, loaded_busybox):
    """The daemon, with busybox:local; at the end every container is removed and
    nothing of any container this daemon ran may be left."""
    daemon.seen = set()
    yield daemon
    ids = remove_all(daemon) | created_ids(daemon) | daemon.seen
    assert_nothing_left(daemon, ids)


def run(daemon, *args, input=None, timeout=60) -> subprocess.CompletedProcess:
    result = daemon.docker(*args, input=input, timeout=timeout)
    for word in result.stdout.split():
        if ID.match(word):
            daemon.seen.add(word)
    return result


def detached(daemon, *args) -> str:
    result = run(daemon, "run", "-d", "--network", "none", *args)
    assert result.returncode == 0, result.stderr
    cid = result.stdout.strip()
    assert ID.match(cid)
    return cid


def inspect(daemon, ref: str) -> dict:
    return daemon.api().get(f"/containers/{ref}/json")


def status(daemon, ref: str) -> str:
    return inspect(daemon, ref)["State"]["Status"]


def docker_error(stderr: str) -> str:
    """The daemon's message in the CLI's `Error response from daemon: ...` line."""
    for line in stderr.splitlines():
        if "Error response from daemon: " in line:
            return line.split("Error response from daemon: ", 1)[1]
    return stderr.strip()


# -- run ------------------------------------------------------------------------------

def test_run_prints_output_and_propagates_exit_codes(dy):
    r = run(dy, "run", "--rm", IMAGE, "echo", "hi")
    assert (r.returncode, r.stdout, r.stderr) == (0, "hi\n", "")
    r = run(dy, "run", "--rm", "--network", "none", IMAGE, "sh", "-c",
            "echo out; echo err >&2; exit 3")
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\n")
    r = run(dy, "run", "--rm", "--network", "none", IMAGE, "sh", "-c", "exit 255")
    assert r.returncode == 255
    # --rm: the container is gone by the time the CLI returns
    assert dy.docker("ps", "-aq").stdout == ""


def test_stdin_is_piped_with_i(dy):
    r = run(dy, "run", "-i", "--rm", IMAGE, "cat", input="x\n")
    assert (r.returncode, r.stdout) == (0, "x\n")
    big = "".join(f"line {i}\n" for i in range(20000))
    r = run(dy, "run", "-i", "--rm", "--network", "none", IMAGE, "sh", "-c", "cat; echo done >&2",
            input=big)
    assert (r.returncode, r.stdout, r.stderr) == (0, big, "done\n")
    # without -i the container reads /dev/null
    r = run(dy, "run", "--rm", "--network", "none", IMAGE, "sh", "-c", "cat; echo eof",
            input="ignored\n")
    assert r.stdout == "eof\n"


def test_run_flags_reach_the_process(dy, tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text("# comment\nFROM_FILE=yes\nBOTH=file\n")
    labels = tmp_path / "labels"
    labels.write_text("from.file=1\n")
    r = run(dy, "run", "--name", "flags", "--network", "none", "-e", "A=1", "--env-file",
            str(env_file), "-e", "BOTH=flag", "-w", "/tmp", "-u", "1000:1000", "-h", "myhost",
            "--entrypoint", "/bin/sh", "-l", "app=web", "--label-file", str(labels),
            "--stop-signal", "SIGUSR1", "--stop-timeout", "3", IMAGE,
            "-c", 'echo "$A $FROM_FILE $BOTH $(pwd) $(id -u):$(id -g) $(hostname)"')
    assert (r.returncode, r.stdout) == (0, "1 yes flag /tmp 1000:1000 myhost\n"), r.stderr
    c = inspect(dy, "flags")
    assert c["Config"]["Labels"] == {"app": "web", "from.file": "1"}
    assert c["Config"]["StopSignal"] == "SIGUSR1" and c["Config"]["StopTimeout"] == 3
    assert c["Config"]["Entrypoint"] == ["/bin/sh"] and c["Path"] == "/bin/sh"
    assert c["Config"]["Hostname"] == "myhost" and c["Config"]["User"] == "1000:1000"


def test_network_none_and_host(dy):
    r = run(dy, "run", "--rm", "--network", "none", IMAGE, "ip", "-o", "link")
    assert [line.split(":")[1].strip() for line in r.stdout.splitlines()] == ["lo"]
    r = run(dy, "run", "--rm", "--network", "host", IMAGE, "hostname")
    assert r.stdout.strip() == os.uname().nodename
    cid = run(dy, "create", "--network", "host", IMAGE, "true").stdout.strip()
    assert inspect(dy, cid)["Config"]["Hostname"] == os.uname().nodename


def test_command_not_found_is_127_and_leaves_nothing_mounted(dy):
    r = run(dy, "run", "--name", "nocmd", "--network", "none", IMAGE, "nosuch")
    assert r.returncode == 127
    assert docker_error(r.stderr) == (
        "failed to create shim task: OCI runtime create failed: dockyard-runtime create "
        'failed: unable to start container process: exec: "nosuch": executable file not '
        "found in $PATH: unknown")
    state = inspect(dy, "nocmd")["State"]
    assert (state["Status"], state["ExitCode"], state["Running"]) == ("created", 127, False)
    assert "executable file not found" in state["Error"]
    assert not [m for m in open("/proc/self/mountinfo") if dy.exec_root in m]
    r = run(dy, "run", "--rm", "--network", "none", IMAGE, "/etc")
    assert r.returncode == 126 and docker_error(r.stderr).endswith(
        'exec: "/etc": permission denied: unknown')
    assert dy.docker("ps", "-aq", "--filter", "name=nocmd").stdout.strip()  # (not --rm)
    assert len(dy.docker("ps", "-aq").stdout.split()) == 1  # the --rm one is gone


# -- create, start, stop, kill, restart ----------------------------------------------

def test_create_start_stop_with_the_stop_signal(dy):
    script = 'trap "echo got USR1; exit 7" USR1; echo ready; while true; do sleep 0.1; done'
    cid = run(dy, "create", "--name", "sig", "--network", "none", "--stop-signal", "USR1",
              IMAGE, "sh", "-c", script).stdout.strip()
    assert ID.match(cid) and status(dy, "sig") == "created"
    assert dy.docker("ps", "-a", "--format", "{{.Status}}").stdout == "Created\n"
    assert run(dy, "start", "sig").stdout == "sig\n"
    wait_for(lambda: dy.docker("logs", "sig").stdout == "ready\n", what="the trap to be set")
    t0 = time.monotonic()
    r = run(dy, "stop", "sig")
    assert (r.returncode, r.stdout) == (0, "sig\n")
    assert time.monotonic() - t0 < 5  # the signal ended it; no SIGKILL after 10 s
    state = inspect(dy, "sig")["State"]
    assert (state["Status"], state["ExitCode"], state["Running"]) == ("exited", 7, False)
    assert dy.docker("logs", "sig").stdout == "ready\ngot USR1\n"
    assert re.fullmatch(r"Exited \(7\) (Less than a second|\d+ seconds?) ago\n",
                        dy.docker("ps", "-a", "--format", "{{.Status}}").stdout)
    # stopping a stopped container: 304, the CLI prints the name
    r = run(dy, "stop", "sig")
    assert (r.returncode, r.stdout) == (0, "sig\n")
    assert dy.api().request("POST", "/containers/sig/stop").status == 304


def test_stop_timeout_then_sigkill(dy):
    detached(dy, "--name", "stubborn", "--stop-timeout", "1", IMAGE, "sleep", "1000")
    t0 = time.monotonic()
    assert run(dy, "stop", "stubborn").returncode == 0  # sleep as PID 1 ignores SIGTERM
    elapsed = time.monotonic() - t0
    assert 0.9 < elapsed < 5, elapsed
    assert inspect(dy, "stubborn")["State"]["ExitCode"] == 137
    run(dy, "start", "stubborn")
    t0 = time.monotonic()
    assert run(dy, "stop", "-t", "0", "stubborn").returncode == 0
    assert time.monotonic() - t0 < 3


def test_kill_with_a_signal_and_kill_then_rm(dy):
    detached(dy, "--name", "killme", IMAGE, "sh", "-c",
             'trap "echo got HUP" HUP; echo ready; while true; do sleep 0.1; done')
    wait_for(lambda: dy.docker("logs", "killme").stdout == "ready\n", what="the trap to be set")
    assert run(dy, "kill", "-s", "HUP", "killme").stdout == "killme\n"
    wait_for(lambda: "got HUP" in dy.docker("logs", "killme").stdout, what="the HUP")
    assert status(dy, "killme") == "running"
    r = run(dy, "kill", "-s", "BOGUS", "killme")
    assert (r.returncode, docker_error(r.stderr)) == (1, "Invalid signal: BOGUS")
    # `kill` returns once the container is dead, so `rm` right after it works
    assert run(dy, "kill", "killme").returncode == 0
    assert inspect(dy, "killme")["State"]["ExitCode"] == 137
    assert run(dy, "rm", "killme").returncode == 0
    cid = run(dy, "create", "--network", "none", IMAGE, "true").stdout.strip()
    r = run(dy, "kill", cid)
    assert docker_error(r.stderr) == f"Cannot kill container: {cid}: Container {cid} is not running"
    r = run(dy, "kill", "nosuch")
    assert docker_error(r.stderr) == "Cannot kill container: nosuch: No such container: nosuch"


def test_restart_and_start_again_right_after_exit(dy):
    cid = detached(dy, "--name", "rs", IMAGE, "sh", "-c", "echo run; sleep 1000")
    pid = inspect(dy, "rs")["State"]["Pid"]
    assert run(dy, "restart", "-t", "0", "rs").stdout == "rs\n"
    state = inspect(dy, "rs")["State"]
    assert state["Status"] == "running" and state["Pid"] != pid
    wait_for(lambda: dy.docker("logs", "rs").stdout == "run\nrun\n", what="the second run")
    # a container that exits at once, started again and again with no pause
    api = dy.api()
    short = api.post("/containers/create", body={"Image": IMAGE, "Cmd": ["sh", "-c", "exit 4"],
                                                 "HostConfig": {"NetworkMode": "none"}})["Id"]
    dy.seen.add(short)
    for _ in range(4):
        api.request("POST", f"/containers/{short}/start").read()
        code = api.post(f"/containers/{short}/wait")["StatusCode"]
        assert code == 4
    assert inspect(dy, short)["State"]["ExitCode"] == 4
    assert cid


def test_start_a_running_container_is_304_and_silent(dy):
    detached(dy, "--name", "up", IMAGE, "sleep", "1000")
    response = dy.api().request("POST", "/containers/up/start")
    assert response.status == 304
    r = run(dy, "start", "up")
    assert (r.returncode, r.stdout, r.stderr) == (0, "up\n", "")


# -- pause -----------------------------------------------------------------------------

def freezer_state(cid: str) -> str:
    for path in (f"/sys/fs/cgroup/freezer/dockyard/{cid}/freezer.state",):
        if os.path.exists(path):
            return open(path).read().strip()
    with open(f"/sys/fs/cgroup/dockyard/{cid}/cgroup.freeze") as f:  # cgroup v2
        return "FROZEN" if f.read().strip() == "1" else "THAWED"


def test_pause_unpause_freezes_the_cgroup(dy):
    cid = detached(dy, "--name", "pauser", IMAGE, "sh", "-c",
                   "i=0; while true; do i=$((i+1)); echo $i; sleep 0.05; done")
    assert run(dy, "pause", "pauser").stdout == "pauser\n"
    assert freezer_state(cid) == "FROZEN"
    state = inspect(dy, "pauser")["State"]
    assert (state["Status"], state["Paused"], state["Running"]) == ("paused", True, True)
    assert re.fullmatch(r"Up .* \(Paused\)\n", dy.docker("ps", "--format", "{{.Status}}").stdout)
    frozen = dy.docker("logs", "pauser").stdout
    time.sleep(0.3)  # a frozen container writes nothing: nothing to wait for but time
    assert dy.docker("logs", "pauser").stdout == frozen
    r = run(dy, "pause", "pauser")
    assert docker_error(r.stderr) == f"Container {cid} is already paused"
    r = run(dy, "rm", "pauser")
    assert docker_error(r.stderr) == (
        f"You cannot remove a paused container {cid}. Unpause and then stop the container "
        "before attempting removal or force remove")
    r = run(dy, "start", "pauser")
    assert docker_error(r.stderr) == "cannot start a paused container, try unpause instead"
    assert run(dy, "unpause", "pauser").stdout == "pauser\n"
    assert freezer_state(cid) == "THAWED" and status(dy, "pauser") == "running"
    wait_for(lambda: len(dy.docker("logs", "pauser").stdout) > len(frozen), what="output again")
    r = run(dy, "unpause", "pauser")
    assert docker_error(r.stderr) == f"Container {cid} is not paused"
    # a paused container can be stopped (and killed): it is thawed for the signal
    run(dy, "pause", "pauser")
    assert run(dy, "stop", "-t", "1", "pauser").returncode == 0
    state = inspect(dy, "pauser")["State"]
    # (sh as PID 1 has no handler for SIGTERM: SIGKILL after the timeout)
    assert (state["Status"], state["Paused"], state["ExitCode"]) == ("exited", False, 137)
    r = run(dy, "pause", "pauser")
    assert docker_error(r.stderr) == f"Container {cid} is not running"


# -- wait, rm, rename ------------------------------------------------------------------

def test_wait_conditions(dy):
    client = dy.client()
    c = client.containers.create(IMAGE, ["sh", "-c", "sleep 0.3; exit 5"], network_mode="none")
    dy.seen.add(c.id)
    assert c.wait(condition="not-running") == {"Error": None, "StatusCode": 0}  # not started
    api = dy.api()
    # the headers come once the wait is registered (the docker CLI starts after that)
    next_exit = api.request("POST", f"/containers/{c.id}/wait", query={"condition": "next-exit"})
    removed = api.request("POST", f"/containers/{c.id}/wait", query={"condition": "removed"})
    c.start()
    assert json.loads(next_exit.read()) == {"Error": None, "StatusCode": 5}
    assert c.wait()["StatusCode"] == 5  # not-running, after the exit: at once
    c.remove()
    assert json.loads(removed.read()) == {"Error": None, "StatusCode": 5}
    with pytest.raises(APIError) as e:
        api.post(f"/containers/{c.id}/wait", query={"condition": "bogus"})
    assert e.value.status == 400
    r = run(dy, "wait", "nosuch")
    assert docker_error(r.stderr) == "No such container: nosuch"


def test_rm_running_and_force(dy):
    cid = detached(dy, "--name", "busy", IMAGE, "sleep", "1000")
    r = run(dy, "rm", "busy")
    assert r.returncode == 1
    assert docker_error(r.stderr) == (
        f"You cannot remove a running container {cid}. Stop the container before attempting "
        "removal or force remove")
    assert status(dy, "busy") == "running"
    assert run(dy, "rm", "-f", "busy").stdout == "busy\n"
    wait_for(lambda: not cgroup_dirs(cid), what="its cgroup to be removed")
    r = run(dy, "rm", "busy")
    assert docker_error(r.stderr) == "No such container: busy"
    assert run(dy, "rm", "-f", "busy").returncode == 0  # -f: a missing one is no error


def test_rename(dy):
    a = run(dy, "create", "--name", "aa", "--network", "none", IMAGE, "true").stdout.strip()
    run(dy, "create", "--name", "bb", "--network", "none", IMAGE, "true")
    assert run(dy, "rename", "aa", "cc").returncode == 0
    assert inspect(dy, "cc")["Id"] == a and inspect(dy, a)["Name"] == "/cc"
    with pytest.raises(APIError) as e:
        dy.api().get("/containers/aa/json")
    assert e.value.status == 404
    r = run(dy, "rename", "cc", "bb")
    b_id = inspect(dy, "bb")["Id"]
    assert docker_error(r.stderr) == (
        f'Conflict. The container name "/bb" is already in use by container "{b_id}". You have '
        "to remove (or rename) that container to be able to reuse that name.")
    r = run(dy, "rename", "cc", "cc")
    assert docker_error(r.stderr) == "Renaming a container with the same name as its current name"
    r = run(dy, "rename", "cc", "bad name")
    assert docker_error(r.stderr) == ("Error when allocating new name: Invalid container name "
                                      "(/bad name), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    # the new name survives a restart of the daemon
    dy.stop()
    dy.start()
    assert inspect(dy, "cc")["Id"] == a


# -- ps and inspect ----------------------------------------------------------------------

def test_ps_flags_and_filters(dy):
    detached(dy, "--name", "p1", "-l", "app=x", IMAGE, "sleep", "1000")
    detached(dy, "--name", "p2", IMAGE, "sleep", "1000")
    run(dy, "run", "--name", "p3", "--network", "none", IMAGE, "sh", "-c", "exit 2")
    run(dy, "create", "--name", "p4", "--network", "none", "-l", "app=y", IMAGE, "true")
    run(dy, "pause", "p2")

    def names(*args):
        r = dy.docker("ps", *args, "--format", "{{.Names}}")
        assert r.returncode == 0, r.stderr
        return r.stdout.split()

    assert names() == ["p2", "p1"]
    assert names("-a") == ["p4", "p3", "p2", "p1"]
    assert names("-n", "2") == ["p4", "p3"] and names("-l") == ["p4"]
    assert names("-a", "--filter", "status=exited") == ["p3"]
    assert names("-a", "--filter", "status=paused") == ["p2"]
    assert names("-a", "--filter", "status=created") == ["p4"]
    assert names("-a", "--filter", "status=running") == ["p1"]
    assert names("-a", "--filter", "exited=2") == ["p3"]
    assert names("-a", "--filter", "exited=0") == []
    assert names("-a", "--filter", "label=app") == ["p4", "p1"]
    assert names("-a", "--filter", "label=app=x") == ["p1"]
    assert names("-a", "--filter", "name=p1") == ["p1"]
    assert names("-a", "--filter", "name=^/p[34]$") == ["p4", "p3"]
    p3 = inspect(dy, "p3")["Id"]
    assert names("-a", "--filter", f"id={p3[:10]}") == ["p3"]
    assert names("-a", "--filter", f"ancestor={IMAGE}") == ["p4", "p3", "p2", "p1"]
    assert names("-a", "--filter", "before=p3") == ["p2", "p1"]
    assert names("-a", "--filter", "since=p2") == ["p4", "p3"]
    q = dy.docker("ps", "-q").stdout.split()
    assert [len(i) for i in q] == [12, 12]
    full = dy.docker("ps", "-aq", "--no-trunc").stdout.split()
    assert len(full) == 4 and all(ID.match(i) for i in full)
    table = dy.docker("ps", "-a", "-s").stdout.splitlines()
    assert table[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS",
                                "PORTS", "NAMES", "SIZE"]
    assert "(virtual 1.98MB)" in table[1]
    out = dy.docker("ps", "-a", "--no-trunc", "--format",
                    "{{.Command}}|{{.Label \"app\"}}|{{.State}}").stdout.splitlines()
    assert out == ['"true"|y|created', '"sh -c \'exit 2\'"||exited',
                   '"sleep 1000"||paused', '"sleep 1000"|x|running']
    for args, message in [(("--filter", "status=bogus"), "Invalid filter 'status=bogus'"),
                          (("--filter", "bogus=1"), "Invalid filter 'bogus'"),
                          (("--filter", "exited=x"), 'strconv.Atoi: parsing "x": invalid syntax'),
                          (("--filter", "before=nosuch"), "no such container nosuch")]:
        r = dy.docker("ps", "-a", *args)
        assert (r.returncode, docker_error(r.stderr)) == (1, message)


def _shape(value):
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    return type(value).__name__


def test_inspect_has_dockerds_shape(dy):
    detached(dy, "--name", "web", "-m", "64m", "--cpus", "0.5", "--pids-limit", "50",
             "-e", "FOO=bar", "-l", "app=ref", IMAGE, "sleep", "1000")
    ours = inspect(dy, "web")
    ref = json.loads((REFERENCE / "container-inspect.json").read_text())
    assert list(ours) == list(ref)
    for section in ("State", "HostConfig", "GraphDriver"):
        missing = set(ref[section]) - set(ours[section]) - {"Health", "Tmpfs"}
        assert not missing, (section, missing)
    skip = {"ExposedPorts", "Healthcheck"}  # (the reference container has ports and a check)
    assert set(ref["Config"]) - skip == set(ours["Config"])
    hc, rhc = ours["HostConfig"], ref["HostConfig"]
    for key in ("LogConfig", "CgroupnsMode", "IpcMode", "ShmSize",
                "MaskedPaths", "ReadonlyPaths", "MemorySwappiness", "OomKillDisable",
                "ConsoleSize", "Dns", "BlkioWeightDevice"):
        assert hc[key] == rhc[key], key
    assert (hc["Memory"], hc["MemorySwap"], hc["NanoCpus"], hc["PidsLimit"]) == \
        (64 << 20, 128 << 20, 500000000, 50)
    assert _shape(ours["State"]) == {k: v for k, v in _shape(ref["State"]).items()
                                     if k != "Health"}
    assert set(ours["NetworkSettings"]) == set(ref["NetworkSettings"])
    assert ours["State"]["Pid"] > 0 and ours["Config"]["Env"][0] == "FOO=bar"
    assert ours["LogPath"].endswith(f"{ours['Id']}-json.log")
    assert ours["GraphDriver"]["Data"]["MergedDir"].endswith("/rootfs")
    # before its first start a container has no files yet, as with dockerd
    created = inspect(dy, run(dy, "create", "--network", "none", IMAGE, "true").stdout.strip())
    assert (created["LogPath"], created["HostsPath"], created["ResolvConfPath"]) == ("", "", "")
    # docker-py reads the same document
    c = dy.client().containers.get("web")
    assert c.status == "running" and c.labels == {"app": "ref"} and c.name == "web"


# -- bad input -----------------------------------------------------------------------------

def test_unknown_image_and_name_conflicts(dy):
    with pytest.raises(APIError) as e:
        dy.api().post("/containers/create", body={"Image": "nosuch", "Cmd": ["true"]})
    assert (e.value.status, e.value.message) == (404, "No such image: nosuch:latest")
    r = run(dy, "run", "--rm", "nosuch")
    assert r.returncode == 125
    assert r.stderr.startswith("Unable to find image 'nosuch:latest' locally\n")
    cid = run(dy, "create", "--name", "taken", "--network", "none", IMAGE, "true").stdout.strip()
    r = run(dy, "create", "--name", "taken", IMAGE, "true")
    assert r.returncode == 1
    assert docker_error(r.stderr) == (
        f'Conflict. The container name "/taken" is already in use by container "{cid}". You '
        "have to remove (or rename) that container to be able to reuse that name.")
    with pytest.raises(APIError) as e:
        dy.api().post("/containers/create", query={"name": "taken"},
                      body={"Image": IMAGE, "Cmd": ["true"]})
    assert e.value.status == 409
    assert len(dy.docker("ps", "-aq").stdout.split()) == 1  # nothing half-made


@pytest.mark.parametrize("args, message", [
    (("--memory", "1m"), "Minimum memory limit allowed is 6MB"),
    (("--memory", "10m", "--memory-swap", "8m"),
     "Minimum memoryswap limit should be larger than memory limit, see usage"),
    (("--memory", "10m", "--memory-reservation", "20m"),
     "Minimum memory limit can not be less than memory reservation limit, see usage"),
    (("--cpus", "64"), f"Range of CPUs is from 0.01 to {os.cpu_count()}.00, as there are only "
                       f"{os.cpu_count()} CPUs available"),
    (("--cpus", "1", "--cpu-period", "100000"),
     "Conflicting options: Nano CPUs and CPU Period cannot both be set"),
    (("--cpu-period", "10"), "CPU cfs period can not be less than 1ms (i.e. 1000) or larger "
                             "than 1s (i.e. 1000000)"),
    (("--cpuset-cpus", "99"), f"Requested CPUs are not available - requested 99, available: "
                              f"0-{os.cpu_count() - 1}"),
    (("--stop-signal", "FOO"), "Invalid signal: FOO"),
    (("-w", "relative"), "the working directory 'relative' is invalid, it needs to be an "
                         "absolute path"),
    (("--name", "bad name"), "Invalid container name (bad name), only [a-zA-Z0-9][a-zA-Z0-9_.-] "
                             "are allowed"),
    (("-u", "nobody2"), "unable to find user nobody2: no matching entries in passwd file"),
])
def test_invalid_values_are_refused_with_dockers_messages(dy, args, message):
    r = run(dy, "run", "--rm", "--network", "none", *args, IMAGE, "true")
    assert (r.returncode, docker_error(r.stderr)) == (125, message)
    assert dy.docker("ps", "-aq").stdout == ""  # nothing left behind


def test_invalid_values_through_the_api_are_400(dy):
    api = dy.api()
    for body, message in [
            ({"Image": IMAGE, "Cmd": ["true"], "Env": ["=x"]}, "invalid environment variable: =x"),
            ({"Image": IMAGE, "Cmd": ["true"], "HostConfig": {"Memory": 1}},
             "Minimum memory limit allowed is 6MB"),
            ({"Image": IMAGE, "Cmd": ["true"], "HostConfig": {"MemorySwappiness": 200}},
             "Invalid value: 200, valid memory swappiness range is 0-100"),
            ({"Image": IMAGE, "Cmd": ["true"], "HostConfig": {"OomScoreAdj": 5000}},
             "Invalid value 5000, range for oom score adj is [-1000, 1000]"),
            ({"Image": IMAGE, "Cmd": ["true"], "HostConfig": {
                "AutoRemove": True, "RestartPolicy": {"Name": "always"}}},
             "can't create 'AutoRemove' container with restart policy"),
            ({"Cmd": ["true"]}, "Config cannot be empty in order to create a container")]:
        with pytest.raises(APIError) as e:
            api.post("/containers/create", body=body)
        assert (e.value.status, e.value.message) == (400, message)
    # an unknown network is found at start, as dockerd does: 404, container left created
    r = run(dy, "run", "--network", "bogus", "--name", "nb", IMAGE, "true")
    assert (r.returncode, docker_error(r.stderr)) == (125, "network bogus not found")
    assert status(dy, "nb") == "created"


# -- prune and disk usage ------------------------------------------------------------------

def test_container_prune_and_system_df(dy):
    run(dy, "run", "--name", "writer", "--network", "none", IMAGE, "sh", "-c",
        "echo 0123456789 > /data")
    keep = run(dy, "create", "--name", "keep", "-l", "keep=1", "--network", "none", IMAGE,
               "true").stdout.strip()
    up = detached(dy, "--name", "up", IMAGE, "sleep", "1000")
    df = dy.docker("system", "df").stdout.splitlines()
    assert df[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert df[2].split()[:3] == ["Containers", "3", "1"]
    assert df[2].split()[3] == "11B"  # the file the writer left in its layer
    verbose = dy.docker("system", "df", "-v").stdout
    assert re.search(r"writer\n", verbose) and "LOCAL VOLUMES" in verbose
    writer = inspect(dy, "writer")["Id"]
    r = dy.docker("container", "prune", "-f", "--filter", "label!=keep")
    assert r.stdout == f"Deleted Containers:\n{writer}\n\nTotal reclaimed space: 11B\n"
    assert dy.docker("ps", "-aq", "--no-trunc").stdout.split() == [up, keep]
    r = dy.docker("container", "prune", "-f")
    assert r.stdout == f"Deleted Containers:\n{keep}\n\nTotal reclaimed space: 0B\n"
    assert dy.docker("ps", "-aq", "--no-trunc").stdout.split() == [up]


def test_system_prune(dy):
    run(dy, "create", "--network", "none", IMAGE, "true")
    r = dy.docker("system", "prune", "-f")
    assert r.returncode == 0, r.stderr
    assert dy.docker("ps", "-aq").stdout == ""


# -- docker-py ------------------------------------------------------------------------------

def test_docker_py_lifecycle(dy):
    client = dy.client()
    c = client.containers.run(IMAGE, ["sh", "-c", "echo out; echo err >&2; sleep 1000"],
                              detach=True, name="py", labels={"via": "py"},
                              network_mode="none", mem_limit="32m", environment={"K": "V"})
    dy.seen.add(c.id)
    wait_for(lambda: c.logs() == b"out\nerr\n", what="the output")
    assert c.logs(stderr=False) == b"out\n" and c.logs(stdout=False) == b"err\n"
    assert [x.name for x in client.containers.list(filters={"label": "via=py"})] == ["py"]
    c.reload()
    assert c.status == "running" and c.attrs["HostConfig"]["Memory"] == 32 << 20
    c.pause()
    c.reload()
    assert c.status == "paused"
    c.unpause()
    c.kill(signal="SIGKILL")
    assert c.wait()["StatusCode"] == 137
    c.reload()
    assert c.status == "exited" and c.attrs["State"]["ExitCode"] == 137
    out = client.containers.run(IMAGE, ["sh", "-c", "echo $K"], remove=True, network_mode="none",
                                environment={"K": "V"})
    assert out == b"V\n"
    c.remove()
    assert client.containers.list(all=True) == []
