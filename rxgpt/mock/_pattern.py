"""Strings that a JSON Schema ``pattern`` matches, for tool arguments and structured output.

OpenAI's strict mode (and every structured-output engine) honours ``pattern``, so the mock
must too. :func:`pattern_string` walks the regular expression's parse tree (the standard
library's own parser, so the dialect read is exactly what :mod:`re` matches) and builds a
string it matches: literals, classes and their negations, ``\\d \\w \\s``, ``.``,
alternation, groups and back-references, bounded and unbounded repeats. Anchors need
nothing; lookarounds are not followed (the string may then miss). A pattern that does not
compile, or is longer than :data:`MAX_PATTERN`, gives ``None``: the caller ignores it.

The pattern is the client's, and :mod:`re` backtracks: a hostile pattern (``(a|a|a)*b``)
takes exponential time on a string of a few dozen characters, inside C, where no signal
stops it. So :mod:`re` never runs a client's pattern here. :func:`takes` (is a word of the
answer vocabulary, or the weather trigger's "Paris", a match?) walks the same parse tree
over sets of positions instead: polynomial, with a budget, and conservative (``False``)
where it does not follow the tree (back-references, lookarounds, flags).
"""

from __future__ import annotations

import functools
import random
import re
import string
from collections.abc import Sequence

# (re._parser is the parser re itself compiles with: the private name since 3.11, where the
# public sre_parse became a deprecated alias of it)
from re import _constants as _c  # type: ignore[attr-defined]
from re import _parser  # type: ignore[attr-defined]
from typing import Any

__all__ = ["MAX_PATTERN", "pattern_string", "takes"]

#: A longer pattern is not followed (a schema's patterns are short; the parse is cached).
MAX_PATTERN = 1000
#: Words tried against the pattern (:func:`takes`) are at most this long.
_WORD_CHARS = 64
#: Steps (a tree item applied to a set of positions) one :func:`takes` may take.
_MATCH_STEPS = 20_000
#: Items one built string may take (a repeat of an empty group, ``(?:){9999}{9999}``, ends).
_BUILD_STEPS = 100_000
#: How many times a string is built to fit ``minLength`` / ``maxLength``.
_ATTEMPTS = 12
#: What a character class or ``.`` draws from, when it allows one of them.
_PRINTABLE = string.ascii_letters + string.digits + " -_.,:;@#/+=()!?*&%$'\""
#: An unbounded repeat (``*``, ``+``, ``{n,}``) adds at most this many to its minimum at first.
_EXTRA = 3


@functools.lru_cache(maxsize=256)
def _parsed(pattern: str) -> Any:
    """The parse tree of ``pattern`` (:mod:`re`'s own); ``None`` for a pattern not to follow
    (one that :func:`re.compile` refuses, or longer than :data:`MAX_PATTERN`)."""
    if len(pattern) > MAX_PATTERN:
        return None
    try:
        re.compile(pattern)  # (checks what the parser alone lets through: a{2,1}...)
        return _parser.parse(pattern)
    except (re.error, RecursionError, OverflowError, ValueError):
        return None


