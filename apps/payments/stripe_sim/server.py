"""The Stripe stand-in's HTTP server: Stripe's API, the hosted pages, the admin API.

Stripe's API (``Authorization: Bearer <secret key>``, form-encoded bodies, JSON answers,
errors as ``{"error": {"type", "message"}}``):

- ``POST /v1/checkout/sessions``, ``GET /v1/checkout/sessions/{id}``
- ``GET``/``POST``/``DELETE /v1/subscriptions/{id}`` (POST: ``cancel_at_period_end``)
- ``GET /v1/invoices/{id}``

Hosted pages (what the customer's browser sees): ``GET /c/pay/{session}`` a form with
"Pay" and "Cancel"; its POST completes the session and redirects (303) to the
session's ``success_url`` (``{CHECKOUT_SESSION_ID}`` filled in) or to its ``cancel_url``;
``GET /i/{invoice}`` the receipt.

Admin (no auth; the stand-in listens on loopback): ``GET /health``; ``GET``/``PUT
/admin/webhook`` {url, secret}; ``GET /admin/events`` every event with its deliveries;
``GET /admin/subscriptions``; ``PUT /admin/subscriptions/{id}`` {fail_payments, reason}
the switch that makes its payments fail; ``POST /admin/subscriptions/{id}/advance`` its
next billing moment (retry an unpaid invoice, bill the next period — ``invoice.paid`` or
``invoice.payment_failed`` per the switch — or end it when cancelled at period end).

Webhooks: every event is signed (``Stripe-Signature``, :mod:`apps.payments.signature`)
and delivered to the configured URL in creation order, each retried until it gets a 2xx.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import json
import logging
import time
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec
import uvicorn
from litestar import Litestar, MediaType, Request, Response, delete, get, post, put
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Redirect

from apps.core.serving import bound_socket, serving
from apps.payments import signature
from apps.payments.stripe_sim.state import StripeError, StripeState, parse_form, public

log = logging.getLogger("stripe-sim")
DEFAULT_PORT = 8703
# Retries back off to this and keep going until the endpoint answers 2xx.
MAX_RETRY_SECONDS = 5.0


@dataclass
class Delivery:
    event: dict[str, Any]
    attempts: int = 0
    statuses: list[int] = field(default_factory=list)
    delivered: bool = False


class WebhookSettings(msgspec.Struct, kw_only=True):
    url: str | msgspec.UnsetType = msgspec.UNSET
    secret: str | msgspec.UnsetType = msgspec.UNSET


class FailSwitch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    fail_payments: bool
    reason: str = ""


class StripeSim:
    """The stand-in: its state, and the webhook deliveries in order."""

    def __init__(
        self, *, secret_key: str, webhook_secret: str, webhook_url: str, public_url: str
    ) -> None:
        self.secret_key = secret_key
        self.webhook_secret = webhook_secret
        self.webhook_url = webhook_url
        self.state = StripeState(public_url, self._emit)
        self.deliveries: list[Delivery] = []
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:  # the keys stay out of every repr
        return f"StripeSim(webhook_url={self.webhook_url!r})"

    def _emit(self, event: dict[str, Any]) -> None:
        delivery = Delivery(event)
        self.deliveries.append(delivery)
        self._queue.put_nowait(delivery)

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=10)
        self._worker = asyncio.create_task(self._deliver_all())

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        if self._client is not None:
            await self._client.aclose()

    async def _deliver_all(self) -> None:
        while True:
            delivery = await self._queue.get()
            pause = 0.1
            while not await self._deliver(delivery):
                await asyncio.sleep(pause)
                pause = min(pause * 2, MAX_RETRY_SECONDS)

    async def _deliver(self, delivery: Delivery) -> bool:
        assert self._client is not None
        if not self.webhook_url:
            return False  # kept until an endpoint is configured
        payload = json.dumps(delivery.event).encode()
        header = signature.sign_header(payload, self.webhook_secret, int(time.time()))
        delivery.attempts += 1
        try:
            response = await self._client.post(
                self.webhook_url,
                content=payload,
                headers={"Content-Type": "application/json", "Stripe-Signature": header},
            )
        except httpx.HTTPError as exc:
            log.info("webhook %s not delivered: %s", delivery.event["id"], type(exc).__name__)
            delivery.statuses.append(0)
            return False
        delivery.statuses.append(response.status_code)
        delivery.delivered = 200 <= response.status_code < 300
        return delivery.delivered


def _sim(request: Request[Any, Any, Any]) -> StripeSim:
    sim: StripeSim = request.app.state.sim
    return sim


def _error(exc: StripeError) -> Response[dict[str, Any]]:
    return Response({"error": {"type": exc.kind, "message": exc.message}}, status_code=exc.status)


async def _stripe_call(request: Request[Any, Any, Any]) -> tuple[StripeSim, dict[str, Any]]:
    """Authenticate as Stripe does and parse the form body."""
    sim = _sim(request)
    auth = request.headers.get("authorization", "")
    if not sim.secret_key or auth != f"Bearer {sim.secret_key}":
        raise StripeError(401, "Invalid API Key provided.")
    body = (await request.body()).decode()
    return sim, parse_form(urllib.parse.parse_qsl(body, keep_blank_values=True))


async def _answer(request: Request[Any, Any, Any], action: Any) -> Response[dict[str, Any]]:
    try:
        sim, form = await _stripe_call(request)
        return Response(action(sim, form, time.time()))
    except StripeError as exc:
        return _error(exc)


@post("/v1/checkout/sessions", status_code=200)
async def create_session(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    return await _answer(request, lambda sim, form, now: sim.state.create_session(form, now))


@get("/v1/checkout/sessions/{session_id:str}")
async def get_session(
    request: Request[Any, Any, Any], session_id: FromPath[str]
) -> Response[dict[str, Any]]:
    return await _answer(request, lambda sim, form, now: public(sim.state.session(session_id)))


@get("/v1/subscriptions/{sub_id:str}")
async def get_subscription(
    request: Request[Any, Any, Any], sub_id: FromPath[str]
) -> Response[dict[str, Any]]:
    return await _answer(request, lambda sim, form, now: public(sim.state.subscription(sub_id)))


@post("/v1/subscriptions/{sub_id:str}", status_code=200)
async def update_subscription(
    request: Request[Any, Any, Any], sub_id: FromPath[str]
) -> Response[dict[str, Any]]:
    return await _answer(
        request, lambda sim, form, now: sim.state.update_subscription(sub_id, form, now)
    )


@delete("/v1/subscriptions/{sub_id:str}", status_code=200)
async def cancel_subscription(
    request: Request[Any, Any, Any], sub_id: FromPath[str]
) -> Response[dict[str, Any]]:
    return await _answer(request, lambda sim, form, now: sim.state.cancel_subscription(sub_id, now))


@get("/v1/invoices/{invoice_id:str}")
async def get_invoice(
    request: Request[Any, Any, Any], invoice_id: FromPath[str]
) -> Response[dict[str, Any]]:
    return await _answer(request, lambda sim, form, now: public(sim.state.invoice(invoice_id)))


PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}}
.box{{border:1px solid #ccc;border-radius:.5rem;padding:1.5rem}}
button{{font-size:1rem;padding:.5rem 1.25rem;margin-right:.5rem}}
.muted{{color:#666;font-size:.9rem}}</style></head><body><div class="box">{body}</div>
<p class="muted">Stripe stand-in (test mode): no card is charged.</p></body></html>"""


