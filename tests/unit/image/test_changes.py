"""`--change` instructions applied to an image config."""

import pytest

from dockyard import errdefs
from dockyard.image.changes import apply
from dockyard.image.config import container_config


def test_each_instruction():
    cfg = apply({}, ['CMD ["sh", "-c", "echo hi"]', "ENTRYPOINT /bin/init", "ENV A=1 B=\"two words\"",
                     "ENV C 3", "LABEL a=b c=\"d e\"", "EXPOSE 80 53/udp", "VOLUME /data /logs",
                     "WORKDIR /srv", "WORKDIR app", "USER nobody", "STOPSIGNAL SIGINT",
                     "ONBUILD RUN true"])
    assert cfg["Cmd"] == ["sh", "-c", "echo hi"]
    assert cfg["Entrypoint"] == ["/bin/sh", "-c", "/bin/init"]
    assert cfg["Env"] == ["A=1", "B=two words", "C=3"]
    assert cfg["Labels"] == {"a": "b", "c": "d e"}
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert cfg["Volumes"] == {"/data": {}, "/logs": {}}
    assert cfg["WorkingDir"] == "/srv/app"
    assert (cfg["User"], cfg["StopSignal"], cfg["OnBuild"]) == ("nobody", "SIGINT", ["RUN true"])


def test_env_replaces_existing_key():
    assert apply({"Env": ["PATH=/bin", "A=1"]}, ["ENV A=2"])["Env"] == ["PATH=/bin", "A=2"]


@pytest.mark.parametrize("line, message", [
    ("RUN true", "RUN is not a valid change command"),
    ("FROM x", "FROM is not a valid change command"),
    ("ENV", "ENV requires at least one argument"),
])
def test_refused_changes(line, message):
    with pytest.raises(errdefs.InvalidParameter) as e:
        apply({}, [line])
    assert str(e.value) == message


def test_container_config_shape():
    cfg = container_config({"Cmd": ["sh"]})
    assert list(cfg)[:3] == ["Hostname", "Domainname", "User"]
    assert cfg["Cmd"] == ["sh"] and cfg["Image"] == "" and cfg["OnBuild"] is None
    assert "Healthcheck" not in cfg and "StopSignal" not in cfg
