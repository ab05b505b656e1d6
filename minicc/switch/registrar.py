"""The registrar: where each extension can be reached (RFC 3261 §10.3). Pure.

Bindings map an address of record (tenant + user) to contact URIs. They persist across
restarts (the switch stores ``RegisterOutcome.added`` / ``.removed`` and feeds them back through
:meth:`Registrar.load`), so the clock here is wall-clock unix seconds, passed in as ``now``.
Nothing here touches a clock, a socket or a database.

Choices where RFC 3261 leaves room:

- Too many contacts for one AOR: the oldest binding (least recently registered) is dropped to
  make room, instead of refusing with 403. A phone behind NAT that reboots often gets a new
  contact each time; refusing would lock the agent out until the stale ones expire. A single
  REGISTER carrying more contacts than allowed is still refused with 403.
- A contact carrying ``+sip.instance`` (RFC 5626 §4.1) replaces an older binding of the same
  instance registered under another Call-ID: the same device restarted with a new address,
  and the old binding would only ring into the void until it expired.
- A missing ``q`` ranks as 1.0, as an absent weight does in HTTP (RFC 9110 §12.4.2).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.utils import formatdate

from minicc.switch.sip.errors import SipParseError
from minicc.switch.sip.headers import NameAddr
from minicc.switch.sip.message import Request, Response, make_response
from minicc.switch.sip.peer import Peer
from minicc.switch.sip.uri import SipUri, parse_uri

log = logging.getLogger(__name__)

# RFC 3261 §20.19 / §10.2.1.1: malformed expiry values SHOULD be treated as 3600, and values
# above 2**32-1 MAY be treated as 2**32-1.
_MALFORMED_EXPIRES = 3600
_MAX_DELTA = 2**32 - 1
# RFC 3261 §10.3 step 6: 423 only for an interval "greater than zero AND smaller than one hour
# AND less than a registrar-configured minimum".
_ONE_HOUR = 3600
# RFC 3261 §25.1: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
_QVALUE = re.compile(r"(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)\Z")

ContactKey = tuple[object, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Binding:
    """One contact registered for an address of record."""

    tenant: str
    """The tenant the AOR belongs to."""
    user: str
    """The extension (user part of the AOR)."""
    contact: str
    """The Contact URI as text, without display name or header parameters."""
    expires_at: float
    """Unix time after which the binding is gone."""
    call_id: str
    """Call-ID of the REGISTER that made or last refreshed the binding (RFC 3261 §10.3 step 7)."""
    cseq: int
    """CSeq number of that REGISTER."""
    source: Peer
    """Where that REGISTER came from; requests go there, not to a private Contact address."""
    user_agent: str | None = None
    """The phone's User-Agent header, for the supervisor's view."""
    q: float | None = None
    """Preference among the AOR's contacts (0..1), when the phone gave one."""
    instance: str | None = None
    """The ``+sip.instance`` value without its quotes, e.g. ``<urn:uuid:...>`` (RFC 5626)."""
    registered_at: float = 0.0
    """Unix time of the REGISTER that made or last refreshed the binding."""

    def __post_init__(self) -> None:
        if not self.contact:
            raise ValueError("Binding.contact must not be empty")
        if self.cseq < 0:
            raise ValueError("Binding.cseq must not be negative")
        if self.q is not None and not 0.0 <= self.q <= 1.0:
            raise ValueError("Binding.q must be within 0..1")


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterOutcome:
    """What :meth:`Registrar.register` did."""

    response: Response
    """The final response to send."""
    added: list[Binding] = field(default_factory=list)
    """New and refreshed bindings (to store, replacing a stored one with the same contact)."""
    removed: list[Binding] = field(default_factory=list)
    """Bindings that are gone: un-registered, replaced, pushed out, or found expired. None of
    them has the same contact text as a binding in ``added``."""


