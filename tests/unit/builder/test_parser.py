"""The Dockerfile parser: golden syntax trees (testdata/parser), then what the
dump does not show: heredocs, lines, comments, directives, warnings, errors.

Expected values were checked against buildkit's parser, which dockerd uses.
"""

from pathlib import Path

import pytest

from dockyard import errdefs
from dockyard.builder.parser import DockerfileParseError, parse

TESTDATA = Path(__file__).parent / "testdata" / "parser"
CASES = sorted(p.name for p in TESTDATA.iterdir() if p.is_dir())


def test_there_are_golden_cases():
    assert len(CASES) >= 25


@pytest.mark.parametrize("case", CASES)
def test_golden_dump(case):
    result = parse((TESTDATA / case / "Dockerfile").read_bytes())
    assert result.ast.dump() + "\n" == (TESTDATA / case / "result").read_text(encoding="utf-8")


def instructions(text):
    return parse(text).ast.children


# --- nodes -------------------------------------------------------------------------

def test_node_keeps_word_flags_arguments_and_original_line():
    node = instructions("FROM x\ncopy --from=build --chown=1:1  a  b /dst/\n")[1]
    assert node.value == "copy"  # as written; dump() lower-cases
    assert node.flags == ["--from=build", "--chown=1:1"]
    assert node.original == "copy --from=build --chown=1:1  a  b /dst/"
    args, arg = [], node.next
    while arg:
        args.append(arg.value)
        arg = arg.next
    assert args == ["a", "b", "/dst/"]


def test_lines_of_continued_instructions_and_heredocs():
    nodes = instructions("\n# c\nFROM x\nRUN a \\\n  b \\\n\n  c\nRUN <<EOF\nx\nEOF\nUSER me\n")
    assert [(n.start_line, n.end_line) for n in nodes] == [(3, 3), (4, 7), (8, 10), (11, 11)]


def test_exec_form_is_marked_json():
    run_shell, run_exec = instructions('FROM x\nRUN a b\nRUN ["a", "b"]\n')[1:]
    assert (run_shell.is_json, run_exec.is_json) == (False, True)


def test_comments_above_an_instruction_are_kept():
    nodes = instructions("# first\nFROM x\n# one\n  # two\nRUN a\nRUN b\n# x\n#\n# after empty\nRUN c\n")
    assert nodes[0].prev_comment == ["first"]
    # buildkit drops the raw line's first character, not the `#`
    assert nodes[1].prev_comment == ["one", "# two"]
    assert nodes[2].prev_comment == []
    assert nodes[3].prev_comment == ["after empty"]  # an empty `#` forgets those above


def test_onbuild_holds_its_trigger_as_a_child():
    node = instructions("FROM x\nONBUILD RUN --mount=type=cache,target=/c make\n")[1]
    (child,) = node.next.children
    assert (child.value, child.flags, child.next.value) == (
        "RUN", ["--mount=type=cache,target=/c"], "make")


def test_unknown_instructions_parse_without_arguments():
    node = instructions("FROM x\nFOO a b\n")[1]
    assert (node.value, node.next.value, node.next.next) == ("FOO", "", None)


# --- directives and the escape character -------------------------------------------

def test_directives_at_the_top():
    result = parse("# syntax=docker/dockerfile:1\n# Check = skip=all\n#escape=`\nFROM x\n")
    assert result.directives == {"syntax": "docker/dockerfile:1", "check": "skip=all", "escape": "`"}
    assert result.escape_token == "`"
    assert result.ast.children[0].prev_comment == []  # directives are not comments


@pytest.mark.parametrize("text", [
    "# hello\n# escape=`\nFROM x\n",   # after another comment
    "\n# escape=`\nFROM x\n",          # after an empty line
    "FROM x\n# escape=`\n",            # after an instruction
    "# unknown=1\n# escape=`\nFROM x\n",
])
def test_directives_anywhere_else_are_comments(text):
    result = parse(text)
    assert result.escape_token == "\\" and result.directives.get("escape") is None


def test_backtick_escape_continues_lines_and_leaves_backslashes_alone():
    result = parse("# escape=`\r\nFROM x\r\nRUN dir C:\\ `\r\n  /b\r\nCOPY a C:\\dst\\\r\n")
    assert result.ast.dump() == '(from "x")\n(run "dir C:\\\\   /b")\n(copy "a" "C:\\\\dst\\\\")'


def test_default_escape_token():
    assert parse("FROM x\n").escape_token == "\\"


# --- input -------------------------------------------------------------------------

def test_str_and_bytes_give_the_same_tree():
    text = "FROM x\nENV A=é\n"
    assert parse(text).ast.dump() == parse(text.encode()).ast.dump()


def test_byte_order_mark_is_dropped():
    assert parse(b"\xef\xbb\xbfFROM x\n").ast.dump() == '(from "x")'
    assert parse("\ufeffFROM x\n").ast.dump() == '(from "x")'


def test_bytes_that_are_not_utf8_are_kept_and_dumped_as_go_does():
    node = instructions(b"FROM x\nRUN echo \xff\n")[1]
    assert node.next.value.encode("utf-8", "surrogateescape") == b"echo \xff"
    assert node.dump() == 'run "echo \\xff"'


# --- continuation lines ------------------------------------------------------------

def test_empty_continuation_lines_warn():
    result = parse("FROM x\nRUN a \\\n\n  b\n")
    (warning,) = result.warnings
    assert warning.short == "Empty continuation line found in: RUN a   b"
    assert warning.line == 4
    assert warning.url == "https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/"
    assert result.warning_lines() == [
        "[WARNING]: Empty continuation line found in: RUN a   b",
        "[WARNING]: Empty continuation lines will become errors in a future release."]


