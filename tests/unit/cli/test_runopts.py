"""`create`/`run` flags → the create body, and the other pure parts of the
container commands: pflag's parsing rules, Go's value parsers, the
--since/--until timestamps, the ps row fields, the attach stream framing.

The expected bodies are what docker 28.2.2 sent to a dockyardd for the same
command lines (captured by a proxy on the daemon's socket): DEFAULT_BODY in
full, and for each other case the fields that differ from it.
"""

from __future__ import annotations

import io
import json
import struct
import time

import pytest

from dockyard.cli import govalues, optspecs, optvalues, runopts
from dockyard.cli.command import HelpShown, StatusError, UsageError
from dockyard.cli.pflag import FlagSet

DEFAULT_BODY = json.loads("""{"Hostname":"","Domainname":"","User":"","AttachStdin":false,
"AttachStdout":true,"AttachStderr":true,"Tty":false,"OpenStdin":false,"StdinOnce":false,
"Env":null,"Cmd":["echo","hi"],"Image":"busybox:local","Volumes":{},"WorkingDir":"",
"Entrypoint":null,"OnBuild":null,"Labels":{},"HostConfig":{"Binds":null,"ContainerIDFile":"",
"LogConfig":{"Type":"","Config":{}},"NetworkMode":"default","PortBindings":{},
"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":false,"VolumeDriver":"",
"VolumesFrom":null,"ConsoleSize":[0,0],"CapAdd":null,"CapDrop":null,"CgroupnsMode":"","Dns":[],
"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"",
"Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,"PublishAllPorts":false,
"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"","ShmSize":0,
"Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,"CgroupParent":"","BlkioWeight":0,
"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],
"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,
"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],"DeviceCgroupRules":null,
"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":-1,
"OomKillDisable":false,"PidsLimit":0,"Ulimits":[],"CpuCount":0,"CpuPercent":0,
"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,"ReadonlyPaths":null},
"NetworkingConfig":{"EndpointsConfig":{"default":{"IPAMConfig":null,"Links":null,
"Aliases":null,"MacAddress":"","DriverOpts":null,"GwPriority":0,"NetworkID":"","EndpointID":"",
"Gateway":"","IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","GlobalIPv6Address":"",
"GlobalIPv6PrefixLen":0,"DNSNames":null}}}}""")

ABSENT = object()


def parse(*argv: str, verb: str = "creating") -> dict:
    fs = FlagSet("dockyard create", "[OPTIONS] IMAGE [COMMAND] [ARG...]",
                 "Create a new container", args=(1, None), interspersed=False,
                 help_shorthand=False)
    runopts.add_create_flags(fs, verb)
    runopts.add_container_flags(fs)
    o = fs.parse(list(argv))
    return runopts.build(o, o.args[0], o.args[1:])


def expected(delta: dict) -> dict:
    """DEFAULT_BODY with docker's differences applied, in docker's field order."""
    body = json.loads(json.dumps(DEFAULT_BODY))
    for key, value in delta.items():
        if key in ("HostConfig", "NetworkingConfig"):
            for k, v in value.items():
                body[key][k] = v
        else:
            body[key] = value
    return body


def same_fields(ours: dict, theirs: dict) -> None:
    """Equal, key order included (Go marshals struct fields in declaration order),
    ignoring only the order in which docker puts the keys of fields that are new."""
    assert ours == theirs
    assert [k for k in ours if k in DEFAULT_BODY] == [k for k in theirs if k in DEFAULT_BODY]


def test_default_body_is_dockers():
    body = parse("busybox:local", "echo", "hi")
    assert json.dumps(body) == json.dumps(DEFAULT_BODY)


