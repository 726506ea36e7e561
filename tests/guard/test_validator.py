"""The sans-I/O validator: RFC 9068 §4 checks and the JWT attack list, one case per line."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from bastion.guard import (
    BearerTokenValidator,
    Denylist,
    InvalidToken,
    TrustedIssuer,
    keyset_from_jwks,
)
from tests.guard._issuer import AUDIENCE, CLIENT_ID, TestIssuer, b64, b64json

NOW = 1_800_000_000.0


@pytest.fixture(scope="module")
def issuer() -> TestIssuer:
    return TestIssuer()


def make_validator(issuer: TestIssuer, *, legacy: bool = False, **kwargs: Any) -> BearerTokenValidator:
    validator = BearerTokenValidator(clock=lambda: NOW, **kwargs)
    keys = keyset_from_jwks(issuer.public_jwks(), fetched_at=NOW, max_age=300)
    validator.trust(TrustedIssuer(issuer.issuer, AUDIENCE, legacy=legacy), keys)
    return validator


@pytest.fixture
def validator(issuer: TestIssuer) -> BearerTokenValidator:
    return make_validator(issuer)


def mint(issuer: TestIssuer, alg: str = "ES256", **kwargs: Any) -> str:
    kwargs.setdefault("iat", int(NOW))
    kwargs.setdefault("exp", int(NOW) + 300)
    return issuer.mint(alg, **kwargs)


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: str = "") -> str:
    return f"{b64json(header)}.{b64json(claims)}.{signature}"


@pytest.mark.parametrize("alg", ["ES256", "RS256", "PS256", "RS512"])
def test_accepts_valid_token(issuer: TestIssuer, validator: BearerTokenValidator, alg: str) -> None:
    """A well-formed token signed by a trusted key yields its claims."""
    token = validator.validate(mint(issuer, alg, sub="alice", roles=["editor"]))

    assert (token.issuer, token.subject, token.client_id) == (issuer.issuer, "alice", CLIENT_ID)
    assert token.scopes == frozenset({"notes:read", "notes:write"})
    assert token.roles == frozenset({"editor"})
    assert token.audience == (AUDIENCE,)


@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt", "AT+JWT", "Application/At+Jwt"])
def test_accepts_access_token_types(issuer: TestIssuer, validator: BearerTokenValidator, typ: str) -> None:
    """RFC 9068 §4: at+jwt in either form, compared case-insensitively."""
    assert validator.validate(mint(issuer, header={"typ": typ})).subject == "alice"


def test_accepts_audience_in_list(issuer: TestIssuer, validator: BearerTokenValidator) -> None:
    """An aud array containing this API is accepted."""
    assert validator.validate(mint(issuer, aud=["other", AUDIENCE])).audience == ("other", AUDIENCE)


def test_accepts_within_leeway(issuer: TestIssuer, validator: BearerTokenValidator) -> None:
    """A token expired by less than the leeway is still accepted (clock skew)."""
    assert validator.validate(mint(issuer, exp=int(NOW) - 10)).subject == "alice"


def _hs256_with_public_key(issuer: TestIssuer) -> str:
    pem = issuer.rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "at+jwt", "kid": issuer.rsa_kid}
    claims = issuer.claims(iat=int(NOW), exp=int(NOW) + 300, sub="admin")
    signing_input = f"{b64json(header)}.{b64json(claims)}"
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def _attacker_signed(issuer: TestIssuer, header_extra: dict[str, Any]) -> str:
    attacker = ec.generate_private_key(ec.SECP256R1())
    jwk = ECAlgorithm.to_jwk(attacker.public_key(), as_dict=True)
    header = {"alg": "ES256", "typ": "at+jwt", "kid": "attacker"}
    header.update({k: (jwk if v == "JWK" else v) for k, v in header_extra.items()})
    claims = issuer.claims(iat=int(NOW), exp=int(NOW) + 300, sub="admin")
    signing_input = f"{b64json(header)}.{b64json(claims)}".encode()
    signature = ECAlgorithm(ECAlgorithm.SHA256).sign(signing_input, attacker)
    return f"{signing_input.decode()}.{b64(signature)}"


def _attacks(issuer: TestIssuer) -> list[Any]:
    claims = issuer.claims(iat=int(NOW), exp=int(NOW) + 300)
    valid = mint(issuer)
    h, p, s = valid.split(".")
    other = TestIssuer(issuer.issuer)
    other.ec_kid = issuer.ec_kid
    return [
        *[
            pytest.param(unsigned({"alg": spelling, "typ": "at+jwt"}, claims, sig), detail, id=f"alg-{spelling}-{name}")
            for spelling in ("none", "None", "NONE", "nOnE")
            for name, sig, detail in (
                ("empty-signature", "", "not a JWS compact serialization"),
                ("kept-signature", s, f"algorithm not accepted: {spelling!r}"),
            )
        ],
        pytest.param(unsigned({"typ": "at+jwt"}, claims, s), "algorithm not accepted: None", id="alg-missing"),
        pytest.param(
            _hs256_with_public_key(issuer), "algorithm not accepted: 'HS256'", id="hs256-public-key-as-secret"
        ),
        pytest.param(f"{h}.{p}.", "not a JWS compact serialization", id="stripped-signature"),
        pytest.param(f"{h}.{p}", "not a JWS compact serialization", id="two-segments"),
        pytest.param(f"{h}.{p}.{b64(bytes(64))}", "signature verification failed", id="zeroed-signature-psychic"),
        pytest.param(f"{h}.{p}.{b64(bytes(63))}", "signature verification failed", id="short-signature"),
        pytest.param(
            f"{h}.{b64json(claims | {'sub': 'admin'})}.{s}", "signature verification failed", id="tampered-payload"
        ),
        pytest.param(
            other.mint(iat=int(NOW), exp=int(NOW) + 300),
            "signature verification failed",
            id="signed-by-other-key-same-kid",
        ),
        pytest.param(mint(issuer, header={"kid": "forged"}), "no trusted key for kid 'forged'", id="forged-kid"),
        pytest.param(
            mint(issuer, header={"kid": "../../dev/null"}),
            "no trusted key for kid '../../dev/null'",
            id="kid-path-injection",
        ),
        pytest.param(
            _attacker_signed(issuer, {"jku": "http://127.0.0.1:9/jwks"}), "header parameter jku refused", id="jku"
        ),
        pytest.param(
            _attacker_signed(issuer, {"x5u": "http://127.0.0.1:9/cert"}), "header parameter x5u refused", id="x5u"
        ),
        pytest.param(_attacker_signed(issuer, {"jwk": "JWK"}), "header parameter jwk refused", id="embedded-jwk"),
        pytest.param(_attacker_signed(issuer, {"x5c": ["MIIB"]}), "header parameter x5c refused", id="x5c"),
        pytest.param(
            _attacker_signed(issuer, {"kid": issuer.ec_kid}),
            "signature verification failed",
            id="attacker-key-trusted-kid",
        ),
        pytest.param(mint(issuer, header={"crit": ["exp"], "exp": 1}), "crit header refused", id="crit"),
        pytest.param(mint(issuer, header={"crit": []}), "crit header refused", id="crit-empty"),
        pytest.param(mint(issuer, exp=int(NOW) - 31), "expired", id="expired"),
        pytest.param(mint(issuer, drop=("exp",)), "exp missing", id="exp-missing"),
        pytest.param(mint(issuer, exp=str(int(NOW) + 300)), "exp is not a NumericDate", id="exp-string"),
        pytest.param(mint(issuer, exp=True), "exp is not a NumericDate", id="exp-bool"),
        pytest.param(mint(issuer, nbf=int(NOW) + 60), "not yet valid", id="nbf-future"),
        pytest.param(mint(issuer, iat=int(NOW) + 60), "issued in the future", id="iat-future"),
        pytest.param(mint(issuer, drop=("iat",)), "iat missing", id="iat-missing"),
        pytest.param(
            mint(issuer, iss="http://evil.test"), "issuer not trusted: 'http://evil.test'", id="unknown-issuer"
        ),
        pytest.param(
            mint(issuer, iss=issuer.issuer + "/"),
            f"issuer not trusted: {issuer.issuer + '/'!r}",
            id="issuer-trailing-slash",
        ),
        pytest.param(mint(issuer, drop=("iss",)), "issuer not trusted: None", id="iss-missing"),
        pytest.param(mint(issuer, aud="https://other.api"), "audience mismatch", id="wrong-aud"),
        pytest.param(mint(issuer, aud=["https://other.api"]), "audience mismatch", id="wrong-aud-list"),
        pytest.param(mint(issuer, drop=("aud",)), "audience mismatch", id="aud-missing"),
        pytest.param(mint(issuer, aud=[AUDIENCE, 1]), "audience mismatch", id="aud-non-string"),
        pytest.param(
            mint(issuer, header={"typ": "JWT"}, aud=CLIENT_ID, nonce="n"),
            "typ not accepted: 'JWT'",
            id="id-token-as-access-token",
        ),
        pytest.param(mint(issuer, header={"typ": None}), "typ not accepted: None", id="typ-missing"),
        pytest.param(mint(issuer, header={"typ": "dpop+jwt"}), "typ not accepted: 'dpop+jwt'", id="typ-dpop"),
        pytest.param(mint(issuer, drop=("sub",)), "sub missing or not a string", id="sub-missing"),
        pytest.param(mint(issuer, drop=("client_id",)), "client_id missing or not a string", id="client-id-missing"),
        pytest.param(mint(issuer, drop=("jti",)), "jti missing or not a string", id="jti-missing"),
        pytest.param(mint(issuer, scope=["notes:read"]), "scope is not a string", id="scope-list"),
        pytest.param(mint(issuer, roles="admin"), "roles is not a list of strings", id="roles-string"),
        pytest.param(
            mint(issuer, "RS256", header={"kid": issuer.ec_kid}),
            "signature verification failed",
            id="rs256-with-ec-kid",
        ),
        pytest.param(
            unsigned({"alg": "ES256", "alg ": "x", "typ": "at+jwt"}, claims, s),
            "signature verification failed",
            id="near-duplicate-header",
        ),
        pytest.param('{"alg":"ES256"}.e30.' + s, "not a JWS compact serialization", id="raw-json-header"),
        pytest.param(
            b64(b'{"alg":"ES256","alg":"none"}') + f".{p}.{s}", "duplicate member in JOSE header", id="duplicate-alg"
        ),
        pytest.param(f"{b64(b'[1]')}.{p}.{s}", "JOSE header or claims are not JSON objects", id="header-array"),
        pytest.param(f"{b64(bytes([0xFF, 0xFE]))}.{p}.{s}", "undecodable JWS segment", id="header-not-utf8"),
        pytest.param("a" * 20_000, "token too long", id="huge-token"),
        pytest.param(f"{h}.{p}.A", "undecodable JWS segment", id="one-char-signature"),
        pytest.param("a.b.c.d.e", "not a JWS compact serialization", id="jwe-five-segments"),
    ]


_ATTACK_ISSUER = TestIssuer()


@pytest.mark.parametrize(("token", "detail"), _attacks(_ATTACK_ISSUER))
def test_refuses_attack(token: str, detail: str) -> None:
    """Every JWT attack is refused as invalid_token with a precise private detail."""
    validator = make_validator(_ATTACK_ISSUER)
    with pytest.raises(InvalidToken) as caught:
        validator.validate(token)

    assert caught.value.detail == detail
    assert caught.value.error == "invalid_token"
    assert caught.value.description == "The access token is invalid, expired or revoked."


@pytest.mark.parametrize(
    ("claims", "detail"),
    [
        pytest.param({"nonce": "abc"}, "looks like an ID token (nonce/at_hash)", id="nonce"),
        pytest.param({"at_hash": "abc"}, "looks like an ID token (nonce/at_hash)", id="at-hash"),
        pytest.param({"aud": [AUDIENCE, CLIENT_ID]}, "looks like an ID token (aud is a client)", id="aud-is-client"),
        pytest.param(
            {"azp": "spa", "aud": [AUDIENCE, "spa"], "client_id": None},
            "looks like an ID token (aud is a client)",
            id="aud-is-azp",
        ),
    ],
)
def test_legacy_issuer_still_refuses_id_tokens(issuer: TestIssuer, claims: dict[str, Any], detail: str) -> None:
    """A legacy issuer may send typ JWT, but ID-token look-alikes are refused."""
    validator = make_validator(issuer, legacy=True)
    with pytest.raises(InvalidToken) as caught:
        validator.validate(mint(issuer, header={"typ": "JWT"}, **claims))

    assert caught.value.detail == detail


@pytest.mark.parametrize(
    ("claims", "detail"),
    [
        pytest.param({"client_id": {"a": 1}}, "client_id missing or not a string", id="client-id-object"),
        pytest.param({"client_id": ["a"]}, "client_id missing or not a string", id="client-id-list"),
        pytest.param({"aud": [AUDIENCE, {"a": 1}]}, "audience mismatch", id="aud-holding-object"),
    ],
)
def test_unhashable_claims_are_invalid_never_a_type_error(
    issuer: TestIssuer, validator: BearerTokenValidator, claims: dict[str, Any], detail: str
) -> None:
    """The ID-token look-alike check runs before the type checks: an object or a list where a
    string belongs is refused as the wrong type (it raised TypeError, a 5xx, before)."""
    with pytest.raises(InvalidToken) as caught:
        validator.validate(mint(issuer, **claims))

    assert caught.value.detail == detail


@pytest.mark.parametrize("typ", [pytest.param("JWT", id="JWT"), pytest.param(None, id="absent")])
def test_legacy_issuer_accepts_plain_jwt(issuer: TestIssuer, typ: str | None) -> None:
    """A legacy issuer's untyped access tokens (azp instead of client_id) are accepted."""
    validator = make_validator(issuer, legacy=True)
    token = mint(issuer, header={"typ": typ}, client_id=None, azp="spa", drop=("jti",))

    assert validator.validate(token).client_id == "spa"


