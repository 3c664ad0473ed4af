"""Processes exec'd in the container: started, held, reaped by the shim.

An exec is started by the `exec` op: the shim writes the OCI process to
<bundle>/exec-<id>.json, makes the exec's stdio (pipes; or, for a terminal,
a console socket on which the runtime sends the pty master) and runs
`<runtime> exec --process F --detach --pid-file P [--console-socket S] ID`,
in a fork of the shim for our own runtime, as a program for runc or crun.
The runtime's stdio is the exec's, as containerd gives runc's: the process
inherits it. The runtime's error, if any, is the last line on that stderr
(or in its --log), read before anything of the process could be.

The exec'd process is re-parented to the shim (a child subreaper) when the
runtime's intermediate process exits, and may even have exited before the
runtime has told its pid: a child reaped with no known owner is kept as an
orphan exit for a moment, for an exec started before it was reaped that
reports that pid.

The exec's output goes to the clients attached to it (and nowhere else: not
the container's log, as dockerd), is read and dropped when none is; on its
exit, the shim waits for its output to end (at most DRAIN_TIMEOUT, as
dockerd) and then answers its waiters. The results of the last KEEP_RESULTS
finished execs are kept for later waits (a daemon that restarted).
"""

from __future__ import annotations

import json
import os
import re
import time

from dockyard.runtime import logfile
from dockyard.runtime.ocicli.log import trace
from dockyard.runtime.shim.runtime import Failed, ProcessIO

DRAIN_TIMEOUT = 2.0
KEEP_RESULTS = 256
KEEP_ORPHANS = 64
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class Exec:
    __slots__ = ("id", "pid", "stdio", "exit_status", "deadline", "result")

    def __init__(self, exec_id: str, pid: int, stdio) -> None:
        self.id, self.pid, self.stdio = exec_id, pid, stdio
        self.exit_status: int | None = None  # the raw wait status, once reaped
        self.deadline = float("inf")         # while draining: when to give up on output
        self.result: dict | None = None      # the wait reply, once recorded