FULL_ARGS = [
    "-w", "/tmp", "-u", "1000:1000", "-h", "myhost", "--entrypoint", "/bin/sh", "-l", "a=b",
    "-l", "c", "--stop-signal", "SIGUSR1", "--stop-timeout", "5", "--network", "none", "-i",
    "-t", "-a", "stdout", "--init", "--privileged", "--read-only", "--cap-add", "NET_ADMIN",
    "--cap-add", "net_raw", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
    "--device", "/dev/null:/dev/xnull:r", "--ulimit", "nofile=100:200", "--ulimit", "core=1",
    "--group-add", "10", "--shm-size", "64m", "-m", "1g", "--memory-swap", "2g",
    "--memory-reservation", "512m", "-c", "512", "--cpu-quota", "50000", "--cpu-period",
    "100000", "--cpuset-cpus", "0", "--pids-limit", "100", "--oom-kill-disable", "--restart",
    "on-failure:3", "--log-driver", "json-file", "--log-opt", "max-size=1m", "--runtime", "runc",
    "--add-host", "foo:1.2.3.4", "--add-host", "bar=::1", "--dns", "8.8.8.8", "--dns-search",
    "example.com", "--dns-option", "ndots:2", "--tmpfs", "/run:size=1m", "-v",
    "/tmp:/hosttmp:ro", "-v", "/data", "-v", "named:/named", "--mount",
    "type=tmpfs,target=/x,tmpfs-size=1m", "--mount",
    "type=bind,src=/tmp,dst=/y,readonly,bind-propagation=rshared", "-p", "8080:80", "-p",
    "127.0.0.1:5000-5001:5000-5001/udp", "-P", "--expose", "9000-9001", "--health-cmd", "true",
    "--health-interval", "1m30s", "--sysctl", "net.ipv4.ip_forward=1", "--gpus", "all",
    "--device-read-bps", "/dev/sda:1mb", "--blkio-weight", "300", "--blkio-weight-device",
    "/dev/sda:200", "--memory-swappiness", "50", "--oom-score-adj", "10",
    "busybox:local", "-c", "echo hi",
]
FULL_DELTA = json.loads("""{"Hostname": "myhost", "User": "1000:1000", "AttachStdin": true,
"AttachStderr": false, "ExposedPorts": {"5000/udp": {}, "5001/udp": {}, "80/tcp": {},
"9000/tcp": {}, "9001/tcp": {}}, "Tty": true, "OpenStdin": true, "StdinOnce": true,
"Cmd": ["-c", "echo hi"], "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 90000000000},
"Volumes": {"/data": {}}, "WorkingDir": "/tmp", "Entrypoint": ["/bin/sh"],
"Labels": {"a": "b", "c": ""}, "StopSignal": "SIGUSR1", "StopTimeout": 5,
"HostConfig": {"Binds": ["/tmp:/hosttmp:ro", "named:/named"], "LogConfig": {"Type": "json-file",
"Config": {"max-size": "1m"}}, "NetworkMode": "none", "PortBindings": {"5000/udp": [{"HostIp":
"127.0.0.1", "HostPort": "5000"}], "5001/udp": [{"HostIp": "127.0.0.1", "HostPort": "5001"}],
"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}, "RestartPolicy": {"Name": "on-failure",
"MaximumRetryCount": 3}, "CapAdd": ["CAP_NET_ADMIN", "CAP_NET_RAW"], "CapDrop": ["ALL"],
"Dns": ["8.8.8.8"], "DnsOptions": ["ndots:2"], "DnsSearch": ["example.com"],
"ExtraHosts": ["foo:1.2.3.4", "bar:::1"], "GroupAdd": ["10"], "OomScoreAdj": 10,
"Privileged": true, "PublishAllPorts": true, "ReadonlyRootfs": true,
"SecurityOpt": ["no-new-privileges"], "Tmpfs": {"/run": "size=1m"}, "ShmSize": 67108864,
"Sysctls": {"net.ipv4.ip_forward": "1"}, "Runtime": "runc", "CpuShares": 512,
"Memory": 1073741824, "BlkioWeight": 300, "BlkioWeightDevice": [{"Path": "/dev/sda",
"Weight": 200}], "BlkioDeviceReadBps": [{"Path": "/dev/sda", "Rate": 1048576}],
"CpuPeriod": 100000, "CpuQuota": 50000, "CpusetCpus": "0", "Devices": [{"PathOnHost":
"/dev/null", "PathInContainer": "/dev/xnull", "CgroupPermissions": "r"}], "DeviceRequests":
[{"Driver": "", "Count": -1, "DeviceIDs": null, "Capabilities": [["gpu"]], "Options": {}}],
"MemoryReservation": 536870912, "MemorySwap": 2147483648, "MemorySwappiness": 50,
"OomKillDisable": true, "PidsLimit": 100, "Ulimits": [{"Name": "core", "Hard": 1, "Soft": 1},
{"Name": "nofile", "Hard": 200, "Soft": 100}], "Mounts": [{"Type": "tmpfs", "Target": "/x",
"TmpfsOptions": {"SizeBytes": 1048576}}, {"Type": "bind", "Source": "/tmp", "Target": "/y",
"ReadOnly": true, "BindOptions": {"Propagation": "rshared"}}], "Init": true},
"NetworkingConfig": {"EndpointsConfig": {}}}""")


def test_many_flags_as_docker():
    ours = parse(*FULL_ARGS)
    theirs = expected(FULL_DELTA)
    # docker ranges over a Go map for the binds: their order is random there
    assert sorted(ours["HostConfig"].pop("Binds")) == sorted(theirs["HostConfig"].pop("Binds"))
    same_fields(ours, theirs)


