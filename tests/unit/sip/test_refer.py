"""REFER, Replaces and refer NOTIFY bodies (minicc.switch.sip.refer): pure parsing."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minicc.switch.sip.errors import SipError
from minicc.switch.sip.headers import Headers
from minicc.switch.sip.refer import (
    NOTIFY_CONTENT_TYPE,
    ReferError,
    Replaces,
    notify_headers,
    parse_refer,
    parse_replaces,
    sipfrag,
)


def _headers(*refer_to: str, referred_by: str | None = None) -> Headers:
    headers = Headers()
    for value in refer_to:
        headers.add("Refer-To", value)
    if referred_by is not None:
        headers.add("Referred-By", referred_by)
    return headers


def test_name_addr_blind_target() -> None:
    refer = parse_refer(_headers('"Bob" <sip:1002@acme.test>', referred_by="<sip:1001@acme.test>"))
    assert refer.number == "1002"
    assert refer.display == "Bob"
    assert str(refer.target) == "sip:1002@acme.test"
    assert refer.replaces is None
    assert refer.referred_by == "<sip:1001@acme.test>"


def test_addr_spec_and_compact_form() -> None:
    headers = Headers()
    headers.add("r", "sip:8000@acme.test")  # compact form of Refer-To
    refer = parse_refer(headers)
    assert refer.number == "8000" and refer.display is None


def test_escaped_user_is_unescaped() -> None:
    assert parse_refer(_headers("<sip:%2B4930123@acme.test>")).number == "+4930123"


def test_attended_target_carries_replaces() -> None:
    replaces = quote("abc@host;to-tag=7a;from-tag=9b", safe="")
    refer = parse_refer(_headers(f"<sip:1003@acme.test;user=phone?Replaces={replaces}>"))
    assert refer.replaces == Replaces(call_id="abc@host", to_tag="7a", from_tag="9b")
    # The embedded header is not part of the target any more; URI parameters are.
    assert str(refer.target) == "sip:1003@acme.test;user=phone"


def test_early_only_flag() -> None:
    assert parse_replaces("x;from-tag=1;to-tag=2;early-only").early_only
    assert not parse_replaces("x;from-tag=1;to-tag=2").early_only


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "no Call-ID"),
        (";to-tag=1;from-tag=2", "no Call-ID"),
        ("abc;to-tag=1", "from-tag= is required"),
        ("abc;from-tag=1", "to-tag= is required"),
        ("abc;to-tag=;from-tag=2", "to-tag is empty"),
        ("abc;to-tag=1;to-tag=3;from-tag=2", "to-tag given twice"),
    ],
)
def test_bad_replaces(value: str, problem: str) -> None:
    with pytest.raises(ReferError, match=problem):
        parse_replaces(value)


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ((), "without Refer-To"),
        (("<sip:1@a>", "<sip:2@a>"), "more than one Refer-To"),
        (("<sip:1@a>, <sip:2@a>",), "more than one Refer-To"),
        (("<sip:1@a",), "bad Refer-To"),
        (("tel:+4930123",), "only sip: and sips:"),
        (('"unterminated <sip:1@a>',), "bad Refer-To"),
        (("<sip:1@a?Replaces=x%3Bto-tag%3D1>",), "from-tag= is required"),
        (("<sip:1@a?Replaces>",), "not name=value"),
        (("<sip:1@a?Replaces=>",), "no Call-ID"),
    ],
)
def test_malformed_refer_is_a_400_naming_the_problem(values: tuple[str, ...], problem: str) -> None:
    with pytest.raises(ReferError, match=problem) as info:
        parse_refer(_headers(*values))
    assert info.value.status == 400


def test_sipfrag_and_notify_headers() -> None:
    assert sipfrag(100) == b"SIP/2.0 100 Trying\r\n"
    assert sipfrag(403, "Forbidden: no trunk") == b"SIP/2.0 403 Forbidden: no trunk\r\n"
    assert dict(notify_headers(100)) == {
        "Event": "refer",
        "Subscription-State": "active;expires=60",
        "Content-Type": NOTIFY_CONTENT_TYPE,
    }
    assert dict(notify_headers(200))["Subscription-State"] == "terminated;reason=noresource"
    with pytest.raises(ValueError, match="100-699"):
        sipfrag(99)


_TAG = st.text(alphabet="abcdef0123456789-.", min_size=1, max_size=20)
_CALL_ID = st.text(alphabet="abcdefXYZ0123456789-.@!%*_+`'~", min_size=1, max_size=30)


@given(call_id=_CALL_ID, to_tag=_TAG, from_tag=_TAG, early=st.booleans())
def test_replaces_round_trips_through_an_escaped_refer_to(
    call_id: str, to_tag: str, from_tag: str, early: bool
) -> None:
    value = f"{call_id};to-tag={to_tag};from-tag={from_tag}" + (";early-only" if early else "")
    refer = parse_refer(_headers(f"<sip:1003@acme.test?Replaces={quote(value, safe='')}>"))
    assert refer.replaces == Replaces(
        call_id=call_id, to_tag=to_tag, from_tag=from_tag, early_only=early
    )


@given(st.text(max_size=60))
def test_any_refer_to_text_parses_or_is_a_refer_error(text: str) -> None:
    try:
        headers = _headers(text)
    except SipError:
        return  # not even a header line (control characters): never reaches the parser
    try:
        parse_refer(headers)
    except ReferError as exc:
        assert exc.status == 400 and exc.warning
