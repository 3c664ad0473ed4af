"""The Dockerfile shell lexer against buildkit's own tests: its test vector
files (testdata/shell, see the README there) and the cases of lex_test.go,
then docker's error messages and the corners of Go's regexp and text/scanner
that the lexer inherits."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.builder.shell import Lexer, ShellError
from dockyard.builder.shell import _compile, _reverse_pattern

TESTDATA = Path(__file__).parent / "testdata" / "shell"
ENV_VAR_TEST_ENV = ["PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL="]
UNTERMINATED = "unexpected end of statement while looking for matching "


def _env_var_cases():
    """envVarTest as lex_test.go's TestShellParser4EnvVars reads it."""
    cases = []
    lines = (TESTDATA / "envVarTest").read_text(encoding="utf-8").split("\n")
    for number, line in enumerate(lines, 1):
        if line.startswith("#") or not line.strip():
            continue
        fields = line.strip().split("|")
        assert len(fields) == 3, f"envVarTest line {number}: {line!r}"
        platform, source, expected = (f.strip() for f in fields)
        assert platform in ("A", "U", "W"), f"envVarTest line {number}: {line!r}"
        marks = []
        if platform == "W":
            marks = [pytest.mark.skip(reason=(
                "Windows rules: a Windows daemon compares variable names without "
                "case ($pwd is $PWD); dockyard's builder runs on Linux, where names "
                "are case-sensitive, which the U line before it checks"))]
        cases.append(pytest.param(source, expected, id=f"line{number}:{source}", marks=marks))
    return cases


@pytest.mark.parametrize("source,expected", _env_var_cases())
def test_env_var_vectors(source, expected):
    lexer = Lexer("\\")
    if expected == "error":
        with pytest.raises(ShellError):
            lexer.process_word(source, ENV_VAR_TEST_ENV)
    else:
        assert lexer.process_word(source, ENV_VAR_TEST_ENV) == expected


def _words_cases():
    """wordsTest as lex_test.go's TestShellParser4Words reads it: ENV lines
    add to the environment of the lines after them."""
    cases, env = [], []
    lines = (TESTDATA / "wordsTest").read_text(encoding="utf-8").split("\n")
    if lines[-1] == "":
        lines.pop()                       # the file's final newline ends the last line
    for number, line in enumerate(lines, 1):
        if line.startswith("#"):
            continue
        if line.startswith("ENV "):
            env.append(line[3:].lstrip(" "))
            continue
        fields = line.split("|")
        assert len(fields) == 2, f"wordsTest line {number}: {line!r}"
        word, expected = fields[0].strip(), fields[1].lstrip(" ").split(",")
        cases.append(pytest.param(word, list(env), expected, id=f"line{number}:{word}"))
    return cases


@pytest.mark.parametrize("word,env,expected", _words_cases())
def test_words_vectors(word, env, expected):
    try:
        words = Lexer("\\").process_words(word, env)
    except ShellError:
        words = ["error"]
    assert words == expected


def test_the_vector_files_are_all_read():
    # every line of both files is a case, a comment, a blank, or an ENV line
    assert len(_env_var_cases()) == 230
    assert len(_words_cases()) == 24


# -- lex_test.go -------------------------------------------------------------------

def word(text, env=(), escape="\\"):
    return Lexer(escape).process_word(text, env)


def error_of(text, env=(), escape="\\"):
    with pytest.raises(ShellError) as caught:
        Lexer(escape).process_word(text, env)
    return str(caught.value)


def test_mandatory_env_vars():
    set_envs, empty_envs, unset_envs = ["VAR=plain", "ARG=x"], ["VAR=", "ARG=x"], ["ARG=x"]
    no_empty, no_unset = "${VAR:?message here$ARG}", "${VAR?message here$ARG}"

    assert word(no_empty, set_envs) == "plain"
    assert "message herex" in error_of(no_empty, empty_envs)
    assert "message herex" in error_of(no_empty, unset_envs)

    assert word(no_unset, set_envs) == "plain"
    assert word(no_unset, empty_envs) == ""
    assert "message herex" in error_of(no_unset, unset_envs)


