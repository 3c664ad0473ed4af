"""The shim against a real OCI runtime (runc, and ours when it is installed).

Each test builds an OCI bundle on a busybox rootfs (unpacked once from the
fixture archive made by real docker), spawns a shim through
dockyard.runtime.shimclient, and checks what a daemon would see: frames on an
attached connection, the json-file log, the wait reply and the exit file.
Every container, shim process, cgroup and temporary directory is removed even
when a test fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from dockyard.runtime import logfile, shimclient
from dockyard.runtime.shimclient import read_frame
from harness import fd_targets
from paths import FIXTURES, REPO

RUNC = "/usr/sbin/runc"
CGROUP_PARENT = "dyshimtest"
TIME_RE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z"


OURS = str(Path(sys.executable).parent / "dockyard-runtime")


def _runtimes() -> list:
    """(runtime, spawn() keywords): runc; ours, which the shim runs in its own
    forks; ours again, executed as a program, as the shim runs runc."""
    found = []
    if os.path.exists(RUNC):
        found.append(pytest.param((RUNC, {}), id="runc"))
    if os.path.exists(OURS):
        found.append(pytest.param((OURS, {}), id="dockyard-runtime"))
        found.append(pytest.param((OURS, {"exec_runtime": True}), id="dockyard-runtime-exec"))
    return found


@pytest.fixture(scope="session")
def rootfs():
    """busybox's root filesystem, from the layer in the `docker save` fixture
    (shared, read-only, by every container of the session)."""
    base = tempfile.mkdtemp(prefix="dyshim-rootfs-", dir="/tmp")
    root = os.path.join(base, "rootfs")
    try:
        os.mkdir(root)
        with tarfile.open(FIXTURES / "busybox.docker-save.tar") as archive:
            manifest = json.load(archive.extractfile("manifest.json"))
            for layer in manifest[0]["Layers"]:
                data = archive.extractfile(layer).read()
                with tarfile.open(fileobj=io.BytesIO(data)) as layer_tar:
                    layer_tar.extractall(root, numeric_owner=True, filter="fully_trusted")
        yield root
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def spec_template() -> dict:
    """`runc spec`'s default config.json."""
    with tempfile.TemporaryDirectory(prefix="dyshim-spec-") as where:
        subprocess.run([RUNC, "spec"], cwd=where, check=True)
        with open(os.path.join(where, "config.json")) as f:
            return json.load(f)


@pytest.fixture(scope="session", autouse=True)
def _cgroup_parent():
    yield
    for parent in Path("/sys/fs/cgroup").glob(f"*/{CGROUP_PARENT}"):
        with contextlib.suppress(OSError):
            parent.rmdir()


