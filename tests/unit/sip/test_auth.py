"""Server-side digest authentication (RFC 7616, RFC 8760, RFC 3261 §22)."""

from __future__ import annotations

import hashlib
import itertools

import pytest

from minicc.switch.sip.auth import (
    AuthFailure,
    AuthResult,
    DigestAlgorithm,
    DigestServer,
    compute_ha1,
    digest_response,
    parse_credentials,
)
from minicc.switch.sip.headers import Headers
from minicc.switch.sip.message import Request

REALM = "acme.example"
SECRET = b"0123456789abcdef0123456789abcdef"
PASSWORDS = {"alice": "secret1", "bob": "hunter2"}
REQUEST_URI = "sip:1002@acme.example"


def lookup(user: str, algorithm: DigestAlgorithm) -> str | None:
    password = PASSWORDS.get(user)
    return None if password is None else compute_ha1(user, REALM, password, algorithm)


def make_request(
    *authorization: str, method: str = "INVITE", uri: str = REQUEST_URI, proxy: bool = False
) -> Request:
    headers = Headers(
        [
            ("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1"),
            ("From", "<sip:alice@acme.example>;tag=a"),
            ("To", "<sip:1002@acme.example>"),
            ("Call-ID", "call-1"),
            ("CSeq", f"1 {method}"),
        ]
    )
    for value in authorization:
        headers.add("Proxy-Authorization" if proxy else "Authorization", value)
    return Request(headers=headers, method=method, uri=uri)


def _h(algorithm: str, text: str) -> str:
    name = {"MD5": "md5", "SHA-256": "sha256"}[algorithm]
    return hashlib.new(name, text.encode()).hexdigest()


def client_authorization(
    challenge: str,
    *,
    user: str = "alice",
    password: str = "secret1",
    method: str = "INVITE",
    uri: str = REQUEST_URI,
    nc: int = 1,
    cnonce: str = "0a4f113b",
    qop: bool = True,
) -> str:
    """A client's answer, written here from RFC 7616 §3.4 independently of the server code."""
    params = dict(
        part.strip().split("=", 1) for part in challenge.removeprefix("Digest ").split(", ")
    )
    realm = params["realm"].strip('"')
    nonce = params["nonce"].strip('"')
    algorithm = params["algorithm"]
    ha1 = _h(algorithm, f"{user}:{realm}:{password}")
    ha2 = _h(algorithm, f"{method}:{uri}")
    ncs = f"{nc:08x}"
    if qop:
        response = _h(algorithm, f"{ha1}:{nonce}:{ncs}:{cnonce}:auth:{ha2}")
        extra = f', qop=auth, nc={ncs}, cnonce="{cnonce}"'
    else:
        response = _h(algorithm, f"{ha1}:{nonce}:{ha2}")
        extra = ""
    return (
        f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
        f'response="{response}", algorithm={algorithm}{extra}'
    )


@pytest.fixture
def server() -> DigestServer:
    counter = itertools.count()
    return DigestServer(SECRET, token_bytes=lambda n: next(counter).to_bytes(n, "big"))


def challenge_for(server: DigestServer, now: float, algorithm: str = "SHA-256") -> str:
    for _, value in server.challenge_headers(REALM, now):
        if f"algorithm={algorithm}" in value:
            return value
    raise AssertionError(f"no {algorithm} challenge")


# ---------------------------------------------------------------- RFC 7616 §3.9.1 vectors

