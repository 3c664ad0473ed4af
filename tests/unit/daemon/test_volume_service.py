"""The volume service without a daemon: generated names and the anonymous label,
references, the rules of remove and prune, the list filters, `system df`
sizes and the events, in dockerd's words (moby 23 semantics, API 1.42: prune
takes only anonymous volumes unless `all` is true)."""

from __future__ import annotations

import json
import os
import re

import pytest

from dockyard import errdefs
from dockyard.daemon.volumes import ANONYMOUS_LABEL, VolumeService
from paths import REFERENCE

TMPFS = {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}


@pytest.fixture
def events():
    return []


@pytest.fixture
def svc(tmp_path, events):
    return VolumeService(str(tmp_path / "volumes"), lambda *e: events.append(e))


def names(volumes) -> list[str]:
    return [v["Name"] for v in volumes]


def write(svc, name: str, path: str, data: bytes) -> str:
    target = os.path.join(svc.driver.path(name), path)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "wb") as f:
        f.write(data)
    return target


# -- create, inspect --------------------------------------------------------------------

def test_view_has_dockerds_keys_in_order(svc, tmp_path):
    view = svc.create("v1")
    with open(REFERENCE / "volume-inspect.json") as f:
        assert list(view) == list(json.load(f))
    assert view | {"CreatedAt": ""} == {
        "CreatedAt": "", "Driver": "local", "Labels": None,
        "Mountpoint": str(tmp_path / "volumes" / "v1" / "_data"), "Name": "v1",
        "Options": None, "Scope": "local"}
    assert svc.inspect("v1") == view
    labeled = svc.create("v2", options=TMPFS, labels={"a": "b"})
    assert (labeled["Labels"], labeled["Options"]) == ({"a": "b"}, TMPFS)


def test_a_volume_nobody_named_gets_a_name_and_the_anonymous_label(svc, events):
    labels = {"k": "v"}
    view = svc.create(labels=labels)
    assert re.match(r"^[0-9a-f]{64}$", view["Name"])
    assert view["Labels"] == {"k": "v", ANONYMOUS_LABEL: ""}
    assert labels == {"k": "v"}  # the caller's dict is left alone
    other = svc.create()
    assert other["Name"] != view["Name"] and other["Labels"] == {ANONYMOUS_LABEL: ""}
    assert events == [("volume", "create", view["Name"], {"driver": "local"}),
                      ("volume", "create", other["Name"], {"driver": "local"})]


def test_an_existing_name_is_returned_as_it_is_and_logs_nothing(svc, events):
    first = svc.create("v1", labels={"a": "b"})
    assert svc.create("v1", options=TMPFS, labels={"a": "c"}) == first
    assert svc.create("v1", driver="local") == first
    # moby 23 (moby#42028) logs `create` only when a volume is made
    assert events == [("volume", "create", "v1", {"driver": "local"})]


def test_create_errors(svc, events):
    cases = [
        (dict(name="a"), errdefs.InvalidParameter,
         "create a: volume name is too short, names should be at least two alphanumeric "
         "characters"),
        (dict(name="ba$d"), errdefs.InvalidParameter,
         'create ba$d: "ba$d" includes invalid characters for a local volume name, only '
         '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, '
         "use absolute path"),
        (dict(name="v1", options={"foo": "bar"}), errdefs.InvalidParameter,
         'create v1: invalid option: "foo"'),
        (dict(name="v1", options={"o": "size=1m"}), errdefs.InvalidParameter,
         'create v1: missing required option: "device"'),
        (dict(name="v1", driver="nosuch"), errdefs.NotFound,
         'create v1: error looking up volume plugin nosuch: plugin "nosuch" not found'),
    ]
    for kwargs, kind, message in cases:
        with pytest.raises(kind) as e:
            svc.create(**kwargs)
        assert str(e.value) == message, kwargs
    svc.create("v1")
    with pytest.raises(errdefs.NotFound) as e:
        svc.create("v1", driver="nosuch")  # even for an existing name
    assert str(e.value) == ('create v1: error looking up volume plugin nosuch: plugin '
                            '"nosuch" not found')
    with pytest.raises(errdefs.NotFound) as e:
        svc.create(driver="nosuch")  # a generated name is in the message
    assert re.match(r'^create [0-9a-f]{64}: error looking up volume plugin nosuch', str(e.value))
    assert names(svc.list({})["Volumes"]) == ["v1"]
    assert [e[1] for e in events] == ["create"]


