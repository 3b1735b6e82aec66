"""The API's application factory: HTTP + WebSocket front door of the copier."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, get
from litestar.config.cors import CORSConfig
from litestar.response import Response
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from apps.api.auth.ended import EndedSessions
from apps.api.auth.principals import Authenticator
from apps.api.auth.routes import auth_router
from apps.api.auth.tokens import token_service_from_settings
from apps.api.bodies import StrictJsonRequest
from apps.api.brokers.routes import broker_router
from apps.api.brokers.verification import (
    BrokerVerifier,
    DefaultVerifier,
    DerivVerifier,
    IQOptionVerifier,
)
from apps.api.channels.routes import channel_router, my_channel_router
from apps.api.dependencies import (
    Infra,
    Infrastructure,
    Services,
    app_state,
    dependencies,
    keep_infrastructure,
)
from apps.api.errors import exception_handlers
from apps.api.frontend import DIST, frontend_router
from apps.api.live import LiveRelay
from apps.api.models import ALL_MODELS
from apps.api.notifications.routes import notification_router
from apps.api.openapi import MoneySchema, document_routes, openapi_config
from apps.api.payments.routes import payment_router
from apps.api.payments.service import run_sweeper
from apps.api.signals.routes import signal_router
from apps.api.signals.service import SignalIntake
from apps.api.subscriptions.routes import subscription_router
from apps.api.trades.routes import trade_router
from apps.core import metrics
from apps.core.brokers.deriv import endpoint_url
from apps.core.credentials import cipher_from_settings
from apps.core.db import connect_db
from apps.core.nats import NatsSetupError, close_nats, connect_from, ensure_topology
from apps.core.records import SignalRecord
from apps.core.redis import REQUEST_RETRIES, connect_redis_from
from apps.core.settings import Settings
from apps.core.topology import Topology
from apps.payments import keys as payment_keys
from apps.payments.provider import StripeProvider

log = logging.getLogger("api")


@get("/health", sync_to_thread=False, include_in_schema=False)
def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@get("/metrics", include_in_schema=False)
async def metrics_page(infra: Infra) -> Response[bytes]:
    """This API process's Prometheus metrics, in the text exposition format."""
    if not infra.settings.metrics_enabled:
        return Response(b"metrics are disabled (METRICS_ENABLED)\n", status_code=404)
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)


@get("/ready", include_in_schema=False)
async def ready(infra: Infra) -> Response[dict[str, Any]]:
    """Readiness: NATS, Redis and MongoDB all answer right now."""
    checks = dict(
        zip(
            ("nats", "redis", "mongodb"),
            await asyncio.gather(_nats_ok(infra), _redis_ok(infra), _mongo_ok(infra)),
            strict=True,
        )
    )
    ok = all(checks.values())
    return Response(
        {"status": "ready" if ok else "not ready", "checks": checks},
        status_code=HTTP_200_OK if ok else HTTP_503_SERVICE_UNAVAILABLE,
    )


async def _nats_ok(infra: Infrastructure) -> bool:
    if not infra.nats.is_connected:
        return False
    try:
        await asyncio.wait_for(infra.nats.flush(), 1)
    except Exception:
        return False
    return True


async def _redis_ok(infra: Infrastructure) -> bool:
    try:
        return bool(await asyncio.wait_for(infra.redis.ping(), 1))
    except Exception:
        return False


async def _mongo_ok(infra: Infrastructure) -> bool:
    try:
        reply = await asyncio.wait_for(infra.mongo.admin.command("ping"), 1.5)
    except Exception:
        return False
    return bool(reply.get("ok"))


def payment_provider(settings: Settings) -> StripeProvider | None:
    """Stripe (or its stand-in) unless PAYMENTS=off; its keys are loaded (or, in
    development, generated) before serving."""
    if settings.payments == "off":
        return None
    if settings.payments != "stripe":
        raise ValueError(f"PAYMENTS={settings.payments!r}: use stripe or off")
    return StripeProvider(
        settings.stripe_api_endpoint,
        payment_keys.secret_key(settings),
        payment_keys.webhook_secret(settings),
    )


