"""Go text/template semantics as docker's --format uses them, and Go's tabwriter.

Expected strings are what Go (with docker's template functions) prints for
the same template and data.
"""

import pytest

from dockyard.cli.gotemplate import (GoZero, TemplateError, is_table, json_marshal, parse, render,
                                     render_table, table_body, tabwrite)

DATA = {
    "Name": "web",
    "Count": 2,
    "Ratio": 3.0,
    "Big": 12345678.0,
    "On": True,
    "Nil": None,
    "Tags": ["a", "b", "c"],
    "Labels": {"z": "last", "a": "first"},
    "Config": {"Env": ["A=1"], "Nested": {"Deep": "value"}},
    "Empty": [],
}


class ImageContext:
    """Like docker's formatter contexts: fields and methods."""

    def __init__(self):
        self.Repository = "busybox"
        self.labels = {"maintainer": "me"}

    def ID(self):
        return "6fd955f66c23"

    def Label(self, name):
        return self.labels.get(name, "")


def run(text, data=DATA):
    return render(text, data)


def error_of(text, data=DATA):
    with pytest.raises(TemplateError) as exc:
        render(text, data)
    return str(exc.value)


# --- fields and printing -------------------------------------------------------------------

@pytest.mark.parametrize("text, want", [
    ("{{.Name}}", "web"),
    ("x{{.Count}}y", "x2y"),
    ("{{.Config.Nested.Deep}}", "value"),
    ("{{.Missing}}", "<no value>"),
    ("{{.Missing.Deeper.Still}}", "<no value>"),
    ("{{.Nil}}", "<nil>"),
    ("{{.On}} {{not .On}}", "true false"),
    ("{{.Tags}}", "[a b c]"),
    ("{{.Labels}}", "map[a:first z:last]"),
    ("{{.Config}}", "map[Env:[A=1] Nested:map[Deep:value]]"),
    ("{{.Ratio}} {{.Big}} {{0.1}} {{1e6}}", "3 1.2345678e+07 0.1 1e+06"),
    ("{{.Empty}}", "[]"),
    ("{{$}}", "map[Big:1.2345678e+07 Config:map[Env:[A=1] Nested:map[Deep:value]] Count:2 "
              "Empty:[] Labels:map[a:first z:last] Name:web Nil:<nil> On:true Ratio:3 "
              "Tags:[a b c]]"),
])
def test_fields_print_like_go(text, want):
    assert run(text) == want


def test_nil_data_has_no_value():
    assert render("{{.}} {{.Foo}}", None) == "<no value> <no value>"


def test_object_fields_and_methods():
    ctx = ImageContext()
    assert render("{{.Repository}} {{.ID}}", ctx) == "busybox 6fd955f66c23"
    assert render('{{.Label "maintainer"}}|{{"x" | .Label}}', ctx) == "me|"


def test_missing_attribute_is_an_error():
    assert error_of("{{.Size}}", ImageContext()) == (
        'template: :1:2: executing "" at <.Size>: can\'t evaluate field Size in type ImageContext')


def test_fields_of_scalars_and_nil_are_errors():
    assert error_of("{{.Name.upper}}").endswith("can't evaluate field upper in type string")
    assert error_of("{{.Nil.X}}").endswith("nil pointer evaluating interface {}.X")
    assert error_of("{{.Labels.a 1}}").endswith("a is not a method but has arguments")


# --- control structures ---------------------------------------------------------------------

