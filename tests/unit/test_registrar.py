"""The registrar (RFC 3261 §10.3), driven with an injected wall clock."""

from __future__ import annotations

import pytest

from minicc.switch.registrar import Binding, RegisterOutcome, Registrar
from minicc.switch.sip.headers import Headers
from minicc.switch.sip.message import Request, Response
from minicc.switch.sip.peer import Peer, Transport

T0 = 1_700_000_000.0
PHONE = Peer(Transport.UDP, "203.0.113.7", 40123)
LAPTOP = Peer(Transport.TCP, "198.51.100.2", 51000)


def register_request(
    *contacts: str,
    expires: str | None = None,
    call_id: str = "reg-1",
    cseq: int = 1,
    user_agent: str | None = "TestPhone/1.0",
) -> Request:
    headers = Headers(
        [
            ("Via", "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK-r1"),
            ("From", "<sip:alice@acme.example>;tag=f1"),
            ("To", "<sip:alice@acme.example>"),
            ("Call-ID", call_id),
            ("CSeq", f"{cseq} REGISTER"),
        ]
    )
    for contact in contacts:
        headers.add("Contact", contact)
    if expires is not None:
        headers.add("Expires", expires)
    if user_agent is not None:
        headers.add("User-Agent", user_agent)
    return Request(headers=headers, method="REGISTER", uri="sip:acme.example")


def register(
    registrar: Registrar,
    *contacts: str,
    now: float = T0,
    source: Peer = PHONE,
    user: str = "alice",
    expires: str | None = None,
    call_id: str = "reg-1",
    cseq: int = 1,
) -> RegisterOutcome:
    request = register_request(*contacts, expires=expires, call_id=call_id, cseq=cseq)
    return registrar.register("acme", user, request, source, now, to_tag="tt")


def listed(response: Response) -> list[str]:
    return response.headers.get_all("Contact")


@pytest.fixture
def registrar() -> Registrar:
    return Registrar()


def test_register_creates_binding_with_source_and_details(registrar: Registrar) -> None:
    outcome = register(
        registrar, '<sip:alice@10.0.0.5:5060>;+sip.instance="<urn:uuid:1>";q=0.5', expires="600"
    )
    assert outcome.response.status == 200
    assert outcome.response.headers.get("To") == "<sip:alice@acme.example>;tag=tt"
    assert listed(outcome.response) == [
        '<sip:alice@10.0.0.5:5060>;expires=600;q=0.5;+sip.instance="<urn:uuid:1>"'
    ]
    assert outcome.response.headers.get("Date") == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert outcome.removed == []
    [binding] = outcome.added
    assert binding == Binding(
        tenant="acme",
        user="alice",
        contact="sip:alice@10.0.0.5:5060",
        expires_at=T0 + 600,
        call_id="reg-1",
        cseq=1,
        source=PHONE,
        user_agent="TestPhone/1.0",
        q=0.5,
        instance="<urn:uuid:1>",
        registered_at=T0,
    )
    assert registrar.lookup("acme", "alice", T0 + 1) == [binding]
    assert registrar.lookup("other", "alice", T0 + 1) == []
    assert registrar.count() == 1


def test_date_header_can_be_given(registrar: Registrar) -> None:
    request = register_request("<sip:alice@10.0.0.5>")
    outcome = registrar.register("acme", "alice", request, PHONE, T0, to_tag="x", date_header="D")
    assert outcome.response.headers.get("Date") == "D"


def test_expiry_precedence_param_then_header_then_default() -> None:
    registrar = Registrar(default_expires=1800)
    outcome = register(
        registrar,
        "<sip:a@10.0.0.1>;expires=120",
        "<sip:a@10.0.0.2>",
        expires="300",
    )
    assert sorted(b.expires_at - T0 for b in outcome.added) == [120, 300]
    outcome = register(registrar, "<sip:a@10.0.0.3>", call_id="reg-2")
    assert [b.expires_at - T0 for b in outcome.added] == [1800]


