"""SIP dialogs (RFC 3261 §12): the state two user agents share between INVITE and BYE.

A dialog is identified by Call-ID, local tag and remote tag. It holds both CSeq spaces, the
remote target (the peer's Contact), the route set (Record-Route) and the parties' URIs, and it
builds every in-dialog request (BYE, re-INVITE, INFO, the ACK for a 2xx) from them, so the
B2BUA never assembles those headers by hand. Its life is a three-state machine, kept as an
enum plus a transition table like the transaction machines.

Sans-IO: no clock, no sockets. The dialog does not add a Via (the transaction layer, or the
TU, does that when the request is sent).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import NamedTuple

from minicc.switch.sip.errors import LocalProtocolError, RemoteProtocolError
from minicc.switch.sip.headers import Headers, NameAddr
from minicc.switch.sip.message import NAME_ADDR_CACHE, Request, Response
from minicc.switch.sip.uri import SipUri, copy_uri, parse_uri

logger = logging.getLogger(__name__)

# §12.2: requests that may change the remote target (RFC 3261 INVITE; UPDATE RFC 3311;
# SUBSCRIBE/NOTIFY RFC 6665 §4.1.2.3 / §4.2.2.1; REFER RFC 3515 §2.4.6).
TARGET_REFRESH_METHODS = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})


class DialogId(NamedTuple):
    """Call-ID, local tag, remote tag (§12): seen from this side of the dialog."""

    call_id: str
    local_tag: str
    remote_tag: str

    @classmethod
    def of_incoming(cls, request: Request) -> DialogId:
        """The id a request received inside a dialog names, from our side (§12.2.2)."""
        return cls(request.call_id, request.to.tag or "", request.from_.tag or "")


class DialogState(Enum):
    __hash__ = object.__hash__  # members are singletons: hash by identity, in C

    EARLY = "Early"
    CONFIRMED = "Confirmed"
    TERMINATED = "Terminated"


class DialogInput(Enum):
    __hash__ = object.__hash__  # members are singletons: hash by identity, in C

    PROVISIONAL = "1xx with a To tag to the INVITE"
    ACCEPTED = "2xx to the INVITE"
    REJECTED = "300-699 to the dialog-creating INVITE"
    BYE = "BYE sent or received"
    GONE = "481 or 408 to an in-dialog request (§12.2.1.2)"


_S = DialogState
_D = DialogInput

TRANSITIONS: dict[tuple[DialogState, DialogInput], DialogState] = {
    (_S.EARLY, _D.PROVISIONAL): _S.EARLY,
    (_S.EARLY, _D.ACCEPTED): _S.CONFIRMED,
    (_S.EARLY, _D.REJECTED): _S.TERMINATED,  # §12.3: a non-2xx final ends early dialogs
    (_S.EARLY, _D.BYE): _S.TERMINATED,  # §15: the caller may BYE an early dialog
    (_S.EARLY, _D.GONE): _S.TERMINATED,
    # UDP may deliver a 1xx after the 2xx; a 2xx retransmission or a re-INVITE's 2xx changes
    # nothing either.
    (_S.CONFIRMED, _D.PROVISIONAL): _S.CONFIRMED,
    (_S.CONFIRMED, _D.ACCEPTED): _S.CONFIRMED,
    (_S.CONFIRMED, _D.BYE): _S.TERMINATED,
    (_S.CONFIRMED, _D.GONE): _S.TERMINATED,
}


def _without_tag(party: NameAddr) -> NameAddr:
    """A copy of ``party`` (which may be a shared, cached value) without its tag."""
    params = {k: v for k, v in party.params.items() if k != "tag"}
    return NameAddr(copy_uri(party.uri), party.display, params)


def _contact_uri(message: Request | Response) -> SipUri | None:
    """A copy of the first Contact's URI (the parsed values are shared: copy one only)."""
    for value in message.headers.get_list("Contact"):
        if value != "*":
            return copy_uri(NAME_ADDR_CACHE(value).uri)
    return None


