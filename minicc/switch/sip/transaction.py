"""The four RFC 3261 §17 transaction state machines, as data, plus transaction keys and events.

This is the module the TU imports: the events below, the keys, and :class:`TransactionLayer`
(defined in :mod:`minicc.switch.sip.txlayer`, re-exported here).

Rule 1: every state and every legal transition of the four machines is in this file, in the
``*_TRANSITIONS`` tables; :func:`next_state` is the only way to move a machine, and any
(state, input) pair missing from its table is a protocol error.
Rule 2: this file does no I/O and keeps no time; the actions that go with a transition (send,
arm a timer, tell the TU) live in :mod:`minicc.switch.sip.txlayer`.

The INVITE machines include the "Accepted" state of RFC 6026 §7 (fixing RFC 3261 so that 2xx
retransmissions reach the client TU and ACKs for 2xx do not create transactions). Timer C
(§16.6, proxies only) is not implemented: minicc is a B2BUA, whose UAC side bounds ringing
with its own timeout and a CANCEL. Transport-error inputs (§17.1.1.2 etc.) are not modelled:
send failures are not reported back per transaction, and the timeouts (B, F, H) bound every
transaction anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, NamedTuple

from minicc.switch.sip.errors import LocalProtocolError, RemoteProtocolError
from minicc.switch.sip.message import Request, Response
from minicc.switch.sip.peer import Peer
from minicc.switch.sip.timers import Timer, TimerConfig

if TYPE_CHECKING:
    from minicc.switch.sip.txlayer import TransactionLayer

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
]

# RFC 3261 §8.1.1.7: a branch starting with this cookie was made by an RFC 3261 element and
# is unique over space and time, so it alone (with sent-by and method) identifies a transaction.
MAGIC_COOKIE = "z9hG4bK"


class ClientTxKey(NamedTuple):
    """Identifies a client transaction: top Via branch + CSeq method (RFC 3261 §17.1.3)."""

    branch: str
    method: str


class ServerTxKey(NamedTuple):
    """Identifies a server transaction (RFC 3261 §17.2.3).

    ``method`` is the method of the request that created the transaction, so an ACK looks up
    its INVITE's key. For a pre-RFC 3261 request (no magic cookie) ``branch`` holds a digest
    of the §17.2.3 fallback fields instead.
    """

    branch: str
    host: str
    port: int | None
    method: str


class DialogTxKey(NamedTuple):
    """Finds the Accepted INVITE server transaction that an ACK for its 2xx belongs to.

    That ACK has a branch of its own (§17.1.1.3 covers only non-2xx), so it is matched the
    way a dialog would match it: Call-ID, From tag and the INVITE's CSeq number.
    """

    call_id: str
    from_tag: str
    seq: int


class Machine(Enum):
    __hash__ = object.__hash__  # members are singletons: hash by identity, in C

    INVITE_CLIENT = "INVITE client (§17.1.1)"
    NON_INVITE_CLIENT = "non-INVITE client (§17.1.2)"
    INVITE_SERVER = "INVITE server (§17.2.1)"
    NON_INVITE_SERVER = "non-INVITE server (§17.2.2)"


class InviteClientState(Enum):
    __hash__ = object.__hash__  # members are singletons: hash by identity, in C

    CALLING = "Calling"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    ACCEPTED = "Accepted"  # RFC 6026 §7.2
    TERMINATED = "Terminated"


class NonInviteClientState(Enum):
    __hash__ = object.__hash__  # members are singletons: hash by identity, in C

    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    TERMINATED = "Terminated"


class InviteServerState(Enum):
    __hash__ = object.__hash__  # members are singletons: hash by identity, in C

    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"  # RFC 6026 §7.1
    TERMINATED = "Terminated"


class NonInviteServerState(Enum):
    __hash__ = object.__hash__  # members are singletons: hash by identity, in C

    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    TERMINATED = "Terminated"


TxState = InviteClientState | NonInviteClientState | InviteServerState | NonInviteServerState


class TxInput(Enum):
    """Everything that can move a transaction: messages from either side and timers."""

    __hash__ = object.__hash__  # members are singletons: hash by identity, in C

    RECV_REQUEST = "request retransmission received"
    RECV_ACK = "ACK received"
    RECV_1XX = "1xx received"
    RECV_2XX = "2xx received"
    RECV_FINAL_ERROR = "300-699 received"
    SEND_1XX = "TU sends 1xx"
    SEND_2XX = "TU sends 2xx"
    SEND_FINAL_ERROR = "TU sends 300-699"
    TIMER_A = "Timer A"
    TIMER_B = "Timer B"
    TIMER_D = "Timer D"
    TIMER_E = "Timer E"
    TIMER_F = "Timer F"
    TIMER_G = "Timer G"
    TIMER_H = "Timer H"
    TIMER_I = "Timer I"
    TIMER_J = "Timer J"
    TIMER_K = "Timer K"
    TIMER_L = "Timer L"
    TIMER_M = "Timer M"
    TIMER_2XX = "2xx retransmission timer"

    @property
    def remote(self) -> bool:
        """True for inputs caused by the peer (a missing pair is then the peer's fault)."""
        return self.name.startswith("RECV_")


TIMER_INPUT: dict[Timer, TxInput] = {
    Timer.A: TxInput.TIMER_A,
    Timer.B: TxInput.TIMER_B,
    Timer.D: TxInput.TIMER_D,
    Timer.E: TxInput.TIMER_E,
    Timer.F: TxInput.TIMER_F,
    Timer.G: TxInput.TIMER_G,
    Timer.H: TxInput.TIMER_H,
    Timer.I: TxInput.TIMER_I,
    Timer.J: TxInput.TIMER_J,
    Timer.K: TxInput.TIMER_K,
    Timer.L: TxInput.TIMER_L,
    Timer.M: TxInput.TIMER_M,
    Timer.RETRANSMIT_2XX: TxInput.TIMER_2XX,
}

_I = TxInput
_IC = InviteClientState
_NC = NonInviteClientState
_IS = InviteServerState
_NS = NonInviteServerState

# RFC 3261 Figure 5 with RFC 6026 Figure 3 (Accepted).
INVITE_CLIENT_TRANSITIONS: dict[tuple[InviteClientState, TxInput], InviteClientState] = {
    (_IC.CALLING, _I.TIMER_A): _IC.CALLING,  # retransmit, double A (UDP)
    (_IC.CALLING, _I.TIMER_B): _IC.TERMINATED,  # timeout to the TU
    (_IC.CALLING, _I.RECV_1XX): _IC.PROCEEDING,
    (_IC.CALLING, _I.RECV_2XX): _IC.ACCEPTED,
    (_IC.CALLING, _I.RECV_FINAL_ERROR): _IC.COMPLETED,  # send ACK
    (_IC.PROCEEDING, _I.RECV_1XX): _IC.PROCEEDING,
    (_IC.PROCEEDING, _I.RECV_2XX): _IC.ACCEPTED,
    (_IC.PROCEEDING, _I.RECV_FINAL_ERROR): _IC.COMPLETED,
    # Timer B is only re-armed in Proceeding once a CANCEL was sent (§9.1: give up 64*T1 later).
    (_IC.PROCEEDING, _I.TIMER_B): _IC.TERMINATED,
    # A late provisional overtaken by the final (UDP reorders) is harmless: absorb it.
    (_IC.COMPLETED, _I.RECV_1XX): _IC.COMPLETED,
    (_IC.COMPLETED, _I.RECV_FINAL_ERROR): _IC.COMPLETED,  # re-send the ACK
    (_IC.COMPLETED, _I.TIMER_D): _IC.TERMINATED,
    (_IC.ACCEPTED, _I.RECV_1XX): _IC.ACCEPTED,
    (_IC.ACCEPTED, _I.RECV_2XX): _IC.ACCEPTED,  # RFC 6026 §7.2: 2xx (forks too) to the TU
    (_IC.ACCEPTED, _I.TIMER_M): _IC.TERMINATED,
}

# RFC 3261 Figure 6.
NON_INVITE_CLIENT_TRANSITIONS: dict[tuple[NonInviteClientState, TxInput], NonInviteClientState] = {
    (_NC.TRYING, _I.TIMER_E): _NC.TRYING,  # retransmit, E = min(2E, T2)
    (_NC.TRYING, _I.TIMER_F): _NC.TERMINATED,
    (_NC.TRYING, _I.RECV_1XX): _NC.PROCEEDING,
    (_NC.TRYING, _I.RECV_2XX): _NC.COMPLETED,
    (_NC.TRYING, _I.RECV_FINAL_ERROR): _NC.COMPLETED,
    (_NC.PROCEEDING, _I.TIMER_E): _NC.PROCEEDING,  # retransmit, E = T2
    (_NC.PROCEEDING, _I.TIMER_F): _NC.TERMINATED,
    (_NC.PROCEEDING, _I.RECV_1XX): _NC.PROCEEDING,
    (_NC.PROCEEDING, _I.RECV_2XX): _NC.COMPLETED,
    (_NC.PROCEEDING, _I.RECV_FINAL_ERROR): _NC.COMPLETED,
    (_NC.COMPLETED, _I.RECV_1XX): _NC.COMPLETED,
    (_NC.COMPLETED, _I.RECV_2XX): _NC.COMPLETED,
    (_NC.COMPLETED, _I.RECV_FINAL_ERROR): _NC.COMPLETED,
    (_NC.COMPLETED, _I.TIMER_K): _NC.TERMINATED,
}

# RFC 3261 Figure 7 with RFC 6026 Figure 5 (Accepted). The layer retransmits the 2xx itself
# (§13.3.1.4) from Accepted; Timer L is 64*T1, the same span as the 2xx give-up.
INVITE_SERVER_TRANSITIONS: dict[tuple[InviteServerState, TxInput], InviteServerState] = {
    (_IS.PROCEEDING, _I.RECV_REQUEST): _IS.PROCEEDING,  # re-send the last provisional
    (_IS.PROCEEDING, _I.SEND_1XX): _IS.PROCEEDING,
    (_IS.PROCEEDING, _I.SEND_2XX): _IS.ACCEPTED,
    (_IS.PROCEEDING, _I.SEND_FINAL_ERROR): _IS.COMPLETED,
    (_IS.COMPLETED, _I.RECV_REQUEST): _IS.COMPLETED,  # re-send the final
    (_IS.COMPLETED, _I.RECV_ACK): _IS.CONFIRMED,
    (_IS.COMPLETED, _I.TIMER_G): _IS.COMPLETED,  # re-send the final, G = min(2G, T2)
    (_IS.COMPLETED, _I.TIMER_H): _IS.TERMINATED,  # the ACK never came
    (_IS.CONFIRMED, _I.RECV_REQUEST): _IS.CONFIRMED,  # re-send the final (harmless)
    (_IS.CONFIRMED, _I.RECV_ACK): _IS.CONFIRMED,  # absorb
    (_IS.CONFIRMED, _I.TIMER_I): _IS.TERMINATED,
    (_IS.ACCEPTED, _I.RECV_REQUEST): _IS.ACCEPTED,
    (_IS.ACCEPTED, _I.RECV_ACK): _IS.ACCEPTED,  # first one to the TU, stops 2xx retransmission
    (_IS.ACCEPTED, _I.SEND_2XX): _IS.ACCEPTED,  # RFC 6026 §7.1: further 2xx go to the wire
    (_IS.ACCEPTED, _I.TIMER_2XX): _IS.ACCEPTED,
    (_IS.ACCEPTED, _I.TIMER_L): _IS.TERMINATED,
}

# RFC 3261 Figure 8.
NON_INVITE_SERVER_TRANSITIONS: dict[tuple[NonInviteServerState, TxInput], NonInviteServerState] = {
    (_NS.TRYING, _I.RECV_REQUEST): _NS.TRYING,  # nothing to re-send yet: absorb
    (_NS.TRYING, _I.SEND_1XX): _NS.PROCEEDING,
    (_NS.TRYING, _I.SEND_2XX): _NS.COMPLETED,
    (_NS.TRYING, _I.SEND_FINAL_ERROR): _NS.COMPLETED,
    (_NS.PROCEEDING, _I.RECV_REQUEST): _NS.PROCEEDING,  # re-send the provisional
    (_NS.PROCEEDING, _I.SEND_1XX): _NS.PROCEEDING,
    (_NS.PROCEEDING, _I.SEND_2XX): _NS.COMPLETED,
    (_NS.PROCEEDING, _I.SEND_FINAL_ERROR): _NS.COMPLETED,
    (_NS.COMPLETED, _I.RECV_REQUEST): _NS.COMPLETED,  # re-send the final
    (_NS.COMPLETED, _I.TIMER_J): _NS.TERMINATED,
}

TRANSITIONS: dict[Machine, dict] = {  # type: ignore[type-arg]
    Machine.INVITE_CLIENT: INVITE_CLIENT_TRANSITIONS,
    Machine.NON_INVITE_CLIENT: NON_INVITE_CLIENT_TRANSITIONS,
    Machine.INVITE_SERVER: INVITE_SERVER_TRANSITIONS,
    Machine.NON_INVITE_SERVER: NON_INVITE_SERVER_TRANSITIONS,
}

STATES: dict[Machine, type[Enum]] = {
    Machine.INVITE_CLIENT: InviteClientState,
    Machine.NON_INVITE_CLIENT: NonInviteClientState,
    Machine.INVITE_SERVER: InviteServerState,
    Machine.NON_INVITE_SERVER: NonInviteServerState,
}

INITIAL_STATE: dict[Machine, TxState] = {
    Machine.INVITE_CLIENT: InviteClientState.CALLING,
    Machine.NON_INVITE_CLIENT: NonInviteClientState.TRYING,
    Machine.INVITE_SERVER: InviteServerState.PROCEEDING,
    Machine.NON_INVITE_SERVER: NonInviteServerState.TRYING,
}


def next_state(machine: Machine, state: TxState, event: TxInput) -> TxState:
    """Look up the transition of ``machine`` from ``state`` on ``event``.

    Raises:
        RemoteProtocolError: the pair is missing and the input came from the peer.
        LocalProtocolError: the pair is missing and the input came from the TU or a timer.
    """
    new = TRANSITIONS[machine].get((state, event))
    if new is None:
        message = f"{machine.value}: {event.value} not allowed in {state.value}"
        if event.remote:
            raise RemoteProtocolError(message)
        raise LocalProtocolError(message)
    return new  # type: ignore[no-any-return]


def is_terminated(state: TxState) -> bool:
    return state.name == "TERMINATED"


class ClientTransaction:
    """One client transaction's state; the layer drives it through :func:`next_state`."""

    __slots__ = (
        "ack",
        "cancel_pending",
        "cancel_sent",
        "data",
        "dest",
        "interval",
        "key",
        "machine",
        "request",
        "state",
        "to_tags",
    )

    def __init__(self, key: ClientTxKey, machine: Machine, request: Request, dest: Peer) -> None:
        self.key = key
        self.machine = machine
        self.state: TxState = INITIAL_STATE[machine]
        self.request: Request | None = request
        """The request; let go once a final response arrived (only the key matters then)."""
        self.data = b""
        """The request as sent, re-sent by Timers A and E; emptied with ``request``."""
        self.dest = dest
        self.interval = 0.0
        """The current retransmission interval of Timer A or E."""
        self.ack: bytes | None = None
        """The ACK sent for a non-2xx final (§17.1.1.3), re-sent on its retransmissions."""
        self.to_tags: set[str] | None = None
        """Accepted: the To tags of the 2xx already passed up (each fork's once)."""
        self.cancel_pending = False
        """The TU asked to cancel before any provisional arrived (§9.1)."""
        self.cancel_sent = False


class ServerTransaction:
    """One server transaction's state; the layer drives it through :func:`next_state`."""

    __slots__ = (
        "acked",
        "dest",
        "dialog_key",
        "interval",
        "key",
        "last_bytes",
        "last_response",
        "machine",
        "request",
        "source",
        "state",
    )

    def __init__(
        self, key: ServerTxKey, machine: Machine, request: Request, source: Peer, dest: Peer
    ) -> None:
        self.key = key
        self.machine = machine
        self.state: TxState = INITIAL_STATE[machine]
        self.request: Request | None = request
        """The request; let go once a final response is sent (retransmissions need only the
        response's bytes)."""
        self.source = source
        self.dest = dest
        """Where responses go (RFC 3261 §18.2.2, RFC 3581 §4)."""
        self.interval = 0.0
        """The current retransmission interval of Timer G or of the 2xx."""
        self.last_response: Response | None = None
        """The last provisional, or the 2xx until it is ACKed; None otherwise."""
        self.last_bytes: bytes | None = None
        """The last response as sent, for retransmissions; dropped once a 2xx is ACKed."""
        self.acked = False
        """Accepted: the ACK for the 2xx arrived (later ACKs are absorbed)."""
        self.dialog_key: DialogTxKey | None = None
        """Accepted: the key under which the layer finds this transaction for an ACK."""


# --- events for the TU -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestReceived:
    """A new request created a server transaction (never an ACK, never a CANCEL)."""

    request: Request
    """The request, its top Via already stamped with received/rport (RFC 3581)."""
    source: Peer
    """Where the packet came from."""
    server_key: ServerTxKey
    """The server transaction to answer through (``send_response`` finds it by the Via)."""

    def __post_init__(self) -> None:
        if self.request.method in ("ACK", "CANCEL"):
            raise ValueError(f"{self.request.method} is reported by its own event")


@dataclass(frozen=True, slots=True, kw_only=True)
class AckReceived:
    """An ACK for a 2xx (ACKs for non-2xx finals are absorbed by their server transaction)."""

    request: Request
    """The ACK (it may carry the SDP answer of a late offer)."""
    source: Peer
    """Where the packet came from."""
    server_key: ServerTxKey | None = None
    """The INVITE server transaction whose 2xx it acknowledges; None when none is left."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelReceived:
    """A CANCEL arrived; the layer already answered it (RFC 3261 §9.2)."""

    cancel: Request
    """The CANCEL request."""
    invite_key: ServerTxKey | None
    """The INVITE server transaction it cancels (answered 200): the TU must now send 487 on
    it. None when it matched no INVITE still in Proceeding (answered 481)."""
    to_tag: str | None = None
    """The To tag used on the 200 to the CANCEL, which the 487 should reuse (§9.2)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseReceived:
    """A response for a client transaction: each provisional, the final once (and, for an
    INVITE, the first 2xx of each fork); retransmissions are absorbed."""

    response: Response
    """The response."""
    client_key: ClientTxKey
    """The client transaction, as returned by ``send_request``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StrayResponse:
    """A response that matched no client transaction (and no ACK the layer re-sends)."""

    response: Response
    """The response, e.g. a 2xx retransmission the TU has not ACKed yet."""
    source: Peer
    """Where the packet came from."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionTimeout:
    """Timer B or F fired: the TU should act as if a 408 had arrived (§8.1.3.1)."""

    client_key: ClientTxKey
    """The client transaction that timed out."""
    request: Request
    """Its request."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AckTimeout:
    """A 2xx to an INVITE was never ACKed within 64*T1: the TU should send BYE (§13.3.1.4)."""

    server_key: ServerTxKey
    """The INVITE server transaction."""
    response: Response
    """The last 2xx sent."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerTxTimeout:
    """Timer H fired: no ACK came for a non-2xx final response (§17.2.1)."""

    server_key: ServerTxKey
    """The INVITE server transaction."""


TxEvent = (
    RequestReceived
    | AckReceived
    | CancelReceived
    | ResponseReceived
    | StrayResponse
    | TransactionTimeout
    | AckTimeout
    | ServerTxTimeout
)


def __getattr__(name: str) -> Any:
    # The layer lives in txlayer.py (which imports this module); re-export it lazily so that
    # ``from minicc.switch.sip.transaction import TransactionLayer`` works whichever module is
    # imported first (PEP 562).
    if name == "TransactionLayer":
        from minicc.switch.sip.txlayer import TransactionLayer

        return TransactionLayer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