def test_too_brief_gets_423_with_min_expires(registrar: Registrar) -> None:
    outcome = register(registrar, "<sip:a@10.0.0.1>", expires="30")
    assert outcome.response.status == 423
    assert outcome.response.headers.get("Min-Expires") == "60"
    assert outcome.added == []
    assert registrar.count() == 0
    # The per-contact value counts, and one brief contact fails the whole request.
    outcome = register(registrar, "<sip:a@10.0.0.1>", "<sip:a@10.0.0.2>;expires=1", expires="600")
    assert outcome.response.status == 423
    assert registrar.count() == 0


def test_too_long_is_clamped(registrar: Registrar) -> None:
    outcome = register(registrar, "<sip:a@10.0.0.1>", expires="86400")
    assert outcome.added[0].expires_at == T0 + 3600
    assert listed(outcome.response) == ["<sip:a@10.0.0.1>;expires=3600"]


def test_malformed_expiry_means_3600() -> None:
    registrar = Registrar(max_expires=7200, default_expires=60)
    outcome = register(registrar, "<sip:a@10.0.0.1>;expires=soon", "<sip:a@10.0.0.2>")
    assert [b.expires_at - T0 for b in outcome.added] == [3600, 60]
    outcome = register(registrar, "<sip:a@10.0.0.3>", expires="tomorrow", call_id="reg-2")
    assert [b.expires_at - T0 for b in outcome.added] == [3600]


def test_refresh_updates_binding(registrar: Registrar) -> None:
    register(registrar, "<sip:alice@10.0.0.5>", expires="600")
    outcome = register(
        registrar, "<sip:alice@10.0.0.5>", expires="600", cseq=2, now=T0 + 500, source=LAPTOP
    )
    assert outcome.response.status == 200
    assert outcome.removed == []
    [binding] = outcome.added
    assert (binding.expires_at, binding.cseq, binding.source) == (T0 + 1100, 2, LAPTOP)
    assert registrar.lookup("acme", "alice", T0 + 700) == [binding]


def test_several_contacts_and_200_lists_all(registrar: Registrar) -> None:
    register(registrar, "<sip:alice@10.0.0.5>", expires="600")
    outcome = register(
        registrar,
        "<sip:alice@10.0.0.9;transport=tcp>",
        expires="900",
        call_id="softphone",
        now=T0 + 100,
    )
    assert listed(outcome.response) == [
        "<sip:alice@10.0.0.9;transport=tcp>;expires=900",
        "<sip:alice@10.0.0.5>;expires=500",
    ]
    assert registrar.count() == 2


def test_query_without_contact(registrar: Registrar) -> None:
    register(registrar, "<sip:alice@10.0.0.5>", expires="600")
    outcome = register(registrar, cseq=2, now=T0 + 60)
    assert outcome.response.status == 200
    assert listed(outcome.response) == ["<sip:alice@10.0.0.5>;expires=540"]
    assert (outcome.added, outcome.removed) == ([], [])
    empty = register(registrar, user="bob")
    assert empty.response.status == 200
    assert listed(empty.response) == []


def test_expires_zero_removes_one_contact(registrar: Registrar) -> None:
    register(registrar, "<sip:alice@10.0.0.5>", "<sip:alice@10.0.0.6>", expires="600")
    outcome = register(registrar, "<sip:alice@10.0.0.5>;expires=0", cseq=2)
    assert [b.contact for b in outcome.removed] == ["sip:alice@10.0.0.5"]
    assert outcome.added == []
    assert listed(outcome.response) == ["<sip:alice@10.0.0.6>;expires=600"]
    # Removing what is not there is fine and changes nothing.
    outcome = register(registrar, "<sip:alice@10.0.0.99>", expires="0", cseq=3)
    assert outcome.response.status == 200
    assert outcome.removed == []


