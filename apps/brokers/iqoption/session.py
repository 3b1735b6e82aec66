"""One logged-in IQ Option WebSocket per broker account, kept open and reused.

Opening a session is two steps: an HTTP login (``POST /api/v2/login``, form
``identifier``/``password``) that yields an ssid, then ``{"name":"ssid"}`` on the socket,
answered by the account's ``profile``. Guarantees:

- the ssid is cached per account and reused for every reconnect; the account logs in over
  HTTP again only when the socket refuses the ssid (``profile`` ``false``), so IQ
  Option's login limit is met once per account, not once per socket;
- a login limit (HTTP 429) stops this account's logins for the ``ttl`` the broker gave
  (:class:`SessionUnavailable` with it as ``retry_after``), and refused credentials
  (HTTP 403, a refused ssid of an account linked by ssid alone) or a two-factor account
  raise :class:`SessionRejected`: nothing is retried against them;
- the server's ``heartbeat`` messages are answered (the broker closes a socket that stops);
- replies are matched to calls by ``request_id``; a socket that closes after a call was
  sent fails the call with ``ConnectionLost(sent=True)``, so the adapter looks a buy up
  before it may be retried;
- reconnects back off exponentially with full jitter (:mod:`apps.brokers.sessions`).

Secrets (password, ssid) never reach a log line, a repr or an exception message.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from apps.brokers.iqoption.protocol import (
    CREDENTIALS_REFUSED,
    TWO_FACTOR_REQUIRED,
    heartbeat_answer,
)
from apps.brokers.sessions import (
    ConnectionLost,
    Cooldown,
    ReconnectBackoff,
    SessionRejected,
    SessionUnavailable,
)
from apps.core.brokers.iqoption import (
    LoggedIn,
    LoginLimited,
    LoginRefused,
    LoginUnreadable,
    Profile,
    ProfileUnreadable,
    SsidRefused,
    TwoFactorRequired,
    login_form,
    read_login,
    read_profile,
    ssid_message,
)

__all__ = ["ConnectionLost", "IQSession", "SessionRejected", "SessionUnavailable"]

log = logging.getLogger("brokers.iqoption.session")

_encoder = msgspec.json.Encoder(decimal_format="number")
# Floats become Decimal as written on the wire: money is never float arithmetic.
_decoder = msgspec.json.Decoder(float_hook=Decimal)

# Pushes (messages without a pending call) are handed to these, by message name.
PushListener = Callable[[str, Any], None]


class IQSession:
    """The session of one account: ``login`` + ``password`` (the copier logs in), or an
    ``ssid`` alone (the account was linked with one; when it is refused the account must
    be linked again)."""

    def __init__(
        self,
        login_url: str,
        ws_url: str,
        http: httpx.AsyncClient,
        *,
        login: str = "",
        password: str = "",
        ssid: str = "",
        connect_timeout: float = 5.0,
        backoff_base: float = 0.1,
        backoff_max: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.login_url = login_url
        self.ws_url = ws_url
        self._http = http
        self._login = login
        self._password = password
        self._ssid = ssid
        self._connect_timeout = connect_timeout
        self._backoff = ReconnectBackoff(backoff_base, backoff_max)
        # Set after a "Too many requests" refusal: this account's calls pause.
        self.cooldown = Cooldown()
        self._clock = clock
        self.profile: Profile | None = None
        self.authorized = False
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._profile_waiter: asyncio.Future[Any] | None = None
        self._listeners: list[PushListener] = []
        self._on_close: list[Callable[[], None]] = []
        self._ids = itertools.count(1)
        self._open_lock = asyncio.Lock()
        self._login_blocked_until = 0.0  # monotonic: the broker's login limit
        # The broker's clock (timeSync), as an offset from ours.
        self._server_offset: float | None = None
        self.connects = 0  # sockets opened (observability; watches resubscribe on change)
        self.logins = 0  # HTTP logins made (observability; the ssid is reused otherwise)
        self.heartbeats = 0  # the server's heartbeats answered (observability)

    def __repr__(self) -> str:  # the password and ssid stay out of logs
        return f"IQSession(login={self._login!r}, open={self.is_open})"

    def set_credentials(self, login: str, password: str, ssid: str) -> None:
        """The account's credentials as the store has them now (a re-linked account gets
        its new password; its cached ssid is dropped if the password changed)."""
        if password != self._password or (ssid and ssid != self._ssid and not password):
            self._ssid = ssid
            self._login_blocked_until = 0.0
        self._login = login
        self._password = password

    @property
    def is_open(self) -> bool:
        return self._ws is not None

    @property
    def ssid_only(self) -> bool:
        return not self._password

    def server_now(self) -> float:
        """The broker's time in epoch seconds (ours until its first ``timeSync``)."""
        return self._clock() + (self._server_offset or 0.0)

    def new_request_id(self) -> str:
        return f"iq.{next(self._ids)}"

    def add_listener(self, listener: PushListener) -> None:
        if listener not in self._listeners:
            self._listeners.append(listener)

    def on_close(self, callback: Callable[[], None]) -> None:
        """``callback`` runs each time the socket closes (pushes subscribed on it stop)."""
        if callback not in self._on_close:
            self._on_close.append(callback)

    # lifecycle --------------------------------------------------------------------------

    async def ensure_open(self) -> Profile:
        """The account's profile on an open, logged-in socket; raises SessionUnavailable
        or SessionRejected."""
        profile = self.profile
        if self._ws is not None and self.authorized and profile is not None:
            return profile
        async with self._open_lock:
            for _ in range(2):  # a refused cached ssid: log in once more, then try again
                if not self._ssid:
                    await self._http_login()
                if self._ws is None:
                    await self._connect()
                if self.authorized and self.profile is not None:
                    return self.profile
                if await self._authenticate():
                    assert self.profile is not None
                    return self.profile
                if self.ssid_only:
                    raise SessionRejected(CREDENTIALS_REFUSED, "IQ Option refused the ssid")
            raise SessionUnavailable("IQ Option refused a fresh ssid", 1.0)

    async def _http_login(self) -> None:
        wait = self._login_blocked_until - time.monotonic()
        if wait > 0:
            raise SessionUnavailable("IQ Option's login limit: waiting", wait)
        try:
            reply = await self._http.post(
                self.login_url,
                data=login_form(self._login, self._password),
                timeout=self._connect_timeout,
            )
        except httpx.HTTPError as exc:
            delay = self._backoff.failed()
            raise SessionUnavailable(
                f"cannot reach IQ Option's login: {type(exc).__name__}", delay
            ) from None
        try:
            body = reply.json()
        except ValueError:
            body = None
        self.logins += 1
        match read_login(reply.status_code, body):
            case LoggedIn(ssid=ssid):
                self._ssid = ssid
            case LoginRefused(message=message):
                raise SessionRejected(
                    CREDENTIALS_REFUSED, f"IQ Option refused the login: {message}"
                )
            case TwoFactorRequired():
                raise SessionRejected(
                    TWO_FACTOR_REQUIRED,
                    "the IQ Option account asks for a second factor at login; turn two-factor"
                    " login off or link the account with an ssid",
                )
            case LoginLimited(ttl=ttl, message=message):
                self._login_blocked_until = time.monotonic() + ttl
                raise SessionUnavailable(f"IQ Option's login limit: {message}", ttl)
            case LoginUnreadable(reason=reason):
                raise SessionUnavailable(reason, self._backoff.failed())

    async def _connect(self) -> None:
        wait = self._backoff.wait()
        if wait > 0:
            raise SessionUnavailable("reconnect backoff", wait)
        try:
            ws = await asyncio.wait_for(
                connect(self.ws_url, max_size=2**22, compression=None, open_timeout=None),
                self._connect_timeout,
            )
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            delay = self._backoff.failed()
            raise SessionUnavailable(f"cannot connect to IQ Option: {exc!r}", delay) from exc
        self._backoff.succeeded()
        self._ws = ws
        self.authorized = False
        self.connects += 1
        self._reader = asyncio.create_task(self._read(ws), name="iqoption-read")

    async def _authenticate(self) -> bool:
        """Send the ssid; True when the profile came, False when the ssid was refused
        (the cached ssid is dropped)."""
        ws = self._ws
        if ws is None:
            raise SessionUnavailable("the socket closed before logging in", 0.0)
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._profile_waiter = waiter
        try:
            await ws.send(_encoder.encode(ssid_message(self._ssid)).decode())
            raw = await asyncio.wait_for(waiter, self._connect_timeout)
        except (ConnectionClosed, ConnectionLost, TimeoutError):
            await self.close()
            raise SessionUnavailable("IQ Option did not answer the ssid", 0.0) from None
        finally:
            self._profile_waiter = None
        match read_profile(raw):
            case Profile() as profile:
                self.profile = profile
                self.authorized = True
                return True
            case SsidRefused():
                self._ssid = ""
                await self.close()  # the broker closes it too
                return False
            case ProfileUnreadable(reason=reason):
                await self.close()
                raise SessionUnavailable(reason, 1.0)
        raise AssertionError(raw)  # pragma: no cover - match is exhaustive

    def refused(self) -> None:
        """A call found the session logged out: authenticate again before the next one."""
        self.authorized = False

    async def close(self) -> None:
        ws, self._ws = self._ws, None
        self.authorized = False
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()
        reader, self._reader = self._reader, None
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        self._fail_waiters()

    async def abort(self) -> None:
        """Drop the socket now (a reply timed out: the socket is no longer trusted)."""
        await self.close()

    # calls ------------------------------------------------------------------------------

    async def request(self, message: dict[str, Any], *, reply_within: float) -> dict[str, Any]:
        """Send one call (its ``request_id`` set) and await its reply; raises
        ConnectionLost or TimeoutError. A ``result`` acknowledging success is not the
        reply when more follows (a buy's ``option``)."""
        ws = self._ws
        if ws is None or not self.authorized:
            raise ConnectionLost(sent=False)
        request_id = str(message["request_id"])
        if request_id in self._pending:
            raise ConnectionLost(sent=False)  # one call per id at a time
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            try:
                await ws.send(_encoder.encode(message).decode())
            except ConnectionClosed:
                raise ConnectionLost(sent=False) from None
            return await asyncio.wait_for(future, reply_within)
        finally:
            self._pending.pop(request_id, None)

    async def send(self, message: dict[str, Any]) -> None:
        """Send without awaiting a reply (subscriptions); raises ConnectionLost."""
        ws = self._ws
        if ws is None or not self.authorized:
            raise ConnectionLost(sent=False)
        try:
            await ws.send(_encoder.encode(message).decode())
        except ConnectionClosed:
            raise ConnectionLost(sent=False) from None

    # background -------------------------------------------------------------------------

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                try:
                    message = _decoder.decode(raw)
                except msgspec.DecodeError:
                    continue
                if isinstance(message, dict):
                    await self._dispatch(ws, message)
        except ConnectionClosed:
            pass
        finally:
            if self._ws is ws:
                self._ws = None
                self.authorized = False
                self._fail_waiters()

    async def _dispatch(self, ws: ClientConnection, message: dict[str, Any]) -> None:
        name = message.get("name")
        msg = message.get("msg")
        if name == "heartbeat":
            answer = heartbeat_answer(self.new_request_id(), msg, int(self._clock() * 1000))
            with contextlib.suppress(ConnectionClosed):
                await ws.send(_encoder.encode(answer).decode())
                self.heartbeats += 1
            return
        if name == "timeSync":
            if isinstance(msg, int | Decimal):
                self._server_offset = float(msg) / 1000 - self._clock()
            return
        if name == "profile" and self._profile_waiter is not None:
            if not self._profile_waiter.done():
                self._profile_waiter.set_result(msg)
            return
        request_id = message.get("request_id")
        future = self._pending.get(str(request_id)) if request_id not in (None, "") else None
        if future is not None:
            # A buy's "result" {success: true} is an acknowledgement: its "option" follows.
            acknowledged = name == "result" and isinstance(msg, dict) and msg.get("success")
            if not acknowledged and not future.done():
                future.set_result(message)
            return
        for listener in self._listeners:
            try:
                listener(str(name), msg)
            except Exception:
                log.exception("handling IQ Option's %s push failed", name)

    def _fail_waiters(self) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionLost(sent=True))
        self._pending.clear()
        if self._profile_waiter is not None and not self._profile_waiter.done():
            self._profile_waiter.set_exception(ConnectionLost(sent=True))
        for callback in self._on_close:
            try:
                callback()
            except Exception:
                log.exception("an IQ Option close callback failed")
