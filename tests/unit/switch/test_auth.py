"""Digest authentication of REGISTER and INVITE (RFC 3261 §22, RFC 7616)."""

from __future__ import annotations

import asyncio

import pytest

from minicc.events import AuthFailed, CallStarted
from minicc.switch.sip.auth import DigestAlgorithm
from minicc.switch.sip.message import Response
from tests.unit.switch.harness import Harness
from tests.unit.switch.ua import Account, SipUA, make_sdp, new_tag, parse_challenge


def challenges(response: Response) -> list[dict[str, str]]:
    return [parse_challenge(v) for v in response.headers.get_all("WWW-Authenticate")]


@pytest.mark.parametrize("algorithm", [DigestAlgorithm.SHA256, DigestAlgorithm.MD5])
async def test_register_with_either_algorithm(sw: Harness, algorithm: DigestAlgorithm) -> None:
    ua = SipUA(sw.account("acme", "1001"), sw.addr, algorithm=algorithm)
    await ua.start()
    try:
        assert (await ua.register()).status == 200
    finally:
        ua.close()
    assert sw.switch.stats["auth_failures"] == 0


async def test_wrong_password_is_challenged_again_and_counted(sw: Harness) -> None:
    ua = await sw.phone("acme", "1001", register=False)
    response = await ua.register(password="not-the-password")
    assert response.status == 401
    assert challenges(response)[0]["realm"] == "acme.test"
    failed = await sw.events.wait(AuthFailed)
    assert (failed.tenant, failed.username, failed.method) == ("acme", "1001", "REGISTER")
    assert failed.source_ip == "127.0.0.1"
    assert sw.switch.stats["auth_failures"] == 1

    callee = await sw.phone("acme", "1002")
    out = await ua.call("sip:1002@acme.test", make_sdp(40000), password="wrong-again")
    final = await out.final()
    assert final.status == 401
    failed = await sw.events.wait(AuthFailed)
    assert (failed.username, failed.method) == ("1001", "INVITE")
    assert sw.switch.stats["auth_failures"] == 2
    assert not callee.requests_seen("INVITE")
    assert not sw.events.of(CallStarted)


async def test_unknown_user_counts_as_a_failure(sw: Harness) -> None:
    ua = SipUA(Account(user="9999", password="x", domain="acme.test"), sw.addr)
    await ua.start()
    try:
        assert (await ua.register()).status == 401
    finally:
        ua.close()
    assert (await sw.events.wait(AuthFailed)).username == "9999"
    assert sw.switch.stats["auth_failures"] == 1


async def test_stale_nonce_gets_stale_true_and_is_not_a_failure(sw: Harness) -> None:
    ua = await sw.phone("acme", "1001", register=False)
    acc = ua.account
    # A nonce the switch did not issue (say, before a restart), with a correct digest.
    request = ua.build(
        "REGISTER", f"sip:{acc.domain}", to=f"<{acc.aor}>", from_=f"<{acc.aor}>;tag=1"
    )
    params = {"realm": "acme.test", "nonce": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}
    signed = ua.with_credentials(request, {**params, "algorithm": "MD5"})
    response = await ua.transact(signed, auth=False)
    assert response.status == 401
    assert all(c.get("stale") == "true" for c in challenges(response))

    # A nonce the switch did issue, once it has expired.
    sw.switch.digest.nonce_ttl = 0.2
    first = await ua.transact(
        ua.build("REGISTER", f"sip:{acc.domain}", to=f"<{acc.aor}>"), auth=False
    )
    await asyncio.sleep(0.3)  # let the nonce's lifetime elapse
    retry = ua.authorize(ua.build("REGISTER", f"sip:{acc.domain}", to=f"<{acc.aor}>"), first)
    response = await ua.transact(retry, auth=False)
    assert response.status == 401
    assert all(c.get("stale") == "true" for c in challenges(response))
    # The phone's password was right both times: nothing for the flood guard.
    assert sw.switch.stats["auth_failures"] == 0
    assert not sw.events.of(AuthFailed)


async def test_from_user_other_than_the_authenticated_one_gets_403(sw: Harness) -> None:
    alice = await sw.phone("acme", "1001")
    bob = await sw.phone("acme", "1002")
    # Alice's credentials, Carol's number in From: caller-ID spoofing.
    spoofed = f'"Carol Acme" <sip:1003@acme.test>;tag={new_tag()}'
    out = await alice.call("sip:1002@acme.test", make_sdp(40000), from_=spoofed)
    assert (await out.final()).status == 403
    assert not bob.requests_seen("INVITE")

    # Registering someone else's number with one's own credentials is refused the same way.
    acc = alice.account
    request = alice.build(
        "REGISTER",
        f"sip:{acc.domain}",
        to="<sip:1002@acme.test>",
        from_="<sip:1002@acme.test>;tag=9",
    )
    assert (await alice.transact(request)).status == 403


async def test_libre_based_phones_are_offered_md5_only(sw: Harness) -> None:
    ua = SipUA(sw.account("acme", "1001"), sw.addr, user_agent="baresip v1.0.0 (x86_64/linux)")
    await ua.start()
    try:
        acc = ua.account
        response = await ua.transact(
            ua.build("REGISTER", f"sip:{acc.domain}", to=f"<{acc.aor}>"), auth=False
        )
    finally:
        ua.close()
    assert [c["algorithm"] for c in challenges(response)] == ["MD5"]