def test_inspect_a_missing_volume(svc):
    with pytest.raises(errdefs.NotFound) as e:
        svc.inspect("nosuch")
    assert str(e.value) == "get nosuch: no such volume"
    assert svc.exists("nosuch") is False


# -- references and remove --------------------------------------------------------------

def test_references_keep_a_volume(svc, events):
    svc.create("v1", ref="c1")
    svc.reference("v1", "c2")
    assert svc.in_use("v1")
    with pytest.raises(errdefs.Conflict) as e:
        svc.remove("v1")
    assert str(e.value) == "remove v1: volume is in use - [c1, c2]"
    with pytest.raises(errdefs.Conflict):
        svc.remove("v1", force=True)  # force does not override a reference
    svc.release("v1", "c1")
    with pytest.raises(errdefs.Conflict) as e:
        svc.remove("v1")
    assert str(e.value) == "remove v1: volume is in use - [c2]"
    svc.release("v1", "c2")
    svc.release("v1", "c2")  # twice: no harm
    svc.release("nosuch", "c2")
    assert not svc.in_use("v1")
    svc.remove("v1")
    assert not svc.exists("v1")
    assert not os.path.exists(os.path.join(svc.driver.root, "v1"))
    assert events[-1] == ("volume", "destroy", "v1", {"driver": "local"})
    with pytest.raises(errdefs.NotFound) as e:
        svc.reference("v1", "c3")
    assert str(e.value) == "get v1: no such volume"
    assert not svc.in_use("v1")


def test_a_reference_taken_by_create_of_an_existing_volume(svc):
    svc.create("v1")
    svc.create("v1", ref="c1")
    assert svc.in_use("v1")


def test_remove_a_missing_volume(svc, events):
    with pytest.raises(errdefs.NotFound) as e:
        svc.remove("nosuch")
    assert str(e.value) == "get nosuch: no such volume"
    svc.remove("nosuch", force=True)
    assert events == []


def test_remove_anonymous_keeps_what_others_use(svc):
    anon = svc.create(ref="c1")["Name"]
    svc.reference(anon, "c2")
    svc.release(anon, "c1")
    svc.remove_anonymous(anon)
    assert svc.exists(anon)
    svc.release(anon, "c2")
    svc.remove_anonymous(anon)
    assert not svc.exists(anon)
    svc.remove_anonymous(anon)  # gone already: no error


# -- mount events -------------------------------------------------------------------------

def test_mount_and_unmount_events(svc, events):
    svc.create("v1")
    events.clear()
    assert svc.mount("v1", "cid", "/data", True, "") == svc.driver.path("v1")
    assert svc.mount("v1", "cid2", "/ro", False, "rprivate") == svc.driver.path("v1")
    svc.unmount("v1", "cid")
    assert events == [
        ("volume", "mount", "v1", {"container": "cid", "destination": "/data",
                                   "driver": "local", "propagation": "",
                                   "read/write": "true"}),
        ("volume", "mount", "v1", {"container": "cid2", "destination": "/ro",
                                   "driver": "local", "propagation": "rprivate",
                                   "read/write": "false"}),
        ("volume", "unmount", "v1", {"container": "cid", "driver": "local"})]
    with pytest.raises(errdefs.NotFound) as e:
        svc.mount("nosuch", "cid", "/x", True, "")
    assert str(e.value) == "get nosuch: no such volume"


# -- list ----------------------------------------------------------------------------------

