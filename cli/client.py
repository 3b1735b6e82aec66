"""The API over HTTP: one client that knows the session, refreshes it, and turns every
failure (error bodies, refused connections, timeouts) into a one-line :class:`CliError`."""

from __future__ import annotations

from typing import Any

import httpx

from cli.config import Session, load_session, resolve_api, save_session
from cli.output import CliError

TIMEOUT = httpx.Timeout(15.0, connect=5.0)


class ApiRefused(CliError):
    """The API answered with an error; ``error_code`` says which."""

    def __init__(self, message: str, error_code: str) -> None:
        super().__init__(message)
        self.error_code = error_code


class AnswerLost(CliError):
    """The request was sent, but no answer came back: it may or may not have taken effect."""


def unreachable(api: str) -> CliError:
    return CliError(f"cannot reach the API at {api} — is the stack running? (copier up)")


def error_message(response: httpx.Response) -> str:
    """``{"error": {"code", "message", "details"}}`` → ``message (code)``: the API's plain
    words (never its JSON), plus the first field's words when they say more."""
    try:
        body = response.json()
        error = body["error"]
        message, code = str(error["message"]), str(error.get("code") or "")
    except (ValueError, KeyError, TypeError):
        return f"the API answered {response.status_code} {response.reason_phrase}"
    details = error.get("details")
    if isinstance(details, list) and details and isinstance(details[0], dict):
        first = details[0]
        said = str(first.get("message") or "")
        if said and said not in message:
            message = f"{message} — {said}"
    return f"{message} ({code})" if code else message


def error_code(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return ""


class ApiClient:
    def __init__(self, api: str | None, *, need_login: bool = True) -> None:
        self.api = resolve_api(api)
        self.session: Session | None = load_session(self.api)
        if need_login and self.session is None:
            raise CliError(f"not logged in to {self.api} — run: copier login --api {self.api}")
        self.http = httpx.Client(base_url=self.api, timeout=TIMEOUT)

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    @property
    def token(self) -> str:
        assert self.session is not None
        return self.session.access_token

    def _send(self, method: str, path: str, auth: bool, **kw: Any) -> httpx.Response:
        headers = dict(kw.pop("headers", None) or {})
        if auth and self.session is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            return self.http.request(method, path, headers=headers, **kw)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise unreachable(self.api) from exc  # nothing was sent
        except httpx.TimeoutException as exc:
            raise AnswerLost(f"the API at {self.api} did not answer in time") from exc
        except (httpx.ReadError, httpx.RemoteProtocolError) as exc:
            raise AnswerLost(
                f"the API at {self.api} closed the connection without an answer"
            ) from exc
        except httpx.TransportError as exc:
            raise unreachable(self.api) from exc

    def refresh(self) -> bool:
        """Trade the refresh token for a new pair; False when the session is over."""
        if self.session is None:
            return False
        response = self._send(
            "POST",
            "/api/v1/auth/refresh",
            auth=False,
            json={"refresh_token": self.session.refresh_token},
        )
        if response.status_code != 200:
            return False
        body = response.json()
        self.session.access_token = body["access_token"]
        self.session.refresh_token = body["refresh_token"]
        save_session(self.session)
        return True

    def request(self, method: str, path: str, *, auth: bool = True, **kw: Any) -> Any:
        response = self._send(method, path, auth, **kw)
        if response.status_code == 401 and auth and self.session is not None and self.refresh():
            response = self._send(method, path, auth, **kw)
        if response.status_code == 401 and auth:
            raise CliError(
                f"{error_message(response)} — log in again: copier login --api {self.api}"
            )
        if response.status_code >= 400:
            raise ApiRefused(error_message(response), error_code(response))
        if not response.content:
            return None
        return response.json()

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.request("POST", path, **kw)

    def patch(self, path: str, **kw: Any) -> Any:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)

    @property
    def ws_url(self) -> str:
        scheme, rest = self.api.split("://", 1)
        return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/api/v1/ws"
