"""Volume objects through our CLI, the docker CLI, docker-py and the raw API,
compared with what dockerd 20.10 answered to the same requests (recorded with
docker CLI 28.2.2) and with the reference JSON of a real dockerd.

The daemon announces API 1.42, so prune takes only anonymous volumes unless
asked for all (`-a`, the `all` filter), and volumes nobody named carry the
`com.docker.volume.anonymous` label; a request made with /v1.41 prunes named
volumes too, as dockerd 20.10 did. Volume events follow moby 23 as well (see
test_events): that is where they differ from the 20.10 recording.

Every volume and container a test makes has a name starting with `dytv-`, and
the `cleanup` fixture removes whatever a test made, even when it fails. What
happens to volumes inside running containers (copy-up, -v/--mount parsing,
binds) is tested in test_container_mounts.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from harness import assert_same, both, load_busybox, mounts_under, wait_for
from paths import REFERENCE
from test_containers_lifecycle import cgroup_dirs
from test_containers_restore import alive, shim_of

IMAGE = "busybox:local"
ANONYMOUS = "com.docker.volume.anonymous"
HEX64 = re.compile(r"^[0-9a-f]{64}$")
CREATED_AT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
PRUNE_WARNING = ("WARNING! This will remove anonymous local volumes not used by at least one "
                 "container.\nAre you sure you want to continue? [y/N] ")
ALL_WARNING = ("WARNING! This will remove all local volumes not used by at least one "
               "container.\nAre you sure you want to continue? [y/N] ")


@pytest.fixture
def dy(module_daemon):
    return module_daemon


def _remove_new(d, containers_before: set[str], volumes_before: set[str]) -> None:
    api = d.api()
    for c in api.get("/containers/json", query={"all": "1"}):
        if c["Id"] not in containers_before:
            api.request("DELETE", f"/containers/{c['Id']}", query={"force": "1", "v": "1"}).read()
    for v in api.get("/volumes")["Volumes"] or []:
        if v["Name"] not in volumes_before:
            api.request("DELETE", f"/volumes/{v['Name']}", query={"force": "1"}).read()


@pytest.fixture
def cleanup(dy):
    """Remove every container and volume the test made (it may have failed half-way)."""
    api = dy.api()
    containers = {c["Id"] for c in api.get("/containers/json", query={"all": "1"})}
    volumes = {v["Name"] for v in api.get("/volumes")["Volumes"] or []}
    yield
    _remove_new(dy, containers, volumes)


def status_of(api, method, path, body=None, query=None):
    """(HTTP status, decoded body or error message) of a raw API call."""
    from dockyard.client.api import APIError
    try:
        reply = api.request(method, path, body=body, query=query)
        return reply.status, json.loads(reply.read() or b"null")
    except APIError as e:
        return e.status, e.message


def reference(name: str):
    with open(REFERENCE / name) as f:
        return json.load(f)


def volumes_dir(d) -> str:
    return os.path.join(d.root, "volumes")


def write_file(d, volume: str, path: str, size: int) -> None:
    """`size` bytes into a file of the volume, written from the host."""
    target = os.path.join(volumes_dir(d), volume, "_data", path)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "wb") as f:
        f.write(b"x" * size)


def container_id(d, name: str) -> str:
    return d.docker("inspect", "-f", "{{.Id}}", name, check=True).stdout.strip()


# -- create ---------------------------------------------------------------------------------

def test_create_named_generated_labels_and_options(dy, cleanup):
    assert_same(*both(dy, "volume", "create", "dytv-c1"), 0, "dytv-c1\n", "")
    ours = dy.run_cli("volume", "create", check=True).stdout.strip()
    theirs = dy.docker("volume", "create", check=True).stdout.strip()
    assert HEX64.match(ours) and HEX64.match(theirs) and ours != theirs
    for name in (ours, theirs):
        got = json.loads(dy.docker("volume", "inspect", name, check=True).stdout)[0]
        assert got["Labels"] == {ANONYMOUS: ""}
        assert got["Options"] is None
    dy.docker("volume", "create", "--label", "b=2", "--label", "a=1", "--label", "c",
              "dytv-c2", check=True)
    # docker joins {{.Labels}} in Go's map order, which is random: ours sorts
    ours, theirs = both(dy, "volume", "ls", "-f", "name=dytv-c2", "--format",
                        '{{.Labels}}|{{.Label "a"}}|{{.Label "zz"}}')
    assert (ours.returncode, ours.stdout, ours.stderr) == (0, "a=1,b=2,c=|1|\n", "")
    labels, rest = theirs.stdout.split("|", 1)
    assert (theirs.returncode, sorted(labels.split(",")), rest, theirs.stderr) == (
        0, ["a=1", "b=2", "c="], "1|\n", "")
    assert_same(*both(dy, "volume", "inspect", "-f", "{{json .Labels}}", "dytv-c2"), 0,
                '{"a":"1","b":"2","c":""}\n')
    ours = dy.run_cli("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs",
                      "--opt", "o=size=1m", "dytv-c3", check=True)
    assert ours.stdout == "dytv-c3\n"
    got = json.loads(dy.docker("volume", "inspect", "dytv-c3", check=True).stdout)[0]
    assert got["Options"] == {"device": "tmpfs", "o": "size=1m", "type": "tmpfs"}
    assert got["Labels"] is None
    # nothing is mounted until a container uses it
    assert not os.path.ismount(got["Mountpoint"])


def test_create_an_existing_name_returns_the_volume_as_it_is(dy, cleanup):
    api = dy.api()
    first = api.post("/volumes/create", body={"Name": "dytv-x1", "Labels": {"a": "b"}})
    # as dockerd 20.10: 201 again, the old volume unchanged (labels, options not compared)
    for body in ({"Name": "dytv-x1"}, {"Name": "dytv-x1", "Labels": {"a": "c"}},
                 {"Name": "dytv-x1", "DriverOpts": {"type": "tmpfs", "device": "tmpfs"}},
                 {"Name": "dytv-x1", "Driver": "local"}, {"Name": "dytv-x1", "Driver": ""}):
        assert status_of(api, "POST", "/volumes/create", body) == (201, first), body
    assert_same(*both(dy, "volume", "create", "--label", "a=c", "dytv-x1"), 0, "dytv-x1\n", "")
    assert_same(*both(dy, "volume", "inspect", "-f", "{{json .Labels}} {{json .Options}}",
                      "dytv-x1"), 0, '{"a":"b"} null\n')
    # an unknown driver is an error even for an existing name
    ours, theirs = both(dy, "volume", "create", "--driver", "nosuch", "dytv-x1")
    assert_same(ours, theirs, 1, "", "Error response from daemon: create dytv-x1: error looking "
                                     'up volume plugin nosuch: plugin "nosuch" not found\n')
    # fields the daemon does not know are ignored
    assert status_of(api, "POST", "/volumes/create", {"Name": "dytv-x2", "Unknown": 1})[0] == 201


def test_create_errors_as_dockerd(dy, cleanup):
    bad_name = ('"{0}" includes invalid characters for a local volume name, only '
                '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
                'directory, use absolute path')
    cases = [
        (("ba$d",), "create ba$d: " + bad_name.format("ba$d")),
        (("x/y",), "create x/y: " + bad_name.format("x/y")),
        (("_x",), "create _x: " + bad_name.format("_x")),
        (("a",), "create a: volume name is too short, names should be at least two "
                 "alphanumeric characters"),
        (("--opt", "foo=bar", "dytv-e"), 'create dytv-e: invalid option: "foo"'),
        (("--opt", "o=size=1m", "dytv-e"), 'create dytv-e: missing required option: "device"'),
        (("--opt", "type=tmpfs", "dytv-e"), 'create dytv-e: missing required option: "device"'),
        (("--opt", "device=tmpfs", "dytv-e"), 'create dytv-e: missing required option: "type"'),
        (("--opt", "size=10m", "dytv-e"),
         "create dytv-e: quota size requested but no quota support"),
        (("--driver", "nosuch", "dytv-e"), 'create dytv-e: error looking up volume plugin '
                                           'nosuch: plugin "nosuch" not found'),
    ]
    for args, message in cases:
        ours, theirs = both(dy, "volume", "create", *args)
        assert_same(ours, theirs, 1, "", f"Error response from daemon: {message}\n")
    # names that are fine
    for name in ("ab", "dytv-a.b_c-d", "9dytv"):
        assert_same(*both(dy, "volume", "create", name), 0, f"{name}\n", "")
    names = dy.docker("volume", "ls", "-q", check=True).stdout.split()
    assert "dytv-e" not in names
    assert {"ab", "dytv-a.b_c-d", "9dytv"} <= set(names)
    assert not [n for n in os.listdir(volumes_dir(dy)) if n.startswith(".new-")]
    api = dy.api()
    statuses = [
        ({"Name": "a"}, 400), ({"Name": "ba$d"}, 400), ({"Name": "dytv-e",
                                                        "DriverOpts": {"foo": "bar"}}, 400),
        ({"Name": "dytv-e", "DriverOpts": {"o": "size=1m"}}, 400),
        ({"Name": "dytv-e", "Driver": "nosuch"}, 404),
    ]
    for body, status in statuses:
        assert status_of(api, "POST", "/volumes/create", body)[0] == status, body
    # (dockerd's text here is Go's JSON decoder's; only the status is compared)
    assert status_of(api, "POST", "/volumes/create", b"not json")[0] == 400
    # Go's `$` is the end of the text: a trailing newline is an invalid character
    assert status_of(api, "POST", "/volumes/create", {"Name": "dytv-nl\n"}) == (
        400, 'create dytv-nl\n: ' + bad_name.format("dytv-nl\n"))


def test_raw_create_answers_and_map_keys_in_go_order(dy, cleanup):
    api = dy.api()
    reply = api.request("POST", "/volumes/create", body={
        "Name": "dytv-raw", "DriverOpts": {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"},
        "Labels": {"z": "1", "a": "2"}})
    assert reply.status == 201
    got = json.loads(reply.read())
    assert list(got) == list(reference("volume-inspect.json"))
    assert got["Mountpoint"] == os.path.join(volumes_dir(dy), "dytv-raw", "_data")
    assert (got["Name"], got["Driver"], got["Scope"]) == ("dytv-raw", "local", "local")
    assert CREATED_AT.match(got["CreatedAt"]), got["CreatedAt"]
    assert (got["Options"], got["Labels"]) == (
        {"device": "tmpfs", "o": "size=1m", "type": "tmpfs"}, {"a": "2", "z": "1"})
    anonymous = api.post("/volumes/create", body={})
    assert HEX64.match(anonymous["Name"])
    assert anonymous["Labels"] == {ANONYMOUS: ""}
    # dockerd (Go) encodes maps with sorted keys, whatever order they were sent in
    again = api.get("/volumes/dytv-raw")
    listed = api.get("/volumes", query={"filters": json.dumps({"name": ["dytv-raw"]})})
    assert [(list(v["Options"]), list(v["Labels"]))
            for v in (got, again, listed["Volumes"][0])] == [(["device", "o", "type"],
                                                               ["a", "z"])] * 3


# -- inspect ---------------------------------------------------------------------------------

def test_inspect(dy, cleanup):
    dy.docker("volume", "create", "dytv-i", check=True)
    ours, theirs = both(dy, "volume", "inspect", "dytv-i")
    assert_same(ours, theirs, 0)
    got = json.loads(ours.stdout)
    ref = reference("volume-inspect.json")
    assert [list(v) for v in got] == [list(ref)]
    mountpoint = os.path.join(volumes_dir(dy), "dytv-i", "_data")
    assert got[0] | {"CreatedAt": ""} == {
        "CreatedAt": "", "Driver": "local", "Labels": None, "Mountpoint": mountpoint,
        "Name": "dytv-i", "Options": None, "Scope": "local"}
    created = time.strptime(got[0]["CreatedAt"], "%Y-%m-%dT%H:%M:%SZ")
    assert abs(time.mktime(created) - time.mktime(time.gmtime())) < 120
    raw = dy.api().get("/volumes/dytv-i")
    assert list(raw) == list(ref) and raw == got[0]
    # as dockerd's local driver: the volume's directory 0701, _data 0755, both root's
    for path, mode in ((os.path.dirname(mountpoint), 0o701), (mountpoint, 0o755)):
        st = os.stat(path)
        assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (mode, 0, 0), path
    assert sorted(os.listdir(os.path.dirname(mountpoint))) == ["_data", "volume.json"]
    assert_same(*both(dy, "volume", "inspect", "--format", "{{.Name}} {{.Mountpoint}} {{.Scope}}",
                      "dytv-i"), 0, f"dytv-i {mountpoint} local\n", "")
    missing = "Error response from daemon: get dytv-nosuch: no such volume\n"
    assert_same(*both(dy, "volume", "inspect", "dytv-nosuch"), 1, "[]\n", missing)
    ours, theirs = both(dy, "volume", "inspect", "dytv-i", "dytv-nosuch")
    assert_same(ours, theirs, 1, stderr=missing)
    assert json.loads(ours.stdout) == got
    assert status_of(dy.api(), "GET", "/volumes/dytv-nosuch") == (
        404, "get dytv-nosuch: no such volume")


# -- ls -------------------------------------------------------------------------------------

def test_ls_and_its_filters(dy, cleanup):
    dy.docker("volume", "create", "--label", "a=b", "dytv-l-a", check=True)
    dy.docker("volume", "create", "--label", "a", "dytv-l-b", check=True)
    dy.docker("volume", "create", "dytv-l-c", check=True)
    dy.docker("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs",
              "--label", "a=b", "dytv-l-t", check=True)
    dy.docker("create", "--name", "dytv-l-user", "-v", "dytv-l-c:/data", IMAGE, "true",
              check=True)
    mine = "name=dytv-l-"
    for args in (("volume", "ls"), ("volume", "ls", "-q"),
                 ("volume", "ls", "--format",
                  "{{.Name}} {{.Driver}} {{.Mountpoint}} {{.Labels}} {{.Scope}}"),
                 ("volume", "ls", "--format", "{{json .}}"),
                 ("volume", "ls", "--format",
                  "table {{.Name}}\t{{.Labels}}\t{{.Links}}\t{{.Size}}"),
                 ("volume", "ls", "-f", "label=a=b", "-f", "name=-l-t")):
        assert_same(*both(dy, *args), 0)

    def names(*filters):
        ours, theirs = both(dy, "volume", "ls", *[x for f in filters for x in ("-f", f)])
        assert_same(ours, theirs, 0, stderr="")
        lines = ours.stdout.splitlines()
        assert lines[0] == "DRIVER    VOLUME NAME"
        assert all(line.startswith("local     ") for line in lines[1:])
        return [line.split()[1] for line in lines[1:]]

    assert names(mine) == ["dytv-l-a", "dytv-l-b", "dytv-l-c", "dytv-l-t"]
    assert names(mine, "dangling=true") == ["dytv-l-a", "dytv-l-b", "dytv-l-t"]
    assert names(mine, "dangling=1") == ["dytv-l-a", "dytv-l-b", "dytv-l-t"]
    assert names(mine, "dangling=false") == ["dytv-l-c"]
    assert names(mine, "dangling=0") == ["dytv-l-c"]
    assert names("name=dytv-l-a") == ["dytv-l-a"]
    assert names("name=^dytv-l-[ab]$") == ["dytv-l-a", "dytv-l-b"]
    assert names("name=dytv-l-a", "name=l-t") == ["dytv-l-a", "dytv-l-t"]
    assert names(mine, "label=a") == ["dytv-l-a", "dytv-l-b", "dytv-l-t"]
    assert names(mine, "label=a=b") == ["dytv-l-a", "dytv-l-t"]
    assert names(mine, "label=a=c") == []
    assert names(mine, "label=nope") == []
    assert names(mine, "driver=local") == ["dytv-l-a", "dytv-l-b", "dytv-l-c", "dytv-l-t"]
    assert names(mine, "driver=loc") == []
    assert names(mine, "driver=nosuch") == []
    mountpoint = os.path.join(volumes_dir(dy), "dytv-l-a", "_data")
    json_line = dy.run_cli("volume", "ls", "-f", "name=dytv-l-a", "--format", "{{json .}}",
                           check=True).stdout
    assert json.loads(json_line) == {
        "Availability": "N/A", "Driver": "local", "Group": "N/A", "Labels": "a=b",
        "Links": "N/A", "Mountpoint": mountpoint, "Name": "dytv-l-a", "Scope": "local",
        "Size": "N/A", "Status": "N/A"}
    for flt, message in (("bogus=1", "Invalid filter 'bogus'"),
                         ("dangling=maybe", "Invalid filter 'dangling=[maybe]'")):
        assert_same(*both(dy, "volume", "ls", "-f", flt), 1, "",
                    f"Error response from daemon: {message}\n")
    api = dy.api()
    listed = api.get("/volumes")
    assert list(listed) == list(reference("volumes-list.json"))
    assert listed["Warnings"] is None
    assert all(list(v) == list(reference("volume-inspect.json")) for v in listed["Volumes"])
    # both shapes of `filters`
    for filters in ({"name": {"dytv-l-a": True}}, {"name": ["dytv-l-a"]}):
        got = api.get("/volumes", query={"filters": json.dumps(filters)})
        assert [v["Name"] for v in got["Volumes"]] == ["dytv-l-a"]
    got = api.get("/volumes", query={"filters": json.dumps(
        {"dangling": ["false"], "driver": ["nosuch"]})})
    assert got == {"Volumes": [], "Warnings": None}
    assert status_of(api, "GET", "/volumes", query={"filters": json.dumps({"bogus": ["1"]})}) \
        == (400, "Invalid filter 'bogus'")
    assert status_of(api, "GET", "/volumes",
                     query={"filters": json.dumps({"dangling": ["maybe"]})}) == (
        400, "Invalid filter 'dangling=[maybe]'")
    assert status_of(api, "GET", "/volumes", query={"filters": "notjson"})[0] == 400


# -- rm -------------------------------------------------------------------------------------

def test_rm(dy, cleanup):
    api = dy.api()
    dy.docker("volume", "create", "dytv-r", check=True)
    write_file(dy, "dytv-r", "sub/file", 10)
    dy.docker("create", "--name", "dytv-r-user", "-v", "dytv-r:/d", IMAGE, "true", check=True)
    cid = container_id(dy, "dytv-r-user")
    in_use = f"remove dytv-r: volume is in use - [{cid}]"
    for flags in ((), ("-f",), ("--force",)):
        assert_same(*both(dy, "volume", "rm", *flags, "dytv-r"), 1, "",
                    f"Error response from daemon: {in_use}\n")
    for query in ({}, {"force": "1"}, {"force": "true"}):
        assert status_of(api, "DELETE", "/volumes/dytv-r", query=query) == (409, in_use)
    missing = "Error response from daemon: get dytv-nosuch: no such volume\n"
    assert_same(*both(dy, "volume", "rm", "dytv-nosuch"), 1, "", missing)
    assert_same(*both(dy, "volume", "rm", "-f", "dytv-nosuch"), 0, "dytv-nosuch\n", "")
    assert_same(*both(dy, "volume", "rm", "dytv-r", "dytv-nosuch"), 1, "",
                f"Error response from daemon: {in_use}\n{missing}")
    assert status_of(api, "DELETE", "/volumes/dytv-nosuch") == (
        404, "get dytv-nosuch: no such volume")
    for value in ("1", "bogus"):
        reply = api.request("DELETE", "/volumes/dytv-nosuch", query={"force": value})
        assert (reply.status, reply.read()) == (204, b"")
    # two users: dockerd joins their IDs with ", "
    dy.docker("create", "--name", "dytv-r-user2", "-v", "dytv-r:/e", IMAGE, "true", check=True)
    cid2 = container_id(dy, "dytv-r-user2")
    status, message = status_of(api, "DELETE", "/volumes/dytv-r")
    assert (status, message) in [(409, f"remove dytv-r: volume is in use - [{a}, {b}]")
                                 for a, b in ((cid, cid2), (cid2, cid))], message
    dy.docker("rm", "dytv-r-user2", check=True)
    # the container's removal (without -v) keeps the named volume and frees it
    dy.docker("rm", "dytv-r-user", check=True)
    assert os.path.exists(os.path.join(volumes_dir(dy), "dytv-r", "_data", "sub", "file"))
    dy.docker("volume", "create", "dytv-r2", check=True)
    dy.docker("volume", "create", "dytv-r3", check=True)
    ours = dy.run_cli("volume", "rm", "dytv-r", "dytv-r2")
    assert (ours.returncode, ours.stdout, ours.stderr) == (0, "dytv-r\ndytv-r2\n", "")
    reply = api.request("DELETE", "/volumes/dytv-r3")
    assert (reply.status, reply.read()) == (204, b"")
    left = os.listdir(volumes_dir(dy))
    assert not {"dytv-r", "dytv-r2", "dytv-r3"} & set(left)
    assert not [n for n in left if n.startswith((".trash-", ".new-"))], left
    assert_same(*both(dy, "volume", "inspect", "dytv-r"), 1, "[]\n",
                "Error response from daemon: get dytv-r: no such volume\n")


def test_rm_a_volume_of_a_running_container(dy, cleanup):
    dy.docker("run", "-d", "--name", "dytv-rr", "-v", "dytv-rr:/d", IMAGE, "sleep", "300",
              check=True)
    cid = container_id(dy, "dytv-rr")
    assert_same(*both(dy, "volume", "rm", "-f", "dytv-rr"), 1, "",
                f"Error response from daemon: remove dytv-rr: volume is in use - [{cid}]\n")
    dy.docker("rm", "-f", "dytv-rr", check=True)
    assert dy.docker("volume", "rm", "dytv-rr", check=True).stdout == "dytv-rr\n"
    assert not os.path.exists(os.path.join(volumes_dir(dy), "dytv-rr"))


def test_names_with_a_slash_reach_the_volume_routes(dy, cleanup):
    """dockerd's routes are /volumes/{name:.*}: a name with a slash is looked up
    (and is missing: no volume can have one) rather than an unknown path."""
    api = dy.api()
    assert status_of(api, "GET", "/volumes/dytv/x") == (404, "get dytv/x: no such volume")
    assert status_of(api, "DELETE", "/volumes/dytv/x") == (404, "get dytv/x: no such volume")
    reply = api.request("DELETE", "/volumes/dytv/x", query={"force": "1"})
    assert (reply.status, reply.read()) == (204, b"")
    assert_same(*both(dy, "volume", "inspect", "dytv/x"), 1, "[]\n",
                "Error response from daemon: get dytv/x: no such volume\n")
    assert_same(*both(dy, "volume", "rm", "-f", "dytv/x"), 0, "dytv/x\n", "")


# -- prune ----------------------------------------------------------------------------------

def test_prune(dy, cleanup):
    api = dy.api()
    anon = api.post("/volumes/create", body={"Labels": {"dytv-p": "1"}})["Name"]
    write_file(dy, anon, "a", 6)
    write_file(dy, anon, "dir/b", 1000)
    os.link(os.path.join(volumes_dir(dy), anon, "_data", "dir/b"),
            os.path.join(volumes_dir(dy), anon, "_data", "c"))  # a hard link counts once
    dy.docker("volume", "create", "--label", "dytv-p=1", "dytv-p-n1", check=True)
    dy.docker("volume", "create", "--label", "dytv-p=2", "dytv-p-n2", check=True)
    write_file(dy, "dytv-p-n2", "f", 2048)
    dy.docker("volume", "create", "--label", "dytv-p=1", "--opt", "type=tmpfs",
              "--opt", "device=tmpfs", "dytv-p-t", check=True)
    dy.docker("volume", "create", "--label", "dytv-p=1", "dytv-p-used", check=True)
    dy.docker("create", "--name", "dytv-p-user", "-v", "dytv-p-used:/d",
              "--mount", "type=volume,dst=/anon,volume-label=dytv-p=1", IMAGE, "true",
              check=True)
    user = dy.api().get("/containers/dytv-p-user/json")
    anon_used = [m["Name"] for m in user["Mounts"] if m["Destination"] == "/anon"][0]
    assert api.get(f"/volumes/{anon_used}")["Labels"] == {"dytv-p": "1", ANONYMOUS: ""}

    def mine():
        return sorted(v["Name"] for v in api.get("/volumes", query={
            "filters": json.dumps({"label": ["dytv-p"]})})["Volumes"])

    everything = sorted([anon, anon_used, "dytv-p-n1", "dytv-p-n2", "dytv-p-t", "dytv-p-used"])
    assert mine() == everything
    assert_same(*both(dy, "volume", "prune", input="n\n"), 0, PRUNE_WARNING, "")
    assert_same(*both(dy, "volume", "prune", "-a", input="n\n"), 0, ALL_WARNING, "")
    for flt, message in (("bogus=1", "Invalid filter 'bogus'"),
                         ("dangling=true", "Invalid filter 'dangling'")):
        assert_same(*both(dy, "volume", "prune", "-f", "--filter", flt), 1, "",
                    f"Error response from daemon: {message}\n")
    assert_same(*both(dy, "volume", "prune", "-f", "-a", "--filter", "all=1"), 1, "",
                "conflicting options: cannot specify both --all and --filter all=1\n")
    assert mine() == everything
    # API 1.42: only the anonymous volume nobody uses; its files counted (1006 bytes)
    ours = dy.run_cli("volume", "prune", "-f", "--filter", "label=dytv-p", check=True)
    assert ours.stdout == f"Deleted Volumes:\n{anon}\n\nTotal reclaimed space: 1.006kB\n"
    assert not os.path.exists(os.path.join(volumes_dir(dy), anon))
    assert mine() == sorted([anon_used, "dytv-p-n1", "dytv-p-n2", "dytv-p-t", "dytv-p-used"])
    theirs = dy.docker("volume", "prune", "--filter", "label=dytv-p", input="y\n", check=True)
    assert theirs.stdout == PRUNE_WARNING + "Total reclaimed space: 0B\n"
    # -a: named ones too, but never those with mount options, nor those in use
    theirs = dy.docker("volume", "prune", "-f", "-a", "--filter", "label=dytv-p=1", check=True)
    assert theirs.stdout == "Deleted Volumes:\ndytv-p-n1\n\nTotal reclaimed space: 0B\n"
    assert mine() == sorted([anon_used, "dytv-p-n2", "dytv-p-t", "dytv-p-used"])
    # label! : those without the label (or without that value)
    got = api.post("/volumes/prune", query={"filters": json.dumps(
        {"label": ["dytv-p"], "label!": ["dytv-p=2"], "all": ["true"]})})
    assert got == {"VolumesDeleted": [], "SpaceReclaimed": 0}
    # an API 1.41 client prunes named volumes without asking
    reply = api.request("POST", "/v1.41/volumes/prune",
                        query={"filters": json.dumps({"label": ["dytv-p=2"]})})
    got = json.loads(reply.read())
    assert (reply.status, list(got)) == (200, ["VolumesDeleted", "SpaceReclaimed"])
    assert got == {"VolumesDeleted": ["dytv-p-n2"], "SpaceReclaimed": 2048}
    # the container goes (without -v): its volumes are unused now
    dy.docker("rm", "dytv-p-user", check=True)
    got = api.post("/v1.42/volumes/prune", query={"filters": json.dumps({"label": ["dytv-p"]})})
    assert got == {"VolumesDeleted": [anon_used], "SpaceReclaimed": 0}
    got = api.post("/volumes/prune", query={"filters": json.dumps(
        {"label": ["dytv-p"], "all": ["1"]})})
    assert got == {"VolumesDeleted": ["dytv-p-used"], "SpaceReclaimed": 0}
    assert mine() == ["dytv-p-t"]
    assert api.post("/volumes/prune", query={"filters": json.dumps(
        {"label": ["dytv-p"], "all": ["true"]})}) == {"VolumesDeleted": [], "SpaceReclaimed": 0}
    assert status_of(api, "POST", "/volumes/prune",
                     query={"filters": json.dumps({"all": ["maybe"]})}) == (
        400, "Invalid filter 'all=[maybe]'")
    left = os.listdir(volumes_dir(dy))
    assert not [n for n in left if n.startswith((".trash-", ".new-"))], left


# -- docker-py ------------------------------------------------------------------------------

def test_docker_py(dy, cleanup):
    import docker
    client = dy.client()
    vol = client.volumes.create("dytv-py", labels={"k": "v"},
                                driver_opts={"type": "tmpfs", "device": "tmpfs", "o": "size=1m"})
    assert list(vol.attrs) == list(reference("volume-inspect.json"))
    assert (vol.name, vol.attrs["Labels"], vol.attrs["Options"]) == (
        "dytv-py", {"k": "v"}, {"device": "tmpfs", "o": "size=1m", "type": "tmpfs"})
    assert client.volumes.get("dytv-py").attrs == vol.attrs
    assert [v.name for v in client.volumes.list(filters={"label": "k=v"})] == ["dytv-py"]
    assert "dytv-py" in [v.name for v in client.volumes.list()]
    anon = client.volumes.create(labels={"dytv-py": "1"})
    assert HEX64.match(anon.name)
    assert anon.attrs["Labels"] == {"dytv-py": "1", ANONYMOUS: ""}
    named = client.volumes.create("dytv-py2", labels={"dytv-py": "1"})
    with pytest.raises(docker.errors.NotFound) as e:
        client.volumes.get("dytv-nosuch")
    assert "get dytv-nosuch: no such volume" in str(e.value)
    client.containers.create(IMAGE, "true", name="dytv-py-user", volumes=["dytv-py2:/d"])
    with pytest.raises(docker.errors.APIError) as e:
        named.remove(force=True)
    assert e.value.status_code == 409
    # the negotiated API (1.42) prunes anonymous volumes only
    assert client.volumes.prune(filters={"label": "dytv-py"}) == {
        "VolumesDeleted": [anon.name], "SpaceReclaimed": 0}
    client.containers.get("dytv-py-user").remove()
    assert client.volumes.prune(filters={"label": "dytv-py", "all": "true"}) == {
        "VolumesDeleted": ["dytv-py2"], "SpaceReclaimed": 0}
    vol.remove(force=True)
    with pytest.raises(docker.errors.NotFound):
        client.volumes.get("dytv-py")
    with pytest.raises(docker.errors.NotFound):
        client.api.remove_volume("dytv-py")
    with pytest.raises(docker.errors.APIError) as e:
        client.volumes.create("a")
    assert e.value.status_code == 400


# -- events ---------------------------------------------------------------------------------

def test_events(dy, cleanup):
    """The volume events of moby 23 (API 1.42), which this daemon follows: since
    moby#42028 `create` is logged only when a volume is made (dockerd 20.10 also
    logged it for every create that found the volume, and for every container
    naming one), and a prune logs `destroy` for each volume it removes (20.10
    logged only the `prune`)."""
    start = time.time_ns()
    since = str(int(time.time()) - 1)
    dy.docker("volume", "create", "dytv-evol", check=True)
    dy.run_cli("volume", "create", "dytv-evol", check=True)  # it exists: no event
    dy.docker("run", "--name", "dytv-ev1", "-v", "dytv-evol:/d", IMAGE, "true", check=True)
    dy.docker("run", "--name", "dytv-ev2", "--mount", "type=volume,src=dytv-evol,dst=/e,readonly",
              IMAGE, "true", check=True)
    c1, c2 = container_id(dy, "dytv-ev1"), container_id(dy, "dytv-ev2")
    dy.docker("rm", "dytv-ev1", "dytv-ev2", check=True)
    dy.docker("volume", "rm", "dytv-evol", check=True)
    anon = dy.docker("volume", "create", "--label", "dytv-ev=1", check=True).stdout.strip()
    dy.docker("run", "--name", "dytv-ev3", "-v", f"{anon}:/d", IMAGE,
              "sh", "-c", "printf hello > /d/f", check=True)
    c3 = container_id(dy, "dytv-ev3")
    dy.docker("rm", "dytv-ev3", check=True)
    dy.run_cli("volume", "prune", "-f", "--filter", "label=dytv-ev=1", check=True)

    def events():
        out = dy.docker("events", "--since", since, "--until", str(int(time.time()) + 1),
                        "--filter", "type=volume", "--format", "{{json .}}", check=True)
        got = [json.loads(line) for line in out.stdout.splitlines()]
        return [e for e in got if e["timeNano"] >= start]

    got = wait_for(lambda: (lambda es: es if es and es[-1]["Action"] == "prune" else None)(
        events()), what="the volume prune event")
    local = {"driver": "local"}

    def mount(c, dest, rw):
        return {"container": c, "destination": dest, "driver": "local", "propagation": "",
                "read/write": rw}

    assert [(e["Action"], e["Actor"]["ID"], e["Actor"]["Attributes"]) for e in got] == [
        ("create", "dytv-evol", local),
        ("mount", "dytv-evol", mount(c1, "/d", "true")),
        ("unmount", "dytv-evol", {"container": c1, "driver": "local"}),
        ("mount", "dytv-evol", mount(c2, "/e", "false")),
        ("unmount", "dytv-evol", {"container": c2, "driver": "local"}),
        ("destroy", "dytv-evol", local),
        ("create", anon, local),
        ("mount", anon, mount(c3, "/d", "true")),
        ("unmount", anon, {"container": c3, "driver": "local"}),
        ("destroy", anon, local),
        ("prune", "", {"reclaimed": "5"})]
    assert all(set(e) == {"Type", "Action", "Actor", "scope", "time", "timeNano"} and
               (e["Type"], e["scope"]) == ("volume", "local") for e in got)
    # a volume's name as an event filter: a prefix of an actor's ID or name
    out = dy.docker("events", "--since", since, "--until", str(int(time.time()) + 1),
                    "--filter", "volume=dytv-evol", "--format", "{{.Type}} {{.Action}}",
                    check=True)
    assert out.stdout == ("volume create\nvolume mount\nvolume unmount\nvolume mount\n"
                          "volume unmount\nvolume destroy\n")


# -- system df ------------------------------------------------------------------------------

def test_system_df(dy, cleanup):
    for name in ("dytv-df-used", "dytv-df-unused", "dytv-df-empty"):
        dy.docker("volume", "create", name, check=True)
    dy.docker("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs",
              "dytv-df-tmp", check=True)
    write_file(dy, "dytv-df-used", "f", 102400)
    write_file(dy, "dytv-df-unused", "d/f", 51200)
    dy.docker("create", "--name", "dytv-df-user", "-v", "dytv-df-used:/d", IMAGE, "true",
              check=True)
    df = dy.api().get("/system/df")
    ref = reference("system-df.json")
    assert list(df) == list(ref)
    # dockerd leaves volumes with mount options out of `system df`
    assert {v["Name"] for v in df["Volumes"]} == {"dytv-df-used", "dytv-df-unused",
                                                   "dytv-df-empty"}
    assert all(list(v) == list(ref["Volumes"][0]) for v in df["Volumes"])
    usage = {v["Name"]: v["UsageData"] for v in df["Volumes"]}
    assert usage == {"dytv-df-used": {"RefCount": 1, "Size": 102400},
                     "dytv-df-unused": {"RefCount": 0, "Size": 51200},
                     "dytv-df-empty": {"RefCount": 0, "Size": 0}}
    # /volumes has no UsageData
    assert all("UsageData" not in v for v in dy.api().get("/volumes")["Volumes"])
    ours, theirs = both(dy, "system", "df")
    assert_same(ours, theirs, 0)
    assert "\nLocal Volumes   3         1         153.6kB   51.2kB (33%)\n" in ours.stdout
    ours, theirs = both(dy, "system", "df", "--format", "{{json .}}")
    assert_same(ours, theirs, 0)
    assert {"Active": "1", "Reclaimable": "51.2kB (33%)", "Size": "153.6kB", "TotalCount": "3",
            "Type": "Local Volumes"} in [json.loads(line) for line in ours.stdout.splitlines()]

    def volumes_section(out: str) -> list[str]:
        section = out.split("Local Volumes space usage:\n\n")[1].split("\n\n")[0]
        return section.splitlines()

    ours, theirs = both(dy, "system", "df", "-v")
    assert (ours.returncode, ours.stderr) == (theirs.returncode, theirs.stderr) == (0, "")
    assert volumes_section(ours.stdout) == volumes_section(theirs.stdout)
    rows = {line.split()[0]: line.split()[1:] for line in volumes_section(ours.stdout)[1:]}
    assert volumes_section(ours.stdout)[0].split() == ["VOLUME", "NAME", "LINKS", "SIZE"]
    assert rows == {"dytv-df-used": ["1", "102.4kB"], "dytv-df-unused": ["0", "51.2kB"],
                    "dytv-df-empty": ["0", "0B"]}


# -- volumes with a file system of their own ------------------------------------------------

def mounted(*, at: str | None = None, device: str | None = None) -> list[str]:
    """The mount points in /proc/self/mountinfo at `at`, or of `device` (a block
    device, matched by its number and by the source the kernel shows)."""
    if device is not None:
        rdev = os.stat(device).st_rdev
        number = f"{os.major(rdev)}:{os.minor(rdev)}"
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point, source = fields[4], fields[fields.index("-") + 2]
            if at is not None and point == at:
                out.append(point)
            elif device is not None and (fields[2] == number or source == device):
                out.append(point)
    return out


def test_a_block_device_volume(dy, cleanup, tmp_path):
    """`--opt type=ext4 --opt device=/dev/loopN`, as docker's local driver: the
    device is mounted on the volume's `_data` while a container uses it, and
    only then; removing the volume leaves the file system on the device as it
    is."""
    image = tmp_path / "fs.img"
    with open(image, "wb") as f:
        f.truncate(16 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, capture_output=True)
    loop = subprocess.run(["losetup", "-f", "--show", str(image)], check=True,
                          capture_output=True, text=True).stdout.strip()
    look = tmp_path / "look"
    look.mkdir()
    api = dy.api()
    try:
        dy.docker("volume", "create", "--opt", "type=ext4", "--opt", f"device={loop}",
                  "dytv-blk", check=True)
        got = api.get("/volumes/dytv-blk")
        data = got["Mountpoint"]
        assert got["Options"] == {"device": loop, "type": "ext4"}
        assert mounted(at=data) == mounted(device=loop) == []
        dy.docker("run", "--name", "dytv-blk-w", "-v", "dytv-blk:/d", IMAGE,
                  "sh", "-c", "echo written on the device > /d/f && mkdir /d/sub", check=True)
        assert mounted(at=data) == mounted(device=loop) == []
        dy.docker("run", "-d", "--name", "dytv-blk-r", "-v", "dytv-blk:/d", IMAGE,
                  "sleep", "300", check=True)
        assert mounted(at=data) == mounted(device=loop) == [data]
        got = dy.docker("exec", "dytv-blk-r", "sh", "-c", "cat /d/f; ls /d", check=True)
        assert got.stdout == "written on the device\nf\nlost+found\nsub\n"
        # a second user shares the mount, which stays until the last one stops
        dy.docker("run", "-d", "--name", "dytv-blk-r2", "-v", "dytv-blk:/e", IMAGE,
                  "sleep", "300", check=True)
        assert mounted(at=data) == mounted(device=loop) == [data]
        dy.docker("rm", "-f", "dytv-blk-r", check=True)
        assert mounted(at=data) == mounted(device=loop) == [data]
        got = dy.docker("exec", "dytv-blk-r2", "cat", "/e/f", check=True)
        assert got.stdout == "written on the device\n"
        dy.docker("rm", "-f", "dytv-blk-r2", "dytv-blk-w", check=True)
        assert mounted(at=data) == mounted(device=loop) == []
        assert os.listdir(data) == []  # nothing was written beneath the mount
        assert dy.docker("volume", "rm", "dytv-blk", check=True).stdout == "dytv-blk\n"
        assert mounted(device=loop) == []
        subprocess.run(["mount", "-t", "ext4", "-o", "ro", loop, str(look)], check=True)
        try:
            assert (look / "f").read_text() == "written on the device\n"
            assert sorted(os.listdir(look)) == ["f", "lost+found", "sub"]
        finally:
            subprocess.run(["umount", str(look)], check=True)

        # o=ro: the file system is mounted read-only, and writes fail in the container
        dy.docker("volume", "create", "--opt", "type=ext4", "--opt", f"device={loop}",
                  "--opt", "o=ro", "dytv-blk-ro", check=True)
        got = dy.docker("run", "--name", "dytv-blk-ro1", "-v", "dytv-blk-ro:/d", IMAGE,
                        "sh", "-c", "cat /d/f; echo more > /d/g")
        assert (got.returncode, got.stdout) == (1, "written on the device\n")
        assert got.stderr == "sh: can't create /d/g: Read-only file system\n", got.stderr
        assert mounted(device=loop) == []
        dy.docker("rm", "dytv-blk-ro1", check=True)
        dy.docker("volume", "rm", "dytv-blk-ro", check=True)
    finally:
        for c in ("dytv-blk-w", "dytv-blk-r", "dytv-blk-r2", "dytv-blk-ro1"):
            status_of(api, "DELETE", f"/containers/{c}", query={"force": "1"})
        for v in ("dytv-blk", "dytv-blk-ro"):
            status_of(api, "DELETE", f"/volumes/{v}", query={"force": "1"})
        for point in reversed(mounted(device=loop) + mounted(at=str(look))):
            subprocess.run(["umount", "-l", point], check=False)
        subprocess.run(["losetup", "-d", loop], check=False)


# -- crash safety ---------------------------------------------------------------------------

def test_volumes_survive_a_kill_and_leftovers_are_cleaned(daemon):
    load_busybox(daemon)
    api = daemon.api()
    api.post("/volumes/create", body={"Name": "dytv-k1", "Labels": {"a": "b", "c": ""}})
    api.post("/volumes/create", body={"Name": "dytv-k2", "DriverOpts": {
        "type": "tmpfs", "device": "tmpfs", "o": "size=1m"}})
    anon = api.post("/volumes/create", body={})["Name"]
    write_file(daemon, "dytv-k1", "dir/data", 4096)
    write_file(daemon, anon, "f", 3)
    daemon.docker("create", "--name", "dytv-k-user", "-v", "dytv-k1:/d", IMAGE, "true",
                  check=True)
    cid = container_id(daemon, "dytv-k-user")
    before = api.get("/volumes")
    daemon.stop(signal.SIGKILL)

    root = volumes_dir(daemon)
    # what a create and a remove cut short leave behind, and a directory not ours
    for leftover in (".new-x-1234", ".trash-y-5678"):
        os.makedirs(os.path.join(root, leftover, "_data"))
        with open(os.path.join(root, leftover, "volume.json"), "w") as f:
            json.dump({"Name": leftover, "Driver": "local", "Labels": {}, "Options": {},
                       "CreatedAt": "2026-01-01T00:00:00Z"}, f)
        write_file(daemon, leftover, "junk", 10)
    os.makedirs(os.path.join(root, "dytv-k-junk", "_data"))

    daemon.start()
    left = sorted(os.listdir(root))
    assert ".new-x-1234" not in left and ".trash-y-5678" not in left, left
    after = api.get("/volumes")
    assert after == before
    assert sorted(v["Name"] for v in after["Volumes"]) == sorted([anon, "dytv-k1", "dytv-k2"])
    assert api.get("/volumes/dytv-k1")["Labels"] == {"a": "b", "c": ""}
    assert api.get("/volumes/dytv-k2")["Options"] == {"device": "tmpfs", "o": "size=1m",
                                                     "type": "tmpfs"}
    assert api.get(f"/volumes/{anon}")["Labels"] == {ANONYMOUS: ""}
    assert status_of(api, "GET", "/volumes/dytv-k-junk") == (
        404, "get dytv-k-junk: no such volume")
    with open(os.path.join(root, "dytv-k1", "_data", "dir", "data"), "rb") as f:
        assert f.read() == b"x" * 4096
    # the references come back from the container's record
    assert status_of(api, "DELETE", "/volumes/dytv-k1") == (
        409, f"remove dytv-k1: volume is in use - [{cid}]")
    usage = {v["Name"]: v["UsageData"] for v in api.get("/system/df")["Volumes"]}
    assert usage == {"dytv-k1": {"RefCount": 1, "Size": 4096}, anon: {"RefCount": 0, "Size": 3}}
    got = daemon.docker("run", "--rm", "-v", "dytv-k1:/d", IMAGE, "cat", "/d/dir/data",
                        check=True)
    assert got.stdout == "x" * 4096
    # everything still works
    daemon.docker("rm", "dytv-k-user", check=True)
    assert api.post("/volumes/prune") == {"VolumesDeleted": [anon], "SpaceReclaimed": 3}
    for name in ("dytv-k1", "dytv-k2"):
        assert api.request("DELETE", f"/volumes/{name}").status == 204
    assert sorted(os.listdir(root)) == ["dytv-k-junk"]


def test_volumes_after_a_host_reboot(daemon):
    """What a reboot leaves: the daemon and the shims killed, the containers
    with them, nothing mounted under the exec root nor on a volume's `_data`,
    and the exec root gone (it is on a tmpfs, /run). The next daemon finds its
    containers exited, the named volume's data kept, the tmpfs volume empty and
    usable again, and the references of the exited containers in force."""
    load_busybox(daemon)
    api = daemon.api()
    try:
        daemon.docker("volume", "create", "dytv-rb-named", check=True)
        daemon.docker("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs",
                      "dytv-rb-tmp", check=True)
        named = api.get("/volumes/dytv-rb-named")["Mountpoint"]
        tmp = api.get("/volumes/dytv-rb-tmp")["Mountpoint"]
        for name, volume in (("dytv-rb-a", "dytv-rb-named"), ("dytv-rb-b", "dytv-rb-tmp")):
            daemon.docker("run", "-d", "--network", "none", "--name", name, "-v", f"{volume}:/d",
                          IMAGE, "sleep", "300", check=True)
            daemon.docker("exec", name, "sh", "-c", f"echo {name} > /d/f", check=True)
        a, b = container_id(daemon, "dytv-rb-a"), container_id(daemon, "dytv-rb-b")
        assert mounted(at=tmp) == [tmp]
        pids = [api.get(f"/containers/{c}/json")["State"]["Pid"] for c in (a, b)]

        daemon.stop(signal.SIGKILL)
        for pid in pids:
            shim = shim_of(pid)
            for victim in (shim, pid):
                with contextlib.suppress(ProcessLookupError):  # (it may die with its shim)
                    os.kill(victim, signal.SIGKILL)
        wait_for(lambda: not any(alive(pid) for pid in pids), what="the containers to die")
        volumes = volumes_dir(daemon)
        left = mounts_under(daemon.exec_root) + [m for m in mounts_under(volumes) if "/_data" in m]
        assert tmp in left
        for point in sorted(set(left), key=lambda m: m.count("/"), reverse=True):
            subprocess.run(["umount", "-l", point], check=True)
        assert not mounts_under(daemon.exec_root) and not mounted(at=tmp)
        shutil.rmtree(daemon.exec_root)
        for cid in (a, b):  # (cgroupfs does not outlive a boot either)
            for group in sorted(cgroup_dirs(cid), key=lambda g: g.count("/"), reverse=True):
                wait_for(lambda: not open(os.path.join(group, "cgroup.procs")).read(),
                         what=f"{group} to be empty")
                os.rmdir(group)

        daemon.start()
        for cid in (a, b):
            s = api.get(f"/containers/{cid}/json")["State"]
            assert (s["Status"], s["Running"], s["Pid"]) == ("exited", False, 0), s
        assert mounted(at=tmp) == [] and mounted(at=named) == []
        with open(os.path.join(named, "f")) as f:
            assert f.read() == "dytv-rb-a\n"
        assert os.listdir(tmp) == []
        got = daemon.docker("run", "--rm", "--network", "none", "-v", "dytv-rb-named:/d", IMAGE,
                            "cat", "/d/f", check=True)
        assert got.stdout == "dytv-rb-a\n"
        # the tmpfs volume: mounted again (empty) for a new container, and only meanwhile
        daemon.docker("run", "-d", "--network", "none", "--name", "dytv-rb-c",
                      "-v", "dytv-rb-tmp:/d", IMAGE, "sleep", "300", check=True)
        assert mounted(at=tmp) == [tmp]
        got = daemon.docker("exec", "dytv-rb-c", "sh", "-c", "ls -A /d; echo new > /d/g; cat /d/g",
                            check=True)
        assert got.stdout == "new\n"
        c = container_id(daemon, "dytv-rb-c")
        daemon.docker("rm", "-f", "dytv-rb-c", check=True)
        assert mounted(at=tmp) == []
        assert os.listdir(tmp) == []
        # the exited containers still reference their volumes
        for cid, volume in ((a, "dytv-rb-named"), (b, "dytv-rb-tmp")):
            assert status_of(api, "DELETE", f"/volumes/{volume}") == (
                409, f"remove {volume}: volume is in use - [{cid}]")
            assert status_of(api, "DELETE", f"/volumes/{volume}", query={"force": "1"})[0] == 409
        assert_same(*both(daemon, "volume", "rm", "-f", "dytv-rb-named"), 1, "",
                    "Error response from daemon: remove dytv-rb-named: volume is in use - "
                    f"[{a}]\n")
        daemon.docker("rm", "dytv-rb-a", "dytv-rb-b", check=True)
        assert daemon.docker("volume", "rm", "dytv-rb-named", check=True).stdout == \
            "dytv-rb-named\n"
        assert status_of(api, "DELETE", "/volumes/dytv-rb-tmp") == (204, None)
        assert not os.path.exists(os.path.dirname(named))
        assert not os.path.exists(os.path.dirname(tmp))
        assert mounts_under(daemon.exec_root) == []
        assert mounts_under(volumes) == []
        wait_for(lambda: not [g for cid in (a, b, c) for g in cgroup_dirs(cid)],
                 what="the containers' cgroups to be removed")
    finally:
        # (no container may outlive a failed test: the fixture's daemon stop keeps them)
        if daemon.proc.poll() is None:
            for left_over in api.get("/containers/json", query={"all": "1"}):
                status_of(api, "DELETE", f"/containers/{left_over['Id']}",
                          query={"force": "1"})
