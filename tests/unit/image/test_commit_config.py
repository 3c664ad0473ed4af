"""The config of a committed image (image/commit.py) and the change
instructions it takes (image/changes.py)."""

from __future__ import annotations

import pytest

from dockyard import errdefs
from dockyard.image import changes
from dockyard.image.commit import EMPTY_LAYER, child_config, merge

CONTAINER = {"Cmd": ["sh", "-c", "echo hi"], "Env": ["PATH=/bin", "A=1"], "User": "app",
             "Labels": {"l": "1"}, "WorkingDir": "/w", "Volumes": {"/v": {}},
             "ExposedPorts": {"80/tcp": {}}, "Image": "busybox"}


def test_merge_fills_what_the_commit_config_leaves_empty():
    out = merge({"Env": ["A=2"], "Labels": {"m": "2"}, "ExposedPorts": {"81/tcp": {}}},
                CONTAINER)
    assert out["Env"] == ["A=2", "PATH=/bin"]
    assert out["Labels"] == {"m": "2", "l": "1"}
    assert out["ExposedPorts"] == {"81/tcp": {}, "80/tcp": {}}
    assert (out["User"], out["WorkingDir"], out["Cmd"]) == ("app", "/w", ["sh", "-c", "echo hi"])
    assert merge({"Entrypoint": ["/x"]}, CONTAINER).get("Cmd") is None  # no Cmd joins an entrypoint


def test_child_config():
    parent = {"architecture": "arm64", "variant": "v8", "rootfs": {"diff_ids": ["sha256:a"]},
              "history": [{"created": "t0"}]}
    cfg = child_config(parent, "sha256:b", {"Cmd": ["true"]}, "cid", CONTAINER, "me", "msg",
                       created="t1")
    assert list(cfg) == sorted(cfg)  # moby marshals the image through a map
    assert cfg["rootfs"] == {"type": "layers", "diff_ids": ["sha256:a", "sha256:b"]}
    assert cfg["history"][-1] == {"created": "t1", "author": "me",
                                  "created_by": "sh -c echo hi", "comment": "msg"}
    assert (cfg["architecture"], cfg["variant"], cfg["container"]) == ("arm64", "v8", "cid")
    assert cfg["container_config"]["Cmd"] == CONTAINER["Cmd"]
    assert cfg["config"]["Cmd"] == ["true"] and cfg["config"]["Hostname"] == ""
    empty = child_config(parent, EMPTY_LAYER, {}, "cid", CONTAINER, "", "", created="t2")
    assert empty["rootfs"]["diff_ids"] == ["sha256:a"]
    assert empty["history"][-1] == {"created": "t2", "created_by": "sh -c echo hi",
                                    "empty_layer": True}
    assert "author" not in empty and "comment" not in empty


def test_change_instructions():
    cfg = changes.apply({}, ['CMD ["a", "b"]', "ENV K=V", "EXPOSE 53/udp 80",
                             "ONBUILD RUN x", "USER u:g", "VOLUME /a /b", "WORKDIR rel"])
    assert cfg["Cmd"] == ["a", "b"] and cfg["Env"] == ["K=V"]
    assert cfg["ExposedPorts"] == {"53/udp": {}, "80/tcp": {}}
    assert cfg["OnBuild"] == ["RUN x"] and cfg["User"] == "u:g"
    assert cfg["Volumes"] == {"/a": {}, "/b": {}} and cfg["WorkingDir"] == "/rel"
    # STOPSIGNAL is understood (for a builder) but not a change command of API 1.41
    with pytest.raises(errdefs.InvalidParameter, match="stopsignal is not a valid change"):
        changes.apply({}, ["STOPSIGNAL SIGINT"])
    builder = changes.ALLOWED + ("stopsignal",)
    assert changes.apply({}, ["STOPSIGNAL SIGINT"], builder)["StopSignal"] == "SIGINT"
