"""The .dockerignore rules: moby/patternmatcher's tests (patternmatcher_test.go
and ignorefile_test.go, v0.6.1), the docker CLI's (cli/command/image/build),
and moby's integration tests of .dockerignore in `docker build`
(integration-cli/docker_cli_build_test.go), run on the archive the CLI would
send and the files the daemon then removes.

Not ported: patternmatcher's MatchesUsingParentResult (singular), deprecated
and used by neither the CLI nor the daemon; and the Windows half of its
TestCompile, which compiles patterns with "\\" as the path separator, while
dockyard's builder runs on Linux only."""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

import pytest

from dockyard.builder.dockerignore import (
    BAD_PATTERN, ContextExcludes, MatchType, PatternError, PatternMatcher,
    build_files_to_remove, matches, matches_or_parent_matches, parse_dockerignore,
    read_dockerignore, trim_build_files_from_excludes, walk_context)

# -- patternmatcher_test.go -----------------------------------------------------------


def test_wildcard_matches():
    assert matches("fileutils.go", ["*"])


def test_pattern_matches():
    assert matches("fileutils.go", ["*.go"])


def test_exclusion_pattern_matches_pattern_before():
    assert matches("fileutils.go", ["!fileutils.go", "*.go"])


@pytest.mark.parametrize("patterns", [
    ["docs", "!docs/README.md"],
    ["docs/", "!docs/README.md"],
    ["docs/*", "!docs/README.md"],
])
def test_pattern_matches_folder_exclusions(patterns):
    assert not matches("docs/README.md", patterns)


def test_exclusion_pattern_matches_pattern_after():
    assert not matches("fileutils.go", ["*.go", "!fileutils.go"])


def test_exclusion_pattern_matches_whole_directory():
    assert not matches(".", ["*.go"])


def test_single_exclamation_error():
    with pytest.raises(PatternError, match='^illegal exclusion pattern: "!"$'):
        matches("fileutils.go", ["!"])


def test_matches_with_no_patterns():
    assert not matches("/any/path/there", [])


def test_matches_with_malformed_patterns():
    with pytest.raises(PatternError, match=f"^{BAD_PATTERN}$"):
        matches("/any/path/there", ["["])