class Lab:
    """Bundles, shims and containers of one test, and their cleanup."""

    def __init__(self, runtime: str, rootfs: str, template: dict, spawn_kw: dict | None = None):
        self.runtime, self.rootfs, self.template = runtime, rootfs, template
        self.spawn_kw = spawn_kw or {}
        self.base = tempfile.mkdtemp(prefix="dyshim-", dir="/tmp")
        self.root = os.path.join(self.base, "runtime-root")
        self.ids: list[str] = []
        self.shim_pids: list[int] = []

    def bundle(self, args: list[str], tty: bool = False,
               resources: dict | None = None) -> tuple[str, str]:
        cid = "shimtest-" + uuid.uuid4().hex[:12]
        self.ids.append(cid)
        bundle = os.path.join(self.base, cid)
        os.makedirs(bundle)
        config = json.loads(json.dumps(self.template))
        config["root"] = {"path": self.rootfs, "readonly": True}
        config["process"]["args"] = args
        config["process"]["terminal"] = tty
        config["linux"]["cgroupsPath"] = f"/{CGROUP_PARENT}/{cid}"
        if resources:
            config["linux"].setdefault("resources", {}).update(resources)
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(config, f)
        return cid, bundle

    def paths(self, bundle: str) -> dict:
        return {"socket": os.path.join(bundle, "shim.sock"),
                "exit_file": os.path.join(bundle, "exit.json"),
                "log_path": os.path.join(bundle, "container-json.log")}

    async def spawn(self, args: list[str], tty: bool = False, stdin: bool = False,
                    runtime: str | None = None, resources: dict | None = None, **kw):
        cid, bundle = self.bundle(args, tty, resources)
        p = self.paths(bundle)
        handle = await shimclient.spawn(
            id=cid, bundle=bundle, runtime=runtime or self.runtime, runtime_root=self.root,
            socket=p["socket"], exit_file=p["exit_file"], log_path=p["log_path"],
            stdin=stdin, tty=tty, **{**self.spawn_kw, **kw})
        self.shim_pids.append(handle.shim_pid)
        return handle, bundle, p

    def wait_shim_gone(self, pid: int, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while _alive(pid):
            assert time.monotonic() < deadline, f"shim {pid} still running"
            time.sleep(0.02)

    def shims_exit(self) -> bool:
        """Whether every shim exited by itself (a shim runs `runtime delete`
        after answering wait, so it may outlive the test by a moment); if not,
        kill the containers (which ends their shims)."""
        deadline = time.monotonic() + 5
        while any(_alive(pid) for pid in self.shim_pids) and time.monotonic() < deadline:
            time.sleep(0.02)
        if not any(_alive(pid) for pid in self.shim_pids):
            return True
        for cid in self.ids:
            subprocess.run([self.runtime, "--root", self.root, "kill", "--all", cid, "KILL"],
                           capture_output=True)
        deadline = time.monotonic() + 5
        while any(_alive(pid) for pid in self.shim_pids) and time.monotonic() < deadline:
            time.sleep(0.02)
        return False

    def cleanup(self) -> None:
        for cid in self.ids:
            for verb in (["kill", "--all", cid, "KILL"], ["delete", "--force", cid]):
                subprocess.run([self.runtime, "--root", self.root, *verb], capture_output=True)
        for pid in self.shim_pids:
            if _alive(pid) and b"dockyard.runtime.shim" in _cmdline(pid):
                os.kill(pid, signal.SIGKILL)
        for cid in self.ids:
            for cg in Path("/sys/fs/cgroup").glob(f"*/{CGROUP_PARENT}/{cid}"):
                for _ in range(50):
                    try:
                        cg.rmdir()
                        break
                    except FileNotFoundError:
                        break
                    except OSError:
                        time.sleep(0.02)
        shutil.rmtree(self.base, ignore_errors=True)

    def leftover_cgroups(self) -> list[str]:
        return [str(cg) for cid in self.ids
                for cg in Path("/sys/fs/cgroup").glob(f"*/{CGROUP_PARENT}/{cid}")]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _cmdline(pid: int) -> bytes:
    """b"" for a process gone meanwhile: its /proc entry vanishes (ENOENT),
    or, read as it exits, answers ESRCH."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError):
        return b""


def _holds(pid: int, directory: str) -> bool:
    return any(t.startswith(directory + "/") for t in fd_targets(pid).values())


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


@pytest.fixture(params=_runtimes())
def lab(request, rootfs, spec_template):
    runtime, spawn_kw = request.param
    lab = Lab(runtime, rootfs, spec_template, spawn_kw)
    try:
        yield lab
    finally:
        clean = lab.shims_exit()
        leftover = lab.leftover_cgroups()
        lab.cleanup()
    assert clean, "a shim outlived its test's containers"
    assert not leftover, f"cgroups left behind: {leftover}"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def collect(reader) -> list[tuple[int, bytes]]:
    frames = []
    while (frame := await read_frame(reader)) is not None:
        frames.append(frame)
    return frames


def joined(frames, stream: int) -> bytes:
    return b"".join(data for s, data in frames if s == stream)


# -- output ----------------------------------------------------------------------

def test_echo_framed_on_attach_and_in_json_log(lab):
    async def go():
        shim, bundle, p = await lab.spawn(["echo", "hi"])
        assert shim.pid > 0
        assert (await shim.state())["status"] == "created"
        reader, writer = await shim.attach(stdout=True, stderr=True)
        await shim.start()
        frames = await collect(reader)
        writer.close()
        assert frames == [(1, b"hi\n")]
        result = await shim.wait()
        assert result["exit_code"] == 0 and result["oom_killed"] is False
        with open(p["log_path"], "rb") as f:
            log = f.read()
        assert re.fullmatch(rb'\{"log":"hi\\n","stream":"stdout","time":"' + TIME_RE.encode()
                            + rb'"\}\n', log), log
        assert list(logfile.read(p["log_path"]))[0][::2] == ("stdout", b"hi\n")
        lab.wait_shim_gone(shim.shim_pid)
        assert not os.path.exists(p["socket"])
        assert oct(os.stat(p["log_path"]).st_mode & 0o777) == "0o640"
    run(go())


def test_stdout_and_stderr_kept_apart(lab):
    async def go():
        shim, bundle, p = await lab.spawn(["sh", "-c", "echo out; echo err >&2; echo out2"])
        both_r, both_w = await shim.attach(stdout=True, stderr=True)
        out_r, out_w = await shim.attach(stdout=True, stderr=False)
        err_r, err_w = await shim.attach(stdout=False, stderr=True)
        await shim.start()
        both, out, err = await asyncio.gather(collect(both_r), collect(out_r), collect(err_r))
        for w in (both_w, out_w, err_w):
            w.close()
        assert joined(both, 1) == b"out\nout2\n" and joined(both, 2) == b"err\n"
        assert joined(out, 1) == b"out\nout2\n" and not joined(out, 2)
        assert joined(err, 2) == b"err\n" and not joined(err, 1)
        await shim.wait()
        entries = list(logfile.read(p["log_path"]))
        assert sorted((s, d) for s, _, d in entries) == [
            ("stderr", b"err\n"), ("stdout", b"out\n"), ("stdout", b"out2\n")]
    run(go())


def test_stdin_through_cat_until_half_close(lab):
    async def go():
        shim, bundle, p = await lab.spawn(["cat"], stdin=True)
        reader, writer = await shim.attach(stdin=True, stdout=True, stderr=True)
        await shim.start()
        writer.write(b"hello\n")
        await writer.drain()
        first = await read_frame(reader)
        assert first == (1, b"hello\n")
        writer.write(b"no newline at the end")
        writer.write_eof()  # -> EOF on cat's stdin -> cat exits 0
        rest = await collect(reader)
        writer.close()
        assert joined(rest, 1) == b"no newline at the end"
        assert (await shim.wait())["exit_code"] == 0
        # the unterminated tail is a partial entry: no newline added
        assert [d for _, _, d in logfile.read(p["log_path"])] == [b"hello\n",
                                                                  b"no newline at the end"]
    run(go())


def test_stdin_once_false_keeps_stdin_open_for_the_next_client(lab):
    async def go():
        shim, bundle, p = await lab.spawn(["cat"], stdin=True)
        first_r, first_w = await shim.attach(stdin=True, stdout=True, stdin_once=False)
        await shim.start()
        first_w.write(b"one\n")
        await first_w.drain()
        assert await read_frame(first_r) == (1, b"one\n")
        first_w.close()  # a detach: cat's stdin stays open
        await asyncio.sleep(0.2)
        assert (await shim.state())["status"] == "running"
        reader, writer = await shim.attach(stdin=True, stdout=True)
        writer.write(b"two\n")
        writer.write_eof()
        assert joined(await collect(reader), 1) == b"two\n"
        writer.close()
        assert (await shim.wait())["exit_code"] == 0
    run(go())


def test_clients_that_hang_up_leave_no_fd_and_cost_no_cpu(lab):
    async def go():
        shim, bundle, p = await lab.spawn(["sleep", "30"], stdin=True)
        await shim.start()
        await asyncio.sleep(0.1)
        fds = len(os.listdir(f"/proc/{shim.shim_pid}/fd"))
        for _ in range(3):
            reader, writer = await shim.attach(stdin=True, stdout=True, stdin_once=False)
            writer.close()
        await asyncio.sleep(0.1)
        before = _cpu_ticks(shim.shim_pid)
        await asyncio.sleep(1.0)
        assert _cpu_ticks(shim.shim_pid) - before <= 2  # no busy loop on POLLHUP
        assert len(os.listdir(f"/proc/{shim.shim_pid}/fd")) <= fds
        await shim.kill("KILL")
        await shim.wait()
    run(go())


def _cpu_ticks(pid: int) -> int:
    fields = _stat(pid)
    return int(fields[11]) + int(fields[12])  # utime + stime


def test_without_stdin_the_container_reads_dev_null(lab):
    async def go():
        shim, bundle, p = await lab.spawn(["sh", "-c", "cat; echo done"])
        reader, writer = await shim.attach(stdin=True, stdout=True)
        await shim.start()
        assert joined(await collect(reader), 1) == b"done\n"
        writer.close()
        assert (await shim.wait())["exit_code"] == 0
    run(go())


# -- exit -------------------------------------------------------------------------

def test_exit_code_propagates_and_exit_file_matches(lab):
    async def go():
        shim, bundle, p = await lab.spawn(["sh", "-c", "exit 3"])
        waiter = asyncio.create_task(shim.wait())
        await asyncio.sleep(0.05)
        assert not waiter.done()  # answered at exit, not before
        await shim.start()
        result = await waiter
        assert result["exit_code"] == 3
        assert re.fullmatch(TIME_RE, result["finished_at"])
        with open(p["exit_file"]) as f:
            assert json.load(f) == result
        lab.wait_shim_gone(shim.shim_pid)
        # the shim is gone: the handle answers from the exit file
        assert await shim.wait() == result
        assert (await shim.state())["status"] == "stopped"
        with pytest.raises(OSError):
            await shimclient.connect(p["socket"])
    run(go())


def test_killed_by_signal_is_128_plus_signal(lab):
    async def go():
        shim, bundle, p = await lab.spawn(["sleep", "30"])
        await shim.start()
        assert (await shim.state())["status"] == "running"
        await shim.kill("KILL")
        assert (await shim.wait())["exit_code"] == 137
    run(go())


def test_oom_kill_is_reported(lab):
    async def go():
        shim, bundle, p = await lab.spawn(
            ["sh", "-c", "dd if=/dev/zero of=/dev/null bs=64M count=1"],
            resources={"memory": {"limit": 16 * 1024 * 1024}})
        await shim.start()
        return await shim.wait()

    result = run(go())
    assert result["exit_code"] == 137 and result["oom_killed"] is True


def test_wait_answered_at_once_for_an_exited_container(lab):
    # a runtime whose `delete` is slow keeps the shim up after the exit
    slow = Path(lab.base) / "slow-delete-runtime"
    slow.write_text(f'#!/bin/sh\nfor a; do [ "$a" = delete ] && sleep 2; done\n'
                    f'exec {lab.runtime} "$@"\n')
    slow.chmod(0o755)

    async def go():
        shim, bundle, p = await lab.spawn(["sh", "-c", "exit 7"], runtime=str(slow))
        await shim.start()
        first = await shim.wait()
        assert _alive(shim.shim_pid)
        again = await shimclient.connect(p["socket"], p["exit_file"])
        started = time.monotonic()
        assert await again.wait() == first
        assert time.monotonic() - started < 0.5
        state = await again.state()
        assert state["status"] == "stopped" and state["exit_code"] == 7
        reader, writer = await again.attach(stdout=True)  # nothing more will come
        assert await collect(reader) == []
        writer.close()
        lab.wait_shim_gone(shim.shim_pid)
    run(go())


def test_exit_file_is_replaced_atomically(lab):
    seen: list[str] = []
    stop = threading.Event()

    def watch(path: str) -> None:
        while not stop.is_set():
            try:
                with open(path) as f:
                    seen.append(f.read())
            except FileNotFoundError:
                pass

    async def go():
        shim, bundle, p = await lab.spawn(["sh", "-c", "exit 5"])
        with open(p["exit_file"], "w") as f:
            f.write('{"stale": true}')
        before = os.stat(p["exit_file"]).st_ino
        t = threading.Thread(target=watch, args=(p["exit_file"],))
        t.start()
        try:
            await shim.start()
            result = await shim.wait()
        finally:
            stop.set()
            t.join()
        assert os.stat(p["exit_file"]).st_ino != before  # renamed into place, not rewritten
        for text in seen:  # never a torn or empty file
            assert json.loads(text) in ({"stale": True}, result)
        assert not [n for n in os.listdir(bundle) if n.startswith(".tmp-")]
    run(go())


# -- detaching and reconnecting ----------------------------------------------------

SPAWN_AND_LEAVE = """
import asyncio, json, sys
from dockyard.runtime import shimclient
kw = json.loads(sys.argv[1])
h = asyncio.run(shimclient.spawn(**kw))
print(json.dumps({"pid": h.pid, "shim_pid": h.shim_pid}), flush=True)
"""


def test_shim_survives_its_parent_and_reconnects(lab):
    cid, bundle = lab.bundle(["sh", "-c", "read line; echo got $line"])
    p = lab.paths(bundle)
    kw = dict(id=cid, bundle=bundle, runtime=lab.runtime, runtime_root=lab.root,
              stdin=True, **p, **lab.spawn_kw)
    parent = subprocess.run([sys.executable, "-c", SPAWN_AND_LEAVE, json.dumps(kw)],
                            capture_output=True, check=True, cwd=REPO, timeout=60)
    info = json.loads(parent.stdout)
    lab.shim_pids.append(info["shim_pid"])
    shim_pid = info["shim_pid"]
    assert _alive(shim_pid)
    stat = _stat(shim_pid)
    ppid, sid = int(stat[1]), int(stat[3])
    assert sid != os.getsid(0) and sid != shim_pid  # own session, not its leader
    assert ppid != os.getpid()

    async def go():
        shim = await shimclient.connect(p["socket"], p["exit_file"])
        assert shim.pid == info["pid"]
        assert (await shim.state())["status"] == "created"
        reader, writer = await shim.attach(stdin=True, stdout=True)
        await shim.start()
        writer.write(b"ping\n")
        await writer.drain()
        assert joined(await collect(reader), 1) == b"got ping\n"
        writer.close()
        assert (await shim.wait())["exit_code"] == 0
    run(go())
    lab.wait_shim_gone(shim_pid)


def test_socket_paths_longer_than_sockaddr_un(lab):
    """A bundle deep enough that <bundle>/shim.sock and the console socket do not
    fit in sockaddr_un's 108 bytes (the daemon's exec-root can be that deep)."""
    async def go():
        cid, bundle = lab.bundle(["sh", "-c", "read x; echo got $x"], tty=True)
        deep = os.path.join(bundle, "d" * 60, "e" * 60)
        os.makedirs(deep)
        sock = os.path.join(deep, "shim.sock")
        assert len(sock) > 108
        os.rename(os.path.join(bundle, "config.json"), os.path.join(deep, "config.json"))
        shim = await shimclient.spawn(id=cid, bundle=deep, runtime=lab.runtime,
                                      runtime_root=lab.root, socket=sock,
                                      exit_file=os.path.join(deep, "exit.json"),
                                      log_path=os.path.join(deep, "log.json"), tty=True,
                                      stdin=True, **lab.spawn_kw)
        lab.shim_pids.append(shim.shim_pid)
        again = await shimclient.connect(sock)
        reader, writer = await again.attach(stdin=True, stdout=True)
        await again.start()
        writer.write(b"deep\r")
        await writer.drain()
        assert b"got deep" in joined(await collect(reader), 1)
        writer.close()
        assert (await shim.wait())["exit_code"] == 0
    run(go())


# -- log files ----------------------------------------------------------------------

def test_log_rotation_at_max_size_with_max_file(lab):
    script = 'i=0; while [ $i -lt 300 ]; do echo "line $i"; i=$((i+1)); done'

    async def go():
        shim, bundle, p = await lab.spawn(["sh", "-c", script],
                                          log_opts={"max-size": "1k", "max-file": "3"})
        await shim.start()
        await shim.wait()
        return p["log_path"]

    path = run(go())
    names = sorted(n for n in os.listdir(os.path.dirname(path)) if n.startswith("container-json"))
    assert names == ["container-json.log", "container-json.log.1", "container-json.log.2"]
    one = len(b'{"log":"line 100\\n","stream":"stdout","time":"2026-11-28T02:36:04.123456789Z"}\n')
    for rotated in (path + ".1", path + ".2"):
        assert 1000 <= os.path.getsize(rotated) < 1000 + one
    lines = [d for _, _, d in logfile.read(path)]
    assert lines[-1] == b"line 299\n"
    first = int(lines[0].split()[1])
    assert lines == [f"line {i}\n".encode() for i in range(first, 300)]  # oldest dropped
    assert [d for _, _, d in logfile.read(path, tail=5)] == lines[-5:]


def test_long_line_is_split_into_partial_messages_like_docker(lab):
    script = "head -c 40000 /dev/zero | tr '\\0' a; echo; echo short"

    async def go():
        shim, bundle, p = await lab.spawn(["sh", "-c", script])
        reader, writer = await shim.attach(stdout=True)
        await shim.start()
        out = joined(await collect(reader), 1)
        writer.close()
        await shim.wait()
        return out, p["log_path"]

    out, path = run(go())
    assert out == b"a" * 40000 + b"\nshort\n"  # attach gets the bytes unsplit
    with open(path, "rb") as f:
        records = [json.loads(line) for line in f]
    assert [len(r["log"]) for r in records] == [16384, 16384, 40000 - 2 * 16384 + 1, 6]
    assert records[0]["log"].endswith("a") and records[2]["log"].endswith("a\n")
    assert records[0]["time"] == records[1]["time"] == records[2]["time"]


def test_local_and_none_drivers(lab):
    async def go(driver):
        shim, bundle, p = await lab.spawn(["sh", "-c", "echo one; echo two >&2"],
                                          log_driver=driver)
        await shim.start()
        await shim.wait()
        return p["log_path"]

    path = run(go("local"))
    assert sorted((s, d) for s, _, d in logfile.read(path, driver="local")) == [
        ("stderr", b"two\n"), ("stdout", b"one\n")]
    path = run(go("none"))
    assert not os.path.exists(path)


# -- failures ---------------------------------------------------------------------

def test_create_failure_reports_the_runtimes_error_and_leaves_no_shim(lab):
    async def go():
        with pytest.raises(shimclient.RuntimeFailed) as info:
            await lab.spawn(["nosuch"])
        return info.value

    error = run(go())
    assert isinstance(error, shimclient.errdefs.System)
    assert 'exec: "nosuch": executable file not found in $PATH' in str(error)
    cid = lab.ids[-1]
    # (a shim forked by the fork server has the server's command line: a shim
    # left behind would still hold its log, <bundle>/shim.log, as stderr)
    bundle = os.path.join(lab.base, cid)
    leftovers = [pid for pid in os.listdir("/proc") if pid.isdigit()
                 and (cid.encode() in _cmdline(int(pid)) or _holds(int(pid), bundle))]
    assert leftovers == []
    listing = subprocess.run([lab.runtime, "--root", lab.root, "list", "-q"],
                             capture_output=True, text=True)
    assert cid not in listing.stdout
    assert not os.path.exists(lab.paths(os.path.join(lab.base, cid))["socket"])


def test_a_missing_runtime_or_bad_log_opt_fails_the_spawn(lab):
    async def go(**kw):
        with pytest.raises(shimclient.RuntimeFailed) as info:
            await lab.spawn(["true"], **kw)
        return str(info.value)

    assert run(go(runtime="/nonexistent/runc")) == \
        "/nonexistent/runc: No such file or directory"
    assert run(go(log_opts={"max-size": "ten"})) == "invalid size: 'ten'"


def test_second_start_is_refused_as_runtime_failed(lab):
    async def go():
        shim, bundle, p = await lab.spawn(["sleep", "30"])
        await shim.start()
        with pytest.raises(shimclient.RuntimeFailed):
            await shim.start()
        await shim.kill("KILL")
        assert (await shim.wait())["exit_code"] == 137
    run(go())


# -- terminals --------------------------------------------------------------------

def test_tty_raw_output_and_resize(lab):
    async def go():
        shim, bundle, p = await lab.spawn(["sh", "-c", "stty size; read x; stty size"],
                                          tty=True, stdin=True)
        reader, writer = await shim.attach(stdin=True, stdout=True, stderr=True)
        await shim.resize(24, 80)  # the pty exists from create on
        await shim.start()
        got = b""
        while b"24 80" not in got:
            stream, data = await read_frame(reader)
            assert stream == 1
            got += data
        await shim.resize(30, 100)
        writer.write(b"go\r")
        await writer.drain()
        rest = await collect(reader)
        writer.close()
        assert {s for s, _ in rest} <= {1}
        out = got + joined(rest, 1)
        assert out == b"24 80\r\ngo\r\n30 100\r\n"  # raw: the pty's CR LF and echo
        assert (await shim.wait())["exit_code"] == 0
        with open(p["log_path"], "rb") as f:
            assert b'"log":"24 80\\r\\n","stream":"stdout"' in f.read()
    run(go())


def test_tty_without_attach_still_logs(lab):
    async def go():
        shim, bundle, p = await lab.spawn(["echo", "tty hi"], tty=True)
        await shim.start()
        assert (await shim.wait())["exit_code"] == 0
        return p["log_path"]

    path = run(go())
    assert [d for _, _, d in logfile.read(path)] == [b"tty hi\r\n"]


# -- how shims are started, and how they run the runtime ---------------------------

def test_the_init_holds_none_of_the_shims_fds(lab):
    """Whether the runtime ran in a fork of the shim or as a program, the
    container's init (waiting for `start`) inherited none of the shim's fds
    (its socket, the status pipe, other pipes): only its stdio, and the
    runtime's own."""
    async def go():
        shim, bundle, p = await lab.spawn(["sleep", "30"], stdin=True)
        reader, writer = await shim.attach(stdin=True, stdout=True)
        shims = set(fd_targets(shim.shim_pid).values())
        inits = fd_targets(shim.pid, low=3)
        assert not [t for t in inits.values() if t in shims], (inits, shims)
        await shim.start()
        await shim.kill("KILL")
        writer.close()
        assert (await shim.wait())["exit_code"] == 137
    run(go())


