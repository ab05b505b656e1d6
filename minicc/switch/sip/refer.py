"""Call transfer signalling, sans-IO: REFER (RFC 3515), Replaces (RFC 3891), Referred-By
(RFC 3892) and the NOTIFY bodies that report a transfer's progress.

A phone transfers a call by sending REFER inside the call's dialog. Its Refer-To names where
the other party should go; for an *attended* transfer the URI carries an escaped
``Replaces`` header naming the dialog of the consultation call, which the new call takes
over::

    Refer-To: <sip:1003@acme.test?Replaces=abc%40host%3Bto-tag%3D7a%3Bfrom-tag%3D9b>

The answer is 202 Accepted, then NOTIFYs in the implicit ``refer`` subscription carry the
outcome as a ``message/sipfrag`` status line (RFC 3515 §2.4.4): ``SIP/2.0 100 Trying``
while it runs, and a final one (200 on success, the failure otherwise) with
``Subscription-State: terminated;reason=noresource`` (§2.4.7).

Everything here is pure: :func:`parse_refer` reads a request's headers into a
:class:`ReferRequest` or raises :class:`ReferError` (with the 400 and the Warning text to
send); :func:`sipfrag` and :func:`notify_headers` build what the switch sends back.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from minicc.switch.sip.errors import SipParseError
from minicc.switch.sip.headers import Headers, parse_name_addr
from minicc.switch.sip.message import REASONS
from minicc.switch.sip.uri import SipUri, split_unquoted

__all__ = [
    "NOTIFY_CONTENT_TYPE",
    "ReferError",
    "ReferRequest",
    "Replaces",
    "notify_headers",
    "parse_refer",
    "parse_replaces",
    "sipfrag",
]

NOTIFY_CONTENT_TYPE = "message/sipfrag;version=2.0"
"""The body type of a refer NOTIFY (RFC 3515 §2.4.5)."""


class ReferError(ValueError):
    """A REFER that cannot be acted on; the switch answers ``status`` with ``warning``.

    Attributes:
        status: the SIP status to answer with (400 for a malformed request).
        warning: what was wrong, for the Warning header (names the header and the fix).
    """

    def __init__(self, warning: str, *, status: int = 400) -> None:
        super().__init__(warning)
        self.warning = warning
        self.status = status


@dataclass(frozen=True, slots=True, kw_only=True)
class Replaces:
    """A Replaces header (RFC 3891 §6.1): the dialog a new call takes over.

    The tags are from the point of view of the UA that receives the Replaces (here minicc,
    the transfer target): ``to_tag`` is *our* tag in that dialog, ``from_tag`` the phone's.
    """

    call_id: str
    """Call-ID of the dialog to replace."""
    to_tag: str
    """The replaced dialog's tag on the receiving side (minicc's)."""
    from_tag: str
    """The replaced dialog's tag on the other side (the transferor's phone)."""
    early_only: bool = False
    """Only replace the dialog if it is still early (not answered)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReferRequest:
    """What a REFER asks for, checked."""

    target: SipUri
    """The Refer-To URI without its embedded headers."""
    number: str
    """The target's user part, unescaped (an extension or a number); '' for none."""
    display: str | None
    """Display name in the Refer-To, if any."""
    replaces: Replaces | None
    """Set for an attended transfer: the consultation dialog to take over."""
    referred_by: str | None
    """The Referred-By value (RFC 3892), as sent; who asked for the transfer."""


