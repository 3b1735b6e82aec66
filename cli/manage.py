"""`copier channels|delegates|subs|brokers`: the account objects, with the API's own rules.

Every rule (who may do what, valid ranges) lives in the API; these commands only shape
requests and print answers, so the CLI and the dashboard can never disagree."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import typer

from cli.client import ApiClient
from cli.output import ApiOption, CliError, JsonOption, console, print_json, table

channels = typer.Typer(help="Signal channels: list, create, update, delete.", no_args_is_help=True)
delegates = typer.Typer(
    help="Traders allowed to signal a channel (add, remove).", no_args_is_help=True
)
subs = typer.Typer(help="Your subscriptions and their risk settings.", no_args_is_help=True)
brokers = typer.Typer(help="Your broker accounts.", no_args_is_help=True)

Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def confirm(what: str, yes: bool) -> None:
    if not yes and not typer.confirm(f"{what}?", default=False):
        raise CliError("cancelled")


def show(data: Any, as_json: bool, title: str, columns: list[str], rows: list[list[Any]]) -> None:
    if as_json:
        print_json(data)
    else:
        console().print(table(title, columns, rows))


def done(data: Any, as_json: bool, message: str) -> None:
    if as_json:
        print_json(data if data is not None else {"ok": True})
    else:
        console().print(message)


# --- channels ------------------------------------------------------------------------


def channel_rows(items: list[dict[str, Any]]) -> list[list[Any]]:
    rows = []
    for c in items:
        plan, track = c.get("plan") or {}, c.get("track_30d") or {}
        rate = track.get("win_rate")
        rows.append(
            [
                c["id"],
                c["name"],
                (c.get("provider") or {}).get("display_name"),
                f"{plan.get('price')} {plan.get('currency')}/{plan.get('period_days')}d",
                c.get("subscriber_count"),
                track.get("signals", "-"),
                track.get("return_on_stake", "-"),
                "-" if rate is None else f"{rate:.0%}",
                track.get("max_drawdown", "-"),
                c.get("record_days"),
            ]
        )
    return rows


CHANNEL_COLUMNS = [
    "id",
    "name",
    "provider",
    "plan",
    "subscribers",
    "signals 30d",
    "return 30d",
    "win rate 30d",
    "drawdown 30d",
    "record days",
]


@channels.command("list")
def channels_list(
    mine: Annotated[bool, typer.Option("--mine", help="Only channels you own.")] = False,
    sort: Annotated[
        str,
        typer.Option(
            help="return_30d, win_rate_30d, drawdown_30d, subscribers, price, age or signals_30d."
        ),
    ] = "return_30d",
    order: Annotated[
        str | None, typer.Option(help="asc or desc (default: best first for the sort).")
    ] = None,
    asset: Annotated[str | None, typer.Option(help="Only channels signalling it.")] = None,
    max_price: Annotated[str | None, typer.Option(help="Price per period, at most.")] = None,
    min_win_rate: Annotated[
        str | None, typer.Option(help="30-day win rate per signal, at least (0..1).")
    ] = None,
    min_record_days: Annotated[
        int | None, typer.Option(help="Age of the track record, at least (days).")
    ] = None,
    page: Annotated[int, typer.Option(help="Page, from 1.")] = 1,
    page_size: Annotated[int, typer.Option(help="Channels per page (1..100).")] = 20,
    api: ApiOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the marketplace's channels with their track record, a page at a time
    (--json prints the API's page: items, page, page_size, total; with --mine, the list).

    Examples:
      copier channels list
      copier channels list --sort win_rate_30d --asset EURUSD --max-price 20
      copier channels list --mine --json
    """
    with ApiClient(api, need_login=mine) as client:
        if mine:
            assert client.session is not None
            owned = [
                entry["channel"]
                for entry in client.get("/api/v1/me/channels")
                if entry.get("role") == "owner"
            ]
            show(owned, as_json, "channels", CHANNEL_COLUMNS, channel_rows(owned))
            return
        params: dict[str, Any] = {"sort": sort, "page": page, "page_size": page_size}
        extra = {
            "order": order,
            "asset": asset,
            "max_price": max_price,
            "min_win_rate": min_win_rate,
            "min_record_days": min_record_days,
        }
        params |= {k: v for k, v in extra.items() if v is not None}
        found = client.get("/api/v1/channels", auth=client.session is not None, params=params)
    items = found["items"]
    title = f"channels (page {found['page']}, {len(items)} of {found['total']})"
    show(found, as_json, title, CHANNEL_COLUMNS, channel_rows(items))


