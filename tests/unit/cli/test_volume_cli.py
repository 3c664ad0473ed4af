"""`volume` commands as docker 28 prints them (docker/cli cli/command/volume and
formatter/volume.go, their tests and testdata goldens). The commands run
against canned API answers; the expected texts are docker's own, from its
goldens or from the docker 28.2 CLI run against the same answers."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from dockyard.cli import formatting, main
from dockyard.cli.command import Cli
from dockyard.cli.volume import HEADER, typed_volume, volume_format, volume_row
from dockyard.client.api import APIError


class _Response:
    def __init__(self, body: bytes, api: str):
        self.body, self.api = body, api

    def read(self) -> bytes:
        return self.body

    def getheader(self, name: str, default=None):
        return self.api if name == "Api-Version" else default


class FakeClient:
    """Answers from `routes` ("METHOD /path" -> JSON value, or an APIError to
    raise); every request but the ping is recorded."""

    def __init__(self, routes: dict, api: str = "1.47"):
        self.routes, self.api, self.requests = routes, api, []

    def request(self, method, path, query=None, body=None, headers=None):
        if path != "/_ping":
            self.requests.append((method, path, query, body))
        answer = self.routes.get(f"{method} {path}", {} if path == "/_ping" else None)
        if answer is None:
            raise APIError(404, "page not found")
        if isinstance(answer, APIError):
            raise answer
        return _Response(json.dumps(answer).encode(), self.api)

    def json(self, method, path, **kw):
        return json.loads(self.request(method, path, **kw).read())

    def get(self, path, **kw):
        return self.json("GET", path, **kw)

    def post(self, path, **kw):
        return self.json("POST", path, **kw)


def run(argv: list[str], routes: dict | None = None, api: str = "1.47", stdin: str = ""):
    """The command's exit status, stdout, stderr and the requests it sent."""
    cli = Cli(out=io.StringIO(), err=io.StringIO(), stdin=io.StringIO(stdin))
    cli._client = FakeClient(routes or {}, api)
    status = main.run(argv, cli)
    return status, cli.out.getvalue(), cli.err.getvalue(), cli._client.requests


