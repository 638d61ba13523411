"""The JSON-C reader: json-c's leniencies, positions, and errors with line and column."""

from __future__ import annotations

import math

import pytest

from cndp.app import jsonc
from cndp.app.jsonc import JsoncError, format_path, loads, parse
from cndp.errors import ConfigError


def err(text, **kw) -> JsoncError:
    with pytest.raises(JsoncError) as ei:
        parse(text, "t.jsonc", **kw)
    e = ei.value
    assert isinstance(e, ConfigError)
    assert str(e).startswith(f"t.jsonc:{e.line}:{e.col}: ")
    return e


# --------------------------------------------------------------------------------------------
# what it accepts


def test_plain_json():
    assert loads('{"a": [1, -2, 3.5, true, false, null, "x"]}') == {
        "a": [1, -2, 3.5, True, False, None, "x"]
    }


def test_comments_everywhere():
    text = """// leading
    { // after brace
      /* block */ "a" /* between */ : /* x */ 1 // trailing
      , "b": [ /* in array */ 2 ]
    } /* after */ // end"""
    assert loads(text) == {"a": 1, "b": [2]}


def test_comment_markers_inside_strings_are_text():
    assert loads('{"url": "http://x/*y*/"}') == {"url": "http://x/*y*/"}


def test_trailing_commas():
    assert loads('{"a": [1, 2,], "b": {"c": 1,},}') == {"a": [1, 2], "b": {"c": 1}}


def test_several_documents_last_wins():
    doc = parse('{ }\n{ "defaults": {} }\n[1]\n{ "x": 1 }')
    assert doc.value == {"x": 1}
    assert doc.count == 4
    assert doc.line_of(()) == 4
    assert doc.line_of(("x",)) == 4


def test_documents_without_separators():
    assert parse("{}{}[]").count == 3
    assert loads('1 2 "three"') == "three"


def test_key_order_preserved():
    text = '{"z": 1, "a": 2, "m": 3, "eth1:0": 4, "eth0:0": 5}'
    assert list(loads(text)) == ["z", "a", "m", "eth1:0", "eth0:0"]


def test_json_c_non_strict_extras():
    assert loads("{'a': 'it\\'s', \"b\": 'say \"hi\"'}") == {"a": "it's", "b": 'say "hi"'}
    assert loads("[True, FALSE, Null]") == [True, False, None]


def test_escapes():
    assert loads(r'"\" \\ \/ \b \f \n \r \t \u00e9 \ud83d\ude00"') == '" \\ / \b \f \n \r \t é 😀'


def test_raw_tab_in_string_is_accepted():
    assert loads('"a\tb"') == "a\tb"


def test_numbers():
    assert loads("[0, -0, 10, 1.5, -2e3, 1E+2, 12345678901234567890]") == [
        0,
        0,
        10,
        1.5,
        -2000.0,
        100.0,
        12345678901234567890,
    ]
    assert isinstance(loads("3"), int)
    assert isinstance(loads("3.0"), float)


def test_bom_and_bytes():
    assert loads(b'\xef\xbb\xbf{"a": "\xc3\xa9"}') == {"a": "é"}
    assert loads('\ufeff{"a": 1}') == {"a": 1}


def test_empty_containers_and_whitespace():
    assert loads(" \t\r\n\f\v{ }\n") == {}
    assert loads("[ ]") == []


def test_depth_limit_is_json_c_default():
    assert loads("[" * 32 + "]" * 32) is not None
    e = err("[" * 33 + "]" * 33)
    assert "nesting deeper than 32" in e.reason
    e = err('{"a":' * 33 + "1" + "}" * 33)
    assert "nesting" in e.reason


# --------------------------------------------------------------------------------------------
# positions


def test_positions_and_line_of():
    text = '{\n  "lports": {\n    "eth0:0": {\n      "qid": 11\n    }\n  },\n  "a": [1,\n 2]\n}'
    doc = parse(text, "f.jsonc")
    assert doc.line_of(("lports", "eth0:0", "qid")) == 4
    assert doc.line_of(("lports", "eth0:0", "qid"), key=True) == 4
    assert doc.line_of(("lports", "eth0:0")) == 3
    assert doc.line_of(("a", 1)) == 8
    # a missing key: the line of its nearest parent
    assert doc.line_of(("lports", "eth0:0", "umem")) == 3
    assert doc.linecol(doc.positions[("lports", "eth0:0", "qid")]) == (4, 14)


def test_format_path():
    assert format_path(("lports", "eth0:0", "qid")) == 'lports."eth0:0".qid'
    assert format_path(("lcore-groups", "default", 0)) == "lcore-groups.default[0]"
    assert format_path(("options", 'a"b')) == 'options."a\\"b"'
    assert format_path(()) == "(root)"


# --------------------------------------------------------------------------------------------
# errors, each with line and column