def test_comment_lines_inside_a_continuation_do_not_warn():
    result = parse("FROM x\nRUN a \\\n# c\n  b\n")
    assert result.warnings == [] and result.warning_lines() == []
    assert result.ast.children[1].original == "RUN a   b"


def test_a_line_of_only_the_escape_character_continues():
    assert instructions("FROM x\n\\\nRUN a\n")[1].original == "RUN a"


# --- heredocs ----------------------------------------------------------------------

def heredocs(text, index=1):
    return [(h.name, h.file_descriptor, h.expand, h.chomp, h.content)
            for h in instructions(text)[index].heredocs]


def test_heredoc_content_is_the_lines_up_to_the_delimiter():
    assert heredocs("FROM x\nRUN <<EOF\necho hi\n  EOF\nEOF\n") == [
        ("EOF", 0, True, False, "echo hi\n  EOF\n")]


def test_heredoc_dash_strips_tabs_only_to_find_the_delimiter():
    # the content keeps its tabs: they go when the content is used (chomp)
    assert heredocs("FROM x\nRUN <<-EOF\n\techo hi\n\tEOF\n") == [
        ("EOF", 0, True, True, "\techo hi\n")]


@pytest.mark.parametrize("word, name, expand", [
    ("<<'EOF'", "EOF", False),
    ('<<"EOF"', "EOF", False),
    ("<<E'O'F", "EOF", False),
    ("<<E\\'F", "E'F", True),       # an escaped quote quotes nothing
    ("<< EOF", "EOF", True),
    ("<<$EOF", "$EOF", True),
    ("<<'one two'", "one two", False),
])
def test_quoted_delimiters_turn_expansion_off(word, name, expand):
    text = f"FROM x\nRUN {word}\n{name}\n"
    assert heredocs(text) == [(name, 0, expand, False, "")]


def test_several_heredocs_are_read_in_order():
    text = "FROM x\nCOPY <<a.txt 3<<b.txt /dst/\none\na.txt\ntwo\nb.txt\nUSER me\n"
    assert heredocs(text) == [("a.txt", 0, True, False, "one\n"), ("b.txt", 3, True, False, "two\n")]
    assert instructions(text)[2].value == "USER"


def test_heredoc_content_keeps_crlf():
    assert heredocs("FROM x\r\nRUN <<EOF\r\na\r\nEOF\r\n") == [("EOF", 0, True, False, "a\r\n")]


@pytest.mark.parametrize("line", [
    'RUN "<<EOF"',          # quoted: not a heredoc word
    "RUN '<<EOF'",
    'RUN ["<<EOF"]',        # the exec form has none
    "USER <<EOF",           # only RUN, COPY and ADD have heredocs
    "RUN <<EOF 'unterminated",  # a line docker cannot split opens none
])
def test_lines_that_open_no_heredoc(line):
    assert heredocs(f"FROM x\n{line}\nEOF\n") == []


def test_onbuild_trigger_takes_the_heredoc():
    assert heredocs("FROM x\nONBUILD RUN <<EOF\nmake\nEOF\n") == [("EOF", 0, True, False, "make\n")]


# --- errors ------------------------------------------------------------------------

@pytest.mark.parametrize("text, message, lines", [
    (b"", "file with no instructions", (0, 0)),
    (b"# a\n\n# b\n", "file with no instructions", (3, 3)),
    (b"FROM x\n\nENV PATH\n", "ENV must have two arguments", (3, 3)),
    (b"FROM x\nLABEL a\n", "LABEL must have two arguments", (2, 2)),
    (b"FROM x\nENV a=1 b\n",
     "Syntax error - can't find = in \"b\". Must be of the form: name=value", (2, 2)),
    (b'FROM x\nLABEL a=1 \\\n  "b c"\n',
     "Syntax error - can't find = in \"\\\"b c\\\"\". Must be of the form: name=value", (2, 3)),
    (b'FROM x\nCMD ["a", ["b"]]\n',
     "when using JSON array syntax, arrays must be comprised of strings only", (2, 2)),
    (b'FROM x\nVOLUME ["/a", 1]\n',
     "when using JSON array syntax, arrays must be comprised of strings only", (2, 2)),
    (b"FROM x\nRUN <<EOF\necho\n", "unterminated heredoc", (2, 3)),
    (b"FROM x\nCOPY <<A <<B /d\na\nA\nb\n", "unterminated heredoc", (2, 5)),
    (b"# escape=`\n# escape=\\\nFROM x\n", "only one escape parser directive can be used", (2, 2)),
    (b"# escape=x\nFROM x\n", "invalid escape token 'x' does not match ` or \\", (1, 1)),
    (b"FROM x\nRUN " + b"a" * 70000 + b"\n",
     "dockerfile line greater than max allowed size of 65535", (2, 2)),
])
def test_errors(text, message, lines):
    with pytest.raises(DockerfileParseError) as caught:
        parse(text)
    assert str(caught.value) == message
    assert (caught.value.start_line, caught.value.end_line) == lines
    assert isinstance(caught.value, errdefs.InvalidParameter)


def test_longest_line_allowed():
    # bufio.Scanner's 64 KiB holds the line and its newline
    assert parse(b"FROM x\nRUN " + b"a" * (65535 - 4) + b"\n").ast.children[1].value == "RUN"
