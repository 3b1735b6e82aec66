"""Who is calling: the bearer token of a request, and the role checks on a principal.

The providers that turn the token into a :class:`Principal` live with every other
dependency in :mod:`apps.api.dependencies`.
"""

from __future__ import annotations

from typing import Any

from litestar import Request

from apps.api.auth.principals import Authenticator, Principal
from apps.api.errors import Forbidden
from apps.api.models import Channel

__all__ = [
    "Authenticator",
    "Principal",
    "bearer_token",
    "can_manage_channel",
    "can_signal_channel",
    "require_channel_manager",
]


def bearer_token(request: Request[Any, Any, Any]) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


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
