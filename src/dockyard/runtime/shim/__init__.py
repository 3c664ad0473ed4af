"""The shim: one small process per container, between the daemon and the runtime.

    python -m dockyard.runtime.shim --id ID --bundle DIR --runtime PATH
        [--runtime-root DIR] --socket PATH --exit-file PATH --status-fd N
        [--stdin] [--tty] --log-driver json-file|local|none [--log-path FILE]
        [--log-opt KEY=VALUE]... [--exec-runtime]
    python -m dockyard.runtime.shim --fork-server FD

The daemon starts it through dockyard.runtime.shimclient: forked by the fork
server (`forkserver`, one per daemon, which has imported the shim and our
runtime already), or as the program above. Life of a shim:

1. Detach (`__main__`, or the fork server likewise): fork, setsid, fork
   again. The first process exits at once (its parent reaps it); the
   grandchild is in its own session, cannot take a controlling terminal, and
   outlives the daemon. It becomes a child subreaper: when `runtime create`
   exits, the container's init is re-parented to the shim, which can then
   wait(2) for it.
2. Create (`runtime`): `<runtime> [--root R] --log <bundle>/log.json
   --log-format json create --bundle B --pid-file B/init.pid
   [--console-socket S] ID`, with pipes as its stdio (the init inherits them),
   or with --tty a console socket on which the runtime sends the pty master.
   When the runtime is our own `dockyard-runtime` (and not --exec-runtime),
   its verbs run in forks of the shim, the same CLI called as a function
   (`runtime`), and `start` runs in the shim's loop (`server`): no interpreter
   starts for any of them.
3. Report: one JSON line on the status fd, which is then closed:
   `{"ok": true, "pid": <init pid>, "shim_pid": <our pid>}`, or
   `{"ok": false, "error": "<the runtime's stderr, last line>", "shim_pid": N}`
   after which the shim runs `delete --force` and exits.
4. Serve (`server`) --socket: UNIX stream, one newline-terminated JSON request
   per connection, answered with one JSON line:
   - {"op":"start"} -> `runtime start`; {"ok":true} or {"ok":false,"error":...}
   - {"op":"attach","stdin":b,"stdout":b,"stderr":b[,"stdin_once":b]} ->
     {"ok":true}, then shim->client frames in docker's multiplexed format
     (8-byte header: stream 1=stdout 2=stderr, three zero bytes, big-endian
     uint32 size; then the payload; with a TTY every frame is stream 1 and
     carries raw pty bytes), and client->shim raw stdin bytes. The end of the
     client's input (half-close with SHUT_WR, or close) is EOF on the
     container's stdin: pipes only, only with --stdin, and not if the request
     says "stdin_once": false (docker's StdinOnce). Output produced before a
     client attaches is in the log only. When the container has exited and its
     output is drained, attached connections get the rest and are closed.
   - {"op":"wait"} -> once the container has exited (at once if it has):
     {"ok":true,"exit_code":N,"finished_at":"<RFC3339Nano UTC>","oom_killed":b}
     (128+N for a signal). A waiter must not half-close its connection.
   - {"op":"resize","height":H,"width":W} -> TIOCSWINSZ on the pty master
     (nothing to do without a TTY: {"ok":true}, as runc)
   - {"op":"state"} -> {"ok":true,"pid":N,"status":"created|running|stopped"}
     (+ "exit_code" once stopped)
   - {"op":"kill","signal":"TERM","all":false} -> `runtime kill [--all] ID SIG`
     (an extension: the daemon may as well run the runtime itself)
   - {"op":"exec","exec_id":ID,"process":{OCI process},"stdin":b,"stdout":b,
     "stderr":b,"attach":b} -> runs the process in the container (`execs`:
     `runtime exec --process F --detach --pid-file P [--console-socket S]
     ID`, or our runtime's exec in the shim's loop), with pipes for its stdio
     (stdin only if asked; else /dev/null), or a pty if process.terminal.
     {"ok":true,"pid":N} once it runs, or {"ok":false,"error":"<the
     runtime's words>"} (e.g. `exec failed: unable to start container
     process: exec: "nosuch": executable file not found in $PATH`), before
     the process has run. With "attach", the connection then carries the
     exec's stdio exactly as an `attach` does. Exec output goes to attached
     clients only (dropped when none is), never to the container's log.
   - "exec_id":ID on `wait`, `attach`, `resize`, `kill` and `state` means
     that exec rather than the container: `wait` answers {"ok":true,
     "exit_code":N,"finished_at":...} once it has exited and its output is
     drained (at most 2 s); `kill` signals its process directly. An unknown
     exec ID (or, for resize and kill, one that has exited) gets
     {"ok":false,"error":...,"not_found":true}. The results of the last 256
     finished execs are kept.
5. Exit: when the init has been reaped, drain its output (at most 2 s), flush
   the log, read the cgroup's OOM kill count, write the exit file (atomically;
   its content is the wait reply), answer waiters, run `runtime delete`, fsync
   the exit file, remove the socket and exit. Connections that arrive meanwhile
   are still answered. (Execs still running when the init dies die with its
   pid namespace; they are reaped and answered on the way.)

Logs: json-file, local or none, written by dockyard.runtime.logfile exactly as
dockerd's drivers cut and rotate them.

Stdlib only, and careful with imports: a shim starts for every container and
stays resident (`python -X importtime -m dockyard.runtime.shim --help`).
DOCKYARD_RUNTIME_TRACE=/some/file (in the daemon's environment) appends the
shim's and our runtime's steps there with CLOCK_MONOTONIC times, to see where
a container's start spends its time.
Socket paths longer than sockaddr_un holds are reached through
/proc/<pid>/fd/<dirfd>/<name>.
"""
