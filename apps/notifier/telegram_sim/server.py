"""The Telegram stand-in: the Bot API methods the notifier uses, on the real URL shape.

Bot API (``POST`` or ``GET`` ``/bot<token>/<method>``, JSON or form parameters, answers
``{"ok": true, "result": ...}``, errors ``{"ok": false, "error_code", "description"}``
with ``parameters.retry_after`` on 429):
- ``getMe``: the bot (``username`` "copier_sim_bot");
- ``getUpdates`` {offset, timeout}: updates from ``offset`` on (confirming those before
  it, as Telegram does), held up to ``timeout`` seconds while there are none;
- ``sendMessage`` {chat_id, text}: the message, kept for the admin API.
A token other than the configured one answers 401 Unauthorized, like Telegram.

Admin (no auth; the stand-in listens on loopback): ``GET /health``;
``POST /admin/updates`` {chat_id, text, username?} a user's message to the bot (what
``/start CODE`` from a phone would be); ``GET /admin/messages?chat_id=`` what the bot
sent; ``PUT /admin/fail`` {status, count, retry_after?} the next ``count`` sendMessage
calls fail with ``status`` (429 with ``retry_after``, or a 5xx).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import uvicorn
from litestar import Litestar, Request, Response, get, post, put, route
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody

from apps.core.serving import bound_socket, serving

DEFAULT_PORT = 8704
# The token `copier up` gives the notifier and this stand-in in development.
DEV_TOKEN = "100000:copier-dev-telegram-sim"  # noqa: S105 (the stand-in's, not a secret)
BOT = {"id": 100000, "is_bot": True, "first_name": "Copier", "username": "copier_sim_bot"}


class InjectedMessage(msgspec.Struct, kw_only=True):
    chat_id: int
    text: str
    username: str = ""


class FailSwitch(msgspec.Struct, kw_only=True):
    status: int
    count: int = 1
    retry_after: int | None = None


@dataclass
class TelegramSim:
    token: str
    updates: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    failing: FailSwitch | None = None
    next_update_id: int = 1
    next_message_id: int = 1
    closing: bool = False
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def inject(self, message: InjectedMessage) -> dict[str, Any]:
        update = {
            "update_id": self.next_update_id,
            "message": {
                "message_id": self.next_message_id,
                "date": int(time.time()),
                "chat": {"id": message.chat_id, "type": "private", "username": message.username},
                "from": {
                    "id": message.chat_id,
                    "is_bot": False,
                    "first_name": message.username or "user",
                },
                "text": message.text,
            },
        }
        self.next_update_id += 1
        self.next_message_id += 1
        async with self.arrived:
            self.updates.append(update)
            self.arrived.notify_all()
        return update

    async def close(self) -> None:
        self.closing = True
        async with self.arrived:
            self.arrived.notify_all()

    async def get_updates(self, offset: int, timeout: float) -> list[dict[str, Any]]:
        # Asking from an offset confirms every update before it: they are forgotten.
        self.updates = [u for u in self.updates if u["update_id"] >= offset]
        if not self.updates and timeout > 0 and not self.closing:
            async with self.arrived:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.arrived.wait(), timeout)
        return list(self.updates[:100])


def _ok(result: Any) -> Response[dict[str, Any]]:
    return Response({"ok": True, "result": result})


def _error(
    status: int, description: str, retry_after: int | None = None
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return Response(body, status_code=status)


async def _params(request: Request[Any, Any, Any]) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query_params)
    if request.method == "POST":
        content_type = request.headers.get("content-type", "")
        if "json" in content_type:
            body = await request.body()
            if body:
                params.update(msgspec.json.decode(body))
        else:
            params.update(dict(await request.form()))
    return params


@route("/{bot_token:str}/{method:str}", http_method=["GET", "POST"])
async def bot_method(
    request: Request[Any, Any, Any],
    bot_token: FromPath[str],
    method: FromPath[str],
    state: State,
) -> Response[dict[str, Any]]:
    sim: TelegramSim = state.sim
    if not bot_token.startswith("bot"):
        return _error(404, "Not Found")
    if bot_token.removeprefix("bot") != sim.token:
        return _error(401, "Unauthorized")
    try:
        params = await _params(request)
    except (msgspec.DecodeError, ValueError):
        return _error(400, "Bad Request: can't parse JSON")
    match method:
        case "getMe":
            return _ok(BOT)
        case "getUpdates":
            offset = int(params.get("offset") or 0)
            timeout = min(float(params.get("timeout") or 0), 50.0)
            return _ok(await sim.get_updates(offset, timeout))
        case "sendMessage":
            if sim.failing is not None and sim.failing.count > 0:
                failing = sim.failing
                failing.count -= 1
                if failing.status == 429:
                    after = failing.retry_after or 1
                    return _error(429, f"Too Many Requests: retry after {after}", after)
                return _error(failing.status, "Internal Server Error")
            text = str(params.get("text") or "")
            if not text:
                return _error(400, "Bad Request: message text is empty")
            try:
                chat_id = int(params["chat_id"])
            except (KeyError, ValueError):
                return _error(400, "Bad Request: chat not found")
            message = {
                "message_id": sim.next_message_id,
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private"},
                "from": BOT,
                "text": text,
            }
            sim.next_message_id += 1
            sim.sent.append(message)
            return _ok(message)
        case _:
            return _error(404, "Not Found")


@get("/health", sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


@post("/admin/updates", status_code=201)
async def admin_inject(data: JSONBody[InjectedMessage], state: State) -> dict[str, Any]:
    return await state.sim.inject(data)  # type: ignore[no-any-return]


@get("/admin/messages", sync_to_thread=False)
def admin_messages(state: State, chat_id: FromQuery[int | None] = None) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = state.sim.sent
    return [m for m in sent if chat_id is None or m["chat"]["id"] == chat_id]


@put("/admin/fail", sync_to_thread=False)
def admin_fail(data: JSONBody[FailSwitch], state: State) -> dict[str, Any]:
    state.sim.failing = data
    return msgspec.to_builtins(data)  # type: ignore[no-any-return]


def create_app(sim: TelegramSim) -> Litestar:
    return Litestar(
        route_handlers=[bot_method, health, admin_inject, admin_messages, admin_fail],
        state=State({"sim": sim}),
        logging_config=None,
        openapi_config=None,
        debug=False,
    )


@dataclass
class RunningTelegramSim:
    sim: TelegramSim
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.asynccontextmanager
async def running_telegram_sim(
    *, token: str = DEV_TOKEN, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningTelegramSim]:
    """Serve the stand-in inside the current event loop; port 0 picks a free port."""
    sock = bound_socket(host, port)
    sim = TelegramSim(token=token)
    server = uvicorn.Server(uvicorn.Config(create_app(sim), log_config=None, lifespan="off"))
    # Closing the stand-in answers the held getUpdates calls, so the server can stop.
    async with serving(server, sock, on_stop=sim.close):
        yield RunningTelegramSim(sim, sock.getsockname()[1])


def serve_forever(host: str, port: int, token: str) -> None:
    """Run as its own process until SIGINT/SIGTERM (uvicorn handles the signals)."""
    print(f"Telegram Bot API stand-in on http://{host}:{port} (bot @{BOT['username']})")
    uvicorn.run(create_app(TelegramSim(token=token)), host=host, port=port, log_config=None)


def main(argv: list[str] | None = None) -> None:
    from apps.core.settings import Settings

    settings = Settings.from_env()
    parser = argparse.ArgumentParser(description="Telegram Bot API stand-in")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=settings.telegram_sim_port)
    args = parser.parse_args(argv)
    serve_forever(args.host, args.port, settings.telegram_bot_token or DEV_TOKEN)