def create_app(
    settings: Settings | None = None, *, verifier: BrokerVerifier | None = None
) -> Litestar:
    settings = settings or Settings.from_env()
    # Keys are loaded (or, in development, generated) before serving: a bad key fails fast.
    services = Services(
        tokens=token_service_from_settings(settings),
        cipher=cipher_from_settings(settings),
        verifier=verifier
        or DefaultVerifier(
            DerivVerifier(
                endpoint_url(settings.deriv_endpoint, settings.deriv_app_id),
                settings.broker_verify_timeout_seconds,
            ),
            IQOptionVerifier(
                settings.iqoption_login_endpoint,
                settings.iqoption_ws_endpoint,
                settings.broker_verify_timeout_seconds,
            ),
        ),
        payments=payment_provider(settings),
    )

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        nc = await connect_from(settings, "copier-api")
        mongo, db = connect_db(settings.mongodb_uri, settings.mongodb_database)
        redis = connect_redis_from(settings, retries=REQUEST_RETRIES)
        try:
            await db.configure_database([*ALL_MODELS, SignalRecord])  # type: ignore[arg-type]
        except Exception:
            # /ready reports a MongoDB that is down; indexes are created on the next start.
            log.warning("could not create MongoDB indexes", exc_info=True)
        topology = Topology(settings.namespace)
        try:
            await ensure_topology(nc, topology, replicas=settings.nats_replicas)
        except NatsSetupError as exc:
            # /ready reports it; signal intake answers 503 until the streams exist.
            log.warning("%s", exc)
        except Exception:
            # /ready reports it; signal intake answers 503 until the streams exist.
            log.warning("could not declare the JetStream topology", exc_info=True)
        authenticator = Authenticator(services.tokens, db, redis, topology)
        live = LiveRelay(nc, redis, topology)
        ended = EndedSessions(nc, topology)
        intake = SignalIntake(settings, topology, nc, redis, db, authenticator, live)
        keep_infrastructure(
            app.state,
            Infrastructure(
                settings, topology, nc, redis, mongo, db, authenticator, live, intake, ended
            ),
        )
        await live.start()
        await ended.start()
        sweeper = (
            asyncio.create_task(run_sweeper(db, redis, topology, settings.payment_sweep_seconds))
            if services.payments is not None
            else None
        )
        try:
            yield
        finally:
            if sweeper is not None:
                sweeper.cancel()
            if isinstance(services.payments, StripeProvider):
                await services.payments.aclose()
            await live.stop()
            await ended.stop()
            await close_nats(nc)
            await redis.aclose()
            mongo.close()

    handlers: list[Any] = [
        health,
        ready,
        metrics_page,
        auth_router,
        channel_router,
        my_channel_router,
        broker_router,
        subscription_router,
        signal_router,
        trade_router,
        payment_router,
        notification_router,
    ]
    if (DIST / "index.html").is_file():
        handlers.append(frontend_router())
    app = Litestar(
        route_handlers=handlers,
        # Logging is the process's (core.logging.setup_logging, in LOG_FORMAT): Litestar's
        # own configuration would replace its handlers with a format of its own.
        logging_config=None,
        # A dashboard deployed on a CDN calls the API from another origin; only the
        # configured origins may, with the refresh cookie.
        cors_config=CORSConfig(
            allow_origins=settings.allowed_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            allow_credentials=True,
            max_age=600,
        ),
        dependencies=dependencies,
        exception_handlers=exception_handlers,
        lifespan=[lifespan],
        state=app_state(services),
        openapi_config=openapi_config,
        plugins=[MoneySchema()],
        request_class=StrictJsonRequest,
        # Bodies here are small JSON documents; refuse anything bigger before parsing it.
        request_max_body_size=64 * 1024,
        debug=False,
    )
    document_routes(app)
    return app
