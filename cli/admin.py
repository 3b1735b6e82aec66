"""Ops commands for accounts: rebuild the Redis routing projection, create an admin."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from apps.core.settings import Settings
from apps.core.topology import Topology
from cli.output import CliError

if TYPE_CHECKING:
    from apps.api.subscriptions.projection import RebuildReport

# The API's modules (Litestar, odmantic) are imported inside the commands that use them:
# importing them here would add seconds to every `copier` invocation.

console = Console(highlight=False)


async def _sync_redis(settings: Settings) -> RebuildReport:
    from apps.api.subscriptions.projection import rebuild_all
    from apps.core.db import connect_db
    from apps.core.redis import connect_redis_from

    mongo, db = connect_db(settings.mongodb_uri, settings.mongodb_database)
    redis = connect_redis_from(settings)
    try:
        return await rebuild_all(db, redis, Topology(settings.namespace))
    finally:
        await redis.aclose()
        mongo.close()


def sync_redis() -> None:
    """Rebuild every channel's routing hash in Redis from MongoDB (the source of truth)."""
    report = asyncio.run(_sync_redis(Settings.from_env()))
    console.print(
        f"routing rebuilt: {report.channels} channels, {report.subscriptions} active "
        f"subscriptions, {report.stale_keys_removed} stale keys removed"
    )


async def _create_admin(settings: Settings, email: str, password: str, name: str) -> str:
    from apps.api.auth.service import create_user
    from apps.api.models import ALL_MODELS
    from apps.core.db import connect_db

    mongo, db = connect_db(settings.mongodb_uri, settings.mongodb_database)
    try:
        await db.configure_database(list(ALL_MODELS))  # type: ignore[arg-type]
        user = await create_user(
            db,
            email=email,
            password=password,
            display_name=name,
            account_type="provider",
            is_admin=True,
        )
        return user.id
    finally:
        mongo.close()


def create_admin(
    email: Annotated[str, typer.Option(help="The admin's login e-mail.")],
    display_name: Annotated[str, typer.Option(help="Name shown in the dashboard.")] = "Admin",
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)
    ] = "",
) -> None:
    """Create an admin account (the public register endpoint never makes admins)."""
    if len(password) < 8:
        raise typer.BadParameter("use at least 8 characters", param_hint="--password")
    from apps.api.errors import ApiError

    try:
        user_id = asyncio.run(_create_admin(Settings.from_env(), email, password, display_name))
    except ApiError as exc:
        raise CliError(exc.message) from exc
    console.print(f"admin {email} created ({user_id})")


def register(app: typer.Typer) -> None:
    """Attach the admin commands to the top-level app."""
    app.command("sync-redis")(sync_redis)
    app.command("create-admin")(create_admin)