RFC_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC_AUTHORIZATION = (
    'Digest username="Mufasa",\r\n realm="http-auth@example.org",\r\n'
    ' uri="/dir/index.html",\r\n algorithm={alg},\r\n nonce="{nonce}",\r\n'
    ' nc=00000001,\r\n cnonce="{cnonce}",\r\n qop=auth,\r\n response="{response}",\r\n'
    ' opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
)


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        (DigestAlgorithm.MD5, "8ca523f5e9506fed4657c9700eebdbec"),
        (
            DigestAlgorithm.SHA256,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
        ),
    ],
)
def test_rfc7616_example_vectors(algorithm: DigestAlgorithm, expected: str) -> None:
    ha1 = compute_ha1("Mufasa", "http-auth@example.org", "Circle of Life", algorithm)
    header = RFC_AUTHORIZATION.format(
        alg=algorithm.value, nonce=RFC_NONCE, cnonce=RFC_CNONCE, response=expected
    )
    creds = parse_credentials(header)
    assert creds.username == "Mufasa"
    assert creds.realm == "http-auth@example.org"
    assert creds.nc == "00000001"
    assert creds.opaque == "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
    response = digest_response(
        algorithm=algorithm,
        ha1=ha1,
        nonce=creds.nonce,
        method="GET",
        uri=creds.uri,
        qop=creds.qop,
        nc=creds.nc,
        cnonce=creds.cnonce,
    )
    assert response == expected == creds.response


# ---------------------------------------------------------------- challenges


def test_challenge_lists_sha256_first_with_qop_auth(server: DigestServer) -> None:
    headers = server.challenge_headers(REALM, 10.0)
    assert [name for name, _ in headers] == ["WWW-Authenticate", "WWW-Authenticate"]
    assert "algorithm=SHA-256" in headers[0][1]
    assert "algorithm=MD5" in headers[1][1]
    for _, value in headers:
        assert value.startswith('Digest realm="acme.example", nonce="')
        assert 'qop="auth"' in value
        assert "stale" not in value
    nonces = {parse_nonce(value) for _, value in headers}
    assert len(nonces) == 1  # one fresh nonce shared by both


def parse_nonce(challenge: str) -> str:
    return challenge.split('nonce="', 1)[1].split('"', 1)[0]


def test_challenges_get_fresh_nonces(server: DigestServer) -> None:
    first = parse_nonce(challenge_for(server, 1.0))
    second = parse_nonce(challenge_for(server, 1.0))
    assert first != second


def test_proxy_challenge_and_stale_flag(server: DigestServer) -> None:
    headers = server.challenge_headers(REALM, 1.0, stale=True, proxy=True)
    assert {name for name, _ in headers} == {"Proxy-Authenticate"}
    assert all(value.endswith("stale=true") for _, value in headers)


def test_opaque_is_sent() -> None:
    server = DigestServer(SECRET, opaque="xyz")
    assert all('opaque="xyz"' in value for _, value in server.challenge_headers(REALM, 0.0))


def test_challenge_response_401_and_407(server: DigestServer) -> None:
    request = make_request()
    response = server.challenge_response(request, REALM, 5.0, to_tag="t1")
    assert response.status == 401
    assert response.headers.get("To") == "<sip:1002@acme.example>;tag=t1"
    assert len(response.headers.get_all("WWW-Authenticate")) == 2
    proxied = server.challenge_response(request, REALM, 5.0, proxy=True)
    assert proxied.status == 407
    assert len(proxied.headers.get_all("Proxy-Authenticate")) == 2


def test_challenge_response_sets_stale_only_for_stale_nonce(server: DigestServer) -> None:
    request = make_request()
    stale = AuthResult(ok=False, username="alice", failure=AuthFailure.STALE_NONCE, algorithm=None)
    bad = AuthResult(ok=False, username="alice", failure=AuthFailure.BAD_RESPONSE, algorithm=None)
    assert "stale=true" in server.challenge_response(request, REALM, 1.0, stale).to_bytes().decode()
    assert "stale" not in server.challenge_response(request, REALM, 1.0, bad).to_bytes().decode()


# ---------------------------------------------------------------- verification


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_round_trip(server: DigestServer, algorithm: str) -> None:
    auth = client_authorization(challenge_for(server, 100.0, algorithm))
    result = server.verify(make_request(auth), REALM, lookup, 101.0)
    assert result == AuthResult(
        ok=True, username="alice", failure=None, algorithm=DigestAlgorithm(algorithm)
    )
    assert not result.counts_as_bad_password