@pytest.mark.parametrize("args, delta", [
    (["--network", "host", "--entrypoint=", "-i", "-a", "stdin", "-a", "STDERR", "--rm",
      "--ulimit", "nproc=10", "busybox:local"],
     {"AttachStdin": True, "AttachStdout": False, "OpenStdin": True, "StdinOnce": True,
      "Cmd": None, "Entrypoint": [""], "HostConfig": {
          "NetworkMode": "host", "AutoRemove": True,
          "Ulimits": [{"Name": "nproc", "Hard": 10, "Soft": 10}]},
      "NetworkingConfig": {"EndpointsConfig": {}}}),
    (["--network", "name=foo,driver-opt=k=v,gw-priority=2,alias=al", "--ip", "10.0.0.2",
      "--link", "other:alias", "busybox:local", "true"],
     {"Cmd": ["true"], "HostConfig": {"NetworkMode": "foo", "Links": ["other:alias"]},
      "NetworkingConfig": {"EndpointsConfig": {"foo": {
          "IPAMConfig": {"IPv4Address": "10.0.0.2"}, "Links": ["other:alias"], "Aliases": ["al"],
          "MacAddress": "", "DriverOpts": {"k": "v"}, "GwPriority": 2, "NetworkID": "",
          "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
          "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": None}}}}),
    (["-p", "published=8080,target=80", "-p", "[::1]:53:53/udp", "-p", "7000-7001:8000-8001",
      "--expose", "7000/udp", "busybox:local"],
     {"ExposedPorts": {"53/udp": {}, "7000/udp": {}, "80/tcp": {}, "8000/tcp": {},
                       "8001/tcp": {}},
      "Cmd": None, "HostConfig": {"PortBindings": {
          "53/udp": [{"HostIp": "::1", "HostPort": "53"}],
          "80/tcp": [{"HostIp": "", "HostPort": "8080"}],
          "8000/tcp": [{"HostIp": "", "HostPort": "7000"}],
          "8001/tcp": [{"HostIp": "", "HostPort": "7001"}]}}}),
    (["--mount", "type=volume,source=v,target=/v,volume-nocopy,volume-opt=o=1",
      "--security-opt", "systempaths=unconfined", "--security-opt", "seccomp=unconfined",
      "--health-cmd", "curl x", "--health-retries", "3", "--health-timeout", "1s",
      "busybox:local"],
     {"Cmd": None, "Healthcheck": {"Test": ["CMD-SHELL", "curl x"], "Timeout": 1000000000,
                                   "Retries": 3},
      "HostConfig": {"SecurityOpt": ["seccomp=unconfined"], "Mounts": [{
          "Type": "volume", "Source": "v", "Target": "/v",
          "VolumeOptions": {"NoCopy": True, "DriverConfig": {"Options": {"o": "1"}}}}],
          "MaskedPaths": [], "ReadonlyPaths": []}}),
    (["--storage-opt", "size=1G", "--isolation", "default", "--cgroup-parent", "p",
      "--cpuset-mems", "0", "--domainname", "d", "--pid", "host", "--uts", "host", "--userns",
      "host", "--ipc", "host", "--cgroupns", "private", "--volumes-from", "other", "--link",
      "l:a", "--no-healthcheck", "--cidfile", "", "--stop-timeout", "0", "--init=false",
      "busybox:local"],
     {"Domainname": "d", "Cmd": None, "Healthcheck": {"Test": ["NONE"]}, "StopTimeout": 0,
      "HostConfig": {"VolumesFrom": ["other"], "CgroupnsMode": "private", "IpcMode": "host",
                     "Links": ["l:a"], "PidMode": "host", "StorageOpt": {"size": "1G"},
                     "UTSMode": "host", "UsernsMode": "host", "Isolation": "default",
                     "CgroupParent": "p", "CpusetMems": "0", "Init": False}}),
])
def test_bodies_as_docker(args, delta):
    same_fields(parse(*args), expected(delta))


def test_env_takes_unset_values_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("FROM_ENV", "yes")
    monkeypatch.delenv("NOT_SET", raising=False)
    env_file = tmp_path / "env"
    env_file.write_text("\ufeff# comment\n  A=1\nFROM_ENV\nNOT_SET\nB= spaced \n")
    body = parse("--env-file", str(env_file), "-e", "FROM_ENV", "-e", "NOT_SET", "-e", "C=",
                 "busybox")
    assert body["Env"] == ["A=1", "FROM_ENV=yes", "B= spaced ", "FROM_ENV=yes", "NOT_SET", "C="]