def pattern_string(
    pattern: Any, rng: random.Random, low: int, high: int, words: Sequence[str] = ()
) -> str | None:
    """A string matched by ``pattern`` (``re.search``, as JSON Schema reads a pattern), of
    ``low`` to ``high`` characters where the pattern allows; ``None`` when ``pattern`` is not
    a string, does not compile or is too long.

    A word of ``words`` that the pattern matches is taken first (a natural value), else one
    is built from the pattern.
    """
    parsed = _tree(pattern)
    if parsed is None:
        return None
    for word in rng.sample(list(words), min(len(words), 8)):
        if low <= len(word) <= high and _takes(parsed, word):
            return word
    text = ""
    for attempt in range(_ATTEMPTS):
        # later attempts allow longer repeats (a minLength the first ones fell short of)
        extra = _EXTRA + attempt * max(1, low // 4)
        parts: list[str] = []
        _Builder(rng, extra, max(high, low)).sequence(parsed, parts)
        text = "".join(parts)
        if low <= len(text) <= high:
            return text
    return text


def takes(pattern: Any, text: str) -> bool:
    """Whether ``pattern`` matches ``text`` somewhere (as ``re.search`` would); False for a
    pattern not followed, a ``text`` longer than :data:`_WORD_CHARS`, or where the walk
    does not follow the pattern or runs out of steps (see the module's docstring)."""
    parsed = _tree(pattern)
    return parsed is not None and _takes(parsed, text)


def _tree(pattern: Any) -> Any:
    """:func:`_parsed` of a ``pattern`` that may be any JSON value (``None`` if not a str)."""
    return _parsed(pattern) if isinstance(pattern, str) else None


def _takes(parsed: Any, text: str) -> bool:
    return len(text) <= _WORD_CHARS and _Matcher(text).search(parsed)


class _Unfollowed(Exception):
    """The matcher met what it does not follow, or ran out of steps."""


class _Matcher:
    """Matches a parse tree against ``text`` over sets of positions (no backtracking).

    :meth:`ends` gives every position where ``items`` can end, started at any position of a
    set: a repeat iterates until the set empties or stops changing (at most ``len(text)+2``
    rounds however large its count), so a pattern costs a polynomial number of steps,
    capped by :data:`_MATCH_STEPS`.
    """

    __slots__ = ("steps", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.steps = _MATCH_STEPS

    def search(self, parsed: Any) -> bool:
        if parsed.state.flags & (re.IGNORECASE | re.MULTILINE | re.DOTALL | re.VERBOSE):
            return False  # (flags change what items match: not followed)
        try:
            return bool(self.ends(parsed, frozenset(range(len(self.text) + 1))))
        except (_Unfollowed, RecursionError):
            return False

    def ends(self, items: Any, at: frozenset[int]) -> frozenset[int]:
        for op, arg in items:
            if not at:
                break
            at = self.item(op, arg, at)
        return at

    def item(self, op: Any, arg: Any, at: frozenset[int]) -> frozenset[int]:
        self.steps -= 1
        if self.steps < 0:
            raise _Unfollowed
        c, text = _c, self.text
        if op is c.LITERAL:
            return frozenset(p + 1 for p in at if p < len(text) and ord(text[p]) == arg)
        if op is c.NOT_LITERAL:
            return frozenset(p + 1 for p in at if p < len(text) and ord(text[p]) != arg)
        if op is c.ANY:
            return frozenset(p + 1 for p in at if p < len(text) and text[p] != "\n")
        if op is c.IN:
            negate = bool(arg) and arg[0][0] is c.NEGATE
            members = arg[1:] if negate else arg
            return frozenset(
                p + 1 for p in at if p < len(text) and _in_class(members, ord(text[p])) != negate
            )
        if op is c.BRANCH:
            return frozenset().union(*(self.ends(branch, at) for branch in arg[1]))
        if op is c.SUBPATTERN:
            _, add_flags, del_flags, items = arg
            if add_flags or del_flags:
                raise _Unfollowed
            return self.ends(items, at)
        if op in (c.MAX_REPEAT, c.MIN_REPEAT):
            least, most, items = arg
            for _ in range(least):  # (the set empties or stops changing within len+2 rounds)
                after = self.ends(items, at)
                if after == at or not after:
                    at = after
                    break
                at = after
            reached, frontier = at, at
            extra = 0
            while frontier and (most is c.MAXREPEAT or extra < most - least):
                frontier = self.ends(items, frontier) - reached
                reached |= frontier
                extra += 1
            return reached
        if op is c.AT:
            return frozenset(p for p in at if _at(arg, text, p))
        raise _Unfollowed  # back-references, lookarounds, atomic groups, possessive repeats


def _at(where: Any, text: str, p: int) -> bool:
    c = _c
    if where in (c.AT_BEGINNING, c.AT_BEGINNING_STRING):
        return p == 0
    if where is c.AT_END:  # ($ also matches before a last newline)
        return p == len(text) or (p == len(text) - 1 and text[p] == "\n")
    if where is c.AT_END_STRING:
        return p == len(text)
    before = p > 0 and _is_word(text[p - 1])
    after = p < len(text) and _is_word(text[p])
    if where is c.AT_BOUNDARY:
        return before != after
    if where is c.AT_NON_BOUNDARY:
        return before == after
    raise _Unfollowed


class _Builder:
    """One walk of a parse tree, appending the pieces of a matched string."""

    __slots__ = ("budget", "extra", "groups", "rng", "steps")

    def __init__(self, rng: random.Random, extra: int, budget: int) -> None:
        self.rng = rng
        self.extra = extra
        self.budget = budget  # characters left (a repeat of a huge minimum stops there)
        self.steps = _BUILD_STEPS
        self.groups: dict[int, str] = {}

    def sequence(self, items: Any, out: list[str]) -> None:
        for op, arg in items:
            self.steps -= 1
            if (self.budget <= 0 and op is not _c.AT) or self.steps < 0:
                return
            self.item(op, arg, out)

    def item(self, op: Any, arg: Any, out: list[str]) -> None:
        c = _c
        if op is c.LITERAL:
            self.put(chr(arg), out)
        elif op is c.NOT_LITERAL:
            self.put(next(ch for ch in _PRINTABLE if ord(ch) != arg), out)
        elif op is c.ANY:
            self.put(self.rng.choice(string.ascii_letters), out)
        elif op is c.IN:
            self.put(self.member(arg), out)
        elif op is c.BRANCH:
            self.sequence(self.rng.choice(arg[1]), out)
        elif op is c.SUBPATTERN:
            group, _, _, items = arg
            start = len(out)
            self.sequence(items, out)
            if group is not None:
                self.groups[group] = "".join(out[start:])
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
            least, most, items = arg
            most = least + self.extra if most is c.MAXREPEAT else min(most, least + self.extra)
            for _ in range(self.rng.randint(least, max(least, most))):
                self.steps -= 1
                if self.budget <= 0 or self.steps < 0:
                    break
                left = self.budget
                self.sequence(items, out)
                if self.budget == left:  # (matched empty: more rounds add nothing)
                    break
        elif op is c.GROUPREF:
            self.put(self.groups.get(arg, ""), out)
        elif op is c.GROUPREF_EXISTS:
            group, yes, no = arg
            chosen = yes if group in self.groups else no
            if chosen is not None:
                self.sequence(chosen, out)
        elif op is c.ATOMIC_GROUP:
            self.sequence(arg, out)
        # AT (anchors, \b) needs no character; ASSERT / ASSERT_NOT are not followed

    def put(self, text: str, out: list[str]) -> None:
        out.append(text)
        self.budget -= len(text)

    def member(self, items: Any) -> str:
        """A character of the class ``items`` (printable ASCII where it has one)."""
        negate = bool(items) and items[0][0] is _c.NEGATE
        if negate:
            items = items[1:]
        allowed = [ch for ch in _PRINTABLE if _in_class(items, ord(ch)) != negate]
        if allowed:
            return self.rng.choice(allowed)
        if not negate:  # a class of only other characters ([à-ü], [\u4e00-\u9fff])
            for op, arg in items:
                if op is _c.LITERAL:
                    return chr(arg)
                if op is _c.RANGE:
                    return chr(arg[0])
        # (a class of everything but these; none left: a class that matches nothing,
        # [^\s\S], so no string can match: any will do)
        codes = range(0xA1, 0x3000)
        return next((chr(code) for code in codes if not _in_class(items, code)), "")


def _in_class(items: Any, code: int) -> bool:
    """Whether the character ``code`` is in the (not negated) class ``items``."""
    c = _c
    for op, arg in items:
        if op is c.LITERAL and arg == code:
            return True
        if op is c.RANGE and arg[0] <= code <= arg[1]:
            return True
        if op is c.CATEGORY and _in_category(arg, chr(code)):
            return True
    return False


def _in_category(category: Any, ch: str) -> bool:
    c = _c
    if category is c.CATEGORY_DIGIT:
        return ch.isdecimal()
    if category is c.CATEGORY_NOT_DIGIT:
        return not ch.isdecimal()
    if category is c.CATEGORY_SPACE:
        return ch.isspace()
    if category is c.CATEGORY_NOT_SPACE:
        return not ch.isspace()
    if category is c.CATEGORY_WORD:
        return _is_word(ch)
    if category is c.CATEGORY_NOT_WORD:
        return not _is_word(ch)
    return False


def _is_word(ch: str) -> bool:
    """``\\w`` of a str pattern (Unicode letters and digits, and ``_``)."""
    return ch.isalnum() or ch == "_"