def test_untrusted_key_types_are_ignored() -> None:
    """oct keys, private JWKs, short RSA keys and keys for encryption are never trusted."""
    # S505: the point of the test is that a breakable key is refused.
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    good = ec.generate_private_key(ec.SECP256R1())
    jwks = {
        "keys": [
            {"kty": "oct", "k": b64(b"secret"), "kid": "oct"},
            ECAlgorithm.to_jwk(good, as_dict=True) | {"kid": "private"},
            RSAAlgorithm.to_jwk(small.public_key(), as_dict=True) | {"kid": "small"},
            ECAlgorithm.to_jwk(good.public_key(), as_dict=True) | {"kid": "enc", "use": "enc"},
            ECAlgorithm.to_jwk(good.public_key(), as_dict=True) | {"kid": "bad-alg", "alg": "RS256"},
            ECAlgorithm.to_jwk(good.public_key(), as_dict=True) | {"kid": "ok"},
        ]
    }
    keys = keyset_from_jwks(jwks, fetched_at=0, max_age=1)

    assert [k.kid for k in keys.keys] == ["ok"]
    assert keys.keys[0].algorithms == frozenset({"ES256"})


def test_duplicate_kids_are_dropped(issuer: TestIssuer) -> None:
    """Two keys under one kid make the lookup ambiguous, so neither is trusted."""
    jwks = issuer.public_jwks()
    twin = ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()).public_key(), as_dict=True)
    jwks["keys"].append(twin | {"kid": issuer.ec_kid})
    keys = keyset_from_jwks(jwks, fetched_at=0, max_age=1)

    assert [k.kid for k in keys.keys] == [issuer.rsa_kid]


