"""The WebSocket at /api/v1/ws: send signals and watch their fan-out live.

Protocol (JSON text frames, every message has a "type"):
  → {"type": "auth", "token": "<access token>"}          first, within 5 s (never in the URL)
  ← {"type": "ready", "user_id": ..., "channels": [...]}  the channels being watched
  → {"type": "signal", "channel_id", "asset", "direction", "expiry_seconds", "stake",
     "client_id"?, "ref"?}
  ← {"type": "accepted", "ref", "signal_id", ...} | {"type": "error", "ref", "error": {...}}
  ← {"type": "progress", "signal_id", "counts": {...}, "latency_ms": {...}, "won", ...}
  ← {"type": "trade", "trade": TradeOut}  every execution of the user's own orders (as a
     subscriber): placed, rejected, expired, failed, unknown, and the settlement (state
     "placed" with outcome, profit and settled_at; merge by order_id, non-null fields win)
  ← {"type": "resync"}  trades were dropped because the client read too slowly: re-read
     GET /api/v1/orders (pushes resume after this message)
  → {"type": "watch", "channel_id"}  → {"type": "ping"}  ← {"type": "pong"}
  → {"type": "auth", ...} again at any time, to continue past the token's expiry.

Every authenticated socket receives its user's trades from "ready" on, until the session
ends (logout elsewhere and revocation end it at the next re-check). A client that
reconnects has missed what happened meanwhile and re-reads GET /api/v1/orders.

Guards (OWASP WebSocket cheat sheet): Origin allowlist against cross-site hijacking,
64 KB frames (also enforced by uvicorn), a per-connection message rate limit, and the
session re-checked periodically: expiry, logout (revoked token family) and removed
delegations close the socket or stop its feed. A logout is also announced to every API
instance (apps/api/auth/ended.py), which re-checks that user's sockets at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect
from odmantic import AIOEngine

from apps.api.auth.guards import Authenticator, Principal
from apps.api.dependencies import AuthenticatorDep, Ended, Intake, Live
from apps.api.errors import ApiError, Unauthorized, plain_validation
from apps.api.live import LiveRelay
from apps.api.models import Channel
from apps.api.signals.schemas import (
    WsAuth,
    WsIncoming,
    WsPing,
    WsSignal,
    WsWatch,
    ws_decoder,
    ws_encoder,
    ws_error,
)
from apps.api.signals.service import SignalIntake
from apps.core import metrics

log = logging.getLogger("api.ws")

AUTH_TIMEOUT = 5.0
MAX_FRAME = 64 * 1024
RECHECK_EVERY = 30.0
BUSY_RECHECK_EVERY = 1.0
RATE_PER_SECOND = 20.0
RATE_BURST = 40.0
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
# Trade frames a socket may have waiting: far above what a subscriber's signals produce
# between two reads; beyond it they are dropped for one "resync" (the client re-reads its
# orders), so a stalled client costs a bounded amount of memory.
TRADE_BACKLOG = 1_000
RESYNC = ws_encoder.encode({"type": "resync"})
# Put in the outbox to wake the writer for queued trades: no message is empty.
_TRADES_WAITING = b""


class SessionEnded(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass
class TokenBucket:
    rate: float = RATE_PER_SECOND
    burst: float = RATE_BURST
    tokens: float = RATE_BURST
    stamp: float = field(default_factory=time.monotonic)

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Session:
    """One authenticated socket: its principal, watched channels and outgoing queue."""

    def __init__(
        self,
        socket: WebSocket[Any, Any, Any],
        intake: SignalIntake,
        relay: LiveRelay,
        authenticator: Authenticator,
    ) -> None:
        self.socket = socket
        self.intake = intake
        self.relay = relay
        self.authenticator = authenticator
        self.outbox: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=10_000)
        self.unlisten: dict[str, Any] = {}
        self.trades: deque[bytes] = deque()
        self.resync_owed = False
        self.unlisten_trades: Callable[[], None] | None = None
        self.principal: Principal | None = None
        self.bucket = TokenBucket()
        self.strikes = 0
        # Set when this user's sessions ended somewhere (apps/api/auth/ended.py): re-check now.
        self.nudged = asyncio.Event()

    async def send(self, payload: bytes) -> None:
        with contextlib.suppress(asyncio.QueueFull):  # a stalled client loses progress frames
            self.outbox.put_nowait(payload)

    def push_trade(self, frame: bytes) -> None:
        """Queue one of the user's trades without waiting (called for every execution of
        theirs): a client that falls TRADE_BACKLOG frames behind gets one "resync" in
        place of what it missed, then live frames again."""
        if self.resync_owed:
            return
        if len(self.trades) >= TRADE_BACKLOG:
            self.trades.clear()
            self.resync_owed = True
            return
        was_idle = not self.trades
        self.trades.append(frame)
        if was_idle:
            # A full outbox keeps the writer busy, and it sends trades after every frame.
            with contextlib.suppress(asyncio.QueueFull):
                self.outbox.put_nowait(_TRADES_WAITING)

    async def writer(self) -> None:
        while (payload := await self.outbox.get()) is not None:
            if payload != _TRADES_WAITING:
                await self.socket.send_text(payload.decode())
            while self.trades or self.resync_owed:
                if self.resync_owed:
                    self.resync_owed = False
                    await self.socket.send_text(RESYNC.decode())
                else:
                    await self.socket.send_text(self.trades.popleft().decode())

    def follow_trades(self) -> None:
        """Receive the user's own trades; the user never changes on a socket."""
        assert self.principal is not None
        if self.unlisten_trades is None:
            self.unlisten_trades = self.relay.listen_trades(self.principal.id, self.push_trade)

    async def on_progress(self, progress: dict[str, Any]) -> None:
        await self.send(ws_encoder.encode(progress))

    async def login(self, token: str) -> Principal:
        try:
            principal = await self.authenticator.authenticate(token)
        except Unauthorized as exc:
            raise SessionEnded(CLOSE_UNAUTHORIZED, exc.message) from exc
        if self.principal is not None and principal.id != self.principal.id:
            raise SessionEnded(CLOSE_POLICY, "a socket cannot change users")
        self.principal = principal
        return principal

    async def watch(self, channel_id: str) -> bool:
        assert self.principal is not None
        if channel_id in self.unlisten:
            return True
        if not await self.intake.may_signal(self.principal, channel_id):
            return False
        self.listen(channel_id)
        return True

    def listen(self, channel_id: str) -> None:
        """Follow a channel this session was just found allowed to signal."""
        if channel_id not in self.unlisten:
            self.unlisten[channel_id] = self.relay.listen(channel_id, self.on_progress)

    def unwatch_all(self) -> None:
        """Stop every feed of this session: channels' progress and the user's trades."""
        for stop in self.unlisten.values():
            stop()
        self.unlisten.clear()
        if self.unlisten_trades is not None:
            self.unlisten_trades()
            self.unlisten_trades = None

    def require_unexpired(self) -> None:
        """A long-lived socket holds claims verified minutes ago."""
        assert self.principal is not None
        if self.principal.token.expires_at <= time.time():
            raise SessionEnded(CLOSE_UNAUTHORIZED, "access token expired; send a new auth message")

    async def recheck(self) -> None:
        """Expired token, logout elsewhere, a deleted account, a changed role or a removed
        delegation end what they allowed. One Redis round trip: the caller's facts and
        revocation key and the ACL of every watched channel in one MGET."""
        before = self.principal
        assert before is not None
        self.require_unexpired()
        auth, intake = self.authenticator, self.intake
        channels = list(self.unlisten)
        auth_keys = auth.lookup_keys(before.token)
        acl_keys = [intake.topology.channel_acl_key(channel_id) for channel_id in channels]
        found: list[bytes | None] = await intake.redis.mget(auth_keys + acl_keys)  # type: ignore[assignment]
        if self.principal is not before:
            return  # re-authenticated meanwhile: this verdict is about the old token
        try:
            principal = await auth.admit(before.token, found[: len(auth_keys)])
        except Unauthorized as exc:
            if self.principal is before:
                raise SessionEnded(CLOSE_UNAUTHORIZED, exc.message) from exc
            return
        if self.principal is not before:
            return  # admit() may have read MongoDB, and the socket re-authenticated meanwhile
        self.principal = principal
        for channel_id, raw in zip(channels, found[len(auth_keys) :], strict=True):
            acl = await intake.acl_from(channel_id, raw)
            if acl is None or not acl.active or not acl.allows(principal):
                if (stop := self.unlisten.pop(channel_id, None)) is not None:
                    stop()
                raise SessionEnded(CLOSE_FORBIDDEN, f"access to channel {channel_id} was revoked")

    async def serve(self) -> None:
        """Handle messages until the socket closes or a check ends the session.

        Idle sockets are re-checked every RECHECK_EVERY seconds, busy ones at most once a
        second. A re-check runs beside the messages, never in front of one (a signal would
        wait for its round trip): signals carry their own checks, and a failed re-check
        ends the session as soon as it is known, whatever the socket is doing."""
        last_check = time.monotonic()
        receiving: asyncio.Future[str] | None = None
        rechecking: asyncio.Task[None] | None = None
        nudge: asyncio.Task[Any] | None = None
        try:
            while True:
                if receiving is None:
                    receiving = asyncio.ensure_future(self.socket.receive_text())
                if nudge is None:
                    nudge = asyncio.create_task(self.nudged.wait())
                waiting: set[asyncio.Future[Any]] = {receiving}
                timeout: float | None = None
                if rechecking is None:
                    timeout = max(last_check + RECHECK_EVERY - time.monotonic(), 0.01)
                    waiting.add(nudge)
                else:
                    waiting.add(rechecking)
                done, _ = await asyncio.wait(
                    waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if rechecking is not None and rechecking.done():
                    finished, rechecking = rechecking, None
                    finished.result()  # a SessionEnded ends the session here
                if nudge.done() and rechecking is None:
                    # A logout somewhere: the re-check reads the revocations now.
                    nudge = None
                    self.nudged.clear()
                    rechecking = asyncio.create_task(self.recheck())
                    last_check = time.monotonic()
                    continue
                if not done:
                    rechecking = asyncio.create_task(self.recheck())
                    last_check = time.monotonic()
                    continue
                if not receiving.done():
                    continue
                text = receiving.result()  # WebSocketDisconnect when the client left
                receiving = None
                if rechecking is None and time.monotonic() - last_check >= BUSY_RECHECK_EVERY:
                    rechecking = asyncio.create_task(self.recheck())
                    last_check = time.monotonic()
                await self.handle(text)
        finally:
            for task in (receiving, rechecking, nudge):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task

    async def handle(self, text: str) -> None:
        if len(text) > MAX_FRAME:
            raise SessionEnded(CLOSE_TOO_BIG, "frame larger than 64 KB")
        if not self.bucket.take():
            self.strikes += 1
            if self.strikes > 100:
                raise SessionEnded(CLOSE_POLICY, "too many messages")
            await self.send(ws_error("rate_limited", "slow down: at most 20 messages a second"))
            return
        try:
            message = ws_decoder.decode(text)
        except msgspec.ValidationError as exc:
            message, key = plain_validation(str(exc), WsIncoming)
            await self.send(
                ws_error("invalid_request", message, details=[{"key": key, "message": message}])
            )
            return
        except msgspec.DecodeError:
            await self.send(ws_error("invalid_request", "messages must be JSON objects"))
            return
        if isinstance(message, WsAuth):
            await self.login(message.token)
            await self.send(ws_encoder.encode({"type": "reauthenticated"}))
        elif isinstance(message, WsSignal):
            await self.send_signal(message)
        elif isinstance(message, WsWatch):
            if await self.watch(message.channel_id):
                await self.send(
                    ws_encoder.encode({"type": "watching", "channel_id": message.channel_id})
                )
            else:
                await self.send(ws_error("forbidden", "you may not watch this channel"))
        elif isinstance(message, WsPing):
            await self.send(ws_encoder.encode({"type": "pong", "ref": message.ref}))

    async def send_signal(self, message: WsSignal) -> None:
        """Every signal is checked on its own (revocation, account, role, the channel's
        ACL) in the intake's one Redis round trip, not only by the periodic re-check."""
        assert self.principal is not None
        self.require_unexpired()
        try:
            accepted = await self.intake.accept(
                self.principal.token,
                message.channel_id,
                asset=message.asset,
                direction=message.direction,
                expiry_seconds=message.expiry_seconds,
                stake=message.stake,
                client_id=message.client_id,
                expiry_tolerance_seconds=message.expiry_tolerance_seconds,
            )
        except Unauthorized as exc:
            raise SessionEnded(CLOSE_UNAUTHORIZED, exc.message) from exc
        except ApiError as exc:
            await self.send(ws_error(exc.code, exc.message, message.ref, exc.details))
            return
        # Accepting proved the right to watch: no second ACL read, and no await before this
        # socket listens (the intake starts following the signal on the loop's next turn;
        # a follower that finds no listener stops, and the first progress would be lost).
        self.listen(message.channel_id)
        await self.send(
            ws_encoder.encode(
                {"type": "accepted", "ref": message.ref, **msgspec.structs.asdict(accepted)}
            )
        )


async def _default_channels(db: AIOEngine, user_id: str) -> list[str]:
    channels = await db.find(
        Channel, {"$or": [{"owner_id": user_id}, {"delegates": user_id}], "status": "active"}
    )
    return [c.id for c in channels]


@websocket("/ws")
async def signal_socket(
    socket: WebSocket[Any, Any, Any],
    intake: Intake,
    authenticator: AuthenticatorDep,
    live: Live,
    ended: Ended,
) -> None:
    origin = socket.headers.get("origin")
    if origin is not None and origin not in intake.settings.allowed_origins:
        await socket.close(code=CLOSE_FORBIDDEN, reason="origin not allowed")
        return
    await socket.accept()
    session = Session(socket, intake, live, authenticator)
    writer = asyncio.create_task(session.writer())
    metrics.websockets_open.inc()
    try:
        try:
            first = await asyncio.wait_for(socket.receive_text(), AUTH_TIMEOUT)
        except TimeoutError as exc:
            raise SessionEnded(
                CLOSE_UNAUTHORIZED, "authenticate first: send an auth message"
            ) from exc
        try:
            hello = ws_decoder.decode(first)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise SessionEnded(CLOSE_UNAUTHORIZED, "the first message must be auth") from exc
        if not isinstance(hello, WsAuth):
            raise SessionEnded(CLOSE_UNAUTHORIZED, "the first message must be auth")
        principal = await session.login(hello.token)
        channels = [
            channel_id
            for channel_id in await _default_channels(intake.db, principal.id)
            if await intake.may_signal(principal, channel_id)
        ]
        # "ready" is the first frame: the socket listens only once it is queued, with no
        # await in between (listening channel by channel between the checks let a running
        # fan-out's progress overtake it, and clients wait for "ready" first).
        await session.send(
            ws_encoder.encode(
                {"type": "ready", "user_id": principal.id, "channels": sorted(channels)}
            )
        )
        for channel_id in channels:
            session.listen(channel_id)
        session.follow_trades()
        unlisten_ended = ended.listen(principal.id, session.nudged.set)
        try:
            await session.serve()
        finally:
            unlisten_ended()
    except SessionEnded as over:
        session.unwatch_all()  # an ended session gets nothing more, not even a queued trade
        session.trades.clear()
        session.resync_owed = False
        await session.send(ws_error("session_ended", over.reason))
        await session.outbox.put(None)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer, 2)
        with contextlib.suppress(Exception):
            await socket.close(code=over.code, reason=over.reason[:120])
    except WebSocketDisconnect:
        pass
    finally:
        metrics.websockets_open.dec()
        session.unwatch_all()
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await writer
