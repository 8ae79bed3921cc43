"""Incremental, tolerant parsing of partial JSON: read tool-call arguments while they stream.

LLM APIs stream a tool call's JSON arguments as text fragments (``{"ci``, ``ty": "Par``,
``is", "unit": "c"}``). :class:`PartialJSON` is fed those fragments and can say at any time
what value they hold so far; :func:`parse_partial` does the same for one string::

    >>> p = PartialJSON()
    >>> p.feed('{"city": "Par')
    >>> p.value()
    {'city': 'Par'}
    >>> p.feed('is", "unit": "c"}')
    >>> p.value(), p.complete
    ({'city': 'Paris', 'unit': 'c'}, True)

Partial values follow jiter's ``partial_mode="trailing-strings"`` (what openai-python shows):
an unfinished string is included as far as it goes (minus an escape cut in the middle), a key
that is unfinished or still waits for its value is left out, open arrays and objects are
closed implicitly, an unfinished number counts as its longest valid prefix (``12.`` → 12,
``1.5e+`` → 1.5, a lone ``-`` → nothing) and an unfinished ``true``/``false``/``null`` is left
out until complete. The grammar is strict RFC 8259, exactly what :func:`json.loads` accepts
(minus ``NaN``/``Infinity``): text that can never become valid JSON (``{"a" 1}``, ``[1,]``,
``}``, ``{"a":1}x``) raises :class:`PartialJSONError` from the :meth:`~PartialJSON.feed` that
brought the offending character.

Strategy: the vendor SDKs re-parse the whole prefix for every fragment (O(n²) per call); here
every character is consumed once. The parser is a token-level state machine whose state
survives between fragments: a stack of the open containers, held as live ``dict``/``list``
objects that completed values are assigned into as soon as they complete, plus the one
token in progress. Scanning uses C-level primitives, never a Python loop per character:
whitespace, numbers and string bodies are matched with compiled regexes at the cursor, a
string that ends inside the fragment is decoded in one call to the C ``scanstring`` behind
:func:`json.loads`, one that does not is kept as a list of decoded pieces (the scan jumps
from one ``"``/``\\`` to the next), joined only when read. An unfinished number is continued
from a small automaton state (no re-scan of its digits); an escape or literal cut by the
fragment's end (at most 11 characters) is carried over and re-read with the next fragment:
that is the only text ever scanned twice, which :attr:`PartialJSON.scanned` makes checkable.
:meth:`PartialJSON.value` never looks at consumed text either: it shallow-copies the open
containers along the path to the cursor and attaches the in-progress token, so it costs
O(depth + width of the open containers + length of the string in progress), while completed
subtrees are shared, not copied.
"""

from __future__ import annotations

import json.decoder as _json_decoder
import re
from collections.abc import Callable
from typing import Any, Final

from ._errors import DecodeError, RxgptError

__all__ = ["PartialJSON", "PartialJSONError", "parse_partial"]

#: The C string decoder behind ``json.loads`` (not in typeshed): ``(text, index after the
#: opening quote, strict) -> (decoded, index after the closing quote)``.
_scanstring: Callable[[str, int, bool], tuple[str, int]] = _json_decoder.scanstring  # type: ignore[attr-defined]


class PartialJSONError(DecodeError, ValueError):
    """The text can never become valid JSON; ``position`` is the offending character's offset
    in everything fed so far (``msg`` is the message without the position)."""

    def __init__(self, msg: str, position: int) -> None:
        RxgptError.__init__(self, f"{msg} at position {position}")
        self.raw = ""
        self.index = None
        self.msg = msg
        self.position = position

    def __reduce__(self) -> tuple[type[PartialJSONError], tuple[str, int]]:
        return type(self), (self.msg, self.position)


# Parser states between fragments.
_S_VALUE: Final = 0  # a value must come: top-level start, after ':', after ',' in an array
_S_VALUE_OR_END: Final = 1  # after '[': a value or ']'
_S_KEY_OR_END: Final = 2  # after '{': a key or '}'
_S_KEY: Final = 3  # after ',' in an object: a key
_S_COLON: Final = 4  # after a key: ':'
_S_AFTER: Final = 5  # after a value in a container: ',' or the closing bracket
_S_DONE: Final = 6  # the top-level value is complete: only whitespace may follow
_S_STRING: Final = 7  # inside a string (a key when ``_in_key``)
_S_NUMBER: Final = 8  # inside a number that reached the end of the last fragment

