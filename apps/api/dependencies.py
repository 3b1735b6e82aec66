"""Dependency providers: handlers receive connections and services, never import globals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from litestar.datastructures import State
from litestar.di import Provide
from odmantic import AIOEngine
from redis.asyncio import Redis

from apps.api.auth.guards import provide_authenticator, provide_claims, provide_principal
from apps.api.auth.tokens import TokenService
from apps.api.brokers.verification import BrokerVerifier
from apps.core.credentials import CredentialsCipher
from apps.core.settings import Settings
from apps.core.topology import Topology

if TYPE_CHECKING:
    from apps.api.app import Infrastructure


@dataclass(frozen=True, slots=True)
class Services:
    """Built once per app from settings (keys loaded), shared by every request."""

    tokens: TokenService
    cipher: CredentialsCipher
    verifier: BrokerVerifier


def _infra(state: State) -> Infrastructure:
    infra: Infrastructure = state.infra
    return infra


def _services(state: State) -> Services:
    services: Services = state.services
    return services


def provide_db(state: State) -> AIOEngine:
    return _infra(state).db


def provide_redis(state: State) -> Redis:
    return _infra(state).redis


def provide_topology(state: State) -> Topology:
    return _infra(state).topology


def provide_settings(state: State) -> Settings:
    return _infra(state).settings


def provide_tokens(state: State) -> TokenService:
    return _services(state).tokens


def provide_cipher(state: State) -> CredentialsCipher:
    return _services(state).cipher


def provide_verifier(state: State) -> BrokerVerifier:
    return _services(state).verifier


dependencies = {
    "db": Provide(provide_db, sync_to_thread=False),
    "redis": Provide(provide_redis, sync_to_thread=False),
    "topology": Provide(provide_topology, sync_to_thread=False),
    "settings": Provide(provide_settings, sync_to_thread=False),
    "tokens": Provide(provide_tokens, sync_to_thread=False),
    "cipher": Provide(provide_cipher, sync_to_thread=False),
    "verifier": Provide(provide_verifier, sync_to_thread=False),
    "authenticator": Provide(provide_authenticator, sync_to_thread=False),
    "principal": Provide(provide_principal),
    "claims": Provide(provide_claims, sync_to_thread=False),
}