class Execs:
    def __init__(self, shim) -> None:
        self.shim = shim
        self.execs: dict[str, Exec] = {}
        self.starting: dict[str, _Starting] = {}
        # pid -> (wait status, when reaped): children whose exec is not known yet
        self.orphans: dict[int, tuple[int, float]] = {}
        self._cgroups: dict[str, object] = {}

    # -- the loop's questions ------------------------------------------------------
    def stdios(self) -> list:
        return [ex.stdio for ex in self.execs.values() if ex.result is None]

    def poll_fds(self) -> list[int]:
        """The sync sockets of the execs starting in the loop."""
        return [st.fd for st in self.starting.values() if st.fd >= 0]

    def event(self, fd: int) -> bool:
        """Handle `fd` if it is one of `poll_fds`."""
        for st in list(self.starting.values()):
            if st.fd == fd:
                st.readable()
                return True
        return False

    def cgroup(self, state: dict):
        """The container's cgroup, opened once (it reads every mount of the host)."""
        path = state.get("cgroups_path")
        if not path:
            return None
        if path not in self._cgroups:
            from dockyard.linux.cgroups import open_cgroup

            self._cgroups[path] = open_cgroup(path)
        return self._cgroups[path]

    def deadline(self) -> float:
        return min((ex.deadline for ex in self.execs.values() if ex.result is None),
                   default=float("inf"))

    def advance(self) -> None:
        now = time.monotonic()
        for ex in list(self.execs.values()):
            if ex.exit_status is not None and ex.result is None and (
                    not ex.stdio.outputs or now >= ex.deadline):
                self._finish(ex)

    def reaped(self, pid: int, status: int) -> None:
        ex = next((e for e in self.execs.values() if e.pid == pid and e.exit_status is None),
                  None)
        if ex is None:
            self.orphans[pid] = (status, time.monotonic())
            while len(self.orphans) > KEEP_ORPHANS:
                del self.orphans[next(iter(self.orphans))]
            return
        self._exited(ex, status)

    def _exited(self, ex: Exec, status: int) -> None:
        trace("shim: exec reaped")
        ex.exit_status = status
        ex.deadline = time.monotonic() + DRAIN_TIMEOUT

    def _finish(self, ex: Exec) -> None:
        trace("shim: exec output drained")
        code = os.waitstatus_to_exitcode(ex.exit_status)
        ex.result = {"ok": True, "exit_code": code if code >= 0 else 128 - code,
                     "finished_at": logfile.format_time(time.time_ns())}
        ex.deadline = float("inf")
        self.shim.close_stdio(ex.stdio)
        for c in list(self.shim.conns.values()):
            if c.kind == "wait" and c.exec_id == ex.id:
                self.shim._reply(c, ex.result)
        finished = [e.id for e in self.execs.values() if e.result is not None]
        for old in finished[:max(0, len(finished) - KEEP_RESULTS)]:
            del self.execs[old]

    # -- requests ------------------------------------------------------------------
    def request(self, c, op: str, req: dict) -> None:
        shim = self.shim
        ex = self.execs.get(str(req["exec_id"]))
        if ex is None:
            shim._reply(c, {"ok": False, "error": "no such exec", "not_found": True})
        elif op == "wait":
            if ex.result is not None:
                shim._reply(c, ex.result)
            else:
                c.kind, c.exec_id = "wait", ex.id
        elif op == "attach":
            shim.attach(c, req, ex.stdio, ex.result is not None)
        elif op == "state":
            state = {"ok": True, "pid": ex.pid,
                     "status": "running" if ex.result is None else "stopped"}
            if ex.result is not None:
                state["exit_code"] = ex.result["exit_code"]
            shim._reply(c, state)
        elif ex.exit_status is not None:
            shim._reply(c, {"ok": False, "error": "process already finished",
                            "not_found": True})
        elif op == "resize":
            shim._resize(c, req, ex.stdio.master)
        else:  # kill: the process itself, as containerd's shim signals an exec
            from dockyard.runtime.oci import Failure, parse_signal

            try:
                os.kill(ex.pid, parse_signal(str(req.get("signal", "KILL"))))
            except (Failure, OSError) as e:
                shim._reply(c, {"ok": False, "error": str(e)})
                return
            shim._reply(c, {"ok": True})

    def start(self, c, req: dict) -> None:
        """The `exec` op: run the runtime's exec; reply {"ok": true, "pid": N}
        (then, with "attach", the connection carries the exec's stdio as an
        `attach` does) or {"ok": false, "error": "<the runtime's words>"}."""
        trace("shim: exec")
        shim = self.shim
        exec_id = str(req.get("exec_id") or "")
        process = req.get("process")
        if not _ID.match(exec_id) or not isinstance(process, dict):
            shim._reply(c, {"ok": False, "error": "bad exec request: an exec_id and a process "
                                                  "are needed"})
            return
        if exec_id in self.execs or exec_id in self.starting:
            shim._reply(c, {"ok": False, "error": f"exec {exec_id} already exists"})
            return
        try:
            starting = _Starting(self, exec_id, process, bool(req.get("stdin")))
        except OSError as e:
            shim._reply(c, {"ok": False, "error": f"preparing the exec: {e}"})
            return
        self.starting[exec_id] = starting

        def done(code: int, message: str) -> None:
            trace("shim: runtime exec done")
            self.starting.pop(exec_id, None)
            try:
                pid, stdio = starting.finish(code, message)
            except Failed as e:
                shim._reply(c, {"ok": False, "error": str(e)})
                return
            ex = Exec(exec_id, pid, stdio)
            self.execs[exec_id] = ex
            orphan = self.orphans.pop(pid, None)
            if orphan is not None and orphan[1] >= starting.began:
                self._exited(ex, orphan[0])  # it has been and gone already
            # (an older one is another process that had this pid)
            reply = {"ok": True, "pid": pid}
            if req.get("attach"):
                shim.attach(c, req, stdio, False, reply)
            else:
                shim._reply(c, reply)

        starting.run(done)


