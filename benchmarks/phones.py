"""Bytes of the SIP messages a scripted phone sends, and the few fields it reads back.

Shared by the in-process call-flow benchmark and the RTP probe. Deliberately not a SIP stack:
messages are built from header lines, responses are read with regular expressions, and the
only logic is answering one MD5 digest challenge (RFC 7616 §3.4 with ``qop=auth``).
"""

from __future__ import annotations

import hashlib
import re

USER_AGENT = "minicc-bench"

_HEADER_RE = re.compile(rb"^([A-Za-z-]+):[ \t]*(.*?)\r$", re.M)
_PARAM_RE = re.compile(r'(\w+)="?([^",]*)"?')
_MEDIA_RE = re.compile(rb"^m=audio (\d+) ", re.M)
_CONN_RE = re.compile(rb"^c=IN IP4 ([0-9.]+)", re.M)


def headers(data: bytes) -> dict[str, list[str]]:
    """Header values by lower-cased name (compact forms are not expanded)."""
    found: dict[str, list[str]] = {}
    for name, value in _HEADER_RE.findall(data.split(b"\r\n\r\n", 1)[0] + b"\r\n"):
        found.setdefault(name.decode().lower(), []).append(value.decode())
    return found


def first_line(data: bytes) -> str:
    return data.split(b"\r\n", 1)[0].decode(errors="replace")


def status_of(data: bytes) -> int | None:
    """The status code of a response, None for a request."""
    line = first_line(data)
    if not line.startswith("SIP/2.0 "):
        return None
    return int(line[8:11])


def body_of(data: bytes) -> bytes:
    return data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in data else b""


def sdp_offer(host: str, port: int, *, session: int = 1) -> bytes:
    """An audio offer or answer: PCMA and PCMU, 20 ms packets."""
    return (
        f"v=0\r\no=- {session} 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 8 0\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=ptime:20\r\na=sendrecv\r\n"
    ).encode()


def sdp_address(body: bytes) -> tuple[str, int]:
    """``(c= address, m=audio port)`` of an SDP body.

    Raises:
        ValueError: no audio line or connection address.
    """
    media = _MEDIA_RE.search(body)
    conn = _CONN_RE.search(body)
    if media is None or conn is None:
        raise ValueError(f"no audio address in SDP {body[:200]!r}")
    return conn.group(1).decode(), int(media.group(1))


def request(
    method: str,
    uri: str,
    *,
    host: str,
    port: int,
    branch: str,
    lines: list[str],
    body: bytes = b"",
) -> bytes:
    """A request from ``host:port`` with Via, Max-Forwards, ``lines`` and the body."""
    head = [
        f"{method} {uri} SIP/2.0",
        f"Via: SIP/2.0/UDP {host}:{port};branch={branch};rport",
        "Max-Forwards: 70",
        *lines,
        f"User-Agent: {USER_AGENT}",
    ]
    if body:
        head.append("Content-Type: application/sdp")
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def response(
    to_request: bytes, status: str, *, to_tag: str, contact: str | None, body: bytes = b""
) -> bytes:
    """A response to ``to_request``: its Via, From, Call-ID and CSeq, To with ``to_tag``."""
    h = headers(to_request)
    lines = [f"SIP/2.0 {status}"]
    lines += [f"Via: {v}" for v in h["via"]]
    to = h["to"][0]
    if to_tag and ";tag=" not in to:
        to += f";tag={to_tag}"
    lines += [f"From: {h['from'][0]}", f"To: {to}", f"Call-ID: {h['call-id'][0]}"]
    lines.append(f"CSeq: {h['cseq'][0]}")
    if contact:
        lines.append(f"Contact: <{contact}>")
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def md5_challenge(data: bytes) -> str | None:
    """The MD5 ``WWW-Authenticate`` value of a 401, if it has one."""
    for value in headers(data).get("www-authenticate", []):
        if "algorithm=MD5" in value:
            return value
    return None


def authorization(challenge: str, *, uri: str, method: str, user: str, ha1: str) -> str:
    """The ``Authorization`` value answering an MD5 challenge with ``qop=auth``."""
    params = dict(_PARAM_RE.findall(challenge))
    nonce, realm = params["nonce"], params["realm"]
    ha2 = md5(f"{method}:{uri}")
    cnonce, nc = "0a4f113b", "00000001"
    digest = md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
    return (
        f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
        f'response="{digest}", algorithm=MD5, qop=auth, nc={nc}, cnonce="{cnonce}"'
    )
