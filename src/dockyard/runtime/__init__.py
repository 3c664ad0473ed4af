"""The container runtime: OCI spec building, our own OCI runtime, and the shim.

Owns: container record + image config -> OCI config.json (spec.py, defaults.py,
user.py), running it (namespaces, mounts, cgroups, capabilities), one shim per
container (shim.py, logfile.py).

Our OCI runtime, a drop-in for runc (console script `dockyard-runtime`):
    oci.py       the CLI: create, start, state, kill, delete, pause, resume
    ocicli/      its parts: bundle checks, the state directory, create's sync
                 protocol with the init, runc-style logging
    init.py      the container's intermediate process and init: the ordered
                 checklist from namespaces to execve
    console.py   the pty for `process.terminal`, sent over --console-socket
The kernel calls themselves live in dockyard.linux (namespaces, rootfs,
devices, capabilities, rlimits, user, syscalls, cgroups).

Must not import: daemon, api, cli."""
