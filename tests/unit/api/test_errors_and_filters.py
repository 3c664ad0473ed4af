"""The error-kind table and the filters parameter."""

import pytest

from dockyard import errdefs
from dockyard.api import filters
from dockyard.api.errors import status_of


@pytest.mark.parametrize("kind, status", [
    (errdefs.NotFound, 404), (errdefs.InvalidParameter, 400), (errdefs.Conflict, 409),
    (errdefs.NotModified, 304), (errdefs.Forbidden, 403), (errdefs.Unauthorized, 401),
    (errdefs.Unavailable, 503), (errdefs.NotImplemented, 501), (errdefs.System, 500),
    (errdefs.DataLoss, 500), (RuntimeError, 500),
])
def test_status_table(kind, status):
    assert status_of(kind("x")) == status


def test_subclasses_keep_their_kind():
    class NoSuchThing(errdefs.NotFound):
        pass
    assert status_of(NoSuchThing("x")) == 404


def test_filters_both_shapes():
    assert filters.parse('{"dangling":["true"],"label":["a=b","c"]}') == {
        "dangling": ["true"], "label": ["a=b", "c"]}
    assert filters.parse('{"dangling":{"true":true,"false":false}}') == {"dangling": ["true"]}
    assert filters.parse("") == {}


@pytest.mark.parametrize("text", ["{", "[1]", '{"a": 3}'])
def test_bad_filters(text):
    with pytest.raises(errdefs.InvalidParameter):
        filters.parse(text)