@channels.command("show")
def channels_show(
    channel_id: Annotated[str, typer.Argument(help="Channel id.")],
    api: ApiOption = None,
    as_json: JsonOption = False,
) -> None:
    """One channel.

    Example:
      copier channels show CHANNEL
    """
    with ApiClient(api, need_login=False) as client:
        item = client.get(f"/api/v1/channels/{channel_id}", auth=client.session is not None)
    show(item, as_json, "channel", CHANNEL_COLUMNS, channel_rows([item]))


@channels.command("create")
def channels_create(
    name: Annotated[str, typer.Option(help="Channel name.")],
    price: Annotated[str, typer.Option(help="Subscription price per period.")],
    period_days: Annotated[int, typer.Option(help="Subscription period in days.")] = 30,
    currency: Annotated[str, typer.Option(help="Price currency.")] = "USD",
    description: Annotated[str, typer.Option(help="What subscribers get.")] = "",
    api: ApiOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a channel (providers only); prints its id.

    Example:
      copier channels create --name "EURUSD scalps" --price 25 --period-days 30
    """
    body = {
        "name": name,
        "description": description,
        "plan": {"price": price, "period_days": period_days, "currency": currency},
    }
    with ApiClient(api) as client:
        item = client.post("/api/v1/channels", json=body)
    done(item, as_json, item["id"])


@channels.command("update")
def channels_update(
    channel_id: Annotated[str, typer.Argument(help="Channel id.")],
    name: Annotated[str | None, typer.Option(help="New name.")] = None,
    description: Annotated[str | None, typer.Option(help="New description.")] = None,
    price: Annotated[str | None, typer.Option(help="New price.")] = None,
    period_days: Annotated[int | None, typer.Option(help="New period in days.")] = None,
    currency: Annotated[str | None, typer.Option(help="New price currency.")] = None,
    api: ApiOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a channel's name, description or plan (owner only).

    Example:
      copier channels update CHANNEL --price 30
    """
    body: dict[str, Any] = {}
    if name is not None:
        body["name"] = name
    if description is not None:
        body["description"] = description
    with ApiClient(api) as client:
        if price is not None or period_days is not None or currency is not None:
            # The API replaces the plan as a whole; unchanged parts come from the current one.
            plan = client.get(f"/api/v1/channels/{channel_id}")["plan"]
            body["plan"] = {
                "price": price if price is not None else plan["price"],
                "period_days": period_days if period_days is not None else plan["period_days"],
                "currency": currency if currency is not None else plan["currency"],
            }
        if not body:
            raise CliError("nothing to change: give --name, --description or a plan option")
        item = client.patch(f"/api/v1/channels/{channel_id}", json=body)
    done(item, as_json, f"channel {channel_id} updated")


@channels.command("delete")
def channels_delete(
    channel_id: Annotated[str, typer.Argument(help="Channel id.")],
    yes: Yes = False,
    api: ApiOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete a channel (owner only).

    Example:
      copier channels delete CHANNEL --yes
    """
    confirm(f"delete channel {channel_id}", yes)
    with ApiClient(api) as client:
        client.delete(f"/api/v1/channels/{channel_id}")
    done({"deleted": channel_id}, as_json, f"channel {channel_id} deleted")


@channels.command("subscribers")
def channels_subscribers(
    channel_id: Annotated[str, typer.Argument(help="Channel id.")],
    api: ApiOption = None,
    as_json: JsonOption = False,
) -> None:
    """Who subscribes to your channel (owner and delegates).

    Example:
      copier channels subscribers CHANNEL
    """
    with ApiClient(api) as client:
        items = client.get(f"/api/v1/channels/{channel_id}/subscribers")
    rows = [
        [s["subscription_id"], s["user"]["display_name"], s["status"], s["since"], s["expires_at"]]
        for s in items
    ]
    show(
        items, as_json, "subscribers", ["subscription", "user", "status", "since", "expires"], rows
    )


# --- delegates -----------------------------------------------------------------------


def delegate_rows(view: dict[str, Any]) -> list[list[Any]]:
    return [[d["id"], d["display_name"], d["email"]] for d in view.get("delegates", [])]


@delegates.command("list")
def delegates_list(
    channel_id: Annotated[str, typer.Argument(help="Channel id.")],
    api: ApiOption = None,
    as_json: JsonOption = False,
) -> None:
    """Who may send signals to your channel besides you (owner and admins only).

    Example:
      copier delegates list CHANNEL
    """
    with ApiClient(api) as client:
        view = client.get(f"/api/v1/channels/{channel_id}/delegates")
    if as_json:
        print_json(view)
        return
    console().print(table("delegates", ["id", "name", "email"], delegate_rows(view)))


@delegates.command("add")
def delegates_add(
    channel_id: Annotated[str, typer.Argument(help="Channel id.")],
    email: Annotated[str, typer.Argument(help="The trader's account e-mail.")],
    api: ApiOption = None,
    as_json: JsonOption = False,
) -> None:
    """Let another trader send signals to your channel.

    Example:
      copier delegates add CHANNEL trader@example.com
    """
    with ApiClient(api) as client:
        view = client.post(f"/api/v1/channels/{channel_id}/delegates", json={"email": email})
    if as_json:
        print_json(view)
        return
    console().print(f"{email} may now signal channel {channel_id}")
    console().print(table("delegates", ["id", "name", "email"], delegate_rows(view)))


@delegates.command("remove")
def delegates_remove(
    channel_id: Annotated[str, typer.Argument(help="Channel id.")],
    user_id: Annotated[str, typer.Argument(help="The delegate's e-mail or user id.")],
    api: ApiOption = None,
    as_json: JsonOption = False,
) -> None:
    """Take a trader's right to signal your channel away (effective at once).

    Example:
      copier delegates remove CHANNEL trader@example.com
    """
    with ApiClient(api) as client:
        if "@" in user_id:
            view = client.get(f"/api/v1/channels/{channel_id}/delegates")
            matches = [d["id"] for d in view.get("delegates", []) if d["email"] == user_id.lower()]
            if not matches:
                raise CliError(f"{user_id} is not a delegate of channel {channel_id}")
            user_id = matches[0]
        client.delete(f"/api/v1/channels/{channel_id}/delegates/{user_id}")
    done({"removed": user_id}, as_json, f"{user_id} removed from channel {channel_id}")


# --- subscriptions -------------------------------------------------------------------

SUB_COLUMNS = [
    "id",
    "channel",
    "account",
    "stake",
    "max",
    "trades/day",
    "loss limit",
    "rules",
    "status",
]


def rules_text(s: dict[str, Any]) -> str:
    """The subscription's other rules in a few words ("" when none is set)."""
    rules = []
    if s.get("balance_floor") is not None:
        rules.append(f"floor {s['balance_floor']}")
    if s.get("max_drawdown_percent") is not None:
        rules.append(f"drawdown {s['max_drawdown_percent']} %")
    if s.get("directions"):
        rules.append("only " + "/".join(s["directions"]))
    if s.get("reverse"):
        rules.append("reversed")
    if s.get("round_up_to_min_stake"):
        rules.append("round up to minimum")
    return ", ".join(rules)


def sub_rows(items: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [
            s["id"],
            s["channel_id"],
            s["broker_account_id"],
            f"{s['stake']} ({s['stake_mode']})",
            s["max_stake"],
            s.get("max_trades_per_day"),
            s.get("daily_loss_limit"),
            rules_text(s),
            f"{s['status']}: {s['paused_reason']}" if s.get("paused_reason") else s["status"],
        ]
        for s in items
    ]


@dataclass(frozen=True, slots=True)
class Limits:
    """The options beyond the stake (None: not given, left as it is)."""

    balance_floor: str | None = None
    max_drawdown: str | None = None
    round_up: bool | None = None
    directions: str | None = None
    reverse: bool | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for key, value in (
            ("balance_floor", self.balance_floor),
            ("max_drawdown_percent", self.max_drawdown),
            ("round_up_to_min_stake", self.round_up),
            ("reverse", self.reverse),
        ):
            if value is not None:
                body[key] = None if value == "none" else value
        if self.directions is not None:
            body["directions"] = directions_of(self.directions)
        return body


def directions_of(text: str) -> list[str]:
    """``CALL``, ``PUT``, ``CALL,PUT`` or ``both`` (every direction) → the API's list."""
    if text.strip().lower() == "both":
        return []
    found = [d.strip().upper() for d in text.split(",") if d.strip()]
    wrong = [d for d in found if d not in ("CALL", "PUT")]
    if wrong or not found:
        raise CliError(f"--directions takes CALL, PUT or both, not {text!r}")
    return found


def risk_body(
    stake_mode: str | None,
    stake: str | None,
    max_stake: str | None,
    max_trades_per_day: int | None,
    daily_loss_limit: str | None,
    assets: str | None,
    limits: Limits = Limits(),
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for key, value in (
        ("stake_mode", stake_mode),
        ("stake", stake),
        ("max_stake", max_stake),
        ("max_trades_per_day", max_trades_per_day),
        ("daily_loss_limit", daily_loss_limit),
    ):
        if value is not None:
            body[key] = value
    if assets is not None:
        body["assets"] = [a.strip() for a in assets.split(",") if a.strip()]
    return {**body, **limits.body()}


StakeMode = Annotated[str | None, typer.Option(help="fixed | multiplier | percent.")]
Stake = Annotated[str | None, typer.Option(help="Stake (amount, multiple or percent).")]
MaxStake = Annotated[str | None, typer.Option(help="Never stake more than this per trade.")]
TradesPerDay = Annotated[int | None, typer.Option(help="At most this many trades a day.")]
LossLimit = Annotated[str | None, typer.Option(help="Stop for the day after losing this much.")]
AssetsOpt = Annotated[str | None, typer.Option(help="Only these assets, comma-separated.")]
FloorOpt = Annotated[
    str | None,
    typer.Option(help="Stop copying while the broker balance is below this ('none' removes it)."),
]
DrawdownOpt = Annotated[
    str | None,
    typer.Option(
        help="Pause once the balance is this % below its peak ('none' removes it).",
    ),
]
RoundUpOpt = Annotated[
    bool | None,
    typer.Option(
        "--round-up/--no-round-up",
        help="Raise a stake below the broker's minimum to it instead of skipping the trade.",
    ),
]
DirectionsOpt = Annotated[
    str | None, typer.Option(help="Copy only CALL, only PUT, or both (the default).")
]
ReverseOpt = Annotated[
    bool | None,
    typer.Option("--reverse/--no-reverse", help="Place the opposite direction of each signal."),
]


@subs.command("list")
def subs_list(api: ApiOption = None, as_json: JsonOption = False) -> None:
    """Your subscriptions.

    Example:
      copier subs list --json
    """
    with ApiClient(api) as client:
        items = client.get("/api/v1/subscriptions")
    show(items, as_json, "subscriptions", SUB_COLUMNS, sub_rows(items))


@subs.command("create")
def subs_create(
    channel_id: Annotated[str, typer.Argument(help="Channel to subscribe to.")],
    account: Annotated[str, typer.Option(help="Broker account id that trades.")],
    stake: Stake = "1",
    stake_mode: StakeMode = "fixed",
    max_stake: MaxStake = "10",
    max_trades_per_day: TradesPerDay = None,
    daily_loss_limit: LossLimit = None,
    assets: AssetsOpt = None,
    balance_floor: FloorOpt = None,
    max_drawdown: DrawdownOpt = None,
    round_up: RoundUpOpt = None,
    directions: DirectionsOpt = None,
    reverse: ReverseOpt = None,
    paused: Annotated[
        bool, typer.Option("--paused", help="Subscribe without trading yet.")
    ] = False,
    api: ApiOption = None,
    as_json: JsonOption = False,
) -> None:
    """Subscribe to a channel with a broker account and risk settings; prints the id.

    Examples:
      copier subs create CHANNEL --account ACCOUNT --stake 2 --max-stake 5 --daily-loss-limit 50
      copier subs create CHANNEL --account ACCOUNT --balance-floor 500 --max-drawdown 20
    """
    limits = Limits(balance_floor, max_drawdown, round_up, directions, reverse)
    body = risk_body(
        stake_mode, stake, max_stake, max_trades_per_day, daily_loss_limit, assets, limits
    )
    body["broker_account_id"] = account
    body["paused"] = paused
    with ApiClient(api) as client:
        item = client.post(f"/api/v1/channels/{channel_id}/subscriptions", json=body)
    done(item, as_json, item["id"])


@subs.command("update")
def subs_update(
    subscription_id: Annotated[str, typer.Argument(help="Subscription id.")],
    account: Annotated[str | None, typer.Option(help="Trade with this broker account.")] = None,
    stake: Stake = None,
    stake_mode: StakeMode = None,
    max_stake: MaxStake = None,
    max_trades_per_day: TradesPerDay = None,
    daily_loss_limit: LossLimit = None,
    assets: AssetsOpt = None,
    balance_floor: FloorOpt = None,
    max_drawdown: DrawdownOpt = None,
    round_up: RoundUpOpt = None,
    directions: DirectionsOpt = None,
    reverse: ReverseOpt = None,
    paused: Annotated[
        bool | None, typer.Option("--pause/--resume", help="Stop or restart copying.")
    ] = None,
    api: ApiOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a subscription's account, risk settings or pause it.

    Examples:
      copier subs update SUB --stake 3
      copier subs update SUB --directions CALL --reverse
      copier subs update SUB --pause
    """
    limits = Limits(balance_floor, max_drawdown, round_up, directions, reverse)
    body = risk_body(
        stake_mode, stake, max_stake, max_trades_per_day, daily_loss_limit, assets, limits
    )
    if account is not None:
        body["broker_account_id"] = account
    if paused is not None:
        body["paused"] = paused
    if not body:
        raise CliError("nothing to change: give at least one option")
    with ApiClient(api) as client:
        item = client.patch(f"/api/v1/subscriptions/{subscription_id}", json=body)
    done(item, as_json, f"subscription {subscription_id} updated")


@subs.command("delete")
def subs_delete(
    subscription_id: Annotated[str, typer.Argument(help="Subscription id.")],
    yes: Yes = False,
    api: ApiOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cancel a subscription: no further trades are copied.

    Example:
      copier subs delete SUB --yes
    """
    confirm(f"cancel subscription {subscription_id}", yes)
    with ApiClient(api) as client:
        client.delete(f"/api/v1/subscriptions/{subscription_id}")
    done({"cancelled": subscription_id}, as_json, f"subscription {subscription_id} cancelled")


# --- broker accounts -----------------------------------------------------------------

BROKER_COLUMNS = [
    "id",
    "kind",
    "label",
    "login",
    "balance type",
    "currency",
    "balance",
    "verified",
    "status",
]
BROKER_KINDS = ("deriv", "iqoption")
BALANCE_TYPES = ("practice", "real")


def broker_rows(items: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [
            b["id"],
            b["kind"],
            b["label"],
            b.get("loginid"),
            b.get("balance_type") or "",
            b.get("currency"),
            b.get("balance"),
            b.get("verified_at") or "no",
            account_status(b),
        ]
        for b in items
    ]


def account_status(account: dict[str, Any]) -> str:
    """ "active", or why the account's subscriptions are paused until it is linked again."""
    if account.get("status") == "needs_relink":
        return f"needs re-linking: {account.get('relink_reason') or 'the broker refused it'}"
    return str(account.get("status") or "active")


def broker_body(
    kind: str,
    label: str,
    *,
    token: str | None,
    login: str | None,
    password: str | None,
    ssid: str | None,
    balance: str | None,
) -> dict[str, Any]:
    """The create body for the options given; options of the other kind are a usage error
    (exit 2), everything else (a missing password, a malformed ssid) is the API's to say."""
    if kind not in BROKER_KINDS:
        raise CliError(f"--kind is one of {', '.join(BROKER_KINDS)}, not {kind!r}", 2)
    if balance is not None and balance not in BALANCE_TYPES:
        raise CliError(f"--balance is one of {', '.join(BALANCE_TYPES)}, not {balance!r}", 2)
    if kind == "deriv":
        given = [f for f, v in (("--login", login), ("--ssid", ssid), ("--balance", balance)) if v]
        if given:
            raise CliError(f"{', '.join(given)}: only for --kind iqoption", 2)
        return {"kind": kind, "label": label, "credentials": {"token": token} if token else {}}
    if token:
        raise CliError("an IQ Option account takes --login and --password, or --ssid", 2)
    if ssid and (login or password):
        raise CliError("give --ssid, or --login and --password, not both", 2)
    credentials = (
        {"token": ssid}
        if ssid
        else {k: v for k, v in (("login", login), ("password", password)) if v}
    )
    body: dict[str, Any] = {"kind": kind, "label": label, "credentials": credentials}
    if balance:
        body["balance_type"] = balance
    return body


@brokers.command("list")
def brokers_list(api: ApiOption = None, as_json: JsonOption = False) -> None:
    """Your broker accounts (never their secrets).

    Example:
      copier brokers list
    """
    with ApiClient(api) as client:
        items = client.get("/api/v1/broker-accounts")
    show(items, as_json, "broker accounts", BROKER_COLUMNS, broker_rows(items))


@brokers.command("create")
def brokers_create(
    label: Annotated[str, typer.Option(help="Your name for the account.")],
    kind: Annotated[str, typer.Option(help="deriv | iqoption.")] = "deriv",
    token: Annotated[
        str | None, typer.Option(envvar="COPIER_BROKER_TOKEN", help="Deriv API token.")
    ] = None,
    login: Annotated[str | None, typer.Option(help="IQ Option e-mail.")] = None,
    password: Annotated[
        str | None, typer.Option(envvar="COPIER_BROKER_PASSWORD", help="IQ Option password.")
    ] = None,
    ssid: Annotated[
        str | None,
        typer.Option(
            envvar="COPIER_BROKER_SSID",
            help="IQ Option session id, instead of e-mail and password (two-factor accounts).",
        ),
    ] = None,
    balance: Annotated[
        str | None,
        typer.Option(help="IQ Option balance to trade: practice | real (default practice)."),
    ] = None,
    api: ApiOption = None,
    as_json: JsonOption = False,
) -> None:
    """Link a broker account: the API checks the credentials with the broker and saves
    the account (credentials sealed) only once it accepts them; prints its id.

    A refusal prints the broker's reason and saves nothing; an unreachable broker says to
    try again later.

    Examples:
      COPIER_BROKER_TOKEN=... copier brokers create --label main
      COPIER_BROKER_PASSWORD=... copier brokers create --kind iqoption --label iq --login me@x.io
      COPIER_BROKER_SSID=... copier brokers create --kind iqoption --label iq --balance real
    """
    body = broker_body(
        kind, label, token=token, login=login, password=password, ssid=ssid, balance=balance
    )
    with ApiClient(api) as client:
        try:
            item = client.post("/api/v1/broker-accounts", json=body)
        except CliError as exc:
            raise CliError(f"the account was not linked: {exc.message}", exc.code) from exc
    done(item, as_json, item["id"])


@brokers.command("verify")
def brokers_verify(
    account_id: Annotated[str, typer.Argument(help="Broker account id.")],
    api: ApiOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check an account's credentials with the broker; shows currency and balance.

    Example:
      copier brokers verify ACCOUNT
    """
    with ApiClient(api) as client:
        item = client.post(f"/api/v1/broker-accounts/{account_id}/verify")
    show(item, as_json, "broker account", BROKER_COLUMNS, broker_rows([item]))


@brokers.command("delete")
def brokers_delete(
    account_id: Annotated[str, typer.Argument(help="Broker account id.")],
    yes: Yes = False,
    api: ApiOption = None,
    as_json: JsonOption = False,
) -> None:
    """Unlink a broker account.

    Example:
      copier brokers delete ACCOUNT --yes
    """
    confirm(f"delete broker account {account_id}", yes)
    with ApiClient(api) as client:
        client.delete(f"/api/v1/broker-accounts/{account_id}")
    done({"deleted": account_id}, as_json, f"broker account {account_id} deleted")


def register(app: typer.Typer) -> None:
    app.add_typer(channels, name="channels")
    app.add_typer(delegates, name="delegates")
    app.add_typer(subs, name="subs")
    app.add_typer(brokers, name="brokers")
