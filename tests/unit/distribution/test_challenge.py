"""WWW-Authenticate parsing (challenge.py)."""

from dockyard.distribution.challenge import Challenge, parse, parse_header


def test_bearer_with_quoted_parameters():
    value = ('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
             'scope="repository:library/busybox:pull"')
    assert parse_header(value) == [Challenge("bearer", {
        "realm": "https://auth.docker.io/token", "service": "registry.docker.io",
        "scope": "repository:library/busybox:pull"})]


def test_scheme_and_keys_are_lower_cased_values_kept():
    assert parse_header('BASIC Realm="Registry Realm"') == [
        Challenge("basic", {"realm": "Registry Realm"})]


def test_escapes_and_unquoted_tokens():
    assert parse_header(r'Bearer realm="a\"b\\c", error=insufficient_scope') == [
        Challenge("bearer", {"realm": 'a"b\\c', "error": "insufficient_scope"})]


def test_two_challenges_in_one_value_and_across_headers():
    one = parse_header('Bearer realm="r",service="s", Basic realm="x"')
    assert one == [Challenge("bearer", {"realm": "r", "service": "s"}),
                   Challenge("basic", {"realm": "x"})]
    assert parse(['Basic realm="a"', 'Bearer realm="b"']) == [
        Challenge("basic", {"realm": "a"}), Challenge("bearer", {"realm": "b"})]


def test_scheme_without_parameters_and_garbage():
    assert parse_header("Negotiate") == [Challenge("negotiate", {})]
    assert parse_header("") == []
    # an unterminated quote ends the challenge but keeps what was read
    assert parse_header('Bearer realm="r", service="unterminated') == [
        Challenge("bearer", {"realm": "r"})]