def test_round_trip_proxy_authorization(server: DigestServer) -> None:
    auth = client_authorization(challenge_for(server, 0.0))
    request = make_request(auth, proxy=True)
    assert server.verify(request, REALM, lookup, 1.0, proxy=True).ok
    # The other header name is not looked at.
    assert server.verify(request, REALM, lookup, 1.0).failure is AuthFailure.MISSING


def test_register_uses_its_own_method_and_uri(server: DigestServer) -> None:
    uri = "sip:acme.example"
    auth = client_authorization(challenge_for(server, 0.0), method="REGISTER", uri=uri)
    assert server.verify(make_request(auth, method="REGISTER", uri=uri), REALM, lookup, 1.0).ok
    # The same credentials on an INVITE do not verify (the method is in A2).
    result = server.verify(make_request(auth, method="INVITE", uri=uri), REALM, lookup, 1.0)
    assert result.failure is AuthFailure.BAD_RESPONSE


def test_missing(server: DigestServer) -> None:
    result = server.verify(make_request(), REALM, lookup, 1.0)
    assert result.failure is AuthFailure.MISSING
    assert not result.ok
    assert not result.counts_as_bad_password


def test_wrong_password_counts(server: DigestServer) -> None:
    auth = client_authorization(challenge_for(server, 0.0), password="guess")
    result = server.verify(make_request(auth), REALM, lookup, 1.0)
    assert result.failure is AuthFailure.BAD_RESPONSE
    assert result.username == "alice"
    assert result.counts_as_bad_password


def test_unknown_user_counts(server: DigestServer) -> None:
    auth = client_authorization(challenge_for(server, 0.0), user="mallory")
    result = server.verify(make_request(auth), REALM, lookup, 1.0)
    assert result.failure is AuthFailure.UNKNOWN_USER
    assert result.username == "mallory"
    assert result.counts_as_bad_password


def test_expired_nonce_is_stale(server: DigestServer) -> None:
    auth = client_authorization(challenge_for(server, 0.0))
    result = server.verify(make_request(auth), REALM, lookup, 300.5)
    assert result.failure is AuthFailure.STALE_NONCE
    assert not result.counts_as_bad_password
    # Within the lifetime it is fine.
    auth = client_authorization(challenge_for(server, 0.0))
    assert server.verify(make_request(auth), REALM, lookup, 299.9).ok


def test_expired_nonce_with_wrong_password_is_bad_not_stale(server: DigestServer) -> None:
    # RFC 7616 §3.3: stale only when the digest itself was valid.
    auth = client_authorization(challenge_for(server, 0.0), password="guess")
    result = server.verify(make_request(auth), REALM, lookup, 1000.0)
    assert result.failure is AuthFailure.BAD_RESPONSE


def test_nonce_from_another_secret_is_stale(server: DigestServer) -> None:
    before_restart = DigestServer(b"another secret, another boot!!")
    auth = client_authorization(challenge_for(before_restart, 0.0))
    assert server.verify(make_request(auth), REALM, lookup, 1.0).failure is AuthFailure.STALE_NONCE


def test_nonce_from_the_future_is_stale(server: DigestServer) -> None:
    # Same secret, but the monotonic clock restarted: the nonce claims a later issue time.
    auth = client_authorization(challenge_for(server, 5000.0))
    assert server.verify(make_request(auth), REALM, lookup, 3.0).failure is AuthFailure.STALE_NONCE


def test_garbage_nonce_with_right_digest_is_stale(server: DigestServer) -> None:
    auth = client_authorization('Digest realm="acme.example", nonce="abc", algorithm=MD5')
    assert server.verify(make_request(auth), REALM, lookup, 1.0).failure is AuthFailure.STALE_NONCE


def test_nonce_of_another_realm_is_stale() -> None:
    server = DigestServer(SECRET)
    other = server.challenge_headers("other.example", 0.0)[0][1]
    auth = client_authorization(other.replace("other.example", REALM))
    assert server.verify(make_request(auth), REALM, lookup, 1.0).failure is AuthFailure.STALE_NONCE