@pytest.mark.parametrize("text, want", [
    ("{{range .Tags}}<{{.}}>{{end}}", "<a><b><c>"),
    ("{{range $i, $t := .Tags}}{{$i}}={{$t}} {{end}}", "0=a 1=b 2=c "),
    ("{{range $v := .Tags}}{{$v}}{{end}}", "abc"),
    ("{{range $k, $v := .Labels}}{{$k}}:{{$v}};{{end}}", "a:first;z:last;"),
    ("{{range .Labels}}{{.}} {{end}}", "first last "),
    ("{{range .Empty}}x{{else}}none{{end}}", "none"),
    ("{{range .Missing}}x{{else}}none{{end}}", "none"),
    ("{{range .Nil}}x{{else}}none{{end}}", "none"),
    ("{{range .Tags}}{{if eq . \"b\"}}{{continue}}{{end}}{{.}}{{end}}", "ac"),
    ("{{range .Tags}}{{if eq . \"b\"}}{{break}}{{end}}{{.}}{{end}}", "a"),
    ("{{range 3}}{{.}}{{end}}", "012"),
    ("{{range .Tags}}{{$.Name}}{{end}}", "webwebweb"),
    ("{{with .Config.Nested}}{{.Deep}}{{end}}", "value"),
    ("{{with .Missing}}yes{{else}}no{{end}}", "no"),
    ("{{with .Missing}}1{{else with .Name}}{{.}}{{end}}", "web"),
    ("{{with $n := .Name}}{{$n}}{{end}}", "web"),
    ("{{if .Empty}}full{{else}}empty{{end}}", "empty"),
    ("{{if eq .Count 1}}one{{else if eq .Count 2}}two{{else}}many{{end}}", "two"),
    ("{{if .Nil}}a{{else if .Missing}}b{{else if 0}}c{{else if \"\"}}d{{else}}e{{end}}", "e"),
    ("{{if and .Name .Tags}}both{{end}}{{if or .Nil .Count}}|some{{end}}", "both|some"),
])
def test_control_structures(text, want):
    assert run(text) == want


def test_variables_declare_assign_and_scope():
    assert run('{{$x := .Name}}{{$x}}{{$x = "other"}} {{$x}}') == "web other"
    assert run("{{$x := 1}}{{if true}}{{$x = 2}}{{$y := 3}}{{end}}{{$x}}") == "2"
    assert run("{{range .Tags}}{{$last := .}}{{end}}done") == "done"
    assert run("{{$c := .Config}}{{$c.Nested.Deep}}") == "value"
    assert run("{{(index .Tags 1)}} {{(.Config).Nested.Deep}}") == "b value"


def test_trim_markers_and_comments():
    assert run("a  \n {{- .Name -}} \n  b") == "awebb"
    assert run("a {{- /* note */ -}} b") == "ab"
    assert run("a {{/* note */}} b") == "a  b"
    assert run("{{- .Count}} {{3 -}} x") == "2 3x"
    assert run("{{-3}}") == "-3"   # "-3" is a number, not a trim marker


# --- functions ------------------------------------------------------------------------------

def test_json_is_compact_keeps_order_and_html():
    assert run("{{json .Config}}") == '{"Env":["A=1"],"Nested":{"Deep":"value"}}'
    assert run("{{json .Labels}}") == '{"z":"last","a":"first"}'
    # docker's json uses an Encoder with SetEscapeHTML(false).
    assert render("{{json .}}", {"s": "<a href=\"x\">&</a>\n\u2028"}) == (
        '{"s":"<a href=\\"x\\">&</a>\\n\\u2028"}')
    assert run("{{json .Nil}} {{json .Missing}} {{json .Ratio}} {{json .On}}") == \
        "null null 3 true"
    assert json_marshal([1e21, 1e-7, 0.5, -0.0]) == "[1e+21,1e-7,0.5,-0]"
    assert json_marshal({"a": "<&>"}, escape_html=True) == '{"a":"\\u003c\\u0026\\u003e"}'