def test_our_runtime_runs_in_forks_of_the_shim(rootfs, spec_template):
    """With our runtime, `create` runs in a fork of the shim, not in a new
    `dockyard-runtime` process (whose command line would say so)."""
    lab = Lab(OURS, rootfs, spec_template)
    seen: list[bytes] = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            for pid in os.listdir("/proc"):
                if pid.isdigit() and b"dockyard-runtime\0" in (cmd := _cmdline(int(pid))):
                    if b"\0create\0" in cmd:
                        seen.append(cmd)
            time.sleep(0.001)

    async def go():
        shim, bundle, p = await lab.spawn(["echo", "forked"])
        reader, writer = await shim.attach(stdout=True)
        await shim.start()
        assert joined(await collect(reader), 1) == b"forked\n"
        assert (await shim.wait())["exit_code"] == 0
        with open(os.path.join(bundle, "init.pid")) as f:
            assert int(f.read()) == shim.pid

    t = threading.Thread(target=watch)
    t.start()
    try:
        run(go())
    finally:
        stop.set()
        t.join()
        clean = lab.shims_exit()
        lab.cleanup()
    assert seen == []
    assert clean


@pytest.mark.parametrize("how", ["python", "no-fork-server"])
def test_a_shim_started_as_a_program(rootfs, spec_template, monkeypatch, how):
    """Without the fork server (`python=...`, or USE_FORK_SERVER off) the shim
    is a `python -m dockyard.runtime.shim` of its own, and works the same."""
    lab = Lab(OURS, rootfs, spec_template,
              {"python": sys.executable} if how == "python" else {})
    if how == "no-fork-server":
        monkeypatch.setattr(shimclient, "USE_FORK_SERVER", False)

    async def go():
        shim, bundle, p = await lab.spawn(["sh", "-c", "echo started; exit 4"])
        assert b"dockyard.runtime.shim\0--id\0" + lab.ids[-1].encode() in _cmdline(shim.shim_pid)
        reader, writer = await shim.attach(stdout=True)
        await shim.start()
        assert joined(await collect(reader), 1) == b"started\n"
        assert (await shim.wait())["exit_code"] == 4

    try:
        run(go())
    finally:
        clean = lab.shims_exit()
        lab.cleanup()
    assert clean


