"""The image service on a real store in a temp directory, without a daemon:
filters, prune, rmi reports, tags, and the list cache."""

import io
import json
import tarfile

import pytest

from dockyard import errdefs
from dockyard.daemon.filtering import bool_filter
from dockyard.daemon.images import ImageService, PatternError, path_match
from dockyard.image.store import AMBIGUOUS_TAG
from dockyard.store.layout import Layout
from dockyard.timefilter import TimeError


def rootfs(*files: tuple[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.fixture
def svc(tmp_path):
    layout = Layout(str(tmp_path / "root"))
    layout.create()
    return ImageService(layout)


def imp(svc, data, repo="", tag="", changes=()):
    return svc.import_(io.BytesIO(data), repo, tag, list(changes), "")


def image_ids(svc):
    return {i.id for i in svc.images}


# -- Go's path.Match (reference= patterns) ----------------------------------------

@pytest.mark.parametrize("pattern, name, matched", [
    ("busybox", "busybox", True), ("bb:*", "bb:latest", True), ("*", "a/b", False),
    ("fixture/*:1.0", "fixture/layers:1.0", True), ("a?c", "abc", True), ("a?c", "a/c", False),
    ("[a-c]b", "bb", True), ("[^a-c]b", "bb", False), ("[!a]", "!", True), ("\\*", "*", True),
    ("*x", "abx", True), ("*/x", "a/x", True), ("a*b*c", "aXbYc", True), ("a*", "a/b", False),
])
def test_path_match(pattern, name, matched):
    assert path_match(pattern, name) is matched


@pytest.mark.parametrize("pattern", ["[", "a[", "[]", "[a-", "a\\", "[x-]", "*[", "nomatch["])
def test_path_match_bad_patterns(pattern):
    with pytest.raises(PatternError) as e:
        path_match(pattern, "busybox")
    assert str(e.value) == "syntax error in pattern"


def test_bool_filter():
    assert bool_filter({}, "dangling", True) is True
    assert bool_filter({"dangling": ["1"]}, "dangling", None) is True
    assert bool_filter({"dangling": ["false"]}, "dangling", True) is False
    for values, shown in ((["maybe"], "[maybe]"), (["true", "0"], "[true 0]"), ([], None)):
        with pytest.raises(errdefs.InvalidParameter) as e:
            bool_filter({"dangling": values}, "dangling", True)
        assert str(e.value) == ("Invalid filter 'dangling'" if shown is None
                                else f"Invalid filter 'dangling={shown}'")


# -- prune --------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["maybe", "yes", "TRUE", "2", ""])
def test_prune_with_a_bad_dangling_value_deletes_nothing(svc, value):
    imp(svc, rootfs(("a", b"1")), "keep", "1")
    imp(svc, rootfs(("b", b"2")))
    before = image_ids(svc)
    with pytest.raises(errdefs.InvalidParameter) as e:
        svc.prune({"dangling": [value]})
    assert str(e.value) == f"Invalid filter 'dangling=[{value}]'"
    assert image_ids(svc) == before
    with pytest.raises(errdefs.InvalidParameter) as e:
        svc.list({"dangling": [value]})
    assert str(e.value) == f"Invalid filter 'dangling=[{value}]'"


def test_unknown_filters_are_refused_in_dockerds_words(svc):
    for call in (svc.list, svc.prune):
        with pytest.raises(errdefs.InvalidParameter) as e:
            call({"bogus": ["x"]})
        assert str(e.value) == "Invalid filter 'bogus'"


def test_prune_until_durations_times_and_garbage(svc):
    imp(svc, rootfs(("a", b"1")), "tagged", "1")
    dangling = imp(svc, rootfs(("b", b"2")))
    # created just now: "older than 1h" keeps both
    assert svc.prune({"dangling": ["false"], "until": ["1h"]}) == {
        "ImagesDeleted": None, "SpaceReclaimed": 0}
    assert svc.prune({"until": ["2000-01-01T00:00:00Z"]})["ImagesDeleted"] is None
    for bad, message in (("garbage", 'failed to parse value as time or duration: "garbage"'),
                         ("2023-13-01", 'parsing time "2023-13-01": month out of range')):
        with pytest.raises(TimeError) as e:
            svc.prune({"until": [bad]})  # refused even with nothing to prune
        assert str(e.value) == message
    with pytest.raises(TimeError) as e:
        svc.prune({"until": ["1h", "2h"]})
    assert str(e.value) == "more than one until filter specified"
    # a duration in the future ("-1h") takes everything created before it
    result = svc.prune({"until": ["-1h"]})
    assert {"Deleted": dangling.id} in result["ImagesDeleted"]
    assert len(svc.images) == 1


def test_prune_reports_freed_layers_and_counts_shared_ones_once(svc):
    data = rootfs(("big", b"x" * 10_000))
    one = imp(svc, data, changes=["ENV A=1"])
    two = imp(svc, data, changes=["ENV A=2"])
    layer = one.chain_ids[-1]
    assert two.chain_ids == one.chain_ids
    result = svc.prune({})
    deleted = [d["Deleted"] for d in result["ImagesDeleted"]]
    # the layer is freed (and listed, once) with the second image
    assert sorted(deleted[:2]) == sorted([one.id, two.id]) and deleted[2:] == [layer]
    assert result["SpaceReclaimed"] == 10_000


def test_prune_counts_nothing_for_layers_still_used(svc):
    data = rootfs(("big", b"x" * 10_000))
    imp(svc, data, "kept", "1")
    imp(svc, data, changes=["ENV A=1"])
    result = svc.prune({})
    assert [list(d) for d in result["ImagesDeleted"]] == [["Deleted"]]
    assert result["SpaceReclaimed"] == 0


# -- rmi ------------------------------------------------------------------------------

def test_rmi_lists_the_layers_it_freed(svc):
    data = rootfs(("f", b"data"))
    image = imp(svc, data, "one", "1")
    imp(svc, data, "two", "1", changes=["ENV X=1"])
    assert svc.delete("one:1") == [{"Untagged": "one:1"}, {"Deleted": image.id}]
    other = svc.get("two:1")
    assert svc.delete("two:1") == [{"Untagged": "two:1"}, {"Deleted": other.id},
                                   {"Deleted": other.chain_ids[-1]}]
    assert list(svc.layers) == []


# -- list -----------------------------------------------------------------------------

def test_reference_filter_shows_only_the_matching_tags(svc):
    image = imp(svc, rootfs(("f", b"1")), "bb", "latest")
    for repo, tag in (("bb", "x"), ("a/b/c", "1"), ("busybox", "local"),
                      ("localhost:5000/x", "y")):
        svc.tag(image.id, repo, tag)

    def tags(patterns):
        return [i["RepoTags"] for i in svc.list({"reference": patterns})]

    assert tags(["bb:*"]) == [["bb:latest", "bb:x"]]
    assert tags(["bb"]) == [["bb:latest", "bb:x"]]
    assert tags(["busybox", "a/*/*"]) == [["a/b/c:1", "busybox:local"]]
    assert tags(["nothing"]) == []
    assert [i["RepoTags"] for i in svc.list({})] == [
        ["a/b/c:1", "bb:latest", "bb:x", "busybox:local", "localhost:5000/x:y"]]
    with pytest.raises(PatternError):
        svc.list({"reference": ["["]})


def test_list_is_cached_and_follows_changes(svc):
    image = imp(svc, rootfs(("f", b"1")), "a", "1")
    assert [i["RepoTags"] for i in svc.list({})] == [["a:1"]]
    svc.tag("a:1", "b", "2")
    assert [i["RepoTags"] for i in svc.list({})] == [["a:1", "b:2"]]
    svc.delete("a:1")
    assert [i["RepoTags"] for i in svc.list({})] == [["b:2"]]
    assert svc.list({})[0]["Size"] == 1
    svc.delete("b:2")
    assert svc.list({}) == [] and image.id not in svc._sizes


# -- tag --------------------------------------------------------------------------------

@pytest.mark.parametrize("repo, tag", [("sha256", "a" * 64), ("sha256", "latest"),
                                       ("sha256:abc", ""), ("docker.io/library/sha256", "x")])
def test_tags_named_like_a_digest_are_refused(svc, repo, tag):
    image = imp(svc, rootfs(("f", b"1")), "a", "1")
    with pytest.raises(errdefs.InvalidParameter) as e:
        svc.tag(image.id, repo, tag)
    assert str(e.value) == AMBIGUOUS_TAG
    assert svc.images.repo_tags(image.id) == ["a:1"]


def test_tag_errors(svc):
    imp(svc, rootfs(("f", b"1")), "a", "1")
    with pytest.raises(errdefs.InvalidParameter) as e:
        svc.tag("a:1", "", "")
    assert str(e.value) == "invalid reference format"
    with pytest.raises(errdefs.NotFound):
        svc.tag("nothere", "", "")  # the image is looked up first, as dockerd does
    svc.tag("a:1", "x@sha256:" + "a" * 64, "t")  # the tag replaces the digest
    assert svc.images.repo_tags(svc.get("a:1").id) == ["a:1", "x:t"]


# -- import -----------------------------------------------------------------------------

def test_import_refusals_store_nothing(svc):
    data = rootfs(("f", b"1"))
    cases = [(dict(platform="windows/amd64"), "operating system is not supported"),
             (dict(repo="x@sha256:" + "a" * 64), "cannot import digest reference"),
             (dict(repo="sha256", tag="x"), AMBIGUOUS_TAG),
             (dict(changes=["HEALTHCHECK CMD"]), "Missing command after HEALTHCHECK CMD")]
    for kw, message in cases:
        with pytest.raises(errdefs.InvalidParameter) as e:
            svc.import_(io.BytesIO(data), kw.get("repo", ""), kw.get("tag", ""),
                        kw.get("changes", []), "", kw.get("platform", ""))
        assert str(e.value) == message
    assert len(svc.images) == 0 and list(svc.layers) == []
    assert imp(svc, data).id  # linux, or an architecture alone, is fine
    svc.import_(io.BytesIO(data), "", "", [], "", "arm64")


@pytest.mark.parametrize("data, message", [
    (b"this is not a tar archive" * 100,
     "Error processing tar file(exit status 1): archive/tar: invalid tar header"),
    (b"not a tar", "Error processing tar file(exit status 1): unexpected EOF"),
])
def test_import_of_garbage_in_dockerds_words(svc, data, message):
    with pytest.raises(errdefs.InvalidParameter) as e:
        imp(svc, data)
    assert str(e.value) == message
    assert len(svc.images) == 0


def test_import_healthcheck_lands_in_the_config(svc):
    image = imp(svc, rootfs(("f", b"1")), changes=["HEALTHCHECK --interval=5s CMD true"])
    assert svc.inspect(image.id)["Config"]["Healthcheck"] == {
        "Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000}


# -- save -------------------------------------------------------------------------------

def test_save_writes_repositories_like_docker_25(svc):
    image = imp(svc, rootfs(("f", b"1")), "fixture/layers", "1.0")
    svc.tag(image.id, "other", "x")
    untagged = imp(svc, rootfs(("g", b"2")))
    out = io.BytesIO()
    svc.save(svc.resolve_for_save(["fixture/layers:1.0", "other", untagged.id]), out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        names = tar.getnames()
        repositories = tar.extractfile("repositories").read()
        config = tar.getmember("blobs/sha256/" + image.id[7:])
    top = image.diff_ids[-1][7:]
    assert json.loads(repositories) == {"fixture/layers": {"1.0": top}, "other": {"x": top}}
    assert repositories.endswith(b"}\n")
    assert names[-4:] == ["index.json", "manifest.json", "oci-layout", "repositories"]
    assert config.mtime == image.created_ns // 10**9


def test_save_name_errors(svc):
    imp(svc, rootfs(("f", b"1")), "a", "1")
    with pytest.raises(errdefs.NotFound) as e:
        svc.resolve_for_save(["a:2"])
    assert str(e.value) == "reference does not exist"
    with pytest.raises(errdefs.NotFound) as e:
        svc.resolve_for_save(["nothere"])
    assert str(e.value) == "No such image: nothere"