@pytest.mark.parametrize("text, want", [
    ('{{join .Tags ", "}}', "a, b, c"),
    ('{{join .Missing ","}}|', "|"),
    ('{{split "a:b:c" ":"}}', "[a b c]"),
    ('{{index (split "a:b" ":") 1}}', "b"),
    ('{{lower "ABC Déf"}} {{upper "abc straße"}}', "abc déf ABC STRAßE"),
    ('{{title "hello wide-world o\'neil snake_case"}}', "Hello Wide-World O'Neil Snake_case"),
    ('[{{pad .Name 2 3}}][{{pad "" 2 3}}]', "[  web   ][]"),
    ('{{truncate "abcdef" 3}} {{truncate "ab" 3}} {{truncate "abc" 3}}', "abc ab abc"),
    ("{{.Name | upper | printf \"%s!\"}}", "WEB!"),
])
def test_docker_functions(text, want):
    assert run(text) == want


@pytest.mark.parametrize("text, want", [
    ('{{printf "%s|%d|%v|%t" .Name .Count .Tags .On}}', "web|2|[a b c]|true"),
    ('{{printf "%-6s|%6s|%.2s" "ab" "ab" "abc"}}', "ab    |    ab|ab"),
    ('{{printf "%5d|%-5d|%05d|%+d" 42 42 -42 42}}', "   42|42   |-0042|+42"),
    ('{{printf "%x|%X|%#x|%o|%b|%c|%U" 255 255 255 8 5 65 9731}}', "ff|FF|0xff|10|101|A|U+2603"),
    ('{{printf "%q|%q|%x" "a\\"b\\n" 65 "hi"}}', '"a\\"b\\n"|\'A\'|6869'),
    ('{{printf "%f|%.2f|%8.3f|%e|%g|%g" 3.14159 3.14159 3.14159 123456.0 0.000012 100.0}}',
     "3.141590|3.14|   3.142|1.234560e+05|1.2e-05|100"),
    ('{{printf "%T %T %T %T" .Name .Count .Tags .Labels}}',
     "string int []interface {} map[string]interface {}"),
    ('{{printf "%d%%"  50}}', "50%"),
    ('{{printf "%d" "x"}}|{{printf "%s" 3}}|{{printf "%d"}}|{{printf "%s" "a" 1}}',
     "%!d(string=x)|%!s(int=3)|%!d(MISSING)|a%!(EXTRA int=1)"),
    ('{{printf "%v %s" .Nil .Missing}}', "<nil> %!s(<nil>)"),
])
def test_printf_verbs(text, want):
    assert run(text) == want


@pytest.mark.parametrize("text, want", [
    ('{{index .Config "Nested" "Deep"}}', "value"),
    ("{{index .Tags 2}}", "c"),
    ('{{index .Config "Env" 0}}', "A=1"),
    ('{{index .Labels "nope"}}', "<no value>"),
    ('{{index "abc" 1}}', "98"),   # a byte, as in Go
    ("{{len .Tags}} {{len .Labels}} {{len .Name}} {{len \"héllo\"}}", "3 2 3 6"),
    ("{{slice .Tags 1}} {{slice .Tags 0 2}} {{slice .Name 1 2}}", "[b c] [a b] e"),
    ('{{print "a" 1 2 "b"}}|{{println "a" 1}}|', "a1 2b|a 1\n|"),
    ('{{html "<b>&\'\\""}}', "&lt;b&gt;&amp;&#39;&#34;"),
    ('{{js "it\'s <x>"}}', "it\\'s \\u003Cx\\u003E"),
    ('{{urlquery "a b&c/d"}}', "a+b%26c%2Fd"),
])
def test_go_builtins(text, want):
    assert run(text) == want


@pytest.mark.parametrize("text, want", [
    ("{{eq .Count 2}} {{eq .Count 1 3 2}} {{eq .Name \"web\"}}", "true true true"),
    ("{{ne .Count 2}} {{ne .Name \"x\"}}", "false true"),
    ("{{lt 1 2}} {{le 2 2}} {{gt 1 2}} {{ge \"b\" \"a\"}} {{lt 1.5 2.5}}",
     "true true false true true"),
    ("{{eq .Missing nil}} {{eq .Nil .Name}}", "true false"),
    ("{{and 1 0 2}} {{and 1 2}} {{or 0 \"\" .Name}} {{or 0 \"\"}}", "0 2 web "),
    # and/or stop early: the index of a missing value is never evaluated.
    ("{{and .Missing (index .Missing 1)}}", "<no value>"),
])
def test_comparisons_and_logic(text, want):
    assert run(text) == want


