"""JSON-C reader: JSON as CNDP's json-c tokener accepts it, with positions for every value.

What it accepts beyond strict JSON (the json-c non-strict mode CNDP's jcfg uses):

- ``// line`` and ``/* block */`` comments anywhere whitespace may stand;
- one trailing comma in an object or array (``[1, 2,]``, ``{"a": 1,}``);
- several top-level documents one after another: **the last one is the result** (json-c parses
  them in turn and jcfg keeps the last root); :attr:`Document.count` says how many there were;
- single-quoted strings and ``true``/``false``/``null`` in any letter case (json-c non-strict).

What it refuses, each with ``source:line:col:`` and a reason (never a Python traceback):
unterminated strings and comments, leading zeros, ``NaN``/``Infinity``, unquoted words, NUL
characters, invalid UTF-8, lone UTF-16 surrogates, nesting deeper than json-c's 32 levels,
and (by default) a key given twice in one object.

Object key order is preserved (``dict``), which matters to CNDP: an lport's index is its
position in ``lports``. Every value's position is kept in :attr:`Document.positions`, keyed by
its path (a tuple of object keys and array indices; ``()`` is the root), so later stages can say
*where* a bad value is.

Written by hand (no third-party parser) so that positions, duplicate keys and json-c's
leniencies are all under our control; it runs in linear time on any input.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = [
    "MAX_DEPTH",
    "Document",
    "JsoncError",
    "format_path",
    "load",
    "loads",
    "parse",
]

MAX_DEPTH = 32  # json-c's JSON_TOKENER_DEFAULT_DEPTH
MAX_NUMBER_DIGITS = 40  # far beyond any int64; keeps int() linear

PathT = tuple[str | int, ...]

_WS = re.compile(r"[ \t\n\r\f\v]+")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_WORD = re.compile(r"[A-Za-z0-9_$.+\-]+")
_DQ_CHUNK = re.compile(r'[^"\\\x00-\x1f]+')
_SQ_CHUNK = re.compile(r"[^'\\\x00-\x1f]+")
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")
_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")
_SIMPLE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*\Z")
_ESCAPES = {
    '"': '"',
    "'": "'",
    "\\": "\\",
    "/": "/",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
}
_LITERALS = {"true": True, "false": False, "null": None}


class JsoncError(ConfigError):
    """The text is not valid JSON-C. ``source``, ``line`` and ``col`` (1-based) say where."""

    def __init__(self, source: str, line: int, col: int, reason: str):
        self.source = source
        self.line = line
        self.col = col
        self.reason = reason
        super().__init__(f"{source}:{line}:{col}: {reason}")


def format_path(path: PathT) -> str:
    """``('lports', 'eth0:0', 'qid')`` -> ``lports."eth0:0".qid``; indices as ``[3]``."""
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
            continue
        seg = p if _SIMPLE_KEY.match(p) else _quote(p)
        out += ("." if out else "") + seg
    return out or "(root)"


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class Document:
    """The result of :func:`parse`: the last top-level value, with positions."""

    value: Any
    source: str = "<string>"
    count: int = 1  # how many top-level documents the text held
    positions: dict[PathT, int] = field(default_factory=dict)  # path -> offset of the value
    key_positions: dict[PathT, int] = field(default_factory=dict)  # path -> offset of its key
    text: str = ""
    _lines: list[int] = field(default_factory=list, repr=False)

    def linecol(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a character offset in the text."""
        if not self._lines:
            self._lines = [m.end() for m in re.finditer("\n", self.text)]
        line = bisect.bisect_right(self._lines, offset)
        start = self._lines[line - 1] if line else 0
        return line + 1, offset - start + 1

    def line_of(self, path: PathT, *, key: bool = False) -> int | None:
        """Line of the value at ``path`` (or of its key with ``key=True``); for a path that
        does not exist, the line of its nearest existing parent. None when unknown."""
        p = tuple(path)
        while True:
            table = self.key_positions if key else self.positions
            if p in table:
                return self.linecol(table[p])[0]
            if key and p in self.positions:
                return self.linecol(self.positions[p])[0]
            if not p:
                return None
            p = p[:-1]