def contact_key(uri: SipUri) -> ContactKey:
    """A key under which equivalent contact URIs collide (RFC 3261 §19.1.4).

    Compared: scheme, user and password (case-sensitive, unescaped), host (case-insensitive),
    port (an absent port is not 5060), the ``transport``, ``user``, ``ttl``, ``method`` and
    ``maddr`` parameters, and URI headers. Other parameters are ignored: §19.1.4 compares them
    only when both URIs carry them, which is not transitive and so cannot be a key.
    """
    if not uri.is_sip:
        return (uri.scheme, uri.opaque)
    special = tuple(
        (name, (uri.params.get(name) or "").lower() if name != "user" else uri.params.get(name))
        for name in ("transport", "user", "ttl", "method", "maddr")
        if name in uri.params
    )
    return (
        uri.scheme,
        uri.user_unescaped,
        uri.password,
        uri.host_plain,
        uri.port,
        special,
        uri.headers,
    )


class _Rejected(Exception):
    """A REGISTER refused as a whole (RFC 3261 §10.3 step 8: all or nothing)."""

    def __init__(
        self, status: int, reason: str | None = None, extra: list[tuple[str, str]] | None = None
    ) -> None:
        super().__init__(reason or str(status))
        self.status = status
        self.reason = reason
        self.extra = extra or []