def test_comparison_errors():
    assert error_of('{{eq .Count "2"}}') == (
        'template: :1:2: executing "" at <eq .Count "2">: '
        "error calling eq: incompatible types for comparison")
    assert error_of("{{lt true false}}").endswith("error calling lt: invalid type for comparison")
    assert error_of("{{eq .Count}}").endswith("error calling eq: missing argument for comparison")


def test_call_calls_a_function_value():
    assert render("{{call .F 2 3}}", {"F": lambda a, b: a * b}) == "6"
    assert error_of("{{call .Missing}}").endswith("error calling call: call of nil")


# --- errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, want", [
    ("{{.Name", "template: :1: unclosed action"),
    ("{{foo .Name}}", 'template: :1: function "foo" not defined'),
    ("x{{end}}", "template: :1: unexpected {{end}}"),
    ("{{else}}", "template: :1: unexpected {{else}}"),
    ("{{if .Name}}yes", "template: :1: unexpected EOF"),
    ("a\nb\n{{$x}}", 'template: :3: undefined variable "$x"'),
    ("{{break}}", "template: :1: {{break}} outside {{range}}"),
    ("{{}}", "template: :1: missing value for command"),
    ("{{if}}{{end}}", "template: :1: missing value for if"),
    ('{{"\\q"}}', "template: :1: invalid syntax"),
    ('{{"abc}}', "template: :1: unterminated quoted string"),
    ("{{range $a, $b, $c := .}}{{end}}", "template: :1: too many declarations in range"),
    ("{{.Name | 3}}", "template: :1: non executable command in pipeline stage 2"),
    ("{{(.Name}}", "template: :1: unclosed left paren"),
    ("{{/* never closed", "template: :1: unclosed comment"),
    ("{{3.x}}", 'template: :1: bad number syntax: "3.x"'),
    ("{{.Name\n.Tags", "template: :2: unclosed action started at :1"),
    ("{{#}}", 'template: :1: unexpected "#" in command'),
    ("{{if .A}}{{else}}{{else}}{{end}}", "template: :1: expected end; found {{else}}"),
])
def test_parse_errors(text, want):
    with pytest.raises(TemplateError) as exc:
        parse(text)
    assert str(exc.value) == want


def test_template_error_is_a_value_error():
    assert issubclass(TemplateError, ValueError)


@pytest.mark.parametrize("text, want", [
    ("{{index .Tags 5}}", 'template: :1:2: executing "" at <index .Tags 5>: '
                          "error calling index: index out of range: 5"),
    ("line\n  {{len 3}}", 'template: :2:4: executing "" at <len 3>: '
                          "error calling len: len of type int"),
    ("{{join .Tags}}", 'template: :1:2: executing "" at <join>: '
                       "wrong number of args for join: want 2 got 1"),
    ("{{upper .Count}}", 'template: :1:8: executing "" at <.Count>: '
                         "wrong type for value; expected string; got int"),
    ("{{upper 3}}", 'template: :1:8: executing "" at <3>: expected string; found 3'),
    ("{{range .Name}}{{end}}", 'template: :1:8: executing "" at <.Name>: '
                               "range can't iterate over web"),
])
def test_execution_errors(text, want):
    assert error_of(text) == want


def test_parse_once_execute_many():
    tmpl = parse("{{.Name}}:{{len .Tags}}")
    assert tmpl.execute(DATA) == "web:3"
    assert tmpl.execute({"Name": "db", "Tags": []}) == "db:0"


# --- tables ---------------------------------------------------------------------------------

