"""HTTP digest authentication for SIP, server side (RFC 3261 §22, RFC 7616, RFC 8760).

The server is sans-IO: :class:`DigestServer` is given the request, the realm, a way to find
a user's HA1 and the current (monotonic) time, and returns an :class:`AuthResult`. The switch
decides what to do with it (answer 401/407 via :meth:`DigestServer.challenge_response`, count
a bad password for the flood guard, or go on).

Nonces are stateless: each one carries its issue time and an HMAC over it, so any node that
holds the secret can check a nonce without remembering it. The only state is the highest
nonce-count seen per nonce (replay protection), kept in a bounded table.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from minicc.switch.sip.errors import SipParseError
from minicc.switch.sip.message import URI_CACHE, Request, Response, make_response
from minicc.switch.sip.uri import SipUri, quote

log = logging.getLogger(__name__)


class DigestAlgorithm(Enum):
    MD5 = "MD5"
    SHA256 = "SHA-256"

    def hash(self, data: str) -> str:
        name = "md5" if self is DigestAlgorithm.MD5 else "sha256"
        # surrogateescape: the parser keeps undecodable bytes as escapes, and the client
        # hashed the original bytes.
        return hashlib.new(name, data.encode("utf-8", "surrogateescape")).hexdigest()


def compute_ha1(username: str, realm: str, password: str, algorithm: DigestAlgorithm) -> str:
    """Return HA1 = H(username:realm:password) (RFC 7616 §3.4.2).

    Storing HA1 per algorithm instead of the password means a leaked database does not
    reveal the secret, only credentials for that one realm.
    """
    return algorithm.hash(f"{username}:{realm}:{password}")


class AuthFailure(Enum):
    """Why :meth:`DigestServer.verify` refused a request."""

    MISSING = "missing"
    """No Authorization (or Proxy-Authorization) header: the normal first request."""
    MALFORMED = "malformed"
    """Credentials present but unparsable, not Digest, or missing a required parameter."""
    UNKNOWN_USER = "unknown-user"
    """``lookup_ha1`` knows no such user (counted like a wrong password)."""
    WRONG_REALM = "wrong-realm"
    """Digest credentials were present, but none for the realm being checked."""
    BAD_RESPONSE = "bad-response"
    """The digest does not match: wrong password (or a forged request)."""
    STALE_NONCE = "stale-nonce"
    """The digest is right but the nonce expired or is not ours; re-challenge with stale=true."""
    REPLAY = "replay"
    """A nonce-count not higher than one already accepted for that nonce (RFC 7616 §3.4)."""
    URI_MISMATCH = "uri-mismatch"
    """The digest-uri is not the Request-URI (credentials lifted from another request)."""
    UNSUPPORTED_ALGORITHM = "unsupported-algorithm"
    """An algorithm this server does not accept (or not enabled)."""


# Only these are what a flood guard should count; the rest is ordinary traffic (the first
# unauthenticated request, a nonce that timed out, a phone that re-sent a counter).
_BAD_PASSWORD = frozenset({AuthFailure.BAD_RESPONSE, AuthFailure.UNKNOWN_USER})


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthResult:
    """The outcome of :meth:`DigestServer.verify`."""

    ok: bool
    """True when the request carries valid, fresh credentials for the realm."""
    username: str | None
    """The username the client claimed (set on success and on most failures, for logs)."""
    failure: AuthFailure | None
    """Why verification failed; None exactly when ``ok``."""
    algorithm: DigestAlgorithm | None
    """The algorithm the client used, when it is one we know."""

    def __post_init__(self) -> None:
        if self.ok != (self.failure is None):
            raise ValueError("AuthResult: failure must be None exactly when ok")

    @property
    def counts_as_bad_password(self) -> bool:
        """True for a wrong password or unknown user: what the flood guard counts."""
        return self.failure in _BAD_PASSWORD


@dataclass(frozen=True, slots=True, kw_only=True)
class DigestCredentials:
    """The parameters of one ``Authorization: Digest ...`` value (RFC 7616 §3.4)."""

    username: str
    realm: str
    nonce: str
    uri: str
    """The digest-uri exactly as sent; it enters the hash as is."""
    response: str
    """The request-digest, lower-cased hex."""
    algorithm: str | None = None
    """As sent (absent means MD5, RFC 7616 §3.4)."""
    qop: str | None = None
    nc: str | None = None
    """The nonce-count as sent (8 hex digits); hashed as a string, compared as a number."""
    cnonce: str | None = None
    opaque: str | None = None
    userhash: bool = False


def parse_credentials(value: str) -> DigestCredentials:
    """Parse one Authorization / Proxy-Authorization value with the Digest scheme.

    The grammar (RFC 7235 §2.1, RFC 3261 §25.1): ``Digest`` then comma-separated
    ``name=value`` pairs whose value is a token or a quoted-string with backslash escapes.
    Names are case-insensitive; whitespace around ``=`` and ``,`` is tolerated, and empty list
    elements are skipped as the ``#rule`` allows.

    Raises:
        SipParseError: when the value is not Digest credentials, or a required parameter is
            missing, duplicated or malformed.
    """
    scheme, params = _parse_auth_params(value)
    if scheme.lower() != "digest":
        raise SipParseError(f"unsupported auth scheme {scheme!r}")
    missing = [n for n in ("username", "realm", "nonce", "uri", "response") if n not in params]
    if missing:
        raise SipParseError(f"digest credentials without {', '.join(missing)}")
    response = params["response"].lower()
    if not response or not all(c in "0123456789abcdef" for c in response):
        raise SipParseError("digest response is not hex")
    nc = params.get("nc")
    if nc is not None and not (0 < len(nc) <= 8 and all(c in "0123456789abcdefABCDEF" for c in nc)):
        raise SipParseError(f"bad nonce-count {nc!r}")
    return DigestCredentials(
        username=params["username"],
        realm=params["realm"],
        nonce=params["nonce"],
        uri=params["uri"],
        response=response,
        algorithm=params.get("algorithm"),
        qop=params.get("qop"),
        nc=nc,
        cnonce=params.get("cnonce"),
        opaque=params.get("opaque"),
        userhash=params.get("userhash", "false").lower() == "true",
    )


_SEPARATORS = frozenset(' \t\r\n,="')


def _parse_auth_params(value: str) -> tuple[str, dict[str, str]]:
    text = value.strip()
    i = 0
    n = len(text)
    while i < n and text[i] not in " \t\r\n":
        i += 1
    scheme = text[:i]
    if not scheme:
        raise SipParseError("empty credentials")
    params: dict[str, str] = {}
    while True:
        while i < n and text[i] in " \t\r\n,":
            i += 1
        if i >= n:
            return scheme, params
        start = i
        while i < n and text[i] not in _SEPARATORS:
            i += 1
        name = text[start:i].lower()
        while i < n and text[i] in " \t\r\n":
            i += 1
        if not name or i >= n or text[i] != "=":
            raise SipParseError(f"bad auth-param near {text[start : start + 20]!r}")
        i += 1
        while i < n and text[i] in " \t\r\n":
            i += 1
        if i < n and text[i] == '"':
            item, i = _quoted(text, i)
        else:
            start = i
            while i < n and text[i] not in _SEPARATORS:
                i += 1
            item = text[start:i]
            if not item:
                raise SipParseError(f"empty value for {name!r}")
        if name in params:
            raise SipParseError(f"duplicate auth-param {name!r}")
        params[name] = item
        while i < n and text[i] in " \t\r\n":
            i += 1
        if i < n and text[i] != ",":
            raise SipParseError(f"junk after auth-param {name!r}")


def _quoted(text: str, start: int) -> tuple[str, int]:
    # RFC 3261 §25.1: quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
    end = text.find('"', start + 1)
    if end > 0 and "\\" not in text[start + 1 : end]:
        return text[start + 1 : end], end + 1  # the usual case: no escapes, found in C
    out: list[str] = []
    i = start + 1
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            out.append(text[i + 1])
            i += 2
        elif c == '"':
            return "".join(out), i + 1
        else:
            out.append(c)
            i += 1
    raise SipParseError("unterminated quoted string in credentials")


def digest_response(
    *,
    algorithm: DigestAlgorithm,
    ha1: str,
    nonce: str,
    method: str,
    uri: str,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
    session: bool = False,
) -> str:
    """Compute the request-digest (RFC 7616 §3.4.1; without qop, RFC 2069 / RFC 2617 §3.2.2.1).

    Args:
        algorithm: the hash to use.
        ha1: H(username:realm:password), as :func:`compute_ha1` returns it.
        nonce, method, uri, qop, nc, cnonce: as in the request (``uri`` is the digest-uri).
        session: the ``-sess`` variant: HA1 becomes H(HA1:nonce:cnonce) (RFC 7616 §3.4.2).

    Returns:
        Lower-case hex digest.
    """
    h = algorithm.hash
    if session:
        ha1 = h(f"{ha1}:{nonce}:{cnonce or ''}")
    # qop=auth: A2 = Method ":" request-uri (RFC 7616 §3.4.3); SIP puts the method here.
    ha2 = h(f"{method}:{uri}")
    if qop is None:
        return h(f"{ha1}:{nonce}:{ha2}")
    return h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def _parse_algorithm(text: str | None) -> tuple[DigestAlgorithm, bool] | None:
    if text is None:
        return DigestAlgorithm.MD5, False  # RFC 7616 §3.4: absent means MD5
    name = text.upper()
    session = name.endswith("-SESS")
    if session:
        name = name[: -len("-SESS")]
    for algorithm in DigestAlgorithm:
        if algorithm.value == name:
            return algorithm, session
    return None


# Nonce layout before base64url: issue time in milliseconds (8 bytes, big-endian), random
# bytes, then a truncated HMAC-SHA256 over both plus the realm, so that a nonce given out for
# one tenant's realm is worthless for another's.
_TS_LEN = 8
_RAND_LEN = 12
_MAC_LEN = 16
_NONCE_LEN = _TS_LEN + _RAND_LEN + _MAC_LEN
_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class DigestServer:
    """Challenges and verifies digest credentials for any number of realms.

    Args:
        secret: HMAC key for nonces (at least 16 bytes). Nonces signed with another secret,
            e.g. before a restart, are answered as stale so phones re-authenticate silently.
        nonce_ttl: seconds a nonce stays valid after it was issued.
        algorithms: accepted algorithms, in order of preference; challenges list them in
            this order (RFC 8760 §2.4: the server lists its preferred algorithm first).
        max_tracked_nonces: bound on the nonce-count table (replay protection).
        opaque: a fixed opaque value to send in challenges and expect back, if any.
        token_bytes: source of random bytes (injected for tests).
    """

    def __init__(
        self,
        secret: bytes,
        *,
        nonce_ttl: float = 300.0,
        algorithms: tuple[DigestAlgorithm, ...] = (DigestAlgorithm.SHA256, DigestAlgorithm.MD5),
        max_tracked_nonces: int = 100_000,
        opaque: str | None = None,
        token_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        if len(secret) < 16:
            raise ValueError("DigestServer secret must be at least 16 bytes")
        if nonce_ttl <= 0:
            raise ValueError("nonce_ttl must be positive")
        if not algorithms or len(set(algorithms)) != len(algorithms):
            raise ValueError("algorithms must be a non-empty tuple without repeats")
        if max_tracked_nonces < 1:
            raise ValueError("max_tracked_nonces must be at least 1")
        self._secret = secret
        self.nonce_ttl = nonce_ttl
        self.algorithms = algorithms
        self.max_tracked_nonces = max_tracked_nonces
        self.opaque = opaque
        self._token_bytes = token_bytes
        # nonce -> (issue time, highest nonce-count accepted); insertion order = first use.
        self._nc_seen: OrderedDict[str, tuple[float, int]] = OrderedDict()
        # Nonces issued at or before this time that are not in _nc_seen were pushed out of
        # the table while still valid; they are refused as stale, since their counters are
        # no longer known and accepting them would reopen the replay window.
        self._evicted_up_to = float("-inf")

    # ------------------------------------------------------------------ challenges

    def make_nonce(self, realm: str, now: float) -> str:
        """A fresh nonce for ``realm``, valid for ``nonce_ttl`` seconds from ``now``."""
        millis = max(0, int(now * 1000)) & (2**64 - 1)
        payload = millis.to_bytes(_TS_LEN, "big") + self._token_bytes(_RAND_LEN)
        raw = payload + self._mac(payload, realm)
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def challenge_headers(
        self,
        realm: str,
        now: float,
        *,
        stale: bool = False,
        proxy: bool = False,
        offer: tuple[DigestAlgorithm, ...] | None = None,
    ) -> list[tuple[str, str]]:
        """Challenge header lines, one per algorithm, preferred first (RFC 8760 §2.4).

        ``offer`` narrows the configured algorithms for one client (see
        :func:`algorithms_for_client`).

        All of them share one fresh nonce. ``stale=True`` tells the client its password was
        right and only the nonce was old, so it retries without asking the user (RFC 7616
        §3.3).
        """
        name = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        nonce = self.make_nonce(realm, now)
        headers: list[tuple[str, str]] = []
        for algorithm in offer or self.algorithms:
            parts = [
                f"realm={quote(realm)}",
                f'nonce="{nonce}"',
                f"algorithm={algorithm.value}",
                'qop="auth"',
            ]
            if self.opaque is not None:
                parts.append(f"opaque={quote(self.opaque)}")
            if stale:
                parts.append("stale=true")
            headers.append((name, "Digest " + ", ".join(parts)))
        return headers

    def challenge_response(
        self,
        request: Request,
        realm: str,
        now: float,
        result: AuthResult | None = None,
        *,
        proxy: bool = False,
        to_tag: str | None = None,
        offer: tuple[DigestAlgorithm, ...] | None = None,
    ) -> Response:
        """A 401 (or 407 when ``proxy``) carrying fresh challenges (RFC 3261 §22.1, §22.3).

        ``stale=true`` is set when ``result`` failed on a stale nonce.
        """
        stale = result is not None and result.failure is AuthFailure.STALE_NONCE
        return make_response(
            request,
            407 if proxy else 401,
            to_tag=to_tag,
            extra=self.challenge_headers(realm, now, stale=stale, proxy=proxy, offer=offer),
        )

    # ---------------------------------------------------------------- verification

    def verify(
        self,
        request: Request,
        realm: str,
        lookup_ha1: Callable[[str, DigestAlgorithm], str | None],
        now: float,
        *,
        proxy: bool = False,
    ) -> AuthResult:
        """Check the request's digest credentials for ``realm``. Never raises on bad input.

        Args:
            request: the request; its Authorization (or Proxy-Authorization when ``proxy``)
                headers are read. When several are present, the one for ``realm`` is used
                (RFC 3261 §22.3: a request may carry credentials for several realms).
            realm: the realm to authenticate against (the tenant's SIP domain).
            lookup_ha1: returns the user's HA1 for that algorithm, or None if no such user.
            now: monotonic seconds, the same clock that issued the nonces.

        Returns:
            An :class:`AuthResult`; on success the nonce-count has been recorded.
        """
        header = "Proxy-Authorization" if proxy else "Authorization"
        values = request.headers.get_all(header)
        if not values:
            return _fail(AuthFailure.MISSING)
        creds: DigestCredentials | None = None
        other_realm = False
        for value in values:
            try:
                parsed = parse_credentials(value)
            except SipParseError as exc:
                log.debug("unparsable %s: %s", header, exc.reason)
                continue
            if parsed.realm == realm:
                creds = parsed
                break
            other_realm = True
        if creds is None:
            return _fail(AuthFailure.WRONG_REALM if other_realm else AuthFailure.MALFORMED)
        return self._verify_credentials(creds, request, realm, lookup_ha1, now)

    def _verify_credentials(
        self,
        creds: DigestCredentials,
        request: Request,
        realm: str,
        lookup_ha1: Callable[[str, DigestAlgorithm], str | None],
        now: float,
    ) -> AuthResult:
        user = creds.username
        parsed_algorithm = _parse_algorithm(creds.algorithm)
        if parsed_algorithm is None or parsed_algorithm[0] not in self.algorithms:
            return _fail(AuthFailure.UNSUPPORTED_ALGORITHM, user)
        algorithm, session = parsed_algorithm
        qop = creds.qop.lower() if creds.qop is not None else None
        if (
            creds.userhash  # never offered, so the username cannot be looked up
            or qop not in (None, "auth")
            or (qop is not None and (creds.nc is None or creds.cnonce is None))
            or (session and qop is None)
            or (self.opaque is not None and creds.opaque not in (None, self.opaque))
        ):
            return _fail(AuthFailure.MALFORMED, user, algorithm)
        if not _digest_uri_matches(creds.uri, request.uri):
            return _fail(AuthFailure.URI_MISMATCH, user, algorithm)
        ha1 = lookup_ha1(user, algorithm)
        if ha1 is None:
            return _fail(AuthFailure.UNKNOWN_USER, user, algorithm)
        try:
            expected = digest_response(
                algorithm=algorithm,
                ha1=ha1,
                nonce=creds.nonce,
                method=request.method,
                uri=creds.uri,
                qop=creds.qop,  # hashed as sent, like nc: the client hashed its own text
                nc=creds.nc,
                cnonce=creds.cnonce,
                session=session,
            )
        except UnicodeError:  # a lone surrogate that was never a byte on the wire
            return _fail(AuthFailure.MALFORMED, user, algorithm)
        if not hmac.compare_digest(expected.encode("ascii"), creds.response.encode("ascii")):
            return _fail(AuthFailure.BAD_RESPONSE, user, algorithm)
        # The digest is right, so a nonce problem is "stale" (RFC 7616 §3.3: stale=true only
        # when the digest was valid for the nonce it used).
        issued = self._nonce_issued_at(creds.nonce, realm, now)
        if issued is None:
            return _fail(AuthFailure.STALE_NONCE, user, algorithm)
        if qop is None:
            # RFC 2069 style (old phones): accepted, but with no nonce-count there is no
            # replay protection beyond the nonce lifetime.
            return AuthResult(ok=True, username=user, failure=None, algorithm=algorithm)
        assert creds.nc is not None  # checked above
        if not self._record_nonce_count(creds.nonce, issued, int(creds.nc, 16), now):
            return _fail(AuthFailure.REPLAY, user, algorithm)
        return AuthResult(ok=True, username=user, failure=None, algorithm=algorithm)

    @property
    def tracked_nonces(self) -> int:
        """How many nonces have a remembered nonce-count."""
        return len(self._nc_seen)

    def _mac(self, payload: bytes, realm: str) -> bytes:
        digest = hmac.new(self._secret, payload + realm.encode("utf-8"), hashlib.sha256)
        return digest.digest()[:_MAC_LEN]

    def _nonce_issued_at(self, nonce: str, realm: str, now: float) -> float | None:
        """The nonce's issue time if it is ours, for this realm, and still fresh."""
        if len(nonce) != (_NONCE_LEN * 4 + 2) // 3 or not set(nonce) <= _B64URL:
            return None
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (binascii.Error, ValueError):
            return None
        payload, mac = raw[: _TS_LEN + _RAND_LEN], raw[_TS_LEN + _RAND_LEN :]
        if not hmac.compare_digest(mac, self._mac(payload, realm)):
            # Not signed with our secret: most likely issued before a restart. Calling it
            # stale (not bad) lets every phone re-register silently instead of prompting.
            return None
        issued = int.from_bytes(payload[:_TS_LEN], "big") / 1000
        # A timestamp in the future means the monotonic clock restarted with the same secret.
        if issued > now or now - issued > self.nonce_ttl:
            return None
        if nonce not in self._nc_seen and issued <= self._evicted_up_to:
            return None
        return issued

    def _record_nonce_count(self, nonce: str, issued: float, nc: int, now: float) -> bool:
        """Accept ``nc`` if higher than any accepted for ``nonce`` (RFC 7616 §3.4 nc)."""
        seen = self._nc_seen.get(nonce)
        if seen is not None and nc <= seen[1]:
            return False
        self._nc_seen[nonce] = (issued, nc)
        self._prune(now)
        return True

    def _prune(self, now: float) -> None:
        # Expired entries are useless (the nonce is refused anyway). The table is in order of
        # first use, which is close to issue order, so checking the front is enough.
        while self._nc_seen:
            nonce, (issued, _) = next(iter(self._nc_seen.items()))
            if now - issued <= self.nonce_ttl:
                break
            del self._nc_seen[nonce]
        while len(self._nc_seen) > self.max_tracked_nonces:
            _, (issued, _) = self._nc_seen.popitem(last=False)
            self._evicted_up_to = max(self._evicted_up_to, issued)


def _fail(
    failure: AuthFailure, username: str | None = None, algorithm: DigestAlgorithm | None = None
) -> AuthResult:
    log.debug("digest auth failed: %s (user %r)", failure.value, username)
    return AuthResult(ok=False, username=username, failure=failure, algorithm=algorithm)


def _uri_identity(uri: SipUri) -> tuple[object, ...]:
    # RFC 3261 §19.1.4: scheme and host compare case-insensitively, user and password
    # case-sensitively after unescaping, parameter names case-insensitively.
    if not uri.is_sip:
        return (uri.scheme, uri.opaque)
    params = tuple(
        sorted((k, v.lower() if k == "transport" and v else v) for k, v in uri.params.items())
    )
    return (
        uri.scheme,
        uri.user_unescaped,
        uri.password,
        uri.host_plain,
        uri.port,
        params,
        uri.headers,
    )


def _digest_uri_matches(digest_uri: str, request_uri: str) -> bool:
    """RFC 3261 §22.4, RFC 7616 §3.4: the digest-uri must be the Request-URI."""
    if digest_uri == request_uri:
        return True
    try:
        # Cached and shared: only read here (with_user makes a new URI).
        ours = URI_CACHE(request_uri)
        theirs = URI_CACHE(digest_uri)
    except SipParseError:
        return False
    if _uri_identity(theirs) == _uri_identity(ours):
        return True
    # Interop: sipp's [authentication] hashes uri="sip:HOST:PORT" without the user part,
    # whatever the Request-URI says. Accepting the Request-URI minus its user still binds the
    # digest to this host, port and parameters, so credentials cannot move to another target.
    return (
        ours.is_sip
        and ours.user is not None
        and (_uri_identity(theirs) == _uri_identity(ours.with_user(None)))
    )


# User-Agent prefixes of clients that cannot pick a later challenge when the first one's
# algorithm is unknown to them (RFC 7616 §3.7 says use the first supported one): libre before
# 2.x (baresip 1.x) fails REGISTER with ENOSYS when any SHA-256 challenge is present, and sipp
# 3.6 answers only the first challenge, always with MD5.
_MD5_ONLY_AGENTS = ("baresip", "libre", "sipp")


def algorithms_for_client(
    user_agent: str | None, configured: tuple[DigestAlgorithm, ...]
) -> tuple[DigestAlgorithm, ...]:
    """The algorithms to challenge one client with: the configured ones, less SHA-256 for
    clients known to break on it (when MD5 is configured at all)."""
    agent = (user_agent or "").strip().lower()
    if agent.startswith(_MD5_ONLY_AGENTS) and DigestAlgorithm.MD5 in configured:
        return (DigestAlgorithm.MD5,)
    return configured
