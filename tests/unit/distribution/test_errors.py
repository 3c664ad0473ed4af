"""Registry errors in dockerd's words (errors.py)."""

import json

from dockyard import errdefs
from dockyard.distribution import errors
from dockyard.image.reference import parse_normalized


def body(*entries):
    return json.dumps({"errors": [dict(zip(("code", "message", "detail"), e)) for e in entries]}
                      ).encode()


def test_error_codes_read_as_docker_prints_them():
    err = errors.parse_error_body(404, body(("MANIFEST_UNKNOWN", "manifest unknown", {"Tag": "x"})))
    assert str(err) == "manifest unknown: manifest unknown"
    err = errors.parse_error_body(401, body(("UNAUTHORIZED", "authentication required", None)))
    assert str(err) == "unauthorized: authentication required"
    err = errors.parse_error_body(404, body(("BLOB_UNKNOWN", "", None), ("NAME_UNKNOWN", "x", None)))
    assert str(err) == "errors:\nblob unknown: blob unknown to registry\nname unknown: x\n"
    assert str(errors.parse_error_body(400, body(("WEIRD_CODE", "odd", None)))) == "unknown: odd"


def test_bodies_that_are_not_registry_errors():
    assert str(errors.parse_error_body(404, b"not json")) == (
        "error parsing HTTP 404 response body: invalid character 'n' looking for beginning "
        'of value: "not json"')
    assert str(errors.parse_error_body(404, b"{}")) == (
        'error parsing HTTP 404 response body: no error details found in HTTP response body: "{}"')
    assert str(errors.parse_error_body(401, b'{"details":"go away"}')) == "unauthorized: go away"


def test_pull_errors_name_the_reference():
    ref = parse_normalized("127.0.0.1:5000/test/busybox:nope")
    err = errors.translate_pull_error(
        errors.parse_error_body(404, body(("MANIFEST_UNKNOWN", "manifest unknown", None))), ref)
    assert isinstance(err, errdefs.NotFound)
    assert str(err) == ("manifest for 127.0.0.1:5000/test/busybox:nope not found: "
                        "manifest unknown: manifest unknown")
    err = errors.translate_pull_error(errors.RegistryError("NAME_UNKNOWN"), ref)
    assert str(err) == ("repository 127.0.0.1:5000/test/busybox not found: "
                        "name unknown: repository name not known to registry")
    hub = parse_normalized("library/private:1")
    err = errors.translate_pull_error(errors.RegistryError("DENIED"), hub)
    assert str(err) == ("pull access denied for private, repository does not exist or may "
                        "require 'docker login': denied: requested access to the resource is denied")
    err = errors.translate_pull_error(errors.RegistryError("UNAUTHORIZED"), ref)
    assert isinstance(err, errdefs.Unauthorized)
    assert str(err) == "unauthorized: authentication required"


def test_failures_below_http_read_as_go_url_errors():
    err = errors.translate_pull_error(
        errors.RequestFailed("HEAD", "http://127.0.0.1:5000/v2/x/manifests/1",
                             errors.NO_BASIC_AUTH_CREDENTIALS), parse_normalized("x"))
    assert isinstance(err, errdefs.System)  # dockerd: untyped, a 500
    assert str(err) == 'Head "http://127.0.0.1:5000/v2/x/manifests/1": no basic auth credentials'


def test_push_unwraps_missing_credentials():
    err = errors.translate_push_error(
        errors.RequestFailed("POST", "http://h/v2/x/blobs/uploads/", errors.NO_BASIC_AUTH_CREDENTIALS))
    assert str(err) == "no basic auth credentials"