class Registrar:
    """Bindings of every tenant's extensions, with expiry driven by ``now``.

    Args:
        min_expires: shortest interval accepted; shorter ones get 423 (RFC 3261 §10.3 step 6).
        max_expires: longer intervals are shortened to this.
        default_expires: used when neither the contact nor the request gives an interval.
        max_contacts: most bindings per AOR (see the module notes on what happens beyond).
    """

    def __init__(
        self,
        *,
        min_expires: int = 60,
        max_expires: int = 3600,
        default_expires: int = 3600,
        max_contacts: int = 10,
    ) -> None:
        if not 0 < min_expires <= default_expires <= max_expires:
            raise ValueError("need 0 < min_expires <= default_expires <= max_expires")
        if max_contacts < 1:
            raise ValueError("max_contacts must be at least 1")
        self.min_expires = min_expires
        self.max_expires = max_expires
        self.default_expires = default_expires
        self.max_contacts = max_contacts
        # (tenant, user) -> contact key -> binding, in order of registration.
        self._aors: dict[tuple[str, str], dict[ContactKey, Binding]] = {}
        # (expires_at, tie-breaker, tenant, user, contact key); entries whose binding has since
        # been refreshed or removed are skipped lazily.
        self._heap: list[tuple[float, int, str, str, ContactKey]] = []
        self._seq = itertools.count()

    # ------------------------------------------------------------------ REGISTER

    def register(
        self,
        tenant: str,
        user: str,
        request: Request,
        source: Peer,
        now: float,
        *,
        to_tag: str,
        date_header: str | None = None,
    ) -> RegisterOutcome:
        """Apply an authenticated REGISTER for ``tenant``/``user`` (RFC 3261 §10.3 steps 6-8).

        Args:
            tenant, user: the address of record, already authorised for this request.
            request: the REGISTER.
            source: where it came from (kept in the bindings for NAT traversal).
            now: wall-clock unix seconds.
            to_tag: the To tag for the response.
            date_header: the Date header value; by default ``now`` formatted as RFC 1123.

        Returns:
            The response (200 listing every current binding, or 400/403/423/500) and the
            bindings added and removed. On an error nothing changes except that expired
            bindings of the AOR are dropped (and reported in ``removed``).
        """
        key = (tenant, user)
        current = self._aors.get(key, {})
        expired = [b for b in current.values() if b.expires_at <= now]
        if expired:
            current = {k: b for k, b in current.items() if b.expires_at > now}
            self._store(key, current)
        try:
            updated, added, removed = self._apply(tenant, user, current, request, source, now)
        except _Rejected as exc:
            log.info("REGISTER for %s@%s refused: %s %s", user, tenant, exc.status, exc.reason)
            response = make_response(
                request, exc.status, exc.reason, to_tag=to_tag, extra=exc.extra
            )
            return RegisterOutcome(response=response, added=[], removed=expired)
        self._store(key, updated)
        for ckey, binding in added.items():
            self._push(key, ckey, binding)
        added_contacts = {b.contact for b in added.values()}
        removed = [b for b in expired + removed if b.contact not in added_contacts]
        extra = [("Contact", _contact_value(b, now)) for b in self._sorted(updated.values())]
        extra.append(("Date", date_header if date_header is not None else _rfc1123(now)))
        response = make_response(request, 200, to_tag=to_tag, extra=extra)
        return RegisterOutcome(response=response, added=list(added.values()), removed=removed)

    def _apply(
        self,
        tenant: str,
        user: str,
        current: dict[ContactKey, Binding],
        request: Request,
        source: Peer,
        now: float,
    ) -> tuple[dict[ContactKey, Binding], dict[ContactKey, Binding], list[Binding]]:
        """Compute the AOR's new bindings without committing anything."""
        try:
            call_id = request.call_id
            cseq = request.cseq.seq
            raw_contacts = [c.strip() for c in request.headers.get_list("Contact")]
            star = "*" in raw_contacts
            contacts = [] if star else request.contacts
        except SipParseError as exc:
            raise _Rejected(400, f"Bad Request ({exc.reason})") from exc
        try:
            header_expires: int | None = request.expires
            header_malformed = False
        except SipParseError:
            header_expires, header_malformed = _MALFORMED_EXPIRES, True

        if star:
            # RFC 3261 §10.3 step 6: "*" only alone and with Expires: 0.
            if len(raw_contacts) != 1 or header_malformed or header_expires != 0:
                raise _Rejected(400, "Contact * Needs Expires 0 And No Other Contact")
            for binding in current.values():
                _check_order(binding, call_id, cseq)
            return {}, {}, list(current.values())
        if not contacts:
            return dict(current), {}, []  # a query (RFC 3261 §10.2.3)

        updated = dict(current)
        added: dict[ContactKey, Binding] = {}
        removed: dict[ContactKey, Binding] = {}
        user_agent = request.headers.get("User-Agent")
        for contact in contacts:
            ckey = contact_key(contact.uri)
            expires = self._interval(contact, header_expires)
            q = _qvalue(contact)
            instance = _instance(contact)
            existing = current.get(ckey)
            if existing is not None and ckey not in added and ckey not in removed:
                _check_order(existing, call_id, cseq)  # RFC 3261 §10.3 step 7
            previous = updated.pop(ckey, None)
            added.pop(ckey, None)
            if expires == 0:
                if previous is not None and ckey in current:
                    removed[ckey] = current[ckey]
                continue
            binding = Binding(
                tenant=tenant,
                user=user,
                contact=str(contact.uri),
                expires_at=now + expires,
                call_id=call_id,
                cseq=cseq,
                source=source,
                user_agent=user_agent,
                q=q,
                instance=instance,
                registered_at=now,
            )
            if existing is not None and existing.contact != binding.contact:
                removed[ckey] = existing  # same URI spelled differently: the text changes
            else:
                removed.pop(ckey, None)
            if instance is not None:
                for other_key, other in list(updated.items()):
                    if other.instance == instance and other.call_id != call_id:
                        del updated[other_key]
                        removed[other_key] = other
            updated[ckey] = binding
            added[ckey] = binding

        if len(added) > self.max_contacts:
            raise _Rejected(403, "Too Many Contacts")
        if len(updated) > self.max_contacts:
            # Push out the least recently registered bindings not touched by this request.
            old = sorted(
                (b.registered_at, i, k)
                for i, (k, b) in enumerate(updated.items())
                if k not in added
            )
            for _, _, old_key in old[: len(updated) - self.max_contacts]:
                removed[old_key] = updated.pop(old_key)
        return updated, added, list(removed.values())

    def _interval(self, contact: NameAddr, header_expires: int | None) -> int:
        """The granted interval for one contact (RFC 3261 §10.3 step 6).

        Raises:
            _Rejected: 423 with Min-Expires when the interval is too brief.
        """
        if "expires" in contact.params:
            raw = (contact.params["expires"] or "").strip()
            requested = min(int(raw), _MAX_DELTA) if raw.isdigit() else _MALFORMED_EXPIRES
        elif header_expires is not None:
            requested = min(header_expires, _MAX_DELTA)
        else:
            requested = self.default_expires
        if 0 < requested < _ONE_HOUR and requested < self.min_expires:
            raise _Rejected(423, extra=[("Min-Expires", str(self.min_expires))])
        return min(requested, self.max_expires)

    # ------------------------------------------------------------------ queries

    def lookup(self, tenant: str, user: str, now: float) -> list[Binding]:
        """Unexpired bindings of the AOR: highest q first, then the newest first."""
        bindings = self._aors.get((tenant, user), {})
        return self._sorted(b for b in bindings.values() if b.expires_at > now)

    @staticmethod
    def _sorted(bindings: Iterable[Binding]) -> list[Binding]:
        newest_first = list(bindings)[::-1]
        return sorted(
            newest_first, key=lambda b: (-(1.0 if b.q is None else b.q), -b.registered_at)
        )

    def count(self) -> int:
        """How many bindings are held (expired ones count until :meth:`expire` drops them)."""
        return sum(len(b) for b in self._aors.values())

    def next_expiry(self) -> float | None:
        """When the next binding expires (unix time), or None when there are none."""
        while self._heap and not self._is_live(self._heap[0]):
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    # ------------------------------------------------------------------ time and storage

    def expire(self, now: float) -> list[Binding]:
        """Drop every binding whose time has come, and return them (to delete from storage)."""
        gone: list[Binding] = []
        while self._heap and self._heap[0][0] <= now:
            entry = heapq.heappop(self._heap)
            if not self._is_live(entry):
                continue
            _, _, tenant, user, ckey = entry
            bindings = self._aors[(tenant, user)]
            gone.append(bindings.pop(ckey))
            if not bindings:
                del self._aors[(tenant, user)]
        return gone

    def load(self, bindings: Iterable[Binding], now: float) -> None:
        """Restore stored bindings at start-up, skipping the expired and the unreadable.

        When two stored bindings have equivalent contacts, the most recently registered wins.
        """
        for binding in bindings:
            if binding.expires_at <= now:
                continue
            try:
                ckey = contact_key(parse_uri(binding.contact))
            except SipParseError as exc:
                log.warning("skipping stored binding %r: %s", binding.contact, exc.reason)
                continue
            key = (binding.tenant, binding.user)
            aor = self._aors.setdefault(key, {})
            existing = aor.get(ckey)
            if existing is not None and existing.registered_at > binding.registered_at:
                continue
            aor.pop(ckey, None)
            aor[ckey] = binding
            self._push(key, ckey, binding)

    def remove_user(self, tenant: str, user: str) -> list[Binding]:
        """Drop every binding of an AOR (e.g. the extension was deleted) and return them."""
        return list(self._aors.pop((tenant, user), {}).values())

    def _store(self, key: tuple[str, str], bindings: dict[ContactKey, Binding]) -> None:
        if bindings:
            self._aors[key] = bindings
        else:
            self._aors.pop(key, None)

    def _push(self, key: tuple[str, str], ckey: ContactKey, binding: Binding) -> None:
        heapq.heappush(self._heap, (binding.expires_at, next(self._seq), key[0], key[1], ckey))

    def _is_live(self, entry: tuple[float, int, str, str, ContactKey]) -> bool:
        expires_at, _, tenant, user, ckey = entry
        binding = self._aors.get((tenant, user), {}).get(ckey)
        return binding is not None and binding.expires_at == expires_at


