"""The daemon: wiring, configuration, start-up repair, and one service per object kind.

Owns: the services that hold the rules (unique names, what may be deleted when),
and the process itself (flags, lock, pidfile, signals).
Must not import: api (the API calls services, never the other way), cli.
"""