@pytest.fixture
def several(svc):
    svc.create("la", labels={"a": "b"})
    svc.create("lb", labels={"a": ""})
    svc.create("lc", ref="c1")
    svc.create("lt", options=TMPFS, labels={"a": "b", "x": "y"})
    return svc


@pytest.mark.parametrize("filters, expected", [
    ({}, ["la", "lb", "lc", "lt"]),
    ({"dangling": ["true"]}, ["la", "lb", "lt"]),
    ({"dangling": ["1"]}, ["la", "lb", "lt"]),
    ({"dangling": ["false"]}, ["lc"]),
    ({"dangling": ["0"]}, ["lc"]),
    ({"name": ["la"]}, ["la"]),
    ({"name": ["l"]}, ["la", "lb", "lc", "lt"]),
    ({"name": ["^l[ab]$"]}, ["la", "lb"]),
    ({"name": ["la", "t$"]}, ["la", "lt"]),
    ({"name": ["[invalid"]}, []),
    ({"label": ["a"]}, ["la", "lb", "lt"]),
    ({"label": ["a=b"]}, ["la", "lt"]),
    ({"label": ["a="]}, ["lb"]),
    ({"label": ["a=b", "x"]}, ["lt"]),
    ({"label": ["a=c"]}, []),
    ({"driver": ["local"]}, ["la", "lb", "lc", "lt"]),
    ({"driver": ["loc"]}, []),
    ({"driver": ["nosuch", "local"]}, ["la", "lb", "lc", "lt"]),
    ({"dangling": ["false"], "driver": ["nosuch"]}, []),
    ({"name": ["l"], "label": ["a=b"], "dangling": ["true"]}, ["la", "lt"]),
])
def test_list_filters(several, filters, expected):
    got = several.list(filters)
    assert list(got) == ["Volumes", "Warnings"] and got["Warnings"] is None
    assert names(got["Volumes"]) == expected


@pytest.mark.parametrize("filters, message", [
    ({"bogus": ["1"]}, "Invalid filter 'bogus'"),
    ({"dangling": ["maybe"]}, "Invalid filter 'dangling=[maybe]'"),
    ({"all": ["true"]}, "Invalid filter 'all'"),
    ({"label!": ["a"]}, "Invalid filter 'label!'"),
])
def test_list_filter_errors(several, filters, message):
    with pytest.raises(errdefs.InvalidParameter) as e:
        several.list(filters)
    assert str(e.value) == message


# -- prune --------------------------------------------------------------------------------

def test_prune_takes_unused_anonymous_volumes_and_counts_their_bytes(svc, events):
    anon = svc.create(labels={"p": "1"})["Name"]
    first = write(svc, anon, "a", b"x" * 6)
    write(svc, anon, "dir/sub/b", b"y" * 1000)
    os.link(first, os.path.join(svc.driver.path(anon), "hardlink"))  # counted once
    os.symlink("/etc/passwd", os.path.join(svc.driver.path(anon), "link"))  # its own size
    used_anon = svc.create(ref="c1")["Name"]
    svc.create("named", labels={"p": "1"})
    tmp_anon = svc.create(options=TMPFS)["Name"]
    events.clear()
    report = svc.prune({})
    assert list(report) == ["VolumesDeleted", "SpaceReclaimed"]
    assert report == {"VolumesDeleted": [anon],
                      "SpaceReclaimed": 6 + 1000 + len("/etc/passwd")}
    assert sorted(names(svc.list({})["Volumes"])) == sorted([used_anon, "named", tmp_anon])
    assert events == [("volume", "destroy", anon, {"driver": "local"}),
                      ("volume", "prune", "", {"reclaimed": str(6 + 1000 + 11)})]
    assert svc.prune({}) == {"VolumesDeleted": [], "SpaceReclaimed": 0}
    assert events[-1] == ("volume", "prune", "", {"reclaimed": "0"})


