"""Every endpoint by every kind of caller, from the app's own route table.

The expectations are a table keyed by (method, path). The routes come from the app, so a
new endpoint without a row here fails `test_every_route_has_an_expectation` and the
matrix refuses to pass until someone decides who may call it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute

from apps.api.app import create_app
from apps.core.settings import Settings
from tests.fixtures.live_api import Api, User, unique_email

ANON, OWNER, DELEGATE, OTHER, SUBSCRIBER, ADMIN = (
    "anonymous",
    "owner",
    "delegate",
    "other_provider",
    "subscriber",
    "admin",
)
PERSONAS = (ANON, OWNER, DELEGATE, OTHER, SUBSCRIBER, ADMIN)
# Infrastructure and documentation routes: public by design, not part of the matrix.
NOT_IN_MATRIX_PREFIXES = ("/health", "/ready", "/schema", "/metrics")


@dataclass
class World:
    """One channel with a delegate and one subscriber copying it to their broker account."""

    actors: dict[str, User]
    channel_id: str
    account_id: str
    subscription_id: str
    signal_id: str
    token: str  # the broker token of the subscriber's account


Request = tuple[str, Any]  # (url, json body or None)
Builder = Callable[[Api, World, str], Awaitable[Request]]


def fixed(url: str, body: Any = None) -> Builder:
    async def build(api: Api, world: World, persona: str) -> Request:
        return url.format(w=world), body

    return build


async def register_body(api: Api, world: World, persona: str) -> Request:
    return "/api/v1/auth/register", {
        "email": unique_email("reg"),
        "password": "long enough password",
        "display_name": "New",
        "account_type": "subscriber",
    }


async def login_body(api: Api, world: World, persona: str) -> Request:
    email = world.actors[SUBSCRIBER if persona == ANON else persona].email
    return "/api/v1/auth/login", {"email": email, "password": "correct horse battery staple"}


async def refresh_body(api: Api, world: World, persona: str) -> Request:
    if persona == ANON:
        return "/api/v1/auth/refresh", None
    fresh = await api.login(world.actors[persona].email)
    return "/api/v1/auth/refresh", {"refresh_token": fresh.refresh_token}


async def link_body(api: Api, world: World, persona: str) -> Request:
    body = {"kind": "deriv", "label": "x", "credentials": {"token": world.token}}
    return "/api/v1/broker-accounts", body


async def relink_body(api: Api, world: World, persona: str) -> Request:
    path = f"/api/v1/broker-accounts/{world.account_id}/credentials"
    return path, {"credentials": {"token": world.token}}


async def subscribe_body(api: Api, world: World, persona: str) -> Request:
    account = (
        world.account_id
        if persona == ANON
        else await api.broker_account(world.actors[persona], token=world.token)
    )
    return f"/api/v1/channels/{world.channel_id}/subscriptions", {
        "broker_account_id": account,
        "stake_mode": "fixed",
        "stake": "1",
        "max_stake": "2",
    }


async def checkout_body(api: Api, world: World, persona: str) -> Request:
    url, body = await subscribe_body(api, world, persona)
    return url.removesuffix("/subscriptions") + "/checkout", body


def statuses(
    anon: int, owner: int, delegate: int, other: int, subscriber: int, admin: int
) -> dict[str, int]:
    return dict(zip(PERSONAS, (anon, owner, delegate, other, subscriber, admin), strict=True))


CHANNEL = "/api/v1/channels/{w.channel_id}"
SIGNAL = {"asset": "EURUSD", "direction": "CALL", "expiry_seconds": 60, "stake": "1"}
EXPECTED: dict[tuple[str, str], tuple[Builder, dict[str, int]]] = {
    ("POST", "/api/v1/auth/register"): (register_body, statuses(201, 201, 201, 201, 201, 201)),
    ("POST", "/api/v1/auth/login"): (login_body, statuses(200, 200, 200, 200, 200, 200)),
    ("POST", "/api/v1/auth/refresh"): (refresh_body, statuses(401, 200, 200, 200, 200, 200)),
    ("POST", "/api/v1/auth/logout"): (
        fixed("/api/v1/auth/logout"),
        statuses(401, 204, 204, 204, 204, 204),
    ),
    ("POST", "/api/v1/auth/logout-all"): (
        fixed("/api/v1/auth/logout-all"),
        statuses(401, 204, 204, 204, 204, 204),
    ),
    ("GET", "/api/v1/me"): (fixed("/api/v1/me"), statuses(401, 200, 200, 200, 200, 200)),
    ("POST", "/api/v1/channels"): (
        fixed("/api/v1/channels", {"name": "N", "plan": {"price": "1", "period_days": 7}}),
        statuses(401, 201, 201, 201, 403, 201),
    ),
    ("GET", "/api/v1/channels"): (
        fixed("/api/v1/channels"),
        statuses(200, 200, 200, 200, 200, 200),
    ),
    ("GET", "/api/v1/channels/{channel_id}"): (
        fixed(CHANNEL),
        statuses(200, 200, 200, 200, 200, 200),
    ),
    ("PATCH", "/api/v1/channels/{channel_id}"): (
        fixed(CHANNEL, {"name": "Renamed"}),
        statuses(401, 200, 403, 403, 403, 200),
    ),
    ("DELETE", "/api/v1/channels/{channel_id}"): (
        fixed(CHANNEL),
        statuses(401, 204, 403, 403, 403, 204),
    ),
    ("POST", "/api/v1/channels/{channel_id}/delegates"): (
        fixed(CHANNEL + "/delegates", {"email": "placeholder@example.test"}),
        statuses(401, 201, 403, 403, 403, 201),
    ),
    ("DELETE", "/api/v1/channels/{channel_id}/delegates/{user_id}"): (
        fixed(CHANNEL + "/delegates/{w.actors[delegate].id}"),
        statuses(401, 204, 403, 403, 403, 204),
    ),
    ("GET", "/api/v1/channels/{channel_id}/delegates"): (
        fixed(CHANNEL + "/delegates"),
        statuses(401, 200, 403, 403, 403, 200),
    ),
    ("GET", "/api/v1/me/channels"): (
        fixed("/api/v1/me/channels"),
        statuses(401, 200, 200, 200, 200, 200),
    ),
    ("GET", "/api/v1/channels/{channel_id}/subscribers"): (
        fixed(CHANNEL + "/subscribers"),
        statuses(401, 200, 403, 403, 403, 200),
    ),
    ("POST", "/api/v1/channels/{channel_id}/subscriptions"): (
        subscribe_body,
        statuses(401, 409, 201, 201, 201, 201),
    ),
    ("GET", "/api/v1/subscriptions"): (
        fixed("/api/v1/subscriptions"),
        statuses(401, 200, 200, 200, 200, 200),
    ),
    ("PATCH", "/api/v1/subscriptions/{subscription_id}"): (
        fixed("/api/v1/subscriptions/{w.subscription_id}", {"paused": True}),
        statuses(401, 404, 404, 404, 200, 200),
    ),
    ("DELETE", "/api/v1/subscriptions/{subscription_id}"): (
        fixed("/api/v1/subscriptions/{w.subscription_id}"),
        statuses(401, 404, 404, 404, 204, 204),
    ),
    ("POST", "/api/v1/broker-accounts"): (
        link_body,
        statuses(401, 201, 201, 201, 201, 201),
    ),
    ("GET", "/api/v1/broker-accounts"): (
        fixed("/api/v1/broker-accounts"),
        statuses(401, 200, 200, 200, 200, 200),
    ),
    ("DELETE", "/api/v1/broker-accounts/{account_id}"): (
        fixed("/api/v1/broker-accounts/{w.account_id}"),
        statuses(401, 404, 404, 404, 204, 204),
    ),
    ("POST", "/api/v1/broker-accounts/{account_id}/verify"): (
        fixed("/api/v1/broker-accounts/{w.account_id}/verify"),
        statuses(401, 404, 404, 404, 200, 200),
    ),
    ("PUT", "/api/v1/broker-accounts/{account_id}/credentials"): (
        relink_body,
        statuses(401, 404, 404, 404, 200, 200),
    ),
    ("POST", "/api/v1/channels/{channel_id}/signals"): (
        fixed(CHANNEL + "/signals", SIGNAL),
        statuses(401, 202, 202, 403, 403, 202),
    ),
    # Public: expired signals to everyone, the current ones to owner, delegates, admins
    # and active subscribers (tests/integration/accounts/test_track_record_api.py).
    ("GET", "/api/v1/channels/{channel_id}/signals"): (
        fixed(CHANNEL + "/signals"),
        statuses(200, 200, 200, 200, 200, 200),
    ),
    ("GET", "/api/v1/channels/{channel_id}/track-record"): (
        fixed(CHANNEL + "/track-record"),
        statuses(200, 200, 200, 200, 200, 200),
    ),
    ("GET", "/api/v1/signals/{signal_id}"): (
        fixed("/api/v1/signals/{w.signal_id}"),
        statuses(401, 200, 200, 404, 404, 200),
    ),
    ("GET", "/api/v1/orders"): (fixed("/api/v1/orders"), statuses(401, 200, 200, 200, 200, 200)),
    # Notifications are each user's own: anyone signed in, nobody else's.
    ("GET", "/api/v1/me/notifications/preferences"): (
        fixed("/api/v1/me/notifications/preferences"),
        statuses(401, 200, 200, 200, 200, 200),
    ),
    ("PUT", "/api/v1/me/notifications/preferences"): (
        fixed("/api/v1/me/notifications/preferences", {"digest": "hourly"}),
        statuses(401, 200, 200, 200, 200, 200),
    ),
    ("GET", "/api/v1/me/notifications"): (
        fixed("/api/v1/me/notifications"),
        statuses(401, 200, 200, 200, 200, 200),
    ),
    ("POST", "/api/v1/me/notifications/read"): (
        fixed("/api/v1/me/notifications/read", {}),
        statuses(401, 200, 200, 200, 200, 200),
    ),
    ("POST", "/api/v1/me/notifications/telegram/link"): (
        fixed("/api/v1/me/notifications/telegram/link"),
        statuses(401, 201, 201, 201, 201, 201),
    ),
    ("DELETE", "/api/v1/me/notifications/telegram"): (
        fixed("/api/v1/me/notifications/telegram"),
        statuses(401, 204, 204, 204, 204, 204),
    ),
    ("GET", "/api/v1/orders.csv"): (
        fixed("/api/v1/orders.csv"),
        statuses(401, 200, 200, 200, 200, 200),
    ),
    # Payments are off in this world (every plan is subscribed directly): checkout and the
    # webhook answer so; tests/integration/payments covers them with payments on.
    ("POST", "/api/v1/channels/{channel_id}/checkout"): (
        checkout_body,
        statuses(401, 409, 409, 409, 409, 409),
    ),
    ("POST", "/api/v1/payments/stripe/webhook"): (
        fixed("/api/v1/payments/stripe/webhook", {"id": "evt_1"}),
        statuses(409, 409, 409, 409, 409, 409),
    ),
    ("POST", "/api/v1/subscriptions/{subscription_id}/cancel"): (
        fixed("/api/v1/subscriptions/{w.subscription_id}/cancel"),
        statuses(401, 404, 404, 404, 200, 200),
    ),
    ("GET", "/api/v1/me/revenue"): (
        fixed("/api/v1/me/revenue"),
        statuses(401, 200, 200, 200, 403, 200),
    ),
    ("GET", "/api/v1/me/receipts"): (
        fixed("/api/v1/me/receipts"),
        statuses(401, 200, 200, 200, 200, 200),
    ),
}


# Successful calls that only add something new and leave the world's channel, delegate,
# broker account and subscription as they were.
ONLY_ADDS = {
    ("POST", "/api/v1/auth/register"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/refresh"),
    ("POST", "/api/v1/auth/logout"),
    ("POST", "/api/v1/channels"),
    ("POST", "/api/v1/broker-accounts"),
    ("POST", "/api/v1/channels/{channel_id}/subscriptions"),
    ("POST", "/api/v1/channels/{channel_id}/signals"),
}


def route_table(app: Litestar) -> set[tuple[str, str]]:
    """(method, path) of every HTTP endpoint the app serves, path params without types."""
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path.startswith(NOT_IN_MATRIX_PREFIXES):
            continue
        path = route.path_format
        for handler in route.route_handlers:
            if handler.opt.get("static_site"):  # the dashboard's files: public by design
                continue
            for method in handler.http_methods:
                if method not in {"OPTIONS", "HEAD"}:
                    found.add((method, path))
    return found


def test_every_route_has_an_expectation(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    routes = route_table(app)
    assert routes - EXPECTED.keys() == set(), "add these routes to the authorization matrix"
    assert EXPECTED.keys() - routes == set(), "these expectations name no route"


@pytest.fixture
def accounts_settings(accounts_settings: Settings) -> Settings:
    # The matrix logs in far more often than a person would; rate limits are tested apart.
    return replace(
        accounts_settings,
        auth_attempts_per_minute_per_ip=10_000,
        auth_attempts_per_minute_per_account=10_000,
    )


async def build_world(api: Api, actors: dict[str, User]) -> World:
    channel_id = await api.channel(actors[OWNER])
    added = await api.client.post(
        f"/api/v1/channels/{channel_id}/delegates",
        json={"email": actors[DELEGATE].email},
        headers=actors[OWNER].headers,
    )
    assert added.status_code == 201, added.text
    assert api.broker is not None
    token = await api.broker.token()
    account_id = await api.broker_account(actors[SUBSCRIBER], token=token)
    subscription_id = await api.subscribe(actors[SUBSCRIBER], channel_id, account_id)
    sent = await api.client.post(
        f"/api/v1/channels/{channel_id}/signals", json=SIGNAL, headers=actors[OWNER].headers
    )
    assert sent.status_code == 202, sent.text
    return World(actors, channel_id, account_id, subscription_id, sent.json()["signal_id"], token)


async def test_authorization_matrix(api: Api, app: Litestar) -> None:
    assert route_table(app) == EXPECTED.keys()
    actors = {
        OWNER: await api.user("provider", "owner"),
        DELEGATE: await api.user("provider", "delegate"),
        OTHER: await api.user("provider", "other"),
        SUBSCRIBER: await api.user("subscriber", "subscriber"),
        ADMIN: await api.admin(),
    }
    world = await build_world(api, actors)
    mismatches = []
    for (method, path), (build, expected) in sorted(EXPECTED.items()):
        for persona in PERSONAS:
            url, body = await build(api, world, persona)
            if path.endswith("/delegates") and method == "POST":
                body = {"email": actors[OTHER].email}
            headers = {}
            if persona != ANON:
                session = actors[persona]
                if path in {"/api/v1/auth/logout", "/api/v1/auth/logout-all"}:
                    # Logging out ends the session; use a throwaway one.
                    session = await api.login(session.email)
                headers = session.headers
            response = await api.client.request(method, url, json=body, headers=headers)
            if path == "/api/v1/auth/logout-all" and persona != ANON:
                # Every session of this persona ended, the world's own included.
                actors[persona] = await api.login(actors[persona].email)
                world.actors[persona] = actors[persona]
            if response.status_code != expected[persona]:
                mismatches.append((method, path, persona, expected[persona], response.status_code))
            if response.status_code >= 400:
                assert set(response.json()) == {"error"}, response.text
            elif method != "GET" and (method, path) not in ONLY_ADDS:
                # It changed or deleted part of the world: the next cell gets a fresh one.
                world = await build_world(api, actors)
    assert mismatches == []