@pytest.mark.parametrize(
    ("text", "line", "col", "words"),
    [
        ('{"a": 1,, }', 1, 9, "unexpected ','"),
        ("[1,,2]", 1, 4, "unexpected ','"),
        ("[,]", 1, 2, "unexpected ','"),
        ("{,}", 1, 2, "unexpected ','"),
        ('{\n  "a": "x', 2, 8, "unterminated string"),
        ('{"a": "x\ny"}', 1, 7, "newline inside a string"),
        ("{ /* x ", 1, 3, "unterminated /* comment"),
        ("{ / }", 1, 3, "comments start with"),
        ('{"a": 012}', 1, 7, "leading zero"),
        ('{"a": 0x1F}', 1, 7, "hexadecimal"),
        ("[+1]", 1, 2, "must not start with '+'"),
        ("[1.]", 1, 2, "invalid number"),
        ("[.5]", 1, 2, "invalid number"),
        ("[-]", 1, 2, "invalid number"),
        ("[1e]", 1, 2, "invalid number"),
        ("[NaN]", 1, 2, "NaN is not allowed"),
        ("[-Infinity]", 1, 2, "not allowed"),
        ('{"a": foo}', 1, 7, "strings must be quoted"),
        ("{name: 1}", 1, 2, "expected a quoted key"),
        ('{"a" 1}', 1, 6, "expected ':'"),
        ('{"a": 1 "b": 2}', 1, 9, "expected ',' or '}'"),
        ("[1 2]", 1, 4, "expected ',' or ']'"),
        ("{", 1, 2, "unterminated object"),
        ('{"a": 1', 1, 8, "unterminated object"),
        ("[1,", 1, 4, "unterminated array"),
        ('{"a":', 1, 6, "expected a value"),
        ("", 1, 1, "empty input"),
        ("  // only a comment\n", 2, 1, "empty input"),
        ('"\\x"', 1, 2, "invalid escape"),
        ('"\\u12"', 1, 2, "4 hex digits"),
        ('"\\ud800"', 1, 2, "lone UTF-16 surrogate"),
        ('"\\udc00"', 1, 2, "lone UTF-16 surrogate"),
        ('"\\ud800\\u0041"', 1, 8, "needs a low one"),
        ('"\\u0000"', 1, 2, "NUL"),
        ('"a\x01b"', 1, 3, "control character U+0001"),
        ('{"a": 1}\x00', 1, 9, "NUL character"),
        ("[1e999]", 1, 2, "out of range"),
        ("[" + "9" * 41 + "]", 1, 2, "out of range"),
        ("[\u00a0]", 1, 2, "U+00A0"),
        ('{"a": 1} x', 1, 10, "strings must be quoted"),
    ],
)
def test_syntax_errors(text, line, col, words):
    e = err(text)
    assert (e.line, e.col) == (line, col), str(e)
    assert words in e.reason


def test_error_line_and_column_in_a_long_file():
    text = "{\n" + "".join(f'  "k{i}": {i},\n' for i in range(40)) + '  "bad": tru\n}'
    e = err(text)
    assert (e.line, e.col) == (42, 10)
    assert str(e) == "t.jsonc:42:10: unexpected word 'tru': strings must be quoted"


def test_duplicate_keys():
    e = err('{\n "a": 1,\n "b": 2,\n "a": 3\n}')
    assert (e.line, e.col) == (4, 2)
    assert 'duplicate key "a" (first given on line 2)' in e.reason
    doc = parse('{"a": {"x": 1}, "a": [5]}', duplicates="last")
    assert doc.value == {"a": [5]}
    assert ("a", "x") not in doc.positions
    assert ("a", 0) in doc.positions
    with pytest.raises(ValueError):
        parse("{}", duplicates="first")


def test_duplicates_in_different_objects_are_fine():
    assert loads('{"a": {"x": 1}, "b": {"x": 2}}') == {"a": {"x": 1}, "b": {"x": 2}}


def test_invalid_utf8():
    e = err(b'{\n  "a": "\xff"\n}')
    assert (e.line, e.col) == (2, 9)
    assert "invalid UTF-8" in e.reason


def test_lone_surrogate_character_in_text():
    e = err('{"a": "\ud800"}')
    assert "surrogate" in e.reason


def test_non_text_input():
    e = err(42)  # type: ignore[arg-type]
    assert "expected text" in e.reason


def test_error_in_a_later_document():
    e = err('{"a": 1}\n{"b": }')
    assert (e.line, e.col) == (2, 7)


def test_load_file_and_stdin(tmp_path, monkeypatch):
    import io
    import sys

    p = tmp_path / "x.jsonc"
    p.write_text('// c\n{"a": [1,],}')
    assert jsonc.load(p) == {"a": [1]}
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b'{"b": 2}')))
    assert jsonc.load("-") == {"b": 2}
    with pytest.raises(ConfigError, match="no such file"):
        jsonc.load(tmp_path / "missing.jsonc")
    with pytest.raises(ConfigError, match="is a directory"):
        jsonc.load(tmp_path)


def test_float_values_are_finite():
    v = loads("[1.7976931348623157e308, -1e-400]")
    assert all(math.isfinite(x) for x in v)
