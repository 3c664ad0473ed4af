"""Parsing and checking mount requests (volume/mountpoint.py) as moby's Linux
parser does (volume/mounts/linux_parser.go and its parser_test.go in 20.10):
-v strings, --mount specs, --volumes-from, modes, tmpfs options, and the
`Mounts` entry a mount point shows in inspect."""

from __future__ import annotations

import pytest

from dockyard.volume import mountpoint as mp
from dockyard.volume.mountpoint import MountError, MountPoint, parse_bind, parse_mount


# -- -v src:dst:mode ---------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [
    "/home", "/home:/home", "/home:/something/else", "/with space", "/home:/with space",
    "relative:/absolute-path", "hostPath:/containerPath:ro", "/hostPath:/containerPath:rw",
    "/rw:/ro", "/hostPath:/containerPath:shared", "/hostPath:/containerPath:rshared",
    "/hostPath:/containerPath:slave", "/hostPath:/containerPath:rslave",
    "/hostPath:/containerPath:private", "/hostPath:/containerPath:rprivate",
    "/hostPath:/containerPath:ro,shared", "/hostPath:/containerPath:ro,slave",
    "/hostPath:/containerPath:ro,private", "/hostPath:/containerPath:ro,z,shared",
    "/hostPath:/containerPath:ro,Z,slave", "/hostPath:/containerPath:Z,ro,slave",
    "/hostPath:/containerPath:slave,Z,ro", "/hostPath:/containerPath:Z,slave,ro",
    "/hostPath:/containerPath:slave,ro,Z", "/hostPath:/containerPath:rslave,ro,Z",
    "/hostPath:/containerPath:ro,rshared,Z", "/hostPath:/containerPath:ro,Z,rprivate",
    "name:/data:nocopy", "name:/data:ro,nocopy", "name:/data:cached", "name:/data:delegated",
])
def test_valid_binds(raw):
    parse_bind(raw)


@pytest.mark.parametrize("raw,expected", [
    ("", "invalid volume specification"),
    ("./", "mount path must be absolute"),
    ("../", "mount path must be absolute"),
    ("/:../", "mount path must be absolute"),
    ("/:path", "mount path must be absolute"),
    (":", "invalid volume specification"),
    ("/tmp:", "invalid volume specification"),
    (":test", "invalid volume specification"),
    (":/test", "invalid volume specification"),
    ("tmp:", "invalid volume specification"),
    (":test:", "invalid volume specification"),
    ("::", "invalid volume specification"),
    (":::", "invalid volume specification"),
    ("/tmp:::", "invalid volume specification"),
    (":/tmp::", "invalid volume specification"),
    ("/path:rw", "invalid volume specification"),
    ("/path:ro", "invalid volume specification"),
    ("/rw:rw", "invalid volume specification"),
    ("path:ro", "invalid volume specification"),
    ("/path:/path:sw", "invalid mode"),
    ("/path:/path:rwz", "invalid mode"),
    ("/path:/path:ro,rshared,rslave", "invalid mode"),
    ("/path:/path:ro,z,rshared,rslave", "invalid mode"),
    ("/path:shared", "invalid volume specification"),
    ("/path:slave", "invalid volume specification"),
    ("/path:private", "invalid volume specification"),
    ("name:/absolute-path:shared", "invalid volume specification"),
    ("name:/absolute-path:rshared", "invalid volume specification"),
    ("name:/absolute-path:slave", "invalid volume specification"),
    ("name:/absolute-path:rslave", "invalid volume specification"),
    ("name:/absolute-path:private", "invalid volume specification"),
    ("name:/absolute-path:rprivate", "invalid volume specification"),
    ("/", "destination can't be '/'"),
    ("/..", "destination can't be '/'"),
    ("/tmp:tmp", "mount path must be absolute"),
])
def test_invalid_binds(raw, expected):
    with pytest.raises(MountError) as e:
        parse_bind(raw)
    assert expected in str(e.value)


