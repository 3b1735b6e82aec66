"""Verifying a broker account: the port, and its Deriv (API v3) and IQ Option implementations.

The broker adapters live elsewhere (apps/brokers); the API only needs "do these
credentials open an account, and in which currency with what balance", so it depends on
this small :class:`BrokerVerifier` protocol and tests can point it at any peer.

Every outcome that is not a verified account is one of three typed errors with a
plain-language message: :class:`BrokerRejected` (the broker said no; linking again with
other credentials is the fix), :class:`BrokerUnavailable` (try again later, with when if
the broker said so) and :class:`UnsupportedBroker`. No secret (token, password, ssid)
reaches a log line: the libraries' frame and header logging is pinned below DEBUG and our
own lines name only exception types.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from decimal import Decimal
from typing import Any, Protocol, cast, runtime_checkable

import httpx
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
from apps.core.brokers.iqoption import (
    BALANCE_TYPES,
    BalanceType,
    LoggedIn,
    LoginLimited,
    LoginRefused,
    LoginUnreadable,
    Profile,
    ProfileAnswer,
    ProfileUnreadable,
    SsidRefused,
    TwoFactorRequired,
    login_form,
    read_login,
    read_profile,
    ssid_message,
)
from apps.core.credentials import BrokerCredentials

log = logging.getLogger("api.brokers.verification")
# websockets logs every frame at DEBUG, and the authorize frame holds the token: its
# logger is pinned to INFO so no DEBUG configuration can ever print a credential.
_ws_log = logging.getLogger("api.brokers.verification.ws")
_ws_log.setLevel(logging.INFO)
# httpcore traces every response's headers at DEBUG, and IQ Option's login answers with
# `Set-Cookie: ssid=…`: pinned to INFO for the same reason. (httpx itself logs the method,
# URL and status only, never a form body.)
logging.getLogger("httpcore").setLevel(logging.INFO)


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
    """The broker could not be reached, did not answer in time or asked us to wait
    (``retry_after`` seconds, when it said how long)."""

    def __init__(self, message: str, code: str = "", retry_after: float | None = None) -> None:
        super().__init__(message, code)
        self.retry_after = retry_after


class UnsupportedBroker(VerificationError):
    """Verification is not implemented for this broker kind (yet)."""


@runtime_checkable
class BrokerVerifier(Protocol):
    async def verify(
        self, kind: str, credentials: BrokerCredentials, *, balance_type: str = ""
    ) -> VerifiedAccount:
        """The account the credentials open; ``balance_type`` picks which of its
        balances is reported, for brokers with several (IQ Option)."""
        ...


class DerivVerifier:
    """`authorize` over Deriv's WebSocket API v3 (see /work/shared/brokers/deriv.md)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url
        self.timeout = timeout

    async def verify(
        self, kind: str, credentials: BrokerCredentials, *, balance_type: str = ""
    ) -> VerifiedAccount:
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


def _wait_text(seconds: float) -> str:
    """``seconds`` as people say it: "in 40 seconds", "in 32 minutes", "in 2 hours"."""
    whole = max(1, math.ceil(seconds))
    if whole == 1:
        return "in 1 second"
    if whole < 120:
        return f"in {whole} seconds"
    if whole < 2 * 3600:
        return f"in {math.ceil(whole / 60)} minutes"
    return f"in {math.ceil(whole / 3600)} hours"