def test_missing_kid_uses_the_only_matching_key(issuer: TestIssuer, validator: BearerTokenValidator) -> None:
    """Without a kid, the single key that can verify the algorithm is used."""
    assert validator.validate(mint(issuer, header={"kid": None})).subject == "alice"


def test_revoked_token_is_refused_even_when_cached(issuer: TestIssuer, validator: BearerTokenValidator) -> None:
    """A revocation takes effect on the next request, cache or no cache."""
    token = mint(issuer, jti="to-revoke")
    validator.validate(token)
    validator.denylist.add("to-revoke", NOW + 300)

    with pytest.raises(InvalidToken) as caught:
        validator.validate(token)

    assert caught.value.detail == "revoked"
    assert len(validator.cache) == 0


def test_cache_returns_verified_token_until_exp(issuer: TestIssuer) -> None:
    """A cached token is served until its exp, then verified again (and refused)."""
    clock = [NOW]
    validator = BearerTokenValidator(clock=lambda: clock[0])
    validator.trust(
        TrustedIssuer(issuer.issuer, AUDIENCE, leeway=0),
        keyset_from_jwks(issuer.public_jwks(), fetched_at=NOW, max_age=300),
    )
    token = mint(issuer, exp=int(NOW) + 10)
    first = validator.validate(token)

    assert validator.validate(token) is first
    clock[0] = NOW + 10
    with pytest.raises(InvalidToken) as caught:
        validator.validate(token)
    assert caught.value.detail == "expired"


