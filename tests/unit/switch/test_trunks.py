"""Trunks and dial rules: the pure rules, and calls in and out through an IP-authorised trunk
(a "carrier" phone on 127.0.0.2, real SIP over loopback)."""

from __future__ import annotations

import pytest

from minicc.events import CallEnded, CallStarted
from minicc.tenants.trunks import DialRules, Trunk, TrunkTable
from tests.unit.switch.flows import answer_agent, answered_call
from tests.unit.switch.harness import FakeEngine, Harness
from tests.unit.switch.ua import Account, SipUA, make_sdp

CARRIER = "127.0.0.2"


@pytest.mark.parametrize(
    ("rules", "number", "refused"),
    [
        (DialRules(), "030 1234567", None),
        (DialRules(), "+49301234567", "international"),
        (DialRules(), "0049301234567", "international"),
        (DialRules(international=True), "+49301234567", None),
        (DialRules(allowed_prefixes=("030",)), "0401234", "allowed prefix"),
        (DialRules(allowed_prefixes=("030",)), "112", None),  # emergency: always
        (DialRules(), "911", None),
        (DialRules(), "sip:evil", "not a phone number"),
    ],
)
def test_dial_rules(rules: DialRules, number: str, refused: str | None) -> None:
    reason = rules.refusal(number)
    if refused is None:
        assert reason is None
    else:
        assert reason is not None and refused in reason


def test_trunk_table_finds_by_address_and_tenant() -> None:
    table = TrunkTable()
    table.replace(
        [
            Trunk(tenant="acme", name="in-only", host="203.0.113.7", outbound=False),
            Trunk(tenant="acme", name="out", host="203.0.113.8", inbound=False),
        ],
        {"acme": DialRules(international=True)},
    )
    assert table.inbound("203.0.113.7") is not None and table.inbound("203.0.113.8") is None
    outbound = table.outbound("acme")
    assert outbound is not None and outbound.name == "out"
    assert table.outbound("beta") is None
    assert table.rules("acme").international and not table.rules("beta").international
    assert table.addresses() == ("203.0.113.7",)


def _trunk(sw: Harness, carrier: SipUA, rules: DialRules | None = None) -> None:
    trunk = Trunk(tenant="acme", name="carrier", host=CARRIER, port=carrier.port)
    sw.switch.trunks.replace([trunk], {"acme": rules or DialRules()})


async def test_a_carrier_call_needs_no_password_and_reaches_the_tenant(sw: Harness) -> None:
    carrier = await SipUA(
        Account("+4930555", "-", "carrier.example"), sw.addr, host=CARRIER
    ).start()
    bob = await sw.phone("acme", "1002")
    _trunk(sw, carrier)
    rtp = await sw.rtp()
    try:
        out = carrier.invite(f"sip:1002@{CARRIER}", make_sdp(rtp.port))
        inc = await bob.incoming()  # no challenge first: the address is the credential
        assert inc.invite.from_.uri.user == "+4930555"
        await inc.answer(make_sdp(rtp.port))
        assert (await out.final()).status == 200
        started = await sw.events.wait(CallStarted)
        assert (started.tenant, started.caller) == ("acme", "+4930555")
        assert out.dialog is not None and inc.dialog is not None
        assert (await out.dialog.bye()).status == 200
        bob.reply(await inc.dialog.request("BYE"), 200)
        await sw.events.wait(CallEnded)
    finally:
        carrier.close()


async def test_phones_dial_out_through_the_trunk_within_the_rules(sw: Harness) -> None:
    carrier = await SipUA(Account("gw", "-", "carrier.example"), sw.addr, host=CARRIER).start()
    alice = await sw.phone("acme", "1001")
    _trunk(sw, carrier, DialRules(allowed_prefixes=("030",)))
    try:
        call = await answered_call(sw, alice, carrier, target="sip:0301234567@acme.test")
        assert call.inc.invite.uri == f"sip:0301234567@{CARRIER}:{carrier.port}"
        assert (await call.a.bye()).status == 200
        carrier.reply(await call.b.request("BYE"), 200)
        await sw.events.wait(CallEnded)

        # Not an allowed prefix, and international: refused, the carrier never sees them.
        for number in ("0401234567", "+4930123"):
            out = await alice.call(f"sip:{number}@acme.test", make_sdp(40000))
            assert (await out.final()).status >= 400
        assert len(carrier.requests_seen("INVITE")) == 1
    finally:
        carrier.close()


async def test_a_carrier_caller_is_never_sent_back_out(sw: Harness) -> None:
    """Toll fraud by bouncing: a call from the trunk to an outside number is refused."""
    carrier = await SipUA(
        Account("+4930555", "-", "carrier.example"), sw.addr, host=CARRIER
    ).start()
    _trunk(sw, carrier)
    try:
        out = carrier.invite(f"sip:0301234567@{CARRIER}", make_sdp(40000))
        assert (await out.final()).status >= 400
        assert not carrier.requests_seen("INVITE")
    finally:
        carrier.close()


async def test_a_callback_to_an_outside_number_goes_out_through_the_trunk(
    asw: Harness, engine: FakeEngine
) -> None:
    """The agent-first callback: the agent answers, then the customer's number rings at the
    carrier (issue 3's callbacks to outside numbers)."""
    carrier = await SipUA(Account("gw", "-", "carrier.example"), asw.addr, host=CARRIER).start()
    bob = await asw.phone("acme", "1002")
    _trunk(asw, carrier)
    try:
        asw.switch.originate("acme", "1002", "0301234567", timeout=5.0, dial_timeout=5.0)
        await answer_agent(asw, bob)
        inc = await carrier.incoming()
        assert inc.invite.uri == f"sip:0301234567@{CARRIER}:{carrier.port}"
    finally:
        carrier.close()
