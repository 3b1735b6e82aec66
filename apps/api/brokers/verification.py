"""Verifying a broker account: the port, and the Deriv (API v3) implementation.

The broker adapters live elsewhere (apps/brokers); the API only needs "do these
credentials open an account, and in which currency with what balance", so it depends on
this small :class:`BrokerVerifier` protocol and tests can point it at any peer.
"""

from __future__ import annotations

import asyncio
import json
import logging
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

import msgspec
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from apps.core.brokers.deriv import (
    Authorized,
    AuthorizeRefused,
    AuthorizeUnreadable,
    authorize_request,
    read_authorize,
)
from apps.core.credentials import BrokerCredentials

log = logging.getLogger("api.brokers.verification")
# websockets logs every frame at DEBUG, and the authorize frame holds the token: its
# logger is pinned to INFO so no DEBUG configuration can ever print a credential.
_ws_log = logging.getLogger("api.brokers.verification.ws")
_ws_log.setLevel(logging.INFO)


class VerifiedAccount(msgspec.Struct, frozen=True, kw_only=True):
    currency: str
    balance: Decimal
    loginid: str


class VerificationError(Exception):
    """Base of the typed outcomes that are not a verified account."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class BrokerRejected(VerificationError):
    """The broker answered and said no (bad token, disabled account …)."""


class BrokerUnavailable(VerificationError):
    """The broker could not be reached or did not answer in time."""


class UnsupportedBroker(VerificationError):
    """Verification is not implemented for this broker kind (yet)."""


@runtime_checkable
class BrokerVerifier(Protocol):
    async def verify(self, kind: str, credentials: BrokerCredentials) -> VerifiedAccount: ...


class DerivVerifier:
    """`authorize` over Deriv's WebSocket API v3 (see /work/shared/brokers/deriv.md)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url
        self.timeout = timeout

    async def verify(self, kind: str, credentials: BrokerCredentials) -> VerifiedAccount:
        if kind != "deriv":
            raise UnsupportedBroker(f"verification for {kind!r} is not supported yet")
        if not credentials.token:
            raise BrokerRejected("a Deriv account needs an API token", code="InvalidToken")
        try:
            async with asyncio.timeout(self.timeout):
                reply = await self._authorize(credentials.token)
        except (OSError, TimeoutError, WebSocketException) as exc:
            # Only the exception type: its text could in theory echo the request.
            log.warning("deriv verification: broker unreachable (%s)", type(exc).__name__)
            raise BrokerUnavailable("the broker could not be reached, try again later") from exc
        match read_authorize(reply):
            case Authorized(loginid=loginid, currency=currency, balance=balance):
                return VerifiedAccount(currency=currency, balance=balance, loginid=loginid)
            case AuthorizeRefused(code=code, message=message):
                raise BrokerRejected(
                    message or "the broker rejected the credentials", code=code or "BrokerError"
                )
            case AuthorizeUnreadable(reason=reason):
                raise BrokerUnavailable(reason)

    async def _authorize(self, token: str) -> dict[str, Any]:
        async with connect(
            self.url, logger=_ws_log, open_timeout=self.timeout, max_size=2**20
        ) as ws:
            await ws.send(json.dumps(authorize_request(token) | {"req_id": 1}))
            while True:
                raw = await ws.recv()
                message = json.loads(raw, parse_float=Decimal)
                # Skip unrelated pushes; the answer carries our req_id back.
                if isinstance(message, dict) and message.get("req_id") == 1:
                    return message


class DefaultVerifier:
    """Dispatch by broker kind; IQ Option verification is not written yet."""

    def __init__(self, deriv: DerivVerifier) -> None:
        self.deriv = deriv

    async def verify(self, kind: str, credentials: BrokerCredentials) -> VerifiedAccount:
        if kind == "deriv":
            return await self.deriv.verify(kind, credentials)
        raise UnsupportedBroker(f"verification for {kind!r} accounts is not supported yet")