def test_nonce_count_replay(server: DigestServer) -> None:
    challenge = challenge_for(server, 0.0)
    first = make_request(client_authorization(challenge, nc=1))
    assert server.verify(first, REALM, lookup, 1.0).ok
    replayed = server.verify(first, REALM, lookup, 2.0)
    assert replayed.failure is AuthFailure.REPLAY
    assert not replayed.counts_as_bad_password
    # The next count is accepted, going back is not.
    assert server.verify(make_request(client_authorization(challenge, nc=3)), REALM, lookup, 3.0).ok
    back = make_request(client_authorization(challenge, nc=2))
    assert server.verify(back, REALM, lookup, 4.0).failure is AuthFailure.REPLAY


def test_failed_attempts_do_not_burn_nonce_counts(server: DigestServer) -> None:
    challenge = challenge_for(server, 0.0)
    forged = make_request(client_authorization(challenge, nc=9, password="guess"))
    assert server.verify(forged, REALM, lookup, 1.0).failure is AuthFailure.BAD_RESPONSE
    assert server.verify(make_request(client_authorization(challenge, nc=1)), REALM, lookup, 2.0).ok


def test_without_qop_is_accepted_without_replay_protection(server: DigestServer) -> None:
    auth = client_authorization(challenge_for(server, 0.0, "MD5"), qop=False)
    request = make_request(auth)
    assert server.verify(request, REALM, lookup, 1.0).ok
    assert server.verify(request, REALM, lookup, 2.0).ok  # RFC 2069: nothing to count
    assert server.tracked_nonces == 0


def test_nonce_table_is_bounded_and_evicted_nonces_turn_stale() -> None:
    server = DigestServer(SECRET, max_tracked_nonces=2)
    challenges = [challenge_for(server, float(t)) for t in range(3)]
    for t, challenge in enumerate(challenges):
        assert server.verify(
            make_request(client_authorization(challenge)), REALM, lookup, 10.0 + t
        ).ok
    assert server.tracked_nonces == 2
    # The oldest nonce's counter is forgotten, so its replay must not pass: it is stale now.
    replay = make_request(client_authorization(challenges[0]))
    assert server.verify(replay, REALM, lookup, 20.0).failure is AuthFailure.STALE_NONCE
    # The two still tracked keep their replay protection and their next counts.
    assert (
        server.verify(
            make_request(client_authorization(challenges[2])), REALM, lookup, 21.0
        ).failure
        is AuthFailure.REPLAY
    )
    assert server.verify(
        make_request(client_authorization(challenges[2], nc=2)), REALM, lookup, 22.0
    ).ok


def test_expired_nonces_leave_the_table(server: DigestServer) -> None:
    old = challenge_for(server, 0.0)
    assert server.verify(make_request(client_authorization(old)), REALM, lookup, 1.0).ok
    fresh = challenge_for(server, 400.0)
    assert server.verify(make_request(client_authorization(fresh)), REALM, lookup, 401.0).ok
    assert server.tracked_nonces == 1


def test_wrong_realm(server: DigestServer) -> None:
    challenge = challenge_for(server, 0.0).replace(REALM, "other.example")
    auth = client_authorization(challenge)
    result = server.verify(make_request(auth), REALM, lookup, 1.0)
    assert result.failure is AuthFailure.WRONG_REALM
    assert not result.counts_as_bad_password


def test_picks_the_credentials_for_our_realm(server: DigestServer) -> None:
    ours = client_authorization(challenge_for(server, 0.0))
    theirs = client_authorization(challenge_for(server, 0.0).replace(REALM, "upstream.example"))
    request = make_request("Basic YWxpY2U6c2VjcmV0MQ==", theirs, ours)
    assert server.verify(request, REALM, lookup, 1.0).ok


def test_uri_mismatch(server: DigestServer) -> None:
    auth = client_authorization(challenge_for(server, 0.0), uri="sip:1003@acme.example")
    result = server.verify(make_request(auth), REALM, lookup, 1.0)
    assert result.failure is AuthFailure.URI_MISMATCH
    assert not result.counts_as_bad_password


