"""Detach keys as docker parses them (term.ToBytes) and watches for them (its escape proxy)."""

import pytest

from dockyard.detachkeys import DEFAULT, EscapeProxy, to_bytes


@pytest.mark.parametrize("spec, expected", [
    ("ctrl-p,ctrl-q", b"\x10\x11"),
    ("ctrl-a", b"\x01"),
    ("ctrl-z", b"\x1a"),
    ("ctrl-@", b"\x00"),
    ("ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_", b"\x1b\x1c\x1d\x1e\x1f"),
    ("a,b,c", b"abc"),
    ("ctrl-x,x", b"\x18x"),
    ("DEL", b"\x7f"),
])
def test_to_bytes(spec, expected):
    assert to_bytes(spec) == expected


@pytest.mark.parametrize("spec, bad", [
    ("foo", "foo"),
    ("ctrl-P", "ctrl-P"),       # names are lowercase only
    ("ctrl-p,", ""),            # an empty key
    (",", ""),
    ("", ""),
    ("ctrl-1", "ctrl-1"),
    ("é", "é"),                 # two bytes: one character to a person, not to docker
    ("ctrl-a,ctrl-", "ctrl-"),
])
def test_to_bytes_refuses_with_dockers_message(spec, bad):
    with pytest.raises(ValueError) as e:
        to_bytes(spec)
    assert str(e.value) == f"unknown character: '{bad}'"


def feed_all(proxy, chunks):
    out, detached = b"", False
    for chunk in chunks:
        data, detached = proxy.feed(chunk)
        out += data
        if detached:
            break
    return out, detached


def test_plain_input_passes_untouched():
    assert EscapeProxy().feed(b"echo hi\r") == (b"echo hi\r", False)


def test_sequence_in_one_chunk_detaches_and_keeps_what_came_before():
    assert EscapeProxy(DEFAULT).feed(b"ls\r\x10\x11after") == (b"ls\r", True)


def test_sequence_split_across_chunks():
    p = EscapeProxy(DEFAULT)
    assert p.feed(b"ab\x10") == (b"ab", False)  # held back for now
    assert p.held == b"\x10"
    assert p.feed(b"\x11") == (b"", True)


def test_partial_sequence_then_other_key_passes_both():
    p = EscapeProxy(DEFAULT)
    assert p.feed(b"\x10") == (b"", False)
    assert p.feed(b"x") == (b"\x10x", False)
    assert p.held == b""


def test_partial_sequence_in_one_chunk_passes():
    assert EscapeProxy(DEFAULT).feed(b"a\x10b") == (b"a\x10b", False)


def test_mismatching_byte_does_not_restart_the_sequence():
    # As docker: ^P ^P ^Q is not a detach (the second ^P ends the first attempt).
    out, detached = feed_all(EscapeProxy(DEFAULT), [b"\x10", b"\x10", b"\x11"])
    assert (out, detached) == (b"\x10\x10\x11", False)
    assert feed_all(EscapeProxy(DEFAULT), [b"\x10\x10\x11"]) == (b"\x10\x10\x11", False)


def test_longer_custom_sequence_byte_by_byte():
    p = EscapeProxy(to_bytes("ctrl-a,b,c"))
    assert feed_all(p, [b"x", b"\x01", b"b", b"c", b"never"]) == (b"x", True)


def test_custom_sequence_broken_midway():
    p = EscapeProxy(to_bytes("ctrl-a,b,c"))
    assert feed_all(p, [b"\x01", b"b", b"d"]) == (b"\x01bd", False)
    assert p.feed(b"\x01bc") == (b"", True)


def test_no_keys_watches_for_nothing():
    assert EscapeProxy(b"").feed(b"\x10\x11") == (b"\x10\x11", False)


def test_single_key_sequence():
    assert EscapeProxy(b"q").feed(b"abq") == (b"ab", True)