def test_table_format_helpers():
    assert is_table("table {{.ID}}") and is_table("table") and not is_table("{{.ID}}")
    assert table_body("table") == ""
    assert table_body("table   {{.ID}}\\t{{.Size}}  ") == "{{.ID}}\t{{.Size}}"
    assert table_body("table {{.A}}\\n{{.B}}") == "{{.A}}\n{{.B}}"


IMAGE_HEADER = {"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID",
                "CreatedSince": "CREATED", "Size": "SIZE"}


def test_render_table_like_docker_images():
    rows = [
        {"Repository": "busybox", "Tag": "latest", "ID": "6fd955f66c23",
         "CreatedSince": "2 weeks ago", "Size": "4.26MB"},
        {"Repository": "registry.example.com/team/app", "Tag": "v1", "ID": "0123456789ab",
         "CreatedSince": "3 months ago", "Size": "120MB"},
    ]
    body = "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    assert render_table(body, rows, IMAGE_HEADER) == (
        "REPOSITORY                      TAG       IMAGE ID       CREATED        SIZE\n"
        "busybox                         latest    6fd955f66c23   2 weeks ago    4.26MB\n"
        "registry.example.com/team/app   v1        0123456789ab   3 months ago   120MB\n")


def test_render_table_header_functions_leave_titles_alone():
    rows = [{"Repository": "busybox", "ID": "abc", "Tag": "latest"}]
    body = "{{upper .Repository}}\t{{truncate .ID 2}}\t{{pad .Tag 1 1}}"
    assert render_table(body, rows, IMAGE_HEADER) == (
        "REPOSITORY   IMAGE ID    TAG \n"
        "BUSYBOX      ab          latest \n")


def test_render_table_without_rows_prints_the_header():
    assert render_table("{{.ID}}\t{{.Size}}", [], IMAGE_HEADER) == "IMAGE ID   SIZE\n"


def test_render_table_row_errors_fail():
    with pytest.raises(TemplateError):
        render_table("{{.ID}}\t{{index .Tags 3}}", [{"ID": "x", "Tags": []}], IMAGE_HEADER)


# --- tabwriter ------------------------------------------------------------------------------

def test_tabwrite_cell_width_is_max_of_minwidth_and_text_plus_padding():
    assert tabwrite("a\tb\n") == "a         b\n"                       # minwidth 10
    assert tabwrite("REPOSITORY\tTAG\n") == "REPOSITORY   TAG\n"     # 10 + padding 3
    assert tabwrite("a\tb\nlonger-than-ten\tc\n") == (
        "a                 b\n"      # 15 + 3
        "longer-than-ten   c\n")


def test_tabwrite_column_blocks_follow_go_semantics():
    # The example from Go's text/tabwriter documentation (minwidth 0, padding 1):
    # b and c are in different column blocks, d and e are trailing text.
    text = "aaaa\tbbb\td\naa\tb\tdd\na\t\naa\tcccc\teee\n"
    assert tabwrite(text, minwidth=0, padding=1) == (
        "aaaa bbb d\n"
        "aa   b   dd\n"
        "a    \n"
        "aa   cccc eee\n")


def test_tabwrite_line_without_tabs_ends_all_columns():
    text = "x\ty\nno tabs here\nlonger cell\tz\n"
    assert tabwrite(text, minwidth=0, padding=1) == "x y\nno tabs here\nlonger cell z\n"


def test_tabwrite_trailing_text_empty_cells_and_no_final_newline():
    assert tabwrite("a\t\tc", minwidth=2, padding=1) == "a   c"   # the empty cell is 2 wide
    assert tabwrite("a\tb\tlong trailing text\nc\td\te", minwidth=0, padding=1) == (
        "a b long trailing text\nc d e")
    assert tabwrite("") == ""
    assert tabwrite("plain\n") == "plain\n"


def test_tabwrite_formfeed_flushes_columns():
    assert tabwrite("a\tb\fccc\td\n", minwidth=0, padding=1) == "a b\nccc d\n"