def _money(minor: int, currency: str) -> str:
    return f"{minor / 100:.2f} {currency.upper()}"


def _page(title: str, body: str, status: int = 200) -> Response[str]:
    return Response(
        PAGE.format(title=html.escape(title), body=body),
        media_type=MediaType.HTML,
        status_code=status,
    )


@get("/c/pay/{session_id:str}")
async def checkout_page(
    request: Request[Any, Any, Any], session_id: FromPath[str]
) -> Response[str]:
    try:
        session = _sim(request).state.session(session_id)
    except StripeError as exc:
        return _page("Not found", f"<p>{html.escape(exc.message)}</p>", 404)
    days = session["_period"] // 86_400
    body = (
        f"<h1>Subscribe to {html.escape(session['_product'])}</h1>"
        f"<p>{_money(session['amount_total'], session['currency'])} every {days} days</p>"
        f"<p>{html.escape(session['customer_email'] or '')}</p>"
        f'<form method="post" action="/c/pay/{html.escape(session_id)}">'
        '<button type="submit" name="action" value="pay">Pay</button>'
        '<button type="submit" name="action" value="cancel">Cancel</button></form>'
    )
    return _page("Checkout", body)


@post("/c/pay/{session_id:str}", status_code=303)
async def checkout_submit(
    request: Request[Any, Any, Any], session_id: FromPath[str]
) -> Response[Any]:
    form = dict(urllib.parse.parse_qsl((await request.body()).decode()))
    state = _sim(request).state
    try:
        if form.get("action") == "pay":
            target = state.pay_session(session_id, time.time())
        else:
            target = state.abandon_session(session_id)
    except StripeError as exc:
        return _page("Not found", f"<p>{html.escape(exc.message)}</p>", exc.status)
    return Redirect(path=target, status_code=303)


@get("/i/{invoice_id:str}")
async def invoice_page(request: Request[Any, Any, Any], invoice_id: FromPath[str]) -> Response[str]:
    try:
        invoice = _sim(request).state.invoice(invoice_id)
    except StripeError as exc:
        return _page("Not found", f"<p>{html.escape(exc.message)}</p>", 404)
    line = invoice["lines"]["data"][0]
    start = time.strftime("%Y-%m-%d", time.gmtime(line["period"]["start"]))
    end = time.strftime("%Y-%m-%d", time.gmtime(line["period"]["end"]))
    body = (
        f"<h1>Receipt {html.escape(invoice['number'])}</h1>"
        f"<p>{html.escape(line['description'])}: "
        f"{_money(invoice['amount_paid'], invoice['currency'])}</p>"
        f"<p>Period {start} to {end}</p><p>Status: {html.escape(invoice['status'])}</p>"
    )
    return _page("Receipt", body)