def test_uri_without_user_part_is_accepted_for_sipp(server: DigestServer) -> None:
    request_uri = "sip:1002@127.0.0.1:5060"
    auth = client_authorization(challenge_for(server, 0.0), uri="sip:127.0.0.1:5060")
    assert server.verify(make_request(auth, uri=request_uri), REALM, lookup, 1.0).ok
    # ... but another host or port is still a mismatch.
    auth = client_authorization(challenge_for(server, 0.0), uri="sip:127.0.0.1:5062")
    result = server.verify(make_request(auth, uri=request_uri), REALM, lookup, 1.0)
    assert result.failure is AuthFailure.URI_MISMATCH


def test_uri_compared_as_uri(server: DigestServer) -> None:
    auth = client_authorization(challenge_for(server, 0.0), uri="SIP:1002@ACME.example")
    assert server.verify(make_request(auth), REALM, lookup, 1.0).ok


def test_unsupported_algorithm(server: DigestServer) -> None:
    auth = client_authorization(challenge_for(server, 0.0)).replace(
        "algorithm=SHA-256", "algorithm=SHA-512-256"
    )
    result = server.verify(make_request(auth), REALM, lookup, 1.0)
    assert result.failure is AuthFailure.UNSUPPORTED_ALGORITHM


def test_disabled_algorithm_is_unsupported() -> None:
    sha_only = DigestServer(SECRET, algorithms=(DigestAlgorithm.SHA256,))
    assert len(sha_only.challenge_headers(REALM, 0.0)) == 1
    md5 = client_authorization(challenge_for(DigestServer(SECRET), 0.0, "MD5"))
    result = sha_only.verify(make_request(md5), REALM, lookup, 1.0)
    assert result.failure is AuthFailure.UNSUPPORTED_ALGORITHM


def test_absent_algorithm_means_md5(server: DigestServer) -> None:
    auth = client_authorization(challenge_for(server, 0.0, "MD5")).replace(", algorithm=MD5", "")
    assert server.verify(make_request(auth), REALM, lookup, 1.0).algorithm is DigestAlgorithm.MD5


def test_sess_variant(server: DigestServer) -> None:
    nonce = parse_nonce(challenge_for(server, 0.0))
    ha1 = compute_ha1("alice", REALM, "secret1", DigestAlgorithm.SHA256)
    sess = _h("SHA-256", f"{ha1}:{nonce}:cn")
    ha2 = _h("SHA-256", f"INVITE:{REQUEST_URI}")
    response = _h("SHA-256", f"{sess}:{nonce}:00000001:cn:auth:{ha2}")
    auth = (
        f'Digest username="alice", realm="{REALM}", nonce="{nonce}", uri="{REQUEST_URI}", '
        f'response="{response}", algorithm=SHA-256-sess, qop=auth, nc=00000001, cnonce="cn"'
    )
    assert server.verify(make_request(auth), REALM, lookup, 1.0).ok


def test_parameters_case_whitespace_and_escapes(server: DigestServer) -> None:
    nonce = parse_nonce(challenge_for(server, 0.0, "MD5"))
    user = 'al"ice'
    ha1 = _h("MD5", f"{user}:{REALM}:pw")
    ha2 = _h("MD5", f"INVITE:{REQUEST_URI}")
    # nc and qop enter the hash exactly as the client wrote them.
    response = _h("MD5", f"{ha1}:{nonce}:0000000A:xyz:Auth:{ha2}")
    auth = (
        f'digest  USERNAME = "al\\"ice" ,Realm="{REALM}",,nonce=  "{nonce}",\t'
        f'URI="{REQUEST_URI}", Response="{response.upper()}", QOP=Auth, NC=0000000A, '
        f'cnonce="xyz", ALGORITHM=md5'
    )
    result = server.verify(
        make_request(auth), REALM, lambda u, a: _h("MD5", f"{u}:{REALM}:pw"), 1.0
    )
    assert result.ok, result
    assert result.username == user


