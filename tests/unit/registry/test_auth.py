"""htpasswd parsing and checks, basic auth, and the token flow's signing and scopes."""

from __future__ import annotations

import base64
import hashlib
import time

import bcrypt
import pytest

from dockyard.registry.auth import (Access, BasicAuth, Htpasswd, HtpasswdInvalid, TokenAuth,
                                    TokenConfig, TokenInvalid, TokenServer, check_password,
                                    parse_htpasswd, parse_scope, sign_token, verify_token)
from dockyard.registry.errors import Unauthorized

BCRYPT = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
SHA = "{SHA}" + base64.b64encode(hashlib.sha1(b"pa55").digest()).decode()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_parse_htpasswd():
    text = f"# users\n\nalice:{BCRYPT}\nbob:{SHA}\ncarol:{BCRYPT.replace('$2b$', '$2y$')}\n"
    assert parse_htpasswd(text) == {"alice": BCRYPT, "bob": SHA,
                                    "carol": BCRYPT.replace("$2b$", "$2y$")}


@pytest.mark.parametrize("line", ["nocolon", ":hash", "user:", "u:$apr1$x$y", "u:plain"])
def test_parse_htpasswd_refuses_what_it_cannot_check(line):
    with pytest.raises(HtpasswdInvalid):
        parse_htpasswd(line)


def test_check_password():
    assert check_password(BCRYPT, "s3cret") and not check_password(BCRYPT, "wrong")
    assert check_password(BCRYPT.replace("$2b$", "$2y$"), "s3cret")  # what htpasswd -B writes
    assert check_password(SHA, "pa55") and not check_password(SHA, "pa56")
    assert not check_password("$2y$garbage", "x")


def test_htpasswd_verify_remembers_only_successes():
    h = Htpasswd({"alice": BCRYPT})
    assert h.verify("alice", "s3cret") and h.verify("alice", "s3cret")
    assert not h.verify("alice", "other") and not h.verify("nobody", "s3cret")


def test_basic_auth_challenges():
    auth = BasicAuth(Htpasswd({"bob": SHA}), "test realm")
    assert auth.authorize(basic("bob", "pa55"), []) == "bob"
    for header in (None, basic("bob", "nope"), "Basic !!!", "Bearer x"):
        with pytest.raises(Unauthorized) as info:
            auth.authorize(header, [])
        assert info.value.challenge == 'Basic realm="test realm"'


def test_parse_scope():
    assert parse_scope("repository:a/b:pull,push") == Access("repository", "a/b",
                                                             ("pull", "push"))
    assert parse_scope("repository:host:5000/a:pull").name == "host:5000/a"
    assert parse_scope("registry:catalog:*") == Access("registry", "catalog", ("*",))
    assert parse_scope("nonsense") is None


CONFIG = TokenConfig("http://127.0.0.1/token", "svc", "iss", b"k" * 32, 300)


def test_token_round_trip_and_tampering():
    now = time.time()
    claims = {"iss": "iss", "aud": "svc", "nbf": now, "exp": now + 60, "access": []}
    token = sign_token(CONFIG.key, claims)
    assert verify_token(CONFIG.key, token, "iss", "svc", now)["aud"] == "svc"
    header, payload, signature = token.split(".")
    with pytest.raises(TokenInvalid):
        verify_token(CONFIG.key, f"{header}.{payload}x.{signature}", "iss", "svc", now)
    with pytest.raises(TokenInvalid):
        verify_token(b"other" * 8, token, "iss", "svc", now)
    with pytest.raises(TokenInvalid):
        verify_token(CONFIG.key, token, "iss", "svc", now + 120)   # expired
    with pytest.raises(TokenInvalid):
        verify_token(CONFIG.key, token, "iss", "other-service", now)


def test_token_scopes_are_checked_per_repository_and_action():
    server = TokenServer(CONFIG, Htpasswd({"bob": SHA}))
    auth = TokenAuth(CONFIG)
    issued = server.issue(basic("bob", "pa55"), "svc", ["repository:a:pull"])
    bearer = "Bearer " + issued["token"]
    assert auth.authorize(bearer, [Access("repository", "a", ("pull",))]) == "bob"
    for wanted in (Access("repository", "a", ("push",)), Access("repository", "b", ("pull",))):
        with pytest.raises(Unauthorized) as info:
            auth.authorize(bearer, [wanted])
        assert 'error="insufficient_scope"' in info.value.challenge
        assert f'scope="{wanted}"' in info.value.challenge
    with pytest.raises(Unauthorized) as info:
        auth.authorize(None, [Access("repository", "a", ("pull",))])
    assert info.value.challenge == ('Bearer realm="http://127.0.0.1/token",service="svc",'
                                    'scope="repository:a:pull"')


def test_token_server_checks_credentials_and_limits_anonymous_clients():
    with pytest.raises(Unauthorized):
        TokenServer(CONFIG, Htpasswd({"bob": SHA})).issue(basic("bob", "x"), "svc", [])
    anonymous = TokenServer(CONFIG, None)
    token = anonymous.issue(None, "svc", ["repository:a:pull,push"])["token"]
    claims = verify_token(CONFIG.key, token, "iss", "svc", time.time())
    assert claims["access"] == [{"type": "repository", "name": "a", "actions": ["pull"]}]
