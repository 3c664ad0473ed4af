"""The Dockerfile builder, as docker's classic builder: the Dockerfile language
(parser.py, instructions.py, shell.py for variable substitution), the build
context and .dockerignore (dockerignore.py), and the executor that runs each
step in a container and commits its changes."""