def test_opaque_must_come_back_unchanged() -> None:
    server = DigestServer(SECRET, opaque="xyz")
    challenge = challenge_for(server, 0.0)
    good = client_authorization(challenge) + ', opaque="xyz"'
    assert server.verify(make_request(good), REALM, lookup, 1.0).ok
    bad = client_authorization(challenge, nc=2) + ', opaque="abc"'
    assert server.verify(make_request(bad), REALM, lookup, 2.0).failure is AuthFailure.MALFORMED


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Digest",
        "Digest ",
        "Basic YWxpY2U6c2VjcmV0MQ==",
        'Digest username="alice"',
        'Digest username="alice", realm="acme.example", nonce="n", uri="sip:x", response="zz"',
        'Digest username="alice, realm="acme.example"',
        "Digest username=alice realm=acme.example",
        'Digest username="a", username="b", realm="acme.example", nonce="n", uri="u", '
        'response="00"',
        'Digest =, ==, "',
        'Digest username="a", realm="acme.example", nonce="n", uri="sip:x", response="00", '
        "qop=auth",
        'Digest username="a", realm="acme.example", nonce="n", uri="sip:x", response="00", '
        'qop=auth-int, nc=00000001, cnonce="c"',
        'Digest username="a", realm="acme.example", nonce="n", uri="sip:x", response="00", '
        'qop=auth, nc=123456789, cnonce="c"',
        'Digest username="a", realm="acme.example", nonce="n", uri="sip:x", response="00", '
        "userhash=true",
        'Digest username="\udcff\ud800", realm="acme.example", nonce="n", uri="sip:x", '
        'response="00"',
        'Digest username="a", realm="acme.example", nonce="n", uri="<<<", response="00"',
        "\x00\x01\x02",
        "Digest " + "a=b," * 5000,
    ],
)
def test_garbage_never_raises(server: DigestServer, value: str) -> None:
    for proxy in (False, True):
        result = server.verify(make_request(value, proxy=proxy), REALM, lookup, 1.0, proxy=proxy)
        assert not result.ok
        assert result.failure in {
            AuthFailure.MALFORMED,
            AuthFailure.URI_MISMATCH,
            AuthFailure.UNKNOWN_USER,
            AuthFailure.STALE_NONCE,
        }
        assert not result.counts_as_bad_password or result.failure is AuthFailure.UNKNOWN_USER


def test_garbage_request_uri_is_a_mismatch(server: DigestServer) -> None:
    auth = client_authorization(challenge_for(server, 0.0))
    result = server.verify(make_request(auth, uri="not a uri"), REALM, lookup, 1.0)
    assert result.failure is AuthFailure.URI_MISMATCH


def test_auth_result_invariant() -> None:
    with pytest.raises(ValueError):
        AuthResult(ok=True, username="a", failure=AuthFailure.REPLAY, algorithm=None)


def test_short_secret_refused() -> None:
    with pytest.raises(ValueError):
        DigestServer(b"short")


def test_unencodable_text_in_hashed_fields_is_malformed(server: DigestServer) -> None:
    auth = (
        f'Digest username="alice", realm="{REALM}", nonce="\ud800", uri="{REQUEST_URI}", '
        'response="00", qop=auth, nc=00000001, cnonce="c"'
    )
    result = server.verify(make_request(auth), REALM, lambda u, a: "0" * 32, 1.0)
    assert result.failure is AuthFailure.MALFORMED


def test_md5_only_for_clients_that_abort_on_sha256() -> None:
    from minicc.switch.sip.auth import algorithms_for_client

    both = (DigestAlgorithm.SHA256, DigestAlgorithm.MD5)
    assert algorithms_for_client("baresip v1.0.0 (x86_64/linux)", both) == (DigestAlgorithm.MD5,)
    assert algorithms_for_client("Linphone/5.2", both) == both
    assert algorithms_for_client(None, both) == both
    assert algorithms_for_client("baresip", (DigestAlgorithm.SHA256,)) == (DigestAlgorithm.SHA256,)
    server = DigestServer(b"k" * 32)
    lines = server.challenge_headers("r", 0.0, offer=(DigestAlgorithm.MD5,))
    assert len(lines) == 1 and "algorithm=MD5" in lines[0][1]