def test_tabwrite_counts_code_points():
    assert tabwrite("héllo\tx\nab\ty\n", minwidth=0, padding=1) == "héllo x\nab    y\n"


def test_json_uses_an_objects_own_marshaljson():
    class Context:
        Tag = "<none>"

        def MarshalJSON(self):   # like docker's formatter contexts: json.Marshal of a map
            return '{"Tag":"\\u003cnone\\u003e"}'

    assert render("{{json .}} {{json .Tag}}", Context()) == '{"Tag":"\\u003cnone\\u003e"} "<none>"'


# --- MarshalJSON: the json.Marshaler hook ----------------------------------------------------

class Marshaler:
    def __init__(self, out):
        self.out = out

    def MarshalJSON(self):
        if isinstance(self.out, Exception):
            raise self.out
        return self.out


def test_marshaljson_output_is_checked_and_compacted_at_any_depth():
    assert json_marshal(Marshaler('{ "a" : [1, 2],\n "b": "x y" }')) == '{"a":[1,2],"b":"x y"}'
    assert json_marshal(Marshaler(b'"bytes"')) == '"bytes"'
    assert render("{{json .}}", {"rows": [Marshaler("1.50"), Marshaler("null")]}) == (
        '{"rows":[1.50,null]}')   # tokens stay as written


def test_marshaljson_wins_over_being_a_mapping():
    class Context(dict):
        def MarshalJSON(self):
            return '{"as":"marshaled"}'

    assert render("{{json .}}", Context(a=1)) == '{"as":"marshaled"}'


def test_marshaljson_html_escaping_follows_the_encoder():
    m = Marshaler('{"s":"<a&b>"}')
    assert render("{{json .}}", m) == '{"s":"<a&b>"}'   # docker: SetEscapeHTML(false)
    assert json_marshal(m, escape_html=True) == '{"s":"\\u003ca\\u0026b\\u003e"}'


def test_marshaljson_errors_print_nothing_as_in_docker():
    from dockyard.cli.gojson import MarshalError
    for bad in ('{"a":', "NaN", MarshalError("json: no")):
        assert render("[{{json .}}]", Marshaler(bad)) == "[]"
        with pytest.raises(MarshalError):
            json_marshal(Marshaler(bad))
    assert render("[{{json .}}]", {"f": float("nan")}) == "[]"


def test_marshaljson_exceptions_are_template_errors():
    assert error_of("{{json .}}", Marshaler(KeyError("x"))) == (
        "template: :1:2: executing \"\" at <json .>: error calling json: 'x'")


# --- missingkey=error (Go's Option("missingkey=error")) ----------------------------------------

def test_missingkey_error_stops_at_a_missing_map_key():
    with pytest.raises(TemplateError) as exc:
        render("{{.Nope}}", {}, missingkey="error")
    assert str(exc.value) == (
        'template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope"')
    with pytest.raises(TemplateError) as exc:
        parse("x\n {{if .Config.Nope}}{{end}}", missingkey="error").execute(DATA)
    assert str(exc.value) == ('template: :2:13: executing "" at <.Config.Nope>: '
                              'map has no entry for key "Nope"')


def test_missingkey_error_on_nil_data_and_missing_values():
    with pytest.raises(TemplateError) as exc:
        render("{{.Foo}}", None, missingkey="error")
    assert str(exc.value).endswith('at <.Foo>: nil data; no entry for key "Foo"')
    with pytest.raises(TemplateError) as exc:
        render('{{(index . "nope").X}}', {}, missingkey="error")
    assert str(exc.value).endswith('nil data; no entry for key "X"')


def test_missingkey_error_leaves_present_keys_index_and_structs_alone():
    tmpl = parse('{{.Name}} {{.Nil}} {{.Config.Nested.Deep}} {{index .Labels "nope"}}',
                 missingkey="error")
    assert tmpl.execute(DATA) == "web <nil> value <no value>"
    assert tmpl.missingkey == "error"
    assert render("{{.}}", None, missingkey="error") == "<no value>"
    with pytest.raises(TemplateError) as exc:
        render("{{.Size}}", ImageContext(), missingkey="error")
    assert str(exc.value).endswith("can't evaluate field Size in type ImageContext")