FORK_SERVER_PARENT = """
import sys, time
from dockyard.runtime import shimclient
assert shimclient.start_fork_server()
print(shimclient._server.proc.pid, flush=True)
sys.stdin.read()  # until the test closes it
"""


def _with_mark(mark: bytes) -> list[int]:
    """Processes whose environment holds `mark`."""
    found = []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if mark in f.read().split(b"\0") and _alive(int(pid)):
                    found.append(int(pid))
        except (FileNotFoundError, PermissionError, NotADirectoryError, ProcessLookupError):
            pass
    return found


def test_fork_server_keeps_a_spare_and_goes_with_its_parent():
    mark = f"DYSHIMTEST_MARK={uuid.uuid4().hex}"
    parent = subprocess.Popen([sys.executable, "-c", FORK_SERVER_PARENT], cwd=REPO,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              env={**os.environ, mark.split("=")[0]: mark.split("=")[1]})
    try:
        server = int(parent.stdout.readline())
        assert b"dockyard.runtime.shim\0--fork-server\0" in _cmdline(server)
        assert int(_stat(server)[1]) == parent.pid
        assert int(_stat(server)[3]) == server  # a session of its own (no ^C from ours)
        deadline = time.monotonic() + 10
        # (the spare's parent, forked first, leaves at once: the spare is
        # then a child of whoever reaps orphans)
        while not (spares := [pid for pid in _with_mark(mark.encode())
                              if pid not in (parent.pid, server)
                              and int(_stat(pid)[1]) != server]):
            assert time.monotonic() < deadline, "no spare"
            time.sleep(0.02)
        [spare] = spares
        assert _cmdline(spare) == _cmdline(server)
        sid = int(_stat(spare)[3])
        assert sid not in (spare, server, os.getsid(0))  # detached, not a session leader
    finally:
        parent.stdin.close()
        parent.wait(10)
    deadline = time.monotonic() + 10
    while _with_mark(mark.encode()):
        assert time.monotonic() < deadline, "the fork server outlived its parent"
        time.sleep(0.02)


def test_shims_in_a_burst_and_prepare_spawn(lab):
    """Several spawns at once (the server forks shims itself while no spare is
    ready), after prepare_spawn (the cgroup attach primed ahead)."""
    async def one(i: int):
        shimclient.prepare_spawn()
        shim, bundle, p = await lab.spawn(["sh", "-c", f"echo {i}"])
        reader, writer = await shim.attach(stdout=True)
        await shim.start()
        out = joined(await collect(reader), 1)
        writer.close()
        return out, (await shim.wait())["exit_code"]

    async def go():
        return await asyncio.gather(*(one(i) for i in range(5)))

    assert run(go()) == [(f"{i}\n".encode(), 0) for i in range(5)]