def _check_order(binding: Binding, call_id: str, cseq: int) -> None:
    """RFC 3261 §10.3 step 7: same Call-ID needs a higher CSeq, else the update fails.

    Step 8 then makes the whole request fail with 500 and nothing committed.
    """
    if binding.call_id == call_id and cseq <= binding.cseq:
        raise _Rejected(500, "Out Of Order REGISTER")


def _qvalue(contact: NameAddr) -> float | None:
    if "q" not in contact.params:
        return None
    raw = (contact.params["q"] or "").strip()
    if not _QVALUE.match(raw):
        raise _Rejected(400, "Bad q Value")
    return float(raw)


def _instance(contact: NameAddr) -> str | None:
    raw = contact.params.get("+sip.instance")
    if not raw:
        return None
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        raw = raw[1:-1]
    return raw or None


def _contact_value(binding: Binding, now: float) -> str:
    """``<uri>;expires=N`` as the 200 OK lists it (RFC 3261 §10.3 step 8)."""
    remaining = max(0, math.ceil(binding.expires_at - now - 1e-6))
    value = f"<{binding.contact}>;expires={remaining}"
    if binding.q is not None:
        value += f";q={binding.q:g}"
    if binding.instance is not None:
        value += f';+sip.instance="{binding.instance}"'
    return value


def _rfc1123(now: float) -> str:
    # RFC 3261 §20.17: SIP-date is the RFC 1123 form, always GMT.
    return formatdate(now, usegmt=True)