def test_missingkey_default_and_invalid_are_gos_default():
    for option in ("default", "invalid"):
        assert render("{{.Nope}} {{.A.B}}", {}, missingkey=option) == "<no value> <no value>"


@pytest.mark.parametrize("option", ["zero", "bogus", ""])
def test_missingkey_other_options_are_refused(option):
    with pytest.raises(ValueError, match=f"unrecognized option: missingkey={option}"):
        parse("{{.}}", missingkey=option)


# --- GoZero: typed nils and empty structs ------------------------------------------------------

ZEROS = {
    "Slice": GoZero("[]string"),
    "Map": GoZero("map[string]string"),
    "Ptr": GoZero("*types.Health"),
    "Empty": GoZero("struct {}"),
    "Volumes": {"/data": GoZero("struct {}")},
    "Cmd": GoZero("strslice.StrSlice", "slice"),
}


@pytest.mark.parametrize("text, want", [
    ("{{.Slice}} {{.Map}} {{.Ptr}} {{.Empty}} {{.Volumes}} {{.Cmd}}",
     "[] map[] <nil> {} map[/data:{}] []"),
    ('{{printf "%T|%T|%T|%T" .Slice .Map .Ptr .Cmd}}',
     "[]string|map[string]string|*types.Health|strslice.StrSlice"),
    ('{{printf "%s %d %v %d %s" .Slice .Map .Empty .Ptr .Ptr}}',
     "[] map[] {} 0 %!s(*types.Health=<nil>)"),
    ("{{json .Slice}} {{json .Map}} {{json .Ptr}} {{json .Empty}} {{json .Volumes}}",
     'null null null {} {"/data":{}}'),
    ("{{if .Slice}}a{{end}}{{if .Map}}b{{end}}{{if .Ptr}}c{{end}}{{if .Empty}}d{{end}}", "d"),
    ("{{len .Slice}} {{len .Map}}", "0 0"),
    ("{{range .Slice}}x{{else}}none{{end}} {{range $k, $v := .Map}}x{{else}}none{{end}}",
     "none none"),
    ('{{.Map.Key}}|{{index .Map "k"}}|{{index .Volumes "/data"}}|{{join .Slice ","}}|',
     "<no value>||{}||"),
    ("{{slice .Slice}} {{eq .Ptr nil}} {{eq .Slice nil}} {{eq .Empty nil}} {{eq nil .Map}}",
     "[] true true false true"),
])
def test_gozero_prints_and_behaves_like_gos_typed_values(text, want):
    assert render(text, ZEROS) == want


def test_gozero_in_structs_and_json():
    class Health:
        def __init__(self):
            self.Status = "starting"
            self.Log = GoZero("[]*types.HealthcheckResult")

    assert render("{{.}} {{json .}}", Health()) == '{starting []} {"Status":"starting","Log":null}'


@pytest.mark.parametrize("text, want", [
    ("{{.Ptr.Status}}", 'template: :1:6: executing "" at <.Ptr.Status>: '
                        "nil pointer evaluating *types.Health.Status"),
    ("{{.Slice.X}}", 'template: :1:8: executing "" at <.Slice.X>: '
                     "can't evaluate field X in type []string"),
    ("{{.Empty.X}}", 'template: :1:8: executing "" at <.Empty.X>: '
                     "can't evaluate field X in type struct {}"),
    ("{{len .Ptr}}", 'template: :1:2: executing "" at <len .Ptr>: '
                     "error calling len: len of nil pointer"),
    ("{{index .Slice 0}}", 'template: :1:2: executing "" at <index .Slice 0>: '
                           "error calling index: index out of range: 0"),
    ("{{range .Ptr}}{{end}}", 'template: :1:8: executing "" at <.Ptr>: '
                              "range can't iterate over <nil>"),
    ("{{upper .Slice}}", 'template: :1:8: executing "" at <.Slice>: '
                         "wrong type for value; expected string; got []string"),
])
def test_gozero_errors_name_the_go_type(text, want):
    assert error_of(text, ZEROS) == want