def test_label_file_skips_lines_without_a_value(tmp_path):
    labels = tmp_path / "labels"
    labels.write_text("a=1\nnovalue\n# c=3\n")
    assert parse("--label-file", str(labels), "-l", "b", "busybox")["Labels"] == {"a": "1", "b": ""}


def test_relative_bind_sources_become_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    body = parse("-v", "./data:/data", "-v", "name:/n", "--mount", "type=bind,src=./m,dst=/m",
                 "busybox")
    assert body["HostConfig"]["Binds"] == [f"{tmp_path}/data:/data", "name:/n"]
    assert body["HostConfig"]["Mounts"][0]["Source"] == f"{tmp_path}/m"


# --- errors after parsing: "docker: <message>", status 125 ------------------------------------


@pytest.mark.parametrize("args, message", [
    (["--rm", "--restart", "always"], "conflicting options: cannot specify both --restart and --rm"),
    (["--restart", "bad:x"], "invalid restart policy format: maximum retry count must be an integer"),
    (["--restart", ":1"], "invalid restart policy format: no policy provided before colon"),
    (["--device", "/dev/null:rel"], "rel is not an absolute path"),
    (["--device", "/dev/null:/x:rwx"], "bad mode specified: rwx"),
    (["--device", "a:b:c:d"], "bad format for path: a:b:c:d"),
    (["-p", "99999"], "invalid containerPort: 99999"),
    (["-p", "1.2.3:80:80"], "invalid IP address: 1.2.3"),
    (["-p", "80/xyz"], "invalid proto: xyz"),
    (["-p", "1-2:3-5"], "invalid ranges specified for container and host Ports: 3-5 and 1-2"),
    (["-p", "published=1,x"], "invalid publish opts format (should be name=value but got 'x')"),
    (["--expose", "1:2"], "invalid port format for --expose: 1:2"),
    (["--expose", "x"], 'invalid range format for --expose: x, error: strconv.ParseUint: '
                        'parsing "x": invalid syntax'),
    (["--security-opt", "foo"], 'Invalid --security-opt: "foo"'),
    (["--log-driver", "none", "--log-opt", "a=b"], "invalid logging opts for driver none"),
    (["--network-alias", "x"], "network-scoped aliases are only supported for user-defined "
                               "networks"),
    (["--network", "a", "--network", "host"], "conflicting options: cannot attach both "
                                             "user-defined and non-user-defined network-modes"),
    (["--network", "a", "--network", "a"], 'network "a" is specified multiple times'),
    (["--pid", "container:"], "--pid: invalid PID mode"),
    (["--uts", "private"], "--uts: invalid UTS mode"),
    (["--cgroupns", "x"], "--cgroupns: invalid CGROUP mode"),
    (["--memory-swappiness", "101"], "invalid value: 101. Valid memory swappiness range is 0-100"),
    (["--no-healthcheck", "--health-retries", "1"], "--no-healthcheck conflicts with --health-* "
                                                   "options"),
    (["--health-interval", "-1s"], "--health-interval cannot be negative"),
    (["--storage-opt", "x"], "invalid storage option"),
    (["--mac-address", "nope"], "nope is not a valid mac address"),
    (["--env-file", "/nonexistent/env"], "open /nonexistent/env: no such file or directory"),
    (["-v", "/a::/b"], "invalid spec: /a::/b: empty section between colons"),
    (["-v", "/a:/b:ro:x"], "invalid spec: /a:/b:ro:x: too many colons"),
])
def test_options_errors(args, message):
    with pytest.raises(optspecs.OptionsError) as e:
        parse(*args, "busybox")
    assert str(e.value) == message


def test_a_windows_drive_letter_is_not_a_volume_separator():
    # as in Go: "a:" and "c:" are both drives, so this is a bind of "a:b" on "c:d"
    assert optspecs.parse_volume("a:b:c:d") == {"Source": "a:b", "Target": "c:d", "Type": "bind"}
    assert optspecs.parse_volume("a::b") == {"Source": "a:", "Target": "b", "Type": "bind"}
    assert optspecs.parse_volume("/x") == {"Source": "", "Target": "/x", "Type": "volume"}
    assert optspecs.parse_volume("ab") == {"Source": "", "Target": "ab", "Type": "volume"}


# --- pflag -------------------------------------------------------------------------------------


def usage(message: str) -> str:
    return (f"{message}\n\nUsage:  dockyard create [OPTIONS] IMAGE [COMMAND] [ARG...]\n\n"
            "Run 'dockyard create --help' for more information")


