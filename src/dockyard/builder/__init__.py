"""The Dockerfile builder, as docker's classic builder: the Dockerfile language
(parser.py, instructions.py, shell.py for variable substitution), the build
context and .dockerignore (context.py, dockerignore.py) and the COPY/ADD
source hashes that key the cache (sourcehash.py). The executor, which runs
each step in a container and commits its changes, is still to come."""