def test_gozero_missingkey_error_on_a_nil_map():
    with pytest.raises(TemplateError) as exc:
        render("{{.Map.Key}}", ZEROS, missingkey="error")
    assert str(exc.value).endswith('map has no entry for key "Key"')


def test_gozero_kind_comes_from_the_type_or_must_be_given():
    assert GoZero("[]int").kind == "slice" and GoZero("map[a]b").kind == "map"
    assert GoZero("*x.Y").kind == "ptr" and GoZero("struct {}").kind == "struct"
    assert GoZero("nat.PortSet", "map") == GoZero("nat.PortSet", "map")
    with pytest.raises(ValueError):
        GoZero("nat.Port")
    with pytest.raises(ValueError):
        GoZero("[]string", "array")


# --- chained fields: errors point where Go's parser puts the chain -----------------------------

@pytest.mark.parametrize("text, want", [
    # Checked against docker 28.2.2 (go1.24): the chain sits at its second identifier.
    ("{{.Name.X.Y}}", 'template: :1:7: executing "" at <.Name.X.Y>: '
                      "can't evaluate field X in type string"),
    ("{{$.Name.X}}", 'template: :1:3: executing "" at <$.Name.X>: '
                     "can't evaluate field X in type string"),
    ("{{$x := .Name}}{{$x.A.B}}", 'template: :1:19: executing "" at <$x.A.B>: '
                                  "can't evaluate field A in type string"),
    ('{{printf "%s" .Name.X.Y}}', 'template: :1:19: executing "" at <.Name.X.Y>: '
                                  "can't evaluate field X in type string"),
    ("{{.Name.X 1}}", 'template: :1:7: executing "" at <.Name.X>: '
                      "can't evaluate field X in type string"),
    ("{{with .Config}}\n  {{.Nested.Deep.X}}{{end}}", 'template: :2:11: executing "" at '
                                                      "<.Nested.Deep.X>: can't evaluate field X "
                                                      "in type string"),
    # (pipe).X: Go reports the last node it evaluated, the one inside the parentheses.
    ("{{(.Name).X.Y}}", 'template: :1:3: executing "" at <.Name>: '
                        "can't evaluate field X in type string"),
])
def test_chained_field_errors_report_gos_column(text, want):
    assert error_of(text) == want


# --- start-up cost ------------------------------------------------------------------------------

def test_import_loads_no_typing_re_json_or_collections():
    """`import dockyard.cli.gotemplate` and a plain template load only our own modules;
    `json` and tables load gojson and tabwriter when they run."""
    import subprocess
    import sys
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "from dockyard.cli import gotemplate\n"
        "gotemplate.render('{{.A}} {{printf \"%5.2f\" .B}} {{index .C 0}}',"
        " {'A': 'x', 'B': 1.5, 'C': [1]})\n"
        "print(sorted(set(sys.modules) - before))\n"
        "gotemplate.render('{{json .}}', {})\n"
        "gotemplate.render_table('{{.A}}', [], {'A': 'A'})\n"
        "print(sorted(m for m in set(sys.modules) - before if m.startswith('dockyard')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    # (__future__ is what `from __future__ import annotations` itself loads.)
    assert eval(out[0]) == ["__future__", "dockyard", "dockyard.cli", "dockyard.cli.goexec",
                            "dockyard.cli.gofmt", "dockyard.cli.gofuncs",
                            "dockyard.cli.goparse", "dockyard.cli.gotemplate", "math"]
    assert {"dockyard.cli.gojson", "dockyard.cli.tabwriter"} <= set(eval(out[1]))