class IQOptionVerifier:
    """IQ Option's HTTP login (skipped for an account linked with an ssid), then its
    WebSocket's ``ssid`` → ``profile`` (see /work/shared/brokers/iqoption.md).

    The reported account is the balance of the chosen type ("practice" or "real"): its
    currency and amount; ``loginid`` is the IQ Option user id. Answers are read by
    :mod:`apps.core.brokers.iqoption`, the same readers the IQ Option worker uses.
    """

    def __init__(self, login_url: str, ws_url: str, timeout: float = 10.0) -> None:
        self.login_url = login_url
        self.ws_url = ws_url
        self.timeout = timeout

    async def verify(
        self, kind: str, credentials: BrokerCredentials, *, balance_type: str = ""
    ) -> VerifiedAccount:
        if kind != "iqoption":
            raise UnsupportedBroker(f"verification for {kind!r} is not supported here")
        wanted = balance_type or "practice"
        if wanted not in BALANCE_TYPES:
            raise BrokerRejected(
                f"an IQ Option balance is 'practice' or 'real', not {wanted!r}",
                code="bad_balance_type",
            )
        try:
            async with asyncio.timeout(self.timeout):
                ssid = credentials.token or await self._login(credentials)
                profile_msg = await self._profile(ssid)
        except (OSError, TimeoutError, httpx.HTTPError, WebSocketException) as exc:
            # Only the exception type: its text could in theory echo the request.
            log.warning("iqoption verification: broker unreachable (%s)", type(exc).__name__)
            raise BrokerUnavailable(
                "IQ Option could not be reached, try again later", code="unreachable"
            ) from exc
        return self._account(read_profile(profile_msg), wanted, by_ssid=bool(credentials.token))

    async def _login(self, credentials: BrokerCredentials) -> str:
        if not credentials.login or not credentials.password:
            raise BrokerRejected(
                "an IQ Option account needs an e-mail and a password, or an ssid",
                code="credentials_refused",
            )
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
            response = await client.post(
                self.login_url, data=login_form(credentials.login, credentials.password)
            )
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        match read_login(response.status_code, body):
            case LoggedIn(ssid=ssid):
                return ssid
            case LoginRefused():
                raise BrokerRejected(
                    "IQ Option refused this e-mail and password; check them and link the "
                    "account again",
                    code="credentials_refused",
                )
            case TwoFactorRequired():
                raise BrokerRejected(
                    "this IQ Option account uses two-factor sign-in, which the copier cannot "
                    "answer; link it with an ssid instead",
                    code="two_factor_required",
                )
            case LoginLimited(ttl=ttl):
                raise BrokerUnavailable(
                    f"IQ Option is limiting sign-ins to this account; try again {_wait_text(ttl)}",
                    code="login_limited",
                    retry_after=ttl,
                )
            case LoginUnreadable(reason=reason):
                raise BrokerUnavailable(reason, code="unreadable")

    async def _profile(self, ssid: str) -> Any:
        """The ``msg`` of the ``profile`` that answers ``ssid`` (``False``: refused)."""
        async with connect(
            self.ws_url, logger=_ws_log, open_timeout=self.timeout, max_size=2**22
        ) as ws:
            await ws.send(json.dumps(ssid_message(ssid)))
            # Skip timeSync, heartbeats and any other push; a refused ssid is answered by
            # `profile: false` before the broker closes, so a close means unreachable.
            while True:
                message = json.loads(await ws.recv(), parse_float=Decimal)
                if isinstance(message, dict) and message.get("name") == "profile":
                    return message.get("msg")

    @staticmethod
    def _account(answer: ProfileAnswer, balance_type: str, *, by_ssid: bool) -> VerifiedAccount:
        match answer:
            case Profile(user_id=user_id) as profile:
                balance = profile.balance(cast(BalanceType, balance_type))
                if balance is None:
                    raise BrokerRejected(
                        f"this IQ Option account has no {balance_type} balance",
                        code="balance_missing",
                    )
                return VerifiedAccount(
                    currency=balance.currency, balance=balance.amount, loginid=str(user_id)
                )
            case SsidRefused() if by_ssid:
                raise BrokerRejected(
                    "IQ Option refused this ssid (it expired or was revoked); sign in to IQ "
                    "Option for a new one, or link the account with its e-mail and password",
                    code="credentials_refused",
                )
            case SsidRefused():
                raise BrokerUnavailable(
                    "IQ Option refused the session it had just opened; try again later",
                    code="session_refused",
                )
            case ProfileUnreadable(reason=reason):
                raise BrokerUnavailable(reason, code="unreadable")


class DefaultVerifier:
    """Dispatch by broker kind."""

    def __init__(self, deriv: DerivVerifier, iqoption: IQOptionVerifier) -> None:
        self.deriv = deriv
        self.iqoption = iqoption

    async def verify(
        self, kind: str, credentials: BrokerCredentials, *, balance_type: str = ""
    ) -> VerifiedAccount:
        match kind:
            case "deriv":
                return await self.deriv.verify(kind, credentials)
            case "iqoption":
                return await self.iqoption.verify(kind, credentials, balance_type=balance_type)
        raise UnsupportedBroker(f"verification for {kind!r} accounts is not supported")