@pytest.mark.parametrize("env,name,value", [
    ([], "foo", ""),
    (["foo"], "foo", ""),
    (["foo="], "foo", ""),
    (["foo=bar"], "foo", "bar"),
    (["foo=bar", "car=hat"], "foo", "bar"),
    (["foo=bar", "car=hat"], "car", "hat"),
    (["foo=bar", "car=hat", "car=bike"], "car", "bike"),     # the last one wins
])
def test_get_env(env, name, value):
    assert word(f"${name}", env) == value


def test_an_entry_without_equals_sets_the_name_to_empty():
    assert word("${foo-unset}", ["foo"]) == ""
    assert word("${foo-unset}", []) == "unset"


# TestProcessWithMatches: (input, env, expected or None for an error). The
# matched/unmatched name sets of buildkit's ProcessWordWithMatches feed its
# linter, which docker's classic builder does not have.
PROCESS_CASES = [
    ("x", {"DUMMY": "dummy"}, "x"),
    ("x ${UNUSED}", {"DUMMY": "dummy"}, "x "),
    ("x ${FOO}", {"FOO": "y"}, "x y"),
    ("${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", {"FOO": "xxx", "BAR": ""}, "xxx  ccc"),
    ("${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", {"FOO": "xxx", "BAR": ""}, "xxx bbb ccc"),
    ("${FOO:-}", {"FOO": "xxx", "BAR": ""}, "xxx"),
    ("${FOO:-}", {}, ""),
    ("${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}", {"FOO": "xxx", "BAR": ""}, "aaa bbb "),
    ("${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}", {"FOO": "xxx", "BAR": ""}, "aaa  "),
    ("${FOO?aaa}", {"FOO": "xxx", "BAR": ""}, "xxx"),
    ("${BAR?bbb}", {"FOO": "xxx", "BAR": ""}, ""),
    ("${BAZ?ccc}", {"FOO": "xxx", "BAR": ""}, None),
    ("${FOO:?aaa}", {"FOO": "xxx", "BAR": ""}, "xxx"),
    ("${BAR:?bbb}", {"FOO": "xxx", "BAR": ""}, None),
    ("${BAZ:?ccc}", {"FOO": "xxx", "BAR": ""}, None),
    ("${BAZ:?}", {"FOO": "xxx", "BAR": ""}, None),
    ("${FOO=aaa}", {"FOO": "xxx", "BAR": ""}, None),
    ("${FOO=:aaa}", {"FOO": "xxx", "BAR": ""}, None),
    ("${FOO=}", {}, None),
    # special characters of regular expressions; } is escaped so that it does
    # not close the ${}
    ("${FOO#()[]{\\}^$.\\*\\?|\\\\}", {"FOO": "()[]{}^$.*?|\\x"}, "x"),
    ("${FOO%%\\**}", {"FOO": "xx**"}, "xx"),
    ("${FOO#*x*y}", {"FOO": "xxyy"}, "y"),
    ("${FOO#*}", {"FOO": "xxyy"}, "xxyy"),
    ("${FOO#$BAR}", {"FOO": "xxyy", "BAR": "x"}, "xyy"),
    ("${FOO#$BAR}", {"FOO": "xxyy", "BAR": ""}, "xxyy"),
    ("${FOO#}", {"FOO": "xxyy"}, "xxyy"),
    ("${FOO##*x}", {"FOO": "xxyy"}, "yy"),
    ("${FOO##}", {"FOO": "xxyy"}, "xxyy"),
    ("${FOO#?\\?}", {"FOO": "???y"}, "?y"),
    ("${ABC:-.}${FOO%x}${ABC:-.}", {"FOO": "xxyy"}, ".xxyy."),
    ("${FOO%%\\**\\*}", {"FOO": "a***yy*"}, "a"),
    ("${FOO%}", {"FOO": "xxyy"}, "xxyy"),
    ("${FOO%%$BAR}", {"FOO": "xxyy", "BAR": ""}, "xxyy"),
    ("${FOO:#}", {}, None),
    ("${FOO:##}", {}, None),
    ("${FOO:%}", {}, None),
    ("${FOO:%%}", {}, None),
    # wildcards
    ("${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}",
     {"FOO": "/foo*/*/*.txt", "NEEDLE": "\\*/"}, "/foo.*/*.txt - /foo..*.txt"),
    # / in patterns
    ("${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}",
     {"FOO": "/tmp/tmp/bar.txt", "NEEDLE": "/tmp"}, "/tmp/bar.txt - /bar.txt"),
    ("${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}",
     {"FOO": "/a/foo/b/c.txt", "NEEDLE": "/?/", "REPLACEMENT": "/"}, "/foo/b/c.txt - /foo/c.txt"),
    ("${FOO/$NEEDLE/$REPLACEMENT}",
     {"FOO": "http://google.de", "NEEDLE": "http://", "REPLACEMENT": "https://"},
     "https://google.de"),
    # escaped separators: the escapes stay in the replacement
    ("${FOO//\\//\\/}", {"FOO": "/tmp/foo.txt"}, "\\/tmp\\/foo.txt"),
    # empty and partial forms, which buildkit checks only do not crash
    ("${FOO/$BAR/ww}", {"FOO": "xxyy", "BAR": ""}, "wwxxyy"),
    ("${FOO//ww}", {"FOO": "xxyy"}, None),
    ("${FOO//}", {"FOO": "xxyy"}, None),
    ("${FOO///}", {"FOO": "xxyy"}, "xxyy"),
    ("${FOO///}", {}, ""),
]


