"""`copier login`, `logout`, `whoami`: a session kept in the user's config directory."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.client import ApiClient
from cli.config import Session, credentials_path, forget_session, resolve_api, save_session
from cli.output import ApiOption, CliError, JsonOption, console, print_json, table


def login(
    email: Annotated[str, typer.Option(prompt=True, help="Your account's e-mail.")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, envvar="COPIER_PASSWORD")],
    api: ApiOption = None,
    as_json: JsonOption = False,
) -> None:
    """Log in and keep the session (credentials.json, mode 0600, in the config directory).

    Examples:
      copier login --email me@example.com
      COPIER_PASSWORD=... copier login --email me@example.com --api https://copier.example
    """
    with ApiClient(api, need_login=False) as client:
        tokens = client.post(
            "/api/v1/auth/login", auth=False, json={"email": email, "password": password}
        )
        me = client.get(
            "/api/v1/me", auth=False, headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
    save_session(
        Session(
            api=client.api,
            email=me["email"],
            user_id=me["id"],
            access_token=tokens["access_token"],
            refresh_token=tokens["refresh_token"],
        )
    )
    if as_json:
        print_json({"api": client.api, "user": me})
    else:
        console().print(f"logged in to {client.api} as {me['email']} ({me['account_type']})")


def logout(api: ApiOption = None, as_json: JsonOption = False) -> None:
    """End the session on the server and forget it here.

    Example:
      copier logout
    """
    target = resolve_api(api)
    try:
        with ApiClient(target) as client:
            assert client.session is not None
            client.post("/api/v1/auth/logout", json={"refresh_token": client.session.refresh_token})
    except CliError as exc:
        if "not logged in" in exc.message:
            raise
        # The server may be gone or the session already expired: the local copy goes anyway.
        forget_session(target)
        raise CliError(f"logged out locally; the API said: {exc.message}") from exc
    forget_session(target)
    if as_json:
        print_json({"api": target, "logged_out": True})
    else:
        console().print(f"logged out of {target}")


def whoami(api: ApiOption = None, as_json: JsonOption = False) -> None:
    """Show the account this machine is logged in as.

    Examples:
      copier whoami
      copier whoami --json | jq -r .id
    """
    with ApiClient(api) as client:
        me = client.get("/api/v1/me")
    if as_json:
        print_json({**me, "api": client.api})
        return
    rows = [(k, me.get(k)) for k in ("email", "display_name", "account_type", "is_admin", "id")]
    rows += [("api", client.api), ("credentials", credentials_path())]
    console().print(table(None, ["field", "value"], rows))


def register(app: typer.Typer) -> None:
    app.command("login")(login)
    app.command("logout")(logout)
    app.command("whoami")(whoami)