def test_star_removes_all(registrar: Registrar) -> None:
    register(registrar, "<sip:alice@10.0.0.5>", expires="600")
    register(registrar, "<sip:alice@10.0.0.6>", expires="600", call_id="other")
    outcome = register(registrar, "*", expires="0", call_id="fresh")
    assert outcome.response.status == 200
    assert listed(outcome.response) == []
    assert {b.contact for b in outcome.removed} == {"sip:alice@10.0.0.5", "sip:alice@10.0.0.6"}
    assert registrar.count() == 0
    assert registrar.next_expiry() is None


@pytest.mark.parametrize(
    ("contacts", "expires"),
    [
        (("*",), None),
        (("*",), "60"),
        (("*",), "zero"),
        (("*", "<sip:alice@10.0.0.5>"), "0"),
        (("*, <sip:alice@10.0.0.5>",), "0"),
    ],
)
def test_star_misuse_is_400(
    registrar: Registrar, contacts: tuple[str, ...], expires: str | None
) -> None:
    register(registrar, "<sip:alice@10.0.0.5>", expires="600", call_id="keep")
    outcome = register(registrar, *contacts, expires=expires)
    assert outcome.response.status == 400
    assert registrar.count() == 1


def test_star_out_of_order_fails_atomically(registrar: Registrar) -> None:
    register(registrar, "<sip:alice@10.0.0.5>", expires="600", cseq=5)
    register(registrar, "<sip:alice@10.0.0.6>", expires="600", call_id="other")
    outcome = register(registrar, "*", expires="0", cseq=4)
    assert outcome.response.status == 500
    assert registrar.count() == 2


def test_same_call_id_with_old_cseq_fails_the_request(registrar: Registrar) -> None:
    # RFC 3261 §10.3 step 7: the update is aborted; step 8: the request fails with 500 and
    # no binding changes, not even the other contacts of the same request.
    register(registrar, "<sip:alice@10.0.0.5>", expires="600", cseq=7)
    outcome = register(registrar, "<sip:alice@10.0.0.6>", "<sip:alice@10.0.0.5>", cseq=7)
    assert outcome.response.status == 500
    assert (outcome.added, outcome.removed) == ([], [])
    assert [b.contact for b in registrar.lookup("acme", "alice", T0)] == ["sip:alice@10.0.0.5"]
    outcome = register(registrar, "<sip:alice@10.0.0.5>;expires=0", cseq=6)
    assert outcome.response.status == 500
    assert registrar.count() == 1


def test_new_call_id_replaces_binding_even_with_lower_cseq(registrar: Registrar) -> None:
    register(registrar, "<sip:alice@10.0.0.5>", expires="600", cseq=50)
    outcome = register(registrar, "<sip:alice@10.0.0.5>", expires="300", call_id="reboot", cseq=1)
    assert outcome.response.status == 200
    [binding] = registrar.lookup("acme", "alice", T0)
    assert (binding.call_id, binding.cseq, binding.expires_at) == ("reboot", 1, T0 + 300)
    assert outcome.removed == []


def test_contacts_compared_as_uris(registrar: Registrar) -> None:
    register(registrar, "<sip:alice@PHONE.example:5060;transport=UDP;ob>", expires="600")
    outcome = register(
        registrar, "<sip:alice@phone.example:5060;transport=udp>", expires="600", cseq=2
    )
    assert registrar.count() == 1
    # The text changed, so the old text is reported removed and the new one added.
    assert [b.contact for b in outcome.removed] == ["sip:alice@PHONE.example:5060;transport=UDP;ob"]
    assert [b.contact for b in outcome.added] == ["sip:alice@phone.example:5060;transport=udp"]
    # A different user part, port or transport is another contact; so is no port vs 5060.
    for other in (
        "<sip:Alice@phone.example:5060;transport=udp>",
        "<sip:alice@phone.example:5062;transport=udp>",
        "<sip:alice@phone.example:5060;transport=tcp>",
        "<sip:alice@phone.example;transport=udp>",
    ):
        register(registrar, other, expires="600", call_id=other)
    assert registrar.count() == 5