def parse_replaces(value: str) -> Replaces:
    """Parse a Replaces header value: ``callid;to-tag=x;from-tag=y[;early-only]``.

    #  Replaces        = "Replaces" HCOLON callid *(SEMI replaces-param)
    #  replaces-param  = to-tag / from-tag / early-flag / generic-param

    Raises:
        ReferError: no Call-ID, a missing or empty tag, or a tag given twice.
    """
    parts = [p.strip() for p in value.split(";")]
    call_id = parts[0]
    if not call_id or any(c.isspace() for c in call_id):
        raise ReferError(f"Replaces {value!r}: no Call-ID before the first ';'")
    tags: dict[str, str] = {}
    early = False
    for part in parts[1:]:
        name, eq, param = part.partition("=")
        name = name.strip().lower()
        if name == "early-only" and not eq:
            early = True
            continue
        if name in ("to-tag", "from-tag"):
            if name in tags:
                raise ReferError(f"Replaces {value!r}: {name} given twice")
            if not param.strip():
                raise ReferError(f"Replaces {value!r}: {name} is empty")
            tags[name] = param.strip()
        elif not name:
            raise ReferError(f"Replaces {value!r}: empty parameter")
    for needed in ("to-tag", "from-tag"):
        if needed not in tags:
            raise ReferError(f"Replaces {value!r}: {needed}= is required (RFC 3891 §6.1)")
    return Replaces(
        call_id=call_id, to_tag=tags["to-tag"], from_tag=tags["from-tag"], early_only=early
    )


def _embedded_headers(text: str) -> dict[str, str]:
    """``hname=hvalue&...`` of a URI (RFC 3261 §19.1.1), names lower-cased, values unescaped."""
    out: dict[str, str] = {}
    for item in text.split("&"):
        if not item:
            continue
        name, eq, value = item.partition("=")
        if not eq or not name:
            raise ReferError(f"Refer-To header part {item!r} is not name=value")
        out[unquote(name).strip().lower()] = unquote(value)
    return out


def parse_refer(headers: Headers) -> ReferRequest:
    """Read and check a REFER's Refer-To, Replaces-in-URI and Referred-By.

    Args:
        headers: the REFER's headers (compact ``r`` and ``b`` are already normalised).

    Returns:
        The request, checked.

    Raises:
        ReferError: no Refer-To, more than one (RFC 3515 §2.4.1: exactly one), one that
            does not parse, a non-SIP URI, or a malformed embedded Replaces.
    """
    values = headers.get_all("Refer-To")
    if not values:
        raise ReferError("REFER without Refer-To: add Refer-To: <sip:TARGET@DOMAIN>")
    try:
        several = len(values) > 1 or len(split_unquoted(values[0], ",")) > 1
    except SipParseError as exc:
        raise ReferError(f"bad Refer-To {values[0]!r}: {exc.reason}") from None
    if several:
        raise ReferError("REFER with more than one Refer-To: send exactly one (RFC 3515 §2.4.1)")
    try:
        name_addr = parse_name_addr(values[0])
    except SipParseError as exc:
        raise ReferError(f"bad Refer-To {values[0]!r}: {exc.reason}") from None
    uri = name_addr.uri
    if not uri.is_sip:
        raise ReferError(f"Refer-To {values[0]!r}: only sip: and sips: targets can be called")
    replaces: Replaces | None = None
    if uri.headers:
        embedded = _embedded_headers(uri.headers)
        if "replaces" in embedded:
            replaces = parse_replaces(embedded["replaces"])
    target = SipUri(
        scheme=uri.scheme,
        user=uri.user,
        password=None,
        host=uri.host,
        port=uri.port,
        params=dict(uri.params),
        headers=None,
    )
    referred_by = headers.get("Referred-By")
    return ReferRequest(
        target=target,
        number=uri.user_unescaped or "",
        display=name_addr.display,
        replaces=replaces,
        referred_by=referred_by.strip() if referred_by else None,
    )


def sipfrag(status: int, reason: str | None = None) -> bytes:
    """A ``message/sipfrag`` body holding just a status line (RFC 3515 §2.4.5)."""
    if not 100 <= status <= 699:
        raise ValueError(f"sipfrag status must be 100-699, not {status}")
    text = reason or REASONS.get(status) or "Unknown"
    return f"SIP/2.0 {status} {text}\r\n".encode()


def notify_headers(status: int, *, expires: int = 60) -> list[tuple[str, str]]:
    """Event, Subscription-State and Content-Type of a refer NOTIFY reporting ``status``.

    A provisional status keeps the subscription active; a final one terminates it with
    ``reason=noresource`` (RFC 3515 §2.4.7: nothing more will be reported).
    """
    state = f"active;expires={expires}" if status < 200 else "terminated;reason=noresource"
    return [
        ("Event", "refer"),
        ("Subscription-State", state),
        ("Content-Type", NOTIFY_CONTENT_TYPE),
    ]
