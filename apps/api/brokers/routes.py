"""/api/v1/broker-accounts."""

from __future__ import annotations

from litestar import Router, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from apps.api.brokers import service
from apps.api.brokers.schemas import BrokerAccountCreate, BrokerAccountRelink, BrokerAccountView
from apps.api.brokers.verification import BrokerVerifier
from apps.api.dependencies import CurrentUser, Db, PathStr, RedisClient, TopologyDep
from apps.api.models import BrokerAccount, optional_decimal
from apps.api.openapi import errors
from apps.core.credentials import CredentialsCipher


def account_view(account: BrokerAccount) -> BrokerAccountView:
    return BrokerAccountView(
        id=account.id,
        kind=account.kind,
        label=account.label,
        currency=account.currency,
        balance=optional_decimal(account.balance),
        loginid=account.loginid,
        balance_type=account.balance_type,
        verified_at=account.verified_at,
        status=account.status,
        relink_reason=account.relink_reason,
        relink_since=account.relink_since,
        created_at=account.created_at,
    )


@post("/", status_code=HTTP_201_CREATED, responses=errors(403, 422, 502))
async def create_broker_account(
    data: JSONBody[BrokerAccountCreate],
    principal: CurrentUser,
    db: Db,
    redis: RedisClient,
    topology: TopologyDep,
    cipher: NamedDependency[CredentialsCipher],
    verifier: NamedDependency[BrokerVerifier],
) -> BrokerAccountView:
    """Link an account: saved only once the broker accepts the credentials (422 with the
    broker's reason when it refuses, 502 with Retry-After when it cannot be reached)."""
    account = await service.create(db, redis, topology, cipher, verifier, principal, data)
    return account_view(account)


@get("/")
async def list_broker_accounts(principal: CurrentUser, db: Db) -> list[BrokerAccountView]:
    return [account_view(a) for a in await service.list_own(db, principal)]


@delete("/{account_id:str}", status_code=HTTP_204_NO_CONTENT, responses=errors(404, 409))
async def delete_broker_account(
    account_id: PathStr, principal: CurrentUser, db: Db, redis: RedisClient, topology: TopologyDep
) -> None:
    await service.delete(db, redis, topology, principal, account_id)


@post("/{account_id:str}/verify", status_code=HTTP_200_OK, responses=errors(404, 409, 502))
async def verify_broker_account(
    account_id: PathStr,
    principal: CurrentUser,
    db: Db,
    redis: RedisClient,
    topology: TopologyDep,
    cipher: NamedDependency[CredentialsCipher],
    verifier: NamedDependency[BrokerVerifier],
) -> BrokerAccountView:
    account = await service.verify(db, redis, topology, cipher, verifier, principal, account_id)
    return account_view(account)


@put("/{account_id:str}/credentials", responses=errors(404, 409, 422, 502))
async def relink_broker_account(
    account_id: PathStr,
    data: JSONBody[BrokerAccountRelink],
    principal: CurrentUser,
    db: Db,
    redis: RedisClient,
    topology: TopologyDep,
    cipher: NamedDependency[CredentialsCipher],
    verifier: NamedDependency[BrokerVerifier],
) -> BrokerAccountView:
    """Replace the account's credentials once the broker accepts them: the account is
    active again and the subscriptions paused because it needed re-linking resume."""
    account = await service.relink(
        db, redis, topology, cipher, verifier, principal, account_id, data
    )
    return account_view(account)


broker_router = Router(
    path="/api/v1/broker-accounts",
    route_handlers=[
        create_broker_account,
        list_broker_accounts,
        delete_broker_account,
        verify_broker_account,
        relink_broker_account,
    ],
    tags=["broker accounts"],
)