@pytest.fixture(autouse=True)
def no_config(tmp_path, monkeypatch):
    """No user's ~/.docker/config.json; and help wrapped at 80 columns."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.setattr("os.get_terminal_size", lambda fd=0: (_ for _ in ()).throw(OSError()))
    return tmp_path


# --- formatter/volume_test.go ----------------------------------------------------------

FOOBAR = [volume_row({"Name": "foobar_baz", "Driver": "foo"}),
          volume_row({"Name": "foobar_bar", "Driver": "bar"})]


@pytest.mark.parametrize("fmt, quiet, expected", [
    ("table", False, "DRIVER    VOLUME NAME\nfoo       foobar_baz\nbar       foobar_bar\n"),
    ("table", True, "foobar_baz\nfoobar_bar\n"),
    ("table {{.Name}}", False, "VOLUME NAME\nfoobar_baz\nfoobar_bar\n"),
    ("table {{.Name}}", True, "VOLUME NAME\nfoobar_baz\nfoobar_bar\n"),
    ("raw", False, "name: foobar_baz\ndriver: foo\n\nname: foobar_bar\ndriver: bar\n\n"),
    ("raw", True, "name: foobar_baz\nname: foobar_bar\n"),
    ("{{.Name}}", False, "foobar_baz\nfoobar_bar\n"),
    ("{{json .Name}}", False, '"foobar_baz"\n"foobar_bar"\n'),
])
def test_volume_context_write(fmt, quiet, expected):
    assert formatting.render(volume_format(fmt, quiet), FOOBAR, HEADER) == expected


@pytest.mark.parametrize("fmt, message", [
    ("{{InvalidFunction}}",
     'template parsing error: template: :1: function "InvalidFunction" not defined'),
    ("{{nil}}", 'template parsing error: template: :1:2: executing "" at <nil>: '
                "nil is not a command"),
    ("{{.ID}}", 'template parsing error: template: :1:2: executing "" at <.ID>: '
                "can't evaluate field ID in type *formatter.volumeContext"),
])
def test_volume_context_write_errors(fmt, message):
    with pytest.raises(formatting.FormatError) as e:
        formatting.render(fmt, FOOBAR, HEADER)
    assert str(e.value) == message


def test_volume_context_json():
    lines = formatting.render("{{json .}}", FOOBAR, HEADER).splitlines()
    assert [json.loads(line) for line in lines] == [
        {"Availability": "N/A", "Driver": "foo", "Group": "N/A", "Labels": "", "Links": "N/A",
         "Mountpoint": "", "Name": "foobar_baz", "Scope": "", "Size": "N/A", "Status": "N/A"},
        {"Availability": "N/A", "Driver": "bar", "Group": "N/A", "Labels": "", "Links": "N/A",
         "Mountpoint": "", "Name": "foobar_bar", "Scope": "", "Size": "N/A", "Status": "N/A"}]


def test_volume_context_fields():
    row = volume_row({"Name": "v", "Driver": "local", "Scope": "local", "Mountpoint": "/m",
                      "Labels": {"label2": "value2", "label1": "value1"},
                      "UsageData": {"RefCount": 3, "Size": 1234567}})
    assert (row.Name, row.Driver, row.Scope, row.Mountpoint) == ("v", "local", "local", "/m")
    assert row.Labels == "label1=value1,label2=value2"
    assert (row.Label("label2"), row.Label("nope")) == ("value2", "")
    assert (row.Links, row.Size) == ("3", "1.235MB")


def _cluster(name, group, driver, availability, volume_id="", nodes=0):
    return {"Name": name, "Driver": driver, "ClusterVolume": {
        "ID": name, "Spec": {"Group": group, "Availability": availability},
        "Info": {"VolumeID": volume_id} if volume_id else None,
        "PublishStatus": [{"NodeID": f"n{i}"} for i in range(nodes)]}}


CLUSTER_VOLUMES = [
    _cluster("volume4", "group2", "driver2", "active", "id4", 2),
    _cluster("volume1", "group1", "driver1", "active"),
    _cluster("volume3", "group2", "driver2", "active", "id3", 1),
    _cluster("volume2", "group1", "driver1", "pause", "id2"),
    {"Name": "local-volume", "Driver": "local"},
]


def test_list_cluster_golden():
    # testdata/volume-cluster-volume-list.golden
    status, out, err, requests = run(["volume", "ls", "--cluster"],
                                     {"GET /volumes": {"Volumes": CLUSTER_VOLUMES}})
    assert (status, err) == (0, "")
    assert out == (
        "VOLUME NAME   GROUP     DRIVER    AVAILABILITY   STATUS\n"
        "volume1       group1    driver1   active         pending creation\n"
        "volume2       group1    driver1   pause          created\n"
        "volume3       group2    driver2   active         in use (1 node)\n"
        "volume4       group2    driver2   active         in use (2 nodes)\n")
    assert requests == [("GET", "/volumes", None, None)]


# --- volume ls -----------------------------------------------------------------------------

LIST = {"GET /volumes": {"Volumes": [
    {"Name": "volume-10-foo", "Driver": "local", "Labels": {"foo": "bar"}, "Scope": "local",
     "Mountpoint": "/m/1", "CreatedAt": "2026-11-28T01:27:14Z"},
    {"Name": "volume-2-foo", "Driver": "bar", "Labels": None, "Options": None},
    {"Name": "volume-01-foo", "Driver": "local"},
    {"Name": "volume-1-foo", "Driver": "local", "UsageData": {"RefCount": 2, "Size": 123456}},
    {"Name": "cv", "Driver": "csi", "ClusterVolume": {
        "ID": "x", "Version": {"Index": 3}, "Spec": {"Group": "g1", "Availability": "pause"},
        "PublishStatus": [{"NodeID": "n"}, {"NodeID": "m"}], "Info": {"VolumeID": "vid"}}},
    {"Name": "<a&b>", "Driver": "local"},
], "Warnings": ["docker 28 does not print these"]}}


def test_list_sorts_naturally_and_ignores_warnings():
    status, out, err, _ = run(["volume", "ls"], LIST)
    assert (status, err) == (0, "")
    assert out == ("DRIVER    VOLUME NAME\nlocal     <a&b>\ncsi       cv\nlocal     volume-1-foo\n"
                   "local     volume-01-foo\nbar       volume-2-foo\nlocal     volume-10-foo\n")
    assert run(["volume", "list", "-q"], LIST)[1] == \
        "<a&b>\ncv\nvolume-1-foo\nvolume-01-foo\nvolume-2-foo\nvolume-10-foo\n"


def test_list_json_and_a_table_with_label_and_usage():
    out = run(["volume", "ls", "--format", "json"], LIST)[1].splitlines()
    assert out[0] == ('{"Availability":"N/A","Driver":"local","Group":"N/A","Labels":"",'
                      '"Links":"N/A","Mountpoint":"","Name":"\\u003ca\\u0026b\\u003e","Scope":"",'
                      '"Size":"N/A","Status":"N/A"}')
    assert out[1] == ('{"Availability":"pause","Driver":"csi","Group":"g1","Labels":"",'
                      '"Links":"N/A","Mountpoint":"","Name":"cv","Scope":"","Size":"N/A",'
                      '"Status":"in use (2 nodes)"}')
    assert len(out) == 6
    fmt = ("table {{.Name}}\\t{{.Group}}\\t{{.Availability}}\\t{{.Status}}\\t{{.Links}}\\t"
           '{{.Size}}\\t{{.Label "foo"}}')
    assert run(["volume", "ls", "--format", fmt], LIST)[1] == (
        "VOLUME NAME     GROUP     AVAILABILITY   STATUS             LINKS     SIZE      foo\n"
        "<a&b>           N/A       N/A            N/A                N/A       N/A       \n"
        "cv              g1        pause          in use (2 nodes)   N/A       N/A       \n"
        "volume-1-foo    N/A       N/A            N/A                2         123.5kB   \n"
        "volume-01-foo   N/A       N/A            N/A                N/A       N/A       \n"
        "volume-2-foo    N/A       N/A            N/A                N/A       N/A       \n"
        "volume-10-foo   N/A       N/A            N/A                N/A       N/A       bar\n")


def test_list_filters_go_as_docker_sends_them():
    _, _, _, requests = run(["volume", "ls", "-f", "dangling=true", "-f", " Name = x "], LIST)
    assert requests == [("GET", "/volumes", {
        "filters": '{"dangling":{"true":true},"name":{"x":true}}'}, None)]


def test_list_config_format(no_config):
    # testdata/volume-list-with-config-format.golden
    (no_config / "config.json").write_text(
        json.dumps({"volumesFormat": "{{ .Name }} {{ .Driver }} {{ .Labels }}"}))
    routes = {"GET /volumes": {"Volumes": [
        {"Name": "volume", "Driver": "local"}, {"Name": "foo", "Driver": "bar"},
        {"Name": "baz", "Driver": "local", "Labels": {"foo": "bar"}}]}}
    assert run(["volume", "ls"], routes)[1] == "baz local foo=bar\nfoo bar \nvolume local \n"
    assert run(["volume", "ls", "-q"], routes)[1] == "baz\nfoo\nvolume\n"


def test_list_cluster_needs_api_142():
    status, out, err, requests = run(["volume", "ls", "--cluster"], LIST, api="1.41")
    assert (status, out, requests) == (1, "", [])
    assert err == ('"--cluster" requires API version 1.42, but the Docker daemon API version '
                   "is 1.41\n")


# --- volume inspect ------------------------------------------------------------------------

INSPECT = {
    "GET /volumes/ref-vol": {
        "CreatedAt": "2026-11-28T01:27:09Z", "Driver": "local", "Labels": None,
        "Mountpoint": "/var/lib/docker/volumes/ref-vol/_data", "Name": "ref-vol",
        "Options": None, "Scope": "local"},
    "GET /volumes/lab": {
        "Name": "lab", "Extra": 1, "Scope": "local", "Driver": "local",
        "Labels": {"z": "<1>", "a": "&"}, "Options": {"type": "tmpfs", "device": "tmpfs"},
        "Status": {"b": {"y": 1, "x": 2.5}, "a": [1, 2]},
        "UsageData": {"RefCount": 1, "Size": 10}, "Mountpoint": ""},
    "GET /volumes/nope": APIError(404, "get nope: no such volume"),
}
REF_VOL_JSON = (
    '    {\n        "CreatedAt": "2026-11-28T01:27:09Z",\n        "Driver": "local",\n'
    '        "Labels": null,\n        "Mountpoint": "/var/lib/docker/volumes/ref-vol/_data",\n'
    '        "Name": "ref-vol",\n        "Options": null,\n        "Scope": "local"\n    }')


def test_inspect_prints_the_decoded_volume():
    status, out, err, _ = run(["volume", "inspect", "ref-vol", "lab"], INSPECT)
    assert (status, err) == (0, "")
    assert out == "[\n" + REF_VOL_JSON + """,
    {
        "Driver": "local",
        "Labels": {
            "a": "\\u0026",
            "z": "\\u003c1\\u003e"
        },
        "Mountpoint": "",
        "Name": "lab",
        "Options": {
            "device": "tmpfs",
            "type": "tmpfs"
        },
        "Scope": "local",
        "Status": {
            "a": [
                1,
                2
            ],
            "b": {
                "x": 2.5,
                "y": 1
            }
        },
        "UsageData": {
            "RefCount": 1,
            "Size": 10
        }
    }
]
"""
    assert run(["volume", "inspect", "--format", "json", "ref-vol", "lab"], INSPECT)[1] == (
        '[{"CreatedAt":"2026-11-28T01:27:09Z","Driver":"local","Labels":null,'
        '"Mountpoint":"/var/lib/docker/volumes/ref-vol/_data","Name":"ref-vol","Options":null,'
        '"Scope":"local"},{"Driver":"local","Labels":{"a":"\\u0026","z":"\\u003c1\\u003e"},'
        '"Mountpoint":"","Name":"lab","Options":{"device":"tmpfs","type":"tmpfs"},'
        '"Scope":"local","Status":{"a":[1,2],"b":{"x":2.5,"y":1}},'
        '"UsageData":{"RefCount":1,"Size":10}}]\n')


def test_inspect_reports_each_failure_after_the_output():
    status, out, err, requests = run(["volume", "inspect", "nope", "ref-vol", " "], INSPECT)
    assert status == 1
    assert out == "[\n" + REF_VOL_JSON + "\n]\n"
    assert err == ("Error response from daemon: get nope: no such volume\n"
                   "invalid volume name or ID: value is empty\n")
    assert [r[1] for r in requests] == ["/volumes/nope", "/volumes/ref-vol"]


def test_inspect_templates_see_the_typed_volume():
    fmt = "{{.Labels}} {{.Options}} {{.Status}} {{.UsageData}} {{json .}}"
    status, out, _, _ = run(["volume", "inspect", "-f", fmt, "ref-vol", "lab"], INSPECT)
    assert status == 0
    assert out == (
        'map[] map[] map[] <nil> {"CreatedAt":"2026-11-28T01:27:09Z","Driver":"local",'
        '"Labels":null,"Mountpoint":"/var/lib/docker/volumes/ref-vol/_data","Name":"ref-vol",'
        '"Options":null,"Scope":"local"}\n'
        "map[a:& z:<1>] map[device:tmpfs type:tmpfs] map[a:[1 2] b:map[x:2.5 y:1]] {1 10} "
        '{"Driver":"local","Labels":{"a":"&","z":"<1>"},"Mountpoint":"","Name":"lab",'
        '"Options":{"device":"tmpfs","type":"tmpfs"},"Scope":"local",'
        '"Status":{"a":[1,2],"b":{"x":2.5,"y":1}},"UsageData":{"RefCount":1,"Size":10}}\n')
    status, out, err, _ = run(["volume", "inspect", "-f", "{{.Nope}}", "ref-vol"], INSPECT)
    assert (status, out) == (1, "\n")
    assert err == ('template parsing error: template: :1:2: executing "" at <.Nope>: '
                   "can't evaluate field Nope in type volume.Volume\n")
    status, out, err, _ = run(["volume", "inspect", "-f", "{{.UsageData.Size}}", "ref-vol"],
                              INSPECT)
    assert err == ('template parsing error: template: :1:12: executing "" at <.UsageData.Size>: '
                   "nil pointer evaluating *volume.UsageData.Size\n")
    assert run(["volume", "inspect", "-f", "{{", "ref-vol"], INSPECT)[0] == 64


def test_typed_volume_leaves_out_empty_omitempty_fields():
    assert typed_volume({"Name": "v"}).MarshalJSON() == (
        '{"Driver":"","Labels":null,"Mountpoint":"","Name":"v","Options":null,"Scope":""}')
    assert typed_volume({"Name": "v", "Status": {}, "CreatedAt": ""}).MarshalJSON() == \
        typed_volume({"Name": "v"}).MarshalJSON()


# --- volume create, update --------------------------------------------------------------------

CREATED = {"POST /volumes/create": {"Name": "newvol", "Driver": "local", "Scope": "local"}}


@pytest.mark.parametrize("argv, body", [
    ([], {"Driver": "local"}),
    (["myvol"], {"Driver": "local", "Name": "myvol"}),
    (["--name", "myvol", "-d", "foo", "-o", "type=tmpfs", "-o", "o=size=100m,uid=1000",
      "-o", "bare", "--label", "a=b", "--label", "c"],
     {"Driver": "foo", "DriverOpts": {"type": "tmpfs", "o": "size=100m,uid=1000", "bare": ""},
      "Labels": {"a": "b", "c": ""}, "Name": "myvol"}),
    (["-d", "", "x"], {"Name": "x"}),
])
def test_create_sends_the_options_and_prints_the_name(argv, body):
    status, out, err, requests = run(["volume", "create", *argv], CREATED)
    assert (status, out, err) == (0, "newvol\n", "")
    assert requests == [("POST", "/volumes/create", None, body)]


def test_create_cluster_spec():
    argv = ["volume", "create", "--scope", "multi", "--sharing", "all", "--type", "mount",
            "--group", "g", "--secret", "k2=s2", "--secret", "k1=s1", "--limit-bytes", "1m",
            "--required-bytes", "1k", "--topology-required", "region=R1,zone=Z1",
            "--topology-required", "zone=Z2", "--topology-preferred", "a=b", "cvol"]
    assert run(argv, CREATED)[3][0][3] == {"ClusterVolumeSpec": {
        "Group": "g",
        "AccessMode": {"Scope": "multi", "Sharing": "all", "MountVolume": {}},
        "AccessibilityRequirements": {
            "Requisite": [{"Segments": {"region": "R1", "zone": "Z1"}},
                          {"Segments": {"zone": "Z2"}}],
            "Preferred": [{"Segments": {"a": "b"}}]},
        "CapacityRange": {"RequiredBytes": 1024, "LimitBytes": 1048576},
        "Secrets": [{"Key": "k1", "Secret": "s1"}, {"Key": "k2", "Secret": "s2"}],
        "Availability": "active"}, "Driver": "local", "Name": "cvol"}
    # docker's trigger list names "secrets", not "secret", and no topology
    body = run(["volume", "create", "--secret", "k=v", "--topology-required", "a=b", "x"],
               CREATED)[3][0][3]
    assert body == {"Driver": "local", "Name": "x"}


def test_create_refuses_as_docker():
    status, _, err, requests = run(["volume", "create", "--name", "x", "y"], CREATED)
    assert (status, requests) == (1, [])
    assert err == ("conflicting options: cannot specify a volume-name through both --name and "
                   "as a positional arg\n")
    status, _, err, _ = run(["volume", "create", "--scope", "multi", "--group", "g", "x"],
                            CREATED, api="1.41")
    assert status == 1
    assert err == ('"--group" requires API version 1.42, but the Docker daemon API version is '
                   '1.41\n"--scope" requires API version 1.42, but the Docker daemon API '
                   "version is 1.41\n")
    status, _, err, _ = run(["volume", "create", "--limit-bytes", "12x"], CREATED)
    assert status == 125 and err.startswith(
        'invalid argument "12x" for "--limit-bytes" flag: invalid suffix: \'x\'\n\n')


CLUSTER = {
    "GET /volumes/cv": {"Name": "cv", "ClusterVolume": {
        "ID": "cvid", "Version": {"Index": 7},
        "Spec": {"Group": "g", "Availability": "active"}}},
    "GET /volumes/local": {"Name": "local", "Driver": "local"},
    "PUT /volumes/cvid": {},
}


def test_update():
    status, out, err, requests = run(["volume", "update", "--availability", "drain", "cv"],
                                     CLUSTER)
    assert (status, out, err) == (0, "", "")
    assert requests[-1] == ("PUT", "/volumes/cvid", {"version": "7"},
                            {"Spec": {"Group": "g", "Availability": "drain"}})
    assert run(["volume", "update", "local"], CLUSTER)[2] == "can only update cluster volumes\n"
    status, _, err, _ = run(["volume", "update", "cv"], CLUSTER, api="1.41")
    assert err == ("dockyard volume update requires API version 1.42, but the Docker daemon "
                   "API version is 1.41\n")


# --- volume rm ---------------------------------------------------------------------------------

REMOVE = {
    "DELETE /volumes/a": {},
    "DELETE /volumes/b": APIError(409, "remove b: volume is in use - [abc]"),
    "DELETE /volumes/nope": APIError(404, "get nope: no such volume"),
}


def test_remove_reports_failures_at_the_end():
    status, out, err, requests = run(["volume", "rm", "a", "b", "nope", " ", "a"], REMOVE)
    assert (status, out) == (1, "a\na\n")
    assert err == ("Error response from daemon: remove b: volume is in use - [abc]\n"
                   "Error response from daemon: get nope: no such volume\n"
                   "invalid volume name or ID: value is empty\n")
    assert [r[1] for r in requests] == ["/volumes/a", "/volumes/b", "/volumes/nope",
                                        "/volumes/a"]
    assert run(["volume", "remove", "-f", "a"], REMOVE)[3] == [
        ("DELETE", "/volumes/a", {"force": "1"}, None)]


# --- volume prune --------------------------------------------------------------------------------

PRUNED = {"POST /volumes/prune": {"VolumesDeleted": ["foo", "bar", "baz"],
                                  "SpaceReclaimed": 2000}}
NOTHING = {"POST /volumes/prune": {"VolumesDeleted": None, "SpaceReclaimed": 0}}
PROMPT = ("WARNING! This will remove anonymous local volumes not used by at least one "
          "container.\nAre you sure you want to continue? [y/N] ")
PROMPT_ALL = ("WARNING! This will remove all local volumes not used by at least one "
              "container.\nAre you sure you want to continue? [y/N] ")


def test_prune_goldens():
    # testdata/volume-prune-yes.golden, -no, -success.all, .empty
    assert run(["volume", "prune"], PRUNED, stdin="y\n")[1] == (
        PROMPT + "Deleted Volumes:\nfoo\nbar\nbaz\n\nTotal reclaimed space: 2kB\n")
    assert run(["volume", "prune"], PRUNED, stdin="n\n")[:4] == (0, PROMPT, "", [])
    assert run(["volume", "prune", "-a"], NOTHING, stdin="y\n")[1] == \
        PROMPT_ALL + "Total reclaimed space: 0B\n"
    assert run(["volume", "prune", "-f"], NOTHING)[1] == "Total reclaimed space: 0B\n"


def test_prune_filters():
    requests = run(["volume", "prune", "-f", "-a", "--filter", "label=a=b"], PRUNED)[3]
    assert requests == [("POST", "/volumes/prune",
                         {"filters": '{"all":{"true":true},"label":{"a=b":true}}'}, None)]
    status, _, err, requests = run(["volume", "prune", "-f", "-a", "--filter", "all=1"], PRUNED)
    assert (status, requests) == (1, [])
    assert err == "conflicting options: cannot specify both --all and --filter all=1\n"


def test_prune_filters_from_the_config(no_config):
    (no_config / "config.json").write_text(json.dumps({
        "pruneFilters": ["label=keep", "label!=drop", "until=24h", "bad"]}))

    def filters(*argv):
        return json.loads(run(["volume", "prune", "-f", *argv], NOTHING)[3][0][2]["filters"])

    # filters.ExactMatch says yes when there is no filter of that key at all;
    # and a label filter taken from the config counts for the ones after it
    assert filters() == {"until": {"24h": True}}
    assert filters("--filter", "label!=other") == {
        "label!": {"drop": True, "other": True}, "label": {"keep": True},
        "until": {"24h": True}}
    assert filters("--filter", "label=drop") == {
        "label": {"drop": True}, "until": {"24h": True}}


def test_prune_before_api_142():
    status, out, err, requests = run(["volume", "prune", "-a", "-f"], PRUNED, api="1.41")
    assert (status, out, requests) == (1, "", [])
    assert err == ('"--all" requires API version 1.42, but the Docker daemon API version is '
                   "1.41\n")
    # and the daemon prunes named volumes too, so docker warns of all of them
    assert run(["volume", "prune"], NOTHING, api="1.41", stdin="y\n")[1] == \
        PROMPT_ALL + "Total reclaimed space: 0B\n"


# --- help and usage ------------------------------------------------------------------------------

HELP = Path(__file__).parent / "testdata" / "help"   # docker 28.2's, see its README


@pytest.mark.parametrize("command", ["create", "ls", "inspect", "rm", "prune", "update"])
def test_help_is_dockers(command):
    expected = (HELP / f"volume-{command}.txt").read_text()
    assert run(["volume", command, "--help"]) == (0, expected, "", [])


def test_group_help_and_usage_errors():
    group_help = (HELP / "volume.txt").read_text()
    assert run(["volume", "--help"])[:3] == (0, group_help, "")
    assert run(["volume"])[:3] == (0, "", group_help)
    assert run(["volume", "bogus"])[:3] == (1, "", (
        "dockyard: unknown command: dockyard volume bogus\n\n"
        "Usage:  dockyard volume COMMAND\n\n"
        "Run 'dockyard volume --help' for more information\n"))
    assert run(["volume", "rm"])[:3] == (1, "", (
        "dockyard: 'dockyard volume rm' requires at least 1 argument\n\n"
        "Usage:  dockyard volume rm [OPTIONS] VOLUME [VOLUME...]\n\n"
        "See 'dockyard volume rm --help' for more information\n"))
    assert run(["volume", "ls", "x"])[:3] == (1, "", (
        "dockyard: 'dockyard volume ls' accepts no arguments\n\n"
        "Usage:  dockyard volume ls [OPTIONS]\n\n"
        "Run 'dockyard volume ls --help' for more information\n"))
