"""Signed JWTs: short-lived access tokens and single-use refresh tokens.

EdDSA (Ed25519) is pinned, so other services verify with the public key alone and no
``alg`` trickery (``none``, HS256 with the public key as secret) is accepted. Every token
names its key in the ``kid`` header (keys can rotate: old public keys stay in the ring
until their tokens expire) and its purpose in the ``typ`` claim, so a refresh token is
never accepted where an access token is expected.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from apps.core.dev_keys import load_or_create
from apps.core.settings import Settings

TokenType = Literal["access", "refresh"]
ALGORITHM = "EdDSA"
# Clock skew tolerated on exp/iat/nbf between the issuing and the verifying instance.
LEEWAY_SECONDS = 5


class InvalidToken(Exception):
    """The token is malformed, forged, expired, for someone else or of the wrong type."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    subject: str
    token_id: str
    token_type: TokenType
    issued_at: int
    expires_at: int
    family_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    claims: TokenClaims


class TokenService:
    def __init__(
        self,
        *,
        private_key: Ed25519PrivateKey,
        key_id: str,
        public_keys: dict[str, Ed25519PublicKey],
        issuer: str,
        audience: str,
        access_ttl: int,
        refresh_ttl: int,
    ) -> None:
        self._private_key = private_key
        self._key_id = key_id
        self._public_keys = dict(public_keys)
        self.issuer = issuer
        self.audience = audience
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl

    @property
    def public_keys(self) -> dict[str, Ed25519PublicKey]:
        return dict(self._public_keys)

    def issue(
        self,
        subject: str,
        token_type: TokenType,
        *,
        family_id: str | None = None,
        extra: dict[str, Any] | None = None,
        now: int | None = None,
    ) -> IssuedToken:
        issued = int(time.time()) if now is None else now
        is_access = token_type == "access"  # noqa: S105 - a token kind, not a secret
        ttl = self.access_ttl if is_access else self.refresh_ttl
        token_id = uuid.uuid4().hex
        payload: dict[str, Any] = {
            **(extra or {}),
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "iat": issued,
            "nbf": issued,
            "exp": issued + ttl,
            "jti": token_id,
            "typ": token_type,
        }
        if family_id is not None:
            payload["fam"] = family_id
        token = jwt.encode(
            payload, self._private_key, algorithm=ALGORITHM, headers={"kid": self._key_id}
        )
        claims = TokenClaims(subject, token_id, token_type, issued, issued + ttl, family_id)
        return IssuedToken(token, claims)

    def decode(self, token: str, expected: TokenType) -> TokenClaims:
        """Verify signature, algorithm, kid, iss, aud, exp/iat/nbf and the token type."""
        try:
            header = jwt.get_unverified_header(token)
            key = self._public_keys.get(str(header.get("kid")))
            if key is None or header.get("alg") != ALGORITHM:
                raise InvalidToken("unknown signing key or algorithm")
            payload = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "jti", "typ"]},
                leeway=LEEWAY_SECONDS,
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        if payload.get("typ") != expected:
            raise InvalidToken(f"not an {expected} token")
        family = payload.get("fam")
        if expected == "refresh" and not isinstance(family, str):
            raise InvalidToken("refresh token without a family")
        return TokenClaims(
            subject=str(payload["sub"]),
            token_id=str(payload["jti"]),
            token_type=expected,
            issued_at=int(payload["iat"]),
            expires_at=int(payload["exp"]),
            family_id=family if isinstance(family, str) else None,
            raw=payload,
        )


def _generate_private_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def token_service_from_settings(settings: Settings) -> TokenService:
    """Keys from settings; without them a dev keypair is generated once into data_dir."""
    if settings.jwt_private_key:
        private_pem = settings.jwt_private_key.encode()
    else:
        private_pem = load_or_create(
            settings.data_dir / "jwt_ed25519.pem", _generate_private_pem, "JWT signing key"
        )
    private_key = serialization.load_pem_private_key(private_pem, password=None)
    if not isinstance(private_key, Ed25519PrivateKey):
        raise ValueError("jwt_private_key must be an Ed25519 key (EdDSA is pinned)")
    public_key = private_key.public_key()
    if settings.jwt_public_key:
        configured = serialization.load_pem_public_key(settings.jwt_public_key.encode())
        if not isinstance(configured, Ed25519PublicKey):
            raise ValueError("jwt_public_key must be an Ed25519 key")
        public_key = configured
    return TokenService(
        private_key=private_key,
        key_id=settings.jwt_key_id,
        public_keys={settings.jwt_key_id: public_key},
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        access_ttl=settings.access_token_ttl_seconds,
        refresh_ttl=settings.refresh_token_ttl_seconds,
    )