@get("/health", sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


@get("/admin/webhook")
async def webhook_get(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return {"url": _sim(request).webhook_url}


@put("/admin/webhook")
async def webhook_put(request: Request[Any, Any, Any]) -> dict[str, Any]:
    sim = _sim(request)
    change = msgspec.json.decode(await request.body(), type=WebhookSettings)
    if isinstance(change.url, str):
        sim.webhook_url = change.url
    if isinstance(change.secret, str):
        sim.webhook_secret = change.secret
    return {"url": sim.webhook_url}


@get("/admin/events")
async def events(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return {
        "events": [
            {
                "id": d.event["id"],
                "type": d.event["type"],
                "object_id": d.event["data"]["object"].get("id"),
                "attempts": d.attempts,
                "statuses": d.statuses,
                "delivered": d.delivered,
                "event": d.event,
            }
            for d in _sim(request).deliveries
        ]
    }


@get("/admin/subscriptions")
async def subscriptions(request: Request[Any, Any, Any]) -> dict[str, Any]:
    state = _sim(request).state
    return {
        "subscriptions": [
            {**public(s), "fail_payments": s["id"] in state.failing}
            for s in state.subscriptions.values()
        ]
    }


@put("/admin/subscriptions/{sub_id:str}")
async def fail_switch(
    request: Request[Any, Any, Any], sub_id: FromPath[str]
) -> Response[dict[str, Any]]:
    try:
        switch = msgspec.json.decode(await request.body(), type=FailSwitch)
        _sim(request).state.set_failing(sub_id, switch.fail_payments, switch.reason)
    except msgspec.ValidationError as exc:
        return _error(StripeError(400, str(exc)))
    except StripeError as exc:
        return _error(exc)
    return Response({"id": sub_id, "fail_payments": switch.fail_payments})


@post("/admin/subscriptions/{sub_id:str}/advance", status_code=200)
async def advance(
    request: Request[Any, Any, Any], sub_id: FromPath[str]
) -> Response[dict[str, Any]]:
    try:
        return Response(_sim(request).state.advance(sub_id, time.time()))
    except StripeError as exc:
        return _error(exc)


def create_app(sim: StripeSim) -> Litestar:
    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await sim.start()
        try:
            yield
        finally:
            await sim.stop()

    return Litestar(
        route_handlers=[
            create_session,
            get_session,
            get_subscription,
            update_subscription,
            cancel_subscription,
            get_invoice,
            checkout_page,
            checkout_submit,
            invoice_page,
            health,
            webhook_get,
            webhook_put,
            events,
            subscriptions,
            fail_switch,
            advance,
        ],
        state=State({"sim": sim}),
        lifespan=[lifespan],
        logging_config=None,
        openapi_config=None,
        debug=False,
    )


@dataclass
class RunningStripeSim:
    sim: StripeSim
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.asynccontextmanager
async def running_stripe_sim(
    *,
    secret_key: str,
    webhook_secret: str,
    webhook_url: str = "",
    host: str = "127.0.0.1",
    port: int = 0,
) -> AsyncIterator[RunningStripeSim]:
    """Serve the stand-in inside the current event loop; port 0 picks a free port."""
    sock = bound_socket(host, port)
    bound = sock.getsockname()[1]
    sim = StripeSim(
        secret_key=secret_key,
        webhook_secret=webhook_secret,
        webhook_url=webhook_url,
        public_url=f"http://{host}:{bound}",
    )
    server = uvicorn.Server(uvicorn.Config(create_app(sim), log_config=None, lifespan="on"))
    async with serving(server, sock):
        yield RunningStripeSim(sim, bound)


def serve_forever(host: str, port: int, settings: Any) -> None:
    """Run as its own process until SIGINT/SIGTERM (uvicorn handles the signals)."""
    from apps.payments.keys import secret_key, webhook_secret, webhook_url

    sim = StripeSim(
        secret_key=secret_key(settings),
        webhook_secret=webhook_secret(settings),
        webhook_url=webhook_url(settings),
        public_url=f"http://{host}:{port}",
    )
    print(f"Stripe stand-in on http://{host}:{port} (webhooks to {sim.webhook_url})")
    uvicorn.run(create_app(sim), host=host, port=port, log_config=None, lifespan="on")


def main(argv: list[str] | None = None) -> None:
    from apps.core.settings import Settings

    settings = Settings.from_env()
    parser = argparse.ArgumentParser(description="Stripe stand-in")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=settings.stripe_sim_port)
    args = parser.parse_args(argv)
    serve_forever(args.host, args.port, settings)