# States of the number automaton -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)? with, for
# each, a shortest text that reaches it (prepended to the next piece to validate it with one
# regex call) and how many trailing characters to drop to get a complete number (-1: none).
_N_START, _N_MINUS, _N_ZERO, _N_INT, _N_DOT, _N_FRAC, _N_E, _N_ESIGN, _N_EXP = range(9)
_NUM_REP: Final = ("", "-", "0", "1", "1.", "1.0", "1e", "1e+", "1e0")
_NUM_TRIM: Final = (-1, -1, 0, 0, 1, 0, 1, 2, 0)

_WS: Final = re.compile(r"[ \t\n\r]+")
_NUM_RUN: Final = re.compile(r"[-+0-9.eE]*")  # what may continue a number
_NUM_FULL: Final = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
# Every prefix of a number; matched greedily it finds the longest valid prefix.
_NUM_PREFIX: Final = re.compile(
    r"-?(?:(?:0|[1-9][0-9]*)(?:(?:\.[0-9]+)?[eE][-+]?[0-9]*|\.[0-9]*)?)?"
)
_STRING_SPECIAL_STRICT: Final = re.compile(r'["\\\x00-\x1f]')
_STRING_SPECIAL_LAX: Final = re.compile(r'["\\]')
_HEX4: Final = re.compile(r"[0-9a-fA-F]{4}")
_HEX_PREFIX: Final = re.compile(r"[0-9a-fA-F]{0,3}")
_ESCAPES: Final = {
    '"': '"',
    "\\": "\\",
    "/": "/",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
}
_LITERALS: Final[dict[str, tuple[str, Any]]] = {
    "t": ("true", True),
    "f": ("false", False),
    "n": ("null", None),
}
_MISSING: Final[Any] = object()


def _classify(text: str) -> int:
    """The number-automaton state after ``text`` (a valid number prefix)."""
    if not text:
        return _N_START
    last = text[-1]
    if last in "eE":
        return _N_E
    if last in "+-":
        return _N_MINUS if len(text) == 1 else _N_ESIGN
    if last == ".":
        return _N_DOT
    if "e" in text or "E" in text:
        return _N_EXP
    if "." in text:
        return _N_FRAC
    if text == "0" or text == "-0":
        return _N_ZERO
    return _N_INT


def _to_number(token: str) -> int | float:
    """Convert a complete number token as :func:`json.loads` does (int unless . e E)."""
    if "." in token or "e" in token or "E" in token:
        return float(token)
    return int(token)  # ValueError past sys.get_int_max_str_digits(), like json.loads