MATCHES_TESTS = [
    ("**", "file", True),
    ("**", "file/", True),
    ("**/", "file", True),           # weird one
    ("**/", "file/", True),
    ("**", "/", True),
    ("**/", "/", True),
    ("**", "dir/file", True),
    ("**/", "dir/file", True),
    ("**", "dir/file/", True),
    ("**/", "dir/file/", True),
    ("**/**", "dir/file", True),
    ("**/**", "dir/file/", True),
    ("dir/**", "dir/file", True),
    ("dir/**", "dir/file/", True),
    ("dir/**", "dir/dir2/file", True),
    ("dir/**", "dir/dir2/file/", True),
    ("**/dir", "dir", True),
    ("**/dir", "dir/file", True),
    ("**/dir2/*", "dir/dir2/file", True),
    ("**/dir2/*", "dir/dir2/file/", True),
    ("**/dir2/**", "dir/dir2/dir3/file", True),
    ("**/dir2/**", "dir/dir2/dir3/file/", True),
    ("**file", "file", True),
    ("**file", "dir/file", True),
    ("**/file", "dir/file", True),
    ("**file", "dir/dir/file", True),
    ("**/file", "dir/dir/file", True),
    ("**/file*", "dir/dir/file", True),
    ("**/file*", "dir/dir/file.txt", True),
    ("**/file*txt", "dir/dir/file.txt", True),
    ("**/file*.txt", "dir/dir/file.txt", True),
    ("**/file*.txt*", "dir/dir/file.txt", True),
    ("**/**/*.txt", "dir/dir/file.txt", True),
    ("**/**/*.txt2", "dir/dir/file.txt", False),
    ("**/*.txt", "file.txt", True),
    ("**/**/*.txt", "file.txt", True),
    ("a**/*.txt", "a/file.txt", True),
    ("a**/*.txt", "a/dir/file.txt", True),
    ("a**/*.txt", "a/dir/dir/file.txt", True),
    ("a/*.txt", "a/dir/file.txt", False),
    ("a/*.txt", "a/file.txt", True),
    ("a/*.txt**", "a/file.txt", True),
    ("a[b-d]e", "ae", False),
    ("a[b-d]e", "ace", True),
    ("a[b-d]e", "aae", False),
    ("a[^b-d]e", "aze", True),
    (".*", ".foo", True),
    (".*", "foo", False),
    ("abc.def", "abcdef", False),
    ("abc.def", "abc.def", True),
    ("abc.def", "abcZdef", False),
    ("abc?def", "abcZdef", True),
    ("abc?def", "abcdef", False),
    ("a\\\\", "a\\", True),
    ("**/foo/bar", "foo/bar", True),
    ("**/foo/bar", "dir/foo/bar", True),
    ("**/foo/bar", "dir/dir2/foo/bar", True),
    ("abc/**", "abc", False),
    ("abc/**", "abc/def", True),
    ("abc/**", "abc/def/ghi", True),
    ("**/.foo", ".foo", True),
    ("**/.foo", "bar.foo", False),
    ("a(b)c/def", "a(b)c/def", True),
    ("a(b)c/def", "a(b)c/xyz", False),
    ("a.|)$(}+{bc", "a.|)$(}+{bc", True),
    ("dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
     "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    ("a\\*b", "a*b", True),          # not on Windows, where "\\" separates
]
MULTI_PATTERN_TESTS = [
    (["**", "!util/docker/web"], "util/docker/web/foo", False),
    (["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", True),
    (["**", "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"],
     "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", False),
    (["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", False),
]
ALL_MATCHES_TESTS = ([([p], text, result) for p, text, result in MATCHES_TESTS]
                     + MULTI_PATTERN_TESTS)


@pytest.mark.parametrize("patterns,text,result", ALL_MATCHES_TESTS)
def test_matches_or_parent_matches(patterns, text, result):
    assert PatternMatcher(patterns).matches_or_parent_matches(text) is result


@pytest.mark.parametrize("patterns,text,result", ALL_MATCHES_TESTS)
def test_matches_using_parent_results(patterns, text, result):
    # the parents as patternmatcher's test walks them: those of Go's path.Dir
    matcher = PatternMatcher(patterns)
    parent = posixpath.dirname(text) or "."
    info = ()
    if parent != ".":
        dirs = parent.split("/")
        for n in range(1, len(dirs) + 1):
            _, info = matcher.matches_using_parent_results("/".join(dirs[:n]), info)
    assert matcher.matches_using_parent_results(text, info)[0] is result


@pytest.mark.parametrize("patterns,text,result", ALL_MATCHES_TESTS)
def test_matches_using_parent_results_no_context(patterns, text, result):
    assert PatternMatcher(patterns).matches_using_parent_results(text)[0] is result


def test_parent_results_must_have_one_value_a_pattern():
    with pytest.raises(PatternError, match="^wrong number of values in parentMatched$"):
        PatternMatcher(["a", "b"]).matches_using_parent_results("a/b", (True,))


def test_clean_patterns():
    assert len(PatternMatcher(["docs", "config"]).patterns) == 2


def test_clean_patterns_strip_empty_patterns():
    assert len(PatternMatcher(["docs", "config", ""]).patterns) == 2


@pytest.mark.parametrize("patterns", [
    ["docs", "!docs/README.md"],
    ["docs", "  !docs/README.md"],          # leading space trimmed
    ["docs", "!docs/README.md  "],          # trailing space trimmed
])
def test_clean_patterns_exception_flag(patterns):
    assert PatternMatcher(patterns).exclusions


def test_clean_patterns_error_single_exception():
    with pytest.raises(PatternError):
        PatternMatcher(["!"])


# Go's filepath.Match tests, as patternmatcher runs them through Matches:
# (pattern, name, matched, or BAD_PATTERN for an error).
MATCH_TESTS = [
    ("abc", "abc", True),
    ("*", "abc", True),
    ("*c", "abc", True),
    ("a*", "a", True),
    ("a*", "abc", True),
    ("a*", "ab/c", True),
    ("a*/b", "abc/b", True),
    ("a*/b", "a/c/b", False),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False),
    ("a*b?c*x", "abxbbxdbxebxczzx", True),
    ("a*b?c*x", "abxbbxdbxebxczzy", False),
    ("ab[c]", "abc", True),
    ("ab[b-d]", "abc", True),
    ("ab[e-g]", "abc", False),
    ("ab[^c]", "abc", False),
    ("ab[^b-d]", "abc", False),
    ("ab[^e-g]", "abc", True),
    ("a\\*b", "a*b", True),
    ("a\\*b", "ab", False),
    ("a?b", "a☺b", True),
    ("a[^a]b", "a☺b", True),
    ("a???b", "a☺b", False),
    ("a[^a][^a][^a]b", "a☺b", False),
    ("[a-ζ]*", "α", True),
    ("*[a-ζ]", "A", False),
    ("a?b", "a/b", False),
    ("a*b", "a/b", False),
    ("[\\]a]", "]", True),
    ("[\\-]", "-", True),
    ("[x\\-]", "x", True),
    ("[x\\-]", "-", True),
    ("[x\\-]", "z", False),
    ("[\\-x]", "x", True),
    ("[\\-x]", "-", True),
    ("[\\-x]", "a", False),
    ("[]a]", "]", BAD_PATTERN),
    ("[-]", "-", BAD_PATTERN),
    ("[x-]", "x", BAD_PATTERN),
    ("[x-]", "-", BAD_PATTERN),
    ("[x-]", "z", BAD_PATTERN),
    ("[-x]", "x", BAD_PATTERN),
    ("[-x]", "-", BAD_PATTERN),
    ("[-x]", "a", BAD_PATTERN),
    ("\\", "a", BAD_PATTERN),
    ("[a-b-c]", "a", BAD_PATTERN),
    ("[", "a", BAD_PATTERN),
    ("[^", "a", BAD_PATTERN),
    ("[^bc", "a", BAD_PATTERN),
    ("a[", "a", BAD_PATTERN),
    ("a[", "ab", BAD_PATTERN),
    ("*x", "xxx", True),
]


@pytest.mark.parametrize("pattern,name,result", MATCH_TESTS)
def test_match(pattern, name, result):
    if result == BAD_PATTERN:
        with pytest.raises(PatternError, match=f"^{BAD_PATTERN}$"):
            matches(name, [pattern])
    else:
        assert matches(name, [pattern]) is result


# (pattern, match type, Go's regexp for the "/" separator)
COMPILE_TESTS = [
    ("*", MatchType.REGEXP, "^[^/]*$"),
    ("file*", MatchType.REGEXP, "^file[^/]*$"),
    ("*file", MatchType.REGEXP, "^[^/]*file$"),
    ("a*/b", MatchType.REGEXP, "^a[^/]*/b$"),
    ("**", MatchType.SUFFIX, ""),
    ("**/**", MatchType.REGEXP, "^(.*/)?.*$"),
    ("dir/**", MatchType.PREFIX, ""),
    ("**/dir", MatchType.SUFFIX, ""),
    ("**/dir2/*", MatchType.REGEXP, "^(.*/)?dir2/[^/]*$"),
    ("**/dir2/**", MatchType.REGEXP, "^(.*/)?dir2/.*$"),
    ("**file", MatchType.SUFFIX, ""),
    ("**/file*txt", MatchType.REGEXP, "^(.*/)?file[^/]*txt$"),
    ("**/**/*.txt", MatchType.REGEXP, "^(.*/)?(.*/)?[^/]*\\.txt$"),
    ("a[b-d]e", MatchType.REGEXP, "^a[b-d]e$"),
    (".*", MatchType.REGEXP, "^\\.[^/]*$"),
    ("abc.def", MatchType.EXACT, ""),
    ("abc?def", MatchType.REGEXP, "^abc[^/]def$"),
    ("**/foo/bar", MatchType.SUFFIX, ""),
    ("a(b)c/def", MatchType.EXACT, ""),
    ("a.|)$(}+{bc", MatchType.EXACT, ""),
    ("dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", MatchType.EXACT, ""),
]


@pytest.mark.parametrize("pattern,match_type,regexp", COMPILE_TESTS)
def test_compile(pattern, match_type, regexp):
    compiled = PatternMatcher([pattern]).patterns[0]
    compiled.match("")
    assert compiled.match_type is match_type
    if match_type is MatchType.REGEXP:
        assert compiled.regexp_source == regexp


def test_a_refused_regexp_fails_every_match():
    # "[Local-Only]" passes filepath.Match's check, but l-O is a reversed range
    matcher = PatternMatcher(["[Local-Only]/"])
    for _ in range(2):
        with pytest.raises(PatternError, match=f"^{BAD_PATTERN}$"):
            matcher.matches_or_parent_matches("x")


# -- ignorefile_test.go ---------------------------------------------------------------

def test_read_all():
    assert parse_dockerignore("") == []
    content = ("test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n"
               "! /inverted/abs/path\n!\n! ")
    assert parse_dockerignore(content) == [
        "test1",
        "test2",          # /foo/bar is foo/bar, as docker's documentation says
        "a/file/here",
        "lastfile",
        "!inverted/abs/path",
        "!",
        "!",
    ]


@pytest.mark.parametrize("content,patterns", [
    (b"\xef\xbb\xbf./Dockerfile\n", ["Dockerfile"]),          # a BOM is dropped
    (b"a\n\xef\xbb\xbfb\n", ["a", "\ufeffb"]),                # only the first line's
    ("\ufeffa", ["a"]),
    (b"a\r\nb\r\n", ["a", "b"]),
    ("  # not a comment\n#a comment", ["# not a comment"]),
    ("dir1//foo\n./dir1/../foo2\n./foo\n", ["dir1/foo", "foo2", "foo"]),
    ("/\n//x\n!/\n", ["/", "x", "!/"]),
    ("a/b/  \n  c\t\n", ["a/b", "c"]),
    ("a\x1f\n", ["a\x1f"]),                                    # not a space to Go
    ("!  ./x/ ", ["!x"]),
    (b"caf\xe9", ["caf\udce9"]),                               # bytes that are not UTF-8
])
def test_parse_dockerignore(content, patterns):
    assert parse_dockerignore(content) == patterns


def test_read_dockerignore(tmp_path):
    assert read_dockerignore(str(tmp_path)) == []
    (tmp_path / ".dockerignore").write_bytes(b"*.md\n!README.md\n")
    assert read_dockerignore(str(tmp_path)) == ["*.md", "!README.md"]


# -- the CLI: cli/command/image/build/context_test.go --------------------------------

@pytest.mark.parametrize("patterns,file,result", [
    (["*"], "fileutils.go", True),
    (["*.go"], "fileutils.go", True),
    (["!fileutils.go", "*.go"], "fileutils.go", True),
    (["docs", "!docs/README.md"], "docs/README.md", False),
    (["docs/", "!docs/README.md"], "docs/README.md", False),
    (["docs/*", "!docs/README.md"], "docs/README.md", False),
    (["*.go", "!fileutils.go"], "fileutils.go", False),
    (["*.go"], ".", False),
    ([], "/any/path/there", False),
])
def test_cli_filepath_matches(patterns, file, result):
    assert matches_or_parent_matches(file, patterns) is result


# -- the parent directory rules ---------------------------------------------------------

def test_matches_checks_one_parent_as_deep_as_the_pattern():
    # the deprecated Matches, which the CLI still uses for the build files
    assert matches("dir/a/b", ["dir"])
    assert matches("x/b/c/d", ["*/b"])
    assert not matches("a/b/foo/c", ["**/foo"])
    assert matches_or_parent_matches("a/b/foo/c", ["**/foo"])


def test_an_exception_takes_back_a_file_of_an_excluded_directory():
    assert matches_or_parent_matches("docs/a/b.md", ["docs"])
    assert not matches_or_parent_matches("docs/a/b.md", ["docs", "!docs/a"])
    assert matches_or_parent_matches("docs/a/b.md", ["docs", "!docs/a", "**/*.md"])


def test_walk_results_differ_from_matching_alone():
    # A "!" pattern that comes after the file's own match is checked against
    # the parent only where the parent's results are unknown: the walk, which
    # knows that "a" did not match "!a" (nothing was excluded then), excludes
    # a/x; matches_or_parent_matches does not.
    patterns = ["a/x", "!a"]
    assert not matches_or_parent_matches("a/x", patterns)
    assert ContextExcludes(patterns).excluded("a/x")


# -- the build context ------------------------------------------------------------------

def make_context(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def archived(root: Path, dockerfile: str = "Dockerfile", stdin: bool = False) -> list[str]:
    """The paths in the archive the CLI sends (cli/command/image/build.go)."""
    excludes = read_dockerignore(str(root))
    excludes = trim_build_files_from_excludes(excludes, dockerfile, stdin)
    return list(walk_context(str(root), excludes))


def context_after_build(root: Path, dockerfile: str = "Dockerfile") -> set[str]:
    """What `COPY . /dst` sees in a classic build: the archive, less the
    build files the daemon removes once it has read the Dockerfile."""
    sent = archived(root, dockerfile)
    if ".dockerignore" not in sent:
        return set(sent)
    excludes = parse_dockerignore((root / ".dockerignore").read_bytes())
    removed = build_files_to_remove(excludes, dockerfile)
    return {p for p in sent if p not in removed}


def exists(paths: set[str], path: str) -> bool:
    return path in paths or any(p.startswith(path + "/") for p in paths)


def test_the_archive_of_a_plain_context(tmp_path):
    # TestRunBuildResetsUidAndGidInContext's headers: no .dockerignore
    make_context(tmp_path, {"foo": "some content", "Dockerfile": "FROM alpine\n"})
    assert archived(tmp_path) == ["Dockerfile", "foo"]


def test_build_dockerignore(tmp_path):
    make_context(tmp_path, {
        "Dockerfile": "FROM busybox\n", "Makefile": "all:", ".git/HEAD": "ref: foo",
        "src/x.go": "", "src/_vendor/v.go": "", "src/_vendor/v.cc": "", "src/v.cc": "",
        "v.cc": "", "dir/foo": "", ".gitignore": "", "README.md": "readme",
        ".dockerignore": "\n.git\npkg\n.gitignore\nsrc/_vendor\n*.md\n**/*.cc\ndir",
    })
    seen = context_after_build(tmp_path)
    assert "src/x.go" in seen and "Makefile" in seen
    for gone in ["src/_vendor", ".gitignore", "README.md", "dir/foo", "dir", ".git",
                 "v.cc", "src/v.cc", "src/_vendor/v.cc"]:
        assert not exists(seen, gone), gone


def test_build_dockerignore_clean_paths(tmp_path):
    make_context(tmp_path, {"Dockerfile": "", "foo": "", "foo2": "", "dir1/foo": "",
                            ".dockerignore": "./foo\ndir1//foo\n./dir1/../foo2"})
    seen = context_after_build(tmp_path)
    assert not exists(seen, "foo") and not exists(seen, "foo2")
    assert not exists(seen, "dir1/foo")


def test_build_dockerignore_exceptions(tmp_path):
    make_context(tmp_path, {
        "Dockerfile": "", "Makefile": "all:", ".git/HEAD": "ref: foo", "src/x.go": "",
        "src/_vendor/v.go": "", "dir/foo": "", "dir/foo1": "", "dir/dir/f1": "",
        "dir/dir/foo": "", "dir/e": "", "dir/e-dir/foo": "", ".gitignore": "",
        "README.md": "readme", "dir/a.cc": "hello",
        ".dockerignore": "\n.git\npkg\n.gitignore\nsrc/_vendor\n*.md\ndir\n!dir/e*\n"
                         "!dir/dir/foo\n**/*.cc\n!**/*.cc",
    })
    seen = context_after_build(tmp_path)
    for kept in ["src/x.go", "Makefile", "dir/dir/foo", "dir/e", "dir/e-dir/foo", "dir/a.cc"]:
        assert exists(seen, kept), kept
    for gone in ["src/_vendor", ".gitignore", "README.md", "dir/foo1", "dir/foo", ".git"]:
        assert not exists(seen, gone), gone
    # the excluded directories are entered for the files taken back, but are
    # not entries themselves; e-dir is taken back by !dir/e*, and is one
    assert "dir" not in seen and "dir/dir" not in seen and "dir/e-dir" in seen


@pytest.mark.parametrize("ignore", ["Dockerfile\n", "./Dockerfile\n"])
def test_build_dockerignoring_dockerfile(tmp_path, ignore):
    make_context(tmp_path, {"Dockerfile": "FROM busybox\n", ".dockerignore": ignore})
    assert archived(tmp_path) == [".dockerignore", "Dockerfile"]    # the daemon needs it
    assert context_after_build(tmp_path) == {".dockerignore"}


@pytest.mark.parametrize("ignore", ["MyDockerfile\n", "./MyDockerfile\n"])
def test_build_dockerignoring_renamed_dockerfile(tmp_path, ignore):
    make_context(tmp_path, {"Dockerfile": "Should not use me", "MyDockerfile": "FROM busybox\n",
                            ".dockerignore": ignore})
    assert context_after_build(tmp_path, "MyDockerfile") == {".dockerignore", "Dockerfile"}


def test_build_dockerignoring_dockerignore(tmp_path):
    make_context(tmp_path, {"Dockerfile": "FROM busybox\n", ".dockerignore": ".dockerignore\n"})
    assert archived(tmp_path) == [".dockerignore", "Dockerfile"]
    assert context_after_build(tmp_path) == {"Dockerfile"}


def test_build_dockerignoring_whole_dir(tmp_path):
    make_context(tmp_path, {"Dockerfile": "", ".dockerignore": "*\n", "Makefile": "all:",
                            ".gitignore": ""})
    assert context_after_build(tmp_path) == set()


def test_build_dockerignoring_only_dotfiles(tmp_path):
    make_context(tmp_path, {"Dockerfile": "", ".dockerignore": ".*", "Makefile": "all:",
                            ".gitignore": ""})
    assert context_after_build(tmp_path) == {"Dockerfile", "Makefile"}


def test_build_dockerignoring_bad_exclusion(tmp_path):
    make_context(tmp_path, {"Dockerfile": "", "Makefile": "all:", ".gitignore": "",
                            ".dockerignore": "!\n"})
    with pytest.raises(PatternError, match='^illegal exclusion pattern: "!"$'):
        archived(tmp_path)


@pytest.mark.parametrize("ignore", ["**", "**/", "**/**", "*"])
def test_build_dockerignoring_wild_top_dir(tmp_path, ignore):
    make_context(tmp_path, {"Dockerfile": "", "file1": "", "dir/file1": "",
                            ".dockerignore": ignore})
    assert archived(tmp_path) == [".dockerignore", "Dockerfile"]
    assert context_after_build(tmp_path) == set()


def test_build_dockerignoring_wild_dirs(tmp_path):
    files = ["dir1/file0", "dir1/dir2/file0", "file1", "dir1/file1", "dir1/dir2/file1",
             "dir1/file2", "dir1/dir2/file2", "dir1/dir2/file4", "dir1/dir2/file5",
             "dir1/dir2/file6", "dir1/dir3/file7", "dir1/dir3/file8", "dir1/dir4/file9",
             "dir1/dir5/fileAA", "dir1/dir5/fileAB", "dir1/dir5/fileB"]
    make_context(tmp_path, {"Dockerfile": "", **{f: "" for f in files}, ".dockerignore": """
**/file0
**/*file1
**/dir1/file2
dir1/**/file4
**/dir2/file5
**/dir1/dir2/file6
dir1/dir3/**
**/dir4/**
**/file?A
**/file\\?B
**/dir5/file.
"""})
    seen = context_after_build(tmp_path)
    for kept in ["Dockerfile", "dir1/dir2/file2", "dir1/dir3", "dir1/dir4",
                 "dir1/dir5/fileAB", "dir1/dir5/fileB"]:       # "." in a pattern is a "."
        assert exists(seen, kept), kept
    for gone in ["file0", "dir1/file0", "dir2/file0", "file1", "dir1/file1", "dir1/dir2/file1",
                 "dir1/file2", "dir1/dir2/file4", "dir1/dir2/file5", "dir1/dir2/file6",
                 "dir1/dir3/file7", "dir1/dir3/file8", "dir1/dir5/fileAA"]:
        assert not exists(seen, gone), gone


def test_build_dockerignore_comment(tmp_path):
    make_context(tmp_path, {"Dockerfile": "", "foo": "foo", "foo2": "foo2", "dir1/foo": "",
                            "#1": "# file 1", "#2": "# file 2", ".dockerignore": """\
# Visual C++ cache files
# because we have git ;-)
# The above comment is from #20083
foo
#dir1/foo
foo2
# The following is considered as comment as # is at the beginning
#1
# The following is not considered as comment as # is not at the beginning
  #2
"""})
    seen = context_after_build(tmp_path)
    assert "#1" in seen and "#2" not in seen
    assert "foo" not in seen and "foo2" not in seen and "dir1/foo" in seen


def test_build_with_utf8_bom_dockerignore(tmp_path):
    make_context(tmp_path, {"Dockerfile": "FROM busybox\n",
                            ".dockerignore": b"\xef\xbb\xbf./Dockerfile\n"})
    assert context_after_build(tmp_path) == {".dockerignore"}


@pytest.mark.parametrize("ignore,seen", [
    (None, {"foo"}),
    ("Dockerfile\n", {".dockerignore", "foo"}),
    ("Dockerfile\n.dockerignore\n", {"foo"}),
])
def test_build_dockerfile_stdin_no_extra_files(tmp_path, ignore, seen):
    # `docker build -f - ctx`: the context's own Dockerfile is not kept, and
    # the CLI adds the one read from stdin under a random name, which it
    # appends to the .dockerignore it sends (cli's AddDockerfileToBuildContext)
    files = {"foo": "bar"}
    if ignore is not None:
        files.update({"Dockerfile": "", ".dockerignore": ignore})
    make_context(tmp_path, files)
    sent = archived(tmp_path, stdin=True)
    assert "Dockerfile" not in sent
    random_name = ".dockerfile.0123456789abcdefghij"
    sent_ignore = (ignore if ignore is not None else ".dockerignore") + f"\n{random_name}\n"
    sent = [p for p in sent if p != ".dockerignore"] + [".dockerignore", random_name]
    removed = build_files_to_remove(parse_dockerignore(sent_ignore), random_name)
    assert {p for p in sent if p not in removed} == seen


# -- the walk -------------------------------------------------------------------------------

def test_excluded_directories_are_not_entered(tmp_path, monkeypatch):
    make_context(tmp_path, {"node_modules/a/b": "", "node_modules/c": "", "keep/x": "",
                            "build/out": "", "build/keep.txt": ""})
    listed = []
    scandir = os.scandir

    def recording_scandir(path):
        listed.append(os.path.relpath(path, tmp_path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", recording_scandir)
    sent = list(walk_context(str(tmp_path), ["node_modules", "build", "!build/keep.txt"]))
    assert sent == ["build/keep.txt", "keep", "keep/x"]
    assert sorted(listed) == [".", "build", "keep"]


def test_an_exception_only_reaches_into_a_directory_it_names(tmp_path):
    make_context(tmp_path, {"dir/keep": "", "keep": "", "other/keep": ""})
    # "!**/keep" takes back top-level files and files of directories that are
    # not excluded, but docker does not enter "dir" for it
    assert list(walk_context(str(tmp_path), ["dir", "**/keep", "!**/keep"])) == \
        ["keep", "other", "other/keep"]


def test_excluded_and_prunes(tmp_path):
    rules = ContextExcludes(["dir", "!dir/sub/keep", "tmp", "*.log"])
    assert rules.excluded("dir") and not rules.prunes("dir")
    assert rules.excluded("dir/sub") and not rules.prunes("dir/sub")
    assert not rules.excluded("dir/sub/keep")
    assert rules.excluded("dir/other") and rules.prunes("dir/other")
    assert rules.excluded("dir/other/keep")         # in a directory never entered
    assert rules.excluded("tmp") and rules.prunes("tmp") and rules.excluded("tmp/a/b")
    # unlike .gitignore's, a pattern without "/" is not matched in subdirectories
    assert rules.excluded("b.log") and not rules.excluded("a/b.log")
    assert not rules.excluded(".") and not rules.prunes(".")
    assert not rules.excluded("./src/") and rules.excluded("./dir/")


def test_walk_order_is_bytewise_and_depth_first(tmp_path):
    make_context(tmp_path, {"b/z": "", "b/a": "", "B": "", "a.txt": "", "é": "", "Z": "",
                            "a/x": ""})
    assert list(walk_context(str(tmp_path), [])) == \
        ["B", "Z", "a", "a/x", "a.txt", "b", "b/a", "b/z", "é"]


def test_symbolic_links_are_entries(tmp_path):
    make_context(tmp_path, {"real/file": ""})
    (tmp_path / "link").symlink_to("real")
    (tmp_path / "dangling").symlink_to("nowhere")
    assert list(walk_context(str(tmp_path), [])) == ["dangling", "link", "real", "real/file"]


def test_an_empty_excluded_directory_is_not_sent(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "kept").mkdir()
    assert list(walk_context(str(tmp_path), ["empty"])) == ["kept"]


# -- the build files --------------------------------------------------------------------------

@pytest.mark.parametrize("excludes,dockerfile,stdin,added", [
    (["*.md"], "Dockerfile", False, []),
    (["*"], "Dockerfile", False, ["!.dockerignore", "!Dockerfile"]),
    ([".dockerignore"], "Dockerfile", False, ["!.dockerignore"]),
    (["Dockerfile"], "Dockerfile", True, []),
    (["sub"], "sub/Dockerfile", False, ["!sub/Dockerfile"]),
    (["**/sub"], "a/sub/Dockerfile", False, ["!a/sub/Dockerfile"]),
    # docker decides with the deprecated Matches, which misses this one: the
    # Dockerfile stays excluded and the daemon cannot find it
    (["**/sub"], "x/y/sub/z/Dockerfile", False, []),
    (["["], "Dockerfile", False, []),               # a bad pattern excludes nothing here
])
def test_trim_build_files_from_excludes(excludes, dockerfile, stdin, added):
    assert trim_build_files_from_excludes(excludes, dockerfile, stdin) == excludes + added


@pytest.mark.parametrize("excludes,dockerfile,removed", [
    ([], "Dockerfile", []),
    (["*"], "Dockerfile", [".dockerignore", "Dockerfile"]),
    (["sub"], "sub/Dockerfile", ["sub/Dockerfile"]),
    (["**/sub"], "x/y/sub/z/Dockerfile", ["x/y/sub/z/Dockerfile"]),
    (["*", "!Dockerfile"], "Dockerfile", [".dockerignore"]),
    (["["], "Dockerfile", []),
])
def test_build_files_to_remove(excludes, dockerfile, removed):
    assert build_files_to_remove(excludes, dockerfile) == removed


# -- pattern syntax -------------------------------------------------------------------------

@pytest.mark.parametrize("pattern,name,result", [
    ("[*]", "*", False),       # Go's regexp reads [[^/]*]: a class of "[", "^", "/", then "]"
    ("[*]", "[]", True),
    ("a^b", "a^b", True),      # no wildcard: compared as a string
    ("a^b*", "a^bc", False),   # "^" passes to the regexp, as an anchor
    ("[!a]", "!", True),       # no "!" negation, as in filepath.Match
    ("[!a]", "b", False),
    ("a\\?b", "a?b", True),
    ("a\\?b", "axb", False),
    ("a\\/b", "a/b", True),
    ("a\\_b", "a_b", True),
    ("*.txt", "a.txt\n", False),   # Go's "$" is the end of the text
    ("**/x", "a\n/x", True),
])
def test_pattern_corners(pattern, name, result):
    assert matches(name, [pattern]) is result


@pytest.mark.parametrize("pattern", ["a[", "[^]", "[a-", "a\\", "[z-]", "x/[]"])
def test_pattern_syntax_errors(pattern):
    with pytest.raises(PatternError, match=f"^{BAD_PATTERN}$"):
        PatternMatcher([pattern])


@pytest.mark.parametrize("pattern", ["bin\\Debug", "a\\d", "dir\\test", "a\\é*", "[\\d]"])
def test_escaped_letters_are_refused_when_matching(pattern):
    # Go's regexp reads some of these as its own escapes (\\D: not a digit,
    # \\t: a tab) and refuses the others; we refuse them all, when matching
    # as docker does
    matcher = PatternMatcher([pattern])
    with pytest.raises(PatternError, match=f"^{BAD_PATTERN}$"):
        matcher.matches_or_parent_matches("bin/Debug")


def test_pattern_errors_are_value_errors():
    assert issubclass(PatternError, ValueError)