@dataclass(slots=True, kw_only=True)
class Dialog:
    """One dialog's state (RFC 3261 §12.1). Build it with :meth:`from_uas` or :meth:`from_uac`."""

    call_id: str
    local_tag: str
    remote_tag: str
    local_party: NameAddr
    """Our From (UAC) or To (UAS) as in the dialog-creating request, tag removed."""
    remote_party: NameAddr
    """The peer's To (UAC) or From (UAS) as in the dialog-creating request, tag removed."""
    remote_target: SipUri
    """Where in-dialog requests go: the peer's Contact."""
    route_set: list[str] = field(default_factory=list)
    """Route values, in the order they go into requests."""
    local_seq: int | None = None
    """The CSeq of our last request; None until we send one (§12.1.1)."""
    remote_seq: int | None = None
    """The highest CSeq seen from the peer; None until one arrives (§12.1.2)."""
    secure: bool = False
    state: DialogState = DialogState.EARLY
    is_uac: bool = False
    invite_seq: int | None = None
    """The CSeq number of our last INVITE in this dialog: the ACK for its 2xx reuses it."""

    # --- construction (§12.1) -------------------------------------------------------------

    @classmethod
    def from_uas(
        cls, request: Request, response: Response, *, secure: bool | None = None
    ) -> Dialog:
        """The dialog we create by answering ``request`` with ``response`` (1xx or 2xx).

        §12.1.1: route set = the request's Record-Route in order; remote target = its Contact;
        remote seq = its CSeq. ``secure`` defaults to "SIPS Request-URI received over TLS".

        Raises:
            LocalProtocolError: the response has no To tag or is not 101-299.
        """
        if not 101 <= response.status < 300:
            raise LocalProtocolError(f"a {response.status} creates no dialog")
        local_tag = response.to_tag
        if not local_tag:
            raise LocalProtocolError("the response creating a dialog needs a To tag (§12.1.1)")
        from_ = request._name_addr_shared("From")  # read only: the parties below are copies
        target = _contact_uri(request)
        if target is None:
            logger.warning("%s: request without Contact, using From", request.call_id)
            target = copy_uri(from_.uri)
        if secure is None:
            secure = (
                request.uri[:5].lower() == "sips:" and request._top_via_shared().transport == "TLS"
            )
        dialog = cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=from_.params.get("tag") or "",
            local_party=_without_tag(request._name_addr_shared("To")),
            remote_party=_without_tag(from_),
            remote_target=target,
            route_set=request.headers.get_list("Record-Route"),
            remote_seq=request.cseq.seq,
            secure=secure,
            state=DialogState.EARLY if response.is_provisional else DialogState.CONFIRMED,
            is_uac=False,
        )
        return dialog

    @classmethod
    def from_uac(cls, request: Request, response: Response) -> Dialog:
        """The dialog a response (1xx with a To tag, or 2xx) to our ``request`` creates.

        §12.1.2: route set = the response's Record-Route reversed; remote target = its
        Contact; local seq = the request's CSeq.

        Raises:
            RemoteProtocolError: the response has no To tag or is not 101-299.
        """
        if not 101 <= response.status < 300:
            raise RemoteProtocolError(f"a {response.status} creates no dialog")
        remote_tag = response.to_tag
        if not remote_tag:
            raise RemoteProtocolError("a dialog-creating response without To tag (§12.1.2)")
        target = _contact_uri(response)
        if target is None:
            logger.warning("%s: response without Contact, using the R-URI", request.call_id)
            target = parse_uri(request.uri)
        seq = request.cseq.seq
        from_ = request._name_addr_shared("From")  # read only: the parties below are copies
        return cls(
            call_id=request.call_id,
            local_tag=from_.params.get("tag") or "",
            remote_tag=remote_tag,
            local_party=_without_tag(from_),
            remote_party=_without_tag(request._name_addr_shared("To")),
            remote_target=target,
            route_set=list(reversed(response.headers.get_list("Record-Route"))),
            local_seq=seq,
            secure=request.uri[:5].lower() == "sips:",
            state=DialogState.EARLY if response.is_provisional else DialogState.CONFIRMED,
            is_uac=True,
            invite_seq=seq if request.method == "INVITE" else None,
        )

    # --- identity -------------------------------------------------------------------------

    @property
    def id(self) -> DialogId:
        return DialogId(self.call_id, self.local_tag, self.remote_tag)

    @property
    def local_uri(self) -> SipUri:
        return self.local_party.uri

    @property
    def remote_uri(self) -> SipUri:
        return self.remote_party.uri

    # --- the state machine ----------------------------------------------------------------

    def transition(self, event: DialogInput) -> DialogState:
        """Apply ``event``; returns the new state.

        Raises:
            LocalProtocolError: the pair is not in :data:`TRANSITIONS`.
        """
        new = TRANSITIONS.get((self.state, event))
        if new is None:
            raise LocalProtocolError(f"dialog {self.id}: {event.value} in {self.state.value}")
        self.state = new
        return new

    def on_response(self, response: Response) -> None:
        """A response to a request we sent in (or to create) this dialog.

        2xx to an INVITE confirms the dialog and, for the UAC of an early dialog, recomputes
        the route set from it (§13.2.2.4); 1xx and 2xx with a Contact refresh the target
        (§12.2.1.2); 481 and 408 end the dialog (§12.2.1.2); a non-2xx final to the INVITE
        ends an early dialog (§12.3).
        """
        method = response.cseq.method
        status = response.status
        if status in (408, 481):
            self.transition(DialogInput.GONE)
            return
        if method == "INVITE":
            if response.is_provisional:
                if response.to.tag:
                    self.transition(DialogInput.PROVISIONAL)
            elif response.is_success:
                if self.state is DialogState.EARLY and self.is_uac:
                    self.route_set = list(reversed(response.headers.get_list("Record-Route")))
                self.transition(DialogInput.ACCEPTED)
            elif self.state is DialogState.EARLY:
                self.transition(DialogInput.REJECTED)
                return
        if (response.is_success or response.is_provisional) and method in TARGET_REFRESH_METHODS:
            self.update_target(response)

    def on_response_sent(self, response: Response) -> None:
        """A final response we (the UAS) sent to the dialog-creating INVITE."""
        if response.cseq.method != "INVITE" or response.is_provisional:
            return
        if response.is_success:
            self.transition(DialogInput.ACCEPTED)
        elif self.state is DialogState.EARLY:
            self.transition(DialogInput.REJECTED)

    def on_bye(self) -> None:
        """A BYE was sent or received: the dialog is over (§15)."""
        self.transition(DialogInput.BYE)

    # --- requests received (§12.2.2) ------------------------------------------------------

    def accept_remote_cseq(self, seq: int) -> bool:
        """Check (and record) the CSeq of a request from the peer.

        Returns:
            False when ``seq`` is lower than the remote sequence number: the request is out of
            order and must be answered 500 (§12.2.2). ACK and CANCEL reuse their INVITE's
            number, so an equal one is accepted.
        """
        if self.remote_seq is not None and seq < self.remote_seq:
            return False
        self.remote_seq = seq
        return True

    def update_from_request(self, request: Request) -> bool:
        """Take an in-dialog request from the peer: CSeq check, then target refresh.

        Returns:
            False when the CSeq is out of order (answer 500 and do nothing else).
        """
        if request.method not in ("ACK", "CANCEL") and not self.accept_remote_cseq(
            request.cseq.seq
        ):
            return False
        if request.method in TARGET_REFRESH_METHODS:
            self.update_target(request)
        return True

    def update_target(self, message: Request | Response) -> None:
        """Replace the remote target with the message's Contact, if it has one (§12.2)."""
        target = _contact_uri(message)
        if target is not None:
            self.remote_target = target

    # --- requests sent (§12.2.1.1) --------------------------------------------------------

    def create_request(
        self,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra_headers: Iterable[tuple[str, str]] = (),
        cseq: int | None = None,
    ) -> Request:
        """Build a request inside this dialog (no Via: the sender adds it).

        The Request-URI and Route come from the remote target and route set (§12.2.1.1, with
        the strict-routing case when the first route lacks ``lr``). The CSeq is the next local
        one, except for an ACK, which reuses the INVITE's number (§13.2.2.4: ``cseq`` or the
        last INVITE this dialog created), and whenever ``cseq`` is given. Max-Forwards: 70 is
        added unless ``extra_headers`` has one.

        Raises:
            LocalProtocolError: the dialog is terminated, or an ACK with no INVITE to follow.
            SipParseError: the first route is malformed.
        """
        if self.state is DialogState.TERMINATED:
            raise LocalProtocolError(f"dialog {self.id} is terminated: no {method}")
        if cseq is None:
            if method == "ACK":
                if self.invite_seq is None:
                    raise LocalProtocolError("ACK needs the INVITE's CSeq number")
                cseq = self.invite_seq
            else:
                # §12.2.1.1: increment by one; a UAS starting the count may pick any value.
                self.local_seq = cseq = 1 if self.local_seq is None else self.local_seq + 1
        if method == "INVITE":
            self.invite_seq = cseq
        extra = list(extra_headers)
        headers = Headers()
        uri, routes = self._uri_and_routes()
        for route in routes:
            headers.add("Route", route)
        if not any(name.lower() == "max-forwards" for name, _ in extra):
            headers.add("Max-Forwards", "70")
        local = self.local_party
        local = NameAddr(
            copy_uri(local.uri), local.display, {**local.params, "tag": self.local_tag}
        )
        remote = self.remote_party
        remote_params = dict(remote.params)
        if self.remote_tag:
            remote_params["tag"] = self.remote_tag
        remote = NameAddr(copy_uri(remote.uri), remote.display, remote_params)
        from_text, to_text = str(local), str(remote)
        headers.add("From", from_text)
        headers.add("To", to_text)
        # The peer's responses repeat these texts: they are read without being parsed.
        NAME_ADDR_CACHE.seed(from_text, local)
        NAME_ADDR_CACHE.seed(to_text, remote)
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{cseq} {method}")
        for name, value in extra:
            headers.add(name, value)
        if content_type is not None:
            headers.add("Content-Type", content_type)
        return Request(headers=headers, body=body, method=method, uri=uri)

    def _uri_and_routes(self) -> tuple[str, list[str]]:
        target = str(self.remote_target)
        if not self.route_set:
            return target, []
        first = NAME_ADDR_CACHE(self.route_set[0]).uri  # read only
        if "lr" in first.params:
            return target, list(self.route_set)
        # A strict router (RFC 2543): it goes in the Request-URI, the remote target becomes
        # the last Route (§12.2.1.1). What a Request-URI may not hold (§19.1.1, Table 1: the
        # method parameter and headers) is dropped.
        params = {k: v for k, v in first.params.items() if k != "method"}
        request_uri = replace(first, params=params, headers=None)
        return str(request_uri), [*self.route_set[1:], f"<{target}>"]
