"""The transaction layer (RFC 3261 §17): matching, retransmission, timers, ACK and CANCEL.

Sans-IO, in the aioquic shape. Three things drive it, each with the current time passed in:
the network (:meth:`TransactionLayer.receive`), the TU (``send_request``, ``send_response``,
``send_ack_for_2xx``, ``cancel``, ``send_stateless``) and the clock
(:meth:`~TransactionLayer.get_timer` / :meth:`~TransactionLayer.handle_timer`). What it wants
sent is drained with :meth:`~TransactionLayer.datagrams_to_send`; what the TU must hear about
with :meth:`~TransactionLayer.next_event`.

Choices (where the RFC leaves room):

- ``send_request`` uses the TU's top Via if there is one (adding a branch if it lacks one);
  with no Via at all the layer adds ``SIP/2.0/<transport> local_via_host:local_via_port;
  branch=...;rport``. Either way the branch carries the magic cookie (§8.1.1.7).
- ``auto_100`` (default on) answers a new INVITE with 100 Trying at once, the least delay
  possible; §17.2.1 only requires one within 200 ms unless the TU answers sooner.
- 2xx to INVITE are retransmitted by this layer (the UAS core's job in §13.3.1.4) from the
  server transaction's Accepted state (RFC 6026), on every transport: the 2xx is end-to-end
  and a UDP hop may lie beyond a TCP one. An ACK for the 2xx is recognised by Call-ID, From
  tag and CSeq number, whatever its branch.
- ``send_ack_for_2xx`` keeps the ACK for 64*T1 and re-sends it by itself when the 2xx is
  retransmitted, so the TU hears of each 2xx once (per fork) and never of its retransmissions.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections import deque
from typing import NamedTuple

from minicc.switch.sip.errors import LocalProtocolError, SipError
from minicc.switch.sip.headers import Headers, Via
from minicc.switch.sip.message import VIA_CACHE, Request, Response, make_response
from minicc.switch.sip.peer import Peer, Transport
from minicc.switch.sip.timers import Timer, TimerConfig, TimerHeap
from minicc.switch.sip.tokens import BufferedSystemRandom
from minicc.switch.sip.transaction import (
    MAGIC_COOKIE,
    TIMER_INPUT,
    AckReceived,
    AckTimeout,
    CancelReceived,
    ClientTransaction,
    ClientTxKey,
    DialogTxKey,
    InviteClientState,
    InviteServerState,
    Machine,
    NonInviteClientState,
    NonInviteServerState,
    RequestReceived,
    ResponseReceived,
    ServerTransaction,
    ServerTxKey,
    ServerTxTimeout,
    StrayResponse,
    TransactionTimeout,
    TxEvent,
    TxInput,
    TxState,
    is_terminated,
    next_state,
)
from minicc.switch.sip.uri import split_unquoted

__all__ = [
    "AckReceived",
    "AckTimeout",
    "CancelReceived",
    "ClientTxKey",
    "RequestReceived",
    "ResponseReceived",
    "ServerTxKey",
    "ServerTxTimeout",
    "StrayResponse",
    "TimerConfig",
    "TransactionLayer",
    "TransactionTimeout",
    "TxEvent",
    "client_key_of",
    "response_destination",
    "server_key_of",
    "stamp_via",
]

logger = logging.getLogger(__name__)

_CLIENT_TIMERS = frozenset({Timer.A, Timer.B, Timer.D, Timer.E, Timer.F, Timer.K, Timer.M})
_ALL_CLIENT = (Timer.A, Timer.B, Timer.D, Timer.E, Timer.F, Timer.K, Timer.M)
_ALL_SERVER = (Timer.G, Timer.H, Timer.I, Timer.J, Timer.L, Timer.RETRANSMIT_2XX)


class _AckKey(NamedTuple):
    """A 2xx is retransmitted with the same Call-ID, CSeq number and To tag (§13.2.2.4)."""

    call_id: str
    seq: int
    to_tag: str


# One shared string per usual method, so 10k live keys do not each hold a copy.
_METHODS = {
    m: m
    for m in [
        "INVITE",
        "BYE",
        "CANCEL",
        "OPTIONS",
        "INFO",
        "REGISTER",
        "UPDATE",
        "PRACK",
        "SUBSCRIBE",
        "NOTIFY",
        "REFER",
    ]
}


def _default_port(transport: Transport) -> int:
    return 5061 if transport is Transport.TLS else 5060


def stamp_via(request: Request, source: Peer) -> Via:
    """Add ``received`` and fill ``rport`` on the top Via (RFC 3261 §18.2.1, RFC 3581 §4).

    ``received`` is added when the sent-by host is not the packet's source address, or when
    the client asked for ``rport``; an empty ``rport`` gets the source port.

    Returns:
        The top Via as now stamped. It is shared with the message's parse cache: read it,
        do not change it.

    Raises:
        SipParseError: there is no top Via, or it is malformed.
    """
    via = request._top_via_shared()
    params = via.params
    host = source.host
    if "rport" in params:
        if params["rport"] is not None and params.get("received") == host:
            return via
        stamped = {**params, "received": host}
        if stamped["rport"] is None:
            stamped["rport"] = str(source.port)
    elif via.host == host or via.host.strip("[]").lower() == host.strip("[]").lower():
        return via  # the usual case: nothing to add
    else:
        stamped = {**params, "received": host}
    via = Via(via.transport, via.host, via.port, stamped, via.protocol)
    text = str(via)
    request.headers = _replace_top_via(request.headers, via, text)
    # Responses copy this text, so their top Via is read without parsing it again.
    VIA_CACHE.seed(text, via)
    return via


def _replace_top_via(headers: Headers, via: Via, text: str | None = None) -> Headers:
    """``headers`` with the first Via value replaced by ``via`` (other values untouched)."""
    if text is None:
        text = str(via)
    first = next(iter(headers), None)
    if first is not None and first[0] == "Via":
        # The usual case, done in place: Via is the first header line.
        headers.pop_first_list_value("Via")
        headers.prepend("Via", text)
        return headers
    items: list[tuple[str, str]] = []
    done = False
    for name, value in headers:
        if not done and name == "Via":
            parts = split_unquoted(value, ",")
            rest = ",".join(parts[1:]).strip()
            value = f"{text}, {rest}" if rest else text
            done = True
        items.append((name, value))
    return Headers(items)


def response_destination(via: Via, source: Peer) -> Peer:
    """Where a response to a request with this (stamped) top Via goes (RFC 3261 §18.2.2).

    Over a reliable transport: back to the source (the transport keeps the connection).
    Over UDP: ``received`` + ``rport`` → the source address and port (RFC 3581 §4);
    ``received`` alone → that address, the Via port or 5060; neither → the sent-by. ``maddr``
    is ignored: multicast is not supported.
    """
    if source.reliable:
        return source
    host = via.params.get("received") or via.host
    rport = via.params.get("rport")
    port = via.port or _default_port(source.transport)
    if rport and rport.isdigit():
        port = int(rport)
    if "[" in host:
        host = host.strip("[]")
    if host == source.host and port == source.port:
        return source  # the usual case: no new object (and equal keys share their strings)
    return Peer(source.transport, host, port)


def server_key_of(message: Request | Response, via: Via | None = None) -> ServerTxKey:
    """The server transaction a request (or the TU's response to it) belongs to (§17.2.3).

    ``via`` is the message's top Via when the caller has already parsed it.

    Raises:
        SipParseError: a header needed for matching is missing or malformed.
    """
    if via is None:
        via = message._top_via_shared()  # read only
    cseq = message.cseq
    method = "INVITE" if cseq.method == "ACK" else _METHODS.get(cseq.method, cseq.method)
    branch = via.branch
    if branch is None or not branch.startswith(MAGIC_COOKIE):
        # RFC 2543 peers: fall back to the fields §17.2.3 lists. The To tag is left out so a
        # legacy ACK (which carries the response's tag) still finds its INVITE.
        # The Request-URI is left out too: a response does not carry it, and the other
        # fields already tell transactions apart in practice.
        from_tag = message.from_tag or ""
        legacy = "\0".join((message.call_id, from_tag, str(cseq.seq), str(via)))
        branch = "legacy:" + hashlib.blake2b(legacy.encode(), digest_size=12).hexdigest()
    return ServerTxKey(branch, via.host.lower(), via.port, method)


def client_key_of(message: Request | Response) -> ClientTxKey:
    """The client transaction a response (or our request) belongs to (§17.1.3).

    Raises:
        SipParseError: a header needed for matching is missing or malformed.
    """
    return ClientTxKey(message.branch or "", message.cseq.method)


def _status_input(status: int, *, sending: bool) -> TxInput:
    if status < 200:
        return TxInput.SEND_1XX if sending else TxInput.RECV_1XX
    if status < 300:
        return TxInput.SEND_2XX if sending else TxInput.RECV_2XX
    return TxInput.SEND_FINAL_ERROR if sending else TxInput.RECV_FINAL_ERROR


class TransactionLayer:
    """All client and server transactions of one SIP endpoint.

    Args:
        timers: T1, T2, T4 and Timer D.
        local_via_host: sent-by host of the Via the layer adds to requests without one.
        local_via_port: its port.
        rng: source of branches and tags; the kernel's generator (buffered, see
            :mod:`~minicc.switch.sip.tokens`) when omitted, since branches and tags should be
            hard to guess.
        auto_100: answer each new INVITE with 100 Trying at once.
    """

    def __init__(
        self,
        *,
        timers: TimerConfig = TimerConfig(),  # noqa: B008 - frozen, so sharing is safe
        local_via_host: str = "127.0.0.1",
        local_via_port: int = 5060,
        rng: random.Random | None = None,
        auto_100: bool = True,
    ) -> None:
        self.timers = timers
        self.local_via_host = local_via_host
        self.local_via_port = local_via_port
        self.auto_100 = auto_100
        self._rng = rng if rng is not None else BufferedSystemRandom()
        self._client: dict[ClientTxKey, ClientTransaction] = {}
        self._server: dict[ServerTxKey, ServerTransaction] = {}
        self._accepted: dict[DialogTxKey, ServerTxKey] = {}
        self._acks: dict[_AckKey, tuple[Peer, bytes]] = {}
        self._heap = TimerHeap()
        self._events: deque[TxEvent] = deque()
        self._out: list[tuple[Peer, bytes]] = []

    # --- helpers for the TU ---------------------------------------------------------------

    def new_branch(self) -> str:
        """A fresh Via branch with the RFC 3261 magic cookie (§8.1.1.7)."""
        return f"{MAGIC_COOKIE}{self._rng.getrandbits(64):016x}"

    def new_tag(self) -> str:
        """A fresh From/To tag (§19.3: at least 32 bits of randomness)."""
        return f"{self._rng.getrandbits(48):012x}"

    def __len__(self) -> int:
        """The number of live transactions."""
        return len(self._client) + len(self._server)

    def client_state(self, key: ClientTxKey) -> TxState | None:
        """The state of a live client transaction, None once it is gone."""
        tx = self._client.get(key)
        return tx.state if tx else None

    def server_state(self, key: ServerTxKey) -> TxState | None:
        """The state of a live server transaction, None once it is gone."""
        tx = self._server.get(key)
        return tx.state if tx else None

    # --- output ---------------------------------------------------------------------------

    def next_event(self) -> TxEvent | None:
        """The next event for the TU, or None when there is none."""
        return self._events.popleft() if self._events else None

    def datagrams_to_send(self) -> list[tuple[Peer, bytes]]:
        """Everything queued for the network since the last call, in order."""
        out, self._out = self._out, []
        return out

    def get_timer(self) -> float | None:
        """The earliest deadline over all transactions, or None when nothing is pending."""
        return self._heap.next_deadline()

    def handle_timer(self, now: float) -> None:
        """Fire every timer due at ``now`` (in deadline order)."""
        while (due := self._heap.pop_due(now)) is not None:
            owner, timer = due
            if timer is Timer.ACK_CACHE:
                self._acks.pop(owner, None)  # type: ignore[call-overload]
            elif timer in _CLIENT_TIMERS:
                ctx = self._client.get(owner)  # type: ignore[call-overload]
                if ctx is not None:
                    self._client_input(ctx, TIMER_INPUT[timer], now)
            else:
                stx = self._server.get(owner)  # type: ignore[call-overload]
                if stx is not None:
                    self._server_input(stx, TIMER_INPUT[timer], now)

    # --- input from the network -----------------------------------------------------------

    def receive(self, message: Request | Response, source: Peer, now: float) -> None:
        """Take a parsed message from ``source``.

        Requests get their top Via stamped (RFC 3581) before anything else. A message that
        breaks the protocol (say, an ACK for an INVITE still in Proceeding) or lacks a header
        needed for matching is logged and dropped: a peer's error never raises out of here.
        """
        try:
            if isinstance(message, Request):
                self._receive_request(message, source, now)
            else:
                self._receive_response(message, source, now)
        except SipError as exc:
            logger.warning("dropped %r from %s: %s", message, source, exc)

    def _receive_request(self, request: Request, source: Peer, now: float) -> None:
        via = stamp_via(request, source)
        key = server_key_of(request, via)
        tx = self._server.get(key)
        if request.method == "ACK":
            if tx is None:
                dkey = DialogTxKey(request.call_id, request.from_tag or "", request.cseq.seq)
                accepted = self._accepted.get(dkey)
                tx = self._server.get(accepted) if accepted else None
            if tx is None:
                # An ACK for a 2xx whose transaction is gone (or never was): the TU decides.
                self._events.append(AckReceived(request=request, source=source))
                return
            self._server_input(tx, TxInput.RECV_ACK, now, ack=request, source=source)
            return
        if tx is not None:
            self._server_input(tx, TxInput.RECV_REQUEST, now)
            return
        # The source itself when equal: 10k calls keep no equal copies of it.
        dest = response_destination(via, source)
        if key.host == source.host and key.port == source.port:
            key = ServerTxKey(key.branch, source.host, source.port, key.method)
        if request.method == "INVITE":
            tx = ServerTransaction(key, Machine.INVITE_SERVER, request, source, dest)
            self._server[key] = tx
            self._events.append(RequestReceived(request=request, source=source, server_key=key))
            if self.auto_100:
                self.send_response(make_response(request, 100), now)
            return
        tx = ServerTransaction(key, Machine.NON_INVITE_SERVER, request, source, dest)
        self._server[key] = tx
        if request.method == "CANCEL":
            self._answer_cancel(tx, now)
        else:
            self._events.append(RequestReceived(request=request, source=source, server_key=key))

    def _answer_cancel(self, tx: ServerTransaction, now: float) -> None:
        """RFC 3261 §9.2: 200 if the INVITE is still in Proceeding, else 481."""
        cancel = tx.request
        assert cancel is not None  # just created
        invite = self._server.get(tx.key._replace(method="INVITE"))
        if invite is None or invite.state is not InviteServerState.PROCEEDING:
            self._events.append(CancelReceived(cancel=cancel, invite_key=None))
            self.send_response(make_response(cancel, 481, to_tag=self.new_tag()), now)
            return
        last = invite.last_response
        to_tag = (last.to_tag if last is not None else None) or self.new_tag()
        self._events.append(CancelReceived(cancel=cancel, invite_key=invite.key, to_tag=to_tag))
        self.send_response(make_response(cancel, 200, to_tag=to_tag), now)

    def _receive_response(self, response: Response, source: Peer, now: float) -> None:
        key = client_key_of(response)
        tx = self._client.get(key)
        if tx is None:
            if not self._reack(response):
                self._events.append(StrayResponse(response=response, source=source))
            return
        self._client_input(
            tx, _status_input(response.status, sending=False), now, response=response
        )

    def _reack(self, response: Response) -> bool:
        """Re-send our ACK for a retransmitted 2xx to INVITE; False if we have none."""
        if not response.is_success or response.cseq.method != "INVITE":
            return False
        cached = self._acks.get(_AckKey(response.call_id, response.cseq.seq, response.to_tag or ""))
        if cached is None:
            return False
        self._out.append(cached)
        return True

    # --- actions of the TU ----------------------------------------------------------------

    def send_request(self, request: Request, dest: Peer, now: float) -> ClientTxKey:
        """Start a client transaction for ``request`` (anything but ACK) towards ``dest``.

        Returns:
            The key that ``ResponseReceived`` and ``TransactionTimeout`` will carry.

        Raises:
            LocalProtocolError: an ACK, a CSeq method that is not the request's, a branch
                without the magic cookie, or a branch already in use.
        """
        if request.method == "ACK":
            raise LocalProtocolError("ACK has no client transaction: use send_ack_for_2xx")
        if request.cseq.method != request.method:
            raise LocalProtocolError(f"CSeq method {request.cseq.method} != {request.method}")
        self._ensure_via(request, dest)
        key = client_key_of(request)
        if not key.branch.startswith(MAGIC_COOKIE):
            raise LocalProtocolError(f"branch {key.branch!r} lacks the magic cookie (§8.1.1.7)")
        if key in self._client:
            raise LocalProtocolError(f"client transaction {key} already exists")
        invite = request.method == "INVITE"
        tx = ClientTransaction(
            key, Machine.INVITE_CLIENT if invite else Machine.NON_INVITE_CLIENT, request, dest
        )
        tx.data = request.to_bytes()
        self._client[key] = tx
        self._out.append((dest, tx.data))
        if not dest.reliable:
            tx.interval = self.timers.T1
            self._heap.arm(key, Timer.A if invite else Timer.E, now + tx.interval)
        self._heap.arm(key, Timer.B if invite else Timer.F, now + self.timers.timeout)
        return key

    def _ensure_via(self, request: Request, dest: Peer) -> None:
        top = request.headers.get("Via")
        if top is not None and "," in top:
            values = request.headers.get_list("Via")
            top = values[0] if values else None
        if top is None or not top.strip():
            via = Via(
                transport=dest.transport.value,
                host=self.local_via_host,
                port=self.local_via_port,
                params={"branch": self.new_branch(), "rport": None},
            )
            text = str(via)
            request.headers.prepend("Via", text)
            VIA_CACHE.seed(text, via)  # read right back for the transaction key
            return
        via = VIA_CACHE(top)  # parsed once here; the key and the response find it cached
        if via.branch is None:
            via = Via(
                via.transport,
                via.host,
                via.port,
                {**via.params, "branch": self.new_branch()},
                via.protocol,
            )
            text = str(via)
            request.headers = _replace_top_via(request.headers, via, text)
            VIA_CACHE.seed(text, via)

    def send_response(self, response: Response, now: float) -> None:
        """Send ``response`` through its server transaction (found by top Via and CSeq).

        A 2xx to INVITE moves the transaction to Accepted, where the layer re-sends it at T1,
        2T1, ... capped at T2 until the ACK arrives, and emits ``AckTimeout`` after 64*T1.

        Raises:
            LocalProtocolError: no such server transaction, or its state forbids the response
                (e.g. a second final).
        """
        key = server_key_of(response)
        tx = self._server.get(key)
        if tx is None:
            raise LocalProtocolError(f"no server transaction for {response!r}")
        self._server_input(tx, _status_input(response.status, sending=True), now, response=response)

    def send_ack_for_2xx(self, ack: Request, dest: Peer, now: float) -> None:
        """Send the TU's ACK for a 2xx (no transaction, §13.2.2.4) and keep it for 64*T1.

        While kept, every retransmission of that 2xx (same Call-ID, CSeq number and To tag)
        is answered with this ACK by the layer and not reported to the TU. A Via is added
        when the ACK has none.
        """
        if ack.method != "ACK":
            raise LocalProtocolError(f"send_ack_for_2xx got a {ack.method}")
        self._ensure_via(ack, dest)
        data = ack.to_bytes()
        self._out.append((dest, data))
        akey = _AckKey(ack.call_id, ack.cseq.seq, ack.to_tag or "")
        self._acks[akey] = (dest, data)
        self._heap.arm(akey, Timer.ACK_CACHE, now + self.timers.timeout)

    def send_stateless(self, message: Request | Response, dest: Peer) -> None:
        """Send without any transaction (e.g. a 400 to a malformed request)."""
        self._out.append((dest, message.to_bytes()))

    def cancel(self, invite_key: ClientTxKey, now: float) -> None:
        """Cancel a pending INVITE (RFC 3261 §9.1).

        The CANCEL goes out in its own client transaction once a provisional response has
        arrived (deferred until then); if the INVITE already has a final response, or was
        already cancelled, nothing is sent. The CANCEL's responses arrive as
        ``ResponseReceived`` with its own key (branch of the INVITE, method CANCEL).
        """
        tx = self._client.get(invite_key)
        if tx is None or tx.machine is not Machine.INVITE_CLIENT or tx.cancel_sent:
            return
        if tx.state is InviteClientState.CALLING:
            tx.cancel_pending = True
        elif tx.state is InviteClientState.PROCEEDING:
            self._send_cancel(tx, now)

    def _send_cancel(self, tx: ClientTransaction, now: float) -> None:
        invite = tx.request
        assert invite is not None  # kept until a final response
        headers = Headers()
        # §9.1: one Via, the INVITE's top one, so the CANCEL follows the INVITE's path and
        # matches its server transaction; Route copied; To without the response's tag.
        headers.add("Via", invite.headers.get_list("Via")[0])
        for route in invite.headers.get_all("Route"):
            headers.add("Route", route)
        headers.add("Max-Forwards", "70")
        for name in ("From", "To", "Call-ID"):
            headers.add(name, invite.headers.get(name) or "")
        headers.add("CSeq", f"{invite.cseq.seq} CANCEL")
        cancel = Request(headers=headers, method="CANCEL", uri=invite.uri)
        tx.cancel_sent = True
        tx.cancel_pending = False
        self.send_request(cancel, tx.dest, now)
        # §9.1: if no final arrives 64*T1 after the CANCEL, the INVITE is given up.
        self._heap.arm(tx.key, Timer.B, now + self.timers.timeout)

    # --- the machines' actions ------------------------------------------------------------

    def _client_input(
        self,
        tx: ClientTransaction,
        event: TxInput,
        now: float,
        *,
        response: Response | None = None,
    ) -> None:
        old = tx.state
        tx.state = new = next_state(tx.machine, old, event)
        cfg, heap, key = self.timers, self._heap, tx.key
        if event is TxInput.TIMER_A or event is TxInput.TIMER_E:
            self._out.append((tx.dest, tx.data))
            if event is TxInput.TIMER_A:
                tx.interval *= 2  # §17.1.1.2: A doubles, bounded by B alone
            elif new is NonInviteClientState.PROCEEDING:
                tx.interval = cfg.T2  # §17.1.2.2
            else:
                tx.interval = min(2 * tx.interval, cfg.T2)
            heap.arm(key, Timer.A if event is TxInput.TIMER_A else Timer.E, now + tx.interval)
        elif event is TxInput.TIMER_B or event is TxInput.TIMER_F:
            request = tx.request
            assert request is not None  # B and F only run before a final response
            logger.info("%s timed out: %r", key, request)
            self._events.append(TransactionTimeout(client_key=key, request=request))
        elif response is not None:
            self._client_response(tx, old, new, response, now)
        if is_terminated(tx.state):
            self._drop_client(tx)

    def _client_response(
        self,
        tx: ClientTransaction,
        old: object,
        new: object,
        response: Response,
        now: float,
    ) -> None:
        heap, key, reliable = self._heap, tx.key, tx.dest.reliable
        if old is new and old in (InviteClientState.COMPLETED, NonInviteClientState.COMPLETED):
            if tx.ack is not None and not response.is_provisional:
                self._out.append((tx.dest, tx.ack))  # §17.1.1.2: ACK each retransmission
            return
        request = tx.request
        if old is not new and not response.is_provisional:
            # A final response: from now on only the key, the tags and the ACK's bytes are
            # needed; the request is let go (the transaction may linger 32 s, its call gone).
            tx.request, tx.data = None, b""
        if new is InviteClientState.ACCEPTED:
            tag = response.to_tag or ""
            if old is InviteClientState.ACCEPTED:
                assert tx.to_tags is not None
                if not response.is_success:
                    return
                if tag in tx.to_tags:
                    self._reack(response)  # a retransmission: ours, or the TU's pending ACK
                    return
                tx.to_tags.add(tag)  # a new fork: the TU must ACK (and likely BYE) it
            else:
                tx.to_tags = {tag}
                tx.cancel_pending = False
                heap.cancel(key, Timer.A, Timer.B)
                heap.arm(key, Timer.M, now + self.timers.timeout)
        elif new is InviteClientState.PROCEEDING:
            if old is InviteClientState.CALLING:
                heap.cancel(key, Timer.A, Timer.B)  # B applies to Calling only (§17.1.1.2)
                if tx.cancel_pending:
                    self._events.append(ResponseReceived(response=response, client_key=key))
                    self._send_cancel(tx, now)
                    return
        elif new is InviteClientState.COMPLETED:
            heap.cancel(key, Timer.A, Timer.B)
            assert request is not None
            tx.ack = self._ack_for_error(request, response).to_bytes()
            self._out.append((tx.dest, tx.ack))
            self._arm_or_fire_client(tx, Timer.D, 0.0 if reliable else self.timers.D, now)
        elif new is NonInviteClientState.COMPLETED:
            heap.cancel(key, Timer.E, Timer.F)
            self._events.append(ResponseReceived(response=response, client_key=key))
            self._arm_or_fire_client(tx, Timer.K, 0.0 if reliable else self.timers.T4, now)
            return
        self._events.append(ResponseReceived(response=response, client_key=key))

    def _arm_or_fire_client(
        self, tx: ClientTransaction, timer: Timer, delay: float, now: float
    ) -> None:
        # Over reliable transports D and K are zero: "transition immediately" (§17.1.1.2).
        if delay > 0:
            self._heap.arm(tx.key, timer, now + delay)
        else:
            tx.state = next_state(tx.machine, tx.state, TIMER_INPUT[timer])
            # _client_input drops the transaction when it sees Terminated.

    @staticmethod
    def _ack_for_error(invite: Request, response: Response) -> Request:
        """The ACK for a non-2xx final, built by the transaction (§17.1.1.3)."""
        headers = Headers()
        headers.add("Via", invite.headers.get_list("Via")[0])
        for route in invite.headers.get_all("Route"):
            headers.add("Route", route)
        headers.add("Max-Forwards", "70")
        headers.add("From", invite.headers.get("From") or "")
        headers.add("To", response.headers.get("To") or "")
        headers.add("Call-ID", invite.headers.get("Call-ID") or "")
        headers.add("CSeq", f"{invite.cseq.seq} ACK")
        return Request(headers=headers, method="ACK", uri=invite.uri)

    def _drop_client(self, tx: ClientTransaction) -> None:
        self._heap.cancel(tx.key, *_ALL_CLIENT)
        self._client.pop(tx.key, None)

    def _server_input(
        self,
        tx: ServerTransaction,
        event: TxInput,
        now: float,
        *,
        response: Response | None = None,
        ack: Request | None = None,
        source: Peer | None = None,
    ) -> None:
        old = tx.state
        tx.state = new = next_state(tx.machine, old, event)
        cfg, heap, key, reliable = self.timers, self._heap, tx.key, tx.dest.reliable
        if response is not None:
            tx.last_bytes = response.to_bytes()
            self._out.append((tx.dest, tx.last_bytes))
            # Kept only where it is read again: a provisional (its To tag goes on the 200 to
            # a CANCEL) and a 2xx until its ACK (AckTimeout carries it). Past the final
            # response the request goes too: retransmissions need only the bytes, and the
            # transaction may linger 32 s after its call has ended.
            final = response.status >= 200
            tx.last_response = (
                response
                if not final or (new is InviteServerState.ACCEPTED and not tx.acked)
                else None
            )
            request = tx.request
            if final:
                tx.request = None
            if new is InviteServerState.ACCEPTED and old is InviteServerState.PROCEEDING:
                tx.interval = cfg.T1
                heap.arm(key, Timer.RETRANSMIT_2XX, now + cfg.T1)
                heap.arm(key, Timer.L, now + cfg.timeout)
                assert request is not None
                tx.dialog_key = dkey = self._dialog_key(request)
                self._accepted[dkey] = key
            elif new is InviteServerState.COMPLETED:
                if not reliable:
                    tx.interval = cfg.T1
                    heap.arm(key, Timer.G, now + cfg.T1)
                heap.arm(key, Timer.H, now + cfg.timeout)
            elif new is NonInviteServerState.COMPLETED and old is not new:
                if reliable:
                    tx.state = next_state(tx.machine, new, TxInput.TIMER_J)
                else:
                    heap.arm(key, Timer.J, now + cfg.timeout)
        elif event is TxInput.RECV_REQUEST:
            # A retransmitted request: re-send the last response, if any (§17.2.1, §17.2.2).
            if tx.last_bytes is not None and not (new is InviteServerState.ACCEPTED and tx.acked):
                self._out.append((tx.dest, tx.last_bytes))
        elif event is TxInput.RECV_ACK:
            if new is InviteServerState.CONFIRMED and old is InviteServerState.COMPLETED:
                heap.cancel(key, Timer.G, Timer.H)
                if reliable:
                    tx.state = next_state(tx.machine, new, TxInput.TIMER_I)
                else:
                    heap.arm(key, Timer.I, now + cfg.T4)
            elif new is InviteServerState.ACCEPTED and not tx.acked:
                tx.acked = True
                heap.cancel(key, Timer.RETRANSMIT_2XX)
                # Acknowledged: nothing is re-sent from now on (retransmitted INVITEs and
                # ACKs are absorbed), so the 2xx is not kept for the rest of Timer L.
                tx.last_response = tx.last_bytes = None
                assert ack is not None and source is not None
                self._events.append(AckReceived(request=ack, source=source, server_key=key))
        elif event is TxInput.TIMER_G or event is TxInput.TIMER_2XX:
            assert tx.last_bytes is not None
            self._out.append((tx.dest, tx.last_bytes))
            tx.interval = min(2 * tx.interval, cfg.T2)
            heap.arm(
                key,
                Timer.G if event is TxInput.TIMER_G else Timer.RETRANSMIT_2XX,
                now + tx.interval,
            )
        elif event is TxInput.TIMER_H:
            logger.info("%s: no ACK for the final response (Timer H)", key)
            self._events.append(ServerTxTimeout(server_key=key))
        elif event is TxInput.TIMER_L and not tx.acked:
            assert tx.last_response is not None
            logger.info("%s: 2xx never ACKed in 64*T1", key)
            self._events.append(AckTimeout(server_key=key, response=tx.last_response))
        if is_terminated(tx.state):
            self._drop_server(tx)

    @staticmethod
    def _dialog_key(request: Request) -> DialogTxKey:
        return DialogTxKey(request.call_id, request.from_tag or "", request.cseq.seq)

    def _drop_server(self, tx: ServerTransaction) -> None:
        self._heap.cancel(tx.key, *_ALL_SERVER)
        del self._server[tx.key]
        dkey = tx.dialog_key
        if dkey is not None and self._accepted.get(dkey) == tx.key:
            del self._accepted[dkey]