def test_too_many_contacts_pushes_out_the_oldest() -> None:
    registrar = Registrar(max_contacts=2)
    register(registrar, "<sip:a@10.0.0.1>", call_id="c1", now=T0)
    register(registrar, "<sip:a@10.0.0.2>", call_id="c2", now=T0 + 1)
    register(registrar, "<sip:a@10.0.0.1>", call_id="c1", cseq=2, now=T0 + 2)  # refreshed
    outcome = register(registrar, "<sip:a@10.0.0.3>", call_id="c3", now=T0 + 3)
    assert outcome.response.status == 200
    assert [b.contact for b in outcome.removed] == ["sip:a@10.0.0.2"]
    assert {b.contact for b in registrar.lookup("acme", "alice", T0 + 3)} == {
        "sip:a@10.0.0.1",
        "sip:a@10.0.0.3",
    }


def test_one_request_with_too_many_contacts_is_403() -> None:
    registrar = Registrar(max_contacts=2)
    outcome = register(registrar, "<sip:a@10.0.0.1>", "<sip:a@10.0.0.2>", "<sip:a@10.0.0.3>")
    assert outcome.response.status == 403
    assert registrar.count() == 0


def test_same_instance_from_a_new_call_id_replaces_the_old_binding(registrar: Registrar) -> None:
    inst = ';+sip.instance="<urn:uuid:abc>"'
    register(registrar, f"<sip:alice@10.0.0.5:5060>{inst}", expires="600")
    register(registrar, "<sip:alice@10.0.0.7>", expires="600", call_id="desk")
    outcome = register(
        registrar, f"<sip:alice@10.0.0.5:6000>{inst}", expires="600", call_id="after-reboot"
    )
    assert [b.contact for b in outcome.removed] == ["sip:alice@10.0.0.5:5060"]
    assert {b.contact for b in registrar.lookup("acme", "alice", T0)} == {
        "sip:alice@10.0.0.5:6000",
        "sip:alice@10.0.0.7",
    }


def test_lookup_orders_by_q_then_newest(registrar: Registrar) -> None:
    register(registrar, "<sip:a@10.0.0.1>;q=0.2", call_id="c1", now=T0)
    register(registrar, "<sip:a@10.0.0.2>", call_id="c2", now=T0 + 1)
    register(registrar, "<sip:a@10.0.0.3>;q=0.9", call_id="c3", now=T0 + 2)
    register(registrar, "<sip:a@10.0.0.4>;q=1", call_id="c4", now=T0 + 3)
    contacts = [b.contact for b in registrar.lookup("acme", "alice", T0 + 4)]
    assert contacts == ["sip:a@10.0.0.4", "sip:a@10.0.0.2", "sip:a@10.0.0.3", "sip:a@10.0.0.1"]


def test_bad_q_is_400(registrar: Registrar) -> None:
    assert register(registrar, "<sip:a@10.0.0.1>;q=1.5").response.status == 400
    assert register(registrar, "<sip:a@10.0.0.1>;q=high").response.status == 400
    assert registrar.count() == 0


def test_bad_contact_or_cseq_is_400(registrar: Registrar) -> None:
    assert register(registrar, "<sip:a@bad host>").response.status == 400
    request = register_request("<sip:a@10.0.0.1>")
    request.headers.set("CSeq", "x REGISTER")
    outcome = registrar.register("acme", "alice", request, PHONE, T0, to_tag="t")
    assert outcome.response.status == 400


def test_expire_and_next_expiry(registrar: Registrar) -> None:
    assert registrar.next_expiry() is None
    register(registrar, "<sip:a@10.0.0.1>", expires="600", call_id="c1")
    register(registrar, "<sip:a@10.0.0.2>", expires="900", call_id="c2", user="bob")
    assert registrar.next_expiry() == T0 + 600
    # A refresh moves the expiry; the old schedule entry is ignored.
    register(registrar, "<sip:a@10.0.0.1>", expires="1200", call_id="c1", cseq=2, now=T0 + 100)
    assert registrar.next_expiry() == T0 + 900
    assert registrar.expire(T0 + 899) == []
    gone = registrar.expire(T0 + 900)
    assert [(b.user, b.contact) for b in gone] == [("bob", "sip:a@10.0.0.2")]
    assert registrar.next_expiry() == T0 + 1300
    assert [b.contact for b in registrar.expire(T0 + 5000)] == ["sip:a@10.0.0.1"]
    assert registrar.count() == 0
    assert registrar.next_expiry() is None