@pytest.mark.parametrize("raw,message", [
    ("v1:/data:ro,rw", "invalid mode: ro,rw"),
    ("v1:/data:bogus", "invalid mode: bogus"),
    ("/data:nocopy", "invalid volume specification: '/data:nocopy'"),
    ("v1:data", "invalid volume specification: 'v1:data': invalid mount config for type "
                "\"volume\": invalid mount path: 'data' mount path must be absolute"),
    ("/h:/", "invalid volume specification: '/h:/': invalid mount config for type \"bind\": "
             "invalid specification: destination can't be '/'"),
    ("/h:/c:nocopy", "invalid volume specification: '/h:/c:nocopy': invalid mount config for "
                     "type \"bind\": field VolumeOptions must not be specified"),
    ("name:/p:rslave", "invalid volume specification: 'name:/p:rslave': invalid mount config "
                       "for type \"volume\": field BindOptions must not be specified"),
    ("a:b:c:d", "invalid volume specification: 'a:b:c:d'"),
])
def test_bind_error_messages(raw, message):
    with pytest.raises(MountError) as e:
        parse_bind(raw)
    assert str(e.value) == message


@pytest.mark.parametrize("raw,driver,kind,dest,source,name,drv,rw", [
    ("/tmp:/tmp1", "", "bind", "/tmp1", "/tmp", "", "", True),
    ("/tmp:/tmp2:ro", "", "bind", "/tmp2", "/tmp", "", "", False),
    ("/tmp:/tmp3:rw", "", "bind", "/tmp3", "/tmp", "", "", True),
    ("name:/named1", "", "volume", "/named1", "", "name", "", True),
    ("name:/named2", "external", "volume", "/named2", "", "name", "external", True),
    ("name:/named3:ro", "local", "volume", "/named3", "", "name", "local", False),
    ("local/name:/tmp:rw", "", "volume", "/tmp", "", "local/name", "", True),
    ("//tmp//x/../y/://a/./b/", "", "bind", "/a/b", "/tmp/y", "", "", True),
])
def test_bind_split(raw, driver, kind, dest, source, name, drv, rw):
    p = parse_bind(raw, driver)
    assert (p.Type, p.Destination, p.Source, p.Name, p.Driver, p.RW) == \
        (kind, dest, source, name, drv, rw)


@pytest.mark.parametrize("raw,mode,propagation,copy,anonymous", [
    ("v1:/data", "z", "", True, False),          # setBindModeIfNull for local volumes
    ("/data", "z", "", True, True),              # a Binds entry with no source: anonymous
    ("v1:/data:nocopy", "nocopy", "", False, False),
    ("v1:/data:ro,nocopy", "ro,nocopy", "", False, False),
    ("v1:/data:rw", "rw", "", True, False),
    ("/h:/x", "", "rprivate", False, False),     # binds: rprivate unless told
    ("/h:/x:ro", "ro", "rprivate", False, False),
    ("/h:/x:rw,rprivate", "rw,rprivate", "rprivate", False, False),
    ("/h:/x:rslave", "rslave", "rslave", False, False),
    ("/h:/x:ro,Z,rshared", "ro,Z,rshared", "rshared", False, False),
])
def test_bind_mode_propagation_and_copy(raw, mode, propagation, copy, anonymous):
    p = parse_bind(raw)
    assert (p.Mode, p.Propagation, p.CopyData, p.anonymous) == \
        (mode, propagation, copy, anonymous)


# -- --mount ------------------------------------------------------------------------------------

def exists(path: str) -> bool:
    return path in ("/src", "/src/", "/file")


