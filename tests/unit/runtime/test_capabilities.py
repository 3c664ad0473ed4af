"""Capability names, numbers and the plan from OCI `process.capabilities`."""

from __future__ import annotations

from dockyard.linux import capabilities as caps

ALL = set(range(41))
NO_SYS_RESOURCE = ALL - {24}          # this project's hosts


def test_numbers_match_linux_capability_h():
    assert caps.NUMBERS["CAP_CHOWN"] == 0
    assert caps.NUMBERS["CAP_NET_BIND_SERVICE"] == 10
    assert caps.NUMBERS["CAP_SYS_ADMIN"] == 21
    assert caps.NUMBERS["CAP_SYS_RESOURCE"] == 24
    assert caps.NUMBERS["CAP_AUDIT_WRITE"] == 29
    assert caps.NUMBERS["CAP_CHECKPOINT_RESTORE"] == 40
    assert len(caps.NAMES) == 41


def test_masks_round_trip():
    # runc spec's defaults: AUDIT_WRITE, KILL, NET_BIND_SERVICE -> CapEff 20000420
    s = {caps.NUMBERS[n] for n in ("CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE")}
    assert caps.to_mask(s) == 0x20000420
    assert caps.from_mask(0x20000420) == s
    assert caps.from_mask(0x1fffeffffff) == NO_SYS_RESOURCE


def test_plan_keeps_what_the_host_has():
    spec = {k: ["CAP_KILL", "CAP_CHOWN"] for k in ("bounding", "effective", "permitted")}
    p = caps.plan(spec, ALL, 40)
    assert p.sets["bounding"] == p.sets["effective"] == p.sets["permitted"] == {0, 5}
    assert p.sets["inheritable"] == p.sets["ambient"] == set()
    assert p.unknown == [] and p.unavailable == []


def test_privileged_on_a_host_without_sys_resource_drops_it_instead_of_failing():
    spec = {k: list(caps.NAMES) for k in ("bounding", "effective", "permitted")}
    p = caps.plan(spec, NO_SYS_RESOURCE, 40)
    assert p.sets["bounding"] == NO_SYS_RESOURCE
    assert p.sets["effective"] == NO_SYS_RESOURCE
    assert p.unavailable == ["CAP_SYS_RESOURCE"]
    assert p.unknown == []


def test_unknown_and_too_new_names_are_reported_as_runc_does():
    spec = {"bounding": ["CAP_NOSUCH", "CAP_BPF", "CAP_KILL"]}
    p = caps.plan(spec, ALL, 37)           # a kernel whose last cap is AUDIT_READ
    assert p.sets["bounding"] == {5}
    assert p.unknown == ["CAP_BPF", "CAP_NOSUCH"]


def test_ambient_needs_permitted_and_inheritable():
    # `runc spec` asks for ambient caps without inheritable ones: the kernel
    # would refuse to raise them (runc ignores that); the plan leaves them out.
    spec = {"permitted": ["CAP_KILL", "CAP_CHOWN"], "inheritable": ["CAP_KILL"],
            "ambient": ["CAP_KILL", "CAP_CHOWN", "CAP_NET_RAW"]}
    p = caps.plan(spec, ALL, 40)
    assert p.sets["ambient"] == {5}


def test_empty_or_missing_spec():
    assert caps.plan(None, ALL, 40).sets == {k: set() for k in caps.KINDS}
    assert caps.plan({"bounding": None}, ALL, 40).sets["bounding"] == set()


def test_names_are_sorted_by_number():
    assert caps.names({24, 0, 5}) == ["CAP_CHOWN", "CAP_KILL", "CAP_SYS_RESOURCE"]


def test_current_reads_proc_status(tmp_path):
    status = tmp_path / "status"
    status.write_text("Name:\tx\nCapInh:\t0000000000000000\nCapPrm:\t0000000000000021\n"
                      "CapEff:\t0000000000000020\nCapBnd:\t000001fffeffffff\n")
    assert caps.current("bounding", str(status)) == NO_SYS_RESOURCE
    assert caps.current("permitted", str(status)) == {0, 5}
    assert caps.current("effective", str(status)) == {5}
