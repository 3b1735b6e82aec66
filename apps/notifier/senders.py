"""The two external delivery channels over their real protocols: SMTP (aiosmtplib) and
Telegram's Bot API (HTTPS, JSON). Each send ends in one of the outbox's results — sent,
retry (temporary, or no answer), permanent — and never raises for the server's answer.

Secrets stay out of logs: the bot token is part of every Bot API URL, so URLs are never
logged or put in an error text (errors name the method only); the SMTP password is
passed to the login and nowhere else.
"""

from __future__ import annotations

import email.utils
import logging
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import httpx

from apps.notifier.outbox import Entry, Permanent, Retry, SendResult, Sent

SEND_TIMEOUT = 20.0  # under the outbox claim (NOTIFY_CLAIM_SECONDS), so a send ends first


def message_id(notification_id: str, domain: str) -> str:
    """The Message-ID of a notification's e-mail: the same on every attempt, so a copy
    resent after a crash is recognisable as the same message."""
    return f"<{notification_id}@{domain}>"


class SmtpSender:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        user: str = "",
        password: str = "",
        starttls: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self._user = user
        self._password = password
        self.starttls = starttls
        _, address = email.utils.parseaddr(sender)
        self.domain = address.rpartition("@")[2] or "localhost"

    def __repr__(self) -> str:
        return f"SmtpSender({self.host}:{self.port})"

    def build(self, entry: Entry) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = entry.to
        msg["Subject"] = entry.subject
        msg["Message-ID"] = message_id(entry.id, self.domain)
        msg["Date"] = email.utils.formatdate(localtime=False)
        msg.set_content(entry.text)
        return msg

    async def send(self, entry: Entry) -> SendResult:
        try:
            await aiosmtplib.send(
                self.build(entry),
                hostname=self.host,
                port=self.port,
                username=self._user or None,
                password=self._password or None,
                start_tls=self.starttls,
                timeout=SEND_TIMEOUT,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            if all(500 <= c < 600 for c in codes):
                return Permanent(f"recipient refused ({', '.join(map(str, codes))})")
            return Retry(f"recipient deferred ({', '.join(map(str, codes))})")
        except aiosmtplib.SMTPResponseException as exc:
            text = f"SMTP {exc.code}"
            return Permanent(text) if 500 <= exc.code < 600 else Retry(text)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return Retry(f"SMTP server unreachable ({type(exc).__name__})")
        return Sent()


class TelegramError(Exception):
    def __init__(self, method: str, code: int, description: str, retry_after: float | None):
        super().__init__(f"{method}: {code} {description}")
        self.code = code
        self.description = description
        self.retry_after = retry_after


class TelegramBot:
    """The Bot API methods the notifier uses: ``getMe``, ``getUpdates``, ``sendMessage``."""

    def __init__(self, api_url: str, token: str) -> None:
        # httpx logs every request's URL at INFO, and the URL holds the token.
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._base = f"{api_url.rstrip('/')}/bot{token}"
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(SEND_TIMEOUT, read=60.0))

    def __repr__(self) -> str:
        return "TelegramBot()"  # the token is a secret

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(
        self, method: str, params: dict[str, Any], *, timeout: float | None = None
    ) -> Any:
        try:
            response = await self._http.post(
                f"{self._base}/{method}",
                json=params,
                timeout=None if timeout is None else httpx.Timeout(timeout),
            )
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            # The URL holds the token: the error names the method and the kind only.
            raise TelegramError(method, 0, f"no answer ({type(exc).__name__})", None) from None
        if isinstance(body, dict) and body.get("ok"):
            return body.get("result")
        body = body if isinstance(body, dict) else {}
        retry = (body.get("parameters") or {}).get("retry_after")
        raise TelegramError(
            method,
            int(body.get("error_code") or response.status_code),
            str(body.get("description") or "error"),
            float(retry) if retry is not None else None,
        )

    async def get_me(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("getMe", {})
        return result

    async def get_updates(self, offset: int, timeout: int) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.call(
            "getUpdates",
            {"offset": offset, "timeout": timeout, "allowed_updates": ["message"]},
            timeout=timeout + SEND_TIMEOUT,
        )
        return result

    async def send_message(self, chat_id: str, text: str) -> None:
        await self.call("sendMessage", {"chat_id": int(chat_id), "text": text})


class TelegramSender:
    def __init__(self, bot: TelegramBot) -> None:
        self.bot = bot

    async def send(self, entry: Entry) -> SendResult:
        text = f"{entry.subject}\n{entry.text}" if entry.subject else entry.text
        try:
            await self.bot.send_message(entry.to, text[:4096])
        except TelegramError as exc:
            if exc.code == 429 or exc.code == 0 or exc.code >= 500:
                return Retry(str(exc), exc.retry_after)
            # 400 chat not found, 403 bot blocked by the user: sending again cannot help.
            return Permanent(str(exc))
        return Sent()