def test_cache_is_bounded(issuer: TestIssuer) -> None:
    """The verified-token cache never holds more than its size."""
    validator = make_validator(issuer, cache_size=3)
    for i in range(10):
        validator.validate(mint(issuer, jti=f"t{i}"))

    assert len(validator.cache) == 3


def test_denylist_keeps_entries_until_exp_plus_leeway() -> None:
    """A revocation is dropped only once its token is past exp + leeway, when no validator accepts it."""
    denylist = Denylist(leeway=30)
    denylist.add("a", 100)
    denylist.add("b", 200)

    assert denylist.prune(130) == 0
    assert denylist.prune(131) == 1
    assert "a" not in denylist
    assert "b" in denylist


def test_trusting_an_issuer_keeps_revocations_for_its_leeway(issuer: TestIssuer) -> None:
    """An issuer with a longer leeway makes the shared denylist keep its entries that long."""
    denylist = Denylist()
    validator = BearerTokenValidator([TrustedIssuer(issuer.issuer, AUDIENCE, leeway=120)], denylist=denylist)
    validator.trust(TrustedIssuer("http://other", AUDIENCE, leeway=5))
    denylist.add("a", 100)

    assert (denylist.leeway, denylist.prune(220), denylist.prune(221)) == (120, 0, 1)


def test_real_time_clock_by_default(issuer: TestIssuer) -> None:
    """Without an injected clock the validator uses the wall clock."""
    validator = BearerTokenValidator()
    validator.trust(
        TrustedIssuer(issuer.issuer, AUDIENCE),
        keyset_from_jwks(issuer.public_jwks(), fetched_at=time.time(), max_age=300),
    )

    assert validator.validate(issuer.mint()).subject == "alice"
