"""Who is calling: the access token → :class:`Principal`, and the role checks on it.

Authentication is a dependency rather than a global middleware: a handler that takes a
``principal`` is protected, one that does not is public, and the route table says which.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency

from apps.api.auth.principals import Authenticator, Principal, revoked_family_key
from apps.api.auth.tokens import TokenClaims
from apps.api.errors import Forbidden
from apps.api.models import Channel

__all__ = [
    "AccessClaims",
    "Authenticator",
    "CurrentUser",
    "Principal",
    "can_manage_channel",
    "can_signal_channel",
    "require_channel_manager",
    "revoked_family_key",
]

# How handlers ask for the caller: an explicit dependency (Litestar 3 drops inference).
CurrentUser = NamedDependency[Principal]
# Only the verified token, for a handler that looks up the rest itself in its own round
# trip (signal intake reads the caller's facts together with the channel's ACL).
AccessClaims = NamedDependency[TokenClaims]


def bearer_token(request: Request[Any, Any, Any]) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def provide_authenticator(state: State) -> Authenticator:
    authenticator: Authenticator = state.authenticator
    return authenticator


async def provide_principal(
    request: Request[Any, Any, Any], authenticator: NamedDependency[Authenticator]
) -> Principal:
    return await authenticator.authenticate(bearer_token(request))


def provide_claims(
    request: Request[Any, Any, Any], authenticator: NamedDependency[Authenticator]
) -> TokenClaims:
    return authenticator.claims(bearer_token(request))


# Role rules as plain functions, so the signal path (another domain) asks the same question.
def can_manage_channel(principal: Principal, channel: Channel) -> bool:
    """Edit, delete, delegate, see subscribers: the owner or an admin, never a delegate."""
    return principal.is_admin or channel.owner_id == principal.id


def can_signal_channel(principal: Principal, channel: Channel) -> bool:
    """Send signals: the owner, a delegated trader, or an admin."""
    return can_manage_channel(principal, channel) or principal.id in channel.delegates


def require_channel_manager(principal: Principal, channel: Channel) -> None:
    if not can_manage_channel(principal, channel):
        raise Forbidden("only the channel's owner may do this")
