"""What handlers receive by dependency injection, and the one place that reads app state.

Every connection and service a handler uses arrives as a named Litestar dependency from
the ``dependencies`` mapping the app registers; no handler, socket or provider elsewhere
reads ``state``. The app's state holds exactly two objects: :class:`Services` (built from
the settings before serving, so a bad key fails fast) and :class:`Infrastructure`
(opened by the lifespan, closed at shutdown); :func:`_services` and :func:`_infra` are
their only readers.

Litestar 2.23+ wants injected parameters marked explicitly (inference goes away in 3.0);
the aliases below (``Db``, ``CurrentUser`` …) keep handler signatures short and readable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath
from motor.motor_asyncio import AsyncIOMotorClient
from nats.aio.client import Client as NATS
from odmantic import AIOEngine
from redis.asyncio import Redis

from apps.api.auth.ended import EndedSessions
from apps.api.auth.guards import bearer_token
from apps.api.auth.principals import Authenticator, Principal
from apps.api.auth.tokens import TokenClaims, TokenService
from apps.api.brokers.verification import BrokerVerifier
from apps.api.live import LiveRelay
from apps.api.signals.service import SignalIntake
from apps.core.credentials import CredentialsCipher
from apps.core.settings import Settings
from apps.core.topology import Topology
from apps.payments.provider import PaymentProvider


@dataclass(frozen=True, slots=True)
class Services:
    """Built once per app from settings (keys loaded), shared by every request."""

    tokens: TokenService
    cipher: CredentialsCipher
    verifier: BrokerVerifier
    # None when PAYMENTS=off: every plan is subscribed directly.
    payments: PaymentProvider | None = None


@dataclass(frozen=True, slots=True)
class Infrastructure:
    """The connections one API process holds and the long-lived objects bound to them,
    opened at start-up and closed at shutdown."""

    settings: Settings
    topology: Topology
    nats: NATS
    redis: Redis
    mongo: AsyncIOMotorClient[Any]
    db: AIOEngine
    authenticator: Authenticator
    live: LiveRelay
    intake: SignalIntake
    ended: EndedSessions


def app_state(services: Services) -> State:
    """The state the app starts with; the lifespan adds the infrastructure with
    :func:`keep_infrastructure`."""
    return State({"services": services})


def keep_infrastructure(state: State, infra: Infrastructure) -> None:
    state.infra = infra


def _infra(state: State) -> Infrastructure:
    infra: Infrastructure = state.infra
    return infra


def _services(state: State) -> Services:
    services: Services = state.services
    return services


def provide_infra(state: State) -> Infrastructure:
    return _infra(state)


def provide_db(state: State) -> AIOEngine:
    return _infra(state).db


def provide_redis(state: State) -> Redis:
    return _infra(state).redis


def provide_topology(state: State) -> Topology:
    return _infra(state).topology


def provide_settings(state: State) -> Settings:
    return _infra(state).settings


def provide_authenticator(state: State) -> Authenticator:
    return _infra(state).authenticator


def provide_live(state: State) -> LiveRelay:
    return _infra(state).live


def provide_ended(state: State) -> EndedSessions:
    return _infra(state).ended


def provide_intake(state: State) -> SignalIntake:
    return _infra(state).intake


def provide_tokens(state: State) -> TokenService:
    return _services(state).tokens


def provide_cipher(state: State) -> CredentialsCipher:
    return _services(state).cipher


def provide_verifier(state: State) -> BrokerVerifier:
    return _services(state).verifier


def provide_payments(state: State) -> PaymentProvider | None:
    return _services(state).payments


# Authentication is a dependency rather than a global middleware: a handler that takes a
# ``principal`` is protected, one that does not is public, and the route table says which.
async def provide_principal(
    request: Request[Any, Any, Any], authenticator: NamedDependency[Authenticator]
) -> Principal:
    return await authenticator.authenticate(bearer_token(request))


async def provide_viewer(
    request: Request[Any, Any, Any], authenticator: NamedDependency[Authenticator]
) -> Principal | None:
    """The caller of a public route that shows more to some callers: None without a
    token; a token that is sent must be valid (401 otherwise)."""
    token = bearer_token(request)
    return None if token is None else await authenticator.authenticate(token)


def provide_claims(
    request: Request[Any, Any, Any], authenticator: NamedDependency[Authenticator]
) -> TokenClaims:
    return authenticator.claims(bearer_token(request))


dependencies = {
    "infra": Provide(provide_infra, sync_to_thread=False),
    "db": Provide(provide_db, sync_to_thread=False),
    "redis": Provide(provide_redis, sync_to_thread=False),
    "topology": Provide(provide_topology, sync_to_thread=False),
    "settings": Provide(provide_settings, sync_to_thread=False),
    "tokens": Provide(provide_tokens, sync_to_thread=False),
    "cipher": Provide(provide_cipher, sync_to_thread=False),
    "verifier": Provide(provide_verifier, sync_to_thread=False),
    "payments": Provide(provide_payments, sync_to_thread=False),
    "authenticator": Provide(provide_authenticator, sync_to_thread=False),
    "live": Provide(provide_live, sync_to_thread=False),
    "intake": Provide(provide_intake, sync_to_thread=False),
    "ended": Provide(provide_ended, sync_to_thread=False),
    "principal": Provide(provide_principal),
    "viewer": Provide(provide_viewer),
    "claims": Provide(provide_claims, sync_to_thread=False),
}

Infra = NamedDependency[Infrastructure]
Db = NamedDependency[AIOEngine]
RedisClient = NamedDependency[Redis]
TopologyDep = NamedDependency[Topology]
SettingsDep = NamedDependency[Settings]
Tokens = NamedDependency[TokenService]
Payments = NamedDependency[PaymentProvider | None]
Intake = NamedDependency[SignalIntake]
Live = NamedDependency[LiveRelay]
Ended = NamedDependency[EndedSessions]
AuthenticatorDep = NamedDependency[Authenticator]
# How handlers ask for the caller: an explicit dependency (Litestar 3 drops inference).
CurrentUser = NamedDependency[Principal]
# The caller when there is one, on a public route (None: anonymous).
Viewer = NamedDependency[Principal | None]
# Only the verified token, for a handler that looks up the rest itself in its own round
# trip (signal intake reads the caller's facts together with the channel's ACL).
AccessClaims = NamedDependency[TokenClaims]
PathStr = FromPath[str]