@pytest.mark.parametrize("spec,kind,dest,source,rw,propagation,copy", [
    ({"Type": "bind", "Source": "/src", "Target": "/t", "ReadOnly": True},
     "bind", "/t", "/src", False, "rprivate", False),
    ({"Type": "bind", "Source": "/src", "Target": "/t"}, "bind", "/t", "/src", True, "rprivate",
     False),
    ({"Type": "bind", "Source": "/src/", "Target": "/t/", "ReadOnly": True},
     "bind", "/t", "/src", False, "rprivate", False),
    ({"Type": "bind", "Source": "/src", "Target": "/t",
      "BindOptions": {"Propagation": "rslave"}}, "bind", "/t", "/src", True, "rslave", False),
    ({"Type": "volume", "Target": "/t"}, "volume", "/t", "", True, "", True),
    ({"Type": "volume", "Target": "/t/"}, "volume", "/t", "", True, "", True),
    ({"Type": "volume", "Source": "v", "Target": "/t", "VolumeOptions": {"NoCopy": True}},
     "volume", "/t", "", True, "", False),
    ({"Type": "tmpfs", "Target": "/t"}, "tmpfs", "/t", "", True, "", False),
])
def test_mount_specs(spec, kind, dest, source, rw, propagation, copy):
    p = parse_mount(spec, source_exists=exists)
    assert (p.Type, p.Destination, p.Source, p.RW, p.Propagation, p.CopyData) == \
        (kind, dest, source, rw, propagation, copy)
    assert p.Mode == ("z" if kind == "volume" else "")
    assert p.Spec == spec  # kept as sent: HostConfig.Mounts shows it


def test_mount_bind_needs_an_existing_source_unless_asked_to_make_it():
    spec = {"Type": "bind", "Source": "/nope", "Target": "/t"}
    with pytest.raises(MountError) as e:
        parse_mount(spec, source_exists=exists)
    assert str(e.value) == ('invalid mount config for type "bind": bind source path does not '
                            "exist: /nope")
    p = parse_mount({**spec, "BindOptions": {"CreateMountpoint": True}}, source_exists=exists)
    assert p.Source == "/nope" and not p.SkipMountpointCreation
    assert parse_mount({"Type": "bind", "Source": "/file", "Target": "/t"},
                       source_exists=exists).SkipMountpointCreation


@pytest.mark.parametrize("spec,message", [
    ({"Type": "bind", "Source": "relative", "Target": "/x"},
     'invalid mount config for type "bind": invalid mount path: \'relative\' mount path must '
     "be absolute"),
    ({"Type": "bogus", "Target": "/x"}, 'invalid mount config for type "bogus": mount type '
                                        "unknown"),
    ({"Type": "volume", "Target": "rel"}, 'invalid mount config for type "volume": invalid '
                                          "mount path: 'rel' mount path must be absolute"),
    ({"Type": "tmpfs", "Source": "x", "Target": "/t"},
     'invalid mount config for type "tmpfs": field Source must not be specified'),
    ({"Type": "bind", "Source": "/src", "Target": "/x", "VolumeOptions": {}},
     'invalid mount config for type "bind": field VolumeOptions must not be specified'),
    ({"Type": "volume", "Source": "v", "Target": "/x", "BindOptions": {}},
     'invalid mount config for type "volume": field BindOptions must not be specified'),
    ({"Type": "bind", "Source": "/src", "Target": "/"},
     'invalid mount config for type "bind": invalid specification: destination can\'t be \'/\''),
    ({"Type": "volume", "Target": ""},
     'invalid mount config for type "volume": field Target must not be empty'),
    ({"Type": "bind", "Target": "/x"},
     'invalid mount config for type "bind": field Source must not be empty'),
    ({"Type": "bind", "Source": "/src", "Target": "/x", "BindOptions": {"Propagation": "up"}},
     'invalid mount config for type "bind": invalid propagation mode: up'),
    # validateMountConfigImpl: an anonymous volume cannot be read-only
    ({"Type": "volume", "Target": "/x", "ReadOnly": True},
     'invalid mount config for type "volume": must not set ReadOnly mode when using anonymous '
     "volumes"),
])
def test_mount_spec_errors(spec, message):
    with pytest.raises(MountError) as e:
        parse_mount(spec, source_exists=exists)
    assert str(e.value) == message