def test_prune_all_takes_named_volumes_but_not_those_in_use_or_with_options(svc):
    svc.create("n1")
    svc.create("n2", ref="c1")
    svc.create("nt", options=TMPFS)
    anon = svc.create()["Name"]
    report = svc.prune({"all": ["true"]})
    assert sorted(report["VolumesDeleted"]) == sorted(["n1", anon])
    assert sorted(names(svc.list({})["Volumes"])) == ["n2", "nt"]
    assert svc.prune({"all": ["1"]})["VolumesDeleted"] == []
    svc.release("n2", "c1")
    assert svc.prune({"all": ["false"]})["VolumesDeleted"] == []  # n2 is named
    assert svc.prune({"all": ["0"]})["VolumesDeleted"] == []
    assert svc.prune({"all": ["true"]})["VolumesDeleted"] == ["n2"]
    assert names(svc.list({})["Volumes"]) == ["nt"]


def test_prune_label_filters(svc):
    svc.create("a1", labels={"k": "1"})
    svc.create("a2", labels={"k": "2"})
    svc.create("a3", labels={"k": ""})
    svc.create("a4")
    every = {"all": ["true"]}
    assert svc.prune(every | {"label": ["k=1"]})["VolumesDeleted"] == ["a1"]
    assert svc.prune(every | {"label": ["k"], "label!": ["k=2"]})["VolumesDeleted"] == ["a3"]
    assert svc.prune(every | {"label!": ["k"]})["VolumesDeleted"] == ["a4"]
    assert svc.prune(every | {"label": ["nope"]})["VolumesDeleted"] == []
    assert names(svc.list({})["Volumes"]) == ["a2"]


@pytest.mark.parametrize("filters, message", [
    ({"bogus": ["1"]}, "Invalid filter 'bogus'"),
    ({"dangling": ["true"]}, "Invalid filter 'dangling'"),
    ({"name": ["x"]}, "Invalid filter 'name'"),
    ({"driver": ["local"]}, "Invalid filter 'driver'"),
    ({"all": ["maybe"]}, "Invalid filter 'all=[maybe]'"),
])
def test_prune_filter_errors_remove_nothing(svc, events, filters, message):
    svc.create()
    events.clear()
    with pytest.raises(errdefs.InvalidParameter) as e:
        svc.prune(filters)
    assert str(e.value) == message
    assert len(svc.list({})["Volumes"]) == 1 and events == []


# -- system df ----------------------------------------------------------------------------

def test_usage(svc):
    svc.create("used", ref="c1")
    svc.reference("used", "c2")
    svc.create("unused")
    svc.create("empty")
    svc.create("tmp", options=TMPFS)
    write(svc, "used", "f", b"x" * 102400)
    write(svc, "unused", "d/f", b"x" * 51200)
    usage = svc.usage()
    with open(REFERENCE / "system-df.json") as f:
        keys = list(json.load(f)["Volumes"][0])
    assert all(list(v) == keys for v in usage)
    # volumes with mount options are left out, as dockerd leaves them out
    assert {v["Name"]: v["UsageData"] for v in usage} == {
        "used": {"RefCount": 2, "Size": 102400},
        "unused": {"RefCount": 0, "Size": 51200},
        "empty": {"RefCount": 0, "Size": 0}}
    # list and inspect have no UsageData
    assert all("UsageData" not in v for v in svc.list({})["Volumes"])


# -- a new service on the same directory (a daemon restart) ---------------------------------

def test_a_restart_keeps_volumes_but_not_references(svc, tmp_path, events):
    svc.create("v1", labels={"a": "b"}, ref="c1")
    svc.create("tv", options=TMPFS)
    anon = svc.create()["Name"]
    again = VolumeService(str(tmp_path / "volumes"), lambda *e: events.append(e))
    assert again.list({}) == svc.list({})
    assert again.inspect(anon)["Labels"] == {ANONYMOUS_LABEL: ""}
    # references come back from the containers' records (ContainerMounts.restore)
    assert not again.in_use("v1")
    again.reference("v1", "c1")
    with pytest.raises(errdefs.Conflict):
        again.remove("v1")
