"""Access and refresh tokens: everything that is not a fresh, genuine token is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import replace

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from apps.api.auth.tokens import TokenService, token_service_from_settings
from apps.core.settings import Settings
from tests.fixtures.live_api import PASSWORD, Api


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(tokens: TokenService, subject: str, typ: str = "access") -> dict[str, object]:
    now = int(time.time())
    return {
        "iss": tokens.issuer,
        "aud": tokens.audience,
        "sub": subject,
        "iat": now,
        "exp": now + 600,
        "jti": "x" * 32,
        "typ": typ,
    }


def _unsigned(header: dict[str, object], claims: dict[str, object]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}."


async def _me_status(api: Api, token: str) -> int:
    response = await api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    if response.status_code == 401:
        assert response.json()["error"]["code"] == "unauthorized"
    return response.status_code


async def test_forged_and_misused_access_tokens_are_rejected(
    api: Api, accounts_settings: Settings
) -> None:
    user = await api.user("subscriber", "tok")
    assert await _me_status(api, user.access_token) == 200
    genuine = token_service_from_settings(accounts_settings)  # same dev key file as the app

    expired = genuine.issue(user.id, "access", now=int(time.time()) - 3600).token
    head, payload, signature = user.access_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "someone-else"
    tampered = f"{head}.{_b64(json.dumps(claims).encode())}.{signature}"
    alg_none = _unsigned({"alg": "none", "typ": "JWT", "kid": "k1"}, _claims(genuine, user.id))
    # The classic confusion: HMAC "signed" with the public key as the shared secret.
    public_pem = genuine.public_keys["k1"].public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = _unsigned({"alg": "HS256", "kid": "k1"}, _claims(genuine, user.id))[:-1]
    hs256 = (
        signing_input
        + "."
        + _b64(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())
    )
    other_key = TokenService(
        private_key=Ed25519PrivateKey.generate(),
        key_id="k1",
        public_keys={},
        issuer=genuine.issuer,
        audience=genuine.audience,
        access_ttl=900,
        refresh_ttl=3600,
    )
    wrong_key = other_key.issue(user.id, "access").token
    wrong_audience = replace_audience(genuine, "another-api").issue(user.id, "access").token
    wrong_issuer = replace_issuer(genuine, "evil").issue(user.id, "access").token
    unknown_kid = genuine.issue(user.id, "access").token
    h, p, s = unknown_kid.split(".")
    header = json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))
    header["kid"] = "k9"
    unknown_kid = f"{_b64(json.dumps(header).encode())}.{p}.{s}"

    for name, token in {
        "expired": expired,
        "tampered": tampered,
        "alg none": alg_none,
        "hs256 with public key": hs256,
        "wrong key": wrong_key,
        "wrong audience": wrong_audience,
        "wrong issuer": wrong_issuer,
        "unknown kid": unknown_kid,
        "refresh token as access token": user.refresh_token,
        "garbage": "not.a.jwt",
    }.items():
        assert await _me_status(api, token) == 401, name
    response = await api.client.get("/api/v1/me", headers={"Authorization": "Basic abc"})
    assert response.status_code == 401


def replace_audience(tokens: TokenService, audience: str) -> TokenService:
    clone = _clone(tokens)
    clone.audience = audience
    return clone


def replace_issuer(tokens: TokenService, issuer: str) -> TokenService:
    clone = _clone(tokens)
    clone.issuer = issuer
    return clone


def _clone(tokens: TokenService) -> TokenService:
    return TokenService(
        private_key=tokens._private_key,
        key_id="k1",
        public_keys=tokens.public_keys,
        issuer=tokens.issuer,
        audience=tokens.audience,
        access_ttl=900,
        refresh_ttl=3600,
    )


async def _refresh(api: Api, token: str) -> tuple[int, dict[str, str]]:
    response = await api.client.post("/api/v1/auth/refresh", json={"refresh_token": token})
    return response.status_code, response.json()


async def test_refresh_rotates_and_reuse_revokes_the_family(api: Api) -> None:
    user = await api.user("subscriber", "rot")
    status, first = await _refresh(api, user.refresh_token)
    assert status == 200
    assert first["refresh_token"] != user.refresh_token
    # The response also sets the refresh cookie: httpOnly, Secure, SameSite, auth path only.
    # An access token is not a refresh token.
    assert (await _refresh(api, user.access_token))[0] == 401

    # Replaying the already-rotated token: rejected, and the whole family dies with it.
    assert (await _refresh(api, user.refresh_token))[0] == 401
    assert (await _refresh(api, first["refresh_token"]))[0] == 401
    assert await _me_status(api, first["access_token"]) == 401
    assert await _me_status(api, user.access_token) == 401


async def test_logout_revokes_refresh_and_access_tokens(api: Api) -> None:
    user = await api.user("subscriber", "out")
    other_session = await api.login(user.email)
    response = await api.client.post(
        "/api/v1/auth/logout", json={"refresh_token": user.refresh_token}, headers=user.headers
    )
    assert response.status_code == 204
    assert (await _refresh(api, user.refresh_token))[0] == 401
    assert await _me_status(api, user.access_token) == 401
    # Another device's session is a different family and stays logged in.
    assert await _me_status(api, other_session.access_token) == 200


async def test_login_cookie_is_http_only_secure_and_strict(api: Api) -> None:
    user = await api.user("subscriber", "cookie")
    response = await api.client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}
    )
    cookie = response.headers["set-cookie"].lower()
    assert "copier_refresh=" in cookie
    for attribute in ("httponly", "secure", "samesite=strict", "path=/api/v1/auth"):
        assert attribute in cookie


async def test_logout_expires_the_refresh_cookie(api: Api) -> None:
    user = await api.user("subscriber", "bye")
    for path in ("/api/v1/auth/logout", "/api/v1/auth/logout-all"):
        session = await api.login(user.email)
        response = await api.client.post(path, headers=session.headers)
        assert response.status_code == 204, response.text
        cookie = response.headers["set-cookie"].lower()
        assert 'copier_refresh="";' in cookie or "copier_refresh=;" in cookie, cookie
        assert "max-age=0" in cookie and "path=/api/v1/auth" in cookie


async def test_login_is_rate_limited_per_account(api: Api, accounts_settings: Settings) -> None:
    user = await api.user("subscriber", "rate")
    statuses = []
    for _ in range(accounts_settings.auth_attempts_per_minute_per_account + 1):
        response = await api.client.post(
            "/api/v1/auth/login", json={"email": user.email, "password": "wrong password"}
        )
        statuses.append(response.status_code)
    # register + the fixture's login already used two of the account's budget.
    assert statuses[-1] == 429
    assert set(statuses[:-3]) == {401}
    assert response.json()["error"]["code"] == "rate_limited"
    assert int(response.headers["retry-after"]) > 0


def test_settings_keys_sign_and_verify() -> None:
    pem = (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    settings = replace(Settings(), jwt_private_key=pem, jwt_key_id="k7")
    tokens = token_service_from_settings(settings)
    issued = tokens.issue("u1", "access")
    assert tokens.decode(issued.token, "access").subject == "u1"
    head = json.loads(base64.urlsafe_b64decode(issued.token.split(".")[0] + "=="))
    assert head == {"alg": "EdDSA", "kid": "k7", "typ": "JWT"}


async def test_logout_everywhere_ends_every_session_of_the_account(api: Api) -> None:
    user = await api.user("subscriber", "many")
    phone = await api.login(user.email)
    laptop = await api.login(user.email)
    other = await api.user("subscriber", "bystander")
    done = await api.client.post("/api/v1/auth/logout-all", headers=phone.headers)
    assert done.status_code == 204
    for session in (user, phone, laptop):
        assert (await api.client.get("/api/v1/me", headers=session.headers)).status_code == 401
        refreshed = await api.client.post(
            "/api/v1/auth/refresh", json={"refresh_token": session.refresh_token}
        )
        assert refreshed.status_code == 401
    assert (await api.client.get("/api/v1/me", headers=other.headers)).status_code == 200
