"""`exec`: processes run in a running container, through our CLI, the docker CLI
and docker-py, checked against what dockerd 20.10 does.

The exec'd process is checked from the host's /proc: the same namespaces and
cgroups as the container's init, its capabilities (or every one the daemon
has with --privileged), rlimits and no_new_privs. Errors and exit codes
(126 for a command that cannot run, the daemon's message in the stream) are
compared between our CLI and docker's. `-it` runs through a real pty. Every
test removes its containers and leaves no process behind.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import wait_for
from test_cli_containers import assert_same
from test_containers_lifecycle import detached, dy  # noqa: F401

IMAGE = "busybox:local"
DOCKYARD = str(Path(sys.executable).parent / "dockyard")
NOT_FOUND = ('OCI runtime exec failed: exec failed: unable to start container process: exec: '
             '"nosuch": executable file not found in $PATH: unknown\r\n')


def exec_pid(dy, exec_id: str) -> int:
    wait_for(lambda: dy.api().get(f"/exec/{exec_id}/json")["Pid"], what="the exec to run")
    return dy.api().get(f"/exec/{exec_id}/json")["Pid"]


def proc_status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def namespaces(pid: int) -> dict[str, str]:
    return {n: os.readlink(f"/proc/{pid}/ns/{n}")
            for n in ("ipc", "mnt", "net", "pid", "uts", "cgroup", "user")}


def cgroups(pid: int) -> str:
    with open(f"/proc/{pid}/cgroup") as f:
        return f.read()


def start_detached(dy, container: str, cmd: list[str], **config) -> str:
    api = dy.api()
    exec_id = api.post(f"/containers/{container}/exec", body={"Cmd": cmd, **config})["Id"]
    api.request("POST", f"/exec/{exec_id}/start", body={"Detach": True}).read()
    return exec_id


# -- the three clients --------------------------------------------------------------

def test_exec_through_both_clis(dy, tmp_path):
    cid = detached(dy, "--name", "box", "-e", "FROM_RUN=1", IMAGE, "sleep", "1000")
    env_file = tmp_path / "env"
    env_file.write_text("FROM_FILE=2\n# a comment\n")
    for args, stdin in [
        (["exec", "box", "echo", "hi"], None),
        (["exec", "box", "sh", "-c", "echo out; echo err >&2; exit 3"], None),
        (["exec", "box", "nosuch"], None),                              # 126, message on stdout
        (["exec", "-i", "box", "sh", "-c", "cat; echo done"], "from stdin\n"),
        (["exec", "box", "cat"], "not read\n"),                         # no -i: no stdin
        (["exec", "-u", "1:2", "-w", "/proc", "-e", "A=b", "--env-file", str(env_file), "box",
          "sh", "-c", "id; pwd; echo $A $FROM_FILE $FROM_RUN $HOSTNAME; echo $HOME"], None),
        (["exec", "-w", "/nonexistent", "box", "pwd"], None),
        (["exec", "-u", "nobody", "box", "id"], None),                  # no /etc/passwd here
        (["exec", "nosuchcontainer", "true"], None),
        (["exec", "-it", "box", "true"], ""),                           # stdin is no terminal
        (["exec", "box"], None),
    ]:
        ours, theirs = dy.run_cli(*args, input=stdin), dy.docker(*args, input=stdin)
        assert_same(ours, theirs)
    ours = dy.run_cli("exec", "box", "nosuch")
    assert (ours.stdout, ours.returncode) == (NOT_FOUND.replace("\r\n", "\n"), 126)
    ours = dy.run_cli("exec", "box", "sh", "-c", "echo $FROM_RUN-$HOSTNAME-$PATH")
    assert ours.stdout == f"1-{cid[:12]}-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:" \
                          "/sbin:/bin\n"
    # -d: runs in the background, prints nothing
    for cli in (dy.run_cli, dy.docker):
        r = cli("exec", "-d", "box", "sh", "-c", "sleep 0.2; touch /started")
        assert (r.stdout, r.stderr, r.returncode) == ("", "", 0)
    wait_for(lambda: dy.docker("exec", "box", "ls", "/started").returncode == 0,
             what="the detached exec to run")


def test_exec_with_docker_py(dy):
    client = dy.client()
    detached(dy, "--name", "box", IMAGE, "sleep", "1000")
    box = client.containers.get("box")
    result = box.exec_run(["sh", "-c", "echo out; echo err >&2; exit 4"])
    assert (result.exit_code, result.output) == (4, b"out\nerr\n")
    result = box.exec_run(["sh", "-c", "echo out; echo err >&2"], demux=True)
    assert result.output == (b"out\n", b"err\n")
    chunks = list(box.exec_run(["sh", "-c", "echo a; sleep 0.05; echo b >&2; sleep 0.05; echo c"],
                               stream=True, demux=True).output)
    assert chunks == [(b"a\n", None), (None, b"b\n"), (b"c\n", None)]
    result = box.exec_run(["sh", "-c", "echo $0 $TERM; tty"], tty=True)
    assert result.output.replace(b"\r", b"").splitlines() == [b"sh xterm", b"/dev/pts/0"]
    # a socket: stdin in, half-close, multiplexed output out until the exec ends
    assert through_socket(box, ["sh", "-c", "cat; echo eof"], b"xyz\n") == (b"xyz\neof\n", b"")
    result = box.exec_run("nosuch")
    assert (result.exit_code, result.output) == (126, NOT_FOUND.encode())
    result = box.exec_run(["sh", "-c", "id -u; pwd; echo $X"], user="1", workdir="/etc",
                          privileged=True, environment={"X": "y"})
    assert (result.exit_code, result.output) == (0, b"1\n/etc\ny\n")


# -- what the process gets ------------------------------------------------------------

def test_exec_joins_the_container(dy):
    detached(dy, "--name", "box", "--ulimit", "nofile=100:200", "--cap-drop", "CHOWN",
             "--security-opt", "no-new-privileges", IMAGE, "sleep", "1000")
    init = dy.api().get("/containers/box/json")["State"]["Pid"]
    pid = exec_pid(dy, start_detached(dy, "box", ["sleep", "30"]))
    assert namespaces(pid) == namespaces(init)
    assert namespaces(pid)["pid"] != os.readlink("/proc/self/ns/pid")
    assert cgroups(pid) == cgroups(init)
    mine, theirs = proc_status(pid), proc_status(init)
    for key in ("CapBnd", "CapEff", "CapPrm", "CapInh", "CapAmb", "NoNewPrivs"):
        assert mine[key] == theirs[key], key
    assert mine["NoNewPrivs"] == "1"
    assert int(mine["CapBnd"], 16) & 1 == 0  # CAP_CHOWN dropped
    with open(f"/proc/{pid}/limits") as f:
        assert [ln.split()[3:5] for ln in f if ln.startswith("Max open files")] == [["100", "200"]]
    # the exec is PID > 1 of the container's pid namespace, a child of the shim
    out = dy.docker("exec", "box", "sh", "-c", "echo $$; cat /proc/1/cmdline")
    assert out.stdout.split("\n")[1] == "sleep\x001000\x00"
    with open(f"/proc/{pid}/stat") as f:
        parent = int(f.read().rsplit(")", 1)[1].split()[1])
    with open(f"/proc/{init}/stat") as f:
        assert parent == int(f.read().rsplit(")", 1)[1].split()[1])
    # --privileged: every capability the daemon has, still in the same namespaces
    priv = exec_pid(dy, start_detached(dy, "box", ["sleep", "30"], Privileged=True))
    daemon_caps = proc_status(dy.proc.pid)["CapEff"]
    assert proc_status(priv)["CapEff"] == daemon_caps
    assert proc_status(priv)["CapBnd"] == daemon_caps
    assert namespaces(priv) == namespaces(init)
    # -u: uid and gid (and the supplementary group is the gid)
    user = exec_pid(dy, start_detached(dy, "box", ["sleep", "30"], User="1000:1001"))
    status = proc_status(user)
    assert status["Uid"].split()[0] == "1000" and status["Gid"].split()[0] == "1001"
    assert status["Groups"].split() == ["1001"]


# -- errors, events, inspect ---------------------------------------------------------

def test_exec_errors_and_inspect(dy):
    api = dy.api()
    cid = detached(dy, "--name", "box", IMAGE, "sleep", "1000")
    since = time.time()
    try:
        body = {"Cmd": ["sh", "-c", "exit 7"], "AttachStdout": True, "User": "0"}
        exec_id = api.post("/containers/box/exec", body=body)["Id"]
        assert api.get("/containers/box/json")["ExecIDs"] == [exec_id]
        info = api.get(f"/exec/{exec_id}/json")
        assert info == {"ID": exec_id, "Running": False, "ExitCode": None,
                        "ProcessConfig": {"tty": False, "entrypoint": "sh",
                                          "arguments": ["-c", "exit 7"], "privileged": False,
                                          "user": "0"},
                        "OpenStdin": False, "OpenStderr": False, "OpenStdout": True,
                        "CanRemove": False, "ContainerID": cid, "DetachKeys": "", "Pid": 0}
        api.request("POST", f"/exec/{exec_id}/start", body={"Detach": True}).read()
        wait_for(lambda: api.get(f"/exec/{exec_id}/json")["ExitCode"] == 7, what="the exit")
        assert api.get(f"/exec/{exec_id}/json")["Running"] is False
        assert api.get("/containers/box/json")["ExecIDs"] is None
        # an exec runs once
        r = raw(dy, "POST", f"/exec/{exec_id}/start", {"Detach": True})
        assert r[:2] == (409, {"message": f"Error: Exec command {exec_id} has already run"})
        # a finished exec cannot be resized; a running non-TTY one can (nothing to do)
        assert raw(dy, "POST", f"/exec/{exec_id}/resize?h=10&w=20")[:2] == \
            (404, {"message": "no such exec"})
        sleeper = start_detached(dy, "box", ["sleep", "30"])
        exec_pid(dy, sleeper)
        assert raw(dy, "POST", f"/exec/{sleeper}/resize?h=10&w=20")[0] == 200
        assert raw(dy, "POST", f"/exec/{sleeper}/resize?h=x&w=20")[:2] == \
            (400, {"message": 'strconv.Atoi: parsing "x": invalid syntax'})
        for method, path in [("GET", "/exec/nosuch/json"), ("POST", "/exec/nosuch/start"),
                             ("POST", "/exec/nosuch/resize?h=1&w=1")]:
            assert raw(dy, method, path, {} if method == "POST" else None)[:2] == \
                (404, {"message": "No such exec instance: nosuch"})
        assert raw(dy, "POST", "/containers/box/exec", {"Cmd": []})[:2] == \
            (400, {"message": "No exec command specified"})
        assert raw(dy, "POST", "/containers/box/exec", {"Cmd": ["true"], "DetachKeys": "ctrl-"}
                   )[:2] == (500, {"message": "Invalid escape keys (ctrl-) provided"})
        keyed = api.post("/containers/box/exec", body={"Cmd": ["true"],
                                                       "DetachKeys": "ctrl-p,ctrl-q"})["Id"]
        assert api.get(f"/exec/{keyed}/json")["DetachKeys"] == "EBE="
        # the same exec started twice over hijacked streams: the second is told in-stream
        status, _, data = raw(dy, "POST", f"/exec/{exec_id}/start", {"Tty": False}, hijack=True)
        assert (status, data) == (101, frame(f"Error: Exec command {exec_id} has already run"))
        # paused, then stopped
        assert dy.docker("pause", "box").returncode == 0
        for cli in (dy.run_cli, dy.docker):
            r = cli("exec", "box", "true")
            assert (r.stderr, r.returncode) == (
                "Error response from daemon: Container box is paused, unpause the container "
                "before exec\n", 1)
        assert raw(dy, "POST", f"/exec/{keyed}/start", {"Detach": True})[:2] == (409, {
            "message": f"Container {cid} is paused, unpause the container before exec"})
        assert dy.docker("unpause", "box").returncode == 0
        assert dy.docker("kill", "box").returncode == 0
        ours, theirs = dy.run_cli("exec", "box", "true"), dy.docker("exec", "box", "true")
        assert_same(ours, theirs)
        assert theirs.stderr == f"Error response from daemon: Container {cid} is not running\n"
        assert theirs.returncode == 1
        # an exec that was running when its container died has an exit code
        wait_for(lambda: api.get(f"/exec/{sleeper}/json")["ExitCode"] == 137,
                 what="the exec to die with its container")
    finally:
        out = dy.docker("events", "--since", f"{since:.3f}", "--until", f"{time.time() + 1:.3f}",
                        "--format", "{{json .}}", "--filter", "container=box").stdout
    actions = [json.loads(line) for line in out.splitlines()]
    execs = [(e["Action"], e["Actor"]["Attributes"].get("execID"),
              e["Actor"]["Attributes"].get("exitCode")) for e in actions
             if e["Action"].startswith("exec_") and e["Actor"]["Attributes"].get("execID")
             == exec_id]
    assert execs == [("exec_create: sh -c exit 7", exec_id, None),
                     ("exec_start: sh -c exit 7", exec_id, None),
                     ("exec_die", exec_id, "7")]
    assert any(e["Action"] == "exec_create: true " for e in actions)  # dockerd's trailing space


def through_socket(container, cmd: list[str], stdin: bytes) -> tuple[bytes, bytes]:
    """docker-py's exec_run(socket=True): `stdin` sent, then half-closed; the
    demultiplexed output, read to the end of the stream."""
    sock = container.exec_run(cmd, socket=True, stdin=True).output._sock
    try:
        sock.sendall(stdin)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    finally:
        sock.close()
    return demux(data)


def demux(data: bytes) -> tuple[bytes, bytes]:
    """stdout and stderr of a multiplexed stream (frames are cut where the shim read)."""
    out = {1: b"", 2: b""}
    while data:
        stream, size = data[0], int.from_bytes(data[4:8], "big")
        assert len(data) >= 8 + size
        out[stream] += data[8:8 + size]
        data = data[8 + size:]
    return out[1], out[2]


def frame(text: str) -> bytes:
    line = (text + "\r\n").encode()
    return bytes([1, 0, 0, 0]) + len(line).to_bytes(4, "big") + line


def raw(dy, method: str, path: str, body=None, hijack: bool = False):
    """(status, JSON body or None, raw bytes after the headers) of one request."""
    data = json.dumps(body).encode() if body is not None else b""
    headers = f"{method} {path} HTTP/1.1\r\nHost: d\r\nContent-Length: {len(data)}\r\n"
    if body is not None:
        headers += "Content-Type: application/json\r\n"
    if hijack:
        headers += "Connection: Upgrade\r\nUpgrade: tcp\r\n"
    else:
        headers += "Connection: close\r\n"
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(30)
        s.connect(dy.socket)
        s.sendall(headers.encode() + b"\r\n" + data)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    head, _, rest = reply.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    if b"chunked" in head.lower():
        rest = _unchunk(rest)
    try:
        doc = json.loads(rest) if rest.strip() and not hijack else None
    except ValueError:
        doc = None
    return status, doc, rest


def _unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size, _, data = data.partition(b"\r\n")
        n = int(size, 16)
        if n == 0:
            break
        out, data = out + data[:n], data[n + 2:]
    return out


# -- a real terminal ------------------------------------------------------------------

@pytest.mark.parametrize("cli", ["dockyard", "docker"])
def test_exec_it_through_a_pty(dy, cli):
    import pexpect

    detached(dy, "--name", "box", IMAGE, "sleep", "1000")
    argv = [DOCKYARD if cli == "dockyard" else "docker", "-H", dy.host, "exec", "-it", "box",
            "sh"]
    child = pexpect.spawn(argv[0], argv[1:], env=dy.env(), dimensions=(30, 100), timeout=20)
    try:
        child.expect(r"# ")
        child.sendline("echo $((6*7)); tty; stty size")
        child.expect(r"42\r\n/dev/pts/\d+\r\n30 100\r\n")
        child.setwinsize(40, 120)  # SIGWINCH: the CLI resizes the exec's pty
        child.expect(r"# ")
        wait_for(lambda: _stty(child) == "40 120", what="the resize to reach the exec")
        child.sendline("exit 5")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 5
    # the detach keys leave the exec's shell running
    argv[4:4] = ["--detach-keys", "ctrl-x,x"]
    child = pexpect.spawn(argv[0], argv[1:], env=dy.env(), dimensions=(30, 100), timeout=20)
    try:
        child.expect(r"# ")
        child.send("\x18x")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    # the CLI watches for the keys too, and says so
    assert (child.before.endswith(b"read escape sequence\r\n"), child.exitstatus) == (True, 1)
    ps = dy.docker("exec", "box", "ps", "-o", "comm").stdout.split()
    assert ps.count("sh") == 1


def _stty(child) -> str:
    child.sendline("stty size")
    child.expect(r"(\d+ \d+)\r\n")
    return child.match.group(1).decode()


# -- a restarted daemon -----------------------------------------------------------------

def test_exec_after_the_daemon_was_killed(dy):
    detached(dy, "--name", "box", IMAGE, "sleep", "1000")
    long_running = start_detached(dy, "box", ["sleep", "1000"])
    pid = exec_pid(dy, long_running)
    dy.stop(signal.SIGKILL)
    dy.start()
    r = dy.docker("exec", "box", "sh", "-c", "echo back; exit 2")
    assert (r.stdout, r.returncode) == ("back\n", 2)
    box = dy.client().containers.get("box")
    assert through_socket(box, ["cat"], b"again\n") == (b"again\n", b"")
    assert os.path.exists(f"/proc/{pid}")  # the exec of the previous daemon still runs


# -- the runtime's CLI ----------------------------------------------------------------

def test_exec_through_runtime_clis(dy, tmp_path):
    """runc's `exec --process --detach --pid-file` from the shim, and our
    runtime's `exec` verb run as a program, with and without --detach."""
    detached(dy, "--name", "byrunc", "--runtime", "runc", IMAGE, "sleep", "1000")
    r = dy.docker("exec", "-i", "byrunc", "sh", "-c", "cat; exit 3", input="via runc\n")
    assert (r.stdout, r.returncode) == ("via runc\n", 3)
    r = dy.docker("exec", "byrunc", "nosuch")
    assert (r.stdout, r.returncode) == (NOT_FOUND.replace("\r\n", "\n"), 126)
    result = dy.client().containers.get("byrunc").exec_run(["sh", "-c", "echo $TERM"], tty=True)
    assert result.output == b"xterm\r\n"

    cid = detached(dy, "--name", "ours", IMAGE, "sleep", "1000")
    runtime = [str(Path(sys.executable).parent / "dockyard-runtime"), "--root",
               os.path.join(dy.exec_root, "runtime"), "exec"]
    r = subprocess.run([*runtime, "--cwd", "/proc", "-e", "X=1", cid, "sh", "-c",
                        "echo $X $$ $(pwd); exit 4"], capture_output=True, text=True, timeout=30)
    assert (r.stdout, r.returncode) == ("1 2 /proc\n", 4)  # the first exec: pid 2
    pid_file = tmp_path / "pid"
    r = subprocess.run([*runtime, "-d", "--pid-file", str(pid_file), cid, "sleep", "30"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    assert r.returncode == 0  # (the process keeps its stdio: none that we wait on)
    pid = int(pid_file.read_text())
    init = dy.api().get("/containers/ours/json")["State"]["Pid"]
    assert namespaces(pid) == namespaces(init) and cgroups(pid) == cgroups(init)
    os.kill(pid, signal.SIGKILL)
    r = subprocess.run([*runtime, cid, "nosuch"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert r.stderr.endswith(' level=error msg="exec failed: unable to start container process: '
                             'exec: \\"nosuch\\": executable file not found in $PATH"\n')