@pytest.mark.parametrize("args, message", [
    (["-c", "x"], 'invalid argument "x" for "-c, --cpu-shares" flag: strconv.ParseInt: parsing '
                  '"x": invalid syntax'),
    (["--cpus", "abc"], 'invalid argument "abc" for "--cpus" flag: failed to parse abc as a '
                        "rational number"),
    (["--cpus", "0.0000000001"], 'invalid argument "0.0000000001" for "--cpus" flag: value is '
                                 "too precise"),
    (["-a", "foo"], 'invalid argument "foo" for "-a, --attach" flag: valid streams are STDIN, '
                    "STDOUT and STDERR"),
    (["-e", "=x"], 'invalid argument "=x" for "-e, --env" flag: invalid environment variable: =x'),
    (["-l", " =x"], 'invalid argument " =x" for "-l, --label" flag: invalid label \' =x\': empty '
                    "name"),
    (["--add-host", "bad"], 'invalid argument "bad" for "--add-host" flag: bad format for '
                            'add-host: "bad"'),
    (["--add-host", "h:1.2.3"], 'invalid argument "h:1.2.3" for "--add-host" flag: invalid IP '
                                'address in add-host: "1.2.3"'),
    (["--ulimit", "foo=1"], 'invalid argument "foo=1" for "--ulimit" flag: invalid ulimit type: '
                            "foo"),
    (["--ulimit", "nofile=2:1"], 'invalid argument "nofile=2:1" for "--ulimit" flag: ulimit soft '
                                 "limit must be less than or equal to hard limit: 2 > 1"),
    (["--dns", "x"], 'invalid argument "x" for "--dns" flag: IP address is not correctly '
                     "formatted: x"),
    (["--mount", "type=bind"], 'invalid argument "type=bind" for "--mount" flag: target is '
                               "required"),
    (["--mount", "type=tmpfs,target=/x,volume-nocopy"],
     'invalid argument "type=tmpfs,target=/x,volume-nocopy" for "--mount" flag: cannot mix '
     "'volume-*' options with mount type 'tmpfs'"),
    (["--stop-timeout", "1.5"], 'invalid argument "1.5" for "--stop-timeout" flag: '
                                'strconv.ParseInt: parsing "1.5": invalid syntax'),
    (["-m", "64x"], 'invalid argument "64x" for "-m, --memory" flag: invalid suffix: \'x\''),
    (["--blkio-weight", "70000"], 'invalid argument "70000" for "--blkio-weight" flag: '
                                  'strconv.ParseUint: parsing "70000": value out of range'),
    (["--health-interval", "5"], 'invalid argument "5" for "--health-interval" flag: time: '
                                 'missing unit in duration "5"'),
    (["--rm=maybe"], 'invalid argument "maybe" for "--rm" flag: strconv.ParseBool: parsing '
                     '"maybe": invalid syntax'),
    (["--xyz"], "unknown flag: --xyz"),
    (["-Z"], "unknown shorthand flag: 'Z' in -Z"),
    (["-iZ"], "unknown shorthand flag: 'Z' in -iZ"),
    (["--name"], "flag needs an argument: --name"),
    (["-e"], "flag needs an argument: 'e' in -e"),
])
def test_flag_errors_as_pflag(args, message):
    with pytest.raises(UsageError) as e:
        parse(*args)
    assert e.value.message == usage(message)
    assert e.value.status == 125


def test_flags_stop_at_the_image():
    body = parse("-it", "-p8080:80", "-e=A=1", "--name", "-weird", "busybox", "sh", "-c",
                 "ls -h", "--rm")
    assert body["Cmd"] == ["sh", "-c", "ls -h", "--rm"]
    assert body["Tty"] and body["OpenStdin"]
    assert body["Env"] == ["A=1"]
    assert body["HostConfig"]["AutoRemove"] is False
    assert list(body["HostConfig"]["PortBindings"]) == ["80/tcp"]


def test_h_is_hostname_and_only_long_help_asks_for_help():
    assert parse("-h", "box", "busybox")["Hostname"] == "box"
    with pytest.raises(HelpShown) as e:
        parse("--help")
    text = str(e.value)
    assert "  -h, --hostname string" in text
    assert "      --help " in text and "Print usage" in text
    assert '--restart string' in text and '(default "no")' in text
    flags = [line.split()[0] for line in text.splitlines() if line.startswith("      --")]
    assert "--dns-option" in flags and "--dns-opt" not in flags and "--net" not in flags


def test_needs_an_image():
    with pytest.raises(StatusError) as e:
        parse("-i")
    assert e.value.message.startswith("dockyard: 'dockyard create' requires at least 1 argument")
    assert e.value.status == 1