class PartialJSON:
    """Feed JSON text fragments; read the value parsed so far at any time.

    Sans-IO: :meth:`feed` text as it arrives, call :meth:`value` whenever a view is wanted,
    :meth:`finish` at the end of the input. Each :meth:`feed` costs O(len(fragment))
    amortised, however long the text already is.

    ``strict=False`` allows raw control characters inside strings (as ``json.loads``'s
    ``strict`` does). After a :class:`PartialJSONError` every further :meth:`feed` raises it
    again; :meth:`value` keeps returning what was parsed before the error.

    A documented state machine: its state between fragments is one of the ``_S_*``
    constants below (what may come next) and the stack of open containers; ``_run`` is
    its transition loop over a fragment.
    """

    #: The most characters re-read from one fragment with the next: an escape cut in the
    #: middle (``\\ud83d\\udc0``) or an unfinished literal.
    MAX_CARRY: Final = 11

    def __init__(self, *, strict: bool = True) -> None:
        self._strict = strict
        self._special = _STRING_SPECIAL_STRICT if strict else _STRING_SPECIAL_LAX
        self._state: int = _S_VALUE
        self._containers: list[dict[str, Any] | list[Any]] = []  # open containers, outermost first
        self._keys: list[str] = []  # per open container: the key of its value in progress
        self._in_key = False
        self._pieces: list[str] = []  # decoded pieces of the string in progress
        self._num_pieces: list[str] = []  # text of the number in progress
        self._num_state = _N_START
        self._carry = ""  # an escape or literal cut by the end of the last fragment
        self._result: Any = None
        self._complete = False
        self._error: PartialJSONError | None = None
        self._fragments: list[str] = []
        self._consumed = 0  # characters fed before the current fragment
        self._base = 0  # offset of the current buffer (carry + fragment) in the whole text
        #: Characters the cursor has advanced over in total: ``len(text)`` plus the carried
        #: characters re-read (at most :attr:`MAX_CARRY` per :meth:`feed`).
        self.scanned = 0

    def __repr__(self) -> str:
        return (
            f"<PartialJSON complete={self._complete} fed={self._consumed} "
            f"depth={len(self._containers)}>"
        )

    # ------------------------------------------------------------------ public API

    @property
    def complete(self) -> bool:
        """Whether a whole top-level value has been parsed.

        A top-level number is complete only once something ends it (whitespace, or
        :meth:`finish`): ``12`` could still become ``123``.
        """
        return self._complete

    @property
    def text(self) -> str:
        """All the text fed so far (joined on demand, once)."""
        fragments = self._fragments
        if len(fragments) > 1:
            joined = "".join(fragments)
            fragments[:] = [joined]
        return fragments[0] if fragments else ""

    def feed(self, fragment: str) -> None:
        """Parse ``fragment``, the next piece of the text.

        Raises :class:`PartialJSONError` as soon as the text can no longer become valid JSON.
        """
        if self._error is not None:
            raise self._error
        if not fragment:
            return
        self._fragments.append(fragment)
        carry = self._carry
        if carry:
            self._carry = ""
            buf = carry + fragment
        else:
            buf = fragment
        self._base = self._consumed - len(carry)
        self._consumed += len(fragment)
        try:
            self.scanned += self._run(buf)
        except PartialJSONError as error:
            self._error = error
            raise

    def value(self, default: Any = None, *, trailing_strings: bool = True) -> Any:
        """The value parsed so far, ``default`` while there is none (e.g. before any text).

        ``trailing_strings=False`` leaves out a string still in progress (and its key),
        as jiter's partial mode "on" (what the anthropic SDK uses) does.

        Once :attr:`complete`, the parsed value itself. Before that, a fresh structure: the
        open containers are shallow-copied and closed, with the unfinished string or number
        attached; completed subtrees inside it are shared with the parser and with earlier
        results, so treat them as read-only.
        """
        if self._complete:
            return self._result
        state = self._state
        node: Any = _MISSING
        if state == _S_STRING:
            if not self._in_key and trailing_strings:
                node = self._partial_string()
        elif state == _S_NUMBER:
            node = self._partial_number()
        containers = self._containers
        keys = self._keys
        for i in range(len(containers) - 1, -1, -1):
            container = containers[i]
            if isinstance(container, list):
                items = container.copy()
                if node is not _MISSING:
                    items.append(node)
                node = items
            else:
                members = container.copy()
                if node is not _MISSING:
                    members[keys[i]] = node
                node = members
        return default if node is _MISSING else node

    def finish(self) -> Any:
        """Declare the end of the input and return the complete value.

        Completes a top-level number still open; raises :class:`PartialJSONError` if the text
        is not one whole JSON value.
        """
        if self._error is not None:
            raise self._error
        if self._state == _S_NUMBER and not self._containers:
            if _NUM_TRIM[self._num_state] != 0:
                raise PartialJSONError("incomplete number", self._consumed)
            token = "".join(self._num_pieces)
            self._num_pieces.clear()
            self._emit(self._convert(token, self._consumed))
        if not self._complete:
            raise PartialJSONError("unexpected end of JSON text", self._consumed)
        return self._result

    # ------------------------------------------------------------------ scanning

    def _fail(self, msg: str, buf: str, index: int) -> PartialJSONError:
        if index < len(buf):
            msg = f"{msg}, found {buf[index]!r}"
        return PartialJSONError(msg, self._base + index)

    def _run(self, buf: str) -> int:
        """Consume the whole of ``buf``; return how far the cursor went (``len(buf)``)."""
        n = len(buf)
        pos = 0
        containers = self._containers
        while pos < n:
            state = self._state
            if state == _S_STRING:
                pos = self._scan_string(buf, pos)
                continue
            if state == _S_NUMBER:
                pos = self._continue_number(buf, pos)
                continue
            c = buf[pos]
            if c in " \t\n\r":
                match = _WS.match(buf, pos)
                if match is not None:
                    pos = match.end()
                if pos >= n:
                    break
                c = buf[pos]
            if state == _S_AFTER:
                top = containers[-1]
                is_list = isinstance(top, list)
                if c == ",":
                    self._state = _S_VALUE if is_list else _S_KEY
                elif c == ("]" if is_list else "}"):
                    containers.pop()
                    self._keys.pop()
                    self._emit(top)
                else:
                    expected = "',' or ']'" if is_list else "',' or '}'"
                    raise self._fail(f"expected {expected}", buf, pos)
                pos += 1
            elif state <= _S_VALUE_OR_END:
                pos = self._start_value(buf, pos, c)
            elif state <= _S_KEY:
                if c == '"':
                    pos = self._start_string(buf, pos, key=True)
                elif c == "}" and state == _S_KEY_OR_END:
                    top = containers.pop()
                    self._keys.pop()
                    self._emit(top)
                    pos += 1
                else:
                    raise self._fail("expected a string key", buf, pos)
            elif state == _S_COLON:
                if c != ":":
                    raise self._fail("expected ':'", buf, pos)
                self._state = _S_VALUE
                pos += 1
            else:  # _S_DONE
                raise self._fail("unexpected data after the JSON value", buf, pos)
        return pos

    def _emit(self, value: Any) -> None:
        """A value is complete: store it in the open container, or as the result."""
        containers = self._containers
        if containers:
            top = containers[-1]
            if isinstance(top, list):
                top.append(value)
            else:
                top[self._keys[-1]] = value
            self._state = _S_AFTER
        else:
            self._result = value
            self._complete = True
            self._state = _S_DONE

    def _start_value(self, buf: str, pos: int, c: str) -> int:
        if c == '"':
            return self._start_string(buf, pos, key=False)
        if c in "-0123456789":
            return self._start_number(buf, pos)
        if c == "{":
            self._containers.append({})
            self._keys.append("")
            self._state = _S_KEY_OR_END
            return pos + 1
        if c == "[":
            self._containers.append([])
            self._keys.append("")
            self._state = _S_VALUE_OR_END
            return pos + 1
        if c == "]" and self._state == _S_VALUE_OR_END:
            top = self._containers.pop()
            self._keys.pop()
            self._emit(top)
            return pos + 1
        literal = _LITERALS.get(c)
        if literal is None:
            raise self._fail("expected a JSON value", buf, pos)
        word, value = literal
        if buf.startswith(word, pos):
            self._emit(value)
            return pos + len(word)
        rest = buf[pos : pos + len(word)]
        k = 1
        while k < len(rest) and rest[k] == word[k]:
            k += 1
        if k < len(rest):
            raise self._fail(f"invalid literal (expected {word!r})", buf, pos + k)
        self._carry = rest  # cut by the end of the fragment: re-read with the next one
        return len(buf)

    # ---- strings

    def _start_string(self, buf: str, pos: int, *, key: bool) -> int:
        self._in_key = key
        try:  # the common case, a string that ends in this buffer: decode it in C
            text, end = _scanstring(buf, pos + 1, self._strict)
        except ValueError:  # it runs past the buffer (or is invalid: the slow path says)
            self._state = _S_STRING
            return self._scan_string(buf, pos + 1)
        self._string_done(text)
        return end

    def _string_done(self, text: str) -> None:
        if self._in_key:
            self._keys[-1] = text
            self._state = _S_COLON
        else:
            self._emit(text)

    def _scan_string(self, buf: str, pos: int) -> int:
        """Continue the string in progress from ``buf[pos]``; return the new position."""
        n = len(buf)
        pieces = self._pieces
        search = self._special.search
        while True:
            match = search(buf, pos)
            if match is None:
                if pos < n:
                    pieces.append(buf[pos:])
                return n
            j = match.start()
            if j > pos:
                pieces.append(buf[pos:j])
            c = buf[j]
            if c == '"':
                text = "".join(pieces)
                pieces.clear()
                self._string_done(text)
                return j + 1
            if c != "\\":
                raise self._fail("invalid control character in string", buf, j)
            decoded = self._unescape(buf, j)
            if decoded is None:  # cut by the end of the fragment: re-read with the next one
                self._carry = buf[j:]
                return n
            pieces.append(decoded[0])
            pos = decoded[1]

    def _unescape(self, buf: str, j: int) -> tuple[str, int] | None:
        """Decode the escape at ``buf[j] == "\\\\"``: (text, end), or None if incomplete.

        Surrogate pairs are joined as :func:`json.loads` joins them (a lone surrogate is
        kept as is), so a high surrogate waits for what follows it.
        """
        n = len(buf)
        if j + 1 >= n:
            return None
        c = buf[j + 1]
        if c != "u":
            char = _ESCAPES.get(c)
            if char is None:
                raise self._fail("invalid escape", buf, j + 1)
            return char, j + 2
        code = self._hex4(buf, j + 2)
        if code < 0:
            return None
        end = j + 6
        if 0xD800 <= code <= 0xDBFF:
            if end >= n or (buf[end] == "\\" and end + 1 >= n):
                return None
            if buf[end] == "\\" and buf[end + 1] == "u":
                low = self._hex4(buf, end + 2)
                if low < 0:
                    return None
                if 0xDC00 <= low <= 0xDFFF:
                    return chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)), end + 6
        return chr(code), end

    def _hex4(self, buf: str, k: int) -> int:
        """The 4 hex digits at ``buf[k]``; -1 if the buffer ends first."""
        match = _HEX4.match(buf, k)
        if match is not None:
            return int(match.group(), 16)
        prefix = _HEX_PREFIX.match(buf, k)
        end = prefix.end() if prefix is not None else k
        if end == len(buf):
            return -1
        raise self._fail("invalid \\uXXXX escape", buf, end)

    def _partial_string(self) -> str:
        pieces = self._pieces
        if not pieces:
            return ""
        if len(pieces) > 1:
            joined = "".join(pieces)
            pieces[:] = [joined]  # later reads only join what arrived since
        return pieces[0]

    # ---- numbers

    def _bad_number(self, token: str, buf: str, start: int, end: int) -> PartialJSONError:
        match = _NUM_PREFIX.match(token)
        valid = match.end() if match is not None else 0
        if valid < len(token):
            return self._fail("invalid number", buf, start + valid)
        return self._fail("incomplete number", buf, end)

    def _convert(self, token: str, position: int) -> int | float:
        try:
            return _to_number(token)
        except ValueError:
            raise PartialJSONError("number too large to convert", position) from None

    def _start_number(self, buf: str, pos: int) -> int:
        n = len(buf)
        match = _NUM_RUN.match(buf, pos)
        end = match.end() if match is not None else pos
        token = buf[pos:end]
        if end < n:  # something ends it within this buffer: the fast path
            if _NUM_FULL.fullmatch(token) is None:
                raise self._bad_number(token, buf, pos, end)
            self._emit(self._convert(token, self._base + pos))
            return end
        prefix = _NUM_PREFIX.match(token)
        valid = prefix.end() if prefix is not None else 0
        if valid < len(token):
            raise self._fail("invalid number", buf, pos + valid)
        self._num_pieces = [token]
        self._num_state = _classify(token)
        self._state = _S_NUMBER
        return n

    def _continue_number(self, buf: str, pos: int) -> int:
        match = _NUM_RUN.match(buf, pos)
        end = match.end() if match is not None else pos
        state = self._num_state
        if end > pos:
            run = buf[pos:end]
            rep = _NUM_REP[state]
            probe = rep + run  # validate the continuation from the automaton state only
            prefix = _NUM_PREFIX.match(probe)
            valid = prefix.end() if prefix is not None else 0
            if valid < len(probe):
                raise self._fail("invalid number", buf, pos + valid - len(rep))
            state = _classify(probe)
            self._num_pieces.append(run)
        if end == len(buf):
            self._num_state = state
            return end
        if _NUM_TRIM[state] != 0:
            raise self._fail("incomplete number", buf, end)
        token = "".join(self._num_pieces)
        self._num_pieces.clear()
        self._emit(self._convert(token, self._base + end))
        return end

    def _partial_number(self) -> Any:
        trim = _NUM_TRIM[self._num_state]
        if trim < 0:
            return _MISSING
        pieces = self._num_pieces
        if len(pieces) > 1:
            pieces[:] = ["".join(pieces)]
        token = pieces[0][:-trim] if trim else pieces[0]
        try:
            return _to_number(token)
        except ValueError:  # an integer past the digit limit: it will fail when complete
            return _MISSING


def parse_partial(
    text: str, default: Any = None, *, strict: bool = True, trailing_strings: bool = True
) -> Any:
    """Parse a possibly cut-off JSON text tolerantly: the value it holds so far.

    ``default`` when there is none yet (empty text, ``-``, ``tru``). Raises
    :class:`PartialJSONError` if the text can never become valid JSON.
    """
    parser = PartialJSON(strict=strict)
    parser.feed(text)
    return parser.value(default, trailing_strings=trailing_strings)
