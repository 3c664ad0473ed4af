"""`-u user[:group]` resolution against a rootfs's /etc/passwd and /etc/group (runc's rules)."""

from __future__ import annotations

import os

import pytest

from dockyard.runtime.user import (UserLookupError, get_additional_groups, get_exec_user,
                                   lookup, open_in_root, parse_group, parse_passwd,
                                   read_file_in_root)

# busybox's own files
PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
"""
GROUP = """root:x:0:
daemon:x:1:
bin:x:2:
# a comment
tty:x:5:
wheel:x:10:root
www-data:x:33:
staff:x:50:operator,www-data
nogroup:x:65534:
"""


@pytest.fixture
def rootfs(tmp_path):
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text(PASSWD)
    (root / "etc/group").write_text(GROUP)
    return root


def test_parse_files():
    users = parse_passwd(PASSWD + "\n  \nbroken:x:notanumber\n")
    assert users[0].name == "root" and users[0].home == "/root"
    assert users[-1].name == "broken" and users[-1].uid == 0      # bad numbers read as 0
    groups = parse_group(GROUP)
    assert [g.name for g in groups][:4] == ["root", "daemon", "bin", "tty"]
    assert groups[-2].members == ("operator", "www-data")


@pytest.mark.parametrize("spec,uid,gid,sgids", [
    ("", 0, 0, (10,)),                        # root's groups: wheel lists root
    ("root", 0, 0, (10,)),
    ("www-data", 33, 33, (50,)),
    ("33", 33, 33, (50,)),                    # numbers are uids, looked up for the gid
    ("1234", 1234, 0, ()),                    # an unknown uid is fine, gid 0
    ("1234:5678", 1234, 5678, ()),
    ("www-data:tty", 33, 5, ()),              # explicit group: no supplementary groups
    ("www-data:7", 33, 7, ()),
    ("operator:staff:ignored", 37, 50, ()),
    ("nobody", 65534, 65534, ()),
])
def test_get_exec_user(spec, uid, gid, sgids):
    u = get_exec_user(spec, PASSWD, GROUP)
    assert (u.uid, u.gid, u.sgids) == (uid, gid, sgids)


def test_errors_in_runcs_words():
    with pytest.raises(UserLookupError) as e:
        get_exec_user("nosuch", PASSWD, GROUP)
    assert str(e.value) == "unable to find user nosuch: no matching entries in passwd file"
    with pytest.raises(UserLookupError) as e:
        get_exec_user("root:nosuch", PASSWD, GROUP)
    assert str(e.value) == "unable to find group nosuch: no matching entries in group file"
    with pytest.raises(UserLookupError) as e:
        get_exec_user("-1", PASSWD, GROUP)
    assert str(e.value) == "uids and gids must be in range 0-2147483647"
    with pytest.raises(UserLookupError) as e:
        get_additional_groups(["audio"], GROUP)
    assert str(e.value) == "Unable to find group audio: no matching entries in group file"


def test_without_files():
    # no /etc/passwd: numeric ids still work, names don't
    assert get_exec_user("", None, None).uid == 0
    assert get_exec_user("1000:1000", None, None).gid == 1000
    with pytest.raises(UserLookupError):
        get_exec_user("postgres", None, None)


def test_additional_groups():
    assert get_additional_groups(["staff", "5", "777", "tty", "50"], GROUP) == [50, 5, 777]
    assert get_additional_groups(["777"], None) == [777]


def test_lookup_gives_process_user(rootfs):
    assert lookup(str(rootfs), "") == {"uid": 0, "gid": 0, "additionalGids": [0, 10]}
    assert lookup(str(rootfs), "www-data", ["tty", "1001"]) == {
        "uid": 33, "gid": 33, "additionalGids": [33, 50, 5, 1001]}


def test_symlinks_stay_inside_the_root(rootfs, tmp_path):
    # a host file the container must never see
    (tmp_path / "host-passwd").write_text("evil:x:0:0::/:/bin/sh\n")
    os.unlink(rootfs / "etc/passwd")
    (rootfs / "real").mkdir()
    (rootfs / "real/passwd").write_text("app:x:1000:1000::/app:/bin/sh\n")
    # absolute, and relative with more ".." than there are levels
    os.symlink(str(tmp_path / "host-passwd"), rootfs / "etc/passwd")
    assert read_file_in_root(str(rootfs), "/etc/passwd") is None
    with pytest.raises(UserLookupError):
        lookup(str(rootfs), "evil")
    os.unlink(rootfs / "etc/passwd")
    os.symlink("../../../../../../host-passwd", rootfs / "etc/passwd")
    assert read_file_in_root(str(rootfs), "/etc/passwd") is None
    os.unlink(rootfs / "etc/passwd")
    # an absolute link is resolved against the rootfs
    os.symlink("/real/passwd", rootfs / "etc/passwd")
    assert lookup(str(rootfs), "app")["uid"] == 1000
    # a directory link pointing out of the root is re-rooted too
    os.unlink(rootfs / "etc/passwd")
    (rootfs / "etc/passwd").write_text(PASSWD)
    os.rename(rootfs / "etc", rootfs / "etc.real")
    os.symlink("/../../etc.real", rootfs / "etc")
    assert lookup(str(rootfs), "www-data")["uid"] == 33


def test_link_loops_and_special_files(rootfs):
    os.unlink(rootfs / "etc/passwd")
    os.symlink("passwd", rootfs / "etc/passwd")
    with pytest.raises(OSError):
        os.close(open_in_root(str(rootfs), "/etc/passwd"))
    assert read_file_in_root(str(rootfs), "/etc/passwd") is None
    os.unlink(rootfs / "etc/passwd")
    os.mkfifo(rootfs / "etc/passwd")           # would block a naive reader
    assert read_file_in_root(str(rootfs), "/etc/passwd") is None
    assert lookup(str(rootfs), "0:0") == {"uid": 0, "gid": 0, "additionalGids": [0]}
