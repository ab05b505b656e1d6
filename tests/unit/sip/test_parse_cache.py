"""The shared parse cache and the message accessors that go through it."""

from __future__ import annotations

import pytest

from minicc.switch.sip.cache import MAX_CACHED_TEXT, ParseCache
from minicc.switch.sip.errors import SipParseError
from minicc.switch.sip.headers import Headers, parse_name_addr
from minicc.switch.sip.message import NAME_ADDR_CACHE, Request, make_response


class CountingParser:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, text: str) -> list[str]:
        self.calls.append(text)
        if text == "bad":
            raise SipParseError("bad")
        return [text]


def test_each_text_is_parsed_once() -> None:
    parse = CountingParser()
    cache = ParseCache(parse, size=8)
    first = cache("a")
    assert cache("a") is first
    assert parse.calls == ["a"]


def test_errors_are_not_cached() -> None:
    parse = CountingParser()
    cache = ParseCache(parse, size=8)
    for _ in range(2):
        with pytest.raises(SipParseError):
            cache("bad")
    assert parse.calls == ["bad", "bad"]


def test_bounded_by_two_generations() -> None:
    parse = CountingParser()
    cache = ParseCache(parse, size=2)
    for text in "abcdef":
        cache(text)
    assert len(cache) <= 4
    cache("f")  # newest: still there
    assert parse.calls == list("abcdef")
    cache("a")  # long gone
    assert parse.calls[-1] == "a"


def test_a_hit_in_the_old_generation_survives_the_next_turnover() -> None:
    parse = CountingParser()
    cache = ParseCache(parse, size=2)
    cache("a")
    cache("b")
    cache("c")  # a, b now old
    cache("a")  # moved to the new generation
    cache("d")  # turnover: c, a old
    cache("a")
    assert parse.calls == ["a", "b", "c", "d"]


def test_long_texts_are_parsed_but_not_kept() -> None:
    parse = CountingParser()
    cache = ParseCache(parse, size=8)
    long = "x" * (MAX_CACHED_TEXT + 1)
    cache(long)
    cache(long)
    assert parse.calls == [long, long]
    assert len(cache) == 0


def test_accessors_hand_out_copies_of_shared_values() -> None:
    request = Request(
        headers=Headers(
            [
                ("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKcopy1"),
                ("From", "<sip:a@example.com>;tag=1"),
                ("To", "<sip:b@example.com>"),
                ("Call-ID", "copy-test"),
                ("CSeq", "1 INVITE"),
            ]
        ),
        method="INVITE",
        uri="sip:b@example.com",
    )
    via = request.top_via
    via.params["received"] = "198.51.100.7"
    request.from_.params["tag"] = "changed"
    request.request_uri.params["x"] = "y"
    assert "received" not in request.top_via.params
    assert request.from_tag == "1"
    assert request.request_uri.params == {}


def test_a_response_to_tag_reads_as_parsed() -> None:
    request = Request(
        headers=Headers(
            [
                ("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKtag1"),
                ("From", "<sip:a@example.com>;tag=1"),
                ("To", '"Bob" <sip:b@example.com>;x=1'),
                ("Call-ID", "tag-test"),
                ("CSeq", "1 INVITE"),
            ]
        ),
        method="INVITE",
        uri="sip:b@example.com",
    )
    _ = request.to  # parsed (and cached) untagged
    response = make_response(request, 200, to_tag="t42")
    to_text = response.headers.get("To")
    assert to_text == '"Bob" <sip:b@example.com>;x=1;tag=t42'
    assert response.to == parse_name_addr(to_text)
    assert NAME_ADDR_CACHE(to_text) == parse_name_addr(to_text)
