"""The only place that calls the kernel.

Syscalls go through ctypes, behind small functions named in the kernel's own
vocabulary (`mount`, `umount`, `pivot_root`, `setns`). A failing call raises
OSError whose message names the syscall and its arguments, as runc and crun do,
so a log line says which call failed and why.

The subsystems above plan as data (mount lists, OCI spec, network steps) and
hand the plan here to be carried out. Must not import anything above it at run
time: plans arrive as plain objects (a `Mount` is read by its type, source and
options attributes; its class is imported only for type checking).
"""