@pytest.mark.parametrize("text,env,expected", PROCESS_CASES)
def test_process_with_matches(text, env, expected):
    if expected is None:
        error_of(text, env)
    else:
        assert word(text, env) == expected


@pytest.mark.parametrize("env,expected", [
    ({"VERSION": "v1.2.3", "TARGETOS": "linux", "TARGETARCH": "arm", "TARGETVARIANT": "v7"},
     "something-v1.2.3.linux-arm-v7.tar.gz"),
    ({"VERSION": "v1.2.3", "TARGETOS": "linux", "TARGETARCH": "arm64", "TARGETVARIANT": ""},
     "something-v1.2.3.linux-arm64.tar.gz"),
    ({"VERSION": "v1.2.3", "TARGETOS": "linux", "TARGETARCH": "arm64"},
     "something-v1.2.3.linux-arm64.tar.gz"),
])
def test_process_with_matches_platform(env, expected):
    release = ("something-${VERSION}.${TARGETOS}-${TARGETARCH}"
               "${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz")
    assert word(release, env) == expected


@pytest.mark.parametrize("pattern,regex", [
    ("*", "^.*"),
    ("?", "^."),
    ("\\*", "^\\*"),
    ("(()[]{\\}^$.\\*\\?|\\\\", "^\\(\\(\\)\\[\\]\\{\\}\\^\\$\\.\\*\\?\\|\\\\"),
])
def test_convert_shell_pattern_to_regex(pattern, regex):
    assert _compile(pattern, greedy=True, anchored=True).pattern == regex


@pytest.mark.parametrize("pattern", ["\\", "\\x", "\\\\\\"])
def test_convert_shell_pattern_to_regex_refuses(pattern):
    with pytest.raises(ShellError):
        _compile(pattern, greedy=True, anchored=True)


@pytest.mark.parametrize("pattern,reversed_", [
    ("a\\*c", "c\\*a"),
    ("\\\\\\ab", "b\\a\\\\"),
    ("ab\\", "\\ba"),
    ("👽\\🚀🖖", "🖖\\🚀👽"),
    ("\\\\b", "b\\\\"),
])
def test_reverse_pattern(pattern, reversed_):
    assert _reverse_pattern(pattern) == reversed_


def test_suffix_trimming_reverses_characters_not_bytes():
    assert word("${X%🚀*}", {"X": "🖖🚀👽"}) == "🖖"
    assert word("${X%%?}", {"X": "🖖🚀👽"}) == "🖖🚀"


# -- docker's messages --------------------------------------------------------------