def test_bool_values_and_negation():
    body = parse("-t=false", "--privileged=true", "--init=0", "busybox")
    assert body["Tty"] is False and body["HostConfig"]["Privileged"] is True
    assert body["HostConfig"]["Init"] is False


# --- value types -------------------------------------------------------------------------------


@pytest.mark.parametrize("text, value", [
    ("32", 32), ("32b", 32), ("32B", 32), ("32k", 32 << 10), ("32K", 32 << 10), ("32kb", 32 << 10),
    ("32Kb", 32 << 10), ("32Mb", 32 << 20), ("32Gb", 32 << 30), ("32Tb", 32 << 40),
    ("32Pb", 32 << 50), ("32PB", 32 << 50), ("32P", 32 << 50), ("32.3", 32), ("32.3 kib", 33075),
    ("64m", 64 << 20), ("1g", 1 << 30), ("1.5k", 1536), ("0.3m", 314572),
])
def test_ram_in_bytes_as_go_units(text, value):
    assert govalues.ram_in_bytes(text) == value


@pytest.mark.parametrize("text, message", [
    ("", "invalid size: ''"), ("hello", "invalid size: 'hello'"), ("-32", "invalid size: '-32'"),
    # go-units 0.5 splits at the last space or digit: "32m" is then the number
    ("32m b", 'strconv.ParseFloat: parsing "32m": invalid syntax'),
    ("32bm", "invalid suffix: 'bm'"), ("32kib1", 'strconv.ParseFloat: parsing "32kib1": invalid '
                                               "syntax"),
])
def test_ram_in_bytes_errors(text, message):
    with pytest.raises(ValueError) as e:
        govalues.ram_in_bytes(text)
    assert str(e.value) == message


@pytest.mark.parametrize("text, value", [
    ("0", 0), ("10", 10), ("-10", -10), ("0x10", 16), ("0o10", 8), ("010", 8), ("0b101", 5),
    ("1_000", 1000), ("+5", 5),
])
def test_parse_int_base_zero(text, value):
    assert govalues.parse_int(text) == value


@pytest.mark.parametrize("text, message", [
    ("", 'strconv.ParseInt: parsing "": invalid syntax'),
    ("1.5", 'strconv.ParseInt: parsing "1.5": invalid syntax'),
    ("9223372036854775808", 'strconv.ParseInt: parsing "9223372036854775808": value out of range'),
    ("_1", 'strconv.ParseInt: parsing "_1": invalid syntax'),
])
def test_parse_int_errors(text, message):
    with pytest.raises(ValueError) as e:
        govalues.parse_int(text)
    assert str(e.value) == message


@pytest.mark.parametrize("text, ns", [
    ("0", 0), ("1s", 10**9), ("1m30s", 90 * 10**9), ("1.5h", 5400 * 10**9), ("300ms", 3 * 10**8),
    ("-10m", -600 * 10**9), ("1h1m1s1ms1us1ns", 3661001001001), ("2µs", 2000), (".5s", 5 * 10**8),
])
def test_parse_duration(text, ns):
    assert govalues.parse_duration(text) == ns


@pytest.mark.parametrize("text, message", [
    ("", 'time: invalid duration ""'), ("5", 'time: missing unit in duration "5"'),
    ("5x", 'time: unknown unit "x" in duration "5x"'), ("s", 'time: invalid duration "s"'),
])
def test_parse_duration_errors(text, message):
    with pytest.raises(ValueError) as e:
        govalues.parse_duration(text)
    assert str(e.value) == message


@pytest.mark.parametrize("text, value", [
    ("1", 10**9), ("1.5", 15 * 10**8), ("0.001", 10**6), ("3/2", 15 * 10**8), ("1e-3", 10**6),
])
def test_nano_cpus(text, value):
    assert optvalues.nano_cpus(text) == value


def test_ulimits_keep_the_last_value_per_name_sorted():
    body = parse("--ulimit", "nproc=5", "--ulimit", "core=-1", "--ulimit", "nproc=1:2", "busybox")
    assert body["HostConfig"]["Ulimits"] == [{"Name": "core", "Hard": -1, "Soft": -1},
                                            {"Name": "nproc", "Hard": 2, "Soft": 1}]


def test_capabilities_normalized_as_the_engine_client_does():
    assert runopts.normalize_capabilities(["net_admin", "CAP_NET_ADMIN", "all", "Chown"]) == \
        ["ALL", "CAP_CHOWN", "CAP_NET_ADMIN"]
    assert runopts.normalize_capabilities([]) is None