class _Parser:
    def __init__(self, text: str, source: str, duplicates: str):
        self.s = text
        self.n = len(text)
        self.i = 0
        self.source = source
        self.duplicates = duplicates
        self.positions: dict[PathT, int] = {}
        self.key_positions: dict[PathT, int] = {}
        self._lines: list[int] | None = None

    # -- errors

    def error(self, reason: str, at: int | None = None) -> JsoncError:
        at = self.i if at is None else at
        if self._lines is None:
            self._lines = [m.end() for m in re.finditer("\n", self.s)]
        line = bisect.bisect_right(self._lines, at)
        start = self._lines[line - 1] if line else 0
        return JsoncError(self.source, line + 1, at - start + 1, reason)

    def _describe(self, at: int) -> str:
        if at >= self.n:
            return "end of input"
        c = self.s[at]
        m = _WORD.match(self.s, at)
        if m and (c.isalnum() or c in "_$"):
            word = m.group()
            return repr(word if len(word) <= 20 else word[:20] + "...")
        if c.isprintable() and not c.isspace():
            return repr(c)
        return f"character U+{ord(c):04X}"

    # -- whitespace and comments

    def ws(self) -> None:
        s, n = self.s, self.n
        while self.i < n:
            m = _WS.match(s, self.i)
            if m:
                self.i = m.end()
                continue
            if s.startswith("//", self.i):
                j = s.find("\n", self.i)
                self.i = n if j < 0 else j + 1
                continue
            if s.startswith("/*", self.i):
                j = s.find("*/", self.i + 2)
                if j < 0:
                    raise self.error("unterminated /* comment (no closing */)")
                self.i = j + 2
                continue
            if s[self.i] == "/":
                raise self.error("unexpected '/': comments start with // or /*")
            return

    # -- values

    def value(self, path: PathT, depth: int) -> Any:
        if self.i >= self.n:
            raise self.error("expected a value, got end of input")
        c = self.s[self.i]
        self.positions[path] = self.i
        if c == "{":
            return self.obj(path, depth + 1)
        if c == "[":
            return self.arr(path, depth + 1)
        if c in "\"'":
            return self.string()
        if c == "-" or c.isdigit():
            return self.number()
        m = _WORD.match(self.s, self.i)
        if m and c == ".":
            raise self.error(f"invalid number {m.group()[:20]!r} (needs a digit before the '.')")
        if m:
            word = m.group()
            low = word.lower()
            if low in _LITERALS:
                self.i = m.end()
                return _LITERALS[low]
            if low.lstrip("+-") in ("nan", "infinity", "inf"):
                raise self.error(f"{word} is not allowed: JSON numbers must be finite")
            if word.startswith("+"):
                raise self.error(f"number {word!r} must not start with '+'")
            shown = word if len(word) <= 20 else word[:20] + "..."
            raise self.error(f"unexpected word {shown!r}: strings must be quoted")
        raise self.error(f"expected a value, got {self._describe(self.i)}")

    def obj(self, path: PathT, depth: int) -> dict:
        if depth > MAX_DEPTH:
            raise self.error(f"nesting deeper than {MAX_DEPTH} levels (json-c's limit)")
        self.i += 1  # {
        out: dict[str, Any] = {}
        key_at: dict[str, int] = {}
        self.ws()
        if self.i < self.n and self.s[self.i] == "}":
            self.i += 1
            return out
        while True:
            if self.i >= self.n:
                raise self.error("unterminated object: expected a key or '}', got end of input")
            c = self.s[self.i]
            if c not in "\"'":
                if c == ",":
                    raise self.error("unexpected ',': expected a key or '}'")
                if c == "}":  # only reachable after a comma: a trailing comma is fine
                    self.i += 1
                    return out
                raise self.error(f"expected a quoted key or '}}', got {self._describe(self.i)}")
            kpos = self.i
            key = self.string()
            self.ws()
            if self.i >= self.n or self.s[self.i] != ":":
                raise self.error(
                    f"expected ':' after key {_quote(key)}, got {self._describe(self.i)}"
                )
            self.i += 1
            self.ws()
            sub = (*path, key)
            if key in out:
                if self.duplicates == "error":
                    first = self.error("", key_at[key]).line
                    raise self.error(
                        f"duplicate key {_quote(key)} (first given on line {first})", kpos
                    )
                self._forget(sub)
            key_at[key] = kpos
            self.key_positions[sub] = kpos
            out[key] = self.value(sub, depth)
            self.ws()
            if self.i >= self.n:
                raise self.error("unterminated object: expected ',' or '}', got end of input")
            c = self.s[self.i]
            if c == "}":
                self.i += 1
                return out
            if c != ",":
                raise self.error(
                    f"expected ',' or '}}' after the value of {_quote(key)}, "
                    f"got {self._describe(self.i)}"
                )
            self.i += 1
            self.ws()

    def _forget(self, prefix: PathT) -> None:
        """Drop positions under ``prefix`` (a duplicate key replaces an earlier value)."""
        k = len(prefix)
        for table in (self.positions, self.key_positions):
            for p in [p for p in table if p[:k] == prefix]:
                del table[p]

    def arr(self, path: PathT, depth: int) -> list:
        if depth > MAX_DEPTH:
            raise self.error(f"nesting deeper than {MAX_DEPTH} levels (json-c's limit)")
        self.i += 1  # [
        out: list[Any] = []
        self.ws()
        if self.i < self.n and self.s[self.i] == "]":
            self.i += 1
            return out
        while True:
            if self.i >= self.n:
                raise self.error("unterminated array: expected a value or ']', got end of input")
            c = self.s[self.i]
            if c == ",":
                raise self.error("unexpected ',': expected a value or ']'")
            if c == "]":  # only after a comma: trailing comma
                self.i += 1
                return out
            out.append(self.value((*path, len(out)), depth))
            self.ws()
            if self.i >= self.n:
                raise self.error("unterminated array: expected ',' or ']', got end of input")
            c = self.s[self.i]
            if c == "]":
                self.i += 1
                return out
            if c != ",":
                raise self.error(
                    f"expected ',' or ']' after array element {len(out) - 1}, "
                    f"got {self._describe(self.i)}"
                )
            self.i += 1
            self.ws()

    def string(self) -> str:
        s = self.s
        start = self.i
        quote = s[start]
        chunk = _DQ_CHUNK if quote == '"' else _SQ_CHUNK
        self.i += 1
        parts: list[str] = []
        while True:
            m = chunk.match(s, self.i)
            if m:
                parts.append(m.group())
                self.i = m.end()
            if self.i >= self.n:
                raise self.error("unterminated string (no closing quote)", start)
            c = s[self.i]
            if c == quote:
                self.i += 1
                return "".join(parts)
            if c == "\\":
                parts.append(self.escape())
                continue
            if c in "\n\r":
                raise self.error("unterminated string (a newline inside a string)", start)
            if c == "\t":  # json-c accepts a raw tab inside a string
                parts.append(c)
                self.i += 1
                continue
            if c in "\"'":  # the other quote character
                parts.append(c)
                self.i += 1
                continue
            raise self.error(f"control character U+{ord(c):04X} in a string: escape it")

    def escape(self) -> str:
        s = self.s
        at = self.i
        if at + 1 >= self.n:
            raise self.error("unterminated string (input ends after a backslash)")
        c = s[at + 1]
        if c in _ESCAPES:
            self.i += 2
            return _ESCAPES[c]
        if c != "u":
            raise self.error(f"invalid escape '\\{c}' in a string")
        hi = self._hex4(at)
        if 0xD800 <= hi <= 0xDBFF:  # a high surrogate must be followed by \uDC00-\uDFFF
            if s.startswith("\\u", self.i):
                lo_at = self.i
                lo = self._hex4(lo_at)
                if 0xDC00 <= lo <= 0xDFFF:
                    return chr(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                raise self.error("invalid \\u escape: a high surrogate needs a low one", lo_at)
            raise self.error("invalid \\u escape: lone UTF-16 surrogate", at)
        if 0xDC00 <= hi <= 0xDFFF:
            raise self.error("invalid \\u escape: lone UTF-16 surrogate", at)
        if hi == 0:
            raise self.error("\\u0000 (NUL) is not allowed in a string", at)
        return chr(hi)

    def _hex4(self, at: int) -> int:
        m = _HEX4.match(self.s, at + 2)
        if not m:
            raise self.error("invalid \\u escape: expected 4 hex digits", at)
        self.i = m.end()
        return int(m.group(), 16)

    def number(self) -> int | float:
        start = self.i
        m = _NUMBER.match(self.s, start)
        if not m:
            w = _WORD.match(self.s, start)
            word = w.group() if w else self.s[start]
            if word.lower().lstrip("-") in ("nan", "infinity", "inf"):
                raise self.error(f"{word} is not allowed: JSON numbers must be finite", start)
            raise self.error(f"invalid number {word[:20]!r}", start)
        end = m.end()
        text = m.group()
        if end < self.n and (self.s[end].isalnum() or self.s[end] in "._"):
            w = _WORD.match(self.s, start)
            word = w.group() if w else text
            if re.match(r"-?0[0-9]", word):
                raise self.error(f"number {word!r} has a leading zero (octal is not JSON)", start)
            if re.match(r"-?0[xX]", word):
                raise self.error(f"hexadecimal number {word!r} is not JSON: use decimal", start)
            raise self.error(f"invalid number {word[:20]!r}", start)
        digits = len(text) - text.startswith("-")
        if digits > MAX_NUMBER_DIGITS:
            raise self.error(f"number with {digits} digits is out of range", start)
        self.i = end
        if any(c in text for c in ".eE"):
            v = float(text)
            if v in (float("inf"), float("-inf")):
                raise self.error(f"number {text!r} is out of range", start)
            return v
        return int(text)

    # -- top level

    def documents(self) -> tuple[Any, int, int]:
        """Parse every top-level value; returns (last value, count, offset of the last)."""
        count = 0
        last: Any = None
        last_at = 0
        self.ws()
        while self.i < self.n:
            self.positions = {}
            self.key_positions = {}
            last_at = self.i
            last = self.value((), 0)
            count += 1
            self.ws()
        if count == 0:
            raise self.error("empty input: no JSON document (only whitespace or comments)")
        return last, count, last_at


def _decode_bytes(data: bytes, source: str) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        head = data[: e.start]
        line = head.count(b"\n") + 1
        col = len(head[head.rfind(b"\n") + 1 :].decode("utf-8", "replace")) + 1
        raise JsoncError(source, line, col, f"invalid UTF-8 (byte 0x{data[e.start]:02x})") from None


def parse(
    text: str | bytes | bytearray, source: str = "<string>", *, duplicates: str = "error"
) -> Document:
    """Parse JSON-C text; the last top-level document wins.

    ``duplicates`` is ``"error"`` (a key given twice in one object is an error, naming both
    lines) or ``"last"`` (json-c's behaviour: the later value replaces the earlier one).
    Raises :class:`JsoncError` for anything that is not valid JSON-C.
    """
    if duplicates not in ("error", "last"):
        raise ValueError("duplicates must be 'error' or 'last'")
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = _decode_bytes(bytes(text), source)
    elif not isinstance(text, str):
        raise JsoncError(source, 1, 1, f"expected text, got {type(text).__name__}")
    if text.startswith("\ufeff"):
        text = text[1:]
    p = _Parser(text, source, duplicates)
    bad = _BAD_CHARS.search(text)
    if bad:
        what = "NUL character" if bad.group() == "\x00" else "lone UTF-16 surrogate"
        raise p.error(f"{what} (U+{ord(bad.group()):04X}) in the input", bad.start())
    value, count, _ = p.documents()
    return Document(
        value=value,
        source=source,
        count=count,
        positions=p.positions,
        key_positions=p.key_positions,
        text=text,
    )


def loads(text: str | bytes, source: str = "<string>", *, duplicates: str = "error") -> Any:
    """Parse JSON-C text and return the (last) value."""
    return parse(text, source, duplicates=duplicates).value


def load(path: str | Path, *, duplicates: str = "error") -> Any:
    """Read and parse a JSON-C file (``"-"`` reads stdin); returns the (last) value."""
    return parse(read_source(path), str(path), duplicates=duplicates).value


def read_source(path: str | Path) -> bytes:
    """The bytes of a file, or of stdin for ``"-"``; errors become :class:`ConfigError`."""
    import sys

    if str(path) == "-":
        try:
            return sys.stdin.buffer.read()
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot read the configuration from stdin: {e}") from None
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such file", errno=2, fix="check the path of the configuration file"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a configuration file", errno=21) from None
    except PermissionError:
        raise ConfigError(f"{path}: permission denied", errno=13) from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}", errno=e.errno) from None
