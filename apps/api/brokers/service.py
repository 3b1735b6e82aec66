"""Broker accounts: verify credentials at the broker and store them sealed only once it
accepts them, verify again, re-link, delete.

Every account in the database was accepted by its broker when it was linked: creating one
asks the broker first and stores nothing it refused or could not be asked."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

from odmantic import AIOEngine
from odmantic.bson import Decimal128
from redis.asyncio import Redis

from apps.api.auth.guards import Principal
from apps.api.brokers.schemas import BrokerAccountCreate, BrokerAccountRelink
from apps.api.brokers.verification import (
    BrokerRejected,
    BrokerUnavailable,
    BrokerVerifier,
    UnsupportedBroker,
    VerifiedAccount,
)
from apps.api.channels.service import refresh_subscriber_counts
from apps.api.errors import (
    RETRY_AFTER_SECONDS,
    ApiError,
    BadGateway,
    BadRequest,
    Conflict,
    NotFound,
)
from apps.api.models import BrokerAccount, Subscription
from apps.api.subscriptions.projection import (
    drop_broker_account,
    write_broker_account,
    write_subscriptions,
)
from apps.core.credentials import (
    BrokerCredentials,
    CredentialsCipher,
    CredentialsError,
    SealedCredentials,
)
from apps.core.ids import new_id
from apps.core.relink import ACTIVE, paused_for_relink
from apps.core.topology import Topology


class BrokerRejectedCredentials(ApiError):
    status_code = 422
    code = "broker_rejected"


# An IQ Option ssid is 32 hex digits today; any plain alphanumeric run of a sane length
# is accepted so a format change at the broker does not lock users out.
_SSID = re.compile(r"^[A-Za-z0-9]{16,128}$")


def _credentials(data: BrokerAccountCreate) -> BrokerCredentials:
    given = data.credentials
    if data.kind == "deriv":
        if not given.token or given.login or given.password:
            raise BadRequest(
                "a Deriv account takes an API token",
                details=[{"key": "credentials", "message": "expected {token}"}],
            )
        if data.balance_type is not None:
            raise BadRequest(
                "a Deriv account has one balance; balance_type is for IQ Option accounts",
                details=[{"key": "balance_type", "message": "only for kind iqoption"}],
            )
        return BrokerCredentials(token=given.token)
    if given.token and not given.login and not given.password:
        if not _SSID.fullmatch(given.token):
            raise BadRequest(
                "an IQ Option ssid is 16 to 128 letters and digits",
                details=[{"key": "credentials.token", "message": "not an ssid"}],
            )
        return BrokerCredentials(token=given.token)
    if not given.login or not given.password or given.token:
        raise BadRequest(
            "an IQ Option account takes an e-mail and a password, or an ssid",
            details=[
                {"key": "credentials", "message": "give an e-mail and a password, or an ssid"}
            ],
        )
    return BrokerCredentials(login=given.login, password=given.password)


async def create(
    db: AIOEngine,
    redis: Redis,
    topology: Topology,
    cipher: CredentialsCipher,
    verifier: BrokerVerifier,
    principal: Principal,
    data: BrokerAccountCreate,
) -> BrokerAccount:
    """Link a broker account: the broker verifies the credentials first, and only an
    account it accepted is stored (sealed) and projected for the workers. A refusal
    (422 in the broker's words) or an unreachable broker (502 with Retry-After) stores
    nothing, so no account ever exists that could not trade."""
    credentials = _credentials(data)
    balance_type = (data.balance_type or "practice") if data.kind == "iqoption" else None
    verified = await _verified(verifier, data.kind, credentials, balance_type or "")
    account_id = new_id()
    sealed = cipher.seal(account_id, data.kind, credentials)
    now = datetime.now(UTC)
    account = BrokerAccount(
        id=account_id,
        owner_id=principal.id,
        kind=data.kind,
        label=data.label.strip(),
        currency=verified.currency.upper() or (data.currency.upper() if data.currency else None),
        balance=Decimal128(verified.balance),
        loginid=verified.loginid or None,
        balance_type=balance_type,
        ciphertext=sealed.ciphertext,
        nonce=sealed.nonce,
        key_id=sealed.key_id,
        verified_at=now,
        created_at=now,
    )
    account = await db.save(account)
    await write_broker_account(redis, topology, account)
    return account


async def list_own(db: AIOEngine, principal: Principal) -> list[BrokerAccount]:
    return list(
        await db.find(BrokerAccount, BrokerAccount.owner_id == principal.id, sort=BrokerAccount.id)
    )


async def get_owned(db: AIOEngine, principal: Principal, account_id: str) -> BrokerAccount:
    """Someone else's account is "not found", not "forbidden": ids reveal nothing."""
    account = await db.find_one(BrokerAccount, BrokerAccount.id == account_id)
    if account is None or not (principal.is_admin or account.owner_id == principal.id):
        raise NotFound("no such broker account")
    return account


async def delete(
    db: AIOEngine, redis: Redis, topology: Topology, principal: Principal, account_id: str
) -> None:
    """Deleting an account ends the subscriptions that trade on it (copying stops)."""
    account = await get_owned(db, principal, account_id)
    active = await db.find(
        Subscription,
        (Subscription.broker_account_id == account.id) & (Subscription.status == "active"),
    )
    now = datetime.now(UTC)
    for subscription in active:
        subscription.status = "cancelled"
        subscription.cancelled_at = now
        await db.save(subscription)
    await write_subscriptions(redis, topology, active, account)
    await refresh_subscriber_counts(db, {s.channel_id for s in active})
    await db.delete(account)
    await drop_broker_account(redis, topology, account.id)


async def verify(
    db: AIOEngine,
    redis: Redis,
    topology: Topology,
    cipher: CredentialsCipher,
    verifier: BrokerVerifier,
    principal: Principal,
    account_id: str,
) -> BrokerAccount:
    account = await get_owned(db, principal, account_id)
    try:
        credentials = cipher.open(
            account.id,
            account.kind,
            SealedCredentials(account.ciphertext, account.nonce, account.key_id),
        )
    except CredentialsError as exc:
        raise Conflict(
            "stored credentials cannot be read; add the account again",
            code="credentials_unreadable",
        ) from exc
    verified = await _verified(verifier, account.kind, credentials, account.balance_type or "")
    return await _accepted(db, redis, topology, account, verified)


async def _verified(
    verifier: BrokerVerifier, kind: str, credentials: BrokerCredentials, balance_type: str
) -> VerifiedAccount:
    """The broker's word on ``credentials``, its refusal or outage as the API's errors."""
    try:
        return await verifier.verify(kind, credentials, balance_type=balance_type)
    except UnsupportedBroker as exc:
        raise BadRequest(exc.message, code="broker_not_supported") from exc
    except BrokerRejected as exc:
        raise BrokerRejectedCredentials(exc.message, details={"broker_code": exc.code}) from exc
    except BrokerUnavailable as exc:
        wait = RETRY_AFTER_SECONDS if exc.retry_after is None else math.ceil(exc.retry_after)
        raise BadGateway(exc.message, headers={"Retry-After": str(wait)}) from exc


async def relink(
    db: AIOEngine,
    redis: Redis,
    topology: Topology,
    cipher: CredentialsCipher,
    verifier: BrokerVerifier,
    principal: Principal,
    account_id: str,
    data: BrokerAccountRelink,
) -> BrokerAccount:
    """New credentials for the account, stored only once the broker accepts them.

    The account becomes active, and the subscriptions paused because it needed
    re-linking resume (those the subscriber paused stay paused); the routing records and
    the workers' record are rewritten, so the next signal trades on the new credentials.
    """
    account = await get_owned(db, principal, account_id)
    credentials = _credentials(
        BrokerAccountCreate(kind=account.kind, label=account.label, credentials=data.credentials)
    )
    verified = await _verified(verifier, account.kind, credentials, account.balance_type or "")
    if account.loginid and verified.loginid and verified.loginid != account.loginid:
        # The account's trades and open contracts belong to its broker login.
        raise Conflict(
            f"these credentials open another broker account ({verified.loginid}), not "
            f"{account.loginid}: link it as a new broker account",
            code="other_broker_account",
        )
    sealed = cipher.seal(account.id, account.kind, credentials)
    account.ciphertext, account.nonce, account.key_id = (
        sealed.ciphertext,
        sealed.nonce,
        sealed.key_id,
    )
    return await _accepted(db, redis, topology, account, verified)


async def _accepted(
    db: AIOEngine,
    redis: Redis,
    topology: Topology,
    account: BrokerAccount,
    verified: VerifiedAccount,
) -> BrokerAccount:
    """The broker accepted the account's credentials: store what it said, make the account
    active, resume the subscriptions paused because it needed re-linking, and rewrite the
    workers' record before the routing records, so no order goes out on the old ones."""
    account.currency = verified.currency.upper() or account.currency
    account.balance = Decimal128(verified.balance)
    account.loginid = verified.loginid or account.loginid
    # After every refusal of the credentials replaced: the ledger ignores refusals before it.
    account.verified_at = datetime.now(UTC)
    account.status = ACTIVE
    account.relink_reason = ""
    account.relink_since = None
    await db.save(account)
    active = await db.find(
        Subscription,
        (Subscription.broker_account_id == account.id) & (Subscription.status == "active"),
    )
    for subscription in active:
        if subscription.paused and paused_for_relink(subscription.paused_reason):
            subscription.paused = False
            subscription.paused_reason = ""
            await db.save(subscription)
    await write_broker_account(redis, topology, account)
    # The currency is part of every routing record on this account.
    await write_subscriptions(redis, topology, active, account)
    return account
