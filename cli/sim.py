"""`copier sim <broker>`: run a local broker simulator that speaks the real protocol."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)


@app.command()
def deriv(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for the WebSocket and admin API.")] = 8701,
    config: Annotated[
        Path | None,
        typer.Option(help="JSON file with accounts, symbols and limits.", exists=True),
    ] = None,
    time_scale: Annotated[
        float | None, typer.Option(help="Run contracts this many times faster.")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Keep accounts and contracts here across restarts (default: memory)."),
    ] = None,
) -> None:
    """Deriv API v3 simulator on ws://HOST:PORT/websockets/v3 (admin API on /admin)."""
    # Imported here so `copier --help` does not pay for uvicorn's import.
    from apps.brokers.deriv.simulator import load_config, serve_forever

    settings = load_config(config)
    if time_scale is not None:
        settings.time_scale = time_scale
    asyncio.run(serve_forever(settings, host, port, data_dir))


@app.command()
def iqoption(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="Port for the login, the WebSocket and the admin API.")
    ] = 8702,
    config: Annotated[
        Path | None,
        typer.Option(help="JSON file with actives, payout and timing.", exists=True),
    ] = None,
    time_scale: Annotated[
        float | None, typer.Option(help="Run options this many times faster.")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Keep accounts and options here across restarts (default: memory)."),
    ] = None,
) -> None:
    """IQ Option simulator: login on http://HOST:PORT/api/v2/login, WebSocket on
    ws://HOST:PORT/echo/websocket (admin API on /admin)."""
    from apps.brokers.iqoption.simulator import load_config, serve_forever

    settings = load_config(config)
    if time_scale is not None:
        settings.time_scale = time_scale
    asyncio.run(serve_forever(settings, host, port, data_dir))


@app.command()
def stripe(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[
        int | None, typer.Option(help="Port for the API, the pages and the admin API.")
    ] = None,
) -> None:
    """Stripe stand-in: Checkout Sessions, Subscriptions and Invoices on http://HOST:PORT/v1,
    the hosted checkout page, signed webhooks to STRIPE_SIM_WEBHOOK_URL (admin API on
    /admin). Keys: STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET, or DATA_DIR's dev keys."""
    from apps.core.settings import Settings
    from apps.payments.stripe_sim.server import serve_forever

    settings = Settings.from_env()
    serve_forever(host, port or settings.stripe_sim_port, settings)


@app.command()
def telegram(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[
        int | None, typer.Option(help="Port for the Bot API and the admin API.")
    ] = None,
) -> None:
    """Telegram Bot API stand-in on http://HOST:PORT/bot<token>/<method> (getMe,
    getUpdates, sendMessage; admin API on /admin: inject a user's message, read what the
    bot sent). Token: TELEGRAM_BOT_TOKEN, or the development token `copier up` uses."""
    from apps.core.settings import Settings
    from apps.notifier.telegram_sim.server import DEV_TOKEN, serve_forever

    settings = Settings.from_env()
    serve_forever(
        host, port or settings.telegram_sim_port, settings.telegram_bot_token or DEV_TOKEN
    )
