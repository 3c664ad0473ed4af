"""runtime/spec.py: container record -> OCI config.json with docker's exact defaults."""

from __future__ import annotations

import json
import os

import pytest

from dockyard.runtime import defaults, spec
from dockyard.runtime.spec import SpecError, build, merge_image_config

CID = "3f4e5d6c7b8a" + "0" * 52
ALL_BUT_SYS_RESOURCE = [c for c in defaults.KNOWN_CAPABILITIES if c != "CAP_SYS_RESOURCE"]


@pytest.fixture
def rootfs(tmp_path):
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                     "app:x:1000:1000::/home/app:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\nwheel:x:10:root\naudio:x:29:app\n"
                                    "app:x:1000:\n")
    return str(root)


@pytest.fixture
def files(tmp_path):
    out = {}
    for name in ("hostname", "hosts", "resolv.conf"):
        p = tmp_path / name
        p.write_text("x\n")
        out[name] = str(p)
    return out


@pytest.fixture(autouse=True)
def host_sysctls(monkeypatch):
    monkeypatch.setattr(spec, "_sysctl_exists", lambda name: True)


def make(rootfs, files=None, config=None, host=None, **kw):
    c = {"ID": CID, "Name": "/web",
         "Config": {"Cmd": ["sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], **(config or {})},
         "HostConfig": {"NetworkMode": "default", **(host or {})}}
    kw.setdefault("cgroup_v2", False)
    kw.setdefault("available_caps", ALL_BUT_SYS_RESOURCE)
    s = build(c, {}, rootfs, files or {}, **kw)
    json.dumps(s)        # plain data, ready for config.json
    return s


def mount(s, dest):
    found = [m for m in s["mounts"] if m["destination"] == dest]
    return found[0] if found else None


def ns_types(s):
    return [n["type"] for n in s["linux"]["namespaces"]]


def test_docker_defaults(rootfs, files):
    s = make(rootfs, files)
    assert s["ociVersion"] == "1.0.2"
    assert s["root"] == {"path": rootfs}
    p = s["process"]
    assert p["args"] == ["sh"] and p["cwd"] == "/" and "terminal" not in p
    assert p["env"] == ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=3f4e5d6c7b8a"]
    assert p["user"] == {"uid": 0, "gid": 0, "additionalGids": [0, 10]}
    assert p["capabilities"] == {k: list(defaults.DEFAULT_CAPABILITIES)
                                 for k in ("bounding", "effective", "permitted")}
    assert p["oomScoreAdj"] == 0
    assert "rlimits" not in p and "noNewPrivileges" not in p
    assert s["hostname"] == "3f4e5d6c7b8a"
    assert [m["destination"] for m in s["mounts"]] == [
        "/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm",
        "/etc/resolv.conf", "/etc/hostname", "/etc/hosts"]
    assert mount(s, "/dev/pts")["options"] == [
        "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]
    assert mount(s, "/dev/shm")["options"] == ["nosuid", "noexec", "nodev", "mode=1777",
                                               "size=67108864"]
    assert mount(s, "/sys")["options"] == ["nosuid", "noexec", "nodev", "ro"]
    assert mount(s, "/etc/hosts") == {"destination": "/etc/hosts", "type": "bind",
                                      "source": files["hosts"], "options": ["rbind", "rprivate"]}
    linux = s["linux"]
    assert linux["cgroupsPath"] == "/dockyard/" + CID
    assert ns_types(s) == ["mount", "network", "uts", "pid", "ipc"]   # v1 host: no cgroupns
    assert linux["maskedPaths"][-1] == "/sys/devices/virtual/powercap"
    assert linux["readonlyPaths"] == ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                      "/proc/sysrq-trigger"]
    assert linux["resources"] == {"devices": defaults.default_device_rules(),
                                  "memory": {"disableOOMKiller": False}, "blockIO": {}}
    assert "devices" not in linux
    assert linux["sysctl"] == {"net.ipv4.ping_group_range": "0 2147483647",
                               "net.ipv4.ip_unprivileged_port_start": "0"}


def test_process_options(rootfs):
    s = make(rootfs, config={"Entrypoint": ["/entry.sh"], "Cmd": ["run", "-x"], "Tty": True,
                             "WorkingDir": "/srv", "Hostname": "web1", "Domainname": "example.org",
                             "Env": ["FOO=bar", "PATH=/custom", "HOSTNAME", "X=1=2"]},
             host={"Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}],
                   "SecurityOpt": ["no-new-privileges:true"], "OomScoreAdj": 500,
                   "ConsoleSize": [40, 120], "Annotations": {"a": "b"}})
    p = s["process"]
    assert p["args"] == ["/entry.sh", "run", "-x"]
    assert p["terminal"] is True and p["consoleSize"] == {"height": 40, "width": 120}
    # PATH replaced in place, bare HOSTNAME unsets, TERM added for a tty
    assert p["env"] == ["PATH=/custom", "TERM=xterm", "FOO=bar", "X=1=2"]
    assert p["cwd"] == "/srv"
    assert p["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 2048, "soft": 1024}]
    assert p["noNewPrivileges"] is True
    assert p["oomScoreAdj"] == 500
    assert s["hostname"] == "web1"
    assert s["linux"]["sysctl"]["kernel.domainname"] == "example.org"
    assert s["annotations"] == {"a": "b"}


def test_no_command(rootfs):
    with pytest.raises(SpecError, match="No command specified"):
        make(rootfs, config={"Cmd": None})


def test_resources(rootfs):
    r = make(rootfs, host={"Memory": 64 << 20, "MemoryReservation": 32 << 20,
                           "NanoCpus": 1_500_000_000, "CpuShares": 512, "CpusetCpus": "0-1",
                           "CpusetMems": "0", "PidsLimit": 100, "OomKillDisable": True,
                           "BlkioWeight": 300})["linux"]["resources"]
    assert r["memory"] == {"limit": 64 << 20, "reservation": 32 << 20, "swap": 128 << 20,
                           "disableOOMKiller": True}
    assert r["cpu"] == {"shares": 512, "cpus": "0-1", "mems": "0", "period": 100000,
                        "quota": 150000}
    assert r["pids"] == {"limit": 100}
    assert r["blockIO"] == {"weight": 300}


@pytest.mark.parametrize("host,memory", [
    ({"Memory": 64 << 20, "MemorySwap": -1}, {"limit": 64 << 20}),          # unlimited swap
    ({"Memory": 64 << 20, "MemorySwap": 96 << 20}, {"limit": 64 << 20, "swap": 96 << 20}),
    ({"MemorySwappiness": -1}, {}),
    ({"MemorySwappiness": 0}, {"swappiness": 0}),
])
def test_memory_swap(rootfs, host, memory):
    r = make(rootfs, host=host)["linux"]["resources"]
    assert r["memory"] == {**memory, "disableOOMKiller": False}


@pytest.mark.parametrize("limit,expected", [(None, None), (0, -1), (-1, -1), (7, 7)])
def test_pids_limit(rootfs, limit, expected):
    r = make(rootfs, host={"PidsLimit": limit})["linux"]["resources"]
    assert r.get("pids") == (None if expected is None else {"limit": expected})


def test_cpu_period_and_quota_override_nanocpus(rootfs):
    r = make(rootfs, host={"CpuPeriod": 50000, "CpuQuota": 25000})["linux"]["resources"]
    assert r["cpu"] == {"period": 50000, "quota": 25000}
    with pytest.raises(SpecError, match="shares: invalid argument"):
        make(rootfs, host={"CpuShares": -1})


@pytest.mark.parametrize("add,drop,expected", [
    (["NET_ADMIN"], ["MKNOD"], [c for c in defaults.DEFAULT_CAPABILITIES if c != "CAP_MKNOD"]
     + ["CAP_NET_ADMIN"]),
    (["cap_sys_admin"], None, list(defaults.DEFAULT_CAPABILITIES) + ["CAP_SYS_ADMIN"]),
    (None, ["all"], []),
    (["chown"], ["ALL"], ["CAP_CHOWN"]),
    (["ALL"], ["NET_RAW"], [c for c in ALL_BUT_SYS_RESOURCE if c != "CAP_NET_RAW"]),
])
def test_capabilities(rootfs, add, drop, expected):
    caps = make(rootfs, host={"CapAdd": add, "CapDrop": drop})["process"]["capabilities"]
    assert caps["bounding"] == caps["effective"] == caps["permitted"] == expected
    assert "inheritable" not in caps


def test_capability_errors_in_dockers_words(rootfs):
    with pytest.raises(ValueError) as e:
        make(rootfs, host={"CapAdd": ["foo"]})
    assert str(e.value) == 'invalid CapAdd: unknown capability: "CAP_FOO"'
    with pytest.raises(ValueError) as e:
        make(rootfs, host={"CapDrop": ["CAP_NOPE"]})
    assert str(e.value) == 'invalid CapDrop: unknown capability: "CAP_NOPE"'
    with pytest.raises(ValueError) as e:
        make(rootfs, host={"CapAdd": ["SYS_RESOURCE"]})
    assert str(e.value) == ('invalid CapAdd: capability not supported by your kernel or not '
                            'available in the current environment: "CAP_SYS_RESOURCE"')


def test_privileged(rootfs):
    s = make(rootfs, host={"Privileged": True, "CapDrop": ["ALL"]})
    assert s["process"]["capabilities"]["bounding"] == ALL_BUT_SYS_RESOURCE
    assert "maskedPaths" not in s["linux"] and "readonlyPaths" not in s["linux"]
    assert "ro" not in mount(s, "/sys")["options"]
    assert "ro" not in mount(s, "/sys/fs/cgroup")["options"]
    assert s["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    null = [d for d in s["linux"]["devices"] if d["path"] == "/dev/null"]
    assert null and null[0]["type"] == "c" and (null[0]["major"], null[0]["minor"]) == (1, 3)
    assert not any(d["path"].startswith(("/dev/pts/", "/dev/shm/")) for d in s["linux"]["devices"])


def test_devices(rootfs, tmp_path):
    s = make(rootfs, host={"Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/mynull",
                                        "CgroupPermissions": "rw"}],
                           "DeviceCgroupRules": ["c 42:* rmw"]})
    st = os.stat("/dev/null")
    assert s["linux"]["devices"] == [{"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3,
                                      "fileMode": st.st_mode & 0o7777, "uid": st.st_uid,
                                      "gid": st.st_gid}]
    assert s["linux"]["resources"]["devices"][-2:] == [
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"},
        {"allow": True, "type": "c", "major": 42, "minor": -1, "access": "rmw"}]
    with pytest.raises(SpecError) as e:
        make(rootfs, host={"Devices": [{"PathOnHost": "/dev/nosuch", "PathInContainer": "/dev/x",
                                        "CgroupPermissions": "rwm"}]})
    assert str(e.value) == ('error gathering device information while adding custom device '
                            '"/dev/nosuch": lstat /dev/nosuch: no such file or directory')
    (tmp_path / "plain").write_text("")
    with pytest.raises(SpecError, match="not a device node"):
        make(rootfs, host={"Devices": [{"PathOnHost": str(tmp_path / "plain"),
                                        "PathInContainer": "/dev/x", "CgroupPermissions": "rwm"}]})
    with pytest.raises(SpecError, match="invalid device cgroup rule format: 'c 1:3'"):
        make(rootfs, host={"DeviceCgroupRules": ["c 1:3"]})


def test_readonly_rootfs(rootfs, files):
    s = make(rootfs, files, host={"ReadonlyRootfs": True})
    assert s["root"] == {"path": rootfs, "readonly": True}
    for dest in ("/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue"):
        assert "ro" not in mount(s, dest)["options"], dest
    assert mount(s, "/sys/fs/cgroup")["options"] == ["ro", "nosuid", "noexec", "nodev"]
    assert mount(s, "/etc/hosts")["options"] == ["rbind", "ro", "rprivate"]


def test_init(rootfs):
    s = make(rootfs, config={"Cmd": ["sleep", "1"]}, host={"Init": True},
             init_path="/usr/libexec/docker-init")
    assert s["process"]["args"] == ["/sbin/docker-init", "--", "sleep", "1"]
    assert mount(s, "/sbin/docker-init") == {"destination": "/sbin/docker-init", "type": "bind",
                                             "source": "/usr/libexec/docker-init",
                                             "options": ["bind", "ro"]}
    # with the host's pid namespace there is an init already
    s = make(rootfs, host={"Init": True, "PidMode": "host"}, init_path="/x")
    assert s["process"]["args"] == ["sh"] and "pid" not in ns_types(s)


def test_shm_and_ipc(rootfs):
    s = make(rootfs, host={"ShmSize": 1 << 20})
    assert mount(s, "/dev/shm")["options"][-1] == "size=1048576"
    s = make(rootfs, host={"IpcMode": "none"})
    assert mount(s, "/dev/shm") is None and "ipc" in ns_types(s)
    s = make(rootfs, host={"IpcMode": "host"})
    assert "ipc" not in ns_types(s)
    assert mount(s, "/dev/shm") == {"destination": "/dev/shm", "type": "bind",
                                    "source": "/dev/shm", "options": ["rbind", "rprivate"]}
    with pytest.raises(SpecError, match="invalid IPC mode: bogus"):
        make(rootfs, host={"IpcMode": "bogus"})


def test_user_and_groups(rootfs):
    s = make(rootfs, config={"User": "app"}, host={"GroupAdd": ["wheel", "4242"]})
    assert s["process"]["user"] == {"uid": 1000, "gid": 1000,
                                    "additionalGids": [1000, 29, 10, 4242]}
    s = make(rootfs, config={"User": "1000:audio"})
    assert s["process"]["user"] == {"uid": 1000, "gid": 29, "additionalGids": [29]}
    with pytest.raises(ValueError) as e:
        make(rootfs, config={"User": "nosuch"})
    assert str(e.value) == "unable to find user nosuch: no matching entries in passwd file"


def test_network_modes(rootfs, files):
    s = make(rootfs, host={"NetworkMode": "none"})
    assert "network" in ns_types(s)
    s = make(rootfs, host={"NetworkMode": "host"})
    assert "network" not in ns_types(s) and "uts" in ns_types(s)
    assert s["hostname"] == os.uname().nodename
    assert "net.ipv4.ping_group_range" not in s["linux"].get("sysctl", {})
    s = make(rootfs, host={"NetworkMode": "bridge"}, netns_path="/run/netns/abc")
    assert {"type": "network", "path": "/run/netns/abc"} in s["linux"]["namespaces"]
    s = make(rootfs, host={"NetworkMode": "container:other"}, netns_path="/proc/42/ns/net")
    assert {"type": "network", "path": "/proc/42/ns/net"} in s["linux"]["namespaces"]
    assert "sysctl" not in s["linux"]
    with pytest.raises(SpecError):
        make(rootfs, host={"NetworkMode": "container:other"})


def test_other_namespaces(rootfs):
    s = make(rootfs, host={"UTSMode": "host"})
    assert "uts" not in ns_types(s) and "hostname" not in s
    assert ns_types(make(rootfs, cgroup_v2=True))[-1] == "cgroup"        # v2 default: private
    assert "cgroup" in ns_types(make(rootfs, host={"CgroupnsMode": "private"}))
    assert "cgroup" not in ns_types(make(rootfs, cgroup_v2=True, host={"CgroupnsMode": "host"}))
    with pytest.raises(SpecError, match="invalid PID mode: nope"):
        make(rootfs, host={"PidMode": "nope"})


def test_user_mounts_override_defaults(rootfs, files):
    vol = {"destination": "/etc/hosts", "type": "bind", "source": "/srv/hosts",
           "options": ["rbind", "rprivate"]}
    deep = {"destination": "/data/a/b", "type": "bind", "source": "/srv/b",
            "options": ["rbind", "ro", "rprivate"]}
    s = make(rootfs, files, mounts=[deep, vol], host={"Tmpfs": {"/run": "size=64k,exec"}})
    hosts = [m for m in s["mounts"] if m["destination"] == "/etc/hosts"]
    assert hosts == [vol]
    # user mounts come after the defaults, shallowest first
    assert [m["destination"] for m in s["mounts"]][7:] == [
        "/run", "/etc/hosts", "/etc/resolv.conf", "/etc/hostname", "/data/a/b"]
    assert mount(s, "/run") == {"destination": "/run", "type": "tmpfs", "source": "tmpfs",
                                "options": ["nosuid", "nodev", "rprivate", "size=64k", "exec"]}
    s = make(rootfs, mounts=[{"destination": "/dev", "type": "bind", "source": "/dev",
                              "options": ["rbind"]}])
    assert [m["destination"] for m in s["mounts"]] == ["/proc", "/sys", "/sys/fs/cgroup", "/dev"]


def test_masked_paths_from_host_config(rootfs):
    s = make(rootfs, host={"MaskedPaths": [], "ReadonlyPaths": ["/proc/sys"]})
    assert s["linux"]["maskedPaths"] == [] and s["linux"]["readonlyPaths"] == ["/proc/sys"]


def test_cgroup_parent(rootfs):
    assert make(rootfs, host={"CgroupParent": "/custom/"})["linux"]["cgroupsPath"] == \
        "/custom/" + CID


@pytest.mark.parametrize("opt,nnp", [
    (["no-new-privileges"], True), (["no-new-privileges=true"], True),
    (["no-new-privileges:false"], False), (["seccomp=unconfined", "label=disable"], False),
])
def test_security_opt(rootfs, opt, nnp):
    assert make(rootfs, host={"SecurityOpt": opt})["process"].get("noNewPrivileges", False) is nnp


def test_security_opt_errors(rootfs):
    with pytest.raises(SpecError, match='invalid --security-opt 1: "bogus"'):
        make(rootfs, host={"SecurityOpt": ["bogus"]})
    with pytest.raises(SpecError, match='invalid --security-opt 2: "no-new-privileges=maybe"'):
        make(rootfs, host={"SecurityOpt": ["no-new-privileges=maybe"]})


# --- merge_image_config --------------------------------------------------------

IMAGE = {"Env": ["PATH=/usr/bin", "LANG=C"], "Cmd": ["nginx", "-g", "daemon off;"],
         "Entrypoint": ["/docker-entrypoint.sh"], "WorkingDir": "/srv", "User": "www",
         "Labels": {"maintainer": "x", "v": "1"}, "ExposedPorts": {"80/tcp": {}},
         "Volumes": {"/data": {}}, "StopSignal": "SIGQUIT",
         "Healthcheck": {"Test": ["CMD", "true"], "Interval": 5_000_000_000, "Retries": 3},
         "OnBuild": ["RUN echo"]}


def test_merge_fills_in_image_defaults():
    m = merge_image_config({"Image": "nginx"}, IMAGE)
    assert m["Env"] == IMAGE["Env"] and m["Cmd"] == IMAGE["Cmd"]
    assert m["Entrypoint"] == IMAGE["Entrypoint"] and m["WorkingDir"] == "/srv"
    assert m["User"] == "www" and m["StopSignal"] == "SIGQUIT"
    assert m["Labels"] == IMAGE["Labels"] and m["ExposedPorts"] == {"80/tcp": {}}
    assert m["Healthcheck"] == IMAGE["Healthcheck"] and "OnBuild" not in m
    m["Env"].append("X=1")
    assert IMAGE["Env"] == ["PATH=/usr/bin", "LANG=C"]       # no aliasing


def test_merge_user_wins():
    user = {"Env": ["LANG=en_US.UTF-8", "FOO=1"], "Cmd": ["sh"], "Labels": {"v": "2"},
            "ExposedPorts": {"443/tcp": {}}, "Volumes": {"/logs": {}}, "User": "root",
            "Healthcheck": {"Test": [], "Timeout": 1_000_000_000}}
    m = merge_image_config(user, IMAGE)
    assert m["Env"] == ["LANG=en_US.UTF-8", "FOO=1", "PATH=/usr/bin"]
    assert m["Cmd"] == ["sh"] and m["Entrypoint"] == ["/docker-entrypoint.sh"]
    assert m["Labels"] == {"v": "2", "maintainer": "x"}
    assert m["ExposedPorts"] == {"443/tcp": {}, "80/tcp": {}}
    assert m["Volumes"] == {"/logs": {}, "/data": {}}
    assert m["User"] == "root"
    assert m["Healthcheck"] == {"Test": ["CMD", "true"], "Timeout": 1_000_000_000,
                                "Interval": 5_000_000_000, "Retries": 3}


def test_merge_entrypoint_rules():
    # a user entrypoint drops the image's Cmd
    m = merge_image_config({"Entrypoint": ["/bin/echo"]}, IMAGE)
    assert m["Entrypoint"] == ["/bin/echo"] and not m.get("Cmd")
    # --entrypoint "" clears the image's entrypoint, and its Cmd too (as docker)
    m = merge_image_config({"Entrypoint": [""]}, IMAGE)
    assert m["Entrypoint"] is None and not m.get("Cmd")
    # an empty list entrypoint keeps the image's Cmd but not its Entrypoint
    m = merge_image_config({"Entrypoint": []}, IMAGE)
    assert m["Entrypoint"] == [] and m["Cmd"] == IMAGE["Cmd"]


def test_merge_accepts_a_whole_image_config():
    m = merge_image_config({}, {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                                "rootfs": {"type": "layers", "diff_ids": []}})
    assert m["Cmd"] == ["sh"] and m["Labels"] == {}
