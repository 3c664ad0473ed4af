"""The Engine API over HTTP (aiohttp): routes parse a request, call one service,
shape the response.

Owns: URL routing with and without the `/v1.NN` prefix, version negotiation
headers, the error-kind → HTTP status table, streaming bodies.
Must not import: linux, storage, runtime (services do that), cli.
"""