def test_a_named_read_only_volume_is_fine():
    p = parse_mount({"Type": "volume", "Source": "v", "Target": "/x", "ReadOnly": True})
    assert (p.Name, p.RW, p.Mode, p.anonymous) == ("v", False, "z", False)


# -- tmpfs options ------------------------------------------------------------------------------

@pytest.mark.parametrize("options,readonly,data", [
    ({"SizeBytes": 1 << 20, "Mode": 0o700}, False, "mode=700,size=1m"),
    ({}, True, "ro"),
    (None, False, ""),
    ({"SizeBytes": 1536}, False, "size=1536"),
    ({"SizeBytes": 3 << 30}, False, "size=3g"),
    ({"SizeBytes": 4096, "Mode": 0o1770}, True, "ro,mode=1770,size=4k"),
])
def test_tmpfs_data(options, readonly, data):
    assert mp.tmpfs_data(options, readonly) == data


def test_mount_tmpfs_keeps_its_data():
    p = parse_mount({"Type": "tmpfs", "Target": "/t",
                     "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 1016}})
    assert p.TmpfsData == "mode=1770,size=1m"


# -- --volumes-from ----------------------------------------------------------------------------

@pytest.mark.parametrize("spec,result", [
    ("c", ("c", "rw")), ("c:ro", ("c", "ro")), ("c:rw", ("c", "rw")), ("c:ro,z", ("c", "ro,z")),
])
def test_volumes_from(spec, result):
    assert mp.parse_volumes_from(spec) == result


@pytest.mark.parametrize("spec,message", [
    ("", "volumes-from specification cannot be an empty string"),
    ("c:bogus", "invalid mode: bogus"),
    ("c:rshared", "invalid mode: rshared"),  # the copies keep the original's propagation
    ("c:ro,nocopy", "invalid mode: ro,nocopy"),
    ("c:ro,rw", "invalid mode: ro,rw"),
])
def test_volumes_from_errors(spec, message):
    with pytest.raises(MountError) as e:
        mp.parse_volumes_from(spec)
    assert str(e.value) == message


# -- modes ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode,valid,rw", [
    ("", True, True), ("ro", True, False), ("rw", True, True), ("ro,rw", False, False),
    ("ro,z,rshared", True, False), ("z,Z", False, False), ("nocopy,ro", True, False),
    ("consistent,cached", False, False), ("rslave,rprivate", False, False),
    ("RO", False, False), ("ro,", False, False),
])
def test_modes(mode, valid, rw):
    assert (mp.valid_mode(mode), mp.read_write(mode)) == (valid, rw)


def test_clean_is_go_path_clean():
    assert [mp.clean(p) for p in ("//x", "/a/../b/", "/a/./b//c", "/..", "///")] == \
        ["/x", "/b", "/a/b/c", "/", "/"]


# -- the Mounts entry ----------------------------------------------------------------------------

def test_api_view_keys_in_docker_order():
    vol = MountPoint(Type="volume", Destination="/d", Source="/v/_data", Name="v",
                     Driver="local", Mode="z")
    assert list(vol.api_view()) == ["Type", "Name", "Source", "Destination", "Driver", "Mode",
                                    "RW", "Propagation"]
    bind = parse_bind("/h:/x:ro")
    assert bind.api_view() == {"Type": "bind", "Source": "/h", "Destination": "/x", "Mode": "ro",
                               "RW": False, "Propagation": "rprivate"}
    tmpfs = parse_mount({"Type": "tmpfs", "Target": "/t"})
    assert tmpfs.api_view() == {"Type": "tmpfs", "Source": "", "Destination": "/t", "Mode": "",
                                "RW": True, "Propagation": ""}


def test_record_round_trip():
    p = parse_bind("v:/d:ro,nocopy")
    again = MountPoint.from_record({**p.to_record(), "Unknown": 1})
    assert again == p