class _Starting:
    """One `runtime exec` under way: its files, and the exec's stdio.

    Our own runtime's exec runs in the shim's loop (`in_loop`), as its
    `start` does: the checks and the plan here (dockyard.runtime.ocicli.exec
    `prepare`), then the process forked from the shim itself, straight into
    the container's pid namespace (dockyard.runtime.execinit.fork_into),
    whose sync socket the loop reads (`fd`, `readable`) until it has exec'd.
    No runtime process, no intermediate one, no process file: two forks of
    a Python process fewer than the CLI's way. Otherwise the runtime's CLI
    runs (`Runtime.run`)."""

    def __init__(self, execs: Execs, exec_id: str, process: dict, stdin: bool) -> None:
        runtime = execs.shim.runtime
        self.execs, self.runtime, self.process = execs, runtime, process
        self.in_loop = runtime.in_process
        base = os.path.join(runtime.bundle, f"exec-{exec_id}")
        self.process_file, self.pid_file = base + ".json", base + ".pid"
        self.fd, self.pid, self.done = -1, 0, None  # in the loop: the sync socket, the pid
        self.began = time.monotonic()
        if not self.in_loop:
            with open(self.process_file, "w") as f:
                f.write(json.dumps(process))
        self.io = ProcessIO(runtime, base + ".sock" if process.get("terminal") else None, stdin)

    def run(self, done) -> None:
        """Start it; `done(code, message)` is called once it is over (at once
        if it failed before any process)."""
        if self.in_loop:
            self._fork(done)
        else:
            args = ["exec", "--process", self.process_file, "--detach", "--pid-file",
                    self.pid_file, *self.io.console_args(), self.runtime.id]
            self.runtime.run(args, lambda code, _: done(code, ""), stdio=self.io.stdio)

    def _fork(self, done) -> None:
        from dockyard.runtime import oci
        from dockyard.runtime.ocicli import exec as ocixec
        from dockyard.runtime.ocicli.log import Logger
        from dockyard.runtime.ocicli.state import StateError
        from dockyard.runtime.shim.runtime import become_child

        opts = {"detach": True, "console-socket": self.io.console_name}
        log = Logger(os.path.join(self.runtime.bundle, "log.json"), "json")
        try:
            cfg, state = ocixec.prepare(self.runtime.root or oci.DEFAULT_ROOT, self.runtime.id,
                                        opts, [], log, self.process)
            self.fd, self.pid = ocixec.fork_joiner(
                cfg, state, self.io.console_name or None, self.execs.cgroup(state),
                lambda keep: become_child(self.io.stdio, keep))
        except (ocixec.ExecError, StateError, OSError) as e:
            message = f"exec failed: {e.strerror or e}" if isinstance(e, OSError) and \
                not isinstance(e, ocixec.ExecError) else f"exec failed: {e}"
            log.error(message)
            done(1, message)
            return
        self.done = done

    def readable(self) -> bool:
        """A message (or EOF) from the joiner or the process; True once over."""
        from dockyard.runtime.init import recv
        from dockyard.runtime.ocicli import exec as ocixec

        try:
            msg = recv(self.fd)
        except (BlockingIOError, InterruptedError):
            return False
        except (OSError, ValueError):
            msg = None
        if msg is not None and msg.get("type") == "pid":
            self.pid = int(msg["pid"])
            return False
        try:
            if ocixec.outcome(msg, self.pid) is None:
                return False
            code, message = 0, ""
        except ocixec.ExecError as e:
            code, message = 1, f"exec failed: {e}"
            self.runtime.log_failure(message)
        os.close(self.fd)
        self.fd = -1
        self.done(code, message)
        return True

    def finish(self, code: int, message: str = ""):
        """(pid, Stdio) of the exec'd process, or Failed with the runtime's error."""
        io = self.io
        try:
            io.runtime_done()
            if code != 0:
                raise Failed(message or io.error() or self.runtime.log_error()
                              or f"runtime exec exited with status {code}")
            pid = self.pid or self._read_pid_file()
            outputs, stdin_fd = io.ours()
        except BaseException:
            io.close()
            raise
        finally:
            if not self.in_loop:
                _unlink(self.process_file)
                _unlink(self.pid_file)
        from dockyard.runtime.shim.server import STREAMS, Stdio

        return pid, Stdio({fd: (STREAMS[name], None) for fd, name in outputs.items()},
                          stdin_fd, io.master)

    def _read_pid_file(self) -> int:
        try:
            with open(self.pid_file) as f:
                return int(f.read().strip())
        except (OSError, ValueError) as e:
            raise Failed(f"reading the runtime's pid file: {e}") from None


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