def test_lookup_hides_expired_before_expire_runs(registrar: Registrar) -> None:
    register(registrar, "<sip:a@10.0.0.1>", expires="600")
    assert registrar.lookup("acme", "alice", T0 + 600) == []
    assert registrar.count() == 1


def test_register_reports_expired_bindings_of_the_aor(registrar: Registrar) -> None:
    register(registrar, "<sip:a@10.0.0.1>", expires="600", call_id="old")
    outcome = register(registrar, "<sip:a@10.0.0.2>", expires="600", call_id="new", now=T0 + 700)
    assert [b.contact for b in outcome.removed] == ["sip:a@10.0.0.1"]
    assert listed(outcome.response) == ["<sip:a@10.0.0.2>;expires=600"]


def test_restart_keeps_bindings_until_they_expire(registrar: Registrar) -> None:
    register(registrar, "<sip:alice@10.0.0.5>", expires="600", call_id="c1", cseq=3)
    register(registrar, "<sip:bob@10.0.0.6>", expires="3600", call_id="c2", user="bob")
    stored = registrar.lookup("acme", "alice", T0) + registrar.lookup("acme", "bob", T0)

    restarted = Registrar()
    restarted.load(stored, T0 + 1000)  # alice's binding ran out while we were down
    assert restarted.count() == 1
    assert restarted.lookup("acme", "alice", T0 + 1000) == []
    [bob] = restarted.lookup("acme", "bob", T0 + 1000)
    assert bob.source == PHONE
    assert restarted.next_expiry() == T0 + 3600
    # The CSeq rule still holds after the restart.
    restarted.load([stored[0]], T0 + 100)
    outcome = register(restarted, "<sip:alice@10.0.0.5>", expires="600", call_id="c1", cseq=3)
    assert outcome.response.status == 500
    outcome = register(restarted, "<sip:alice@10.0.0.5>", expires="600", call_id="c1", cseq=4)
    assert outcome.response.status == 200
    assert [b.contact for b in restarted.expire(T0 + 600)] == ["sip:alice@10.0.0.5"]
    assert [b.contact for b in restarted.expire(T0 + 3600)] == ["sip:bob@10.0.0.6"]


def stored(contact: str, expires_at: float, registered_at: float = 0.0) -> Binding:
    return Binding(
        tenant="acme",
        user="alice",
        contact=contact,
        expires_at=expires_at,
        call_id="c",
        cseq=1,
        source=PHONE,
        registered_at=registered_at,
    )


def test_load_skips_unreadable_and_keeps_newest_duplicate(registrar: Registrar) -> None:
    registrar.load(
        [
            stored("not a uri", T0 + 60),
            stored("sip:a@h", T0 + 60, registered_at=T0 - 5),
            stored("sip:a@H", T0 + 90, registered_at=T0 - 9),
        ],
        T0,
    )
    [binding] = registrar.lookup("acme", "alice", T0)
    assert binding.contact == "sip:a@h"


def test_remove_user(registrar: Registrar) -> None:
    register(registrar, "<sip:a@10.0.0.1>", expires="600")
    assert [b.contact for b in registrar.remove_user("acme", "alice")] == ["sip:a@10.0.0.1"]
    assert registrar.count() == 0
    assert registrar.expire(T0 + 10_000) == []


def test_config_and_binding_validation() -> None:
    with pytest.raises(ValueError):
        Registrar(min_expires=600, default_expires=60)
    with pytest.raises(ValueError):
        Registrar(max_contacts=0)
    with pytest.raises(ValueError):
        Binding(
            tenant="t",
            user="u",
            contact="sip:a@h",
            expires_at=1.0,
            call_id="c",
            cseq=1,
            source=PHONE,
            q=2.0,
        )
