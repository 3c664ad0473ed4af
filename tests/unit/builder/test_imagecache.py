"""Finding a step in the image store (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.builder.imagecache import compare, newest_match


@dataclass
class FakeImage:
    config: dict
    created_ns: int


BASE = {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh", "-c", "#(nop) ", "ENV A=1"],
        "Labels": {"a": "1"}, "ExposedPorts": {"80/tcp": {}}, "WorkingDir": "/app",
        "Healthcheck": {"Test": ["CMD", "true"], "Interval": 5}}


def test_compare_fields_that_make_the_key():
    assert compare(BASE, dict(BASE))
    assert not compare(BASE, None)
    for key, value in (("Cmd", ["/bin/sh", "-c", "#(nop) ", "ENV A=2"]), ("Env", []),
                       ("Labels", {"a": "2"}), ("ExposedPorts", {"81/tcp": {}}),
                       ("WorkingDir", "/"), ("User", "1"), ("Healthcheck", None),
                       ("Entrypoint", ["x"]), ("OnBuild", ["RUN x"])):
        assert not compare(BASE, {**BASE, key: value}), key
    assert compare({**BASE, "Hostname": "abc", "Image": "x"}, BASE)  # not part of the key
    assert compare({**BASE, "Labels": None}, {**BASE, "Labels": {}})


def test_newest_match_wins():
    older = FakeImage({"os": "linux", "container_config": BASE}, 1)
    newer = FakeImage({"os": "linux", "container_config": BASE}, 2)
    other = FakeImage({"os": "linux", "container_config": {**BASE, "Cmd": []}}, 3)
    no_platform = FakeImage({"container_config": BASE}, 4)
    assert newest_match([older, newer, other, no_platform], BASE) is newer
    assert newest_match([other], BASE) is None
