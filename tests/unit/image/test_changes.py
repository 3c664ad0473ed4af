"""`--change` instructions applied to an image config, as dockerd 20.10 applies them."""

import pytest

from dockyard import errdefs
from dockyard.image.changes import apply
from dockyard.image.config import container_config


def test_each_instruction():
    cfg = apply({}, ['CMD ["sh", "-c", "echo hi"]', "ENTRYPOINT /bin/init", "ENV A=1 B=\"two words\"",
                     "ENV C 3", "LABEL a=b c=\"d e\"", "EXPOSE 80 53/udp", "VOLUME /data /logs",
                     "WORKDIR /srv", "WORKDIR app", "USER nobody", "ONBUILD RUN true"])
    assert cfg["Cmd"] == ["sh", "-c", "echo hi"]
    assert cfg["Entrypoint"] == ["/bin/sh", "-c", "/bin/init"]
    assert cfg["Env"] == ["A=1", "B=two words", "C=3"]
    assert cfg["Labels"] == {"a": "b", "c": "d e"}
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert cfg["Volumes"] == {"/data": {}, "/logs": {}}
    assert cfg["WorkingDir"] == "/srv/app"
    assert (cfg["User"], cfg["OnBuild"]) == ("nobody", ["RUN true"])


def test_instruction_names_are_case_insensitive():
    assert apply({}, ["cmd true", "Healthcheck NONE"]) == {
        "Cmd": ["/bin/sh", "-c", "true"], "Healthcheck": {"Test": ["NONE"]}}


def test_env_replaces_existing_key():
    assert apply({"Env": ["PATH=/bin", "A=1"]}, ["ENV A=2"])["Env"] == ["PATH=/bin", "A=2"]


@pytest.mark.parametrize("line, healthcheck", [
    # the findings' case: dockerd turns a shell command into CMD-SHELL
    ("HEALTHCHECK CMD true", {"Test": ["CMD-SHELL", "true"]}),
    ('HEALTHCHECK CMD ["curl", "-f", "http://localhost/"]',
     {"Test": ["CMD", "curl", "-f", "http://localhost/"]}),
    ("HEALTHCHECK --interval=30s --timeout=5s --start-period=1m30s --retries=3 "
     "CMD wget -q -O- localhost || exit 1",
     {"Test": ["CMD-SHELL", "wget -q -O- localhost || exit 1"], "Interval": 30_000_000_000,
      "Timeout": 5_000_000_000, "StartPeriod": 90_000_000_000, "Retries": 3}),
    ("HEALTHCHECK --interval=1.5ms CMD x", {"Test": ["CMD-SHELL", "x"], "Interval": 1_500_000}),
    ("healthcheck none", {"Test": ["NONE"]}),
    ("HEALTHCHECK --interval=5s NONE", {"Test": ["NONE"]}),  # NONE reads no flags
])
def test_healthcheck(line, healthcheck):
    cfg = apply({}, [line])
    assert cfg["Healthcheck"] == healthcheck
    assert container_config(cfg)["Healthcheck"] == healthcheck


def test_healthcheck_replaces_the_previous_one():
    cfg = apply({}, ["HEALTHCHECK --retries=2 CMD a", "HEALTHCHECK CMD b"])
    assert cfg["Healthcheck"] == {"Test": ["CMD-SHELL", "b"]}


@pytest.mark.parametrize("line, message", [
    # dockerd's parser lowercases instruction names before it checks them
    ("RUN true", "run is not a valid change command"),
    ("FROM x", "from is not a valid change command"),
    ("bogus", "bogus is not a valid change command"),
    # STOPSIGNAL is a change command only from moby 22.06 (API 1.42) on
    ("STOPSIGNAL SIGTERM", "stopsignal is not a valid change command"),
    ("ENV", "ENV requires at least one argument"),
    ("ENV C", "ENV must have two arguments"),
    ("ENV a=1 b", "Syntax error - can't find = in \"b\". Must be of the form: name=value"),
    ("CMD --help", "Unknown flag: help"),
    ('CMD ["a", 1]', "when using JSON array syntax, arrays must be comprised of strings only"),
    ("HEALTHCHECK", "HEALTHCHECK requires at least one argument"),
    ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
    ("HEALTHCHECK CMD []", "Missing command after HEALTHCHECK CMD"),
    ("HEALTHCHECK RUN x", 'Unknown type "RUN" in HEALTHCHECK (try CMD)'),
    ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
    ("HEALTHCHECK --interval=0s CMD x", 'Interval "interval" cannot be less than 1ms'),
    ("HEALTHCHECK --timeout=-1s CMD x", 'Interval "timeout" cannot be less than 1ms'),
    ("HEALTHCHECK --interval=10 CMD x", 'time: missing unit in duration "10"'),
    ("HEALTHCHECK --start-period=soon CMD x", 'time: invalid duration "soon"'),
    ("HEALTHCHECK --retries=0 CMD x", "--retries must be at least 1 (not 0)"),
    ("HEALTHCHECK --retries=x CMD x", 'strconv.ParseInt: parsing "x": invalid syntax'),
    ("HEALTHCHECK --interval CMD x", "Missing a value on flag: interval"),
    ("HEALTHCHECK --interval=1s --interval=2s CMD x", "Duplicate flag specified: interval"),
    ("HEALTHCHECK --port=80 CMD x", "Unknown flag: port"),
])
def test_refused_changes(line, message):
    with pytest.raises(errdefs.InvalidParameter) as e:
        apply({}, [line])
    assert str(e.value) == message


def test_every_change_is_checked_before_any_applies():
    # dockerd names the invalid instruction even when an earlier one is malformed
    with pytest.raises(errdefs.InvalidParameter) as e:
        apply({}, ["HEALTHCHECK CMD", "RUN x"])
    assert str(e.value) == "run is not a valid change command"


def test_dockerfile_syntax_between_changes():
    cfg = apply({}, ["# a comment", "", "ENV A=1 \\\n  B=2", "USER a\nWORKDIR /w"])
    assert (cfg["Env"], cfg["User"], cfg["WorkingDir"]) == (["A=1", "B=2"], "a", "/w")


def test_container_config_shape():
    cfg = container_config({"Cmd": ["sh"]})
    assert list(cfg)[:3] == ["Hostname", "Domainname", "User"]
    assert cfg["Cmd"] == ["sh"] and cfg["Image"] == "" and cfg["OnBuild"] is None
    assert "Healthcheck" not in cfg and "StopSignal" not in cfg