def test_dns_search_and_ip_forms():
    assert optvalues.validate_dns_search("example.com.") == "example.com"
    assert optvalues.validate_dns_search(".") == "."
    with pytest.raises(ValueError, match="is not a valid domain"):
        optvalues.validate_dns_search("-bad-")
    assert optvalues.validate_ip(" ::ffff:1.2.3.4 ") == "1.2.3.4"
    assert optvalues.validate_extra_host("h=[::1]") == "h:::1"
    assert optvalues.validate_extra_host("gw:host-gateway") == "gw:host-gateway"


@pytest.mark.parametrize("spec, mount", [
    ("type=bind,source=/a,target=/b,ro", {"Type": "bind", "Source": "/a", "Target": "/b",
                                         "ReadOnly": True}),
    ("target=/v", {"Type": "volume", "Target": "/v"}),
    ("type=tmpfs,dst=/t,tmpfs-mode=1770", {"Type": "tmpfs", "Target": "/t",
                                           "TmpfsOptions": {"Mode": 0o1770}}),
    ('"type=volume","src=a,b",target=/c', {"Type": "volume", "Source": "a,b", "Target": "/c"}),
    ("type=bind,src=/a,dst=/b,bind-recursive=disabled", {
        "Type": "bind", "Source": "/a", "Target": "/b", "BindOptions": {"NonRecursive": True}}),
])
def test_mount_fields(spec, mount):
    assert optspecs.mount(spec) == mount


# --- --since / --until ----------------------------------------------------------------------------


@pytest.fixture
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


NOW = 1767225600.25  # 2026-01-01T00:00:00.25Z


@pytest.mark.parametrize("value, sent", [
    ("10m", "1767225000"), ("1h30m", "1767220200"), ("-1m", "1767225660"),
    ("1700000000", "1700000000"), ("1700000000.5", "1700000000.5"), ("0", "0"),
    ("2026-01-01", "1767225600.000000000"),
    ("2026-01-01T10:00:00Z", "1767261600.000000000"),
    ("2026-01-01T10:00:00+01:00", "1767258000.000000000"),
    ("2026-01-01T10:00", "1767261600.000000000"), ("2026-01-01T10", "1767261600.000000000"),
    ("2026-01-01T10:00:00.5", "1767261600.500000000"),
    ("2026-01-01T10:00:00.123456789Z", "1767261600.123456789"),
])
def test_get_timestamp(utc, value, sent):
    assert govalues.get_timestamp(value, NOW) == sent


@pytest.mark.parametrize("value, message", [
    ("bogus", 'failed to parse value as time or duration: "bogus"'),
    ("10x", 'failed to parse value as time or duration: "10x"'),
    ("2026-13-01", 'parsing time "2026-13-01": month out of range'),
    ("2026-02-30", 'parsing time "2026-02-30": day out of range'),
    ("2026-1-01", 'parsing time "2026-1-01" as "2006-01-02": cannot parse "1-01" as "01"'),
    ("2026-01-01T25:00", 'parsing time "2026-01-01T25:00": hour out of range'),
    ("2026-01-01x", 'parsing time "2026-01-01x": extra text: "x"'),
])
def test_get_timestamp_errors(utc, value, message):
    with pytest.raises(ValueError) as e:
        govalues.get_timestamp(value, NOW)
    assert str(e.value) == message


# --- ps rows, attach frames ------------------------------------------------------------------------


def test_ps_row_fields_as_docker():
    from dockyard.cli import ps
    summary = {"Id": "04fa971488b8a97b4720eda40ffd449e31fde165428b775367d2208c48cd2848",
               "Names": ["/ex"], "Image": "docker.io/library/busybox:local@sha256:" + "a" * 64,
               "ImageID": "sha256:e9242c1a8a93414f2150bda5836e3b7856e4eeb92e041669d1389393a3a73f9f",
               "Command": "echo 'hello world this is long'", "Created": int(NOW) - 90,
               "Ports": [], "Labels": {"b": "2", "a": "1"}, "State": "exited",
               "Status": "Exited (3) 1 minute ago", "SizeRw": 0, "SizeRootFs": 1982347,
               "NetworkSettings": {"Networks": {"bridge": {}}}, "Mounts": []}
    row = ps.container_row(summary, now=NOW)
    assert row.ID == "04fa971488b8"
    assert row.Command == '"echo \'hello world t…"'
    assert row.Image == "busybox:local"
    assert row.RunningFor == "About a minute ago"
    assert row.Labels == "a=1,b=2" and row.Label("b") == "2" and row.Label("x") == ""
    assert row.Size == "0B (virtual 1.98MB)"
    assert row.Networks == "bridge" and row.LocalVolumes == "0"
    untrunc = ps.container_row(summary, trunc=False, now=NOW)
    assert untrunc.Command == "\"echo 'hello world this is long'\""
    data = json.loads(row._go_json())
    assert list(data) == sorted(data) and data["Platform"] is None and "_labels" not in data