@pytest.mark.parametrize("text,env,message", [
    ("${X:?}", {}, 'failed to process "${X:?}": X: is not allowed to be unset'),
    ("${X?}", {}, 'failed to process "${X?}": X: is not allowed to be unset'),
    ("${X:?}", {"X": ""}, 'failed to process "${X:?}": X: is not allowed to be empty'),
    ("${X:?set X to a tag}", {}, 'failed to process "${X:?set X to a tag}": X: set X to a tag'),
    ("${X?need $Y}", {"Y": "it"}, 'failed to process "${X?need $Y}": X: need it'),
    ("${}", {}, "failed to process \"${}\": syntax error: bad substitution"),
    ("${:-x}", {}, "failed to process \"${:-x}\": syntax error: bad substitution"),
    ("${{X}", {}, "failed to process \"${{X}\": syntax error: bad substitution"),
    ("a${", {}, "failed to process \"a${\": syntax error: missing '}'"),
    ("${X:-abc", {}, "failed to process \"${X:-abc\": syntax error: missing '}'"),
    ("${X:-'abc}", {}, "failed to process \"${X:-'abc}\": syntax error: missing '}'"),
    ("${X:", {}, "failed to process \"${X:\": syntax error: missing '}'"),
    ("${X/abc", {}, "failed to process \"${X/abc\": syntax error: missing '/' in ${}"),
    ("${X/a/b", {}, "failed to process \"${X/a/b\": syntax error: missing '}'"),
    # the end of the input, where a modifier should be, is Go's "\ufffd"
    ("he${PWD", {}, 'failed to process "he${PWD": unsupported modifier (\ufffd) in substitution'),
    ("${X=a}", {}, 'failed to process "${X=a}": unsupported modifier (=) in substitution'),
    ("${X:=a}", {}, 'failed to process "${X:=a}": unsupported modifier (:=) in substitution'),
    ("${X:YY}", {}, 'failed to process "${X:YY}": unsupported modifier (:Y) in substitution'),
    ("${X:#a}", {}, 'failed to process "${X:#a}": unsupported modifier (:#) in substitution'),
    ("${X:%a}", {}, 'failed to process "${X:%a}": unsupported modifier (:%) in substitution'),
    ("${X:/a/b}", {}, 'failed to process "${X:/a/b}": unsupported modifier (:/) in substitution'),
    # no ${#name}: # is the special parameter, then "X" is a modifier
    ("${#X}", {"X": "abc"}, 'failed to process "${#X}": unsupported modifier (X) in substitution'),
    ("'abc", {}, "failed to process \"'abc\": " + UNTERMINATED + "single-quote"),
    ('"abc', {}, 'failed to process "\\"abc": ' + UNTERMINATED + "double-quote"),
    ('"abc\\', {}, 'failed to process "\\"abc\\\\": ' + UNTERMINATED + "double-quote"),
    ("${X#\\a}", {},
     "failed to process \"${X#\\\\a}\": invalid pattern (\\a) in substitution: "
     "invalid escape '\\a'"),
    # a suffix pattern is reported reversed, as docker reports it
    ("${X%\\ab}", {},
     "failed to process \"${X%\\\\ab}\": invalid pattern (b\\a) in substitution: "
     "invalid escape '\\a'"),
    ("${X/\\a/b}", {},
     "failed to process \"${X/\\\\a/b}\": invalid pattern (\\a) in substitution: "
     "invalid escape '\\a'"),
    # the word is quoted as Go's %q quotes
    ("a\n\t${", {}, "failed to process \"a\\n\\t${\": syntax error: missing '}'"),
    ("\x01\u00a0é${", {}, "failed to process \"\\x01\\u00a0é${\": syntax error: missing '}'"),
])
def test_error_messages(text, env, message):
    assert error_of(text, env) == message


def test_an_error_inside_a_nested_substitution_is_its_own():
    assert error_of("${A:-${B:?no B}}") == 'failed to process "${A:-${B:?no B}}": B: no B'


def test_shell_error_is_a_value_error():
    assert issubclass(ShellError, ValueError)


# -- quoting and escapes -----------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("a`$X", "a$X"),
    ("a`'b", "a'b"),
    ("C:\\path\\$X", "C:\\path\\x"),          # \ is an ordinary character
    ('"a`"b"', 'a"b'),
    ('"a`$X"', "a$X"),
    ('"a``b"', "a`b"),
    ('"a`b"', "a`b"),                          # before other characters it stays
    ('"a\\b"', "a\\b"),
    ("abc`", "abc"),                           # dropped at the end
])
def test_backtick_escape_token(text, expected):
    assert word(text, {"X": "x"}, escape="`") == expected


