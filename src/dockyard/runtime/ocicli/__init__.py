"""The pieces of the `dockyard-runtime` CLI (entry point: dockyard.runtime.oci).

    log.py      runc-style logging: `time="..." level=error msg="..."`, or JSON lines
    bundle.py   config.json -> a validated plan for the init (pure, runc's checks)
    state.py    the container state directory: state.json, exec.fifo, status
    create.py   `create`: fork, namespaces, cgroup, the sync protocol with the init
    exec.py     `exec`: a new process in a running container's namespaces and cgroup

The code that runs inside the new namespaces is dockyard.runtime.init (and
dockyard.runtime.execinit for an exec'd process).
"""
