"""One authorised Deriv WebSocket per broker account, kept open and reused.

The session multiplexes requests over the socket by ``req_id`` (Deriv answers out of
order), keeps it alive with Deriv's application-level ``{"ping": 1}`` (idle sockets are
closed after 120 s), and reconnects with exponential backoff and full jitter so a
simulator or broker restart is not met by a thundering herd of accounts
(:mod:`apps.brokers.sessions` holds the parts every broker kind's session shares). Logging
in is kept behind :meth:`DerivSession._login` so Deriv's newer OTP-based login can replace
the v3 ``authorize`` call in one place (deriv.md, "Deriv's newer API"); the call and the
reading of its answer are :mod:`apps.core.brokers.deriv`'s, which the API's account
verification uses too.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from decimal import Decimal
from typing import Any

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from apps.brokers.sessions import (
    ConnectionLost,
    Cooldown,
    ReconnectBackoff,
    SessionRejected,
    SessionUnavailable,
)
from apps.core.brokers.deriv import (
    Authorized,
    AuthorizeRefused,
    AuthorizeUnreadable,
    authorize_request,
    endpoint_url,
    read_authorize,
)

__all__ = ["ConnectionLost", "DerivSession", "SessionRejected", "SessionUnavailable", "Stream"]

_encoder = msgspec.json.Encoder(decimal_format="number")
# Floats become Decimal as written on the wire: money is never float arithmetic.
_decoder = msgspec.json.Decoder(float_hook=Decimal)


Stream = asyncio.Queue[dict[str, Any] | ConnectionLost]


class DerivSession:
    def __init__(
        self,
        url: str,
        token: str,
        *,
        app_id: int = 1,
        ping_interval: float = 30.0,
        connect_timeout: float = 5.0,
        backoff_base: float = 0.1,
        backoff_max: float = 5.0,
    ) -> None:
        self.url = endpoint_url(url, app_id)
        self._token = token
        self.loginid: str | None = None
        self.currency: str | None = None
        self.authorized = False
        self._cooldown = Cooldown()  # set after a RateLimit reply
        self._ping_interval = ping_interval
        self._connect_timeout = connect_timeout
        self._backoff = ReconnectBackoff(backoff_base, backoff_max)
        self._ws: ClientConnection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._streams: dict[int, Stream] = {}
        self._req_ids = itertools.count(1)
        self._open_lock = asyncio.Lock()
        self.connects = 0  # how many sockets this session has opened (observability)

    @property
    def is_open(self) -> bool:
        return self._ws is not None

    # lifecycle --------------------------------------------------------------------------

    async def ensure_open(self) -> None:
        """Connect and authorise unless already done; raises SessionUnavailable/Rejected."""
        if self._ws is not None and self.authorized:
            return
        async with self._open_lock:
            if self._ws is None:
                await self._connect()
            if not self.authorized:
                await self._login()

    async def _connect(self) -> None:
        wait = self._backoff.wait()
        if wait > 0:
            raise SessionUnavailable("reconnect backoff", wait)
        try:
            ws = await asyncio.wait_for(
                connect(self.url, max_size=2**22, compression=None, open_timeout=None),
                self._connect_timeout,
            )
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            delay = self._backoff.failed()
            raise SessionUnavailable(f"cannot connect to Deriv: {exc!r}", delay) from exc
        self._backoff.succeeded()
        self._ws = ws
        self.connects += 1
        self._tasks = [
            asyncio.create_task(self._read(ws)),
            asyncio.create_task(self._keep_alive(ws)),
        ]

    async def _login(self) -> None:
        try:
            reply = await self.request(
                authorize_request(self._token), reply_within=self._connect_timeout
            )
        except (ConnectionLost, TimeoutError) as exc:
            raise SessionUnavailable(f"authorize failed: {exc!r}", 0.0) from exc
        match read_authorize(reply):
            case Authorized(loginid=loginid, currency=currency):
                self.loginid = loginid
                self.currency = currency
                self.authorized = True
            case AuthorizeRefused(code=code, message=message) as refused:
                if refused.token_refused:
                    await self.close()
                    raise SessionRejected(code, message)
                raise SessionUnavailable(f"authorize: {code}: {message}", 1.0)
            case AuthorizeUnreadable(reason=reason):
                raise SessionUnavailable(f"authorize: {reason}", 1.0)

    async def close(self) -> None:
        ws, self._ws = self._ws, None
        self.authorized = False
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self._fail_waiters()

    async def abort(self) -> None:
        """Drop the socket now (a reply timed out: the socket is no longer trusted)."""
        await self.close()

    # requests ---------------------------------------------------------------------------

    async def request(self, payload: dict[str, Any], *, reply_within: float) -> dict[str, Any]:
        """Send one call and await its reply; raises ConnectionLost or TimeoutError."""
        ws = self._ws
        if ws is None:
            raise ConnectionLost(sent=False)
        req_id = next(self._req_ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = future
        try:
            try:
                await ws.send(_encoder.encode({**payload, "req_id": req_id}).decode())
            except ConnectionClosed:
                raise ConnectionLost(sent=False) from None
            return await asyncio.wait_for(future, reply_within)
        finally:
            self._pending.pop(req_id, None)

    async def subscribe(self, payload: dict[str, Any]) -> tuple[int, Stream]:
        """Start a stream; every message for it (the first reply included) lands in the queue."""
        ws = self._ws
        if ws is None:
            raise ConnectionLost(sent=False)
        req_id = next(self._req_ids)
        stream: Stream = asyncio.Queue()
        self._streams[req_id] = stream
        try:
            await ws.send(_encoder.encode({**payload, "req_id": req_id, "subscribe": 1}).decode())
        except ConnectionClosed:
            self._streams.pop(req_id, None)
            raise ConnectionLost(sent=False) from None
        return req_id, stream

    def end_stream(self, req_id: int) -> None:
        self._streams.pop(req_id, None)

    def cool_down(self) -> float:
        """After a RateLimit reply: pause this account's calls (see :class:`Cooldown`)."""
        return self._cooldown.start()

    def cooled(self) -> None:
        self._cooldown.reset()

    def cooldown_remaining(self) -> float:
        return self._cooldown.remaining()

    # background -------------------------------------------------------------------------

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                message = _decoder.decode(raw)
                if not isinstance(message, dict):
                    continue
                req_id = message.get("req_id")
                if not isinstance(req_id, int):
                    continue
                stream = self._streams.get(req_id)
                if stream is not None:
                    stream.put_nowait(message)
                    continue
                future = self._pending.get(req_id)
                if future is not None and not future.done():
                    future.set_result(message)
        except ConnectionClosed:
            pass
        finally:
            if self._ws is ws:
                self._ws = None
                self.authorized = False
                self._fail_waiters()

    def _fail_waiters(self) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionLost(sent=True))
        self._pending.clear()
        for stream in self._streams.values():
            stream.put_nowait(ConnectionLost(sent=True))
        self._streams.clear()

    async def _keep_alive(self, ws: ClientConnection) -> None:
        while self._ws is ws:
            await asyncio.sleep(self._ping_interval)
            try:
                await self.request({"ping": 1}, reply_within=self._ping_interval)
            except TimeoutError:
                # No pong for a whole interval: the socket is dead even if TCP says not.
                await ws.close(code=1011, reason="ping timeout")
                return
            except ConnectionLost:
                return
