"""The argparse types every rxgpt command shares: bounded numbers, UTF-8 text."""

from __future__ import annotations

import argparse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rxgpt._cli_types import (
    MAX_COUNT,
    MAX_SECONDS,
    MAX_WORKERS,
    api_key_problem,
    base_url,
    count,
    number,
    port,
    positive,
    seconds,
    utf8_text,
    workers,
)


@pytest.mark.parametrize(
    ("kind", "value", "words"),
    [
        (count, "-1", "negative"),
        (positive, "0", "less than 1"),
        (port, "65536", "more than 65535"),
        (count, str(2**64), f"more than {MAX_COUNT}"),
        (count, "1.5", "not a whole number"),
        (seconds, "0", "more than 0"),
        (seconds, "inf", "not a number of seconds"),
        (seconds, "nan", "not a number of seconds"),
        (seconds, "1e300", f"at most {int(MAX_SECONDS)}"),
        (seconds, "soon", "'soon' is not a number of seconds"),
        (utf8_text, "a\udcff", "not UTF-8"),
        (number(0, 1, high_open=True), "1", "at least 0 and less than 1"),
        (workers, str(MAX_WORKERS + 1), f"more than {MAX_WORKERS}"),
        (workers, "0", "less than 1"),
        (base_url, "ftp://u:secret-pw@h/v1", "not an http:// or https:// URL"),
        (base_url, "http://h:0/v1", "port 0"),
        (base_url, "http://a b/v1", "space"),
        (base_url, "http://", "no host"),
    ],
)
def test_a_value_out_of_bounds_is_refused_with_what_was_wrong(
    kind: object, value: str, words: str
) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=words):
        kind(value)  # type: ignore[operator]


def test_values_in_bounds_pass_through() -> None:
    assert count("0") == 0 and positive("7") == 7 and port("65535") == 65535
    assert seconds("2.5") == 2.5 and utf8_text("héllo") == "héllo"
    assert number(0, 10, suffix="s")("3s") == 3.0


@given(st.text())
def test_any_text_is_taken_or_refused_with_argparses_error(value: str) -> None:
    for kind in (count, positive, port, seconds, number(-1, 1), utf8_text):
        try:
            kind(value)
        except argparse.ArgumentTypeError as error:
            assert str(error)


def test_a_refused_base_url_never_shows_its_password() -> None:
    with pytest.raises(argparse.ArgumentTypeError) as caught:
        base_url("ftp://u:secret-pw@h/v1")
    assert "secret-pw" not in str(caught.value)
    assert base_url("https://h:8443/v1") == "https://h:8443/v1"


@pytest.mark.parametrize(
    ("key", "words"), [("a b", "a space"), ("k\n", "a newline"), ("kä", "not ASCII")]
)
def test_an_api_key_no_header_carries_is_described_without_it(key: str, words: str) -> None:
    problem = api_key_problem(key)
    assert problem is not None and words in problem and key not in problem
    assert api_key_problem("sk-proj-abc_DEF-123") is None