@pytest.mark.parametrize("text,expected", [
    ("a$", "a$"),
    ("$", "$"),
    ("$-x", "x"),
    ("a$ b", "a$ b"),
    ("$X_1-", "one-"),
    ("$Xé", ""),                               # é is a letter: the name is "Xé"
    ("${X}é", "xé"),
    ("$1X", "X"),                              # a digit starts a name of digits
    ("$٣", ""),                                # any Unicode decimal digit
])
def test_names(text, expected):
    assert word(text, {"X": "x", "X_1": "one"}) == expected


def test_names_are_case_sensitive():
    assert word("$path-$PATH", {"PATH": "/bin"}) == "-/bin"


def test_env_as_mapping_or_list():
    assert word("$A$B", {"A": "1", "B": "2"}) == "12"
    assert word("$A$B", ["A=1", "B=2", "A=3"]) == "32"
    assert word("$A", ["A=x=y"]) == "x=y"


def test_a_byte_that_is_not_utf8_reads_as_a_replacement_character():
    # Dockerfile text is decoded with surrogateescape; Go's text/scanner
    # reads such a byte as U+FFFD, while the message quotes the byte
    assert word("a\udcffb") == "a\ufffdb"
    assert error_of("\udcff${") == "failed to process \"\\xff${\": syntax error: missing '}'"


def test_a_byte_order_mark_starting_the_word_is_skipped():
    # Go's text/scanner drops one at the very start of its input
    assert word("\ufeffabc") == "abc"
    assert word("a\ufeffbc") == "a\ufeffbc"


# -- words -------------------------------------------------------------------------

def words(text, env=(), escape="\\"):
    return Lexer(escape).process_words(text, env)


@pytest.mark.parametrize("text,expected", [
    ("", []),
    ("   ", []),
    ('""', []),
    ("a '' b", ["a", "b"]),
    ("a''b", ["ab"]),
    ("80/tcp 443", ["80/tcp", "443"]),
    ("a\\ b c", ["a b", "c"]),
    ("'a b' c", ["a b", "c"]),
    ("$P", ["80", "443"]),
    ('"$P"', ["80 443"]),
    ("x$P", ["x80", "443"]),
    ("a\u3000b", ["a", "b"]),                  # Go's unicode.IsSpace
    ("a\x1fb", ["a\x1fb"]),                    # not a space to Go
])
def test_words(text, expected):
    assert words(text, {"P": "80 443"}) == expected


def test_nested_substitutions_keep_the_text_before_them():
    # buildkit 0.15 (commit 4c935cf, "optimize memory usage on env processing")
    # made nested ${...} share one word buffer with the word around them, so
    # that docker's ProcessWords drops "abc" here; the text is the same in
    # both, and we keep the words as buildkit split them before.
    assert words("abc${X:-y z}def") == ["abcy", "zdef"]
    assert word("abc${X:-y z}def") == "abcy zdef"


def test_heredoc_markers_stay_one_word():
    assert words("cat <<  EOF") == ["cat", "<<  EOF"]
    assert word("cat <<  EOF") == "cat <<  EOF"
    assert words("a < b") == ["a", "<", "b"]


# -- Go's regexp, which the patterns go through ------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("${X//*/y}", "y"),            # no second, empty match at the end (re.sub: "yy")
    ("${X//b*/-}", "a-"),
    ("${X//?/-}", "---"),
    ("${X//b/[$R]}", "a[<b>]c"),   # the value of $R is "<$0>"; $0 is the match
    ("${X/b/$R}", "a<$0>c"),       # a single replacement is taken as it is
    ("${X//b/$S}", "a<$>c"),       # "<$$>": $$ is $
    ("${X//b/$T}", "a<>c"),        # "<$1x>": a name without a group is nothing
    ("${X//b/$U}", "a<$>c"),       # "<$>": a lone $ stays
    ("${X//b/[\\$0]}", "a[\\b]c"),
])
def test_replacement_is_expanded_as_go_expands_it(text, expected):
    env = {"X": "abc", "R": "<$0>", "S": "<$$>", "T": "<$1x>", "U": "<$>"}
    assert word(text, env) == expected


def test_patterns_do_not_cross_newlines():
    # Go's "." does not match "\n", and neither does * in a pattern
    assert word("${X#*b}", {"X": "a\nb"}) == "a\nb"
    assert word("${X#a?b}", {"X": "a\nb"}) == "a\nb"