def test_ps_image_given_by_id_shows_a_short_id():
    from dockyard.cli import ps
    image_id = "sha256:e9242c1a8a93414f2150bda5836e3b7856e4eeb92e041669d1389393a3a73f9f"
    assert ps.container_row({"Image": image_id, "ImageID": image_id}).Image == "e9242c1a8a93"
    assert ps.container_row({"Image": "", "ImageID": image_id}).Image == "<no image>"


def test_displayable_ports_as_docker():
    from dockyard.cli.ps import displayable_ports
    ports = [{"PrivatePort": 9001, "Type": "tcp"}, {"PrivatePort": 9000, "Type": "tcp"},
             {"PrivatePort": 53, "Type": "udp"},
             {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
             {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
             {"IP": "127.0.0.1", "PrivatePort": 5000, "PublicPort": 5000, "Type": "tcp"}]
    assert displayable_ports(ports) == ("53/udp, 127.0.0.1:5000->5000/tcp, 9000-9001/tcp, "
                                        "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp")


def frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxI", stream, len(payload)) + payload


def test_demultiplex_splits_stdout_and_stderr():
    from dockyard.client import hijack
    data = io.BytesIO(frame(1, b"out1\n") + frame(2, b"err\n") + frame(1, b"") +
                      frame(1, b"out2\n"))
    out, err = io.BytesIO(), io.BytesIO()
    hijack.demultiplex(lambda n: data.read(min(n, 3)), out, err)
    assert out.getvalue() == b"out1\nout2\n" and err.getvalue() == b"err\n"


def test_demultiplex_reports_a_system_error_frame():
    from dockyard.client import hijack
    data = io.BytesIO(frame(1, b"x") + frame(3, b"boom"))
    with pytest.raises(hijack.StreamError, match="boom"):
        hijack.demultiplex(data.read, io.BytesIO(), io.BytesIO())


def test_exit_statuses_for_start_failures():
    from dockyard.cli.run import to_status_error
    msg = "Error response from daemon: exec: \"x\": executable file not found in $PATH"
    assert to_status_error(msg).status == 127
    assert to_status_error('exec: "/etc": permission denied').status == 126
    assert to_status_error("Conflict. The container name").status == 125
    assert to_status_error(msg).message == (
        f"dockyard: {msg}\n\nRun 'dockyard run --help' for more information")


def test_events_line_and_json(utc):
    from dockyard.cli import events, gotemplate
    event = {"status": "die", "id": "abc", "from": "busybox:local", "Type": "container",
             "Action": "die", "Actor": {"ID": "abc", "Attributes": {"name": "x", "exitCode": "0"}},
             "scope": "local", "time": 1767225600, "timeNano": 1767225600123456789}
    assert events.pretty(event) == ("2026-01-01T00:00:00.123456789Z container die abc "
                                    "(exitCode=0, name=x)\n")
    message = events.message(event)
    assert gotemplate.render("{{.Status}} {{.Actor.Attributes.name}} {{.TimeNano}}", message) \
        == "die x 1767225600123456789"
    assert gotemplate.render("{{json .}}", message) == json.dumps(
        {**event, "Actor": {"ID": "abc", "Attributes": {"exitCode": "0", "name": "x"}}},
        separators=(",", ":"))
    assert gotemplate.render("[{{.Status}}]", events.message({"Type": "container"})) == "[]"


def test_env_by_name_with_the_config_files_proxies(monkeypatch, tmp_path):
    from dockyard.cli.command import Cli
    from dockyard.cli.run import _env_with_proxies
    (tmp_path / "config.json").write_text(json.dumps({"proxies": {
        "default": {"httpProxy": "http://p:3128", "noProxy": "localhost"},
        "unix:///other.sock": {"httpProxy": "http://other"}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    cli = Cli(host="unix:///run/x.sock")
    assert _env_with_proxies(cli, ["A=1", "B", "A=2", "no_proxy=x"]) == [
        "A=2", "B", "no_proxy=x", "HTTP_PROXY=http://p:3128", "http_proxy=http://p:3128",
        "NO_PROXY=localhost"]
    assert _env_with_proxies(Cli(host="unix:///other.sock"), []) == [
        "HTTP_PROXY=http://other", "http_proxy=http://other"]
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "none"))
    assert _env_with_proxies(cli, ["A=1"]) == ["A=1"]
